//! The Docker backend's settings and the engine address they name.

use std::path::PathBuf;
use std::time::Duration;

/// Where a Docker engine listens on most Linux hosts.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The image runs use unless `DOCKER_SANDBOX_IMAGE` names another. It has
/// Python 3.12 and its standard library only: numpy, pandas, matplotlib and
/// the like need an image that has them installed (runs have no network to
/// `pip install` them).
pub const DEFAULT_IMAGE: &str = "python:3.12-slim";

/// How the Docker backend reaches its engine and shapes its containers.
/// Per-run limits (wall time from `DOCKER_SANDBOX_TIMEOUT`, memory, …) come
/// from [`RunSpec::limits`](crate::RunSpec::limits), not from here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerConfig {
    /// The engine: `unix:///path/docker.sock` (or a bare absolute path),
    /// `tcp://host:port` or `http://host:port` (plain HTTP, for tests or a
    /// daemon behind an SSH tunnel). TLS and `ssh://` are not supported.
    /// Default [`DEFAULT_HOST`].
    pub host: String,
    /// The image every run starts from (`DOCKER_SANDBOX_IMAGE`), pulled when
    /// the engine lacks it. Default [`DEFAULT_IMAGE`].
    pub image: String,
    /// `uid:gid` inside the container. `None` (the default) uses the owner
    /// of the person's workspace directory, so what a run writes there
    /// belongs to the same host user as the rest of the workspace (the one
    /// Clara runs as) and Clara can read and delete it. When that owner is
    /// root the run is root inside the container, though with every
    /// capability dropped and `no-new-privileges`; set this (and own the
    /// workspaces accordingly) to avoid that.
    pub user: Option<String>,
    /// The network mode of a run whose spec allows the network. Default
    /// `bridge` (the engine's default network).
    pub network: String,
    /// CPU share in billionths of a CPU. Default one CPU.
    pub nano_cpus: u64,
    /// Size of each run's fresh `/tmp` (a tmpfs, counted against its
    /// memory). Default 64 MiB.
    pub tmp_bytes: u64,
    /// How long to wait for the engine to answer a request (headers only:
    /// streams such as a run's output are not cut). Default 120 s.
    pub request_timeout: Duration,
    /// How long to keep reading a run's output after its container exited.
    /// The attach stream normally ends on exit but may not
    /// (fussybeaver/bollard#251), so the run does not wait for it longer.
    /// Default 2 s.
    pub output_grace: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            user: None,
            network: "bridge".to_owned(),
            nano_cpus: 1_000_000_000,
            tmp_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            output_grace: Duration::from_secs(2),
        }
    }
}

/// A parsed [`DockerConfig::host`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket at this path.
    Unix(PathBuf),
    /// Plain HTTP at `host:port`.
    Http(String),
}

/// Parses an engine address; the error is one sentence.
pub(crate) fn parse_host(host: &str) -> Result<Endpoint, String> {
    let host = host.trim();
    if let Some(path) = host.strip_prefix("unix://") {
        if path.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
    } else if host.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(host)));
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/');
        if !addr.is_empty() && !addr.contains('/') {
            return Ok(Endpoint::Http(addr.to_owned()));
        }
    }
    Err(format!(
        "the Docker host {host:?} is not a unix socket path (unix:///var/run/docker.sock) \
         or a plain tcp://host:port address; TLS and ssh:// are not supported"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_sockets_with_or_without_scheme() {
        assert_eq!(
            parse_host("unix:///var/run/docker.sock"),
            Ok(Endpoint::Unix(PathBuf::from("/var/run/docker.sock")))
        );
        assert_eq!(
            parse_host("/run/user/1000/podman/podman.sock"),
            Ok(Endpoint::Unix(PathBuf::from(
                "/run/user/1000/podman/podman.sock"
            )))
        );
    }

    #[test]
    fn tcp_and_http_addresses() {
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375"),
            Ok(Endpoint::Http("127.0.0.1:2375".into()))
        );
        assert_eq!(
            parse_host("http://docker.internal:2375/"),
            Ok(Endpoint::Http("docker.internal:2375".into()))
        );
    }

    #[test]
    fn unsupported_addresses_are_refused_in_one_sentence() {
        for host in [
            "https://h:2376",
            "ssh://me@h",
            "unix://relative",
            "tcp://",
            "docker",
        ] {
            let err = parse_host(host).err().unwrap_or_default();
            assert!(err.contains("not supported"), "{host}: {err}");
        }
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = DockerConfig::default();
        assert_eq!(config.host, DEFAULT_HOST);
        assert_eq!(config.image, "python:3.12-slim");
        assert_eq!(config.nano_cpus, 1_000_000_000);
        assert_eq!(config.user, None);
    }
}

//! The Docker backend: each run in a fresh container on a Docker Engine
//! (or Podman's Docker-compatible socket), through bollard.
//!
//! For hosts where bubblewrap is not allowed but a Docker engine is. A run
//! is one container from [`DockerConfig::image`]: no network unless the
//! spec allows it, memory without swap, one CPU, a process cap, every
//! capability dropped, `no-new-privileges`, a read-only root with a fresh
//! tmpfs `/tmp`, the person's workspace bound read-write at `/workspace`
//! (its only host directory), RLIMIT_CPU and RLIMIT_FSIZE, and only the
//! environment the spec gives (`body.rs` has the details). The container is
//! removed after every run, whatever happened (`container.rs`).
//!
//! - Output streams from the attach connection, opened before the start.
//!   The run does not wait for that stream to end (it may outlive the
//!   container, fussybeaver/bollard#251): its end is `wait`, under the wall
//!   time, and the output gets [`DockerConfig::output_grace`] after it.
//! - Past the wall time the container is SIGKILLed (the whole cgroup);
//!   `State.OOMKilled` reports a memory kill; exit codes 152 and 153 are
//!   the CPU and file-size rlimits (`outcome.rs`). Hitting the process limit
//!   is not visible through the engine: forks just fail inside.
//! - The workspace must be at the same path on the engine's host (it is
//!   when the engine is local).
//! - bollard 0.21 sends unversioned paths (`/containers/create`), so the
//!   engine answers at its own current API version; the fields used here
//!   are stable across them. The self-test refuses engines that
//!   report an API older than 1.41 (Docker 20.10; Podman's socket reports
//!   1.41) and engines running non-Linux containers.

mod body;
mod config;
mod container;
mod engine_error;
mod image;
mod outcome;

pub use body::LABEL;
pub use config::{DEFAULT_HOST, DEFAULT_IMAGE, DockerConfig};

use crate::run::{Limits, Output, RunEnd, RunSpec, Sandbox, SandboxError};
use async_trait::async_trait;
use body::{BodyInput, container_body};
use bollard::models::SystemVersion;
use bollard::{API_DEFAULT_VERSION, Docker as Engine};
use config::{Endpoint, parse_host};
use container::{Plan, run_container};
use engine_error::{answered, describe};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::info;

/// The oldest Engine API an engine may report: Docker 20.10, and what
/// Podman's Docker-compatible socket reports. Everything a run uses
/// (mounts, tmpfs, ulimits, pids and CPU limits, attach) is older.
const MIN_API: (u32, u32) = (1, 41);

/// The self-test's `true` gets this long.
const SELF_TEST_WALL: Duration = Duration::from_secs(60);

/// The user of the self-test container, which mounts no workspace.
const NOBODY: &str = "65534:65534";

/// The Docker backend: a connection to one engine plus how to shape runs.
pub struct Docker {
    engine: Engine,
    config: DockerConfig,
}

impl std::fmt::Debug for Docker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docker")
            .field("host", &self.config.host)
            .field("image", &self.config.image)
            .finish_non_exhaustive()
    }
}

impl Docker {
    /// Prepares a client for the engine at [`DockerConfig::host`]. Nothing
    /// is sent yet ([`Sandbox::self_test`] does that); this fails only when
    /// the address is not supported or names a unix socket that does not
    /// exist, with [`SandboxError::Unavailable`].
    pub fn connect(config: DockerConfig) -> Result<Self, SandboxError> {
        let timeout = config.request_timeout.as_secs().max(1);
        let engine = match parse_host(&config.host).map_err(SandboxError::Unavailable)? {
            Endpoint::Unix(path) => {
                if !path.exists() {
                    return Err(SandboxError::Unavailable(format!(
                        "no Docker engine answers at {} (the socket does not exist)",
                        config.host
                    )));
                }
                Engine::connect_with_unix(&path.to_string_lossy(), timeout, API_DEFAULT_VERSION)
            }
            Endpoint::Http(addr) => Engine::connect_with_http(&addr, timeout, API_DEFAULT_VERSION),
        }
        .map_err(|err| {
            SandboxError::Unavailable(format!(
                "no Docker engine answers at {}: {}",
                config.host,
                describe(&err)
            ))
        })?;
        Ok(Self { engine, config })
    }

    /// The settings it was made with.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }
}

#[async_trait]
impl Sandbox for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    /// Pings the engine, checks its version and platform, makes sure the
    /// image is there (pulling it), and runs `true` in a container with no
    /// network and no host directory.
    async fn self_test(&self) -> Result<(), SandboxError> {
        let host = &self.config.host;
        if let Err(err) = self.engine.ping().await {
            let why = describe(&err);
            return Err(SandboxError::Unavailable(if answered(&err) {
                format!("the Docker engine at {host} refused Clara's requests: {why}")
            } else {
                format!("no Docker engine answers at {host} ({why})")
            }));
        }
        let version = self.engine.version().await.map_err(|err| {
            SandboxError::Unavailable(format!(
                "the Docker engine at {host} did not say its version: {}",
                describe(&err)
            ))
        })?;
        check_version(&version, host).map_err(SandboxError::Unavailable)?;
        info!(
            host,
            engine = version.version.as_deref().unwrap_or("?"),
            api = version.api_version.as_deref().unwrap_or("?"),
            "Docker engine found"
        );
        image::ensure(&self.engine, &self.config.image)
            .await
            .map_err(SandboxError::Unavailable)?;

        let argv = vec!["true".to_owned()];
        let limits = Limits {
            wall: SELF_TEST_WALL,
            ..Limits::default()
        };
        let body = container_body(&BodyInput {
            image: &self.config.image,
            argv: &argv,
            env: &[],
            workspace: None,
            user: self.config.user.as_deref().unwrap_or(NOBODY),
            limits: &limits,
            network: None,
            stdin: false,
            nano_cpus: self.config.nano_cpus,
            tmp_bytes: self.config.tmp_bytes,
        });
        let (output, _ignored) = mpsc::channel(1);
        let plan = Plan {
            image: &self.config.image,
            body,
            stdin: None,
            wall: SELF_TEST_WALL,
            output_grace: self.config.output_grace,
        };
        let end = run_container(&self.engine, plan, output).await.map_err(|why| {
            SandboxError::Unavailable(format!(
                "a test container (`true`, no network) failed on the Docker engine at {host}: {why}"
            ))
        })?;
        if !end.success() {
            let how = match (end.stopped, end.exit_code) {
                (Some(stopped), _) => stopped.describe(&limits),
                (None, Some(code)) => format!("exit code {code}"),
                (None, None) => "no exit code".to_owned(),
            };
            return Err(SandboxError::Unavailable(format!(
                "a test container (`true`, no network) on the Docker engine at {host} ended badly: {how}"
            )));
        }
        Ok(())
    }

    async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<Output>,
    ) -> Result<RunEnd, SandboxError> {
        if spec.argv.is_empty() {
            return Err(SandboxError::Failed(
                "there is nothing to run: the command line is empty".to_owned(),
            ));
        }
        let workspace = tokio::fs::metadata(&spec.workspace)
            .await
            .ok()
            .filter(|meta| meta.is_dir() && spec.workspace.is_absolute());
        let Some(workspace) = workspace else {
            return Err(SandboxError::Failed(format!(
                "the workspace {} is not an existing directory with an absolute path",
                spec.workspace.display()
            )));
        };
        let owner = format!("{}:{}", workspace.uid(), workspace.gid());
        let body = container_body(&BodyInput {
            image: &self.config.image,
            argv: &spec.argv,
            env: &spec.env,
            workspace: Some(&spec.workspace),
            user: self.config.user.as_deref().unwrap_or(&owner),
            limits: &spec.limits,
            network: spec.network.then_some(self.config.network.as_str()),
            stdin: spec.stdin.is_some(),
            nano_cpus: self.config.nano_cpus,
            tmp_bytes: self.config.tmp_bytes,
        });
        let plan = Plan {
            image: &self.config.image,
            body,
            stdin: spec.stdin,
            wall: spec.limits.wall,
            output_grace: self.config.output_grace,
        };
        run_container(&self.engine, plan, output)
            .await
            .map_err(SandboxError::Failed)
    }
}

/// Checks what `/version` said; the error is one sentence.
fn check_version(version: &SystemVersion, host: &str) -> Result<(), String> {
    let api = version.api_version.as_deref().unwrap_or_default();
    match parse_api(api) {
        None => {
            return Err(format!(
                "the Docker engine at {host} did not say which API version it speaks"
            ));
        }
        Some(found) if found < MIN_API => {
            return Err(format!(
                "the Docker engine at {host} speaks API {api}; Clara needs {}.{} or newer",
                MIN_API.0, MIN_API.1
            ));
        }
        Some(_) => {}
    }
    match version.os.as_deref() {
        Some(os) if !os.eq_ignore_ascii_case("linux") => Err(format!(
            "the Docker engine at {host} runs {os} containers; Clara needs Linux containers"
        )),
        _ => Ok(()),
    }
}

/// `"1.47"` → `(1, 47)`.
fn parse_api(api: &str) -> Option<(u32, u32)> {
    let (major, minor) = api.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(api: Option<&str>, os: Option<&str>) -> SystemVersion {
        SystemVersion {
            api_version: api.map(str::to_owned),
            os: os.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_api("1.47"), Some((1, 47)));
        assert_eq!(parse_api("x"), None);
        assert!(check_version(&version(Some("1.51"), Some("linux")), "h").is_ok());
        assert!(check_version(&version(Some("1.41"), None), "h").is_ok());
        let old = check_version(&version(Some("1.40"), Some("linux")), "h");
        assert!(old.err().unwrap_or_default().contains("needs 1.41"));
        let windows = check_version(&version(Some("1.47"), Some("windows")), "h");
        assert!(
            windows
                .err()
                .unwrap_or_default()
                .contains("Linux containers")
        );
        assert!(check_version(&version(None, None), "h").is_err());
    }

    #[test]
    fn connect_refuses_what_it_cannot_reach_without_panicking() {
        let missing = DockerConfig {
            host: "unix:///nonexistent/docker.sock".to_owned(),
            ..DockerConfig::default()
        };
        let err = Docker::connect(missing).err();
        assert_eq!(
            err,
            Some(SandboxError::Unavailable(
                "no Docker engine answers at unix:///nonexistent/docker.sock (the socket does not exist)"
                    .to_owned()
            ))
        );
        let tls = DockerConfig {
            host: "https://h:2376".to_owned(),
            ..DockerConfig::default()
        };
        assert!(matches!(
            Docker::connect(tls),
            Err(SandboxError::Unavailable(_))
        ));
    }
}

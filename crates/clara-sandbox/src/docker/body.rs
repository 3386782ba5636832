//! The container a run gets: what `POST /containers/create` is sent.
//!
//! Everything isolating a run is decided here, from its spec alone: no
//! network unless allowed, memory without swap, one CPU, a process cap,
//! every capability dropped, `no-new-privileges`, a read-only root with a
//! fresh tmpfs `/tmp`, the workspace as the only host directory, rlimits for
//! CPU time and file size, no stored logs, and only the environment Clara
//! chooses (the engine never sees Clara's own).

use crate::run::Limits;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};
use std::collections::HashMap;
use std::path::Path;

/// The label every sandbox container carries, so leftovers can be found.
pub const LABEL: &str = "clara.sandbox";

/// Where the workspace appears inside.
pub(crate) const WORKSPACE: &str = "/workspace";

/// Docker's attach detaches a client that types this sequence on stdin
/// (default ctrl-p ctrl-q). Stdin here is arbitrary data, so the sequence is
/// made long enough never to occur in it by chance.
pub(crate) const DETACH_KEYS: &str =
    "ctrl-^,ctrl-@,ctrl-_,ctrl-],ctrl-^,ctrl-@,ctrl-_,ctrl-],ctrl-^,ctrl-@,ctrl-_,ctrl-]";

/// What a container body is made from.
pub(crate) struct BodyInput<'a> {
    /// The image.
    pub image: &'a str,
    /// The command line; the first word replaces the image's entrypoint.
    pub argv: &'a [String],
    /// Extra environment from the spec.
    pub env: &'a [(String, String)],
    /// The workspace on the host, bound at [`WORKSPACE`]; `None` for the
    /// self-test, which mounts nothing.
    pub workspace: Option<&'a Path>,
    /// `uid:gid` inside.
    pub user: &'a str,
    /// The limits.
    pub limits: &'a Limits,
    /// The network mode when the network is allowed, `None` when it is not.
    pub network: Option<&'a str>,
    /// Whether stdin is attached (the spec has bytes for it).
    pub stdin: bool,
    /// CPU share in billionths of a CPU.
    pub nano_cpus: u64,
    /// Size of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
}

/// The create body for one run.
pub(crate) fn container_body(input: &BodyInput<'_>) -> ContainerCreateBody {
    let limits = input.limits;
    let memory = to_i64(limits.memory_bytes);
    let cpu_secs = to_i64(limits.cpu.as_secs().max(1));
    let file_bytes = to_i64(limits.file_bytes);
    let host_config = HostConfig {
        network_mode: Some(input.network.unwrap_or("none").to_owned()),
        memory: Some(memory),
        // Equal to `memory`: no swap on top of it.
        memory_swap: Some(memory),
        nano_cpus: Some(to_i64(input.nano_cpus)),
        pids_limit: Some(i64::from(limits.processes)),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_owned(),
            format!("rw,nosuid,nodev,size={}", input.tmp_bytes),
        )])),
        // A mount, not a `binds` string: a path with a colon cannot be
        // misread, and a missing workspace is an error rather than a fresh
        // root-owned directory the engine creates.
        mounts: input.workspace.map(|path| {
            vec![Mount {
                target: Some(WORKSPACE.to_owned()),
                source: Some(path.to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(false),
                ..Default::default()
            }]
        }),
        ulimits: Some(vec![
            // The soft limit sends SIGXCPU (exit 152, recognisable); the
            // hard one a second later SIGKILLs what ignores it.
            ResourcesUlimits {
                name: Some("cpu".to_owned()),
                soft: Some(cpu_secs),
                hard: Some(cpu_secs.saturating_add(1)),
            },
            ResourcesUlimits {
                name: Some("fsize".to_owned()),
                soft: Some(file_bytes),
                hard: Some(file_bytes),
            },
        ]),
        // Output reaches Clara through the attach stream; the engine keeps
        // no copy on its disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_owned()),
            config: None,
        }),
        auto_remove: Some(false),
        privileged: Some(false),
        ..Default::default()
    };
    let (entrypoint, cmd) = match input.argv.split_first() {
        Some((first, rest)) => (vec![first.clone()], rest.to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    ContainerCreateBody {
        image: Some(input.image.to_owned()),
        entrypoint: Some(entrypoint),
        cmd: Some(cmd),
        env: Some(environment(input.env, input.workspace.is_some())),
        user: Some(input.user.to_owned()),
        working_dir: Some(
            if input.workspace.is_some() {
                WORKSPACE
            } else {
                "/"
            }
            .to_owned(),
        ),
        hostname: Some("sandbox".to_owned()),
        labels: Some(HashMap::from([(LABEL.to_owned(), "1".to_owned())])),
        tty: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(input.stdin),
        open_stdin: Some(input.stdin),
        stdin_once: Some(input.stdin),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The run's environment: a few defaults the spec may override, then the
/// spec's own. The image adds its variables (`PATH`, …); Clara's never get
/// here.
fn environment(extra: &[(String, String)], workspace: bool) -> Vec<String> {
    let home = if workspace { WORKSPACE } else { "/tmp" };
    let defaults = [
        ("HOME", home),
        ("PYTHONUNBUFFERED", "1"),
        ("LANG", "C.UTF-8"),
    ];
    defaults
        .into_iter()
        .filter(|(key, _)| !extra.iter().any(|(k, _)| k == key))
        .map(|(k, v)| format!("{k}={v}"))
        .chain(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .collect()
}

/// Docker's API counts in `i64`; limits beyond it mean "no tighter limit".
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn input<'a>(
        argv: &'a [String],
        env: &'a [(String, String)],
        limits: &'a Limits,
        network: Option<&'a str>,
    ) -> BodyInput<'a> {
        BodyInput {
            image: "python:3.12-slim",
            argv,
            env,
            workspace: Some(Path::new("/data/workspaces/42")),
            user: "1000:1000",
            limits,
            network,
            stdin: false,
            nano_cpus: 1_000_000_000,
            tmp_bytes: 64 << 20,
        }
    }

    #[test]
    fn isolates_by_default() {
        let argv = vec!["python3".to_owned(), "x.py".to_owned()];
        let limits = Limits {
            cpu: Duration::from_secs(30),
            ..Limits::default()
        };
        let body = container_body(&input(&argv, &[], &limits, None));
        let host = body.host_config.clone().unwrap_or_default();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.memory_swap, Some(512 << 20));
        assert_eq!(host.pids_limit, Some(64));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(host.readonly_rootfs, Some(true));
        let ulimits = host.ulimits.unwrap_or_default();
        assert_eq!(ulimits[0].soft, Some(30));
        assert_eq!(ulimits[1].hard, Some(256 << 20));
        let mount = &host.mounts.unwrap_or_default()[0];
        assert_eq!(mount.source.as_deref(), Some("/data/workspaces/42"));
        assert_eq!(mount.target.as_deref(), Some("/workspace"));
        assert_eq!(body.entrypoint, Some(vec!["python3".to_owned()]));
        assert_eq!(body.cmd, Some(vec!["x.py".to_owned()]));
        assert_eq!(body.working_dir.as_deref(), Some("/workspace"));
        assert_eq!(body.open_stdin, Some(false));
    }

    #[test]
    fn network_when_allowed() {
        let argv = vec!["true".to_owned()];
        let limits = Limits::default();
        let body = container_body(&input(&argv, &[], &limits, Some("bridge")));
        let mode = body.host_config.and_then(|h| h.network_mode);
        assert_eq!(mode.as_deref(), Some("bridge"));
    }

    #[test]
    fn spec_environment_overrides_defaults_and_nothing_else_enters() {
        let env = vec![
            ("HOME".to_owned(), "/tmp".to_owned()),
            ("A".to_owned(), "b".to_owned()),
        ];
        assert_eq!(
            environment(&env, true),
            vec!["PYTHONUNBUFFERED=1", "LANG=C.UTF-8", "HOME=/tmp", "A=b"]
        );
        assert_eq!(
            environment(&[], true),
            vec!["HOME=/workspace", "PYTHONUNBUFFERED=1", "LANG=C.UTF-8"]
        );
    }

    #[test]
    fn huge_limits_saturate() {
        assert_eq!(to_i64(u64::MAX), i64::MAX);
    }
}

//! The running Clara's view of its MCP servers, in `<servers_dir>/.status.json`:
//! what `clara mcp list` (another process) and the web page show as the live
//! state. The manager rewrites it when a server's state changes; a file whose
//! writer is no longer running is ignored.

use crate::supervisor::{ServerState, ServerStatus};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file's name in `servers_dir` (a dot file: not a server file).
pub const STATUS_FILE: &str = ".status.json";

/// What the file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// The Clara process that wrote it.
    pub pid: u32,
    /// When, in Unix milliseconds.
    pub written_at_ms: i64,
    /// Every server that process knows.
    pub servers: Vec<LiveServer>,
}

/// One server, as the running Clara sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveServer {
    /// Its name.
    pub name: String,
    /// `disabled`, `stopped`, `starting`, `ready`, `failed` or `needs_auth`.
    pub state: String,
    /// One line for people (`failed: … (retrying in 4 s)`).
    pub detail: String,
    /// Its tools, namespaced.
    pub tools: Vec<String>,
    /// Reconnections since it was first connected.
    pub restarts: u32,
    /// The process id of a stdio server.
    pub pid: Option<u32>,
}

impl LiveServer {
    fn of(status: &ServerStatus) -> Self {
        let state = match status.state {
            ServerState::Disabled => "disabled",
            ServerState::Stopped => "stopped",
            ServerState::Starting => "starting",
            ServerState::Ready { .. } => "ready",
            ServerState::Failed { .. } => "failed",
            ServerState::NeedsAuth { .. } => "needs_auth",
        };
        Self {
            name: status.name.clone(),
            state: state.to_owned(),
            detail: status.state.describe(),
            tools: status.tools.clone(),
            restarts: status.restarts,
            pid: status.pid,
        }
    }
}

/// The status file of `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(STATUS_FILE)
}

/// Writes `servers` as this process's live status (atomically: a reader never
/// sees half a file). Best effort: a failure is logged.
pub fn write(dir: &Path, servers: &[ServerStatus]) {
    let live = LiveStatus {
        pid: std::process::id(),
        written_at_ms: chrono::Utc::now().timestamp_millis(),
        servers: servers.iter().map(LiveServer::of).collect(),
    };
    let result = serde_json::to_vec_pretty(&live)
        .map_err(std::io::Error::other)
        .and_then(|json| {
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!("{STATUS_FILE}.{}", std::process::id()));
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, path(dir))
        });
    if let Err(error) = result {
        tracing::debug!(%error, dir = %dir.display(), "could not write the MCP status file");
    }
}

/// Removes this process's status file (at shutdown), if it is this process's.
pub fn remove(dir: &Path) {
    if read(dir).is_some_and(|live| live.pid == std::process::id()) {
        let _ = std::fs::remove_file(path(dir));
    }
}

/// The live status of `dir`, if a running Clara wrote it: `None` when there
/// is no file, it does not parse, or its writer is gone.
pub fn read(dir: &Path) -> Option<LiveStatus> {
    let text = std::fs::read(path(dir)).ok()?;
    let live: LiveStatus = serde_json::from_slice(&text).ok()?;
    alive(live.pid).then_some(live)
}

/// Whether process `pid` exists (Linux: `/proc/PID`; elsewhere assumed).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ServerConfig, Transport};

    #[test]
    fn a_written_status_reads_back_while_its_writer_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        let config = ServerConfig {
            name: "time".into(),
            command: Some("x".into()),
            args: Vec::new(),
            env: Default::default(),
            cwd: None,
            url: None,
            bearer_token: None,
            enabled: true,
            source: None,
        };
        let mut status = ServerStatus::new(&config, ServerState::Ready { tools: 2 });
        status.tools = vec!["time__a".into(), "time__b".into()];
        assert_eq!(status.transport, Transport::Stdio);
        write(dir.path(), &[status]);
        let live = read(dir.path()).expect("written by this process");
        assert_eq!(live.pid, std::process::id());
        assert_eq!(live.servers[0].state, "ready");
        assert_eq!(live.servers[0].detail, "ready, 2 tools");
        remove(dir.path());
        assert_eq!(read(dir.path()), None);

        // A file left by a process that is gone is not live.
        let stale = LiveStatus {
            pid: u32::MAX - 1,
            written_at_ms: 0,
            servers: Vec::new(),
        };
        std::fs::write(path(dir.path()), serde_json::to_vec(&stale).unwrap()).unwrap();
        assert_eq!(read(dir.path()), None);
    }
}

//! The seam: what a backend is asked to run, what it reports, and the
//! [`Sandbox`] trait every backend (bubblewrap, Docker) implements.
//!
//! A run is a command line inside an isolated system that sees only the
//! person's workspace (`/workspace`, persistent, a directory on the host) and
//! a fresh `/tmp`; no network unless the spec allows it; Clara's files, keys
//! and data directory invisible. Its output streams to the caller while it
//! runs; its end says how it ended, and which limit stopped it if one did.

use async_trait::async_trait;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// What one run may use before it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time; past it the whole process tree is killed.
    pub wall: Duration,
    /// CPU time (all processes of the run).
    pub cpu: Duration,
    /// Memory, in bytes.
    pub memory_bytes: u64,
    /// Processes and threads at once.
    pub processes: u32,
    /// The largest file the run may write, in bytes.
    pub file_bytes: u64,
}

impl Default for Limits {
    /// 900 s wall, 900 s CPU, 512 MiB, 64 processes, 256 MiB per file
    /// (shared/TOOLS.md §4).
    fn default() -> Self {
        Self {
            wall: Duration::from_secs(900),
            cpu: Duration::from_secs(900),
            memory_bytes: 512 * 1024 * 1024,
            processes: 64,
            file_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The command line inside the sandbox, e.g. `["python3", "/workspace/.clara/runs/x.py"]`.
    pub argv: Vec<String>,
    /// Bytes for its standard input (closed after them); `None` for none.
    pub stdin: Option<Vec<u8>>,
    /// The person's workspace on the host, seen inside as `/workspace` (also
    /// the working directory). It must exist.
    pub workspace: PathBuf,
    /// Extra environment inside (never Clara's own variables or keys).
    pub env: Vec<(String, String)>,
    /// The limits.
    pub limits: Limits,
    /// Whether the run may reach the network (the owner's setting; off by
    /// default).
    pub network: bool,
}

/// Which stream a chunk of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Output of a run as it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Where it came from.
    pub stream: Stream,
    /// The bytes (not necessarily whole lines or whole UTF-8 characters).
    pub bytes: Vec<u8>,
}

/// The limit that stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It ran past [`Limits::wall`]; the whole process tree was killed.
    WallTime,
    /// It used up [`Limits::cpu`].
    CpuTime,
    /// It ran out of [`Limits::memory_bytes`].
    Memory,
    /// It tried to start more than [`Limits::processes`].
    Processes,
    /// It tried to write a file larger than [`Limits::file_bytes`].
    FileSize,
}

impl Stopped {
    /// One sentence for the model.
    pub fn describe(self, limits: &Limits) -> String {
        match self {
            Self::WallTime => format!(
                "It was stopped after {} seconds, the time limit; every process it started was killed.",
                limits.wall.as_secs()
            ),
            Self::CpuTime => format!(
                "It was stopped after using {} seconds of CPU time, the limit.",
                limits.cpu.as_secs()
            ),
            Self::Memory => format!(
                "It was stopped for using more than {} MiB of memory, the limit.",
                limits.memory_bytes / (1024 * 1024)
            ),
            Self::Processes => format!(
                "It tried to start more than {} processes, the limit; the extra ones failed.",
                limits.processes
            ),
            Self::FileSize => format!(
                "It tried to write a file larger than {} MiB, the limit.",
                limits.file_bytes / (1024 * 1024)
            ),
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEnd {
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The limit that stopped it, when Clara can tell one did.
    pub stopped: Option<Stopped>,
    /// How long it took, start to exit.
    pub duration: Duration,
}

impl RunEnd {
    /// Whether it exited with 0 and no limit stopped it.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && self.stopped.is_none()
    }
}

/// Why a sandbox cannot run something. Never a reason to run it elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The backend does not work on this machine (bubblewrap missing or not
    /// allowed to make namespaces, no Docker engine): one sentence saying why.
    #[error("{0}")]
    Unavailable(String),
    /// This run could not be started or watched.
    #[error("{0}")]
    Failed(String),
}

/// A way to run code in isolation. Implementations: [`crate::bwrap::Bwrap`]
/// and (feature `docker`) [`crate::docker::Docker`].
#[async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// Its name in settings and messages: `bwrap`, `docker`.
    fn name(&self) -> &'static str;

    /// Checks that it works here and isolates as promised: runs a trivial
    /// command and checks that the network and the host's files are out of
    /// reach. Clara offers no code tools when this fails.
    async fn self_test(&self) -> Result<(), SandboxError>;

    /// Runs `spec`, sending its output to `output` as it comes (a full or
    /// closed channel never stalls the run: output is then dropped, the run
    /// goes on), and returns how it ended. Limits are enforced here: a run
    /// past its wall time is killed with every process it started.
    async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<Output>,
    ) -> Result<RunEnd, SandboxError>;
}

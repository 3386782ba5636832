//! The bubblewrap backend: each run is `bwrap` with every namespace
//! unshared (the network too unless the spec allows it), only `/usr`
//! read-only, the person's workspace at `/workspace`, a fresh `/tmp`, no
//! `/etc`, a clean environment and no capabilities; limits from
//! [`crate::limits`].
//!
//! The process tree: Clara → `/bin/sh` wrapper (joins the run's cgroups, sets
//! rlimits, execs) → `bwrap` (outside monitor, in its own process group) →
//! bwrap's init, PID 1 of the run's PID namespace → the command. Killing the
//! outer bwrap ends everything: `--die-with-parent` kills PID 1, and the
//! kernel kills a PID namespace with its init. The run's cgroup is the
//! backstop.

use crate::limits::{self, Cgroups, Evidence, LimitMethod, Rlimits, RunGroup};
use crate::run::{Limits, Output, RunEnd, RunSpec, Sandbox, SandboxError, Stream};
use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Where the read-only Python environment is bound; when a bind targets it,
/// its `bin` comes first in `PATH`.
pub const PYTHON_ENV_DIR: &str = "/opt/clara-py";

/// The workspace inside the sandbox.
pub const WORKSPACE: &str = "/workspace";

/// The shell that runs the wrapper (see [`limits::wrapper_argv`]).
const SH: &str = "/bin/sh";

/// How long a full output channel may hold a reader before output is
/// dropped instead.
const SEND_WAIT: Duration = Duration::from_millis(100);

/// The wall-time deadline when the limit is too large to add to now.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How often the run's total CPU time is checked (cgroups only).
const CPU_POLL: Duration = Duration::from_millis(250);

/// How long the output pipes may stay open after the run's processes are
/// gone (nothing should hold them; this only bounds a surprise).
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Host paths a network-enabled run needs for name resolution and TLS.
/// Without the network nothing from `/etc` is bound.
const NETWORK_ETC: [&str; 4] = [
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl/certs",
];

/// How the bubblewrap backend is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct BwrapConfig {
    /// The `bwrap` binary; `None` finds `bwrap` in `PATH`.
    pub bwrap: Option<PathBuf>,
    /// Extra read-only binds as (host path, sandbox path), e.g. the Python
    /// environment at [`PYTHON_ENV_DIR`]. A missing host path makes every
    /// run fail (and so the self-test), rather than run without it.
    pub read_only_binds: Vec<(PathBuf, PathBuf)>,
    /// The cgroup mount (normally `/sys/fs/cgroup`); `None` to use rlimits
    /// only.
    pub cgroup_root: Option<PathBuf>,
    /// CPUs a run may use at once (cgroups only); 0 for no rate limit.
    pub cpus: f64,
}

impl Default for BwrapConfig {
    /// `bwrap` from `PATH`, no extra binds, cgroups under `/sys/fs/cgroup`,
    /// one CPU (shared/TOOLS.md §4).
    fn default() -> Self {
        Self {
            bwrap: None,
            read_only_binds: Vec::new(),
            cgroup_root: Some(PathBuf::from("/sys/fs/cgroup")),
            cpus: 1.0,
        }
    }
}

/// What a top-level directory of the host is, to mirror it inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootEntry {
    /// A symlink (merged `/usr`: `/bin -> usr/bin`), recreated inside.
    Symlink {
        /// `/bin`.
        path: String,
        /// `usr/bin`.
        target: String,
    },
    /// A real directory (a system without merged `/usr`), bound read-only.
    Dir {
        /// `/lib`.
        path: String,
    },
}

/// The top-level directories programs need besides `/usr`.
const ROOT_DIRS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

/// Looks at the host's `/bin`, `/lib`… (absent ones are skipped).
pub fn host_root_entries() -> Vec<RootEntry> {
    ROOT_DIRS
        .iter()
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(path).ok()?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(path).ok()?;
                Some(RootEntry::Symlink {
                    path: (*path).to_owned(),
                    target: target.to_string_lossy().into_owned(),
                })
            } else if meta.is_dir() {
                Some(RootEntry::Dir {
                    path: (*path).to_owned(),
                })
            } else {
                None
            }
        })
        .collect()
}

/// The environment inside: a fixed base, then `extra` (which may override
/// it). Names must be non-empty and hold no `=` or NUL; values no NUL.
pub fn sandbox_env(
    binds: &[(PathBuf, PathBuf)],
    extra: &[(String, String)],
) -> Result<Vec<(String, String)>, SandboxError> {
    let has_python_env = binds
        .iter()
        .any(|(_, inside)| inside == Path::new(PYTHON_ENV_DIR));
    let path = if has_python_env {
        format!("{PYTHON_ENV_DIR}/bin:/usr/local/bin:/usr/bin:/bin")
    } else {
        "/usr/local/bin:/usr/bin:/bin".to_owned()
    };
    let mut env: Vec<(String, String)> = [
        ("PATH", path.as_str()),
        ("HOME", WORKSPACE),
        ("LANG", "C.UTF-8"),
        ("PYTHONUNBUFFERED", "1"),
        ("MPLBACKEND", "Agg"),
        // matplotlib wants a writable config/cache directory.
        ("MPLCONFIGDIR", "/tmp"),
        ("TMPDIR", "/tmp"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (key, value) in extra {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(SandboxError::Failed(format!(
                "{key:?} is not a valid environment variable name."
            )));
        }
        if value.contains('\0') {
            return Err(SandboxError::Failed(format!(
                "The value of the environment variable {key} contains a NUL byte."
            )));
        }
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    Ok(env)
}

/// bwrap's arguments for a run, up to and including `--` (the command
/// follows). Everything here is visible inside as `/proc/1/cmdline`, so it
/// must hold no secret.
pub fn bwrap_args(
    root: &[RootEntry],
    binds: &[(PathBuf, PathBuf)],
    workspace: &Path,
    network: bool,
    env: &[(String, String)],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    push(&["--unshare-all"]);
    if network {
        push(&["--share-net"]);
    }
    push(&[
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    for entry in root {
        match entry {
            RootEntry::Symlink { path, target } => push(&["--symlink", target, path]),
            RootEntry::Dir { path } => push(&["--ro-bind", path, path]),
        }
    }
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    if network {
        for path in NETWORK_ETC {
            push(&["--ro-bind-try", path, path]);
        }
    }
    for (host, inside) in binds {
        a.push("--ro-bind".into());
        a.push(host.into());
        a.push(inside.into());
    }
    a.push("--bind".into());
    a.push(workspace.into());
    a.push(WORKSPACE.into());
    a.extend(["--chdir", WORKSPACE, "--clearenv"].map(OsString::from));
    for (key, value) in env {
        a.extend(["--setenv", key, value].map(OsString::from));
    }
    a.push("--".into());
    a
}

/// Decodes bwrap's exit status into (exit code, signal).
///
/// bwrap reports a command killed by signal `n` as exit code `128 + n` (its
/// init, PID 1 inside, cannot die of the signal itself), so codes 129–192
/// are read as signals: a program that exits with such a code on purpose is
/// reported as killed by that signal. A signal on bwrap itself is Clara's
/// own kill.
pub fn decode_status(code: Option<i32>, signal: Option<i32>) -> (Option<i32>, Option<i32>) {
    match (code, signal) {
        (_, Some(sig)) => (None, Some(sig)),
        (Some(c), None) if (129..=192).contains(&c) => (None, Some(c - 128)),
        (Some(c), None) => (Some(c), None),
        (None, None) => (None, None),
    }
}

/// The bubblewrap sandbox.
#[derive(Debug)]
pub struct Bwrap {
    bwrap: Result<PathBuf, String>,
    binds: Vec<(PathBuf, PathBuf)>,
    root: Vec<RootEntry>,
    cgroups: Option<Cgroups>,
    prlimit: Option<PathBuf>,
    cpus: f64,
}

impl Bwrap {
    /// Sets the backend up: finds `bwrap`, looks at the host's root
    /// directories and decides how limits are enforced (making the
    /// `clara-sandbox` cgroup directories when it can). Never fails: whether
    /// it works is [`Sandbox::self_test`]'s question.
    pub fn new(config: BwrapConfig) -> Self {
        let bwrap = match config.bwrap {
            Some(path) if path.is_file() => Ok(path),
            Some(path) => Err(format!(
                "bubblewrap (bwrap) is not installed at {}",
                path.display()
            )),
            None => find_in_path("bwrap")
                .ok_or_else(|| "bubblewrap (bwrap) is not installed".to_owned()),
        };
        let cgroups = config.cgroup_root.as_deref().and_then(|root| {
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            match Cgroups::detect(root, &own) {
                Ok(c) => Some(c),
                Err(why) => {
                    tracing::debug!(%why, "sandbox limits: no usable cgroups, using rlimits");
                    None
                }
            }
        });
        let prlimit = find_in_path("prlimit");
        let me = Self {
            bwrap,
            binds: config.read_only_binds,
            root: host_root_entries(),
            cgroups,
            prlimit,
            cpus: config.cpus,
        };
        tracing::debug!(method = %me.limit_method(), bwrap = ?me.bwrap, "bubblewrap sandbox set up");
        if me.limit_method() == LimitMethod::Rlimits && me.prlimit.is_none() {
            tracing::warn!("prlimit is missing: sandbox runs get no process limit");
        }
        me
    }

    /// How limits are enforced here.
    pub fn limit_method(&self) -> LimitMethod {
        self.cgroups
            .as_ref()
            .map_or(LimitMethod::Rlimits, Cgroups::method)
    }

    /// The `bwrap` binary in use, when there is one.
    pub fn bwrap_path(&self) -> Option<&Path> {
        self.bwrap.as_deref().ok()
    }

    fn bwrap(&self) -> Result<&Path, SandboxError> {
        self.bwrap
            .as_deref()
            .map_err(|why| SandboxError::Unavailable(format!("{why}.")))
    }

    /// The whole host command line for `spec`, given the run's cgroup
    /// `cgroup.procs` files.
    fn command_line(
        &self,
        bwrap: &Path,
        spec: &RunSpec,
        env: &[(String, String)],
        procs_files: &[PathBuf],
    ) -> Vec<OsString> {
        let rlimits = Rlimits::new(&spec.limits, self.limit_method());
        let mut argv = limits::wrapper_argv(
            Path::new(SH),
            procs_files,
            &rlimits,
            self.prlimit.as_deref(),
        );
        argv.push(bwrap.into());
        argv.extend(bwrap_args(
            &self.root,
            &self.binds,
            &spec.workspace,
            spec.network,
            env,
        ));
        argv.extend(spec.argv.iter().map(OsString::from));
        argv
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A unique name for a run's cgroups: this process, the time, a counter.
fn run_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "run-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Why Clara killed a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Killed {
    WallTime,
    CpuTime,
}

/// Waits for the run to end, killing its whole tree at the wall-time limit
/// or (with a cgroup that counts CPU time) when all its processes together
/// have used up the CPU time.
async fn watch(
    child: &mut tokio::process::Child,
    group: Option<&RunGroup>,
    limits: &Limits,
) -> Result<(ExitStatus, Option<Killed>), SandboxError> {
    let pid = child.id();
    let now = tokio::time::Instant::now();
    let deadline = now
        .checked_add(limits.wall)
        .unwrap_or_else(|| now + FAR_FUTURE);
    let watch_cpu = group.is_some_and(|g| g.cpu_used().is_some());
    let mut tick = tokio::time::interval(CPU_POLL);
    let lost = |e: std::io::Error| SandboxError::Failed(format!("Could not watch the run: {e}."));
    let killed = loop {
        tokio::select! {
            biased;
            status = child.wait() => return Ok((status.map_err(lost)?, None)),
            () = tokio::time::sleep_until(deadline) => break Killed::WallTime,
            _ = tick.tick(), if watch_cpu => {
                if group.and_then(RunGroup::cpu_used).is_some_and(|u| u >= limits.cpu) {
                    break Killed::CpuTime;
                }
            }
        }
    };
    if let Ok(Some(status)) = child.try_wait() {
        // It ended on its own in the same instant.
        return Ok((status, None));
    }
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // Not reaped yet, so the process group ID is still the run's.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if let Some(g) = group {
        g.kill_all();
    }
    let status = child.wait().await.map_err(lost)?;
    Ok((status, Some(killed)))
}

#[async_trait]
impl Sandbox for Bwrap {
    fn name(&self) -> &'static str {
        "bwrap"
    }

    async fn self_test(&self) -> Result<(), SandboxError> {
        self_test(self).await
    }

    async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<Output>,
    ) -> Result<RunEnd, SandboxError> {
        let bwrap = self.bwrap()?;
        if spec.argv.is_empty() {
            return Err(SandboxError::Failed("The run has no command.".to_owned()));
        }
        if !spec.workspace.is_dir() {
            return Err(SandboxError::Failed(format!(
                "The workspace {} does not exist.",
                spec.workspace.display()
            )));
        }
        let env = sandbox_env(&self.binds, &spec.env)?;
        let group = match &self.cgroups {
            Some(cgroups) => Some(cgroups.create_run(&run_id(), &spec.limits, self.cpus)?),
            None => None,
        };
        let procs_files = group
            .as_ref()
            .map(RunGroup::procs_files)
            .unwrap_or_default();
        let argv = self.command_line(bwrap, &spec, &env, &procs_files);
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| SandboxError::Failed("The run has no command.".to_owned()))?;

        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            // Nothing of Clara's environment reaches the wrapper or bwrap;
            // both run outside the sandbox, so not even PATH (all paths are
            // absolute, the wrapper uses only builtins).
            .env_clear()
            .stdin(if spec.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            SandboxError::Failed(format!(
                "Could not start {}: {e}.",
                program.to_string_lossy()
            ))
        })?;

        if let (Some(bytes), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
            tokio::spawn(async move {
                // A program that does not read its input is fine.
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            });
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let readers =
            [
                child.stdout.take().map(|r| {
                    tokio::spawn(pump(r, Stream::Stdout, output.clone(), dropped.clone()))
                }),
                child.stderr.take().map(|r| {
                    tokio::spawn(pump(r, Stream::Stderr, output.clone(), dropped.clone()))
                }),
            ];
        drop(output);

        let (status, killed) = watch(&mut child, group.as_ref(), &spec.limits).await?;
        let duration = started.elapsed();

        for reader in readers.into_iter().flatten() {
            let abort = reader.abort_handle();
            if tokio::time::timeout(DRAIN_WAIT, reader).await.is_err() {
                abort.abort();
            }
        }
        let dropped = dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::debug!(
                dropped,
                "sandbox output dropped: the receiver was full or gone"
            );
        }

        let counters = group.as_ref().map(RunGroup::counters).unwrap_or_default();
        if let Some(g) = group {
            g.remove().await?;
        }
        let (exit_code, signal) = decode_status(status.code(), status.signal());
        let stopped = limits::stopped_by(&Evidence {
            wall_killed: killed == Some(Killed::WallTime),
            cpu_killed: killed == Some(Killed::CpuTime),
            signal,
            counters,
        });
        tracing::debug!(?exit_code, ?signal, ?stopped, ?duration, method = %self.limit_method(), "sandbox run ended");
        Ok(RunEnd {
            exit_code,
            signal,
            stopped,
            duration,
        })
    }
}

/// Reads `reader` to its end in chunks and forwards them; never stops early
/// because of the receiver.
async fn pump(
    mut reader: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::Sender<Output>,
    dropped: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 8192];
    let mut sink = Forward {
        tx: Some(tx),
        behind: false,
    };
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = Output {
            stream,
            bytes: buf[..n].to_vec(),
        };
        if !sink.send(chunk).await {
            dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// The sending half of [`pump`]: waits briefly for a full channel, but once
/// a wait has run out, only takes free slots until the receiver catches up,
/// so a stuck receiver costs at most one short wait.
struct Forward {
    tx: Option<mpsc::Sender<Output>>,
    behind: bool,
}

impl Forward {
    async fn send(&mut self, chunk: Output) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(chunk) {
            Ok(()) => {
                self.behind = false;
                true
            }
            Err(TrySendError::Closed(_)) => {
                self.tx = None;
                false
            }
            Err(TrySendError::Full(_)) if self.behind => false,
            Err(TrySendError::Full(chunk)) => {
                match tokio::time::timeout(SEND_WAIT, tx.send(chunk)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => {
                        self.tx = None;
                        false
                    }
                    Err(_) => {
                        self.behind = true;
                        false
                    }
                }
            }
        }
    }
}

/// The self-test's isolation probe, run by `/bin/sh` inside: `$1` is a host
/// path that must not be visible, `$2` a host port on 127.0.0.1 that must
/// not be reachable, `$3` the Python network probe. Prints one line per
/// problem, then [`PROBE_DONE`].
const PROBE_SH: &str = r#"
[ -e /etc ] && echo "the host's /etc is visible inside"
[ -e /home ] && echo "the host's /home is visible inside"
[ -e /root ] && echo "the host's /root is visible inside"
[ -e "$1" ] && echo "the host's files are visible inside"
[ "$(id -u)" = 1000 ] || echo "the sandbox does not run as an unprivileged user"
touch /usr/.clara-self-test 2>/dev/null && echo "/usr is writable inside"
if command -v python3 >/dev/null 2>&1; then
  python3 -c "$3" "$2" || echo "python3 does not run inside"
fi
echo clara-self-test-done
"#;

/// The last line of a probe that ran to its end.
const PROBE_DONE: &str = "clara-self-test-done";

/// Tries a TCP connection to the host's loopback (`argv[1]` is the port)
/// and to a private address; both must fail without the network.
const PROBE_PY: &str = r#"
import socket, sys
for host, port in (("127.0.0.1", int(sys.argv[1])), ("10.0.0.1", 80)):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        print(f"the network is reachable inside ({host}:{port})")
    except OSError:
        pass
    finally:
        s.close()
"#;

/// The limits of the self-test's runs: small, but enough for Python to start.
fn self_test_limits() -> Limits {
    Limits {
        wall: Duration::from_secs(30),
        cpu: Duration::from_secs(10),
        memory_bytes: 256 * 1024 * 1024,
        processes: 16,
        file_bytes: 1024 * 1024,
    }
}

/// A scratch directory for the self-test, removed on drop: `ws` is the
/// workspace, `marker` a file beside it that must stay invisible.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, SandboxError> {
        let dir = std::env::temp_dir().join(format!("clara-sandbox-self-test-{}", run_id()));
        let make = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("ws"))?;
            std::fs::write(dir.join("marker"), "host only")
        };
        make().map_err(|e| {
            SandboxError::Failed(format!(
                "Could not make the self-test directory {}: {e}.",
                dir.display()
            ))
        })?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `argv` in `workspace` and collects everything it printed.
async fn run_collect(
    sandbox: &Bwrap,
    argv: Vec<String>,
    workspace: &Path,
) -> Result<(RunEnd, String, String), SandboxError> {
    let (tx, mut rx) = mpsc::channel::<Output>(64);
    let collector = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = rx.recv().await {
            match chunk.stream {
                Stream::Stdout => out.extend(chunk.bytes),
                Stream::Stderr => err.extend(chunk.bytes),
            }
        }
        (out, err)
    });
    let spec = RunSpec {
        argv,
        stdin: None,
        workspace: workspace.to_path_buf(),
        env: Vec::new(),
        limits: self_test_limits(),
        network: false,
    };
    let end = sandbox.run(spec, tx).await?;
    let (out, err) = collector
        .await
        .map_err(|e| SandboxError::Failed(format!("The self-test's output was lost: {e}.")))?;
    Ok((
        end,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// The first non-empty line of `text`, or how the run ended.
fn first_line(text: &str, end: &RunEnd) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(
            || match (end.exit_code, end.signal) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                (None, None) => "no exit status".to_owned(),
            },
            str::to_owned,
        )
}

/// Why bubblewrap could not start a trivial command, from its stderr.
pub fn start_failure(stderr: &str, end: &RunEnd) -> String {
    let line = first_line(stderr, end);
    if line.contains("namespace") || line.contains("Operation not permitted") {
        format!("bubblewrap cannot create a user namespace here ({line}).")
    } else {
        format!("bubblewrap cannot start a sandbox here ({line}).")
    }
}

async fn self_test(sandbox: &Bwrap) -> Result<(), SandboxError> {
    sandbox.bwrap()?;
    let scratch = Scratch::new()?;
    let workspace = scratch.0.join("ws");

    let (end, _, stderr) = run_collect(sandbox, vec!["true".to_owned()], &workspace).await?;
    if !end.success() {
        return Err(SandboxError::Unavailable(start_failure(&stderr, &end)));
    }

    // A listener on the host's loopback that the sandbox must not reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr().map(|a| (l, a.port())))
        .map_err(|e| {
            SandboxError::Failed(format!("The self-test could not listen on 127.0.0.1: {e}."))
        })?;
    let argv = [
        "sh",
        "-c",
        PROBE_SH,
        "sh",
        &scratch.0.join("marker").to_string_lossy(),
        &listener.1.to_string(),
        PROBE_PY,
    ]
    .map(str::to_owned)
    .to_vec();
    let (end, stdout, stderr) = run_collect(sandbox, argv, &workspace).await?;
    drop(listener);
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(problem) = lines.iter().find(|l| **l != PROBE_DONE) {
        return Err(SandboxError::Unavailable(format!(
            "The sandbox does not isolate as it should: {problem}."
        )));
    }
    if lines.last() != Some(&PROBE_DONE) {
        return Err(SandboxError::Unavailable(format!(
            "The sandbox's isolation check did not finish ({}).",
            first_line(&stderr, &end)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn merged_usr() -> Vec<RootEntry> {
        vec![
            RootEntry::Symlink {
                path: "/bin".into(),
                target: "usr/bin".into(),
            },
            RootEntry::Dir {
                path: "/lib64".into(),
            },
        ]
    }

    #[test]
    fn args_without_network() {
        let env = vec![("HOME".to_owned(), "/workspace".to_owned())];
        let binds = vec![(PathBuf::from("/srv/py"), PathBuf::from(PYTHON_ENV_DIR))];
        let args = strings(&bwrap_args(
            &merged_usr(),
            &binds,
            Path::new("/data/ws/alice"),
            false,
            &env,
        ));
        let joined = args.join(" ");
        assert!(joined.starts_with(
            "--unshare-all --die-with-parent --new-session --cap-drop ALL --uid 1000 --gid 1000 \
             --hostname sandbox --ro-bind /usr /usr --symlink usr/bin /bin --ro-bind /lib64 /lib64 \
             --proc /proc --dev /dev --tmpfs /tmp --ro-bind /srv/py /opt/clara-py \
             --bind /data/ws/alice /workspace --chdir /workspace --clearenv --setenv HOME /workspace --"
        ), "{joined}");
        assert_eq!(args.last().map(String::as_str), Some("--"));
        assert!(!args.contains(&"--share-net".to_owned()));
        assert!(!joined.contains("/etc"));
    }

    #[test]
    fn args_with_network_share_it_and_bind_name_resolution() {
        let args = strings(&bwrap_args(&[], &[], Path::new("/w"), true, &[]));
        assert_eq!(&args[..2], ["--unshare-all", "--share-net"]);
        let joined = args.join(" ");
        assert!(joined.contains("--ro-bind-try /etc/resolv.conf /etc/resolv.conf"));
        assert!(joined.contains("--ro-bind-try /etc/ssl/certs /etc/ssl/certs"));
        assert!(!joined.contains("/etc/passwd"));
    }

    #[test]
    fn env_has_the_base_and_the_python_env_path() {
        let env = sandbox_env(&[], &[]).unwrap();
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(&env, "PATH").as_deref(),
            Some("/usr/local/bin:/usr/bin:/bin")
        );
        assert_eq!(get(&env, "HOME").as_deref(), Some("/workspace"));
        assert_eq!(get(&env, "PYTHONUNBUFFERED").as_deref(), Some("1"));
        assert_eq!(get(&env, "MPLBACKEND").as_deref(), Some("Agg"));
        assert_eq!(get(&env, "MPLCONFIGDIR").as_deref(), Some("/tmp"));
        assert_eq!(get(&env, "LANG").as_deref(), Some("C.UTF-8"));

        let binds = vec![(PathBuf::from("/srv/py"), PathBuf::from(PYTHON_ENV_DIR))];
        let extra = vec![
            ("FOO".to_owned(), "bar".to_owned()),
            ("LANG".to_owned(), "de_DE.UTF-8".to_owned()),
        ];
        let env = sandbox_env(&binds, &extra).unwrap();
        assert_eq!(
            get(&env, "PATH").as_deref(),
            Some("/opt/clara-py/bin:/usr/local/bin:/usr/bin:/bin")
        );
        assert_eq!(get(&env, "FOO").as_deref(), Some("bar"));
        assert_eq!(get(&env, "LANG").as_deref(), Some("de_DE.UTF-8"));
        assert_eq!(env.iter().filter(|(k, _)| k == "LANG").count(), 1);
    }

    #[test]
    fn env_rejects_bad_names_and_values() {
        for bad in [("", "x"), ("A=B", "x"), ("A\0", "x"), ("A", "x\0y")] {
            let extra = vec![(bad.0.to_owned(), bad.1.to_owned())];
            assert!(
                matches!(sandbox_env(&[], &extra), Err(SandboxError::Failed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn decodes_exit_statuses() {
        assert_eq!(decode_status(Some(0), None), (Some(0), None));
        assert_eq!(decode_status(Some(1), None), (Some(1), None));
        assert_eq!(decode_status(Some(128), None), (Some(128), None));
        assert_eq!(decode_status(Some(137), None), (None, Some(9)));
        assert_eq!(decode_status(Some(152), None), (None, Some(24)));
        assert_eq!(decode_status(Some(153), None), (None, Some(25)));
        assert_eq!(decode_status(Some(200), None), (Some(200), None));
        assert_eq!(decode_status(None, Some(9)), (None, Some(9)));
        assert_eq!(decode_status(None, None), (None, None));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), run_id());
    }

    #[tokio::test]
    async fn forward_drops_when_full_and_stops_when_closed() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut f = Forward {
            tx: Some(tx),
            behind: false,
        };
        let chunk = |b: &[u8]| Output {
            stream: Stream::Stdout,
            bytes: b.to_vec(),
        };
        assert!(f.send(chunk(b"a")).await);
        // Full: one short wait, then dropped, and later ones dropped at once.
        assert!(!f.send(chunk(b"b")).await);
        assert!(f.behind);
        assert!(!f.send(chunk(b"c")).await);
        assert_eq!(rx.recv().await.map(|o| o.bytes), Some(b"a".to_vec()));
        assert!(f.send(chunk(b"d")).await);
        assert!(!f.behind);
        drop(rx);
        assert!(!f.send(chunk(b"e")).await);
        assert!(f.tx.is_none());
    }
}

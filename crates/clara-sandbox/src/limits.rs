//! Resource limits for a bubblewrap run, and how Clara tells which one
//! stopped it.
//!
//! Two mechanisms, chosen once when the backend is built:
//!
//! - **cgroups** (Clara is root and a hierarchy is usable): one group per run
//!   with a memory, process and CPU-rate limit; the counters the kernel keeps
//!   there (`oom_kill`, `pids.events max`, CPU usage) say afterwards which
//!   limit was hit, and `cgroup.procs` lists every process to kill.
//!   On cgroup v1 the run's groups are made under Clara's *own* group of each
//!   hierarchy (so limits set on Clara, e.g. by its service manager, still
//!   cover the runs); on v2 under `<cgroup root>/clara-sandbox`, which must be
//!   a subtree where Clara may enable controllers.
//! - **rlimits** otherwise: address space and process count per user, set by
//!   the shell wrapper (and `prlimit` for the process count).
//!
//! In both cases `RLIMIT_CPU` and `RLIMIT_FSIZE` are set too. The child
//! cannot be moved into its groups from Rust without `pre_exec` (and the
//! workspace denies `unsafe_code`), so a small `/bin/sh` wrapper writes its
//! own PID into each `cgroup.procs`, sets the rlimits and then execs bwrap:
//! see [`wrapper_argv`].

use crate::run::{Limits, SandboxError, Stopped};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory under which each run gets its group.
const GROUP_DIR: &str = "clara-sandbox";

/// Processes bubblewrap itself keeps in the run's group (the outer monitor and
/// the PID-namespace init), added to [`Limits::processes`] so the run gets
/// the number it was promised.
pub const BWRAP_PROCESSES: u32 = 2;

/// Seconds between `SIGXCPU` (soft `RLIMIT_CPU`) and `SIGKILL` (hard), so a
/// program that catches `SIGXCPU` still ends.
const CPU_HARD_GRACE_SECS: u64 = 2;

/// The largest `RLIMIT_CPU` Clara sets (about a century): every shell
/// accepts it, and the hard limit above it cannot overflow.
const MAX_CPU_SECS: u64 = 1 << 32;

/// The CFS period used for the CPU-rate limit, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// Which mechanism enforces the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitMethod {
    /// A group per run in each cgroup v1 hierarchy (memory, pids, cpu,
    /// cpuacct), plus `RLIMIT_CPU` and `RLIMIT_FSIZE`.
    CgroupV1,
    /// A group per run in the cgroup v2 tree, plus `RLIMIT_CPU` and
    /// `RLIMIT_FSIZE`.
    CgroupV2,
    /// Only rlimits: `RLIMIT_AS`, `RLIMIT_NPROC`, `RLIMIT_CPU`, `RLIMIT_FSIZE`.
    /// Memory and process stops are then not reported (the program sees
    /// failed allocations and forks instead).
    Rlimits,
}

impl fmt::Display for LimitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CgroupV1 => "cgroup v1",
            Self::CgroupV2 => "cgroup v2",
            Self::Rlimits => "rlimits",
        })
    }
}

/// A cgroup controller Clara uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// Memory limit and OOM-kill count.
    Memory,
    /// Process limit and the count of refused forks.
    Pids,
    /// CPU rate (and, on v2, CPU usage).
    Cpu,
    /// CPU usage (v1 only).
    CpuAcct,
}

impl Controller {
    /// Its name in `/proc/self/cgroup` and `cgroup.controllers`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Pids => "pids",
            Self::Cpu => "cpu",
            Self::CpuAcct => "cpuacct",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "memory" => Some(Self::Memory),
            "pids" => Some(Self::Pids),
            "cpu" => Some(Self::Cpu),
            "cpuacct" => Some(Self::CpuAcct),
            _ => None,
        }
    }
}

/// One line of `/proc/<pid>/cgroup`: `id:controllers:path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupLine {
    /// The controllers of that hierarchy (`memory`, or `cpu,cpuacct` as two
    /// entries); empty for the v2 hierarchy.
    pub controllers: Vec<String>,
    /// The process's group in it, e.g. `/` or `/system.slice/clara.service`.
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`; lines it cannot read are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(CgroupLine {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line),
/// such as `memory.oom_control`, `memory.events`, `pids.events`, `cpu.stat`.
pub fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == key).then_some(())?;
        parts.next()?.parse().ok()
    })
}

/// `cpu.max` (v2) for `cpus` CPUs: `"<quota> <period>"`, or `"max <period>"`
/// for no limit (zero, negative or not a number).
pub fn cpu_max(cpus: f64) -> String {
    match cpu_quota_us(cpus) {
        Some(quota) => format!("{quota} {CPU_PERIOD_US}"),
        None => format!("max {CPU_PERIOD_US}"),
    }
}

/// The CFS quota in microseconds per [`CPU_PERIOD_US`] for `cpus` CPUs;
/// `None` for no limit. Never below 1 ms, the kernel's minimum.
fn cpu_quota_us(cpus: f64) -> Option<u64> {
    if !(cpus.is_finite() && cpus > 0.0) {
        return None;
    }
    // Truncation is fine: a quota is a whole number of microseconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let quota = (cpus * CPU_PERIOD_US as f64) as u64;
    Some(quota.max(1_000))
}

/// What the kernel counted in a run's groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Processes the OOM killer ended for the memory limit.
    pub oom_kills: u64,
    /// Forks refused by the process limit.
    pub pids_refused: u64,
    /// CPU time used by all of the run's processes, when known.
    pub cpu_used: Option<Duration>,
}

/// Everything known at the end of a run, for [`stopped_by`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Clara killed it at the wall-time limit.
    pub wall_killed: bool,
    /// Clara killed it because all its processes together used up the CPU
    /// time.
    pub cpu_killed: bool,
    /// The signal that ended it (decoded from bwrap's status).
    pub signal: Option<i32>,
    /// The cgroup counters (all zero without cgroups).
    pub counters: Counters,
}

/// Which limit stopped a run, from what was seen.
///
/// Direct causes first (a limit signal, a kill by Clara for CPU time, an OOM
/// kill), then the refused forks (a fork bomb keeps going until the wall
/// time; the process limit is the more useful thing to report), wall time
/// last.
pub fn stopped_by(e: &Evidence) -> Option<Stopped> {
    let xcpu = Signal::SIGXCPU as i32;
    let xfsz = Signal::SIGXFSZ as i32;
    if e.signal == Some(xcpu) || e.cpu_killed {
        Some(Stopped::CpuTime)
    } else if e.signal == Some(xfsz) {
        Some(Stopped::FileSize)
    } else if e.counters.oom_kills > 0 {
        Some(Stopped::Memory)
    } else if e.counters.pids_refused > 0 {
        Some(Stopped::Processes)
    } else if e.wall_killed {
        Some(Stopped::WallTime)
    } else {
        None
    }
}

/// The rlimits the wrapper sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimits {
    /// Soft `RLIMIT_CPU` in seconds (`SIGXCPU`); the hard one is a little
    /// higher (`SIGKILL`).
    pub cpu_secs: u64,
    /// `RLIMIT_FSIZE` in bytes.
    pub file_bytes: u64,
    /// `RLIMIT_AS` in bytes, when memory has no cgroup.
    pub address_space: Option<u64>,
    /// `RLIMIT_NPROC`, when processes have no cgroup.
    pub processes: Option<u32>,
}

impl Rlimits {
    /// The rlimits for `limits` under `method`.
    pub fn new(limits: &Limits, method: LimitMethod) -> Self {
        let cpu_secs = limits
            .cpu
            .as_secs()
            .saturating_add(u64::from(limits.cpu.subsec_nanos() > 0));
        let only_rlimits = method == LimitMethod::Rlimits;
        Self {
            cpu_secs: cpu_secs.clamp(1, MAX_CPU_SECS),
            file_bytes: limits.file_bytes,
            address_space: only_rlimits.then_some(limits.memory_bytes),
            processes: only_rlimits.then_some(limits.processes.saturating_add(BWRAP_PROCESSES)),
        }
    }
}

/// Quotes `s` for `/bin/sh` (single quotes; a `'` inside becomes `'\''`).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command that joins the run's groups, sets the rlimits and then execs
/// the rest of the command line (append bwrap and its arguments).
///
/// `sh -c '<script>' sh [prlimit --nproc=N --]`: the script writes the
/// shell's own PID (`$$`, which the exec keeps) into each `cgroup.procs`, sets
/// the rlimits with the `ulimit` letters that dash, bash and busybox share
/// (`-t`, `-f` in 512-byte blocks, `-v` in KiB), and `exec "$@"`.
/// `RLIMIT_NPROC` has no portable `ulimit` letter, so it goes through
/// `prlimit` when that is available (and is left out otherwise).
pub fn wrapper_argv(
    sh: &Path,
    procs_files: &[PathBuf],
    rlimits: &Rlimits,
    prlimit: Option<&Path>,
) -> Vec<OsString> {
    let mut steps: Vec<String> = procs_files
        .iter()
        .map(|f| format!("echo $$ > {}", sh_quote(&f.to_string_lossy())))
        .collect();
    // Soft before hard: lowering the hard limit below the current soft one
    // (unlimited) is refused.
    steps.push(format!("ulimit -S -t {}", rlimits.cpu_secs));
    steps.push(format!(
        "ulimit -H -t {}",
        rlimits.cpu_secs + CPU_HARD_GRACE_SECS
    ));
    steps.push(format!("ulimit -f {}", (rlimits.file_bytes / 512).max(1)));
    if let Some(bytes) = rlimits.address_space {
        steps.push(format!("ulimit -v {}", (bytes / 1024).max(1)));
    }
    steps.push("exec \"$@\"".to_owned());
    let mut argv: Vec<OsString> = vec![
        sh.into(),
        "-c".into(),
        steps.join(" && ").into(),
        "sh".into(),
    ];
    if let (Some(prlimit), Some(n)) = (prlimit, rlimits.processes) {
        argv.push(prlimit.into());
        argv.push(format!("--nproc={n}").into());
        argv.push("--".into());
    }
    argv
}

/// A usable cgroup hierarchy: the directories under which runs get groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroups {
    version: LimitMethod,
    /// One directory per hierarchy (v1) or one (v2), with its controllers.
    bases: Vec<(Vec<Controller>, PathBuf)>,
}

impl Cgroups {
    /// Finds a usable hierarchy under `root` (normally `/sys/fs/cgroup`) for
    /// a process whose `/proc/self/cgroup` is `self_cgroup`, and makes the
    /// `clara-sandbox` directories. Needs root; `Err` says in one sentence
    /// why cgroups cannot be used.
    pub fn detect(root: &Path, self_cgroup: &str) -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("Clara is not running as root".to_owned());
        }
        let lines = parse_proc_cgroup(self_cgroup);
        if root.join("cgroup.controllers").is_file() {
            return Self::detect_v2(root);
        }
        Self::detect_v1(root, &lines)
    }

    fn detect_v1(root: &Path, lines: &[CgroupLine]) -> Result<Self, String> {
        let mut bases: Vec<(Vec<Controller>, PathBuf)> = Vec::new();
        for line in lines {
            let controllers: Vec<Controller> = line
                .controllers
                .iter()
                .filter_map(|c| Controller::from_name(c))
                .collect();
            if controllers.is_empty() {
                continue;
            }
            let Some(mount) = v1_mount(root, &line.controllers) else {
                continue;
            };
            // Inside a container without a cgroup namespace the mount shows
            // the container's own group as its root, so Clara's path from
            // /proc/self/cgroup is not below it: use the mount itself then.
            let own = mount.join(line.path.trim_start_matches('/'));
            let parent = if own.is_dir() { own } else { mount };
            let base = parent.join(GROUP_DIR);
            if std::fs::create_dir_all(&base).is_err() {
                continue;
            }
            if bases.iter().any(|(_, b)| same_dir(b, &base)) {
                continue;
            }
            bases.push((controllers, base));
        }
        let has = |c: Controller| bases.iter().any(|(cs, _)| cs.contains(&c));
        if !has(Controller::Memory) || !has(Controller::Pids) {
            return Err(format!(
                "no writable cgroup v1 memory and pids hierarchies under {}",
                root.display()
            ));
        }
        Ok(Self {
            version: LimitMethod::CgroupV1,
            bases,
        })
    }

    fn detect_v2(root: &Path) -> Result<Self, String> {
        let available =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let wanted = [Controller::Memory, Controller::Pids, Controller::Cpu];
        let mut controllers = Vec::new();
        for c in wanted {
            if available.split_whitespace().any(|a| a == c.name()) {
                controllers.push(c);
            }
        }
        let base = root.join(GROUP_DIR);
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        // Controllers must be enabled in the parent's and the base's subtree
        // for the run groups to get their files; this fails in a group that
        // holds processes itself (the "no internal processes" rule).
        for dir in [root, base.as_path()] {
            let file = dir.join("cgroup.subtree_control");
            for c in &controllers {
                let _ = std::fs::write(&file, format!("+{}", c.name()));
            }
        }
        let enabled =
            std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
        controllers.retain(|c| enabled.split_whitespace().any(|e| e == c.name()));
        if !controllers.contains(&Controller::Memory) || !controllers.contains(&Controller::Pids) {
            return Err(format!(
                "the memory and pids controllers cannot be enabled under {}",
                root.display()
            ));
        }
        Ok(Self {
            version: LimitMethod::CgroupV2,
            bases: vec![(controllers, base)],
        })
    }

    /// [`LimitMethod::CgroupV1`] or [`LimitMethod::CgroupV2`].
    pub fn method(&self) -> LimitMethod {
        self.version
    }

    /// The directories under which run groups are made.
    pub fn bases(&self) -> impl Iterator<Item = &Path> {
        self.bases.iter().map(|(_, b)| b.as_path())
    }

    /// Makes the groups of run `run_id` and writes `limits` (and a CPU rate
    /// of `cpus` CPUs) into them.
    pub fn create_run(
        &self,
        run_id: &str,
        limits: &Limits,
        cpus: f64,
    ) -> Result<RunGroup, SandboxError> {
        let mut group = RunGroup {
            version: self.version,
            dirs: Vec::new(),
            removed: false,
        };
        for (controllers, base) in &self.bases {
            let dir = base.join(run_id);
            std::fs::create_dir(&dir).map_err(|e| {
                SandboxError::Failed(format!(
                    "Could not create the run's cgroup {}: {e}.",
                    dir.display()
                ))
            })?;
            // Pushed before the writes, so a failed write still removes it.
            group.dirs.push((controllers.clone(), dir.clone()));
            for c in controllers {
                write_limits(self.version, *c, &dir, limits, cpus)?;
            }
        }
        Ok(group)
    }
}

/// The mount of a v1 hierarchy: `root/cpu,cpuacct` for co-mounted
/// controllers, or `root/<name>`.
fn v1_mount(root: &Path, controllers: &[String]) -> Option<PathBuf> {
    std::iter::once(controllers.join(","))
        .chain(controllers.iter().cloned())
        .map(|name| root.join(name))
        .find(|p| p.join("cgroup.procs").is_file())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn write_limits(
    version: LimitMethod,
    controller: Controller,
    dir: &Path,
    limits: &Limits,
    cpus: f64,
) -> Result<(), SandboxError> {
    let pids = u64::from(limits.processes) + u64::from(BWRAP_PROCESSES);
    let memory = limits.memory_bytes.to_string();
    match (version, controller) {
        (LimitMethod::CgroupV1, Controller::Memory) => {
            write_file(dir, "memory.limit_in_bytes", &memory)?;
            // Memory plus swap, so the run cannot swap its way past the
            // limit; absent when swap accounting is off.
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), &memory);
        }
        (LimitMethod::CgroupV1, Controller::Pids) | (LimitMethod::CgroupV2, Controller::Pids) => {
            write_file(dir, "pids.max", &pids.to_string())?;
        }
        (LimitMethod::CgroupV1, Controller::Cpu) => {
            if let Some(quota) = cpu_quota_us(cpus) {
                write_file(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
                write_file(dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        (LimitMethod::CgroupV2, Controller::Memory) => {
            write_file(dir, "memory.max", &memory)?;
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        }
        (LimitMethod::CgroupV2, Controller::Cpu) => {
            write_file(dir, "cpu.max", &cpu_max(cpus))?;
        }
        _ => {}
    }
    Ok(())
}

fn write_file(dir: &Path, name: &str, value: &str) -> Result<(), SandboxError> {
    std::fs::write(dir.join(name), value).map_err(|e| {
        SandboxError::Failed(format!(
            "Could not set {name} in the run's cgroup {}: {e}.",
            dir.display()
        ))
    })
}

/// The groups of one run. Dropping it without [`RunGroup::remove`] kills
/// what is left in them and removes them from a background thread.
#[derive(Debug)]
pub struct RunGroup {
    version: LimitMethod,
    dirs: Vec<(Vec<Controller>, PathBuf)>,
    removed: bool,
}

impl RunGroup {
    /// The `cgroup.procs` files the wrapper writes its PID into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect()
    }

    fn dir_of(&self, c: Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(cs, _)| cs.contains(&c))
            .map(|(_, d)| d.as_path())
    }

    fn read(&self, c: Controller, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir_of(c)?.join(file)).ok()
    }

    /// CPU time used so far by all of the run's processes, when a
    /// hierarchy counts it.
    pub fn cpu_used(&self) -> Option<Duration> {
        match self.version {
            LimitMethod::CgroupV2 => {
                let usec = flat_keyed(&self.read(Controller::Cpu, "cpu.stat")?, "usage_usec")?;
                Some(Duration::from_micros(usec))
            }
            _ => {
                let ns = self
                    .read(Controller::CpuAcct, "cpuacct.usage")?
                    .trim()
                    .parse()
                    .ok()?;
                Some(Duration::from_nanos(ns))
            }
        }
    }

    /// The kernel's counters for the run so far.
    pub fn counters(&self) -> Counters {
        let (oom_file, oom_key) = match self.version {
            LimitMethod::CgroupV2 => ("memory.events", "oom_kill"),
            _ => ("memory.oom_control", "oom_kill"),
        };
        Counters {
            oom_kills: self
                .read(Controller::Memory, oom_file)
                .and_then(|t| flat_keyed(&t, oom_key))
                .unwrap_or(0),
            pids_refused: self
                .read(Controller::Pids, "pids.events")
                .and_then(|t| flat_keyed(&t, "max"))
                .unwrap_or(0),
            cpu_used: self.cpu_used(),
        }
    }

    /// Sends `SIGKILL` to every process in the run's groups; returns how many
    /// were signalled.
    pub fn kill_all(&self) -> usize {
        kill_dirs(&self.dirs)
    }

    /// Kills what is left and removes the groups, waiting (up to a few
    /// seconds) until the kernel has let every process go.
    pub async fn remove(mut self) -> Result<(), SandboxError> {
        self.removed = true;
        let dirs = std::mem::take(&mut self.dirs);
        for _ in 0..REMOVE_ATTEMPTS {
            if try_remove(&dirs) {
                return Ok(());
            }
            tokio::time::sleep(REMOVE_PAUSE).await;
        }
        let left: Vec<String> = dirs
            .iter()
            .filter(|(_, d)| d.exists())
            .map(|(_, d)| d.display().to_string())
            .collect();
        Err(SandboxError::Failed(format!(
            "The run's cgroups could not be removed, processes may remain: {}.",
            left.join(", ")
        )))
    }
}

const REMOVE_ATTEMPTS: u32 = 250;
const REMOVE_PAUSE: Duration = Duration::from_millis(20);

/// Kills what is in `dirs`, then tries to remove each; true when all are gone.
fn try_remove(dirs: &[(Vec<Controller>, PathBuf)]) -> bool {
    kill_dirs(dirs);
    let mut all = true;
    for (_, dir) in dirs {
        if dir.exists() && std::fs::remove_dir(dir).is_err() {
            all = false;
        }
    }
    all
}

fn kill_dirs(dirs: &[(Vec<Controller>, PathBuf)]) -> usize {
    let mut n = 0;
    for (_, dir) in dirs {
        // v2 (5.14+): one write kills the whole group, racing no fork.
        if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
            continue;
        }
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // The PID was just listed in the run's group, whose processes
            // Clara is entitled to end; a process that exited meanwhile is
            // simply not found.
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                n += 1;
            }
        }
    }
    n
}

impl Drop for RunGroup {
    fn drop(&mut self) {
        if self.removed || self.dirs.is_empty() {
            return;
        }
        let dirs = std::mem::take(&mut self.dirs);
        kill_dirs(&dirs);
        // Dropped mid-run (the caller's future was cancelled): the kernel
        // needs a moment to let the killed processes go before rmdir works.
        std::thread::spawn(move || {
            for _ in 0..REMOVE_ATTEMPTS {
                if try_remove(&dirs) {
                    return;
                }
                std::thread::sleep(REMOVE_PAUSE);
            }
            tracing::warn!(?dirs, "the cgroups of a cancelled run could not be removed");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_cgroup_v1_and_v2_lines() {
        let text = "12:cpu,cpuacct:/\n4:memory:/process_api/abc\n0::/user.slice\nnonsense\n";
        let lines = parse_proc_cgroup(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(lines[0].path, "/");
        assert_eq!(lines[1].controllers, vec!["memory"]);
        assert_eq!(lines[1].path, "/process_api/abc");
        assert!(lines[2].controllers.is_empty());
        assert_eq!(lines[2].path, "/user.slice");
    }

    #[test]
    fn reads_flat_keyed_files() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(flat_keyed(oom, "oom_kill"), Some(1));
        assert_eq!(flat_keyed(oom, "oom"), None);
        let events = "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(flat_keyed(events, "oom_kill"), Some(2));
        assert_eq!(flat_keyed(events, "max"), Some(7));
        assert_eq!(flat_keyed("max 0\n", "max"), Some(0));
        assert_eq!(
            flat_keyed("usage_usec 1234\nuser_usec 1000\n", "usage_usec"),
            Some(1234)
        );
        assert_eq!(flat_keyed("max x\n", "max"), None);
    }

    #[test]
    fn cpu_max_values() {
        assert_eq!(cpu_max(1.0), "100000 100000");
        assert_eq!(cpu_max(0.5), "50000 100000");
        assert_eq!(cpu_max(0.0001), "1000 100000");
        assert_eq!(cpu_max(0.0), "max 100000");
        assert_eq!(cpu_max(f64::NAN), "max 100000");
    }

    #[test]
    fn stop_reasons_in_order() {
        let none = Evidence::default();
        assert_eq!(stopped_by(&none), None);
        let wall = Evidence {
            wall_killed: true,
            signal: Some(9),
            ..Evidence::default()
        };
        assert_eq!(stopped_by(&wall), Some(Stopped::WallTime));
        let bomb = Evidence {
            counters: Counters {
                pids_refused: 3,
                ..Counters::default()
            },
            ..wall
        };
        assert_eq!(stopped_by(&bomb), Some(Stopped::Processes));
        let oom = Evidence {
            signal: Some(9),
            counters: Counters {
                oom_kills: 1,
                ..Counters::default()
            },
            ..Evidence::default()
        };
        assert_eq!(stopped_by(&oom), Some(Stopped::Memory));
        let xcpu = Evidence {
            signal: Some(24),
            ..Evidence::default()
        };
        assert_eq!(stopped_by(&xcpu), Some(Stopped::CpuTime));
        let cpu_killed = Evidence {
            cpu_killed: true,
            ..Evidence::default()
        };
        assert_eq!(stopped_by(&cpu_killed), Some(Stopped::CpuTime));
        let xfsz = Evidence {
            signal: Some(25),
            ..Evidence::default()
        };
        assert_eq!(stopped_by(&xfsz), Some(Stopped::FileSize));
    }

    #[test]
    fn rlimits_follow_the_method() {
        let limits = Limits {
            cpu: Duration::from_millis(1500),
            ..Limits::default()
        };
        let cg = Rlimits::new(&limits, LimitMethod::CgroupV1);
        assert_eq!(cg.cpu_secs, 2);
        assert_eq!(cg.address_space, None);
        assert_eq!(cg.processes, None);
        let rl = Rlimits::new(&limits, LimitMethod::Rlimits);
        assert_eq!(rl.address_space, Some(limits.memory_bytes));
        assert_eq!(rl.processes, Some(limits.processes + BWRAP_PROCESSES));
        let zero = Limits {
            cpu: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(Rlimits::new(&zero, LimitMethod::CgroupV2).cpu_secs, 1);
        let huge = Limits {
            cpu: Duration::MAX,
            ..Limits::default()
        };
        assert_eq!(Rlimits::new(&huge, LimitMethod::CgroupV2).cpu_secs, 1 << 32);
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(sh_quote("/a b"), "'/a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn wrapper_joins_groups_then_sets_rlimits() {
        let rl = Rlimits {
            cpu_secs: 5,
            file_bytes: 1024 * 1024,
            address_space: None,
            processes: None,
        };
        let files = vec![
            PathBuf::from("/sys/fs/cgroup/memory/clara-sandbox/r1/cgroup.procs"),
            PathBuf::from("/sys/fs/cgroup/pids/clara-sandbox/r1/cgroup.procs"),
        ];
        let argv = wrapper_argv(
            Path::new("/bin/sh"),
            &files,
            &rl,
            Some(Path::new("/usr/bin/prlimit")),
        );
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(argv[0], "/bin/sh");
        assert_eq!(argv[1], "-c");
        assert_eq!(
            argv[2],
            "echo $$ > '/sys/fs/cgroup/memory/clara-sandbox/r1/cgroup.procs' && \
             echo $$ > '/sys/fs/cgroup/pids/clara-sandbox/r1/cgroup.procs' && \
             ulimit -S -t 5 && ulimit -H -t 7 && ulimit -f 2048 && exec \"$@\""
        );
        assert_eq!(argv[3], "sh");
        // No process rlimit asked for, so no prlimit even when it exists.
        assert_eq!(argv.len(), 4);
    }

    #[test]
    fn wrapper_with_rlimits_only() {
        let rl = Rlimits {
            cpu_secs: 1,
            file_bytes: 100,
            address_space: Some(128 * 1024 * 1024),
            processes: Some(18),
        };
        let argv = wrapper_argv(
            Path::new("/bin/sh"),
            &[],
            &rl,
            Some(Path::new("/usr/bin/prlimit")),
        );
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv[2],
            "ulimit -S -t 1 && ulimit -H -t 3 && ulimit -f 1 && ulimit -v 131072 && exec \"$@\""
        );
        assert_eq!(&argv[4..], ["/usr/bin/prlimit", "--nproc=18", "--"]);
        let without = wrapper_argv(Path::new("/bin/sh"), &[], &rl, None);
        assert_eq!(without.len(), 4);
    }
}

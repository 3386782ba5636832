//! The bubblewrap backend against the real `bwrap`: output streaming,
//! persistence, isolation, every limit, the self-test. These tests need
//! bubblewrap and python3 and fail (never skip) without them.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use clara_sandbox::bwrap::PYTHON_ENV_DIR;
use clara_sandbox::{
    Bwrap, BwrapConfig, LimitMethod, Limits, Output, RunEnd, RunSpec, Sandbox, SandboxError,
    Stopped, Stream,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

fn bwrap_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` to run these tests")
        })
}

fn require_python() {
    assert!(
        Path::new("/usr/bin/python3").is_file(),
        "python3 is not installed at /usr/bin/python3: these tests run Python in the sandbox"
    );
}

fn sandbox_with(cgroup_root: Option<PathBuf>) -> Bwrap {
    require_python();
    Bwrap::new(BwrapConfig {
        bwrap: Some(bwrap_path()),
        cgroup_root,
        ..BwrapConfig::default()
    })
}

fn sandbox() -> Bwrap {
    sandbox_with(BwrapConfig::default().cgroup_root)
}

/// A sandbox that must use cgroups (root on this machine); fails clearly
/// otherwise.
fn cgroup_sandbox() -> Bwrap {
    let sb = sandbox();
    assert_ne!(
        sb.limit_method(),
        LimitMethod::Rlimits,
        "cgroups are not usable here (not root, or no writable memory/pids hierarchy under /sys/fs/cgroup); \
         the memory and process tests need them"
    );
    sb
}

fn limits() -> Limits {
    Limits {
        wall: Duration::from_secs(60),
        cpu: Duration::from_secs(60),
        memory_bytes: 256 * 1024 * 1024,
        processes: 32,
        file_bytes: 16 * 1024 * 1024,
    }
}

fn spec(workspace: &Path, argv: &[&str]) -> RunSpec {
    RunSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        stdin: None,
        workspace: workspace.to_path_buf(),
        env: Vec::new(),
        limits: limits(),
        network: false,
    }
}

fn python(workspace: &Path, code: &str) -> RunSpec {
    spec(workspace, &["python3", "-c", code])
}

/// Runs `spec` and returns its end, stdout and stderr.
async fn run(sb: &Bwrap, spec: RunSpec) -> (RunEnd, String, String) {
    let (tx, mut rx) = mpsc::channel::<Output>(16);
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
    let end = sb.run(spec, tx).await.expect("the run should start");
    let (out, err) = collector.await.expect("collector");
    (
        end,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn workspace() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn unique_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("clara-test-marker-{}-{nanos}", std::process::id())
}

/// PIDs of live processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(name);
        }
    }
    found
}

#[tokio::test]
async fn self_test_passes_here() {
    let sb = sandbox();
    sb.self_test()
        .await
        .expect("the self-test should pass on this machine");
}

#[tokio::test]
async fn self_test_fails_clearly_when_bwrap_is_missing() {
    let sb = Bwrap::new(BwrapConfig {
        bwrap: Some(PathBuf::from("/nonexistent/bin/bwrap")),
        ..BwrapConfig::default()
    });
    match sb.self_test().await {
        Err(SandboxError::Unavailable(why)) => {
            assert_eq!(
                why,
                "bubblewrap (bwrap) is not installed at /nonexistent/bin/bwrap."
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let ws = workspace();
    let (tx, _rx) = mpsc::channel(1);
    assert!(matches!(
        sb.run(spec(ws.path(), &["true"]), tx).await,
        Err(SandboxError::Unavailable(_))
    ));
}

#[tokio::test]
async fn self_test_notices_a_leak() {
    require_python();
    let sb = Bwrap::new(BwrapConfig {
        bwrap: Some(bwrap_path()),
        read_only_binds: vec![(PathBuf::from("/etc"), PathBuf::from("/etc"))],
        ..BwrapConfig::default()
    });
    match sb.self_test().await {
        Err(SandboxError::Unavailable(why)) => assert_eq!(
            why,
            "The sandbox does not isolate as it should: the host's /etc is visible inside."
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn self_test_says_why_bwrap_cannot_start() {
    require_python();
    let sb = Bwrap::new(BwrapConfig {
        bwrap: Some(bwrap_path()),
        read_only_binds: vec![(
            PathBuf::from("/nonexistent/clara-py"),
            PathBuf::from("/opt/clara-py"),
        )],
        ..BwrapConfig::default()
    });
    match sb.self_test().await {
        Err(SandboxError::Unavailable(why)) => assert_eq!(
            why,
            "bubblewrap cannot start a sandbox here (bwrap: Can't find source path /nonexistent/clara-py: No such file or directory)."
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn python_output_streams_while_it_runs() {
    let sb = Arc::new(sandbox());
    let ws = workspace();
    // Each line waits for the test to answer with a file, so the run cannot
    // end before the test has seen every line: output that only arrived at
    // exit would never get an answer.
    let code = r#"
import os, time
for i in range(3):
    print(f"line {i}")
    while not os.path.exists(f"/workspace/go{i}"):
        time.sleep(0.02)
print("end")
"#;
    let (tx, mut rx) = mpsc::channel::<Output>(16);
    let run = {
        let sb = sb.clone();
        let spec = python(ws.path(), code);
        tokio::spawn(async move { sb.run(spec, tx).await })
    };
    let mut seen = String::new();
    for i in 0..3 {
        while !seen.contains(&format!("line {i}\n")) {
            let chunk = rx
                .recv()
                .await
                .unwrap_or_else(|| panic!("the run ended before printing line {i}; got {seen:?}"));
            assert_eq!(chunk.stream, Stream::Stdout);
            seen.push_str(&String::from_utf8_lossy(&chunk.bytes));
        }
        assert!(
            !run.is_finished(),
            "line {i} arrived only after the run ended"
        );
        std::fs::write(ws.path().join(format!("go{i}")), "").expect("answer");
    }
    while let Some(chunk) = rx.recv().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.bytes));
    }
    let end = run.await.expect("join").expect("run");
    assert!(end.success(), "{end:?}");
    assert_eq!(seen, "line 0\nline 1\nline 2\nend\n");
}

#[tokio::test]
async fn a_python_env_bound_read_only_comes_first_in_path() {
    require_python();
    let env_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("env dir");
    let made = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(env_dir.path())
        .status()
        .expect("python3 -m venv");
    assert!(
        made.success(),
        "could not make a venv with /usr/bin/python3 -m venv"
    );
    let sb = Bwrap::new(BwrapConfig {
        bwrap: Some(bwrap_path()),
        read_only_binds: vec![(env_dir.path().to_path_buf(), PathBuf::from(PYTHON_ENV_DIR))],
        ..BwrapConfig::default()
    });
    let ws = workspace();
    let code = r#"
import sys
print(sys.prefix)
try:
    open("/opt/clara-py/x", "w")
    print("writable")
except OSError:
    print("read-only")
"#;
    let (end, out, err) = run(&sb, python(ws.path(), code)).await;
    assert!(end.success(), "{end:?} {err}");
    assert_eq!(out, "/opt/clara-py\nread-only\n");
}

#[tokio::test]
async fn stderr_is_kept_apart_and_stdin_is_given() {
    let sb = sandbox();
    let ws = workspace();
    let mut s = python(
        ws.path(),
        "import sys; data = sys.stdin.read(); print(data.upper()); print('to stderr', file=sys.stderr); sys.exit(3)",
    );
    s.stdin = Some(b"hello sandbox".to_vec());
    let (end, out, err) = run(&sb, s).await;
    assert_eq!(end.exit_code, Some(3));
    assert_eq!(end.signal, None);
    assert_eq!(end.stopped, None);
    assert_eq!(out, "HELLO SANDBOX\n");
    assert_eq!(err, "to stderr\n");
}

#[tokio::test]
async fn a_file_written_in_one_run_is_read_in_the_next() {
    let sb = sandbox();
    let ws = workspace();
    let (end, _, err) = run(
        &sb,
        python(ws.path(), "open('/workspace/notes.txt', 'w').write('kept')"),
    )
    .await;
    assert!(end.success(), "{end:?} {err}");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("notes.txt")).expect("on the host"),
        "kept"
    );
    let (end, out, _) = run(&sb, spec(ws.path(), &["cat", "notes.txt"])).await;
    assert!(end.success());
    assert_eq!(out, "kept");
}

#[tokio::test]
async fn the_host_is_invisible_inside() {
    let sb = sandbox();
    // Outside /tmp (which is a fresh tmpfs inside anyway), in the work tree.
    let host = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("host dir");
    let ws = host.path().join("alice");
    std::fs::create_dir(&ws).expect("ws");
    // Stands in for Clara's data directory with a key in it.
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("data dir");
    std::fs::write(data.path().join("secret.key"), "sk-not-for-the-sandbox").expect("secret");
    let code = r#"
import os, socket, sys
host_dir, data_dir, source_dir = sys.argv[1], sys.argv[2], sys.argv[3]
for p in ["/etc", "/root", "/home", host_dir, data_dir, data_dir + "/secret.key", source_dir, "/var", "/run"]:
    print("visible" if os.path.exists(p) else "absent", p)
try:
    open(data_dir + "/secret.key").read()
    print("secret readable")
except OSError:
    print("secret unreadable")
print("root", " ".join(sorted(os.listdir("/"))))
print("host", socket.gethostname())
print("uid", os.getuid())
print("cwd", os.getcwd())
print("env", " ".join(sorted(os.environ)))
try:
    open("/usr/clara-probe", "w")
    print("usr writable")
except OSError:
    print("usr read-only")
"#;
    let mut s = spec(
        &ws,
        &[
            "python3",
            "-c",
            code,
            &host.path().to_string_lossy(),
            &data.path().to_string_lossy(),
            env!("CARGO_MANIFEST_DIR"),
        ],
    );
    s.env = vec![("CLARA_RUN".to_owned(), "1".to_owned())];
    let (end, out, err) = run(&sb, s).await;
    assert!(end.success(), "{end:?} {err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("absent ")).count(),
        9,
        "{out}"
    );
    for line in out.lines() {
        assert!(!line.starts_with("visible"), "{line}\n{out}");
    }
    assert!(out.contains("secret unreadable"), "{out}");
    assert!(
        out.contains("\nroot bin dev lib lib64 proc sbin tmp usr workspace\n"),
        "{out}"
    );
    assert!(out.contains("\nhost sandbox\n"), "{out}");
    assert!(out.contains("\nuid 1000\n"), "{out}");
    assert!(out.contains("\ncwd /workspace\n"), "{out}");
    assert!(
        out.contains(
            "\nenv CLARA_RUN HOME LANG MPLBACKEND MPLCONFIGDIR PATH PWD PYTHONUNBUFFERED TMPDIR\n"
        ),
        "only the sandbox's own environment: {out}"
    );
    assert!(out.contains("usr read-only"), "{out}");
}

/// Tries TCP connections to the given `host:port`s and prints one line each.
const CONNECT: &str = r#"
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print("reached", target)
    except OSError as e:
        print("failed", target, e)
    finally:
        s.close()
"#;

#[tokio::test]
async fn the_network_is_unreachable_without_permission() {
    let sb = sandbox();
    let ws = workspace();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let own = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let targets = [
        own.as_str(),
        "127.0.0.1:5432",
        "127.0.0.1:6379",
        "10.0.0.1:80",
    ];
    let mut argv = vec!["python3", "-c", CONNECT];
    argv.extend(targets);
    let (end, out, err) = run(&sb, spec(ws.path(), &argv)).await;
    assert!(end.success(), "{end:?} {err}");
    for target in targets {
        assert!(
            out.contains(&format!("failed {target}")),
            "{target} must be unreachable:\n{out}"
        );
    }
}

#[tokio::test]
async fn the_network_is_shared_when_allowed() {
    let sb = sandbox();
    let ws = workspace();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let own = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let mut s = spec(ws.path(), &["python3", "-c", CONNECT, &own]);
    s.network = true;
    let (end, out, err) = run(&sb, s).await;
    assert!(end.success(), "{end:?} {err}");
    assert_eq!(out, format!("reached {own}\n"));
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_process_limit() {
    let sb = cgroup_sandbox();
    let ws = workspace();
    let marker = unique_marker();
    let mut s = spec(
        ws.path(),
        &["sh", "-c", "f() { f | f & }; f; wait", &marker],
    );
    s.limits.processes = 16;
    s.limits.wall = Duration::from_secs(5);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::Processes), "{end:?}");
    assert!(!end.success());
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "processes of the run remain"
    );
}

#[tokio::test]
async fn forks_beyond_the_limit_fail() {
    let sb = cgroup_sandbox();
    let ws = workspace();
    let code = r#"
import os, time
kids = 0
try:
    for _ in range(100):
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
except OSError:
    pass
print(kids)
"#;
    let mut s = python(ws.path(), code);
    s.limits.processes = 10;
    let (end, out, err) = run(&sb, s).await;
    assert_eq!(end.exit_code, Some(0), "{err}");
    assert_eq!(end.stopped, Some(Stopped::Processes));
    let kids: u32 = out.trim().parse().expect("a count");
    // The Python process itself is one of the ten.
    assert_eq!(kids, 9, "{out}");
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_limit() {
    let sb = cgroup_sandbox();
    let ws = workspace();
    let mut s = python(ws.path(), "b = b'x' * (2 * 1024 ** 3); print(len(b))");
    s.limits.memory_bytes = 128 * 1024 * 1024;
    let (end, out, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::Memory), "{end:?}");
    assert_eq!(end.signal, Some(9));
    assert_eq!(out, "");
}

#[tokio::test]
async fn wall_time_kills_every_process_of_the_run() {
    let sb = sandbox();
    let ws = workspace();
    let marker = unique_marker();
    // Four busy processes (two forks), each with the marker in its argv.
    let code = "import os\nos.fork()\nos.fork()\nwhile True: pass";
    let mut s = spec(ws.path(), &["python3", "-c", code, &marker]);
    s.limits.wall = Duration::from_secs(2);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::WallTime), "{end:?}");
    assert_eq!(end.signal, Some(9));
    assert_eq!(end.exit_code, None);
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "processes of the run remain"
    );
}

#[tokio::test]
async fn a_cpu_limit_stops_a_busy_loop() {
    let sb = sandbox();
    let ws = workspace();
    let mut s = python(ws.path(), "while True: pass");
    s.limits.cpu = Duration::from_secs(1);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::CpuTime), "{end:?}");
    assert!(!end.success());
}

#[tokio::test]
async fn cpu_time_counts_every_process_of_the_run() {
    let sb = cgroup_sandbox();
    let ws = workspace();
    let marker = unique_marker();
    // Four processes that ignore SIGXCPU: each alone would run until its own
    // hard RLIMIT_CPU (3 s); together they pass the run's 1 s first.
    let code = "import os, signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nos.fork()\nos.fork()\nwhile True: pass";
    let mut s = spec(ws.path(), &["python3", "-c", code, &marker]);
    s.limits.cpu = Duration::from_secs(1);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::CpuTime), "{end:?}");
    assert_eq!(end.signal, Some(9));
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "processes of the run remain"
    );
}

#[tokio::test]
async fn dropping_a_run_kills_it() {
    let sb = sandbox();
    let ws = workspace();
    let marker = unique_marker();
    let code = "import os\nos.fork()\nprint('started')\nwhile True: pass";
    let (tx, mut rx) = mpsc::channel::<Output>(16);
    {
        let mut run =
            std::pin::pin!(sb.run(spec(ws.path(), &["python3", "-c", code, &marker]), tx));
        tokio::select! {
            end = &mut run => panic!("the endless run ended: {end:?}"),
            chunk = rx.recv() => assert!(chunk.is_some(), "the run printed nothing"),
        }
        assert!(
            !processes_with(&marker).is_empty(),
            "the marker should be seen while it runs"
        );
        // The run's future is dropped here, as a caller's timeout would.
    }
    // The kill is immediate, but the kernel tears the processes down
    // asynchronously: wait (bounded) until they are gone.
    for _ in 0..500 {
        if processes_with(&marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "processes of a dropped run remain: {:?}",
        processes_with(&marker)
    );
}

#[tokio::test]
async fn a_file_size_limit_stops_a_large_write() {
    let sb = sandbox();
    let ws = workspace();
    let mut s = spec(ws.path(), &["sh", "-c", "head -c 4000000 /dev/zero > big"]);
    s.limits.file_bytes = 1024 * 1024;
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::FileSize), "{end:?}");
    assert_eq!(end.signal, Some(25));
    let size = std::fs::metadata(ws.path().join("big")).expect("big").len();
    assert!(size <= 1024 * 1024, "{size}");
}

#[tokio::test]
async fn rlimits_alone_still_limit_cpu_files_and_memory() {
    let sb = sandbox_with(None);
    assert_eq!(sb.limit_method(), LimitMethod::Rlimits);
    let ws = workspace();

    let mut s = python(ws.path(), "while True: pass");
    s.limits.cpu = Duration::from_secs(1);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::CpuTime), "{end:?}");

    let mut s = spec(ws.path(), &["sh", "-c", "head -c 4000000 /dev/zero > big"]);
    s.limits.file_bytes = 1024 * 1024;
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::FileSize), "{end:?}");

    // Without a memory cgroup the allocation fails inside (RLIMIT_AS);
    // Clara cannot tell that from any other error.
    let mut s = python(
        ws.path(),
        "try:\n b = b'x' * (2 * 1024 ** 3)\nexcept MemoryError:\n print('refused')",
    );
    s.limits.memory_bytes = 128 * 1024 * 1024;
    let (end, out, err) = run(&sb, s).await;
    assert!(end.success(), "{end:?} {err}");
    assert_eq!(out, "refused\n");

    // Without a cgroup to sweep, killing bwrap still ends the whole tree.
    let marker = unique_marker();
    let code = "import os\nos.fork()\nwhile True: pass";
    let mut s = spec(ws.path(), &["python3", "-c", code, &marker]);
    s.limits.wall = Duration::from_secs(2);
    let (end, _, _) = run(&sb, s).await;
    assert_eq!(end.stopped, Some(Stopped::WallTime), "{end:?}");
    // The kernel tears a PID namespace down after its init dies, not
    // before kill returns: wait (bounded) for it.
    for _ in 0..500 {
        if processes_with(&marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("processes of the run remain: {:?}", processes_with(&marker));
}

#[tokio::test]
async fn a_closed_output_channel_does_not_stop_the_run() {
    let sb = sandbox();
    let ws = workspace();
    let (tx, rx) = mpsc::channel::<Output>(1);
    drop(rx);
    let code = "for i in range(200000): print(i)\nopen('/workspace/done', 'w').write('yes')";
    let end = sb.run(python(ws.path(), code), tx).await.expect("run");
    assert!(end.success(), "{end:?}");
    assert!(ws.path().join("done").exists());
}

#[tokio::test]
async fn a_full_output_channel_does_not_stop_the_run() {
    let sb = sandbox();
    let ws = workspace();
    // Never read until the run is over.
    let (tx, mut rx) = mpsc::channel::<Output>(1);
    let code = "for i in range(200000): print(i)\nopen('/workspace/done', 'w').write('yes')";
    let end = sb.run(python(ws.path(), code), tx).await.expect("run");
    assert!(end.success(), "{end:?}");
    assert!(ws.path().join("done").exists());
    assert!(rx.recv().await.is_some(), "the first chunk was kept");
}

#[tokio::test]
async fn a_missing_command_fails_the_run_not_the_sandbox() {
    let sb = sandbox();
    let ws = workspace();
    let (end, _, err) = run(&sb, spec(ws.path(), &["no-such-command-here"])).await;
    assert!(!end.success());
    assert!(err.contains("no-such-command-here"), "{err}");
}

#[tokio::test]
async fn a_missing_workspace_is_an_error() {
    let sb = sandbox();
    let (tx, _rx) = mpsc::channel(1);
    let gone = PathBuf::from("/nonexistent/workspace");
    match sb.run(spec(&gone, &["true"]), tx).await {
        Err(SandboxError::Failed(why)) => assert!(why.contains("/nonexistent/workspace"), "{why}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

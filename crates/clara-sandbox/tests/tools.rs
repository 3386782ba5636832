//! The sandbox's tools as the registry runs them: with a scripted fake
//! backend (output, files, how the run ends), and once with the real
//! bubblewrap backend and the real Python environment.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use clara_core::{ToolCall, UserId};
use clara_sandbox::settings::{CodeProvider, Mode, SandboxConfig};
use clara_sandbox::{
    Bwrap, BwrapConfig, FILES_SERVER, FilesConfig, Limits, Output, PythonEnv, RunEnd, RunSpec,
    Sandbox, SandboxError, Stopped, Stream, Workspaces, file_tools,
};
use clara_tools::{Effect, StaticTools, ToolContext, ToolEvent, ToolRegistry, ToolSideband};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A backend that plays a script: writes files into the workspace, sends
/// output chunks, and ends as told.
struct Fake {
    chunks: Vec<Output>,
    writes: Vec<(String, Vec<u8>)>,
    end: RunEnd,
    self_test: Result<(), SandboxError>,
    run_error: Option<SandboxError>,
    /// Keeps a sender of the output alive after the run, as a backend whose
    /// output stream outlives its container could.
    linger: bool,
    seen: Mutex<Vec<RunSpec>>,
}

impl Fake {
    fn new() -> Self {
        Self {
            chunks: Vec::new(),
            writes: Vec::new(),
            end: RunEnd {
                exit_code: Some(0),
                signal: None,
                stopped: None,
                duration: Duration::from_millis(1500),
            },
            self_test: Ok(()),
            run_error: None,
            linger: false,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn out(mut self, stream: Stream, text: &str) -> Self {
        self.chunks.push(Output {
            stream,
            bytes: text.as_bytes().to_vec(),
        });
        self
    }

    fn writes(mut self, name: &str, bytes: &[u8]) -> Self {
        self.writes.push((name.to_owned(), bytes.to_vec()));
        self
    }

    fn spec(&self) -> RunSpec {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no run was made")
    }
}

#[async_trait]
impl Sandbox for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn self_test(&self) -> Result<(), SandboxError> {
        self.self_test.clone()
    }

    async fn run(
        &self,
        spec: RunSpec,
        output: mpsc::Sender<Output>,
    ) -> Result<RunEnd, SandboxError> {
        self.seen.lock().unwrap().push(spec.clone());
        if let Some(error) = &self.run_error {
            return Err(error.clone());
        }
        for (name, bytes) in &self.writes {
            std::fs::write(spec.workspace.join(name), bytes).unwrap();
        }
        for chunk in &self.chunks {
            let _ = output.send(chunk.clone()).await;
        }
        if self.linger {
            tokio::spawn(async move {
                let _kept = output;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
        }
        Ok(self.end.clone())
    }
}

fn config(root: &Path, network: bool) -> SandboxConfig {
    SandboxConfig {
        mode: Mode::Auto,
        limits: Limits {
            wall: Duration::from_secs(120),
            ..Limits::default()
        },
        network,
        workspaces_dir: root.join("workspaces"),
        python_env: None,
        max_output_chars: 1000,
        max_file_bytes: 1024 * 1024,
        docker_image: None,
        docker_host: None,
    }
}

/// A registry with the code tools on `sandbox` and the file tools, under
/// `root`.
async fn make_registry(root: &Path, sandbox: Arc<dyn Sandbox>, network: bool) -> ToolRegistry {
    let registry = ToolRegistry::new(Duration::from_secs(60), 1_000_000);
    let config = config(root, network);
    let workspaces = Workspaces::new(config.workspaces_dir.clone(), config.max_file_bytes);
    registry
        .add_provider(Arc::new(CodeProvider::with_sandboxes(
            config,
            vec![sandbox],
        )))
        .await
        .unwrap();
    let files = file_tools(
        workspaces,
        FilesConfig {
            network,
            ..FilesConfig::default()
        },
    );
    registry
        .add_provider(Arc::new(StaticTools::new(FILES_SERVER, files)))
        .await
        .unwrap();
    registry
}

/// A person's context whose sideband events arrive on the receiver.
fn context(user: Option<UserId>) -> (ToolContext, mpsc::UnboundedReceiver<ToolEvent>) {
    let (events, receiver) = mpsc::unbounded_channel();
    let context = ToolContext {
        user,
        sideband: Some(ToolSideband::new(events, "call-1", "tool")),
        ..ToolContext::default()
    };
    (context, receiver)
}

async fn call(
    registry: &ToolRegistry,
    context: &ToolContext,
    name: &str,
    arguments: serde_json::Value,
) -> (bool, String) {
    let outcome = registry
        .snapshot()
        .run(
            &ToolCall {
                id: "call-1".into(),
                name: name.into(),
                arguments: arguments.to_string(),
            },
            context,
        )
        .await;
    (outcome.ok, outcome.content)
}

fn drain(receiver: &mut mpsc::UnboundedReceiver<ToolEvent>) -> Vec<ToolEvent> {
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    events
}

fn workspace(root: &Path, user: &UserId) -> PathBuf {
    root.join("workspaces").join(user.to_string())
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

#[tokio::test]
async fn python_runs_report_output_files_and_stream_progress() {
    let temp = tempfile::tempdir().unwrap();
    let fake = Arc::new(
        Fake::new()
            .out(Stream::Stdout, "loading data\n")
            .out(Stream::Stdout, "rows: 10\n")
            .out(Stream::Stderr, "UserWarning: careful\n")
            .out(Stream::Stdout, "done")
            .writes("chart.png", &[0u8; 2048]),
    );
    let registry = make_registry(temp.path(), fake.clone(), false).await;
    let user = UserId::new();
    let (context, mut events) = context(Some(user));
    let code = "import matplotlib\nprint('rows: 10')";

    let (ok, text) = call(
        &registry,
        &context,
        "code__python",
        serde_json::json!({ "code": code }),
    )
    .await;

    assert!(ok, "{text}");
    assert_eq!(
        text,
        "Exit code 0 after 1.5 s.\nloading data\nrows: 10\n[stderr]\nUserWarning: careful\n[stdout]\ndone\nFiles created or changed: chart.png (2 KB)."
    );
    let spec = fake.spec();
    assert_eq!(spec.argv[0], "python3");
    let script = spec.argv[1].clone();
    assert!(
        script.starts_with("/workspace/.clara/runs/") && script.ends_with(".py"),
        "{script}"
    );
    let host = workspace(temp.path(), &user);
    assert_eq!(spec.workspace, host);
    let on_host = host.join(script.trim_start_matches("/workspace/"));
    assert_eq!(std::fs::read_to_string(&on_host).unwrap(), code);
    assert!(spec.env.contains(&("MPLBACKEND".into(), "Agg".into())));
    assert!(!spec.network);
    assert_eq!(spec.limits.wall, Duration::from_secs(120));
    // The full log sits beside the script.
    let log = on_host.with_extension("log");
    assert_eq!(
        std::fs::read_to_string(log).unwrap(),
        "loading data\nrows: 10\n[stderr]\nUserWarning: careful\n[stdout]\ndone\n"
    );

    let progress: Vec<String> = drain(&mut events)
        .into_iter()
        .map(|event| match event {
            ToolEvent::Progress { text, call_id, .. } => {
                assert_eq!(call_id, "call-1");
                text
            }
            ToolEvent::File { .. } => panic!("a run sends no file by itself"),
        })
        .collect();
    assert!(!progress.is_empty(), "no live output was shown");
    assert_eq!(
        progress.last().unwrap(),
        "loading data\nrows: 10\n[stderr]\nUserWarning: careful\n[stdout]\ndone"
    );
}

#[tokio::test]
async fn long_output_keeps_head_and_tail_within_the_budget_and_the_log_has_all() {
    let temp = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    for i in 0..5000 {
        fake = fake.out(Stream::Stdout, &format!("line {i}\n"));
    }
    let fake = Arc::new(fake);
    let registry = make_registry(temp.path(), fake.clone(), false).await;
    let user = UserId::new();
    let (context, _events) = context(Some(user));

    let (ok, text) = call(
        &registry,
        &context,
        "code__shell",
        serde_json::json!({"command": "seq 5000"}),
    )
    .await;

    assert!(ok, "{text}");
    assert_eq!(fake.spec().argv, ["sh", "-c", "seq 5000"]);
    assert!(
        text.chars().count() < 1300,
        "{} characters",
        text.chars().count()
    );
    assert!(text.contains("\nline 0\nline 1\n"), "{text}");
    assert!(text.ends_with("line 4999"), "{text}");
    let marker = text
        .lines()
        .find(|l| l.starts_with("[… "))
        .expect("no cut marker");
    let log_path = marker
        .split("the full log is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(log_path.starts_with("/workspace/.clara/runs/") && log_path.ends_with(".log"));
    let log = std::fs::read_to_string(
        workspace(temp.path(), &user).join(log_path.trim_start_matches("/workspace/")),
    )
    .unwrap();
    assert_eq!(log.lines().count(), 5000);

    // The model can read the log on through the file tools.
    let (ok, window) = call(
        &registry,
        &context,
        "files__read_file",
        serde_json::json!({"path": log_path, "offset": 0}),
    )
    .await;
    assert!(ok, "{window}");
    assert!(
        window.contains("characters 0–8000 of"),
        "{}",
        &window[..200]
    );
}

#[tokio::test]
async fn a_stopped_run_says_which_limit_and_a_failed_one_says_why() {
    let temp = tempfile::tempdir().unwrap();
    let mut fake = Fake::new().out(Stream::Stdout, "working\n");
    fake.end = RunEnd {
        exit_code: None,
        signal: Some(9),
        stopped: Some(Stopped::Memory),
        duration: Duration::from_secs(3),
    };
    let registry = make_registry(temp.path(), Arc::new(fake), false).await;
    let (context, _events) = context(Some(UserId::new()));
    let (ok, text) = call(
        &registry,
        &context,
        "code__python",
        serde_json::json!({"code": "x = [0] * 10**10"}),
    )
    .await;
    assert!(ok);
    assert!(
        text.starts_with("Ended by signal 9 after 3.0 s. It was stopped for using more than 512 MiB of memory, the limit.\nworking"),
        "{text}"
    );

    let temp = tempfile::tempdir().unwrap();
    let mut broken = Fake::new();
    broken.run_error = Some(SandboxError::Failed("bwrap could not start.".into()));
    let registry = make_registry(temp.path(), Arc::new(broken), false).await;
    let (ok, text) = call(
        &registry,
        &context,
        "code__shell",
        serde_json::json!({"command": "true"}),
    )
    .await;
    assert!(!ok);
    assert_eq!(
        text,
        "Error: The sandbox could not run it: bwrap could not start."
    );
}

#[tokio::test]
async fn output_that_outlives_the_run_does_not_hold_the_call() {
    let temp = tempfile::tempdir().unwrap();
    let mut fake = Fake::new().out(Stream::Stdout, "result\n");
    fake.linger = true;
    let registry = make_registry(temp.path(), Arc::new(fake), false).await;
    let (context, _events) = context(Some(UserId::new()));
    let (ok, text) = call(
        &registry,
        &context,
        "code__shell",
        serde_json::json!({"command": "echo result"}),
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(text, "Exit code 0 after 1.5 s.\nresult");
}

#[tokio::test]
async fn send_file_hands_an_image_to_the_person() {
    let temp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::new().writes("chart.png", PNG));
    let registry = make_registry(temp.path(), fake, false).await;
    let user = UserId::new();
    let (context, mut events) = context(Some(user));
    let (ok, _) = call(
        &registry,
        &context,
        "code__python",
        serde_json::json!({"code": "plot()"}),
    )
    .await;
    assert!(ok);
    drain(&mut events);

    let (ok, text) = call(
        &registry,
        &context,
        "files__send_file",
        serde_json::json!({"path": "/workspace/chart.png", "caption": "Squares"}),
    )
    .await;

    assert!(ok, "{text}");
    assert_eq!(
        text,
        "Sent /workspace/chart.png (image/png, 16 bytes); it reaches the person with your reply as a picture."
    );
    let events = drain(&mut events);
    assert_eq!(events.len(), 1);
    match &events[0] {
        ToolEvent::File {
            file,
            caption,
            call_id,
        } => {
            assert_eq!(call_id, "call-1");
            assert_eq!(file.name, "chart.png");
            assert_eq!(file.media_type, "image/png");
            assert!(file.is_image());
            assert_eq!(file.data, PNG);
            assert_eq!(caption.as_deref(), Some("Squares"));
        }
        other => panic!("expected a file, got {other:?}"),
    }
}

#[tokio::test]
async fn file_tools_write_list_and_read_inside_the_workspace() {
    let temp = tempfile::tempdir().unwrap();
    let registry = make_registry(temp.path(), Arc::new(Fake::new()), false).await;
    let user = UserId::new();
    let (context, _events) = context(Some(user));

    let (ok, text) = call(
        &registry,
        &context,
        "files__write_file",
        serde_json::json!({"path": "notes/a.md", "content": "# Hello"}),
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(text, "Wrote /workspace/notes/a.md (7 bytes).");
    assert_eq!(
        std::fs::read_to_string(workspace(temp.path(), &user).join("notes/a.md")).unwrap(),
        "# Hello"
    );
    let (ok, text) = call(
        &registry,
        &context,
        "files__list_files",
        serde_json::json!({"recursive": true}),
    )
    .await;
    assert!(ok, "{text}");
    assert!(
        text.starts_with("/workspace (2 entries):\nnotes/  directory\nnotes/a.md  7 bytes  "),
        "{text}"
    );
    let (ok, text) = call(
        &registry,
        &context,
        "files__read_file",
        serde_json::json!({"path": "/workspace/notes/a.md"}),
    )
    .await;
    assert!(ok, "{text}");
    assert_eq!(text, "/workspace/notes/a.md (7 bytes):\n# Hello");
}

#[tokio::test]
async fn paths_leading_out_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let registry = make_registry(temp.path(), Arc::new(Fake::new()), false).await;
    let user = UserId::new();
    let (context, _events) = context(Some(user));
    // Make the workspace, then put a link to outside in it, as code could.
    call(
        &registry,
        &context,
        "files__list_files",
        serde_json::json!({}),
    )
    .await;
    let outside = temp.path().join("secret.txt");
    std::fs::write(&outside, "token").unwrap();
    let host = workspace(temp.path(), &user);
    std::os::unix::fs::symlink(&outside, host.join("link")).unwrap();
    std::os::unix::fs::symlink(temp.path(), host.join("dir")).unwrap();

    for (tool, arguments, expected) in [
        (
            "files__read_file",
            serde_json::json!({"path": "../secret.txt"}),
            "goes up with `..`",
        ),
        (
            "files__read_file",
            serde_json::json!({"path": "/etc/passwd"}),
            "is outside the workspace",
        ),
        (
            "files__read_file",
            serde_json::json!({"path": "link"}),
            "symbolic link leading out",
        ),
        (
            "files__read_file",
            serde_json::json!({"path": "dir/secret.txt"}),
            "symbolic link leading out",
        ),
        (
            "files__send_file",
            serde_json::json!({"path": "link"}),
            "symbolic link leading out",
        ),
        (
            "files__list_files",
            serde_json::json!({"path": "dir"}),
            "symbolic link leading out",
        ),
        (
            "files__write_file",
            serde_json::json!({"path": "link", "content": "x"}),
            "is a symbolic link",
        ),
        (
            "files__write_file",
            serde_json::json!({"path": "dir/new.txt", "content": "x"}),
            "is a symbolic link",
        ),
        (
            "files__write_file",
            serde_json::json!({"path": "/tmp/x", "content": "x"}),
            "is outside the workspace",
        ),
    ] {
        let (ok, text) = call(&registry, &context, tool, arguments.clone()).await;
        assert!(!ok, "{tool} {arguments}: {text}");
        assert!(text.contains(expected), "{tool} {arguments}: {text}");
        assert!(!text.contains("token"), "{text}");
        assert!(
            !text.contains(&temp.path().display().to_string()),
            "a host path leaked: {text}"
        );
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "token");
    assert!(!temp.path().join("new.txt").exists());
}

#[tokio::test]
async fn without_a_person_there_is_no_workspace() {
    let temp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::new());
    let registry = make_registry(temp.path(), fake.clone(), false).await;
    let (context, _events) = context(None);
    for (tool, arguments) in [
        ("code__python", serde_json::json!({"code": "print(1)"})),
        ("code__shell", serde_json::json!({"command": "ls"})),
        ("files__read_file", serde_json::json!({"path": "a"})),
        (
            "files__write_file",
            serde_json::json!({"path": "a", "content": ""}),
        ),
        ("files__list_files", serde_json::json!({})),
        ("files__send_file", serde_json::json!({"path": "a"})),
    ] {
        let (ok, text) = call(&registry, &context, tool, arguments).await;
        assert!(!ok);
        assert_eq!(
            text, "Error: No workspace: this conversation has no person.",
            "{tool}"
        );
    }
    assert!(fake.seen.lock().unwrap().is_empty(), "nothing ran");
}

#[tokio::test]
async fn effects_follow_the_network_setting() {
    let temp = tempfile::tempdir().unwrap();
    let traits = |registry: &ToolRegistry, name: &str| {
        registry
            .snapshot()
            .check(&ToolCall {
                id: "c".into(),
                name: name.into(),
                arguments: "{}".into(),
            })
            .unwrap_or_else(|_| panic!("no tool {name}"))
            .traits
    };

    let closed = make_registry(temp.path(), Arc::new(Fake::new()), false).await;
    let names: Vec<String> = closed.snapshot().names().map(str::to_owned).collect();
    assert_eq!(
        names,
        [
            "code__python",
            "code__shell",
            "files__list_files",
            "files__read_file",
            "files__send_file",
            "files__write_file"
        ]
    );
    for (name, effect) in [
        ("code__python", Effect::Sandboxed),
        ("code__shell", Effect::Sandboxed),
        ("files__read_file", Effect::Read),
        ("files__list_files", Effect::Read),
        ("files__write_file", Effect::Sandboxed),
        ("files__send_file", Effect::Sandboxed),
    ] {
        let t = traits(&closed, name);
        assert_eq!(t.effect, effect, "{name}");
        assert!(!t.untrusted_output, "{name}");
    }

    let open = make_registry(temp.path(), Arc::new(Fake::new()), true).await;
    for name in ["code__python", "code__shell"] {
        let t = traits(&open, name);
        assert_eq!(t.effect, Effect::Execute, "{name}");
        assert!(t.untrusted_output, "{name}");
    }
    assert!(traits(&open, "files__read_file").untrusted_output);
    assert_eq!(traits(&open, "files__write_file").effect, Effect::Sandboxed);
}

#[tokio::test]
async fn code_tools_run_as_long_as_the_sandbox_allows() {
    let temp = tempfile::tempdir().unwrap();
    let sandbox: Arc<dyn Sandbox> = Arc::new(Fake::new());
    let provider = CodeProvider::with_sandboxes(config(temp.path(), false), vec![sandbox]);
    let tools = clara_tools::ToolProvider::tools(&provider).await.unwrap();
    for tool in tools {
        assert_eq!(
            tool.timeout(),
            Some(Duration::from_secs(150)),
            "{}",
            tool.name()
        );
    }
}

#[tokio::test]
async fn a_failed_self_test_offers_no_code_tools_and_says_why_once() {
    let temp = tempfile::tempdir().unwrap();
    let mut broken = Fake::new();
    broken.self_test = Err(SandboxError::Unavailable(
        "user namespaces are not allowed here.".into(),
    ));
    let provider = Arc::new(CodeProvider::with_sandboxes(
        config(temp.path(), false),
        vec![Arc::new(broken)],
    ));
    let registry = ToolRegistry::default();
    let error = registry.add_provider(provider).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "The code sandbox is off: fake: user namespaces are not allowed here. Code tools are not offered."
    );
    assert!(registry.snapshot().is_empty());

    // With several backends, the first that passes is used.
    let mut first = Fake::new();
    first.self_test = Err(SandboxError::Unavailable("no bwrap.".into()));
    let provider = CodeProvider::with_sandboxes(
        config(temp.path(), false),
        vec![Arc::new(first), Arc::new(Fake::new())],
    );
    assert_eq!(provider.sandbox().await.unwrap().name(), "fake");
}

/// The Python environment for the real run, made once per target directory
/// (it downloads from PyPI the first time; later runs find it ready).
async fn python_env() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clara-py");
    if let Err(error) = PythonEnv::prepare(&path).await {
        panic!("the Python environment could not be prepared (it needs PyPI): {error}");
    }
    assert!(PythonEnv::ready(&path));
    path
}

#[tokio::test]
async fn a_real_bwrap_run_draws_a_chart_that_is_sent() {
    let env = python_env().await;
    let bwrap = Bwrap::new(BwrapConfig {
        read_only_binds: vec![(env.clone(), PathBuf::from("/opt/clara-py"))],
        ..BwrapConfig::default()
    });
    if let Err(error) = bwrap.self_test().await {
        panic!("bubblewrap does not work on this machine: {error}");
    }
    let temp = tempfile::tempdir().unwrap();
    let mut config = config(temp.path(), false);
    config.python_env = Some(env);
    config.max_output_chars = 4000;
    let registry = ToolRegistry::new(Duration::from_secs(300), 100_000);
    let workspaces = Workspaces::new(config.workspaces_dir.clone(), config.max_file_bytes * 20);
    registry
        .add_provider(Arc::new(CodeProvider::with_sandboxes(
            config,
            vec![Arc::new(bwrap)],
        )))
        .await
        .unwrap();
    registry
        .add_provider(Arc::new(StaticTools::new(
            FILES_SERVER,
            file_tools(workspaces, FilesConfig::default()),
        )))
        .await
        .unwrap();
    let description = registry
        .snapshot()
        .specs()
        .into_iter()
        .find(|spec| spec.name == "code__python")
        .unwrap()
        .description;
    assert!(
        description.contains("numpy, pandas, matplotlib"),
        "{description}"
    );

    let user = UserId::new();
    let (context, mut events) = context(Some(user));
    let code = r#"
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": np.arange(10), "y": np.arange(10) ** 2})
fig, ax = plt.subplots()
ax.plot(df["x"], df["y"])
fig.savefig("chart.png")
print("rows", len(df))
"#;
    let (ok, text) = call(
        &registry,
        &context,
        "code__python",
        serde_json::json!({ "code": code }),
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.starts_with("Exit code 0 after "), "{text}");
    assert!(text.contains("rows 10"), "{text}");
    assert!(
        text.contains("Files created or changed: chart.png ("),
        "{text}"
    );
    drain(&mut events);

    let (ok, text) = call(
        &registry,
        &context,
        "files__send_file",
        serde_json::json!({"path": "chart.png"}),
    )
    .await;
    assert!(ok, "{text}");
    let file = drain(&mut events)
        .into_iter()
        .find_map(|event| match event {
            ToolEvent::File { file, .. } => Some(file),
            ToolEvent::Progress { .. } => None,
        })
        .expect("no file was sent");
    assert_eq!(file.media_type, "image/png");
    assert!(file.data.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    // The shell sees the workspace and nothing of the host's /etc.
    let (ok, text) = call(&registry, &context, "code__shell", serde_json::json!({"command": "ls /workspace; test -e /etc/passwd && echo host-etc-visible"})).await;
    assert!(ok, "{text}");
    assert!(text.contains("chart.png"), "{text}");
    assert!(!text.contains("host-etc-visible"), "{text}");
}

//! The web page in a real browser: headless Chromium (Debian's `chromium`),
//! driven by `playwright-core` from the scripts in `tests/browser/`. Screenshots
//! land in `target/screenshots/`.
//!
//! These tests fail, never skip, when node, Chromium or playwright-core is
//! missing: `.ci/run` installs them, and the message says how.

use crate::http_support::{Server, target_dir};
use async_trait::async_trait;
use clara_core::port::OutboundSink;
use clara_core::{ChannelKind, ConversationRef, FileBlob, MemoryKind, Outbound};
use clara_gateway::http::HttpConfig;
use clara_testkit::FakeReply;
use clara_tools::{Tool, ToolContext, ToolError, ToolTraits};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long one browser script may run (a hang guard).
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);

pub(crate) fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Panics with how to install whatever the browser tests need and is missing.
pub(crate) fn require_browser_tools() {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the browser tests need Node.js 20 or newer: install it (Debian: apt-get install nodejs npm)"
    );
    let chromium = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "the browser tests need Chromium at {}: install it with `apt-get install -y --no-install-recommends chromium` (or set CHROMIUM_PATH)",
        chromium.display()
    );
    let playwright = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "the browser tests need playwright-core: run `npm ci` in {}",
        browser_dir().display()
    );
}

pub(crate) async fn run_script(script: &str, args: &[&str]) {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(browser_dir().join(script))
        .args(args)
        .current_dir(browser_dir())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_LIMIT:?}"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{script} stdout:\n{stdout}\n{script} stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

pub(crate) fn screenshots() -> PathBuf {
    target_dir().join("screenshots")
}

fn words(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_person_chats_stops_reloads_and_fixes_memories_in_chromium() {
    require_browser_tools();
    let server = Server::start(HttpConfig::new(true)).await;
    for (text, kind) in [
        ("Prefers tea over coffee", MemoryKind::Preference),
        ("Works as a nurse in Lyon", MemoryKind::Fact),
        ("Has a cello lesson on Thursdays", MemoryKind::Event),
        ("Answer in short sentences", MemoryKind::Instruction),
    ] {
        server.remember("owner", text, kind).await;
    }
    // The fake model's answers, in the order the script asks.
    server.fake.push(FakeReply::Stream {
        chunks: words(
            "Hi! I'm **Clara**. Here is what I can do:\n\n- answer questions\n- remember what matters to you\n- use tools, like the clock\n\nWhat would you like to do?",
        ),
        delay: Duration::from_millis(90),
    });
    server.fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![("clara__current_time".into(), "{}".into())],
        fragmented: false,
    });
    server
        .fake
        .push(FakeReply::text("It's a little past noon where you are."));
    let mut story = vec!["Once upon a time, ".to_owned()];
    story.extend((0..80).map(|i| format!("a fox walked a little further ({i}), ")));
    story.push("The end.".to_owned());
    server.fake.push(FakeReply::Stream {
        chunks: story,
        delay: Duration::from_millis(150),
    });
    let shots = screenshots();
    run_script("chat.mjs", &[&server.url, path_str(&shots)]).await;

    // The high tier picked on the page reached the model.
    let models: Vec<Option<String>> = server
        .fake
        .requests()
        .iter()
        .map(|r| r.model().map(str::to_owned))
        .collect();
    assert_eq!(
        models.get(1).cloned().flatten().as_deref(),
        Some("fake-high"),
        "{models:?}"
    );
    // The stopped story's stream was dropped, not read to its end.
    assert!(server.fake.dropped_streams() >= 1);
    server.shutdown().await;
}

#[tokio::test]
async fn off_loopback_the_page_asks_for_the_password_in_chromium() {
    require_browser_tools();
    let password = "a long and happy password";
    let config = HttpConfig::new(false).with_password(password).unwrap();
    let mut config = config;
    // Chromium keeps Secure cookies on http://127.0.0.1 (a trustworthy origin),
    // so the test runs over plain HTTP with the production cookie flags.
    assert!(config.secure_cookie);
    config.person.name = "Ann".into();
    let server = Server::start_on("0.0.0.0:0", config).await;
    run_script(
        "login.mjs",
        &[&server.url, password, path_str(&screenshots())],
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn stored_tool_runs_show_as_chips_with_their_details_as_text_in_chromium() {
    require_browser_tools();
    let server = Server::start(HttpConfig::new(true)).await;
    crate::http_tool_history::seed_history(&server, "page:owner").await;
    run_script("tool_history.mjs", &[&server.url, path_str(&screenshots())]).await;
    server.shutdown().await;
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// What the fake sandbox's CSV holds (50 bytes).
const SALES_CSV: &str = "month,sales\njan,60\nfeb,120\nmar,90\napr,160\nmay,130\n";

/// A stand-in for the sandbox's Python tool: it reports its output as it
/// goes, waits until the test lets it finish (`POST /test/release`, sent by
/// the browser script once it has seen the live output), then sends a chart
/// and a CSV with the reply, through the `web` sink, as the engine does with
/// what the sandbox reports.
struct FakePython {
    web: Arc<dyn OutboundSink>,
    release: Arc<Notify>,
}

#[async_trait]
impl Tool for FakePython {
    fn name(&self) -> &str {
        "run_python"
    }
    fn description(&self) -> &str {
        "Runs Python in the person's sandbox."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]})
    }
    fn traits(&self) -> ToolTraits {
        ToolTraits::read_only()
    }
    fn timeout(&self) -> Option<Duration> {
        Some(SCRIPT_LIMIT)
    }
    async fn call(&self, _: Value, context: &ToolContext) -> Result<String, ToolError> {
        let thought = context.thought.expect("a reply's call names its thought");
        let page = ConversationRef {
            platform: "web".into(),
            channel: "page:owner".into(),
            kind: ChannelKind::Direct,
        };
        let name = "sandbox__run_python".to_owned();
        let mut output = String::new();
        for line in ["epoch 1/3", "epoch 2/3", "epoch 3/3: loss 0.12"] {
            output.push_str(line);
            output.push('\n');
            let progress = Outbound::ToolProgress {
                thought,
                name: name.clone(),
                text: output.clone(),
            };
            self.web.deliver(&page, progress).await.unwrap();
        }
        self.release.notified().await;
        for (file, caption) in [
            (
                FileBlob::new("chart.png", crate::http_files::chart_png()),
                Some("Sales by month".to_owned()),
            ),
            (
                FileBlob::new("data.csv", SALES_CSV.as_bytes().to_vec()),
                None,
            ),
        ] {
            let outbound = Outbound::File {
                thought,
                file,
                caption,
            };
            self.web.deliver(&page, outbound).await.unwrap();
        }
        Ok("Saved chart.png and data.csv.".into())
    }
}

#[tokio::test]
async fn a_chart_arrives_as_a_picture_live_output_shows_and_files_upload_in_chromium() {
    require_browser_tools();
    assert_eq!(SALES_CSV.len(), 50);
    let release = Arc::new(Notify::new());
    let on_release = release.clone();
    let extra = axum::Router::new().route(
        "/test/release",
        axum::routing::post(move || {
            let release = on_release.clone();
            async move {
                release.notify_one();
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let mut config = HttpConfig::new(true);
    config.max_file_bytes = 64 * 1024;
    let max_file = config.max_file_bytes.to_string();
    let server = Server::start_with("127.0.0.1:0", config, extra).await;
    server.engine.tools().register(
        "sandbox",
        Arc::new(FakePython {
            web: server.web.clone(),
            release,
        }),
    );
    server.fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "sandbox__run_python".into(),
            r#"{"code":"import matplotlib"}"#.into(),
        )],
        fragmented: false,
    });
    server.fake.push(FakeReply::text("Here is your chart."));
    server
        .fake
        .push(FakeReply::text("It has two columns, and a red dot."));
    run_script(
        "files.mjs",
        &[&server.url, path_str(&screenshots()), &max_file],
    )
    .await;

    // The attached picture reached the model with the message.
    let asked = server
        .fake
        .requests()
        .into_iter()
        .find(|r| {
            r.last_user_text()
                .is_some_and(|t| t.contains("What is in these?"))
        })
        .expect("the message with files reached the model");
    let dot = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    assert!(asked.body.to_string().contains(dot), "{}", asked.body);
    server.shutdown().await;
}

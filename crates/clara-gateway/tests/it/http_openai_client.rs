//! The official `openai` Python package talks to Clara: a whole answer, a
//! streamed one, and the errors it expects (`tests/openai_client.py`).
//!
//! Fails, never skips, when python3 or the `openai` package is missing:
//! `.ci/run` installs it, and the message says how.

use crate::http_support::Server;
use clara_gateway::http::HttpConfig;
use clara_testkit::FakeReply;
use std::path::PathBuf;
use std::time::Duration;

/// The pinned version `.ci/run` installs.
const OPENAI_PACKAGE: &str = "openai==3.57.0";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test]
async fn the_openai_python_package_gets_whole_and_streamed_answers() {
    let check = std::process::Command::new(python())
        .args(["-c", "import openai"])
        .output();
    assert!(
        check.is_ok_and(|o| o.status.success()),
        "this test needs Python 3 with the openai package: run `{} -m pip install '{OPENAI_PACKAGE}'`",
        python()
    );
    let key = "sk-clara-python-test";
    let server = Server::start_on("0.0.0.0:0", HttpConfig::new(false).with_api_key(key)).await;
    server
        .fake
        .push(FakeReply::text("Paris is the capital of France."));
    server.fake.push(FakeReply::Stream {
        chunks: vec!["Un, ".into(), "deux, ".into(), "trois.".into()],
        delay: Duration::from_millis(20),
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let mut command = tokio::process::Command::new(python());
    command
        .arg(&script)
        .arg(&server.url)
        .arg(key)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the script finishes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ok"),
        "openai_client.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The streamed request asked for the high tier's model, the last the low one's.
    let models: Vec<Option<String>> = server
        .fake
        .requests()
        .iter()
        .map(|r| r.model().map(str::to_owned))
        .collect();
    assert_eq!(models.len(), 3, "{models:?}");
    assert_eq!(models[1].as_deref(), Some("fake-high"));
    assert_eq!(models[2].as_deref(), Some("fake-low"));
    server.shutdown().await;
}

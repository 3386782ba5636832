//! Running the real `clara` binary in tests: a clean environment, the fake OpenAI
//! server as its model, and its output as text.
#![allow(dead_code)]

pub mod pg;

use clara_testkit::fake_openai::FakeOpenAi;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The API key the tests give Clara; it must never be printed.
pub const SECRET: &str = "sk-test-5ecr3t-do-not-print";

/// `clara` with a clean environment: only what the test gives it (one candle
/// thread, as CI runs), and the machine's models folder, so that no test fetches
/// the models again into its temporary home.
pub fn clara(data_dir: &Path, cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clara"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("USER", "ann")
        .env("CLARA_DATA_DIR", data_dir)
        .env("CANDLE_NUM_THREADS", "1")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(feature = "local-model")]
    cmd.env("CLARA_MODELS_DIR", clara_llm::local::default_models_dir());
    cmd
}

/// Points `cmd` at the fake OpenAI server through the old system's variable names.
pub fn with_fake(cmd: &mut Command, fake: &FakeOpenAi) {
    cmd.env("LLM_PROVIDER", "openai")
        .env("CUSTOM_OPENAI_BASE_URL", fake.base_url())
        .env("CUSTOM_OPENAI_MODEL", "fake-model")
        .env("CUSTOM_OPENAI_API_KEY", SECRET);
}

/// Runs `cmd` with `stdin` piped in; waits at most a minute for it to exit.
pub async fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("clara exits")
        .unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port that was free a moment ago, for `CLARA_GATEWAY_PORT`.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Waits (a minute at most) until `clara serve` on `port` says it is ready.
pub async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "clara serve did not come up on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops a running `clara` with SIGTERM, as Ctrl-C or a service manager
/// would, and returns what it wrote (waiting 30 s at most).
pub async fn terminate(child: tokio::process::Child) -> Output {
    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("clara exits after SIGTERM")
        .unwrap()
}

/// The requests that answered the person, leaving out the background memory jobs'
/// (extraction and decisions), which may run whenever Clara is idle.
pub fn chat_requests(fake: &FakeOpenAi) -> Vec<clara_testkit::RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| {
            let system = r.body["messages"][0]["content"].as_str().unwrap_or("");
            !system.contains("long-term memories")
        })
        .collect()
}

/// The web page's login on loopback (no password there): the cookie to send
/// (`name=value`) and the CSRF token state-changing calls need.
pub async fn page_login(base: &str) -> (String, String) {
    let me = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .send()
        .await
        .unwrap();
    let cookie = me.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me: serde_json::Value = me.json().await.unwrap();
    let csrf = me["csrf"]
        .as_str()
        .expect("a loopback page gets a login")
        .to_owned();
    (cookie, csrf)
}

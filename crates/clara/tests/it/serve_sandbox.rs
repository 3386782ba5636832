//! "Plot this", end to end through the real binary: a person sends a CSV on
//! Telegram, on Discord and on the web page; the model (the fake OpenAI
//! server, scripted) runs Python in the real bubblewrap sandbox with pandas
//! and matplotlib, reading the upload from the person's workspace, and sends
//! the chart back; it arrives as a picture on each platform.

use crate::common::{
    chat_requests, clara, free_port, page_login, terminate, text, wait_ready, with_fake,
};
use clara_testkit::fake_discord::{
    FakeDiscord, FakeUser as DiscordUser, UserMessage as DiscordMessage,
};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser, UserMessage};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CSV: &[u8] = b"x,y\n1,1\n2,4\n3,9\n4,16\n";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The sandbox's Python environment, made once for every test of the
/// workspace (the sandbox crate's tests use the same place) by the real
/// `clara sandbox setup`.
async fn python_env(dir: &Path) -> PathBuf {
    let env = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clara-py");
    let mut setup = clara(&dir.join("setup-data"), dir);
    // pip needs the machine's certificates and proxies.
    for (key, value) in std::env::vars() {
        if key.starts_with("PIP_")
            || key.ends_with("_CERT_FILE")
            || key.ends_with("_PROXY")
            || key.ends_with("_proxy")
        {
            setup.env(key, value);
        }
    }
    setup
        .env("CLARA_SANDBOX__PYTHON_ENV", &env)
        .args(["sandbox", "setup"]);
    let out = tokio::time::timeout(Duration::from_secs(600), setup.output())
        .await
        .expect("clara sandbox setup finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "clara sandbox setup failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    env
}

/// The script: run Python on the upload, then send the chart, then answer.
fn script(llm: &FakeOpenAi) {
    let code = "import pandas as pd\nimport matplotlib.pyplot as plt\n\
                df = pd.read_csv('/workspace/uploads/data.csv')\n\
                df.plot(x='x', y='y').get_figure().savefig('chart.png')\n\
                print('rows', len(df))\n";
    llm.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![("code__python".into(), json!({ "code": code }).to_string())],
        fragmented: false,
    });
    llm.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "files__send_file".into(),
            json!({ "path": "chart.png", "caption": "Your chart" }).to_string(),
        )],
        fragmented: false,
    });
    llm.push(FakeReply::text("Here is the plot."));
}

/// What the model was told after the run: the tool result of the request
/// that followed the `code__python` call.
fn python_result(llm: &FakeOpenAi, nth_run: usize) -> String {
    let results: Vec<String> = chat_requests(llm)
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .filter(|c| c.contains("rows"))
        .collect();
    results.get(nth_run).cloned().unwrap_or_default()
}

#[tokio::test]
async fn plot_this_sends_the_chart_back_as_a_picture_on_telegram_discord_and_the_web_page() {
    let dir = tempfile::tempdir().unwrap();
    let python = python_env(dir.path()).await;
    let llm = FakeOpenAi::start().await;
    let tg = FakeTelegram::start().await;
    let discord = FakeDiscord::start().await;
    let port = free_port();
    std::fs::write(
        dir.path().join("clara.toml"),
        format!(
            "[sandbox]\nmode = \"bwrap\"\npython_env = \"{}\"\n",
            python.display()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut cmd = clara(&data, dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("TG_BOT_TOKEN", tg.token())
        .env("TELEGRAM_API_URL", tg.api_url())
        .env("DISCORD_BOT_TOKEN", discord.token())
        .env("DISCORD_API_URL", discord.api_url())
        .env("DISCORD_GATEWAY_URL", discord.gateway_url())
        .env("CLARA_MEMORY__ENABLED", "false")
        .env("CLARA_GATEWAY_PORT", port.to_string());
    let child = cmd.arg("serve").spawn().unwrap();
    wait_ready(port).await;
    discord.wait_live().await;

    // Telegram: a document with a caption.
    script(&llm);
    let ann = FakeUser::new(4242, "Ann");
    let chat = FakeChat::private(&ann);
    tg.send(UserMessage::document(
        &chat,
        &ann,
        "data.csv",
        "text/csv",
        CSV.to_vec(),
        Some("plot this"),
    ));
    tg.wait_for("the chart on Telegram", |tg| !tg.sent_files().is_empty())
        .await;
    let sent = tg.sent_files().remove(0);
    assert_eq!(sent.method, "sendPhoto");
    assert_eq!(sent.filename, "chart.png");
    assert!(sent.bytes.starts_with(PNG_MAGIC), "a PNG");
    assert_eq!(sent.caption.as_deref(), Some("Your chart"));
    tg.wait_for("the answer on Telegram", |tg| {
        tg.bot_messages(ann.id)
            .iter()
            .any(|m| m.text.contains("Here is the plot."))
    })
    .await;
    // The model read the upload's path, and the run read the upload.
    let first = chat_requests(&llm).remove(0);
    let said = first.body.to_string();
    assert!(
        said.contains("saved as /workspace/uploads/data.csv"),
        "{said}"
    );
    let result = python_result(&llm, 0);
    assert!(result.contains("rows 4"), "{result}");
    assert!(
        result.contains("chart.png"),
        "the new file is named: {result}"
    );

    // Discord: an attachment in a DM.
    script(&llm);
    let bo = DiscordUser::new(5151, "Bo");
    discord.post(DiscordMessage::dm(7000, &bo, "plot this").with_attachment(
        "data.csv",
        Some("text/csv"),
        CSV,
    ));
    discord
        .wait_until("the chart on Discord", |d| !d.sent_files().is_empty())
        .await;
    let sent = discord.sent_files().remove(0);
    assert_eq!(sent.filename, "chart.png");
    assert!(sent.data.starts_with(PNG_MAGIC), "a PNG");
    assert_eq!(sent.content, "Your chart");
    assert!(python_result(&llm, 1).contains("rows 4"));

    // The web page: the page's own login on loopback, a message with the file.
    script(&llm);
    let base = format!("http://127.0.0.1:{port}");
    let (cookie, csrf) = page_login(&base).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    use base64::Engine as _;
    let sent = client
        .post(format!("{base}/api/chat/messages"))
        .header("x-csrf-token", &csrf)
        .json(&json!({
            "text": "plot this",
            "files": [{ "name": "data.csv", "media_type": "text/csv",
                        "data": base64::engine::general_purpose::STANDARD.encode(CSV) }],
        }))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.text().await.unwrap());
    let file = web_file_event(&client, &base).await;
    assert_eq!(file["name"], "chart.png");
    assert_eq!(file["caption"], "Your chart");
    let picture = client
        .get(format!("{base}{}", file["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(picture.headers()["content-type"], "image/png");
    assert!(picture.bytes().await.unwrap().starts_with(PNG_MAGIC));
    assert!(python_result(&llm, 2).contains("rows 4"));

    // Each person has a workspace of their own, holding their upload and chart.
    let workspaces: Vec<_> = std::fs::read_dir(data.join("workspaces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(workspaces.len(), 3, "{workspaces:?}");
    for workspace in &workspaces {
        assert_eq!(
            std::fs::read(workspace.join("uploads/data.csv")).unwrap(),
            CSV
        );
        assert!(workspace.join("chart.png").exists());
    }

    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    assert!(!log.contains(tg.token()) && !log.contains(&discord.token()));
}

/// The `file` event of the web page's conversation: the page's event stream
/// starts with `hello`, which lists the files Clara sent so far; waits until
/// the chart is among them.
async fn web_file_event(client: &reqwest::Client, base: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut events = client
            .get(format!("{base}/api/chat/events"))
            .send()
            .await
            .unwrap();
        let mut seen = String::new();
        // The first event is enough: `hello` carries the kept files.
        while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(2), events.chunk())
            .await
            .unwrap_or(Ok(None))
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\n\n") {
                break;
            }
        }
        let hello = seen
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok());
        if let Some(file) = hello
            .as_ref()
            .and_then(|h| h["files"].as_array())
            .and_then(|files| files.iter().find(|f| f["name"] == "chart.png"))
        {
            return file.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no chart on the web page: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// With bubblewrap unavailable (not on the PATH) and Docker off, the code
/// tools are not offered, the log says why once, and the file tools remain.
#[tokio::test]
async fn without_a_working_sandbox_there_are_no_code_tools_and_the_log_says_why_once() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("PATH", dir.path().join("no-bin"))
        .env("SANDBOX_MODE", "bwrap")
        .env("CLARA_MEMORY__ENABLED", "false");
    // `-v`: a chat shows the operator's log only when asked.
    let out = crate::common::run(cmd.args(["-v", "chat"]), "hello\n").await;
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.matches("The code sandbox is off").count(),
        1,
        "one sentence, once: {log}"
    );
    assert!(log.contains("bubblewrap"), "{log}");
    let requests = chat_requests(&llm);
    assert_eq!(requests.len(), 1);
    for request in requests {
        let tools: Vec<&str> = request.body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["function"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert!(!tools.iter().any(|t| t.starts_with("code__")), "{tools:?}");
        assert!(tools.contains(&"files__read_file"), "{tools:?}");
    }
}

/// The owner sees why on the web page too: the Tools panel lists the `code`
/// server as failed, with the sandbox's one sentence.
#[tokio::test]
async fn the_tools_panel_tells_the_owner_why_the_sandbox_is_off() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("PATH", dir.path().join("no-bin"))
        .env("SANDBOX_MODE", "bwrap")
        .env("CLARA_MEMORY__ENABLED", "false")
        .env("CLARA_GATEWAY_PORT", port.to_string());
    let child = cmd.arg("serve").spawn().unwrap();
    wait_ready(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let (cookie, _) = page_login(&base).await;
    let tools: Value = reqwest::Client::new()
        .get(format!("{base}/api/tools"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = tools["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "code"))
        .unwrap_or_else(|| panic!("no code server in {tools}"));
    assert_eq!(code["state"], "failed");
    let detail = code["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("The code sandbox is off: bubblewrap"),
        "{detail}"
    );
    let out = terminate(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

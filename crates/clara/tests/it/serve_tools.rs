//! `clara serve` with a real MCP server in `clara.toml`: the model (the fake
//! OpenAI server, scripted to call a tool) asks for the server's tool, the
//! owner approves on Telegram with a button ("always"), the tool runs, and its result
//! reaches the model as data. When Clara stops, the server's process goes too.

use crate::common::{SECRET, chat_requests, clara, terminate, text, with_fake};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser, UserMessage};
use clara_testkit::mcp_servers::{PythonMcpServer, need};

/// Pids of processes whose environment holds `marker`.
fn processes_marked(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| String::from_utf8_lossy(&env).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test]
async fn an_mcp_tool_runs_after_the_owner_approves_on_telegram() {
    let time_server = need("venv/bin/mcp-server-time");
    let llm = FakeOpenAi::start().await;
    llm.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "time__get_current_time".into(),
            r#"{"timezone": "UTC"}"#.into(),
        )],
        fragmented: false,
    });
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("clara-test-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(
        dir.path().join("clara.toml"),
        format!(
            r#"
[tools]
owners = ["telegram:4242"]

[[mcp.servers]]
name = "time"
command = "{}"
args = ["--local-timezone", "UTC"]
env = {{ CLARA_TEST_MARK = "{marker}" }}
"#,
            time_server.display()
        ),
    )
    .unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("TG_BOT_TOKEN", tg.token())
        .env("TELEGRAM_API_URL", tg.api_url())
        .env("CLARA_GATEWAY_PORT", "0");
    let child = cmd.arg("serve").spawn().unwrap();

    let ann = FakeUser::new(4242, "Ann");
    let chat = FakeChat::private(&ann);
    tg.send(UserMessage::text(&chat, &ann, "what time is it in UTC?"));
    tg.wait_for("the question to the owner", |tg| {
        tg.bot_messages(ann.id)
            .iter()
            .any(|m| !m.buttons().is_empty())
    })
    .await;
    let ask = tg
        .bot_messages(ann.id)
        .into_iter()
        .find(|m| !m.buttons().is_empty())
        .unwrap();
    assert!(ask.text.contains("time__get_current_time"), "{}", ask.text);
    assert!(ask.text.contains(r#"{"timezone":"UTC"}"#), "{}", ask.text);
    tg.press_button(ann.id, ask.message_id, &ann, "Always (these arguments)");

    tg.wait_for("Clara's answer", |tg| {
        tg.bot_messages(ann.id)
            .iter()
            .any(|m| m.text == "You said: what time is it in UTC?")
    })
    .await;
    tg.wait_for("the question closed", |tg| {
        tg.bot_messages(ann.id)
            .iter()
            .any(|m| m.message_id == ask.message_id && m.buttons().is_empty())
    })
    .await;

    // The model read the server's real answer, wrapped as data with its source.
    let requests = chat_requests(&llm);
    let second = requests.get(1).expect("the model was asked again");
    let tool_result = second.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the tool's result");
    let content = tool_result["content"].as_str().unwrap();
    assert!(
        content.contains("<untrusted-data source=\"time__get_current_time\">"),
        "{content}"
    );
    assert!(
        content.contains("\"timezone\": \"UTC\"") || content.contains("\"timezone\":\"UTC\""),
        "{content}"
    );
    assert!(!processes_marked(&marker).is_empty(), "the server runs");

    // `clara mcp list`, another process, shows what the running Clara sees.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let mut list = clara(&dir.path().join("data"), dir.path());
        let out = crate::common::run(list.args(["mcp", "list"]), "").await;
        let listed = text(&out.stdout);
        if listed.contains("now: ready, 2 tools") || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(listed.contains("now: ready, 2 tools"), "{listed}");
    assert!(listed.contains("the running Clara, pid"), "{listed}");

    // "Always" left a standing approval, which the owner can see and withdraw.
    let mut grants = clara(&dir.path().join("data"), dir.path());
    let out = crate::common::run(grants.args(["tools", "grants"]), "").await;
    let shown = text(&out.stdout);
    assert!(
        shown.contains("time__get_current_time") && shown.contains("by telegram:4242"),
        "{shown}"
    );
    let mut revoke = clara(&dir.path().join("data"), dir.path());
    let out = crate::common::run(
        revoke.args(["tools", "revoke", "time__get_current_time"]),
        "",
    )
    .await;
    assert!(
        text(&out.stdout).contains("Withdrew 1 standing approval"),
        "{}",
        text(&out.stdout)
    );

    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    assert!(!log.contains(SECRET) && !log.contains(tg.token()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_marked(&marker).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        processes_marked(&marker).is_empty(),
        "the MCP server stops with Clara"
    );
}

#[tokio::test]
async fn one_conversation_uses_a_tool_of_each_real_mcp_server() {
    let everything =
        need("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let filesystem =
        need("node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let time = need("venv/bin/mcp-server-time");
    let http = PythonMcpServer::start("http_server.py", &[]);
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "buy oat milk").unwrap();
    std::fs::write(
        dir.path().join("clara.toml"),
        format!(
            r#"
[tools]
# The owner allows these servers' tools outright: no question is asked.
rules = [
  {{ action = "allow", tool = "everything__echo" }},
  {{ action = "allow", tool = "fs__read_text_file" }},
  {{ action = "allow", tool = "time__*" }},
  {{ action = "allow", tool = "calc__add" }},
]

[[mcp.servers]]
name = "everything"
command = "node"
args = ["{everything}", "stdio"]

[[mcp.servers]]
name = "fs"
command = "node"
args = ["{filesystem}", "{notes}"]

[[mcp.servers]]
name = "time"
command = "{time}"
args = ["--local-timezone", "UTC"]

[[mcp.servers]]
name = "calc"
url = "{url}"
"#,
            everything = everything.display(),
            filesystem = filesystem.display(),
            notes = notes.display(),
            time = time.display(),
            url = http.url,
        ),
    )
    .unwrap();
    let llm = FakeOpenAi::start().await;
    let todo = notes.join("todo.txt");
    llm.push(FakeReply::ToolCalls {
        text_before: "Let me check.".into(),
        calls: vec![
            (
                "everything__echo".into(),
                r#"{"message": "hello MCP"}"#.into(),
            ),
            (
                "fs__read_text_file".into(),
                serde_json::json!({ "path": todo }).to_string(),
            ),
            (
                "time__get_current_time".into(),
                r#"{"timezone": "UTC"}"#.into(),
            ),
            ("calc__add".into(), r#"{"a": 40, "b": 2}"#.into()),
        ],
        fragmented: true,
    });
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    let out = crate::common::run(cmd.arg("chat"), "what do I have to do today?\n").await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.contains("You said: what do I have to do today?"),
        "{stdout}"
    );

    let requests = chat_requests(&llm);
    let second = requests.get(1).expect("the model was asked again");
    let results: Vec<String> = second.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results.len(), 4, "{results:#?}");
    assert!(results[0].contains("hello MCP"), "{}", results[0]);
    assert!(results[1].contains("buy oat milk"), "{}", results[1]);
    assert!(results[2].contains("UTC"), "{}", results[2]);
    assert!(results[3].contains("42"), "{}", results[3]);
    for result in &results {
        assert!(result.contains("<untrusted-data source="), "{result}");
    }

    // What each tool did is on record, with who let it run.
    let mut log = clara(&dir.path().join("data"), dir.path());
    let logged = crate::common::run(log.args(["tools", "log"]), "").await;
    let logged = text(&logged.stdout);
    for tool in [
        "everything__echo",
        "fs__read_text_file",
        "time__get_current_time",
        "calc__add",
    ] {
        assert!(logged.contains(tool), "{tool} missing from:\n{logged}");
    }
}

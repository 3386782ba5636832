//! Tool approvals on the web page: Clara's question reaches the page's event
//! stream (and the `hello` of a tab that connects later), the owner's answer
//! posted to `/api/chat/approvals` reaches the engine, and the tool runs (or
//! not). The owner's Tools panel (`/api/tools`): servers, owners, rules.
//! In Chromium: the card, its buttons and the Tools panel.

use crate::http_support::{Server, WAIT};
use async_trait::async_trait;
use clara_gateway::http::{HttpConfig, ToolServerStatus, ToolServers};
use clara_testkit::FakeReply;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use futures::StreamExt;
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// The arguments the model sends: untrusted text that tries to be markup.
pub const NOTE_ARGUMENTS: &str =
    r#"{"text":"<img src=x onerror=\"document.body.dataset.pwned=1\">hi","to":"ann@example.com"}"#;

/// A tool that sends something to someone else: the policy asks the owner.
#[derive(Clone, Default)]
pub struct SendNote {
    /// The arguments of every call that ran.
    pub calls: Arc<Mutex<Vec<Value>>>,
}

#[async_trait]
impl Tool for SendNote {
    fn name(&self) -> &str {
        "send_note"
    }
    fn description(&self) -> &str {
        "Sends a short note to someone."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": { "to": { "type": "string" }, "text": { "type": "string" } },
            "required": ["to", "text"]
        })
    }
    fn traits(&self) -> ToolTraits {
        ToolTraits {
            effect: Effect::Send,
            ..ToolTraits::default()
        }
    }
    async fn call(&self, arguments: Value, _: &ToolContext) -> Result<String, ToolError> {
        self.calls.lock().push(arguments);
        Ok("Note sent.".into())
    }
}

/// Gives the engine `mail__send_note`, and scripts the model: call it with
/// [`NOTE_ARGUMENTS`], then say `answer`.
pub fn script_a_note(server: &Server, answer: &str) -> SendNote {
    let tool = SendNote::default();
    server
        .engine
        .tools()
        .register("mail", Arc::new(tool.clone()));
    server.fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![("mail__send_note".into(), NOTE_ARGUMENTS.into())],
        fragmented: false,
    });
    server.fake.push(FakeReply::text(answer));
    tool
}

/// Tool servers whose state the test sets, and which records what the page
/// turned on or off.
#[derive(Default)]
pub struct FakeServers {
    pub servers: Mutex<Vec<ToolServerStatus>>,
}

impl FakeServers {
    pub fn with_everything() -> Arc<Self> {
        Arc::new(Self {
            servers: Mutex::new(vec![
                ToolServerStatus {
                    name: "everything".into(),
                    transport: "stdio".into(),
                    state: "ready".into(),
                    detail: "ready, 2 tools".into(),
                    enabled: true,
                    tools: vec!["everything__echo".into(), "everything__get_sum".into()],
                    restarts: 1,
                    source: Some("npm:@modelcontextprotocol/server-everything@2026.8.31".into()),
                },
                ToolServerStatus {
                    name: "notes".into(),
                    transport: "http".into(),
                    state: "disabled".into(),
                    detail: "<b>disabled</b>".into(),
                    enabled: false,
                    ..ToolServerStatus::default()
                },
            ]),
        })
    }
}

impl ToolServers for FakeServers {
    fn status(&self) -> Vec<ToolServerStatus> {
        self.servers.lock().clone()
    }
    fn can_set_enabled(&self) -> bool {
        true
    }
    fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        let mut servers = self.servers.lock();
        let server = servers
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or("no such server")?;
        server.enabled = enabled;
        server.state = if enabled { "starting" } else { "disabled" }.into();
        server.detail = server.state.clone();
        Ok(())
    }
}

/// The page's login cookie and CSRF token (on loopback `/api/me` hands them out).
async fn page_login(server: &Server) -> (String, String) {
    let me = server
        .client()
        .get(format!("{}/api/me", server.url))
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
    let body: Value = me.json().await.unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_owned())
}

/// Reads a page's event stream one event at a time.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl Events {
    async fn open(server: &Server, cookie: &str) -> Events {
        let response = server
            .client()
            .get(format!("{}/api/chat/events", server.url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Events {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                    return serde_json::from_str(data.trim_start()).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("an event comes in time")
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event of type `kind`, skipping others.
    async fn until(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next().await;
            if event["type"] == kind {
                return event;
            }
        }
    }
}

async fn post_answer(
    server: &Server,
    cookie: &str,
    csrf: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = server
        .client()
        .post(format!("{}/api/chat/approvals", server.url))
        .header("cookie", cookie)
        .json(&body);
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().await.unwrap()
}

async fn say(server: &Server, cookie: &str, csrf: &str, text: &str) {
    let sent = server
        .client()
        .post(format!("{}/api/chat/messages", server.url))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_owner_approves_a_tool_on_the_page_and_it_runs() {
    let server = Server::start(HttpConfig::new(true)).await;
    let tool = script_a_note(&server, "Sent it.");
    let (cookie, csrf) = page_login(&server).await;
    let mut events = Events::open(&server, &cookie).await;
    assert_eq!(events.next().await["asks"], json!([]), "nothing asked yet");
    say(&server, &cookie, &csrf, "Send Ann a note").await;

    let ask = events.until("ask").await;
    let prompt = &ask["prompt"];
    assert_eq!(prompt["tool"], "mail__send_note");
    assert_eq!(prompt["arguments"], NOTE_ARGUMENTS);
    assert!(prompt["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let id = prompt["id"].as_str().unwrap().to_owned();
    assert!(
        tool.calls.lock().is_empty(),
        "nothing runs before the answer"
    );

    // A tab that connects now sees the open question.
    let mut late = Events::open(&server, &cookie).await;
    let hello = late.next().await;
    assert_eq!(hello["asks"].as_array().unwrap().len(), 1, "{hello}");
    assert_eq!(hello["asks"][0]["id"], id.as_str());

    // The page's own checks: the CSRF token, a well-formed id and verdict.
    let no_csrf = post_answer(&server, &cookie, None, json!({"id": id, "verdict": "once"})).await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let bad = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": id, "verdict": "maybe"}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad_id = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": "nothex!!", "verdict": "once"}),
    )
    .await;
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    assert!(tool.calls.lock().is_empty());

    let answered = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": id, "verdict": "once"}),
    )
    .await;
    assert_eq!(answered.status(), StatusCode::ACCEPTED);
    let closed = events.until("ask_closed").await;
    assert_eq!(
        closed,
        json!({"type": "ask_closed", "id": id, "result": "approved", "outcome": "Approved once."})
    );
    events.until("end").await;
    assert_eq!(
        *tool.calls.lock(),
        vec![serde_json::from_str::<Value>(NOTE_ARGUMENTS).unwrap()]
    );

    // Answered: a second press is told so, and a new tab sees no question.
    let again = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": id, "verdict": "deny"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let error: Value = again.json().await.unwrap();
    assert_eq!(error["error"]["code"], "question_closed");
    let hello = Events::open(&server, &cookie).await.next().await;
    assert_eq!(hello["asks"], json!([]));
    // The history says who let the tool run: the page's owner.
    let reply = hello["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap();
    assert_eq!(reply["text"], "Sent it.");
    assert_eq!(
        reply["tools"][0]["permission"],
        json!({"by": "owner", "owner": "web:owner", "always": false})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_denied_tool_does_not_run() {
    let server = Server::start(HttpConfig::new(true)).await;
    let tool = script_a_note(&server, "I did not send it.");
    let (cookie, csrf) = page_login(&server).await;
    let mut events = Events::open(&server, &cookie).await;
    events.next().await;
    say(&server, &cookie, &csrf, "Send Ann a note").await;
    let id = events.until("ask").await["prompt"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answered = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": id, "verdict": "deny"}),
    )
    .await;
    assert_eq!(answered.status(), StatusCode::ACCEPTED);
    let closed = events.until("ask_closed").await;
    assert_eq!(closed["result"], "denied");
    assert_eq!(closed["outcome"], "Denied.");
    events.until("end").await;
    assert!(tool.calls.lock().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn the_owner_sees_tool_servers_and_rules_and_turns_a_server_on() {
    let servers = FakeServers::with_everything();
    let server = Server::start_with_tool_servers(HttpConfig::new(true), servers.clone()).await;
    let (cookie, csrf) = page_login(&server).await;
    let client = server.client();
    let view: Value = client
        .get(format!("{}/api/tools", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["owners"], json!(["cli:*", "web:owner"]));
    assert_eq!(view["timeout_secs"], 120);
    assert_eq!(view["rules"], json!([]));
    assert_eq!(view["can_toggle"], true);
    assert_eq!(
        view["servers"][0]["tools"],
        json!(["everything__echo", "everything__get_sum"])
    );
    assert_eq!(view["servers"][1]["enabled"], false);

    let turn_on = |name: &str, csrf: Option<&str>| {
        let mut request = client
            .post(format!("{}/api/tools/servers/{name}", server.url))
            .header("cookie", &cookie)
            .json(&json!({"enabled": true}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_eq!(
        turn_on("notes", None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        turn_on("nothing", Some(&csrf)).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        turn_on("notes", Some(&csrf)).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(servers.status()[1].enabled);
    server.shutdown().await;
}

#[tokio::test]
async fn a_page_person_who_is_not_an_owner_sees_no_tools_and_no_answer_counts() {
    let mut config = HttpConfig::new(true);
    config.person.id = "ann".into();
    config.person.name = "Ann".into();
    let server = Server::start_with_tool_servers(config, FakeServers::with_everything()).await;
    let (cookie, csrf) = page_login(&server).await;
    let client = server.client();
    let me: Value = client
        .get(format!("{}/api/me", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["owner"], false);
    let tools = client
        .get(format!("{}/api/tools", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(tools.status(), StatusCode::FORBIDDEN);
    let error: Value = tools.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_owner");
    // No question is open on Ann's page, so there is nothing to answer.
    let answer = post_answer(
        &server,
        &cookie,
        Some(&csrf),
        json!({"id": "0badc0de", "verdict": "once"}),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::CONFLICT);
    server.shutdown().await;
}

#[tokio::test]
async fn the_owner_approves_a_tool_on_its_card_and_sees_the_tools_panel_in_chromium() {
    use crate::http_browser::{path_str, require_browser_tools, run_script, screenshots};
    require_browser_tools();
    let servers = FakeServers::with_everything();
    let server = Server::start_with_tool_servers(HttpConfig::new(true), servers.clone()).await;
    let tool = script_a_note(&server, "Sent it.");
    run_script("approvals.mjs", &[&server.url, path_str(&screenshots())]).await;
    assert_eq!(
        *tool.calls.lock(),
        vec![serde_json::from_str::<Value>(NOTE_ARGUMENTS).unwrap()],
        "the approved call ran once, with the arguments shown"
    );
    assert!(servers.status()[1].enabled, "the page turned `notes` on");
    server.shutdown().await;
}

#[test]
fn the_openapi_file_documents_the_approval_and_tools_routes() {
    let spec = include_str!("../../../../docs/openapi.yaml");
    for route in [
        "/api/chat/approvals",
        "/api/tools",
        "/api/tools/servers/{name}",
    ] {
        assert!(
            spec.contains(&format!("\n  {route}:\n")),
            "docs/openapi.yaml does not document {route}"
        );
    }
    for event in ["`ask`", "`ask_closed`", "`asks`"] {
        assert!(spec.contains(event), "the page's {event} is not documented");
    }
}

//! The HTTP face over real sockets: the OpenAI-compatible API (answers, streams,
//! error shapes), access rules (loopback, login, CSRF, API key, host names),
//! each person's own memories and sessions, health and metrics.

use crate::http_support::{Server, WAIT, read_sse};
use clara_core::MemoryKind;
use clara_gateway::http::HttpConfig;
use clara_testkit::FakeReply;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn chat(text: &str) -> Value {
    json!({ "model": "clara", "messages": [{ "role": "user", "content": text }] })
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

#[tokio::test]
async fn a_completion_answers_in_openais_shape() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::text("Bonjour, Ann!"));
    let response = server
        .client()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({
            "model": "clara",
            "messages": [
                { "role": "system", "content": "ignored: Clara has her own persona" },
                { "role": "user", "content": "Say hello to Ann in French." }
            ],
            "user": "ann"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "clara");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "Bonjour, Ann!");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // Clara was told the person's last message, and the model saw it.
    let asked = server.fake.requests();
    assert_eq!(
        asked.last().unwrap().last_user_text().as_deref(),
        Some("Say hello to Ann in French.")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_streamed_completion_is_framed_like_openais() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::Stream {
        chunks: vec!["One, ".into(), "two, ".into(), "three.".into()],
        delay: Duration::from_millis(20),
    });
    let response = server
        .client()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({
            "model": "clara-high",
            "messages": [{ "role": "user", "content": "Count to three." }],
            "stream": true,
            "stream_options": { "include_usage": true }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let frames = read_sse(response, |d| d == "[DONE]").await;
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "One, two, three.");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "clara-high");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "stop")
        .expect("a finish chunk");
    assert!(finish["usage"].is_null());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].is_u64());
    // `clara-high` asked for the high tier's model.
    assert_eq!(server.fake.requests()[0].model(), Some("fake-high"));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let server = Server::start(HttpConfig::new(true)).await;
    let client = server.client();
    let url = format!("{}/v1/chat/completions", server.url);

    let (status, e) = error_of(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"model\": \"clara\", \"messages\": [")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "invalid_json");
    assert!(e["message"].as_str().unwrap().contains("JSON"));

    let (status, e) = error_of(
        client
            .post(&url)
            .json(&json!({ "model": "gpt-9", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["param"], "model");

    let (status, e) = error_of(
        client
            .post(&url)
            .json(&json!({ "model": "clara", "messages": "hi" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "messages");

    let huge = "x".repeat(5 * 1024 * 1024);
    let response = client.post(&url).json(&chat(&huge)).send().await;
    // The server answers 413 as soon as it sees the length; a client still
    // sending may see the connection close instead, which is also a refusal.
    if let Ok(response) = response {
        let (status, e) = error_of(response).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e["code"], "request_too_large");
    }

    let (status, e) = error_of(
        client
            .post(&url)
            .header("content-type", "text/plain")
            .body(chat("hi").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(e["message"].as_str().unwrap().contains("application/json"));

    let (status, e) = error_of(
        client
            .get(format!("{}/v1/nothing", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e["type"], "invalid_request_error");

    let (status, _) = error_of(
        client
            .delete(format!("{}/v1/models", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // Still serving.
    server.fake.push(FakeReply::text("Still here."));
    let body: Value = client
        .post(&url)
        .json(&chat("Are you there?"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Still here.");
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_model_is_a_502_that_must_not_be_retried() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::error(500, "upstream exploded"));
    let response = server
        .client()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&chat("hello?"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-should-retry"], "false");
    let (status, e) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(e["type"], "server_error");
    server.shutdown().await;
}

#[tokio::test]
async fn off_loopback_the_api_needs_its_key() {
    let config = HttpConfig::new(false).with_api_key("sk-clara-test-key");
    let server = Server::start_on("0.0.0.0:0", config).await;
    let client = server.client();
    let url = format!("{}/v1/chat/completions", server.url);

    let (status, e) = error_of(client.post(&url).json(&chat("hi")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["message"].as_str().unwrap().contains("API key"));

    let (status, e) = error_of(
        client
            .post(&url)
            .bearer_auth("sk-wrong")
            .json(&chat("hi"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["code"], "invalid_api_key");
    assert!(!e.to_string().contains("sk-clara-test-key"));

    let models: Value = client
        .get(format!("{}/v1/models", server.url))
        .bearer_auth("sk-clara-test-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["clara", "clara-low", "clara-mid", "clara-high"]);

    server.fake.push(FakeReply::text("Hi with a key."));
    let response = client
        .post(&url)
        .bearer_auth("sk-clara-test-key")
        .json(&chat("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Metrics too are behind the key here.
    let status = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

#[tokio::test]
async fn off_loopback_without_a_key_the_api_is_closed_and_says_why() {
    let server = Server::start_on("0.0.0.0:0", HttpConfig::new(false)).await;
    let (status, e) = error_of(
        server
            .client()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth("sk-anything")
            .json(&chat("hi"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["message"].as_str().unwrap().contains("CLARA_API_KEY"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_needs_a_login_and_a_csrf_token_off_loopback() {
    let config = HttpConfig::new(false)
        .with_password("correct horse battery")
        .unwrap();
    let server = Server::start_on("0.0.0.0:0", config).await;
    let client = server.client();
    let me: Value = client
        .get(format!("{}/api/me", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["logged_in"], false);
    assert_eq!(me["login_required"], true);
    assert!(me["csrf"].is_null());
    // A stranger learns nothing of Clara's setup before logging in.
    assert!(me.get("model").is_none() && me["person"].is_null(), "{me}");

    let send = |cookie: Option<&str>, csrf: Option<&str>| {
        let mut request = client
            .post(format!("{}/api/chat/messages", server.url))
            .json(&json!({ "text": "hello" }));
        if let Some(c) = cookie {
            request = request.header("cookie", c);
        }
        if let Some(t) = csrf {
            request = request.header("x-csrf-token", t);
        }
        request.send()
    };
    assert_eq!(
        send(None, None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let wrong = client
        .post(format!("{}/auth/login", server.url))
        .json(&json!({ "password": "wrong" }))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(e["code"], "wrong_password");

    let ok = client
        .post(format!("{}/auth/login", server.url))
        .json(&json!({ "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let set_cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = ok.json().await.unwrap();
    let csrf = body["csrf"].as_str().unwrap().to_owned();

    let no_csrf = send(Some(&cookie), None).await.unwrap();
    let (status, e) = error_of(no_csrf).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["code"], "csrf_failed");
    assert_eq!(
        send(Some(&cookie), Some("not-the-token"))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(Some(&cookie), Some(&csrf)).await.unwrap().status(),
        StatusCode::ACCEPTED
    );

    // The login opens the memory browser's endpoints, for this person only:
    // naming someone else (query or header) still shows the page's person.
    server
        .remember("owner", "The operator keeps bees", MemoryKind::Fact)
        .await;
    let theirs = server
        .remember("someone-else", "Someone else hates bees", MemoryKind::Fact)
        .await;
    let memories: Value = client
        .get(format!("{}/v1/memories?user=someone-else", server.url))
        .header("cookie", &cookie)
        .header("x-clara-user", "someone-else")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = memories["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["The operator keeps bees"]);
    let history = client
        .get(format!("{}/v1/memories/{}/history", server.url, theirs.id))
        .header("cookie", &cookie)
        .header("x-clara-user", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), StatusCode::NOT_FOUND);

    let logout = client
        .post(format!("{}/auth/logout", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        send(Some(&cookie), Some(&csrf)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    server.shutdown().await;
}

#[tokio::test]
async fn on_loopback_the_page_gets_a_login_without_a_password_and_foreign_hosts_are_refused() {
    let server = Server::start(HttpConfig::new(true)).await;
    let client = server.client();
    let me = client
        .get(format!("{}/api/me", server.url))
        .send()
        .await
        .unwrap();
    let cookie = me.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["logged_in"], true);
    assert!(me["csrf"].as_str().unwrap().len() >= 32);

    let rebound = client
        .get(format!("{}/api/me", server.url))
        .header("host", "evil.example:18789")
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(rebound).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(e["code"], "foreign_host");

    let page = client.get(&server.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let etag = page.headers()["etag"].clone();
    assert!(page.text().await.unwrap().contains("<title>Clara</title>"));
    let again = client
        .get(&server.url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    server.shutdown().await;
}

async fn memories_of(server: &Server, user: &str, query: &str) -> Vec<Value> {
    let body: Value = server
        .client()
        .get(format!("{}/v1/memories?user={user}{query}", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_person_sees_and_changes_only_their_own_memories() {
    let server = Server::start(HttpConfig::new(true)).await;
    let ann = server
        .remember("ann", "Ann drinks her coffee black", MemoryKind::Preference)
        .await;
    let bob = server
        .remember("bob", "Bob is allergic to peanuts", MemoryKind::Fact)
        .await;
    let client = server.client();

    let anns = memories_of(&server, "ann", "").await;
    assert_eq!(anns.len(), 1);
    assert_eq!(anns[0]["text"], "Ann drinks her coffee black");
    assert_eq!(anns[0]["kind"], "preference");
    assert_eq!(anns[0]["shareable"], false);
    let found = memories_of(&server, "ann", "&q=peanuts").await;
    assert!(
        found.iter().all(|m| m["id"] != bob.id.to_string()),
        "{found:?}"
    );

    // Ann cannot touch Bob's memory by its id: it does not exist for her.
    let as_ann = client
        .patch(format!("{}/v1/memories/{}", server.url, bob.id))
        .header("x-clara-user", "ann")
        .json(&json!({ "text": "Bob likes peanuts" }))
        .send()
        .await
        .unwrap();
    assert_eq!(as_ann.status(), StatusCode::NOT_FOUND);
    let forget = client
        .delete(format!("{}/v1/memories/{}?user=ann", server.url, bob.id))
        .send()
        .await
        .unwrap();
    assert_eq!(forget.status(), StatusCode::NOT_FOUND);
    let history = client
        .get(format!(
            "{}/v1/memories/{}/history?user=ann",
            server.url, bob.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        memories_of(&server, "bob", "").await[0]["text"],
        "Bob is allergic to peanuts"
    );

    // Ann corrects, shares and forgets her own.
    let edited: Value = client
        .patch(format!("{}/v1/memories/{}?user=ann", server.url, ann.id))
        .header("x-clara-user", "ann")
        .json(&json!({ "text": "Ann drinks her coffee with oat milk", "shareable": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(edited["text"], "Ann drinks her coffee with oat milk");
    assert_eq!(edited["shareable"], true);

    let history: Value = client
        .get(format!(
            "{}/v1/memories/{}/history?user=ann",
            server.url, ann.id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["add", "update", "share"]);
    assert_eq!(
        history["history"][1]["old_text"],
        "Ann drinks her coffee black"
    );
    assert_eq!(history["history"][1]["actor"], "api");

    let gone = client
        .delete(format!("{}/v1/memories/{}?user=ann", server.url, ann.id))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::OK);
    assert!(memories_of(&server, "ann", "").await.is_empty());
    let with_forgotten = memories_of(&server, "ann", "&include_forgotten=true").await;
    assert!(with_forgotten[0]["forgotten_at_ms"].is_i64());

    let added: Value = client
        .post(format!("{}/v1/memories", server.url))
        .json(&json!({ "text": "Ann is learning the cello", "kind": "event", "user": "ann" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["kind"], "event");
    assert_eq!(
        memories_of(&server, "ann", "&q=cello").await[0]["id"],
        added["id"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_memory_history_quotes_the_message_it_came_from() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::text("Noted."));
    let client = server.client();
    let response = client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({ "model": "clara", "user": "cleo", "messages": [{ "role": "user", "content": "I moved to Lyon last week." }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // What extraction would do: a memory learned from that message.
    let store = &server.store;
    let user = store.find_user("web", "cleo").await.unwrap().unwrap();
    let conversation = store
        .resolve_conversation(&clara_core::ConversationRef {
            platform: "web".into(),
            channel: "api:cleo".into(),
            kind: clara_core::ChannelKind::Direct,
        })
        .await
        .unwrap();
    let said = store
        .recent_messages(conversation, 0, 10, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.role == clara_core::Role::User)
        .unwrap();
    let origin = clara_memory::Origin {
        user,
        person: "cleo".into(),
        project: None,
        channel: clara_core::ChannelKind::Direct,
        conversation: Some(conversation),
        message: Some(said.id),
        at_ms: said.created_at_ms,
    };
    let memory = server
        .rook
        .remember(
            clara_core::Scope::User(user),
            MemoryKind::Fact,
            "Cleo lives in Lyon",
            &origin,
            "extraction",
            "the person moved",
        )
        .await
        .unwrap();
    let history: Value = client
        .get(format!(
            "{}/v1/memories/{}/history?user=cleo",
            server.url, memory.id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let added = &history["history"][0];
    assert_eq!(added["event"], "add");
    assert_eq!(added["actor"], "extraction");
    assert_eq!(added["place"], "the API");
    assert_eq!(added["message"]["text"], "I moved to Lyon last week.");
    server.shutdown().await;
}

#[tokio::test]
async fn sessions_are_listed_with_summaries_and_messages() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::text("First answer."));
    let client = server.client();
    client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({ "model": "clara", "user": "dan", "messages": [{ "role": "user", "content": "First question." }] }))
        .send()
        .await
        .unwrap();
    server.store.writer().flush().await.unwrap();
    let listed: Value = client
        .get(format!("{}/v1/sessions?user=dan", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = &listed["data"][0];
    assert_eq!(session["current"], true);
    assert_eq!(session["place"], "API");
    assert_eq!(session["messages"], 2);
    let id = session["id"].as_str().unwrap();
    server
        .store
        .set_session_summary(id.parse().unwrap(), "Dan asked a first question.", 1)
        .await
        .unwrap();
    let listed: Value = client
        .get(format!("{}/v1/sessions?user=dan", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["summary"], "Dan asked a first question.");
    let messages: Value = client
        .get(format!("{}/v1/sessions/{id}/messages?user=dan", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["First question.", "First answer."]);
    // Someone else does not see Dan's session.
    let other = client
        .get(format!("{}/v1/sessions/{id}/messages?user=eve", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let eves: Value = client
        .get(format!("{}/v1/sessions?user=eve", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(eves["data"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn two_requests_of_one_person_take_turns_and_each_gets_its_answer() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::Stream {
        chunks: vec!["first ".into(), "answer".into()],
        delay: Duration::from_millis(100),
    });
    server.fake.push(FakeReply::text("second answer"));
    let client = server.client();
    let ask = |text: &'static str| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", server.url);
        async move {
            let body: Value = client
                .post(url)
                .json(&json!({ "model": "clara", "user": "fay", "messages": [{ "role": "user", "content": text }] }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = tokio::spawn(ask("one"));
    // Let the first request take its turn before the second arrives.
    server.fake.wait_for_requests(1, WAIT).await;
    let second = ask("two").await;
    let first = first.await.unwrap();
    assert_eq!(first, "first answer");
    assert_eq!(second, "second answer");
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_stream_says_hello_then_streams_the_answer() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::Stream {
        chunks: vec!["Hello ".into(), "there".into()],
        delay: Duration::from_millis(30),
    });
    let client = server.client();
    let me = client
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
    let csrf = me.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = client
        .get(format!("{}/api/chat/events", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    // The stream subscribed before its headers came back: nothing said from
    // here on can be missed.
    let reader = tokio::spawn(read_sse(events, |d| d.contains("\"type\":\"end\"")));
    let sent = client
        .post(format!("{}/api/chat/messages", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "text": "Hi Clara", "tier": "low", "client_id": "c-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let events: Vec<Value> = reader
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "hello");
    assert!(types.contains(&"user_message"));
    assert!(types.contains(&"pending"));
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "delta")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello there");
    assert_eq!(*types.last().unwrap(), "end");

    // A bad tier is refused with one sentence.
    let bad = client
        .post(format!("{}/api/chat/messages", server.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "text": "Hi", "tier": "ultra" }))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["param"], "tier");
    server.shutdown().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start(HttpConfig::new(true)).await;
    let client = server.client();
    let health: Value = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");

    server.fake.push(FakeReply::text("Counted."));
    client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&chat("count me"))
        .send()
        .await
        .unwrap();
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    for name in [
        "clara_thoughts_total",
        "clara_replies_total",
        "clara_reply_seconds_bucket",
        "clara_reply_first_token_seconds_bucket",
        "clara_llm_tokens_total",
        "clara_http_requests_total",
        "clara_http_request_seconds_bucket",
        "clara_thoughts_queued",
        "clara_replies_in_flight",
        "clara_api_completions_total",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert!(text.contains("route=\"/v1/chat/completions\""));
    server.shutdown().await;
}

#[test]
fn the_openapi_file_documents_every_route() {
    let spec = include_str!("../../../../docs/openapi.yaml");
    for route in [
        "/v1/models",
        "/v1/models/{model}",
        "/v1/chat/completions",
        "/v1/memories",
        "/v1/memories/{id}",
        "/v1/memories/{id}/history",
        "/v1/sessions",
        "/v1/sessions/{id}/messages",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/me",
        "/auth/login",
        "/auth/logout",
        "/api/chat/events",
        "/api/chat/messages",
        "/api/chat/stop",
        "/api/chat/typing",
        "/api/chat/new-session",
        "/api/chat/files/{id}",
    ] {
        assert!(
            spec.contains(&format!("\n  {route}:\n")),
            "docs/openapi.yaml does not document {route}"
        );
    }
}

#[tokio::test]
async fn a_client_that_goes_away_stops_its_answer() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::Stream {
        chunks: (0..200).map(|i| format!("word{i} ")).collect(),
        delay: Duration::from_millis(50),
    });
    let client = server.client();
    let response = client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({ "model": "clara", "user": "gus", "stream": true,
            "messages": [{ "role": "user", "content": "Talk for a long time." }] }))
        .send()
        .await
        .unwrap();
    // Read until the answer has started, then hang up.
    let frames = read_sse(response, |d| d.contains("word1 ")).await;
    assert!(frames.len() >= 2);
    // The model's stream is dropped: Clara stopped asking for more.
    tokio::time::timeout(WAIT, async {
        while server.fake.dropped_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the abandoned answer is stopped");
    // The person's next request gets its own answer.
    server.fake.push(FakeReply::text("Back again."));
    let body: Value = client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({ "model": "clara", "user": "gus",
            "messages": [{ "role": "user", "content": "Short one now." }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Back again.");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_query_strings_and_paths_get_openai_errors() {
    let server = Server::start(HttpConfig::new(true)).await;
    let client = server.client();
    for path in [
        "/v1/memories?limit=many",
        "/v1/memories?include_forgotten=yes",
        "/v1/sessions?limit=-1",
    ] {
        let (status, e) = error_of(
            client
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(e["type"], "invalid_request_error", "{path}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("The query string"),
            "{path}: {e}"
        );
    }
    let (status, e) = error_of(
        client
            .delete(format!("{}/v1/memories/%FF%FE", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        e["message"].as_str().unwrap().starts_with("The path"),
        "{e}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_right_after_an_abandoned_one_is_not_cut_short_by_its_stop() {
    let server = Server::start(HttpConfig::new(true)).await;
    server.fake.push(FakeReply::Stream {
        chunks: (0..200).map(|i| format!("word{i} ")).collect(),
        delay: Duration::from_millis(50),
    });
    server.fake.push(FakeReply::Stream {
        chunks: vec!["Right ".into(), "after.".into()],
        delay: Duration::from_millis(100),
    });
    let client = server.client();
    let url = format!("{}/v1/chat/completions", server.url);
    let ask = |stream: bool, text: &str| {
        client
            .post(&url)
            .json(&json!({ "model": "clara", "user": "hal", "stream": stream,
            "messages": [{ "role": "user", "content": text }] }))
    };
    // The next request is already waiting for its turn when the first client
    // hangs up: the first one's stop must be through before the next one starts.
    let response = ask(true, "Talk for a long time.").send().await.unwrap();
    let next = tokio::spawn(ask(false, "And now?").send());
    read_sse(response, |d| d.contains("word1 ")).await;
    let body: Value = next.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"], "Right after.",
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_rook_in_its_state_the_face_says_memory_is_off() {
    let server = Server::start_without_memory(HttpConfig::new(true)).await;
    let client = server.client();
    let me: Value = client
        .get(format!("{}/api/me", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["memory"], false, "{me}");
    let response = client
        .get(format!("{}/v1/memories", server.url))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(e["code"], "memory_off");
    server.shutdown().await;
}

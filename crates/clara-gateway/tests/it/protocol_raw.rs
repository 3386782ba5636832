//! The gateway protocol spoken by hand, as an adapter in another language would:
//! JSON text over a plain WebSocket, using the examples of
//! `docs/gateway-protocol.md`, and every way a frame can be wrong.

use crate::protocol_support::*;
use clara_core::port::SinkError;
use clara_core::{ChannelKind, ConversationRef, Image, Outbound, ThoughtId, Tier};
use clara_gateway::server::ServerConfig;
use clara_protocol::{GatewaySecret, decode_client, decode_server};
use serde_json::{Value, json};
use std::time::Duration;

/// The doc's JSON examples: (`adapter` or `gateway`, the frame).
fn doc_examples() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/gateway-protocol.md"
    );
    let doc = std::fs::read_to_string(path).expect("docs/gateway-protocol.md exists");
    let mut examples = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(side) = line.strip_prefix("```json ") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            examples.push((side.trim().to_owned(), body.join("\n")));
        }
    }
    examples
}

/// The doc's example of an adapter frame of this type.
fn example(kind: &str) -> Value {
    doc_examples()
        .into_iter()
        .filter(|(side, _)| side == "adapter")
        .map(|(_, text)| serde_json::from_str::<Value>(&text).unwrap())
        .find(|v| v["type"] == kind)
        .unwrap_or_else(|| panic!("the doc has an adapter example of {kind}"))
}

/// The doc's example of a gateway frame of this type.
fn gateway_example(kind: &str) -> Value {
    doc_examples()
        .into_iter()
        .filter(|(side, _)| side == "gateway")
        .map(|(_, text)| serde_json::from_str::<Value>(&text).unwrap())
        .find(|v| v["type"] == kind)
        .unwrap_or_else(|| panic!("the doc has a gateway example of {kind}"))
}

fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn every_json_example_in_the_doc_is_a_frame_of_its_side() {
    let examples = doc_examples();
    assert!(examples.len() >= 25, "found {} examples", examples.len());
    let mut types = std::collections::BTreeSet::new();
    for (side, text) in &examples {
        let kind = match side.as_str() {
            "adapter" => decode_client(text.as_bytes(), 1 << 20)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .type_name(),
            "gateway" => decode_server(text.as_bytes(), 1 << 20)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .type_name(),
            other => panic!("unknown side {other:?}"),
        };
        types.insert(format!("{side}:{kind}"));
    }
    for kind in clara_protocol::SERVER_FRAME_TYPES {
        assert!(
            types.contains(&format!("gateway:{kind}")),
            "no example of gateway {kind}"
        );
    }
    for kind in clara_protocol::CLIENT_FRAME_TYPES {
        if *kind != "stop" {
            assert!(
                types.contains(&format!("adapter:{kind}")),
                "no example of adapter {kind}"
            );
        }
    }
}

fn telegram_42() -> ConversationRef {
    ConversationRef {
        platform: "telegram".into(),
        channel: "42".into(),
        kind: ChannelKind::Direct,
    }
}

#[tokio::test]
async fn an_adapter_speaking_the_doc_examples_by_hand_is_understood() {
    let host = RecordingHost::new();
    let gateway = Gateway::start(host.clone(), test_config()).await;
    let mut raw = Raw::connect(&gateway.url()).await;

    // The handshake, as documented.
    let challenge = raw.frame().await;
    assert_eq!(keys(&challenge), keys(&gateway_example("challenge")));
    assert_eq!(challenge["versions"], json!([1]));
    assert_eq!(challenge["auth_required"], true);
    let mut hello = example("hello");
    let nonce = challenge["nonce"].as_str().unwrap();
    hello["proof"] = GatewaySecret::new(SECRET).proof(nonce).into();
    raw.send_json(&hello).await;
    let welcome = raw.frame().await;
    assert_eq!(keys(&welcome), keys(&gateway_example("welcome")));

    // An inbound with a tier prefix, an image and a reply chain.
    raw.send_json(&example("inbound")).await;
    let accepted = raw.frame().await;
    assert_eq!(
        accepted,
        json!({"v":1,"type":"accepted","re":"c-17","outcome":"queued"})
    );
    let events = host.wait_events(1).await;
    let HostEvent::Submit(inbound) = &events[0] else {
        panic!("{events:#?}");
    };
    assert_eq!(inbound.conversation, telegram_42());
    assert_eq!(inbound.event_id.0, "tg-5512");
    assert_eq!(inbound.author.platform_user_id, "7001");
    assert_eq!(inbound.author.display_name, "Ann");
    assert_eq!(inbound.text, "!high what is in this picture?");
    assert_eq!(inbound.sent_at_ms, 1_767_225_600_000);
    assert_eq!(
        inbound.images,
        vec![Image::Url {
            url: "https://example.org/cat.jpg".into()
        }]
    );
    assert_eq!(inbound.replying_to.len(), 2);
    assert!(inbound.replying_to[1].from_clara);

    // A tier named by the adapter, and a server channel (a group to Clara).
    let mut slash = example("inbound");
    slash["id"] = "c-17b".into();
    slash["tier"] = "low".into();
    slash["conversation"]["kind"] = "server".into();
    raw.send_json(&slash).await;
    assert_eq!(raw.frame().await["re"], "c-17b");
    let events = host.wait_events(2).await;
    let HostEvent::Submit(second) = &events[1] else {
        panic!("{events:#?}");
    };
    assert_eq!(second.tier, Some(Tier::Low));
    assert_eq!(second.conversation.kind, ChannelKind::Group);

    // Typing, cancel (and its other name, stop), new session.
    raw.send_json(&example("typing")).await;
    raw.send_json(&example("cancel")).await;
    let mut stop = example("cancel");
    stop["type"] = "stop".into();
    raw.send_json(&stop).await;
    raw.send_json(&example("new_session")).await;
    assert_eq!(raw.frame().await, json!({"v":1,"type":"done","re":"c-19"}));
    let events = host.wait_events(6).await;
    let (c, a) = (
        telegram_42(),
        clara_core::Author {
            platform_user_id: "7001".into(),
            display_name: "Ann".into(),
        },
    );
    assert_eq!(
        events[2..].to_vec(),
        vec![
            HostEvent::Typing(c.clone(), a.clone()),
            HostEvent::Stop(c.clone(), a.clone()),
            HostEvent::Stop(c.clone(), a.clone()),
            HostEvent::NewSession(c, a),
        ]
    );

    // The adapter pings; the gateway answers.
    raw.send_json(&example("ping")).await;
    assert_eq!(raw.frame().await, json!({"v":1,"type":"pong","nonce":12}));

    // Clara sends a message: `start`, then `send`; the adapter answers `sent`.
    let route = host.sink("telegram").await;
    let thought = ThoughtId::new();
    let sending = {
        let route = route.clone();
        tokio::spawn(async move {
            let send = Outbound::Send {
                thought,
                text: "It is a cat".into(),
            };
            route.deliver(&telegram_42(), send).await
        })
    };
    let start = raw.frame().await;
    assert_eq!(keys(&start), keys(&gateway_example("start")));
    assert_eq!(start["thought"], thought.to_string());
    let send = raw.frame().await;
    assert_eq!(keys(&send), keys(&gateway_example("send")));
    assert_eq!(send["text"], "It is a cat");
    assert_eq!(
        send["conversation"],
        json!({"channel":"42","kind":"direct"})
    );
    let mut sent = example("sent");
    sent["request_id"] = send["request_id"].clone();
    raw.send_json(&sent).await;
    assert_eq!(sending.await.unwrap().unwrap(), Some("5519".to_owned()));

    // An edit of that message; no second `start` for the same reply.
    let edit = Outbound::Edit {
        thought,
        message: "5519".into(),
        text: "It is a cat, sitting on a red sofa.".into(),
    };
    route.deliver(&telegram_42(), edit).await.unwrap();
    let edit = raw.frame().await;
    let mut expected = gateway_example("edit");
    expected["thought"] = thought.to_string().into();
    assert_eq!(edit, expected);

    // A rate-limited send goes back to the engine as a rate limit.
    let sending = {
        let route = route.clone();
        tokio::spawn(async move {
            let send = Outbound::Send {
                thought,
                text: "more".into(),
            };
            route.deliver(&telegram_42(), send).await
        })
    };
    let send = raw.frame().await;
    assert_eq!(send["type"], "send");
    let mut failed = example("send_failed");
    failed["request_id"] = send["request_id"].clone();
    raw.send_json(&failed).await;
    assert!(matches!(
        sending.await.unwrap(),
        Err(SinkError::RateLimited {
            retry_after_ms: 1200
        })
    ));

    // The reply ends in a cancel; a later reply to the same thought id starts anew.
    route
        .deliver(&telegram_42(), Outbound::Cancelled { thought })
        .await
        .unwrap();
    assert_eq!(raw.frame().await["type"], "cancelled");
    gateway.shutdown().await;
}

async fn expect_error(raw: &mut Raw, code: &str) -> Value {
    let frame = raw.frame_skipping_pings().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(
        frame["message"].as_str().unwrap().ends_with('.'),
        "one sentence: {frame}"
    );
    frame
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_goes_on() {
    let host = RecordingHost::new();
    let config = ServerConfig {
        max_frame_bytes: 16 * 1024,
        ..test_config()
    };
    let gateway = Gateway::start(host.clone(), config).await;
    let mut raw = Raw::connect(&gateway.url()).await;

    // Before the handshake.
    let challenge = raw.frame().await;
    raw.send_json(&example("inbound")).await;
    let error = expect_error(&mut raw, "out_of_order").await;
    assert!(
        error["message"].as_str().unwrap().contains("hello"),
        "{error}"
    );
    raw.send("garbage").await;
    expect_error(&mut raw, "malformed").await;
    let mut bad_hello = example("hello");
    bad_hello["platform"] = "Tele Gram".into();
    raw.send_json(&bad_hello).await;
    expect_error(&mut raw, "invalid_frame").await;
    let mut hello = example("hello");
    hello["proof"] = GatewaySecret::new(SECRET)
        .proof(challenge["nonce"].as_str().unwrap())
        .into();
    // The web page's platform is Clara's own: no adapter may take its replies.
    hello["platform"] = "web".into();
    raw.send_json(&hello).await;
    let error = expect_error(&mut raw, "invalid_frame").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("served inside Clara"),
        "{error}"
    );
    hello["platform"] = PLATFORM.into();
    raw.send_json(&hello).await;
    assert_eq!(raw.frame().await["type"], "welcome");

    // After it: each bad frame gets its error.
    raw.send("{not json").await;
    expect_error(&mut raw, "malformed").await;
    raw.send("[1,2,3]").await;
    expect_error(&mut raw, "malformed").await;
    raw.send_binary(vec![0, 159, 146, 150]).await;
    expect_error(&mut raw, "malformed").await;
    let mut big = example("inbound");
    big["text"] = "x".repeat(20 * 1024).into();
    raw.send_json(&big).await;
    let error = expect_error(&mut raw, "too_large").await;
    assert!(
        error["message"].as_str().unwrap().contains("16384"),
        "{error}"
    );
    let mut v2 = example("inbound");
    v2["v"] = 2.into();
    raw.send_json(&v2).await;
    let error = expect_error(&mut raw, "unsupported_version").await;
    assert_eq!(error["re"], "c-17", "the broken frame's id comes back");
    raw.send(r#"{"v":1,"type":"teleport","id":"t-1"}"#).await;
    expect_error(&mut raw, "unknown_type").await;
    let mut no_author = example("inbound");
    no_author.as_object_mut().unwrap().remove("author");
    raw.send_json(&no_author).await;
    let error = expect_error(&mut raw, "invalid_frame").await;
    assert!(
        error["message"].as_str().unwrap().contains("author"),
        "{error}"
    );
    let mut bad_image = example("inbound");
    bad_image["attachments"] = json!([{"type":"image","media_type":"image/png","data":"%%%"}]);
    raw.send_json(&bad_image).await;
    let error = expect_error(&mut raw, "invalid_frame").await;
    assert!(
        error["message"].as_str().unwrap().contains("attachment 1"),
        "{error}"
    );
    raw.send_json(&hello).await;
    expect_error(&mut raw, "out_of_order").await;
    raw.send(r#"{"v":1,"type":"sent","request_id":99,"message_id":"x"}"#)
        .await;
    expect_error(&mut raw, "unknown_request").await;
    assert!(host.events().is_empty(), "nothing broken reached Clara");

    // The connection still works.
    raw.send_json(&example("inbound")).await;
    assert_eq!(raw.frame_skipping_pings().await["type"], "accepted");
    raw.send_json(&example("ping")).await;
    assert_eq!(raw.frame_skipping_pings().await["type"], "pong");
    assert_eq!(host.events().len(), 1);

    // A message over the WebSocket layer's hard cap ends this connection
    // (1009), and only this one.
    let mut huge = example("inbound");
    huge["text"] = "y".repeat(200 * 1024).into();
    raw.send_json(&huge).await;
    assert_eq!(raw.closed().await, Some(1009));
    let mut other = Raw::connect(&gateway.url()).await;
    other.handshake(SECRET, streaming_caps()).await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_question_to_the_owner_travels_as_the_doc_shows_and_is_answered_like_a_send() {
    use clara_core::approval::{ApprovalOutcome, ApprovalPrompt, Verdict};
    let host = RecordingHost::new();
    let gateway = Gateway::start(host.clone(), test_config()).await;
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.handshake(SECRET, json!({"max_message_chars": 4096, "can_edit": true}))
        .await;
    let route = host.sink(PLATFORM).await;
    let documented = gateway_example("ask");
    let prompt: ApprovalPrompt = serde_json::from_value(documented["prompt"].clone()).unwrap();
    let here = ConversationRef {
        platform: PLATFORM.into(),
        channel: "42".into(),
        kind: ChannelKind::Direct,
    };

    // `ask`: no `start` before it (it names no thought); answered with `sent`.
    let asking = {
        let (route, here, prompt) = (route.clone(), here.clone(), prompt.clone());
        tokio::spawn(async move { route.deliver(&here, Outbound::Ask { prompt }).await })
    };
    let ask = raw.frame_skipping_pings().await;
    assert_eq!(keys(&ask), keys(&documented));
    let mut expected = documented.clone();
    expected["request_id"] = ask["request_id"].clone();
    assert_eq!(ask, expected);
    raw.send_json(&json!({"v":1,"type":"sent","request_id":ask["request_id"],"message_id":"5520"}))
        .await;
    assert_eq!(asking.await.unwrap().unwrap(), Some("5520".to_owned()));

    // An adapter that shows the question as text answers with an empty id: none.
    let asking = {
        let (route, here, prompt) = (route.clone(), here.clone(), prompt.clone());
        tokio::spawn(async move { route.deliver(&here, Outbound::Ask { prompt }).await })
    };
    let ask = raw.frame_skipping_pings().await;
    raw.send_json(&json!({"v":1,"type":"sent","request_id":ask["request_id"],"message_id":""}))
        .await;
    assert_eq!(asking.await.unwrap().unwrap(), None);

    // A failed `ask` fails the delivery.
    let asking = {
        let (route, here, prompt) = (route.clone(), here.clone(), prompt.clone());
        tokio::spawn(async move { route.deliver(&here, Outbound::Ask { prompt }).await })
    };
    let ask = raw.frame_skipping_pings().await;
    raw.send_json(
        &json!({"v":1,"type":"send_failed","request_id":ask["request_id"],"reason":"blocked"}),
    )
    .await;
    assert!(matches!(asking.await.unwrap(), Err(SinkError::Failed(r)) if r == "blocked"));

    // `ask_closed`, exactly as documented.
    let closed = Outbound::AskClosed {
        prompt,
        message: Some("5520".into()),
        outcome: ApprovalOutcome::Answered(Verdict::Once),
    };
    assert_eq!(route.deliver(&here, closed).await.unwrap(), None);
    assert_eq!(
        raw.frame_skipping_pings().await,
        gateway_example("ask_closed")
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_the_connection_closed() {
    let gateway = Gateway::start(RecordingHost::new(), test_config()).await;
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.frame().await;
    let mut hello = example("hello");
    hello.as_object_mut().unwrap().remove("proof");
    hello["secret"] = "guess".into();
    raw.send_json(&hello).await;
    let error = expect_error(&mut raw, "unauthorized").await;
    assert!(!error.to_string().contains("guess"));
    assert_eq!(raw.closed().await, Some(4001));

    // The plain secret works too.
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.frame().await;
    hello["secret"] = SECRET.into();
    raw.send_json(&hello).await;
    assert_eq!(raw.frame().await["type"], "welcome");

    // Another protocol version at the handshake ends the connection.
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.frame().await;
    hello["v"] = 2.into();
    raw.send_json(&hello).await;
    expect_error(&mut raw, "unsupported_version").await;
    assert_eq!(raw.closed().await, Some(4002));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let gateway = Gateway::start(RecordingHost::new(), config).await;
    let mut raw = Raw::connect(&gateway.url()).await;
    assert_eq!(raw.frame().await["type"], "challenge");
    expect_error(&mut raw, "handshake_timeout").await;
    assert_eq!(raw.closed().await, Some(4003));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_dead_adapter_is_dropped_at_the_ping_timeout_and_a_live_one_kept() {
    let host = RecordingHost::new();
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        // Room for a loaded machine: the live adapter must answer within it.
        pong_timeout: Duration::from_secs(3),
        ..test_config()
    };
    let gateway = Gateway::start(host.clone(), config).await;

    // A live adapter answers three pings and stays connected.
    let mut live = Raw::connect(&gateway.url()).await;
    live.handshake(SECRET, streaming_caps()).await;
    for expected in 1..=3_u64 {
        let ping = live.frame().await;
        assert_eq!(ping, json!({"v":1,"type":"ping","nonce":expected}));
        live.send_json(&json!({"v":1,"type":"pong","nonce":expected}))
            .await;
    }

    let mut live = live.answer_pings();

    // A dead one reads but never answers: it is told why and dropped.
    let mut dead = Raw::connect(&gateway.url()).await;
    dead.handshake(SECRET, streaming_caps()).await;
    assert_eq!(dead.frame().await["type"], "ping");
    expect_error(&mut dead, "ping_timeout").await;
    assert_eq!(dead.closed().await, Some(4004));

    // The live one, older, takes the platform's calls again.
    let route = host.sink(PLATFORM).await;
    route
        .deliver(&conversation(), Outbound::Typing)
        .await
        .unwrap();
    let typing = tokio::time::timeout(WAIT, live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(typing["type"], "typing", "{typing}");
    gateway.shutdown().await;
}

/// The size of each delta [`fill_the_queue`] delivers.
const CHUNK_BYTES: usize = 64 * 1024;

/// A gateway with a queue of 8 frames and a connected adapter that reads
/// nothing: deliveries fill the socket's buffers and the queue, then wait,
/// then fail. Returns the deliveries taken and the first failure.
async fn fill_the_queue(
    route: &dyn clara_core::port::OutboundSink,
    thought: ThoughtId,
) -> (usize, String) {
    let chunk = "z".repeat(CHUNK_BYTES);
    let mut delivered = 0_usize;
    loop {
        assert!(
            delivered < 2000,
            "2000 × 64 KiB were taken from an adapter that reads nothing"
        );
        let delta = Outbound::Delta {
            thought,
            text: chunk.clone(),
        };
        match route.deliver(&conversation(), delta).await {
            Ok(_) => delivered += 1,
            Err(error) => return (delivered, error.to_string()),
        }
    }
}

fn small_queue_config() -> ServerConfig {
    ServerConfig {
        outgoing_queue: 8,
        send_timeout: Duration::from_millis(300),
        ..test_config()
    }
}

#[tokio::test]
async fn a_slow_adapter_gets_back_pressure_not_unbounded_memory() {
    let host = RecordingHost::new();
    let gateway = Gateway::start(host.clone(), small_queue_config()).await;
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.handshake(SECRET, streaming_caps()).await;
    let route = host.sink(PLATFORM).await;

    // The adapter stops reading: deliveries do not pile up.
    let thought = ThoughtId::new();
    let (delivered, failure) = fill_the_queue(route.as_ref(), thought).await;
    assert!(failure.contains("not keeping up"), "{failure}");

    // When the adapter reads again, it gets what was queued, in order, and
    // deliveries flow again.
    let mut seen = 0_usize;
    while seen < delivered {
        let frame = raw.frame_skipping_pings().await;
        if frame["type"] == "delta" {
            assert_eq!(frame["text"].as_str().unwrap().len(), CHUNK_BYTES);
            seen += 1;
        }
    }
    route
        .deliver(&conversation(), Outbound::End { thought })
        .await
        .unwrap();
    let end = raw.frame_skipping_pings().await;
    assert_eq!(end["type"], "end", "{end}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_adapter_that_stops_reading_its_answers_is_disconnected() {
    let host = RecordingHost::new();
    let gateway = Gateway::start(host.clone(), small_queue_config()).await;
    let mut raw = Raw::connect(&gateway.url()).await;
    raw.handshake(SECRET, streaming_caps()).await;
    let route = host.sink(PLATFORM).await;

    // The adapter reads nothing until its queue is full…
    fill_the_queue(route.as_ref(), ThoughtId::new()).await;
    // …then asks something whose answer cannot be queued: it is dropped,
    // and the platform's calls stop going to it.
    raw.send_json(&json!({"v": 1, "type": "ping", "nonce": 5}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let refusal = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck adapter kept its platform"
        );
        match route.deliver(&conversation(), Outbound::Typing).await {
            Err(error) if error.to_string().starts_with("no test adapter") => break error,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(
        refusal.to_string(),
        "no test adapter is connected to the gateway"
    );
    // Reading again, it finds the connection closed (4005, when the close
    // frame got through before the gateway gave up flushing).
    let code = raw.closed().await;
    assert!(matches!(code, None | Some(4005)), "{code:?}");
    gateway.shutdown().await;
}

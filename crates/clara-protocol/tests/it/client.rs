//! The Rust client against a hand-written gateway (a plain WebSocket server in
//! the test): exactly what the client sends, its pings and pongs, and its
//! reconnecting after a gateway that stopped answering.

use clara_core::pacing::DeliveryMode;
use clara_core::testing::RecordingSink;
use clara_protocol::GatewaySecret;
use clara_protocol::client::{self, ClientConfig};
use std::time::Duration;

/// A hang guard for waits (never a timing assertion).
const WAIT: Duration = Duration::from_secs(15);
const SECRET: &str = "correct horse battery staple";
const PLATFORM: &str = "test";

fn client_config(url: &str, secret: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new(url, PLATFORM);
    config.secret = secret.map(GatewaySecret::new);
    config.adapter = Some("protocol-test/1".into());
    config.backoff =
        clara_core::backoff::Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
    config
}

/// The next text frame from the client, as JSON.
async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Option<serde_json::Value> {
    use futures::StreamExt;
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the client says something")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                return Some(serde_json::from_str(text.as_str()).unwrap());
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_)) | None => {
                return None;
            }
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn the_client_answers_pings_and_leaves_a_gateway_that_stops_answering() {
    use futures::SinkExt;
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;

    // A hand-written gateway, to see exactly what the client sends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/gateway", listener.local_addr().unwrap());
    let mut config = client_config(&url, Some(SECRET));
    config.ping_interval = Duration::from_millis(100);
    // Room for a loaded machine: the test answers the client's pings within it.
    config.pong_timeout = Duration::from_secs(3);
    let connecting = tokio::spawn(client::connect(
        config,
        RecordingSink::new(DeliveryMode::Stream, 100_000),
    ));

    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let challenge =
        json!({"v":1,"type":"challenge","nonce":"n-1","versions":[1],"auth_required":true});
    ws.send(Message::text(challenge.to_string())).await.unwrap();
    let hello = next_json(&mut ws).await.unwrap();
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["platform"], PLATFORM);
    assert_eq!(hello["proof"], GatewaySecret::new(SECRET).proof("n-1"));
    assert!(
        hello.get("secret").is_none(),
        "only a proof crosses the wire"
    );
    assert_eq!(
        hello["capabilities"],
        json!({"max_message_chars":100000,"can_edit":false,"streaming":true}),
        "declared from the sink's delivery"
    );
    let welcome = json!({"v":1,"type":"welcome","connection":"fake","max_frame_bytes":65536,
            "ping_interval_ms":20000,"pong_timeout_ms":10000,"send_ack_timeout_ms":15000});
    ws.send(Message::text(welcome.to_string())).await.unwrap();
    let remote = connecting.await.unwrap().unwrap();

    // The gateway pings: the client answers with the same nonce.
    ws.send(Message::text(
        json!({"v":1,"type":"ping","nonce":77}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let frame = next_json(&mut ws).await.expect("a pong");
        match frame["type"].as_str() {
            Some("ping") => {
                let pong = json!({"v":1,"type":"pong","nonce":frame["nonce"]});
                ws.send(Message::text(pong.to_string())).await.unwrap();
            }
            Some("pong") => {
                assert_eq!(frame["nonce"], 77);
                break;
            }
            other => panic!("unexpected {other:?}: {frame}"),
        }
    }

    // The gateway stops answering the client's pings: the client leaves it…
    while next_json(&mut ws).await.is_some() {}
    assert!(remote.wait_disconnected(WAIT).await);
    // …and comes back.
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the client reconnects")
        .unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    ws.send(Message::text(challenge.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "hello");
}

#[tokio::test]
async fn the_client_hands_questions_to_its_sink_and_answers_an_ask_like_a_send() {
    use clara_core::Outbound;
    use clara_core::approval::{ApprovalOutcome, Verdict};
    use futures::SinkExt;
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/gateway", listener.local_addr().unwrap());
    let sink = RecordingSink::new(DeliveryMode::Stream, 100_000);
    let connecting = tokio::spawn(client::connect(client_config(&url, None), sink.clone()));
    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let challenge =
        json!({"v":1,"type":"challenge","nonce":"n-1","versions":[1],"auth_required":false});
    ws.send(Message::text(challenge.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "hello");
    let welcome = json!({"v":1,"type":"welcome","connection":"fake","max_frame_bytes":65536,
            "ping_interval_ms":20000,"pong_timeout_ms":10000,"send_ack_timeout_ms":15000});
    ws.send(Message::text(welcome.to_string())).await.unwrap();
    let _remote = connecting.await.unwrap().unwrap();

    let prompt = json!({"id":"3f9a2c1d","tool":"mail__send","arguments":"{}",
        "reason":"It sends mail.","asked_for":"Ann","timeout_secs":300});
    let ask = json!({"v":1,"type":"ask","request_id":41,
        "conversation":{"channel":"42","kind":"direct"},"prompt":prompt});
    ws.send(Message::text(ask.to_string())).await.unwrap();
    let answer = loop {
        let frame = next_json(&mut ws).await.expect("an answer to the ask");
        if frame["type"] != "ping" {
            break frame;
        }
    };
    // The recording sink shows questions without a message to edit: an empty id.
    assert_eq!(
        answer,
        json!({"v":1,"type":"sent","request_id":41,"message_id":""})
    );
    let closed = json!({"v":1,"type":"ask_closed",
        "conversation":{"channel":"42","kind":"direct"},"prompt":prompt,
        "outcome":{"answered":"always"}});
    ws.send(Message::text(closed.to_string())).await.unwrap();
    let calls = sink
        .wait_until("the question and its end", |calls| calls.len() >= 2)
        .await;
    let Outbound::Ask { prompt: asked } = &calls[0] else {
        panic!("{calls:#?}");
    };
    assert_eq!(asked.id.0, "3f9a2c1d");
    assert_eq!(asked.tool, "mail__send");
    assert_eq!(
        calls[1],
        Outbound::AskClosed {
            prompt: asked.clone(),
            message: None,
            outcome: ApprovalOutcome::Answered(Verdict::Always),
        }
    );
}

//! `clara serve` speaks the gateway protocol on its port: an adapter in another
//! process (here the `clara_gateway` client, as a separate program would use it)
//! proves `CLARA_GATEWAY_SECRET`, sends a message and gets Clara's answer.

use crate::common::{clara, free_port, terminate, text, with_fake};
use clara_core::pacing::DeliveryMode;
use clara_core::port::{Accepted, Assistant};
use clara_core::testing::{RecordingSink, streamed};
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound, Outbound};
use clara_protocol::GatewaySecret;
use clara_protocol::client::{ClientConfig, RemoteAssistant};
use clara_testkit::fake_openai::FakeOpenAi;
use std::time::Duration;

const GATEWAY_SECRET: &str = "gateway-s3cret-never-logged";

#[tokio::test]
async fn serve_answers_an_adapter_connected_over_the_gateway_protocol() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("CLARA_GATEWAY_PORT", port.to_string())
        .env("CLARA_GATEWAY_SECRET", GATEWAY_SECRET);
    let child = cmd.arg("serve").spawn().unwrap();

    let sink = RecordingSink::new(DeliveryMode::Stream, 10_000);
    let url = format!("ws://127.0.0.1:{port}/gateway");
    let config =
        ClientConfig::new(url.clone(), "remote").with_secret(GatewaySecret::new(GATEWAY_SECRET));
    let remote = RemoteAssistant::spawn(config, sink.clone());
    assert!(
        remote.wait_connected(Duration::from_secs(60)).await,
        "the adapter connects once Clara is up"
    );

    let inbound = Inbound {
        event_id: EventId::from("ev-1"),
        conversation: ConversationRef {
            platform: "remote".into(),
            channel: "room-1".into(),
            kind: ChannelKind::Direct,
        },
        author: Author {
            platform_user_id: "u1".into(),
            display_name: "Ann".into(),
        },
        text: "hello over the gateway".into(),
        sent_at_ms: 0,
        tier: None,
        images: Vec::new(),
        files: Vec::new(),
        replying_to: Vec::new(),
    };
    assert_eq!(remote.submit(inbound).await, Ok(Accepted::Queued));
    let calls = sink
        .wait_until("the answer", |calls| {
            calls.iter().any(|c| matches!(c, Outbound::End { .. }))
        })
        .await;
    assert_eq!(streamed(&calls), "You said: hello over the gateway");

    // A wrong secret is refused.
    let wrong = ClientConfig::new(url, "remote").with_secret(GatewaySecret::new("wrong"));
    let refused = clara_protocol::client::connect(wrong, sink.clone()).await;
    assert!(
        matches!(
            refused,
            Err(clara_protocol::client::ClientError::Unauthorized(_))
        ),
        "{:?}",
        refused.err()
    );

    remote.close();
    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    assert!(log.contains("an adapter connected to the gateway"), "{log}");
    assert!(
        !log.contains(GATEWAY_SECRET),
        "the gateway secret is never logged"
    );
}

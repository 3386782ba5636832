//! The gateway protocol end to end: a real gateway in front of a real engine,
//! and the Rust client as an out-of-process adapter.

use crate::protocol_support::*;
use clara_core::Outbound;
use clara_core::port::{Accepted, Assistant, IngressError};
use clara_protocol::GatewaySecret;
use clara_protocol::client::{self, ClientConfig, ClientError, RemoteAssistant};
use clara_testkit::fake_openai::FakeReply;
use std::sync::Arc;
use std::time::Duration;

fn client_config(url: &str, secret: Option<&str>) -> ClientConfig {
    let mut config = ClientConfig::new(url, PLATFORM);
    config.secret = secret.map(GatewaySecret::new);
    config.adapter = Some("protocol-test/1".into());
    config.backoff =
        clara_core::backoff::Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
    config
}

async fn adapter(gateway: &Gateway, sink: Arc<RecordingSink>) -> RemoteAssistant {
    client::connect(client_config(&gateway.url(), Some(SECRET)), sink)
        .await
        .expect("the adapter connects")
}

#[tokio::test]
async fn the_handshake_admits_the_right_secret_only() {
    let clara = RealEngine::start().await;
    let gateway = Gateway::start(clara.host(), test_config()).await;

    let good = adapter(&gateway, streaming_sink()).await;
    assert!(good.is_connected());

    let wrong = client::connect(
        client_config(&gateway.url(), Some("battery staple horse")),
        streaming_sink(),
    )
    .await;
    assert!(
        matches!(&wrong, Err(ClientError::Unauthorized(m)) if m.contains("wrong")),
        "{:?}",
        wrong.err()
    );
    let missing = client::connect(client_config(&gateway.url(), None), streaming_sink()).await;
    assert!(
        matches!(&missing, Err(ClientError::Unauthorized(m)) if m.contains("requires the secret")),
        "{:?}",
        missing.err()
    );
    let error = wrong.err().unwrap().to_string();
    assert!(!error.contains("battery staple horse") && !error.contains(SECRET));

    // The refused attempts did not disturb the admitted adapter.
    assert_eq!(
        good.submit(inbound("e1", "hello")).await,
        Ok(Accepted::Queued)
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_gateway_without_a_secret_admits_any_adapter_on_loopback() {
    let clara = RealEngine::start().await;
    let mut config = test_config();
    config.secret = None;
    let gateway = Gateway::start(clara.host(), config).await;
    let remote = client::connect(client_config(&gateway.url(), None), streaming_sink())
        .await
        .unwrap();
    assert!(remote.is_connected());
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_reply_arrives_as_a_send_then_edits_of_that_message() {
    let clara = RealEngine::start().await;
    let words: Vec<String> = (1..=12).map(|i| format!("word{i} ")).collect();
    let whole: String = words.concat();
    clara.fake.push(FakeReply::Stream {
        chunks: words,
        delay: Duration::from_millis(40),
    });
    let gateway = Gateway::start(clara.host(), test_config()).await;
    let sink = editing_sink(60);
    let remote = adapter(&gateway, sink.clone()).await;

    assert_eq!(
        remote.submit(inbound("e1", "tell me twelve words")).await,
        Ok(Accepted::Queued)
    );
    let want = whole.trim().to_owned();
    let calls = sink
        .wait_until("the whole reply shown", |calls| {
            calls
                .iter()
                .any(|c| matches!(c, Outbound::Edit { text, .. } if text.trim() == want))
        })
        .await;
    clara.settle(&conversation()).await;

    assert!(matches!(calls[0], Outbound::Typing), "{calls:#?}");
    let sends: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c, Outbound::Send { .. }))
        .collect();
    assert_eq!(sends.len(), 1, "one message, grown by edits: {calls:#?}");
    let edits: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Edit { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert!(!edits.is_empty());
    assert!(
        edits.iter().all(|m| *m == "m1"),
        "every edit names the id the adapter's `sent` returned: {edits:?}"
    );
    assert!(
        matches!(sends[0], Outbound::Send { text, .. } if want.starts_with(text.trim())),
        "the message starts with the reply's beginning: {sends:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_messages_gets_one_answer() {
    let clara = RealEngine::start().await;
    let gateway = Gateway::start(clara.host(), test_config()).await;
    let sink = streaming_sink();
    let remote = adapter(&gateway, sink.clone()).await;

    for (event, text) in [("b1", "so"), ("b2", "I was thinking"), ("b3", "about cats")] {
        assert_eq!(
            remote.submit(inbound(event, text)).await,
            Ok(Accepted::Queued)
        );
    }
    sink.wait_until("the answer", |calls| calls.iter().any(is_final))
        .await;
    clara.settle(&conversation()).await;

    let calls = sink.calls();
    assert_eq!(
        calls.iter().filter(|c| is_final(c)).count(),
        1,
        "{calls:#?}"
    );
    assert!(matches!(calls.last(), Some(Outbound::End { .. })));
    let answer = streamed(&calls);
    for part in ["so", "I was thinking", "about cats"] {
        assert!(
            answer.contains(part),
            "one answer covers the whole burst: {answer:?}"
        );
    }
    assert_eq!(clara.fake.requests().len(), 1);
    // A redelivered event is recognised through the protocol too.
    assert_eq!(
        remote.submit(inbound("b2", "I was thinking")).await,
        Ok(Accepted::Duplicate)
    );
    assert_eq!(
        remote.submit(inbound("b4", "   ")).await,
        Err(IngressError::Empty)
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_adapter_cancels_a_reply_mid_stream() {
    let clara = RealEngine::start().await;
    clara.fake.push(FakeReply::Stream {
        chunks: (0..40).map(|i| format!("chunk{i} ")).collect(),
        delay: Duration::from_millis(100),
    });
    let gateway = Gateway::start(clara.host(), test_config()).await;
    let sink = streaming_sink();
    let remote = adapter(&gateway, sink.clone()).await;

    remote
        .submit(inbound("c1", "write a long story"))
        .await
        .unwrap();
    sink.wait_until("the reply to start", |calls| {
        calls.iter().any(|c| matches!(c, Outbound::Delta { .. }))
    })
    .await;
    remote.stop(&conversation(), &ann()).await;
    sink.wait_until("the reply to be cancelled", |calls| {
        calls
            .iter()
            .any(|c| matches!(c, Outbound::Cancelled { .. }))
    })
    .await;
    clara.settle(&conversation()).await;

    let calls = sink.calls();
    let cancelled_at = calls
        .iter()
        .position(|c| matches!(c, Outbound::Cancelled { .. }))
        .unwrap();
    assert_eq!(
        cancelled_at,
        calls.len() - 1,
        "nothing after the cancel: {calls:#?}"
    );
    assert!(
        !streamed(&calls).contains("chunk39"),
        "the stream was cut short"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_new_session_goes_through_and_is_answered() {
    let clara = RealEngine::start().await;
    let gateway = Gateway::start(clara.host(), test_config()).await;
    let sink = streaming_sink();
    let remote = adapter(&gateway, sink.clone()).await;
    remote
        .submit(inbound("n1", "remember the blue door"))
        .await
        .unwrap();
    sink.wait_until("the answer", |calls| calls.iter().any(is_final))
        .await;
    assert_eq!(remote.new_session(&conversation(), &ann()).await, Ok(()));
    remote.submit(inbound("n2", "what door?")).await.unwrap();
    sink.wait_until("the second answer", |calls| {
        calls.iter().filter(|c| is_final(c)).count() == 2
    })
    .await;
    let second = clara.fake.requests()[1].user_texts();
    assert!(
        !second.iter().any(|t| t.contains("blue door")),
        "a new session starts without the old messages: {second:?}"
    );
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_client_reconnects_after_the_gateway_restarts() {
    let clara = RealEngine::start().await;
    let gateway = Gateway::start(clara.host(), test_config()).await;
    let port = gateway.addr.port();
    let sink = streaming_sink();
    let remote = adapter(&gateway, sink.clone()).await;

    gateway.shutdown().await;
    assert!(
        remote.wait_disconnected(WAIT).await,
        "the client notices the drop"
    );
    assert_eq!(
        remote.submit(inbound("r1", "anyone there?")).await,
        Err(IngressError::Unavailable),
        "while disconnected, a message is refused at once and may be offered again"
    );

    let gateway = Gateway::start_on(port, clara.host(), test_config()).await;
    assert!(
        remote.wait_connected(WAIT).await,
        "the client reconnects by itself"
    );
    assert_eq!(
        remote.submit(inbound("r1", "anyone there?")).await,
        Ok(Accepted::Queued)
    );
    let calls = sink
        .wait_until("the answer", |calls| calls.iter().any(is_final))
        .await;
    assert!(streamed(&calls).contains("anyone there?"), "{calls:#?}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_second_connection_for_a_platform_takes_over_and_hands_back() {
    let host = RecordingHost::new();
    let gateway = Gateway::start(host.clone(), test_config()).await;
    let old_sink = streaming_sink();
    let old = adapter(&gateway, old_sink.clone()).await;
    let new_sink = streaming_sink();
    let new = adapter(&gateway, new_sink.clone()).await;
    let route = host.sink(PLATFORM).await;

    route
        .deliver(&conversation(), Outbound::Typing)
        .await
        .unwrap();
    new_sink
        .wait_until("the typing", |calls| !calls.is_empty())
        .await;
    assert!(
        old_sink.calls().is_empty(),
        "the newest connection delivers"
    );

    new.close();
    let deadline = tokio::time::Instant::now() + WAIT;
    while old_sink.calls().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the older connection never took over"
        );
        let _ = route.deliver(&conversation(), Outbound::Typing).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    old.close();
    let deadline = tokio::time::Instant::now() + WAIT;
    let refusal = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never stopped"
        );
        if let Err(error) = route.deliver(&conversation(), Outbound::Typing).await {
            break error.to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refusal, "no test adapter is connected to the gateway");
    gateway.shutdown().await;
}

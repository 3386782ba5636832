//! The Discord sink's platform calls against the fake REST API: sends, edits,
//! typing, 429s waited out as told, exhausted buckets waited for before asking,
//! and errors as one sentence without the token.

use crate::support::*;
use clara_core::pacing::DeliveryMode;
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ChannelKind, ConversationRef, Outbound, ThoughtId};
use clara_discord::{Discord, EDIT_COOLDOWN, MAX_MESSAGE_CHARS};
use clara_testkit::fake_discord::FakeDiscord;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn dm() -> ConversationRef {
    ConversationRef {
        platform: "discord".into(),
        channel: DM.to_string(),
        kind: ChannelKind::Direct,
    }
}

fn sink_for(fake: &FakeDiscord) -> Arc<dyn OutboundSink> {
    Discord::new(config_for(fake)).unwrap().sink()
}

async fn send(sink: &Arc<dyn OutboundSink>, text: &str) -> Result<Option<String>, SinkError> {
    sink.deliver(
        &dm(),
        Outbound::Send {
            thought: ThoughtId::new(),
            text: text.into(),
        },
    )
    .await
}

#[tokio::test]
async fn discord_sink_declares_edits_with_a_cooldown_and_the_2000_limit() {
    let fake = FakeDiscord::start().await;
    let delivery = sink_for(&fake).delivery();
    assert_eq!(delivery.max_chars, 2000);
    assert_eq!(MAX_MESSAGE_CHARS, 2000);
    assert_eq!(
        delivery.mode,
        DeliveryMode::Edits {
            cooldown: EDIT_COOLDOWN
        }
    );
    assert!(EDIT_COOLDOWN >= Duration::from_secs(1));
}

#[tokio::test]
async fn discord_send_edit_and_typing_become_discord_calls() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    sink.deliver(&dm(), Outbound::Typing).await.unwrap();
    let id = send(&sink, "Hel").await.unwrap().expect("a message id");
    let thought = ThoughtId::new();
    sink.deliver(
        &dm(),
        Outbound::Edit {
            thought,
            message: id.clone(),
            text: "Hello @everyone".into(),
        },
    )
    .await
    .unwrap();

    assert_eq!(
        fake.calls_to("POST", &format!("channels/{DM}/typing"))
            .len(),
        1
    );
    let created = fake.calls_to("POST", &format!("channels/{DM}/messages"));
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].body["content"], "Hel");
    // Clara's text never pings anyone.
    assert_eq!(created[0].body["allowed_mentions"]["parse"], json!([]));
    let edited = fake.calls_to("PATCH", &format!("channels/{DM}/messages/{id}"));
    assert_eq!(edited.len(), 1);
    assert_eq!(edited[0].body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(fake.bot_texts(DM), ["Hello @everyone"]);
    // A DM reply is not a threaded reply.
    assert!(created[0].body.get("message_reference").is_none());
}

#[tokio::test]
async fn discord_429_is_waited_out_as_told_then_the_call_goes_through() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    fake.rate_limit_next("POST", "/messages", 0.5, false, 1);
    send(&sink, "after the wait").await.unwrap();
    let calls = fake.calls_to("POST", "/messages");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(500),
        "retried after {waited:?}, before retry_after"
    );
    assert_eq!(fake.bot_texts(DM), ["after the wait"]);
}

#[tokio::test]
async fn discord_exhausted_bucket_is_waited_for_before_asking() {
    let fake = FakeDiscord::start().await;
    fake.set_bucket(2, Duration::from_millis(800));
    let sink = sink_for(&fake);
    for n in 1..=3 {
        send(&sink, &format!("message {n}")).await.unwrap();
    }
    let calls = fake.calls_to("POST", "/messages");
    // The bucket said "0 remaining, resets in 0.8 s": the third call waited for
    // the reset instead of running into a 429.
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [200, 200, 200]
    );
    assert!(calls[2].at - calls[0].at >= Duration::from_millis(700));
    assert_eq!(fake.bot_texts(DM), ["message 1", "message 2", "message 3"]);
}

#[tokio::test]
async fn discord_buckets_are_counted_per_channel() {
    let fake = FakeDiscord::start().await;
    fake.set_bucket(1, Duration::from_secs(30));
    let sink = sink_for(&fake);
    send(&sink, "in the DM").await.unwrap();
    let other = ConversationRef {
        channel: GENERAL.to_string(),
        kind: ChannelKind::Group,
        ..dm()
    };
    // Another channel's bucket is not exhausted: no 30 s wait here.
    tokio::time::timeout(
        Duration::from_secs(10),
        sink.deliver(
            &other,
            Outbound::Send {
                thought: ThoughtId::new(),
                text: "in general".into(),
            },
        ),
    )
    .await
    .expect("not held by the DM's bucket")
    .unwrap();
    assert!(fake.calls().iter().all(|c| c.status == 200));
}

#[tokio::test]
async fn discord_persistent_429_is_handed_back_as_rate_limited() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    fake.rate_limit_next("POST", "/messages", 0.2, false, 10);
    let err = send(&sink, "never").await.unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::RateLimited {
                retry_after_ms: 200
            }
        ),
        "{err:?}"
    );
    // Three tries, each after the wait Discord asked for.
    let calls = fake.calls_to("POST", "/messages");
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .windows(2)
            .all(|w| w[1].at - w[0].at >= Duration::from_millis(200))
    );
}

#[tokio::test]
async fn discord_global_429_holds_every_route() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    fake.rate_limit_next("POST", "/typing", 0.6, true, 3);
    // The typing call gives up after its tries, the bot-wide limit still running.
    let err = sink.deliver(&dm(), Outbound::Typing).await.unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::RateLimited {
                retry_after_ms: 600
            }
        ),
        "{err:?}"
    );
    send(&sink, "held too").await.unwrap();
    let last_limited = fake.calls().into_iter().rfind(|c| c.status == 429).unwrap();
    let sent = fake.calls_to("POST", "/messages").remove(0);
    assert_eq!(sent.status, 200);
    assert!(
        sent.at - last_limited.at >= Duration::from_millis(600),
        "a global limit holds other routes too"
    );
}

#[tokio::test]
async fn discord_errors_are_one_sentence_without_the_token() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    let too_long = "x".repeat(2001);
    let err = send(&sink, &too_long).await.unwrap_err();
    let SinkError::Failed(text) = err else {
        panic!("expected a failure, got {err:?}")
    };
    assert!(
        text.contains("400") && text.contains("Invalid Form Body"),
        "{text}"
    );
    let err = sink
        .deliver(
            &dm(),
            Outbound::Edit {
                thought: ThoughtId::new(),
                message: "12345".into(),
                text: "edit".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown Message"), "{err}");

    fake.set_token("rotated");
    let err = send(&sink, "hi").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains(config_for(&fake).token.expose()) && !text.contains("fake.discord"));
    let discord = Discord::new(config_for(&fake)).unwrap();
    assert!(!format!("{discord:?}").contains("rotated"));
}

#[tokio::test]
async fn discord_passing_server_errors_are_retried_without_sending_twice() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    // A 502 from Cloudflare before Discord saw the call: tried again.
    fake.fail_next("POST", "/messages", 502, false, 1);
    send(&sink, "first").await.unwrap();
    // A 500 after Discord created the message: the retry carries the same
    // nonce, so Discord hands back the message it made instead of a copy.
    fake.fail_next("POST", "/messages", 500, true, 1);
    let id = send(&sink, "second").await.unwrap().unwrap();

    let posts = fake.calls_to("POST", "/messages");
    assert_eq!(
        posts.iter().map(|c| c.status).collect::<Vec<_>>(),
        [502, 200, 500, 200]
    );
    assert_eq!(fake.bot_texts(DM), ["first", "second"]);
    assert_eq!(fake.bot_messages(DM)[1]["id"], id.as_str());
    let nonce = |i: usize| posts[i].body["nonce"].as_str().unwrap().to_owned();
    assert!(posts.iter().all(|c| c.body["enforce_nonce"] == json!(true)));
    assert!(
        nonce(0).len() <= 25,
        "Discord takes nonces of 25 characters at most"
    );
    assert_eq!(nonce(0), nonce(1), "a retry is the same message");
    assert_eq!(nonce(2), nonce(3));
    assert_ne!(nonce(1), nonce(2), "another message has another nonce");
}

#[tokio::test]
async fn discord_lasting_server_errors_end_in_one_sentence() {
    let fake = FakeDiscord::start().await;
    let sink = sink_for(&fake);
    fake.fail_next("POST", "/messages", 503, false, 10);
    let err = send(&sink, "never").await.unwrap_err();
    let SinkError::Failed(text) = err else {
        panic!("expected a failure, got {err:?}")
    };
    assert!(
        text.contains("503") && text.contains("sending a message"),
        "{text}"
    );
    assert!(!text.contains('<'), "no HTML page in the sentence: {text}");
    assert_eq!(fake.calls_to("POST", "/messages").len(), 3, "two retries");
    assert!(fake.bot_texts(DM).is_empty());
}

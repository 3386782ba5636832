//! The conversation engine end to end: bursts, interruptions, stop phrases,
//! de-duplication, refusals and provider failures, over real HTTP and SQLite.

use crate::support::*;
use clara_core::{Outbound, Role};
use clara_runtime::{Accepted, IngressError};
use clara_store::MessageStatus;
use clara_testkit::fake_openai::FakeReply;
use std::time::Duration;

#[tokio::test]
async fn a_burst_becomes_one_request_carrying_every_message() {
    let h = Harness::start(fast_config()).await;
    assert_eq!(h.say("1", "hey").await, Ok(Accepted::Queued));
    assert_eq!(h.say("2", "quick one:").await, Ok(Accepted::Queued));
    assert_eq!(h.say("3", "what's a monad?").await, Ok(Accepted::Queued));
    let calls = h.sink.wait_until("one answer", |c| ends(c) == 1).await;
    h.settle().await;

    let requests = h.fake.requests();
    assert_eq!(requests.len(), 1, "one thought, one request");
    assert_eq!(
        requests[0].last_user_text().unwrap(),
        "hey\nquick one:\nwhat's a monad?"
    );
    assert!(requests[0].is_stream());
    let thought = calls.iter().find_map(thought_of).unwrap();
    assert_eq!(
        h.sink.streamed(thought),
        "You said: hey\nquick one:\nwhat's a monad?"
    );
}

#[tokio::test]
async fn a_new_message_cancels_the_reply_in_flight_and_one_answer_covers_both() {
    let h = Harness::start(fast_config()).await;
    h.fake.push(FakeReply::Stream {
        chunks: (0..50).map(|i| format!("word{i} ")).collect(),
        delay: Duration::from_millis(100),
    });
    h.say("1", "tell me about rust?").await.unwrap();
    let first = h
        .sink
        .wait_until("the first words", |c| {
            c.iter().any(|x| matches!(x, Outbound::Delta { .. }))
        })
        .await;
    let first_thought = first.iter().find_map(thought_of).unwrap();

    h.say("2", "and about go?").await.unwrap();
    let calls = h
        .sink
        .wait_until("one finished answer", |c| ends(c) == 1)
        .await;
    h.settle().await;

    // The first stream was dropped by Clara, not finished by the server.
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.fake.dropped_streams() < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.fake.dropped_streams(), 1);
    let requests = h.fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].last_user_text().unwrap(),
        "tell me about rust?\nand about go?"
    );

    // Nothing more was sent for the first thought after it was cancelled.
    let cancelled_at = calls
        .iter()
        .position(|c| {
            *c == Outbound::Cancelled {
                thought: first_thought,
            }
        })
        .expect("cancelled");
    assert!(
        calls[cancelled_at + 1..]
            .iter()
            .all(|c| thought_of(c) != Some(first_thought))
    );
    let second = calls
        .iter()
        .filter_map(thought_of)
        .find(|t| *t != first_thought)
        .unwrap();
    assert_eq!(
        h.sink.streamed(second),
        "You said: tell me about rust?\nand about go?"
    );

    // The store has both questions, the cut-off answer marked cancelled, and the full answer.
    h.engine.shutdown().await;
    let store = h.engine.store();
    let conv = store.resolve_conversation(&conversation()).await.unwrap();
    let all = store.recent_messages(conv, 0, 100, 100).await.unwrap();
    let texts: Vec<_> = all.iter().map(|m| (m.role, m.content.as_str())).collect();
    assert_eq!(
        texts,
        vec![
            (Role::User, "tell me about rust?"),
            (Role::User, "and about go?"),
            (
                Role::Assistant,
                "You said: tell me about rust?\nand about go?"
            ),
        ],
        "the window holds only complete messages"
    );
    let cut = store.thought_messages(first_thought).await.unwrap();
    let partial = cut
        .iter()
        .find(|m| m.role == Role::Assistant)
        .expect("partial answer kept");
    assert_eq!(partial.status, MessageStatus::Cancelled);
    assert!(partial.content.starts_with("word0"));
}

#[tokio::test]
async fn a_stop_phrase_cancels_the_reply_and_gets_none() {
    let h = Harness::start(fast_config()).await;
    h.fake.push(FakeReply::Stream {
        chunks: (0..50).map(|i| format!("w{i} ")).collect(),
        delay: Duration::from_millis(100),
    });
    h.say("1", "tell me a long story.").await.unwrap();
    h.sink
        .wait_until("the story starting", |c| {
            c.iter().any(|x| matches!(x, Outbound::Delta { .. }))
        })
        .await;
    assert_eq!(h.say("2", "Clara, stop!").await, Ok(Accepted::Stopped));
    let calls = h
        .sink
        .wait_until("the cancellation", |c| finals(c) == 1)
        .await;
    h.settle().await;
    assert!(matches!(calls.last(), Some(Outbound::Cancelled { .. })));
    assert_eq!(h.fake.request_count(), 1, "no reply to the stop phrase");

    // A stop phrase before the quiet period ends drops the pending thought unasked.
    assert_eq!(h.say("3", "hmm so").await, Ok(Accepted::Queued));
    assert_eq!(h.say("4", "nevermind").await, Ok(Accepted::Stopped));
    h.settle().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.fake.request_count(), 1);
}

#[tokio::test]
async fn a_redelivered_event_is_answered_once() {
    let h = Harness::start(fast_config()).await;
    assert_eq!(h.say("ev-1", "hello?").await, Ok(Accepted::Queued));
    assert_eq!(h.say("ev-1", "hello?").await, Ok(Accepted::Duplicate));
    h.sink.wait_until("the answer", |c| ends(c) == 1).await;
    h.settle().await;
    assert_eq!(h.fake.requests()[0].last_user_text().unwrap(), "hello?");
}

#[tokio::test]
async fn empty_and_oversized_messages_are_refused_in_one_sentence() {
    let mut config = fast_config();
    config.max_message_chars = 100;
    let h = Harness::start(config).await;
    assert_eq!(h.say("1", "   ").await, Err(IngressError::Empty));
    assert_eq!(h.say("2", "!high").await, Err(IngressError::Empty));
    let refused = h.say("3", &"x".repeat(101)).await.unwrap_err();
    assert_eq!(
        refused,
        IngressError::TooLong {
            chars: 101,
            limit: 100
        }
    );
    assert_eq!(
        refused.to_string(),
        "That message is too long (101 characters; the limit is 100). Please shorten it or split it up."
    );
    // The engine is unharmed.
    h.say("4", "still there?").await.unwrap();
    h.sink.wait_until("an answer", |c| ends(c) == 1).await;
}

#[tokio::test]
async fn a_tier_prefix_is_removed_from_the_text() {
    let h = Harness::start(fast_config()).await;
    h.say("1", "!high explain monads?").await.unwrap();
    h.sink.wait_until("an answer", |c| ends(c) == 1).await;
    assert_eq!(
        h.fake.requests()[0].last_user_text().unwrap(),
        "explain monads?"
    );
}

#[tokio::test]
async fn provider_failures_reach_the_person_and_the_engine_keeps_serving() {
    let h = Harness::start(fast_config()).await;
    let error_for = |calls: &[Outbound]| {
        calls.iter().rev().find_map(|c| match c {
            Outbound::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
    };

    h.fake.push(FakeReply::Error {
        status: 401,
        message: "Incorrect API key provided: sk-abc".into(),
        retry_after: None,
    });
    h.say("1", "hello?").await.unwrap();
    let calls = h.sink.wait_until("an error", |c| finals(c) == 1).await;
    let message = error_for(&calls).unwrap();
    assert!(message.contains("API key"), "{message}");
    assert!(!message.contains("sk-abc"));

    h.fake.push(FakeReply::RawSse(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hal\"}}]}\n\ndata: {broken\n\n".into(),
    ));
    h.say("2", "again?").await.unwrap();
    let calls = h
        .sink
        .wait_until("a second error", |c| finals(c) == 2)
        .await;
    assert!(error_for(&calls).is_some());

    h.fake.push(FakeReply::RawSse(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Half an ans\"}}]}\n\n".into(),
    ));
    h.say("3", "once more?").await.unwrap();
    let calls = h.sink.wait_until("a cut stream", |c| finals(c) == 3).await;
    assert!(
        matches!(calls.last(), Some(Outbound::Error { .. })),
        "a truncated stream is an error, not an answer"
    );

    // Rate limited once, then answered: the person only sees the answer.
    h.fake.push(FakeReply::Error {
        status: 429,
        message: "slow down".into(),
        retry_after: Some(1),
    });
    h.say("4", "and now?").await.unwrap();
    let calls = h.sink.wait_until("an answer", |c| finals(c) == 4).await;
    assert!(matches!(calls.last(), Some(Outbound::End { .. })));
    h.settle().await;

    // Every question was stored although three answers failed.
    h.engine.shutdown().await;
    let store = h.engine.store();
    let conv = store.resolve_conversation(&conversation()).await.unwrap();
    let users: Vec<_> = store
        .recent_messages(conv, 0, 100, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content)
        .collect();
    assert_eq!(users, vec!["hello?", "again?", "once more?", "and now?"]);
}

#[tokio::test]
async fn messages_from_two_people_in_a_group_get_their_own_answers() {
    let h = Harness::start(fast_config()).await;
    let mut bob = inbound("b1", "what time is it?");
    bob.author = clara_core::Author {
        platform_user_id: "u-bob".into(),
        display_name: "Bob".into(),
    };
    h.say("a1", "hi all.").await.unwrap();
    h.engine.submit(bob).await.unwrap();
    h.sink.wait_until("two answers", |c| ends(c) == 2).await;
    let mut texts: Vec<_> = h
        .fake
        .requests()
        .iter()
        .map(|r| r.last_user_text().unwrap())
        .collect();
    texts.sort();
    assert_eq!(texts, vec!["hi all.", "what time is it?"]);
}

#[tokio::test]
async fn images_travel_with_their_thought_to_the_model() {
    let h = Harness::start(fast_config()).await;
    let mut photo = inbound("1", "what is in this picture?");
    photo.images = vec![clara_core::Image::Bytes {
        media_type: "image/png".into(),
        data: vec![0x89, b'P', b'N', b'G'],
    }];
    h.engine.submit(photo).await.unwrap();
    h.sink.wait_until("an answer", |c| ends(c) == 1).await;
    let body = &h.fake.requests()[0].body;
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    let parts = last["content"].as_array().expect("text and image parts");
    assert_eq!(parts[0]["text"], "what is in this picture?");
    assert_eq!(
        parts[1]["image_url"]["url"],
        "data:image/png;base64,iVBORw=="
    );
}

//! How replies reach Telegram: human-paced parts cut short by a new message,
//! flood limits (429 `retry_after`) waited out, server errors retried, and
//! "typing…" kept up while Clara thinks.

use crate::support::*;
use clara_core::Role;
use clara_core::pacing::TypingPace;
use clara_telegram::TelegramDelivery;
use clara_testkit::fake_openai::FakeReply;
use clara_testkit::fake_telegram::{FakeChat, FakeFault, UserMessage};
use std::time::Duration;

#[tokio::test]
async fn parts_come_one_by_one_and_a_new_message_cuts_them_short() {
    let pace = TypingPace {
        chars_per_second: 1000.0,
        min: Duration::from_millis(400),
        max: Duration::from_millis(400),
    };
    let rig = Rig::start(TelegramDelivery::Parts(pace)).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.llm.push(FakeReply::text(
        "First part.\n\nSecond part.\n\nThird part.\n\nFourth part.",
    ));
    rig.tg
        .send(UserMessage::text(&chat, &ann, "tell me four things."));
    rig.tg
        .wait_for("the first part", |tg| !tg.bot_messages(ann.id).is_empty())
        .await;
    rig.tg
        .send(UserMessage::text(&chat, &ann, "actually, just one."));
    rig.tg
        .wait_for("the next answer", |tg| {
            bot_texts(tg, &chat)
                .iter()
                .any(|t| t.starts_with("You said"))
        })
        .await;
    rig.settle(&chat).await;

    let texts = bot_texts(&rig.tg, &chat);
    let (answer, parts) = texts.split_last().unwrap();
    assert_eq!(
        answer,
        "You said: tell me four things.\nactually, just one."
    );
    assert!(!parts.is_empty() && parts.len() < 4, "cut short: {parts:?}");
    assert_eq!(parts[0], "First part.");
    let expected = ["First part.", "Second part.", "Third part."];
    assert_eq!(parts, &expected[..parts.len()], "in order, none twice");
    assert!(
        rig.tg.calls_to("editMessageText").is_empty(),
        "parts are never edited"
    );
    // Each part follows a typing pause.
    let calls = rig.tg.calls();
    for (i, call) in calls.iter().enumerate() {
        if call.method == "sendMessage" {
            assert_eq!(calls[i - 1].method, "sendChatAction", "{calls:#?}");
        }
    }

    // Only the parts that were sent are Clara's message. (Shutting down
    // flushes the store's group commit.)
    rig.engine.shutdown().await;
    let store = rig.engine.store();
    let conversation = store
        .resolve_conversation(&conversation_of(&chat))
        .await
        .unwrap();
    let stored = store
        .recent_messages(conversation, 0, 100, 100)
        .await
        .unwrap();
    let claras: Vec<&str> = stored
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(claras, vec![parts.join("\n\n").as_str(), answer.as_str()]);
}

#[tokio::test]
async fn a_flood_limited_edit_waits_retry_after_and_the_answer_completes() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg.fail_next(
        "editMessageText",
        FakeFault::TooManyRequests { retry_after: 1 },
    );
    let chunks: Vec<String> = (0..12).map(|i| format!("part{i} ")).collect();
    rig.llm.push(FakeReply::Stream {
        chunks: chunks.clone(),
        delay: Duration::from_millis(100),
    });
    rig.tg.send(UserMessage::text(&chat, &ann, "go"));
    let full = chunks.concat().trim_end().to_owned();
    rig.tg
        .wait_for("the whole answer", |tg| {
            bot_texts(tg, &chat) == vec![full.clone()]
        })
        .await;
    rig.settle(&chat).await;
    let edits = rig.tg.calls_to("editMessageText");
    assert_eq!(edits[0].status, Some(429));
    assert!(
        edits[1].at.duration_since(edits[0].at) >= Duration::from_secs(1),
        "retried only after retry_after"
    );
    assert_eq!(rig.tg.bot_messages(ann.id).len(), 1);
}

#[tokio::test]
async fn the_default_pace_stays_under_telegrams_per_chat_limit() {
    let rig = Rig::start(TelegramDelivery::default()).await;
    let ann = ann();
    let chat = dm(&ann);
    // Telegram allows about one message or edit a second per chat; this fake
    // refuses any write sooner than 0.8 s after the previous one.
    rig.tg.limit_writes_per_chat(Duration::from_millis(800));
    let chunks: Vec<String> = (0..20).map(|i| format!("bit{i} ")).collect();
    rig.llm.push(FakeReply::Stream {
        chunks: chunks.clone(),
        delay: Duration::from_millis(100),
    });
    rig.tg.send(UserMessage::text(&chat, &ann, "go"));
    let full = chunks.concat().trim_end().to_owned();
    rig.tg
        .wait_for("the whole answer", |tg| {
            bot_texts(tg, &chat) == vec![full.clone()]
        })
        .await;
    rig.settle(&chat).await;
    let writes: Vec<_> = rig
        .tg
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage" || c.method == "editMessageText")
        .collect();
    assert!(writes.len() >= 2, "streamed by edits");
    assert!(
        writes.iter().all(|c| c.status == Some(200)),
        "never flood limited: {writes:#?}"
    );
}

#[tokio::test]
async fn in_a_group_edits_are_spaced_to_telegrams_group_limit() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let group = FakeChat::supergroup(-100_555, "Team");
    let chunks: Vec<String> = (0..15).map(|i| format!("step{i} ")).collect();
    rig.llm.push(FakeReply::Stream {
        chunks: chunks.clone(),
        delay: Duration::from_millis(100),
    });
    rig.tg
        .send(UserMessage::text(&group, &ann, "@clara_test_bot plan it"));
    let full = chunks.concat().trim_end().to_owned();
    rig.tg
        .wait_for("the whole answer", |tg| {
            bot_texts(tg, &group) == vec![full.clone()]
        })
        .await;
    rig.settle(&group).await;
    let writes: Vec<_> = rig
        .tg
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage" || c.method == "editMessageText")
        .collect();
    assert!(writes.len() >= 2, "still streamed by edits");
    for pair in writes.windows(2) {
        // The edit cooldown here is 300 ms; the group interval (1 s in these
        // tests, 3 s by default) spaces writes further. (The bound leaves room
        // for a busy machine: slots are 1 s apart, arrivals nearly so.)
        assert!(
            pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(700),
            "{writes:#?}"
        );
    }
}

#[tokio::test]
async fn a_flood_limited_new_message_is_sent_once_after_retry_after() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg
        .fail_next("sendMessage", FakeFault::TooManyRequests { retry_after: 1 });
    rig.llm.push(FakeReply::text("Here I am."));
    rig.tg.send(UserMessage::text(&chat, &ann, "hello?"));
    rig.tg
        .wait_for("the answer", |tg| {
            bot_texts(tg, &chat) == vec!["Here I am.".to_owned()]
        })
        .await;
    rig.settle(&chat).await;
    let sends = rig.tg.calls_to("sendMessage");
    let statuses: Vec<_> = sends.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(200)]);
    assert!(sends[1].at.duration_since(sends[0].at) >= Duration::from_secs(1));
}

#[tokio::test]
async fn server_errors_and_broken_connections_are_retried_with_backoff() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg.fail_next("sendMessage", FakeFault::ServerError(502));
    rig.tg.fail_next("sendMessage", FakeFault::ServerError(500));
    rig.tg.fail_next("editMessageText", FakeFault::Disconnect);
    let chunks: Vec<String> = (0..8).map(|i| format!("piece{i} ")).collect();
    rig.llm.push(FakeReply::Stream {
        chunks: chunks.clone(),
        delay: Duration::from_millis(120),
    });
    rig.tg.send(UserMessage::text(&chat, &ann, "go"));
    let full = chunks.concat().trim_end().to_owned();
    rig.tg
        .wait_for("the whole answer", |tg| {
            bot_texts(tg, &chat) == vec![full.clone()]
        })
        .await;
    rig.settle(&chat).await;
    let sends = rig.tg.calls_to("sendMessage");
    let statuses: Vec<_> = sends.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![Some(502), Some(500), Some(200)]);
    assert!(sends[1].at.duration_since(sends[0].at) >= Duration::from_millis(100));
    assert!(
        sends[2].at.duration_since(sends[1].at) >= Duration::from_millis(200),
        "the wait doubles"
    );
    assert_eq!(
        rig.tg.bot_messages(ann.id).len(),
        1,
        "one message, not three"
    );
}

#[tokio::test]
async fn typing_is_kept_up_while_clara_thinks() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    // A model that takes six seconds to say anything; Telegram shows "typing"
    // for five seconds per action.
    rig.llm.push(FakeReply::Stream {
        chunks: vec!["Done.".into()],
        delay: Duration::from_secs(6),
    });
    rig.tg.send(UserMessage::text(&chat, &ann, "think hard"));
    rig.tg
        .wait_for("the answer", |tg| {
            bot_texts(tg, &chat) == vec!["Done.".to_owned()]
        })
        .await;
    rig.settle(&chat).await;
    let calls = rig.tg.calls();
    let send = calls
        .iter()
        .position(|c| c.method == "sendMessage")
        .unwrap();
    let typing_before = calls[..send]
        .iter()
        .filter(|c| c.method == "sendChatAction")
        .count();
    assert!(typing_before >= 2, "renewed: {typing_before}");
    let typing_total = rig.tg.calls_to("sendChatAction").len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        rig.tg.calls_to("sendChatAction").len(),
        typing_total,
        "no typing once the answer is there"
    );
}

//! The send queue's two non-streaming modes, end to end through the engine:
//! one message grown by rate-limited edits, and human-paced parts that stop the
//! moment the person writes again.

use crate::support::*;
use clara_core::Outbound;
use clara_core::pacing::{DeliveryMode, TypingPace};
use clara_store::MessageStatus;
use clara_testkit::fake_openai::FakeReply;
use std::time::Duration;

#[tokio::test]
async fn edits_grow_one_message_and_continue_past_the_limit() {
    let sink = RecordingSink::new(
        DeliveryMode::Edits {
            cooldown: Duration::from_millis(150),
        },
        60,
    );
    let h = Harness::with_sink(fast_config(), sink).await;
    let words: Vec<String> = (0..30).map(|i| format!("word{i:02} ")).collect();
    h.fake.push(FakeReply::Stream {
        chunks: words.clone(),
        delay: Duration::from_millis(20),
    });
    h.say("1", "talk to me.").await.unwrap();
    h.settle().await;

    let calls = h.sink.calls();
    let sends: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c, Outbound::Send { .. }))
        .collect();
    let edits: Vec<_> = calls
        .iter()
        .filter(|c| matches!(c, Outbound::Edit { .. }))
        .collect();
    assert!(
        sends.len() >= 4,
        "210 characters in messages of at most 60: {sends:?}"
    );
    assert!(!edits.is_empty());
    // Stream of 600 ms with a 150 ms cooldown: far fewer calls than chunks.
    assert!(
        sends.len() + edits.len() < words.len(),
        "{} calls for {} chunks",
        sends.len() + edits.len(),
        words.len()
    );
    // Each message's final text, in order, is the whole answer.
    let mut finals: Vec<(String, String)> = Vec::new();
    let mut next = 1;
    for c in &calls {
        match c {
            Outbound::Send { text, .. } => {
                finals.push((format!("m{next}"), text.clone()));
                next += 1;
            }
            Outbound::Edit { message, text, .. } => {
                let slot = finals
                    .iter_mut()
                    .find(|(id, _)| id == message)
                    .expect("edit names a sent message");
                slot.1 = text.clone();
            }
            _ => {}
        }
    }
    assert!(finals.iter().all(|(_, t)| t.chars().count() <= 60));
    let joined: String = finals
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(joined, words.concat().trim_end());
}

#[tokio::test]
async fn human_paced_parts_stop_when_the_person_writes_and_only_sent_parts_are_kept() {
    let pace = TypingPace {
        chars_per_second: 1000.0,
        min: Duration::from_millis(300),
        max: Duration::from_millis(300),
    };
    let sink = RecordingSink::new(DeliveryMode::Parts(pace), 4096);
    let h = Harness::with_sink(fast_config(), sink).await;
    h.fake.push(FakeReply::text(
        "First part.\n\nSecond part.\n\nThird part.\n\nFourth part.",
    ));
    h.say("1", "tell me four things.").await.unwrap();
    let calls = h
        .sink
        .wait_until("the first part", |c| {
            c.iter().any(|x| matches!(x, Outbound::Send { .. }))
        })
        .await;
    let first_thought = calls.iter().find_map(thought_of).unwrap();
    h.say("2", "actually, just one.").await.unwrap();
    h.sink
        .wait_until("the next answer", |c| {
            c.iter()
                .any(|x| matches!(x, Outbound::Send { thought, .. } if *thought != first_thought))
        })
        .await;
    h.settle().await;

    let sent_first: Vec<_> = h
        .sink
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Outbound::Send { thought, text } if thought == first_thought => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        !sent_first.is_empty() && sent_first.len() < 4,
        "cut short: {sent_first:?}"
    );
    assert_eq!(sent_first[0], "First part.");

    h.engine.shutdown().await;
    let stored = h
        .engine
        .store()
        .thought_messages(first_thought)
        .await
        .unwrap();
    let reply = stored
        .iter()
        .find(|m| m.role == clara_core::Role::Assistant)
        .unwrap();
    assert_eq!(
        reply.content,
        sent_first.join("\n\n"),
        "only what was sent is Clara's message"
    );
    assert_eq!(
        reply.status,
        MessageStatus::Complete,
        "whole parts were read, so they stay in the conversation"
    );
}

/// A running tool's live output on a platform that edits: one status message,
/// sent at the first output, edited no faster than the cooldown, given its last
/// line when the tool ends; a file the tool sends goes out as it comes; the
/// status is not part of what is stored as Clara's answer.
#[tokio::test]
async fn a_running_tool_shows_a_status_message_where_the_platform_edits() {
    use clara_core::{ChannelKind, ConversationRef, FileBlob, Permission, ThoughtId, ToolRun};
    use clara_runtime::SendQueue;

    let cooldown = Duration::from_millis(50);
    let sink = RecordingSink::new(DeliveryMode::Edits { cooldown }, 4096);
    let conversation = ConversationRef {
        platform: "test".into(),
        channel: "c1".into(),
        kind: ChannelKind::Direct,
    };
    let mut queue = SendQueue::new(sink.clone(), conversation, ThoughtId::new());
    queue.push("Let me plot that.").await;
    queue.tool_started("code__python").await;
    queue.tool_progress("code__python", "rows 4").await;
    queue
        .tool_progress("code__python", "rows 4\nsaved chart.png")
        .await;
    // The second output waits for the cooldown; the queue says when.
    let due = queue.next_wake().expect("an edit is due later");
    tokio::time::sleep_until(due).await;
    queue.wake().await;
    queue
        .file(
            FileBlob::new("chart.png", b"\x89PNG\r\n\x1a\n".to_vec()),
            Some("Your chart".into()),
        )
        .await;
    queue
        .tool_finished(&ToolRun {
            call_id: "c".into(),
            name: "code__python".into(),
            arguments: "{}".into(),
            result: "rows 4".into(),
            ok: true,
            permission: Permission::Policy,
            started_at_ms: 0,
            duration_ms: 3_200,
        })
        .await;
    let delivered = queue.finish().await;
    assert_eq!(
        delivered, "Let me plot that.",
        "the status is not the answer"
    );

    let calls = sink.calls();
    let status_sends = calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Send { text, .. } if text.starts_with("⏳ python is running") => {
                assert!(text.contains("rows 4"), "{text}");
                Some(())
            }
            _ => None,
        })
        .count();
    assert_eq!(status_sends, 1, "one status message: {calls:?}");
    let status_texts: Vec<&str> = calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Edit { text, .. } if !text.starts_with("Let me") => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        status_texts.iter().any(|t| t.contains("saved chart.png")),
        "{status_texts:?}"
    );
    assert_eq!(status_texts.last(), Some(&"✓ python ran for 3.2 s"));
    assert!(calls.iter().any(|c| matches!(
        c,
        Outbound::File { file, caption, .. }
            if file.name == "chart.png" && file.is_image() && caption.as_deref() == Some("Your chart")
    )));
}

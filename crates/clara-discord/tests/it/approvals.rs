//! Questions to the owner: an `Ask` is a message with three buttons, a press
//! is acknowledged and handed to Clara as the presser's answer, an
//! `AskClosed` takes the buttons away, and a press that answers nothing is
//! only acknowledged.

use crate::support::*;
use clara_core::approval::{ApprovalAnswer, ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::{ChannelKind, ConversationRef, Outbound};
use clara_testkit::fake_discord::{FakeDiscord, UserMessage};
use serde_json::json;

fn prompt() -> ApprovalPrompt {
    ApprovalPrompt {
        id: ApprovalId("3f9a2c1d".into()),
        tool: "mail__send".into(),
        arguments: r#"{"to":"bob@example.org"}"#.into(),
        reason: "It sends a message in your name.".into(),
        asked_for: "Ann in a direct conversation".into(),
        timeout_secs: 300,
    }
}

fn conversation(channel: u64, kind: ChannelKind) -> ConversationRef {
    ConversationRef {
        platform: "discord".into(),
        channel: channel.to_string(),
        kind,
    }
}

/// Clara asks in `channel`; returns the question's message id.
async fn ask(running: &Running, channel: u64, kind: ChannelKind) -> u64 {
    let id = running
        .sink
        .deliver(
            &conversation(channel, kind),
            Outbound::Ask { prompt: prompt() },
        )
        .await
        .unwrap()
        .expect("an ask returns its message id");
    id.parse().unwrap()
}

#[tokio::test]
async fn a_question_shows_three_buttons_whose_ids_name_each_answer() {
    let fake = FakeDiscord::start().await;
    let (running, _assistant) = recording(&fake, config_for(&fake)).await;
    let id = ask(&running, DM, ChannelKind::Direct).await;

    let message = fake
        .bot_messages(DM)
        .into_iter()
        .find(|m| m["id"] == json!(id.to_string()))
        .unwrap();
    assert_eq!(message["content"], prompt().text(false));
    let row = &message["components"][0];
    assert_eq!(row["type"], 1, "one action row");
    let styles: Vec<u64> = row["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["type"], 2);
            b["style"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(styles, [3, 1, 4], "green, blurple, red");
    let buttons = fake.message_buttons(id);
    let labels: Vec<&str> = buttons.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Approve once", "Always (these arguments)", "Deny"]);
    let verdicts: Vec<Verdict> = buttons
        .iter()
        .map(|(_, custom_id)| {
            let answer = ApprovalAnswer::from_token(custom_id).unwrap();
            assert_eq!(answer.id, prompt().id);
            answer.verdict
        })
        .collect();
    assert_eq!(verdicts, [Verdict::Once, Verdict::Always, Verdict::Deny]);
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_press_is_acknowledged_and_reaches_clara_as_the_pressers_answer() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let id = ask(&running, DM, ChannelKind::Direct).await;

    let interaction = fake.press_button(id, &ann(), "Approve once");
    let submitted = assistant.wait_submitted(1).await;
    let answer = &submitted[0];
    assert_eq!(answer.text, "/approve 3f9a2c1d");
    assert_eq!(answer.event_id.0, format!("discord:ix:{interaction}"));
    assert_eq!(answer.conversation, conversation(DM, ChannelKind::Direct));
    assert_eq!(answer.author.platform_user_id, ann().id.to_string());
    assert_eq!(answer.author.display_name, "Ann");
    assert_eq!(
        fake.interaction_response(&interaction),
        Some(json!({ "type": 6 })),
        "acknowledged without changing the message"
    );

    // In a server, the presser is the member's user.
    fake.post(UserMessage::guild(GUILD, GENERAL, &bob(), "hello"));
    let id = ask(&running, GENERAL, ChannelKind::Group).await;
    let interaction = fake.press_button(id, &bob(), "Deny");
    let submitted = assistant.wait_submitted(2).await;
    let answer = &submitted[1];
    assert_eq!(answer.text, "/deny 3f9a2c1d");
    assert_eq!(answer.event_id.0, format!("discord:ix:{interaction}"));
    assert_eq!(
        answer.conversation,
        conversation(GENERAL, ChannelKind::Group)
    );
    assert_eq!(answer.author.platform_user_id, bob().id.to_string());
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_closed_question_says_how_it_ended_without_buttons() {
    let fake = FakeDiscord::start().await;
    let (running, _assistant) = recording(&fake, config_for(&fake)).await;
    let id = ask(&running, DM, ChannelKind::Direct).await;

    let closed = Outbound::AskClosed {
        prompt: prompt(),
        message: Some(id.to_string()),
        outcome: ApprovalOutcome::Answered(Verdict::Always),
    };
    let answered = running
        .sink
        .deliver(&conversation(DM, ChannelKind::Direct), closed)
        .await;
    assert_eq!(answered.unwrap(), None);
    let message = fake
        .bot_messages(DM)
        .into_iter()
        .find(|m| m["id"] == json!(id.to_string()))
        .unwrap();
    let content = message["content"].as_str().unwrap();
    assert!(content.starts_with(&prompt().text(false)), "{content}");
    assert!(content.ends_with("Approved, now and from now on for these arguments."));
    assert_eq!(message["components"], json!([]));
    assert!(fake.message_buttons(id).is_empty());

    // A question whose `Ask` never showed has nothing to close.
    let edits = fake.calls_to("PATCH", &format!("/messages/{id}")).len();
    let unseen = Outbound::AskClosed {
        prompt: prompt(),
        message: None,
        outcome: ApprovalOutcome::Withdrawn,
    };
    running
        .sink
        .deliver(&conversation(DM, ChannelKind::Direct), unseen)
        .await
        .unwrap();
    assert_eq!(
        fake.calls_to("PATCH", &format!("/messages/{id}")).len(),
        edits
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_press_that_answers_no_question_is_acknowledged_and_ignored() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let id = ask(&running, DM, ChannelKind::Direct).await;

    let garbage = fake.send_interaction(id, &ann(), "garbage");
    let forged = fake.send_interaction(id, &ann(), "approve:not-hex!");
    fake.wait_until("both presses acknowledged", |f| {
        f.interaction_response(&garbage).is_some() && f.interaction_response(&forged).is_some()
    })
    .await;
    // A real press after them is the only thing Clara gets.
    fake.press_button(id, &ann(), "Deny");
    assistant.wait_submitted(1).await;
    assert_eq!(assistant.texts(), ["/deny 3f9a2c1d"]);
    running.shut_down().await.unwrap();
}

//! Questions to the owner: an `Ask` is a message with three buttons, a press
//! is answered and handed to Clara as the owner's answer, an `AskClosed`
//! takes the buttons away, and a press that answers nothing is only answered.

use crate::support::*;
use clara_core::approval::{ApprovalAnswer, ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::{ChannelKind, Outbound};
use clara_testkit::fake_telegram::UserMessage;

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

/// Clara asks in `chat`; returns the question's message id.
async fn ask(rig: &Recorded, chat: &clara_testkit::fake_telegram::FakeChat) -> i64 {
    let id = rig
        .sink
        .deliver(&conversation_of(chat), Outbound::Ask { prompt: prompt() })
        .await
        .unwrap()
        .expect("an ask returns its message id");
    id.parse().unwrap()
}

#[tokio::test]
async fn a_question_shows_three_buttons_whose_data_names_each_answer() {
    let rig = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    // The chat exists once Ann has written.
    rig.tg.send(UserMessage::text(&chat, &ann, "hi"));
    rig.assistant.wait_for_inbounds(1).await;

    let id = ask(&rig, &chat).await;
    let message = rig
        .tg
        .bot_messages(chat.id)
        .into_iter()
        .find(|m| m.message_id == id)
        .unwrap();
    assert_eq!(message.text, prompt().text(false));
    assert!(!message.text.contains("/approve"), "buttons, not commands");
    let buttons = message.buttons();
    let labels: Vec<&str> = buttons.iter().map(|(text, _)| text.as_str()).collect();
    assert_eq!(labels, ["Approve once", "Always (these arguments)", "Deny"]);
    let answers: Vec<ApprovalAnswer> = buttons
        .iter()
        .map(|(_, data)| ApprovalAnswer::from_token(data).unwrap())
        .collect();
    assert!(answers.iter().all(|a| a.id == prompt().id));
    let verdicts: Vec<Verdict> = answers.iter().map(|a| a.verdict).collect();
    assert_eq!(verdicts, [Verdict::Once, Verdict::Always, Verdict::Deny]);
    rig.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_press_is_answered_and_reaches_clara_as_the_owners_answer() {
    let rig = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg.send(UserMessage::text(&chat, &ann, "hi"));
    rig.assistant.wait_for_inbounds(1).await;
    let id = ask(&rig, &chat).await;

    let query = rig
        .tg
        .press_button(chat.id, id, &ann, "Always (these arguments)");
    let inbounds = rig.assistant.wait_for_inbounds(2).await;
    let answer = &inbounds[1];
    assert_eq!(answer.text, "/always 3f9a2c1d");
    assert_eq!(answer.event_id.0, format!("telegram:cb:{query}"));
    assert_eq!(answer.conversation.channel, chat.id.to_string());
    assert_eq!(answer.conversation.kind, ChannelKind::Direct);
    assert_eq!(answer.author.platform_user_id, ann.id.to_string());
    assert_eq!(answer.author.display_name, "Ann Lee");
    rig.tg
        .wait_for("the press answered", |tg| {
            tg.callback_answer(&query).is_some()
        })
        .await;
    assert_eq!(rig.tg.callback_answer(&query).unwrap()["text"], "Got it.");
    // Polling asks for button presses.
    let polls = rig.tg.calls_to("getUpdates");
    assert!(
        polls.iter().all(|c| c.params["allowed_updates"]
            .as_array()
            .unwrap()
            .contains(&"callback_query".into())),
        "{polls:#?}"
    );
    rig.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_closed_question_says_how_it_ended_without_buttons() {
    let rig = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg.send(UserMessage::text(&chat, &ann, "hi"));
    rig.assistant.wait_for_inbounds(1).await;
    let id = ask(&rig, &chat).await;

    let closed = Outbound::AskClosed {
        prompt: prompt(),
        message: Some(id.to_string()),
        outcome: ApprovalOutcome::Answered(Verdict::Deny),
    };
    let answered = rig.sink.deliver(&conversation_of(&chat), closed).await;
    assert_eq!(answered.unwrap(), None);
    let message = rig
        .tg
        .bot_messages(chat.id)
        .into_iter()
        .find(|m| m.message_id == id)
        .unwrap();
    assert_eq!(message.edits, 1);
    assert!(message.text.starts_with(&prompt().text(false)));
    assert!(message.text.ends_with("Denied."), "{}", message.text);
    assert_eq!(message.buttons(), Vec::new(), "the buttons are gone");
    assert_eq!(message.reply_markup, None);

    // A question whose `Ask` never showed has nothing to close.
    let unseen = Outbound::AskClosed {
        prompt: prompt(),
        message: None,
        outcome: ApprovalOutcome::TimedOut,
    };
    let edits = rig.tg.calls_to("editMessageText").len();
    rig.sink
        .deliver(&conversation_of(&chat), unseen)
        .await
        .unwrap();
    assert_eq!(rig.tg.calls_to("editMessageText").len(), edits);
    rig.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_press_that_answers_no_question_is_answered_and_ignored() {
    let rig = Recorded::start().await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg.send(UserMessage::text(&chat, &ann, "hi"));
    rig.assistant.wait_for_inbounds(1).await;
    let id = rig.clara_says(&chat, "Hello!").await;

    let query = rig.tg.send_callback(chat.id, id, &ann, "garbage");
    let forged = rig.tg.send_callback(chat.id, id, &ann, "approve:not-hex!");
    rig.all_handled().await;
    for q in [&query, &forged] {
        let answer = rig.tg.callback_answer(q).expect("every press is answered");
        assert_eq!(answer["text"], "This button does nothing.");
    }
    assert_eq!(rig.assistant.inbounds().len(), 1, "nothing reached Clara");
    // After it, ordinary messages still flow.
    rig.tg.send(UserMessage::text(&chat, &ann, "still there?"));
    let inbounds = rig.assistant.wait_for_inbounds(2).await;
    assert_eq!(inbounds[1].text, "still there?");
    rig.adapter.stop().await.unwrap();
}

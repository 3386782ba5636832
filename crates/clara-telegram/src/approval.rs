//! Questions to the owner as inline keyboards, and button presses back. Pure.
//!
//! An [`Outbound::Ask`](clara_core::Outbound::Ask) becomes a message with three
//! buttons whose `callback_data` is an [`ApprovalAnswer`] token (at most 64
//! bytes, as Telegram allows); its `AskClosed` edits that message to say how it
//! ended, with an empty keyboard (which removes the buttons). A press arrives as
//! a `callback_query` update; [`press_of`] reads it.

use super::translate::{PLATFORM, channel_for};
use super::types::CallbackQuery;
use clara_core::approval::{ApprovalAnswer, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::{Author, ChannelKind, ConversationRef, EventId};
use serde_json::{Value, json};

/// What the pressed button's spinner says when the press was taken.
pub(crate) const TAKEN: &str = "Got it.";
/// What it says for a button that is not one of Clara's questions.
pub(crate) const NOT_OURS: &str = "This button does nothing.";

/// The buttons under a question: approve once, always (these arguments), deny.
pub(crate) fn keyboard(prompt: &ApprovalPrompt) -> Value {
    let button = |text: &str, verdict: Verdict| {
        let answer = ApprovalAnswer {
            id: prompt.id.clone(),
            verdict,
        };
        json!({ "text": text, "callback_data": answer.to_token() })
    };
    json!({ "inline_keyboard": [[
        button("Approve once", Verdict::Once),
        button("Always (these arguments)", Verdict::Always),
        button("Deny", Verdict::Deny),
    ]] })
}

/// The markup that removes a message's buttons.
pub(crate) fn no_keyboard() -> Value {
    json!({ "inline_keyboard": [] })
}

/// A closed question's text: the question, then how it ended.
pub(crate) fn closed_text(prompt: &ApprovalPrompt, outcome: &ApprovalOutcome) -> String {
    format!("{}\n\n{}", prompt.text(false), outcome.describe())
}

/// A press of one of Clara's buttons, in Clara's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Press {
    pub conversation: ConversationRef,
    pub author: Author,
    pub answer: ApprovalAnswer,
    pub event: EventId,
}

/// Reads a button press; `None` when it is not an answer to a question (data
/// that is not a token, no message, a bot pressing, a chat that is neither
/// private nor a group).
pub(crate) fn press_of(query: &CallbackQuery) -> Option<Press> {
    let answer = ApprovalAnswer::from_token(query.data.as_deref()?)?;
    let message = query.message.as_ref()?;
    if query.from.is_bot {
        return None;
    }
    let kind = match message.chat.kind.as_str() {
        "private" => ChannelKind::Direct,
        "group" | "supergroup" => ChannelKind::Group,
        _ => return None,
    };
    let thread = message
        .is_topic_message
        .then_some(message.message_thread_id)
        .flatten();
    Some(Press {
        conversation: ConversationRef {
            platform: PLATFORM.to_owned(),
            channel: channel_for(message.chat.id, thread),
            kind,
        },
        author: Author {
            platform_user_id: query.from.id.to_string(),
            display_name: query.from.display_name(),
        },
        answer,
        event: EventId(format!("{PLATFORM}:cb:{}", query.id)),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clara_core::approval::ApprovalId;

    fn prompt() -> ApprovalPrompt {
        ApprovalPrompt {
            id: ApprovalId("3f9a2c1d".into()),
            tool: "mail__send".into(),
            arguments: "{}".into(),
            reason: "It sends mail.".into(),
            asked_for: "Ann".into(),
            timeout_secs: 60,
        }
    }

    #[test]
    fn the_keyboard_carries_the_three_answers_within_telegrams_limit() {
        let keyboard = keyboard(&prompt());
        let row = keyboard["inline_keyboard"][0].as_array().unwrap();
        let verdicts: Vec<Verdict> = row
            .iter()
            .map(|b| {
                let data = b["callback_data"].as_str().unwrap();
                assert!(data.len() <= 64);
                let answer = ApprovalAnswer::from_token(data).unwrap();
                assert_eq!(answer.id, prompt().id);
                answer.verdict
            })
            .collect();
        assert_eq!(verdicts, [Verdict::Once, Verdict::Always, Verdict::Deny]);
    }

    fn query(data: &str, chat: Value, from_bot: bool) -> CallbackQuery {
        serde_json::from_value(json!({
            "id": "4382bfdwdsb323b2d9",
            "from": {"id": 42, "is_bot": from_bot, "first_name": "Ann"},
            "message": {"message_id": 7, "date": 0, "chat": chat},
            "chat_instance": "-1234",
            "data": data,
        }))
        .unwrap()
    }

    #[test]
    fn a_press_names_the_chat_the_person_and_the_answer() {
        let press = press_of(&query(
            "always:3f9a2c1d",
            json!({"id": 42, "type": "private"}),
            false,
        ))
        .unwrap();
        assert_eq!(press.conversation.channel, "42");
        assert_eq!(press.conversation.kind, ChannelKind::Direct);
        assert_eq!(press.author.platform_user_id, "42");
        assert_eq!(press.author.display_name, "Ann");
        assert_eq!(press.answer.verdict, Verdict::Always);
        assert_eq!(press.event.0, "telegram:cb:4382bfdwdsb323b2d9");
    }

    #[test]
    fn other_presses_are_not_answers() {
        let private = json!({"id": 42, "type": "private"});
        assert_eq!(press_of(&query("hello", private.clone(), false)), None);
        assert_eq!(press_of(&query("deny:3f9a2c1d", private, true)), None);
        let channel = json!({"id": -100, "type": "channel"});
        assert_eq!(press_of(&query("deny:3f9a2c1d", channel, false)), None);
    }
}

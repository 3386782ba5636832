//! Questions to the owner as message buttons, and button presses back. Pure.
//!
//! An [`Outbound::Ask`](clara_core::Outbound::Ask) becomes a message with one
//! action row of three buttons whose `custom_id` is an [`ApprovalAnswer`]
//! token (Discord allows 100 characters); its `AskClosed` edits the message to
//! say how it ended, with no components. A press arrives as an
//! `INTERACTION_CREATE` of type 3; [`press_of`] reads it.

use super::inbound::conversation_of;
use super::sink::MAX_MESSAGE_CHARS;
use super::wire::Interaction;
use clara_core::approval::{ApprovalAnswer, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::{Author, ConversationRef, EventId};
use serde_json::{Value, json};

/// An interaction of a message component (a button).
const MESSAGE_COMPONENT: u8 = 3;
/// The callback acknowledging a button press without changing its message
/// (`DEFERRED_UPDATE_MESSAGE`): the question's message is edited when it closes.
pub(crate) const ACKNOWLEDGE: u8 = 6;

/// The buttons under a question: approve once (green), always for these
/// arguments (blurple), deny (red).
pub(crate) fn components(prompt: &ApprovalPrompt) -> Value {
    let button = |label: &str, style: u8, verdict: Verdict| {
        let answer = ApprovalAnswer {
            id: prompt.id.clone(),
            verdict,
        };
        json!({ "type": 2, "style": style, "label": label, "custom_id": answer.to_token() })
    };
    json!([{ "type": 1, "components": [
        button("Approve once", 3, Verdict::Once),
        button("Always (these arguments)", 1, Verdict::Always),
        button("Deny", 4, Verdict::Deny),
    ] }])
}

/// The question's text, within Discord's limit.
pub(crate) fn question_text(prompt: &ApprovalPrompt) -> String {
    fit(prompt.text(false))
}

/// A closed question's text: the question, then how it ended.
pub(crate) fn closed_text(prompt: &ApprovalPrompt, outcome: &ApprovalOutcome) -> String {
    let ending = outcome.describe();
    let room = MAX_MESSAGE_CHARS.saturating_sub(ending.chars().count() + 2);
    let question = prompt.text(false);
    let question = if question.chars().count() > room {
        let mut cut: String = question.chars().take(room.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        question
    };
    format!("{question}\n\n{ending}")
}

fn fit(text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A press of one of Clara's buttons, in Clara's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Press {
    pub conversation: ConversationRef,
    pub author: Author,
    pub answer: ApprovalAnswer,
    pub event: EventId,
}

/// Whether the interaction is a button press (which Discord wants answered,
/// Clara's or not).
pub(crate) fn is_button(interaction: &Interaction) -> bool {
    interaction.kind == MESSAGE_COMPONENT
}

/// Reads a button press; `None` when it answers no question (another
/// interaction type, a `custom_id` that is not a token, no channel, a bot).
pub(crate) fn press_of(interaction: &Interaction) -> Option<Press> {
    if !is_button(interaction) {
        return None;
    }
    let token = interaction.data.as_ref()?.custom_id.as_deref()?;
    let answer = ApprovalAnswer::from_token(token)?;
    let channel = interaction.channel_id?;
    let user = interaction.presser()?;
    if user.bot {
        return None;
    }
    Some(Press {
        conversation: conversation_of(interaction.guild_id, channel),
        author: Author {
            platform_user_id: user.id.to_string(),
            display_name: interaction
                .presser_name()
                .unwrap_or(&user.username)
                .to_owned(),
        },
        answer,
        event: EventId(format!("discord:ix:{}", interaction.id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::ChannelKind;
    use clara_core::approval::ApprovalId;

    fn prompt() -> ApprovalPrompt {
        ApprovalPrompt {
            id: ApprovalId("3f9a2c1d".into()),
            tool: "mail__send".into(),
            arguments: "x".repeat(3000),
            reason: "It sends mail.".into(),
            asked_for: "Ann".into(),
            timeout_secs: 60,
        }
    }

    #[test]
    fn the_buttons_carry_the_three_answers_in_one_row() {
        let rows = components(&prompt());
        assert_eq!(rows[0]["type"], 1);
        let buttons = rows[0]["components"].as_array().unwrap();
        let styles: Vec<u64> = buttons
            .iter()
            .map(|b| b["style"].as_u64().unwrap())
            .collect();
        assert_eq!(styles, [3, 1, 4]);
        let verdicts: Vec<Verdict> = buttons
            .iter()
            .map(|b| {
                let id = b["custom_id"].as_str().unwrap();
                assert!(id.chars().count() <= 100);
                ApprovalAnswer::from_token(id).unwrap().verdict
            })
            .collect();
        assert_eq!(verdicts, [Verdict::Once, Verdict::Always, Verdict::Deny]);
    }

    #[test]
    fn long_questions_fit_discords_limit_and_keep_how_they_ended() {
        assert!(question_text(&prompt()).chars().count() <= MAX_MESSAGE_CHARS);
        let closed = closed_text(&prompt(), &ApprovalOutcome::TimedOut);
        assert!(closed.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(closed.ends_with("No answer in time: denied."));
    }

    fn interaction(kind: u8, custom_id: &str, guild: bool) -> Interaction {
        let mut value = json!({
            "id": "900", "type": kind, "token": "t", "channel_id": "20",
            "data": {"custom_id": custom_id, "component_type": 2},
        });
        let user = json!({"id": "40", "username": "ann", "global_name": "Ann"});
        if guild {
            value["guild_id"] = json!("30");
            value["member"] = json!({"user": user, "nick": null});
        } else {
            value["user"] = user;
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_press_names_the_channel_the_person_and_the_answer() {
        let press = press_of(&interaction(3, "approve:3f9a2c1d", false)).unwrap();
        assert_eq!(press.conversation.channel, "20");
        assert_eq!(press.conversation.kind, ChannelKind::Direct);
        assert_eq!(press.author.platform_user_id, "40");
        assert_eq!(press.author.display_name, "Ann");
        assert_eq!(press.answer.verdict, Verdict::Once);
        assert_eq!(press.event.0, "discord:ix:900");
        let in_guild = press_of(&interaction(3, "deny:3f9a2c1d", true)).unwrap();
        assert_eq!(in_guild.conversation.kind, ChannelKind::Group);
        assert_eq!(in_guild.author.platform_user_id, "40");
    }

    #[test]
    fn other_interactions_are_not_answers() {
        assert_eq!(press_of(&interaction(3, "garbage", false)), None);
        assert_eq!(press_of(&interaction(2, "approve:3f9a2c1d", false)), None);
        assert!(!is_button(&interaction(2, "x", false)));
    }
}

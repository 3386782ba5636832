//! Sessions: when one ends, and how its summary is asked for.

use crate::{ChatMessage, Role};
use std::time::Duration;

/// Whether a session whose last activity was at `last_activity_ms` has been idle
/// long enough to end at `now_ms`.
pub fn is_idle(last_activity_ms: i64, now_ms: i64, idle_after: Duration) -> bool {
    let idle_ms = i64::try_from(idle_after.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_sub(last_activity_ms) >= idle_ms
}

/// Instructions for writing a session summary.
pub const SUMMARY_INSTRUCTIONS: &str = "You write the memory of a conversation between a person and their assistant, Clara. \
Summarise the conversation below in at most 120 words, in the third person, for Clara to read when the next conversation starts. \
Keep what matters later: facts about the person, decisions, open questions, promises Clara made, the mood. \
If an earlier summary is given, fold what still matters from it into the new one. Write only the summary.";

/// The prompt that asks a model to summarise a session.
///
/// `transcript` is the session's messages, oldest first; `speaker` names the person.
pub fn summary_prompt(
    previous_summary: Option<&str>,
    transcript: &[(Role, &str)],
    speaker: &str,
) -> Vec<ChatMessage> {
    let mut text = String::new();
    if let Some(previous) = previous_summary {
        text.push_str("Earlier summary:\n");
        text.push_str(previous);
        text.push_str("\n\n");
    }
    text.push_str("Conversation:\n");
    for (role, content) in transcript {
        let who = match role {
            Role::User => speaker,
            Role::Assistant => "Clara",
            Role::System | Role::Tool => continue,
        };
        text.push_str(who);
        text.push_str(": ");
        text.push_str(content);
        text.push('\n');
    }
    vec![
        ChatMessage::system(SUMMARY_INSTRUCTIONS),
        ChatMessage::user(text),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_after_the_threshold() {
        let thirty = Duration::from_secs(30 * 60);
        assert!(!is_idle(0, 30 * 60 * 1000 - 1, thirty));
        assert!(is_idle(0, 30 * 60 * 1000, thirty));
        assert!(
            !is_idle(1000, 0, thirty),
            "clock skew backwards is not idleness"
        );
    }

    #[test]
    fn summary_prompt_names_speakers_and_keeps_earlier_summary() {
        let p = summary_prompt(
            Some("Ann likes tea."),
            &[(Role::User, "I moved to Oslo"), (Role::Assistant, "Nice!")],
            "Ann",
        );
        assert_eq!(p.len(), 2);
        assert!(p[1].content.contains("Earlier summary:\nAnn likes tea."));
        assert!(p[1].content.contains("Ann: I moved to Oslo\nClara: Nice!"));
    }
}

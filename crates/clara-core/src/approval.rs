//! Asking the owner before a tool acts: the question, the answers, and how an
//! answer travels back from a platform.
//!
//! A reply that wants to run a tool its policy says to *ask* about pauses; the
//! owner gets an [`ApprovalPrompt`] in a direct conversation (an
//! [`Outbound::Ask`](crate::Outbound::Ask): buttons where the platform has them,
//! commands where it does not) and answers with a [`Verdict`]. A button press
//! comes back as an [`Inbound`](crate::Inbound) whose
//! [`action`](crate::Inbound::action) is an [`ApprovalAnswer`]; a typed answer
//! (`/approve 3f9a2c1d`) is parsed by [`parse_command`]. Either way the engine,
//! not the model, reads it, and only from an owner in a direct conversation.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The short id of one question to the owner (eight hex digits), which buttons
/// and typed answers name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApprovalId(pub String);

impl ApprovalId {
    /// Parses an id as a person types it: eight hex digits, any case.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.len() == 8 && text.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owner's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Run this call, this once.
    Once,
    /// Run it, and from now on run this tool with exactly these arguments
    /// without asking (while its definition stays the same).
    Always,
    /// Do not run it.
    Deny,
}

impl Verdict {
    /// The word a button carries and a typed answer uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "approve",
            Self::Always => "always",
            Self::Deny => "deny",
        }
    }

    /// Parses [`Verdict::as_str`] (and a few words people type instead).
    pub fn parse(word: &str) -> Option<Self> {
        match word
            .trim()
            .trim_start_matches('/')
            .to_ascii_lowercase()
            .as_str()
        {
            "approve" | "allow" | "yes" | "once" => Some(Self::Once),
            "always" => Some(Self::Always),
            "deny" | "no" | "reject" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// An answer to one question: what a button press or a typed command carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalAnswer {
    /// The question answered.
    pub id: ApprovalId,
    /// The answer.
    pub verdict: Verdict,
}

impl ApprovalAnswer {
    /// The compact form a button carries (`approve:3f9a2c1d`): Telegram allows
    /// 64 bytes of callback data and Discord 100 characters of custom id.
    pub fn to_token(&self) -> String {
        format!("{}:{}", self.verdict.as_str(), self.id)
    }

    /// Parses [`ApprovalAnswer::to_token`].
    pub fn from_token(token: &str) -> Option<Self> {
        let (verdict, id) = token.split_once(':')?;
        Some(Self {
            id: ApprovalId::parse(id)?,
            verdict: Verdict::parse(verdict)?,
        })
    }
}

/// A typed answer: `/approve ID`, `/always ID` or `/deny ID` (also without the
/// slash). `None` for anything else, which is then an ordinary message.
pub fn parse_command(text: &str) -> Option<ApprovalAnswer> {
    let mut words = text.split_whitespace();
    let verdict = words.next()?;
    let id = words.next()?;
    if words.next().is_some() {
        return None;
    }
    Some(ApprovalAnswer {
        verdict: Verdict::parse(verdict)?,
        id: ApprovalId::parse(id)?,
    })
}

/// One question to the owner, as a platform shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPrompt {
    /// Its id, which the answer names.
    pub id: ApprovalId,
    /// The tool, as the model named it (`github__create_issue`).
    pub tool: String,
    /// The exact arguments it would run with, as JSON (cut for display; the
    /// approval is bound to the whole of them).
    pub arguments: String,
    /// Why Clara asks, in one sentence.
    pub reason: String,
    /// Whom the reply is for and where (`Ana in telegram group "Family"`).
    pub asked_for: String,
    /// How many seconds the owner has before it counts as a deny.
    pub timeout_secs: u64,
}

impl ApprovalPrompt {
    /// The prompt as plain text, with the typed answers spelled out: what a
    /// platform without buttons sends, and the body above the buttons of one
    /// that has them.
    pub fn text(&self, with_commands: bool) -> String {
        let mut text = format!(
            "Clara wants to run {tool} for {who}.\n{reason}\nArguments: {args}\n",
            tool = self.tool,
            who = self.asked_for,
            reason = self.reason,
            args = self.arguments,
        );
        if with_commands {
            text.push_str(&format!(
                "Answer with /approve {id} (this once), /always {id} (this tool with these arguments from now on) or /deny {id}. ",
                id = self.id
            ));
        }
        text.push_str(&format!(
            "No answer within {} s counts as a deny.",
            self.timeout_secs
        ));
        text
    }
}

/// How a question ended, for the platform to update its message (and remove
/// the buttons).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    /// The owner answered.
    Answered(Verdict),
    /// Nobody answered in time: denied.
    TimedOut,
    /// The reply that asked was cancelled first.
    Withdrawn,
}

impl ApprovalOutcome {
    /// One line for the platform to show in place of the buttons.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Answered(Verdict::Once) => "Approved once.",
            Self::Answered(Verdict::Always) => "Approved, now and from now on for these arguments.",
            Self::Answered(Verdict::Deny) => "Denied.",
            Self::TimedOut => "No answer in time: denied.",
            Self::Withdrawn => "No longer needed: the reply was cancelled.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_fit_platform_limits() {
        let answer = ApprovalAnswer {
            id: ApprovalId("3f9a2c1d".into()),
            verdict: Verdict::Always,
        };
        let token = answer.to_token();
        assert!(token.len() <= 64);
        assert_eq!(ApprovalAnswer::from_token(&token), Some(answer));
        assert_eq!(ApprovalAnswer::from_token("always:nothex!!"), None);
        assert_eq!(ApprovalAnswer::from_token("maybe:3f9a2c1d"), None);
    }

    #[test]
    fn typed_answers_parse_and_other_text_does_not() {
        assert_eq!(
            parse_command("/approve 3F9A2C1D"),
            Some(ApprovalAnswer {
                id: ApprovalId("3f9a2c1d".into()),
                verdict: Verdict::Once
            })
        );
        assert_eq!(
            parse_command("deny 3f9a2c1d").map(|a| a.verdict),
            Some(Verdict::Deny)
        );
        assert_eq!(parse_command("no way"), None);
        assert_eq!(parse_command("/approve 3f9a2c1d please"), None);
        assert_eq!(parse_command("approve"), None);
    }

    #[test]
    fn the_prompt_names_tool_arguments_and_timeout() {
        let prompt = ApprovalPrompt {
            id: ApprovalId("0badc0de".into()),
            tool: "mail__send".into(),
            arguments: r#"{"to":"x@example.com"}"#.into(),
            reason: "It sends a message.".into(),
            asked_for: "Ana".into(),
            timeout_secs: 120,
        };
        let text = prompt.text(true);
        assert!(text.contains("mail__send") && text.contains("x@example.com"));
        assert!(text.contains("/always 0badc0de") && text.contains("120 s"));
        assert!(!prompt.text(false).contains("/deny"));
    }
}

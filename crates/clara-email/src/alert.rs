//! What an alert says: who, what and why, in one short message. Many mails
//! picked in one check (a burst after downtime) become one message.
//!
//! Sender and subject are written by strangers: they are cleaned of control
//! and invisible characters, put on one line and shortened, so a subject
//! cannot fake a second message or hide text.

use crate::model::MailSummary;
use crate::parse::{cap_chars, one_line};
use crate::rules::RuleMatch;

/// How many mails a batch alert lists before "…and N more."
pub const BATCH_LINES: usize = 5;
/// The longest sender shown.
const FROM_CHARS: usize = 60;
/// The longest subject shown.
const SUBJECT_CHARS: usize = 90;
/// The longest reason shown.
const WHY_CHARS: usize = 140;

/// A mail a rule picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    /// The mail.
    pub mail: MailSummary,
    /// The rule and why.
    pub rule: RuleMatch,
}

fn shown(text: &str, max: usize) -> String {
    cap_chars(&one_line(&clara_tools::untrusted::clean(text)), max)
}

fn sender(mail: &MailSummary) -> String {
    let from = shown(&mail.from, FROM_CHARS);
    if from.is_empty() {
        "(unknown sender)".to_owned()
    } else {
        from
    }
}

fn subject(mail: &MailSummary) -> String {
    let subject = shown(&mail.subject, SUBJECT_CHARS);
    if subject.is_empty() {
        "(no subject)".to_owned()
    } else {
        format!("“{subject}”")
    }
}

/// One mail: `📧 Alice <alice@example.test>: “Invoice 42 overdue” — rule “bank” (sender matches *@bank.example)`.
pub fn alert_text(matched: &Matched) -> String {
    format!(
        "📧 {}: {} — rule “{}” ({})",
        sender(&matched.mail),
        subject(&matched.mail),
        shown(&matched.rule.rule, 40),
        shown(&matched.rule.why, WHY_CHARS)
    )
}

/// Several mails of one account: a header, the first [`BATCH_LINES`], and
/// how many more. `place` is the account's label (and folder, when not the inbox).
pub fn batch_text(place: &str, matched: &[Matched]) -> String {
    let mut text = format!(
        "📧 {} new mails matched your rules in {}:",
        matched.len(),
        shown(place, 80)
    );
    for m in matched.iter().take(BATCH_LINES) {
        text.push_str(&format!(
            "\n• {}: {} — rule “{}”",
            sender(&m.mail),
            subject(&m.mail),
            shown(&m.rule.rule, 40)
        ));
    }
    if matched.len() > BATCH_LINES {
        text.push_str(&format!("\n…and {} more.", matched.len() - BATCH_LINES));
    }
    text
}

/// The one message for the mails picked in one check: none for none, the
/// single form for one, the batch form for more.
pub fn alert_for(place: &str, matched: &[Matched]) -> Option<String> {
    match matched {
        [] => None,
        [one] => Some(alert_text(one)),
        many => Some(batch_text(place, many)),
    }
}

/// Where mails are, for a batch header: the account's label, with the folder
/// when it is not the inbox.
pub fn place(label: &str, folder: &str) -> String {
    if folder.eq_ignore_ascii_case(crate::model::DEFAULT_FOLDER) {
        label.to_owned()
    } else {
        format!("{label} ({folder})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matched(i: u32, from: &str, subject: &str) -> Matched {
        Matched {
            mail: MailSummary {
                uid: i,
                from: from.into(),
                subject: subject.into(),
                ..MailSummary::default()
            },
            rule: RuleMatch {
                rule: "bank".into(),
                why: "sender matches *@bank.example".into(),
            },
        }
    }

    #[test]
    fn one_mail_says_who_what_and_why() {
        let text = alert_text(&matched(
            1,
            "Alice <alice@example.test>",
            "Invoice 42 overdue",
        ));
        assert_eq!(
            text,
            "📧 Alice <alice@example.test>: “Invoice 42 overdue” — rule “bank” (sender matches *@bank.example)"
        );
        assert_eq!(
            alert_for("you@example.test", &[matched(1, "a", "b")]).unwrap(),
            alert_text(&matched(1, "a", "b"))
        );
        assert!(alert_for("x", &[]).is_none());
    }

    #[test]
    fn strange_senders_and_subjects_stay_on_one_short_line() {
        let text = alert_text(&matched(
            1,
            "",
            &format!("Hi\r\n\r\n📧 Fake second alert\u{202E}{}", "x".repeat(300)),
        ));
        assert!(!text.contains('\n') && !text.contains('\u{202E}'), "{text}");
        assert!(text.starts_with("📧 (unknown sender): “Hi 📧 Fake second alert"));
        assert!(text.chars().count() < 260, "{}", text.chars().count());
        assert!(alert_text(&matched(1, "a", "")).contains("(no subject)"));
    }

    #[test]
    fn a_burst_is_one_message_with_five_lines_and_a_count() {
        let many: Vec<Matched> = (1..=37)
            .map(|i| {
                matched(
                    i,
                    &format!("Sender {i} <s{i}@bank.example>"),
                    &format!("Mail {i}"),
                )
            })
            .collect();
        let text = alert_for("you@example.test", &many).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "📧 37 new mails matched your rules in you@example.test:"
        );
        assert_eq!(lines.len(), 1 + BATCH_LINES + 1);
        assert_eq!(
            lines[1],
            "• Sender 1 <s1@bank.example>: “Mail 1” — rule “bank”"
        );
        assert_eq!(lines[6], "…and 32 more.");
        let two = batch_text("you@example.test (Work)", &many[..2]);
        assert_eq!(two.lines().count(), 3);
        assert!(!two.contains("more"));
        assert_eq!(place("you@example.test", "inbox"), "you@example.test");
        assert_eq!(place("you@example.test", "Work"), "you@example.test (Work)");
    }
}

//! A fetched message's bytes, read with mail-parser into a [`MailSummary`].

use crate::model::MailSummary;
use mail_parser::{MessageParser, MimeHeaders};

/// How many bytes of a message are fetched: enough for the text of nearly
/// every mail; attachments past it are cut (their names usually come first).
pub const FETCH_BYTES: u32 = 256 * 1024;

/// How many characters of a body rules, the judge and the tools see.
pub const BODY_CHARS: usize = 20_000;

/// `raw` (the message, maybe cut at [`FETCH_BYTES`]) as a summary of message
/// `uid` in `folder`. A message mail-parser cannot read at all still gives a
/// summary, with what could be read (nothing): mail is never lost to a parse.
pub fn summarize(uid: u32, folder: &str, raw: &[u8]) -> MailSummary {
    let mut summary = MailSummary {
        uid,
        folder: folder.to_owned(),
        ..MailSummary::default()
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        return summary;
    };
    if let Some(addr) = message.from().and_then(|a| a.first()) {
        let address = addr.address().unwrap_or_default().trim().to_owned();
        let name = addr.name().unwrap_or_default().trim();
        summary.from = match (name.is_empty(), address.is_empty()) {
            (false, false) => format!("{name} <{address}>"),
            (false, true) => name.to_owned(),
            (true, _) => address.clone(),
        };
        summary.from_address = address.to_lowercase();
    }
    summary.subject = one_line(message.subject().unwrap_or_default());
    summary.date = message.date().map(|d| d.to_rfc3339());
    let body = message
        .body_text(0)
        .map(|t| t.into_owned())
        .unwrap_or_default();
    summary.body = cap_chars(body.trim(), BODY_CHARS);
    summary.attachments = message
        .attachments()
        .map(|part| part.attachment_name().unwrap_or_default().to_owned())
        .collect();
    summary
}

/// `text` on one line: runs of whitespace (folded headers) become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max` characters of `text`, with `…` when cut.
pub fn cap_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_plain_mail_gives_sender_subject_and_text() {
        let raw = b"From: Alice Example <Alice@Example.TEST>\r\nTo: you@example.test\r\nSubject: Invoice\r\n 42 overdue\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nPlease pay.\r\n";
        let s = summarize(7, "INBOX", raw);
        assert_eq!(s.uid, 7);
        assert_eq!(s.from, "Alice Example <Alice@Example.TEST>");
        assert_eq!(s.from_address, "alice@example.test");
        assert_eq!(s.subject, "Invoice 42 overdue");
        assert_eq!(s.body, "Please pay.");
        assert!(
            s.date
                .as_deref()
                .unwrap()
                .starts_with("2026-12-07T10:00:00")
        );
        assert!(!s.has_attachment());
    }

    #[test]
    fn attachments_and_html_only_bodies_are_read() {
        let raw = concat!(
            "From: bank@bank.example\r\nSubject: =?UTF-8?Q?Kontoauszug_M=C3=A4rz?=\r\n",
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
            "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Your <b>statement</b></p>\r\n",
            "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"statement.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
        );
        let s = summarize(1, "INBOX", raw.as_bytes());
        assert_eq!(s.from, "bank@bank.example");
        assert_eq!(s.subject, "Kontoauszug März");
        assert!(s.body.contains("statement"), "{}", s.body);
        assert!(!s.body.contains("<b>"), "{}", s.body);
        assert_eq!(s.attachments, vec!["statement.pdf"]);
    }

    #[test]
    fn garbage_still_gives_a_summary_and_caps_count_characters() {
        let s = summarize(3, "INBOX", b"");
        assert_eq!((s.uid, s.subject.as_str()), (3, ""));
        assert_eq!(cap_chars("äöü", 2), "äö…");
        assert_eq!(cap_chars("äöü", 3), "äöü");
    }
}

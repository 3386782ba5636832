//! A store's error in one short clause, for the end of a [`FilesError`]
//! sentence.
//!
//! object_store wraps the cause in layers (`Generic S3 error: Error
//! performing PUT http://… in 5ms - Server returned non-2xx status code: 403
//! Forbidden: <?xml …>`). Only the innermost layer says what happened, and an
//! S3 server's XML body says it best in its `<Code>` and `<Message>`. The
//! HTTP status sits in a private type, so it is read from that text.
//!
//! [`FilesError`]: crate::FilesError

use clara_core::Secret;

/// The longest reason kept in an error.
pub(crate) const MAX_REASON_CHARS: usize = 200;

/// How object_store words a failed HTTP answer.
const STATUS_PREFIX: &str = "Server returned non-2xx status code: ";

/// The innermost cause of `error` as text, without `secret`.
pub(crate) fn root_cause(error: &dyn std::error::Error, secret: Option<&Secret>) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    match secret.filter(|s| !s.is_blank()) {
        Some(secret) => text.replace(secret.expose(), "[redacted]"),
        None => text,
    }
}

/// The HTTP status a cause reports (`403` in `…status code: 403 Forbidden: …`).
pub(crate) fn http_status(cause: &str) -> Option<u16> {
    let rest = &cause[cause.find(STATUS_PREFIX)? + STATUS_PREFIX.len()..];
    rest.get(..3)?.parse().ok()
}

/// `cause` as a short clause: an S3 answer as `the server answered 500
/// Internal Server Error (InternalError: We encountered …)`, anything else
/// as it is; whitespace collapsed, at most [`MAX_REASON_CHARS`], no final period.
pub(crate) fn clause(cause: &str) -> String {
    let text = match cause.find(STATUS_PREFIX) {
        Some(at) => {
            let rest = &cause[at + STATUS_PREFIX.len()..];
            let (status, body) = rest.split_once(": ").unwrap_or((rest, ""));
            match (element(body, "Code"), element(body, "Message")) {
                (Some(code), Some(message)) => {
                    let message = message.trim_end_matches('.');
                    format!("the server answered {status} ({code}: {message})")
                }
                (Some(code), None) => format!("the server answered {status} ({code})"),
                _ => format!("the server answered {status}"),
            }
        }
        None => cause.to_owned(),
    };
    let mut text: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    while text.ends_with('.') {
        text.pop();
    }
    match text.is_empty() {
        true => "no reason given".to_owned(),
        false => text,
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Generic S3 error: Error performing PUT http://x/b/k in 5ms")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_root_cause_is_kept_without_the_secret() {
        let inner = std::io::Error::other("signature for   key sk-123 failed.\n");
        let cause = root_cause(&Outer(inner), Some(&Secret::new("sk-123")));
        assert_eq!(cause, "signature for   key [redacted] failed.\n");
        assert_eq!(clause(&cause), "signature for key [redacted] failed");
        let long = "x".repeat(500);
        assert_eq!(clause(&long).len(), MAX_REASON_CHARS);
        assert_eq!(clause(" . "), "no reason given");
    }

    #[test]
    fn an_s3_answer_becomes_its_status_code_and_message() {
        // As object_store words s3rver's answer to an unknown key id.
        let cause = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>X</AWSAccessKeyId></Error>";
        assert_eq!(http_status(cause), Some(403));
        assert_eq!(
            clause(cause),
            "the server answered 403 Forbidden (InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records)"
        );
        let bare = "Server returned non-2xx status code: 502 Bad Gateway: ";
        assert_eq!(http_status(bare), Some(502));
        assert_eq!(clause(bare), "the server answered 502 Bad Gateway");
        assert_eq!(http_status("Connection refused (os error 111)"), None);
    }
}

//! What can go wrong talking to GitHub, each as one sentence the model (and
//! the owner reading along) can act on.
//!
//! [`GitHubError::from_response`] reads a refusal the way GitHub's REST API
//! writes it: a JSON body `{"message": …, "errors": […]}`, and for rate
//! limits the `x-ratelimit-*` and `retry-after` headers. No error ever holds
//! the token: requests carry it in a header marked sensitive, and errors are
//! built from the status, headers and body only.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

/// The most of GitHub's own message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A GitHub call that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// 401: the token is wrong, expired or revoked.
    #[error(
        "GitHub refused the token (401 Bad credentials): GITHUB_TOKEN is wrong, expired or revoked"
    )]
    BadToken,
    /// 403 or 429 from a primary or secondary rate limit.
    #[error("GitHub's rate limit is used up: {when}")]
    RateLimited {
        /// When to try again, in words.
        when: String,
    },
    /// 403 for another reason: the token lacks a scope or permission.
    #[error("GitHub refused this (403: {message}); the token may lack the permission for it")]
    Forbidden {
        /// GitHub's explanation.
        message: String,
    },
    /// 404: the thing does not exist, or is private and the token cannot see it.
    #[error("GitHub has no {what}, or the token cannot see it (404)")]
    NotFound {
        /// What was asked for (`issue #5 in octo/hello`).
        what: String,
    },
    /// 422: GitHub understood the request and refused its content.
    #[error("GitHub rejected the request (422): {message}")]
    Invalid {
        /// GitHub's message with its field errors.
        message: String,
    },
    /// Any other status.
    #[error("GitHub answered HTTP {status} for {what}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// What was asked for.
        what: String,
        /// GitHub's message, or the status's reason.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("GitHub's answer for {what} could not be read ({detail})")]
    Decode {
        /// What was asked for.
        what: String,
        /// Why it could not be read.
        detail: String,
    },
    /// The answer was larger than Clara reads.
    #[error("GitHub's answer for {what} is larger than {limit_mb} MB, so it was not read")]
    TooLarge {
        /// What was asked for.
        what: String,
        /// The limit, in megabytes.
        limit_mb: u64,
    },
    /// No answer in time.
    #[error("GitHub did not answer within {secs} s; try again later")]
    Timeout {
        /// The time allowed.
        secs: u64,
    },
    /// The request did not get through (DNS, TLS, connection refused).
    #[error("could not reach GitHub: {detail}")]
    Network {
        /// What failed, without the URL.
        detail: String,
    },
}

impl GitHubError {
    /// The error a non-success answer means: `status`, its `headers` and
    /// `body`, for a request about `what`, judged at `now` (for how long a
    /// rate limit still holds).
    pub fn from_response(
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        what: &str,
        now: DateTime<Utc>,
    ) -> Self {
        let message = message_of(body);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let limited = status == 429
            || (status == 403
                && (header("x-ratelimit-remaining") == Some("0")
                    || header("retry-after").is_some()
                    || message
                        .as_deref()
                        .is_some_and(|m| m.to_lowercase().contains("rate limit"))));
        match status {
            401 => Self::BadToken,
            _ if limited => Self::RateLimited {
                when: rate_limit_when(header("retry-after"), header("x-ratelimit-reset"), now),
            },
            403 => Self::Forbidden {
                message: message.unwrap_or_else(|| "Forbidden".into()),
            },
            404 | 410 => Self::NotFound { what: what.into() },
            422 => Self::Invalid {
                message: message.unwrap_or_else(|| "Validation Failed".into()),
            },
            _ => Self::Status {
                status,
                what: what.into(),
                message: message.unwrap_or_else(|| {
                    reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("no message")
                        .into()
                }),
            },
        }
    }

    /// The error for a request that got no answer.
    pub fn from_transport(error: &reqwest::Error, timeout_secs: u64) -> Self {
        if error.is_timeout() {
            return Self::Timeout { secs: timeout_secs };
        }
        // reqwest's own Display is only "error sending request"; the cause
        // (refused, DNS, TLS) is in the source chain.
        let mut parts: Vec<String> = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(error);
        while let Some(current) = source {
            let text = current.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            source = current.source();
        }
        Self::Network {
            detail: cut(&parts.join(": "), MAX_MESSAGE_CHARS),
        }
    }
}

/// GitHub's `message`, with the `errors` of a 422 added: each is an object
/// with a `message`, or `{resource, field, code}`, or a plain string.
fn message_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut message = value.get("message")?.as_str()?.trim().to_owned();
    let details: Vec<String> = value
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| match e {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Object(o) => {
                        let text = |k: &str| o.get(k).and_then(|v| v.as_str());
                        text("message").map(str::to_owned).or_else(|| {
                            let code = text("code")?;
                            let field = text("field").unwrap_or("request");
                            Some(match code {
                                "missing_field" => format!("{field} is missing"),
                                "invalid" => format!("{field} is invalid"),
                                "already_exists" => format!("{field} already exists"),
                                "missing" => format!("{field} does not exist"),
                                other => format!("{field}: {other}"),
                            })
                        })
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        message = format!("{message}: {}", details.join("; "));
    }
    (!message.is_empty()).then(|| cut(&message, MAX_MESSAGE_CHARS))
}

/// When a rate limit lifts, in words: `retry-after` (seconds) wins, then
/// `x-ratelimit-reset` (epoch seconds, UTC).
fn rate_limit_when(retry_after: Option<&str>, reset: Option<&str>, now: DateTime<Utc>) -> String {
    if let Some(secs) = retry_after.and_then(|v| v.parse::<u64>().ok()) {
        return format!("try again in {}", span(secs));
    }
    if let Some(at) = reset
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|epoch| DateTime::<Utc>::from_timestamp(epoch, 0))
    {
        let wait = (at - now).num_seconds().max(0).unsigned_abs();
        return format!(
            "it resets at {} UTC (in {})",
            at.format("%H:%M"),
            span(wait)
        );
    }
    "try again in a few minutes".into()
}

/// A wait in words: `45 seconds`, `1 minute`, `12 minutes`.
fn span(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".into(),
        2..=89 => format!("{secs} seconds"),
        _ => {
            let minutes = secs.div_ceil(60);
            if minutes == 1 {
                "1 minute".into()
            } else {
                format!("{minutes} minutes")
            }
        }
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn at(epoch: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(epoch, 0).unwrap()
    }

    #[test]
    fn a_401_blames_the_token_without_showing_it() {
        let e = GitHubError::from_response(
            401,
            &HeaderMap::new(),
            br#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
            "repository o/r",
            at(0),
        );
        assert_eq!(e, GitHubError::BadToken);
        assert!(e.to_string().contains("GITHUB_TOKEN"));
    }

    #[test]
    fn a_primary_rate_limit_says_when_it_resets() {
        let e = GitHubError::from_response(
            403,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000600"),
            ]),
            br#"{"message":"API rate limit exceeded for user ID 1."}"#,
            "x",
            at(1_700_000_000),
        );
        assert_eq!(
            e.to_string(),
            "GitHub's rate limit is used up: it resets at 22:23 UTC (in 10 minutes)"
        );
    }

    #[test]
    fn a_secondary_rate_limit_says_how_long_to_wait() {
        let e = GitHubError::from_response(
            429,
            &headers(&[("retry-after", "60")]),
            br#"{"message":"You have exceeded a secondary rate limit."}"#,
            "x",
            at(0),
        );
        assert_eq!(
            e.to_string(),
            "GitHub's rate limit is used up: try again in 60 seconds"
        );
        // A 403 whose message names the limit, without headers.
        let e = GitHubError::from_response(
            403,
            &HeaderMap::new(),
            br#"{"message":"You have exceeded a secondary rate limit"}"#,
            "x",
            at(0),
        );
        assert!(matches!(e, GitHubError::RateLimited { .. }), "{e}");
    }

    #[test]
    fn a_403_that_is_no_rate_limit_is_a_permission_problem() {
        let e = GitHubError::from_response(
            403,
            &headers(&[("x-ratelimit-remaining", "4999")]),
            br#"{"message":"Resource not accessible by personal access token"}"#,
            "x",
            at(0),
        );
        assert_eq!(
            e.to_string(),
            "GitHub refused this (403: Resource not accessible by personal access token); the token may lack the permission for it"
        );
    }

    #[test]
    fn a_404_names_what_was_missing_and_a_422_gives_the_field_errors() {
        let e = GitHubError::from_response(
            404,
            &HeaderMap::new(),
            br#"{"message":"Not Found"}"#,
            "issue #9 in o/r",
            at(0),
        );
        assert_eq!(
            e.to_string(),
            "GitHub has no issue #9 in o/r, or the token cannot see it (404)"
        );
        let e = GitHubError::from_response(
            422,
            &HeaderMap::new(),
            br#"{"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"},{"message":"label does not exist"},"plain"]}"#,
            "x",
            at(0),
        );
        assert_eq!(
            e.to_string(),
            "GitHub rejected the request (422): Validation Failed: title is missing; label does not exist; plain"
        );
    }

    #[test]
    fn other_statuses_fall_back_to_the_reason_when_the_body_is_not_json() {
        let e = GitHubError::from_response(502, &HeaderMap::new(), b"<html>", "x", at(0));
        assert_eq!(e.to_string(), "GitHub answered HTTP 502 for x: Bad Gateway");
    }

    #[test]
    fn waits_read_as_words() {
        assert_eq!(span(1), "1 second");
        assert_eq!(span(60), "60 seconds");
        assert_eq!(span(90), "2 minutes");
        assert_eq!(
            rate_limit_when(None, None, at(0)),
            "try again in a few minutes"
        );
        // A reset already past waits for nothing.
        assert!(rate_limit_when(None, Some("10"), at(100)).contains("in 1 second"));
    }
}

//! What can go wrong talking to a chat model, and how to say it to a person.

use std::fmt;
use std::time::Duration;

/// Longest server-provided detail kept in an error; bodies can be whole HTML pages.
pub(crate) const MAX_DETAIL_CHARS: usize = 200;

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Between sending the request and receiving the response headers.
    FirstByte,
    /// Between two chunks of a streamed answer.
    Idle,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FirstByte => "waiting for the response",
            Self::Idle => "waiting for the next chunk",
        })
    }
}

/// A failed chat model call.
///
/// `Display` is for operators' logs; [`LlmError::user_message`] is for the person in the
/// conversation. Neither ever contains an API key, URL credentials or a long raw body:
/// details are truncated and scrubbed when the error is built.
#[derive(thiserror::Error, Debug)]
pub enum LlmError {
    /// The server could not be connected to (refused, DNS, TLS, connect timeout).
    #[error("cannot reach the language model at {endpoint}: {detail}")]
    Unreachable {
        /// `scheme://host:port` of the server, without credentials.
        endpoint: String,
        /// What the connection attempt reported.
        detail: String,
    },
    /// A wait ran out.
    #[error("the language model timed out {phase} (after {after:?})")]
    Timeout {
        /// Which wait.
        phase: TimeoutPhase,
        /// How long it was.
        after: Duration,
    },
    /// HTTP 401: the key is missing, wrong or revoked.
    #[error("the language model rejected the API key (HTTP 401)")]
    Unauthorized {
        /// The setting that holds the key (e.g. `ANTHROPIC_API_KEY`), when the provider
        /// knows it, so the person's message can name it.
        key_setting: Option<&'static str>,
    },
    /// HTTP 403: the key is valid but not allowed this model, region or action.
    #[error("the language model refused access (HTTP 403)")]
    Forbidden,
    /// HTTP 404: the model does not exist there, or the base URL is wrong.
    #[error("model {model:?} not found (HTTP 404): {detail}")]
    NotFound {
        /// The model that was asked for.
        model: String,
        /// The server's explanation.
        detail: String,
    },
    /// HTTP 429 (rate limit). `retry_after` is the server's `Retry-After` when it sent one.
    #[error("the language model is rate limiting Clara (HTTP 429){}", match retry_after { Some(d) => format!("; retry after {d:?}"), None => String::new() })]
    RateLimited {
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// HTTP 503 or 529: the server is overloaded.
    #[error("the language model is overloaded")]
    Overloaded,
    /// Another server-side failure (5xx, 408, 409).
    #[error("the language model failed with HTTP {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The server refused the request itself (400, 413, 422, other 4xx, and 429
    /// `insufficient_quota`, which waiting does not fix).
    #[error("the language model rejected the request (HTTP {status}): {detail}")]
    BadRequest {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        detail: String,
    },
    /// The server sent something that is not the expected wire format.
    #[error("malformed answer from the language model: {detail}")]
    Malformed {
        /// What was wrong (truncated).
        detail: String,
    },
    /// The stream ended before the answer was complete.
    #[error("the language model's stream ended before the answer was complete")]
    StreamCut,
    /// The server reported an error inside a stream that had started fine.
    #[error("the language model reported an error mid-answer: {detail}")]
    ProviderError {
        /// The server's explanation.
        detail: String,
    },
    /// The answer contained no text.
    #[error("the language model returned an empty answer")]
    Empty,
    /// The provider's configuration is unusable.
    #[error("invalid language model setting {field}: {reason}")]
    InvalidConfig {
        /// Which setting.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl LlmError {
    /// Whether trying the same request again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::RateLimited { .. } | Self::Overloaded => true,
            // 501/505 mean the server will never handle this request.
            Self::Server { status } => !matches!(status, 501 | 505),
            _ => false,
        }
    }

    /// One clear sentence for the person in the conversation.
    pub fn user_message(&self) -> String {
        match self {
            Self::Unreachable { .. } => "Clara can't reach its language model right now; please try again in a moment \
                 (the operator may need to check that the model server is running)."
                .to_owned(),
            Self::Timeout { phase: TimeoutPhase::FirstByte, .. } => {
                "The language model took too long to start answering; please try again.".to_owned()
            }
            Self::Timeout { phase: TimeoutPhase::Idle, .. } => {
                "The language model stopped responding partway through its answer; please try again.".to_owned()
            }
            Self::Unauthorized { key_setting: Some(setting) } => format!(
                "The language model rejected Clara's API key; the operator needs to check the {setting} setting."
            ),
            Self::Unauthorized { key_setting: None } => "The language model rejected Clara's API key; the operator needs to check the API key \
                 setting (for example CUSTOM_OPENAI_API_KEY or OPENROUTER_API_KEY)."
                .to_owned(),
            Self::Forbidden => "The language model refused Clara access to this model; the operator needs to check the \
                 account's permissions."
                .to_owned(),
            // Ollama says how to fix it: fetch the model.
            Self::NotFound { model, detail } if detail.contains("ollama pull") => format!(
                "The Ollama server doesn't have the model \"{0}\"; the operator can fetch it with `ollama pull {0}`.",
                truncate(model, 100)
            ),
            Self::NotFound { model, .. } => format!(
                "The language model server doesn't know the model \"{}\"; the operator needs to check the model name \
                 and base URL.",
                truncate(model, 100)
            ),
            Self::RateLimited { retry_after: Some(wait) } if *wait > Duration::from_secs(90) => format!(
                "The language model is busy right now (rate limited); please try again in about {} minutes.",
                wait.as_secs().div_ceil(60)
            ),
            Self::RateLimited { .. } => {
                "The language model is busy right now (rate limited); please try again in a minute.".to_owned()
            }
            Self::Overloaded => {
                "The language model is overloaded right now; please try again in a minute.".to_owned()
            }
            Self::Server { status } => format!(
                "The language model had an internal problem (HTTP {status}); please try again in a moment."
            ),
            Self::BadRequest { status: 413, .. } => {
                "This conversation is too long for the language model; try starting a new topic.".to_owned()
            }
            Self::BadRequest { status: 429, .. } => "Clara's language model account has run out of credit or quota; the \
                 operator needs to check its billing."
                .to_owned(),
            Self::BadRequest { detail, .. } if mentions_context_length(detail) => {
                "This conversation is too long for the language model; try starting a new topic.".to_owned()
            }
            Self::BadRequest { status, detail } => format!(
                "The language model rejected the request (HTTP {status}: {}).",
                truncate(detail, 150)
            ),
            Self::Malformed { .. } => {
                "The language model sent an answer Clara couldn't understand; please try again.".to_owned()
            }
            Self::StreamCut => "The connection to the language model broke off before the answer was complete; \
                 please try again."
                .to_owned(),
            Self::ProviderError { detail } => format!(
                "The language model reported an error while answering: {}.",
                truncate(detail.trim_end_matches('.'), 150)
            ),
            Self::Empty => "The language model returned an empty answer; please try again.".to_owned(),
            Self::InvalidConfig { field, reason } => format!(
                "Clara's language model settings are invalid ({field}: {}); the operator needs to fix them.",
                truncate(reason, 150)
            ),
        }
    }
}

fn mentions_context_length(detail: &str) -> bool {
    let lower = detail.to_ascii_lowercase();
    lower.contains("context_length")
        || lower.contains("context length")
        || lower.contains("maximum context")
        // Anthropic: "prompt is too long: 212345 tokens > 200000 maximum".
        || lower.contains("prompt is too long")
}

/// Shortens server text for an error: whitespace collapsed, at most `max` characters.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut out: String = collapsed.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prepares server-provided text for an error: removes any copy of the key (some
/// servers echo it in 401 bodies) and truncates.
pub(crate) fn clean_detail(text: &str, secret: Option<&str>) -> String {
    let scrubbed = match secret {
        Some(key) if !key.is_empty() => text.replace(key, "[redacted]"),
        _ => text.to_owned(),
    };
    truncate(&scrubbed, MAX_DETAIL_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_is_char_safe_and_bounded() {
        let long = "é".repeat(500);
        let t = truncate(&long, 200);
        assert_eq!(t.chars().count(), 200);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("a\n\n  b", 10), "a b");
    }

    #[test]
    fn clean_detail_removes_the_key() {
        let d = clean_detail("Incorrect API key provided: sk-abc123", Some("sk-abc123"));
        assert!(!d.contains("sk-abc123"));
        assert!(d.contains("[redacted]"));
    }

    #[test]
    fn retryable_classes() {
        assert!(LlmError::RateLimited { retry_after: None }.is_retryable());
        assert!(LlmError::Overloaded.is_retryable());
        assert!(LlmError::Server { status: 502 }.is_retryable());
        assert!(!LlmError::Server { status: 501 }.is_retryable());
        assert!(
            LlmError::Unreachable {
                endpoint: "http://x".into(),
                detail: "refused".into()
            }
            .is_retryable()
        );
        assert!(!LlmError::Unauthorized { key_setting: None }.is_retryable());
        assert!(
            !LlmError::BadRequest {
                status: 400,
                detail: String::new()
            }
            .is_retryable()
        );
        assert!(!LlmError::StreamCut.is_retryable());
        assert!(
            !LlmError::Timeout {
                phase: TimeoutPhase::FirstByte,
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
    }

    #[test]
    fn user_messages_are_single_sentences() {
        let errors = [
            LlmError::Unauthorized { key_setting: None },
            LlmError::Unauthorized {
                key_setting: Some("ANTHROPIC_API_KEY"),
            },
            LlmError::RateLimited { retry_after: None },
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(600)),
            },
            LlmError::BadRequest {
                status: 400,
                detail: "x".repeat(1000),
            },
            LlmError::BadRequest {
                status: 400,
                detail: "This model's maximum context length is 8192".into(),
            },
            LlmError::StreamCut,
        ];
        for e in errors {
            let m = e.user_message();
            assert!(m.ends_with('.'), "{m}");
            assert!(m.chars().count() < 320, "{m}");
        }
        assert!(
            LlmError::Unauthorized { key_setting: None }
                .user_message()
                .contains("API key")
        );
        assert!(
            LlmError::Unauthorized {
                key_setting: Some("ANTHROPIC_API_KEY")
            }
            .user_message()
            .contains("ANTHROPIC_API_KEY")
        );
        let pull = LlmError::NotFound {
            model: "llama3.2".into(),
            detail:
                "model \"llama3.2\" not found, try pulling it first; run `ollama pull llama3.2`"
                    .into(),
        };
        assert!(
            pull.user_message().contains("ollama pull llama3.2"),
            "{}",
            pull.user_message()
        );
        assert!(
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(600))
            }
            .user_message()
            .contains("10 minutes")
        );
    }
}

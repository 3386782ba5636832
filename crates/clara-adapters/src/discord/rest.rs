//! A thin client for the few Discord REST calls Clara makes, honouring the rate
//! limit buckets ([`RateLimits`]) and 429s.
//!
//! Why not twilight-http: 0.18 reads the bucket headers only when
//! `X-RateLimit-Scope` is present, which Discord sends on 429s alone, so it
//! never waits for an exhausted bucket before being refused; it retries 429s
//! without end; and it fixes the path to `/api/v10` after a host name.

use super::ratelimit::{BucketHeaders, RateLimits, Route};
use super::wire::{ApiError, Created, Message, RateLimited, User};
use serde_json::{Value, json};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// 429s retried inside one call before it gives up with [`RestError::RateLimited`].
const RATE_LIMIT_RETRIES: u32 = 2;
/// The longest wait for a rate limit inside one call; longer ones are handed back.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Connecting's time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A REST call that failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Still rate limited after waiting and retrying.
    #[error("Discord is rate limiting Clara; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The token was refused.
    #[error("Discord refused the bot token (401 Unauthorized)")]
    Unauthorized,
    /// Discord answered with an error.
    #[error("Discord answered {status} to {what}: {message} (code {code})")]
    Api {
        /// What was asked.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code.
        code: u64,
        /// Discord's message.
        message: String,
    },
    /// No answer (network, timeout) or an unreadable one.
    #[error("Discord could not be reached for {what}: {detail}")]
    Transport {
        /// What was asked.
        what: &'static str,
        /// Why, without URLs.
        detail: String,
    },
}

impl RestError {
    /// Whether Discord said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }
}

/// The Discord REST API, as the bot.
pub struct Rest {
    http: reqwest::Client,
    root: String,
    authorization: String,
    limits: Mutex<RateLimits>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client for the REST root `root` (e.g. `https://discord.com/api/v10`)
    /// authenticating with `token`.
    pub fn new(root: &str, token: &str) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (",
                env!("CARGO_PKG_REPOSITORY"),
                ", ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            root: root.trim_end_matches('/').to_owned(),
            authorization: format!("Bot {token}"),
            limits: Mutex::new(RateLimits::new()),
        })
    }

    /// `GET /users/@me`: the bot's own account.
    pub async fn current_user(&self) -> Result<User, RestError> {
        let body = self
            .call("the bot's account", "GET", "users/@me".to_owned(), None)
            .await?;
        decode("the bot's account", body)
    }

    /// `POST /channels/{channel}/messages`: sends `text`, as a reply to
    /// `reply_to` when given; returns the new message's id. Mentions in the text
    /// never ping anyone.
    pub async fn create_message(
        &self,
        channel: u64,
        text: &str,
        reply_to: Option<u64>,
    ) -> Result<u64, RestError> {
        let mut body = json!({
            "content": text,
            "allowed_mentions": { "parse": [], "replied_user": false },
        });
        if let Some(id) = reply_to {
            body["message_reference"] = json!({
                "type": 0,
                "message_id": id.to_string(),
                "channel_id": channel.to_string(),
                "fail_if_not_exists": false,
            });
        }
        let what = "sending a message";
        let answer = self
            .call(
                what,
                "POST",
                format!("channels/{channel}/messages"),
                Some(body),
            )
            .await?;
        Ok(decode::<Created>(what, answer)?.id)
    }

    /// `PATCH /channels/{channel}/messages/{message}`: replaces a message's text.
    pub async fn edit_message(
        &self,
        channel: u64,
        message: u64,
        text: &str,
    ) -> Result<(), RestError> {
        let body = json!({ "content": text, "allowed_mentions": { "parse": [] } });
        self.call(
            "editing a message",
            "PATCH",
            format!("channels/{channel}/messages/{message}"),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `POST /channels/{channel}/typing`: shows "Clara is typing…" for about ten seconds.
    pub async fn trigger_typing(&self, channel: u64) -> Result<(), RestError> {
        self.call(
            "the typing indicator",
            "POST",
            format!("channels/{channel}/typing"),
            None,
        )
        .await
        .map(drop)
    }

    /// `GET /channels/{channel}/messages/{message}`: one message.
    pub async fn message(&self, channel: u64, message: u64) -> Result<Message, RestError> {
        let what = "fetching a replied-to message";
        let body = self
            .call(
                what,
                "GET",
                format!("channels/{channel}/messages/{message}"),
                None,
            )
            .await?;
        decode(what, body)
    }

    /// Downloads an attachment from its CDN URL, refusing more than `max_bytes`.
    /// The bot token is not sent: attachment URLs are signed and public.
    pub async fn download(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, RestError> {
        let what = "downloading an attachment";
        let transport = |e: reqwest::Error| RestError::Transport {
            what,
            detail: e.without_url().to_string(),
        };
        let mut response = self.http.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(RestError::Api {
                what,
                status,
                code: 0,
                message: "the file could not be fetched".to_owned(),
            });
        }
        let mut data = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            data.extend_from_slice(&chunk);
            if data.len() as u64 > max_bytes {
                return Err(RestError::Api {
                    what,
                    status,
                    code: 0,
                    message: format!("the file is larger than {max_bytes} bytes"),
                });
            }
        }
        Ok(data)
    }

    /// One API call: waits for its bucket, sends, learns the bucket headers, and
    /// on a 429 waits as told and tries again (up to [`RATE_LIMIT_RETRIES`]).
    async fn call(
        &self,
        what: &'static str,
        method: &str,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, RestError> {
        let route = Route::new(method, &path);
        let url = format!("{}/{path}", self.root);
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| RestError::Transport {
                what,
                detail: format!("{method} is not an HTTP method"),
            })?;
        let mut limited = 0;
        loop {
            let wait = self.limits().acquire(&route, Instant::now());
            if let Some(wait) = wait {
                if wait > LONGEST_WAIT {
                    return Err(RestError::RateLimited { retry_after: wait });
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("authorization", &self.authorization);
            request = match &body {
                Some(body) => request.json(body),
                // Discord wants a length on body-less POSTs.
                None if method == reqwest::Method::POST => request.header("content-length", "0"),
                None => request,
            };
            let response = request.send().await.map_err(|e| RestError::Transport {
                what,
                detail: e.without_url().to_string(),
            })?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            self.limits()
                .update(&route, &BucketHeaders::read(header), Instant::now());
            let bytes = response.bytes().await.map_err(|e| RestError::Transport {
                what,
                detail: e.without_url().to_string(),
            })?;
            match status {
                200..=299 => {
                    if bytes.is_empty() {
                        return Ok(Value::Null);
                    }
                    return serde_json::from_slice(&bytes).map_err(|e| RestError::Transport {
                        what,
                        detail: format!("the answer was not JSON ({e})"),
                    });
                }
                429 => {
                    let (retry_after, global) = retry_after(&bytes, header);
                    self.limits()
                        .limited(&route, retry_after, global, Instant::now());
                    tracing::info!(
                        what,
                        retry_after_ms = retry_after.as_millis() as u64,
                        global,
                        "Discord rate limited a call; waiting as told"
                    );
                    limited += 1;
                    if limited > RATE_LIMIT_RETRIES || retry_after > LONGEST_WAIT {
                        return Err(RestError::RateLimited { retry_after });
                    }
                }
                401 => return Err(RestError::Unauthorized),
                _ => {
                    let error: ApiError = serde_json::from_slice(&bytes).unwrap_or_default();
                    let message = if error.message.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        error.message.chars().take(300).collect()
                    };
                    return Err(RestError::Api {
                        what,
                        status,
                        code: error.code,
                        message,
                    });
                }
            }
        }
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, RateLimits> {
        // A poisoned lock means a panic elsewhere mid-update; the buckets are
        // plain numbers and stay usable.
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, body: Value) -> Result<T, RestError> {
    serde_json::from_value(body).map_err(|e| RestError::Transport {
        what,
        detail: format!("the answer could not be read ({e})"),
    })
}

/// How long a 429 says to wait, and whether it is global: the body's
/// `retry_after` (seconds, with decimals), else the `Retry-After` header.
fn retry_after<'a>(body: &[u8], header: impl Fn(&str) -> Option<&'a str>) -> (Duration, bool) {
    let parsed: Option<RateLimited> = serde_json::from_slice(body).ok();
    let global_header = header("x-ratelimit-global")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || header("x-ratelimit-scope") == Some("global");
    let seconds = parsed
        .as_ref()
        .map(|p| p.retry_after)
        .or_else(|| header("retry-after").and_then(|v| v.trim().parse::<f64>().ok()))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    let global = parsed.is_some_and(|p| p.global) || global_header;
    (Duration::from_secs_f64(seconds), global)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_the_precise_body_and_falls_back_to_the_header() {
        let body = br#"{"message":"You are being rate limited.","retry_after":0.5,"global":false}"#;
        assert_eq!(
            retry_after(body, |_| Some("1")),
            (Duration::from_millis(500), false)
        );
        let global = br#"{"message":"You are being rate limited.","retry_after":2,"global":true}"#;
        assert_eq!(
            retry_after(global, |_| None),
            (Duration::from_secs(2), true)
        );
        assert_eq!(
            retry_after(b"<html>", |n| (n == "retry-after").then_some("3")),
            (Duration::from_secs(3), false)
        );
        assert_eq!(
            retry_after(b"", |n| (n == "x-ratelimit-scope").then_some("global")),
            (Duration::from_secs(1), true)
        );
    }
}

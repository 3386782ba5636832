//! A thin client for the few Discord REST calls Clara makes, honouring the rate
//! limit buckets ([`RateLimits`]) and 429s.
//!
//! Why not twilight-http: 0.18 reads the bucket headers only when
//! `X-RateLimit-Scope` is present, which Discord sends on 429s alone, so it
//! never waits for an exhausted bucket before being refused; it retries 429s
//! without end; and it fixes the path to `/api/v10` after a host name.
//!
//! Discord's passing failures (a 5xx, a dropped connection) are retried a few
//! times; a new message carries a `nonce` with `enforce_nonce`, so a retry of a
//! message Discord did create returns that message instead of a second copy.
//! A message with a file is a `multipart/form-data` request: the message's
//! JSON in `payload_json`, the file in `files[0]`.

use super::DiscordError;
use super::ratelimit::{BucketHeaders, RateLimits, Route, wait_of};
use super::wire::{ApiError, Created, Message, RateLimited, User};
use clara_core::FileBlob;
use reqwest::header::HeaderValue;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// 429s retried inside one call before it gives up with [`RestError::RateLimited`].
const RATE_LIMIT_RETRIES: u32 = 2;
/// The longest wait for a rate limit inside one call; longer ones are handed back.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// An upload's time limit: tens of megabytes take longer than a call.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// Connecting's time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Passing failures (5xx, no answer) retried inside one call, after 1 s, then 2 s.
const TRANSIENT_RETRIES: u32 = 2;
/// Attachments downloaded at once, over all channels: bounds the memory a
/// flood of images can take.
const CONCURRENT_DOWNLOADS: usize = 4;

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
    #[error("Discord answered {status} to {what}: {message}{}", code_note(*code))]
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

    /// Whether Discord refused a request as too large (413, code 40005).
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::Api { status: 413, .. })
    }
}

/// What a call sends.
enum Payload<'a> {
    /// No body.
    Empty,
    /// A JSON body.
    Json(Value),
    /// A message with a file: the JSON as `payload_json`, the file as `files[0]`.
    WithFile(Value, &'a FileBlob),
}

impl Payload<'_> {
    /// Puts the payload on `request`. A form is built anew for every attempt:
    /// a sent one is consumed.
    fn apply(&self, request: reqwest::RequestBuilder, post: bool) -> reqwest::RequestBuilder {
        match self {
            Self::Json(body) => request.json(body),
            Self::WithFile(body, file) => {
                let part = || Part::bytes(file.data.clone()).file_name(file.name.clone());
                let part = part().mime_str(&file.media_type).unwrap_or_else(|_| part());
                let form = Form::new()
                    .text("payload_json", body.to_string())
                    .part("files[0]", part);
                request.multipart(form).timeout(UPLOAD_TIMEOUT)
            }
            // Discord wants a length on body-less POSTs.
            Self::Empty if post => request.header("content-length", "0"),
            Self::Empty => request,
        }
    }
}

/// The Discord REST API, as the bot.
pub struct Rest {
    http: reqwest::Client,
    root: String,
    /// `Bot <token>`, marked sensitive so no debug output shows it.
    authorization: HeaderValue,
    limits: Mutex<RateLimits>,
    downloads: Semaphore,
    /// Where this process's message nonces start (its start time), and how
    /// many were handed out.
    nonce_base: u64,
    nonces: AtomicU64,
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
    pub fn new(root: &str, token: &str) -> Result<Self, DiscordError> {
        let mut authorization = HeaderValue::from_str(&format!("Bot {token}")).map_err(|_| {
            DiscordError::Client("the bot token has characters no HTTP header can carry".to_owned())
        })?;
        authorization.set_sensitive(true);
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
            .build()
            .map_err(|e| DiscordError::Client(e.without_url().to_string()))?;
        // Nanoseconds since 1970 (a 19-digit number), so two runs of the bot
        // a few minutes apart never hand out the same nonce.
        let nonce_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2));
        Ok(Self {
            http,
            root: root.trim_end_matches('/').to_owned(),
            authorization,
            limits: Mutex::new(RateLimits::new()),
            downloads: Semaphore::new(CONCURRENT_DOWNLOADS),
            nonce_base,
            nonces: AtomicU64::new(0),
        })
    }

    /// `GET /users/@me`: the bot's own account.
    pub async fn current_user(&self) -> Result<User, RestError> {
        let body = self
            .call(
                "the bot's account",
                "GET",
                "users/@me".to_owned(),
                Payload::Empty,
            )
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
        self.post_message(channel, text, reply_to, None).await
    }

    /// Sends `text` with message `components` (rows of buttons); returns the
    /// new message's id.
    pub async fn create_message_with_components(
        &self,
        channel: u64,
        text: &str,
        components: Value,
    ) -> Result<u64, RestError> {
        self.post_message(channel, text, None, Some(components))
            .await
    }

    /// Sends `file` as an attachment, with `caption` as the text, as a reply
    /// to `reply_to` when given; returns the new message's id.
    pub async fn create_message_with_file(
        &self,
        channel: u64,
        file: &FileBlob,
        caption: &str,
        reply_to: Option<u64>,
    ) -> Result<u64, RestError> {
        self.post(channel, caption, reply_to, None, Some(file))
            .await
    }

    async fn post_message(
        &self,
        channel: u64,
        text: &str,
        reply_to: Option<u64>,
        components: Option<Value>,
    ) -> Result<u64, RestError> {
        self.post(channel, text, reply_to, components, None).await
    }

    async fn post(
        &self,
        channel: u64,
        text: &str,
        reply_to: Option<u64>,
        components: Option<Value>,
        file: Option<&FileBlob>,
    ) -> Result<u64, RestError> {
        // Discord keeps nonces for a few minutes: a retried call whose first
        // try did create the message gets that message back, not a copy.
        let nonce = self
            .nonce_base
            .wrapping_add(self.nonces.fetch_add(1, Ordering::Relaxed))
            .to_string();
        let mut body = json!({
            "content": text,
            "allowed_mentions": { "parse": [], "replied_user": false },
            "nonce": nonce,
            "enforce_nonce": true,
        });
        if let Some(components) = components {
            body["components"] = components;
        }
        if let Some(id) = reply_to {
            body["message_reference"] = json!({
                "type": 0,
                "message_id": id.to_string(),
                "channel_id": channel.to_string(),
                "fail_if_not_exists": false,
            });
        }
        let (what, payload) = match file {
            Some(file) => {
                body["attachments"] = json!([{ "id": 0, "filename": file.name }]);
                ("sending a file", Payload::WithFile(body, file))
            }
            None => ("sending a message", Payload::Json(body)),
        };
        let answer = self
            .call(
                what,
                "POST",
                format!("channels/{channel}/messages"),
                payload,
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
        self.patch_message(channel, message, text, None).await
    }

    /// Replaces a message's text and its components (`[]` removes its buttons).
    pub async fn edit_message_with_components(
        &self,
        channel: u64,
        message: u64,
        text: &str,
        components: Value,
    ) -> Result<(), RestError> {
        self.patch_message(channel, message, text, Some(components))
            .await
    }

    async fn patch_message(
        &self,
        channel: u64,
        message: u64,
        text: &str,
        components: Option<Value>,
    ) -> Result<(), RestError> {
        let mut body = json!({ "content": text, "allowed_mentions": { "parse": [] } });
        if let Some(components) = components {
            body["components"] = components;
        }
        self.call(
            "editing a message",
            "PATCH",
            format!("channels/{channel}/messages/{message}"),
            Payload::Json(body),
        )
        .await
        .map(drop)
    }

    /// `POST /interactions/{id}/{token}/callback`: answers an interaction
    /// within Discord's three seconds (`{"type": 6}` acknowledges a button
    /// press without changing its message).
    pub async fn interaction_callback(
        &self,
        id: u64,
        token: &clara_core::Secret,
        body: Value,
    ) -> Result<(), RestError> {
        self.call(
            "answering a button press",
            "POST",
            format!("interactions/{id}/{}/callback", token.expose()),
            Payload::Json(body),
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
            Payload::Empty,
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
                Payload::Empty,
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
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self
            .downloads
            .acquire()
            .await
            .map_err(|_| RestError::Transport {
                what,
                detail: "the adapter is shutting down".to_owned(),
            })?;
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
    /// on a 429 waits as told and tries again (up to [`RATE_LIMIT_RETRIES`]);
    /// a 5xx or a lost connection is tried again after a pause (up to
    /// [`TRANSIENT_RETRIES`]).
    async fn call(
        &self,
        what: &'static str,
        method: &str,
        path: String,
        payload: Payload<'_>,
    ) -> Result<Value, RestError> {
        let route = Route::new(method, &path);
        let url = format!("{}/{path}", self.root);
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| RestError::Transport {
                what,
                detail: format!("{method} is not an HTTP method"),
            })?;
        let mut limited = 0;
        let mut failed = 0;
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
                .header(reqwest::header::AUTHORIZATION, self.authorization.clone());
            request = payload.apply(request, method == reqwest::Method::POST);
            let transport = |e: reqwest::Error| RestError::Transport {
                what,
                detail: e.without_url().to_string(),
            };
            let answer = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes)),
                        Err(e) => Err(transport(e)),
                    }
                }
                Err(e) => Err(transport(e)),
            };
            let (status, headers, bytes) = match answer {
                Ok(answer) => answer,
                Err(e) if failed < TRANSIENT_RETRIES => {
                    failed += 1;
                    tracing::info!(what, error = %e, "Discord did not answer; trying again");
                    tokio::time::sleep(Duration::from_secs(u64::from(failed))).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            self.limits()
                .update(&route, &BucketHeaders::read(header), Instant::now());
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
                        retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                        global,
                        "Discord rate limited a call; waiting as told"
                    );
                    limited += 1;
                    if limited > RATE_LIMIT_RETRIES || retry_after > LONGEST_WAIT {
                        return Err(RestError::RateLimited { retry_after });
                    }
                }
                401 => return Err(RestError::Unauthorized),
                500 | 502..=504 if failed < TRANSIENT_RETRIES => {
                    failed += 1;
                    tracing::info!(what, status, "Discord had a passing failure; trying again");
                    tokio::time::sleep(Duration::from_secs(u64::from(failed))).await;
                }
                _ => {
                    let error: ApiError = serde_json::from_slice(&bytes).unwrap_or_default();
                    let message = if error.message.is_empty() {
                        "no reason given".to_owned()
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

/// Discord's JSON error code, when it sent one (0 is "general error").
fn code_note(code: u64) -> String {
    if code == 0 {
        String::new()
    } else {
        format!(" (code {code})")
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
    let wait = parsed
        .as_ref()
        .and_then(|p| wait_of(p.retry_after))
        .or_else(|| {
            header("retry-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(wait_of)
        })
        .unwrap_or(Duration::from_secs(1));
    let global = parsed.is_some_and(|p| p.global) || global_header;
    (wait, global)
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
        // A nonsense wait neither panics nor waits for ever.
        let absurd =
            br#"{"message":"You are being rate limited.","retry_after":1e300,"global":false}"#;
        assert_eq!(retry_after(absurd, |_| None).0, Duration::from_secs(86_400));
        let negative = br#"{"retry_after":-5}"#;
        assert_eq!(
            retry_after(negative, |_| Some("2")).0,
            Duration::from_secs(2)
        );
    }
}

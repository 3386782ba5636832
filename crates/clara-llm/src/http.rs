//! The HTTP plumbing every remote provider shares: building the client, sending one
//! JSON `POST` with retries before the answer starts, and keeping URLs and keys out of
//! errors.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};
use serde_json::Value;

use crate::error::{clean_detail, truncate};
use crate::retry::{parse_retry_after, parse_retry_after_ms};
use crate::{LlmError, RetryPolicy, Secret, TimeoutPhase, Timeouts};

/// Most of an error body worth reading; the detail kept is far shorter.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// Maps a non-success status and its body (and the server's `Retry-After`) to an error.
pub(crate) type StatusMapper<'a> =
    &'a (dyn Fn(StatusCode, &str, Option<Duration>) -> LlmError + Sync);

/// One provider's connection to one endpoint.
///
/// Its `Debug` shows the endpoint without credentials and leaves out the client
/// (large, and nothing a reader needs); the key prints as [`Secret`] does and the
/// headers' values are all marked sensitive.
pub(crate) struct HttpCore {
    client: reqwest::Client,
    pub(crate) endpoint: Url,
    /// `endpoint` without credentials or query, for logs and errors.
    pub(crate) shown_endpoint: String,
    /// Sent with every request (auth, versions, attribution); all marked sensitive.
    pub(crate) headers: HeaderMap,
    /// The key, so server text that echoes it can be scrubbed.
    pub(crate) secret: Option<Secret>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeouts: Timeouts,
}

impl fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCore")
            .field("endpoint", &self.shown_endpoint)
            .field("headers", &self.headers)
            .field("secret", &self.secret)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// [`LlmError::InvalidConfig`] for `field`.
pub(crate) fn invalid(field: &str, reason: &str) -> LlmError {
    LlmError::InvalidConfig {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Parses `base` + `suffix` as an http(s) URL; `example` shows the expected base.
pub(crate) fn endpoint_url(base: &str, suffix: &str, example: &str) -> Result<Url, LlmError> {
    let url = Url::parse(&format!("{base}{suffix}")).map_err(|_| {
        invalid(
            "base_url",
            &format!("is not a valid URL (expected e.g. {example})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("base_url", "must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// A header whose value is never printed (reqwest hides sensitive values in Debug).
pub(crate) fn sensitive_header(
    headers: &mut HeaderMap,
    field: &str,
    name: &str,
    value: &str,
) -> Result<(), LlmError> {
    let header = HeaderName::try_from(name.trim()).map_err(|_| {
        invalid(
            field,
            &format!("{:?} is not a valid header name", truncate(name, 40)),
        )
    })?;
    let mut value = HeaderValue::try_from(value.trim()).map_err(|_| {
        invalid(
            field,
            &format!("the value of {header} cannot be sent in an HTTP header"),
        )
    })?;
    value.set_sensitive(true);
    headers.append(header, value);
    Ok(())
}

impl HttpCore {
    /// Builds the client. `headers` are sent on every request.
    pub(crate) fn new(
        endpoint: Url,
        headers: HeaderMap,
        secret: Option<Secret>,
        retry: RetryPolicy,
        timeouts: Timeouts,
    ) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("clara/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid("http client", &truncate(&e.to_string(), 120)))?;
        Ok(Self {
            client,
            shown_endpoint: shown_url(&endpoint),
            endpoint,
            headers,
            secret,
            retry,
            timeouts,
        })
    }

    /// Server text made safe for an error: the key removed, truncated.
    pub(crate) fn scrub(&self, text: &str) -> String {
        clean_detail(text, self.secret.as_ref().map(Secret::expose))
    }

    /// POSTs `body` until a success status arrives, retrying what is worth retrying
    /// (see [`RetryPolicy`]). Nothing is retried once this returns.
    pub(crate) async fn post_json(
        &self,
        body: &Value,
        model: &str,
        map_status: StatusMapper<'_>,
    ) -> Result<Response, LlmError> {
        let attempts = self.retry.attempts();
        let started = Instant::now();
        let mut retry = 0;
        loop {
            tracing::debug!(endpoint = %self.shown_endpoint, model = %model, attempt = retry + 1, "requesting a streamed answer");
            let (error, retry_after) = match self.attempt(body, map_status).await {
                Ok(response) => {
                    tracing::debug!(model = %model, elapsed_ms = started.elapsed().as_millis(), "answer stream started");
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            if !error.is_retryable() || retry + 1 >= attempts {
                tracing::warn!(model = %model, attempts = retry + 1, error = %error, "language model call failed");
                return Err(error);
            }
            let wait = match retry_after {
                Some(wait) if wait > RetryPolicy::MAX_RETRY_AFTER => {
                    tracing::warn!(model = %model, retry_after = ?wait, error = %error, "server asked to wait too long; giving up");
                    return Err(error);
                }
                Some(wait) => wait,
                None => self.retry.backoff(retry),
            };
            tracing::warn!(model = %model, attempt = retry + 1, wait_ms = wait.as_millis(), error = %error, "retrying language model call");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One exchange up to the response headers. On failure, also returns how long the
    /// server asked us to wait.
    async fn attempt(
        &self,
        body: &Value,
        map_status: StatusMapper<'_>,
    ) -> Result<Response, (LlmError, Option<Duration>)> {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .json(body);
        // Bounds connecting too: `connect` only matters when it is the shorter of the two.
        let response = match tokio::time::timeout(self.timeouts.first_byte, request.send()).await {
            Err(_) => {
                return Err((
                    LlmError::Timeout {
                        phase: TimeoutPhase::FirstByte,
                        after: self.timeouts.first_byte,
                    },
                    None,
                ));
            }
            Ok(Err(e)) => return Err((self.transport_error(e), None)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let text =
            match tokio::time::timeout(self.timeouts.idle, read_limited(response, MAX_ERROR_BODY))
                .await
            {
                Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => String::new(),
            };
        Err((map_status(status, &text, retry_after), retry_after))
    }

    fn transport_error(&self, error: reqwest::Error) -> LlmError {
        let error = error.without_url();
        if error.is_timeout() && !error.is_connect() {
            return LlmError::Timeout {
                phase: TimeoutPhase::FirstByte,
                after: self.timeouts.first_byte,
            };
        }
        // Connect failures and connections dropped before any response are both "could not
        // get the request to the server", which is safe to try again.
        LlmError::Unreachable {
            endpoint: self.shown_endpoint.clone(),
            detail: self.scrub(&error_chain(&error)),
        }
    }
}

/// The server's wait request: OpenAI's precise `retry-after-ms`, else `Retry-After`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| {
            header(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, SystemTime::now()))
        })
}

/// At most `limit` bytes of a body.
pub(crate) async fn read_limited(
    mut response: Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// `error: cause: cause` — reqwest's own message ("error sending request") says little.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A URL without user info and query string, which is where credentials hide.
pub(crate) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have credentials, which is fine.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// [`shown_url`] of a configured base URL, for Debug output.
pub(crate) fn redact_url_text(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => shown_url(&url),
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

/// The detail of an error body: its `error.message` (OpenAI, Anthropic), its `error`
/// string (Ollama), or the raw text; the status's name when there is nothing.
pub(crate) fn body_detail(status: StatusCode, body: &str, core: &HttpCore) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let raw = match parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| !e.is_null())
    {
        Some(error) => crate::sse::error_detail(error),
        None => body.to_owned(),
    };
    let detail = core.scrub(&raw);
    if detail.is_empty() {
        status.canonical_reason().unwrap_or("no detail").to_owned()
    } else {
        detail
    }
}

/// A sampling temperature as JSON: `0.3f32` as `0.3`, not `0.30000001192092896`
/// (the f32's shortest decimal form, which is what the person configured).
pub(crate) fn temperature_json(temperature: f32) -> Value {
    temperature
        .to_string()
        .parse::<f64>()
        .map_or_else(|_| Value::from(f64::from(temperature)), Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }

    #[test]
    fn temperatures_stay_as_written() {
        assert_eq!(temperature_json(0.3).to_string(), "0.3");
        assert_eq!(temperature_json(1.0).to_string(), "1.0");
    }

    #[test]
    fn urls_lose_credentials() {
        let url = Url::parse("https://u:pw@example.invalid/v1?key=k#f").unwrap();
        assert_eq!(shown_url(&url), "https://example.invalid/v1");
        assert_eq!(redact_url_text("nope"), "[unparseable URL]");
        assert!(endpoint_url("ftp://x", "/a", "e").is_err());
        assert!(endpoint_url("not a url", "/a", "e").is_err());
    }
}

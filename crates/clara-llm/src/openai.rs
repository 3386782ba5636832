//! The OpenAI chat-completions API and the many servers that copy it (OpenRouter,
//! NanoGPT, Ollama's `/v1`, vLLM, LM Studio, any custom base URL).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};

use crate::error::{clean_detail, truncate};
use crate::retry::{parse_retry_after, parse_retry_after_ms};
use crate::sse::{chat_stream, error_detail, parse_completion};
use crate::{
    ChatProvider, ChatRequest, ChatStream, LlmError, RetryPolicy, Secret, TimeoutPhase, Timeouts,
};

/// Most of an error body worth reading; the detail kept is far shorter.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most of a non-streamed JSON answer accepted.
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// Settings of an [`OpenAiCompatible`] provider.
#[derive(Clone)]
pub struct OpenAiCompatibleConfig {
    /// The API root, e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    /// A trailing slash is tolerated.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set (local servers often need none).
    pub api_key: Option<Secret>,
    /// The model used when a request names none.
    pub model: String,
    /// Retries before the answer starts.
    pub retry: RetryPolicy,
    /// Connect, first-byte and idle timeouts.
    pub timeouts: Timeouts,
    /// Extra headers on every request (OpenRouter's `HTTP-Referer` and `X-Title`, proxy
    /// auth). Their values are treated as secrets: never logged or printed.
    pub extra_headers: Vec<(String, String)>,
}

impl OpenAiCompatibleConfig {
    /// A config with no key, no extra headers and default retries and timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            extra_headers: Vec::new(),
        }
    }
}

impl fmt::Debug for OpenAiCompatibleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatibleConfig")
            .field("base_url", &redact_url_text(&self.base_url))
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field(
                "extra_headers",
                &self
                    .extra_headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A chat provider speaking OpenAI's `POST /chat/completions` with `stream: true`.
pub struct OpenAiCompatible {
    client: reqwest::Client,
    endpoint: Url,
    /// `endpoint` without credentials or query, for logs and errors.
    shown_endpoint: String,
    model: String,
    api_key: Option<Secret>,
    auth: Option<HeaderValue>,
    extra_headers: HeaderMap,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("endpoint", &self.shown_endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field(
                "extra_headers",
                &self.extra_headers.keys().collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    /// Checks the config and builds the HTTP client. Fails with
    /// [`LlmError::InvalidConfig`] naming the bad setting.
    pub fn new(config: OpenAiCompatibleConfig) -> Result<Self, LlmError> {
        let invalid = |field: &str, reason: &str| LlmError::InvalidConfig {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };

        let base = config.base_url.trim().trim_end_matches('/');
        let endpoint = Url::parse(&format!("{base}/chat/completions")).map_err(|_| {
            invalid(
                "base_url",
                "is not a valid URL (expected e.g. https://api.openai.com/v1)",
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(invalid("base_url", "must be an http:// or https:// URL"));
        }
        let model = config.model.trim().to_owned();
        if model.is_empty() {
            return Err(invalid("model", "is empty"));
        }

        let api_key = config.api_key.filter(|k| !k.is_blank());
        let auth = match &api_key {
            Some(key) => {
                let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose().trim()))
                    .map_err(|_| {
                        invalid(
                            "api_key",
                            "contains characters that cannot be sent in an HTTP header",
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };

        let mut extra_headers = HeaderMap::new();
        for (name, value) in &config.extra_headers {
            let header = HeaderName::try_from(name.trim()).map_err(|_| {
                invalid(
                    "extra_headers",
                    &format!("{:?} is not a valid header name", truncate(name, 40)),
                )
            })?;
            let mut value = HeaderValue::try_from(value.trim()).map_err(|_| {
                invalid(
                    "extra_headers",
                    &format!("the value of {header} cannot be sent in an HTTP header"),
                )
            })?;
            value.set_sensitive(true);
            extra_headers.append(header, value);
        }

        let client = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .user_agent(concat!("clara/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid("http client", &truncate(&e.to_string(), 120)))?;

        Ok(Self {
            client,
            shown_endpoint: shown_url(&endpoint),
            endpoint,
            model,
            api_key,
            auth,
            extra_headers,
            retry: config.retry,
            timeouts: config.timeouts,
        })
    }

    fn body(&self, request: &ChatRequest, model: &str) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        let mut body = json!({
            "model": model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(max_tokens) = request.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        body
    }

    /// One HTTP exchange up to the first byte of the answer. On failure, also returns
    /// how long the server asked us to wait.
    async fn attempt(
        &self,
        body: &Value,
        model: &str,
    ) -> Result<ChatStream, (LlmError, Option<Duration>)> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.extra_headers.clone())
            .json(body);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
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
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let text = match tokio::time::timeout(
                self.timeouts.idle,
                read_limited(response, MAX_ERROR_BODY),
            )
            .await
            {
                Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => String::new(),
            };
            return Err((
                self.status_error(status, &text, retry_after, model),
                retry_after,
            ));
        }

        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("application/json"));
        if is_json {
            // The server ignored `stream: true` and sent the whole completion at once.
            tracing::debug!(endpoint = %self.shown_endpoint, "server answered with JSON instead of a stream");
            let bytes = match tokio::time::timeout(
                self.timeouts.idle,
                read_limited(response, MAX_JSON_BODY),
            )
            .await
            {
                Err(_) => {
                    return Err((
                        LlmError::Timeout {
                            phase: TimeoutPhase::Idle,
                            after: self.timeouts.idle,
                        },
                        None,
                    ));
                }
                Ok(Err(_)) => return Err((LlmError::StreamCut, None)),
                Ok(Ok(bytes)) => bytes,
            };
            let events = parse_completion(&bytes, self.api_key.as_ref()).map_err(|e| (e, None))?;
            return Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed());
        }

        let bytes = response.bytes_stream().map_err(reqwest::Error::without_url);
        Ok(chat_stream(bytes, self.timeouts.idle, self.api_key.clone()))
    }

    fn transport_error(&self, error: reqwest::Error) -> LlmError {
        let error = error.without_url();
        let detail = clean_detail(
            &error_chain(&error),
            self.api_key.as_ref().map(Secret::expose),
        );
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
            detail,
        }
    }

    fn status_error(
        &self,
        status: StatusCode,
        body: &str,
        retry_after: Option<Duration>,
        model: &str,
    ) -> LlmError {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let error = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .filter(|e| !e.is_null());
        let code = |field: &str| {
            error
                .and_then(|e| e.get(field))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (kind, code) = (code("type"), code("code"));
        let raw = match error {
            Some(error) => error_detail(error),
            None => body.to_owned(),
        };
        let detail = clean_detail(&raw, self.api_key.as_ref().map(Secret::expose));
        let detail = if detail.is_empty() {
            status.canonical_reason().unwrap_or("no detail").to_owned()
        } else {
            detail
        };

        let status = status.as_u16();
        match status {
            401 => LlmError::Unauthorized,
            403 => LlmError::Forbidden,
            404 => LlmError::NotFound {
                model: model.to_owned(),
                detail,
            },
            408 | 409 => LlmError::Server { status },
            // Out of credit: waiting does not help, so it must not look like a rate limit.
            429 if kind == "insufficient_quota" || code == "insufficient_quota" => {
                LlmError::BadRequest { status, detail }
            }
            429 => LlmError::RateLimited { retry_after },
            503 | 529 => LlmError::Overloaded,
            500..=599 => LlmError::Server { status },
            _ => LlmError::BadRequest { status, detail },
        }
    }
}

#[async_trait::async_trait]
impl ChatProvider for OpenAiCompatible {
    fn name(&self) -> &str {
        "openai-compatible"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let model = request.model.clone().unwrap_or_else(|| self.model.clone());
        let body = self.body(&request, &model);
        let attempts = self.retry.attempts();
        let started = Instant::now();
        let mut retry = 0;
        loop {
            tracing::debug!(
                endpoint = %self.shown_endpoint,
                model = %model,
                messages = request.messages.len(),
                attempt = retry + 1,
                "requesting a streamed answer"
            );
            let (error, retry_after) = match self.attempt(&body, &model).await {
                Ok(stream) => {
                    tracing::debug!(model = %model, elapsed_ms = started.elapsed().as_millis(), "answer stream started");
                    return Ok(stream);
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
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| {
            header(RETRY_AFTER.as_str()).and_then(|v| parse_retry_after(v, SystemTime::now()))
        })
}

async fn read_limited(mut response: Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
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
fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail for URLs that cannot have credentials, which is fine.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn redact_url_text(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => shown_url(&url),
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(key: Option<&str>) -> OpenAiCompatible {
        let mut config =
            OpenAiCompatibleConfig::new("https://user:pw@example.invalid/v1/?key=abc", "m");
        config.api_key = key.map(Secret::from);
        OpenAiCompatible::new(config).unwrap()
    }

    #[test]
    fn endpoint_tolerates_trailing_slash_and_hides_credentials() {
        let p = OpenAiCompatible::new(OpenAiCompatibleConfig::new(
            "http://localhost:11434/v1/",
            "llama",
        ))
        .unwrap();
        assert_eq!(
            p.endpoint.as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        let p = OpenAiCompatible::new(OpenAiCompatibleConfig::new(
            "https://user:pw@example.invalid/v1",
            "m",
        ))
        .unwrap();
        assert_eq!(
            p.shown_endpoint,
            "https://example.invalid/v1/chat/completions"
        );
        assert!(!format!("{p:?}").contains("pw"));
    }

    #[test]
    fn bad_configs_are_named() {
        for (url, model, field) in [
            ("not a url", "m", "base_url"),
            ("ftp://x/v1", "m", "base_url"),
            ("http://x/v1", " ", "model"),
        ] {
            match OpenAiCompatible::new(OpenAiCompatibleConfig::new(url, model)) {
                Err(LlmError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{url}: {other:?}"),
            }
        }
        let mut config = OpenAiCompatibleConfig::new("http://x/v1", "m");
        config.api_key = Some(Secret::from("sk-bad\nkey"));
        let err = OpenAiCompatible::new(config).unwrap_err();
        assert!(matches!(&err, LlmError::InvalidConfig { field, .. } if field == "api_key"));
        assert!(!err.to_string().contains("sk-bad"));
        let mut config = OpenAiCompatibleConfig::new("http://x/v1", "m");
        config.extra_headers = vec![("bad header".into(), "v".into())];
        assert!(OpenAiCompatible::new(config).is_err());
    }

    #[test]
    fn blank_key_means_no_key() {
        assert!(provider(Some("  ")).auth.is_none());
        assert!(provider(Some("sk-1")).auth.is_some());
    }

    #[test]
    fn body_shape() {
        let p = provider(None);
        let mut request = ChatRequest::new(vec![
            clara_core::ChatMessage::system("s"),
            clara_core::ChatMessage::user("u"),
        ]);
        let body = p.body(&request, "m");
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["stream_options"]["include_usage"], json!(true));
        assert_eq!(body["messages"][1], json!({"role": "user", "content": "u"}));
        assert!(body.get("max_tokens").is_none() && body.get("temperature").is_none());
        request.max_tokens = Some(10);
        request.temperature = Some(0.5);
        let body = p.body(&request, "m");
        assert_eq!(body["max_tokens"], json!(10));
        assert_eq!(body["temperature"], json!(0.5));
    }

    #[test]
    fn statuses_map_to_errors() {
        let p = provider(Some("sk-secret"));
        let e = |status: u16, body: &str| {
            p.status_error(StatusCode::from_u16(status).unwrap(), body, None, "m")
        };
        let openai = |msg: &str, kind: &str, code: &str| {
            format!(
                r#"{{"error":{{"message":"{msg}","type":"{kind}","param":null,"code":"{code}"}}}}"#
            )
        };
        assert!(matches!(
            e(
                401,
                &openai(
                    "Incorrect API key provided: sk-secret",
                    "invalid_request_error",
                    "invalid_api_key"
                )
            ),
            LlmError::Unauthorized
        ));
        assert!(matches!(e(403, ""), LlmError::Forbidden));
        assert!(
            matches!(e(404, &openai("The model `m` does not exist", "invalid_request_error", "model_not_found")), LlmError::NotFound { model, detail } if model == "m" && detail.contains("does not exist"))
        );
        assert!(matches!(e(408, ""), LlmError::Server { status: 408 }));
        assert!(matches!(e(409, ""), LlmError::Server { status: 409 }));
        assert!(matches!(
            e(413, "too big"),
            LlmError::BadRequest { status: 413, .. }
        ));
        assert!(matches!(
            e(422, "{}"),
            LlmError::BadRequest { status: 422, .. }
        ));
        assert!(matches!(
            e(
                429,
                &openai("Rate limit", "requests", "rate_limit_exceeded")
            ),
            LlmError::RateLimited { .. }
        ));
        assert!(matches!(
            e(
                429,
                &openai(
                    "You exceeded your quota",
                    "insufficient_quota",
                    "insufficient_quota"
                )
            ),
            LlmError::BadRequest { status: 429, .. }
        ));
        assert!(matches!(e(500, ""), LlmError::Server { status: 500 }));
        assert!(matches!(e(502, "<html>"), LlmError::Server { status: 502 }));
        assert!(matches!(e(503, ""), LlmError::Overloaded));
        assert!(matches!(e(504, ""), LlmError::Server { status: 504 }));
        assert!(matches!(e(529, ""), LlmError::Overloaded));
        match e(
            400,
            &openai("bad sk-secret thing", "invalid_request_error", "x"),
        ) {
            LlmError::BadRequest {
                status: 400,
                detail,
            } => {
                assert!(
                    detail.contains("bad") && !detail.contains("sk-secret"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        match e(400, &"x".repeat(10_000)) {
            LlmError::BadRequest { detail, .. } => assert!(detail.chars().count() <= 200),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }
}

//! The OpenAI chat-completions API and the many servers that copy it (OpenRouter,
//! NanoGPT, Ollama's `/v1`, vLLM, LM Studio, any custom base URL).
//!
//! Beyond text this speaks tools (`tools`, streamed `delta.tool_calls`, assistant
//! `tool_calls` and `tool` messages) and images (content arrays with `image_url`
//! parts; image bytes go as `data:` URLs).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use clara_core::{ChatMessage, Image, Role};
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use crate::http::{
    HttpCore, body_detail, endpoint_url, invalid, read_limited, redact_url_text, sensitive_header,
    temperature_json,
};
use crate::sse::{chat_stream, parse_completion};
use crate::tool_calls::parameters_schema;
use crate::{
    ChatProvider, ChatRequest, ChatStream, LlmError, RetryPolicy, Secret, TimeoutPhase, Timeouts,
};

/// Most of a non-streamed JSON answer accepted.
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// Which OpenAI-compatible service a base URL points at. Decided from the URL's host,
/// so a hand-written base URL (`CUSTOM_OPENAI_BASE_URL=https://openrouter.ai/api/v1`)
/// gets the same treatment as [`OpenAiCompatibleConfig::openrouter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenAiFlavor {
    /// `api.openai.com`.
    OpenAi,
    /// `openrouter.ai`: asked to report each call's cost (`usage: {"include": true}`).
    OpenRouter,
    /// `nano-gpt.com`.
    NanoGpt,
    /// Anything else (Ollama's `/v1`, vLLM, LM Studio, a proxy).
    Compatible,
}

impl OpenAiFlavor {
    /// The flavor of a base URL (unparseable URLs are [`OpenAiFlavor::Compatible`]).
    pub fn detect(base_url: &str) -> Self {
        let host = reqwest::Url::parse(base_url.trim())
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if is("openai.com") {
            Self::OpenAi
        } else if is("openrouter.ai") {
            Self::OpenRouter
        } else if is("nano-gpt.com") {
            Self::NanoGpt
        } else {
            Self::Compatible
        }
    }

    /// The provider name shown in logs and status: `openai`, `openrouter`, `nanogpt`
    /// or `openai-compatible`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenRouter => "openrouter",
            Self::NanoGpt => "nanogpt",
            Self::Compatible => "openai-compatible",
        }
    }

    /// The setting an operator fixes when the key is rejected, when there is one name.
    fn key_setting(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("OPENAI_API_KEY"),
            Self::OpenRouter => Some("OPENROUTER_API_KEY"),
            Self::NanoGpt | Self::Compatible => None,
        }
    }
}

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
    /// auth). Their values are secrets: never logged or printed.
    pub extra_headers: Vec<(String, Secret)>,
}

impl OpenAiCompatibleConfig {
    /// OpenAI's API root.
    pub const OPENAI_BASE_URL: &'static str = "https://api.openai.com/v1";
    /// OpenRouter's API root.
    pub const OPENROUTER_BASE_URL: &'static str = "https://openrouter.ai/api/v1";
    /// NanoGPT's API root.
    pub const NANOGPT_BASE_URL: &'static str = "https://nano-gpt.com/api/v1";

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

    /// OpenAI itself.
    pub fn openai(api_key: impl Into<Secret>, model: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            ..Self::new(Self::OPENAI_BASE_URL, model)
        }
    }

    /// OpenRouter. `site_url` and `app_name` become its attribution headers
    /// (`HTTP-Referer`, `X-Title`), which rank the app on openrouter.ai; each call asks
    /// for its cost, reported as [`crate::Usage::cost_usd`].
    pub fn openrouter(
        api_key: impl Into<Secret>,
        model: impl Into<String>,
        site_url: Option<String>,
        app_name: Option<String>,
    ) -> Self {
        let mut extra_headers = Vec::new();
        if let Some(url) = site_url.filter(|u| !u.trim().is_empty()) {
            extra_headers.push(("HTTP-Referer".to_owned(), Secret::from(url)));
        }
        if let Some(name) = app_name.filter(|n| !n.trim().is_empty()) {
            extra_headers.push(("X-Title".to_owned(), Secret::from(name)));
        }
        Self {
            api_key: Some(api_key.into()),
            extra_headers,
            ..Self::new(Self::OPENROUTER_BASE_URL, model)
        }
    }

    /// NanoGPT.
    pub fn nanogpt(api_key: impl Into<Secret>, model: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            ..Self::new(Self::NANOGPT_BASE_URL, model)
        }
    }

    /// Which service [`OpenAiCompatibleConfig::base_url`] points at.
    pub fn flavor(&self) -> OpenAiFlavor {
        OpenAiFlavor::detect(&self.base_url)
    }
}

/// By hand for one field: `base_url` may carry credentials (user info, a query
/// key), so it is shown without them; the key and header values are [`Secret`]s.
impl fmt::Debug for OpenAiCompatibleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatibleConfig")
            .field("base_url", &redact_url_text(&self.base_url))
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("extra_headers", &self.extra_headers)
            .finish()
    }
}

/// A chat provider speaking OpenAI's `POST /chat/completions` with `stream: true`.
#[derive(Debug)]
pub struct OpenAiCompatible {
    http: HttpCore,
    model: String,
    flavor: OpenAiFlavor,
}

impl OpenAiCompatible {
    /// Checks the config and builds the HTTP client. Fails with
    /// [`LlmError::InvalidConfig`] naming the bad setting.
    pub fn new(config: OpenAiCompatibleConfig) -> Result<Self, LlmError> {
        let flavor = config.flavor();
        let base = config.base_url.trim().trim_end_matches('/');
        let endpoint = endpoint_url(base, "/chat/completions", "https://api.openai.com/v1")?;
        let model = config.model.trim().to_owned();
        if model.is_empty() {
            return Err(invalid("model", "is empty"));
        }

        let api_key = config.api_key.filter(|k| !k.is_blank());
        let mut headers = HeaderMap::new();
        for (name, value) in &config.extra_headers {
            sensitive_header(&mut headers, "extra_headers", name, value.expose())?;
        }
        if let Some(key) = &api_key {
            sensitive_header(
                &mut headers,
                "api_key",
                AUTHORIZATION.as_str(),
                &format!("Bearer {}", key.expose().trim()),
            )
            .map_err(|_| {
                invalid(
                    "api_key",
                    "contains characters that cannot be sent in an HTTP header",
                )
            })?;
        }
        let http = HttpCore::new(endpoint, headers, api_key, config.retry, config.timeouts)?;
        Ok(Self {
            http,
            model,
            flavor,
        })
    }

    /// Which service this talks to.
    pub fn flavor(&self) -> OpenAiFlavor {
        self.flavor
    }

    fn body(&self, request: &ChatRequest, model: &str) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
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
            body["temperature"] = temperature_json(temperature);
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": parameters_schema(&t.parameters),
                        },
                    })
                })
                .collect();
            body["tools"] = Value::Array(tools);
        }
        if self.flavor == OpenAiFlavor::OpenRouter {
            // OpenRouter's usage accounting: the final chunk's `usage.cost`.
            body["usage"] = json!({ "include": true });
        }
        body
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
        let detail = body_detail(status, body, &self.http);

        let status = status.as_u16();
        match status {
            401 => LlmError::Unauthorized {
                key_setting: self.flavor.key_setting(),
            },
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

/// One message in OpenAI's shape.
fn message_json(m: &ChatMessage) -> Value {
    match m.role {
        Role::Assistant if !m.tool_calls.is_empty() => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments },
                    })
                })
                .collect();
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                json!(m.content)
            };
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        Role::Tool => match &m.tool_call_id {
            Some(id) => json!({ "role": "tool", "tool_call_id": id, "content": m.content }),
            // A result that answers no call cannot be a `tool` message; keep its text.
            None => json!({ "role": "user", "content": format!("Tool result: {}", m.content) }),
        },
        Role::User if !m.images.is_empty() => {
            let mut parts = Vec::with_capacity(m.images.len() + 1);
            if !m.content.is_empty() {
                parts.push(json!({ "type": "text", "text": m.content }));
            }
            for image in &m.images {
                parts
                    .push(json!({ "type": "image_url", "image_url": { "url": image_url(image) } }));
            }
            json!({ "role": "user", "content": parts })
        }
        role => json!({ "role": role.as_str(), "content": m.content }),
    }
}

/// An image as a URL: its own, or its bytes as a `data:` URL.
pub(crate) fn image_url(image: &Image) -> String {
    match image {
        Image::Url { url } => url.clone(),
        Image::Bytes { media_type, data } => format!(
            "data:{media_type};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(data)
        ),
    }
}

#[async_trait::async_trait]
impl ChatProvider for OpenAiCompatible {
    fn name(&self) -> &str {
        self.flavor.name()
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let model = request.model.clone().unwrap_or_else(|| self.model.clone());
        let body = self.body(&request, &model);
        let map =
            |status, text: &str, retry_after| self.status_error(status, text, retry_after, &model);
        let response = self.http.post_json(&body, &model, &map).await?;

        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("application/json"));
        if is_json {
            // The server ignored `stream: true` and sent the whole completion at once.
            tracing::debug!(endpoint = %self.http.shown_endpoint, "server answered with JSON instead of a stream");
            let idle = self.http.timeouts.idle;
            let bytes =
                match tokio::time::timeout(idle, read_limited(response, MAX_JSON_BODY)).await {
                    Err(_) => {
                        return Err(LlmError::Timeout {
                            phase: TimeoutPhase::Idle,
                            after: idle,
                        });
                    }
                    Ok(Err(_)) => return Err(LlmError::StreamCut),
                    Ok(Ok(bytes)) => bytes,
                };
            let events = parse_completion(&bytes, self.http.secret.as_ref())?;
            return Ok(futures::stream::iter(events.into_iter().map(Ok)).boxed());
        }

        let bytes = response.bytes_stream().map_err(reqwest::Error::without_url);
        Ok(chat_stream(
            bytes,
            self.http.timeouts.idle,
            self.http.secret.clone(),
        ))
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
            p.http.endpoint.as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        let p = OpenAiCompatible::new(OpenAiCompatibleConfig::new(
            "https://user:pw@example.invalid/v1",
            "m",
        ))
        .unwrap();
        assert_eq!(
            p.http.shown_endpoint,
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
        assert!(
            provider(Some("  "))
                .http
                .headers
                .get(AUTHORIZATION)
                .is_none()
        );
        assert!(
            provider(Some("sk-1"))
                .http
                .headers
                .get(AUTHORIZATION)
                .is_some()
        );
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
            LlmError::Unauthorized { key_setting: None }
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
    fn flavors_from_urls_and_constructors() {
        assert_eq!(
            OpenAiFlavor::detect("https://openrouter.ai/api/v1"),
            OpenAiFlavor::OpenRouter
        );
        assert_eq!(
            OpenAiFlavor::detect("https://api.openai.com/v1/"),
            OpenAiFlavor::OpenAi
        );
        assert_eq!(
            OpenAiFlavor::detect("https://nano-gpt.com/api/v1"),
            OpenAiFlavor::NanoGpt
        );
        assert_eq!(
            OpenAiFlavor::detect("http://localhost:11434/v1"),
            OpenAiFlavor::Compatible
        );
        assert_eq!(
            OpenAiFlavor::detect("https://evil-openrouter.ai/v1"),
            OpenAiFlavor::Compatible
        );
        let c = OpenAiCompatibleConfig::openrouter(
            "k",
            "m",
            Some("https://clara.example".into()),
            Some("Clara".into()),
        );
        assert_eq!(c.base_url, OpenAiCompatibleConfig::OPENROUTER_BASE_URL);
        assert_eq!(
            c.extra_headers,
            vec![
                (
                    "HTTP-Referer".to_owned(),
                    Secret::from("https://clara.example")
                ),
                ("X-Title".to_owned(), Secret::from("Clara"))
            ]
        );
        let p = OpenAiCompatible::new(c).unwrap();
        assert_eq!(p.name(), "openrouter");
        assert_eq!(
            p.body(&ChatRequest::default(), "m")["usage"],
            json!({"include": true})
        );
        let p = OpenAiCompatible::new(OpenAiCompatibleConfig::nanogpt("k", "m")).unwrap();
        assert_eq!(
            (p.name(), p.http.endpoint.as_str()),
            ("nanogpt", "https://nano-gpt.com/api/v1/chat/completions")
        );
        assert!(p.body(&ChatRequest::default(), "m").get("usage").is_none());
        let p = OpenAiCompatible::new(OpenAiCompatibleConfig::openai("k", "m")).unwrap();
        assert_eq!(p.name(), "openai");
        assert!(matches!(
            p.status_error(StatusCode::UNAUTHORIZED, "", None, "m"),
            LlmError::Unauthorized {
                key_setting: Some("OPENAI_API_KEY")
            }
        ));
    }

    #[test]
    fn tools_images_and_tool_messages() {
        use clara_core::{ToolCall, ToolSpec};
        let p = provider(None);
        let mut user = clara_core::ChatMessage::user("what is this?");
        user.images = vec![
            Image::Bytes {
                media_type: "image/png".into(),
                data: vec![1, 2, 3],
            },
            Image::Url {
                url: "https://x.invalid/a.jpg".into(),
            },
        ];
        let call = ToolCall {
            id: "call_1".into(),
            name: "look".into(),
            arguments: "{\"a\":1}".into(),
        };
        let mut request = ChatRequest::new(vec![
            user,
            clara_core::ChatMessage::tool_request("", vec![call]),
            clara_core::ChatMessage::tool_result("call_1", "a cat"),
        ]);
        request.tools = vec![ToolSpec {
            name: "look".into(),
            description: "Looks".into(),
            parameters: json!({"type":"object"}),
        }];
        let body = p.body(&request, "m");
        assert_eq!(
            body["messages"],
            json!([
                {"role":"user","content":[
                    {"type":"text","text":"what is this?"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,AQID"}},
                    {"type":"image_url","image_url":{"url":"https://x.invalid/a.jpg"}},
                ]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"look","arguments":"{\"a\":1}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"a cat"},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type":"function","function":{"name":"look","description":"Looks","parameters":{"type":"object"}}}])
        );
        assert!(p.body(&ChatRequest::default(), "m").get("tools").is_none());
    }
}

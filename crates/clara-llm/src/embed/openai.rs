//! Embeddings from any OpenAI-compatible `POST {base}/embeddings`: OpenAI itself,
//! Ollama's `/v1`, vLLM, LM Studio, a proxy.
//!
//! Texts go in batches of [`OpenAiEmbedderConfig::batch_size`] (`input` is an array),
//! one request after the other; each request is retried on 429, 5xx and connection
//! failures like a chat request (see [`RetryPolicy`]). Answers are read from
//! `data[].embedding`, put back in order by `data[].index`, checked (one vector per
//! text, all of one length) and L2-normalised: some servers (Ollama, vLLM) do not
//! normalise, and Clara compares vectors by dot product.
//!
//! **Stored model name.** Vectors are tagged `<source>/<model>`, where the source is
//! `openai` for api.openai.com and the base URL's host otherwise (e.g.
//! `localhost/nomic-embed-text` for a local Ollama, `openrouter.ai/…`). The host, not
//! a generic `openai-compatible`, because two servers may serve different weights
//! under one name (an Ollama quantisation against the original), and mixing their
//! vectors would silently spoil search; the port is left out so moving a server to
//! another port does not force a re-embed. When a move would change the host (a
//! proxy in front of OpenAI, a renamed machine), set
//! [`OpenAiEmbedderConfig::storage_name`] to keep the old name.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{EmbedError, Embedder, EmbeddingModel, normalize};
use crate::error::truncate;
use crate::http::{
    HttpCore, body_detail, endpoint_url, read_limited, redact_url_text, sensitive_header,
};
use crate::{LlmError, OpenAiFlavor, RetryPolicy, Secret, Timeouts};

/// Most of one answer accepted: 64 texts of 3072 dimensions as JSON are about 4 MB;
/// this leaves room for larger batches without letting a broken server fill memory.
const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;

/// Shown when no setting name is known for the key.
const GENERIC_KEY_SETTING: &str = "the embeddings API key setting";

/// Settings of an [`OpenAiEmbedder`].
#[derive(Clone)]
pub struct OpenAiEmbedderConfig {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`;
    /// `/embeddings` is appended. A trailing slash is tolerated.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set (local servers often need none).
    pub api_key: Option<Secret>,
    /// The setting that holds the key, named when the key is rejected (e.g.
    /// `OPENAI_API_KEY`). When unset: `OPENAI_API_KEY` / `OPENROUTER_API_KEY` for those
    /// services, else a generic phrase.
    pub key_setting: Option<String>,
    /// The model asked for, e.g. `text-embedding-3-small` or `nomic-embed-text`.
    pub model: String,
    /// The vector length expected. When unset it is learned from the first answer
    /// (until then [`Embedder::model`] reports 0; [`OpenAiEmbedder::probe`] learns it
    /// up front). Answers of another length are [`EmbedError::Malformed`].
    pub dimensions: Option<usize>,
    /// Also send `dimensions` in each request, asking the server to shorten vectors
    /// (OpenAI's `text-embedding-3-*` models support it; many other servers reject
    /// it). Default `false`.
    pub send_dimensions: bool,
    /// Texts per request; larger inputs are split into several requests. Default
    /// [`OpenAiEmbedderConfig::DEFAULT_BATCH_SIZE`]; OpenAI accepts up to 2048.
    pub batch_size: usize,
    /// The name stored with the vectors instead of the derived `<source>/<model>` (see
    /// the [module docs](self)).
    pub storage_name: Option<String>,
    /// Retries of each request (429, 5xx, connection failures).
    pub retry: RetryPolicy,
    /// Connect and first-byte timeouts; `idle` bounds reading the answer's body.
    pub timeouts: Timeouts,
    /// Extra headers on every request (proxy auth). Their values are secrets: never
    /// logged or printed.
    pub extra_headers: Vec<(String, Secret)>,
}

impl OpenAiEmbedderConfig {
    /// Texts per request by default: large enough to amortise the round trip, small
    /// enough that one slow batch does not hit the timeout.
    pub const DEFAULT_BATCH_SIZE: usize = 64;

    /// A config with no key, learned dimensions and default batching, retries and
    /// timeouts.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            key_setting: None,
            model: model.into(),
            dimensions: None,
            send_dimensions: false,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            storage_name: None,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            extra_headers: Vec::new(),
        }
    }

    /// OpenAI itself (`https://api.openai.com/v1`), the key from `OPENAI_API_KEY`.
    pub fn openai(api_key: impl Into<Secret>, model: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            key_setting: Some("OPENAI_API_KEY".to_owned()),
            ..Self::new(crate::OpenAiCompatibleConfig::OPENAI_BASE_URL, model)
        }
    }
}

/// By hand for one field: `base_url` may carry credentials (user info, a query
/// key), so it is shown without them; the key and header values are [`Secret`]s.
impl fmt::Debug for OpenAiEmbedderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedderConfig")
            .field("base_url", &redact_url_text(&self.base_url))
            .field("api_key", &self.api_key)
            .field("key_setting", &self.key_setting)
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("batch_size", &self.batch_size)
            .field("storage_name", &self.storage_name)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("extra_headers", &self.extra_headers)
            .finish()
    }
}

/// An [`Embedder`] speaking OpenAI's `POST /embeddings` (see the [module docs](self)).
#[derive(Debug)]
pub struct OpenAiEmbedder {
    http: HttpCore,
    /// The `model` field of each request.
    request_model: String,
    /// The stored name, with the configured dimension or 0.
    declared: EmbeddingModel,
    /// Set once the dimension is known (at once when configured).
    known: OnceLock<EmbeddingModel>,
    send_dimensions: bool,
    batch_size: usize,
    key_setting: String,
}

impl OpenAiEmbedder {
    /// Checks the config and builds the HTTP client. A bad setting is an
    /// [`EmbedError::Load`] naming it.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, EmbedError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let endpoint =
            endpoint_url(base, "/embeddings", "https://api.openai.com/v1").map_err(config_error)?;
        let request_model = config.model.trim().to_owned();
        if request_model.is_empty() {
            return Err(invalid("model", "is empty"));
        }
        if config.batch_size == 0 {
            return Err(invalid("batch_size", "must be at least 1"));
        }
        if config.dimensions == Some(0) {
            return Err(invalid("dimensions", "must be at least 1 when set"));
        }
        if config.send_dimensions && config.dimensions.is_none() {
            return Err(invalid(
                "send_dimensions",
                "needs dimensions to be set (the length to ask for)",
            ));
        }

        let flavor = OpenAiFlavor::detect(base);
        let key_setting = config
            .key_setting
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                match flavor {
                    OpenAiFlavor::OpenAi => "OPENAI_API_KEY",
                    OpenAiFlavor::OpenRouter => "OPENROUTER_API_KEY",
                    OpenAiFlavor::NanoGpt | OpenAiFlavor::Compatible => GENERIC_KEY_SETTING,
                }
                .to_owned()
            });
        let name = config
            .storage_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map_or_else(
                || storage_name(flavor, endpoint.host_str(), &request_model),
                str::to_owned,
            );

        let api_key = config.api_key.filter(|k| !k.is_blank());
        let mut headers = HeaderMap::new();
        for (name, value) in &config.extra_headers {
            sensitive_header(&mut headers, "extra_headers", name, value.expose())
                .map_err(config_error)?;
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
        let http = HttpCore::new(endpoint, headers, api_key, config.retry, config.timeouts)
            .map_err(config_error)?;

        let declared = EmbeddingModel {
            name,
            dim: config.dimensions.unwrap_or(0),
        };
        let known = OnceLock::new();
        if config.dimensions.is_some() {
            let _ = known.set(declared.clone());
        }
        Ok(Self {
            http,
            request_model,
            declared,
            known,
            send_dimensions: config.send_dimensions,
            batch_size: config.batch_size,
            key_setting,
        })
    }

    /// The model with its dimension, asking the server once (one short text) when
    /// the dimension is neither configured nor learned yet. Useful at start-up, to
    /// check the endpoint and to know the vector length before the first real call.
    pub async fn probe(&self) -> Result<EmbeddingModel, EmbedError> {
        if let Some(model) = self.known.get() {
            return Ok(model.clone());
        }
        self.embed(&["dimension probe".to_owned()]).await?;
        Ok(self.model().clone())
    }

    /// The request body for one batch.
    fn body(&self, texts: &[String]) -> Value {
        // OpenAI refuses an empty string in `input`; a space embeds "nothing" just as
        // well and keeps one vector per text.
        let input: Vec<&str> = texts
            .iter()
            .map(|t| if t.is_empty() { " " } else { t.as_str() })
            .collect();
        let mut body = json!({
            "model": self.request_model,
            "input": input,
            // The default, said out loud: some proxies default to base64.
            "encoding_format": "float",
        });
        if self.send_dimensions {
            body["dimensions"] = json!(self.declared.dim);
        }
        body
    }

    /// Status codes as the shared HTTP helper's errors (which decide what is retried).
    fn status_error(
        &self,
        status: StatusCode,
        body: &str,
        retry_after: Option<Duration>,
    ) -> LlmError {
        let detail = body_detail(status, body, &self.http);
        let status = status.as_u16();
        match status {
            401 => LlmError::Unauthorized { key_setting: None },
            403 => LlmError::Forbidden,
            404 => LlmError::NotFound {
                model: self.request_model.clone(),
                detail,
            },
            408 | 409 => LlmError::Server { status },
            // Out of credit: waiting does not help, so it must not be retried.
            429 if body.contains("insufficient_quota") => LlmError::BadRequest { status, detail },
            429 => LlmError::RateLimited { retry_after },
            503 | 529 => LlmError::Overloaded,
            500..=599 => LlmError::Server { status },
            _ => LlmError::BadRequest { status, detail },
        }
    }

    /// The shared helper's error, in an embedder's words.
    fn endpoint_error(&self, error: LlmError) -> EmbedError {
        let text = match error {
            LlmError::Unauthorized { .. } | LlmError::Forbidden => {
                return EmbedError::Unauthorized {
                    key_setting: self.key_setting.clone(),
                };
            }
            LlmError::Unreachable { endpoint, detail } => {
                format!("cannot reach {endpoint}: {detail}")
            }
            LlmError::Timeout { phase, after } => format!("timed out {phase} (after {after:?})"),
            LlmError::RateLimited { retry_after } => match retry_after {
                Some(wait) => format!("rate limited (HTTP 429; asked to wait {wait:?})"),
                None => "rate limited (HTTP 429)".to_owned(),
            },
            LlmError::Overloaded => "overloaded (HTTP 503)".to_owned(),
            LlmError::Server { status } => format!("server error (HTTP {status})"),
            LlmError::NotFound { model, detail } => format!(
                "model {model:?} not found (HTTP 404: {detail}); check the embeddings model \
                 name and base URL"
            ),
            LlmError::BadRequest { status, detail } => {
                format!("request rejected (HTTP {status}): {detail}")
            }
            other => other.to_string(),
        };
        EmbedError::Endpoint(text)
    }

    /// One request: `texts` (at most a batch) in, their vectors out, in order.
    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = self.body(texts);
        let map = |status, text: &str, retry_after| self.status_error(status, text, retry_after);
        let started = Instant::now();
        let response = self
            .http
            .post_json(&body, &self.request_model, &map)
            .await
            .map_err(|e| self.endpoint_error(e))?;
        let idle = self.http.timeouts.idle;
        let bytes = match tokio::time::timeout(idle, read_limited(response, MAX_ANSWER_BODY)).await
        {
            Err(_) => {
                return Err(EmbedError::Endpoint(format!(
                    "timed out reading the answer (after {idle:?})"
                )));
            }
            Ok(Err(e)) => {
                return Err(EmbedError::Endpoint(format!(
                    "the answer broke off: {}",
                    self.http.scrub(&e.without_url().to_string())
                )));
            }
            Ok(Ok(bytes)) => bytes,
        };
        let vectors = self.parse(&bytes, texts.len())?;
        tracing::debug!(
            model = %self.declared.name,
            texts = texts.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded a batch"
        );
        Ok(vectors)
    }

    /// Reads an answer holding `expected` vectors: ordered by `index`, checked, normalised.
    fn parse(&self, bytes: &[u8], expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let malformed = |what: String| EmbedError::Malformed(self.http.scrub(&what));
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            malformed(format!(
                "not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(bytes), 80)
            ))
        })?;
        // Some servers answer an error with status 200.
        if value.get("data").is_none()
            && let Some(error) = value.get("error").filter(|e| !e.is_null())
        {
            return Err(EmbedError::Endpoint(
                self.http.scrub(&crate::sse::error_detail(error)),
            ));
        }
        let answer: Answer = serde_json::from_value(value)
            .map_err(|e| malformed(format!("unexpected JSON shape ({e})")))?;
        if answer.data.len() != expected {
            return Err(malformed(format!(
                "{} vectors for {expected} texts",
                answer.data.len()
            )));
        }

        let indexed = answer.data.iter().filter(|d| d.index.is_some()).count();
        if indexed != 0 && indexed != expected {
            return Err(malformed(
                "some vectors have an index and some do not".to_owned(),
            ));
        }
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in answer.data.into_iter().enumerate() {
            // Without indexes (a lenient server), the array's order is the input order.
            let index = item.index.unwrap_or(position);
            let slot = slots.get_mut(index).ok_or_else(|| {
                malformed(format!(
                    "index {index} is out of range for {expected} texts"
                ))
            })?;
            if slot.is_some() {
                return Err(malformed(format!("index {index} appears twice")));
            }
            *slot = Some(item.embedding.into_floats().map_err(malformed)?);
        }
        let mut vectors = Vec::with_capacity(expected);
        for slot in slots {
            // Every slot is filled: `expected` distinct in-range indexes were placed.
            let Some(mut vector) = slot else {
                return Err(malformed("a vector is missing".to_owned()));
            };
            self.check_dim(vector.len())?;
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(malformed("a vector holds a non-finite number".to_owned()));
            }
            normalize(&mut vector);
            vectors.push(vector);
        }
        Ok(vectors)
    }

    /// Checks a vector's length against the configured or learned one, learning it
    /// from the first answer.
    fn check_dim(&self, dim: usize) -> Result<(), EmbedError> {
        if dim == 0 {
            return Err(EmbedError::Malformed("an empty vector".to_owned()));
        }
        let known = self.known.get_or_init(|| {
            tracing::info!(model = %self.declared.name, dim, "learned the embedding dimension");
            EmbeddingModel {
                name: self.declared.name.clone(),
                dim,
            }
        });
        if known.dim != dim {
            return Err(EmbedError::Malformed(format!(
                "a vector of {dim} numbers where {} were expected",
                known.dim
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    /// The stored name, and the dimension: configured, learned, or 0 before the first
    /// answer when neither.
    fn model(&self) -> &EmbeddingModel {
        self.known.get().unwrap_or(&self.declared)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch_size) {
            vectors.extend(self.request(batch).await?);
        }
        Ok(vectors)
    }
}

/// An embeddings answer; everything but `data` is ignored.
#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Embedding,
}

/// A vector as floats, or as base64 little-endian f32s (`encoding_format: "base64"`,
/// which a proxy may impose).
#[derive(Deserialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

impl Embedding {
    fn into_floats(self) -> Result<Vec<f32>, String> {
        match self {
            Self::Floats(v) => Ok(v),
            Self::Base64(text) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| "an embedding is neither numbers nor base64".to_owned())?;
                if bytes.len() % 4 != 0 {
                    return Err("a base64 embedding is not a whole number of f32s".to_owned());
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect())
            }
        }
    }
}

/// `openai/<model>` for OpenAI, `<host>/<model>` for everything else.
fn storage_name(flavor: OpenAiFlavor, host: Option<&str>, model: &str) -> String {
    let source = match (flavor, host) {
        (OpenAiFlavor::OpenAi, _) | (_, None) => "openai".to_owned(),
        (_, Some(host)) => host.to_ascii_lowercase(),
    };
    format!("{source}/{model}")
}

/// [`EmbedError::Load`] for a bad setting.
fn invalid(field: &str, reason: &str) -> EmbedError {
    EmbedError::Load(format!("invalid embeddings setting {field}: {reason}"))
}

/// The shared helpers' config errors as [`EmbedError::Load`].
fn config_error(error: LlmError) -> EmbedError {
    match error {
        LlmError::InvalidConfig { field, reason } => invalid(&field, &reason),
        other => EmbedError::Load(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedder(config: OpenAiEmbedderConfig) -> OpenAiEmbedder {
        OpenAiEmbedder::new(config).unwrap()
    }

    #[test]
    fn storage_names() {
        let e = embedder(OpenAiEmbedderConfig::openai(
            "sk-x",
            "text-embedding-3-small",
        ));
        assert_eq!(e.model().name, "openai/text-embedding-3-small");
        assert_eq!(e.model().dim, 0);
        let e = embedder(OpenAiEmbedderConfig::new(
            "http://LocalHost:11434/v1/",
            "nomic-embed-text",
        ));
        assert_eq!(e.model().name, "localhost/nomic-embed-text");
        assert_eq!(
            e.http.endpoint.as_str(),
            "http://localhost:11434/v1/embeddings"
        );
        let e = embedder(OpenAiEmbedderConfig {
            storage_name: Some("openai/text-embedding-3-small".into()),
            dimensions: Some(1536),
            ..OpenAiEmbedderConfig::new("https://proxy.example/v1", "text-embedding-3-small")
        });
        assert_eq!(
            e.model(),
            &EmbeddingModel {
                name: "openai/text-embedding-3-small".into(),
                dim: 1536
            }
        );
    }

    #[test]
    fn bad_settings_are_named_and_keys_hidden() {
        for (config, field) in [
            (OpenAiEmbedderConfig::new("not a url", "m"), "base_url"),
            (OpenAiEmbedderConfig::new("http://x/v1", " "), "model"),
            (
                OpenAiEmbedderConfig {
                    batch_size: 0,
                    ..OpenAiEmbedderConfig::new("http://x/v1", "m")
                },
                "batch_size",
            ),
            (
                OpenAiEmbedderConfig {
                    send_dimensions: true,
                    ..OpenAiEmbedderConfig::new("http://x/v1", "m")
                },
                "send_dimensions",
            ),
        ] {
            let text = OpenAiEmbedder::new(config).unwrap_err().to_string();
            assert!(text.contains(field), "{text}");
        }
        let config = OpenAiEmbedderConfig {
            extra_headers: vec![("X-Proxy".into(), "proxy-secret".into())],
            ..OpenAiEmbedderConfig::openai("sk-hidden", "m")
        };
        assert!(!format!("{config:?}").contains("sk-hidden"));
        assert!(!format!("{config:?}").contains("proxy-secret"));
        let e = embedder(config);
        assert!(!format!("{e:?}").contains("sk-hidden"));
    }

    #[test]
    fn answers_are_ordered_checked_and_normalised() {
        let e = embedder(OpenAiEmbedderConfig::new("http://x/v1", "m"));
        let answer = br#"{"data":[{"index":1,"embedding":[0,2]},{"index":0,"embedding":[3,4]}]}"#;
        let v = e.parse(answer, 2).unwrap();
        assert_eq!(v, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
        assert_eq!(e.model().dim, 2);

        let wrong_dim = br#"{"data":[{"index":0,"embedding":[1,2,3]}]}"#;
        assert!(matches!(
            e.parse(wrong_dim, 1),
            Err(EmbedError::Malformed(_))
        ));
        let twice = br#"{"data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}]}"#;
        assert!(matches!(e.parse(twice, 2), Err(EmbedError::Malformed(_))));
        let out_of_range = br#"{"data":[{"index":3,"embedding":[1,2]}]}"#;
        assert!(matches!(
            e.parse(out_of_range, 1),
            Err(EmbedError::Malformed(_))
        ));
        let unindexed = br#"{"data":[{"embedding":[1,0]},{"embedding":[0,1]}]}"#;
        assert_eq!(e.parse(unindexed, 2).unwrap()[1], vec![0.0, 1.0]);
        assert!(matches!(
            e.parse(b"<html>", 1),
            Err(EmbedError::Malformed(_))
        ));
        let error = br#"{"error":{"message":"model is loading"}}"#;
        assert!(matches!(e.parse(error, 1), Err(EmbedError::Endpoint(m)) if m.contains("loading")));

        let bytes: Vec<u8> = [0.0f32, 5.0].iter().flat_map(|f| f.to_le_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let answer = format!(r#"{{"data":[{{"index":0,"embedding":"{b64}"}}]}}"#);
        assert_eq!(e.parse(answer.as_bytes(), 1).unwrap(), vec![vec![0.0, 1.0]]);
    }

    #[test]
    fn empty_texts_are_sent_as_a_space() {
        let e = embedder(OpenAiEmbedderConfig {
            dimensions: Some(256),
            send_dimensions: true,
            ..OpenAiEmbedderConfig::new("http://x/v1", "m")
        });
        let body = e.body(&["".to_owned(), "a".to_owned()]);
        assert_eq!(body["input"], json!([" ", "a"]));
        assert_eq!(body["dimensions"], 256);
        assert_eq!(body["model"], "m");
    }
}

//! Webhook routes: how an adapter of a platform that calls Clara over HTTP
//! (Teams, WhatsApp) receives those calls on the gateway port without depending
//! on the gateway or its web framework.
//!
//! An adapter returns [`WebhookRoute`]s from
//! [`Adapter::webhooks`](crate::port::Adapter::webhooks); the gateway serves each
//! at `/webhooks/{platform}{path}` with a body limit, hands the request over as
//! plain data and sends back the [`WebhookResponse`]. Verifying the platform's
//! signature is the handler's job: it has the raw body and headers.

use async_trait::async_trait;
use std::sync::Arc;

/// The HTTP methods a webhook can be called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookMethod {
    /// `GET` (subscription checks such as WhatsApp's `hub.challenge`).
    Get,
    /// `POST` (events).
    Post,
}

/// A route an adapter serves.
#[derive(Clone)]
pub struct WebhookRoute {
    /// The method it answers.
    pub method: WebhookMethod,
    /// Its path under `/webhooks/{platform}`, starting with `/` (`/events`).
    pub path: String,
    /// What answers it.
    pub handler: Arc<dyn WebhookHandler>,
}

impl std::fmt::Debug for WebhookRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRoute")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// One call of a webhook, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    /// The headers, names in lower case; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as sent (signatures are computed over it).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a webhook call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, when there is a body.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl WebhookResponse {
    /// An empty answer with this status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// A plain-text answer.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Some("text/plain; charset=utf-8".to_owned()),
            body: text.into().into_bytes(),
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some("application/json".to_owned()),
            body: value.to_string().into_bytes(),
        }
    }
}

/// What answers a webhook route.
#[async_trait]
pub trait WebhookHandler: Send + Sync + 'static {
    /// Answers one call. Never panics on bad input: a malformed or unsigned
    /// request is a 4xx answer.
    async fn handle(&self, request: WebhookRequest) -> WebhookResponse;
}

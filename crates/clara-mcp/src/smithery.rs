//! A thin client of Smithery's registry (`https://registry.smithery.ai`):
//! search its servers, read one, and turn a hosted one into an HTTP
//! [`ServerConfig`] for `smithery:owner/name`.
//!
//! The API (Smithery's "Registry API" docs): every request carries
//! `Authorization: Bearer <SMITHERY_API_KEY>`;
//! - `GET /servers?q=…&page=1&pageSize=10` → `{"servers": [{"qualifiedName",
//!   "displayName", "description", "homepage", "useCount", …}], "pagination": {…}}`;
//! - `GET /servers/{qualifiedName}` → `{"qualifiedName", "displayName",
//!   "remote", "deploymentUrl", "connections": [{"type": "http",
//!   "deploymentUrl" (older answers: "url"), "configSchema"} | {"type":
//!   "stdio", …}], "tools": […]}`.
//!
//! Only hosted (HTTP) servers are installed from Smithery: a stdio bundle
//! would be code fetched and run outside npm's and PyPI's pinning. The key
//! goes in a header and never into an error or a log line.

use crate::config::McpSettings;
use clara_core::Secret;
use serde::Deserialize;
use std::time::Duration;

/// Smithery's registry, when `smithery_url` is not set.
pub const DEFAULT_URL: &str = "https://registry.smithery.ai";

/// Why Smithery's registry gave no answer: one sentence, without the key.
#[derive(Debug, thiserror::Error)]
pub enum SmitheryError {
    /// No key is configured.
    #[error("Smithery's registry needs an API key: set SMITHERY_API_KEY")]
    NoKey,
    /// The registry refused the key.
    #[error("Smithery's registry refused the API key (HTTP {0})")]
    Refused(u16),
    /// No server has this name.
    #[error("Smithery has no server named {0:?}")]
    NotFound(String),
    /// The server is not hosted over HTTP.
    #[error(
        "Smithery's server {0:?} has no hosted (HTTP) deployment, so Clara cannot add it from Smithery; install it from npm or PyPI instead"
    )]
    NotHosted(String),
    /// The registry could not be reached or answered something else.
    #[error("Smithery's registry: {0}")]
    Http(String),
}

/// One server in a search's answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SmitheryServer {
    /// Its unique name (`owner/name`), for `smithery:…`.
    pub qualified_name: String,
    /// Its name for people.
    #[serde(default)]
    pub display_name: Option<String>,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// How often it was used.
    #[serde(default)]
    pub use_count: Option<u64>,
}

/// One way to connect to a server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SmitheryConnection {
    /// `http` or `stdio`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The endpoint of an `http` connection.
    #[serde(default)]
    pub deployment_url: Option<String>,
    /// The same, as older answers name it.
    #[serde(default)]
    pub url: Option<String>,
}

/// A tool the registry lists for a server.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SmitheryTool {
    /// Its name.
    pub name: String,
}

/// One server's details.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SmitheryDetails {
    /// Its unique name (`owner/name`).
    pub qualified_name: String,
    /// Its name for people.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether Smithery hosts it.
    #[serde(default)]
    pub remote: Option<bool>,
    /// Its hosted endpoint.
    #[serde(default)]
    pub deployment_url: Option<String>,
    /// The ways to connect to it.
    #[serde(default)]
    pub connections: Vec<SmitheryConnection>,
    /// The tools it lists.
    #[serde(default)]
    pub tools: Vec<SmitheryTool>,
}

impl SmitheryDetails {
    /// The endpoint to connect to: an `http` connection's, else the server's
    /// own `deploymentUrl`.
    pub fn http_endpoint(&self) -> Option<&str> {
        self.connections
            .iter()
            .filter(|c| c.kind == "http")
            .find_map(|c| c.deployment_url.as_deref().or(c.url.as_deref()))
            .or(self.deployment_url.as_deref())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }
}

#[derive(Deserialize)]
struct SearchAnswer {
    #[serde(default)]
    servers: Vec<SmitheryServer>,
}

/// What [`SmitheryClient::resolve`] found: the pieces of a server file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The endpoint.
    pub url: Option<String>,
    /// `smithery:owner/name`.
    pub source: Option<String>,
}

/// A client of Smithery's registry.
#[derive(Clone)]
pub struct SmitheryClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for SmitheryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmitheryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl SmitheryClient {
    /// The registry `settings` name (`smithery_url`, else [`DEFAULT_URL`])
    /// with its key (`smithery_api_key`), which is required.
    pub fn new(settings: &McpSettings) -> Result<Self, SmitheryError> {
        let key = Secret::given(settings.smithery_api_key.as_ref())
            .ok_or(SmitheryError::NoKey)?
            .clone();
        let base = settings.smithery_url.as_deref().unwrap_or(DEFAULT_URL);
        Self::with(base, key)
    }

    /// The registry at `base` with `key`.
    pub fn with(base: &str, key: Secret) -> Result<Self, SmitheryError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SmitheryError::Http(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// Servers matching `query` (Smithery's semantic search, with its
    /// `owner:` / `is:deployed` filters), at most `limit`.
    pub async fn search(
        &self,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SmitheryServer>, SmitheryError> {
        // reqwest's `query` needs a feature the workspace leaves off.
        let url = format!(
            "{}/servers?q={}&page=1&pageSize={}",
            self.base,
            escape_segment(query),
            limit.clamp(1, 100)
        );
        let answer: SearchAnswer = self.send(self.http.get(url), query).await?;
        Ok(answer.servers)
    }

    /// One server's details.
    pub async fn server(&self, qualified_name: &str) -> Result<SmitheryDetails, SmitheryError> {
        // Each segment escaped, the `/` of `owner/name` kept.
        let path: Vec<String> = qualified_name.split('/').map(escape_segment).collect();
        let url = format!("{}/servers/{}", self.base, path.join("/"));
        self.send(self.http.get(url), qualified_name).await
    }

    /// `smithery:qualified_name` as a server's endpoint and recorded source.
    pub async fn resolve(&self, qualified_name: &str) -> Result<Resolved, SmitheryError> {
        let details = self.server(qualified_name).await?;
        let url = details
            .http_endpoint()
            .ok_or_else(|| SmitheryError::NotHosted(qualified_name.to_owned()))?;
        Ok(Resolved {
            url: Some(url.to_owned()),
            source: Some(format!("smithery:{qualified_name}")),
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, SmitheryError> {
        let response = request
            .bearer_auth(self.key.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| SmitheryError::Http(describe(&e)))?;
        let status = response.status();
        match status.as_u16() {
            401 | 403 => return Err(SmitheryError::Refused(status.as_u16())),
            404 => return Err(SmitheryError::NotFound(what.to_owned())),
            _ if !status.is_success() => {
                return Err(SmitheryError::Http(format!("it answered HTTP {status}")));
            }
            _ => {}
        }
        response
            .json::<T>()
            .await
            .map_err(|e| SmitheryError::Http(format!("unexpected answer: {}", describe(&e))))
    }
}

/// A reqwest error without its URL's query (which holds the search words,
/// not the key, but stays out of sentences anyway) and with its cause.
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "it did not answer within 30 s".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else if error.is_decode() {
        "the answer is not the JSON expected".to_owned()
    } else {
        "request failed".to_owned()
    };
    if let Some(cause) = error.source() {
        text.push_str(&format!(" ({cause})"));
    }
    text
}

/// Percent-escapes one path segment or query value (RFC 3986 unreserved
/// characters and `@` stay as they are).
fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_path_segment_cannot_hold() {
        assert_eq!(escape_segment("@smithery"), "@smithery");
        assert_eq!(escape_segment("a b?c"), "a%20b%3Fc");
    }

    #[test]
    fn the_http_connection_wins_over_the_server_url() {
        let details: SmitheryDetails = serde_json::from_value(serde_json::json!({
            "qualifiedName": "acme/weather",
            "deploymentUrl": "https://acme.example/top",
            "connections": [
                {"type": "stdio", "bundleUrl": "https://x/b.mcpb", "runtime": "node"},
                {"type": "http", "deploymentUrl": "https://server.smithery.ai/acme/weather/mcp", "configSchema": {}}
            ]
        }))
        .unwrap();
        assert_eq!(
            details.http_endpoint(),
            Some("https://server.smithery.ai/acme/weather/mcp")
        );
        let stdio_only: SmitheryDetails = serde_json::from_value(serde_json::json!({
            "qualifiedName": "acme/local",
            "connections": [{"type": "stdio", "runtime": "node"}]
        }))
        .unwrap();
        assert_eq!(stdio_only.http_endpoint(), None);
    }
}

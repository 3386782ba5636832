//! Web search through one configured service, its answer normalised to a list
//! of results and rendered as compact text for the model.
//!
//! Each service has its own thin client ([`tavily`], [`brave`], [`searxng`]);
//! [`SearchClient`] picks the one configured and turns every failure into one
//! [`SearchError`] sentence that never contains the API key.

pub mod brave;
pub mod render;
pub mod searxng;
pub mod tavily;

pub use render::render;

use clara_core::Secret;
use std::time::Duration;

/// One search result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchHit {
    /// The page's title.
    pub title: String,
    /// Its address.
    pub url: String,
    /// What the service quotes from it.
    pub snippet: String,
}

/// What a search found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchResults {
    /// A direct answer, when the service gives one (Tavily's `answer`,
    /// SearXNG's answers and infoboxes).
    pub answer: Option<String>,
    /// The results, best first.
    pub hits: Vec<SearchHit>,
}

/// The service to search with, and how to reach it.
#[derive(Clone, Debug)]
pub enum Backend {
    /// Tavily: `POST {base}/search`, bearer key.
    Tavily {
        /// `TAVILY_API_KEY`.
        key: Secret,
        /// `https://api.tavily.com`, or a test's fake.
        base: String,
    },
    /// Brave Search: `GET {base}/res/v1/web/search`, `X-Subscription-Token`.
    Brave {
        /// `BRAVE_API_KEY`.
        key: Secret,
        /// `https://api.search.brave.com`, or a test's fake.
        base: String,
    },
    /// A SearXNG instance: `GET {url}/search?format=json`.
    Searxng {
        /// Its address (`SEARXNG_URL`).
        url: String,
    },
}

impl Backend {
    /// The service's name, for the model and for errors.
    pub fn service(&self) -> &'static str {
        match self {
            Backend::Tavily { .. } => "Tavily",
            Backend::Brave { .. } => "Brave Search",
            Backend::Searxng { .. } => "SearXNG",
        }
    }
}

/// Why a search gave no results: one sentence, never with the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// The service refused the key.
    #[error("{service} refused the API key (HTTP {status}); check {env}")]
    Unauthorized {
        /// The service.
        service: &'static str,
        /// 401 or 403.
        status: u16,
        /// The variable that holds the key.
        env: &'static str,
    },
    /// Too many requests for now.
    #[error("{service} is rate-limiting Clara (HTTP 429); try again in a minute")]
    RateLimited {
        /// The service.
        service: &'static str,
    },
    /// The plan's quota or credit is used up.
    #[error("{service}'s usage limit is reached (HTTP {status}); the operator must raise it")]
    Quota {
        /// The service.
        service: &'static str,
        /// 402, 432 or 433.
        status: u16,
    },
    /// SearXNG answers 403 when its JSON format is off.
    #[error(
        "SearXNG refused the JSON format (HTTP 403); enable `json` under `search.formats` in its settings.yml"
    )]
    JsonDisabled,
    /// Another error status.
    #[error("{service} answered HTTP {status}")]
    Status {
        /// The service.
        service: &'static str,
        /// The status.
        status: u16,
    },
    /// The body is not the JSON the service documents.
    #[error("{service} answered with something that is not a search result")]
    Malformed {
        /// The service.
        service: &'static str,
    },
    /// No answer in time.
    #[error("{service} did not answer within {}", crate::seconds(*secs))]
    Timeout {
        /// The service.
        service: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The connection failed.
    #[error("{service} could not be reached")]
    Unreachable {
        /// The service.
        service: &'static str,
    },
}

/// A search client for one [`Backend`].
#[derive(Clone, Debug)]
pub struct SearchClient {
    backend: Backend,
    http: reqwest::Client,
    timeout: Duration,
}

impl SearchClient {
    /// A client for `backend`, each search bounded by `timeout`. Fails only
    /// when the HTTP client cannot be built (no TLS roots).
    pub fn new(backend: Backend, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(crate::USER_AGENT)
            .build()?;
        Ok(Self {
            backend,
            http,
            timeout,
        })
    }

    /// The service's name.
    pub fn service(&self) -> &'static str {
        self.backend.service()
    }

    /// Searches for `query`, at most `max_results` results.
    pub async fn search(
        &self,
        query: &str,
        max_results: usize,
    ) -> Result<SearchResults, SearchError> {
        let service = self.service();
        let request = match &self.backend {
            Backend::Tavily { key, base } => {
                tavily::request(&self.http, base, key, query, max_results)
            }
            Backend::Brave { key, base } => {
                brave::request(&self.http, base, key, query, max_results)
            }
            Backend::Searxng { url } => searxng::request(&self.http, url, query),
        };
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            // Read for its error code only; never echoed.
            let body = response.text().await.unwrap_or_default();
            return Err(self.status_error(status, &body));
        }
        let body = response.text().await.map_err(|e| self.transport(&e))?;
        let parsed = match &self.backend {
            Backend::Tavily { .. } => tavily::parse(&body),
            Backend::Brave { .. } => brave::parse(&body),
            Backend::Searxng { .. } => searxng::parse(&body),
        };
        let mut results = parsed.ok_or(SearchError::Malformed { service })?;
        results.hits.truncate(max_results);
        Ok(results)
    }

    fn transport(&self, error: &reqwest::Error) -> SearchError {
        let service = self.service();
        if error.is_timeout() {
            SearchError::Timeout {
                service,
                secs: self.timeout.as_secs(),
            }
        } else if error.is_decode() || error.is_body() {
            SearchError::Malformed { service }
        } else {
            SearchError::Unreachable { service }
        }
    }

    fn status_error(&self, status: u16, body: &str) -> SearchError {
        let service = self.service();
        let env = match self.backend {
            Backend::Tavily { .. } => "TAVILY_API_KEY",
            Backend::Brave { .. } => "BRAVE_API_KEY",
            Backend::Searxng { .. } => "SEARXNG_URL",
        };
        match (status, &self.backend) {
            (403, Backend::Searxng { .. }) => SearchError::JsonDisabled,
            // Brave answers a wrong key with 422 and this code, not 401.
            (422, Backend::Brave { .. }) if body.contains("SUBSCRIPTION_TOKEN_INVALID") => {
                SearchError::Unauthorized {
                    service,
                    status,
                    env,
                }
            }
            (401 | 403, _) => SearchError::Unauthorized {
                service,
                status,
                env,
            },
            (429, _) => SearchError::RateLimited { service },
            (402 | 432 | 433, _) => SearchError::Quota { service, status },
            _ => SearchError::Status { service, status },
        }
    }
}

/// `text` with runs of whitespace made one space, cut to `max` characters
/// with an ellipsis.
pub fn compact(text: &str, max: usize) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= max {
        return words;
    }
    let cut: String = words.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_service_and_never_the_key() {
        let client = SearchClient::new(
            Backend::Brave {
                key: Secret::new("BSA-very-secret"),
                base: "http://127.0.0.1:9".into(),
            },
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(
            client.status_error(401, "").to_string(),
            "Brave Search refused the API key (HTTP 401); check BRAVE_API_KEY"
        );
        assert_eq!(
            client.status_error(429, "").to_string(),
            "Brave Search is rate-limiting Clara (HTTP 429); try again in a minute"
        );
        assert_eq!(
            client.status_error(502, "").to_string(),
            "Brave Search answered HTTP 502"
        );
        assert!(!format!("{client:?}").contains("very-secret"));
        let searxng = SearchClient::new(
            Backend::Searxng {
                url: "http://127.0.0.1:9".into(),
            },
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(searxng.status_error(403, ""), SearchError::JsonDisabled);
        let brave_422 = r#"{"type":"ErrorResponse","error":{"code":"SUBSCRIPTION_TOKEN_INVALID","status":422}}"#;
        assert!(matches!(
            client.status_error(422, brave_422),
            SearchError::Unauthorized { status: 422, .. }
        ));
        assert!(matches!(
            client.status_error(422, r#"{"error":{"code":"VALIDATION"}}"#),
            SearchError::Status { status: 422, .. }
        ));
    }

    #[test]
    fn compact_collapses_and_cuts() {
        assert_eq!(compact("  a \n b\tc ", 10), "a b c");
        assert_eq!(compact("abcdefghij", 5), "abcd…");
        assert_eq!(compact("ééééé", 5), "ééééé");
    }
}

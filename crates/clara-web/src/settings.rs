//! `[search]` in `clara.toml`, and what it turns into: the search backend (if
//! any) and the fetch limits, every value checked.

use crate::allow::AllowList;
use crate::fetch::FetchLimits;
use crate::search::{Backend, brave, tavily};
use clara_core::Secret;
use clara_core::component::{ConfigError, TextList};
use serde::Deserialize;
use std::time::Duration;

/// A search service, for `search = "…"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchService {
    /// Tavily (`TAVILY_API_KEY`).
    Tavily,
    /// Brave Search (`BRAVE_API_KEY`).
    Brave,
    /// A SearXNG instance (`SEARXNG_URL`).
    Searxng,
}

impl SearchService {
    /// Its name as `search = "…"` writes it.
    pub fn name(self) -> &'static str {
        match self {
            SearchService::Tavily => "tavily",
            SearchService::Brave => "brave",
            SearchService::Searxng => "searxng",
        }
    }
}

/// `[search]`. Every key is optional: with none, Clara can fetch pages but not
/// search.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// Which service `web__search` uses when several are configured. Default:
    /// the first configured of Tavily, Brave, SearXNG.
    pub search: Option<SearchService>,
    /// Tavily's API key. Environment: `TAVILY_API_KEY`.
    pub tavily_api_key: Option<Secret>,
    /// Tavily's address (default `https://api.tavily.com`; tests point it at a fake).
    pub tavily_base_url: Option<String>,
    /// Brave Search's API key. Environment: `BRAVE_API_KEY`.
    pub brave_api_key: Option<Secret>,
    /// Brave Search's address (default `https://api.search.brave.com`).
    pub brave_base_url: Option<String>,
    /// A SearXNG instance with its JSON format on. Environment: `SEARXNG_URL`.
    pub searxng_url: Option<String>,
    /// Results a search returns when the model does not say (default 5, at most 10).
    pub search_max_results: Option<usize>,
    /// Seconds a search may take (default 15).
    pub search_timeout_secs: Option<u64>,
    /// Whether `web__fetch` is offered (default true).
    pub fetch: Option<bool>,
    /// Bytes of a page downloaded at most (default 2 MiB).
    pub fetch_max_bytes: Option<usize>,
    /// Seconds a fetch may take, redirects and download included (default 20).
    pub fetch_timeout_secs: Option<u64>,
    /// Characters of a page's text returned per call (default 6000; the
    /// model asks for the rest with `offset`). Keep it under `[tools]
    /// max_result_chars`.
    pub fetch_max_chars: Option<usize>,
    /// Redirects a fetch follows at most (default 5).
    pub max_redirects: Option<usize>,
    /// Private addresses or hosts a fetch may reach all the same: `10.0.0.0/8`,
    /// `192.168.1.20`, `127.0.0.1:8080`, `[::1]:8080`, `wiki.lan`,
    /// `wiki.lan:8080`. Empty by default.
    pub allow_private: TextList,
}

/// The most results one search may return.
pub const MAX_RESULTS: usize = 10;

/// `[search]`, checked and with defaults filled in.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The search backend, when one is configured.
    pub search: Option<Backend>,
    /// Results per search by default.
    pub search_max_results: usize,
    /// A search's time limit.
    pub search_timeout: Duration,
    /// The fetch limits, when fetching is on.
    pub fetch: Option<FetchLimits>,
    /// Characters of text per fetch call.
    pub fetch_max_chars: usize,
    /// The private-address exceptions.
    pub allow_private: AllowList,
}

fn http_url(key: &str, env: Option<&str>, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let ok = reqwest::Url::parse(value)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if ok {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        let env = env.map(|e| format!(" ({e})")).unwrap_or_default();
        Err(ConfigError::new(format!(
            "[search] {key}{env} must be an http:// or https:// URL"
        )))
    }
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl WebSettings {
    /// Checks every value: an unusable one is an error naming its key.
    pub fn config(&self) -> Result<WebConfig, ConfigError> {
        let tavily = Secret::given(self.tavily_api_key.as_ref())
            .map(|key| -> Result<Backend, ConfigError> {
                Ok(Backend::Tavily {
                    key: key.clone(),
                    base: http_url(
                        "tavily_base_url",
                        None,
                        given(self.tavily_base_url.as_deref()).unwrap_or(tavily::DEFAULT_BASE),
                    )?,
                })
            })
            .transpose()?;
        let brave = Secret::given(self.brave_api_key.as_ref())
            .map(|key| -> Result<Backend, ConfigError> {
                Ok(Backend::Brave {
                    key: key.clone(),
                    base: http_url(
                        "brave_base_url",
                        None,
                        given(self.brave_base_url.as_deref()).unwrap_or(brave::DEFAULT_BASE),
                    )?,
                })
            })
            .transpose()?;
        let searxng = given(self.searxng_url.as_deref())
            .map(|url| {
                http_url("searxng_url", Some("SEARXNG_URL"), url)
                    .map(|url| Backend::Searxng { url })
            })
            .transpose()?;
        let search = match self.search {
            None => tavily.or(brave).or(searxng),
            Some(choice) => {
                let (backend, needs) = match choice {
                    SearchService::Tavily => (tavily, "tavily_api_key (TAVILY_API_KEY)"),
                    SearchService::Brave => (brave, "brave_api_key (BRAVE_API_KEY)"),
                    SearchService::Searxng => (searxng, "searxng_url (SEARXNG_URL)"),
                };
                Some(backend.ok_or_else(|| {
                    ConfigError::new(format!(
                        "[search] search = \"{}\" needs {needs}",
                        choice.name()
                    ))
                })?)
            }
        };
        let search_max_results = self.search_max_results.unwrap_or(5);
        if !(1..=MAX_RESULTS).contains(&search_max_results) {
            return Err(ConfigError::new(format!(
                "[search] search_max_results must be between 1 and {MAX_RESULTS}"
            )));
        }
        let positive = |key: &str, value: Option<u64>, default: u64| match value {
            Some(0) => Err(ConfigError::new(format!(
                "[search] {key} must be at least 1"
            ))),
            other => Ok(other.unwrap_or(default)),
        };
        let search_timeout = Duration::from_secs(positive(
            "search_timeout_secs",
            self.search_timeout_secs,
            15,
        )?);
        let defaults = FetchLimits::default();
        let max_bytes = positive(
            "fetch_max_bytes",
            self.fetch_max_bytes.map(|b| b as u64),
            defaults.max_bytes as u64,
        )? as usize;
        let timeout = Duration::from_secs(positive(
            "fetch_timeout_secs",
            self.fetch_timeout_secs,
            defaults.timeout.as_secs(),
        )?);
        let fetch_max_chars = positive(
            "fetch_max_chars",
            self.fetch_max_chars.map(|c| c as u64),
            6_000,
        )? as usize;
        let fetch = self.fetch.unwrap_or(true).then_some(FetchLimits {
            max_bytes,
            timeout,
            max_redirects: self.max_redirects.unwrap_or(defaults.max_redirects),
        });
        let allow_private = AllowList::parse(self.allow_private.items()).map_err(|entry| {
            ConfigError::new(format!(
                "[search] allow_private: {entry:?} is not an address, a network (10.0.0.0/8), address:port or host[:port]"
            ))
        })?;
        Ok(WebConfig {
            search,
            search_max_results,
            search_timeout,
            fetch,
            fetch_max_chars,
            allow_private,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> WebSettings {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn nothing_configured_means_fetch_only() {
        let config = WebSettings::default().config().unwrap();
        assert!(config.search.is_none());
        assert_eq!(config.fetch, Some(FetchLimits::default()));
        assert_eq!(config.fetch_max_chars, 6_000);
        assert!(config.allow_private.is_empty());
    }

    #[test]
    fn the_first_configured_backend_wins_unless_one_is_chosen() {
        let both = settings(
            r#"brave_api_key = "b"
               searxng_url = "http://searx.lan:8080/"
               tavily_api_key = "  ""#,
        );
        assert!(matches!(
            both.config().unwrap().search,
            Some(Backend::Brave { .. })
        ));
        let chosen = settings(
            r#"brave_api_key = "b"
               searxng_url = "http://searx.lan:8080/"
               search = "searxng""#,
        );
        match chosen.config().unwrap().search {
            Some(Backend::Searxng { url }) => assert_eq!(url, "http://searx.lan:8080"),
            other => panic!("{other:?}"),
        }
        let tavily = settings(
            r#"tavily_api_key = "t"
                                  brave_api_key = "b""#,
        );
        match tavily.config().unwrap().search {
            Some(Backend::Tavily { base, .. }) => assert_eq!(base, "https://api.tavily.com"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_values_are_named() {
        let err = |toml: &str| settings(toml).config().unwrap_err().to_string();
        assert_eq!(
            err(r#"search = "tavily""#),
            "[search] search = \"tavily\" needs tavily_api_key (TAVILY_API_KEY)"
        );
        assert_eq!(
            err(r#"searxng_url = "searx.lan""#),
            "[search] searxng_url (SEARXNG_URL) must be an http:// or https:// URL"
        );
        assert!(err("fetch_timeout_secs = 0").contains("fetch_timeout_secs"));
        assert!(err("search_max_results = 50").contains("search_max_results"));
        assert!(err(r#"allow_private = ["10.0.0.0/8", "http://x"]"#).contains("\"http://x\""));
        assert!(toml::from_str::<WebSettings>("serach = 1").is_err());
        assert!(toml::from_str::<WebSettings>(r#"search = "google""#).is_err());
    }

    #[test]
    fn fetch_can_be_turned_off_and_limits_set() {
        let config = settings(
            r#"fetch = false
               allow_private = "127.0.0.1:8080, 10.0.0.0/8""#,
        )
        .config()
        .unwrap();
        assert_eq!(config.fetch, None);
        assert!(
            config
                .allow_private
                .allows_address("10.1.1.1".parse().unwrap(), 80)
        );
        let limits = settings("fetch_max_bytes = 1000\nfetch_timeout_secs = 3\nmax_redirects = 0")
            .config()
            .unwrap()
            .fetch
            .unwrap();
        assert_eq!(
            limits,
            FetchLimits {
                max_bytes: 1000,
                timeout: Duration::from_secs(3),
                max_redirects: 0
            }
        );
    }

    #[test]
    fn keys_never_show_in_debug() {
        let s = settings(r#"tavily_api_key = "tvly-secret-1""#);
        assert!(!format!("{s:?}").contains("secret-1"));
        assert!(!format!("{:?}", s.config().unwrap()).contains("secret-1"));
    }
}

//! Clara's web tools: searching the web and reading a page as text.
//!
//! [`Web`] is the [`ToolIntegration`] for section `[search]`; it gives one
//! provider, server `web`, with:
//! - `web__search` — when a search service is configured: Tavily
//!   (`TAVILY_API_KEY`), Brave Search (`BRAVE_API_KEY`) or a SearXNG instance
//!   (`SEARXNG_URL`). With several, the first of that order, or the one
//!   `search = "tavily" | "brave" | "searxng"` names. Results come back as a
//!   numbered list (title, address, snippet) after the service's direct
//!   answer, if any.
//! - `web__fetch` — always, unless `fetch = false`: a page's readable text
//!   (title, headings, paragraphs, lists, links as `text (url)`; no scripts,
//!   menus or footers), plain text and JSON as served; other types (images,
//!   PDFs) and compressed bodies are refused by name. Long text comes in windows of
//!   `fetch_max_chars`, the model reading on with `offset`.
//!
//! Both only read ([`Effect::Read`](clara_tools::Effect::Read)) and their
//! output is untrusted: the registry wraps it as data, and a reply that read
//! it needs approval to send anything afterwards.
//!
//! Settings ([`WebSettings`]): `search`, `tavily_api_key`, `tavily_base_url`,
//! `brave_api_key`, `brave_base_url`, `searxng_url`, `search_max_results`
//! (5), `search_timeout_secs` (15), `fetch` (true), `fetch_max_bytes`
//! (2 MiB), `fetch_timeout_secs` (20), `fetch_max_chars` (6000),
//! `max_redirects` (5), `allow_private` (none).
//!
//! Fetching never reaches anything but the public internet (SSRF rules):
//! - only `http` and `https`; no user name or password in the URL;
//! - the host's address — an IP literal as written, a name as every address
//!   it resolves to, checked when reqwest connects, so DNS rebinding cannot
//!   slip past — must not be loopback, private (10/8, 172.16/12,
//!   192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared
//!   (100.64/10), unspecified, multicast, broadcast, reserved, benchmarking
//!   or documentation, nor an IPv6 form of those (IPv4-mapped, NAT64, 6to4);
//!   one bad address refuses the name;
//! - redirects are followed by Clara, not reqwest, each hop checked again,
//!   at most `max_redirects`;
//! - no proxy, even one from the environment (it would resolve names itself);
//! - at most `fetch_max_bytes` are downloaded and the whole fetch takes at
//!   most `fetch_timeout_secs`;
//! - `allow_private` lists the operator's exceptions (`10.0.0.0/8`,
//!   `127.0.0.1:8080`, `wiki.lan:8080`, …); nothing is allowed by default.
//!
//! Errors are one sentence each and never contain an API key.

pub mod address;
pub mod allow;
pub mod content;
pub mod fetch;
pub mod readable;
pub mod resolve;
pub mod search;
pub mod settings;
pub mod target;
pub mod tools;

pub use allow::AllowList;
pub use fetch::{FetchError, FetchLimits, Fetcher, Page};
pub use resolve::{StaticResolver, SystemResolver};
pub use search::{Backend, SearchClient, SearchError, SearchHit, SearchResults};
pub use settings::{SearchService, WebConfig, WebSettings};
pub use tools::{FetchTool, SearchTool};

use clara_core::component::{Component, ConfigError, EnvKey};
use clara_tools::{StaticTools, Tool, ToolIntegration, ToolProvider};
use reqwest::dns::Resolve;
use std::sync::Arc;

/// The server name of the web tools: `web__search`, `web__fetch`.
pub const SERVER: &str = "web";

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("Clara/", env!("CARGO_PKG_VERSION"), " (web tools)");

/// `n` seconds, in words.
pub(crate) fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
}

/// The web integration: section `[search]` (`[web]` is the web page's), tools
/// `web__search` and `web__fetch`.
pub struct Web;

impl Component for Web {
    const NAME: &'static str = "search";
    const ENV: &'static [EnvKey] = &[
        ("TAVILY_API_KEY", "tavily_api_key"),
        ("BRAVE_API_KEY", "brave_api_key"),
        ("SEARXNG_URL", "searxng_url"),
    ];
    type Settings = WebSettings;
}

impl Web {
    /// The tools `settings` enable, fetching through the system's resolver.
    pub fn tools(settings: &WebSettings) -> Result<Vec<Arc<dyn Tool>>, ConfigError> {
        Self::tools_with_resolver(settings, Arc::new(SystemResolver))
    }

    /// The same, with `resolver` answering the fetch tool's DNS lookups (its
    /// answers are judged like the system's): tests, or pinned hosts.
    pub fn tools_with_resolver(
        settings: &WebSettings,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Vec<Arc<dyn Tool>>, ConfigError> {
        let config = settings.config()?;
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        if let Some(backend) = config.search {
            let service = backend.service();
            let client = SearchClient::new(backend, config.search_timeout).map_err(|_| {
                ConfigError::new(format!(
                    "[search] the HTTP client for {service} could not be set up"
                ))
            })?;
            tools.push(Arc::new(SearchTool::new(client, config.search_max_results)));
        }
        if let Some(limits) = config.fetch {
            let fetcher = Fetcher::with_resolver(limits, config.allow_private, resolver);
            tools.push(Arc::new(FetchTool::new(fetcher, config.fetch_max_chars)));
        }
        Ok(tools)
    }
}

impl ToolIntegration for Web {
    /// One provider (server `web`) with the enabled tools, or none when
    /// neither search nor fetch is on. No network is used here.
    fn providers(settings: WebSettings) -> Result<Vec<Arc<dyn ToolProvider>>, ConfigError> {
        let tools = Web::tools(&settings)?;
        if tools.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Arc::new(StaticTools::new(SERVER, tools))])
    }
}

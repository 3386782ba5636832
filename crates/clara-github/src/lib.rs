//! GitHub as Clara tools.
//!
//! [`GitHub`] is a [`ToolIntegration`] with the `[github]` section of
//! `clara.toml`. With a token it gives one provider, server `github`, whose
//! tools the model calls as `github__{tool}`:
//!
//! | tool | what it does | effect |
//! |---|---|---|
//! | `search_repositories` | repository search, GitHub search syntax | read |
//! | `search_issues` | issue and pull request search (`type`: issue, pr, any) | read |
//! | `get_file` | a file's text (base64 decoded, up to 1 MB, paged by `start_line`), or a directory's entries | read |
//! | `get_readme` | the repository's README | read |
//! | `list_issues` | a repository's issues by state and labels | read |
//! | `get_issue` | one issue with its latest comments | read |
//! | `list_pull_requests` | a repository's pull requests by state | read |
//! | `get_pull_request` | one pull request with its changed files | read |
//! | `list_notifications` | the owner's notifications (does not mark them read) | read |
//! | `create_issue` | opens an issue (title, body, labels) | **send**: asks the owner |
//! | `add_comment` | comments on an issue or pull request | **send**: asks the owner |
//!
//! Reading tools return text others wrote, so they are marked
//! `untrusted_output` and the registry hands their results to the model as
//! data; the two sending tools are [`Effect::Send`](clara_tools::Effect::Send),
//! which the approval policy asks the owner about (and always does once a
//! reply has read untrusted content).
//!
//! Settings (`[github]`, or the environment):
//!
//! | key | environment | meaning |
//! |---|---|---|
//! | `token` | `GITHUB_TOKEN` | a personal access token or app token; no token, no tools |
//! | `api_url` | `GITHUB_API_URL` | the REST root, default `https://api.github.com` (`https://HOST/api/v3` for Enterprise Server) |
//! | `timeout_secs` | `CLARA_GITHUB__TIMEOUT_SECS` | seconds one request may take, 1–120, default 20 |
//!
//! The client is a thin one on reqwest (`api.rs`), speaking REST API version
//! 2022-11-28. The token travels only in the `Authorization` header, marked
//! sensitive; it appears in no error, log line or `Debug` output. Names the
//! model gives (owner, repository, path, ref) are checked ([`names`]) and
//! every path segment is percent-encoded, so a name cannot reach another
//! endpoint. Failures are one sentence each ([`GitHubError`]): a bad token,
//! a rate limit and when it resets, what was not found, GitHub's validation
//! message, an unreadable answer, a timeout.

mod api;
mod args;
mod content;
pub mod error;
pub mod names;
mod operations;
mod render;
pub mod settings;
pub mod tools;
mod wire;

pub use error::GitHubError;
pub use settings::{DEFAULT_API_URL, GitHubConfig, GitHubSettings};
pub use tools::{GitHubTool, ToolKind};

use clara_core::component::{Component, ConfigError, EnvKey};
use clara_tools::{StaticTools, ToolIntegration, ToolProvider};
use std::sync::Arc;

/// The server the GitHub tools are offered under (`github__search_issues`).
pub const SERVER: &str = "github";

/// The GitHub integration: section `[github]`.
pub struct GitHub;

impl Component for GitHub {
    const NAME: &'static str = "github";
    const ENV: &'static [EnvKey] = &[("GITHUB_TOKEN", "token"), ("GITHUB_API_URL", "api_url")];
    type Settings = GitHubSettings;
}

impl GitHub {
    /// The provider of every GitHub tool for `config`, under [`SERVER`].
    /// Makes no request.
    pub fn provider(config: &GitHubConfig) -> Result<StaticTools, ConfigError> {
        let api = Arc::new(api::GitHubApi::new(config)?);
        Ok(StaticTools::new(SERVER, tools::all(api)))
    }
}

impl ToolIntegration for GitHub {
    /// None without a token; otherwise one provider, server `github`, with
    /// all eleven tools. Checks the settings; makes no network call.
    fn providers(settings: GitHubSettings) -> Result<Vec<Arc<dyn ToolProvider>>, ConfigError> {
        match settings.config()? {
            None => Ok(Vec::new()),
            Some(config) => Ok(vec![Arc::new(Self::provider(&config)?)]),
        }
    }
}

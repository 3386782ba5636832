//! A thin client for the dozen GitHub REST endpoints the tools use.
//!
//! Every request carries `Authorization: Bearer TOKEN` (a header marked
//! sensitive, so it never shows in `Debug`), `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version: 2022-11-28` and a
//! `User-Agent` (GitHub refuses requests without one). URLs are built from
//! the configured root segment by segment, each percent-encoded, so a name
//! can never add a path segment or a query. Answers are read up to a size
//! limit, and failures become [`GitHubError`]s.

use crate::error::GitHubError;
use crate::names::{RepoPath, RepoRef};
use crate::settings::{GitHubConfig, parse_api_url};
use crate::wire::{
    Comment, Content, Contents, Issue, Notification, PullFile, PullRequest, Repository,
    SearchResults,
};
use clara_core::component::ConfigError;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Client, RequestBuilder, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// The most of one answer read. A 1 MB file is about 1.4 MB of base64.
const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
const USER_AGENT: &str = concat!("clara-github/", env!("CARGO_PKG_VERSION"));

/// Which page of a list, and how many items a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// 1-based.
    pub page: u32,
    /// Items per page (GitHub's `per_page`, 1–100).
    pub per_page: u32,
}

/// A new issue (`POST /repos/{o}/{r}/issues`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NewIssue {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// The client. Cheap to share behind an `Arc`.
pub(crate) struct GitHubApi {
    http: Client,
    base: Url,
    timeout: Duration,
}

impl fmt::Debug for GitHubApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApi")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GitHubApi {
    /// A client for `config`. Makes no request.
    pub fn new(config: &GitHubConfig) -> Result<Self, ConfigError> {
        let base = parse_api_url(&config.api_url).map_err(ConfigError::new)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.token.expose()))
            .map_err(|_| {
                ConfigError::new(
                    "GITHUB_TOKEN (github.token) contains characters a token cannot have",
                )
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = Client::builder()
            .default_headers(headers)
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .timeout(config.timeout)
            .build()
            .map_err(|e| {
                ConfigError::new(format!(
                    "the GitHub HTTP client could not be built: {}",
                    e.without_url()
                ))
            })?;
        Ok(Self {
            http,
            base,
            timeout: config.timeout,
        })
    }

    /// `GET /search/repositories`.
    pub async fn search_repositories(
        &self,
        query: &str,
        sort: Option<&str>,
        page: Page,
    ) -> Result<SearchResults<Repository>, GitHubError> {
        let url = self.url(
            &["search", "repositories"],
            &search_query(query, sort, page),
        );
        self.get(url, "search results").await
    }

    /// `GET /search/issues`: issues and pull requests.
    pub async fn search_issues(
        &self,
        query: &str,
        sort: Option<&str>,
        page: Page,
    ) -> Result<SearchResults<Issue>, GitHubError> {
        let url = self.url(&["search", "issues"], &search_query(query, sort, page));
        self.get(url, "search results").await
    }

    /// `GET /repos/{o}/{r}/contents/{path}`: a file, or a directory's entries.
    pub async fn contents(
        &self,
        repo: &RepoRef,
        path: &RepoPath,
        git_ref: Option<&str>,
    ) -> Result<Contents, GitHubError> {
        let mut segments = vec!["repos", repo.owner(), repo.name(), "contents"];
        segments.extend(path.segments());
        let query: Vec<(&str, String)> =
            git_ref.map(|r| ("ref", r.to_owned())).into_iter().collect();
        let at = git_ref.map(|r| format!(" at {r}")).unwrap_or_default();
        let what = format!("file or directory {path} in {repo}{at}");
        self.get(self.url(&segments, &query), &what).await
    }

    /// `GET /repos/{o}/{r}/readme`: the README GitHub shows for the repository.
    pub async fn readme(
        &self,
        repo: &RepoRef,
        git_ref: Option<&str>,
    ) -> Result<Content, GitHubError> {
        let query: Vec<(&str, String)> =
            git_ref.map(|r| ("ref", r.to_owned())).into_iter().collect();
        let url = self.url(&["repos", repo.owner(), repo.name(), "readme"], &query);
        self.get(url, &format!("README in {repo}")).await
    }

    /// `GET /repos/{o}/{r}/issues` (pull requests included, as GitHub does).
    pub async fn issues(
        &self,
        repo: &RepoRef,
        state: &str,
        labels: &[String],
        page: Page,
    ) -> Result<Vec<Issue>, GitHubError> {
        let mut query = vec![("state", state.to_owned())];
        if !labels.is_empty() {
            query.push(("labels", labels.join(",")));
        }
        query.extend(page_query(page));
        let url = self.url(&["repos", repo.owner(), repo.name(), "issues"], &query);
        self.get(url, &format!("repository {repo}")).await
    }

    /// `GET /repos/{o}/{r}/issues/{n}`.
    pub async fn issue(&self, repo: &RepoRef, number: u64) -> Result<Issue, GitHubError> {
        let n = number.to_string();
        let url = self.url(&["repos", repo.owner(), repo.name(), "issues", &n], &[]);
        self.get(url, &format!("issue or pull request #{number} in {repo}"))
            .await
    }

    /// `GET /repos/{o}/{r}/issues/{n}/comments`, oldest first.
    pub async fn issue_comments(
        &self,
        repo: &RepoRef,
        number: u64,
        page: Page,
    ) -> Result<Vec<Comment>, GitHubError> {
        let n = number.to_string();
        let segments = ["repos", repo.owner(), repo.name(), "issues", &n, "comments"];
        let url = self.url(&segments, &page_query(page));
        self.get(url, &format!("issue or pull request #{number} in {repo}"))
            .await
    }

    /// `GET /repos/{o}/{r}/pulls`.
    pub async fn pulls(
        &self,
        repo: &RepoRef,
        state: &str,
        page: Page,
    ) -> Result<Vec<PullRequest>, GitHubError> {
        let mut query = vec![("state", state.to_owned())];
        query.extend(page_query(page));
        let url = self.url(&["repos", repo.owner(), repo.name(), "pulls"], &query);
        self.get(url, &format!("repository {repo}")).await
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`.
    pub async fn pull(&self, repo: &RepoRef, number: u64) -> Result<PullRequest, GitHubError> {
        let n = number.to_string();
        let url = self.url(&["repos", repo.owner(), repo.name(), "pulls", &n], &[]);
        self.get(url, &format!("pull request #{number} in {repo}"))
            .await
    }

    /// `GET /repos/{o}/{r}/pulls/{n}/files`.
    pub async fn pull_files(
        &self,
        repo: &RepoRef,
        number: u64,
        page: Page,
    ) -> Result<Vec<PullFile>, GitHubError> {
        let n = number.to_string();
        let segments = ["repos", repo.owner(), repo.name(), "pulls", &n, "files"];
        let url = self.url(&segments, &page_query(page));
        self.get(url, &format!("pull request #{number} in {repo}"))
            .await
    }

    /// `GET /notifications`: unread ones unless `all`; only those the owner
    /// takes part in when `participating`.
    pub async fn notifications(
        &self,
        all: bool,
        participating: bool,
        page: Page,
    ) -> Result<Vec<Notification>, GitHubError> {
        let mut query = vec![
            ("all", all.to_string()),
            ("participating", participating.to_string()),
        ];
        query.extend(page_query(page));
        let url = self.url(&["notifications"], &query);
        self.get(url, "notifications").await
    }

    /// `POST /repos/{o}/{r}/issues`.
    pub async fn create_issue(
        &self,
        repo: &RepoRef,
        issue: &NewIssue,
    ) -> Result<Issue, GitHubError> {
        let url = self.url(&["repos", repo.owner(), repo.name(), "issues"], &[]);
        self.send(
            self.http.post(url).json(issue),
            &format!("repository {repo}"),
        )
        .await
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments` (pull requests take their
    /// conversation comments here too).
    pub async fn create_comment(
        &self,
        repo: &RepoRef,
        number: u64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        let n = number.to_string();
        let segments = ["repos", repo.owner(), repo.name(), "issues", &n, "comments"];
        let url = self.url(&segments, &[]);
        let payload = serde_json::json!({ "body": body });
        self.send(
            self.http.post(url).json(&payload),
            &format!("issue or pull request #{number} in {repo}"),
        )
        .await
    }

    /// The root with `segments` appended (each percent-encoded, `.` and `..`
    /// dropped by the URL library) and `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        // The root is never a cannot-be-a-base URL (parse_api_url refuses
        // those), so the segments are always appended.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    async fn get<T: DeserializeOwned>(&self, url: Url, what: &str) -> Result<T, GitHubError> {
        self.send(self.http.get(url), what).await
    }

    /// Sends, reads the answer up to [`MAX_RESPONSE_BYTES`], and decodes it.
    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<T, GitHubError> {
        let secs = self.timeout.as_secs();
        let mut response = request
            .send()
            .await
            .map_err(|e| GitHubError::from_transport(&e, secs))?;
        let status = response.status();
        tracing::debug!(
            status = status.as_u16(),
            path = response.url().path(),
            "GitHub answered"
        );
        let too_large = || GitHubError::TooLarge {
            what: what.to_owned(),
            limit_mb: (MAX_RESPONSE_BYTES / (1024 * 1024)) as u64,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| GitHubError::from_transport(&e, secs))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(GitHubError::from_response(
                status.as_u16(),
                response.headers(),
                &body,
                what,
                chrono::Utc::now(),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| GitHubError::Decode {
            what: what.to_owned(),
            detail: if body.is_empty() {
                "the answer was empty".into()
            } else {
                format!("not the JSON expected: {e}")
            },
        })
    }
}

fn page_query(page: Page) -> [(&'static str, String); 2] {
    [
        ("per_page", page.per_page.to_string()),
        ("page", page.page.to_string()),
    ]
}

fn search_query(query: &str, sort: Option<&str>, page: Page) -> Vec<(&'static str, String)> {
    let mut pairs = vec![("q", query.to_owned())];
    if let Some(sort) = sort {
        pairs.push(("sort", sort.to_owned()));
        pairs.push(("order", "desc".to_owned()));
    }
    pairs.extend(page_query(page));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(root: &str) -> GitHubApi {
        let mut config = GitHubConfig::new("ghp_secret");
        config.api_url = root.into();
        GitHubApi::new(&config).unwrap()
    }

    #[test]
    fn urls_encode_each_segment_and_keep_an_enterprise_prefix() {
        let path = RepoPath::parse("docs/a b?c#d%.md").unwrap();
        let repo = RepoRef::new("o", "r").unwrap();
        let github = api("https://api.github.com");
        let mut segments = vec!["repos", repo.owner(), repo.name(), "contents"];
        segments.extend(path.segments());
        let url = github.url(&segments, &[("ref", "feature/x y".to_owned())]);
        assert_eq!(
            url.as_str(),
            "https://api.github.com/repos/o/r/contents/docs/a%20b%3Fc%23d%25.md?ref=feature%2Fx+y"
        );
        let enterprise = api("https://ghe.example.com/api/v3/");
        assert_eq!(
            enterprise.url(&["notifications"], &[]).as_str(),
            "https://ghe.example.com/api/v3/notifications"
        );
        // Even past the name checks, the URL library drops `..`.
        assert_eq!(
            github
                .url(&["repos", "o", "r", "contents", "..", "x"], &[])
                .as_str(),
            "https://api.github.com/repos/o/r/contents/x"
        );
    }

    #[test]
    fn debug_shows_no_token() {
        let text = format!("{:?}", api("https://api.github.com"));
        assert!(!text.contains("ghp_secret"), "{text}");
        assert!(text.contains("api.github.com"), "{text}");
    }

    #[test]
    fn search_queries_carry_sort_and_paging() {
        let pairs = search_query(
            "q",
            Some("stars"),
            Page {
                page: 2,
                per_page: 10,
            },
        );
        assert_eq!(
            pairs,
            vec![
                ("q", "q".to_owned()),
                ("sort", "stars".to_owned()),
                ("order", "desc".to_owned()),
                ("per_page", "10".to_owned()),
                ("page", "2".to_owned()),
            ]
        );
    }
}

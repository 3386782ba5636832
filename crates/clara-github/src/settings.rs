//! The `[github]` section of `clara.toml`, checked into a [`GitHubConfig`].
//! The tools are offered when a token is set.

use clara_core::Secret;
use clara_core::component::ConfigError;
use reqwest::Url;
use std::time::Duration;

/// GitHub's REST API on github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// How long one request may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// `[github]`, as written in `clara.toml` or the environment (`GITHUB_TOKEN`,
/// `GITHUB_API_URL`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitHubSettings {
    /// A personal access token (fine-grained or classic) or an app token.
    /// Without it there are no GitHub tools.
    pub token: Option<Secret>,
    /// The REST API root: `https://api.github.com` (the default), or
    /// `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: Option<String>,
    /// Seconds one request may take (1–120, default 20).
    pub timeout_secs: Option<u64>,
}

/// Checked settings: what the client needs.
#[derive(Clone, Debug)]
pub struct GitHubConfig {
    /// The token sent as `Authorization: Bearer …`.
    pub token: Secret,
    /// The REST API root (checked when it came from settings).
    pub api_url: String,
    /// How long one request may take.
    pub timeout: Duration,
}

impl GitHubConfig {
    /// The defaults (github.com, 20 s) with `token`.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            token: token.into(),
            api_url: DEFAULT_API_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl GitHubSettings {
    /// The client's configuration, `None` without a token. Every value is
    /// checked now, so a typo stops start-up with the key named.
    pub fn config(&self) -> Result<Option<GitHubConfig>, ConfigError> {
        let Some(token) = Secret::given(self.token.as_ref()) else {
            return Ok(None);
        };
        // It goes into a header: a token pasted with a space or a newline in
        // it would fail every request. The value is never echoed.
        if token
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        {
            return Err(ConfigError::new(
                "GITHUB_TOKEN (github.token) contains spaces or characters a token cannot have; set the token alone",
            ));
        }
        let mut config = GitHubConfig::new(token.clone());
        if let Some(url) = self
            .api_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            config.api_url = parse_api_url(url).map_err(ConfigError::new)?.into();
        }
        if let Some(secs) = self.timeout_secs {
            if !(1..=120).contains(&secs) {
                return Err(ConfigError::new(format!(
                    "github.timeout_secs must be between 1 and 120 (seconds one GitHub request may take), got {secs}"
                )));
            }
            config.timeout = Duration::from_secs(secs);
        }
        Ok(Some(config))
    }
}

/// `text` as an API root: http(s), no credentials, query or fragment.
pub(crate) fn parse_api_url(text: &str) -> Result<Url, String> {
    let wrong = || {
        format!(
            "GITHUB_API_URL (github.api_url) must be an http(s) URL such as {DEFAULT_API_URL}, got {text:?}"
        )
    };
    let url = Url::parse(text.trim_end_matches('/')).map_err(|_| wrong())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(wrong());
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the credentials may be real. The token goes in GITHUB_TOKEN.
        return Err(
            "GITHUB_API_URL (github.api_url) must not contain a user name or password; set the token in GITHUB_TOKEN".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(wrong());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut GitHubSettings)) -> Result<Option<GitHubConfig>, ConfigError> {
        let mut settings = GitHubSettings {
            token: Some(Secret::new("ghp_example")),
            ..GitHubSettings::default()
        };
        change(&mut settings);
        settings.config()
    }

    #[test]
    fn no_token_means_no_tools_and_the_defaults_are_github_com() {
        assert!(GitHubSettings::default().config().unwrap().is_none());
        assert!(
            with(|s| s.token = Some(Secret::new("  ")))
                .unwrap()
                .is_none()
        );
        let config = with(|_| {}).unwrap().unwrap();
        assert_eq!(config.api_url, "https://api.github.com");
        assert_eq!(config.timeout, Duration::from_secs(20));
        assert_eq!(
            parse_api_url(DEFAULT_API_URL).unwrap().as_str(),
            "https://api.github.com/"
        );
    }

    #[test]
    fn enterprise_urls_keep_their_path() {
        let config = with(|s| s.api_url = Some("https://ghe.example.com/api/v3/".into()))
            .unwrap()
            .unwrap();
        assert_eq!(config.api_url, "https://ghe.example.com/api/v3");
    }

    #[test]
    fn bad_values_name_their_key_and_never_the_token() {
        let e = with(|s| s.token = Some(Secret::new("ghp_secret\nmore"))).unwrap_err();
        assert!(
            e.0.contains("GITHUB_TOKEN") && !e.0.contains("ghp_secret"),
            "{e}"
        );
        let e = with(|s| s.api_url = Some("ftp://x".into())).unwrap_err();
        assert!(e.0.contains("GITHUB_API_URL"), "{e}");
        let e = with(|s| s.api_url = Some("https://user:hunter2@x".into())).unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");
        let e = with(|s| s.timeout_secs = Some(0)).unwrap_err();
        assert!(e.0.contains("github.timeout_secs"), "{e}");
        let debug = format!("{:?}", with(|_| {}).unwrap());
        assert!(!debug.contains("ghp_example"), "{debug}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml_like(r#"{"token": "t", "api_ur": "x"}"#);
        assert!(e.contains("api_ur"), "{e}");
    }

    fn toml_like(json: &str) -> String {
        serde_json::from_str::<GitHubSettings>(json)
            .unwrap_err()
            .to_string()
    }
}

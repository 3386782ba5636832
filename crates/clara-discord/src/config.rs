//! The Discord adapter's settings: the `[discord]` section of `clara.toml`
//! ([`DiscordSettings`]) and the checks that turn it into a [`DiscordConfig`].

use super::files::{DEFAULT_MAX_FILE_MB, DEFAULT_MAX_UPLOAD_MB, MB};
use super::{Discord, DiscordError};
use clara_core::Secret;
use clara_core::component::{ConfigError, TextList};

/// Discord's REST root, API version 10.
pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";
/// Discord's gateway.
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";
/// How many messages of a reply chain are followed by default.
pub const DEFAULT_MAX_MESSAGES: usize = 25;

/// `[discord]`, as written in `clara.toml` or the environment
/// (`DISCORD_BOT_TOKEN`, `DISCORD_ALLOWED_SERVERS`, …). The adapter runs when
/// the token is set.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSettings {
    /// The bot token from the Discord developer portal.
    pub token: Option<Secret>,
    /// Server (guild) ids Clara answers in; empty: every server.
    pub allowed_servers: Option<TextList>,
    /// Channel ids Clara answers in; empty: every channel.
    pub allowed_channels: Option<TextList>,
    /// Messages of a reply chain fetched as context (default 25).
    pub max_messages: Option<usize>,
    /// Extra phrases that stop Clara's reply on Discord.
    pub stop_phrases: Option<TextList>,
    /// The REST root (default `https://discord.com/api/v10`).
    pub api_url: Option<String>,
    /// The gateway URL (default `wss://gateway.discord.gg`).
    pub gateway_url: Option<String>,
    /// The largest file a person sends that Clara keeps, in MB of 1024 × 1024
    /// bytes (default 25).
    pub max_file_mb: Option<u64>,
    /// The largest file Clara sends, in MB of 1024 × 1024 bytes (default 10,
    /// Discord's default upload limit; a boosted server takes up to 100).
    pub max_upload_mb: Option<u64>,
}

impl DiscordSettings {
    /// The adapter's configuration, `None` without a token. Every value is
    /// checked now, so a typo stops start-up with the key named.
    pub fn config(&self) -> Result<Option<DiscordConfig>, ConfigError> {
        let Some(token) = Secret::given(self.token.as_ref()) else {
            return Ok(None);
        };
        let mut config = DiscordConfig::new(token.clone());
        let ids = |what: &str, list: &Option<TextList>| -> Result<Vec<u64>, ConfigError> {
            match list {
                Some(list) => parse_ids(what, &list.0.join(",")).map_err(ConfigError::new),
                None => Ok(Vec::new()),
            }
        };
        config.allowed_servers = ids(
            "DISCORD_ALLOWED_SERVERS (discord.allowed_servers)",
            &self.allowed_servers,
        )?;
        config.allowed_channels = ids(
            "DISCORD_ALLOWED_CHANNELS (discord.allowed_channels)",
            &self.allowed_channels,
        )?;
        if let Some(n) = self.max_messages {
            config.max_messages = n;
        }
        if let Some(phrases) = &self.stop_phrases {
            config.stop_phrases = phrases.items().map(str::to_owned).collect();
        }
        for (value, field) in [
            (&self.api_url, &mut config.api_url),
            (&self.gateway_url, &mut config.gateway_url),
        ] {
            if let Some(url) = value.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                url.clone_into(field);
            }
        }
        for (value, key, field) in [
            (self.max_file_mb, "max_file_mb", &mut config.max_file_bytes),
            (
                self.max_upload_mb,
                "max_upload_mb",
                &mut config.max_upload_bytes,
            ),
        ] {
            if let Some(mb) = value {
                if !(1..=500).contains(&mb) {
                    return Err(ConfigError::new(format!(
                        "discord.{key} must be between 1 and 500 (megabytes), got {mb}"
                    )));
                }
                *field = mb * MB;
            }
        }
        Discord::new(config.clone()).map_err(ConfigError::new)?;
        Ok(Some(config))
    }
}

/// What the Discord adapter needs to know.
#[derive(Clone, Debug)]
pub struct DiscordConfig {
    /// The bot token (`DISCORD_BOT_TOKEN`), without the `Bot ` prefix.
    pub token: Secret,
    /// Servers (guild ids) Clara answers in; empty means every server.
    pub allowed_servers: Vec<u64>,
    /// Channels (channel or thread ids) Clara answers in; empty means every channel.
    /// Direct messages are not channels of a server and are always answered.
    pub allowed_channels: Vec<u64>,
    /// How many messages of a reply chain are fetched as context (0: none).
    pub max_messages: usize,
    /// Extra whole-message phrases that stop Clara's reply in a channel.
    pub stop_phrases: Vec<String>,
    /// The REST root, API version included (`https://discord.com/api/v10`).
    pub api_url: String,
    /// The gateway's WebSocket URL (`wss://gateway.discord.gg`).
    pub gateway_url: String,
    /// The largest file a person sends that Clara keeps, in bytes.
    pub max_file_bytes: u64,
    /// The largest file Clara sends, in bytes.
    pub max_upload_bytes: u64,
}

impl DiscordConfig {
    /// Settings with this token and every other value at its default.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            token: token.into(),
            allowed_servers: Vec::new(),
            allowed_channels: Vec::new(),
            max_messages: DEFAULT_MAX_MESSAGES,
            stop_phrases: Vec::new(),
            api_url: DEFAULT_API_URL.to_owned(),
            gateway_url: DEFAULT_GATEWAY_URL.to_owned(),
            max_file_bytes: DEFAULT_MAX_FILE_MB * MB,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_MB * MB,
        }
    }

    /// Checks the values and puts them in the form the adapter uses: the token
    /// without a `Bot ` prefix, URLs without a trailing slash, and a REST root
    /// given as `…/api` completed with the version.
    pub fn validated(mut self) -> Result<Self, DiscordError> {
        let token = self.token.expose().trim();
        let token = token.strip_prefix("Bot ").unwrap_or(token).trim();
        if token.is_empty() {
            return Err(DiscordError::Config(
                "DISCORD_BOT_TOKEN is empty; set it to the bot token from the Discord developer portal"
                    .to_owned(),
            ));
        }
        // Discord tokens are base64url parts joined by dots.
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DiscordError::Config(
                "DISCORD_BOT_TOKEN contains spaces or characters a bot token never has; paste the token alone"
                    .to_owned(),
            ));
        }
        self.token = Secret::new(token);
        self.api_url = api_root(&self.api_url)?;
        self.gateway_url = gateway_root(&self.gateway_url)?;
        self.stop_phrases.retain(|p| !p.trim().is_empty());
        Ok(self)
    }
}

/// Parses a list of Discord ids (snowflakes) separated by commas or spaces, as
/// `DISCORD_ALLOWED_SERVERS` and `DISCORD_ALLOWED_CHANNELS` hold them. `what`
/// names the setting in the error.
pub fn parse_ids(what: &str, text: &str) -> Result<Vec<u64>, DiscordError> {
    text.split([',', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                DiscordError::Config(format!(
                    "{what} must list Discord ids (numbers) separated by commas, but {s:?} is not one"
                ))
            })
        })
        .collect()
}

/// Splits `DISCORD_STOP_PHRASES` (comma-separated) into phrases.
pub fn parse_phrases(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn api_root(url: &str) -> Result<String, DiscordError> {
    let bad = || {
        DiscordError::Config(format!(
            "DISCORD_API_URL must be an http:// or https:// URL such as {DEFAULT_API_URL}, got {url:?}"
        ))
    };
    let url = checked_url(url, &["http", "https"]).ok_or_else(bad)?;
    // Discord's documentation calls `https://discord.com/api` the base URL; the
    // version goes after it.
    if url.ends_with("/api") {
        return Ok(format!("{url}/v10"));
    }
    Ok(url)
}

fn gateway_root(url: &str) -> Result<String, DiscordError> {
    // The gateway client adds `/?v=10&encoding=json` itself.
    let base = url.trim().split('?').next().unwrap_or_default();
    checked_url(base, &["ws", "wss"]).ok_or_else(|| {
        DiscordError::Config(format!(
            "DISCORD_GATEWAY_URL must be a ws:// or wss:// URL such as {DEFAULT_GATEWAY_URL}, got {url:?}"
        ))
    })
}

/// `url` written out in full (no trailing slash), when it is a URL with a host,
/// one of `schemes`, no query or fragment, and only characters every HTTP and
/// WebSocket client takes (the gateway client refuses others by panicking).
fn checked_url(url: &str, schemes: &[&str]) -> Option<String> {
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    let plain = schemes.contains(&parsed.scheme())
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.query().is_none()
        && parsed.fragment().is_none();
    let text = parsed.as_str().trim_end_matches('/');
    let uri_safe = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c));
    (plain && uri_safe).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_accept_commas_and_spaces_and_name_the_bad_entry() {
        assert_eq!(
            parse_ids("DISCORD_ALLOWED_SERVERS", " 1, 22 333,,").unwrap(),
            vec![1, 22, 333]
        );
        assert!(parse_ids("X", "").unwrap().is_empty());
        let err = parse_ids("DISCORD_ALLOWED_CHANNELS", "12, general").unwrap_err();
        assert!(err.to_string().contains("DISCORD_ALLOWED_CHANNELS"));
        assert!(err.to_string().contains("\"general\""));
    }

    #[test]
    fn stop_phrases_are_comma_separated() {
        assert_eq!(
            parse_phrases("hush now, that's enough ,,"),
            vec!["hush now", "that's enough"]
        );
    }

    #[test]
    fn validation_normalises_token_and_urls() {
        let mut c = DiscordConfig::new(" Bot abc.def ");
        c.api_url = "http://127.0.0.1:9/api/".into();
        c.gateway_url = "ws://127.0.0.1:9/?v=10&encoding=json".into();
        let c = c.validated().unwrap();
        assert_eq!(c.token.expose(), "abc.def");
        assert_eq!(c.api_url, "http://127.0.0.1:9/api/v10");
        assert_eq!(c.gateway_url, "ws://127.0.0.1:9");
        let d = DiscordConfig::new("t").validated().unwrap();
        assert_eq!(d.api_url, DEFAULT_API_URL);
        assert_eq!(d.gateway_url, DEFAULT_GATEWAY_URL);
    }

    #[test]
    fn bad_values_are_one_sentence_naming_the_setting() {
        let e = DiscordConfig::new("  ").validated().unwrap_err();
        assert!(e.to_string().contains("DISCORD_BOT_TOKEN"));
        let e = DiscordConfig::new("abc def").validated().unwrap_err();
        assert!(e.to_string().contains("DISCORD_BOT_TOKEN"));
        assert!(!e.to_string().contains("abc def"), "{e}");
        let mut c = DiscordConfig::new("t");
        c.api_url = "discord.com".into();
        assert!(
            c.validated()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_API_URL")
        );
        for bad in ["ws://exa mple.com", "ws://", "ws://host/a|b", "ws://:9"] {
            let mut c = DiscordConfig::new("t");
            c.gateway_url = bad.into();
            assert!(c.validated().is_err(), "{bad:?} was taken");
        }
        let mut c = DiscordConfig::new("t");
        c.api_url = "http://exa mple.com/api".into();
        assert!(c.validated().is_err());
        let mut c = DiscordConfig::new("t");
        c.gateway_url = "https://gateway.discord.gg".into();
        assert!(
            c.validated()
                .unwrap_err()
                .to_string()
                .contains("DISCORD_GATEWAY_URL")
        );
    }

    #[test]
    fn settings_take_arrays_or_comma_separated_lists() {
        let settings: DiscordSettings = serde_json::from_str(
            r#"{"token": "secret-token", "allowed_servers": ["123", 456], "allowed_channels": "7, 8", "stop_phrases": "hush now, enough"}"#,
        )
        .unwrap();
        let d = settings.config().unwrap().unwrap();
        assert_eq!(d.allowed_servers, vec![123, 456]);
        assert_eq!(d.allowed_channels, vec![7, 8]);
        assert_eq!(d.stop_phrases, vec!["hush now", "enough"]);
        assert!(!format!("{settings:?} {d:?}").contains("secret-token"));
        assert_eq!(d.max_file_bytes, 25 * 1024 * 1024);
        assert_eq!(d.max_upload_bytes, 10 * 1024 * 1024);
        let sized: DiscordSettings =
            serde_json::from_str(r#"{"token": "t", "max_file_mb": 8, "max_upload_mb": 50}"#)
                .unwrap();
        let d = sized.config().unwrap().unwrap();
        assert_eq!(
            (d.max_file_bytes, d.max_upload_bytes),
            (8 * 1024 * 1024, 50 * 1024 * 1024)
        );
        let zero: DiscordSettings =
            serde_json::from_str(r#"{"token": "t", "max_upload_mb": 0}"#).unwrap();
        let err = zero.config().unwrap_err().to_string();
        assert!(err.contains("discord.max_upload_mb"), "{err}");
        let bad: DiscordSettings =
            serde_json::from_str(r#"{"token": "t", "allowed_channels": "general"}"#).unwrap();
        let err = bad.config().unwrap_err().to_string();
        assert!(err.contains("DISCORD_ALLOWED_CHANNELS"), "{err}");
        assert!(DiscordSettings::default().config().unwrap().is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = DiscordConfig::new("very-secret-token");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}

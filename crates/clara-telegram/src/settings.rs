//! The `[telegram]` section of `clara.toml`, and its check into a
//! [`TelegramConfig`]. The adapter runs when the token is set.

use crate::{Telegram, TelegramConfig, TelegramDelivery};
use clara_core::Secret;
use clara_core::component::ConfigError;
use std::time::Duration;

/// `[telegram]`, as written in `clara.toml` or the environment (`TG_BOT_TOKEN`,
/// `TELEGRAM_API_URL`, `TELEGRAM_DELIVERY`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// The bot token from @BotFather.
    pub token: Option<Secret>,
    /// The Bot API root (default `https://api.telegram.org`).
    pub api_url: Option<String>,
    /// `edits` (one message grown by edits, the default) or `parts`.
    pub delivery: Option<String>,
    /// The least time between two edits of a reply, in milliseconds.
    pub edit_cooldown_ms: Option<u64>,
    /// Seconds Telegram may hold one long poll.
    pub poll_timeout_secs: Option<u64>,
    /// The largest file a person sends that Clara keeps, in MB (default 20,
    /// the most the Bot API lets a bot download; more needs a local Bot API
    /// server as `api_url`).
    pub max_file_mb: Option<u64>,
}

impl TelegramSettings {
    /// The adapter's configuration, `None` without a token. Every value is
    /// checked now, so a typo stops start-up with the key named.
    pub fn config(&self) -> Result<Option<TelegramConfig>, ConfigError> {
        let Some(token) = Secret::given(self.token.as_ref()) else {
            return Ok(None);
        };
        let mut config = TelegramConfig::new(token.clone());
        if let Some(url) = given(&self.api_url) {
            url.clone_into(&mut config.api_url);
        }
        if let Some(name) = &self.delivery {
            config.delivery = TelegramDelivery::parse(name).ok_or_else(|| {
                ConfigError::new(format!(
                    "TELEGRAM_DELIVERY (telegram.delivery) must be `edits` or `parts`, got {name:?}"
                ))
            })?;
        }
        if let (Some(ms), TelegramDelivery::Edits { cooldown }) =
            (self.edit_cooldown_ms, &mut config.delivery)
        {
            *cooldown = Duration::from_millis(ms);
        }
        if let Some(secs) = self.poll_timeout_secs {
            if !(1..=50).contains(&secs) {
                return Err(ConfigError::new(format!(
                    "telegram.poll_timeout_secs must be between 1 and 50 (how long Telegram holds a long poll), got {secs}"
                )));
            }
            config.poll_timeout = Duration::from_secs(secs);
        }
        if let Some(mb) = self.max_file_mb {
            if !(1..=2000).contains(&mb) {
                return Err(ConfigError::new(format!(
                    "telegram.max_file_mb must be between 1 and 2000 (megabytes of a file Clara keeps), got {mb}"
                )));
            }
            config.max_file_bytes = mb * 1_000_000;
        }
        // The token's shape and the URL (the errors name TG_BOT_TOKEN /
        // TELEGRAM_API_URL).
        Telegram::new(config.clone()).map_err(ConfigError::new)?;
        Ok(Some(config))
    }
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_no_adapter_and_bad_values_name_their_key() {
        assert!(TelegramSettings::default().config().unwrap().is_none());
        let blank = TelegramSettings {
            token: Some(Secret::new("  ")),
            ..TelegramSettings::default()
        };
        assert!(blank.config().unwrap().is_none());
        let with = |f: fn(&mut TelegramSettings)| {
            let mut s = TelegramSettings {
                token: Some(Secret::new("123:secret-part")),
                ..TelegramSettings::default()
            };
            f(&mut s);
            s.config()
        };
        let config = with(|s| s.delivery = Some("parts".into()))
            .unwrap()
            .unwrap();
        assert!(matches!(config.delivery, TelegramDelivery::Parts(_)));
        let bad = with(|s| s.delivery = Some("smoke".into())).unwrap_err();
        assert!(bad.to_string().contains("TELEGRAM_DELIVERY"), "{bad}");
        let bad = with(|s| s.poll_timeout_secs = Some(90)).unwrap_err();
        assert!(bad.to_string().contains("poll_timeout_secs"), "{bad}");
        let config = with(|_| {}).unwrap().unwrap();
        assert_eq!(config.max_file_bytes, 20_000_000);
        let config = with(|s| s.max_file_mb = Some(5)).unwrap().unwrap();
        assert_eq!(config.max_file_bytes, 5_000_000);
        let bad = with(|s| s.max_file_mb = Some(0)).unwrap_err();
        assert!(bad.to_string().contains("max_file_mb"), "{bad}");
        let bad = with(|s| s.token = Some(Secret::new("not a token"))).unwrap_err();
        assert!(bad.to_string().contains("TG_BOT_TOKEN"), "{bad}");
        assert!(!bad.to_string().contains("not a token"), "{bad}");
        let shown = format!("{:?}", with(|_| {}).unwrap());
        assert!(!shown.contains("secret-part"), "{shown}");
    }
}

//! The `[email]` section of `clara.toml`, checked into an [`EmailConfig`].

use clara_core::component::ConfigError;
use std::time::Duration;

/// `[email]`, as written in `clara.toml` or the environment
/// (`EMAIL_MONITORING_ENABLED`, `CLARA_EMAIL__POLL_SECS`, …).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// Whether Clara watches the connected accounts and offers the mail tools.
    /// Default false.
    pub enabled: Option<bool>,
    /// Seconds between checks of a folder whose server has no IDLE (or whose
    /// account asks for polling): 1–86400, default 300.
    pub poll_secs: Option<u64>,
    /// Seconds after which an IDLE is ended and started again: 10–1740
    /// (RFC 2177 asks for at most 29 minutes), default 300.
    pub idle_renew_secs: Option<u64>,
    /// Seconds after an alert during which new mail of the same folder is
    /// gathered into the next alert, so a burst is one message: 0–3600,
    /// default 15.
    pub batch_secs: Option<u64>,
    /// Seconds between re-reads of the account list (added, changed and
    /// removed accounts): 1–3600, default 10.
    pub reload_secs: Option<u64>,
    /// Whether rules may ask the model's judgement (`ask_model`). Default false.
    pub judge: Option<bool>,
}

/// Checked settings: what the watcher and the tools need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// Whether e-mail is on.
    pub enabled: bool,
    /// Time between polls without IDLE.
    pub poll: Duration,
    /// Time after which IDLE is renewed.
    pub idle_renew: Duration,
    /// How long new mail gathers after an alert.
    pub batch: Duration,
    /// Time between re-reads of the account list.
    pub reload: Duration,
    /// Whether rules may ask the model.
    pub judge: bool,
    /// How long connecting and signing in may take.
    pub connect_timeout: Duration,
    /// How long one check of a folder (search, fetch, rules) may take.
    pub check_timeout: Duration,
    /// The wait before retrying an account whose password was refused.
    pub auth_retry: Duration,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            poll: Duration::from_secs(300),
            idle_renew: Duration::from_secs(300),
            batch: Duration::from_secs(15),
            reload: Duration::from_secs(10),
            judge: false,
            connect_timeout: Duration::from_secs(30),
            check_timeout: Duration::from_secs(300),
            auth_retry: Duration::from_secs(15 * 60),
        }
    }
}

fn secs(
    value: Option<u64>,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
    default: Duration,
    meaning: &str,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(Duration::from_secs(v)),
        Some(v) => Err(ConfigError::new(format!(
            "email.{key} (CLARA_EMAIL__{}) must be between {} and {} ({meaning}), got {v}",
            key.to_ascii_uppercase(),
            range.start(),
            range.end()
        ))),
    }
}

impl EmailSettings {
    /// The checked configuration; a bad value stops start-up with its key named.
    pub fn config(&self) -> Result<EmailConfig, ConfigError> {
        let d = EmailConfig::default();
        Ok(EmailConfig {
            enabled: self.enabled.unwrap_or(false),
            poll: secs(
                self.poll_secs,
                "poll_secs",
                1..=86_400,
                d.poll,
                "seconds between checks without IDLE",
            )?,
            idle_renew: secs(
                self.idle_renew_secs,
                "idle_renew_secs",
                10..=1_740,
                d.idle_renew,
                "seconds before IDLE is renewed; RFC 2177 allows at most 29 minutes",
            )?,
            batch: secs(
                self.batch_secs,
                "batch_secs",
                0..=3_600,
                d.batch,
                "seconds new mail gathers after an alert",
            )?,
            reload: secs(
                self.reload_secs,
                "reload_secs",
                1..=3_600,
                d.reload,
                "seconds between re-reads of the accounts",
            )?,
            judge: self.judge.unwrap_or(false),
            ..d
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_off_five_minutes_and_fifteen_seconds() {
        let c = EmailSettings::default().config().unwrap();
        assert!(!c.enabled && !c.judge);
        assert_eq!(c.poll, Duration::from_secs(300));
        assert_eq!(c.idle_renew, Duration::from_secs(300));
        assert_eq!(c.batch, Duration::from_secs(15));
        assert_eq!(c.reload, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = EmailSettings {
            idle_renew_secs: Some(3600),
            ..EmailSettings::default()
        }
        .config()
        .unwrap_err();
        assert!(
            e.0.contains("email.idle_renew_secs") && e.0.contains("29 minutes"),
            "{e}"
        );
        let e = EmailSettings {
            poll_secs: Some(0),
            ..EmailSettings::default()
        }
        .config()
        .unwrap_err();
        assert!(e.0.contains("CLARA_EMAIL__POLL_SECS"), "{e}");
        let unknown = serde_json::from_str::<EmailSettings>(r#"{"enabld": true}"#).unwrap_err();
        assert!(unknown.to_string().contains("enabld"));
        let on: EmailSettings =
            serde_json::from_str(r#"{"enabled": true, "batch_secs": 0}"#).unwrap();
        let c = on.config().unwrap();
        assert!(c.enabled);
        assert_eq!(c.batch, Duration::ZERO);
    }
}

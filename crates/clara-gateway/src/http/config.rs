//! What the HTTP face needs to know: where it listens (loopback or not), who may
//! log in to the web page, which API key opens `/v1/*`, and a few limits (on
//! request bodies, on files people attach, on files Clara's replies keep).
//!
//! Secrets never stay here in the clear: the operator's password is kept as an
//! Argon2 hash, the API key as its SHA-256 digest, each held as a
//! [`Secret`], so `Debug` prints neither.

use crate::http::auth::{self, AuthError};
use clara_core::Secret;
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The HTTP face's settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Whether the gateway listens on a loopback address, reachable only from this
    /// machine. Off loopback the web page asks for the password and `/v1/*` for
    /// the API key.
    pub loopback: bool,
    /// Ask for the password on loopback too.
    pub require_login: bool,
    /// The operator's password, as an Argon2 PHC string.
    password_hash: Option<Secret>,
    /// The API key's digest.
    api_key: Option<ApiKey>,
    /// Mark the login cookie `Secure` (sent over HTTPS only).
    pub secure_cookie: bool,
    /// How long a login lasts.
    pub login_ttl: Duration,
    /// The person who uses the web page.
    pub person: WebPerson,
    /// The largest request body `/v1/chat/completions` accepts, in bytes.
    pub max_body_bytes: usize,
    /// The largest file a message on the page (`POST /api/chat/messages`) may
    /// carry, in bytes.
    pub max_file_bytes: usize,
    /// The most bytes all files of one such message may add up to.
    pub max_message_file_bytes: usize,
    /// How many of the files Clara sent the page's conversation keeps to be
    /// fetched (the oldest go first).
    pub kept_files: usize,
    /// How many bytes of them it keeps, at most (the newest file always stays).
    pub kept_file_bytes: usize,
}

/// The web page's person: the operator, as Clara knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebPerson {
    /// Their stable id on the `web` platform (an API request's `user` field names
    /// the same kind of id; without one, requests speak as this person).
    pub id: String,
    /// The name Clara calls them.
    pub name: String,
}

impl Default for WebPerson {
    fn default() -> Self {
        Self {
            id: DEFAULT_PERSON_ID.to_owned(),
            name: "you".to_owned(),
        }
    }
}

/// The web person's id unless configured otherwise.
pub const DEFAULT_PERSON_ID: &str = "owner";

/// The default for [`HttpConfig::max_body_bytes`]: room for a long conversation
/// and an image or two as data URLs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The default for [`HttpConfig::max_file_bytes`]: 20 MiB.
pub const DEFAULT_MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// The default for [`HttpConfig::max_message_file_bytes`]: 40 MiB.
pub const DEFAULT_MAX_MESSAGE_FILE_BYTES: usize = 40 * 1024 * 1024;

/// The default for [`HttpConfig::kept_files`].
pub const DEFAULT_KEPT_FILES: usize = 32;

/// The default for [`HttpConfig::kept_file_bytes`]: 64 MiB.
pub const DEFAULT_KEPT_FILE_BYTES: usize = 64 * 1024 * 1024;

impl HttpConfig {
    /// Settings for a gateway listening on a loopback address (`loopback`) or not,
    /// with no password, no API key and default limits.
    pub fn new(loopback: bool) -> Self {
        Self {
            loopback,
            require_login: false,
            password_hash: None,
            api_key: None,
            secure_cookie: !loopback,
            login_ttl: Duration::from_secs(7 * 24 * 3600),
            person: WebPerson::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_message_file_bytes: DEFAULT_MAX_MESSAGE_FILE_BYTES,
            kept_files: DEFAULT_KEPT_FILES,
            kept_file_bytes: DEFAULT_KEPT_FILE_BYTES,
        }
    }

    /// Sets the operator's password; it is hashed with Argon2 here and the clear
    /// text is not kept.
    pub fn with_password(mut self, password: &str) -> Result<Self, AuthError> {
        self.password_hash = Some(Secret::new(auth::hash_password(password)?));
        Ok(self)
    }

    /// Sets the operator's password by its Argon2 hash (a PHC string such as
    /// `clara hash-password` prints).
    pub fn with_password_hash(mut self, phc: &str) -> Result<Self, AuthError> {
        auth::check_phc(phc)?;
        self.password_hash = Some(Secret::new(phc.trim()));
        Ok(self)
    }

    /// Sets the key `/v1/*` requests must present as `Authorization: Bearer <key>`.
    pub fn with_api_key(mut self, key: &str) -> Self {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// Whether the web page asks for the password.
    pub fn login_required(&self) -> bool {
        !self.loopback || self.require_login
    }

    /// Whether a password is set, so that logging in is possible.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    pub(crate) fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_ref().map(Secret::expose)
    }

    pub(crate) fn api_key(&self) -> Option<&ApiKey> {
        self.api_key.as_ref()
    }
}

/// An API key, kept as its SHA-256 digest (lower-case hex, held as a
/// [`Secret`] so it is never printed) and compared in constant time.
#[derive(Clone, Debug)]
pub(crate) struct ApiKey {
    digest: Secret,
}

impl ApiKey {
    fn new(key: &str) -> Self {
        Self {
            digest: Secret::new(digest_hex(key)),
        }
    }

    /// Whether `presented` is this key. Comparing digests keeps the time taken
    /// independent of where the strings differ and of the key's length.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        let digest = digest_hex(presented);
        self.digest
            .expose()
            .as_bytes()
            .ct_eq(digest.as_bytes())
            .into()
    }
}

/// The SHA-256 digest of the trimmed `key`, in lower-case hex (always 64 bytes).
fn digest_hex(key: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_api_key_matches_itself_only() {
        let config = HttpConfig::new(false).with_api_key("sk-clara-1");
        let key = config.api_key().unwrap();
        assert!(key.matches("sk-clara-1"));
        assert!(!key.matches("sk-clara-2"));
        assert!(!key.matches(""));
    }

    #[test]
    fn debug_shows_no_secret() {
        let config = HttpConfig::new(false)
            .with_api_key("sk-very-secret")
            .with_password("hunter2-password")
            .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-very-secret"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("argon2"));
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn off_loopback_the_page_needs_a_login() {
        assert!(HttpConfig::new(false).login_required());
        assert!(!HttpConfig::new(true).login_required());
        let mut strict = HttpConfig::new(true);
        strict.require_login = true;
        assert!(strict.login_required());
    }
}

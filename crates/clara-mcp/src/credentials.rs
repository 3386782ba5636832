//! Where the OAuth credentials of remote MCP servers live: one encrypted file
//! per server, `<servers_dir>/.credentials/<name>.enc`.
//!
//! A file holds what Clara registered with the server's authorization server
//! (client id and secret, redirect URI), the tokens (access, refresh, expiry)
//! and a login in progress (PKCE verifier and `state`). It is sealed with
//! XChaCha20-Poly1305 (a random 24-byte nonce per write, the server's name as
//! associated data, so a file copied to another name does not open). The key
//! is `CLARA_SECRET_KEY` (64 hex digits) when set, else the 32 random bytes of
//! `<servers_dir>/.credentials/key`, created with mode 0600 on first write.
//!
//! A file that does not open (another key, damage) counts as no credentials:
//! one log line says so, never its content. Nothing here puts a token in a
//! log, an error or `Debug`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rmcp::transport::auth::{
    AuthError, CredentialStore, StateStore, StoredAuthorizationState, StoredCredentials,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The directory under `servers_dir` that holds the credentials.
pub const CREDENTIALS_DIR: &str = ".credentials";

/// The environment variable that, when set, holds the key (64 hex digits).
pub const SECRET_KEY_ENV: &str = "CLARA_SECRET_KEY";

/// How long a started login may wait for its callback before it is refused.
const PENDING_LOGIN_SECS: u64 = 15 * 60;

/// The first byte of a credentials file: its format.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;

/// Why credentials could not be read or written. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// A file or directory could not be read or written.
    #[error("credentials storage {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `CLARA_SECRET_KEY` is not 64 hex digits.
    #[error("{SECRET_KEY_ENV} must be 64 hex digits (32 bytes)")]
    BadEnvKey,
    /// The key file is not 32 bytes.
    #[error("the key file {0} is not 32 bytes; remove it to start over (stored logins are lost)")]
    BadKeyFile(PathBuf),
    /// Encryption failed (cannot happen with a valid key; kept for honesty).
    #[error("encrypting the credentials failed")]
    Encrypt,
    /// The credentials could not be turned into bytes.
    #[error("the credentials could not be encoded: {0}")]
    Encode(String),
}

/// What Clara registered with a server's authorization server.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// The client id it was given.
    pub client_id: String,
    /// The client secret, for a confidential client.
    pub client_secret: Option<String>,
    /// The redirect URI it was registered with.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The server's `WWW-Authenticate` challenge at login, which seeds
    /// discovery again the same way when the tokens are used or refreshed.
    pub challenge: Option<String>,
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Everything one file holds (the plaintext, JSON).
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The server URL these credentials are for: a changed URL invalidates them.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub client: Option<ClientRegistration>,
    #[serde(default)]
    pub tokens: Option<StoredCredentials>,
    /// A login in progress: its `state` (the CSRF token) and PKCE verifier.
    #[serde(default)]
    pub pending: Option<(String, StoredAuthorizationState)>,
    /// The client registered for the login in progress; it replaces `client`
    /// only when that login finishes, so an abandoned login leaves the
    /// working tokens alone.
    #[serde(default)]
    pub pending_client: Option<ClientRegistration>,
}

/// The key, never printed.
struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The credentials of every server under one `servers_dir`. Clones share the
/// key and the write lock.
#[derive(Clone, Debug)]
pub struct Credentials {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// A key given by the caller or the environment; else the key file's.
    key: parking_lot::Mutex<Option<SecretKey>>,
    /// Reads-modify-writes of files happen one at a time (in this process).
    writing: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// The credentials under `servers_dir` (`<servers_dir>/.credentials`),
    /// keyed by `CLARA_SECRET_KEY` when it is set. Touches no file.
    pub fn new(servers_dir: &Path) -> Result<Self, CredentialError> {
        let key = match std::env::var(SECRET_KEY_ENV) {
            Ok(hex) if !hex.trim().is_empty() => Some(SecretKey(
                parse_hex_key(hex.trim()).ok_or(CredentialError::BadEnvKey)?,
            )),
            _ => None,
        };
        Ok(Self::build(servers_dir, key))
    }

    /// The credentials under `servers_dir` sealed with `key` (no key file).
    pub fn with_key(servers_dir: &Path, key: [u8; 32]) -> Self {
        Self::build(servers_dir, Some(SecretKey(key)))
    }

    fn build(servers_dir: &Path, key: Option<SecretKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: servers_dir.join(CREDENTIALS_DIR),
                key: parking_lot::Mutex::new(key),
                writing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The directory of the files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file of server `name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.inner.dir.join(format!("{name}.enc"))
    }

    /// Server `name`'s store, for rmcp's OAuth client.
    pub fn server(&self, name: &str) -> ServerCredentials {
        ServerCredentials {
            credentials: self.clone(),
            name: name.to_owned(),
        }
    }

    /// Whether server `name` has tokens Clara can use for `url`.
    pub fn has_tokens(&self, name: &str, url: &str) -> bool {
        self.load(name)
            .is_some_and(|r| r.tokens.is_some() && r.url.as_deref() == Some(url))
    }

    /// When server `name`'s file last changed (`None`: no file): a login done
    /// by another process shows here.
    pub fn modified(&self, name: &str) -> Option<SystemTime> {
        std::fs::metadata(self.file(name))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Forgets everything about server `name` (`clara mcp logout`).
    pub async fn remove(&self, name: &str) -> Result<(), CredentialError> {
        let _one = self.inner.writing.lock().await;
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CredentialError::Io { path, source }),
        }
    }

    /// Server `name`'s record; `None` when there is none or it does not open.
    pub(crate) fn load(&self, name: &str) -> Option<Record> {
        let path = self.file(name);
        let sealed = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(server = %name, path = %path.display(), %error, "the stored OAuth credentials could not be read; the server counts as logged out");
                return None;
            }
        };
        let key = match self.key(false) {
            Ok(Some(key)) => key,
            Ok(None) => {
                tracing::warn!(server = %name, "stored OAuth credentials exist but there is no key to open them; the server counts as logged out");
                return None;
            }
            Err(error) => {
                tracing::warn!(server = %name, %error, "the credentials key is unusable; the server counts as logged out");
                return None;
            }
        };
        match open(&key, name, &sealed) {
            Some(record) => Some(record),
            None => {
                tracing::warn!(server = %name, path = %path.display(), "the stored OAuth credentials could not be decrypted (another key, or a damaged file); the server counts as logged out");
                None
            }
        }
    }

    /// Changes server `name`'s record with `change` and writes it back
    /// (atomically, mode 0600).
    pub(crate) async fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut Record),
    ) -> Result<(), CredentialError> {
        let _one = self.inner.writing.lock().await;
        let mut record = self.load(name).unwrap_or_default();
        change(&mut record);
        let key = self.key(true)?.ok_or(CredentialError::Encrypt)?;
        let sealed = seal(&key, name, &record)?;
        write_private(&self.file(name), &sealed)
    }

    /// The key: the given or environment one, else the key file's, which is
    /// created when `create` (the first write).
    fn key(&self, create: bool) -> Result<Option<[u8; 32]>, CredentialError> {
        let mut slot = self.inner.key.lock();
        if let Some(key) = slot.as_ref() {
            return Ok(Some(key.0));
        }
        let path = self.inner.dir.join("key");
        let key = match std::fs::read(&path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| CredentialError::BadKeyFile(path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key: [u8; 32] = rand::random();
                match create_private_new(&path, &key) {
                    Ok(()) => key,
                    // Another handle (or process) made it first: use its key.
                    Err(CredentialError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        let bytes = std::fs::read(&path).map_err(|source| CredentialError::Io {
                            path: path.clone(),
                            source,
                        })?;
                        <[u8; 32]>::try_from(bytes.as_slice())
                            .map_err(|_| CredentialError::BadKeyFile(path))?
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CredentialError::Io { path, source }),
        };
        *slot = Some(SecretKey(key));
        Ok(Some(key))
    }
}

/// `64 hex digits` → 32 bytes.
fn parse_hex_key(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        key[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(key)
}

fn aad(name: &str) -> Vec<u8> {
    format!("clara-mcp-credentials:{name}").into_bytes()
}

fn seal(key: &[u8; 32], name: &str, record: &Record) -> Result<Vec<u8>, CredentialError> {
    let plain = serde_json::to_vec(record).map_err(|e| CredentialError::Encode(e.to_string()))?;
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let nonce = XNonce::from(nonce_bytes);
    let aad = aad(name);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| CredentialError::Encrypt)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(FORMAT);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(key: &[u8; 32], name: &str, sealed: &[u8]) -> Option<Record> {
    let (&format, rest) = sealed.split_first()?;
    if format != FORMAT || rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce_bytes, body) = rest.split_at(NONCE_LEN);
    let nonce = XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce_bytes).ok()?);
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let aad = aad(name);
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

/// Makes `dir` (mode 0700 on Unix).
fn create_private_dir(dir: &Path) -> Result<(), CredentialError> {
    let io = |source| CredentialError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` (which must not exist) holding `bytes`, mode 0600.
fn create_private_new(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut file = private_options().create_new(true).open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Replaces `path` with `bytes` atomically (a 0600 temporary file renamed).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let temporary = path.with_extension(format!("enc.{}.tmp", std::process::id()));
    let mut file = private_options()
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// One server's credentials, as rmcp's [`CredentialStore`] (the tokens) and
/// [`StateStore`] (a login in progress; one at a time, a newer replaces it).
#[derive(Clone, Debug)]
pub struct ServerCredentials {
    credentials: Credentials,
    name: String,
}

impl ServerCredentials {
    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn load_record(&self) -> Option<Record> {
        self.credentials.load(&self.name)
    }

    pub(crate) async fn update(
        &self,
        change: impl FnOnce(&mut Record),
    ) -> Result<(), CredentialError> {
        self.credentials.update(&self.name, change).await
    }
}

fn store_error(error: CredentialError) -> AuthError {
    AuthError::CredentialStoreError(error.to_string())
}

#[async_trait::async_trait]
impl CredentialStore for ServerCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        Ok(self.load_record().and_then(|r| r.tokens))
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        self.update(|r| r.tokens = Some(credentials))
            .await
            .map_err(store_error)
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.update(|r| r.tokens = None).await.map_err(store_error)
    }
}

#[async_trait::async_trait]
impl StateStore for ServerCredentials {
    async fn save(
        &self,
        csrf_token: &str,
        state: StoredAuthorizationState,
    ) -> Result<(), AuthError> {
        let csrf_token = csrf_token.to_owned();
        self.update(|r| r.pending = Some((csrf_token, state)))
            .await
            .map_err(store_error)
    }

    async fn load(&self, csrf_token: &str) -> Result<Option<StoredAuthorizationState>, AuthError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self
            .load_record()
            .and_then(|r| r.pending)
            .filter(|(token, state)| {
                token == csrf_token && now.saturating_sub(state.created_at) <= PENDING_LOGIN_SECS
            })
            .map(|(_, state)| state))
    }

    async fn delete(&self, csrf_token: &str) -> Result<(), AuthError> {
        self.update(|r| {
            if r.pending
                .as_ref()
                .is_some_and(|(token, _)| token == csrf_token)
            {
                r.pending = None;
            }
        })
        .await
        .map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn tokens(access: &str) -> StoredCredentials {
        let response = serde_json::from_value(serde_json::json!({
            "access_token": access,
            "refresh_token": "refresh-secret",
            "token_type": "Bearer",
            "expires_in": 60,
        }))
        .unwrap();
        StoredCredentials::new("client-1".into(), Some(response), vec![], Some(1))
    }

    #[tokio::test]
    async fn tokens_round_trip_sealed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::with_key(dir.path(), [7; 32]);
        let store = credentials.server("notion");
        assert!(CredentialStore::load(&store).await.unwrap().is_none());
        CredentialStore::save(&store, tokens("access-secret-123"))
            .await
            .unwrap();

        let loaded = CredentialStore::load(&store).await.unwrap().unwrap();
        assert_eq!(loaded.client_id, "client-1");
        let raw = std::fs::read(credentials.file("notion")).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("access-secret-123") && !text.contains("refresh-secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(credentials.file("notion"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{loaded:?} {credentials:?}").contains("access-secret-123"));

        CredentialStore::clear(&store).await.unwrap();
        assert!(CredentialStore::load(&store).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_key_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        // No CLARA_SECRET_KEY in the test environment is assumed by `build`.
        let credentials = Credentials::build(dir.path(), None);
        CredentialStore::save(&credentials.server("a"), tokens("t"))
            .await
            .unwrap();
        let key_path = dir.path().join(CREDENTIALS_DIR).join("key");
        let key = std::fs::read(&key_path).unwrap();
        assert_eq!(key.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second handle reads it and opens the file.
        let again = Credentials::build(dir.path(), None);
        assert!(again.load("a").and_then(|r| r.tokens).is_some());
        assert_eq!(std::fs::read(&key_path).unwrap(), key);
    }

    #[tokio::test]
    async fn a_file_that_does_not_open_is_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let one = Credentials::with_key(dir.path(), [1; 32]);
        CredentialStore::save(&one.server("a"), tokens("t"))
            .await
            .unwrap();
        let other = Credentials::with_key(dir.path(), [2; 32]);
        assert!(other.load("a").is_none());
        // Copied to another server's name, it does not open either.
        std::fs::copy(one.file("a"), one.file("b")).unwrap();
        assert!(one.load("b").is_none());
        std::fs::write(one.file("a"), b"garbage").unwrap();
        assert!(one.load("a").is_none());
    }

    #[tokio::test]
    async fn a_pending_login_is_found_only_by_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Credentials::with_key(dir.path(), [3; 32]).server("a");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let state: StoredAuthorizationState = serde_json::from_value(serde_json::json!({
            "pkce_verifier": "v".repeat(43),
            "csrf_token": "state-1",
            "created_at": now,
        }))
        .unwrap();
        StateStore::save(&store, "state-1", state).await.unwrap();
        assert!(StateStore::load(&store, "state-2").await.unwrap().is_none());
        assert!(StateStore::load(&store, "state-1").await.unwrap().is_some());
        StateStore::delete(&store, "state-1").await.unwrap();
        assert!(StateStore::load(&store, "state-1").await.unwrap().is_none());
    }

    #[test]
    fn hex_keys() {
        assert_eq!(parse_hex_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_hex_key("abc"), None);
        assert_eq!(parse_hex_key(&"zz".repeat(32)), None);
    }
}

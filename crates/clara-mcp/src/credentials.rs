//! Where the OAuth credentials of remote MCP servers live: one encrypted file
//! per server, `<servers_dir>/.credentials/<name>.enc`.
//!
//! A file holds what Clara registered with the server's authorization server
//! (client id and secret, redirect URI), the tokens (access, refresh, expiry)
//! and a login in progress (PKCE verifier and `state`). It is sealed by
//! [`clara_vault::Vault`], the workspace's one way of keeping secrets at rest:
//! XChaCha20-Poly1305 (a random 24-byte nonce per write, the server's name as
//! associated data, so a file copied to another name does not open). The key
//! is `CLARA_SECRET_KEY` (64 hex digits) when set, else the 32 random bytes of
//! `<servers_dir>/.credentials/key`, created with mode 0600 on first write.
//!
//! A file that does not open (another key, damage) counts as no credentials:
//! one log line says so, never its content. Nothing here puts a token in a
//! log, an error or `Debug`.

use clara_vault::{Vault, VaultError};
use rmcp::transport::auth::{
    AuthError, CredentialStore, StateStore, StoredAuthorizationState, StoredCredentials,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The directory under `servers_dir` that holds the credentials.
pub const CREDENTIALS_DIR: &str = ".credentials";

/// The environment variable that, when set, holds the key (64 hex digits).
pub use clara_vault::SECRET_KEY_ENV;

/// How long a started login may wait for its callback before it is refused.
const PENDING_LOGIN_SECS: u64 = 15 * 60;

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

/// The credentials of every server under one `servers_dir`. Clones share the
/// key and the write lock.
#[derive(Clone, Debug)]
pub struct Credentials {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Seals and opens the files: the given or environment key, else the
    /// key file `<dir>/key` (made on the first write).
    vault: Vault,
    /// Reads-modify-writes of files happen one at a time (in this process).
    writing: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// The credentials under `servers_dir` (`<servers_dir>/.credentials`),
    /// keyed by `CLARA_SECRET_KEY` when it is set. Touches no file.
    pub fn new(servers_dir: &Path) -> Result<Self, CredentialError> {
        let dir = servers_dir.join(CREDENTIALS_DIR);
        let vault = Vault::new(&dir).map_err(credential_error)?;
        Ok(Self::build(dir, vault))
    }

    /// The credentials under `servers_dir` sealed with `key` (no key file).
    pub fn with_key(servers_dir: &Path, key: [u8; 32]) -> Self {
        Self::build(servers_dir.join(CREDENTIALS_DIR), Vault::with_key(key))
    }

    fn build(dir: PathBuf, vault: Vault) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir,
                vault,
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
        let opened = match self.inner.vault.open(&aad(name), &sealed) {
            Ok(plain) => serde_json::from_slice::<Record>(&plain).ok(),
            Err(VaultError::NoKey(_)) => {
                tracing::warn!(server = %name, "stored OAuth credentials exist but there is no key to open them; the server counts as logged out");
                return None;
            }
            Err(VaultError::Open) => None,
            Err(error) => {
                tracing::warn!(server = %name, %error, "the credentials key is unusable; the server counts as logged out");
                return None;
            }
        };
        if opened.is_none() {
            tracing::warn!(server = %name, path = %path.display(), "the stored OAuth credentials could not be decrypted (another key, or a damaged file); the server counts as logged out");
        }
        opened
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
        let plain =
            serde_json::to_vec(&record).map_err(|e| CredentialError::Encode(e.to_string()))?;
        let sealed = self
            .inner
            .vault
            .seal(&aad(name), &plain)
            .map_err(credential_error)?;
        clara_vault::write_private(&self.file(name), &sealed).map_err(credential_error)
    }
}

/// A vault failure in this module's words (the key file's message says what
/// is lost here: the stored logins).
fn credential_error(error: VaultError) -> CredentialError {
    match error {
        VaultError::Io { path, source } => CredentialError::Io { path, source },
        VaultError::BadEnvKey => CredentialError::BadEnvKey,
        VaultError::BadKeyFile(path) => CredentialError::BadKeyFile(path),
        VaultError::NoKey(_) | VaultError::Encrypt | VaultError::Open => CredentialError::Encrypt,
    }
}

/// The associated data binding a file to its server's name.
fn aad(name: &str) -> String {
    format!("clara-mcp-credentials:{name}")
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
        let credentials = Credentials::build(
            dir.path().join(CREDENTIALS_DIR),
            Vault::from_key_file(&dir.path().join(CREDENTIALS_DIR)),
        );
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
        let again = Credentials::build(
            dir.path().join(CREDENTIALS_DIR),
            Vault::from_key_file(&dir.path().join(CREDENTIALS_DIR)),
        );
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
        use clara_vault::parse_hex_key;
        assert_eq!(parse_hex_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_hex_key("abc"), None);
        assert_eq!(parse_hex_key(&"zz".repeat(32)), None);
    }

    #[tokio::test]
    async fn files_keep_their_format_one_nonce_ciphertext() {
        // The format written before clara-vault existed: byte 1, a 24-byte
        // nonce, XChaCha20-Poly1305 with "clara-mcp-credentials:<name>".
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::with_key(dir.path(), [9; 32]);
        CredentialStore::save(&credentials.server("a"), tokens("t"))
            .await
            .unwrap();
        let raw = std::fs::read(credentials.file("a")).unwrap();
        assert_eq!(raw[0], 1);
        let plain = Vault::with_key([9; 32])
            .open("clara-mcp-credentials:a", &raw)
            .unwrap();
        let record: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert!(record.get("tokens").is_some());
    }
}

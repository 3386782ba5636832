//! Secrets at rest: what Clara stores encrypted (IMAP passwords, OAuth tokens).
//!
//! A [`Vault`] seals bytes with XChaCha20-Poly1305: a random 24-byte nonce per
//! seal (so the same secret sealed twice gives different bytes) and
//! *associated data* the caller names — the record the secret belongs to, such
//! as `"clara-email:password:<account id>"` — so sealed bytes copied to
//! another record do not open.
//!
//! The key is `CLARA_SECRET_KEY` (64 hex digits) when that is set, else the 32
//! random bytes of `<dir>/key`, created with mode 0600 (its directory 0700) on
//! the first [`Vault::seal`]. Several processes sharing a data directory
//! therefore share the key; two racing to create it end up using the one that
//! was written first.
//!
//! The sealed form is one format byte (`1`), the nonce, then the ciphertext
//! with its 16-byte tag. The key never appears in `Debug`, an error or a log.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable that, when set, holds the key (64 hex digits).
pub const SECRET_KEY_ENV: &str = "CLARA_SECRET_KEY";

/// The key file's name inside the vault's directory.
pub const KEY_FILE: &str = "key";

/// The first byte of sealed bytes: their format.
const FORMAT: u8 = 1;
/// XChaCha20's nonce: long enough that random nonces never repeat in practice.
const NONCE_LEN: usize = 24;

/// Why a secret could not be sealed or opened. Never holds the secret or the key.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key file or its directory could not be read or written.
    #[error("secret key storage {path}: {source}")]
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
    #[error(
        "the key file {0} is not 32 bytes; restore it, or remove it to start over (every stored secret is lost)"
    )]
    BadKeyFile(PathBuf),
    /// There is no key yet (no `CLARA_SECRET_KEY`, no key file), so nothing
    /// sealed before can be opened.
    #[error(
        "there is no secret key ({SECRET_KEY_ENV} or {0}), so the stored secret cannot be opened"
    )]
    NoKey(PathBuf),
    /// Encryption failed (cannot happen with a valid key; kept for honesty).
    #[error("encrypting the secret failed")]
    Encrypt,
    /// The bytes do not open with this key and associated data: another key,
    /// another record's secret, or damage.
    #[error(
        "the stored secret could not be decrypted (another key, another record's secret, or damaged data)"
    )]
    Open,
}

/// The key, never printed.
#[derive(Clone, Copy)]
struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Seals and opens secrets with one key. Clones share the key.
#[derive(Clone, Debug)]
pub struct Vault {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Where the key file lives (or would).
    dir: PathBuf,
    /// A key given by the caller or the environment; else the key file's once read.
    key: parking_lot::Mutex<Option<SecretKey>>,
}

impl Vault {
    /// The vault keyed by `CLARA_SECRET_KEY` when it is set, else by
    /// `<dir>/key` (made on the first seal). Touches no file.
    pub fn new(dir: &Path) -> Result<Self, VaultError> {
        let key = match std::env::var(SECRET_KEY_ENV) {
            Ok(hex) if !hex.trim().is_empty() => Some(SecretKey(
                parse_hex_key(hex.trim()).ok_or(VaultError::BadEnvKey)?,
            )),
            _ => None,
        };
        Ok(Self::build(dir, key))
    }

    /// A vault sealing with `key` (no key file, no environment).
    pub fn with_key(key: [u8; 32]) -> Self {
        Self::build(Path::new(""), Some(SecretKey(key)))
    }

    /// A vault keyed by the key file under `dir` only, ignoring
    /// `CLARA_SECRET_KEY` (tests, and callers that chose their key source).
    pub fn from_key_file(dir: &Path) -> Self {
        Self::build(dir, None)
    }

    fn build(dir: &Path, key: Option<SecretKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                key: parking_lot::Mutex::new(key),
            }),
        }
    }

    /// The key file's path (used only when no key was given).
    pub fn key_file(&self) -> PathBuf {
        self.inner.dir.join(KEY_FILE)
    }

    /// Whether a key is at hand without creating one: given, from the
    /// environment, or an existing key file.
    pub fn has_key(&self) -> bool {
        matches!(self.key(false), Ok(Some(_)))
    }

    /// `plain` sealed, bound to `aad` (it must be given again to open).
    /// Creates the key file when there is no key yet.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self
            .key(true)?
            .ok_or_else(|| VaultError::NoKey(self.key_file()))?;
        let cipher = XChaCha20Poly1305::new(&Key::from(key.0));
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain bytes `sealed` holds, if they were sealed by this key with `aad`.
    /// Never creates a key: without one, [`VaultError::NoKey`].
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self
            .key(false)?
            .ok_or_else(|| VaultError::NoKey(self.key_file()))?;
        let (&format, rest) = sealed.split_first().ok_or(VaultError::Open)?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce_bytes, body) = rest.split_at(NONCE_LEN);
        let nonce =
            XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce_bytes).map_err(|_| VaultError::Open)?);
        XChaCha20Poly1305::new(&Key::from(key.0))
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open)
    }

    /// The key: the given or environment one, else the key file's, which is
    /// created when `create` (the first seal).
    fn key(&self, create: bool) -> Result<Option<SecretKey>, VaultError> {
        let mut slot = self.inner.key.lock();
        if let Some(key) = *slot {
            return Ok(Some(key));
        }
        let path = self.key_file();
        let read_key = |path: PathBuf| -> Result<[u8; 32], VaultError> {
            let bytes = std::fs::read(&path).map_err(|source| VaultError::Io {
                path: path.clone(),
                source,
            })?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| VaultError::BadKeyFile(path))
        };
        let key = match std::fs::metadata(&path) {
            Ok(_) => read_key(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key: [u8; 32] = rand::random();
                match create_private_new(&path, &key) {
                    Ok(()) => key,
                    // Another handle (or process) made it first: use its key.
                    Err(VaultError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        read_key(path)?
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(VaultError::Io { path, source }),
        };
        *slot = Some(SecretKey(key));
        Ok(Some(SecretKey(key)))
    }
}

/// `64 hex digits` → 32 bytes.
pub fn parse_hex_key(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        key[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(key)
}

/// Makes `dir` (mode 0700 on Unix).
pub fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| VaultError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` (which must not exist) holding `bytes`, mode 0600, making
/// its directory (0700) when missing.
pub fn create_private_new(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let io = |source| VaultError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut file = private_options().create_new(true).open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Replaces `path` with `bytes` atomically (a 0600 temporary file beside it,
/// renamed), making its directory (0700) when missing.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let io = |source| VaultError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let mut file = private_options()
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sealed_bytes_open_only_with_the_same_key_and_associated_data() {
        let vault = Vault::with_key([7; 32]);
        let sealed = vault.seal("account:1", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(sealed[0], FORMAT);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 7 + 16);
        assert_eq!(vault.open("account:1", &sealed).unwrap(), b"hunter2");

        // Random nonces: the same secret never seals to the same bytes.
        assert_ne!(vault.seal("account:1", b"hunter2").unwrap(), sealed);
        // Another record's associated data, another key, or damage: no.
        assert!(matches!(
            vault.open("account:2", &sealed),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            Vault::with_key([8; 32]).open("account:1", &sealed),
            Err(VaultError::Open)
        ));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            vault.open("account:1", &damaged),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            vault.open("account:1", b""),
            Err(VaultError::Open)
        ));
        assert!(matches!(
            vault.open("account:1", &[2; 60]),
            Err(VaultError::Open)
        ));
        // An empty secret round-trips too.
        let empty = vault.seal("x", b"").unwrap();
        assert_eq!(vault.open("x", &empty).unwrap(), b"");
    }

    #[test]
    fn the_key_file_is_made_on_first_seal_with_mode_0600_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("secrets");
        let vault = Vault::from_key_file(&keys);
        assert!(!vault.has_key());
        // Opening never creates a key.
        assert!(matches!(
            vault.open("a", &[1; 60]),
            Err(VaultError::NoKey(_))
        ));
        assert!(!vault.key_file().exists());

        let sealed = vault.seal("a", b"secret").unwrap();
        let key = std::fs::read(vault.key_file()).unwrap();
        assert_eq!(key.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&vault.key_file()), 0o600);
            assert_eq!(mode(&keys), 0o700);
        }
        // A second vault on the same directory (another process) opens it.
        let again = Vault::from_key_file(&keys);
        assert!(again.has_key());
        assert_eq!(again.open("a", &sealed).unwrap(), b"secret");
        again.seal("b", b"more").unwrap();
        assert_eq!(std::fs::read(vault.key_file()).unwrap(), key);
    }

    #[test]
    fn a_bad_key_file_is_named_and_nothing_secret_is_printed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let vault = Vault::from_key_file(dir.path());
        let error = vault.seal("a", b"hunter2").unwrap_err();
        assert!(matches!(error, VaultError::BadKeyFile(_)), "{error}");
        assert!(error.to_string().contains("not 32 bytes"));

        let keyed = Vault::with_key([0xab; 32]);
        let debug = format!("{keyed:?}");
        assert!(
            debug.contains("[redacted]") && !debug.contains("171"),
            "{debug}"
        );
    }

    #[test]
    fn hex_keys() {
        assert_eq!(parse_hex_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_hex_key(&"0F".repeat(32)), Some([0x0f; 32]));
        assert_eq!(parse_hex_key("abc"), None);
        assert_eq!(parse_hex_key(&"zz".repeat(32)), None);
    }

    #[test]
    fn private_writes_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep").join("file.enc");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        assert!(create_private_new(&path, b"three").is_err());
    }
}

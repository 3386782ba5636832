//! [`FileStore`]: keeps, reads, lists and removes files by [`FileKey`], the
//! same way whether they live in a local directory or an S3 bucket.

use crate::error::{FilesError, check_size};
use crate::key::{FileKey, check_path};
use crate::name::sanitise_name;
use crate::reason::{clause, http_status, root_cause};
use crate::settings::{Backend, DEFAULT_MAX_FILE_MB, FilesSettings};
use clara_core::component::ConfigError;
use clara_core::file::media_type_for;
use clara_core::{FileBlob, Secret};
use futures::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutOptions, PutPayload,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A kept file as a listing (or a put) describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Where it is kept.
    pub key: FileKey,
    /// Its name ([`FileKey::file_name`]).
    pub name: String,
    /// Its MIME type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written (Unix milliseconds); `None` right after a put.
    pub modified_ms: Option<i64>,
}

/// Where files are kept. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<dyn ObjectStore>,
    /// The store in words, for messages: never a credential.
    place: String,
    max_file_bytes: u64,
    /// Whether the store keeps a file's type beside it (S3, memory); the local
    /// directory does not, so the type comes from the name.
    keeps_types: bool,
    /// Whether it is reached with credentials (S3), which a refusal is about.
    credentialed: bool,
    /// Scrubbed from any reason the store gives, should one ever echo it.
    secret: Option<Secret>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("place", &self.place)
            .field("max_file_bytes", &self.max_file_bytes)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    fn new(inner: Arc<dyn ObjectStore>, place: String) -> Self {
        Self {
            inner,
            place,
            max_file_bytes: DEFAULT_MAX_FILE_MB * 1024 * 1024,
            keeps_types: false,
            credentialed: false,
            secret: None,
        }
    }

    /// Files in the directory `dir`, created (readable by its owner only)
    /// when missing. Writes are synced to disk before they count as done.
    pub fn local(dir: impl Into<PathBuf>) -> Result<Self, FilesError> {
        let dir = dir.into();
        let setup = |what: &str, error: &dyn std::error::Error| {
            FilesError::Setup(format!(
                "The files directory {} could not be {what}: {}.",
                dir.display(),
                clause(&root_cause(error, None))
            ))
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| setup("created", &e))?;
            restrict(&dir).map_err(|e| setup("made private", &e))?;
        }
        let local = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| setup("opened", &e))?
            // Removing a day's last file removes its empty folders (never `dir`).
            .with_automatic_cleanup(true)
            .with_fsync(true);
        Ok(Self::new(
            Arc::new(local),
            format!("the files directory {}", dir.display()),
        ))
    }

    /// Files in the S3 (or S3-compatible) bucket `config` names, under its
    /// prefix. Makes no request: a wrong bucket or key shows on first use.
    #[cfg(feature = "s3")]
    pub fn s3(config: crate::settings::S3Config) -> Result<Self, FilesError> {
        let client = crate::s3::client(&config)?;
        let inner: Arc<dyn ObjectStore> = match &config.prefix {
            Some(prefix) => Arc::new(object_store::prefix::PrefixStore::new(
                client,
                prefix.as_str(),
            )),
            None => Arc::new(client),
        };
        Ok(Self {
            keeps_types: true,
            credentialed: true,
            secret: Some(config.secret_access_key.clone()),
            ..Self::new(inner, crate::s3::place(&config))
        })
    }

    /// Files in memory, gone when the last clone is dropped: for tests of
    /// the crates that keep files.
    pub fn in_memory() -> Self {
        Self {
            keeps_types: true,
            ..Self::new(Arc::new(InMemory::new()), "memory".to_owned())
        }
    }

    /// The store `[files]` describes: its bucket when `s3_bucket` is set,
    /// else its `dir` (default `<data_dir>/files`, created), with its size
    /// limit. Makes no network request.
    pub fn from_settings(settings: &FilesSettings, data_dir: &Path) -> Result<Self, ConfigError> {
        let config = settings.config(data_dir)?;
        let store = match config.backend {
            Backend::Local(dir) => {
                Self::local(dir).map_err(|e| ConfigError::new(format!("[files] dir: {e}")))?
            }
            #[cfg(feature = "s3")]
            Backend::S3(s3) => {
                Self::s3(s3).map_err(|e| ConfigError::new(format!("[files] {e}")))?
            }
            // `config` refuses a bucket in a build without S3; kept for completeness.
            #[cfg(not(feature = "s3"))]
            Backend::S3(_) => return Err(ConfigError::new(crate::settings::NO_S3)),
        };
        Ok(store.with_max_file_bytes(config.max_file_bytes))
    }

    /// The same store with a size limit of `bytes`.
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// The largest file kept, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Where files are kept, in words (`the files directory /srv/clara/files`,
    /// `the S3 bucket b at https://…`); never a credential.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Whether a file `name` of `size` bytes may be kept: adapters ask before
    /// downloading what a platform only announces.
    pub fn check_size(&self, name: &str, size: u64) -> Result<(), FilesError> {
        check_size(&sanitise_name(name), size, self.max_file_bytes)
    }

    /// Keeps `file` at `key` (replacing what was there). Its type is the
    /// blob's, or the name's when the blob gives none.
    pub async fn put(&self, key: &FileKey, file: &FileBlob) -> Result<StoredFile, FilesError> {
        let size = u64::try_from(file.data.len()).unwrap_or(u64::MAX);
        self.check_size(&file.name, size)?;
        let media_type = match file.media_type.trim() {
            "" => media_type_for(key.file_name()).to_owned(),
            given => given.to_owned(),
        };
        let mut options = PutOptions::default();
        if self.keeps_types {
            let mut attributes = Attributes::new();
            attributes.insert(
                Attribute::ContentType,
                AttributeValue::from(media_type.clone()),
            );
            options = PutOptions::from(attributes);
        }
        self.inner
            .put_opts(
                &store_path(key.as_str())?,
                PutPayload::from(file.data.clone()),
                options,
            )
            .await
            .map_err(|e| self.failure("keep", key.as_str(), e))?;
        Ok(StoredFile {
            key: key.clone(),
            name: key.file_name().to_owned(),
            media_type,
            size,
            modified_ms: None,
        })
    }

    /// The file kept at `key`, named [`FileKey::file_name`]; its type as it
    /// was kept, or the name's.
    pub async fn get(&self, key: &FileKey) -> Result<FileBlob, FilesError> {
        let fail = |e| self.failure("read", key.as_str(), e);
        let result = self
            .inner
            .get(&store_path(key.as_str())?)
            .await
            .map_err(fail)?;
        let name = key.file_name();
        let media_type = result
            .attributes
            .get(&Attribute::ContentType)
            .map(|kept| kept.to_string())
            .filter(|kept| !kept.trim().is_empty())
            .unwrap_or_else(|| media_type_for(name).to_owned());
        let data = result.bytes().await.map_err(fail)?;
        Ok(FileBlob {
            name: name.to_owned(),
            media_type,
            data: data.to_vec(),
        })
    }

    /// Every file below the folder `prefix` (`uploads/<user>`, see
    /// [`FileKey::user_prefix`]; `""` for all), sorted by key. Whole segments
    /// match: `uploads/ab` does not list `uploads/abc`. Objects that are no
    /// clean key (put there by something else) are left out.
    pub async fn list(&self, prefix: &str) -> Result<Vec<StoredFile>, FilesError> {
        check_path(prefix, true)?;
        let folder = match prefix {
            "" => None,
            prefix => Some(store_path(prefix)?),
        };
        let metas: Vec<ObjectMeta> = self
            .inner
            .list(folder.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.failure("list", prefix, e))?;
        let mut files: Vec<StoredFile> = metas
            .into_iter()
            .filter_map(|meta| {
                let key = FileKey::parse(meta.location.as_ref()).ok()?;
                let name = key.file_name().to_owned();
                Some(StoredFile {
                    media_type: media_type_for(&name).to_owned(),
                    name,
                    key,
                    size: meta.size,
                    modified_ms: Some(meta.last_modified.timestamp_millis()),
                })
            })
            .collect();
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    /// Removes the file at `key`; removing a file that is not there is no error.
    pub async fn delete(&self, key: &FileKey) -> Result<(), FilesError> {
        match self.inner.delete(&store_path(key.as_str())?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failure("remove", key.as_str(), e)),
        }
    }

    /// One sentence for a failed `action` on `key`.
    fn failure(&self, action: &'static str, key: &str, error: object_store::Error) -> FilesError {
        let cause = root_cause(&error, self.secret.as_ref());
        // A listing's refusal arrives as a generic error: only its text has the status.
        let refused = matches!(
            error,
            object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. }
        ) || matches!(http_status(&cause), Some(401 | 403));
        match error {
            object_store::Error::NotFound { .. } => FilesError::NotFound {
                key: key.to_owned(),
            },
            _ if refused && self.credentialed => FilesError::Denied {
                store: self.place.clone(),
            },
            _ => FilesError::Store {
                action,
                key: key.to_owned(),
                store: self.place.clone(),
                reason: clause(&cause),
            },
        }
    }
}

/// A clean key or folder as the store's path (taken as it is: it holds
/// nothing the store would escape).
fn store_path(text: &str) -> Result<StorePath, FilesError> {
    check_path(text, false)?;
    StorePath::parse(text).map_err(|_| FilesError::BadKey {
        key: text.chars().take(200).collect(),
        reason: "the store refuses it",
    })
}

/// Only the owner may read the files directory: it holds what people sent.
#[cfg(unix)]
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_place_only() {
        let store = FileStore::in_memory();
        assert_eq!(
            format!("{store:?}"),
            "FileStore { place: \"memory\", max_file_bytes: 20971520, .. }"
        );
    }
}

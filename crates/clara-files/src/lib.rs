//! Where the files people send to Clara are kept.
//!
//! Documents, images and voice notes that arrive on Telegram, Discord or the
//! web page are kept by a [`FileStore`]: a local directory by default
//! (`<data dir>/files`), or an S3-compatible bucket when `[files] s3_bucket`
//! is set and the crate is built with the `s3` feature. Both go through
//! `object_store`, so they behave alike.
//!
//! Each file gets a [`FileKey`] (`uploads/<user>/<yyyy-mm-dd>/<id>-<name>`)
//! whose name part is sanitised ([`sanitise_name`]), and a size limit
//! (`max_file_mb`, default 20) refuses larger files with one sentence
//! ([`FilesError::TooLarge`]). No error carries a credential.

mod error;
mod key;
mod name;
mod reason;
#[cfg(feature = "s3")]
mod s3;
pub mod settings;
mod store;

pub use error::{FilesError, check_size};
pub use key::{FileKey, UPLOADS};
pub use name::{MAX_NAME_BYTES, sanitise_name};
pub use settings::{Backend, DEFAULT_MAX_FILE_MB, FilesConfig, FilesSettings, S3Config};
pub use store::{FileStore, StoredFile};

use clara_core::component::{Component, EnvKey};

/// The file store's configuration: section `[files]`.
pub struct Files;

impl Component for Files {
    const NAME: &'static str = "files";
    // Later entries win: the S3_* names over the AWS_* ones.
    const ENV: &'static [EnvKey] = &[
        ("S3_BUCKET", "s3_bucket"),
        ("S3_REGION", "s3_region"),
        ("S3_ENDPOINT", "s3_endpoint"),
        ("AWS_ACCESS_KEY_ID", "s3_access_key_id"),
        ("S3_ACCESS_KEY_ID", "s3_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "s3_secret_access_key"),
        ("S3_SECRET_ACCESS_KEY", "s3_secret_access_key"),
    ];
    type Settings = FilesSettings;
}

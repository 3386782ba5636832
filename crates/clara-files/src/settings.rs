//! `[files]` in `clara.toml`: where files are kept and how large they may be.
//!
//! Files go to a local directory unless `s3_bucket` is set; then they go to
//! that bucket (AWS S3 or any S3-compatible store through `s3_endpoint`).

use crate::key::check_path;
use clara_core::Secret;
use clara_core::component::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The size limit when `max_file_mb` is not set.
pub const DEFAULT_MAX_FILE_MB: u64 = 20;

/// The highest `max_file_mb`: a file is held in memory (and travels as
/// base64) while it passes through Clara.
pub const MAX_FILE_MB_CEILING: u64 = 1024;

/// The S3 region when `s3_region` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// `[files]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// The local directory files are kept in. Default `<data dir>/files`.
    pub dir: Option<PathBuf>,
    /// The largest file kept, in MiB. Default 20, at most 1024.
    pub max_file_mb: Option<u64>,
    /// The S3 bucket; when set, files are kept there instead of `dir`.
    /// Environment: `S3_BUCKET`.
    pub s3_bucket: Option<String>,
    /// The bucket's region. Environment: `S3_REGION`. Default `us-east-1`.
    pub s3_region: Option<String>,
    /// An S3-compatible endpoint (`https://s3.example.com`,
    /// `http://127.0.0.1:9000`); AWS when unset. Environment: `S3_ENDPOINT`.
    pub s3_endpoint: Option<String>,
    /// The access key id. Environment: `S3_ACCESS_KEY_ID`, else `AWS_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// The secret access key. Environment: `S3_SECRET_ACCESS_KEY`, else
    /// `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted
    /// ones (`bucket.endpoint/key`); most self-hosted stores need it. Default false.
    pub s3_path_style: bool,
    /// A folder inside the bucket everything is kept under (`clara/files`).
    pub s3_prefix: Option<String>,
}

/// An S3 (or S3-compatible) bucket and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// An S3-compatible endpoint; AWS when `None`.
    pub endpoint: Option<String>,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// Path-style requests instead of virtual-hosted ones.
    pub path_style: bool,
    /// A folder inside the bucket everything is kept under.
    pub prefix: Option<String>,
}

/// Where files are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket (only with the `s3` feature).
    S3(S3Config),
}

/// [`FilesSettings`] checked, with defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    /// Where files are kept.
    pub backend: Backend,
    /// The largest file kept, in bytes.
    pub max_file_bytes: u64,
}

/// The sentence for S3 settings in a build without S3.
pub(crate) const NO_S3: &str = "[files] s3_bucket (S3_BUCKET) is set, but this Clara was built without S3 support (the `s3` feature of clara-files); build it with that feature, or unset s3_bucket to keep files in a local directory";

impl FilesSettings {
    /// Checks the values; an error names the key (and its environment
    /// variable), never a secret. `data_dir` gives the default directory.
    pub fn config(&self, data_dir: &Path) -> Result<FilesConfig, ConfigError> {
        let max_file_mb = match self.max_file_mb {
            None => DEFAULT_MAX_FILE_MB,
            Some(0) => return Err(ConfigError::new("[files] max_file_mb must be at least 1")),
            Some(n) if n > MAX_FILE_MB_CEILING => {
                return Err(ConfigError::new(format!(
                    "[files] max_file_mb must be at most {MAX_FILE_MB_CEILING} (files are held in memory while they pass through Clara)"
                )));
            }
            Some(n) => n,
        };
        let backend = match text(&self.s3_bucket) {
            Some(bucket) => Backend::S3(self.s3(bucket)?),
            None => {
                // Credentials alone are no mistake: AWS_* variables are often set for other tools.
                for (value, key) in [
                    (&self.s3_endpoint, "s3_endpoint (S3_ENDPOINT)"),
                    (&self.s3_prefix, "s3_prefix"),
                ] {
                    if text(value).is_some() {
                        return Err(ConfigError::new(format!(
                            "[files] {key} is set but s3_bucket (S3_BUCKET) is not; set the bucket to keep files in S3, or remove {key}"
                        )));
                    }
                }
                match &self.dir {
                    Some(dir) if dir.as_os_str().is_empty() => {
                        return Err(ConfigError::new("[files] dir is empty"));
                    }
                    Some(dir) => Backend::Local(dir.clone()),
                    None => Backend::Local(data_dir.join("files")),
                }
            }
        };
        Ok(FilesConfig {
            backend,
            max_file_bytes: max_file_mb * 1024 * 1024,
        })
    }

    fn s3(&self, bucket: String) -> Result<S3Config, ConfigError> {
        if !cfg!(feature = "s3") {
            return Err(ConfigError::new(NO_S3));
        }
        if bucket.contains(['/', ' ']) {
            return Err(ConfigError::new(
                "[files] s3_bucket (S3_BUCKET) must be a bucket name, without / or spaces",
            ));
        }
        let endpoint = text(&self.s3_endpoint);
        if let Some(endpoint) = &endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "[files] s3_endpoint (S3_ENDPOINT) must start with http:// or https://",
            ));
        }
        let access_key_id = text(&self.s3_access_key_id).ok_or_else(|| {
            ConfigError::new(
                "[files] s3_bucket is set but s3_access_key_id (S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID) is not",
            )
        })?;
        let secret_access_key = Secret::given(self.s3_secret_access_key.as_ref())
            .cloned()
            .ok_or_else(|| {
                ConfigError::new(
                    "[files] s3_bucket is set but s3_secret_access_key (S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY) is not",
                )
            })?;
        let prefix = match text(&self.s3_prefix) {
            None => None,
            Some(prefix) => {
                let prefix = prefix.trim_matches('/').to_owned();
                if check_path(&prefix, true).is_err() {
                    return Err(ConfigError::new(
                        "[files] s3_prefix must be a folder such as clara/files: no empty segments, no leading dots, no characters keys avoid",
                    ));
                }
                (!prefix.is_empty()).then_some(prefix)
            }
        };
        Ok(S3Config {
            bucket,
            region: text(&self.s3_region).unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            endpoint,
            access_key_id,
            secret_access_key,
            path_style: self.s3_path_style,
            prefix,
        })
    }
}

/// A set, non-blank value, trimmed.
fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> FilesSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn by_default_files_go_to_the_data_dir_with_20_mb() {
        let config = FilesSettings::default().config(Path::new("/data")).unwrap();
        assert_eq!(config.backend, Backend::Local(PathBuf::from("/data/files")));
        assert_eq!(config.max_file_bytes, 20 * 1024 * 1024);
        let config = parse("dir = \"/srv/f\"\nmax_file_mb = 5")
            .config(Path::new("/data"))
            .unwrap();
        assert_eq!(config.backend, Backend::Local(PathBuf::from("/srv/f")));
        assert_eq!(config.max_file_bytes, 5 * 1024 * 1024);
    }

    #[test]
    fn unknown_keys_and_bad_limits_are_refused() {
        assert!(toml::from_str::<FilesSettings>("max_size = 3").is_err());
        for (text, expected) in [
            ("max_file_mb = 0", "[files] max_file_mb must be at least 1"),
            ("dir = \"\"", "[files] dir is empty"),
        ] {
            let error = parse(text).config(Path::new("/d")).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
        let error = parse("max_file_mb = 5000")
            .config(Path::new("/d"))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("[files] max_file_mb must be at most 1024")
        );
    }

    #[test]
    fn s3_details_without_a_bucket_are_a_mistake_but_bare_credentials_are_not() {
        let error = parse("s3_endpoint = \"http://127.0.0.1:9000\"")
            .config(Path::new("/d"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "[files] s3_endpoint (S3_ENDPOINT) is set but s3_bucket (S3_BUCKET) is not; set the bucket to keep files in S3, or remove s3_endpoint (S3_ENDPOINT)"
        );
        let config = parse("s3_access_key_id = \"AKIA\"\ns3_secret_access_key = \"shh\"")
            .config(Path::new("/d"))
            .unwrap();
        assert_eq!(config.backend, Backend::Local(PathBuf::from("/d/files")));
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn a_bucket_without_the_s3_feature_is_a_clear_error() {
        let settings = parse("s3_bucket = \"b\"\ns3_secret_access_key = \"top-secret\"");
        let error = settings.config(Path::new("/d")).unwrap_err().to_string();
        assert!(error.contains("built without S3 support"), "{error}");
        assert!(!error.contains("top-secret"));
    }

    #[cfg(feature = "s3")]
    #[test]
    fn a_bucket_with_its_credentials_is_s3() {
        let settings = parse(
            r#"
            s3_bucket = " clara "
            s3_endpoint = "http://127.0.0.1:9000"
            s3_access_key_id = "id"
            s3_secret_access_key = "top-secret"
            s3_path_style = true
            s3_prefix = "/clara/files/"
            "#,
        );
        let Backend::S3(s3) = settings.config(Path::new("/d")).unwrap().backend else {
            panic!("not S3");
        };
        assert_eq!(s3.bucket, "clara");
        assert_eq!(s3.region, DEFAULT_REGION);
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.secret_access_key.expose(), "top-secret");
        assert!(s3.path_style);
        assert_eq!(s3.prefix.as_deref(), Some("clara/files"));
        assert!(!format!("{s3:?}").contains("top-secret"));
    }

    #[cfg(feature = "s3")]
    #[test]
    fn incomplete_s3_settings_name_the_missing_key() {
        let cases = [
            (
                "s3_bucket = \"b\"\ns3_secret_access_key = \"top-secret\"",
                "[files] s3_bucket is set but s3_access_key_id (S3_ACCESS_KEY_ID or AWS_ACCESS_KEY_ID) is not",
            ),
            (
                "s3_bucket = \"b\"\ns3_access_key_id = \"id\"\ns3_secret_access_key = \" \"",
                "[files] s3_bucket is set but s3_secret_access_key (S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY) is not",
            ),
            (
                "s3_bucket = \"b\"\ns3_access_key_id = \"id\"\ns3_secret_access_key = \"top-secret\"\ns3_endpoint = \"127.0.0.1:9000\"",
                "[files] s3_endpoint (S3_ENDPOINT) must start with http:// or https://",
            ),
            (
                "s3_bucket = \"a/b\"",
                "[files] s3_bucket (S3_BUCKET) must be a bucket name, without / or spaces",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).config(Path::new("/d")).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
        let error = parse(
            "s3_bucket = \"b\"\ns3_access_key_id = \"id\"\ns3_secret_access_key = \"s\"\ns3_prefix = \"../up\"",
        )
        .config(Path::new("/d"))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("[files] s3_prefix must be a folder")
        );
    }
}

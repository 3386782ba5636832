//! Where a file is kept: its key, a `/`-separated path every store
//! understands the same way (a directory below the files directory, an object
//! name in a bucket).

use crate::error::FilesError;
use crate::name::{is_clean_segment, sanitise_name};
use clara_core::UserId;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The folder uploads are kept under: `uploads/<user>/<yyyy-mm-dd>/…`.
pub const UPLOADS: &str = "uploads";

/// The most bytes of a key (S3 allows 1024).
const MAX_KEY_BYTES: usize = 1024;

/// The key of a kept file, e.g.
/// `uploads/0190…/2026-11-22/0193…-report.pdf`. Every segment is clean (no
/// `..`, no leading dot, no separators or characters a store would escape), so
/// a key names the same place in every store and never leaves its folder.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileKey(String);

impl FileKey {
    /// A new key for a file `user` sent at `now_ms` (Unix milliseconds) named
    /// `name`: `uploads/<user>/<yyyy-mm-dd>/<id>-<sanitised name>`. The id is a
    /// version-7 UUID from `now_ms` with random bits, so keys sort by time and
    /// two files with the same name never share a key.
    pub fn upload(user: &UserId, name: &str, now_ms: i64) -> Self {
        let millis = u64::try_from(now_ms).unwrap_or(0);
        let id = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            millis / 1000,
            // Below 1000 ms × 1e6, so it fits a u32.
            u32::try_from((millis % 1000) * 1_000_000).unwrap_or(0),
        ));
        Self(format!(
            "{}/{}-{}",
            Self::day_prefix(user, now_ms),
            id,
            sanitise_name(name)
        ))
    }

    /// The folder of everything `user` sent: `uploads/<user>`, for
    /// [`FileStore::list`](crate::FileStore::list).
    pub fn user_prefix(user: &UserId) -> String {
        format!("{UPLOADS}/{user}")
    }

    /// The folder of what `user` sent on the (UTC) day of `now_ms`:
    /// `uploads/<user>/<yyyy-mm-dd>`.
    pub fn day_prefix(user: &UserId, now_ms: i64) -> String {
        let day = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .format("%Y-%m-%d");
        format!("{}/{day}", Self::user_prefix(user))
    }

    /// A key read back from elsewhere (a stored message, a listing), checked
    /// to be clean.
    pub fn parse(text: &str) -> Result<Self, FilesError> {
        check_path(text, false)?;
        Ok(Self(text.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file's name: its last segment without the id [`FileKey::upload`]
    /// puts in front (`report.pdf`).
    pub fn file_name(&self) -> &str {
        let last = self.0.rsplit('/').next().unwrap_or(&self.0);
        let has_id = last.len() > 37
            && last.as_bytes().get(36) == Some(&b'-')
            && last.get(..36).is_some_and(|id| Uuid::try_parse(id).is_ok());
        match has_id {
            true => &last[37..],
            false => last,
        }
    }
}

/// Checks a key or, with `prefix`, a folder to list (which may be empty:
/// everything).
pub(crate) fn check_path(text: &str, prefix: bool) -> Result<(), FilesError> {
    let bad = |reason: &'static str| FilesError::BadKey {
        key: text.chars().take(200).collect(),
        reason,
    };
    if text.is_empty() {
        return match prefix {
            true => Ok(()),
            false => Err(bad("it is empty")),
        };
    }
    if text.len() > MAX_KEY_BYTES {
        return Err(bad("it is longer than 1024 bytes"));
    }
    if text.starts_with('/') || text.ends_with('/') {
        return Err(bad("it starts or ends with /"));
    }
    if !text.split('/').all(is_clean_segment) {
        return Err(bad(
            "a segment is empty, starts with a dot or holds a character keys avoid",
        ));
    }
    Ok(())
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FileKey {
    type Error = FilesError;

    fn try_from(text: String) -> Result<Self, FilesError> {
        check_path(&text, false)?;
        Ok(Self(text))
    }
}

impl From<FileKey> for String {
    fn from(key: FileKey) -> Self {
        key.0
    }
}

impl AsRef<str> for FileKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-22T10:00:00.123Z
    const NOW_MS: i64 = 1_795_341_600_123;

    #[test]
    fn an_upload_key_has_user_day_id_and_clean_name() {
        let user = UserId::new();
        let key = FileKey::upload(&user, "../../etc/passwd", NOW_MS);
        let text = key.as_str();
        let prefix = format!("uploads/{user}/2026-11-22/");
        assert!(text.starts_with(&prefix), "{text}");
        let last = &text[prefix.len()..];
        assert!(last.ends_with("-passwd"), "{text}");
        let id = Uuid::try_parse(&last[..36]).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(key.file_name(), "passwd");
        assert_eq!(FileKey::parse(text).unwrap(), key);
    }

    #[test]
    fn two_uploads_of_one_name_at_one_moment_get_two_keys() {
        let user = UserId::new();
        let a = FileKey::upload(&user, "a.txt", NOW_MS);
        let b = FileKey::upload(&user, "a.txt", NOW_MS);
        assert_ne!(a, b);
    }

    #[test]
    fn a_time_before_1970_falls_back_to_the_epoch_day() {
        let user = UserId::new();
        let key = FileKey::upload(&user, ".bashrc", -5);
        assert!(key.as_str().contains("/1969-12-31/") || key.as_str().contains("/1970-01-01/"));
        assert_eq!(key.file_name(), "bashrc");
    }

    #[test]
    fn parse_refuses_what_could_leave_the_folder() {
        for bad in [
            "",
            "/etc/passwd",
            "uploads/../secret",
            "uploads/./x",
            "uploads//x",
            "uploads/x/",
            "uploads/.hidden",
            "uploads/a\\b",
            "uploads/a%2Fb",
        ] {
            let error = FileKey::parse(bad).unwrap_err();
            assert!(matches!(error, FilesError::BadKey { .. }), "{bad}: {error}");
        }
        assert!(FileKey::parse("uploads/x/2026-01-01/a.txt").is_ok());
        assert_eq!(
            FileKey::parse("../x").unwrap_err().to_string(),
            "\"../x\" is not a file key: a segment is empty, starts with a dot or holds a character keys avoid."
        );
    }

    #[test]
    fn a_name_without_an_id_is_the_last_segment() {
        assert_eq!(
            FileKey::parse("exports/chart.png").unwrap().file_name(),
            "chart.png"
        );
    }

    #[test]
    fn keys_travel_as_strings_and_are_checked_on_the_way_in() {
        let key = FileKey::parse("uploads/u/2026-01-01/a.txt").unwrap();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, "\"uploads/u/2026-01-01/a.txt\"");
        assert_eq!(serde_json::from_str::<FileKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<FileKey>("\"../x\"").is_err());
    }
}

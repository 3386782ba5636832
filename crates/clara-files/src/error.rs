//! What can go wrong keeping a file, each as one sentence a person can act on.
//! No variant holds a credential: reasons that come from the store are
//! scrubbed of the secret before they are kept.

const MIB: u64 = 1024 * 1024;

/// A file could not be kept, found or removed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The file is over the size limit.
    #[error("{name} is {} MB; files up to {} MB are kept.", size_over(*size), size_limit(*max_bytes))]
    TooLarge {
        /// The file's name.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max_bytes: u64,
    },
    /// Nothing is kept under the key.
    #[error("No file is kept at {key}.")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// Text that cannot be a key (or a folder to list).
    #[error("{key:?} is not a file key: {reason}.")]
    BadKey {
        /// The text (at most 200 characters of it).
        key: String,
        /// Why not.
        reason: &'static str,
    },
    /// The store refused the credentials.
    #[error(
        "{store} refused Clara's credentials: check s3_access_key_id and s3_secret_access_key in [files]."
    )]
    Denied {
        /// The store (`the S3 bucket clara at http://…`), without credentials.
        store: String,
    },
    /// The store failed (unreachable, disk full, …).
    #[error("Could not {action} {key} in {store}: {reason}.")]
    Store {
        /// `keep`, `read`, `list` or `remove`.
        action: &'static str,
        /// The key or folder.
        key: String,
        /// The store, without credentials.
        store: String,
        /// The underlying cause, short, without credentials.
        reason: String,
    },
    /// The store could not be set up (a directory that cannot be created, an
    /// S3 setting the client refuses).
    #[error("{0}")]
    Setup(String),
}

/// A size over the limit in MB, rounded up to a tenth so it never reads as
/// the limit itself (`20.1`, not `20`).
fn size_over(bytes: u64) -> String {
    tenths(bytes.saturating_mul(10).div_ceil(MIB))
}

/// The limit in MB, rounded down to a tenth (`20`, `0.5`).
fn size_limit(bytes: u64) -> String {
    tenths(bytes.saturating_mul(10) / MIB)
}

fn tenths(tenths: u64) -> String {
    match tenths % 10 {
        0 => format!("{}", tenths / 10),
        rest => format!("{}.{rest}", tenths / 10),
    }
}

/// Whether `size` bytes of `name` may be kept under `max_bytes`: a pure check
/// adapters can make before downloading anything.
pub fn check_size(name: &str, size: u64, max_bytes: u64) -> Result<(), FilesError> {
    match size > max_bytes {
        true => Err(FilesError::TooLarge {
            name: name.to_owned(),
            size,
            max_bytes,
        }),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_is_one_sentence_with_both_sizes() {
        let size = 25 * MIB + 3 * MIB / 10;
        let error = check_size("report.pdf", size, 20 * MIB).unwrap_err();
        assert_eq!(
            error.to_string(),
            "report.pdf is 25.3 MB; files up to 20 MB are kept."
        );
        let just_over = check_size("a.bin", 20 * MIB + 1, 20 * MIB).unwrap_err();
        assert_eq!(
            just_over.to_string(),
            "a.bin is 20.1 MB; files up to 20 MB are kept."
        );
        let small = check_size("b.bin", MIB, MIB / 2).unwrap_err();
        assert_eq!(
            small.to_string(),
            "b.bin is 1 MB; files up to 0.5 MB are kept."
        );
    }

    #[test]
    fn at_the_limit_is_kept() {
        assert!(check_size("a", 20 * MIB, 20 * MIB).is_ok());
        assert!(check_size("a", 0, 20 * MIB).is_ok());
    }
}

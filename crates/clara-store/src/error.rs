//! What can go wrong with the store, in words an operator can act on.
//!
//! Errors carry text rather than the driver's error values so they can be cloned:
//! the message writer hands one failed commit's error to every message of the batch.
//! Nothing here ever holds a connection string, so no password can leak into a log.

use crate::backend::{Backend, Db};
use sqlx::migrate::MigrateError;

/// A store operation failed. Each message is one sentence meant for an operator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file (or its directory) could not be opened or created.
    #[error("could not open the database file {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why, e.g. "permission denied".
        reason: String,
    },
    /// Another connection or process holds the write lock longer than the busy timeout.
    #[error("the database at {path} is locked by another process")]
    Locked {
        /// The database.
        path: String,
    },
    /// Every pooled connection stayed in use until the acquire timeout.
    #[error("the database at {path} did not answer in time because all its connections were busy")]
    PoolTimedOut {
        /// The database.
        path: String,
    },
    /// The store was closed.
    #[error("the database at {path} has been closed")]
    Closed {
        /// The database.
        path: String,
    },
    /// The file is not a SQLite database, or it is damaged.
    #[error("the database file {path} is damaged or is not a SQLite database")]
    Corrupt {
        /// The file.
        path: String,
    },
    /// The disk is full.
    #[error("the disk holding the database {path} is full")]
    DiskFull {
        /// The database.
        path: String,
    },
    /// The database (or its directory) cannot be written.
    #[error("the database at {path} is read-only, so Clara cannot write to it")]
    ReadOnly {
        /// The database.
        path: String,
    },
    /// The database was migrated by a newer Clara.
    #[error("the database is newer than this Clara (migration {version} unknown)")]
    NewerSchema {
        /// The applied migration this build does not know.
        version: i64,
    },
    /// An applied migration differs from the one this build ships.
    #[error(
        "migration {version} in the database differs from the one this Clara ships; use the Clara version that created the database"
    )]
    MigrationChanged {
        /// The migration.
        version: i64,
    },
    /// A migration failed half way and was recorded as such.
    #[error("migration {version} was left half-applied; restore the database from a backup")]
    MigrationDirty {
        /// The migration.
        version: i64,
    },
    /// Applying a migration failed.
    #[error("applying migration {version} failed: {reason}")]
    MigrationFailed {
        /// The migration.
        version: i64,
        /// The database's reason.
        reason: String,
    },
    /// The migrations could not be read or checked.
    #[error("the database migrations could not be run: {reason}")]
    Migrations {
        /// The reason.
        reason: String,
    },
    /// A row the operation needs does not exist.
    #[error("{what} does not exist in the database")]
    NotFound {
        /// What was looked for, e.g. "session 0190…".
        what: String,
    },
    /// A stored value cannot be understood by this build.
    #[error("the database holds a value Clara cannot read: {detail}")]
    InvalidData {
        /// What and where.
        detail: String,
    },
    /// The database refused or failed a statement.
    #[error("a database operation failed: {reason}")]
    Query {
        /// The database's reason.
        reason: String,
    },
    /// The database server cannot be reached (it is down, restarting, or refused
    /// the connection). Pooled connections are re-made once it answers again.
    #[error("could not reach the database at {path}: {reason}")]
    Unreachable {
        /// The database (a URL without its password).
        path: String,
        /// Why, in the server's or the system's words.
        reason: String,
    },
    /// The database URL cannot be understood.
    #[error("the database URL is not valid: {reason}")]
    InvalidUrl {
        /// What is wrong with it (never the URL itself, which may hold a password).
        reason: String,
    },
    /// A copy between two databases cannot start.
    #[error("the copy cannot start: {reason}")]
    CopyRefused {
        /// Why, e.g. "the source lacks migration 4 (memories)".
        reason: String,
    },
    /// The message writer's task is gone, so queued messages cannot be written.
    #[error("the message writer has stopped, so the message was not stored")]
    WriterStopped,
}

impl StoreError {
    /// Whether the operation failed only because the database was busy or locked,
    /// so trying again later can succeed.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Locked { .. } | Self::PoolTimedOut { .. })
    }

    /// The same as [`StoreError::is_busy`].
    pub fn is_locked(&self) -> bool {
        self.is_busy()
    }

    /// Whether trying the same operation again later can succeed: the database
    /// was busy, or its server could not be reached for a while (a restart).
    pub fn is_transient(&self) -> bool {
        self.is_busy() || matches!(self, Self::Unreachable { .. })
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::InvalidData {
            detail: detail.into(),
        }
    }

    /// Translates a driver error; `db` names the database in messages.
    pub(crate) fn from_sqlx(err: sqlx::Error, db: &Db) -> Self {
        let path = db.name.to_string();
        let remote = db.backend == Backend::Postgres;
        match err {
            sqlx::Error::Database(e) => {
                let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
                from_db_code(db.backend, &code, e.message(), path)
            }
            sqlx::Error::PoolTimedOut if remote => Self::Unreachable {
                path,
                reason: "no connection could be made or freed in time".into(),
            },
            sqlx::Error::PoolTimedOut => Self::PoolTimedOut { path },
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Self::Closed { path },
            sqlx::Error::Io(e) if remote => Self::Unreachable {
                path,
                reason: io_reason(&e),
            },
            sqlx::Error::Io(e) => Self::Open {
                path,
                reason: io_reason(&e),
            },
            // A connection cut mid-reply surfaces as a protocol error.
            sqlx::Error::Protocol(reason) if remote => Self::Unreachable { path, reason },
            sqlx::Error::Tls(e) if remote => Self::Unreachable {
                path,
                reason: e.to_string(),
            },
            sqlx::Error::RowNotFound => Self::not_found("the requested row"),
            sqlx::Error::ColumnDecode { index, source } => {
                Self::invalid(format!("column {index}: {source}"))
            }
            sqlx::Error::Decode(e) => Self::invalid(e.to_string()),
            sqlx::Error::Migrate(e) => Self::from_migrate(*e, db),
            other => Self::Query {
                reason: other.to_string(),
            },
        }
    }

    pub(crate) fn from_migrate(err: MigrateError, db: &Db) -> Self {
        match err {
            MigrateError::Execute(e) => Self::from_sqlx(e, db),
            MigrateError::ExecuteMigration(e, version) => match Self::from_sqlx(e, db) {
                transient if transient.is_transient() => transient,
                other => Self::MigrationFailed {
                    version,
                    reason: other.to_string(),
                },
            },
            MigrateError::VersionMissing(version) | MigrateError::VersionTooNew(version, _) => {
                Self::NewerSchema { version }
            }
            MigrateError::VersionMismatch(version) => Self::MigrationChanged { version },
            MigrateError::Dirty(version) => Self::MigrationDirty { version },
            other => Self::Migrations {
                reason: other.to_string(),
            },
        }
    }
}

/// Maps a SQLite extended result code or a PostgreSQL SQLSTATE to an error.
fn from_db_code(backend: Backend, code: &str, message: &str, path: String) -> StoreError {
    match backend {
        Backend::Sqlite => from_sqlite_code(code, message, path),
        Backend::Postgres => from_sqlstate(code, message, path),
    }
}

fn from_sqlite_code(code: &str, message: &str, path: String) -> StoreError {
    if let Ok(extended) = code.parse::<i32>() {
        // The primary result code is the low byte of the extended one.
        match extended & 0xff {
            5 | 6 => return StoreError::Locked { path },
            8 => return StoreError::ReadOnly { path },
            11 | 26 => return StoreError::Corrupt { path },
            13 => return StoreError::DiskFull { path },
            14 => {
                return StoreError::Open {
                    path,
                    reason: "the file cannot be opened or created".into(),
                };
            }
            _ => {}
        }
    }
    StoreError::Query {
        reason: message.to_owned(),
    }
}

fn from_sqlstate(code: &str, message: &str, path: String) -> StoreError {
    match code {
        // lock_not_available (lock_timeout), serialization_failure, deadlock_detected.
        "55P03" | "40001" | "40P01" => StoreError::Locked { path },
        "53100" => StoreError::DiskFull { path },
        "25006" => StoreError::ReadOnly { path },
        // admin_shutdown, crash_shutdown, cannot_connect_now (a restart), class 08
        // (connection exceptions), class 28 (authorization), invalid_catalog_name.
        "57P01" | "57P02" | "57P03" | "3D000" => StoreError::Unreachable {
            path,
            reason: message.to_owned(),
        },
        c if c.starts_with("08") || c.starts_with("28") => StoreError::Unreachable {
            path,
            reason: message.to_owned(),
        },
        _ => StoreError::Query {
            reason: message.to_owned(),
        },
    }
}

/// A short, lower-case reason for an I/O error.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::NotFound => "the file or its directory does not exist".into(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".into(),
        ErrorKind::StorageFull => "the disk is full".into(),
        ErrorKind::IsADirectory => "it is a directory".into(),
        ErrorKind::NotADirectory => "a part of the path is not a directory".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_map_to_operator_errors() {
        let p = || "/x/clara.db".to_string();
        let from_db_code = |code, message, path| from_db_code(Backend::Sqlite, code, message, path);
        assert_eq!(
            from_db_code("5", "database is locked", p()),
            StoreError::Locked { path: p() }
        );
        assert_eq!(
            from_db_code("517", "busy snapshot", p()),
            StoreError::Locked { path: p() }
        );
        assert_eq!(
            from_db_code("26", "file is not a database", p()),
            StoreError::Corrupt { path: p() }
        );
        assert!(matches!(
            from_db_code("2067", "UNIQUE constraint failed", p()),
            StoreError::Query { .. }
        ));
    }

    #[test]
    fn postgres_sqlstates_map_to_operator_errors() {
        let p = || "postgres://clara@db:5432/clara".to_string();
        let from_db_code =
            |code, message, path| from_db_code(Backend::Postgres, code, message, path);
        assert_eq!(
            from_db_code("40001", "could not serialize", p()),
            StoreError::Locked { path: p() }
        );
        assert_eq!(
            from_db_code("55P03", "canceling statement due to lock timeout", p()),
            StoreError::Locked { path: p() }
        );
        let lost = from_db_code("57P01", "terminating connection", p());
        assert!(lost.is_transient() && !lost.is_busy(), "{lost:?}");
        assert_eq!(
            lost.to_string(),
            "could not reach the database at postgres://clara@db:5432/clara: terminating connection"
        );
        assert!(from_db_code("08006", "connection failure", p()).is_transient());
        // A SQLSTATE that happens to be all digits is not a SQLite code.
        assert!(matches!(
            from_db_code("23505", "duplicate key", p()),
            StoreError::Query { .. }
        ));
    }

    #[test]
    fn messages_are_single_clear_sentences() {
        let e = StoreError::Locked {
            path: "/x/clara.db".into(),
        };
        assert_eq!(
            e.to_string(),
            "the database at /x/clara.db is locked by another process"
        );
        assert!(e.is_busy() && e.is_locked());
        let e = StoreError::NewerSchema { version: 7 };
        assert_eq!(
            e.to_string(),
            "the database is newer than this Clara (migration 7 unknown)"
        );
        assert!(!e.is_busy());
        let e = StoreError::Open {
            path: "/x".into(),
            reason: "permission denied".into(),
        };
        assert_eq!(
            e.to_string(),
            "could not open the database file /x: permission denied"
        );
    }
}

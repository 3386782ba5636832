//! The two databases a store can run on, and the macros that run one body of SQL
//! on either.
//!
//! Every query is written once, in the SQL both dialects share (`$1` placeholders,
//! `ON CONFLICT`, `RETURNING`, `CAST(… AS BIGINT)`), and handed to the native sqlx
//! driver of the backend in use: [`on_read!`], [`on_write!`] and [`in_tx!`] expand
//! their body once per backend, so each arm is compiled against that driver's own
//! types. Nothing goes through sqlx's `Any` driver, whose rows are copied into
//! dynamic values: SQLite keeps its native path, including the group commit.

use crate::error::StoreError;
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::sync::Arc;

/// Which database engine a store uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// One SQLite file (the embedded deployment).
    Sqlite,
    /// A PostgreSQL server (the distributed deployment).
    Postgres,
}

impl Backend {
    /// Its name in messages: `SQLite` or `PostgreSQL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// The connection pools of one store.
#[derive(Clone, Debug)]
pub(crate) enum Pools {
    /// Reads on a pool, every write on one connection (see `Store`).
    Sqlite {
        /// Reads. WAL lets them run beside a write.
        read: SqlitePool,
        /// Every write, on one connection.
        write: SqlitePool,
    },
    /// PostgreSQL takes concurrent writers itself: one pool serves everything.
    Postgres(PgPool),
}

impl Pools {
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite { read, write } => {
                write.close().await;
                read.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// Names the database in errors and says which engine it is. The name is a file
/// path or a PostgreSQL URL rebuilt without its password, so it can be logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Db {
    pub(crate) name: Arc<str>,
    pub(crate) backend: Backend,
}

impl Db {
    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(e, self)
    }
}

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A write transaction on either backend (see `Store::begin_write`).
pub(crate) enum WriteTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Runs `$body` with `$pool` bound to the pool for reads (`&SqlitePool` or `&PgPool`).
macro_rules! on_read {
    ($pools:expr, |$pool:ident| $body:expr) => {
        match $pools {
            $crate::backend::Pools::Sqlite { read: $pool, .. } => $body,
            $crate::backend::Pools::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for single-statement writes (SQLite's
/// one write connection, or PostgreSQL's pool).
macro_rules! on_write {
    ($pools:expr, |$pool:ident| $body:expr) => {
        match $pools {
            $crate::backend::Pools::Sqlite { write: $pool, .. } => $body,
            $crate::backend::Pools::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut
/// SqliteConnection` or `&mut PgConnection`); use it as `&mut *$conn`.
macro_rules! in_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::backend::WriteTx::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::backend::WriteTx::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}

pub(crate) use {in_tx, on_read, on_write};

/// Where a database URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A SQLite file.
    File(std::path::PathBuf),
    /// A private in-memory SQLite database.
    Memory,
    /// A PostgreSQL server (the URL as given).
    Postgres(String),
}

/// Reads a database URL: `postgres://…` or `postgresql://…` is a server;
/// `sqlite://PATH`, `sqlite:PATH` or a bare path is a file; `sqlite::memory:` is
/// in memory.
pub(crate) fn locate(url: &str) -> Location {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Location::Postgres(url.to_owned());
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    // Query parameters (`?mode=rwc`) mean nothing to Clara's own options.
    let path = if url.starts_with("sqlite:") {
        path.split('?').next().unwrap_or(path)
    } else {
        path
    };
    if path == ":memory:" {
        Location::Memory
    } else {
        Location::File(path.into())
    }
}

/// The SQLite file a database URL names, if it names one (`None` for PostgreSQL
/// and for an in-memory database).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    match locate(url) {
        Location::File(path) => Some(path),
        Location::Memory | Location::Postgres(_) => None,
    }
}

/// Rebuilds a PostgreSQL URL for messages: user, host, port and database, never a
/// password or parameters.
pub(crate) fn postgres_label(options: &sqlx::postgres::PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        database
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_located() {
        assert_eq!(
            locate("postgres://u:pw@h/db"),
            Location::Postgres("postgres://u:pw@h/db".into())
        );
        assert_eq!(
            locate("postgresql://h/db"),
            Location::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            locate("sqlite:///var/lib/clara/clara.db"),
            Location::File("/var/lib/clara/clara.db".into())
        );
        assert_eq!(
            locate("sqlite:data/clara.db?mode=rwc"),
            Location::File("data/clara.db".into())
        );
        assert_eq!(
            locate("/tmp/x?y.db"),
            Location::File("/tmp/x?y.db".into()),
            "a bare path is taken as it is"
        );
        assert_eq!(locate("sqlite::memory:"), Location::Memory);
    }

    #[test]
    fn a_postgres_label_never_holds_the_password() {
        let options: sqlx::postgres::PgConnectOptions =
            "postgres://clara:s3cret@db.example:5433/clara?sslmode=disable"
                .parse()
                .unwrap();
        let label = postgres_label(&options);
        assert_eq!(label, "postgres://clara@db.example:5433/clara");
        assert!(!label.contains("s3cret"));
    }
}

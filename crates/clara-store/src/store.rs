//! Opening the database, migrating it, and the [`Store`] handle itself.

use crate::error::{StoreError, io_reason};
use crate::writer::MessageWriter;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The SQLite migrations, compiled into the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The table sqlx records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// One schema migration and whether this database has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its number (the file name's prefix).
    pub version: i64,
    /// What it does (from the file name). Migrations the database has but this
    /// build does not know are described as such.
    pub description: String,
    /// Whether it has been applied to this database.
    pub applied: bool,
}

/// How a file database is opened. [`Store::open`] uses the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a statement waits for another process's write lock before failing
    /// with [`StoreError::Locked`].
    pub busy_timeout: Duration,
    /// Pooled connections. SQLite in WAL mode lets readers run beside the one writer.
    pub max_connections: u32,
    /// Whether pending migrations are applied on open.
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_connections: 4,
            migrate: true,
        }
    }
}

/// Clara's SQL store. Cheap to clone: clones share one connection pool and one
/// [`MessageWriter`].
#[derive(Clone)]
pub struct Store {
    /// Reads. WAL lets them run beside a write.
    pub(crate) pool: SqlitePool,
    /// Every write, on one connection. SQLite admits one writer at a time; when two
    /// connections race for it, the loser sleeps in SQLite's busy handler (1, 2, 5,
    /// 10 … 100 ms steps) however soon the lock frees. One write connection makes
    /// writers queue in process instead, fairly and without sleeping.
    pub(crate) write_pool: SqlitePool,
    /// Names the database in error messages (a path, never a connection string).
    pub(crate) db: Arc<str>,
    writer: MessageWriter,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if missing, including parent directories) the SQLite file,
    /// sets WAL, `synchronous=NORMAL`, `foreign_keys=ON` and a 5 s busy timeout, and
    /// applies pending migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// Opens the file like [`Store::open`] but applies no migrations (for
    /// `clara migrate status`).
    pub async fn open_without_migrating(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(
            path,
            StoreOptions {
                migrate: false,
                ..StoreOptions::default()
            },
        )
        .await
    }

    /// Opens the file with explicit options.
    pub async fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db: Arc<str> = path.display().to_string().into();
        prepare_file(path, &db)?;
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL still survives a process crash; only an OS crash or
            // power loss can drop the last commits, and never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            // The default 2 MB page cache is smaller than the hot index pages of
            // messages and usage, so SQLite kept re-reading them from the OS. 16 MB
            // per connection (it grows only as used) and memory-mapped reads stop that.
            .pragma("cache_size", "-16384")
            .pragma("mmap_size", "268435456");
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::from_sqlx(e, &db))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::from_sqlx(e, &db))?;
        let store = Self::from_pools(pool, write_pool, db);
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// A private, migrated in-memory database (tests and benches).
    ///
    /// It lives on a single pooled connection that is never recycled, because an
    /// in-memory SQLite database disappears with the connection that made it.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let db: Arc<str> = ":memory:".into();
        let connect = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::from_sqlx(e, &db))?;
        // One connection holds the whole database, so it serves reads and writes.
        let store = Self::from_pools(pool.clone(), pool, db);
        store.migrate().await?;
        Ok(store)
    }

    fn from_pools(pool: SqlitePool, write_pool: SqlitePool, db: Arc<str>) -> Store {
        let writer = MessageWriter::spawn(write_pool.clone(), db.clone());
        Store {
            pool,
            write_pool,
            db,
            writer,
        }
    }

    /// Applies pending migrations; returns the ones applied now.
    pub async fn migrate(&self) -> Result<Vec<MigrationInfo>, StoreError> {
        let before = self.applied_versions().await?;
        MIGRATOR
            .run(&self.write_pool)
            .await
            .map_err(|e| StoreError::from_migrate(e, &self.db))?;
        let after = self.applied_versions().await?;
        let applied: Vec<MigrationInfo> = known_migrations()
            .filter(|m| !before.contains(&m.version) && after.contains(&m.version))
            .map(|m| MigrationInfo { applied: true, ..m })
            .collect();
        for m in &applied {
            tracing::info!(version = m.version, description = %m.description, db = %self.db, "applied migration");
        }
        Ok(applied)
    }

    /// Every migration this build knows, plus any the database has that it does
    /// not, with whether each is applied.
    pub async fn migration_status(&self) -> Result<Vec<MigrationInfo>, StoreError> {
        let applied = self.applied_versions().await?;
        let mut all: Vec<MigrationInfo> = known_migrations()
            .map(|m| MigrationInfo {
                applied: applied.contains(&m.version),
                ..m
            })
            .collect();
        for version in applied {
            if !MIGRATOR.version_exists(version) {
                all.push(MigrationInfo {
                    version,
                    description: "unknown to this Clara (the database is newer)".into(),
                    applied: true,
                });
            }
        }
        all.sort_by_key(|m| m.version);
        Ok(all)
    }

    async fn applied_versions(&self) -> Result<BTreeSet<i64>, StoreError> {
        let mut conn = self.write_pool.acquire().await.map_err(|e| self.err(e))?;
        let migrate_err = |e| StoreError::from_migrate(e, &self.db);
        conn.ensure_migrations_table(MIGRATIONS_TABLE)
            .await
            .map_err(migrate_err)?;
        let applied = conn
            .list_applied_migrations(MIGRATIONS_TABLE)
            .await
            .map_err(migrate_err)?;
        Ok(applied.into_iter().map(|m| m.version).collect())
    }

    /// Writes everything the message writer has accepted, then closes every
    /// connection (waiting while another process holds the write lock). Later calls
    /// on any clone fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        if let Err(e) = self.writer.flush().await {
            tracing::warn!(error = %e, "messages were lost while closing the store");
        }
        self.write_pool.close().await;
        self.pool.close().await;
    }

    /// The group-commit message writer of this store (one per store, shared by clones).
    pub fn writer(&self) -> MessageWriter {
        self.writer.clone()
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(e, &self.db)
    }

    /// Starts a transaction that takes the write lock at once.
    ///
    /// A deferred transaction that reads first and writes later can fail with
    /// "busy" without waiting when another connection committed in between; taking
    /// the lock up front makes the busy timeout apply instead.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        begin_write(&self.write_pool, &self.db).await
    }
}

/// See [`Store::begin_write`].
pub(crate) async fn begin_write(
    pool: &SqlitePool,
    db: &str,
) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| StoreError::from_sqlx(e, db))
}

fn known_migrations() -> impl Iterator<Item = MigrationInfo> {
    MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| MigrationInfo {
            version: m.version,
            description: m.description.to_string(),
            applied: false,
        })
}

/// Creates the parent directories and checks the file can be opened, so that a
/// missing permission is reported as such rather than as SQLite's vaguer
/// "unable to open database file".
fn prepare_file(path: &Path, db: &str) -> Result<(), StoreError> {
    let open_err = |e: std::io::Error| StoreError::Open {
        path: db.to_owned(),
        reason: io_reason(&e),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_err)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(open_err)?;
    Ok(())
}

/// The current time in Unix milliseconds, for bookkeeping columns the caller does
/// not supply.
pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Parses a TEXT uuid column; `what` names the column in the error.
pub(crate) fn parse_uuid(s: &str, what: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|_| StoreError::invalid(format!("{what} {s:?} is not a uuid")))
}

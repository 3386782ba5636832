//! Opening the database (a SQLite file or a PostgreSQL server), migrating it,
//! and the [`Store`] handle itself.

use crate::backend::{Backend, Db, Location, Pools, WriteTx, locate, on_write, postgres_label};
use crate::error::{StoreError, io_reason};
use crate::writer::MessageWriter;
use sqlx::ConnectOptions;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The SQLite migrations, compiled into the binary. They are the source of truth.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL migrations: generated from the SQLite ones by
/// [`crate::dialect::postgres_from_sqlite`] and committed (a test keeps them in step).
static PG_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The table sqlx records applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The PostgreSQL advisory lock every write transaction takes: the server-side
/// counterpart of SQLite's one writer ("Clara" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x0043_6C61_7261;

/// The PostgreSQL advisory lock `migrate` holds, so a gateway and its workers
/// starting at once on a fresh database migrate it one after the other ("Mig").
const MIGRATE_LOCK_KEY: i64 = 0x004D_6967;

/// How long opening waits for a PostgreSQL server before saying it is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a pooled PostgreSQL connection; covers a
/// server restart, during which new connections are refused and retried.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// How a database is opened. [`Store::open`] and [`Store::open_url`] use the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a statement waits for another process's write lock before failing
    /// with [`StoreError::Locked`] (SQLite's busy timeout; PostgreSQL's `lock_timeout`).
    pub busy_timeout: Duration,
    /// Pooled connections. SQLite in WAL mode lets readers run beside the one
    /// writer; PostgreSQL gets at least two.
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

/// Clara's SQL store, on a SQLite file or a PostgreSQL database. Cheap to clone:
/// clones share the connection pools and one [`MessageWriter`].
///
/// On SQLite, reads use a pool and every write goes through one connection.
/// SQLite admits one writer at a time; when two connections race for it, the loser
/// sleeps in SQLite's busy handler (1, 2, 5, 10 … 100 ms steps) however soon the
/// lock frees. One write connection makes writers queue in process instead, fairly
/// and without sleeping. On PostgreSQL one pool serves everything.
#[derive(Clone)]
pub struct Store {
    pub(crate) pools: Pools,
    /// Names the database in error messages (a path, or a URL without password).
    pub(crate) db: Db,
    writer: MessageWriter,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db.name)
            .field("backend", &self.db.backend)
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

    /// Opens the database a URL names, applying pending migrations:
    /// `postgres://…` / `postgresql://…` is a PostgreSQL server; `sqlite://PATH`,
    /// `sqlite:PATH` or a plain path is a SQLite file; `sqlite::memory:` is a
    /// private in-memory database.
    pub async fn open_url(url: &str) -> Result<Store, StoreError> {
        Self::open_url_with(url, StoreOptions::default()).await
    }

    /// Opens the database a URL names (see [`Store::open_url`]) with explicit options.
    pub async fn open_url_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        match locate(url) {
            Location::File(path) => Self::open_with(&path, options).await,
            Location::Memory => Self::open_in_memory().await,
            Location::Postgres(url) => Self::open_postgres(&url, options).await,
        }
    }

    /// Connects to a PostgreSQL database and applies pending migrations (unless
    /// `options.migrate` is off). `options.busy_timeout` becomes the server's
    /// `lock_timeout`; the pool re-makes connections the server dropped, waiting
    /// out a restart.
    pub async fn open_postgres(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let connect: PgConnectOptions = url.parse().map_err(|_| StoreError::InvalidUrl {
            reason: "expected postgres://user[:password]@host[:port]/database".into(),
        })?;
        let mut connect = connect.options([(
            "lock_timeout",
            format!("{}ms", options.busy_timeout.as_millis().max(1)),
        )]);
        if connect.get_application_name().is_none() {
            connect = connect.application_name("clara");
        }
        let db = Db {
            name: postgres_label(&connect).into(),
            backend: Backend::Postgres,
        };
        // One direct attempt first, so an unreachable server is reported at once
        // instead of after the pool's patient retries.
        match tokio::time::timeout(CONNECT_TIMEOUT, connect.connect()).await {
            Ok(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
            }
            Ok(Err(e)) => return Err(db.err(e)),
            Err(_) => {
                return Err(StoreError::Unreachable {
                    path: db.name.to_string(),
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_lazy_with(connect);
        let store = Self::from_pools(Pools::Postgres(pool), db);
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Opens the file with explicit options.
    pub async fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let db = Db {
            name: path.display().to_string().into(),
            backend: Backend::Sqlite,
        };
        prepare_file(path, &db.name)?;
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
        // Several processes opening a fresh file at once: turning it to WAL
        // needs the file to themselves, and the losers are told "busy" at
        // once rather than after the timeout. They try again shortly.
        let mut tries = 0u64;
        let (write_pool, pool) = loop {
            let opened = async {
                let write_pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(connect.clone())
                    .await?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .connect_with(connect.clone())
                    .await?;
                Ok::<_, sqlx::Error>((write_pool, pool))
            }
            .await
            .map_err(|e| db.err(e));
            match opened {
                Err(StoreError::Locked { .. }) if tries < 8 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(25 * tries)).await;
                }
                opened => break opened?,
            }
        };
        let store = Self::from_pools(
            Pools::Sqlite {
                read: pool,
                write: write_pool,
            },
            db,
        );
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
        let db = Db {
            name: ":memory:".into(),
            backend: Backend::Sqlite,
        };
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
            .map_err(|e| db.err(e))?;
        // One connection holds the whole database, so it serves reads and writes.
        let store = Self::from_pools(
            Pools::Sqlite {
                read: pool.clone(),
                write: pool,
            },
            db,
        );
        store.migrate().await?;
        Ok(store)
    }

    fn from_pools(pools: Pools, db: Db) -> Store {
        let writer = MessageWriter::spawn(pools.clone(), db.clone());
        Store { pools, db, writer }
    }

    /// The PostgreSQL connection pool, for components that keep their own tables
    /// in the same database (the pgvector memory index); `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        match &self.pools {
            Pools::Postgres(pool) => Some(pool.clone()),
            Pools::Sqlite { .. } => None,
        }
    }

    /// Which database engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// The database's name for messages: the file path, or the PostgreSQL URL
    /// without its password.
    pub fn display_name(&self) -> &str {
        &self.db.name
    }

    /// Applies pending migrations; returns the ones applied now. On PostgreSQL
    /// processes migrating the same database at once take turns.
    pub async fn migrate(&self) -> Result<Vec<MigrationInfo>, StoreError> {
        let Pools::Postgres(pool) = &self.pools else {
            // sqlx takes no lock on SQLite, so of two processes opening a fresh
            // file at once one may try a migration the other just applied (SQLite
            // makes it wait for the other's commit, then it finds the tables).
            // Its next pass finds the migration recorded and goes on. A
            // transaction that read before the other's commit cannot write
            // after it (SQLite answers busy at once, not after the timeout):
            // that pass lost the race too.
            let mut failures = 0;
            loop {
                match self.migrate_now().await {
                    Err(StoreError::MigrationFailed { .. } | StoreError::Locked { .. })
                        if failures < 8 =>
                    {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20 * failures)).await;
                    }
                    done => return done,
                }
            }
        };
        // A session lock on a connection of its own, released on every path
        // (an error included) before the connection goes back to the pool.
        let mut lock = pool.acquire().await.map_err(|e| self.err(e))?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATE_LOCK_KEY)
            .execute(&mut *lock)
            .await
            .map_err(|e| self.err(e))?;
        let migrated = self.migrate_now().await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATE_LOCK_KEY)
            .execute(&mut *lock)
            .await;
        if unlocked.is_err() {
            // The session ends with the connection: that frees its locks.
            lock.detach();
        }
        migrated
    }

    async fn migrate_now(&self) -> Result<Vec<MigrationInfo>, StoreError> {
        let before = self.applied_versions().await?;
        match &self.pools {
            Pools::Sqlite { write, .. } => MIGRATOR.run(write).await,
            Pools::Postgres(pool) => PG_MIGRATOR.run(pool).await,
        }
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
        let migrate_err = |e| StoreError::from_migrate(e, &self.db);
        let applied = on_write!(&self.pools, |pool| {
            let mut conn = pool.acquire().await.map_err(|e| self.err(e))?;
            conn.ensure_migrations_table(MIGRATIONS_TABLE)
                .await
                .map_err(migrate_err)?;
            conn.list_applied_migrations(MIGRATIONS_TABLE)
                .await
                .map_err(migrate_err)?
        });
        Ok(applied.into_iter().map(|m| m.version).collect())
    }

    /// Writes everything the message writer has accepted, then closes every
    /// connection (waiting while another process holds the write lock). Later calls
    /// on any clone fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        if let Err(e) = self.writer.flush().await {
            tracing::warn!(error = %e, "messages were lost while closing the store");
        }
        self.pools.close().await;
    }

    /// The group-commit message writer of this store (one per store, shared by clones).
    pub fn writer(&self) -> MessageWriter {
        self.writer.clone()
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        self.db.err(e)
    }

    /// Starts a transaction for a read-then-write (see [`begin_write`]).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        begin_write(&self.pools, &self.db).await
    }
}

/// Starts a transaction that holds the database's write lock from its start, so a
/// read-then-write sees no other writer in between.
///
/// On SQLite that is `BEGIN IMMEDIATE`: a deferred transaction that reads first and
/// writes later can fail with "busy" without waiting when another connection
/// committed in between; taking the lock up front makes the busy timeout apply
/// instead. On PostgreSQL it is a transaction-scoped advisory lock, which gives the
/// same one-at-a-time guarantee across every process using the database (two
/// workers resolving the same new person, or claiming jobs, never interleave).
pub(crate) async fn begin_write(pools: &Pools, db: &Db) -> Result<WriteTx, StoreError> {
    match pools {
        Pools::Sqlite { write, .. } => write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map(WriteTx::Sqlite)
            .map_err(|e| db.err(e)),
        Pools::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(|e| db.err(e))?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .map_err(|e| db.err(e))?;
            Ok(WriteTx::Postgres(tx))
        }
    }
}

/// Starts a plain transaction for inserts that need no lock (the message writer's
/// batches: conflicts are resolved by `ON CONFLICT DO NOTHING`).
pub(crate) async fn begin_insert(pools: &Pools, db: &Db) -> Result<WriteTx, StoreError> {
    match pools {
        Pools::Sqlite { .. } => begin_write(pools, db).await,
        Pools::Postgres(pool) => pool
            .begin()
            .await
            .map(WriteTx::Postgres)
            .map_err(|e| db.err(e)),
    }
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

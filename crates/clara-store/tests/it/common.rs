//! Shared fixtures for the store's integration tests: a fresh database on either
//! backend, and the macro that runs one test body on both.

use clara_core::{
    ChannelKind, ConversationId, ConversationRef, MessageId, Role, SessionId, ThoughtId, UserId,
};
use clara_store::{Backend, MessageStatus, NewMessage, Store, StoreOptions};
use sqlx::Connection;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// The PostgreSQL server the tests use, unless `CLARA_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas older than this are dropped by the next test run (a test that
/// panicked may have left its schema behind).
const STALE_SCHEMA_SECS: u64 = 3600;

/// Runs each named `async fn name(db: TestDb)` twice: `sqlite::name` on a fresh
/// file, `postgres::name` in a fresh schema of the test server.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestDb::postgres().await).await;
                }
            )*
        }
    };
}

/// A fresh, empty database: a SQLite file in a temporary directory, or a schema
/// of its own on the PostgreSQL test server (dropped when this is dropped), so
/// tests run in parallel without seeing each other.
pub enum TestDb {
    Sqlite {
        dir: TempDir,
        path: PathBuf,
    },
    Postgres {
        /// The server, as configured.
        server: String,
        /// The server URL with this schema as the search path.
        url: String,
        schema: String,
    },
}

/// The test server's URL.
pub fn postgres_server() -> String {
    std::env::var("CLARA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// Connects to the test server, or fails the test with what to do about it.
pub async fn admin_connection(server: &str) -> sqlx::PgConnection {
    let attempt =
        tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(server)).await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "PostgreSQL is not reachable at {server} ({e}); these tests need it: start it with \
             `scripts/services.sh` (or `pg_ctlcluster --skip-systemctl-redirect 15 main start`), \
             or point CLARA_TEST_POSTGRES_URL at a server you can create schemas in"
        ),
        Err(_) => panic!(
            "PostgreSQL at {server} did not answer within 10 s; these tests need it: start it with \
             `scripts/services.sh`, or point CLARA_TEST_POSTGRES_URL at a running server"
        ),
    }
}

/// `url` with a query parameter added.
pub fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl TestDb {
    /// A new SQLite file (its directory does not exist yet).
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("clara.db");
        TestDb::Sqlite { dir, path }
    }

    /// A new schema on the PostgreSQL test server.
    pub async fn postgres() -> TestDb {
        let server = postgres_server();
        let mut admin = admin_connection(&server).await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        drop_stale_schemas(&mut admin, now).await;
        let schema = format!("clara_test_{now}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = with_param(
            &with_param(&server, "options", &format!("-c%20search_path%3D{schema}")),
            "application_name",
            &schema,
        );
        TestDb::Postgres {
            server,
            url,
            schema,
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite { .. } => Backend::Sqlite,
            TestDb::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The URL `Store::open_url` takes for it.
    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    /// Opens (and migrates) the store.
    pub async fn open(&self) -> Store {
        Store::open_url(&self.url()).await.unwrap()
    }

    /// Opens the store with explicit options.
    pub async fn open_with(&self, options: StoreOptions) -> Store {
        Store::open_url_with(&self.url(), options).await.unwrap()
    }

    /// Runs one statement on its own connection, as another process would.
    pub async fn execute(&self, sql: &str) {
        match self {
            TestDb::Sqlite { path, .. } => {
                let url = format!("sqlite://{}", path.display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            TestDb::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Ends every server connection the store under test holds (PostgreSQL only),
    /// as a server restart would; returns how many were ended.
    pub async fn kill_connections(&self) -> i64 {
        let TestDb::Postgres { server, schema, .. } = self else {
            panic!("only a PostgreSQL store has server connections to end");
        };
        let mut admin = admin_connection(server).await;
        let killed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()) AS t",
        )
        .bind(schema)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        admin.close().await.unwrap();
        killed
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { server, schema, .. } = self else {
            return;
        };
        let (server, schema) = (server.clone(), schema.clone());
        // Drop runs inside the test's runtime, which cannot block on itself.
        let dropped = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// Drops test schemas left behind by runs that ended an hour or more ago.
async fn drop_stale_schemas(admin: &mut sqlx::PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'clara\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_SCHEMA_SECS {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET lock_timeout = '1s'; DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// A store on a real SQLite file in a fresh temporary directory.
pub async fn file_store() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("clara.db");
    let store = Store::open(&path).await.unwrap();
    (dir, path, store)
}

/// A conversation with an open session and one user.
pub struct Place {
    pub conversation: ConversationId,
    pub session: SessionId,
    pub user: UserId,
}

pub async fn place(store: &Store, channel: &str) -> Place {
    let conv = ConversationRef {
        platform: "cli".into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    };
    let conversation = store.resolve_conversation(&conv).await.unwrap();
    let session = store.start_session(conversation, 0).await.unwrap().id;
    let user = store
        .resolve_user("cli", &format!("{channel}-user"), "Ann")
        .await
        .unwrap();
    Place {
        conversation,
        session,
        user,
    }
}

pub fn msg(p: &Place, content: &str, at_ms: i64) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation: p.conversation,
        session: p.session,
        thought: ThoughtId::new(),
        user: Some(p.user),
        role: Role::User,
        content: content.into(),
        event_id: None,
        status: MessageStatus::Complete,
        created_at_ms: at_ms,
        usage: None,
        tool_runs: Vec::new(),
    }
}

pub fn contents(messages: &[clara_store::StoredMessage]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}

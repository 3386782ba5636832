//! Clara's SQL storage: its one job is to keep what Clara must remember durably —
//! users and their platform identities, projects, conversations, sessions with
//! their summaries, messages with the thought they belong to, Rook's memories with
//! their vectors and history, and background jobs —
//! and to migrate the schema that holds them.
//!
//! **Two back-ends, one body of SQL.** The embedded deployment uses one SQLite
//! file in WAL mode; the distributed one PostgreSQL ([`Store::open_url`] picks by
//! the URL). Every query is written once in the SQL both understand — `$1`
//! placeholders, `ON CONFLICT`, `RETURNING`, TEXT uuids, BIGINT Unix-millisecond
//! times, casts where PostgreSQL's types differ (`CAST(SUM(…) AS BIGINT)`) — and
//! run on the backend's native sqlx driver through small macros (`backend.rs`), so
//! SQLite keeps its native, zero-copy path: the group-commit writer and the
//! window query measured the same before and after PostgreSQL arrived. What must
//! differ is in one place each: opening and pools (`store.rs`), taking the write
//! lock (`BEGIN IMMEDIATE` vs a transaction-scoped advisory lock), and error codes
//! (`error.rs`).
//!
//! **Migrations, one source of truth.** `migrations/sqlite/` is the source: its
//! files are applied on people's machines and never change. `migrations/postgres/`
//! holds their PostgreSQL translations (`dialect.rs`: INTEGER → BIGINT, the rowid
//! → an identity, REAL → DOUBLE PRECISION, BLOB → BYTEA; SQLite-only SQL is
//! refused), committed because PostgreSQL databases keep their checksums too; a
//! test fails when the two directories drift apart, and
//! `CLARA_BLESS_MIGRATIONS=1 cargo test -p clara-store dialect` writes the
//! translation of a new migration.
//!
//! Messages are written either directly ([`Store::append_messages`]) or through the
//! [`MessageWriter`], which group-commits concurrent appends and retries through
//! locks and lost PostgreSQL connections. A reply's tool runs are stored with
//! Clara's message in the same transaction; standing tool approvals and pinned
//! tool definitions have tables of their own. Messages Clara starts herself go
//! through an outbox (`proactive`) that delivers each once; reminders and
//! scheduled tasks (`schedules`) fire into it in one transaction; watched
//! mailboxes keep their accounts, marks and rules (`mail`). [`Store::copy_into`] copies one store
//! into another (`clara migrate --from … --to …`), resumably.

mod backend;
mod copy;
mod dialect;
mod error;
mod jobs;
mod mail;
mod memories;
mod messages;
mod people;
mod proactive;
mod projects;
mod schedules;
mod sessions;
mod store;
mod tools;
mod usage;
mod writer;

pub use backend::{Backend, sqlite_file};
pub use copy::{CopyProgress, CopyReport, TableCount, copied_columns, copied_tables};
pub use error::StoreError;
pub use jobs::{DEFAULT_MAX_ATTEMPTS, Job, JobId, JobStatus};
pub use mail::{MailAccountRecord, MailRuleRecord, NewMailAccount};
pub use memories::{
    HistoryRecord, MemoryEvent, MemoryFilter, MemoryRecord, ModelVector, NewMemory, Provenance,
};
pub use messages::{MessageStatus, NewMessage, StoredMessage};
pub use proactive::{
    NewProactive, PersonSettings, ProactiveKind, ProactiveRecord, ProactiveStatus,
};
pub use projects::ProjectRecord;
pub use schedules::{Firing, NewSchedule, ScheduleId, ScheduleKind, ScheduleRecord};
pub use sessions::{SessionRecord, SessionSummary};
pub use store::{MigrationInfo, Store, StoreOptions};
pub use usage::{ReplyUsage, UsageTotals};
pub use writer::{Durable, MAX_BATCH, MessageWriter, QUEUE_CAPACITY};

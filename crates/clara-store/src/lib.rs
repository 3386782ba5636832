//! Clara's SQL storage: its one job is to keep what Clara must remember durably —
//! users and their platform identities, projects, conversations, sessions with
//! their summaries, messages with the thought they belong to, Rook's memories with
//! their vectors and history, and background jobs —
//! and to migrate the schema that holds them.
//!
//! The embedded deployment uses one SQLite file in WAL mode. Queries are written
//! in portable SQL (TEXT uuids, Unix-millisecond BIGINT times) so the PostgreSQL
//! back-end can follow with its own migration directory.
//!
//! Messages are written either directly ([`Store::append_messages`]) or through the
//! [`MessageWriter`], which group-commits concurrent appends.

mod backend;
mod copy;
mod dialect;
mod error;
mod jobs;
mod memories;
mod messages;
mod people;
mod projects;
mod sessions;
mod store;
mod usage;
mod writer;

pub use backend::Backend;
pub use copy::{CopyProgress, CopyReport, TableCount, copied_columns, copied_tables};
pub use error::StoreError;
pub use jobs::{DEFAULT_MAX_ATTEMPTS, Job, JobId, JobStatus};
pub use memories::{
    HistoryRecord, MemoryEvent, MemoryFilter, MemoryRecord, ModelVector, NewMemory, Provenance,
};
pub use messages::{MessageStatus, NewMessage, StoredMessage};
pub use projects::ProjectRecord;
pub use sessions::{SessionRecord, SessionSummary};
pub use store::{MigrationInfo, Store, StoreOptions};
pub use usage::{ReplyUsage, UsageTotals};
pub use writer::{Durable, MAX_BATCH, MessageWriter, QUEUE_CAPACITY};

//! Clara's vocabulary and its pure conversation rules.
//!
//! This crate names the things every other crate talks about — who wrote
//! ([`Author`]), where ([`ConversationRef`]), what arrived ([`Inbound`]), what the
//! engine answers ([`Thought`] → [`ReplyEvent`]) — and holds the rules that decide
//! the behaviour: how bursts are merged ([`chunker`]), which history goes into a
//! prompt ([`context`]), how a reply is cut and paced ([`split`], [`pacing`]),
//! when reminders fire and when quiet hours hold them back ([`schedule`]).
//!
//! It also holds the seams other crates plug into: [`port`] (platform
//! adapters), [`component`] (a part's own configuration), [`webhook`] (HTTP
//! routes an adapter contributes), and the one [`backoff`] and [`Secret`].
//!
//! It does no I/O, spawns nothing and never reads the clock: every rule takes the
//! current time as an argument, so it is unit-tested without a runtime.

pub mod approval;
pub mod backoff;
pub mod chunker;
pub mod component;
pub mod context;
pub mod dedupe;
pub mod file;
pub mod ids;
pub mod inbound;
pub mod memory;
pub mod message;
pub mod pacing;
pub mod port;
pub mod reply;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod split;
pub mod stop;
#[cfg(feature = "testing")]
pub mod testing;
pub mod thought;
pub mod tier;
pub mod tokens;
pub mod tool;
pub mod tool_status;
pub mod webhook;

pub use approval::{ApprovalAnswer, ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
pub use file::FileBlob;
pub use ids::{
    ConversationId, EventId, MemoryId, MessageId, ProjectId, SessionId, ThoughtId, UserId,
};
pub use inbound::{Author, ChannelKind, ConversationRef, Inbound, Quoted};
pub use memory::{MemoryKind, Scope};
pub use message::{ChatMessage, Image, Role};
pub use reply::{Outbound, ReplyEvent, ReplyKind};
pub use secret::Secret;
pub use thought::Thought;
pub use tier::Tier;
pub use tool::{Permission, ToolCall, ToolGrant, ToolPin, ToolRun, ToolSpec};

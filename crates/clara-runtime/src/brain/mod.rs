//! The brain: the worker side of a reply — the conversation's context and prompt
//! ([`context`]), and the answer streamed from the model, with its tool calls, into
//! the send queue ([`reply`]).

pub mod context;
pub mod gate;
pub mod memory;
pub mod permits;
pub mod reply;

pub use context::{CachedTurn, ConversationContext};
pub use memory::{MemoryRecall, RecallScope};
pub use reply::{
    Brain, ReplyJob, ReplyOutcome, ReplyOutput, ReplyStatus, Spent, ToolScope, record_metrics,
    run_reply,
};

//! Clara's conversation engine at run time.
//!
//! An adapter hands messages to the [`Engine`]. The engine keeps one
//! [`actor`](crate::actor) per conversation: it stores each message as it is
//! accepted, merges bursts with the core chunker, cancels the reply in flight when
//! the same person writes again, and answers each thought by building the prompt
//! ([`brain`]), streaming the model's answer and delivering it through the
//! platform's [`SendQueue`]. A [`SessionKeeper`] ends idle sessions and has them
//! summarised in the background, as durable jobs.
//!
//! In the embedded deployment the "queue" between actor and brain is a spawned
//! task; the seam is [`brain::ReplyJob`], which is what a distributed worker will
//! receive.

pub mod actor;
pub mod brain;
pub mod clock;
pub mod config;
pub mod engine;
pub mod memory_tools;
pub mod send_queue;
pub mod sessions;
pub mod sink;

pub use config::{EngineConfig, TierModels};
pub use engine::{Accepted, Engine, IngressError};
pub use send_queue::SendQueue;
pub use sessions::SessionKeeper;
pub use sink::{OutboundSink, SinkError};

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
//! Clara also speaks first: alerts, reminders and scheduled tasks go through
//! an outbox in the store ([`proactive`]), fired by the [`Scheduler`] and
//! delivered by [`ProactiveDelivery`] through the same actors and send queues.
//!
//! Between actor and brain sits a [`ReplyQueue`]: in the embedded deployment the
//! reply runs in this process ([`LocalQueue`]); in the distributed one a
//! [`brain::ReplyJob`] goes over Redis Streams to a worker (`queue::redis`,
//! feature `redis`), and the worker's reply events come back to the send queue.

pub mod actor;
pub mod approvals;
pub mod brain;
pub mod clock;
pub mod config;
pub mod engine;
pub mod memory_tools;
pub mod proactive;
pub mod queue;
pub mod schedule_book;
pub mod schedule_tools;
pub mod scheduler;
pub mod send_queue;
pub mod sessions;
pub mod sink;
pub mod uploads;

pub use approvals::{Approvals, Owner};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ApprovalConfig, EngineConfig, TierModels};
pub use engine::{Accepted, Engine, IngressError};
pub use proactive::{
    Proactive, ProactiveConfig, ProactiveDelivery, ProactiveError, ProactiveSignals,
};
pub use queue::{LocalQueue, ReplyQueue, SeenEvents};
pub use schedule_book::{ScheduleBook, ScheduleBookError, ScheduleRequest, ScheduleView};
pub use schedule_tools::ScheduleTools;
pub use scheduler::Scheduler;
pub use send_queue::SendQueue;
pub use sessions::SessionKeeper;
pub use sink::{OutboundSink, SinkError};
pub use uploads::Uploads;

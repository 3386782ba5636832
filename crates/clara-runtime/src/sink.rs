//! Where replies go: the one thing an adapter implements for the engine. The
//! trait lives in `clara-core` (adapters depend on it without the runtime); it is
//! re-exported here for the engine's users.

pub use clara_core::port::{OutboundSink, SinkError};

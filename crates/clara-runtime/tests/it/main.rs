//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod approvals;
mod conversation;
mod delivery;
mod memory;
mod proactive;
#[cfg(feature = "redis")]
mod redis_queue;
mod sessions;
mod support;
mod tool_history;
mod tools_and_tiers;

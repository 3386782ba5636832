//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

#[macro_use]
mod common;
mod copy;
mod jobs;
mod memories;
mod proactive;
mod store;
mod tools;
mod usage;
mod writer;

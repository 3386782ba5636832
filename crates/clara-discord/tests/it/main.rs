//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod approvals;
mod engine;
mod files;
mod gateway;
mod messages;
mod rest;
mod support;

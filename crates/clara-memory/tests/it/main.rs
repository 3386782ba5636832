//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod no_leaks;
#[cfg(feature = "pgvector")]
mod pgvector_index;
mod rook;
mod support;

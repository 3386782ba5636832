//! Integration tests, one binary for the crate: the tools through the
//! registry, against a fake GitHub speaking its REST API.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod fake;
mod tools;

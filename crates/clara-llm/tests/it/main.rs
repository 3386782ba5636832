//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod anthropic;
mod common;
#[cfg(feature = "local")]
mod embed_local;
mod embed_openai;
#[cfg(feature = "local")]
mod local_model;
mod ollama;
mod openai_compatible;
mod openai_tools;
mod secrets;

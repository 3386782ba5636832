//! Integration tests, one binary for the crate (a module per area): each test
//! binary links the whole dependency graph, so one is much cheaper than many.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

mod http_api;
mod http_approvals;
mod http_browser;
mod http_files;
mod http_openai_client;
mod http_schedules;
mod http_support;
mod http_tool_history;
mod protocol_client;
mod protocol_raw;
mod protocol_support;
mod webhooks;

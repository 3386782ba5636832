//! The `clara` binary as people run it, one test binary (a module per area):
//! each test binary links the whole dependency graph, so one is much cheaper
//! than many.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
mod common;
mod distributed;
mod mcp_cli;
mod memory_cli;
mod migrate_copy;
mod postgres;
mod remote_adapter;
mod schedule_cli;
mod serve_discord;
mod serve_email;
mod serve_gateway;
mod serve_sandbox;
mod serve_telegram;
mod serve_tools;
mod serve_web;

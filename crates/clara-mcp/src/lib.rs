//! MCP servers as Clara's tool providers.
//!
//! (crate documentation to be completed by the MCP work)

pub mod config;

pub use config::{McpSettings, ServerConfig, Transport};

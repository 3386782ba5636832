//! clara-mcp against real MCP servers: server-everything and server-filesystem
//! (npm), mcp-server-time (PyPI) and a streamable-HTTP fixture written with the
//! Python `mcp` package (`tests/fixtures/http_server.py`). Install them with
//! `bash scripts/mcp-servers.sh`; a missing one fails its test with that command.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fixtures;
mod install;
mod lifecycle;
mod oauth;
mod reload;
mod servers;

//! Clara's network face, all on one port (`CLARA_GATEWAY_HOST:CLARA_GATEWAY_PORT`):
//!
//! - [`server`]: the gateway protocol's WebSocket endpoint (the protocol itself,
//!   and the client adapters use, are the `clara-protocol` crate), which makes
//!   each connected adapter an [`OutboundSink`](clara_core::port::OutboundSink)
//!   of the engine;
//! - [`http`]: the HTTP API (OpenAI-compatible chat completions, memories,
//!   sessions, health, metrics) and the web UI, given the engine, the store and
//!   Rook as explicit state ([`http::HttpDeps`]);
//! - [`webhooks`]: the HTTP routes in-process adapters contribute
//!   ([`WebhookRoute`](clara_core::webhook::WebhookRoute)), served under
//!   `/webhooks/{platform}`.

pub mod http;
pub mod server;
pub mod webhooks;

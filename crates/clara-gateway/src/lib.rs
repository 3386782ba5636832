//! Clara's network face, all on one port (`CLARA_GATEWAY_HOST:CLARA_GATEWAY_PORT`):
//!
//! - [`protocol`]: the versioned JSON frames of the WebSocket gateway protocol
//!   that out-of-process adapters speak (`docs/gateway-protocol.md`);
//! - [`server`]: the gateway's WebSocket endpoint, which makes each connected
//!   adapter an [`OutboundSink`](clara_core::port::OutboundSink) of the engine;
//! - [`client`]: the adapter's side, an [`Assistant`](clara_core::port::Assistant)
//!   reached over the protocol;
//! - [`http`]: the HTTP API (OpenAI-compatible chat completions, memories,
//!   sessions, health, metrics) and the web UI.

pub mod client;
pub mod http;
pub mod protocol;
pub mod server;

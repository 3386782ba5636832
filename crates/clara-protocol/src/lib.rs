//! The WebSocket gateway protocol that connects Clara to adapters in other
//! processes, and nothing else: its frames, version 1 ([`frames`]), their
//! encoding with a size limit and typed errors ([`codec`]), the handshake's
//! secret ([`auth`]), the mapping to Clara's vocabulary ([`convert`]), and the
//! Rust client an out-of-process adapter uses ([`client`]).
//!
//! The frames, codec, auth and mapping are pure: no I/O, no clock, no tasks.
//! The gateway's server (in `clara-gateway`) and the [`client`] both build on
//! them; `docs/gateway-protocol.md` is the specification for adapters written in
//! other languages. This crate depends on `clara-core` only among Clara's
//! crates, so an adapter built on it links no engine, store or web framework.

pub mod auth;
pub mod client;
pub mod codec;
pub mod convert;
pub mod frames;

pub use auth::{AuthError, GatewaySecret, check_hello};
pub use codec::{
    DEFAULT_MAX_FRAME_BYTES, FrameError, PROTOCOL_VERSION, decode_client, decode_server, encode,
};
pub use frames::*;

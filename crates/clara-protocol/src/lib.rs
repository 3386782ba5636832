//! The gateway protocol's frames, version 1: their types ([`frames`]), their
//! encoding with a size limit and typed errors ([`codec`]), the handshake's
//! secret ([`auth`]) and the mapping to Clara's vocabulary ([`convert`]).
//!
//! Pure: no I/O, no clock, no tasks. The server ([`crate::server`]) and the
//! client ([`crate::client`]) both build on it; `docs/gateway-protocol.md` is
//! the specification for adapters written in other languages.

pub mod auth;
pub mod codec;
pub mod convert;
pub mod frames;

pub use auth::{AuthError, GatewaySecret, check_hello};
pub use codec::{
    DEFAULT_MAX_FRAME_BYTES, FrameError, PROTOCOL_VERSION, decode_client, decode_server, encode,
};
pub use frames::*;

//! The gateway's WebSocket endpoint.

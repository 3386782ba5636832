//! Discord: the gateway WebSocket for events, REST for calls.

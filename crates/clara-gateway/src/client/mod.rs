//! The adapter side of the gateway protocol.

//! The gateway protocol's frames.

//! Clara's platform adapters.
//!
//! An adapter only translates: platform events become [`clara_core::Inbound`]s
//! handed to an [`Assistant`](clara_core::port::Assistant), and the send queue's
//! [`Outbound`](clara_core::Outbound) calls become platform calls through the
//! adapter's [`OutboundSink`](clara_core::port::OutboundSink). An adapter never
//! touches the store, memory, a model or a tool, so the same adapter runs inside
//! `clara serve` (the engine is the assistant) or as `clara adapter <platform>`
//! against a remote gateway (the gateway client is).
//!
//! Each platform is a module behind a Cargo feature of the same name.

#[cfg(feature = "discord")]
pub mod discord;
#[cfg(feature = "telegram")]
pub mod telegram;

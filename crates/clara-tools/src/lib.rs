//! Clara's tools: what a model may call while answering.
//!
//! A [`Tool`] describes itself with a JSON Schema and runs with JSON arguments.
//! The [`ToolRegistry`] names every tool `{server}__{tool}` (built-ins are served
//! by `clara`; MCP servers, the sandbox, web search and the rest add their own),
//! checks the model's arguments before a tool sees them, bounds each call's time
//! and the size of its result, and turns every failure into a message the model
//! can read and act on — a tool error never ends a reply.

pub mod builtin;
pub mod registry;

pub use registry::{Tool, ToolContext, ToolError, ToolOutcome, ToolRegistry};

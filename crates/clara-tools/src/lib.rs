//! Clara's tools: what a model may call while answering.
//!
//! A [`Tool`] describes itself with a JSON Schema and runs with JSON arguments.
//! Tools come from [`ToolProvider`]s, each serving one *server*: the built-ins
//! ([`builtin::Builtin`], server `clara`), the memory tools (server `memory`, in
//! `clara-runtime`), and the integrations to come (MCP servers, the sandbox, web
//! search, GitHub, e-mail), each a [`ToolIntegration`] with its own
//! `clara.toml` section, behind a feature of the binary.
//!
//! The [`ToolRegistry`] names every tool `{server}__{tool}` and can change while
//! Clara runs (an MCP server comes or goes): each reply takes one [`ToolSet`]
//! snapshot and keeps it for all its rounds. A set checks the model's arguments
//! before a tool sees them, bounds each call's time and the size of its result,
//! and turns every failure into a message the model can read and act on — a
//! tool error never ends a reply.

pub mod args;
pub mod builtin;
pub mod policy;
pub mod provider;
pub mod registry;
pub mod tool;
pub mod untrusted;

pub use policy::{Decision, Policy, Rule, RuleAction};
pub use provider::{StaticTools, ToolIntegration, ToolProvider};
pub use registry::{CheckedCall, ToolRegistry, ToolSet, WeakToolRegistry};
pub use tool::{
    Effect, Tool, ToolContext, ToolError, ToolEvent, ToolOutcome, ToolSideband, ToolTraits,
};

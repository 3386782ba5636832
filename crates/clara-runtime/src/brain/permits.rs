//! Where the owner's standing grants and pinned tool definitions are kept:
//! the store (shared by every process of a deployment), or memory (tests).
//! A store that cannot be read counts as "no grant" and "nothing pinned": the
//! call is asked about, never let through by an error.

use async_trait::async_trait;
use clara_core::{ToolGrant, ToolPin};
use clara_store::Store;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Where standing grants and pinned definitions are kept.
#[async_trait]
pub trait Permits: Send + Sync + 'static {
    /// The grant for exactly this call, if the owner made one.
    async fn grant(&self, tool: &str, arguments_sha256: &str) -> Option<ToolGrant>;
    /// Records a grant.
    async fn add_grant(&self, grant: ToolGrant);
    /// The definition pinned for `tool`, if any.
    async fn pin(&self, tool: &str) -> Option<String>;
    /// Pins a definition.
    async fn set_pin(&self, pin: ToolPin);
}

/// Grants and pins in memory: for tests, and for a process without a store.
#[derive(Default)]
pub struct MemoryPermits {
    grants: Mutex<HashMap<(String, String), ToolGrant>>,
    pins: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl Permits for MemoryPermits {
    async fn grant(&self, tool: &str, arguments_sha256: &str) -> Option<ToolGrant> {
        self.grants
            .lock()
            .get(&(tool.to_owned(), arguments_sha256.to_owned()))
            .cloned()
    }
    async fn add_grant(&self, grant: ToolGrant) {
        self.grants
            .lock()
            .insert((grant.tool.clone(), grant.arguments_sha256.clone()), grant);
    }
    async fn pin(&self, tool: &str) -> Option<String> {
        self.pins.lock().get(tool).cloned()
    }
    async fn set_pin(&self, pin: ToolPin) {
        self.pins.lock().insert(pin.tool, pin.definition_sha256);
    }
}

/// Grants and pins in the store, read on every call (so a grant made in the
/// gateway is seen by every worker at once).
pub struct StorePermits(pub Store);

#[async_trait]
impl Permits for StorePermits {
    async fn grant(&self, tool: &str, arguments_sha256: &str) -> Option<ToolGrant> {
        match self.0.tool_grant(tool, arguments_sha256).await {
            Ok(grant) => grant,
            Err(error) => {
                tracing::warn!(%error, "could not read tool grants; asking instead");
                None
            }
        }
    }
    async fn add_grant(&self, grant: ToolGrant) {
        if let Err(error) = self.0.add_tool_grant(&grant).await {
            tracing::warn!(%error, tool = %grant.tool, "could not store a tool grant");
        }
    }
    async fn pin(&self, tool: &str) -> Option<String> {
        match self.0.tool_pin(tool).await {
            Ok(pin) => pin.map(|p| p.definition_sha256),
            Err(error) => {
                // Unreadable pins must not let a changed definition through:
                // report a pin that matches nothing, so the tool asks.
                tracing::warn!(%error, "could not read tool pins; asking instead");
                Some(String::new())
            }
        }
    }
    async fn set_pin(&self, pin: ToolPin) {
        if let Err(error) = self.0.set_tool_pin(&pin).await {
            tracing::warn!(%error, tool = %pin.tool, "could not store a tool pin");
        }
    }
}

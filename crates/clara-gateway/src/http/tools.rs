//! The page's Tools panel: the MCP servers Clara runs and the owner's tool
//! rules, for the owner only.
//!
//! The gateway does not know MCP (it is an optional integration): whoever wires
//! Clara hands it a [`ToolServers`], which reports each server as a plain
//! [`ToolServerStatus`] and may turn servers on and off. Without one, the
//! panel shows the rules and says that no tool servers are configured.

use crate::http::access::{ApiPath, JsonBody, PageAccess};
use crate::http::chat::web_person;
use crate::http::errors::ApiError;
use crate::http::person::PLATFORM;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use clara_tools::RuleAction;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One tool server (an MCP server) as the Tools panel shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolServerStatus {
    /// Its name, which prefixes its tools (`github` → `github__create_issue`).
    pub name: String,
    /// How Clara reaches it: `stdio` or `http`.
    pub transport: String,
    /// One word: `ready`, `starting`, `failed`, `needs_auth`, `disabled` or
    /// `stopped`.
    pub state: String,
    /// One line for people (`ready, 13 tools`, `failed: … (retrying in 4 s)`).
    /// Never a secret.
    pub detail: String,
    /// Whether it is configured to run.
    pub enabled: bool,
    /// Its tools as the model sees them (`{server}__{tool}`).
    pub tools: Vec<String>,
    /// How many times it was connected again after its first connection.
    pub restarts: u32,
    /// Where it came from (`npm:@modelcontextprotocol/server-everything@…`),
    /// when recorded.
    pub source: Option<String>,
}

/// The tool servers of a running Clara, as the binary provides them.
pub trait ToolServers: Send + Sync + 'static {
    /// Every server now, by name.
    fn status(&self) -> Vec<ToolServerStatus>;

    /// Whether [`ToolServers::set_enabled`] can change anything here.
    fn can_set_enabled(&self) -> bool {
        false
    }

    /// Turns server `name` on or off; the error is a sentence for the owner.
    fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        let _ = (name, enabled);
        Err("Servers cannot be turned on or off from the web page here.".to_owned())
    }
}

/// The owner's rule as the panel shows it.
#[derive(Serialize)]
struct ShownRule {
    action: &'static str,
    tool: String,
    arguments: Option<String>,
}

/// `GET /api/tools`'s answer.
#[derive(Serialize)]
struct ToolsView {
    /// Whose approvals count (`telegram:123`, `web:owner`).
    owners: Vec<String>,
    /// Seconds a question waits before it counts as a deny.
    timeout_secs: u64,
    /// The owner's rules, in the order they are read.
    rules: Vec<ShownRule>,
    /// The tool servers; `None` when this Clara has no tool servers to show.
    servers: Option<Vec<ToolServerStatus>>,
    /// Whether servers can be turned on and off from the page.
    can_toggle: bool,
}

/// Whether the web page's person is one of Clara's owners (`web:ID` or
/// `web:*` in `[tools] owners`): only they see tools and rules, and only their
/// approvals count.
pub(crate) fn page_is_owner(state: &AppState) -> bool {
    let id = &state.config.person.id;
    state
        .engine
        .config()
        .approvals
        .owners
        .iter()
        .any(|o| o.platform == PLATFORM && (o.user == "*" || o.user == *id))
}

fn require_owner(state: &AppState) -> Result<(), ApiError> {
    if page_is_owner(state) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "Only Clara's owner sees her tools; add \"web:{}\" to [tools] owners to be one.",
            state.config.person.id
        ))
        .with_code("not_owner"))
    }
}

/// `GET /api/tools`: the owner's tool rules and the tool servers.
pub(crate) async fn view(
    State(state): State<AppState>,
    _access: PageAccess,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_owner(&state)?;
    let approvals = &state.engine.config().approvals;
    let servers = state.tool_servers.clone();
    let (servers, can_toggle) = match servers {
        Some(servers) => {
            let can_toggle = servers.can_set_enabled();
            // A status may read files: off the async threads.
            let status = tokio::task::spawn_blocking(move || servers.status())
                .await
                .map_err(|e| ApiError::internal("read the tool servers' status", &e))?;
            (Some(status), can_toggle)
        }
        None => (None, false),
    };
    let view = ToolsView {
        owners: approvals.owners.iter().map(ToString::to_string).collect(),
        timeout_secs: approvals.timeout.as_secs(),
        rules: approvals
            .rules
            .iter()
            .map(|rule| ShownRule {
                action: match rule.action {
                    RuleAction::Allow => "allow",
                    RuleAction::Ask => "ask",
                    RuleAction::Deny => "deny",
                },
                tool: rule.tool.clone(),
                arguments: rule.arguments.clone(),
            })
            .collect(),
        servers,
        can_toggle,
    };
    serde_json::to_value(view)
        .map(Json)
        .map_err(|e| ApiError::internal("show the tools", &e))
}

/// The body of `POST /api/tools/servers/{name}`.
#[derive(Deserialize)]
pub(crate) struct ServerForm {
    enabled: bool,
}

/// `POST /api/tools/servers/{name}`: turns a tool server on or off.
pub(crate) async fn set_server(
    State(state): State<AppState>,
    _access: PageAccess,
    ApiPath(name): ApiPath<String>,
    JsonBody(form): JsonBody<ServerForm>,
) -> Result<StatusCode, ApiError> {
    require_owner(&state)?;
    let servers: Arc<dyn ToolServers> = state
        .tool_servers
        .clone()
        .filter(|s| s.can_set_enabled())
        .ok_or_else(|| {
            ApiError::conflict(
                "Tool servers cannot be turned on or off from the web page here.",
                "not_supported",
            )
        })?;
    let enabled = form.enabled;
    let person = web_person(&state);
    let changed = {
        let name = name.clone();
        // Both may read and write the servers' files: off the async threads.
        tokio::task::spawn_blocking(move || {
            if !servers.status().iter().any(|s| s.name == name) {
                return Err(None);
            }
            servers.set_enabled(&name, enabled).map_err(Some)
        })
        .await
        .map_err(|e| ApiError::internal("change the tool server", &e))?
    };
    changed.map_err(|message| match message {
        None => ApiError::not_found(format!("There is no tool server named {name:?}.")),
        Some(message) => ApiError::conflict(message, "not_changed"),
    })?;
    tracing::info!(server = %name, enabled, by = %person.id, "tool server turned on or off from the web page");
    Ok(StatusCode::NO_CONTENT)
}

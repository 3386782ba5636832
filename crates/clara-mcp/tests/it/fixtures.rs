//! The installed servers, a running HTTP fixture, and helpers to start a
//! manager on a real registry.

use clara_core::ToolCall;
use clara_mcp::{McpManager, McpSettings, ServerConfig, ServerStatus};
use clara_testkit::mcp_servers::PythonMcpServer;
use clara_tools::{ToolContext, ToolOutcome, ToolRegistry};
use std::path::Path;
use std::time::{Duration, Instant};

pub use clara_testkit::mcp_servers::need;

fn stdio(name: &str, command: &str, args: Vec<String>) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        command: Some(command.into()),
        args,
        env: Default::default(),
        cwd: None,
        url: None,
        bearer_token: None,
        enabled: true,
        source: Some("local".into()),
    }
}

/// `@modelcontextprotocol/server-everything` over stdio.
pub fn everything(name: &str) -> ServerConfig {
    let script = need("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    stdio(
        name,
        "node",
        vec![script.display().to_string(), "stdio".into()],
    )
}

/// `@modelcontextprotocol/server-filesystem` allowed only `root`.
pub fn filesystem(name: &str, root: &Path) -> ServerConfig {
    let script = need("node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    stdio(
        name,
        "node",
        vec![script.display().to_string(), root.display().to_string()],
    )
}

/// `mcp-server-time` in UTC.
pub fn time(name: &str) -> ServerConfig {
    let program = need("venv/bin/mcp-server-time");
    stdio(
        name,
        &program.display().to_string(),
        vec!["--local-timezone".into(), "UTC".into()],
    )
}

/// A server that is just a shell command (for what starts and what does not).
pub fn shell(name: &str, script: &str) -> ServerConfig {
    stdio(name, "/bin/sh", vec!["-c".into(), script.into()])
}

/// The HTTP fixture (`tests/fixtures/http_server.py`), running on a free
/// port; killed on drop.
pub struct HttpFixture {
    /// Kept for its drop, which stops the server.
    _server: PythonMcpServer,
    pub url: String,
}

impl HttpFixture {
    pub fn start() -> Self {
        let server = PythonMcpServer::start("http_server.py", &[]);
        let url = server.url.clone();
        Self {
            _server: server,
            url,
        }
    }

    pub fn config(&self, name: &str) -> ServerConfig {
        ServerConfig {
            url: Some(self.url.clone()),
            command: None,
            args: Vec::new(),
            ..stdio(name, "", Vec::new())
        }
    }
}

/// Settings with these servers and optionally a servers dir.
pub fn settings(servers: Vec<ServerConfig>, dir: Option<&Path>) -> McpSettings {
    McpSettings {
        servers,
        servers_dir: dir.map(Path::to_owned),
        ..McpSettings::default()
    }
}

/// A manager for `settings` added to a fresh registry, as the binary does.
pub async fn start(settings: McpSettings) -> (McpManager, ToolRegistry) {
    let manager = McpManager::new(&settings).expect("valid settings");
    let registry = ToolRegistry::new(Duration::from_secs(120), 100_000);
    registry
        .add_provider(manager.provider())
        .await
        .expect("the manager's provider");
    (manager, registry)
}

/// Waits (up to 60 s) until `ready` holds, failing with `what` and the status.
pub async fn wait_until(manager: &McpManager, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {:#?}",
            manager.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `registry` offers `tool` (namespaced).
pub async fn wait_for_tool(manager: &McpManager, registry: &ToolRegistry, tool: &str) {
    wait_until(manager, &format!("tool {tool}"), || {
        registry.snapshot().names().any(|n| n == tool)
    })
    .await;
}

/// Waits until `registry` has no tool of `server`.
pub async fn wait_for_no_server(manager: &McpManager, registry: &ToolRegistry, server: &str) {
    wait_until(manager, &format!("server {server} to be gone"), || {
        !registry.snapshot().servers().contains(&server)
    })
    .await;
}

/// The status of `server`.
pub fn status_of(manager: &McpManager, server: &str) -> ServerStatus {
    manager
        .status()
        .into_iter()
        .find(|s| s.name == server)
        .unwrap_or_else(|| panic!("no server {server} in {:#?}", manager.status()))
}

/// Calls `tool` (namespaced) with `arguments` through a snapshot, as a reply does.
pub async fn call(
    registry: &ToolRegistry,
    tool: &str,
    arguments: serde_json::Value,
) -> ToolOutcome {
    registry
        .snapshot()
        .run(
            &ToolCall {
                id: "call-1".into(),
                name: tool.into(),
                arguments: arguments.to_string(),
            },
            &ToolContext::default(),
        )
        .await
}

/// Whether process `pid` still runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Kills process group `pgid` with SIGKILL, as a crash would.
pub fn kill_group(pgid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -KILL -{pgid} failed");
}

/// The result inside the untrusted-data wrapping the registry puts around an
/// MCP tool's output.
pub fn data(content: &str) -> &str {
    let start = content.find(">\n").map_or(0, |i| i + 2);
    let end = content.rfind("\n</").unwrap_or(content.len()).max(start);
    &content[start..end]
}

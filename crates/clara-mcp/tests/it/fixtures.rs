//! The installed servers, a running HTTP fixture, and helpers to start a
//! manager on a real registry.

use clara_core::ToolCall;
use clara_mcp::{McpManager, McpSettings, ServerConfig, ServerStatus};
use clara_tools::{ToolContext, ToolOutcome, ToolRegistry};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where `scripts/mcp-servers.sh` installs the servers.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("CLARA_MCP_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/clara/mcp-fixtures")
        }
    }
}

/// `relative` under the fixtures dir; a missing one fails the test saying how
/// to install it.
pub fn need(relative: &str) -> PathBuf {
    let path = fixtures_dir().join(relative);
    assert!(
        path.exists(),
        "missing MCP test server {}: install the fixtures with `bash scripts/mcp-servers.sh` (set CLARA_MCP_FIXTURES if they live elsewhere)",
        path.display()
    );
    path
}

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

/// The HTTP fixture, running on a free port; killed on drop.
pub struct HttpFixture {
    child: std::process::Child,
    pub url: String,
}

impl HttpFixture {
    pub fn start() -> Self {
        let python = need("venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http_server.py");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the HTTP fixture");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the HTTP fixture did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
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

impl Drop for HttpFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

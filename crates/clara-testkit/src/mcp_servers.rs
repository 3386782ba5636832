//! The real MCP servers Clara's tests run (installed by
//! `scripts/mcp-servers.sh`), and the Python fixtures of `clara-mcp`'s tests
//! (`crates/clara-mcp/tests/fixtures/*.py`, written with the `mcp` package)
//! started on a free port.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/mcp-servers.sh` installed the servers:
/// `$CLARA_MCP_FIXTURES`, else `~/.cache/clara/mcp-fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("CLARA_MCP_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/clara/mcp-fixtures"),
    }
}

/// `relative` under [`fixtures_dir`]. Panics, saying how to install it, when
/// it is missing: a test that needs a server fails without it, never skips.
pub fn need(relative: &str) -> PathBuf {
    let path = fixtures_dir().join(relative);
    assert!(
        path.exists(),
        "missing MCP test server {}: install the fixtures with `bash scripts/mcp-servers.sh` (set CLARA_MCP_FIXTURES if they live elsewhere)",
        path.display()
    );
    path
}

/// One of `clara-mcp`'s Python fixtures (`http_server.py`, `oauth_server.py`)
/// serving streamable HTTP on a free port of 127.0.0.1; killed on drop.
pub struct PythonMcpServer {
    child: Child,
    /// Its MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
}

impl PythonMcpServer {
    /// Starts `crates/clara-mcp/tests/fixtures/{script}` with the port and
    /// `args`, and waits (30 s at most) until it listens.
    pub fn start(script: &str, args: &[&str]) -> Self {
        let python = need("venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../clara-mcp/tests/fixtures")
            .join(script);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"));
        let child = Command::new(python)
            .arg(&script)
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {port}",
                script.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for PythonMcpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

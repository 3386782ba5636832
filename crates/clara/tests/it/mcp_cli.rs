//! `clara mcp …` through the real binary, with mcp-server-time from the MCP
//! fixtures (`bash scripts/mcp-servers.sh` installs them; a missing one fails
//! the test saying so).

use crate::common::{clara, run, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// An env value given to the server: it must never be printed.
const TOKEN: &str = "mcp-token-5ecr3t";

/// The installed mcp-server-time program.
fn time_server() -> PathBuf {
    let dir = match std::env::var_os("CLARA_MCP_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/clara/mcp-fixtures")
        }
    };
    let program = dir.join("venv/bin/mcp-server-time");
    assert!(
        program.is_file(),
        "missing MCP test server {}: install the fixtures with `bash scripts/mcp-servers.sh` (set CLARA_MCP_FIXTURES if they live elsewhere)",
        program.display()
    );
    program
}

/// Runs `clara mcp <args>`, expecting success; returns standard output.
async fn ok(data: &Path, cwd: &Path, args: &[&str]) -> String {
    ok_with(&mut clara(data, cwd), args).await
}

/// [`ok`] with a command the test prepared (extra environment).
async fn ok_with(cmd: &mut Command, args: &[&str]) -> String {
    let out = run(cmd.arg("mcp").args(args), "").await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "clara mcp {args:?} failed: {stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}{stderr}"
    );
    stdout
}

/// Runs `clara mcp <args>`, expecting failure with one `clara: …` sentence.
async fn fails(data: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = run(clara(data, cwd).arg("mcp").args(args), "").await;
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "clara mcp {args:?} succeeded: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.starts_with("clara: "), "{stderr}");
    stderr
}

fn listed(out: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(out)
        .unwrap_or_else(|e| panic!("not a JSON list ({e}): {out}"))
}

#[tokio::test]
async fn add_list_probe_disable_and_remove_a_server() {
    let program = time_server();
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());

    let empty = ok(&data, cwd, &["list"]).await;
    assert!(empty.contains("No MCP server is configured"), "{empty}");

    let source = format!("local:{}", program.display());
    let env = format!("API_TOKEN={TOKEN}");
    let added = ok(
        &data,
        cwd,
        &[
            "add",
            "clock",
            &source,
            "--env",
            &env,
            "--",
            "--local-timezone",
            "UTC",
        ],
    )
    .await;
    assert!(added.starts_with("Added clock (local)"), "{added}");
    let file = data.join("mcp/clock.toml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains(&program.display().to_string()),
        "{written}"
    );
    assert!(written.contains("--local-timezone"), "{written}");

    let table = ok(&data, cwd, &["list"]).await;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("clock") && l.contains("enabled") && l.contains("local")),
        "{table}"
    );
    let rows = listed(&ok(&data, cwd, &["list", "--json"]).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "clock");
    assert_eq!(rows[0]["enabled"], true);
    assert_eq!(rows[0]["transport"], "stdio");

    let probed = ok(&data, cwd, &["probe", "clock"]).await;
    assert!(probed.starts_with("clock (mcp-time "), "{probed}");
    assert!(probed.contains("works: 2 tools"), "{probed}");
    assert!(probed.contains("get_current_time"), "{probed}");

    let taken = fails(&data, cwd, &["add", "clock", &source]).await;
    assert!(taken.contains("already exists"), "{taken}");

    let said = ok(&data, cwd, &["disable", "clock"]).await;
    assert!(said.starts_with("clock is disabled"), "{said}");
    let rows = listed(&ok(&data, cwd, &["list", "--json"]).await);
    assert_eq!(rows[0]["enabled"], false);
    ok(&data, cwd, &["enable", "clock"]).await;
    let rows = listed(&ok(&data, cwd, &["list", "--json"]).await);
    assert_eq!(rows[0]["enabled"], true);

    let removed = ok(&data, cwd, &["remove", "clock"]).await;
    assert!(removed.starts_with("Removed clock"), "{removed}");
    assert!(!file.exists());
    assert!(listed(&ok(&data, cwd, &["list", "--json"]).await).is_empty());
    let gone = fails(&data, cwd, &["remove", "clock"]).await;
    assert!(gone.contains("no MCP server named \"clock\""), "{gone}");
}

#[tokio::test]
async fn add_disabled_and_mistakes_are_one_sentence() {
    let program = time_server();
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());

    // MCP_SERVERS_DIR moves the server files (a running Clara reads the same).
    let elsewhere = dir.path().join("servers");
    let source = format!("local:{}", program.display());
    let added = ok_with(
        clara(&data, cwd).env("MCP_SERVERS_DIR", &elsewhere),
        &["add", "later", &source, "--disabled"],
    )
    .await;
    assert!(added.contains("disabled"), "{added}");
    assert!(elsewhere.join("later.toml").is_file());
    let rows = listed(
        &ok_with(
            clara(&data, cwd).env("MCP_SERVERS_DIR", &elsewhere),
            &["list", "--json"],
        )
        .await,
    );
    assert_eq!(rows[0]["enabled"], false);
    assert!(listed(&ok(&data, cwd, &["list", "--json"]).await).is_empty());

    let bad = fails(&data, cwd, &["add", "x", "gopher://example"]).await;
    assert!(bad.contains("is not a source Clara knows"), "{bad}");
    let name = fails(&data, cwd, &["add", "../evil", &source]).await;
    assert!(name.contains("server name"), "{name}");
    let missing = fails(&data, cwd, &["add", "nowhere", "local:/no/such/server"]).await;
    assert!(missing.contains("does not exist"), "{missing}");
    assert!(!data.join("mcp/nowhere.toml").exists());
    let unknown = fails(&data, cwd, &["enable", "nope"]).await;
    assert!(
        unknown.contains("no MCP server named \"nope\""),
        "{unknown}"
    );
    let login = fails(&data, cwd, &["login", "nope"]).await;
    assert!(login.contains("no MCP server named \"nope\""), "{login}");
}

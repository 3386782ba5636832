//! What Clara adds to an MCP tool call: server-everything's `echo` called by a
//! bare rmcp client against the same call through Clara (an `McpTool` in a
//! `ToolRegistry` snapshot, `ToolSet::run`: name lookup, argument parsing,
//! null stripping, result rendering and untrusted-data wrapping), in one run.
//!
//! `cargo bench -p clara-mcp --bench call` (needs `bash scripts/mcp-servers.sh`).
//! `cargo test --benches` runs it in a quick mode.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use clara_core::ToolCall;
use clara_mcp::{McpManager, McpSettings, ServerConfig};
use clara_runtime::approvals::NoOwner;
use clara_runtime::brain::gate::{Call, Gate};
use clara_tools::{Rule, RuleAction};
use clara_tools::{ToolContext, ToolRegistry};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server_script() -> PathBuf {
    let dir = match std::env::var_os("CLARA_MCP_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/clara/mcp-fixtures")
        }
    };
    let script =
        dir.join("node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.exists(),
        "missing {}: run `bash scripts/mcp-servers.sh`",
        script.display()
    );
    script
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let calls = if quick { 20 } else { 2_000 };
    let warmup = if quick { 3 } else { 100 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let script = server_script();

        // Bare rmcp.
        let mut command = tokio::process::Command::new("node");
        command.arg(&script).arg("stdio");
        let bare = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();

        let settings = McpSettings {
            servers: vec![ServerConfig {
                name: "ev".into(),
                command: Some("node".into()),
                args: vec![script.display().to_string(), "stdio".into()],
                env: Default::default(),
                cwd: None,
                url: None,
                bearer_token: None,
                enabled: true,
                source: None,
            }],
            ..McpSettings::default()
        };
        let manager = McpManager::new(&settings).unwrap();
        let registry = ToolRegistry::new(Duration::from_secs(30), 8_000);
        registry.add_provider(manager.provider()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !registry.snapshot().names().any(|n| n == "ev__echo") {
            assert!(Instant::now() < deadline, "server-everything did not start: {:?}", manager.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The gate a reply puts every call through: the owner's rule allows
        // `ev__*`; grants and the pinned definition are read from SQLite.
        let dir = tempfile::tempdir().unwrap();
        let store = clara_store::Store::open(&dir.path().join("clara.db")).await.unwrap();
        let rules = [Rule {
            action: RuleAction::Allow,
            tool: "ev__*".into(),
            arguments: None,
        }];
        let gate = Gate::new(
            &rules,
            &store,
            Arc::new(NoOwner {
                why: "no owner in the bench".into(),
            }),
        );
        let snapshot = registry.snapshot();
        let context = ToolContext::default();

        // Alternate the two paths, so load on the machine falls on both alike.
        let mut bare_times = Vec::with_capacity(calls);
        let mut clara_times = Vec::with_capacity(calls);
        for i in 0..warmup + calls {
            let args = serde_json::json!({"message": "hi"});
            let params = CallToolRequestParams::new("echo")
                .with_arguments(args.as_object().unwrap().clone());
            let started = Instant::now();
            let result = bare.call_tool(params).await.unwrap();
            let bare_took = started.elapsed();
            assert_ne!(result.is_error, Some(true));

            let call = ToolCall {
                id: format!("c{i}"),
                name: "ev__echo".into(),
                arguments: r#"{"message":"hi","unused":null}"#.into(),
            };
            let started = Instant::now();
            let checked = snapshot.check(&call).unwrap();
            let permission = gate
                .permit(Call {
                    tool: &call.name,
                    arguments: &checked.arguments,
                    traits: &checked.traits,
                    tainted: false,
                    context: &context,
                })
                .await;
            assert_eq!(permission, clara_core::Permission::Policy);
            let outcome = snapshot.run_checked(&call, checked, &context).await;
            let clara_took = started.elapsed();
            assert!(outcome.ok, "{}", outcome.content);
            if i >= warmup {
                bare_times.push(bare_took);
                clara_times.push(clara_took);
            }
        }
        bare.cancel().await.unwrap();
        manager.shutdown().await;
        store.close().await;

        bare_times.sort();
        clara_times.sort();
        let (b50, b99) = (percentile(&bare_times, 0.5), percentile(&bare_times, 0.99));
        let (c50, c99) = (percentile(&clara_times, 0.5), percentile(&clara_times, 0.99));
        println!(
            "MCP call bench: server-everything `echo` over stdio, {calls} calls each after {warmup} warm-up{}.",
            if quick { " (quick mode)" } else { "" }
        );
        println!();
        println!("| path | p50 µs | p99 µs |");
        println!("|---|---|---|");
        println!("| bare rmcp client | {:.0} | {:.0} |", micros(b50), micros(b99));
        println!("| Clara (the reply's gate with grants and pins in SQLite, then McpTool via ToolSet::run) | {:.0} | {:.0} |", micros(c50), micros(c99));
        println!();
        println!(
            "p50 ratio {:.2}×, added {:.0} µs at p50, {:.0} µs at p99",
            micros(c50) / micros(b50),
            micros(c50) - micros(b50),
            micros(c99) - micros(b99)
        );
    });
}

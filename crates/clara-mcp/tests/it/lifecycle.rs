//! Crashes, restarts, `tools/list_changed` and shutdown.

use crate::fixtures::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_server_killed_mid_call_fails_the_call_and_is_restarted() {
    let (manager, registry) = start(settings(vec![everything("ev")], None)).await;
    wait_for_tool(&manager, &registry, "ev__trigger-long-running-operation").await;
    let first = status_of(&manager, "ev");
    let pid = first.pid.expect("a stdio server has a pid");
    assert_eq!(first.restarts, 0);

    let long = tokio::spawn({
        let registry = registry.clone();
        async move {
            call(
                &registry,
                "ev__trigger-long-running-operation",
                json!({"duration": 60, "steps": 60}),
            )
            .await
        }
    });
    // Let the call reach the server, then crash it (its whole group).
    tokio::time::sleep(Duration::from_secs(1)).await;
    kill_group(pid);
    let outcome = long.await.unwrap();
    assert!(!outcome.ok, "{}", outcome.content);
    assert!(
        outcome
            .content
            .contains("the MCP server ev stopped while running trigger-long-running-operation"),
        "{}",
        outcome.content
    );

    wait_until(&manager, "a restarted server", || {
        let s = status_of(&manager, "ev");
        s.restarts == 1 && s.pid.is_some_and(|p| p != pid) && s.tools.len() == first.tools.len()
    })
    .await;
    wait_for_tool(&manager, &registry, "ev__echo").await;
    let echo = call(&registry, "ev__echo", json!({"message": "again"})).await;
    assert!(
        echo.ok && echo.content.contains("Echo: again"),
        "{}",
        echo.content
    );
    assert!(!alive(pid), "the crashed server is gone");
    manager.shutdown().await;
}

#[tokio::test]
async fn tools_list_changed_adds_a_tool_without_a_restart() {
    let http = HttpFixture::start();
    let (manager, registry) = start(settings(vec![http.config("remote")], None)).await;
    wait_for_tool(&manager, &registry, "remote__grow").await;
    assert!(!registry.snapshot().names().any(|n| n == "remote__grown"));
    let grew = call(&registry, "remote__grow", json!({})).await;
    assert!(grew.ok, "{}", grew.content);
    // The periodic refresh is 300 s away: only the notification can do this.
    wait_for_tool(&manager, &registry, "remote__grown").await;
    assert_eq!(status_of(&manager, "remote").restarts, 0);
    let out = call(&registry, "remote__grown", json!({})).await;
    assert!(out.ok && out.content.contains("grown"), "{}", out.content);
    manager.shutdown().await;
}

#[tokio::test]
async fn no_process_is_left_after_shutdown() {
    let (manager, registry) = start(settings(vec![everything("ev"), time("time")], None)).await;
    wait_for_tool(&manager, &registry, "ev__echo").await;
    wait_for_tool(&manager, &registry, "time__get_current_time").await;
    let pids: Vec<u32> = manager.status().iter().filter_map(|s| s.pid).collect();
    assert_eq!(pids.len(), 2, "{:#?}", manager.status());
    assert!(pids.iter().all(|&p| alive(p)));
    manager.shutdown().await;
    for pid in pids {
        assert!(!alive(pid), "process {pid} is still running after shutdown");
    }
    assert_eq!(registry.snapshot().servers(), Vec::<&str>::new());
    assert!(manager.status().iter().all(|s| s.pid.is_none()));
}

#[tokio::test]
async fn a_call_to_a_server_that_is_not_running_says_so() {
    // A server that answers nothing and exits: never ready.
    let (manager, registry) = start(settings(vec![shell("gone", "exit 3")], None)).await;
    wait_until(&manager, "the server to fail", || {
        matches!(
            status_of(&manager, "gone").state,
            clara_mcp::ServerState::Failed { .. }
        )
    })
    .await;
    let described = status_of(&manager, "gone").state.describe();
    assert!(
        described.starts_with("failed: ") && described.contains("retrying in"),
        "{described}"
    );
    assert!(registry.snapshot().servers().iter().all(|s| *s != "gone"));
    manager.shutdown().await;
}

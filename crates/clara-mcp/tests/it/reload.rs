//! The servers directory while Clara runs, and disabled servers.

use crate::fixtures::*;
use clara_mcp::{ServerState, remove_server_file, set_enabled, write_server_file};
use std::time::Duration;

#[tokio::test]
async fn a_server_file_added_removed_or_disabled_shows_in_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, registry) = start(settings(Vec::new(), Some(dir.path()))).await;
    assert!(manager.status().is_empty());

    write_server_file(dir.path(), &time("clock")).unwrap();
    wait_for_tool(&manager, &registry, "clock__get_current_time").await;
    let pid = status_of(&manager, "clock").pid.expect("running");

    set_enabled(dir.path(), "clock", false).unwrap();
    wait_for_no_server(&manager, &registry, "clock").await;
    // While reconciling, the old supervisor is gone before the idle one comes.
    wait_until(&manager, "clock disabled", || {
        manager
            .status()
            .iter()
            .any(|s| s.name == "clock" && s.state == ServerState::Disabled)
    })
    .await;
    assert!(!alive(pid), "a disabled server's process is stopped");

    set_enabled(dir.path(), "clock", true).unwrap();
    wait_for_tool(&manager, &registry, "clock__get_current_time").await;

    assert!(remove_server_file(dir.path(), "clock").unwrap());
    wait_for_no_server(&manager, &registry, "clock").await;
    wait_until(&manager, "clock gone from the status", || {
        manager.status().is_empty()
    })
    .await;
    manager.shutdown().await;
}

#[tokio::test]
async fn a_file_cannot_override_a_server_of_clara_toml() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("file-server-ran");
    let script = format!("touch {}; sleep 600", marker.display());
    write_server_file(dir.path(), &shell("clock", &script)).unwrap();
    let (manager, registry) = start(settings(vec![time("clock")], Some(dir.path()))).await;
    wait_for_tool(&manager, &registry, "clock__get_current_time").await;
    assert_eq!(manager.status().len(), 1);
    assert!(!marker.exists(), "the duplicate file's command ran");
    manager.shutdown().await;
}

#[tokio::test]
async fn disabled_servers_start_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let off_marker = dir.path().join("off-ran");
    let on_marker = dir.path().join("on-ran");
    let mut off = shell("off", &format!("touch {}; sleep 600", off_marker.display()));
    off.enabled = false;
    let on = shell("on", &format!("touch {}; sleep 600", on_marker.display()));
    let (manager, _registry) = start(settings(vec![off, on], None)).await;
    // The enabled one runs (so the check below could fail)…
    wait_until(&manager, "the enabled server's command", || {
        on_marker.exists()
    })
    .await;
    manager.reconcile().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // …the disabled one did not.
    assert!(!off_marker.exists());
    let off = status_of(&manager, "off");
    assert_eq!((off.state, off.pid), (ServerState::Disabled, None));
    manager.shutdown().await;
}

#[tokio::test]
async fn editing_clara_toml_changes_the_servers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clara.toml");
    let time_server = need("venv/bin/mcp-server-time");
    let server = |name: &str| {
        format!(
            "[[mcp.servers]]\nname = \"{name}\"\ncommand = \"{}\"\nargs = [\"--local-timezone\", \"UTC\"]\n",
            time_server.display()
        )
    };
    std::fs::write(&file, format!("[tools]\nrounds = 3\n\n{}", server("clock"))).unwrap();
    let mut config = settings(vec![time("clock")], None);
    config.config_file = Some(file.clone());
    let (manager, registry) = start(config).await;
    wait_for_tool(&manager, &registry, "clock__get_current_time").await;

    // Another server joins; the file's other sections do not matter.
    std::fs::write(&file, format!("{}\n{}", server("clock"), server("watch"))).unwrap();
    wait_for_tool(&manager, &registry, "watch__get_current_time").await;

    // A broken edit keeps what runs.
    std::fs::write(&file, "[[mcp.servers]\nname = ").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        registry
            .snapshot()
            .names()
            .any(|n| n == "watch__get_current_time")
    );

    // Removed from the file: gone.
    std::fs::write(&file, server("watch")).unwrap();
    wait_for_no_server(&manager, &registry, "clock").await;
    assert!(
        registry
            .snapshot()
            .names()
            .any(|n| n == "watch__get_current_time")
    );
    manager.shutdown().await;
}

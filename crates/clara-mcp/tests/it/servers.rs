//! Each real server's tools are offered and answer through the registry.

use crate::fixtures::*;
use clara_core::Secret;
use clara_tools::Effect;
use serde_json::json;

#[tokio::test]
async fn a_tool_of_each_server_is_listed_and_answers() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("note.txt"), "hello from the root").unwrap();
    let http = HttpFixture::start();
    let (manager, registry) = start(settings(
        vec![
            everything("everything"),
            filesystem("fs", root.path()),
            time("time"),
            http.config("remote"),
        ],
        None,
    ))
    .await;
    for tool in [
        "everything__echo",
        "fs__read_text_file",
        "time__get_current_time",
        "remote__add",
    ] {
        wait_for_tool(&manager, &registry, tool).await;
    }

    let echo = call(&registry, "everything__echo", json!({"message": "hi"})).await;
    assert!(echo.ok, "{}", echo.content);
    assert_eq!(data(&echo.content), "Echo: hi");

    let path = root.path().join("note.txt");
    let read = call(
        &registry,
        "fs__read_text_file",
        json!({"path": path, "head": null}),
    )
    .await;
    assert!(read.ok, "{}", read.content);
    assert!(
        read.content.contains("hello from the root"),
        "{}",
        read.content
    );

    let now = call(
        &registry,
        "time__get_current_time",
        json!({"timezone": "UTC"}),
    )
    .await;
    assert!(now.ok && now.content.contains("UTC"), "{}", now.content);

    let sum = call(&registry, "remote__add", json!({"a": 2, "b": 3})).await;
    assert!(sum.ok, "{}", sum.content);
    assert!(sum.content.contains('5'), "{}", sum.content);

    // Every MCP tool is untrusted and pinned by its definition; annotations
    // never lower its effect below writing.
    let snapshot = registry.snapshot();
    let status = status_of(&manager, "everything");
    assert!(
        status.tools.contains(&"everything__get-env".to_owned()),
        "{status:?}"
    );
    assert!(status.pid.is_some());
    assert_eq!(
        status.state.describe(),
        format!("ready, {} tools", status.tools.len())
    );
    let specs = snapshot.specs();
    assert!(specs.iter().all(|s| s.name.len() <= 64));
    drop(snapshot);
    let manager_tools = manager.status();
    assert_eq!(manager_tools.len(), 4);

    manager.shutdown().await;
    assert!(registry.snapshot().servers().iter().all(|s| *s == "mcp"));
}

#[tokio::test]
async fn tool_traits_come_from_the_definition_and_only_make_clara_more_careful() {
    let (manager, registry) = start(settings(vec![everything("ev")], None)).await;
    wait_for_tool(&manager, &registry, "ev__get-env").await;
    let status = status_of(&manager, "ev");
    assert!(status.tools.len() > 5, "{status:?}");
    // get-env says readOnlyHint: true; Clara still takes it to write.
    let traits = tool_traits(&registry, "ev__get-env");
    assert_eq!(traits.effect, Effect::Write);
    assert!(traits.untrusted_output);
    assert_eq!(traits.definition_sha256.as_ref().map(String::len), Some(64));
    assert_ne!(
        traits.definition_sha256,
        tool_traits(&registry, "ev__echo").definition_sha256
    );
    manager.shutdown().await;
}

/// The traits of a registry tool, as the approval policy sees them.
fn tool_traits(registry: &clara_tools::ToolRegistry, name: &str) -> clara_tools::ToolTraits {
    let call = clara_core::ToolCall {
        id: "c".into(),
        name: name.into(),
        arguments: "{}".into(),
    };
    match registry.snapshot().check(&call) {
        Ok(checked) => checked.traits,
        Err(outcome) => panic!("{}", outcome.content),
    }
}

#[tokio::test]
async fn a_path_outside_the_filesystem_root_is_refused_with_the_servers_message() {
    let root = tempfile::tempdir().unwrap();
    let (manager, registry) = start(settings(vec![filesystem("fs", root.path())], None)).await;
    wait_for_tool(&manager, &registry, "fs__read_text_file").await;
    let out = call(
        &registry,
        "fs__read_text_file",
        json!({"path": "/etc/passwd"}),
    )
    .await;
    assert!(!out.ok, "{}", out.content);
    assert!(
        out.content.contains("Access denied") || out.content.contains("outside"),
        "{}",
        out.content
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn a_stdio_server_sees_only_its_own_environment() {
    let mut config = everything("ev");
    config
        .env
        .insert("CLARA_GIVEN".into(), Secret::from("given-value"));
    let (manager, registry) = start(settings(vec![config], None)).await;
    wait_for_tool(&manager, &registry, "ev__get-env").await;
    let out = call(&registry, "ev__get-env", json!({})).await;
    assert!(out.ok, "{}", out.content);
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(data(&out.content)).expect("get-env gives JSON");
    assert_eq!(env.get("CLARA_GIVEN"), Some(&json!("given-value")));
    assert_eq!(
        env.get("PATH"),
        Some(&json!(clara_mcp::client::DEFAULT_PATH))
    );
    let home = env.get("HOME").and_then(|h| h.as_str()).unwrap_or_default();
    assert!(home.ends_with("/ev"), "HOME is the server's own: {home}");
    // Nothing of this process's environment (cargo sets CARGO_* for tests,
    // a real Clara has its API keys there) reaches the server.
    let ours: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !matches!(k.as_str(), "PATH" | "HOME" | "PWD"))
        .collect();
    assert!(
        ours.iter().any(|k| k.starts_with("CARGO")),
        "the test runs under cargo"
    );
    let leaked: Vec<&String> = ours.iter().filter(|k| env.contains_key(*k)).collect();
    assert!(leaked.is_empty(), "leaked to the server: {leaked:?}");
    manager.shutdown().await;
}

#[tokio::test]
async fn an_http_server_gets_the_bearer_token() {
    let http = HttpFixture::start();
    let mut config = http.config("remote");
    config.bearer_token = Some(Secret::from("tok-123"));
    let (manager, registry) = start(settings(vec![config], None)).await;
    wait_for_tool(&manager, &registry, "remote__whoami").await;
    let out = call(&registry, "remote__whoami", json!({})).await;
    assert!(out.ok, "{}", out.content);
    assert_eq!(data(&out.content), "Bearer tok-123");
    // The injection string comes back as data; the taint logic lives elsewhere.
    let note = call(&registry, "remote__read_note", json!({})).await;
    assert!(note.ok && note.content.contains("evil@example.com"));
    manager.shutdown().await;
}

#[tokio::test]
async fn a_call_that_takes_too_long_says_the_server_did_not_answer() {
    let http = HttpFixture::start();
    let mut settings = settings(vec![http.config("remote")], None);
    settings.call_timeout_secs = Some(1);
    let (manager, registry) = start(settings).await;
    wait_for_tool(&manager, &registry, "remote__slow").await;
    let out = call(&registry, "remote__slow", json!({"seconds": 5})).await;
    assert!(!out.ok);
    assert!(
        out.content.contains("did not answer in 1 s"),
        "{}",
        out.content
    );
    // The server is still fine for the next call.
    let sum = call(&registry, "remote__add", json!({"a": 1, "b": 1})).await;
    assert!(sum.ok, "{}", sum.content);
    manager.shutdown().await;
}

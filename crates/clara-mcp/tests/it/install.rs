//! Installing servers for real (npm and PyPI registries, which must be
//! reachable), probing them, Smithery against a fake of its registry, and the
//! management tools changing server files.

use crate::fixtures::{self, need, settings, wait_for_no_server, wait_for_tool};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use clara_core::Secret;
use clara_mcp::files::{read_server_file, server_file, write_server_file};
use clara_mcp::install::{self, InstallError, Source};
use clara_mcp::manage_tools::management_tools;
use clara_mcp::smithery::{SmitheryClient, SmitheryError};
use clara_mcp::{McpManager, McpSettings, ServerConfig};
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolRegistry};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "smithery-key-5ecr3t";

// ---- npm and PyPI, for real ----

#[tokio::test]
async fn installs_server_everything_from_npm_and_probes_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::parse("npm:@modelcontextprotocol/server-everything@2026.8.31").unwrap();
    let config = install::install(&source, "everything", dir.path(), &McpSettings::default())
        .await
        .unwrap_or_else(|e| panic!("npm install (the npm registry must be reachable): {e}"));

    assert_eq!(
        config.source.as_deref(),
        Some("npm:@modelcontextprotocol/server-everything@2026.8.31")
    );
    let node = Path::new(config.command.as_deref().unwrap());
    assert!(node.is_absolute() && node.ends_with("node"), "{node:?}");
    let script = Path::new(&config.args[0]);
    assert!(
        script.starts_with(
            dir.path()
                .canonicalize()
                .unwrap()
                .join("packages/everything")
        )
    );
    assert!(script.ends_with("dist/index.js"), "{script:?}");
    assert!(config.enabled);

    let report = install::probe(&config, &dir.path().join("home"))
        .await
        .unwrap();
    assert!(report.server_name.contains("everything"), "{report:?}");
    for tool in ["echo", "get-sum"] {
        assert!(
            report.tools.iter().any(|t| t == tool),
            "no {tool} in {:?}",
            report.tools
        );
    }
}

#[tokio::test]
async fn installs_mcp_server_time_from_pypi_and_probes_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::parse("pypi:mcp-server-time==2026.10.19").unwrap();
    let config = install::install(&source, "time", dir.path(), &McpSettings::default())
        .await
        .unwrap_or_else(|e| panic!("pip install (PyPI must be reachable): {e}"));

    assert_eq!(
        config.source.as_deref(),
        Some("pypi:mcp-server-time==2026.10.19")
    );
    assert_eq!(
        Path::new(config.command.as_deref().unwrap()),
        dir.path().join("packages/time/bin/mcp-server-time")
    );
    let report = install::probe(&config, &dir.path().join("home"))
        .await
        .unwrap();
    let mut tools = report.tools.clone();
    tools.sort();
    assert_eq!(tools, ["convert_time", "get_current_time"], "{report:?}");
}

#[tokio::test]
async fn a_missing_version_is_pinned_to_the_latest() {
    let npm = install::pin(&Source::parse("npm:@modelcontextprotocol/server-everything").unwrap())
        .await
        .unwrap();
    let Source::Npm {
        version: Some(version),
        ..
    } = &npm
    else {
        panic!("not pinned: {npm:?}");
    };
    assert!(
        version.chars().next().unwrap().is_ascii_digit(),
        "{version}"
    );
    assert!(
        npm.recorded()
            .starts_with("npm:@modelcontextprotocol/server-everything@")
    );

    let pypi = install::pin(&Source::parse("pypi:mcp-server-time").unwrap())
        .await
        .unwrap();
    let Source::Pypi {
        version: Some(version),
        ..
    } = &pypi
    else {
        panic!("not pinned: {pypi:?}");
    };
    assert!(version.as_str() >= "2026.10.19", "{version}");
}

#[tokio::test]
async fn a_package_that_does_not_exist_fails_in_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let source = Source::parse("npm:@clara-test-does-not-exist/nothing@1.0.0").unwrap();
    let error = install::install(&source, "nothing", dir.path(), &McpSettings::default())
        .await
        .unwrap_err();
    assert!(matches!(error, InstallError::Failed { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("npm install @clara-test-does-not-exist/nothing@1.0.0 failed: "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        !dir.path().join("packages/nothing").exists(),
        "the failed install is cleaned up"
    );
}

#[tokio::test]
async fn a_probe_of_a_server_that_is_not_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixtures::shell("broken", "echo not-json; exit 3");
    let error = install::probe(&config, dir.path()).await.unwrap_err();
    assert!(error.to_string().starts_with("probing broken: "), "{error}");
}

// ---- Smithery, against a fake of its registry ----

/// A fake of Smithery's registry API (`GET /servers`, `GET /servers/{name}`),
/// in the shape its docs give; it wants `Authorization: Bearer KEY`.
async fn fake_smithery() -> String {
    async fn authorized(headers: &HeaderMap) -> Result<(), StatusCode> {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(value) if value == format!("Bearer {KEY}") => Ok(()),
            _ => Err(StatusCode::UNAUTHORIZED),
        }
    }
    async fn search(
        headers: HeaderMap,
        RawQuery(query): RawQuery,
    ) -> Result<Json<Value>, StatusCode> {
        authorized(&headers).await?;
        let query = query.unwrap_or_default();
        assert!(query.contains("pageSize=5"), "{query}");
        let servers = if query.contains("q=weather%20forecasts") {
            vec![json!({
                "qualifiedName": "acme/weather",
                "displayName": "Weather",
                "description": "Forecasts",
                "homepage": "https://smithery.ai/server/acme/weather",
                "useCount": 42,
                "isDeployed": true,
                "createdAt": "2026-01-01T00:00:00Z"
            })]
        } else {
            Vec::new()
        };
        Ok(Json(json!({
            "servers": servers,
            "pagination": {"currentPage": 1, "pageSize": 10, "totalPages": 1, "totalCount": 1}
        })))
    }
    async fn server(
        headers: HeaderMap,
        UrlPath(name): UrlPath<String>,
        State(base): State<Arc<String>>,
    ) -> Result<Json<Value>, StatusCode> {
        authorized(&headers).await?;
        match name.as_str() {
            "acme/weather" => Ok(Json(json!({
                "qualifiedName": "acme/weather",
                "displayName": "Weather",
                "remote": true,
                "deploymentUrl": format!("{base}/deployments/acme/weather"),
                "connections": [
                    {"type": "http", "deploymentUrl": format!("{base}/acme/weather/mcp"), "configSchema": {}},
                    {"type": "stdio", "bundleUrl": "https://x.example/b.mcpb", "runtime": "node", "configSchema": {}}
                ],
                "security": {"scanPassed": true},
                "tools": [{"name": "forecast", "description": "A forecast", "inputSchema": {"type": "object"}}]
            }))),
            "acme/local-only" => Ok(Json(json!({
                "qualifiedName": "acme/local-only",
                "remote": false,
                "connections": [{"type": "stdio", "bundleUrl": "https://x.example/b.mcpb", "runtime": "node", "configSchema": {}}]
            }))),
            _ => Err(StatusCode::NOT_FOUND),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/servers", get(search))
        .route("/servers/{*name}", get(server))
        .with_state(Arc::new(base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn smithery_settings(base: &str, key: &str) -> McpSettings {
    McpSettings {
        smithery_url: Some(base.to_owned()),
        smithery_api_key: Some(Secret::new(key)),
        ..McpSettings::default()
    }
}

#[tokio::test]
async fn smithery_search_and_details_follow_the_registry_api() {
    let base = fake_smithery().await;
    let client = SmitheryClient::new(&smithery_settings(&base, KEY)).unwrap();

    let found = client.search("weather forecasts", 5).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].qualified_name, "acme/weather");
    assert_eq!(found[0].use_count, Some(42));
    assert!(
        client
            .search("nothing like it", 5)
            .await
            .unwrap()
            .is_empty()
    );

    let details = client.server("acme/weather").await.unwrap();
    assert_eq!(details.tools[0].name, "forecast");
    assert_eq!(
        details.http_endpoint(),
        Some(format!("{base}/acme/weather/mcp").as_str())
    );
}

#[tokio::test]
async fn a_smithery_source_becomes_an_http_server() {
    let base = fake_smithery().await;
    let dir = tempfile::tempdir().unwrap();
    let config = install::install(
        &Source::parse("smithery:acme/weather").unwrap(),
        "weather",
        dir.path(),
        &smithery_settings(&base, KEY),
    )
    .await
    .unwrap();
    assert_eq!(config.url, Some(format!("{base}/acme/weather/mcp")));
    assert_eq!(config.command, None);
    assert_eq!(config.source.as_deref(), Some("smithery:acme/weather"));
    assert_eq!(
        config.bearer_token, None,
        "the Smithery key is not handed to the server"
    );
}

#[tokio::test]
async fn smithery_errors_are_one_sentence_without_the_key() {
    let base = fake_smithery().await;
    let good = SmitheryClient::new(&smithery_settings(&base, KEY)).unwrap();
    let wrong_key = "wrong-key-5ecr3t";
    let bad = SmitheryClient::new(&smithery_settings(&base, wrong_key)).unwrap();

    let refused = bad.server("acme/weather").await.unwrap_err();
    assert!(
        matches!(refused, SmitheryError::Refused(401)),
        "{refused:?}"
    );
    let missing = good.server("acme/nothing").await.unwrap_err();
    assert!(matches!(missing, SmitheryError::NotFound(_)), "{missing:?}");
    let stdio = good.resolve("acme/local-only").await.unwrap_err();
    assert!(matches!(stdio, SmitheryError::NotHosted(_)), "{stdio:?}");
    let unreachable = SmitheryClient::new(&smithery_settings("http://127.0.0.1:9", KEY))
        .unwrap()
        .search("x", 1)
        .await
        .unwrap_err();
    let no_key = SmitheryClient::new(&McpSettings::default()).unwrap_err();

    for error in [refused, missing, stdio, unreachable, no_key] {
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains(KEY) && !shown.contains(wrong_key),
            "{shown}"
        );
        assert_eq!(error.to_string().lines().count(), 1, "{error}");
    }
    assert!(!format!("{good:?}").contains(KEY));
}

// ---- the management tools ----

fn tool(tools: &[Arc<dyn Tool>], name: &str) -> Arc<dyn Tool> {
    tools.iter().find(|t| t.name() == name).cloned().unwrap()
}

async fn call(tools: &[Arc<dyn Tool>], name: &str, arguments: Value) -> Result<String, ToolError> {
    tool(tools, name)
        .call(arguments, &ToolContext::default())
        .await
}

fn time_file(name: &str) -> ServerConfig {
    fixtures::time(name)
}

#[tokio::test]
async fn the_management_tools_list_enable_and_disable_server_files() {
    let dir = tempfile::tempdir().unwrap();
    let inline = fixtures::shell("inline", "exit 0");
    let settings = settings(vec![inline], Some(dir.path()));
    let manager = McpManager::new(&settings).unwrap();
    let tools = management_tools(manager.clone(), dir.path().to_owned(), &settings);
    write_server_file(dir.path(), &time_file("clock")).unwrap();

    let effects: Vec<(&str, Effect)> = tools
        .iter()
        .map(|t| (t.name(), t.traits().effect))
        .collect();
    assert_eq!(
        effects,
        [
            ("list", Effect::Read),
            ("install", Effect::Execute),
            ("enable", Effect::Write),
            ("disable", Effect::Write)
        ]
    );

    let listed = call(&tools, "list", json!({})).await.unwrap();
    assert!(listed.contains("clock: "), "{listed}");
    assert!(listed.contains("(from local)"), "{listed}");
    assert!(listed.contains("inline: "), "{listed}");

    assert_eq!(
        call(&tools, "disable", json!({"name": "clock"}))
            .await
            .unwrap(),
        "clock is disabled."
    );
    assert!(
        !read_server_file(&server_file(dir.path(), "clock"))
            .unwrap()
            .enabled
    );
    let listed = call(&tools, "list", json!({})).await.unwrap();
    assert!(listed.contains("clock: disabled"), "{listed}");

    assert_eq!(
        call(&tools, "enable", json!({"name": "clock"}))
            .await
            .unwrap(),
        "clock is enabled."
    );
    assert!(
        read_server_file(&server_file(dir.path(), "clock"))
            .unwrap()
            .enabled
    );

    let unknown = call(&tools, "disable", json!({"name": "nope"}))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no MCP server named \"nope\""),
        "{unknown}"
    );
    let inline = call(&tools, "disable", json!({"name": "inline"}))
        .await
        .unwrap_err();
    assert!(inline.to_string().contains("clara.toml"), "{inline}");
    assert!(matches!(
        call(&tools, "enable", json!({})).await,
        Err(ToolError::InvalidArguments(_))
    ));
}

#[tokio::test]
async fn the_install_tool_writes_a_server_file_and_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(Vec::new(), Some(dir.path()));
    let manager = McpManager::new(&settings).unwrap();
    let tools = management_tools(manager.clone(), dir.path().to_owned(), &settings);
    let registry = ToolRegistry::new(Duration::from_secs(120), 100_000);
    registry
        .add_provider(manager.provider_with_tools(tools.clone()))
        .await
        .unwrap();
    assert!(registry.snapshot().names().any(|n| n == "mcp__install"));

    let program = need("venv/bin/mcp-server-time");
    let said = call(
        &tools,
        "install",
        json!({"source": format!("local:{}", program.display()), "name": "clock", "args": ["--local-timezone", "UTC"]}),
    )
    .await
    .unwrap();
    assert!(said.starts_with("Installed clock from local"), "{said}");
    let file = read_server_file(&server_file(dir.path(), "clock")).unwrap();
    assert_eq!(file.args, ["--local-timezone", "UTC"]);
    wait_for_tool(&manager, &registry, "clock__get_current_time").await;

    let again = call(
        &tools,
        "install",
        json!({"source": "https://x.example/mcp", "name": "clock"}),
    )
    .await
    .unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let bad = call(
        &tools,
        "install",
        json!({"source": "gopher://x", "name": "x"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(bad, ToolError::InvalidArguments(_)), "{bad:?}");

    call(&tools, "disable", json!({"name": "clock"}))
        .await
        .unwrap();
    wait_for_no_server(&manager, &registry, "clock").await;
    manager.shutdown().await;
}

//! Serving a fake on 127.0.0.1, counting its requests, and running the web
//! tools the way a reply does (through a registry).

use axum::Router;
use clara_core::ToolCall;
use clara_tools::{ToolContext, ToolOutcome, ToolRegistry};
use clara_web::{Web, WebSettings};
use reqwest::dns::Resolve;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How many requests a fake has answered.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serves `router` on a free port of 127.0.0.1 until the test's runtime ends.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1 for the fake");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// `[search]` written as in `clara.toml`.
pub fn settings(toml: &str) -> WebSettings {
    toml::from_str(toml).unwrap_or_else(|e| panic!("bad test settings: {e}\n{toml}"))
}

/// A registry holding the web tools these settings give, as Clara builds it
/// (server `web`), with `resolver` answering DNS for fetches.
pub fn registry(settings: &WebSettings, resolver: Arc<dyn Resolve>) -> ToolRegistry {
    let registry = ToolRegistry::new(Duration::from_secs(60), 100_000);
    let tools = Web::tools_with_resolver(settings, resolver).unwrap();
    registry.set_server(clara_web::SERVER, tools);
    registry
}

/// Runs `name` with `arguments` as the model would call it.
pub async fn call(
    registry: &ToolRegistry,
    name: &str,
    arguments: serde_json::Value,
) -> ToolOutcome {
    let call = ToolCall {
        id: "call-1".into(),
        name: name.into(),
        arguments: arguments.to_string(),
    };
    registry
        .snapshot()
        .run(&call, &ToolContext::default())
        .await
}

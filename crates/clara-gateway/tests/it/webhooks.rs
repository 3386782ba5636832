//! Webhook routes adapters contribute, over real HTTP beside the HTTP face, as
//! the binary serves them: a platform-like handler that checks an HMAC-SHA256
//! signature over the raw body and echoes what reached it, the body limit, and
//! what a path or method no route serves gets.

use crate::http_support::Server;
use async_trait::async_trait;
use clara_core::webhook::{
    WebhookHandler, WebhookMethod, WebhookRequest, WebhookResponse, WebhookRoute,
};
use clara_gateway::http::HttpConfig;
use clara_gateway::webhooks::{self, WebhookConfig, WebhookError};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SIGNING_KEY: &[u8] = b"whsec-test-key";
const LIMIT: usize = 4096;

fn signature(body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SIGNING_KEY).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A platform's event endpoint: refuses a body without the right
/// `X-Signature`, and echoes what it was handed.
#[derive(Default)]
struct SignedEcho {
    calls: AtomicUsize,
}

#[async_trait]
impl WebhookHandler for SignedEcho {
    async fn handle(&self, request: WebhookRequest) -> WebhookResponse {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(given) = request.header("x-signature") else {
            return WebhookResponse::text(401, "no signature");
        };
        let Some(hex) = given.strip_prefix("sha256=") else {
            return WebhookResponse::text(401, "bad signature");
        };
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SIGNING_KEY).unwrap();
        mac.update(&request.body);
        if bytes.is_none_or(|b| mac.verify_slice(&b).is_err()) {
            return WebhookResponse::text(401, "bad signature");
        }
        WebhookResponse::json(
            200,
            &json!({
                "query": request.query,
                "body": String::from_utf8_lossy(&request.body),
                "headers": request.headers,
            }),
        )
    }
}

/// A subscription check, WhatsApp style: echoes `hub.challenge`.
struct Challenge;

#[async_trait]
impl WebhookHandler for Challenge {
    async fn handle(&self, request: WebhookRequest) -> WebhookResponse {
        let challenge = request
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("hub.challenge="));
        match challenge {
            Some(c) => WebhookResponse::text(200, c),
            None => WebhookResponse::status(400),
        }
    }
}

struct Fixture {
    server: Server,
    events: Arc<SignedEcho>,
}

async fn start() -> Fixture {
    let events = Arc::new(SignedEcho::default());
    let routes = vec![
        (
            "acme",
            vec![
                WebhookRoute {
                    method: WebhookMethod::Post,
                    path: "/events".into(),
                    handler: events.clone(),
                },
                WebhookRoute {
                    method: WebhookMethod::Get,
                    path: "/events".into(),
                    handler: Arc::new(Challenge),
                },
            ],
        ),
        (
            "other",
            vec![WebhookRoute {
                method: WebhookMethod::Post,
                path: "/events".into(),
                handler: Arc::new(SignedEcho::default()),
            }],
        ),
    ];
    let app = webhooks::router(
        routes,
        WebhookConfig {
            max_body_bytes: LIMIT,
        },
    )
    .unwrap();
    let server = Server::start_with("127.0.0.1:0", HttpConfig::new(true), app).await;
    Fixture { server, events }
}

#[tokio::test]
async fn a_signed_event_reaches_its_handler_as_plain_data() {
    let f = start().await;
    let body = br#"{"event":"message","text":"hello \u00e9"}"#;
    let response = f
        .server
        .client()
        .post(format!(
            "{}/webhooks/acme/events?tenant=t1&x=2",
            f.server.url
        ))
        .header("X-Signature", signature(body))
        .header("X-Repeated", "one")
        .header("x-repeated", "two")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the handler's content type"
    );
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["query"], "tenant=t1&x=2");
    assert_eq!(
        echo["body"].as_str().unwrap().as_bytes(),
        body,
        "the raw body, byte for byte"
    );
    let headers: Vec<(String, String)> = serde_json::from_value(echo["headers"].clone()).unwrap();
    assert!(
        headers
            .iter()
            .all(|(name, _)| *name == name.to_ascii_lowercase()),
        "header names are lower case: {headers:?}"
    );
    let repeated: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "x-repeated")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(repeated, ["one", "two"], "one entry per value");
    assert!(headers.iter().any(|(n, _)| n == "x-signature"));
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_signature_is_the_handlers_refusal() {
    let f = start().await;
    let response = f
        .server
        .client()
        .post(format!("{}/webhooks/acme/events", f.server.url))
        .header("x-signature", signature(b"another body"))
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.text().await.unwrap(), "bad signature");
    assert_eq!(f.events.calls.load(Ordering::SeqCst), 1);
    f.server.shutdown().await;
}

#[tokio::test]
async fn get_and_post_on_one_path_reach_their_own_handlers() {
    let f = start().await;
    let response = f
        .server
        .client()
        .get(format!(
            "{}/webhooks/acme/events?hub.mode=subscribe&hub.challenge=1158201444",
            f.server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "1158201444");
    assert_eq!(f.events.calls.load(Ordering::SeqCst), 0);
    f.server.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_never_reaches_the_handler() {
    let f = start().await;
    let client = f.server.client();
    let url = format!("{}/webhooks/acme/events", f.server.url);
    let big = vec![b'x'; LIMIT + 1];

    // Declared by Content-Length…
    let response = client
        .post(&url)
        .header("x-signature", signature(&big))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "request_too_large");

    // …or streamed without a length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let response = client
        .post(&url)
        .header("x-signature", signature(&big))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(f.events.calls.load(Ordering::SeqCst), 0);

    // Exactly the limit is fine.
    let full = vec![b'y'; LIMIT];
    let response = client
        .post(&url)
        .header("x-signature", signature(&full))
        .body(full)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    f.server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_get_the_gateways_404_and_wrong_methods_405() {
    let f = start().await;
    let client = f.server.client();
    for path in [
        "/webhooks/acme/nothing",
        "/webhooks/nobody/events",
        "/webhooks/acme",
    ] {
        let response = client
            .post(format!("{}{path}", f.server.url))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "not_found", "{path}: {error}");
    }
    let response = client
        .get(format!("{}/webhooks/other/events", f.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The HTTP face is still there beside them.
    let health = client
        .get(format!("{}/healthz", f.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    f.server.shutdown().await;
}

#[test]
fn two_routes_on_one_method_and_path_are_refused_before_serving() {
    let route = || WebhookRoute {
        method: WebhookMethod::Post,
        path: "/events".into(),
        handler: Arc::new(SignedEcho::default()),
    };
    let error = webhooks::router(
        vec![("acme", vec![route()]), ("acme", vec![route()])],
        WebhookConfig::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(error, WebhookError::Duplicate { .. }), "{error}");
}

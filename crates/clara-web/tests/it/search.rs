//! `web__search` against fakes of Tavily, Brave Search and SearXNG.

use crate::fakes::{Hits, call, registry, serve, settings};
use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clara_web::{StaticResolver, Web};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TAVILY_KEY: &str = "tvly-dev-0123456789abcdef";
const BRAVE_KEY: &str = "BSA-0123456789abcdef";

fn query_pairs(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// What the fake Tavily does for a query: its behaviour is chosen by the query text.
async fn tavily(State(hits): State<Hits>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    hits.add();
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TAVILY_KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": {"error": "Unauthorized: missing or invalid API key."}})),
        )
            .into_response();
    }
    assert_eq!(body["search_depth"], "basic");
    assert_eq!(body["include_answer"], true);
    match body["query"].as_str().unwrap() {
        "busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"detail": {"error": "Your request has been blocked due to excessive requests."}})),
        )
            .into_response(),
        "garbage" => (StatusCode::OK, "<html><body>Bad gateway</body></html>").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK.into_response()
        }
        query => {
            let max = body["max_results"].as_u64().unwrap() as usize;
            let results: Vec<Value> = (1..=8)
                .take(max)
                .map(|n| {
                    json!({
                        "url": format!("https://example.com/{n}"),
                        "title": format!("Result {n} about {query}"),
                        "content": format!("Snippet {n}."),
                        "score": 0.9,
                        "raw_content": null
                    })
                })
                .collect();
            Json(json!({
                "query": query,
                "follow_up_questions": null,
                "answer": "Rust 1.95 is the newest stable release.",
                "images": [],
                "results": results,
                "response_time": 0.87,
                "request_id": "a1b2c3"
            }))
            .into_response()
        }
    }
}

async fn brave(State(hits): State<Hits>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    hits.add();
    if headers
        .get("x-subscription-token")
        .and_then(|v| v.to_str().ok())
        != Some(BRAVE_KEY)
    {
        // Brave answers a wrong key with 422, not 401.
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "type": "ErrorResponse",
                "error": {"id": "e1", "status": 422, "code": "SUBSCRIPTION_TOKEN_INVALID",
                          "detail": "The provided subscription token is invalid.",
                          "meta": {"component": "authentication"}},
                "time": 1767225600
            })),
        )
            .into_response();
    }
    assert_eq!(
        headers.get("accept").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let params = query_pairs(raw);
    let query = params["q"].clone();
    assert_eq!(params["count"], "3");
    Json(json!({
        "query": {"original": query, "show_strict_warning": false, "is_navigational": false,
                  "spellcheck_off": true, "country": "us", "more_results_available": true},
        "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": false}], "top": [], "side": []},
        "type": "search",
        "web": {
            "type": "search",
            "results": [
                {"title": "The <strong>Rust</strong> Programming Language", "url": "https://www.rust-lang.org/",
                 "is_source_local": false, "is_source_both": false,
                 "description": "A language empowering everyone to build <strong>reliable</strong> &amp; efficient software.",
                 "profile": {"name": "Rust", "url": "https://www.rust-lang.org/", "long_name": "rust-lang.org"},
                 "language": "en", "family_friendly": true, "type": "search_result", "subtype": "generic"},
                {"title": "Rust (programming language) - Wikipedia", "url": "https://en.wikipedia.org/wiki/Rust_(programming_language)",
                 "description": "Rust is a general-purpose programming language.", "age": "2 days ago",
                 "type": "search_result", "subtype": "generic"}
            ],
            "family_friendly": true
        }
    }))
    .into_response()
}

async fn searxng(State(hits): State<Hits>, RawQuery(raw): RawQuery) -> Response {
    hits.add();
    let params = query_pairs(raw);
    if params.get("format").map(String::as_str) != Some("json") {
        return (StatusCode::FORBIDDEN, "403 Forbidden").into_response();
    }
    if params["q"] == "json off" {
        return (
            StatusCode::FORBIDDEN,
            "<!doctype html><title>403 Forbidden</title>",
        )
            .into_response();
    }
    let results: Vec<Value> = (1..=20)
        .map(|n| {
            json!({
                "url": format!("https://searx.example/{n}"), "title": format!("Hit {n}"),
                "content": format!("Content {n}"), "engine": "duckduckgo",
                "parsed_url": ["https", "searx.example", format!("/{n}"), "", "", ""],
                "template": "default.html", "engines": ["duckduckgo"], "positions": [n],
                "score": 1.0, "category": "general"
            })
        })
        .collect();
    Json(json!({
        "query": params["q"],
        "number_of_results": 0,
        "results": results,
        "answers": [{"answer": "SearXNG says hi.", "url": null, "engine": "answer", "template": "answer/legacy.html"}],
        "corrections": [],
        "infoboxes": [],
        "suggestions": [],
        "unresponsive_engines": []
    }))
    .into_response()
}

struct Fakes {
    tavily: String,
    brave: String,
    searxng: String,
    tavily_hits: Hits,
    brave_hits: Hits,
    searxng_hits: Hits,
}

async fn fakes() -> Fakes {
    let (tavily_hits, brave_hits, searxng_hits) =
        (Hits::default(), Hits::default(), Hits::default());
    let tavily_addr = serve(
        Router::new()
            .route("/search", post(tavily))
            .with_state(tavily_hits.clone()),
    )
    .await;
    let brave_addr = serve(
        Router::new()
            .route("/res/v1/web/search", get(brave))
            .with_state(brave_hits.clone()),
    )
    .await;
    let searxng_addr = serve(
        Router::new()
            .route("/search", get(searxng))
            .with_state(searxng_hits.clone()),
    )
    .await;
    Fakes {
        tavily: format!("http://{tavily_addr}"),
        brave: format!("http://{brave_addr}"),
        searxng: format!("http://{searxng_addr}"),
        tavily_hits,
        brave_hits,
        searxng_hits,
    }
}

fn no_dns() -> Arc<StaticResolver> {
    Arc::new(StaticResolver::new())
}

#[tokio::test]
async fn tavily_results_come_back_as_a_list_marked_as_data() {
    let f = fakes().await;
    let web = settings(&format!(
        "tavily_api_key = \"{TAVILY_KEY}\"\ntavily_base_url = \"{}\"",
        f.tavily
    ));
    let registry = registry(&web, no_dns());
    let outcome = call(
        &registry,
        "web__search",
        json!({"query": "rust release", "max_results": 2}),
    )
    .await;
    assert!(outcome.ok, "{}", outcome.content);
    let content = outcome.content;
    assert!(
        content.starts_with("<untrusted-data source=\"web__search\">"),
        "{content}"
    );
    assert!(
        content.contains("Search results for \"rust release\" (Tavily):"),
        "{content}"
    );
    assert!(content.contains("Answer: Rust 1.95 is the newest stable release."));
    assert!(
        content.contains("1. Result 1 about rust release\n   https://example.com/1\n   Snippet 1.")
    );
    assert!(content.contains("2. Result 2 about rust release"));
    assert!(!content.contains("3. "), "{content}");
    assert!(!content.contains(TAVILY_KEY));
    assert_eq!(f.tavily_hits.count(), 1);
}

#[tokio::test]
async fn tavily_failures_are_one_sentence_without_the_key() {
    let f = fakes().await;
    let wrong = settings(&format!(
        "tavily_api_key = \"tvly-wrong-key-777\"\ntavily_base_url = \"{}\"",
        f.tavily
    ));
    let outcome = call(
        &registry(&wrong, no_dns()),
        "web__search",
        json!({"query": "x"}),
    )
    .await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .content
            .contains("Error: Tavily refused the API key (HTTP 401); check TAVILY_API_KEY"),
        "{}",
        outcome.content
    );
    assert!(!outcome.content.contains("wrong-key-777"));

    let web = settings(&format!(
        "tavily_api_key = \"{TAVILY_KEY}\"\ntavily_base_url = \"{}\"\nsearch_timeout_secs = 1",
        f.tavily
    ));
    let registry = registry(&web, no_dns());
    let busy = call(&registry, "web__search", json!({"query": "busy"})).await;
    assert!(
        busy.content
            .contains("Tavily is rate-limiting Clara (HTTP 429)"),
        "{}",
        busy.content
    );
    let garbage = call(&registry, "web__search", json!({"query": "garbage"})).await;
    assert!(
        garbage
            .content
            .contains("Tavily answered with something that is not a search result"),
        "{}",
        garbage.content
    );
    let slow = call(&registry, "web__search", json!({"query": "slow"})).await;
    assert!(
        slow.content
            .contains("Tavily did not answer within 1 second"),
        "{}",
        slow.content
    );
    for outcome in [&busy, &garbage, &slow] {
        assert!(!outcome.ok);
        assert!(!outcome.content.contains(TAVILY_KEY));
    }
}

#[tokio::test]
async fn brave_results_lose_their_highlights() {
    let f = fakes().await;
    let web = settings(&format!(
        "brave_api_key = \"{BRAVE_KEY}\"\nbrave_base_url = \"{}\"\nsearch_max_results = 3",
        f.brave
    ));
    let outcome = call(
        &registry(&web, no_dns()),
        "web__search",
        json!({"query": "rust & safety"}),
    )
    .await;
    assert!(outcome.ok, "{}", outcome.content);
    assert!(
        outcome
            .content
            .contains("Search results for \"rust & safety\" (Brave Search):")
    );
    assert!(outcome.content.contains(
        "1. The Rust Programming Language\n   https://www.rust-lang.org/\n   A language empowering everyone to build reliable & efficient software."
    ), "{}", outcome.content);
    assert!(
        outcome
            .content
            .contains("2. Rust (programming language) - Wikipedia")
    );
    assert!(!outcome.content.contains("<strong>"));
}

#[tokio::test]
async fn a_wrong_brave_key_is_named_as_such() {
    let f = fakes().await;
    let web = settings(&format!(
        "brave_api_key = \"BSA-wrong-999\"\nbrave_base_url = \"{}\"",
        f.brave
    ));
    let outcome = call(
        &registry(&web, no_dns()),
        "web__search",
        json!({"query": "x"}),
    )
    .await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .content
            .contains("Brave Search refused the API key (HTTP 422); check BRAVE_API_KEY"),
        "{}",
        outcome.content
    );
    assert!(!outcome.content.contains("wrong-999"));
}

#[tokio::test]
async fn searxng_results_are_cut_to_the_number_asked() {
    let f = fakes().await;
    let web = settings(&format!("searxng_url = \"{}/\"", f.searxng));
    let registry = registry(&web, no_dns());
    let outcome = call(
        &registry,
        "web__search",
        json!({"query": "hello", "max_results": 4}),
    )
    .await;
    assert!(outcome.ok, "{}", outcome.content);
    assert!(outcome.content.contains("(SearXNG):\n\nAnswer: SearXNG says hi.\n\n1. Hit 1\n   https://searx.example/1\n   Content 1"));
    assert!(outcome.content.contains("4. Hit 4"));
    assert!(!outcome.content.contains("5. Hit 5"));
    let off = call(&registry, "web__search", json!({"query": "json off"})).await;
    assert!(
        off.content.contains(
            "SearXNG refused the JSON format (HTTP 403); enable `json` under `search.formats`"
        ),
        "{}",
        off.content
    );
}

#[tokio::test]
async fn the_first_configured_service_is_used_unless_one_is_named() {
    let f = fakes().await;
    let all = format!(
        "tavily_api_key = \"{TAVILY_KEY}\"\ntavily_base_url = \"{}\"\nbrave_api_key = \"{BRAVE_KEY}\"\nbrave_base_url = \"{}\"\nsearxng_url = \"{}\"",
        f.tavily, f.brave, f.searxng
    );
    let first = call(
        &registry(&settings(&all), no_dns()),
        "web__search",
        json!({"query": "a"}),
    )
    .await;
    assert!(first.content.contains("(Tavily)"), "{}", first.content);
    let named = settings(&format!("{all}\nsearch = \"searxng\""));
    let chosen = call(
        &registry(&named, no_dns()),
        "web__search",
        json!({"query": "a"}),
    )
    .await;
    assert!(chosen.content.contains("(SearXNG)"), "{}", chosen.content);
    assert_eq!(
        (
            f.tavily_hits.count(),
            f.brave_hits.count(),
            f.searxng_hits.count()
        ),
        (1, 0, 1)
    );
}

#[test]
fn search_is_offered_only_when_a_service_is_configured() {
    let names = |toml: &str| -> Vec<String> {
        Web::tools(&settings(toml))
            .unwrap()
            .iter()
            .map(|tool| tool.name().to_owned())
            .collect()
    };
    assert_eq!(names(""), vec!["fetch"]);
    assert_eq!(names("brave_api_key = \"k\""), vec!["search", "fetch"]);
    assert_eq!(
        names("brave_api_key = \"k\"\nfetch = false"),
        vec!["search"]
    );
    assert!(names("fetch = false").is_empty());
    for tool in Web::tools(&settings("searxng_url = \"http://searx.lan\"")).unwrap() {
        let traits = tool.traits();
        assert_eq!(traits.effect, clara_tools::Effect::Read, "{}", tool.name());
        assert!(traits.untrusted_output, "{}", tool.name());
    }
}

#[test]
fn the_integration_gives_one_provider_named_web_or_none() {
    use clara_tools::ToolIntegration;
    let providers = Web::providers(settings("")).unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].server(), "web");
    assert!(
        Web::providers(settings("fetch = false"))
            .unwrap()
            .is_empty()
    );
    let error = Web::providers(settings("search = \"brave\""))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "[search] search = \"brave\" needs brave_api_key (BRAVE_API_KEY)"
    );
}

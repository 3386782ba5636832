//! A fake of GitHub's REST API on a local port: the endpoints the tools use,
//! answering in GitHub's shapes (fixtures from the REST reference's examples),
//! and recording every request so tests can check what was sent.
//!
//! It refuses any request without `Authorization: Bearer test-token` with the
//! 401 GitHub gives, and plays a few special repositories:
//! `octocat/limited` (403 primary rate limit), `octocat/garbage` (200 with an
//! HTML body) and `octocat/slow` (answers after 30 s).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The token the fake accepts.
pub const TOKEN: &str = "test-token";

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    /// The query, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

impl Seen {
    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The running fake.
pub struct FakeGitHub {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeGitHub {
    /// Starts it on a free local port.
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fake GitHub needs a local port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake GitHub stopped");
        });
        Self { addr, seen }
    }

    /// Its root, to use as `api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// The requests to `path` (encoded, without the query).
    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.path == path)
            .collect()
    }
}

fn fixture(name: &str) -> Value {
    let text = match name {
        "search_repositories" => include_str!("../fixtures/search_repositories.json"),
        "search_issues" => include_str!("../fixtures/search_issues.json"),
        "issue" => include_str!("../fixtures/issue.json"),
        "pull" => include_str!("../fixtures/pull.json"),
        "pull_files" => include_str!("../fixtures/pull_files.json"),
        "notifications" => include_str!("../fixtures/notifications.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

fn ok(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

fn status(code: StatusCode, message: &str) -> Response {
    (
        code,
        axum::Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": code.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// A file object of the contents API, its text base64-encoded in 60-column
/// lines as GitHub sends it.
fn file(path: &str, bytes: &[u8]) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({
        "type": "file",
        "encoding": "base64",
        "size": bytes.len(),
        "name": name,
        "path": path,
        "content": wrapped.join("\n") + "\n",
        "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
        "url": format!("https://api.github.com/repos/octocat/Hello-World/contents/{path}"),
        "git_url": "https://api.github.com/repos/octocat/Hello-World/git/blobs/3d21ec53a331a6f037a91c368710b99387d012c1",
        "html_url": format!("https://github.com/octocat/Hello-World/blob/master/{path}"),
        "download_url": format!("https://raw.githubusercontent.com/octocat/Hello-World/master/{path}"),
        "_links": {"self": "…", "git": "…", "html": "…"}
    })
}

fn entry(kind: &str, path: &str, size: u64) -> Value {
    json!({
        "type": kind,
        "size": size,
        "name": path.rsplit('/').next().unwrap_or(path),
        "path": path,
        "sha": "0000000000000000000000000000000000000000",
        "html_url": format!("https://github.com/octocat/Hello-World/tree/master/{path}"),
    })
}

/// Comment `n` of issue 1347.
fn comment(n: u64) -> Value {
    json!({
        "id": 1000 + n,
        "node_id": "MDEyOklzc3VlQ29tbWVudDE=",
        "url": format!("https://api.github.com/repos/octocat/Hello-World/issues/comments/{}", 1000 + n),
        "html_url": format!("https://github.com/octocat/Hello-World/issues/1347#issuecomment-{}", 1000 + n),
        "body": format!("Comment number {n}."),
        "user": {"login": if n.is_multiple_of(2) { "hubot" } else { "octocat" }, "id": n},
        "created_at": format!("2011-04-{:02}T12:00:00Z", (n % 28) + 1),
        "updated_at": "2011-04-14T16:00:49Z",
        "author_association": "COLLABORATOR"
    })
}

async fn handle(
    State(seen): State<Arc<Mutex<Vec<Seen>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = reqwest::Url::parse(&format!("http://fake{uri}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let request = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        headers: headers.clone(),
        body: serde_json::from_slice(&body).ok(),
    };
    seen.lock().expect("not poisoned").push(request.clone());

    if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return status(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let path = request.path.as_str();
    match (request.method.as_str(), path) {
        ("GET", "/search/repositories") => ok(fixture("search_repositories")),
        ("GET", "/search/issues") => ok(fixture("search_issues")),
        ("GET", "/notifications") => ok(fixture("notifications")),
        ("GET", "/repos/octocat/Hello-World/readme") => ok(file(
            "README",
            b"Hello World!\n\nThis is the first repository on GitHub.\n",
        )),
        ("GET", "/repos/octocat/Hello-World/contents") => ok(json!([
            entry("file", "README", 13),
            entry("dir", "src", 0),
            entry("symlink", "docs-link", 4),
        ])),
        ("GET", "/repos/octocat/Hello-World/contents/src/main.c") => ok(file(
            "src/main.c",
            b"#include <stdio.h>\n\nint main(void) {\n    puts(\"Hello World!\");\n    return 0;\n}\n",
        )),
        ("GET", "/repos/octocat/Hello-World/contents/docs/read%20me%3F.md") => {
            ok(file("docs/read me?.md", b"# Odd name\n"))
        }
        ("GET", "/repos/octocat/Hello-World/contents/logo.png") => ok(file(
            "logo.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01",
        )),
        ("GET", "/repos/octocat/Hello-World/contents/big.bin") => ok(json!({
            "type": "file", "encoding": "none", "size": 5_242_880, "name": "big.bin",
            "path": "big.bin", "content": "",
            "html_url": "https://github.com/octocat/Hello-World/blob/master/big.bin"
        })),
        ("GET", "/repos/octocat/Hello-World/issues") => {
            let mut first = fixture("issue");
            first["number"] = json!(1347);
            let mut pull = fixture("issue");
            pull["number"] = json!(1346);
            pull["title"] = json!("Amazing new feature");
            pull["pull_request"] = json!({"url": "https://api.github.com/repos/octocat/Hello-World/pulls/1346"});
            ok(json!([first, pull]))
        }
        ("GET", "/repos/octocat/Hello-World/issues/1347") => ok(fixture("issue")),
        ("GET", "/repos/octocat/Hello-World/issues/1347/comments") => {
            // 35 comments, served as GitHub pages them.
            let per_page: u64 = request.param("per_page").and_then(|v| v.parse().ok()).unwrap_or(30);
            let page: u64 = request.param("page").and_then(|v| v.parse().ok()).unwrap_or(1);
            let first = (page - 1) * per_page + 1;
            let comments: Vec<Value> = (first..first + per_page).filter(|n| *n <= 35).map(comment).collect();
            ok(Value::Array(comments))
        }
        ("GET", "/repos/octocat/Hello-World/pulls") => {
            let mut draft = fixture("pull");
            draft["number"] = json!(1348);
            draft["draft"] = json!(true);
            draft["title"] = json!("Work in progress");
            ok(json!([fixture("pull"), draft]))
        }
        ("GET", "/repos/octocat/Hello-World/pulls/1347") => ok(fixture("pull")),
        ("GET", "/repos/octocat/Hello-World/pulls/1347/files") => ok(fixture("pull_files")),
        ("POST", "/repos/octocat/Hello-World/issues") => {
            let body = request.body.clone().unwrap_or_default();
            let labels = body["labels"].as_array().cloned().unwrap_or_default();
            if labels.iter().any(|l| l == "no-such-label") {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({
                        "message": "Validation Failed",
                        "errors": [{"value": "no-such-label", "resource": "Label", "field": "name", "code": "invalid"}],
                        "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
                        "status": "422"
                    })),
                )
                    .into_response();
            }
            let mut created = fixture("issue");
            created["number"] = json!(1348);
            created["title"] = body["title"].clone();
            created["body"] = body["body"].clone();
            created["comments"] = json!(0);
            created["html_url"] = json!("https://github.com/octocat/Hello-World/issues/1348");
            (StatusCode::CREATED, axum::Json(created)).into_response()
        }
        ("POST", "/repos/octocat/Hello-World/issues/1347/comments") => {
            let mut created = comment(36);
            created["body"] = request.body.clone().unwrap_or_default()["body"].clone();
            (StatusCode::CREATED, axum::Json(created)).into_response()
        }
        (_, p) if p.starts_with("/repos/octocat/limited/") => {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
                + 300;
            let mut response = status(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
            );
            let h = response.headers_mut();
            h.insert("x-ratelimit-limit", "5000".parse().expect("a header value"));
            h.insert("x-ratelimit-remaining", "0".parse().expect("a header value"));
            h.insert("x-ratelimit-used", "5000".parse().expect("a header value"));
            h.insert("x-ratelimit-resource", "core".parse().expect("a header value"));
            h.insert("x-ratelimit-reset", reset.to_string().parse().expect("a header value"));
            response
        }
        (_, p) if p.starts_with("/repos/octocat/garbage/") => {
            (StatusCode::OK, "<html><body>Unicorn!</body></html>").into_response()
        }
        (_, p) if p.starts_with("/repos/octocat/slow/") => {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            ok(json!({}))
        }
        _ => status(StatusCode::NOT_FOUND, "Not Found"),
    }
}

//! `web__fetch` against a fake website on 127.0.0.1, and the SSRF rules:
//! the site is loopback, so it is reachable only where a test allows
//! `127.0.0.1:<its port>`; everything else on loopback, or behind a name that
//! resolves there, must be refused before a byte is sent.

use crate::fakes::{Hits, call, registry, serve, settings};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clara_web::{AllowList, FetchError, FetchLimits, Fetcher, StaticResolver};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<html><head><title>Fake  News</title>
<script>document.write("<p>INJECTED</p>")</script>
<style>body { color: red }</style></head>
<body>
<header><a href="/">Fake site</a></header>
<nav><a href="/a">Menu A</a> <a href="/b">Menu B</a></nav>
<article>
<h1>Big story</h1>
<p>Something happened today, and it was <a href="/more">covered here</a>.</p>
<ul><li>First point</li><li>Second point</li></ul>
</article>
<footer>© Fake site</footer>
</body></html>"#;

#[derive(Clone)]
struct Site {
    hits: Hits,
    /// Where the "internal" service listens: the redirect target that must never be reached.
    internal: SocketAddr,
    /// This site's own port, for absolute redirects.
    port: u16,
}

fn html(body: impl Into<Body>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn site(State(site): State<Site>, uri: axum::http::Uri) -> Response {
    site.hits.add();
    match uri.path() {
        "/page" => html(PAGE),
        "/to-page" => redirect("/page".into()),
        "/to-secret" => redirect(format!("http://{}/secret", site.internal)),
        "/to-localhost" => redirect(format!("http://localhost:{}/secret", site.internal.port())),
        "/to-metadata" => redirect(format!(
            "http://metadata.test:{}/latest/meta-data/",
            site.port
        )),
        "/to-file" => redirect("file:///etc/passwd".into()),
        "/loop" => redirect("/loop".into()),
        "/huge" => {
            // Never ends: the fetcher must stop reading on its own.
            let chunks = futures::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b'a'; 8192]));
            (
                [(header::CONTENT_TYPE, "text/plain")],
                Body::from_stream(chunks),
            )
                .into_response()
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            html("<p>too late</p>")
        }
        "/image.png" => (
            [(header::CONTENT_TYPE, "image/png")],
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
        )
            .into_response(),
        "/paper.pdf" => (
            [(header::CONTENT_TYPE, "application/pdf")],
            b"%PDF-1.7\n".to_vec(),
        )
            .into_response(),
        "/gzipped" => (
            [
                (header::CONTENT_TYPE, "text/html"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            b"\x1f\x8b\x08\0\0\0\0\0".to_vec(),
        )
            .into_response(),
        "/untyped.bin" => Response::new(Body::from(vec![0u8, 1, 2, 3, 0, 255])),
        "/latin1" => (
            [(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")],
            b"<title>Caf\xe9</title><p>Cr\xe8me br\xfbl\xe9e</p>".to_vec(),
        )
            .into_response(),
        "/data.json" => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"answer": 42}"#,
        )
            .into_response(),
        "/long" => html(format!("<p>{}</p>", "word ".repeat(3000))),
        _ => (StatusCode::NOT_FOUND, "not here").into_response(),
    }
}

async fn internal(State(hits): State<Hits>) -> &'static str {
    hits.add();
    "the secret"
}

struct Fake {
    addr: SocketAddr,
    site_hits: Hits,
    internal_hits: Hits,
}

impl Fake {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `[search]` allowing only this site's own address and port.
    fn allowing_site(&self, extra: &str) -> String {
        format!("allow_private = [\"{}\"]\n{extra}", self.addr)
    }
}

async fn fake() -> Fake {
    let internal_hits = Hits::default();
    let internal_addr = serve(
        Router::new()
            .fallback(internal)
            .with_state(internal_hits.clone()),
    )
    .await;
    // Reserve the site's port first, so its redirects can name it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site_hits = Hits::default();
    let router = Router::new().fallback(site).with_state(Site {
        hits: site_hits.clone(),
        internal: internal_addr,
        port: addr.port(),
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Fake {
        addr,
        site_hits,
        internal_hits,
    }
}

fn loopback() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn dns() -> Arc<StaticResolver> {
    Arc::new(
        StaticResolver::new()
            .with("www.example.test", [loopback()])
            .with("evil.test", [loopback()])
            .with("metadata.test", ["169.254.169.254".parse().unwrap()])
            .with("localhost", [loopback()]),
    )
}

fn fetcher(allow: &[&str], limits: FetchLimits) -> Fetcher {
    Fetcher::with_resolver(
        limits,
        AllowList::parse(allow.iter().copied()).unwrap(),
        dns(),
    )
}

#[tokio::test]
async fn a_page_comes_back_as_readable_text_marked_as_data() {
    let f = fake().await;
    let registry = registry(&settings(&f.allowing_site("")), dns());
    let outcome = call(&registry, "web__fetch", json!({"url": f.url("/page")})).await;
    assert!(outcome.ok, "{}", outcome.content);
    let content = outcome.content;
    assert!(
        content.starts_with("<untrusted-data source=\"web__fetch\">"),
        "{content}"
    );
    let expected = format!(
        "URL: {page}\nTitle: Fake News\n\n# Big story\n\nSomething happened today, and it was covered here ({more}).\n\n- First point\n- Second point\n</untrusted-data>",
        page = f.url("/page"),
        more = f.url("/more"),
    );
    assert!(content.contains(&expected), "{content}");
    for dropped in ["INJECTED", "Menu A", "color: red", "©", "Fake site"] {
        assert!(!content.contains(dropped), "{dropped} in {content}");
    }
}

#[tokio::test]
async fn a_name_resolving_to_an_allowed_address_is_fetched_and_redirects_are_followed() {
    let f = fake().await;
    let fetcher = fetcher(&[&f.addr.to_string()], FetchLimits::default());
    let url = format!("http://www.example.test:{}/to-page", f.addr.port());
    let page = fetcher.fetch(&url).await.unwrap();
    assert_eq!(
        page.url.as_str(),
        format!("http://www.example.test:{}/page", f.addr.port())
    );
    assert_eq!(page.requested.as_str(), url);
    assert_eq!(page.title.as_deref(), Some("Fake News"));
    assert_eq!(f.site_hits.count(), 2);
}

#[tokio::test]
async fn loopback_is_refused_without_an_exception() {
    let f = fake().await;
    let registry = registry(&settings(""), dns());
    let outcome = call(&registry, "web__fetch", json!({"url": f.url("/page")})).await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .content
            .contains("Error: 127.0.0.1 is a loopback address, which Clara does not fetch"),
        "{}",
        outcome.content
    );
    // The exception is for one port only.
    let other_port = fetcher(&["127.0.0.1:1"], FetchLimits::default());
    assert!(matches!(
        other_port.fetch(&f.url("/page")).await,
        Err(FetchError::Target(_))
    ));
    assert_eq!(f.site_hits.count(), 0);
}

#[tokio::test]
async fn a_redirect_to_127_0_0_1_is_refused_before_it_is_followed() {
    let f = fake().await;
    let registry = registry(&settings(&f.allowing_site("")), dns());
    let outcome = call(&registry, "web__fetch", json!({"url": f.url("/to-secret")})).await;
    assert!(!outcome.ok);
    assert!(
        outcome
            .content
            .contains("Error: 127.0.0.1 is a loopback address, which Clara does not fetch"),
        "{}",
        outcome.content
    );
    assert!(!outcome.content.contains("the secret"));
    // The same through a name: `localhost` resolves to loopback.
    let by_name = call(
        &registry,
        "web__fetch",
        json!({"url": f.url("/to-localhost")}),
    )
    .await;
    assert!(
        by_name
            .content
            .contains("localhost resolves to 127.0.0.1, a loopback address"),
        "{}",
        by_name.content
    );
    assert_eq!(f.site_hits.count(), 2);
    assert_eq!(
        f.internal_hits.count(),
        0,
        "the internal service was reached"
    );
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused() {
    let f = fake().await;
    let fetcher = fetcher(&[], FetchLimits::default());
    let error = fetcher
        .fetch(&format!("http://evil.test:{}/page", f.addr.port()))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Refused(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "evil.test resolves to 127.0.0.1, a loopback address, which Clara does not fetch"
    );
    assert_eq!(f.site_hits.count(), 0);
}

#[tokio::test]
async fn a_redirect_to_a_name_resolving_to_link_local_is_refused() {
    let f = fake().await;
    let fetcher = fetcher(&[&f.addr.to_string()], FetchLimits::default());
    let error = fetcher.fetch(&f.url("/to-metadata")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "metadata.test resolves to 169.254.169.254, a link-local address, which Clara does not fetch"
    );
    let scheme = fetcher.fetch(&f.url("/to-file")).await.unwrap_err();
    assert_eq!(
        scheme.to_string(),
        "only http and https URLs can be fetched, not file:"
    );
}

#[tokio::test]
async fn credentials_in_the_url_are_refused() {
    let f = fake().await;
    let fetcher = fetcher(&[&f.addr.to_string()], FetchLimits::default());
    let url = format!("http://user:pw@{}/page", f.addr);
    assert_eq!(
        fetcher.fetch(&url).await.unwrap_err().to_string(),
        "URLs with a user name or password in them are not fetched"
    );
    assert_eq!(f.site_hits.count(), 0);
}

#[tokio::test]
async fn a_huge_page_is_cut_at_the_byte_limit() {
    let f = fake().await;
    let limits = FetchLimits {
        max_bytes: 100_000,
        ..FetchLimits::default()
    };
    let page = fetcher(&[&f.addr.to_string()], limits)
        .fetch(&f.url("/huge"))
        .await
        .unwrap();
    assert!(page.cut);
    assert_eq!(page.text.len(), 100_000);
    let registry = registry(
        &settings(&f.allowing_site("fetch_max_bytes = 100000\nfetch_max_chars = 500")),
        dns(),
    );
    let outcome = call(&registry, "web__fetch", json!({"url": f.url("/huge")})).await;
    assert!(outcome.ok, "{}", outcome.content);
    assert!(outcome.content.contains(
        "Note: the page is larger than the download limit; only its beginning was read.\nShowing characters 0–500 of 100000. Call again with offset 500 to read on."
    ), "{}", outcome.content);
}

#[tokio::test]
async fn a_slow_page_runs_out_of_time() {
    let f = fake().await;
    let registry = registry(&settings(&f.allowing_site("fetch_timeout_secs = 1")), dns());
    let outcome = call(&registry, "web__fetch", json!({"url": f.url("/slow")})).await;
    assert!(!outcome.ok);
    assert!(
        outcome.content.contains(&format!(
            "Error: fetching {} did not finish within 1 second",
            f.url("/slow")
        )),
        "{}",
        outcome.content
    );
}

#[tokio::test]
async fn images_pdfs_binary_and_compressed_bodies_are_refused_by_type() {
    let f = fake().await;
    let fetcher = fetcher(&[&f.addr.to_string()], FetchLimits::default());
    for (path, kind) in [
        ("/image.png", "image/png"),
        ("/paper.pdf", "application/pdf"),
        ("/untyped.bin", "binary data of no stated type"),
        ("/gzipped", "compressed (gzip)"),
    ] {
        let error = fetcher.fetch(&f.url(path)).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{} is {kind}, which Clara does not read (only web pages and text)",
                f.url(path)
            )
        );
    }
}

#[tokio::test]
async fn charsets_json_errors_and_redirect_loops() {
    let f = fake().await;
    let limits = FetchLimits {
        max_redirects: 2,
        ..FetchLimits::default()
    };
    let fetcher = fetcher(&[&f.addr.to_string()], limits);
    let latin1 = fetcher.fetch(&f.url("/latin1")).await.unwrap();
    assert_eq!(latin1.title.as_deref(), Some("Café"));
    assert_eq!(latin1.text, "Crème brûlée");
    let json = fetcher.fetch(&f.url("/data.json")).await.unwrap();
    assert_eq!(json.text, r#"{"answer": 42}"#);
    assert_eq!(
        fetcher
            .fetch(&f.url("/missing?token=abc"))
            .await
            .unwrap_err()
            .to_string(),
        format!("{} answered HTTP 404", f.url("/missing"))
    );
    assert_eq!(
        fetcher
            .fetch(&f.url("/loop"))
            .await
            .unwrap_err()
            .to_string(),
        format!("{} redirected more than 2 times", f.url("/loop"))
    );
}

#[tokio::test]
async fn long_text_is_read_in_windows() {
    let f = fake().await;
    let registry = registry(&settings(&f.allowing_site("fetch_max_chars = 1000")), dns());
    let first = call(&registry, "web__fetch", json!({"url": f.url("/long")})).await;
    assert!(
        first.content.contains(
            "Showing characters 0–1000 of 14999. Call again with offset 1000 to read on."
        ),
        "{}",
        first.content
    );
    let next = call(
        &registry,
        "web__fetch",
        json!({"url": f.url("/long"), "offset": 14000}),
    )
    .await;
    assert!(
        next.content
            .contains("Showing characters 14000–14999 of 14999.\n"),
        "{}",
        next.content
    );
}

#[tokio::test]
async fn an_unreachable_site_is_one_sentence() {
    // A port nothing listens on: bind one, note it, close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = fetcher(&[&addr.to_string()], FetchLimits::default())
        .fetch(&format!("http://{addr}/"))
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("http://{addr}/ could not be reached (")),
        "{error}"
    );
}

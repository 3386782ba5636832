//! The web page's files, compiled into the binary (no build step, nothing to
//! install next to it), served with an ETag so a browser revalidates cheaply.

use crate::http::access::ApiPath;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    body: &'static [u8],
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(name: &'static str, body: &'static [u8], content_type: &'static str) -> Self {
        Self {
            name,
            body,
            content_type,
            etag: format!("\"{:016x}\"", fnv1a(body)),
        }
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "index.html",
        include_bytes!("../../assets/index.html"),
        "text/html; charset=utf-8",
    )
});

static FILES: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        Asset::new(
            "app.css",
            include_bytes!("../../assets/app.css"),
            "text/css; charset=utf-8",
        ),
        Asset::new(
            "app.js",
            include_bytes!("../../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        Asset::new(
            "clara.svg",
            include_bytes!("../../assets/clara.svg"),
            "image/svg+xml",
        ),
    ]
});

/// FNV-1a: a content fingerprint for the ETag (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /assets/{name}`.
pub(crate) async fn asset(ApiPath(name): ApiPath<String>, headers: HeaderMap) -> Response {
    match FILES.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => crate::http::errors::ApiError::not_found(format!("There is no file {name}."))
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_follow_the_content() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b"same"), fnv1a(b"same"));
    }

    #[test]
    fn the_page_links_only_files_that_are_served() {
        let html = std::str::from_utf8(INDEX.body).unwrap_or("");
        for link in html.split("/assets/").skip(1) {
            let name: String = link
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(
                FILES.iter().any(|a| a.name == name),
                "index.html links /assets/{name}, which is not served"
            );
        }
    }
}

//! `GET /api/chat/files/{id}`: a file Clara sent on the page (a chart the
//! sandbox drew), for the page's logged-in person only, from their own
//! conversation's shelf.
//!
//! The file's name and type come from a tool, so they are not trusted: only
//! the picture types a browser cannot run (PNG, JPEG, GIF, WebP) are served
//! inline; everything else (SVG and HTML included) is a download, with
//! `nosniff` and a sandboxing Content-Security-Policy besides.

use crate::http::access::{ApiPath, PageAccess};
use crate::http::chat::web_person;
use crate::http::errors::ApiError;
use crate::http::shelf::KeptFile;
use crate::http::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// What a served file may do in the browser: nothing (no script, no plugin, no
/// loads), even opened in a tab of its own.
pub(crate) const FILE_CSP: &str = "default-src 'none'; img-src 'self'; sandbox";

/// `GET /api/chat/files/{id}`.
pub(crate) async fn file(
    State(state): State<AppState>,
    _access: PageAccess,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let channel = web_person(&state).page().channel;
    let kept = state.hub.file(&channel, &id).ok_or_else(|| {
        ApiError::not_found(
            "There is no such file here: Clara keeps only the files of her recent replies, until a new session or a restart.",
        )
    })?;
    Ok(serve(kept))
}

fn serve(kept: KeptFile) -> Response {
    let shown = kept.shown;
    let content_type = HeaderValue::from_str(&shown.media_type)
        .ok()
        .filter(|_| shown.media_type.contains('/'))
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&shown.name, shown.image))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let mut response = kept.data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(FILE_CSP),
    );
    // The id never names other bytes: a browser may keep it, for this person.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

/// The `Content-Disposition` of a file named `name`: `inline` for a picture,
/// else `attachment`; the name as ASCII (`filename`) and as UTF-8
/// (`filename*`, RFC 6266).
pub(crate) fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | ';' | '%') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely_and_kept_in_utf8() {
        assert_eq!(
            content_disposition("chart.png", true),
            "inline; filename=\"chart.png\"; filename*=UTF-8''chart.png"
        );
        assert_eq!(
            content_disposition("a \"b\";c\r\n.svg", false),
            "attachment; filename=\"a _b__c__.svg\"; filename*=UTF-8''a%20%22b%22%3Bc%0D%0A.svg"
        );
        assert_eq!(
            content_disposition("Übersicht.csv", false),
            "attachment; filename=\"_bersicht.csv\"; filename*=UTF-8''%C3%9Cbersicht.csv"
        );
    }
}

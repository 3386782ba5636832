//! Who may call what, as axum extractors.
//!
//! - [`PageAccess`]: the web page's own calls need a login cookie (on loopback
//!   the page gets one without a password), and state-changing ones its CSRF
//!   token in `X-CSRF-Token`.
//! - [`ApiAccess`]: `/v1/*` and `/api/schedules` take `Authorization: Bearer
//!   <key>` (required off loopback, and whenever a key is configured), or the
//!   page's login cookie (the memory browser, the Reminders panel), or nothing
//!   at all on loopback with no key and no login.
//!
//! Also the request readers: JSON bodies only, with a size limit, and query
//! strings and path parameters, each failing with an OpenAI-shaped error (axum's
//! own rejections are plain text, which OpenAI clients cannot read).

use crate::http::auth::{self, COOKIE, CSRF_HEADER, Login};
use crate::http::errors::ApiError;
use crate::http::person::Person;
use crate::http::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::time::Instant;

/// The header an API request may name its person in (instead of `user`).
pub(crate) const USER_HEADER: &str = "x-clara-user";

/// The largest body the page's and the memory endpoints' requests may send.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// A logged-in web page.
#[derive(Clone, Debug)]
pub(crate) struct PageAccess {
    /// The login cookie's token.
    pub(crate) token: String,
}

impl FromRequestParts<AppState> for PageAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = login_token(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("Log in first.", Some("login_required")))?;
        let login = state.logins.get(&token, Instant::now()).ok_or_else(|| {
            ApiError::unauthorized(
                "Your login has expired; log in again.",
                Some("login_required"),
            )
        })?;
        check_csrf(&parts.method, &parts.headers, &login)?;
        Ok(Self { token })
    }
}

/// How an API request got in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiAccess {
    /// With the web page's login: it speaks for the web page's person only.
    Login,
    /// With the API key (or any bearer token on an open loopback Clara): it
    /// names its person.
    Key,
    /// On loopback with no key configured and no login required.
    Open,
}

impl FromRequestParts<AppState> for ApiAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let config = &state.config;
        if let Some(presented) = bearer(&parts.headers) {
            return match config.api_key() {
                Some(key) if key.matches(presented) => Ok(Self::Key),
                Some(_) => Err(ApiError::unauthorized(
                    "Incorrect API key provided.",
                    Some("invalid_api_key"),
                )),
                None if !config.login_required() => Ok(Self::Key),
                None => Err(closed()),
            };
        }
        if let Some(token) = login_token(&parts.headers)
            && let Some(login) = state.logins.get(&token, Instant::now())
        {
            check_csrf(&parts.method, &parts.headers, &login)?;
            return Ok(Self::Login);
        }
        if config.api_key().is_none() && !config.login_required() {
            return Ok(Self::Open);
        }
        if config.api_key().is_none() {
            return Err(closed());
        }
        Err(ApiError::unauthorized(
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`.",
            None,
        ))
    }
}

fn closed() -> ApiError {
    ApiError::unauthorized(
        "The API needs a key here, and none is configured: set api.key (CLARA_API_KEY) and restart Clara.",
        Some("invalid_api_key"),
    )
}

impl ApiAccess {
    /// The person the request speaks for: the web page's person with a login,
    /// else the one it names (`user`, `X-Clara-User`), else the web page's person.
    /// The key is the operator's, so its holder is trusted to name anyone of the
    /// `web` platform, as OpenAI's `user` is (docs/openapi.yaml, "Who may name
    /// whom"); a login names only the page's person.
    pub(crate) fn person(
        self,
        state: &AppState,
        named: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Person, ApiError> {
        let web = || crate::http::chat::web_person(state);
        if self == Self::Login {
            return Ok(web());
        }
        let header = headers.get(USER_HEADER).and_then(|v| v.to_str().ok());
        match named.or(header) {
            Some(user) if user.trim() == state.config.person.id => Ok(web()),
            Some(user) => Person::named(user),
            None => Ok(web()),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The login cookie's token, if the request carries one.
pub(crate) fn login_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| auth::cookie_value(h, COOKIE))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn check_csrf(method: &Method, headers: &HeaderMap, login: &Login) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth::same_secret(presented, &login.csrf) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "This request lacks the page's CSRF token; reload the page and try again.",
        )
        .with_code("csrf_failed"))
    }
}

/// Reads a JSON request body of at most `limit` bytes.
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    if declared_over(headers, limit) {
        return Err(ApiError::too_large(limit));
    }
    if !is_json {
        return Err(ApiError::not_json());
    }
    read_body(headers, body, limit).await
}

/// Reads a body of any type, refusing one over `limit` bytes (413), by its
/// declared length before reading or as soon as it grows past the limit.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if declared_over(headers, limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid(format!("The request body could not be read: {e}.")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// Whether the body's declared length (`Content-Length`) is over `limit`.
fn declared_over(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
}

/// Parses a JSON body into `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ApiError::invalid(format!("The request body has a wrong field: {e}."))
        } else {
            ApiError::bad_json(e)
        }
    })
}

/// A small JSON body, parsed.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> axum::extract::FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        _state: &AppState,
    ) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_json_body(&parts.headers, body, SMALL_BODY).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A query string, parsed; a wrong parameter is a 400 naming it.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|query| Self(query.0))
            .map_err(|e| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::invalid(format!("The query string is not valid ({detail})."))
            })
    }
}

/// A path parameter, parsed; one that cannot be read is a 400.
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| Self(path.0))
            .map_err(|e| ApiError::invalid(format!("The path is not valid ({}).", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_in_any_case() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  sk-1 "),
        );
        assert_eq!(bearer(&h), Some("sk-1"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer sk-2"),
        );
        assert_eq!(bearer(&h), Some("sk-2"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[tokio::test]
    async fn bodies_must_be_json_and_small() {
        let mut h = HeaderMap::new();
        let no_type = read_json_body(&h, Body::from("{}"), 10).await;
        assert_eq!(no_type.unwrap_err().status.as_u16(), 415);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        let big = read_json_body(&h, Body::from("x".repeat(11)), 10).await;
        assert_eq!(big.unwrap_err().status.as_u16(), 413);
        let ok = read_json_body(&h, Body::from("{}"), 10).await;
        assert_eq!(ok.unwrap().as_ref(), b"{}");
    }

    #[test]
    fn bad_json_and_wrong_fields_are_told_apart() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            n: u32,
        }
        let bad = parse_json::<T>(b"{nope").unwrap_err();
        assert_eq!(bad.code, Some("invalid_json"));
        let wrong = parse_json::<T>(br#"{"n":"x"}"#).unwrap_err();
        assert_eq!(wrong.status.as_u16(), 400);
        assert_eq!(wrong.code, None);
    }
}

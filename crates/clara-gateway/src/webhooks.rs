//! The webhook routes in-process adapters contribute
//! ([`Adapter::webhooks`](clara_core::port::Adapter::webhooks)), served on the
//! gateway port at `/webhooks/{platform}{path}`.
//!
//! Each call reaches its [`WebhookHandler`] as plain data ([`WebhookRequest`]:
//! the query string, the headers with lower-case names, the raw body), and the
//! handler's [`WebhookResponse`] goes back as it is. A body over the limit is
//! answered 413 before the handler sees it; a path no route serves falls through
//! to the gateway's usual 404 once this router is merged with the others.
//! Verifying the platform's signature is the handler's job. These routes are
//! not behind the web page's login or host-name checks: the platform calls them
//! from outside, through whatever proxy or tunnel the operator set up.

use crate::http::access::read_body;
use crate::http::errors::ApiError;
use crate::http::metrics;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use clara_core::webhook::{
    WebhookHandler, WebhookMethod, WebhookRequest, WebhookResponse, WebhookRoute,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where webhook routes are served: `/webhooks/{platform}{path}`.
pub const WEBHOOKS_PATH: &str = "/webhooks";

/// The default for [`WebhookConfig::max_body_bytes`]: 1 MiB, far above what
/// platforms send in one event.
pub const DEFAULT_MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

/// The webhook routes' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The largest request body accepted, in bytes; a larger one is answered
    /// 413 without reaching the handler.
    pub max_body_bytes: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_WEBHOOK_BODY_BYTES,
        }
    }
}

/// Why the webhook routes could not be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Two routes answer the same method on the same path.
    #[error("two webhook routes answer {method} {path}; each method and path may have one")]
    Duplicate {
        /// The method (`GET`, `POST`).
        method: &'static str,
        /// The full path, `/webhooks/{platform}{path}`.
        path: String,
    },
    /// A platform name that cannot be a path segment.
    #[error(
        "the platform name {platform:?} cannot name webhook routes: use letters, digits, '-', '_' or '.'"
    )]
    Platform {
        /// The platform name given.
        platform: String,
    },
    /// A route's path that cannot be served as given.
    #[error("the webhook path {path:?} of {platform} cannot be served: {reason}")]
    Path {
        /// The route's platform.
        platform: String,
        /// The route's path, as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The handlers of one full path, by method.
#[derive(Default)]
struct PathHandlers {
    get: Option<Arc<dyn WebhookHandler>>,
    post: Option<Arc<dyn WebhookHandler>>,
}

/// The routes of every platform, each at `/webhooks/{platform}{path}`, to merge
/// into the gateway port's router. Fails, naming the route, when a platform
/// name or path cannot be served, or when two routes share a method and path.
pub fn router(
    routes: Vec<(&'static str, Vec<WebhookRoute>)>,
    config: WebhookConfig,
) -> Result<Router, WebhookError> {
    let mut paths: BTreeMap<String, PathHandlers> = BTreeMap::new();
    for (platform, platform_routes) in routes {
        check_platform(platform)?;
        for route in platform_routes {
            check_path(platform, &route.path)?;
            let full = format!("{WEBHOOKS_PATH}/{platform}{}", route.path);
            let handlers = paths.entry(full.clone()).or_default();
            let slot = match route.method {
                WebhookMethod::Get => &mut handlers.get,
                WebhookMethod::Post => &mut handlers.post,
            };
            if slot.is_some() {
                return Err(WebhookError::Duplicate {
                    method: method_name(route.method),
                    path: full,
                });
            }
            *slot = Some(route.handler);
        }
    }
    if paths.is_empty() {
        // Most deployments have no webhook platform; axum refuses a layer
        // over no routes.
        return Ok(Router::new());
    }
    let limit = config.max_body_bytes;
    let mut router = Router::new();
    for (path, handlers) in paths {
        let mut methods = MethodRouter::new();
        if let Some(handler) = handlers.get {
            methods = methods.get(move |request: Request| call(handler, limit, request));
        }
        if let Some(handler) = handlers.post {
            methods = methods.post(move |request: Request| call(handler, limit, request));
        }
        router = router.route(
            &path,
            methods.fallback(|| async { ApiError::method_not_allowed() }),
        );
    }
    Ok(router.route_layer(from_fn(metrics::track)))
}

/// Checks that `platform` is one plain path segment.
fn check_platform(platform: &str) -> Result<(), WebhookError> {
    let plain = !platform.is_empty()
        && platform != "."
        && platform != ".."
        && platform
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        Ok(())
    } else {
        Err(WebhookError::Platform {
            platform: platform.to_owned(),
        })
    }
}

/// Checks that `path` is a literal path the router matches as written.
fn check_path(platform: &str, path: &str) -> Result<(), WebhookError> {
    let reason = if !path.starts_with('/') {
        Some("it must start with '/'")
    } else if path.contains("//") {
        Some("it has an empty segment ('//')")
    } else if path.contains(['{', '}', '*']) {
        Some("'{', '}' and '*' would make it a pattern; webhook paths are literal")
    } else if path.contains(['?', '#']) {
        Some("a query or fragment is not part of a path")
    } else if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        Some("use visible ASCII characters only")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(WebhookError::Path {
            platform: platform.to_owned(),
            path: path.to_owned(),
            reason,
        }),
    }
}

fn method_name(method: WebhookMethod) -> &'static str {
    match method {
        WebhookMethod::Get => "GET",
        WebhookMethod::Post => "POST",
    }
}

/// Hands one request to its handler as plain data, and its answer back.
async fn call(handler: Arc<dyn WebhookHandler>, limit: usize, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            // Header names are lower case already (the `http` crate's own form).
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let webhook_request = WebhookRequest {
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
    };
    into_response(handler.handle(webhook_request).await, parts.uri.path())
}

/// The handler's answer as an HTTP response. A status or content type HTTP
/// cannot carry is the handler's bug: logged, and answered 500 (status) or
/// sent without the header (content type).
fn into_response(answer: WebhookResponse, path: &str) -> Response {
    let Ok(status) = StatusCode::from_u16(answer.status) else {
        tracing::error!(
            status = answer.status,
            path,
            "a webhook handler answered with an invalid HTTP status"
        );
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = (status, answer.body).into_response();
    match answer.content_type.as_deref().map(HeaderValue::from_str) {
        Some(Ok(value)) => {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Some(Err(_)) => {
            tracing::warn!(
                path,
                "a webhook handler's content type is not a valid header value; sent without it"
            );
            response.headers_mut().remove(header::CONTENT_TYPE);
        }
        None => {
            response.headers_mut().remove(header::CONTENT_TYPE);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;

    struct Echo;

    #[async_trait]
    impl WebhookHandler for Echo {
        async fn handle(&self, request: WebhookRequest) -> WebhookResponse {
            WebhookResponse::text(200, String::from_utf8_lossy(&request.body))
        }
    }

    fn route(method: WebhookMethod, path: &str) -> WebhookRoute {
        WebhookRoute {
            method,
            path: path.to_owned(),
            handler: Arc::new(Echo),
        }
    }

    #[test]
    fn no_routes_make_an_empty_router() {
        assert!(router(Vec::new(), WebhookConfig::default()).is_ok());
        assert!(router(vec![("teams", Vec::new())], WebhookConfig::default()).is_ok());
    }

    #[test]
    fn a_second_route_on_the_same_method_and_path_is_an_error() {
        let error = router(
            vec![(
                "teams",
                vec![
                    route(WebhookMethod::Post, "/events"),
                    route(WebhookMethod::Post, "/events"),
                ],
            )],
            WebhookConfig::default(),
        )
        .err()
        .unwrap();
        assert_eq!(
            error,
            WebhookError::Duplicate {
                method: "POST",
                path: "/webhooks/teams/events".into()
            }
        );
        assert!(error.to_string().contains("POST /webhooks/teams/events"));
    }

    #[test]
    fn one_path_may_answer_get_and_post_and_platforms_do_not_collide() {
        let routes = vec![
            (
                "whatsapp",
                vec![
                    route(WebhookMethod::Get, "/events"),
                    route(WebhookMethod::Post, "/events"),
                ],
            ),
            ("teams", vec![route(WebhookMethod::Post, "/events")]),
        ];
        assert!(router(routes, WebhookConfig::default()).is_ok());
    }

    #[test]
    fn paths_and_platforms_that_cannot_be_served_are_errors() {
        for bad in ["events", "/a//b", "/{id}", "/*rest", "/a?b=1", "/a b", "/é"] {
            let result = router(
                vec![("teams", vec![route(WebhookMethod::Post, bad)])],
                WebhookConfig::default(),
            );
            assert!(
                matches!(result, Err(WebhookError::Path { .. })),
                "{bad:?} was accepted"
            );
        }
        for bad in ["", "a/b", "..", "Té"] {
            let result = router(
                vec![(bad, vec![route(WebhookMethod::Post, "/events")])],
                WebhookConfig::default(),
            );
            assert!(
                matches!(result, Err(WebhookError::Platform { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn an_invalid_status_is_a_500() {
        let response = into_response(
            WebhookResponse {
                status: 42,
                content_type: None,
                body: Vec::new(),
            },
            "/webhooks/x",
        );
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = into_response(WebhookResponse::status(204), "/webhooks/x");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers().get(header::CONTENT_TYPE).is_none());
    }
}

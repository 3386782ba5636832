//! The HTTP face of Clara on the gateway port.
//!
//! - The **web page** (`/`): chat with streamed answers, the memory browser and
//!   the sessions list, all in files compiled into the binary (`assets/`).
//! - The page's own calls (`/api/*`, `/auth/*`): its conversation as server-sent
//!   events, send (with files) / stop / typing / new session, the files Clara
//!   sent, answers to tool approvals, the owner's Tools panel (MCP servers and
//!   tool rules), the person's reminders, scheduled tasks and alert settings
//!   (which API callers may use too), login and logout.
//! - The **HTTP API** (`/v1/*`, documented in `docs/openapi.yaml`): OpenAI's
//!   `chat/completions` (streamed or not) and `models`, and the memory and
//!   session endpoints the memory browser uses.
//! - `/healthz`, `/readyz` and Prometheus `/metrics`.
//!
//! Access: on loopback nothing asks for a password (unless `require_login`);
//! anywhere else the page needs the operator's password and `/v1/*` the API key.
//! The page's login is an `HttpOnly; SameSite=Strict` cookie (`Secure` off
//! loopback) and every state-changing call carries its CSRF token. A loopback
//! Clara answers only to loopback host names, which keeps other web sites out.
//! A person sees only their own conversations, sessions and memories.

pub(crate) mod access;
mod approvals;
mod assets;
mod attachments;
mod auth;
mod chat;
mod config;
pub(crate) mod errors;
mod files;
mod health;
mod hub;
mod login;
mod memories;
pub(crate) mod metrics;
mod openai;
mod person;
mod schedules;
mod sessions;
mod shelf;
mod state;
mod tools;

pub use auth::{AuthError, hash_password};
pub use config::{
    DEFAULT_KEPT_FILE_BYTES, DEFAULT_KEPT_FILES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_MESSAGE_FILE_BYTES, DEFAULT_PERSON_ID, HttpConfig, WebPerson,
};
pub use metrics::install as install_metrics;
pub use state::HttpDeps;
pub use tools::{ToolServerStatus, ToolServers};

use crate::http::errors::ApiError;
use crate::http::hub::Hub;
use crate::http::shelf::ShelfLimits;
use crate::http::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use clara_core::port::OutboundSink;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The page's Content-Security-Policy: its own files only, no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Builds the HTTP face on `deps` and attaches its sink as the engine's `web`
/// platform (the web page's and the API's conversations). Event streams end when
/// `stop` is cancelled. Merge the result into the gateway port's router.
pub fn router(deps: HttpDeps, config: HttpConfig, stop: CancellationToken) -> Router {
    router_and_sink(deps, config, stop).0
}

/// [`router`], and the `web` platform's sink it attached to the engine: what
/// the engine's replies for the page and the API go through, for whoever must
/// deliver to it directly (tests; a process that runs replies elsewhere).
pub fn router_and_sink(
    deps: HttpDeps,
    config: HttpConfig,
    stop: CancellationToken,
) -> (Router, Arc<dyn OutboundSink>) {
    let hub = Arc::new(Hub::new(ShelfLimits {
        files: config.kept_files.max(1),
        bytes: config.kept_file_bytes,
    }));
    deps.engine.attach(person::PLATFORM, hub.clone());
    let sink: Arc<dyn OutboundSink> = hub.clone();
    let state = AppState::new(deps, config, hub, stop, metrics::install());
    let v1 = Router::new()
        .route("/models", get(openai::models))
        .route("/models/{model}", get(openai::model))
        .route("/chat/completions", post(openai::completions))
        .route("/memories", get(memories::list).post(memories::add))
        .route(
            "/memories/{id}",
            patch(memories::edit).delete(memories::forget),
        )
        .route("/memories/{id}/history", get(memories::history))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}/messages", get(sessions::messages));
    let router = Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/auth/login", post(login::login))
        .route("/auth/logout", post(login::logout))
        .route("/api/me", get(login::me))
        .route("/api/chat/events", get(chat::events))
        .route("/api/chat/messages", post(chat::send))
        .route("/api/chat/stop", post(chat::stop))
        .route("/api/chat/typing", post(chat::typing))
        .route("/api/chat/new-session", post(chat::new_session))
        .route("/api/chat/approvals", post(approvals::answer))
        .route("/api/chat/files/{id}", get(files::file))
        .route("/api/tools", get(tools::view))
        .route("/api/tools/servers/{name}", post(tools::set_server))
        .route("/api/schedules", get(schedules::list).post(schedules::add))
        .route("/api/schedules/settings", put(schedules::settings))
        .route("/api/schedules/{id}", delete(schedules::cancel))
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(from_fn(metrics::track))
        .layer(from_fn_with_state(state.clone(), guard));
    (router.with_state(state), sink)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "There is nothing at {} {}.",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Refuses foreign host names on a loopback Clara, and sets the security
/// headers of every answer.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.config.loopback
        && let Some(host) = request.headers().get(header::HOST)
        && !host.to_str().is_ok_and(auth::is_loopback_host)
    {
        return ApiError::forbidden(
            "This Clara listens on this machine only and answers to localhost or 127.0.0.1; open it by one of those names.",
        )
        .with_code("foreign_host")
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A served file brings its own, stricter policy.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

//! `/api/me`, `/auth/login`, `/auth/logout`: who the page is, and logging in.
//!
//! On loopback (unless `require_login`) the page is logged in on its first call
//! without a password, so it still gets a cookie and a CSRF token: other web
//! sites cannot use the person's browser to talk to Clara.

use crate::http::access::{JsonBody, PageAccess, login_token};
use crate::http::auth;
use crate::http::errors::ApiError;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clara_core::Tier;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;

/// `GET /api/me`: the page's person and settings, logged in or not.
pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = Instant::now();
    if let Some(token) = login_token(&headers)
        && let Some(login) = state.logins.get(&token, now)
    {
        return Json(profile(&state, Some(&login.csrf))).into_response();
    }
    if state.config.login_required() {
        return Json(profile(&state, None)).into_response();
    }
    let (token, login) = state.logins.start(now, state.config.login_ttl);
    let mut response = Json(profile(&state, Some(&login.csrf))).into_response();
    set_cookie(
        &mut response,
        &auth::login_cookie(&token, state.config.login_ttl, state.config.secure_cookie),
    );
    response
}

/// The page's profile. Before a login it says only what the login screen needs:
/// a stranger learns neither the person's name nor Clara's model and settings.
fn profile(state: &AppState, csrf: Option<&str>) -> Value {
    let mut profile = json!({
        "logged_in": csrf.is_some(),
        "csrf": csrf,
        "login_required": state.config.login_required(),
        "password_set": state.config.has_password(),
        "person": null,
    });
    if csrf.is_some() {
        let engine_config = state.engine.config();
        let tiers = [Tier::Low, Tier::Mid, Tier::High].map(Tier::as_str);
        let more = json!({
            "person": state.config.person.name,
            "memory": state.memory.is_some(),
            "model": state.engine.provider().model(),
            "default_tier": engine_config.default_tier.as_str(),
            "auto_tier": engine_config.auto_tier,
            "tiers": tiers,
            // Whether the page's person is an owner: they see the Tools panel.
            "owner": crate::http::tools::page_is_owner(state),
            // What the attach button may take (the server checks again).
            "max_file_bytes": state.config.max_file_bytes,
            "max_message_file_bytes": state.config.max_message_file_bytes,
            "max_files": crate::http::attachments::MAX_FILES,
        });
        if let (Some(profile), Value::Object(more)) = (profile.as_object_mut(), more) {
            profile.extend(more);
        }
    }
    profile
}

/// The body of `POST /auth/login`.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    password: String,
}

/// `POST /auth/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<LoginForm>,
) -> Result<Response, ApiError> {
    let Some(hash) = state.config.password_hash().map(str::to_owned) else {
        return Err(ApiError::conflict(
            "No password is set, so nobody can log in: set web.password (CLARA_WEB_PASSWORD) in Clara's configuration and restart it.",
            "no_password",
        ));
    };
    let Some(attempt) = state.brake.attempt(Instant::now()) else {
        return Err(ApiError::too_many(
            "Too many login attempts; wait a minute and try again.",
        ));
    };
    let password = form.password;
    // Argon2 takes tens of milliseconds of CPU on purpose; keep it off the
    // threads that serve everyone else.
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    if !ok {
        // The attempt keeps its place in the brake, as a failure.
        metrics::counter!("clara_logins_total", "outcome" => "failed").increment(1);
        tracing::warn!("a wrong password was given for the web page");
        return Err(ApiError::unauthorized(
            "That password is not right.",
            Some("wrong_password"),
        ));
    }
    state.brake.succeeded(attempt);
    metrics::counter!("clara_logins_total", "outcome" => "ok").increment(1);
    let (token, login) = state.logins.start(Instant::now(), state.config.login_ttl);
    let mut response = Json(profile(&state, Some(&login.csrf))).into_response();
    set_cookie(
        &mut response,
        &auth::login_cookie(&token, state.config.login_ttl, state.config.secure_cookie),
    );
    Ok(response)
}

/// `POST /auth/logout`.
pub(crate) async fn logout(State(state): State<AppState>, access: PageAccess) -> Response {
    state.logins.end(&access.token);
    let mut response = StatusCode::NO_CONTENT.into_response();
    set_cookie(
        &mut response,
        &auth::logout_cookie(state.config.secure_cookie),
    );
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

//! `/healthz` (the process answers), `/readyz` (it can serve: the database
//! answers), `/metrics` (Prometheus text; behind the API key off loopback).

use crate::http::access::ApiAccess;
use crate::http::errors::ApiError;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.job_counts().await {
        Ok(_) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not ready",
                    "problems": ["the database does not answer"],
                })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    _access: ApiAccess,
) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::unavailable(
            "Metrics are not recorded in this process.",
        ));
    };
    // Gauges read at scrape time.
    metrics::gauge!("clara_web_tabs").set(state.hub.tabs() as f64);
    if let Ok(counts) = state.store.job_counts().await {
        for (kind, status, n) in counts {
            metrics::gauge!("clara_jobs", "kind" => kind, "status" => status.as_str())
                .set(n as f64);
        }
    }
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

//! `/v1/sessions`: a person's sessions on the web page and through the API,
//! newest first, each with its summary once written, and each one's messages
//! (Clara's with the tools her replies used).

use crate::http::access::{ApiAccess, ApiPath, ApiQuery};
use crate::http::chat::shown_messages;
use crate::http::errors::ApiError;
use crate::http::person::Reach;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use clara_core::SessionId;
use clara_store::SessionRecord;
use serde::Deserialize;
use serde_json::{Value, json};

/// Sessions listed per conversation, at most.
const MAX_SESSIONS: u32 = 100;

/// Query naming the person (API callers) and a limit.
#[derive(Deserialize, Default)]
pub(crate) struct SessionsQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

fn session_json(s: &SessionRecord, place: &str, messages: Option<usize>) -> Value {
    json!({
        "id": s.id.to_string(),
        "object": "session",
        "place": place,
        "started_at_ms": s.started_at_ms,
        "last_activity_at_ms": s.last_activity_at_ms,
        "ended_at_ms": s.ended_at_ms,
        "current": s.ended_at_ms.is_none(),
        "summary": s.summary,
        "messages": messages,
    })
}

/// `GET /v1/sessions`.
pub(crate) async fn list(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let person = access.person(&state, query.user.as_deref(), &headers)?;
    let reach = Reach::of(&state.store, &person).await?;
    let limit = query.limit.unwrap_or(MAX_SESSIONS).clamp(1, MAX_SESSIONS);
    let store = &state.store;
    let places = ["web page", "API"];
    let mut all: Vec<(SessionRecord, &str)> = Vec::new();
    for (conversation, place) in reach.conversations.iter().zip(places) {
        let sessions = store
            .sessions_of(*conversation, limit)
            .await
            .map_err(|e| ApiError::internal("list the sessions", &e))?;
        all.extend(sessions.into_iter().map(|s| (s, place)));
    }
    all.sort_by_key(|(s, _)| std::cmp::Reverse(s.started_at_ms));
    all.truncate(limit as usize);
    let mut data = Vec::with_capacity(all.len());
    for (session, place) in &all {
        let count = store
            .session_messages(session.id)
            .await
            .map(|m| m.len())
            .map_err(|e| ApiError::internal("count a session's messages", &e))?;
        // A session opened but never used is not worth a line.
        if count == 0 && session.summary.is_none() {
            continue;
        }
        data.push(session_json(session, place, Some(count)));
    }
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// `GET /v1/sessions/{id}/messages`.
pub(crate) async fn messages(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let person = access.person(&state, query.user.as_deref(), &headers)?;
    let reach = Reach::of(&state.store, &person).await?;
    let not_found = || ApiError::not_found(format!("There is no session {id} of yours."));
    let session_id: SessionId = id.trim().parse().map_err(|_| not_found())?;
    let store = &state.store;
    let session = store
        .session(session_id)
        .await
        .map_err(|e| ApiError::internal("read the session", &e))?
        .filter(|s| reach.conversations.contains(&s.conversation))
        .ok_or_else(not_found)?;
    let stored = store
        .session_messages(session.id)
        .await
        .map_err(|e| ApiError::internal("read the session", &e))?;
    let messages = shown_messages(store, &stored)
        .await
        .map_err(|e| ApiError::internal("read the session's tool runs", &e))?;
    let place = if reach.conversations.first() == Some(&session.conversation) {
        "web page"
    } else {
        "API"
    };
    Ok(Json(json!({
        "session": session_json(&session, place, Some(messages.len())),
        "data": messages,
    })))
}

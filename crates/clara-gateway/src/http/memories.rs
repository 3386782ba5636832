//! `/v1/memories`: what Clara remembers about a person, and their projects — to
//! list, search, add, correct, forget and share, each with its history (when it
//! changed, why, and the message it came from).
//!
//! A person reaches only memories of their own scope and of their conversations'
//! projects; any other id is answered as if it did not exist.

use crate::http::access::{ApiAccess, ApiPath, ApiQuery, JsonBody};
use crate::http::errors::ApiError;
use crate::http::person::{PLATFORM, Person, Reach};
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use clara_core::{ChannelKind, MemoryId, MemoryKind, Scope};
use clara_memory::rank::RankConfig;
use clara_memory::{MemoryError, Origin, Rook};
use clara_store::{HistoryRecord, MemoryFilter, MemoryRecord, Provenance};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The most memories one listing returns.
const MAX_LIST: u32 = 500;
/// The longest memory text accepted, in characters.
const MAX_TEXT: usize = 2_000;

/// Query of `GET /v1/memories`.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    /// Search by meaning and words; absent: newest first.
    #[serde(default)]
    q: Option<String>,
    /// Include forgotten memories (listing only).
    #[serde(default)]
    include_forgotten: Option<bool>,
    /// At most this many.
    #[serde(default)]
    limit: Option<u32>,
    /// The person, for API callers.
    #[serde(default)]
    user: Option<String>,
}

/// Query naming the person, for API callers.
#[derive(Deserialize, Default)]
pub(crate) struct UserQuery {
    #[serde(default)]
    user: Option<String>,
}

struct Caller {
    person: Person,
    reach: Reach,
    rook: Rook,
    actor: &'static str,
}

async fn caller(
    state: &AppState,
    access: ApiAccess,
    user: Option<&str>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let rook = state.memory.clone().ok_or_else(|| {
        ApiError::unavailable(
            "Long-term memory is off in this Clara (memory.enabled, or its embedding model is missing).",
        )
        .with_code("memory_off")
    })?;
    let person = access.person(state, user, headers)?;
    let reach = Reach::of(&state.store, &person).await?;
    let actor = if access == ApiAccess::Login {
        "person"
    } else {
        "api"
    };
    Ok(Caller {
        person,
        reach,
        rook,
        actor,
    })
}

fn memory_failed(what: &str, e: &MemoryError) -> ApiError {
    ApiError::internal(what, e)
}

/// Project names, for showing which project a memory belongs to.
async fn project_names(state: &AppState, reach: &Reach) -> HashMap<Scope, String> {
    let mut names = HashMap::new();
    for scope in &reach.scopes {
        if let Scope::Project(id) = scope
            && let Ok(Some(project)) = state.store.project(*id).await
        {
            names.insert(*scope, project.name);
        }
    }
    names
}

fn memory_json(m: &MemoryRecord, projects: &HashMap<Scope, String>, score: Option<f32>) -> Value {
    json!({
        "id": m.id.to_string(),
        "object": "memory",
        "scope": m.scope.kind_str(),
        "project": projects.get(&m.scope),
        "kind": m.kind.as_str(),
        "text": m.text,
        "shareable": m.shareable,
        "learned_in": m.origin.as_str(),
        "happened_at_ms": m.happened_at_ms,
        "created_at_ms": m.created_at_ms,
        "updated_at_ms": m.updated_at_ms,
        "forgotten_at_ms": m.forgotten_at_ms,
        "score": score,
    })
}

/// `GET /v1/memories`.
pub(crate) async fn list(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, access, query.user.as_deref(), &headers).await?;
    let limit = query.limit.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
    let projects = project_names(&state, &c.reach).await;
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let data: Vec<Value> = if let Some(q) = search {
        let rank = RankConfig::default().uncapped(limit as usize);
        let found = c
            .rook
            .search(&c.reach.scopes, true, q, &rank)
            .await
            .map_err(|e| memory_failed("search the memories", &e))?;
        let scores: Vec<f32> = found.iter().map(|r| r.score).collect();
        let keep = relevant(&scores);
        found[..keep]
            .iter()
            .map(|r| memory_json(&r.memory, &projects, Some(r.score)))
            .collect()
    } else {
        let filter = MemoryFilter {
            include_forgotten: query.include_forgotten.unwrap_or(false),
            limit: Some(limit),
        };
        let mut all = Vec::new();
        for scope in &c.reach.scopes {
            all.extend(
                c.rook
                    .list(*scope, filter)
                    .await
                    .map_err(|e| memory_failed("list the memories", &e))?,
            );
        }
        all.sort_by_key(|m| std::cmp::Reverse(m.updated_at_ms));
        all.truncate(limit as usize);
        all.iter()
            .map(|m| memory_json(m, &projects, None))
            .collect()
    };
    Ok(Json(json!({ "object": "list", "data": data })))
}

/// Of search results ranked best first, how many are worth showing: those
/// within reach of the best match. Ranking always orders everything; a person
/// searching expects the memories that match, not the rest in some order.
fn relevant(scores: &[f32]) -> usize {
    /// A result is shown when it scores at least this share of the best one.
    const SHARE_OF_BEST: f32 = 0.6;
    let Some(best) = scores.first().copied().filter(|b| *b > 0.0) else {
        return 0;
    };
    scores
        .iter()
        .take_while(|s| **s >= best * SHARE_OF_BEST)
        .count()
}

/// The body of `POST /v1/memories`.
#[derive(Deserialize)]
pub(crate) struct NewMemoryForm {
    text: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    shareable: Option<bool>,
    #[serde(default)]
    user: Option<String>,
}

fn checked_text(text: &str) -> Result<&str, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid("A memory needs some text.").with_param("text"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(
            ApiError::invalid(format!("A memory holds at most {MAX_TEXT} characters."))
                .with_param("text"),
        );
    }
    Ok(text)
}

/// `POST /v1/memories`: the person tells Clara something to remember.
pub(crate) async fn add(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    JsonBody(form): JsonBody<NewMemoryForm>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, access, form.user.as_deref(), &headers).await?;
    let text = checked_text(&form.text)?;
    let kind = match form.kind.as_deref() {
        None => MemoryKind::Fact,
        Some(k) => MemoryKind::parse(k).ok_or_else(|| {
            ApiError::invalid(format!(
                "{k:?} is not a kind of memory; use fact, preference, event or instruction."
            ))
            .with_param("kind")
        })?,
    };
    let user = match c.reach.user {
        Some(user) => user,
        None => state
            .store
            .resolve_user(PLATFORM, &c.person.id, &c.person.name)
            .await
            .map_err(|e| ApiError::internal("record the person", &e))?,
    };
    let now = clara_runtime::clock::now_ms();
    let origin = Origin {
        user,
        person: c.person.name.clone(),
        project: None,
        channel: ChannelKind::Direct,
        conversation: None,
        message: None,
        at_ms: now,
    };
    let mut memory = c
        .rook
        .remember(
            Scope::User(user),
            kind,
            text,
            &origin,
            c.actor,
            "added on the web page",
        )
        .await
        .map_err(|e| memory_failed("remember that", &e))?;
    if form.shareable == Some(true) {
        memory = c
            .rook
            .set_shareable(
                memory.id,
                true,
                &provenance(c.actor, "shared when added", now),
            )
            .await
            .map_err(|e| memory_failed("share the memory", &e))?;
    }
    Ok(Json(memory_json(&memory, &HashMap::new(), None)))
}

/// The memory `id`, if the caller may see it.
async fn owned(c: &Caller, id: &str) -> Result<MemoryRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("There is no memory {id} of yours."));
    let id: MemoryId = id.trim().parse().map_err(|_| not_found())?;
    let memory = c
        .rook
        .memory(id)
        .await
        .map_err(|e| memory_failed("read the memory", &e))?
        .ok_or_else(not_found)?;
    if c.reach.covers(&memory.scope) {
        Ok(memory)
    } else {
        Err(not_found())
    }
}

fn provenance(actor: &str, reason: &str, at_ms: i64) -> Provenance {
    Provenance {
        reason: reason.to_owned(),
        actor: actor.to_owned(),
        conversation: None,
        message: None,
        at_ms,
    }
}

/// The body of `PATCH /v1/memories/{id}`.
#[derive(Deserialize)]
pub(crate) struct EditForm {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    shareable: Option<bool>,
    #[serde(default)]
    user: Option<String>,
}

/// `PATCH /v1/memories/{id}`: corrects its text and/or who may hear it.
pub(crate) async fn edit(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    JsonBody(form): JsonBody<EditForm>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, access, form.user.as_deref(), &headers).await?;
    let mut memory = owned(&c, &id).await?;
    if memory.forgotten_at_ms.is_some() {
        return Err(ApiError::conflict(
            "That memory is forgotten; it can no longer be changed.",
            "memory_forgotten",
        ));
    }
    if form.text.is_none() && form.shareable.is_none() {
        return Err(ApiError::invalid("Send `text`, `shareable`, or both."));
    }
    let now = clara_runtime::clock::now_ms();
    if let Some(text) = &form.text {
        let text = checked_text(text)?;
        if text != memory.text {
            memory = c
                .rook
                .correct(
                    memory.id,
                    text,
                    &provenance(c.actor, "corrected on the web page", now),
                )
                .await
                .map_err(|e| memory_failed("correct the memory", &e))?;
        }
    }
    if let Some(shareable) = form.shareable
        && shareable != memory.shareable
    {
        let reason = if shareable {
            "marked shareable on the web page"
        } else {
            "made private on the web page"
        };
        memory = c
            .rook
            .set_shareable(memory.id, shareable, &provenance(c.actor, reason, now))
            .await
            .map_err(|e| memory_failed("change who may hear the memory", &e))?;
    }
    let projects = project_names(&state, &c.reach).await;
    Ok(Json(memory_json(&memory, &projects, None)))
}

/// `DELETE /v1/memories/{id}`: forgets it (its history stays).
pub(crate) async fn forget(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, access, query.user.as_deref(), &headers).await?;
    let memory = owned(&c, &id).await?;
    if memory.forgotten_at_ms.is_none() {
        let now = clara_runtime::clock::now_ms();
        c.rook
            .forget(
                memory.id,
                &provenance(c.actor, "forgotten on the web page", now),
            )
            .await
            .map_err(|e| memory_failed("forget the memory", &e))?;
    }
    Ok(Json(
        json!({ "id": memory.id.to_string(), "object": "memory", "forgotten": true }),
    ))
}

/// `GET /v1/memories/{id}/history`: the memory and everything that happened to it.
pub(crate) async fn history(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, access, query.user.as_deref(), &headers).await?;
    let memory = owned(&c, &id).await?;
    let records = c
        .rook
        .history(memory.id)
        .await
        .map_err(|e| memory_failed("read the memory's history", &e))?;
    let mut history = Vec::with_capacity(records.len());
    for record in &records {
        history.push(history_json(&state, &c.reach, record).await);
    }
    let projects = project_names(&state, &c.reach).await;
    Ok(Json(json!({
        "memory": memory_json(&memory, &projects, None),
        "history": history,
    })))
}

async fn history_json(state: &AppState, reach: &Reach, h: &HistoryRecord) -> Value {
    let store = &state.store;
    let place = match h.conversation {
        Some(id) => match store.conversation_ref(id).await {
            Ok(Some(conv)) => Some(place_name(&conv.platform, &conv.channel, conv.kind)),
            _ => None,
        },
        None => None,
    };
    // The message's words are shown when they are the person's own, or were said
    // in one of their conversations.
    let message = match h.message {
        Some(id) => match store.message(id).await {
            Ok(Some(m))
                if reach.conversations.contains(&m.conversation)
                    || (m.user.is_some() && m.user == reach.user) =>
            {
                Some(json!({ "id": m.id.to_string(), "text": m.content, "at_ms": m.created_at_ms }))
            }
            _ => None,
        },
        None => None,
    };
    json!({
        "event": h.event.as_str(),
        "old_text": h.old_text,
        "new_text": h.new_text,
        "reason": h.reason,
        "actor": h.actor,
        "at_ms": h.at_ms,
        "place": place,
        "message": message,
    })
}

/// Where a conversation is, in words.
fn place_name(platform: &str, channel: &str, kind: ChannelKind) -> String {
    match platform {
        PLATFORM if channel.starts_with("page:") => "the web page".to_owned(),
        PLATFORM => "the API".to_owned(),
        "cli" => "the terminal".to_owned(),
        other => {
            let mut name = other.to_owned();
            if let Some(first) = name.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            match kind {
                ChannelKind::Direct => format!("{name} (direct message)"),
                ChannelKind::Group => format!("{name} (group)"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_named_for_people() {
        assert_eq!(
            place_name("web", "page:owner", ChannelKind::Direct),
            "the web page"
        );
        assert_eq!(place_name("web", "api:ann", ChannelKind::Direct), "the API");
        assert_eq!(
            place_name("cli", "terminal", ChannelKind::Direct),
            "the terminal"
        );
        assert_eq!(
            place_name("discord", "123", ChannelKind::Group),
            "Discord (group)"
        );
        assert_eq!(
            place_name("telegram", "9", ChannelKind::Direct),
            "Telegram (direct message)"
        );
    }

    #[test]
    fn search_shows_the_matches_not_everything() {
        // A keyword match (cosine + 1) far above mere neighbours (cosine only).
        assert_eq!(relevant(&[1.4, 1.1, 0.3, 0.2]), 2);
        // Meaning alone: the close ones stay.
        assert_eq!(relevant(&[0.55, 0.5, 0.2]), 2);
        assert_eq!(relevant(&[0.5]), 1);
        assert_eq!(relevant(&[]), 0);
        assert_eq!(relevant(&[0.0, 0.0]), 0);
    }

    #[test]
    fn memory_text_is_checked() {
        assert_eq!(checked_text("  tea  ").ok(), Some("tea"));
        assert!(checked_text("   ").is_err());
        assert!(checked_text(&"x".repeat(MAX_TEXT + 1)).is_err());
    }
}

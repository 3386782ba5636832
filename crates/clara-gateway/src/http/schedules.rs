//! `/api/schedules`: a person's reminders and scheduled tasks, and where
//! their alerts go — the page's Reminders panel, and API callers.
//!
//! Everything goes through the runtime's [`ScheduleBook`], the one place
//! schedules are made, so the page, the `schedule__*` tools and `clara
//! schedule` agree on time zones, wording and who may touch what. What is made
//! here is delivered to the person's web page conversation. A person reaches
//! only their own schedules; any other id is answered as if it did not exist.

use crate::http::access::{ApiAccess, ApiPath, ApiQuery, JsonBody};
use crate::http::errors::ApiError;
use crate::http::person::{PLATFORM, Person};
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clara_core::schedule::{QuietHours, parse_time_zone};
use clara_core::{ConversationId, UserId};
use clara_runtime::schedule_book::AlertSettingsView;
use clara_runtime::{ScheduleBookError, ScheduleRequest};
use clara_store::ScheduleKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest reminder text or task prompt accepted, in characters.
const MAX_TEXT: usize = 2_000;
/// The longest `when`, time zone or quiet-hours text accepted, in characters.
const MAX_FIELD: usize = 200;

/// Query naming the person, for API callers.
#[derive(Deserialize, Default)]
pub(crate) struct UserQuery {
    #[serde(default)]
    user: Option<String>,
}

/// The person's settings as the panel shows them: the book's words, and
/// whether alerts come to this page.
#[derive(Serialize)]
struct SettingsView {
    #[serde(flatten)]
    words: AlertSettingsView,
    alerts_here: bool,
}

/// `GET /api/schedules`: the person's active reminders and tasks, oldest
/// first, and their settings.
pub(crate) async fn list(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let person = access.person(&state, query.user.as_deref(), &headers)?;
    // A person Clara has not met has nothing scheduled: look, never create.
    let Some(user) = known_user(&state, &person).await? else {
        let settings = SettingsView {
            words: AlertSettingsView {
                time_zone: None,
                alerts_to: "the direct conversation they last wrote in".to_owned(),
                quiet_hours: None,
            },
            alerts_here: false,
        };
        return Ok(Json(
            json!({ "object": "list", "data": [], "settings": settings }),
        ));
    };
    let book = &state.schedules;
    let data: Vec<_> = book
        .list(Some(user), false)
        .await
        .map_err(|e| book_error(e, None))?
        .iter()
        .map(|s| book.view(s))
        .collect();
    let settings = settings_view(&state, &person, user).await?;
    Ok(Json(
        json!({ "object": "list", "data": data, "settings": settings }),
    ))
}

/// The body of `POST /api/schedules`.
#[derive(Deserialize)]
pub(crate) struct NewScheduleForm {
    kind: String,
    text: String,
    when: String,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// `POST /api/schedules`: a reminder or task, delivered to the person's web
/// page conversation.
pub(crate) async fn add(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    JsonBody(form): JsonBody<NewScheduleForm>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let person = access.person(&state, form.user.as_deref(), &headers)?;
    let kind = match form.kind.trim() {
        "reminder" => ScheduleKind::Reminder,
        "task" => ScheduleKind::Task,
        other => {
            return Err(ApiError::invalid(format!(
                "{other:?} is not a kind of schedule; use reminder or task."
            ))
            .with_param("kind"));
        }
    };
    if form.text.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid(format!(
            "A reminder or task holds at most {MAX_TEXT} characters."
        ))
        .with_param("text"));
    }
    check_length("when", &form.when)?;
    if let Some(zone) = &form.time_zone {
        check_length("time_zone", zone)?;
    }
    let user = met_user(&state, &person).await?;
    let conversation = page_conversation(&state, &person).await?;
    let book = &state.schedules;
    let made = book
        .add(ScheduleRequest {
            user,
            person: &person.name,
            conversation,
            kind,
            when: &form.when,
            text: &form.text,
            time_zone: form.time_zone.as_deref(),
        })
        .await
        .map_err(|e| book_error(e, Some(param_of_add(&form))))?;
    tracing::info!(schedule = %made.id.short(), kind = kind.as_str(), person = %person.id, "schedule made over HTTP");
    let view = serde_json::to_value(book.view(&made))
        .map_err(|e| ApiError::internal("show the schedule", &e))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Which field a failed `add` was most likely about.
fn param_of_add(form: &NewScheduleForm) -> &'static str {
    match form.time_zone.as_deref().map(str::trim) {
        Some(zone) if !zone.is_empty() && parse_time_zone(zone).is_err() => "time_zone",
        _ if form.text.trim().is_empty() => "text",
        _ => "when",
    }
}

/// `DELETE /api/schedules/{id}`: cancels one of the person's schedules.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Value>, ApiError> {
    let person = access.person(&state, query.user.as_deref(), &headers)?;
    let not_found = || ApiError::not_found(format!("There is no reminder or task {id} of yours."));
    let user = known_user(&state, &person).await?.ok_or_else(not_found)?;
    let book = &state.schedules;
    let cancelled = book.cancel(Some(user), &id).await.map_err(|e| match e {
        ScheduleBookError::NotFound(_) => not_found(),
        other => book_error(other, None),
    })?;
    tracing::info!(schedule = %cancelled.id.short(), person = %person.id, "schedule cancelled over HTTP");
    Ok(Json(json!({
        "id": cancelled.id.short(),
        "object": "schedule",
        "cancelled": true,
    })))
}

/// The body of `PUT /api/schedules/settings`.
#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    time_zone: Option<String>,
    /// `22:00-07:00`, or `off`.
    #[serde(default)]
    quiet_hours: Option<String>,
    /// Whether alerts go to this person's web page conversation.
    #[serde(default)]
    alerts_here: Option<bool>,
    #[serde(default)]
    user: Option<String>,
}

/// `PUT /api/schedules/settings`: the person's time zone, quiet hours and
/// whether alerts come to the page. Absent fields stay as they are.
pub(crate) async fn settings(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    JsonBody(form): JsonBody<SettingsForm>,
) -> Result<Json<Value>, ApiError> {
    let person = access.person(&state, form.user.as_deref(), &headers)?;
    let time_zone = form
        .time_zone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty());
    let quiet_hours = form
        .quiet_hours
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    // All of it is checked before any of it is written: a wrong quiet-hours
    // range does not leave a changed time zone behind.
    if let Some(zone) = time_zone {
        check_length("time_zone", zone)?;
        parse_time_zone(zone)
            .map_err(|e| ApiError::invalid(e.to_string()).with_param("time_zone"))?;
    }
    if let Some(quiet) = quiet_hours {
        check_length("quiet_hours", quiet)?;
        if !is_off(quiet) {
            QuietHours::parse(quiet)
                .map_err(|e| ApiError::invalid(e.to_string()).with_param("quiet_hours"))?;
        }
    }
    let user = met_user(&state, &person).await?;
    let book = &state.schedules;
    if let Some(zone) = time_zone {
        book.set_time_zone(user, zone)
            .await
            .map_err(|e| book_error(e, Some("time_zone")))?;
    }
    let page = page_conversation(&state, &person).await?;
    let alerts_to = (form.alerts_here == Some(true)).then_some(page);
    if alerts_to.is_some() || quiet_hours.is_some() {
        book.set_alerts(user, alerts_to, quiet_hours)
            .await
            .map_err(|e| book_error(e, Some("quiet_hours")))?;
    }
    if form.alerts_here == Some(false) {
        // Back to the default, unless they had chosen somewhere other than this page.
        book.reset_alerts_to(user, Some(page))
            .await
            .map_err(|e| book_error(e, None))?;
    }
    let view = settings_view(&state, &person, user).await?;
    serde_json::to_value(view)
        .map(Json)
        .map_err(|e| ApiError::internal("show the settings", &e))
}

fn is_off(text: &str) -> bool {
    text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none")
}

fn check_length(param: &'static str, text: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_FIELD {
        return Err(
            ApiError::invalid(format!("`{param}` holds at most {MAX_FIELD} characters."))
                .with_param(param),
        );
    }
    Ok(())
}

/// The person's settings, with whether alerts come to their page.
async fn settings_view(
    state: &AppState,
    person: &Person,
    user: UserId,
) -> Result<SettingsView, ApiError> {
    let words = state
        .schedules
        .alert_settings(user)
        .await
        .map_err(|e| book_error(e, None))?;
    let chosen = state
        .store
        .person_settings(user)
        .await
        .map_err(|e| ApiError::internal("read the settings", &e))?
        .alerts_to;
    let alerts_here = match chosen {
        Some(conversation) => conversation == page_conversation(state, person).await?,
        None => false,
    };
    Ok(SettingsView { words, alerts_here })
}

/// The person's user, if Clara has met them.
async fn known_user(state: &AppState, person: &Person) -> Result<Option<UserId>, ApiError> {
    state
        .store
        .find_user(PLATFORM, &person.id)
        .await
        .map_err(|e| ApiError::internal("look the person up", &e))
}

/// The person's user, made on first use (a task needs them known on the
/// `web` platform to become their thought).
async fn met_user(state: &AppState, person: &Person) -> Result<UserId, ApiError> {
    state
        .store
        .resolve_user(PLATFORM, &person.id, &person.name)
        .await
        .map_err(|e| ApiError::internal("record the person", &e))
}

/// The person's web page conversation: where what they schedule here is said.
async fn page_conversation(state: &AppState, person: &Person) -> Result<ConversationId, ApiError> {
    state
        .store
        .resolve_conversation(&person.page())
        .await
        .map_err(|e| ApiError::internal("open the conversation", &e))
}

/// The book's sentence as a 400 (naming `param`), a 404 for an unknown id,
/// and a 500 when the store failed.
fn book_error(error: ScheduleBookError, param: Option<&'static str>) -> ApiError {
    match error {
        ScheduleBookError::Store(e) => ApiError::internal("reach the schedules", &e),
        ScheduleBookError::NotFound(_) => ApiError::not_found(error.to_string()),
        // The book words this one for the model, which is to ask the person;
        // over HTTP the caller is the one to pass it.
        ScheduleBookError::NoTimeZone(_) => ApiError::invalid(
            "Your time zone is not known yet: pass time_zone with it, e.g. \"Europe/Berlin\".",
        )
        .with_param("time_zone")
        .with_code("time_zone_unknown"),
        other => {
            let e = ApiError::invalid(capitalised(&other.to_string()));
            match param {
                Some(param) => e.with_param(param),
                None => e,
            }
        }
    }
}

/// The sentence with a capital first letter ("the reminder's text is empty").
fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(
            capitalised("the reminder's text is empty"),
            "The reminder's text is empty"
        );
        assert_eq!(capitalised("\"x\" is bad"), "\"x\" is bad");
        assert_eq!(capitalised(""), "");
    }

    #[test]
    fn errors_keep_the_books_sentence_and_unknown_ids_are_404() {
        let time = ScheduleBookError::Time(clara_core::schedule::ScheduleError::InPast(
            "yesterday at 9".into(),
        ));
        let e = book_error(time, Some("when"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("when"));
        assert!(e.message.contains("already in the past"), "{}", e.message);
        let missing = book_error(ScheduleBookError::NotFound("abc".into()), None);
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let zone = book_error(ScheduleBookError::NoTimeZone("Ann".into()), Some("when"));
        assert_eq!(zone.param.as_deref(), Some("time_zone"));
        assert!(!zone.message.contains("ask them"));
    }
}

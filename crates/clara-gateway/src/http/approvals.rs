//! The owner's answer to a tool approval, from the web page's buttons.
//!
//! The question reached the page through the hub (`PageEvent::Ask`); a button
//! posts `{id, verdict}` here, and the answer goes to the engine as the page's
//! person in the page's conversation, exactly as a typed `/approve ID` would.
//! The engine decides whether it counts (only an owner's, in a direct
//! conversation); the question's card then closes with `ask_closed`.

use crate::http::access::{JsonBody, PageAccess};
use crate::http::chat::web_person;
use crate::http::errors::ApiError;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clara_core::approval::{ApprovalAnswer, ApprovalId, Verdict};
use clara_core::port::Assistant;
use clara_core::{EventId, MessageId};
use serde::Deserialize;
use serde_json::json;

/// The prefix of the platform event id of an answer from the page.
const ANSWER_EVENT_PREFIX: &str = "web-approval-";

/// The body of `POST /api/chat/approvals`.
#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    /// The question's id (eight hex digits).
    id: String,
    /// `once` (or `approve`), `always` or `deny`.
    verdict: String,
}

/// `POST /api/chat/approvals`: answers an open question.
pub(crate) async fn answer(
    State(state): State<AppState>,
    _access: PageAccess,
    JsonBody(form): JsonBody<AnswerForm>,
) -> Result<Response, ApiError> {
    let id = ApprovalId::parse(&form.id).ok_or_else(|| {
        ApiError::invalid("`id` must be the question's eight hex digits.").with_param("id")
    })?;
    let verdict = Verdict::parse(&form.verdict).ok_or_else(|| {
        ApiError::invalid("`verdict` must be once, always or deny.").with_param("verdict")
    })?;
    let person = web_person(&state);
    let conversation = person.page();
    // Checked here so a second click, or another tab's, gets a clear answer
    // rather than a sentence from Clara in the chat. A question closing right
    // now still reaches the engine, which says it is no longer open.
    if !state.hub.is_asking(&conversation.channel, &id) {
        return Err(ApiError::conflict(
            "That question is no longer open: it was answered, timed out or withdrawn.",
            "question_closed",
        ));
    }
    let event = EventId(format!("{ANSWER_EVENT_PREFIX}{}", MessageId::new()));
    state
        .engine
        .answer_approval(
            &conversation,
            &person.author(),
            ApprovalAnswer { id, verdict },
            event,
        )
        .await?;
    metrics::counter!("clara_web_approvals_total", "verdict" => verdict.as_str()).increment(1);
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "sent" }))).into_response())
}

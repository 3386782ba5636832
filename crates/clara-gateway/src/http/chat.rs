//! The web page's conversation: a stream of what happens in it (server-sent
//! events), and the person's actions — send (with files), stop, typing, new
//! session.
//!
//! The stream opens with `hello`: the conversation so far (since the last new
//! session) and the reply being written, if any; then live events. Every tab of
//! the person sees the same thing, and a reload picks up where it was.

use crate::http::access::{PageAccess, SMALL_BODY, parse_json, read_json_body};
use crate::http::attachments::{self, Upload, UploadLimits};
use crate::http::errors::ApiError;
use crate::http::hub::{AttachedFile, PageEvent, Snapshot};
use crate::http::person::Person;
use crate::http::state::AppState;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use clara_core::{EventId, FileBlob, Inbound, MessageId, Permission, Role, Tier, ToolRun};
use clara_runtime::Accepted;
use clara_store::{Store, StoreError, StoredMessage};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

/// The prefix of the platform event id of a message sent from the page.
const PAGE_EVENT_PREFIX: &str = "web-";

/// How many messages of the current conversation a page shows.
const HISTORY: u32 = 200;

/// The person of the web page.
pub(crate) fn web_person(state: &AppState) -> Person {
    Person {
        id: state.config.person.id.clone(),
        name: state.config.person.name.clone(),
    }
}

/// A message as the page shows it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct ShownMessage {
    pub(crate) id: String,
    pub(crate) role: &'static str,
    pub(crate) text: String,
    pub(crate) at_ms: i64,
    pub(crate) thought: String,
    /// The page's id for a message sent from the page (so a tab can tell its own
    /// messages in the history).
    pub(crate) client_id: Option<String>,
    /// For Clara's messages: the tools her reply used, in order (absent on the
    /// person's messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tools: Option<Vec<ShownTool>>,
}

/// A tool run as the history shows it. Arguments and results are untrusted text
/// (the page renders them as text, never as markup).
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct ShownTool {
    pub(crate) name: String,
    pub(crate) ok: bool,
    /// `{"by":"policy"}`, `{"by":"owner","owner":"telegram:1","always":false}` or
    /// `{"by":"refused","reason":"…"}`.
    pub(crate) permission: Permission,
    pub(crate) arguments: String,
    pub(crate) result: String,
    pub(crate) started_at_ms: i64,
    pub(crate) duration_ms: u64,
}

impl From<ToolRun> for ShownTool {
    fn from(run: ToolRun) -> Self {
        Self {
            name: run.name,
            ok: run.ok,
            permission: run.permission,
            arguments: run.arguments,
            result: run.result,
            started_at_ms: run.started_at_ms,
            duration_ms: run.duration_ms,
        }
    }
}

/// Messages as the history shows them, Clara's with the tools their replies
/// used (one read for all of them).
pub(crate) async fn shown_messages(
    store: &Store,
    messages: &[StoredMessage],
) -> Result<Vec<ShownMessage>, StoreError> {
    let replies: Vec<MessageId> = messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.id)
        .collect();
    let mut runs = if replies.is_empty() {
        HashMap::new()
    } else {
        store.tool_runs_for_messages(&replies).await?
    };
    Ok(messages
        .iter()
        .map(|m| {
            let mut shown = ShownMessage::from(m);
            if m.role == Role::Assistant {
                let tools = runs.remove(&m.id).unwrap_or_default();
                shown.tools = Some(tools.into_iter().map(ShownTool::from).collect());
            }
            shown
        })
        .collect())
}

impl From<&StoredMessage> for ShownMessage {
    fn from(m: &StoredMessage) -> Self {
        Self {
            id: m.id.to_string(),
            role: m.role.as_str(),
            text: m.content.clone(),
            at_ms: m.created_at_ms,
            thought: m.thought.to_string(),
            client_id: m
                .event_id
                .as_ref()
                .and_then(|e| e.0.strip_prefix(PAGE_EVENT_PREFIX))
                .map(str::to_owned),
            tools: None,
        }
    }
}

#[derive(Serialize)]
struct Hello<'a> {
    r#type: &'static str,
    messages: Vec<ShownMessage>,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// `GET /api/chat/events`: the conversation as server-sent events.
pub(crate) async fn events(
    State(state): State<AppState>,
    _access: PageAccess,
) -> Result<Response, ApiError> {
    let conversation = web_person(&state).page();
    // Subscribe first, then read the history: an answer that ends in between is
    // in the snapshot (which stays until the next answer starts) and perhaps in
    // the history too; the page keeps one of each thought.
    let (rx, snapshot) = state.hub.subscribe(&conversation.channel);
    let store = &state.store;
    let id = store
        .resolve_conversation(&conversation)
        .await
        .map_err(|e| ApiError::internal("open the conversation", &e))?;
    let stored = store
        .recent_messages(id, i64::MAX, HISTORY, HISTORY)
        .await
        .map_err(|e| ApiError::internal("read the conversation", &e))?;
    let messages = shown_messages(store, &stored)
        .await
        .map_err(|e| ApiError::internal("read the conversation's tool runs", &e))?;
    let hello = Hello {
        r#type: "hello",
        messages,
        snapshot: &snapshot,
    };
    let first = Event::default().data(serde_json::to_string(&hello).unwrap_or_default());
    let stream = futures::stream::once(async move { Ok::<_, Infallible>(first) })
        .chain(live(rx))
        .take_until(state.stop.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The room's events, until the tab falls behind (then one `resync`) or the room
/// closes.
fn live(
    rx: broadcast::Receiver<PageEvent>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let resync = serde_json::to_string(&PageEvent::Resync).unwrap_or_default();
                return Some((Ok(Event::default().data(resync)), None));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let data = serde_json::to_string(&event).unwrap_or_default();
        Some((Ok(Event::default().data(data)), Some(rx)))
    })
}

/// The body of `POST /api/chat/messages`.
#[derive(Deserialize)]
pub(crate) struct SendForm {
    text: String,
    /// `low`, `mid`, `high`, or absent for Clara's choice.
    #[serde(default)]
    tier: Option<String>,
    /// The page's id for this message: a retry with the same id is taken once.
    #[serde(default)]
    client_id: Option<String>,
    /// Attached files, their data in base64.
    #[serde(default)]
    files: Vec<Upload>,
}

/// `POST /api/chat/messages`.
pub(crate) async fn send(
    State(state): State<AppState>,
    _access: PageAccess,
    request: Request,
) -> Result<Response, ApiError> {
    let limits = UploadLimits {
        per_file: state.config.max_file_bytes,
        per_message: state.config.max_message_file_bytes,
    };
    let (parts, body) = request.into_parts();
    let bytes = read_json_body(&parts.headers, body, limits.body_bytes())
        .await
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => limits.body_too_large(),
            _ => e,
        })?;
    let form: SendForm = parse_json(&bytes)?;
    drop(bytes);
    // Room for files is no room for a longer text.
    if form.text.len() > SMALL_BODY {
        return Err(ApiError::too_large(SMALL_BODY));
    }
    let files = attachments::read_uploads(form.files, limits)?;
    let person = web_person(&state);
    let tier = match form.tier.as_deref().map(str::trim) {
        None | Some("" | "auto") => None,
        Some(name) => Some(Tier::parse(name).ok_or_else(|| {
            ApiError::invalid(format!(
                "{name:?} is not a tier; use low, mid, high or auto."
            ))
            .with_param("tier")
        })?),
    };
    let client_id = form.client_id.filter(|id| {
        !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let event = match &client_id {
        Some(id) => format!("{PAGE_EVENT_PREFIX}{id}"),
        None => format!("{PAGE_EVENT_PREFIX}{}", MessageId::new()),
    };
    let now = clara_runtime::clock::now_ms();
    let conversation = person.page();
    let attached: Vec<AttachedFile> = files
        .iter()
        .map(|f| AttachedFile {
            name: f.name.clone(),
            media_type: f.media_type.clone(),
            size: f.data.len(),
        })
        .collect();
    let inbound = page_inbound(&person, EventId(event), form.text, now, tier, files);
    let text = inbound.text.clone();
    let accepted = state.engine.submit(inbound).await?;
    metrics::counter!("clara_web_messages_total").increment(1);
    let status = match accepted {
        Accepted::Queued => {
            state.hub.announce(
                &conversation.channel,
                PageEvent::UserMessage {
                    text,
                    at_ms: now,
                    client_id,
                    files: attached,
                },
            );
            state
                .hub
                .announce(&conversation.channel, PageEvent::Pending);
            "queued"
        }
        Accepted::Duplicate => "duplicate",
        Accepted::Stopped => {
            state
                .hub
                .announce(&conversation.channel, PageEvent::Stopped);
            "stopped"
        }
    };
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": status }))).into_response())
}

/// What the page's `person` said: `text` with `files` (the pictures among them
/// also as images, so the model sees them). A message of only files says so in
/// its text, for the engine takes no empty message.
fn page_inbound(
    person: &Person,
    event_id: EventId,
    text: String,
    now: i64,
    tier: Option<Tier>,
    files: Vec<FileBlob>,
) -> Inbound {
    let text = if text.trim().is_empty() && !files.is_empty() {
        attachments::files_only_text(&files)
    } else {
        text
    };
    Inbound {
        event_id,
        conversation: person.page(),
        author: person.author(),
        text,
        sent_at_ms: now,
        tier,
        images: attachments::images_of(&files),
        files,
        replying_to: Vec::new(),
    }
}

/// `POST /api/chat/stop`: stops the reply being written (and what is waiting).
pub(crate) async fn stop(State(state): State<AppState>, _access: PageAccess) -> StatusCode {
    let person = web_person(&state);
    let conversation = person.page();
    state.engine.stop(&conversation, &person.author()).await;
    // Whatever was waiting to be answered is dropped; a reply in flight ends with
    // its own `cancelled`.
    state
        .hub
        .announce(&conversation.channel, PageEvent::Stopped);
    StatusCode::NO_CONTENT
}

/// `POST /api/chat/typing`: the person is typing (Clara waits for them to finish).
pub(crate) async fn typing(State(state): State<AppState>, _access: PageAccess) -> StatusCode {
    let person = web_person(&state);
    state.engine.typing(&person.page(), &person.author()).await;
    StatusCode::NO_CONTENT
}

/// `POST /api/chat/new-session`: ends the session; the page starts empty.
pub(crate) async fn new_session(
    State(state): State<AppState>,
    _access: PageAccess,
) -> Result<StatusCode, ApiError> {
    let person = web_person(&state);
    let conversation = person.page();
    state
        .engine
        .new_session(&conversation, &person.author())
        .await?;
    state
        .hub
        .announce(&conversation.channel, PageEvent::Cleared);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::Image;

    fn ann() -> Person {
        Person {
            id: "ann".into(),
            name: "Ann".into(),
        }
    }

    #[test]
    fn attached_files_go_in_the_inbound_and_pictures_also_as_images() {
        let csv = FileBlob::new("data.csv", b"x,y\n1,2\n".to_vec());
        let png = FileBlob::new("plot.png", vec![0x89, b'P', b'N', b'G']);
        let inbound = page_inbound(
            &ann(),
            EventId("web-1".into()),
            "Look at these".into(),
            5,
            Some(Tier::High),
            vec![csv.clone(), png.clone()],
        );
        assert_eq!(inbound.files, vec![csv, png]);
        assert_eq!(
            inbound.images,
            vec![Image::Bytes {
                media_type: "image/png".into(),
                data: vec![0x89, b'P', b'N', b'G'],
            }]
        );
        assert_eq!(inbound.text, "Look at these");
        assert_eq!(inbound.conversation.channel, "page:ann");
        assert_eq!(inbound.tier, Some(Tier::High));
    }

    #[test]
    fn a_message_of_only_files_says_what_was_sent() {
        let inbound = page_inbound(
            &ann(),
            EventId("web-2".into()),
            "  ".into(),
            5,
            None,
            vec![FileBlob::new("notes.txt", b"hi".to_vec())],
        );
        assert_eq!(inbound.text, "(sent the file notes.txt)");
        assert!(inbound.images.is_empty());
        let plain = page_inbound(
            &ann(),
            EventId("web-3".into()),
            "hi".into(),
            5,
            None,
            vec![],
        );
        assert!(plain.files.is_empty() && plain.text == "hi");
    }
}

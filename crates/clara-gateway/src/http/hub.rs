//! The `web` platform's [`OutboundSink`]: where the engine's replies for web
//! pages and API requests arrive, and how they fan out.
//!
//! Each conversation has a room. A web page's open tabs subscribe to their room's
//! broadcast of [`PageEvent`]s; a `/v1/chat/completions` request waiting for its
//! answer registers as the room's one API listener and receives the raw
//! [`Outbound`]s. The room also remembers the reply being written (or just
//! written), so a page that (re)connects mid-answer shows it whole.
//!
//! Files Clara sends (`Outbound::File`) are kept on the room's [`Shelf`] (page
//! rooms only: an API client gets the raw `Outbound`), and the tabs are told
//! where to fetch them; a running tool's live output (`Outbound::ToolProgress`)
//! goes to the tabs and is remembered with the tool, so a late tab shows it.
//!
//! Tool approvals: the engine asks the owner in their direct conversation,
//! which on the web is the person's page (a question addressed to the bare
//! person id, as Telegram's DMs are, or to their API conversation, goes to the
//! page too: only the page can answer). The room keeps its open questions, so a
//! tab that connects later shows them; API clients never see them.

use crate::http::shelf::{KeptFile, Shelf, ShelfLimits, ShownFile, new_file_id};
use async_trait::async_trait;
use clara_core::approval::{ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ConversationRef, Outbound, ThoughtId};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Events a page tab may fall behind by before it is told to reload.
const PAGE_BACKLOG: usize = 1024;
/// How long a reply waits for a slow API client to take an event before the
/// event is dropped (the client gets what the connection could carry).
const API_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Rooms kept before idle ones are pruned.
const MAX_IDLE_ROOMS: usize = 512;
/// The most of a tool's live output the tabs are sent and a room remembers, in
/// characters: its tail (the engine sends a tail already; this bounds a room).
const MAX_PROGRESS_CHARS: usize = 4000;

/// What a web page's tabs are told, as JSON with a `type` field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum PageEvent {
    /// The person said something (shown in their other tabs).
    UserMessage {
        text: String,
        at_ms: i64,
        client_id: Option<String>,
        /// The files the person attached (names and sizes only).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        files: Vec<AttachedFile>,
    },
    /// A message was taken; Clara will answer (show that she is on it).
    Pending,
    /// More text of the answer to `thought`.
    Delta { thought: ThoughtId, text: String },
    /// A tool started for `thought`.
    ToolStarted { thought: ThoughtId, name: String },
    /// A tool finished.
    ToolFinished {
        thought: ThoughtId,
        name: String,
        ok: bool,
    },
    /// What the running tool `name` printed lately (its tail; untrusted text).
    ToolProgress {
        thought: ThoughtId,
        name: String,
        text: String,
    },
    /// Clara sent a file with the answer to `thought`: where to fetch it.
    File(ShownFile),
    /// The answer is complete.
    End { thought: ThoughtId },
    /// The answer was cut short.
    Cancelled { thought: ThoughtId },
    /// The answer failed; `message` is for the person.
    Error { thought: ThoughtId, message: String },
    /// A stop came before any answer started: nothing will come.
    Stopped,
    /// A new session started: clear the page.
    Cleared,
    /// The tab fell behind; it should reconnect for a fresh start.
    Resync,
    /// Clara asks the owner whether a tool may run (the fields are untrusted
    /// text: the page shows them as text only).
    Ask { prompt: ApprovalPrompt },
    /// A question was answered, timed out or withdrawn.
    AskClosed {
        id: ApprovalId,
        /// `approved` or `denied` (a timeout and a withdrawal deny).
        result: &'static str,
        /// One line saying how it ended ([`ApprovalOutcome::describe`]).
        outcome: &'static str,
    },
}

/// A file the person attached to a message, as their other tabs are told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct AttachedFile {
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) size: usize,
}

/// The reply being written, or the last one written, in a conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct LiveReply {
    pub(crate) thought: ThoughtId,
    pub(crate) text: String,
    pub(crate) tools: Vec<ToolUse>,
    /// `streaming`, `done`, `cancelled` or `failed`.
    pub(crate) state: &'static str,
    /// The failure's sentence, when it failed.
    pub(crate) error: Option<String>,
}

/// A tool a reply used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ToolUse {
    pub(crate) name: String,
    /// `running`, `ok` or `failed`.
    pub(crate) state: &'static str,
    /// What it printed lately, when it reports live output.
    pub(crate) output: Option<String>,
}

/// What a tab learns when it connects.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Snapshot {
    pub(crate) live: Option<LiveReply>,
    pub(crate) pending: bool,
    /// The questions to the owner still open, oldest first.
    pub(crate) asks: Vec<ApprovalPrompt>,
    /// The files Clara sent that are still kept, oldest first.
    pub(crate) files: Vec<ShownFile>,
}

struct Room {
    page: broadcast::Sender<PageEvent>,
    live: Option<LiveReply>,
    pending: bool,
    api: Option<mpsc::Sender<Outbound>>,
    asks: Vec<ApprovalPrompt>,
    /// The files sent here; a page's room only.
    shelf: Option<Shelf>,
}

impl Room {
    fn new(shelf: Option<Shelf>) -> Self {
        Self {
            page: broadcast::channel(PAGE_BACKLOG).0,
            live: None,
            pending: false,
            api: None,
            asks: Vec::new(),
            shelf,
        }
    }

    fn is_idle(&self) -> bool {
        self.page.receiver_count() == 0
            && self.api.is_none()
            && self.asks.is_empty()
            && self.live.as_ref().is_none_or(|l| l.state != "streaming")
    }

    /// Updates what the room remembers, and returns the event for its tabs.
    fn apply(&mut self, outbound: &Outbound) -> Option<PageEvent> {
        let event = match outbound {
            Outbound::File {
                thought,
                file,
                caption,
            } => {
                let shelf = self.shelf.as_mut()?;
                PageEvent::File(shelf.keep(new_file_id(), *thought, file.clone(), caption.clone()))
            }
            other => page_event(other)?,
        };
        if let Some(thought) = outbound.thought() {
            self.pending = false;
            let fresh = self.live.as_ref().is_none_or(|l| l.thought != thought);
            if fresh {
                self.live = Some(LiveReply {
                    thought,
                    text: String::new(),
                    tools: Vec::new(),
                    state: "streaming",
                    error: None,
                });
            }
        }
        if let Some(live) = &mut self.live {
            match outbound {
                Outbound::Delta { text, .. } => live.text.push_str(text),
                Outbound::ToolStarted { name, .. } => live.tools.push(ToolUse {
                    name: name.clone(),
                    state: "running",
                    output: None,
                }),
                Outbound::ToolProgress { name, text, .. } => {
                    if let Some(tool) = live
                        .tools
                        .iter_mut()
                        .rev()
                        .find(|t| t.name == *name && t.state == "running")
                    {
                        tool.output = Some(tail(text, MAX_PROGRESS_CHARS).to_owned());
                    }
                }
                Outbound::ToolFinished { name, ok, .. } => {
                    if let Some(tool) = live
                        .tools
                        .iter_mut()
                        .find(|t| t.name == *name && t.state == "running")
                    {
                        tool.state = if *ok { "ok" } else { "failed" };
                    }
                }
                Outbound::End { .. } => live.state = "done",
                Outbound::Cancelled { .. } => live.state = "cancelled",
                Outbound::Error { message, .. } => {
                    live.state = "failed";
                    live.error = Some(message.clone());
                }
                _ => {}
            }
        }
        Some(event)
    }
}

fn page_event(outbound: &Outbound) -> Option<PageEvent> {
    Some(match outbound.clone() {
        Outbound::Delta { thought, text } => PageEvent::Delta { thought, text },
        // The web page streams; these come only if the delivery mode changes.
        Outbound::Send { thought, text } => PageEvent::Delta { thought, text },
        // Questions are the page room's own (`Hub::deliver`), never a reply's.
        Outbound::Edit { .. } | Outbound::Typing => return None,
        Outbound::Ask { .. } | Outbound::AskClosed { .. } => return None,
        Outbound::End { thought } => PageEvent::End { thought },
        Outbound::ToolStarted { thought, name } => PageEvent::ToolStarted { thought, name },
        Outbound::ToolFinished { thought, name, ok } => {
            PageEvent::ToolFinished { thought, name, ok }
        }
        Outbound::ToolProgress {
            thought,
            name,
            text,
        } => PageEvent::ToolProgress {
            thought,
            name,
            text: tail(&text, MAX_PROGRESS_CHARS).to_owned(),
        },
        // Kept on the room's shelf first (`Room::apply`).
        Outbound::File { .. } => return None,
        Outbound::Cancelled { thought } => PageEvent::Cancelled { thought },
        Outbound::Error { thought, message } => PageEvent::Error { thought, message },
    })
}

/// The last `max` characters of `text` (all of it when shorter).
fn tail(text: &str, max: usize) -> &str {
    if max == 0 {
        return "";
    }
    match text.char_indices().rev().nth(max - 1) {
        Some((start, _)) => &text[start..],
        None => text,
    }
}

/// The rooms of every web conversation; the engine's sink for the `web` platform.
pub(crate) struct Hub {
    rooms: Mutex<HashMap<String, Room>>,
    /// How many files a page's room keeps.
    shelf: ShelfLimits,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(ShelfLimits {
            files: crate::http::config::DEFAULT_KEPT_FILES,
            bytes: crate::http::config::DEFAULT_KEPT_FILE_BYTES,
        })
    }
}

impl Hub {
    /// A hub whose page rooms keep files within `shelf`.
    pub(crate) fn new(shelf: ShelfLimits) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            shelf,
        }
    }

    fn with_room<R>(&self, channel: &str, f: impl FnOnce(&mut Room) -> R) -> R {
        let mut rooms = self.rooms.lock();
        if !rooms.contains_key(channel) && rooms.len() >= MAX_IDLE_ROOMS {
            rooms.retain(|_, room| !room.is_idle());
        }
        let limits = self.shelf;
        let room = rooms.entry(channel.to_owned()).or_insert_with(|| {
            // Only a page can fetch files; an API client gets them raw.
            Room::new(channel.starts_with("page:").then(|| Shelf::new(limits)))
        });
        f(room)
    }

    /// The file `id` sent in `channel`, if that room still keeps it.
    pub(crate) fn file(&self, channel: &str, id: &str) -> Option<KeptFile> {
        let rooms = self.rooms.lock();
        rooms.get(channel)?.shelf.as_ref()?.get(id)
    }

    /// Subscribes a tab to `channel`, with what it must show first. Taken
    /// together, so no event falls between the snapshot and the subscription.
    pub(crate) fn subscribe(&self, channel: &str) -> (broadcast::Receiver<PageEvent>, Snapshot) {
        self.with_room(channel, |room| {
            let snapshot = Snapshot {
                live: room.live.clone(),
                pending: room.pending,
                asks: room.asks.clone(),
                files: room.shelf.as_ref().map(Shelf::shown).unwrap_or_default(),
            };
            (room.page.subscribe(), snapshot)
        })
    }

    /// Tells `channel`'s tabs something that did not come from the engine.
    pub(crate) fn announce(&self, channel: &str, event: PageEvent) {
        self.with_room(channel, |room| {
            match &event {
                PageEvent::Pending => room.pending = true,
                PageEvent::Stopped => room.pending = false,
                PageEvent::Cleared => {
                    room.pending = false;
                    room.live = None;
                    if let Some(shelf) = &mut room.shelf {
                        shelf.clear();
                    }
                }
                _ => {}
            }
            let _ = room.page.send(event);
        });
    }

    /// Makes `tx` the API listener of `channel` (replacing any other).
    pub(crate) fn listen(&self, channel: &str, tx: mpsc::Sender<Outbound>) {
        self.with_room(channel, |room| room.api = Some(tx));
    }

    /// Removes `channel`'s API listener, if it is still `tx`.
    pub(crate) fn unlisten(&self, channel: &str, tx: &mpsc::Sender<Outbound>) {
        self.with_room(channel, |room| {
            if room.api.as_ref().is_some_and(|t| t.same_channel(tx)) {
                room.api = None;
            }
        });
    }

    /// Whether question `id` is open in `channel`'s room.
    pub(crate) fn is_asking(&self, channel: &str, id: &ApprovalId) -> bool {
        let rooms = self.rooms.lock();
        rooms
            .get(channel)
            .is_some_and(|room| room.asks.iter().any(|p| p.id == *id))
    }

    /// Records an open question in its page's room and shows it to the tabs.
    fn ask(&self, conversation: &ConversationRef, prompt: ApprovalPrompt) -> ApprovalId {
        let id = prompt.id.clone();
        self.with_room(&page_channel(&conversation.channel), |room| {
            if !room.asks.iter().any(|p| p.id == prompt.id) {
                room.asks.push(prompt.clone());
            }
            let _ = room.page.send(PageEvent::Ask { prompt });
        });
        id
    }

    /// Forgets a closed question and tells the tabs how it ended.
    fn close(&self, conversation: &ConversationRef, id: ApprovalId, outcome: &ApprovalOutcome) {
        self.with_room(&page_channel(&conversation.channel), |room| {
            room.asks.retain(|p| p.id != id);
            let result = match outcome {
                ApprovalOutcome::Answered(Verdict::Once | Verdict::Always) => "approved",
                _ => "denied",
            };
            let _ = room.page.send(PageEvent::AskClosed {
                id,
                result,
                outcome: outcome.describe(),
            });
        });
    }

    /// How many page tabs are connected, for `/metrics`.
    pub(crate) fn tabs(&self) -> usize {
        let rooms = self.rooms.lock();
        rooms.values().map(|r| r.page.receiver_count()).sum()
    }
}

#[async_trait]
impl OutboundSink for Hub {
    fn delivery(&self) -> Delivery {
        Delivery {
            mode: DeliveryMode::Stream,
            max_chars: usize::MAX,
        }
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        match outbound {
            // The question's id is its message id: `AskClosed` names it.
            Outbound::Ask { prompt } => {
                return Ok(Some(self.ask(conversation, prompt).to_string()));
            }
            Outbound::AskClosed {
                prompt, outcome, ..
            } => {
                self.close(conversation, prompt.id, &outcome);
                return Ok(None);
            }
            _ => {}
        }
        let api = self.with_room(&conversation.channel, |room| {
            if let Some(event) = room.apply(&outbound) {
                // No tab open is fine: the reply is stored and shown on the next visit.
                let _ = room.page.send(event);
            }
            room.api.clone()
        });
        if let Some(tx) = api {
            match tokio::time::timeout(API_SEND_TIMEOUT, tx.send(outbound)).await {
                Ok(Ok(())) | Ok(Err(_)) => {}
                Err(_) => {
                    return Err(SinkError::Failed(
                        "an API client stopped reading its answer".into(),
                    ));
                }
            }
        }
        Ok(None)
    }
}

/// The room of the page a question to `channel` belongs on: the engine
/// addresses an owner's DM by their bare id (`owner`), and their API
/// conversation (`api:owner`) cannot show buttons; both mean the page.
fn page_channel(channel: &str) -> String {
    if channel.starts_with("page:") {
        return channel.to_owned();
    }
    let person = channel.strip_prefix("api:").unwrap_or(channel);
    format!("page:{person}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn conv(channel: &str) -> ConversationRef {
        ConversationRef {
            platform: "web".into(),
            channel: channel.into(),
            kind: clara_core::ChannelKind::Direct,
        }
    }

    #[tokio::test]
    async fn tabs_get_events_and_a_late_tab_gets_the_reply_so_far() {
        let hub = Hub::default();
        let (mut early, snap) = hub.subscribe("page:ann");
        assert_eq!(snap, Snapshot::default());
        hub.announce("page:ann", PageEvent::Pending);
        let t = ThoughtId::new();
        for text in ["Hel", "lo"] {
            let delta = Outbound::Delta {
                thought: t,
                text: text.into(),
            };
            hub.deliver(&conv("page:ann"), delta).await.unwrap();
        }
        assert_eq!(early.recv().await.unwrap(), PageEvent::Pending);
        assert!(matches!(
            early.recv().await.unwrap(),
            PageEvent::Delta { .. }
        ));

        let (_late, snap) = hub.subscribe("page:ann");
        let live = snap.live.unwrap();
        assert_eq!((live.text.as_str(), live.state), ("Hello", "streaming"));
        assert!(!snap.pending, "the answer started");

        hub.deliver(&conv("page:ann"), Outbound::End { thought: t })
            .await
            .unwrap();
        let (_, snap) = hub.subscribe("page:ann");
        assert_eq!(snap.live.unwrap().state, "done");
    }

    #[tokio::test]
    async fn rooms_are_separate() {
        let hub = Hub::default();
        let (mut bob, _) = hub.subscribe("page:bob");
        let t = ThoughtId::new();
        hub.deliver(
            &conv("page:ann"),
            Outbound::Delta {
                thought: t,
                text: "for ann".into(),
            },
        )
        .await
        .unwrap();
        assert!(bob.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_api_listener_gets_raw_events_until_it_leaves() {
        let hub = Hub::default();
        let (tx, mut rx) = mpsc::channel(8);
        hub.listen("api:ann", tx.clone());
        let t = ThoughtId::new();
        hub.deliver(&conv("api:ann"), Outbound::End { thought: t })
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap(), Outbound::End { thought: t });
        hub.unlisten("api:ann", &tx);
        hub.deliver(&conv("api:ann"), Outbound::End { thought: t })
            .await
            .unwrap();
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn tools_and_failures_are_remembered() {
        let hub = Hub::default();
        let t = ThoughtId::new();
        let c = conv("page:ann");
        hub.deliver(
            &c,
            Outbound::ToolStarted {
                thought: t,
                name: "clara__current_time".into(),
            },
        )
        .await
        .unwrap();
        hub.deliver(
            &c,
            Outbound::ToolFinished {
                thought: t,
                name: "clara__current_time".into(),
                ok: true,
            },
        )
        .await
        .unwrap();
        hub.deliver(
            &c,
            Outbound::Error {
                thought: t,
                message: "The model is down.".into(),
            },
        )
        .await
        .unwrap();
        let live = hub.subscribe("page:ann").1.live.unwrap();
        assert_eq!(live.tools[0].state, "ok");
        assert_eq!(live.state, "failed");
        assert_eq!(live.error.as_deref(), Some("The model is down."));
        hub.announce("page:ann", PageEvent::Cleared);
        assert!(hub.subscribe("page:ann").1.live.is_none());
    }

    #[tokio::test]
    async fn live_output_and_files_reach_the_tabs_and_a_late_tab() {
        let hub = Hub::default();
        let (mut tab, _) = hub.subscribe("page:ann");
        let t = ThoughtId::new();
        let c = conv("page:ann");
        let name = "sandbox__run_python".to_owned();
        for outbound in [
            Outbound::ToolStarted {
                thought: t,
                name: name.clone(),
            },
            Outbound::ToolProgress {
                thought: t,
                name: name.clone(),
                text: "step 1\nstep 2".into(),
            },
            Outbound::File {
                thought: t,
                file: clara_core::FileBlob::new("chart.png", vec![1, 2, 3]),
                caption: Some("The chart".into()),
            },
        ] {
            hub.deliver(&c, outbound).await.unwrap();
        }
        assert!(matches!(
            tab.recv().await.unwrap(),
            PageEvent::ToolStarted { .. }
        ));
        assert_eq!(
            tab.recv().await.unwrap(),
            PageEvent::ToolProgress {
                thought: t,
                name: name.clone(),
                text: "step 1\nstep 2".into()
            }
        );
        let PageEvent::File(shown) = tab.recv().await.unwrap() else {
            panic!("a file event")
        };
        assert_eq!(
            (shown.name.as_str(), shown.size, shown.image),
            ("chart.png", 3, true)
        );
        assert_eq!(shown.url, format!("/api/chat/files/{}", shown.id));
        let json = serde_json::to_value(PageEvent::File(shown.clone())).unwrap();
        assert_eq!(json["type"], "file");
        assert_eq!(json["caption"], "The chart");
        assert_eq!(json["media_type"], "image/png");

        let (_, snap) = hub.subscribe("page:ann");
        let tool = &snap.live.unwrap().tools[0];
        assert_eq!(tool.output.as_deref(), Some("step 1\nstep 2"));
        assert_eq!(snap.files, vec![shown.clone()]);
        let kept = hub.file("page:ann", &shown.id).unwrap();
        assert_eq!(kept.data.as_ref(), &[1, 2, 3]);
        assert!(
            hub.file("page:bob", &shown.id).is_none(),
            "rooms are separate"
        );

        hub.announce("page:ann", PageEvent::Cleared);
        assert!(hub.file("page:ann", &shown.id).is_none());
        assert!(hub.subscribe("page:ann").1.files.is_empty());
    }

    #[tokio::test]
    async fn an_api_client_gets_files_raw_and_nothing_is_kept() {
        let hub = Hub::default();
        let (tx, mut rx) = mpsc::channel(8);
        hub.listen("api:ann", tx);
        let file = Outbound::File {
            thought: ThoughtId::new(),
            file: clara_core::FileBlob::new("a.csv", b"x".to_vec()),
            caption: None,
        };
        hub.deliver(&conv("api:ann"), file.clone()).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), file);
        assert!(hub.subscribe("api:ann").1.files.is_empty());
    }

    #[test]
    fn long_output_keeps_its_tail() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("ééé", 2), "éé");
        assert_eq!(tail("abc", 0), "");
        let event = page_event(&Outbound::ToolProgress {
            thought: ThoughtId::new(),
            name: "t".into(),
            text: "x".repeat(MAX_PROGRESS_CHARS + 10),
        });
        let Some(PageEvent::ToolProgress { text, .. }) = event else {
            panic!("a progress event")
        };
        assert_eq!(text.len(), MAX_PROGRESS_CHARS);
    }

    fn prompt(id: &str) -> ApprovalPrompt {
        ApprovalPrompt {
            id: ApprovalId(id.into()),
            tool: "mail__send".into(),
            arguments: r#"{"to":"x@example.com"}"#.into(),
            reason: "It sends a message.".into(),
            asked_for: "owner on the web page".into(),
            timeout_secs: 120,
        }
    }

    #[tokio::test]
    async fn an_open_question_is_in_the_snapshot_until_it_closes() {
        let hub = Hub::default();
        let (mut tab, _) = hub.subscribe("page:owner");
        let (tx, mut api) = mpsc::channel(8);
        hub.listen("api:owner", tx);
        // The engine addresses the owner's DM by their bare id.
        let dm = conv("owner");
        let message = hub
            .deliver(
                &dm,
                Outbound::Ask {
                    prompt: prompt("0badc0de"),
                },
            )
            .await
            .unwrap();
        assert_eq!(message.as_deref(), Some("0badc0de"));
        assert_eq!(
            tab.recv().await.unwrap(),
            PageEvent::Ask {
                prompt: prompt("0badc0de")
            }
        );
        let (_, snap) = hub.subscribe("page:owner");
        assert_eq!(snap.asks, vec![prompt("0badc0de")]);
        assert!(hub.is_asking("page:owner", &ApprovalId("0badc0de".into())));
        assert!(!hub.is_asking("page:ann", &ApprovalId("0badc0de".into())));

        hub.deliver(
            &dm,
            Outbound::AskClosed {
                prompt: prompt("0badc0de"),
                message,
                outcome: ApprovalOutcome::Answered(Verdict::Once),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            tab.recv().await.unwrap(),
            PageEvent::AskClosed {
                id: ApprovalId("0badc0de".into()),
                result: "approved",
                outcome: "Approved once.",
            }
        );
        assert!(hub.subscribe("page:owner").1.asks.is_empty());
        assert!(!hub.is_asking("page:owner", &ApprovalId("0badc0de".into())));
        assert!(api.try_recv().is_err(), "API clients never get questions");
    }

    #[tokio::test]
    async fn a_question_to_the_api_conversation_shows_on_the_page_and_a_timeout_denies() {
        let hub = Hub::default();
        let api = conv("api:owner");
        hub.deliver(
            &api,
            Outbound::Ask {
                prompt: prompt("00000001"),
            },
        )
        .await
        .unwrap();
        let (mut tab, snap) = hub.subscribe("page:owner");
        assert_eq!(snap.asks.len(), 1);
        hub.deliver(
            &api,
            Outbound::AskClosed {
                prompt: prompt("00000001"),
                message: None,
                outcome: ApprovalOutcome::TimedOut,
            },
        )
        .await
        .unwrap();
        let PageEvent::AskClosed { result, .. } = tab.recv().await.unwrap() else {
            panic!("a closed question")
        };
        assert_eq!(result, "denied");
        let json = serde_json::to_value(hub.subscribe("page:owner").1).unwrap();
        assert_eq!(json["asks"], serde_json::json!([]));
    }
}

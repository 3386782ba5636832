//! The send queue: delivers one reply to a platform the way it can show it.
//!
//! It turns the model's deltas into platform calls — streamed text, one message
//! grown by edits no faster than the platform's cooldown, or human-paced parts —
//! and remembers what actually reached the person, which is what gets stored as
//! Clara's message. Cancelling (dropping the future that drives it, then calling
//! [`SendQueue::cancelled`]) stops it between any two calls.

use crate::sink::{OutboundSink, SinkError};
use clara_core::pacing::{DeliveryMode, EditAction, EditStream, PartStream, TypingPace};
use clara_core::tool_status::{StatusAction, ToolStatus};
use clara_core::{ConversationRef, FileBlob, Outbound, ThoughtId, ToolRun};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How many times a rate-limited platform call is retried.
const RATE_LIMIT_RETRIES: u32 = 3;

enum Mode {
    Stream {
        shown: String,
    },
    Edits {
        stream: EditStream,
        handles: Vec<String>,
        /// A running tool's live output, as a message of its own.
        status: ToolStatus,
        /// The status message's platform id.
        status_handle: Option<String>,
    },
    Parts {
        parts: PartStream,
        pace: TypingPace,
    },
}

/// Delivers one reply.
pub struct SendQueue {
    sink: Arc<dyn OutboundSink>,
    conversation: ConversationRef,
    thought: ThoughtId,
    mode: Mode,
    /// The reply's tool calls, as they finished: stored with Clara's message.
    tool_runs: Vec<ToolRun>,
}

impl SendQueue {
    /// A queue for the reply to `thought`, shaped by the sink's delivery mode.
    pub fn new(
        sink: Arc<dyn OutboundSink>,
        conversation: ConversationRef,
        thought: ThoughtId,
    ) -> Self {
        let delivery = sink.delivery();
        let mode = match delivery.mode {
            DeliveryMode::Stream => Mode::Stream {
                shown: String::new(),
            },
            DeliveryMode::Edits { cooldown } => Mode::Edits {
                stream: EditStream::new(cooldown, delivery.max_chars),
                handles: Vec::new(),
                status: ToolStatus::new(cooldown),
                status_handle: None,
            },
            DeliveryMode::Parts(pace) => Mode::Parts {
                parts: PartStream::new(delivery.max_chars),
                pace,
            },
        };
        Self {
            sink,
            conversation,
            thought,
            mode,
            tool_runs: Vec::new(),
        }
    }

    /// Shows that Clara is working on it.
    pub async fn typing(&mut self) {
        if !matches!(self.mode, Mode::Stream { .. }) {
            self.call(Outbound::Typing).await;
        }
    }

    /// Adds text of the reply, making whatever calls are due now.
    pub async fn push(&mut self, delta: &str) {
        match &mut self.mode {
            Mode::Stream { shown } => {
                shown.push_str(delta);
                let out = Outbound::Delta {
                    thought: self.thought,
                    text: delta.to_owned(),
                };
                self.call(out).await;
            }
            Mode::Edits { stream, .. } => {
                stream.push(delta);
                self.apply_edits(Instant::now()).await;
            }
            Mode::Parts { parts, .. } => {
                parts.push(delta);
                let ready = parts.ready();
                self.send_parts(ready).await;
            }
        }
    }

    /// When a held-back edit becomes due, if one is waiting for the cooldown.
    pub fn next_wake(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Edits { stream, status, .. } => {
                let now = Instant::now();
                let text = stream.next_due(now.into_std());
                let status = status.next_due();
                text.into_iter().chain(status).min().map(Instant::from_std)
            }
            _ => None,
        }
    }

    /// Makes the edit that [`next_wake`](Self::next_wake) announced.
    pub async fn wake(&mut self) {
        self.apply_edits(Instant::now()).await;
        let action = match &mut self.mode {
            Mode::Edits { status, .. } => status.poll(Instant::now().into_std()),
            _ => None,
        };
        self.apply_status(action).await;
    }

    /// What a running tool printed lately: live in the tool's chip where the
    /// platform streams, as a status message where it edits, not at all
    /// where it sends whole parts.
    pub async fn tool_progress(&mut self, name: &str, text: &str) {
        let action = match &mut self.mode {
            Mode::Stream { .. } => {
                let out = Outbound::ToolProgress {
                    thought: self.thought,
                    name: name.to_owned(),
                    text: text.to_owned(),
                };
                self.call(out).await;
                return;
            }
            Mode::Edits { status, .. } => status.progress(name, text, Instant::now().into_std()),
            Mode::Parts { .. } => return,
        };
        self.apply_status(action).await;
    }

    /// Sends a file with the reply (a chart the sandbox drew).
    pub async fn file(&mut self, file: FileBlob, caption: Option<String>) {
        self.call(Outbound::File {
            thought: self.thought,
            file,
            caption,
        })
        .await;
    }

    /// A tool's status message still open when the reply ends says it stopped
    /// (a worker that died mid-tool, a cancelled reply).
    async fn close_status(&mut self) {
        let action = match &mut self.mode {
            Mode::Edits { status, .. } => status.abandon(Instant::now().into_std()),
            _ => None,
        };
        self.apply_status(action).await;
    }

    async fn apply_status(&mut self, action: Option<StatusAction>) {
        let Some(action) = action else { return };
        match action {
            StatusAction::Send(text) => {
                let handle = self
                    .call(Outbound::Send {
                        thought: self.thought,
                        text,
                    })
                    .await;
                if let Mode::Edits { status_handle, .. } = &mut self.mode {
                    *status_handle = handle.filter(|h| !h.is_empty());
                }
            }
            StatusAction::Edit(text) => {
                let Mode::Edits {
                    status_handle: Some(message),
                    ..
                } = &self.mode
                else {
                    return;
                };
                let out = Outbound::Edit {
                    thought: self.thought,
                    message: message.clone(),
                    text,
                };
                self.call(out).await;
            }
        }
    }

    /// A tool started running for this reply.
    pub async fn tool_started(&mut self, name: &str) {
        if !matches!(self.mode, Mode::Stream { .. }) {
            // Tools can take a while; keep the "typing" indicator alive.
            self.call(Outbound::Typing).await;
        }
        let out = Outbound::ToolStarted {
            thought: self.thought,
            name: name.to_owned(),
        };
        self.call(out).await;
    }

    /// A tool finished (or was refused): shown, and kept for the record.
    pub async fn tool_finished(&mut self, run: &ToolRun) {
        self.tool_runs.push(run.clone());
        let seconds = run.duration_ms as f64 / 1000.0;
        let action = match &mut self.mode {
            Mode::Edits { status, .. } => {
                status.finish(&run.name, run.ok, seconds, Instant::now().into_std())
            }
            _ => None,
        };
        self.apply_status(action).await;
        let out = Outbound::ToolFinished {
            thought: self.thought,
            name: run.name.clone(),
            ok: run.ok,
        };
        self.call(out).await;
    }

    /// The tool calls of this reply so far, handed over once (for the store).
    pub fn take_tool_runs(&mut self) -> Vec<ToolRun> {
        std::mem::take(&mut self.tool_runs)
    }

    /// The reply is complete: sends what is left, then `End` (in every mode, so
    /// an adapter knows the reply is over: typing indicators stop, a remote
    /// adapter can finalise). Returns what reached the person.
    pub async fn finish(&mut self) -> String {
        match &mut self.mode {
            Mode::Stream { .. } => {}
            Mode::Edits { .. } => {
                self.close_status().await;
                // The last edit still respects the cooldown.
                while let Some(at) = self.next_wake() {
                    tokio::time::sleep_until(at).await;
                    self.wake().await;
                }
            }
            Mode::Parts { parts, .. } => {
                let rest = parts.finish();
                self.send_parts(rest).await;
            }
        }
        self.call(Outbound::End {
            thought: self.thought,
        })
        .await;
        self.delivered()
    }

    /// The reply failed: tells the person in one sentence. Returns what reached them before.
    pub async fn failed(&mut self, message: &str) -> String {
        self.close_status().await;
        let delivered = self.delivered();
        self.call(Outbound::Error {
            thought: self.thought,
            message: message.to_owned(),
        })
        .await;
        delivered
    }

    /// The reply was cancelled: nothing more is sent. Returns what reached the person.
    pub async fn cancelled(&mut self) -> String {
        self.close_status().await;
        self.call(Outbound::Cancelled {
            thought: self.thought,
        })
        .await;
        self.delivered()
    }

    /// What has reached the person so far.
    pub fn delivered(&self) -> String {
        match &self.mode {
            Mode::Stream { shown } => shown.clone(),
            Mode::Edits { stream, .. } => stream.shown_text(),
            Mode::Parts { parts, .. } => parts.sent_text(),
        }
    }

    /// Whether whole messages (not a cut-off stream) is what reached the person.
    pub fn delivers_whole_parts(&self) -> bool {
        matches!(self.mode, Mode::Parts { .. })
    }

    async fn apply_edits(&mut self, now: Instant) {
        let Mode::Edits { stream, .. } = &mut self.mode else {
            return;
        };
        let actions = stream.poll(now.into_std());
        if actions.is_empty() {
            return;
        }
        for action in actions {
            match action {
                EditAction::Send { index, text } => {
                    let handle = self
                        .call(Outbound::Send {
                            thought: self.thought,
                            text,
                        })
                        .await;
                    if let Mode::Edits { handles, .. } = &mut self.mode {
                        // Keep indexes aligned even if the platform gave no id.
                        handles.resize(index, String::new());
                        handles.push(handle.unwrap_or_default());
                    }
                }
                EditAction::Edit { index, text } => {
                    let message = match &self.mode {
                        Mode::Edits { handles, .. } => {
                            handles.get(index).cloned().unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    self.call(Outbound::Edit {
                        thought: self.thought,
                        message,
                        text,
                    })
                    .await;
                }
            }
        }
        // The cooldown counts from when the platform took the calls: a call that
        // waited out a rate limit must not make the next edit due at once.
        if let Mode::Edits { stream, .. } = &mut self.mode {
            stream.calls_done(Instant::now().into_std());
        }
    }

    async fn send_parts(&mut self, ready: Vec<String>) {
        for part in ready {
            let pause = match &self.mode {
                Mode::Parts { pace, .. } => pace.delay_for(&part),
                _ => Duration::ZERO,
            };
            self.call(Outbound::Typing).await;
            tokio::time::sleep(pause).await;
            let sent = self
                .call(Outbound::Send {
                    thought: self.thought,
                    text: part.clone(),
                })
                .await;
            if let (Some(_), Mode::Parts { parts, .. }) = (sent, &mut self.mode) {
                parts.mark_sent(part);
            }
        }
    }

    /// One platform call, retried when rate limited. Failures are logged, not
    /// raised: a platform hiccup must not lose the rest of the reply.
    async fn call(&self, outbound: Outbound) -> Option<String> {
        let mut attempt = 0;
        loop {
            match self
                .sink
                .deliver(&self.conversation, outbound.clone())
                .await
            {
                Ok(handle) => return Some(handle.unwrap_or_default()),
                Err(SinkError::RateLimited { retry_after_ms }) if attempt < RATE_LIMIT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                }
                Err(error) => {
                    tracing::warn!(platform = %self.conversation.platform, %error, "platform call failed");
                    return None;
                }
            }
        }
    }
}

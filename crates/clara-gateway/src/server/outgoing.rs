//! What the gateway sends one adapter: a bounded queue drained by a writer task,
//! and the adapter seen as a platform ([`AdapterLink::deliver`]).
//!
//! Back-pressure: a frame waits for room in the queue at most `send_timeout`.
//! A delivery that cannot get in fails (the engine's send queue logs it and goes
//! on); an answer to the adapter's own frame that cannot get in means the
//! adapter stopped reading, and the connection is closed. Either way memory is
//! bounded by the queue's length, never by how far behind the adapter is.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use clara_core::pacing::Delivery;
use clara_core::port::SinkError;
use clara_core::{ConversationRef, Outbound, ThoughtId};
use clara_protocol::convert::{outbound_frame, wants_answer};
use clara_protocol::{
    ErrorCode, ErrorFrame, ReplyFrame, SendFailedFrame, ServerFrame, WireConversation, encode,
};
use futures::SinkExt;
use futures::stream::SplitSink;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long the writer keeps trying to flush queued frames and the close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How many replies' `start`s one connection remembers.
const STARTED_REPLIES: usize = 256;

/// WebSocket close codes the gateway uses (4000–4999 are the application's).
pub(crate) mod close_code {
    /// A normal end.
    pub const NORMAL: u16 = 1000;
    /// Clara is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A message over the WebSocket layer's hard cap.
    pub const TOO_BIG: u16 = 1009;
    /// The secret or proof was missing or wrong.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The adapter speaks another protocol version.
    pub const UNSUPPORTED_VERSION: u16 = 4002;
    /// No `hello` in time.
    pub const HANDSHAKE_TIMEOUT: u16 = 4003;
    /// No `pong` in time.
    pub const PING_TIMEOUT: u16 = 4004;
    /// The adapter stopped reading.
    pub const TOO_SLOW: u16 = 4005;
}

/// Ends a connection once, with a close code and reason.
#[derive(Clone, Default)]
pub(crate) struct Closer {
    token: CancellationToken,
    reason: Arc<Mutex<Option<(u16, String)>>>,
}

impl Closer {
    /// Closes with `code`; the first reason given wins.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        let mut slot = self.reason.lock();
        if slot.is_none() {
            *slot = Some((code, reason.to_owned()));
        }
        drop(slot);
        self.token.cancel();
    }

    /// Whether the connection is closing.
    pub(crate) fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the connection is closing.
    pub(crate) async fn closed(&self) {
        self.token.cancelled().await;
    }

    fn reason(&self) -> (u16, String) {
        self.reason
            .lock()
            .clone()
            .unwrap_or((close_code::NORMAL, String::new()))
    }
}

/// Drains the queue into the socket until the connection closes, then flushes
/// what is left and the close frame, briefly.
pub(crate) async fn write_loop(
    mut socket: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<String>,
    closer: Closer,
) {
    loop {
        tokio::select! {
            biased;
            () = closer.closed() => break,
            next = queue.recv() => {
                let Some(text) = next else { break };
                tokio::select! {
                    biased;
                    () = closer.closed() => break,
                    sent = socket.send(Message::Text(text.into())) => if sent.is_err() {
                        // The socket is broken: stop routing calls to this
                        // connection now rather than when the reader notices.
                        closer.close(close_code::NORMAL, "");
                        return;
                    },
                }
            }
        }
    }
    let (code, reason) = closer.reason();
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(text) = queue.try_recv() {
            socket.send(Message::Text(text.into())).await?;
        }
        socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await
    })
    .await;
}

/// Why a frame did not get into the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue stayed full for the whole `send_timeout`.
    Full,
    /// The connection is gone.
    Closed,
    /// The frame is larger than the adapter reads (a big file): not sent,
    /// since the adapter would drop its connection over it.
    TooLarge {
        /// The frame's size.
        bytes: usize,
        /// The connection's frame limit.
        limit: usize,
    },
}

/// The sending side of one connection.
#[derive(Clone)]
pub(crate) struct Outgoing {
    queue: mpsc::Sender<String>,
    closer: Closer,
    send_timeout: Duration,
    /// The largest frame the adapter reads (the limit `welcome` told it).
    max_frame_bytes: usize,
}

impl Outgoing {
    pub(crate) fn new(
        queue: mpsc::Sender<String>,
        closer: Closer,
        send_timeout: Duration,
        max_frame_bytes: usize,
    ) -> Self {
        Self {
            queue,
            closer,
            send_timeout,
            max_frame_bytes,
        }
    }

    /// Queues a frame, waiting at most `send_timeout` for room.
    pub(crate) async fn push(&self, frame: &ServerFrame) -> Result<(), PushError> {
        let text = encode(frame);
        if text.len() > self.max_frame_bytes {
            return Err(PushError::TooLarge {
                bytes: text.len(),
                limit: self.max_frame_bytes,
            });
        }
        tokio::select! {
            () = self.closer.closed() => Err(PushError::Closed),
            sent = tokio::time::timeout(self.send_timeout, self.queue.send(text)) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(PushError::Closed),
                Err(_) => Err(PushError::Full),
            },
        }
    }

    /// Queues a frame if there is room now; says whether it got in.
    pub(crate) fn try_push(&self, frame: &ServerFrame) -> bool {
        self.queue.try_send(encode(frame)).is_ok()
    }

    /// Answers one of the adapter's frames. When the answer cannot get in, the
    /// adapter has stopped reading: the connection is closed.
    pub(crate) async fn answer(&self, frame: &ServerFrame) {
        if self.push(frame).await == Err(PushError::Full) {
            tracing::warn!("an adapter stopped reading its frames; closing its connection");
            let message = format!(
                "No frame could be queued for {} ms: the adapter stopped reading its frames.",
                self.send_timeout.as_millis()
            );
            // The queue is full, so the error frame gets in only if the
            // adapter has just started reading again; the close says it anyway.
            self.fail(
                ErrorFrame {
                    code: ErrorCode::TooSlow,
                    message,
                    re: None,
                },
                close_code::TOO_SLOW,
            );
        }
    }

    /// Sends an `error` frame (if there is room) and closes with `code`.
    pub(crate) fn fail(&self, error: ErrorFrame, code: u16) {
        let reason = error.code.as_str();
        self.try_push(&ServerFrame::Error(error));
        self.closer.close(code, reason);
    }

    /// Answers with an `error` frame.
    pub(crate) async fn error(&self, code: ErrorCode, message: String, re: Option<String>) {
        self.answer(&ServerFrame::Error(ErrorFrame { code, message, re }))
            .await;
    }

    pub(crate) fn closer(&self) -> &Closer {
        &self.closer
    }
}

/// One connected adapter, seen as its platform: turns Clara's platform calls
/// into frames and waits for the answers to `send`s.
pub(crate) struct AdapterLink {
    pub(crate) id: String,
    pub(crate) delivery: Delivery,
    out: Outgoing,
    ack_timeout: Duration,
    next_request: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<String, SinkError>>>>,
    started: Mutex<StartedReplies>,
}

impl AdapterLink {
    pub(crate) fn new(
        id: String,
        delivery: Delivery,
        out: Outgoing,
        ack_timeout: Duration,
    ) -> Self {
        Self {
            id,
            delivery,
            out,
            ack_timeout,
            next_request: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            started: Mutex::new(StartedReplies::default()),
        }
    }

    /// Whether the connection is still up (not closing).
    pub(crate) fn is_live(&self) -> bool {
        !self.out.closer.is_closed()
    }

    /// Makes one platform call through the adapter. A `Send` or an `Ask` returns the
    /// message id from the adapter's `sent`.
    pub(crate) async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let wire = WireConversation::from_core(conversation);
        if let Some(thought) = outbound.thought() {
            let is_final = matches!(
                outbound,
                Outbound::End { .. } | Outbound::Cancelled { .. } | Outbound::Error { .. }
            );
            let first = self.started.lock().note(thought, is_final);
            if first {
                let start = ServerFrame::Start(ReplyFrame {
                    thought,
                    conversation: wire.clone(),
                });
                self.push(&start).await?;
            }
        }
        if !wants_answer(&outbound) {
            self.push(&outbound_frame(wire, outbound, 0)).await?;
            return Ok(None);
        }
        // A platform without buttons may show a question as plain text and
        // have no message to edit later: an empty id then means none.
        let is_ask = matches!(outbound, Outbound::Ask { .. });
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(request_id, tx);
        if let Err(error) = self.push(&outbound_frame(wire, outbound, request_id)).await {
            self.pending.lock().remove(&request_id);
            return Err(error);
        }
        match tokio::time::timeout(self.ack_timeout, rx).await {
            Ok(Ok(answer)) => answer.map(|id| Some(id).filter(|id| !(is_ask && id.is_empty()))),
            Ok(Err(_)) => Err(SinkError::Failed(
                "the adapter disconnected before confirming the message".to_owned(),
            )),
            Err(_) => {
                self.pending.lock().remove(&request_id);
                Err(SinkError::Failed(format!(
                    "the adapter did not confirm the message within {} ms",
                    self.ack_timeout.as_millis()
                )))
            }
        }
    }

    /// The adapter's `sent`: the waiting `send` gets the message id. Returns
    /// false when no `send` with that id is waiting.
    pub(crate) fn sent(&self, request_id: u64, message_id: String) -> bool {
        self.resolve(request_id, Ok(message_id))
    }

    /// The adapter's `send_failed`.
    pub(crate) fn send_failed(&self, frame: SendFailedFrame) -> bool {
        let error = match frame.retry_after_ms {
            Some(retry_after_ms) => SinkError::RateLimited { retry_after_ms },
            None => SinkError::Failed(frame.reason),
        };
        self.resolve(frame.request_id, Err(error))
    }

    fn resolve(&self, request_id: u64, answer: Result<String, SinkError>) -> bool {
        let waiter = self.pending.lock().remove(&request_id);
        match waiter {
            Some(tx) => {
                // The sender may have timed out just now; then nobody waits.
                let _ = tx.send(answer);
                true
            }
            None => false,
        }
    }

    /// The connection ended: every waiting `send` fails now rather than at its timeout.
    pub(crate) fn disconnected(&self) {
        self.pending.lock().clear();
    }

    async fn push(&self, frame: &ServerFrame) -> Result<(), SinkError> {
        self.out.push(frame).await.map_err(|error| match error {
            PushError::Full => SinkError::Failed(format!(
                "the adapter is not keeping up: its queue stayed full for {} ms",
                self.out.send_timeout.as_millis()
            )),
            PushError::Closed => SinkError::Failed("the adapter disconnected".to_owned()),
            PushError::TooLarge { bytes, limit } => SinkError::Failed(format!(
                "it is too large for the adapter's connection ({bytes} bytes as a frame; the limit is {limit})"
            )),
        })
    }
}

/// The replies whose `start` a connection has sent, so each reply gets one
/// `start` before its first frame. A reply's final frame (`end`, `cancelled`,
/// `reply_error`) forgets it; the bound only guards against a sink that stops
/// hearing from the engine mid-reply.
#[derive(Default)]
pub(crate) struct StartedReplies {
    recent: VecDeque<ThoughtId>,
}

impl StartedReplies {
    /// Notes a frame of `thought`; returns whether it is the reply's first (a
    /// `start` is due). A final frame forgets the reply.
    pub(crate) fn note(&mut self, thought: ThoughtId, is_final: bool) -> bool {
        let known = self.recent.iter().position(|t| *t == thought);
        match (known, is_final) {
            (Some(at), true) => {
                self.recent.remove(at);
                false
            }
            (Some(_), false) => false,
            (None, true) => true,
            (None, false) => {
                if self.recent.len() == STARTED_REPLIES {
                    self.recent.pop_front();
                }
                self.recent.push_back(thought);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reply_starts_once_and_finals_forget_it() {
        let mut started = StartedReplies::default();
        let (a, b) = (ThoughtId::new(), ThoughtId::new());
        assert!(started.note(a, false));
        assert!(!started.note(a, false));
        assert!(started.note(b, false));
        assert!(!started.note(a, true), "the end of a started reply");
        assert!(started.note(a, false), "the same id again is a new reply");
        assert!(
            started.note(ThoughtId::new(), true),
            "a reply that only ends still starts"
        );
    }

    #[test]
    fn the_memory_of_started_replies_is_bounded() {
        let mut started = StartedReplies::default();
        let first = ThoughtId::new();
        started.note(first, false);
        for _ in 0..STARTED_REPLIES {
            started.note(ThoughtId::new(), false);
        }
        assert_eq!(started.recent.len(), STARTED_REPLIES);
        assert!(started.note(first, false), "the oldest was forgotten");
    }
}

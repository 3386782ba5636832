//! The adapter side of the gateway protocol: Clara, reached over a WebSocket,
//! as an [`Assistant`].
//!
//! An adapter in its own process calls [`connect`] with its platform's
//! [`OutboundSink`] and then uses the returned [`RemoteAssistant`] exactly as an
//! in-process adapter uses the engine: `submit` waits for the gateway's
//! `accepted`/`rejected`, and the gateway's platform calls arrive at the sink
//! (a `send`'s message id goes back as `sent`). The connection is kept up in the
//! background: pings both ways, and reconnection with backoff after a drop;
//! while it is down, `submit` answers [`IngressError::Unavailable`] at once.
//!
//! - [`session`]: one connection, handshake to close;
//! - [`deliveries`]: the platform calls, per conversation, in order.
//!
//! The reconnect delays are the project's one [`Backoff`], jittered.

mod deliveries;
mod session;

use crate::{
    Capabilities, ClientFrame, DEFAULT_MAX_FRAME_BYTES, ErrorFrame, GatewaySecret, InboundFrame,
    NewSessionFrame, Presence, WireAuthor, WireConversation, encode,
};
use async_trait::async_trait;
use clara_core::backoff::Backoff;
use clara_core::port::{Accepted, Assistant, IngressError, OutboundSink};
use clara_core::{Author, ConversationRef, Inbound};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How to reach the gateway and what to tell it.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The gateway's WebSocket URL, e.g. `ws://127.0.0.1:18789/gateway`.
    pub url: String,
    /// `CLARA_GATEWAY_SECRET`, when the gateway has one; only a proof of it is sent.
    pub secret: Option<GatewaySecret>,
    /// The platform's short name (`telegram`, `matrix`, …).
    pub platform: String,
    /// What the platform can do; by default, what the sink's `delivery()` says.
    pub capabilities: Option<Capabilities>,
    /// The adapter's name and version, for the gateway's logs.
    pub adapter: Option<String>,
    /// How long a connection attempt (TCP, upgrade and handshake) may take.
    pub connect_timeout: Duration,
    /// How long `submit` and `new_session` wait for the gateway's answer.
    pub request_timeout: Duration,
    /// How long after the last `pong` (or the handshake) the client pings.
    pub ping_interval: Duration,
    /// How long the client waits for a `pong` before it reconnects.
    pub pong_timeout: Duration,
    /// The reconnect delays: `backoff.base` after a drop, doubling after each
    /// failed attempt up to `backoff.max`, each jittered down by up to half.
    pub backoff: Backoff,
    /// The largest frame read from the gateway.
    pub max_frame_bytes: usize,
    /// How many frames may wait to be written to the gateway.
    pub outgoing_queue: usize,
}

impl ClientConfig {
    /// The defaults for `platform` at `url`.
    pub fn new(url: impl Into<String>, platform: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            platform: platform.into(),
            capabilities: None,
            adapter: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(30)),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            outgoing_queue: 256,
        }
    }

    /// The same, with the gateway's secret.
    pub fn with_secret(mut self, secret: GatewaySecret) -> Self {
        self.secret = Some(secret);
        self
    }
}

/// Why a connection to the gateway failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection or the WebSocket upgrade failed.
    #[error("cannot reach the gateway at {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The gateway refused the secret.
    #[error("the gateway refused the adapter: {0}")]
    Unauthorized(String),
    /// The gateway refused the `hello` for another reason, or spoke out of turn.
    #[error("the gateway handshake failed: {0}")]
    Handshake(String),
    /// The attempt took longer than `connect_timeout`.
    #[error("the gateway did not complete the handshake in time")]
    Timeout,
    /// The client was closed.
    #[error("the gateway client was closed")]
    Closed,
}

/// Clara, reached through the gateway. Cheap to clone; the connection closes
/// when the last clone is dropped (or at [`RemoteAssistant::close`]).
#[derive(Clone)]
pub struct RemoteAssistant {
    handle: Arc<Handle>,
}

/// Stops the background connection when the last [`RemoteAssistant`] goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

/// What the connection task and the [`RemoteAssistant`] share.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    pub(crate) capabilities: Capabilities,
    pub(crate) sink: Arc<dyn OutboundSink>,
    /// The live connection, if any.
    pub(crate) link: Mutex<Option<Link>>,
    /// Requests waiting for their answer, by request id.
    pub(crate) pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    next_request: AtomicU64,
    pub(crate) connected: watch::Sender<bool>,
    pub(crate) stop: CancellationToken,
}

/// A live connection's way out.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) frames: mpsc::Sender<String>,
    /// The gateway's frame limit, from its `welcome`.
    pub(crate) max_frame_bytes: usize,
}

/// The gateway's answer to a request.
#[derive(Debug)]
pub(crate) enum Answer {
    Accepted(Accepted),
    Rejected(IngressError),
    Done,
    Error(ErrorFrame),
}

impl Shared {
    pub(crate) fn link(&self) -> Option<Link> {
        self.link.lock().clone()
    }

    /// Sends a frame on the live connection; false when there is none or it
    /// could not take the frame in time.
    async fn send(&self, frame: &ClientFrame) -> bool {
        let Some(link) = self.link() else {
            return false;
        };
        let text = encode(frame);
        if text.len() > link.max_frame_bytes {
            tracing::warn!(
                bytes = text.len(),
                limit = link.max_frame_bytes,
                "a frame is over the gateway's limit and was not sent"
            );
            return false;
        }
        let timeout = self.config.request_timeout;
        matches!(
            tokio::time::timeout(timeout, link.frames.send(text)).await,
            Ok(Ok(()))
        )
    }

    /// Sends a request and waits for its answer.
    async fn request(&self, id: String, frame: &ClientFrame) -> Option<Answer> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id.clone(), tx);
        let answer = if self.send(frame).await {
            tokio::time::timeout(self.config.request_timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        self.pending.lock().remove(&id);
        answer
    }

    fn next_id(&self) -> String {
        format!("r{}", self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    /// The connection ended: every waiting request fails now.
    pub(crate) fn disconnected(&self) {
        *self.link.lock() = None;
        self.pending.lock().clear();
        self.connected.send_replace(false);
    }
}

/// Connects to the gateway and keeps the connection up in the background.
/// Fails when the first attempt fails (so a wrong URL or secret is reported at
/// start); after that, drops are repaired by reconnecting with backoff.
pub async fn connect(
    config: ClientConfig,
    sink: Arc<dyn OutboundSink>,
) -> Result<RemoteAssistant, ClientError> {
    let remote = RemoteAssistant::start(config, sink);
    let (tx, rx) = oneshot::channel();
    let shared = Arc::clone(&remote.handle.shared);
    tokio::spawn(session::keep_connected(shared, Some(tx)));
    match rx.await {
        Ok(Ok(())) => Ok(remote),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ClientError::Closed),
    }
}

impl RemoteAssistant {
    fn start(config: ClientConfig, sink: Arc<dyn OutboundSink>) -> Self {
        let capabilities = config
            .capabilities
            .clone()
            .unwrap_or_else(|| Capabilities::from_delivery(&sink.delivery()));
        let shared = Arc::new(Shared {
            config,
            capabilities,
            sink,
            link: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            connected: watch::channel(false).0,
            stop: CancellationToken::new(),
        });
        Self {
            handle: Arc::new(Handle { shared }),
        }
    }

    /// Starts connecting in the background without waiting: for an adapter that
    /// may start before the gateway. Until connected, `submit` answers
    /// [`IngressError::Unavailable`].
    pub fn spawn(config: ClientConfig, sink: Arc<dyn OutboundSink>) -> Self {
        let remote = Self::start(config, sink);
        tokio::spawn(session::keep_connected(
            Arc::clone(&remote.handle.shared),
            None,
        ));
        remote
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        *self.handle.shared.connected.borrow()
    }

    /// Waits until a connection is up; false if none came within `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.handle.shared.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the connection is down; false if it stayed up for `timeout`.
    pub async fn wait_disconnected(&self, timeout: Duration) -> bool {
        let mut rx = self.handle.shared.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|up| !*up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Closes the connection and stops reconnecting.
    pub fn close(&self) {
        self.handle.shared.stop.cancel();
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    fn presence(conversation: &ConversationRef, author: &Author) -> Presence {
        Presence {
            conversation: WireConversation::from_core(conversation),
            author: WireAuthor::from_core(author),
        }
    }
}

/// The frame of `inbound` within `limit` bytes: attachments that do not fit
/// are left out, largest first, each named in the text, so the message still
/// arrives (a frame over the limit would be refused, and a platform would
/// deliver the message again and again).
fn fit_inbound(id: String, mut inbound: Inbound, limit: usize) -> InboundFrame {
    loop {
        let frame = InboundFrame::from_core(id.clone(), &inbound);
        // Only attachments make a frame large: a text-only message (nearly
        // every one) is not encoded an extra time to measure it.
        let attached = !inbound.files.is_empty()
            || inbound
                .images
                .iter()
                .any(|i| matches!(i, clara_core::Image::Bytes { .. }));
        if !attached || encode(&ClientFrame::Inbound(frame.clone())).len() <= limit {
            return frame;
        }
        let largest_file = (0..inbound.files.len()).max_by_key(|&i| inbound.files[i].data.len());
        let largest_image = (0..inbound.images.len())
            .filter(|&i| matches!(inbound.images[i], clara_core::Image::Bytes { .. }))
            .max_by_key(|&i| match &inbound.images[i] {
                clara_core::Image::Bytes { data, .. } => data.len(),
                clara_core::Image::Url { .. } => 0,
            });
        let note = if let Some(i) = largest_file {
            let file = inbound.files.remove(i);
            format!(
                "[{} was not kept: too large for the link to Clara's gateway]",
                file.name
            )
        } else if let Some(i) = largest_image {
            inbound.images.remove(i);
            "[a picture was not kept: too large for the link to Clara's gateway]".to_owned()
        } else {
            // The text alone is too long: sending refuses it, as any such frame.
            return frame;
        };
        tracing::warn!(
            limit,
            "an attachment is over the gateway's frame limit and was left out"
        );
        if !inbound.text.is_empty() {
            inbound.text.push('\n');
        }
        inbound.text.push_str(&note);
    }
}

#[async_trait]
impl Assistant for RemoteAssistant {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        let shared = self.shared();
        if shared.link().is_none() {
            return Err(IngressError::Unavailable);
        }
        let id = shared.next_id();
        let limit = shared
            .link()
            .map_or(crate::DEFAULT_MAX_FRAME_BYTES, |link| link.max_frame_bytes);
        let frame = ClientFrame::Inbound(fit_inbound(id.clone(), inbound, limit));
        match shared.request(id, &frame).await {
            Some(Answer::Accepted(accepted)) => Ok(accepted),
            Some(Answer::Rejected(error)) => Err(error),
            Some(Answer::Error(error)) => {
                tracing::warn!(code = error.code.as_str(), message = %error.message, "the gateway could not use a message");
                Err(IngressError::Unavailable)
            }
            Some(Answer::Done) | None => Err(IngressError::Unavailable),
        }
    }

    async fn typing(&self, conversation: &ConversationRef, author: &Author) {
        let frame = ClientFrame::Typing(Self::presence(conversation, author));
        self.shared().send(&frame).await;
    }

    async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        let frame = ClientFrame::Cancel(Self::presence(conversation, author));
        if !self.shared().send(&frame).await {
            tracing::warn!("a stop could not reach the gateway");
        }
    }

    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        let shared = self.shared();
        if shared.link().is_none() {
            return Err(IngressError::Unavailable);
        }
        let id = shared.next_id();
        let frame = ClientFrame::NewSession(NewSessionFrame {
            id: id.clone(),
            conversation: WireConversation::from_core(conversation),
            author: WireAuthor::from_core(author),
        });
        match shared.request(id, &frame).await {
            Some(Answer::Done) => Ok(()),
            Some(Answer::Rejected(error)) => Err(error),
            Some(Answer::Error(error)) => {
                tracing::warn!(code = error.code.as_str(), message = %error.message, "the gateway could not start a new session");
                Err(IngressError::Unavailable)
            }
            Some(Answer::Accepted(_)) | None => Err(IngressError::Unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::{ChannelKind, EventId, FileBlob};

    #[test]
    fn attachments_over_the_frame_limit_are_left_out_and_named() {
        let inbound = Inbound {
            event_id: EventId("e1".into()),
            conversation: ConversationRef {
                platform: "telegram".into(),
                channel: "42".into(),
                kind: ChannelKind::Direct,
            },
            author: Author {
                platform_user_id: "7".into(),
                display_name: "Ann".into(),
            },
            text: "plot this".into(),
            sent_at_ms: 0,
            tier: None,
            images: Vec::new(),
            files: vec![
                FileBlob::new("small.csv", vec![b'x'; 100]),
                FileBlob::new("huge.pdf", vec![0; 8_000]),
            ],
            replying_to: Vec::new(),
        };
        let frame = fit_inbound("r1".into(), inbound.clone(), 4_000);
        assert!(encode(&ClientFrame::Inbound(frame.clone())).len() <= 4_000);
        let back = frame.to_core("telegram", 0).unwrap();
        assert_eq!(back.files.len(), 1);
        assert_eq!(back.files[0].name, "small.csv");
        assert_eq!(
            back.text,
            "plot this\n[huge.pdf was not kept: too large for the link to Clara's gateway]"
        );
        // Within the limit, nothing changes.
        let whole = fit_inbound("r2".into(), inbound, 1 << 20)
            .to_core("telegram", 0)
            .unwrap();
        assert_eq!(whole.files.len(), 2);
        assert_eq!(whole.text, "plot this");
    }
}

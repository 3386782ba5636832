//! One adapter's connection, from the challenge to the close.
//!
//! `challenge` → `hello` (secret or proof, platform, capabilities) → `welcome`;
//! then the adapter's frames are handled one at a time, in arrival order, while
//! the gateway pings it. A bad frame gets an `error` frame and the connection
//! goes on; only a wrong secret, another protocol version at the handshake, a
//! missed handshake or `pong`, or an adapter that stops reading end it.

use super::GatewayState;
use super::outgoing::{AdapterLink, Closer, Outgoing, close_code, write_loop};
use axum::extract::ws::{Message, WebSocket};
use clara_protocol::convert::{ingress_frame, rejected_frame, validate_hello};
use clara_protocol::{
    Challenge, ClientFrame, DoneFrame, ErrorCode, ErrorFrame, FrameError, Hello, PROTOCOL_VERSION,
    PingFrame, ServerFrame, Welcome, check_hello, decode_client,
};
use futures::StreamExt;
use futures::stream::SplitStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

/// How long the writer task gets to finish after the connection ends.
const WRITER_GRACE: Duration = Duration::from_secs(2);

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn serve(state: Arc<GatewayState>, socket: WebSocket) {
    let config = &state.config;
    let (sink, mut stream) = socket.split();
    let (queue, queued) = mpsc::channel(config.outgoing_queue.max(1));
    let closer = Closer::default();
    let out = Outgoing::new(
        queue,
        closer.clone(),
        config.send_timeout,
        config.max_frame_bytes,
    );
    let writer = tokio::spawn(write_loop(sink, queued, closer.clone()));
    let id = format!("{:016x}", rand::random::<u64>());

    if let Some(hello) = handshake(&state, &out, &mut stream).await {
        let link = Arc::new(AdapterLink::new(
            id.clone(),
            hello.capabilities.delivery(),
            out.clone(),
            config.send_ack_timeout,
        ));
        tracing::info!(
            platform = %hello.platform,
            connection = %id,
            adapter = hello.adapter.as_deref().unwrap_or("unnamed"),
            "an adapter connected to the gateway"
        );
        out.answer(&ServerFrame::Welcome(Welcome {
            connection: id.clone(),
            max_frame_bytes: config.max_frame_bytes,
            ping_interval_ms: millis(config.ping_interval),
            pong_timeout_ms: millis(config.pong_timeout),
            send_ack_timeout_ms: millis(config.send_ack_timeout),
        }))
        .await;
        state
            .routes
            .join(state.host.as_ref(), &hello.platform, Arc::clone(&link));
        let mut session = Session {
            state: &state,
            out: &out,
            link: &link,
            platform: &hello.platform,
        };
        session.run(&mut stream).await;
        state.routes.leave(&hello.platform, &id);
        link.disconnected();
        tracing::info!(platform = %hello.platform, connection = %id, "an adapter disconnected");
    }
    closer.close(close_code::NORMAL, "");
    let _ = tokio::time::timeout(WRITER_GRACE, writer).await;
}

/// Sends the challenge and waits for a good `hello`. Returns `None` when the
/// connection ends instead (it has then been closed with the reason).
async fn handshake(
    state: &GatewayState,
    out: &Outgoing,
    stream: &mut SplitStream<WebSocket>,
) -> Option<Hello> {
    let config = &state.config;
    let nonce = hex_nonce();
    out.answer(&ServerFrame::Challenge(Challenge {
        nonce: nonce.clone(),
        versions: vec![PROTOCOL_VERSION],
        auth_required: config.secret.is_some(),
    }))
    .await;
    let deadline = Instant::now() + config.handshake_timeout;
    loop {
        let message = tokio::select! {
            () = out.closer().closed() => return None,
            () = state.stop.cancelled() => {
                out.closer().close(close_code::GOING_AWAY, "Clara is shutting down");
                return None;
            }
            () = tokio::time::sleep_until(deadline) => {
                let message = format!(
                    "No hello arrived within {} ms of the challenge.",
                    millis(config.handshake_timeout)
                );
                out.fail(error(ErrorCode::HandshakeTimeout, message, None), close_code::HANDSHAKE_TIMEOUT);
                return None;
            }
            message = stream.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                out.answer(&binary_error()).await;
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Err(e)) => {
                read_failed(out, e);
                return None;
            }
            Some(Ok(Message::Close(_))) | None => return None,
        };
        let frame = match decode_client(text.as_bytes(), config.max_frame_bytes) {
            Ok(frame) => frame,
            Err(e @ FrameError::UnsupportedVersion { .. }) => {
                // Before the handshake, another version means another protocol.
                out.fail(e.to_error_frame(), close_code::UNSUPPORTED_VERSION);
                return None;
            }
            Err(e) => {
                tracing::debug!(
                    code = e.code().as_str(),
                    "a frame before the hello could not be read"
                );
                out.answer(&ServerFrame::Error(e.to_error_frame())).await;
                continue;
            }
        };
        let hello = match frame {
            ClientFrame::Hello(hello) => hello,
            ClientFrame::Ping(PingFrame { nonce }) => {
                out.answer(&ServerFrame::Pong(PingFrame { nonce })).await;
                continue;
            }
            other => {
                let message = format!(
                    "Send hello first: a {} frame cannot come before the handshake.",
                    other.type_name()
                );
                out.answer(&ServerFrame::Error(error(
                    ErrorCode::OutOfOrder,
                    message,
                    None,
                )))
                .await;
                continue;
            }
        };
        if let Err(why) = validate_hello(&hello) {
            let message = format!("The hello frame is invalid: {why}");
            out.answer(&ServerFrame::Error(error(
                ErrorCode::InvalidFrame,
                message,
                None,
            )))
            .await;
            continue;
        }
        if let Err(why) = check_hello(config.secret.as_ref(), &nonce, &hello) {
            tracing::warn!(platform = %hello.platform, "an adapter was refused: {why}");
            out.fail(
                error(ErrorCode::Unauthorized, why.to_string(), None),
                close_code::UNAUTHORIZED,
            );
            return None;
        }
        if config.reserved_platforms.contains(&hello.platform) {
            tracing::warn!(platform = %hello.platform, "an adapter declared a platform Clara serves itself; refused");
            let message = format!(
                "The hello frame is invalid: the platform \"{}\" is served inside Clara, so no adapter may declare it.",
                hello.platform
            );
            out.error(ErrorCode::InvalidFrame, message, None).await;
            continue;
        }
        return Some(hello);
    }
}

/// A connection after its handshake.
struct Session<'a> {
    state: &'a GatewayState,
    out: &'a Outgoing,
    link: &'a Arc<AdapterLink>,
    platform: &'a str,
}

/// The gateway's ping that waits for its `pong`.
struct Awaiting {
    nonce: u64,
    deadline: Instant,
}

impl Session<'_> {
    async fn run(&mut self, stream: &mut SplitStream<WebSocket>) {
        let config = &self.state.config;
        let mut next_ping = Instant::now() + config.ping_interval;
        let mut awaiting: Option<Awaiting> = None;
        let mut nonce = 0_u64;
        loop {
            let wake = awaiting.as_ref().map_or(next_ping, |a| a.deadline);
            let message = tokio::select! {
                () = self.out.closer().closed() => return,
                () = self.state.stop.cancelled() => {
                    self.out.closer().close(close_code::GOING_AWAY, "Clara is shutting down");
                    return;
                }
                () = tokio::time::sleep_until(wake) => {
                    if awaiting.is_some() {
                        tracing::info!(platform = %self.platform, connection = %self.link.id, "an adapter missed its pong; dropping it");
                        let message = format!("No pong arrived within {} ms.", millis(config.pong_timeout));
                        self.out.fail(error(ErrorCode::PingTimeout, message, None), close_code::PING_TIMEOUT);
                        return;
                    }
                    nonce += 1;
                    // A full queue keeps the ping out; then no pong comes and the
                    // deadline closes the connection, which is what a stuck adapter needs.
                    self.out.try_push(&ServerFrame::Ping(PingFrame { nonce }));
                    awaiting = Some(Awaiting { nonce, deadline: Instant::now() + config.pong_timeout });
                    continue;
                }
                message = stream.next() => message,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    self.out.answer(&binary_error()).await;
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(e)) => {
                    read_failed(self.out, e);
                    return;
                }
                Some(Ok(Message::Close(_))) | None => return,
            };
            match decode_client(text.as_bytes(), config.max_frame_bytes) {
                Ok(ClientFrame::Pong(PingFrame { nonce: answered })) => {
                    if awaiting.as_ref().is_some_and(|a| a.nonce == answered) {
                        awaiting = None;
                        next_ping = Instant::now() + config.ping_interval;
                    }
                }
                Ok(frame) => self.handle(frame).await,
                Err(e) => {
                    tracing::debug!(platform = %self.platform, code = e.code().as_str(), "an adapter's frame could not be read");
                    self.out
                        .answer(&ServerFrame::Error(e.to_error_frame()))
                        .await;
                }
            }
        }
    }

    async fn handle(&mut self, frame: ClientFrame) {
        let host = self.state.host.as_ref();
        match frame {
            ClientFrame::Inbound(frame) => {
                let answer = match frame.to_core(self.platform, now_ms()) {
                    Ok(inbound) => ingress_frame(frame.id, host.submit(inbound).await),
                    Err(why) => ServerFrame::Error(error(
                        ErrorCode::InvalidFrame,
                        format!("The inbound frame is invalid: {why}."),
                        Some(frame.id),
                    )),
                };
                self.out.answer(&answer).await;
            }
            ClientFrame::Typing(p) => {
                host.typing(&p.conversation.to_core(self.platform), &p.author.to_core())
                    .await;
            }
            ClientFrame::Cancel(p) => {
                host.stop(&p.conversation.to_core(self.platform), &p.author.to_core())
                    .await;
            }
            ClientFrame::NewSession(f) => {
                let conversation = f.conversation.to_core(self.platform);
                let answer = match host.new_session(&conversation, &f.author.to_core()).await {
                    Ok(()) => ServerFrame::Done(DoneFrame { re: f.id }),
                    Err(e) => ServerFrame::Rejected(rejected_frame(f.id, &e)),
                };
                self.out.answer(&answer).await;
            }
            ClientFrame::Sent(f) => {
                let request_id = f.request_id;
                if !self.link.sent(request_id, f.message_id) {
                    self.unknown_request(request_id).await;
                }
            }
            ClientFrame::SendFailed(f) => {
                let request_id = f.request_id;
                if !self.link.send_failed(f) {
                    self.unknown_request(request_id).await;
                }
            }
            ClientFrame::Ping(p) => self.out.answer(&ServerFrame::Pong(p)).await,
            // Pongs are handled by the loop, which owns the ping state.
            ClientFrame::Pong(_) => {}
            ClientFrame::Hello(_) => {
                let message =
                    "The handshake is already done; send hello once per connection.".to_owned();
                self.out.error(ErrorCode::OutOfOrder, message, None).await;
            }
        }
    }

    async fn unknown_request(&self, request_id: u64) {
        let message = format!(
            "No send with request_id {request_id} is waiting for an answer (answered twice, or too late)."
        );
        self.out
            .error(ErrorCode::UnknownRequest, message, None)
            .await;
    }
}

/// A read failed: the connection is over. A message over the hard cap is
/// named as such (1009); anything else is a broken connection.
fn read_failed(out: &Outgoing, error: axum::Error) {
    let too_big = error
        .into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        out.closer().close(
            close_code::TOO_BIG,
            "the message is over the gateway's hard size cap",
        );
    }
}

fn error(code: ErrorCode, message: String, re: Option<String>) -> ErrorFrame {
    ErrorFrame { code, message, re }
}

fn binary_error() -> ServerFrame {
    ServerFrame::Error(error(
        ErrorCode::Malformed,
        "Frames are JSON text messages; binary messages are not used.".to_owned(),
        None,
    ))
}

fn hex_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

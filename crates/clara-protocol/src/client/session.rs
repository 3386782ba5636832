//! The client's connection loop: connect, answer the challenge, serve the
//! connection until it drops, wait, and again.

use super::deliveries::Deliveries;
use super::{Answer, ClientError, Link, Shared};
use crate::convert::{accepted_of, ingress_error, outbound_of};
use crate::{
    ClientFrame, ErrorCode, Hello, PROTOCOL_VERSION, PingFrame, ServerFrame, Welcome,
    decode_server, encode,
};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Reader = futures::stream::SplitStream<Socket>;

/// How long the writer gets to send a close frame when the client stops.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Keeps a connection up until the client is closed. With `first`, the first
/// attempt's outcome is reported there, and a failed first attempt ends it.
pub(crate) async fn keep_connected(
    shared: Arc<Shared>,
    mut first: Option<oneshot::Sender<Result<(), ClientError>>>,
) {
    let mut attempt: u32 = 0;
    while !shared.stop.is_cancelled() {
        match connect_once(&shared).await {
            Ok((socket, welcome)) => {
                attempt = 0;
                if let Some(first) = first.take() {
                    let _ = first.send(Ok(()));
                }
                serve(&shared, socket, &welcome).await;
            }
            Err(error) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                    return;
                }
                tracing::warn!(%error, "could not connect to the gateway; will retry");
                attempt = attempt.saturating_add(1);
            }
        }
        // `attempt` failed attempts since the last connection: the wait after
        // a drop is the base, then it doubles with each failure.
        let delay = shared
            .config
            .backoff
            .jittered(attempt.saturating_add(1), rand::random::<f64>());
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Connects and completes the handshake.
async fn connect_once(shared: &Shared) -> Result<(Socket, Welcome), ClientError> {
    let config = &shared.config;
    let attempt = async {
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(config.max_frame_bytes))
            .max_frame_size(Some(config.max_frame_bytes));
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
            config.url.as_str(),
            Some(ws_config),
            true,
        )
        .await
        .map_err(|e| ClientError::Unreachable {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
        let challenge = match next_frame(&mut socket, config.max_frame_bytes).await? {
            ServerFrame::Challenge(challenge) => challenge,
            other => return Err(unexpected(&other)),
        };
        if !challenge.versions.contains(&PROTOCOL_VERSION) {
            return Err(ClientError::Handshake(format!(
                "the gateway speaks versions {:?}, not {PROTOCOL_VERSION}",
                challenge.versions
            )));
        }
        let hello = ClientFrame::Hello(Hello {
            platform: config.platform.clone(),
            secret: None,
            proof: config.secret.as_ref().map(|s| s.proof(&challenge.nonce)),
            capabilities: shared.capabilities.clone(),
            adapter: config.adapter.clone(),
        });
        socket
            .send(Message::text(encode(&hello)))
            .await
            .map_err(|e| ClientError::Handshake(e.to_string()))?;
        loop {
            match next_frame(&mut socket, config.max_frame_bytes).await? {
                ServerFrame::Welcome(welcome) => return Ok((socket, welcome)),
                ServerFrame::Error(e) if e.code == ErrorCode::Unauthorized => {
                    return Err(ClientError::Unauthorized(e.message));
                }
                ServerFrame::Error(e) => {
                    return Err(ClientError::Handshake(format!(
                        "{} ({})",
                        e.message.trim_end_matches('.'),
                        e.code.as_str()
                    )));
                }
                ServerFrame::Ping(PingFrame { nonce }) => {
                    let pong = encode(&ClientFrame::Pong(PingFrame { nonce }));
                    socket
                        .send(Message::text(pong))
                        .await
                        .map_err(|e| ClientError::Handshake(e.to_string()))?;
                }
                other => return Err(unexpected(&other)),
            }
        }
    };
    tokio::select! {
        () = shared.stop.cancelled() => Err(ClientError::Closed),
        result = tokio::time::timeout(config.connect_timeout, attempt) => {
            result.unwrap_or(Err(ClientError::Timeout))
        }
    }
}

/// The next frame during the handshake.
async fn next_frame(socket: &mut Socket, max: usize) -> Result<ServerFrame, ClientError> {
    loop {
        let message = socket.next().await.ok_or_else(|| {
            ClientError::Handshake("the gateway closed the connection".to_owned())
        })?;
        match message {
            Ok(Message::Text(text)) => {
                return decode_server(text.as_bytes(), max)
                    .map_err(|e| ClientError::Handshake(e.to_string()));
            }
            Ok(Message::Close(frame)) => {
                let reason =
                    frame.map_or_else(String::new, |f| format!(" ({} {})", f.code, f.reason));
                return Err(ClientError::Handshake(format!(
                    "the gateway closed the connection{reason}"
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(ClientError::Handshake(e.to_string())),
        }
    }
}

fn unexpected(frame: &ServerFrame) -> ClientError {
    ClientError::Handshake(format!(
        "the gateway sent {} during the handshake",
        frame.type_name()
    ))
}

/// Serves a connection until it drops or the client stops.
async fn serve(shared: &Arc<Shared>, socket: Socket, welcome: &Welcome) {
    let config = &shared.config;
    let (mut sink, mut reader) = socket.split();
    let (frames, mut queued) = mpsc::channel::<String>(config.outgoing_queue.max(1));
    let ended = tokio_util::sync::CancellationToken::new();
    let writer_ended = ended.clone();
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                () = writer_ended.cancelled() => break,
                next = queued.recv() => {
                    let Some(text) = next else { break };
                    if sink.send(Message::text(text)).await.is_err() {
                        writer_ended.cancel();
                        return;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
    });
    *shared.link.lock() = Some(Link {
        frames: frames.clone(),
        max_frame_bytes: welcome.max_frame_bytes,
    });
    shared.connected.send_replace(true);
    tracing::info!(connection = %welcome.connection, platform = %config.platform, "connected to the gateway");

    let mut deliveries = Deliveries::new(
        Arc::clone(&shared.sink),
        config.platform.clone(),
        frames.clone(),
    );
    read_loop(shared, &mut reader, &frames, &mut deliveries, &ended).await;

    shared.disconnected();
    ended.cancel();
    let _ = writer.await;
    tracing::info!(connection = %welcome.connection, "disconnected from the gateway");
}

async fn read_loop(
    shared: &Shared,
    reader: &mut Reader,
    frames: &mpsc::Sender<String>,
    deliveries: &mut Deliveries,
    ended: &tokio_util::sync::CancellationToken,
) {
    let config = &shared.config;
    let mut next_ping = Instant::now() + config.ping_interval;
    let mut awaiting: Option<(u64, Instant)> = None;
    let mut nonce = 0_u64;
    loop {
        let wake = awaiting.map_or(next_ping, |(_, deadline)| deadline);
        let message = tokio::select! {
            () = shared.stop.cancelled() => return,
            () = ended.cancelled() => return,
            () = tokio::time::sleep_until(wake) => {
                if awaiting.is_some() {
                    tracing::warn!("the gateway missed its pong; reconnecting");
                    return;
                }
                deliveries.retire_idle();
                nonce += 1;
                let _ = frames.try_send(encode(&ClientFrame::Ping(PingFrame { nonce })));
                awaiting = Some((nonce, Instant::now() + config.pong_timeout));
                continue;
            }
            message = reader.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                if let Some(frame) = frame {
                    tracing::info!(code = %frame.code, reason = %frame.reason, "the gateway closed the connection");
                }
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(tungstenite::Error::Capacity(e))) => {
                tracing::warn!(error = %e, "the gateway sent a frame over the limit");
                return;
            }
            Some(Err(_)) | None => return,
        };
        let frame = match decode_server(text.as_bytes(), config.max_frame_bytes) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(
                    code = e.code().as_str(),
                    "a frame from the gateway could not be read"
                );
                continue;
            }
        };
        match frame {
            ServerFrame::Accepted(f) => {
                answer(shared, f.re, Answer::Accepted(accepted_of(f.outcome)))
            }
            ServerFrame::Rejected(f) => {
                let error = ingress_error(&f);
                answer(shared, f.re, Answer::Rejected(error));
            }
            ServerFrame::Done(f) => answer(shared, f.re, Answer::Done),
            ServerFrame::Error(e) => match e.re.clone() {
                Some(re) => answer(shared, re, Answer::Error(e)),
                None => {
                    tracing::warn!(code = e.code.as_str(), message = %e.message, "the gateway reported an error");
                }
            },
            ServerFrame::Ping(p) => {
                let _ = frames.send(encode(&ClientFrame::Pong(p))).await;
            }
            ServerFrame::Pong(PingFrame { nonce: answered }) => {
                if awaiting.is_some_and(|(n, _)| n == answered) {
                    awaiting = None;
                    next_ping = Instant::now() + config.ping_interval;
                }
            }
            ServerFrame::Challenge(_) | ServerFrame::Welcome(_) => {
                tracing::warn!("the gateway repeated its handshake; ignored");
            }
            other => {
                if let Some((conversation, outbound, request_id)) = outbound_of(other) {
                    deliveries
                        .dispatch(conversation, outbound, request_id)
                        .await;
                }
            }
        }
    }
}

fn answer(shared: &Shared, re: String, answer: Answer) {
    let waiter = shared.pending.lock().remove(&re);
    match waiter {
        Some(tx) => {
            let _ = tx.send(answer);
        }
        None => tracing::debug!(%re, "an answer came for a request nobody waits for"),
    }
}

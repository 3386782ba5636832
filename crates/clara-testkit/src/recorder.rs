//! What every fake shares: recording requests, waiting for them, counting how streamed
//! answers ended, and serving on `127.0.0.1` until shut down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::RecordedRequest;

/// A poisoned lock only means another test thread panicked; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The replies a fake has been scripted to give (of type `R`), the requests it
/// received, the streams it sent, and its shutdown switch.
pub(crate) struct Recorder<R> {
    /// The fake's name, for panic messages (`FakeOpenAi`, ...).
    name: &'static str,
    script: Mutex<VecDeque<R>>,
    requests: Mutex<Vec<RecordedRequest>>,
    arrived: Notify,
    streams: Arc<StreamCounts>,
    shutdown: CancellationToken,
}

/// How many streamed answers ended early or ran to the end.
#[derive(Default)]
struct StreamCounts {
    dropped: AtomicUsize,
    completed: AtomicUsize,
}

impl<R> Recorder<R> {
    /// An empty recorder for the fake called `name`.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            streams: Arc::new(StreamCounts::default()),
            shutdown: CancellationToken::new(),
        }
    }

    /// Queues a reply; queued replies answer requests in arrival order.
    pub(crate) fn push(&self, reply: R) {
        lock(&self.script).push_back(reply);
    }

    /// The next queued reply, if any.
    pub(crate) fn next_reply(&self) -> Option<R> {
        lock(&self.script).pop_front()
    }

    /// Binds 127.0.0.1:`port` (0 for a free one), serves `app` until
    /// [`Recorder::shut_down`], and returns the bound port. Panics if it cannot bind.
    pub(crate) async fn serve(&self, port: u16, app: Router) -> u16 {
        let name = self.name;
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) => panic!("{name}: cannot bind 127.0.0.1:{port}: {e}"),
        };
        let port = match listener.local_addr() {
            Ok(addr) => addr.port(),
            Err(e) => panic!("{name}: no local address: {e}"),
        };
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(no_delay(listener), app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        port
    }

    /// Stops the server (and wakes requests waiting on [`Recorder::shutting_down`]).
    pub(crate) fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Completes when the server is shutting down.
    pub(crate) async fn shutting_down(&self) {
        self.shutdown.cancelled().await;
    }

    /// Records one request and wakes the waiters; returns the body parsed as JSON
    /// (`None` when it is not JSON; it is recorded as `Value::Null` then).
    pub(crate) fn record(&self, headers: &HeaderMap, body: &Bytes) -> Option<Value> {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        lock(&self.requests).push(RecordedRequest {
            body: parsed.clone().unwrap_or(Value::Null),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
        self.arrived.notify_waiters();
        parsed
    }

    /// Every request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// How many requests arrived, without copying them.
    pub(crate) fn request_count(&self) -> usize {
        lock(&self.requests).len()
    }

    /// Waits until at least `n` requests arrived and returns them all. Panics after `timeout`.
    pub(crate) async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before checking, so an arrival in between is not missed.
            let arrived = self.arrived.notified();
            if self.request_count() >= n {
                return self.requests();
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{}: expected {n} request(s) within {timeout:?}, got {}",
                    self.name,
                    self.request_count()
                );
            }
        }
    }

    /// Streams the client dropped before the server finished sending them.
    pub(crate) fn dropped_streams(&self) -> usize {
        self.streams.dropped.load(Ordering::SeqCst)
    }

    /// Streams sent to the end.
    pub(crate) fn completed_streams(&self) -> usize {
        self.streams.completed.load(Ordering::SeqCst)
    }

    /// A body sending `frames`, each after its pause, counted as completed when the
    /// client took the last frame and as dropped when it went away before.
    pub(crate) fn stream_body(&self, frames: Vec<(Bytes, Duration)>) -> Body {
        let guard = StreamGuard {
            counts: Arc::clone(&self.streams),
            finished: false,
        };
        let body = futures::stream::unfold(
            (frames.into_iter(), guard),
            |(mut frames, mut guard)| async move {
                let (frame, pause) = frames.next()?;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if frames.len() == 0 {
                    guard.finished = true;
                }
                Some((Ok::<_, Infallible>(frame), (frames, guard)))
            },
        );
        Body::from_stream(body)
    }
}

/// Counts how a streamed answer ended: dropped with the body (client went away) before
/// the last frame was handed over, or after.
struct StreamGuard {
    counts: Arc<StreamCounts>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.finished {
            &self.counts.completed
        } else {
            &self.counts.dropped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// Defines a fake's server type: the struct (`shared: Arc<Shared>`, `port`), a private
/// `launch` that serves its routes, the public methods over its [`Recorder`]
/// (`requests`, `request_count`, `wait_for_requests`, `dropped_streams`,
/// `completed_streams`), its `Debug` (the base URL) and the `Drop` that stops the server.
/// The calling module has a `Shared` with a `recorder: Recorder<_>` field, and the fake a
/// `base_url` method; `$what` names the requests it records, e.g. `"chat-completions"`.
macro_rules! fake_server {
    ($(#[$attr:meta])* $fake:ident, $what:literal) => {
        $(#[$attr])*
        pub struct $fake {
            shared: std::sync::Arc<Shared>,
            port: u16,
        }

        impl $fake {
            /// Serves `routes` on 127.0.0.1:`port` (0 for a free one). Panics if it cannot bind.
            async fn launch(shared: Shared, port: u16, routes: axum::Router<std::sync::Arc<Shared>>) -> Self {
                let shared = std::sync::Arc::new(shared);
                let app = routes.with_state(std::sync::Arc::clone(&shared));
                let port = shared.recorder.serve(port, app).await;
                Self { shared, port }
            }

            #[doc = concat!("Every ", $what, " request so far, in arrival order.")]
            pub fn requests(&self) -> Vec<$crate::RecordedRequest> {
                self.shared.recorder.requests()
            }

            #[doc = concat!("How many ", $what, " requests arrived, without copying them.")]
            pub fn request_count(&self) -> usize {
                self.shared.recorder.request_count()
            }

            /// Waits until at least `n` requests arrived and returns them all. Panics after `timeout`.
            pub async fn wait_for_requests(
                &self,
                n: usize,
                timeout: std::time::Duration,
            ) -> Vec<$crate::RecordedRequest> {
                self.shared.recorder.wait_for_requests(n, timeout).await
            }

            /// Streams the client dropped before the server finished sending them.
            pub fn dropped_streams(&self) -> usize {
                self.shared.recorder.dropped_streams()
            }

            /// Streams sent to the end, the last frame included.
            pub fn completed_streams(&self) -> usize {
                self.shared.recorder.completed_streams()
            }
        }

        impl std::fmt::Debug for $fake {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($fake))
                    .field("base_url", &self.base_url())
                    .finish_non_exhaustive()
            }
        }

        impl Drop for $fake {
            fn drop(&mut self) {
                self.shared.recorder.shut_down();
            }
        }
    };
}
pub(crate) use fake_server;

/// A listener whose connections send small writes at once (`TCP_NODELAY`), as
/// real API servers do: with Nagle's algorithm a streamed chunk can wait for
/// the client's delayed ACK, 40 ms on Linux.
pub(crate) fn no_delay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

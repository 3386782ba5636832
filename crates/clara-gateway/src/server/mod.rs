//! The gateway's WebSocket endpoint (`GET /gateway`): adapters in other
//! processes connect, prove the secret, declare their platform, and from then on
//! are that platform's [`OutboundSink`] — Clara's replies for the platform go to
//! the adapter as frames, and the adapter's frames reach the engine.
//!
//! - [`connection`]: one adapter's connection: handshake, frames in, liveness;
//! - [`outgoing`]: its bounded outgoing queue and the frames Clara sends;
//! - [`route`]: the platform's sink in the engine, which follows the platform's
//!   newest live connection (an adapter that reconnects takes over at once).

mod connection;
mod outgoing;
mod route;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use axum::routing::get;
use clara_core::port::{Assistant, OutboundSink};
use clara_protocol::{DEFAULT_MAX_FRAME_BYTES, GatewaySecret};
use route::Routes;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the gateway protocol is served.
pub const GATEWAY_PATH: &str = "/gateway";

/// The platform name of the web page and HTTP API ([`crate::http`]), reserved
/// by default.
pub const WEB_PLATFORM: &str = "web";

/// What the gateway needs of Clara: the [`Assistant`] an adapter talks to, and a
/// place to attach the platform's sink. The engine is one; tests use fakes.
pub trait AdapterHost: Assistant {
    /// Makes `sink` the deliverer of replies for `platform`.
    fn attach(&self, platform: &str, sink: Arc<dyn OutboundSink>);
}

impl AdapterHost for clara_runtime::Engine {
    fn attach(&self, platform: &str, sink: Arc<dyn OutboundSink>) {
        clara_runtime::Engine::attach(self, platform, sink);
    }
}

/// The gateway's limits and timeouts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The secret adapters must prove (`CLARA_GATEWAY_SECRET`); `None` admits any
    /// adapter, which start-up allows on a loopback address only.
    pub secret: Option<GatewaySecret>,
    /// The largest frame read; a larger one gets a `too_large` error. Frames over
    /// twice this (at least 64 KiB more) are cut off by the WebSocket layer,
    /// which closes the connection (1009).
    pub max_frame_bytes: usize,
    /// How many frames may wait for a slow adapter before Clara's deliveries wait.
    pub outgoing_queue: usize,
    /// How long a new connection has to send its `hello`.
    pub handshake_timeout: Duration,
    /// How long after the last `pong` (or the handshake) the gateway pings.
    pub ping_interval: Duration,
    /// How long the gateway waits for a `pong` before it drops the connection.
    pub pong_timeout: Duration,
    /// How long a frame waits for room in a full outgoing queue: a delivery then
    /// fails; an answer to the adapter's own frame closes the connection.
    pub send_timeout: Duration,
    /// How long a `send` waits for the adapter's `sent`.
    pub send_ack_timeout: Duration,
    /// Platforms served inside Clara (the web page, in-process adapters): a
    /// `hello` declaring one is refused, so an adapter can neither take over
    /// their replies nor run a second bot on the same account.
    pub reserved_platforms: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            secret: None,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            outgoing_queue: 256,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(10),
            send_ack_timeout: Duration::from_secs(15),
            // The web page's platform, served by `crate::http` on the same port.
            reserved_platforms: vec![WEB_PLATFORM.to_owned()],
        }
    }
}

impl ServerConfig {
    /// The size at which the WebSocket layer itself refuses a message.
    fn hard_frame_cap(&self) -> usize {
        self.max_frame_bytes
            .saturating_mul(2)
            .max(self.max_frame_bytes.saturating_add(64 * 1024))
    }
}

/// Everything the connections share.
pub(crate) struct GatewayState {
    pub(crate) host: Arc<dyn AdapterHost>,
    pub(crate) config: ServerConfig,
    pub(crate) routes: Routes,
    /// Cancelled when Clara shuts down: every connection closes (1001).
    pub(crate) stop: CancellationToken,
}

/// The gateway protocol's routes, to merge into the gateway port's router.
/// Connections close when `stop` is cancelled.
pub fn router(host: Arc<dyn AdapterHost>, config: ServerConfig, stop: CancellationToken) -> Router {
    let state = Arc::new(GatewayState {
        host,
        config,
        routes: Routes::default(),
        stop,
    });
    Router::new()
        .route(GATEWAY_PATH, get(upgrade))
        .with_state(state)
}

async fn upgrade(State(state): State<Arc<GatewayState>>, ws: WebSocketUpgrade) -> Response {
    let cap = state.config.hard_frame_cap();
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| connection::serve(state, socket))
}

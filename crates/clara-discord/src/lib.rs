//! Discord: the gateway WebSocket for events, REST for calls.
//!
//! - **In:** one gateway session (twilight-gateway: heartbeats, RESUME after a
//!   drop, a fresh IDENTIFY after an invalid session, RECONNECT). Direct
//!   messages are always answered; in servers Clara answers when mentioned or
//!   replied to, in the allowed servers and channels only. Reply chains (up to
//!   `max_messages` links) travel with a message as context, image attachments
//!   as images, other attachments (and images past those the model looks at)
//!   as files up to `max_file_mb` — a larger one is left out with a line in
//!   the text saying so —, `DISCORD_STOP_PHRASES` stop the reply in flight,
//!   and typing holds a burst open. `!high`/`!mid`/`!low` pass through to the
//!   engine.
//! - **Out:** one message grown by edits (1.2 s apart), continued in a new
//!   message past Discord's 2000 characters; the typing indicator until the
//!   reply shows; files as attachments of a message of their own (a
//!   multipart upload, up to `max_upload_mb`); rate-limit buckets and 429s
//!   honoured (see `ratelimit.rs`).
//!
//! Every base URL is configurable (`DISCORD_API_URL`, `DISCORD_GATEWAY_URL`) so
//! tests and self-hosted proxies can stand in for Discord. Note that a RESUME
//! goes to the `resume_gateway_url` Discord's READY names, as Discord asks.

mod addressing;
mod approval;
mod config;
mod error;
mod files;
mod gateway;
mod inbound;
mod ratelimit;
mod rest;
mod sink;
mod wire;

pub use config::{
    DEFAULT_API_URL, DEFAULT_GATEWAY_URL, DEFAULT_MAX_MESSAGES, DiscordConfig, DiscordSettings,
    parse_ids, parse_phrases,
};
pub use error::DiscordError;
pub use files::{DEFAULT_MAX_FILE_MB, DEFAULT_MAX_UPLOAD_MB};
pub use sink::{EDIT_COOLDOWN, MAX_MESSAGE_CHARS};

use addressing::{Me, Rules};
use async_trait::async_trait;
use clara_core::backoff::Backoff;
use clara_core::component::{Component, ConfigError, EnvKey};
use clara_core::port::{Adapter, AdapterError, Assistant, OutboundSink, Platform};
use clara_core::stop::StopPhrases;
use futures::StreamExt;
use gateway::{Context, Dispatcher};
use rest::{Rest, RestError};
use sink::{Channels, DiscordSink};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use twilight_gateway::{CloseFrame, Intents, Shard, ShardId};

/// The platform's name in conversations and event ids.
pub const PLATFORM: &str = "discord";

/// The pauses between attempts to reach Discord at start.
const START_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// How long a clean shutdown waits for the gateway to take the close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// The Discord adapter: [`Discord::sink`] is attached to Clara, then
/// [`Discord::run`] runs until stopped.
pub struct Discord {
    config: DiscordConfig,
    rest: Arc<Rest>,
    channels: Arc<Channels>,
}

impl std::fmt::Debug for Discord {
    // The channels hold per-channel reply state, of no use in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discord")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Component for Discord {
    const NAME: &'static str = PLATFORM;
    const ENV: &'static [EnvKey] = &[
        ("DISCORD_BOT_TOKEN", "token"),
        ("DISCORD_ALLOWED_SERVERS", "allowed_servers"),
        ("DISCORD_ALLOWED_CHANNELS", "allowed_channels"),
        ("DISCORD_MAX_MESSAGES", "max_messages"),
        ("DISCORD_STOP_PHRASES", "stop_phrases"),
        ("DISCORD_API_URL", "api_url"),
        ("DISCORD_GATEWAY_URL", "gateway_url"),
    ];
    type Settings = DiscordSettings;
}

impl Platform for Discord {
    fn adapter(settings: DiscordSettings) -> Result<Option<Box<dyn Adapter>>, ConfigError> {
        let Some(config) = settings.config()? else {
            return Ok(None);
        };
        let discord = Discord::new(config).map_err(ConfigError::new)?;
        Ok(Some(Box::new(discord)))
    }
}

#[async_trait]
impl Adapter for Discord {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn sink(&self) -> Arc<dyn OutboundSink> {
        Discord::sink(self)
    }

    async fn run(
        self: Box<Self>,
        assistant: Arc<dyn Assistant>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        Discord::run(*self, assistant, shutdown)
            .await
            .map_err(AdapterError::new)
    }
}

impl Discord {
    /// Checks the settings and builds the REST client. Nothing is sent yet.
    pub fn new(config: DiscordConfig) -> Result<Self, DiscordError> {
        let config = config.validated()?;
        let rest = Rest::new(&config.api_url, config.token.expose())?;
        Ok(Self {
            config,
            rest: Arc::new(rest),
            channels: Arc::new(Channels::default()),
        })
    }

    /// Where Clara's replies go: register it with the engine as `discord`.
    pub fn sink(&self) -> Arc<dyn OutboundSink> {
        Arc::new(DiscordSink::new(
            Arc::clone(&self.rest),
            Arc::clone(&self.channels),
            self.config.max_upload_bytes,
        ))
    }

    /// Connects to Discord and hands every message for Clara to `assistant`
    /// until `stop` fires. Network trouble is waited out; it returns an error
    /// only when Discord refuses the bot for good (a bad token, a missing
    /// privileged intent).
    pub async fn run(
        self,
        assistant: Arc<dyn Assistant>,
        stop: CancellationToken,
    ) -> Result<(), DiscordError> {
        let Some(me) = self.who_am_i(&stop).await? else {
            return Ok(());
        };
        tracing::info!(bot = %me.name, "Discord bot account checked");
        let intents = Intents::GUILD_MESSAGES
            | Intents::DIRECT_MESSAGES
            | Intents::MESSAGE_CONTENT
            | Intents::GUILD_MESSAGE_TYPING
            | Intents::DIRECT_MESSAGE_TYPING;
        let gateway =
            twilight_gateway::ConfigBuilder::new(self.config.token.expose().to_owned(), intents)
                .proxy_url(self.config.gateway_url.clone())
                .build();
        let mut shard = Shard::with_config(ShardId::ONE, gateway);
        let workers = stop.child_token();
        let mut dispatcher = Dispatcher::new(
            Context {
                assistant,
                rest: Arc::clone(&self.rest),
                channels: Arc::clone(&self.channels),
                me,
                max_chain: self.config.max_messages,
                max_file_bytes: self.config.max_file_bytes,
                stop: workers.clone(),
            },
            Rules {
                allowed_servers: self.config.allowed_servers.clone(),
                allowed_channels: self.config.allowed_channels.clone(),
                stop_phrases: StopPhrases::new(&self.config.stop_phrases),
            },
        );
        let mut last_close: Option<(u16, String)> = None;
        let result = loop {
            let next = tokio::select! {
                () = stop.cancelled() => break Ok(()),
                next = shard.next() => next,
            };
            match next {
                None => {
                    let (code, reason) = last_close.take().unwrap_or((0, String::new()));
                    break Err(DiscordError::GatewayClosed { code, reason });
                }
                Some(Err(e)) => log_gateway_error(&e),
                Some(Ok(twilight_gateway::Message::Close(frame))) => {
                    if let Some(frame) = &frame {
                        tracing::info!(code = frame.code, reason = %frame.reason, "Discord gateway closed the connection");
                    }
                    last_close = frame.map(|f| (f.code, f.reason.into_owned()));
                }
                Some(Ok(twilight_gateway::Message::Text(json))) => {
                    // A full channel queue holds the gateway; a stop must not wait for it.
                    tokio::select! {
                        () = stop.cancelled() => break Ok(()),
                        () = dispatcher.handle(&json) => {}
                    }
                }
            }
        };
        workers.cancel();
        if result.is_ok() {
            shard.close(CloseFrame::NORMAL);
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(item) = shard.next().await {
                    if matches!(item, Ok(twilight_gateway::Message::Close(_))) {
                        break;
                    }
                }
            })
            .await;
        }
        result
    }

    /// The bot's own account, asked until Discord answers (`None`: stopped first).
    async fn who_am_i(&self, stop: &CancellationToken) -> Result<Option<Me>, DiscordError> {
        let mut failures = 0;
        loop {
            let attempt = tokio::select! {
                () = stop.cancelled() => return Ok(None),
                attempt = self.rest.current_user() => attempt,
            };
            match attempt {
                Ok(user) => {
                    return Ok(Some(Me {
                        id: user.id,
                        name: user.display_name().to_owned(),
                    }));
                }
                Err(RestError::Unauthorized) => return Err(DiscordError::Unauthorized),
                Err(e) => {
                    failures += 1;
                    let pause = START_BACKOFF.delay(failures);
                    tracing::warn!(error = %e, retry_in_s = pause.as_secs(), "Discord is not answering yet");
                    tokio::select! {
                        () = stop.cancelled() => return Ok(None),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
}

/// Says what went wrong on the gateway, without the payload (a whole message
/// of someone's) that twilight puts in an unreadable event's error.
fn log_gateway_error(error: &twilight_gateway::error::ReceiveMessageError) {
    use std::error::Error as _;
    use twilight_gateway::error::ReceiveMessageErrorType;
    let cause = error.source().map(ToString::to_string).unwrap_or_default();
    match error.kind() {
        ReceiveMessageErrorType::Deserializing { event } => tracing::warn!(
            %cause,
            bytes = event.len(),
            "a Discord gateway event could not be read and was skipped"
        ),
        // The shard reconnects by itself, with backoff.
        _ => tracing::warn!(%error, %cause, "Discord gateway trouble; reconnecting"),
    }
}

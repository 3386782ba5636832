//! Telegram: the Bot API over long polling.
//!
//! Built on a thin typed client of our own ([`api`](self) module, on the
//! workspace's reqwest): Clara needs a few Bot API calls, and owning them keeps
//! the build light (frankenstein, the recommended crate, is the heaviest single
//! crate of the core build), lets every base URL be configured, and gives exact
//! control of what matters here — `retry_after`, `409 Conflict`, errors that
//! never carry the token.
//!
//! # What the adapter does
//!
//! - **Polling**: `getUpdates` with `timeout` (long polling, never a busy loop)
//!   and an `offset` confirmed only after the message was handed to Clara; see
//!   `poller.rs`. Network failures and 5xx are retried with exponential backoff,
//!   429 waits Telegram's `retry_after`, a refused token (401) stops the adapter
//!   with [`TelegramError::Api`].
//! - **Conversations**: a private chat is [`ChannelKind::Direct`](clara_core::ChannelKind::Direct), a group or
//!   supergroup [`ChannelKind::Group`](clara_core::ChannelKind::Group) (channels are ignored). The conversation's
//!   channel is the chat id (`"-100123"`), or `"chat:topic"` in a forum topic,
//!   where replies go to the same topic. Event ids are
//!   `telegram:{chat_id}:{message_id}`, so a redelivered update is answered once.
//! - **Groups**: Clara answers a message that mentions her (`@username` from
//!   `getMe`, or a mention of her user) or replies to one of her messages, and
//!   commands (`/cmd` or `/cmd@her_username`; a bare unknown command is left to
//!   other bots). The mention is taken out of the text. Messages from bots are
//!   never answered.
//! - **Photos** (and images sent as files): the largest size under
//!   [`TelegramConfig::max_image_bytes`] is downloaded (`getFile`, then the file
//!   URL) and passed as [`Image::Bytes`](clara_core::Image) — never as a URL,
//!   which would contain the token. The caption is the text; a photo without
//!   one reads `[a photo]`.
//! - **Files** (documents, audio, voice notes, videos, video notes): downloaded
//!   the same way into [`Inbound::files`](clara_core::Inbound) with their name
//!   (an unnamed one is called after its kind, `voice-<file_unique_id>.ogg`)
//!   and type; a picture sent as a file is also shown to the model. A file
//!   over [`TelegramConfig::max_file_bytes`] (or the Bot API's 20 MB download
//!   limit) is not downloaded: the message goes on with one line saying so
//!   (`[report.pdf was not kept: 25 MB, the limit is 20 MB]`), which the model
//!   passes on.
//! - **Replies**: the message replied to (or the part of it quoted) becomes
//!   [`Inbound::replying_to`](clara_core::Inbound), marked when it was Clara's.
//! - **Commands**: `/start` and `/help` greet and list the commands; `/new`
//!   starts a fresh session ([`Assistant::new_session`]) and says so; `/forget
//!   <what>` asks Clara to forget it (a message her memory tools act on — the
//!   adapter cannot touch memory), `/forget` alone explains itself; `/tier
//!   high|mid|low|default` sets the model tier for the chat (kept in the
//!   adapter's memory until restart, sent as [`Inbound::tier`](clara_core::Inbound);
//!   a `!high` prefix still wins for one message); `/stop` stops the reply being
//!   written.
//! - **Replies out** ([`TelegramDelivery`]): `edits` (default) grows one message
//!   by `editMessageText`, at most once per cooldown (1 s; in a group at most
//!   once per [`TelegramConfig::group_write_interval`], as Telegram allows a
//!   bot about 20 messages a minute there), continued in a new message past
//!   4096 characters; `parts` sends one message per paragraph
//!   after a typing pause that fits its length, the rest dropped when the person
//!   writes again. "typing…" shows while Clara thinks. Text is sent plain (no
//!   `parse_mode`), so nothing the model writes is refused as bad markup.
//!   Answers are ordinary messages in the chat (or topic); the adapter's own
//!   answers to commands and refusals reply to the message they answer.
//! - **Files out** ([`Outbound::File`](clara_core::Outbound)): a picture by
//!   `sendPhoto` (a multipart upload), again by `sendDocument` when Telegram
//!   refuses it as a photo (over 10 MB, or of dimensions it does not take);
//!   anything else by `sendDocument`, up to 50 MB (larger is one sentence).
//! - Stickers, polls, locations and other content Clara cannot read get one
//!   sentence saying so; service messages (joins, title changes) get nothing.

mod api;
mod approval;
mod commands;
mod files;
mod poller;
mod settings;
mod sink;
mod translate;
mod types;

pub use api::ApiError;
pub use clara_core::backoff::Backoff;
pub use files::BOT_API_DOWNLOAD_LIMIT;
pub use settings::TelegramSettings;
pub use translate::PLATFORM;

use async_trait::async_trait;
use clara_core::Secret;
use clara_core::component::{Component, ConfigError};
use clara_core::pacing::{Delivery, DeliveryMode, TypingPace};
use clara_core::port::{Adapter, AdapterError, Assistant, OutboundSink, Platform};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The Bot API's public root.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";
/// The longest Telegram message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// How replies are shown.
#[derive(Clone, Debug, PartialEq)]
pub enum TelegramDelivery {
    /// One message grown by edits, at most one edit per `cooldown`.
    Edits {
        /// The least time between two edits of a reply.
        cooldown: Duration,
    },
    /// One message per paragraph, each after a typing pause.
    Parts(TypingPace),
}

impl Default for TelegramDelivery {
    fn default() -> Self {
        Self::Edits {
            cooldown: Duration::from_secs(1),
        }
    }
}

impl TelegramDelivery {
    /// `edits` or `parts`, with their default pacing.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "edits" | "edit" => Some(Self::default()),
            "parts" => Some(Self::Parts(TypingPace::default())),
            _ => None,
        }
    }
}

/// The adapter's settings, checked and complete (see [`TelegramSettings`] for
/// the `[telegram]` section they come from).
#[derive(Clone, Debug)]
pub struct TelegramConfig {
    /// The bot token from @BotFather (`TG_BOT_TOKEN`).
    pub token: Secret,
    /// The Bot API root (`TELEGRAM_API_URL`); calls go to `{root}/bot{token}/{method}`.
    pub api_url: String,
    /// How replies are shown (`TELEGRAM_DELIVERY`).
    pub delivery: TelegramDelivery,
    /// How long Telegram may hold one `getUpdates` request.
    pub poll_timeout: Duration,
    /// How long any other call may take.
    pub call_timeout: Duration,
    /// Waits after failures in a row.
    pub backoff: Backoff,
    /// The largest image downloaded for the model.
    pub max_image_bytes: u64,
    /// The largest file (document, voice note, …) a person sends that Clara
    /// keeps; the Bot API downloads at most [`BOT_API_DOWNLOAD_LIMIT`] (a local
    /// Bot API server, set as `api_url`, more).
    pub max_file_bytes: u64,
    /// The least time between two of Clara's messages or edits in one group
    /// (Telegram allows a bot about 20 a minute per group).
    pub group_write_interval: Duration,
}

impl TelegramConfig {
    /// Defaults for the bot with this token.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            token: token.into(),
            api_url: DEFAULT_API_URL.to_owned(),
            delivery: TelegramDelivery::default(),
            poll_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            max_image_bytes: 10_000_000,
            max_file_bytes: BOT_API_DOWNLOAD_LIMIT,
            group_write_interval: Duration::from_secs(3),
        }
    }
}

/// Why the adapter cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    /// No token.
    #[error("TG_BOT_TOKEN is empty; set it to the token @BotFather gave the bot")]
    MissingToken,
    /// Not a token's shape (`<digits>:<secret>`).
    #[error(
        "TG_BOT_TOKEN does not look like a Telegram bot token (expected `123456789:AA…` from @BotFather)"
    )]
    MalformedToken,
    /// The API root is not an HTTP(S) URL.
    #[error("TELEGRAM_API_URL must be an http:// or https:// URL, got {0:?}")]
    BadApiUrl(String),
    /// The HTTP client could not be set up.
    #[error("the Telegram HTTP client could not be built: {0}")]
    Client(String),
    /// Telegram refused the bot (its token).
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The Telegram adapter: a sink for Clara's replies and a polling loop for
/// people's messages.
pub struct Telegram {
    config: TelegramConfig,
    api: Arc<api::BotApi>,
    sink: Arc<sink::TelegramSink>,
}

impl std::fmt::Debug for Telegram {
    // The sink holds per-chat pacing state, of no use in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Component for Telegram {
    const NAME: &'static str = PLATFORM;
    const ENV: &'static [clara_core::component::EnvKey] = &[
        ("TG_BOT_TOKEN", "token"),
        ("TELEGRAM_API_URL", "api_url"),
        ("TELEGRAM_DELIVERY", "delivery"),
    ];
    type Settings = TelegramSettings;
}

impl Platform for Telegram {
    fn adapter(settings: TelegramSettings) -> Result<Option<Box<dyn Adapter>>, ConfigError> {
        let Some(config) = settings.config()? else {
            return Ok(None);
        };
        let telegram = Telegram::new(config).map_err(ConfigError::new)?;
        Ok(Some(Box::new(telegram)))
    }
}

#[async_trait]
impl Adapter for Telegram {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn sink(&self) -> Arc<dyn OutboundSink> {
        Telegram::sink(self)
    }

    async fn run(
        self: Box<Self>,
        assistant: Arc<dyn Assistant>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        Telegram::run(*self, assistant, shutdown)
            .await
            .map_err(AdapterError::new)
    }
}

impl Telegram {
    /// Checks the settings and builds the client; no call is made yet.
    pub fn new(config: TelegramConfig) -> Result<Self, TelegramError> {
        let token = config.token.expose().trim();
        if token.is_empty() {
            return Err(TelegramError::MissingToken);
        }
        let well_formed = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.chars().all(|c| c.is_ascii_digit())
                && !secret.is_empty()
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !well_formed {
            return Err(TelegramError::MalformedToken);
        }
        let root = config.api_url.trim();
        let scheme_ok = reqwest::Url::parse(root)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !scheme_ok {
            return Err(TelegramError::BadApiUrl(root.to_owned()));
        }
        let api = Arc::new(
            api::BotApi::new(root, token, config.call_timeout).map_err(TelegramError::Client)?,
        );
        let mode = match &config.delivery {
            TelegramDelivery::Edits { cooldown } => DeliveryMode::Edits {
                cooldown: *cooldown,
            },
            TelegramDelivery::Parts(pace) => DeliveryMode::Parts(pace.clone()),
        };
        let delivery = Delivery {
            mode,
            max_chars: MAX_MESSAGE_CHARS,
        };
        let sink = Arc::new(sink::TelegramSink::new(
            Arc::clone(&api),
            delivery,
            config.backoff,
            config.group_write_interval,
        ));
        Ok(Self { config, api, sink })
    }

    /// Where Clara's replies for [`PLATFORM`] go: attach it to the engine.
    pub fn sink(&self) -> Arc<dyn OutboundSink> {
        Arc::clone(&self.sink) as Arc<dyn OutboundSink>
    }

    /// Learns who the bot is, then polls and hands messages to `assistant` until
    /// `stop` fires. Fails only when Telegram refuses the token; everything else
    /// (network, 5xx, 429, conflicts) is waited out.
    pub async fn run(
        self,
        assistant: Arc<dyn Assistant>,
        stop: CancellationToken,
    ) -> Result<(), TelegramError> {
        let Some(me) = self.identify(&stop).await? else {
            return Ok(());
        };
        let bot = translate::BotIdentity::from_user(&me);
        tracing::info!(bot = %bot.username, "Telegram: reading messages");
        let poller = poller::Poller::new(
            self.api,
            assistant,
            bot,
            self.config.poll_timeout,
            self.config.backoff,
            self.config.max_image_bytes,
            self.config.max_file_bytes,
        );
        poller.run(&stop).await.map_err(TelegramError::Api)
    }

    /// `getMe`, retried until it answers; `None` when stopped first.
    async fn identify(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<types::User>, TelegramError> {
        let mut failures = 0;
        loop {
            let answer = tokio::select! {
                () = stop.cancelled() => return Ok(None),
                answer = self.api.get_me() => answer,
            };
            let pause = match answer {
                Ok(me) => return Ok(Some(me)),
                Err(e @ ApiError::Unauthorized { .. }) => return Err(e.into()),
                Err(ApiError::RateLimited { retry_after }) => Duration::from_secs(retry_after),
                Err(error) => {
                    failures += 1;
                    let pause = self.config.backoff.delay(failures);
                    tracing::warn!(%error, retry_in = ?pause, "Telegram is not reachable yet");
                    pause
                }
            };
            tokio::select! {
                () = stop.cancelled() => return Ok(None),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

//! Clara's replies on Discord: one message grown by edits (no faster than the
//! cooldown), continued in a new message past 2000 characters; the typing
//! indicator kept alive until the reply shows.

use super::rest::{Rest, RestError};
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ChannelKind, ConversationRef, Outbound, ThoughtId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Discord's message length limit, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// The least time between two edits of a streamed reply. Discord allows about
/// five message edits per five seconds in a channel.
pub const EDIT_COOLDOWN: Duration = Duration::from_millis(1200);
/// How often the typing indicator is renewed (Discord shows it for ten seconds).
const TYPING_RENEW: Duration = Duration::from_secs(8);
/// The longest the typing indicator is kept alive without a reply appearing.
const TYPING_MAX: Duration = Duration::from_secs(120);

/// What the adapter remembers per channel between a message and its reply.
#[derive(Default)]
struct Channel {
    /// The last message Clara took from this channel: her reply answers it.
    answering: Option<u64>,
    /// The thought whose first message was sent last (later ones continue it).
    replied_thought: Option<ThoughtId>,
    /// Stops the typing indicator's renewals.
    typing: Option<CancellationToken>,
}

/// State shared by the gateway side (which message is being answered) and the sink.
#[derive(Default)]
pub struct Channels {
    channels: Mutex<HashMap<u64, Channel>>,
}

impl Channels {
    /// Remembers that Clara took `message` in `channel`.
    pub fn answering(&self, channel: u64, message: u64) {
        self.with(channel, |c| c.answering = Some(message));
    }

    fn with<R>(&self, channel: u64, f: impl FnOnce(&mut Channel) -> R) -> R {
        // A poisoned lock only means a panic elsewhere; the map stays usable.
        let mut map = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(channel).or_default())
    }

    fn stop_typing(&self, channel: u64) {
        if let Some(t) = self.with(channel, |c| c.typing.take()) {
            t.cancel();
        }
    }
}

/// The [`OutboundSink`] for Discord.
pub struct DiscordSink {
    rest: Arc<Rest>,
    channels: Arc<Channels>,
}

impl DiscordSink {
    /// A sink making its calls through `rest`.
    pub fn new(rest: Arc<Rest>, channels: Arc<Channels>) -> Self {
        Self { rest, channels }
    }

    /// Shows "typing…" now and renews it until a reply shows, the reply ends, or
    /// [`TYPING_MAX`] passes.
    async fn typing(&self, channel: u64) -> Result<(), RestError> {
        self.rest.trigger_typing(channel).await?;
        let token = CancellationToken::new();
        if let Some(old) = self
            .channels
            .with(channel, |c| c.typing.replace(token.clone()))
        {
            old.cancel();
        }
        let rest = Arc::clone(&self.rest);
        tokio::spawn(async move {
            let renew = async {
                let mut waited = Duration::ZERO;
                while waited + TYPING_RENEW <= TYPING_MAX {
                    tokio::time::sleep(TYPING_RENEW).await;
                    waited += TYPING_RENEW;
                    if let Err(e) = rest.trigger_typing(channel).await {
                        tracing::debug!(error = %e, "renewing Discord's typing indicator failed");
                        return;
                    }
                }
            };
            tokio::select! {
                () = token.cancelled() => {}
                () = renew => {}
            }
        });
        Ok(())
    }

    /// The message a new reply message answers: the first message of a thought
    /// in a server replies to what Clara was asked; continuations and DMs do not.
    fn reply_target(
        &self,
        conversation: &ConversationRef,
        thought: ThoughtId,
        channel: u64,
    ) -> Option<u64> {
        self.channels.with(channel, |c| {
            let first = c.replied_thought != Some(thought);
            c.replied_thought = Some(thought);
            (first && conversation.kind == ChannelKind::Group)
                .then_some(c.answering)
                .flatten()
        })
    }
}

#[async_trait::async_trait]
impl OutboundSink for DiscordSink {
    fn delivery(&self) -> Delivery {
        Delivery {
            mode: DeliveryMode::Edits {
                cooldown: EDIT_COOLDOWN,
            },
            max_chars: MAX_MESSAGE_CHARS,
        }
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let channel: u64 = conversation.channel.parse().map_err(|_| {
            SinkError::Failed(format!(
                "{:?} is not a Discord channel id",
                conversation.channel
            ))
        })?;
        match outbound {
            Outbound::Typing => self
                .typing(channel)
                .await
                .map(|()| None)
                .map_err(sink_error),
            Outbound::Send { thought, text } => {
                self.channels.stop_typing(channel);
                let reply_to = self.reply_target(conversation, thought, channel);
                let id = self
                    .rest
                    .create_message(channel, &text, reply_to)
                    .await
                    .map_err(sink_error)?;
                Ok(Some(id.to_string()))
            }
            Outbound::Edit { message, text, .. } => {
                self.channels.stop_typing(channel);
                let message: u64 = message.parse().map_err(|_| {
                    SinkError::Failed("the message to edit was never sent".to_owned())
                })?;
                self.rest
                    .edit_message(channel, message, &text)
                    .await
                    .map(|()| None)
                    .map_err(sink_error)
            }
            Outbound::Error { thought, message } => {
                self.channels.stop_typing(channel);
                let reply_to = self.reply_target(conversation, thought, channel);
                self.rest
                    .create_message(channel, &message, reply_to)
                    .await
                    .map(|id| Some(id.to_string()))
                    .map_err(sink_error)
            }
            Outbound::Cancelled { .. } | Outbound::End { .. } => {
                self.channels.stop_typing(channel);
                Ok(None)
            }
            // Edit delivery never streams deltas; tool progress is not shown on Discord.
            Outbound::Delta { .. }
            | Outbound::ToolStarted { .. }
            | Outbound::ToolFinished { .. } => Ok(None),
        }
    }
}

fn sink_error(e: RestError) -> SinkError {
    match e {
        RestError::RateLimited { retry_after } => SinkError::RateLimited {
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        },
        other => SinkError::Failed(other.to_string()),
    }
}

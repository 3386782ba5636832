//! Clara's replies on Discord: one message grown by edits (no faster than the
//! cooldown), continued in a new message past 2000 characters; the typing
//! indicator kept alive until the reply shows. A question to the owner is a
//! message with three buttons (see `approval.rs`), edited without them when it
//! closes. A file is a message with it attached (Discord shows pictures
//! inline), the caption as its text, within the upload limit.

use super::approval;
use super::files;
use super::rest::{Rest, RestError};
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ChannelKind, ConversationRef, FileBlob, Outbound, ThoughtId};
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
/// Messages remembered per channel while Clara has not begun to answer them.
const MAX_TAKEN: usize = 32;
/// Channels remembered at most; past it, those without a reply showing
/// "typing…" are forgotten (their next reply just does not quote the question).
const MAX_CHANNELS: usize = 10_000;

/// What the adapter remembers per channel between a message and its reply.
#[derive(Default)]
struct Channel {
    /// (message, author) Clara took here since her last reply began, oldest
    /// first: her next reply answers them.
    taken: Vec<(u64, u64)>,
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
    /// Remembers that Clara took `message` by `author` in `channel`.
    pub fn answering(&self, channel: u64, message: u64, author: u64) {
        self.with(channel, |c| {
            if c.taken.len() == MAX_TAKEN {
                c.taken.remove(0);
            }
            c.taken.push((message, author));
        });
    }

    /// Forgets `message` in `channel`: Clara will not answer it.
    pub fn forget(&self, channel: u64, message: u64) {
        if let Some(c) = self.lock().get_mut(&channel) {
            c.taken.retain(|&(m, _)| m != message);
        }
    }

    /// The message a new reply message quotes: the first message of a thought
    /// in a server quotes the last message Clara took there — unless messages
    /// of several people wait, when which of them this thought answers is not
    /// known, and quoting none beats quoting the wrong one. Continuations and
    /// direct messages quote nothing.
    fn reply_target(&self, channel: u64, thought: ThoughtId, group: bool) -> Option<u64> {
        self.with(channel, |c| {
            if c.replied_thought == Some(thought) {
                return None;
            }
            c.replied_thought = Some(thought);
            let taken = std::mem::take(&mut c.taken);
            let &(last, author) = taken.last()?;
            (group && taken.iter().all(|&(_, a)| a == author)).then_some(last)
        })
    }

    fn with<R>(&self, channel: u64, f: impl FnOnce(&mut Channel) -> R) -> R {
        let mut map = self.lock();
        if map.len() >= MAX_CHANNELS && !map.contains_key(&channel) {
            map.retain(|_, c| c.typing.is_some());
        }
        f(map.entry(channel).or_default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Channel>> {
        // A poisoned lock only means a panic elsewhere; the map stays usable.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stop_typing(&self, channel: u64) {
        let typing = self.lock().get_mut(&channel).and_then(|c| c.typing.take());
        if let Some(t) = typing {
            t.cancel();
        }
    }
}

/// The [`OutboundSink`] for Discord.
pub struct DiscordSink {
    rest: Arc<Rest>,
    channels: Arc<Channels>,
    /// The largest file sent, in bytes.
    max_upload_bytes: u64,
}

impl DiscordSink {
    /// A sink making its calls through `rest`, sending files of at most
    /// `max_upload_bytes`.
    pub fn new(rest: Arc<Rest>, channels: Arc<Channels>, max_upload_bytes: u64) -> Self {
        Self {
            rest,
            channels,
            max_upload_bytes,
        }
    }

    /// Sends `file` as a message of its own, `caption` its text; returns the
    /// message's id.
    async fn send_file(
        &self,
        channel: u64,
        reply_to: Option<u64>,
        file: &FileBlob,
        caption: Option<&str>,
    ) -> Result<u64, SinkError> {
        let size = file.data.len() as u64;
        if size == 0 {
            return Err(SinkError::Failed(format!(
                "{} is empty, and Discord sends no empty files.",
                file.name
            )));
        }
        if size > self.max_upload_bytes {
            return Err(SinkError::Failed(files::too_big_to_send(
                &file.name,
                size,
                self.max_upload_bytes,
            )));
        }
        let caption = caption.map_or_else(String::new, |c| cut(c, MAX_MESSAGE_CHARS));
        match self
            .rest
            .create_message_with_file(channel, file, &caption, reply_to)
            .await
        {
            Ok(id) => Ok(id),
            Err(e) if e.is_too_large() => Err(SinkError::Failed(files::refused_as_too_big(
                &file.name, size,
            ))),
            Err(e) => Err(sink_error(e)),
        }
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

    fn reply_target(
        &self,
        conversation: &ConversationRef,
        thought: ThoughtId,
        channel: u64,
    ) -> Option<u64> {
        let group = conversation.kind == ChannelKind::Group;
        self.channels.reply_target(channel, thought, group)
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
            // Live tool output reaches Discord as the send queue's status
            // message (a Send, then Edits).
            Outbound::ToolProgress { .. } => Ok(None),
            Outbound::File {
                thought,
                file,
                caption,
            } => {
                self.channels.stop_typing(channel);
                let reply_to = self.reply_target(conversation, thought, channel);
                let id = self
                    .send_file(channel, reply_to, &file, caption.as_deref())
                    .await?;
                Ok(Some(id.to_string()))
            }
            Outbound::Cancelled { .. } | Outbound::End { .. } => {
                self.channels.stop_typing(channel);
                Ok(None)
            }
            // Edit delivery never streams deltas; tool progress is not shown on Discord.
            Outbound::Delta { .. }
            | Outbound::ToolStarted { .. }
            | Outbound::ToolFinished { .. } => Ok(None),
            Outbound::Ask { prompt } => {
                // The reply waits for the answer: no "typing…" meanwhile.
                self.channels.stop_typing(channel);
                self.rest
                    .create_message_with_components(
                        channel,
                        &approval::question_text(&prompt),
                        approval::components(&prompt),
                    )
                    .await
                    .map(|id| Some(id.to_string()))
                    .map_err(sink_error)
            }
            Outbound::AskClosed {
                prompt,
                message,
                outcome,
            } => {
                // The question never showed (its `Ask` failed): nothing to update.
                let Some(message) = message else {
                    return Ok(None);
                };
                let message: u64 = message.parse().map_err(|_| {
                    SinkError::Failed(format!("{message:?} is not a Discord message id"))
                })?;
                self.rest
                    .edit_message_with_components(
                        channel,
                        message,
                        &approval::closed_text(&prompt, &outcome),
                        serde_json::json!([]),
                    )
                    .await
                    .map(|()| None)
                    .map_err(sink_error)
            }
        }
    }
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut kept: String = text.chars().take(max - 1).collect();
    kept.push('…');
    kept
}

fn sink_error(e: RestError) -> SinkError {
    match e {
        RestError::RateLimited { retry_after } => SinkError::RateLimited {
            retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
        },
        other => SinkError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_channels_is_forgotten_but_replies_showing_typing_are_kept() {
        let channels = Channels::default();
        channels.with(1, |c| c.typing = Some(CancellationToken::new()));
        for channel in 2..=MAX_CHANNELS as u64 {
            channels.answering(channel, 7, 8);
        }
        assert_eq!(channels.lock().len(), MAX_CHANNELS);
        channels.answering(MAX_CHANNELS as u64 + 1, 7, 8);
        let map = channels.lock();
        assert_eq!(map.len(), 2, "only the typing channel and the new one stay");
        assert!(map.contains_key(&1) && map.contains_key(&(MAX_CHANNELS as u64 + 1)));
    }

    #[test]
    fn a_reply_quotes_the_last_message_of_the_one_person_it_answers() {
        let ann = 1;
        let channels = Channels::default();
        channels.answering(10, 100, ann);
        channels.answering(10, 101, ann);
        let thought = ThoughtId::new();
        assert_eq!(channels.reply_target(10, thought, true), Some(101));
        // Its continuation messages quote nothing.
        assert_eq!(channels.reply_target(10, thought, true), None);
        // A direct message quotes nothing either.
        channels.answering(11, 110, ann);
        assert_eq!(channels.reply_target(11, ThoughtId::new(), false), None);
    }

    #[test]
    fn with_several_people_waiting_no_reply_quotes_the_wrong_one() {
        let (ann, bob) = (1, 2);
        let channels = Channels::default();
        channels.answering(10, 100, ann);
        // Bob speaks before Ann's answer begins: which thought answers whom is
        // not known here.
        channels.answering(10, 101, bob);
        assert_eq!(channels.reply_target(10, ThoughtId::new(), true), None);
        assert_eq!(channels.reply_target(10, ThoughtId::new(), true), None);
        // Later, one person again: quoted again.
        channels.answering(10, 102, bob);
        assert_eq!(channels.reply_target(10, ThoughtId::new(), true), Some(102));
        // A message Clara refused is not waited on.
        channels.answering(10, 103, ann);
        channels.answering(10, 104, bob);
        channels.forget(10, 104);
        assert_eq!(channels.reply_target(10, ThoughtId::new(), true), Some(103));
        for n in 0..100 {
            channels.answering(10, 200 + n, ann);
        }
        assert_eq!(channels.lock()[&10].taken.len(), MAX_TAKEN);
    }

    #[test]
    fn stopping_typing_in_an_unknown_channel_remembers_nothing() {
        let channels = Channels::default();
        channels.stop_typing(5);
        assert!(channels.lock().is_empty());
    }
}

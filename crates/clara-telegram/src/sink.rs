//! Clara's outgoing side on Telegram: the send queue's calls as Bot API calls.
//!
//! `Send` → `sendMessage` (its `message_id` is the handle later `Edit`s name),
//! `Edit` → `editMessageText`, `Ask` → a message with three inline buttons
//! (see `approval.rs`), `AskClosed` → its edit without them, `Typing` → `sendChatAction` kept alive every few
//! seconds until the reply shows (Telegram clears it after five), `Error` → a
//! message with the sentence, `File` → `sendPhoto` for a picture (PNG, JPEG,
//! WebP up to 10 MB; one Telegram refuses as a photo, for its dimensions, goes
//! again as a document) and `sendDocument` for anything else, up to the Bot
//! API's 50 MB (a larger file is one sentence, never an upload). A flood limit (429) becomes
//! [`SinkError::RateLimited`] with Telegram's `retry_after`, which the send queue
//! waits out; a lost connection or a 5xx is retried here with backoff — for a
//! new message only when Telegram certainly did not act on it (the connection
//! failed, or it answered 5xx), so nothing is sent twice. In groups, writes are
//! spaced to Telegram's per-group limit.

use super::api::{ApiError, BotApi, SendMessage, Upload};
use super::approval;
use super::files::{self, MAX_PHOTO_BYTES, MAX_UPLOAD_BYTES};
use super::translate::parse_channel;
use async_trait::async_trait;
use clara_core::backoff::Backoff;
use clara_core::pacing::Delivery;
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ConversationRef, FileBlob, Outbound};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Telegram's limit for one message, in UTF-16 code units.
pub const TELEGRAM_MAX_UNITS: usize = 4096;
/// Telegram's limit for a photo's or a document's caption, in UTF-16 code units.
pub const TELEGRAM_MAX_CAPTION_UNITS: usize = 1024;
/// How often "typing…" is renewed while Clara thinks (Telegram shows it for 5 s).
const TYPING_REFRESH: Duration = Duration::from_secs(4);
/// The longest "typing…" is kept up without a reply.
const TYPING_LIMIT: Duration = Duration::from_secs(120);
/// Attempts of one call after network failures.
const NETWORK_ATTEMPTS: u32 = 4;

/// The adapter's [`OutboundSink`].
pub(crate) struct TelegramSink {
    api: Arc<BotApi>,
    delivery: Delivery,
    backoff: Backoff,
    /// The chats showing "typing…", by channel, with the switch of their renewal.
    typing: Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>,
    typing_generation: std::sync::atomic::AtomicU64,
    /// The least time between two messages or edits in one group.
    group_interval: Duration,
    /// When each group may next be written to.
    group_slots: Mutex<HashMap<i64, tokio::time::Instant>>,
}

/// A call that may be repeated after a network failure.
enum Call<'a> {
    Send(SendMessage<'a>),
    Edit {
        chat_id: i64,
        message_id: i64,
        text: &'a str,
        /// New buttons (`None` keeps them).
        markup: Option<&'a serde_json::Value>,
    },
    File {
        how: Upload,
        chat_id: i64,
        thread: Option<i64>,
        file: &'a FileBlob,
        caption: Option<&'a str>,
    },
}

impl TelegramSink {
    pub fn new(
        api: Arc<BotApi>,
        delivery: Delivery,
        backoff: Backoff,
        group_interval: Duration,
    ) -> Self {
        Self {
            api,
            delivery,
            backoff,
            typing: Arc::new(Mutex::new(HashMap::new())),
            typing_generation: std::sync::atomic::AtomicU64::new(0),
            group_interval,
            group_slots: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the group's next write slot: Telegram lets a bot send about 20
    /// messages a minute to one group, edits included, which the 1 s edit
    /// cooldown alone would exceed. Private chats (positive ids) need no wait.
    async fn group_slot(&self, chat_id: i64) {
        if chat_id > 0 || self.group_interval.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now();
        let at = {
            let mut slots = lock(&self.group_slots);
            let at = slots.get(&chat_id).map_or(now, |next| (*next).max(now));
            slots.insert(chat_id, at + self.group_interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    async fn call(&self, call: &Call<'_>) -> Result<Option<i64>, SinkError> {
        self.attempt(call).await.map_err(sink_error)
    }

    /// Makes a call in the group's write slot, retrying network failures when
    /// that cannot send twice; an edit that changes nothing is done.
    async fn attempt(&self, call: &Call<'_>) -> Result<Option<i64>, ApiError> {
        let chat_id = match call {
            Call::Send(message) => message.chat_id,
            Call::Edit { chat_id, .. } | Call::File { chat_id, .. } => *chat_id,
        };
        self.group_slot(chat_id).await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match call {
                Call::Send(message) => self.api.send_message(message).await.map(Some),
                Call::Edit {
                    chat_id,
                    message_id,
                    text,
                    markup,
                } => self
                    .api
                    .edit_message_text(*chat_id, *message_id, text, *markup)
                    .await
                    .map(|()| None),
                Call::File {
                    how,
                    chat_id,
                    thread,
                    file,
                    caption,
                } => self
                    .api
                    .send_file(*how, *chat_id, *thread, file, *caption)
                    .await
                    .map(Some),
            };
            let error = match result {
                Ok(id) => return Ok(id),
                Err(error) => error,
            };
            match error {
                e @ ApiError::RateLimited { .. } => return Err(e),
                e if e.is_not_modified() => return Ok(None),
                ApiError::Network { retry_safe, .. }
                    if attempt < NETWORK_ATTEMPTS
                        && (retry_safe || matches!(call, Call::Edit { .. })) =>
                {
                    let pause = self.backoff.delay(attempt);
                    tracing::warn!(%error, retry_in = ?pause, "Telegram call failed; retrying");
                    tokio::time::sleep(pause).await;
                }
                e => return Err(e),
            }
        }
    }

    /// Sends a file: a picture as a photo where Telegram takes it as one,
    /// else (or then) as a document. Returns the message's id.
    async fn send_file(
        &self,
        chat_id: i64,
        thread: Option<i64>,
        file: &FileBlob,
        caption: Option<&str>,
    ) -> Result<Option<i64>, SinkError> {
        let size = file.data.len() as u64;
        if size == 0 {
            return Err(SinkError::Failed(format!(
                "{} is empty, and Telegram sends no empty files.",
                file.name
            )));
        }
        if size > MAX_UPLOAD_BYTES {
            return Err(SinkError::Failed(files::too_big_to_send(&file.name, size)));
        }
        let caption = caption.map(|c| fit_within(c, TELEGRAM_MAX_CAPTION_UNITS));
        let caption = caption.as_deref();
        // A GIF sent as a photo would lose its motion; as a document it plays.
        let as_photo = file.is_image() && file.media_type != "image/gif" && size <= MAX_PHOTO_BYTES;
        if as_photo {
            let photo = Call::File {
                how: Upload::Photo,
                chat_id,
                thread,
                file,
                caption,
            };
            match self.attempt(&photo).await {
                Ok(id) => return Ok(id),
                Err(error) if error.is_photo_refused() => {
                    tracing::info!(%error, file = %file.name, "Telegram took no photo of it; sending it as a document");
                }
                Err(error) => return Err(sink_error(error)),
            }
        }
        let document = Call::File {
            how: Upload::Document,
            chat_id,
            thread,
            file,
            caption,
        };
        match self.attempt(&document).await {
            Ok(id) => Ok(id),
            Err(error) if error.is_file_too_big() => {
                Err(SinkError::Failed(files::too_big_to_send(&file.name, size)))
            }
            Err(error) => Err(sink_error(error)),
        }
    }

    /// Shows "typing…" now and renews it until a message is sent or the reply ends.
    async fn typing_on(&self, channel: &str, chat_id: i64, thread: Option<i64>) {
        if let Err(error) = self.api.send_typing(chat_id, thread).await {
            // Only a hint to the person; never worth delaying the reply for.
            tracing::debug!(%error, "Telegram typing action failed");
            return;
        }
        let generation = self
            .typing_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let switch = CancellationToken::new();
        {
            let mut typing = lock(&self.typing);
            if typing.contains_key(channel) {
                return;
            }
            typing.insert(channel.to_owned(), (generation, switch.clone()));
        }
        let api = Arc::clone(&self.api);
        let typing = Arc::clone(&self.typing);
        let channel = channel.to_owned();
        tokio::spawn(async move {
            let give_up = tokio::time::Instant::now() + TYPING_LIMIT;
            loop {
                tokio::select! {
                    () = switch.cancelled() => break,
                    () = tokio::time::sleep(TYPING_REFRESH) => {}
                }
                if tokio::time::Instant::now() >= give_up
                    || api.send_typing(chat_id, thread).await.is_err()
                {
                    break;
                }
            }
            let mut typing = lock(&typing);
            if typing.get(&channel).is_some_and(|(g, _)| *g == generation) {
                typing.remove(&channel);
            }
        });
    }

    fn typing_off(&self, channel: &str) {
        if let Some((_, switch)) = lock(&self.typing).remove(channel) {
            switch.cancel();
        }
    }
}

#[async_trait]
impl OutboundSink for TelegramSink {
    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let channel = conversation.channel.as_str();
        let Some((chat_id, thread)) = parse_channel(channel) else {
            return Err(SinkError::Failed(format!(
                "{channel:?} is not a Telegram chat id"
            )));
        };
        match outbound {
            Outbound::Typing => {
                self.typing_on(channel, chat_id, thread).await;
                Ok(None)
            }
            Outbound::Send { text, .. } | Outbound::Error { message: text, .. } => {
                self.typing_off(channel);
                let text = fit(&text);
                if text.trim().is_empty() {
                    return Err(SinkError::Failed("an empty message cannot be sent".into()));
                }
                let message = SendMessage {
                    chat_id,
                    text: &text,
                    message_thread_id: thread,
                    reply_parameters: None,
                    reply_markup: None,
                };
                let id = self.call(&Call::Send(message)).await?;
                Ok(id.map(|id| id.to_string()))
            }
            Outbound::Ask { prompt } => {
                // The reply waits for the answer: no "typing…" meanwhile.
                self.typing_off(channel);
                let text = prompt.text(false);
                let message = SendMessage {
                    chat_id,
                    text: &fit(&text),
                    message_thread_id: thread,
                    reply_parameters: None,
                    reply_markup: Some(approval::keyboard(&prompt)),
                };
                let id = self.call(&Call::Send(message)).await?;
                Ok(id.map(|id| id.to_string()))
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
                let Ok(message_id) = message.parse::<i64>() else {
                    return Err(SinkError::Failed(format!(
                        "{message:?} is not a Telegram message id"
                    )));
                };
                let text = approval::closed_text(&prompt, &outcome);
                let markup = approval::no_keyboard();
                self.call(&Call::Edit {
                    chat_id,
                    message_id,
                    text: &fit(&text),
                    markup: Some(&markup),
                })
                .await?;
                Ok(None)
            }
            Outbound::Edit { message, text, .. } => {
                self.typing_off(channel);
                let Ok(message_id) = message.parse::<i64>() else {
                    return Err(SinkError::Failed(format!(
                        "{message:?} is not a Telegram message id"
                    )));
                };
                let text = fit(&text);
                self.call(&Call::Edit {
                    chat_id,
                    message_id,
                    text: &text,
                    markup: None,
                })
                .await?;
                Ok(None)
            }
            Outbound::Cancelled { .. } | Outbound::End { .. } => {
                self.typing_off(channel);
                Ok(None)
            }
            // Telegram shows whole messages: streamed deltas and tool progress
            // have no call of their own (the send queue renews "typing" for tools).
            // Live tool output reaches Telegram as the send queue's status
            // message (a Send, then Edits).
            Outbound::Delta { .. }
            | Outbound::ToolStarted { .. }
            | Outbound::ToolProgress { .. }
            | Outbound::ToolFinished { .. } => Ok(None),
            Outbound::File { file, caption, .. } => {
                self.typing_off(channel);
                let id = self
                    .send_file(chat_id, thread, &file, caption.as_deref())
                    .await?;
                Ok(id.map(|id| id.to_string()))
            }
        }
    }
}

/// The failure the send queue is told of: a flood limit to wait out, or one
/// sentence.
fn sink_error(error: ApiError) -> SinkError {
    match error {
        ApiError::RateLimited { retry_after } => SinkError::RateLimited {
            retry_after_ms: retry_after.saturating_mul(1000),
        },
        other => SinkError::Failed(other.to_string()),
    }
}

/// The text within Telegram's limit, which counts UTF-16 units where the send
/// queue counts characters: only a page dense with emoji can be over, and then
/// it is cut (and said so in the log) rather than refused whole.
pub(crate) fn fit(text: &str) -> std::borrow::Cow<'_, str> {
    fit_within(text, TELEGRAM_MAX_UNITS)
}

/// `text` cut to `max_units` UTF-16 units, an ellipsis marking the cut.
fn fit_within(text: &str, max_units: usize) -> std::borrow::Cow<'_, str> {
    let units: usize = text.chars().map(char::len_utf16).sum();
    if units <= max_units {
        return std::borrow::Cow::Borrowed(text);
    }
    tracing::warn!(units, max_units, "a text over Telegram's limit was cut");
    let mut used = 0;
    let mut cut = String::new();
    for ch in text.chars() {
        if used + ch.len_utf16() > max_units - 1 {
            break;
        }
        used += ch.len_utf16();
        cut.push(ch);
    }
    cut.push('…');
    std::borrow::Cow::Owned(cut)
}

// A poisoned lock only means a renewal task panicked; the map is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_is_untouched_and_emoji_dense_text_is_cut_to_fit() {
        let plain = "x".repeat(4096);
        assert_eq!(fit(&plain).len(), 4096);
        let emoji = "😀".repeat(4096);
        let cut = fit(&emoji);
        let units: usize = cut.chars().map(char::len_utf16).sum();
        assert!(units <= TELEGRAM_MAX_UNITS);
        assert!(cut.ends_with('…'));
    }
}

//! The incoming side: long polling, in order, confirming each update only once
//! Clara has it.
//!
//! `getUpdates` is asked with `timeout` (Telegram holds the request until an
//! update arrives or the time is up, so an idle bot makes one request per
//! `timeout`) and `offset` = one past the last update handed over, which is
//! what tells Telegram an update is done. An update is handed over before the
//! offset moves past it: if Clara cannot take it now (shutting down, gateway
//! unreachable, a photo or file that failed to download), the batch stops there and
//! the same updates come again after a backoff. After downtime Telegram keeps
//! up to 24 hours of updates; they arrive in order and are handed over in order,
//! and a message delivered twice (a crash between handing over and confirming)
//! is dropped by the engine's event-id dedupe.

use super::api::{ApiError, BotApi, SendMessage};
use super::approval;
use super::commands;
use super::files::{self, FileRef};
use super::translate::{
    BotIdentity, Command, CommandCall, Draft, Incoming, Target, channel_for, translate,
};
use super::types::{CallbackQuery, Message, RawUpdate};
use clara_core::backoff::Backoff;
use clara_core::port::{Assistant, IngressError};
use clara_core::{FileBlob, Image, Tier};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The most updates asked for at once (the Bot API's maximum).
const BATCH: u32 = 100;
/// Attempts to download a photo or file before the message goes on without it.
const DOWNLOAD_ATTEMPTS: u32 = 3;

/// What became of one update.
enum Handled {
    /// Done with it: confirm it.
    Done,
    /// Not taken now; stop the batch and offer it again after a pause.
    Later,
}

/// What became of one file of a message.
enum Fetched {
    /// Downloaded.
    Kept(FileBlob),
    /// Not kept: the line to add to the message, for the model to pass on.
    Note(String),
    /// A passing failure: offer the update again later.
    Later,
}

/// The polling loop's state.
pub(crate) struct Poller {
    pub api: Arc<BotApi>,
    pub assistant: Arc<dyn Assistant>,
    pub bot: BotIdentity,
    pub poll_timeout: Duration,
    pub backoff: Backoff,
    pub max_image_bytes: u64,
    /// The largest file kept.
    pub max_file_bytes: u64,
    /// One past the last update handed over.
    offset: Option<i64>,
    /// `/tier` choices, by conversation channel.
    tiers: HashMap<String, Tier>,
    /// The update that keeps failing, and how often it did.
    stuck: Option<(i64, u32)>,
}

impl Poller {
    pub fn new(
        api: Arc<BotApi>,
        assistant: Arc<dyn Assistant>,
        bot: BotIdentity,
        poll_timeout: Duration,
        backoff: Backoff,
        max_image_bytes: u64,
        max_file_bytes: u64,
    ) -> Self {
        Self {
            api,
            assistant,
            bot,
            poll_timeout,
            backoff,
            max_image_bytes,
            max_file_bytes,
            offset: None,
            tiers: HashMap::new(),
            stuck: None,
        }
    }

    /// Polls until `stop`; fails only when Telegram refuses the token.
    pub async fn run(mut self, stop: &CancellationToken) -> Result<(), ApiError> {
        let mut failures = 0u32;
        loop {
            let polled = tokio::select! {
                () = stop.cancelled() => break,
                polled = self.api.get_updates(self.offset, self.poll_timeout, BATCH) => polled,
            };
            let pause = match polled {
                Ok(updates) => {
                    failures = 0;
                    match self.handle_batch(updates, stop).await {
                        Handled::Done => continue,
                        Handled::Later => {
                            let attempts = self.stuck.map_or(1, |(_, n)| n);
                            self.backoff.delay(attempts)
                        }
                    }
                }
                Err(ApiError::RateLimited { retry_after }) => {
                    tracing::warn!(retry_after, "Telegram rate limited getUpdates; waiting");
                    Duration::from_secs(retry_after)
                }
                Err(e @ ApiError::Unauthorized { .. }) => return Err(e),
                Err(error) => {
                    failures += 1;
                    let pause = self.backoff.delay(failures);
                    if error.is_conflict() {
                        tracing::error!(%error, retry_in = ?pause, "another program is reading this bot's updates (a second Clara, or a webhook); waiting");
                    } else {
                        tracing::warn!(%error, retry_in = ?pause, "Telegram polling failed; retrying");
                    }
                    pause
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.confirm().await;
        Ok(())
    }

    /// Hands over a batch in order; stops at the first update Clara cannot take now.
    async fn handle_batch(&mut self, updates: Vec<RawUpdate>, stop: &CancellationToken) -> Handled {
        for update in updates {
            if stop.is_cancelled() {
                // The rest is not confirmed, so it comes again at the next start.
                return Handled::Done;
            }
            let id = update.update_id;
            match self.handle(update).await {
                Handled::Done => {
                    self.offset = Some(id + 1);
                    self.stuck = None;
                }
                Handled::Later => {
                    let attempts = match self.stuck {
                        Some((stuck, n)) if stuck == id => n + 1,
                        _ => 1,
                    };
                    self.stuck = Some((id, attempts));
                    return Handled::Later;
                }
            }
        }
        Handled::Done
    }

    async fn handle(&mut self, update: RawUpdate) -> Handled {
        if let Some(query) = update.rest.get("callback_query") {
            return match serde_json::from_value::<CallbackQuery>(query.clone()) {
                Ok(query) => self.button(query).await,
                Err(error) => {
                    tracing::warn!(update = update.update_id, %error, "a Telegram button press of an unexpected shape was skipped");
                    Handled::Done
                }
            };
        }
        let Some(message) = update.rest.get("message") else {
            return Handled::Done;
        };
        let message: Message = match serde_json::from_value(message.clone()) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(update = update.update_id, %error, "a Telegram message of an unexpected shape was skipped");
                return Handled::Done;
            }
        };
        match translate(&message, &self.bot, self.max_image_bytes) {
            Incoming::Ignore(why) => {
                tracing::debug!(update = update.update_id, why, "Telegram message ignored");
                Handled::Done
            }
            Incoming::Unreadable(target) => {
                self.say(&target, commands::UNREADABLE).await;
                Handled::Done
            }
            Incoming::Message(draft) => self.submit(draft).await,
            Incoming::Command(call) => self.command(call).await,
        }
    }

    /// A button press: an answer to one of Clara's questions goes to the
    /// engine (which checks it comes from the owner); the press is answered
    /// either way, so the person's spinner stops.
    async fn button(&mut self, query: CallbackQuery) -> Handled {
        let said = match approval::press_of(&query) {
            Some(press) => {
                let answered = self
                    .assistant
                    .answer_approval(
                        &press.conversation,
                        &press.author,
                        press.answer,
                        press.event,
                    )
                    .await;
                match answered {
                    Ok(_) => approval::TAKEN.to_owned(),
                    // Not taken now: the press comes again, unanswered till then.
                    Err(IngressError::Closed | IngressError::Unavailable) => return Handled::Later,
                    Err(refused) => refused.to_string(),
                }
            }
            None => {
                tracing::debug!(data = ?query.data, "a Telegram button press that answers no question");
                approval::NOT_OURS.to_owned()
            }
        };
        if let Err(error) = self.api.answer_callback_query(&query.id, &said).await {
            // The press was taken; only the spinner keeps turning a little longer.
            tracing::debug!(%error, "a Telegram button press could not be answered");
        }
        Handled::Done
    }

    /// Downloads the photo and files, applies the chat's tier, and hands the
    /// message over.
    async fn submit(&mut self, draft: Draft) -> Handled {
        let Draft {
            mut inbound,
            image,
            files,
            target,
        } = draft;
        inbound.tier = inbound
            .tier
            .or_else(|| self.tiers.get(&inbound.conversation.channel).copied());
        if let Some(image) = image {
            match self
                .api
                .download(&image.file_id, self.max_image_bytes)
                .await
            {
                Ok(data) => inbound.images.push(Image::Bytes {
                    media_type: image.media_type,
                    data,
                }),
                Err(error) if error.is_transient() && self.attempts_left() => {
                    tracing::warn!(%error, "a Telegram photo could not be downloaded; retrying");
                    return Handled::Later;
                }
                Err(error) => {
                    tracing::warn!(%error, "a Telegram photo could not be downloaded; passing the message on without it");
                    inbound
                        .text
                        .push_str("\n[a photo was attached but could not be loaded]");
                }
            }
        }
        for file in files {
            match self.fetch(&file).await {
                Fetched::Kept(blob) => {
                    // A picture sent as a file is also shown to the model, as a photo is.
                    if blob.is_image() && blob.data.len() as u64 <= self.max_image_bytes {
                        inbound.images.push(Image::Bytes {
                            media_type: blob.media_type.clone(),
                            data: blob.data.clone(),
                        });
                    }
                    inbound.files.push(blob);
                }
                Fetched::Note(note) => {
                    inbound.text.push('\n');
                    inbound.text.push_str(&note);
                }
                Fetched::Later => return Handled::Later,
            }
        }
        match self.assistant.submit(inbound).await {
            Ok(_) => Handled::Done,
            Err(IngressError::Closed | IngressError::Unavailable) => Handled::Later,
            Err(refused) => {
                self.say(&target, &refused.to_string()).await;
                Handled::Done
            }
        }
    }

    /// Downloads one file of a message, within the size limit.
    async fn fetch(&self, file: &FileRef) -> Fetched {
        let limit = self.max_file_bytes;
        if file.size.is_some_and(|size| size > limit) {
            tracing::info!(file = %file.name, size = file.size, limit, "a Telegram file over the limit was not downloaded");
            return Fetched::Note(files::not_kept(&file.name, file.size, limit));
        }
        match self.api.download(&file.file_id, limit).await {
            Ok(data) => Fetched::Kept(FileBlob {
                name: file.name.clone(),
                media_type: file.media_type.clone(),
                data,
            }),
            Err(error) if error.is_file_too_big() => {
                tracing::info!(file = %file.name, %error, "a Telegram file over the limit was not kept");
                // `getFile` refusing it is the Bot API's 20 MB, not Clara's limit.
                let hit = match error {
                    ApiError::Refused { code: 400, .. } => limit.min(files::BOT_API_DOWNLOAD_LIMIT),
                    _ => limit,
                };
                Fetched::Note(files::not_kept(&file.name, file.size, hit))
            }
            Err(error) if error.is_transient() && self.attempts_left() => {
                tracing::warn!(%error, "a Telegram file could not be downloaded; retrying");
                Fetched::Later
            }
            Err(error) => {
                tracing::warn!(%error, "a Telegram file could not be downloaded; passing the message on without it");
                Fetched::Note(files::not_loaded(&file.name))
            }
        }
    }

    fn attempts_left(&self) -> bool {
        // `stuck` counts the failures of the update being retried, this one excluded.
        self.stuck.map_or(0, |(_, n)| n) + 1 < DOWNLOAD_ATTEMPTS
    }

    async fn command(&mut self, call: CommandCall) -> Handled {
        let CommandCall { command, message } = call;
        let conversation = &message.inbound.conversation;
        let author = &message.inbound.author;
        let target = &message.target;
        match command {
            Command::Start | Command::Help => self.say(target, commands::GREETING).await,
            Command::New => match self.assistant.new_session(conversation, author).await {
                Ok(()) => self.say(target, commands::FRESH_START).await,
                Err(IngressError::Closed | IngressError::Unavailable) => return Handled::Later,
                Err(refused) => self.say(target, &refused.to_string()).await,
            },
            Command::Stop => {
                self.assistant.stop(conversation, author).await;
                self.say(target, commands::STOPPED).await;
            }
            Command::Forget if message.inbound.text.is_empty() => {
                self.say(target, commands::FORGET_USAGE).await;
            }
            Command::Forget => {
                let mut draft = message;
                draft.inbound.text = commands::forget_request(&draft.inbound.text);
                return self.submit(draft).await;
            }
            Command::Tier => {
                let channel = channel_for(target.chat_id, target.thread);
                let (tier, said) =
                    commands::tier(&message.inbound.text, self.tiers.get(&channel).copied());
                match tier {
                    Some(tier) => self.tiers.insert(channel, tier),
                    None => self.tiers.remove(&channel),
                };
                self.say(target, &said).await;
            }
            Command::Unknown(name) => self.say(target, &commands::unknown(&name)).await,
        }
        Handled::Done
    }

    /// Answers a message directly (commands, refusals), waiting out flood limits
    /// and retrying network failures a few times; a failure is logged, not fatal.
    async fn say(&self, target: &Target, text: &str) {
        let message = SendMessage {
            chat_id: target.chat_id,
            text,
            message_thread_id: target.thread,
            reply_parameters: Some(json!({
                "message_id": target.message_id,
                "allow_sending_without_reply": true,
            })),
            reply_markup: None,
        };
        for attempt in 1..=4 {
            let pause = match self.api.send_message(&message).await {
                Ok(_) => return,
                Err(ApiError::RateLimited { retry_after }) => Duration::from_secs(retry_after),
                Err(ApiError::Network {
                    retry_safe: true, ..
                }) => self.backoff.delay(attempt),
                Err(error) => {
                    tracing::warn!(%error, "a Telegram answer could not be sent");
                    return;
                }
            };
            tokio::time::sleep(pause).await;
        }
        tracing::warn!("a Telegram answer could not be sent after several attempts");
    }

    /// Tells Telegram which updates are done, so a restart does not see them
    /// again. (One update may come back with it; it is not confirmed.)
    async fn confirm(&self) {
        let Some(offset) = self.offset else {
            return;
        };
        let confirmed = tokio::time::timeout(
            Duration::from_secs(5),
            self.api.get_updates(Some(offset), Duration::ZERO, 1),
        )
        .await;
        if !matches!(confirmed, Ok(Ok(_))) {
            tracing::debug!(
                "the last Telegram updates could not be confirmed; they will be offered again and dropped as duplicates"
            );
        }
    }
}

//! A fake Telegram Bot API, written from the public reference
//! (<https://core.telegram.org/bots/api>), for tests of the Telegram adapter and of
//! `clara serve`.
//!
//! What it speaks, as Telegram does:
//! - methods at `/bot{token}/{method}` (GET or POST; parameters as a JSON body),
//!   files at `/file/bot{token}/{file_path}`;
//! - every answer in the envelope `{"ok":true,"result":…}` or
//!   `{"ok":false,"error_code":N,"description":"…"}`, 429 with
//!   `"parameters":{"retry_after":N}` and "Too Many Requests: retry after N";
//!   a wrong token gets 401 `Unauthorized`, an unknown method 404 `Not Found`;
//! - `getUpdates` with `offset` (confirms every update below it), `limit` and
//!   `timeout` (the request is held until an update arrives or the time is up),
//!   and 409 `Conflict: terminated by other getUpdates request` for the older of
//!   two concurrent polls;
//! - `getMe`, `sendMessage` (with `reply_parameters`, `message_thread_id` and an
//!   inline keyboard as `reply_markup`), `editMessageText` (with or without a new
//!   `reply_markup`; an empty `inline_keyboard` removes the buttons; 400 "message
//!   is not modified" for the same text and buttons, "message to edit not
//!   found", "there is no text in the message to edit" for a photo or a
//!   document), `answerCallbackQuery` (400 for an unknown or already answered
//!   query), `sendChatAction`, `getFile` (400 "file is too big" past the Bot
//!   API's 20 MB download limit); texts over 4096 UTF-16 units get 400
//!   "message is too long", empty ones "message text is empty";
//! - `sendPhoto` and `sendDocument` as `multipart/form-data` uploads (the
//!   `photo` / `document` part with its file name and type, the other
//!   parameters as form fields): a photo over 10 MB is refused with
//!   `PHOTO_SAVE_FILE_INVALID`, one whose width and height add up to more than
//!   10000 or differ more than 20 times with `PHOTO_INVALID_DIMENSIONS`, bytes
//!   that are no PNG, JPEG, GIF or WebP with `IMAGE_PROCESS_FAILED`; any upload
//!   over 50 MB gets 413 "Request Entity Too Large", an empty one "file must be
//!   non-empty", a caption over 1024 UTF-16 units "message caption is too
//!   long". The answer is the sent `Message` with its `photo` sizes or its
//!   `document`, whose files `getFile` serves; see [`FakeTelegram::sent_files`];
//! - button presses as `callback_query` updates ([`FakeTelegram::press_button`],
//!   or any data with [`FakeTelegram::send_callback`]);
//! - incoming messages with the entities Telegram computes (`bot_command`,
//!   `mention`, offsets in UTF-16 units), photos in several sizes, replies
//!   carrying the replied-to message (without its own `reply_to_message`), and
//!   documents, audio, voice notes, videos and video notes
//!   ([`UserMessage::document`], [`UserMessage::voice`], [`UserMessage::with_file`])
//!   whose bytes `getFile` and the file URL serve.
//!
//! Tests script it: people's messages ([`FakeTelegram::send`]), faults for the
//! next call of a method ([`FakeTelegram::fail_next`]), a per-chat flood limit
//! ([`FakeTelegram::limit_writes_per_chat`]), an outage
//! ([`FakeTelegram::go_offline`] / [`FakeTelegram::come_back`]), and a crash
//! between handing an update over and confirming it
//! ([`FakeTelegram::forget_confirmations`]). Every call is recorded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::recorder::lock;

/// How long [`FakeTelegram::wait_for`] waits before failing the test.
const WAIT: Duration = Duration::from_secs(20);
/// Telegram's longest message, in UTF-16 code units.
const MAX_TEXT_UNITS: usize = 4096;
/// Telegram's longest caption, in UTF-16 code units.
const MAX_CAPTION_UNITS: usize = 1024;
/// The largest file a bot may download (`getFile`).
const MAX_DOWNLOAD_BYTES: usize = 20_000_000;
/// The largest file a bot may upload.
const MAX_UPLOAD_BYTES: usize = 50_000_000;
/// The largest photo `sendPhoto` takes.
const MAX_PHOTO_BYTES: usize = 10_000_000;

/// A Telegram user (a person, or the bot itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    /// The user id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name, if any.
    pub last_name: Option<String>,
    /// `@username` without the `@`, if any.
    pub username: Option<String>,
    /// Whether this is a bot.
    pub is_bot: bool,
}

impl FakeUser {
    /// A person with this id and first name.
    pub fn new(id: i64, first_name: &str) -> Self {
        Self {
            id,
            first_name: first_name.to_owned(),
            last_name: None,
            username: None,
            is_bot: false,
        }
    }

    fn json(&self) -> Value {
        let mut user =
            json!({ "id": self.id, "is_bot": self.is_bot, "first_name": self.first_name });
        if let Some(last) = &self.last_name {
            user["last_name"] = json!(last);
        }
        if let Some(name) = &self.username {
            user["username"] = json!(name);
        }
        user
    }
}

/// A chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeChat {
    /// The chat id (negative for groups).
    pub id: i64,
    /// `private`, `group` or `supergroup`.
    pub kind: &'static str,
    /// A group's title.
    pub title: Option<String>,
    /// A private chat's person.
    pub person: Option<FakeUser>,
}

impl FakeChat {
    /// The private chat with `user` (its id is the user's id).
    pub fn private(user: &FakeUser) -> Self {
        Self {
            id: user.id,
            kind: "private",
            title: None,
            person: Some(user.clone()),
        }
    }

    /// A (basic) group.
    pub fn group(id: i64, title: &str) -> Self {
        Self {
            id,
            kind: "group",
            title: Some(title.to_owned()),
            person: None,
        }
    }

    /// A supergroup.
    pub fn supergroup(id: i64, title: &str) -> Self {
        Self {
            kind: "supergroup",
            ..Self::group(id, title)
        }
    }

    fn json(&self) -> Value {
        let mut chat = json!({ "id": self.id, "type": self.kind });
        if let Some(title) = &self.title {
            chat["title"] = json!(title);
        }
        if let Some(person) = &self.person {
            chat["first_name"] = json!(person.first_name);
            if let Some(name) = &person.username {
                chat["username"] = json!(name);
            }
        }
        chat
    }
}

/// A message a person sends to the bot.
#[derive(Clone, Debug)]
pub struct UserMessage {
    /// Where.
    pub chat: FakeChat,
    /// Who.
    pub from: FakeUser,
    /// Its text (or a photo's caption).
    pub text: Option<String>,
    /// A photo's bytes (JPEG, as Telegram re-encodes photos).
    pub photo: Option<Vec<u8>>,
    /// A file (a document, a voice note, …) instead of a photo.
    pub file: Option<FakeFile>,
    /// A sticker instead of text.
    pub sticker: bool,
    /// The message (in the same chat) it replies to.
    pub reply_to: Option<i64>,
    /// The part of the replied-to message it quotes.
    pub quote: Option<String>,
}

impl UserMessage {
    /// A text message.
    pub fn text(chat: &FakeChat, from: &FakeUser, text: &str) -> Self {
        Self {
            chat: chat.clone(),
            from: from.clone(),
            text: Some(text.to_owned()),
            photo: None,
            file: None,
            sticker: false,
            reply_to: None,
            quote: None,
        }
    }

    /// A photo, with an optional caption.
    pub fn photo(chat: &FakeChat, from: &FakeUser, bytes: Vec<u8>, caption: Option<&str>) -> Self {
        Self {
            text: caption.map(str::to_owned),
            photo: Some(bytes),
            ..Self::text(chat, from, "")
        }
    }

    /// A file sent as a document (`document`), with an optional caption.
    pub fn document(
        chat: &FakeChat,
        from: &FakeUser,
        name: &str,
        mime_type: &str,
        bytes: Vec<u8>,
        caption: Option<&str>,
    ) -> Self {
        let file = FakeFile {
            kind: FileKind::Document,
            name: Some(name.to_owned()),
            mime_type: Some(mime_type.to_owned()),
            bytes,
        };
        Self::with_file(chat, from, file, caption)
    }

    /// A voice note (`voice`, OGG/Opus as Telegram's apps record them).
    pub fn voice(chat: &FakeChat, from: &FakeUser, bytes: Vec<u8>) -> Self {
        let file = FakeFile {
            kind: FileKind::Voice,
            name: None,
            mime_type: Some("audio/ogg".to_owned()),
            bytes,
        };
        Self::with_file(chat, from, file, None)
    }

    /// Any kind of file, with an optional caption.
    pub fn with_file(
        chat: &FakeChat,
        from: &FakeUser,
        file: FakeFile,
        caption: Option<&str>,
    ) -> Self {
        Self {
            text: caption.map(str::to_owned),
            file: Some(file),
            ..Self::text(chat, from, "")
        }
    }

    /// A sticker.
    pub fn sticker(chat: &FakeChat, from: &FakeUser) -> Self {
        Self {
            text: None,
            sticker: true,
            ..Self::text(chat, from, "")
        }
    }

    /// The same message, as a reply to message `id` of the chat.
    pub fn replying_to(mut self, id: i64) -> Self {
        self.reply_to = Some(id);
        self
    }

    /// The same message, quoting `quote` of the message it replies to.
    pub fn quoting(mut self, quote: &str) -> Self {
        self.quote = Some(quote.to_owned());
        self
    }
}

/// The kinds of file a message carries, each under its own key of Telegram's
/// `Message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `document`: any file sent as a file.
    Document,
    /// `audio`: a music file.
    Audio,
    /// `voice`: a voice note.
    Voice,
    /// `video`.
    Video,
    /// `video_note`: a round video message.
    VideoNote,
}

impl FileKind {
    /// The `Message` key and the folder Telegram keeps such files in.
    fn key_and_folder(self) -> (&'static str, &'static str) {
        match self {
            Self::Document => ("document", "documents"),
            Self::Audio => ("audio", "music"),
            Self::Voice => ("voice", "voice"),
            Self::Video => ("video", "videos"),
            Self::VideoNote => ("video_note", "video_notes"),
        }
    }
}

/// A file a person sends (not a photo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeFile {
    /// Which kind.
    pub kind: FileKind,
    /// Its name (voice and video notes have none).
    pub name: Option<String>,
    /// Its MIME type, when Telegram reports one (video notes have none).
    pub mime_type: Option<String>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A file the bot sent with `sendPhoto` or `sendDocument`, as uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentFile {
    /// The chat.
    pub chat_id: i64,
    /// The message it became.
    pub message_id: i64,
    /// `sendPhoto` or `sendDocument`.
    pub method: String,
    /// The file name of the uploaded part.
    pub filename: String,
    /// The `Content-Type` of the uploaded part, if it had one.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The caption, if any.
    pub caption: Option<String>,
    /// The forum topic, if any.
    pub thread: Option<i64>,
}

/// A message the bot sent, as it stands now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotMessage {
    /// Its id in the chat.
    pub message_id: i64,
    /// Its current text (empty for a photo or a document).
    pub text: String,
    /// A photo's or a document's caption.
    pub caption: Option<String>,
    /// How many times it was edited.
    pub edits: u32,
    /// The message it replies to, if any.
    pub reply_to: Option<i64>,
    /// The forum topic it was sent to, if any.
    pub thread: Option<i64>,
    /// Its inline keyboard (`{"inline_keyboard":[[…]]}`), if it has buttons.
    pub reply_markup: Option<Value>,
}

impl BotMessage {
    /// Its buttons, row after row: `(text, callback_data)`.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(rows) = self
            .reply_markup
            .as_ref()
            .and_then(|m| m["inline_keyboard"].as_array())
        else {
            return Vec::new();
        };
        rows.iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or_default().to_owned(),
                    b["callback_data"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// One API call the fake received.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// The method, e.g. `sendMessage`.
    pub method: String,
    /// Its parameters (`{}` when none).
    pub params: Value,
    /// When it arrived.
    pub at: Instant,
    /// The HTTP status it was answered with (`None` while held or unanswered).
    pub status: Option<u16>,
}

/// A failure to answer the next call of a method with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeFault {
    /// 429 with `retry_after`.
    TooManyRequests {
        /// Seconds.
        retry_after: u64,
    },
    /// An error status (e.g. 502) with Telegram's envelope.
    ServerError(u16),
    /// The connection breaks while the answer is being sent.
    Disconnect,
}

struct ChatState {
    chat: Value,
    next_message_id: i64,
    messages: BTreeMap<i64, Stored>,
}

struct Stored {
    json: Value,
    from_bot: bool,
    edits: u32,
}

struct FileEntry {
    path: String,
    bytes: Vec<u8>,
}

struct World {
    bot: FakeUser,
    next_update_id: i64,
    /// Every update ever queued, in order.
    updates: Vec<Value>,
    /// Updates with an id below this are confirmed.
    confirmed_below: i64,
    chats: HashMap<i64, ChatState>,
    files: HashMap<String, FileEntry>,
    next_file: u64,
    faults: HashMap<String, VecDeque<FakeFault>>,
    calls: Vec<ApiCall>,
    poll_generation: u64,
    write_interval: Option<Duration>,
    last_write: HashMap<i64, Instant>,
    next_callback: u64,
    /// Button presses by id, and whether `answerCallbackQuery` answered them.
    callbacks: HashMap<String, bool>,
    /// Files the bot sent, in order.
    sent_files: Vec<SentFile>,
}

struct Shared {
    token: String,
    state: Mutex<World>,
    /// Any change: a call, an answer, an update.
    changed: Notify,
}

#[derive(Clone)]
struct Server {
    shared: Arc<Shared>,
    /// Fires when this server instance goes offline.
    stop: CancellationToken,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A running fake Bot API on `127.0.0.1`; it stops when dropped.
pub struct FakeTelegram {
    shared: Arc<Shared>,
    port: u16,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("api_url", &self.api_url())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        if let Some(running) = lock(&self.running).take() {
            running.stop.cancel();
        }
    }
}

impl FakeTelegram {
    /// The token the fake accepts by default.
    pub const TOKEN: &'static str = "123456789:AAFakeTokenForClaraTests_do-not-print";

    /// Starts a fake for [`FakeTelegram::TOKEN`] with the bot `@clara_test_bot`.
    pub async fn start() -> Self {
        Self::start_with_token(Self::TOKEN).await
    }

    /// Starts a fake accepting `token`. Panics if it cannot bind (test code).
    pub async fn start_with_token(token: &str) -> Self {
        let bot = FakeUser {
            id: 7_000_000_001,
            first_name: "Clara".to_owned(),
            last_name: None,
            username: Some("clara_test_bot".to_owned()),
            is_bot: true,
        };
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(World {
                bot,
                next_update_id: 800_000_001,
                updates: Vec::new(),
                confirmed_below: 0,
                chats: HashMap::new(),
                files: HashMap::new(),
                next_file: 1,
                faults: HashMap::new(),
                calls: Vec::new(),
                poll_generation: 0,
                write_interval: None,
                last_write: HashMap::new(),
                next_callback: 1,
                callbacks: HashMap::new(),
                sent_files: Vec::new(),
            }),
            changed: Notify::new(),
        });
        let (port, running) = serve(Arc::clone(&shared), 0).await;
        Self {
            shared,
            port,
            running: Mutex::new(Some(running)),
        }
    }

    /// The Bot API root to configure (`TELEGRAM_API_URL`): `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The token it accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The bot's user (`getMe`).
    pub fn bot(&self) -> FakeUser {
        lock(&self.shared.state).bot.clone()
    }

    /// A person sends a message: it is stored in the chat and queued as an
    /// update. Returns its message id. Panics when it replies to a message the
    /// chat does not have.
    pub fn send(&self, message: UserMessage) -> i64 {
        let id = {
            let mut state = lock(&self.shared.state);
            let photo = message.photo.as_ref().map(|bytes| {
                let thumb = state.add_file(bytes[..bytes.len().min(16)].to_vec(), "jpg");
                let full = state.add_file(bytes.clone(), "jpg");
                json!([
                    { "file_id": thumb, "file_unique_id": format!("u{thumb}"), "width": 90, "height": 90, "file_size": bytes.len().min(16) },
                    { "file_id": full, "file_unique_id": format!("u{full}"), "width": 1280, "height": 960, "file_size": bytes.len() },
                ])
            });
            let file = message.file.as_ref().map(|f| state.file_json(f));
            let chat = state.chat(&message.chat);
            let message_id = chat.next_message_id;
            chat.next_message_id += 1;
            let mut json = json!({
                "message_id": message_id,
                "from": message.from.json(),
                "chat": chat.chat.clone(),
                "date": unix_now(),
            });
            let (text_key, entities_key) = if message.photo.is_some() || message.file.is_some() {
                ("caption", "caption_entities")
            } else {
                ("text", "entities")
            };
            if let Some(text) = &message.text {
                json[text_key] = json!(text);
                let entities = entities_of(text);
                if !entities.is_empty() {
                    json[entities_key] = Value::Array(entities);
                }
            }
            if let Some(photo) = photo {
                json["photo"] = photo;
            }
            if let Some((key, file)) = file {
                json[key] = file;
            }
            if message.sticker {
                json["sticker"] = json!({
                    "file_id": "sticker1", "file_unique_id": "s1", "type": "regular",
                    "width": 512, "height": 512, "is_animated": false, "is_video": false, "emoji": "👍"
                });
            }
            if let Some(reply_to) = message.reply_to {
                let replied = chat
                    .messages
                    .get(&reply_to)
                    .unwrap_or_else(|| panic!("FakeTelegram: no message {reply_to} to reply to"));
                json["reply_to_message"] = without_reply(&replied.json);
                if let Some(quote) = &message.quote {
                    json["quote"] = json!({ "text": quote, "position": 0 });
                }
            }
            chat.messages.insert(
                message_id,
                Stored {
                    json: json.clone(),
                    from_bot: false,
                    edits: 0,
                },
            );
            let update_id = state.next_update_id;
            state.next_update_id += 1;
            state
                .updates
                .push(json!({ "update_id": update_id, "message": json }));
            message_id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// `from` presses the button labelled `button_text` under the bot's message
    /// `message_id` in chat `chat_id`: a `callback_query` update with that
    /// button's `callback_data` is queued. Returns the query's id (which the
    /// adapter must answer with `answerCallbackQuery`). Panics when the message
    /// has no such button.
    pub fn press_button(
        &self,
        chat_id: i64,
        message_id: i64,
        from: &FakeUser,
        button_text: &str,
    ) -> String {
        let message = self
            .bot_messages(chat_id)
            .into_iter()
            .find(|m| m.message_id == message_id)
            .unwrap_or_else(|| panic!("FakeTelegram: no bot message {message_id} in {chat_id}"));
        let buttons = message.buttons();
        let Some((_, data)) = buttons.iter().find(|(text, _)| text == button_text) else {
            panic!("FakeTelegram: message {message_id} has no button {button_text:?}: {buttons:?}");
        };
        self.send_callback(chat_id, message_id, from, data)
    }

    /// Queues a `callback_query` from `from` on message `message_id` of chat
    /// `chat_id` carrying `data` as is (which real buttons could not: a test of
    /// stale or forged presses). Returns the query's id. Panics when the chat
    /// has no such message.
    pub fn send_callback(
        &self,
        chat_id: i64,
        message_id: i64,
        from: &FakeUser,
        data: &str,
    ) -> String {
        let id = {
            let mut state = lock(&self.shared.state);
            let message = state
                .chats
                .get(&chat_id)
                .and_then(|c| c.messages.get(&message_id))
                .map(|m| m.json.clone())
                .unwrap_or_else(|| panic!("FakeTelegram: no message {message_id} in {chat_id}"));
            let id = format!("{}", 5_000_000_000_000_000_000u64 + state.next_callback);
            state.next_callback += 1;
            state.callbacks.insert(id.clone(), false);
            let update_id = state.next_update_id;
            state.next_update_id += 1;
            state.updates.push(json!({
                "update_id": update_id,
                "callback_query": {
                    "id": id,
                    "from": from.json(),
                    "message": message,
                    "chat_instance": format!("{}", chat_id.unsigned_abs() * 7 + 1),
                    "data": data,
                },
            }));
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// The parameters `answerCallbackQuery` answered the press `id` with
    /// (`callback_query_id`, `text`, …), once it did so successfully.
    pub fn callback_answer(&self, id: &str) -> Option<Value> {
        lock(&self.shared.state)
            .calls
            .iter()
            .find(|c| {
                c.method == "answerCallbackQuery"
                    && c.status == Some(200)
                    && c.params["callback_query_id"].as_str() == Some(id)
            })
            .map(|c| c.params.clone())
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<ApiCall> {
        lock(&self.shared.state).calls.clone()
    }

    /// The calls of one method, in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        lock(&self.shared.state)
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Every file the bot sent (`sendPhoto`, `sendDocument`), in order.
    pub fn sent_files(&self) -> Vec<SentFile> {
        lock(&self.shared.state).sent_files.clone()
    }

    /// The bot's messages in a chat, oldest first, as they stand now.
    pub fn bot_messages(&self, chat_id: i64) -> Vec<BotMessage> {
        let state = lock(&self.shared.state);
        let Some(chat) = state.chats.get(&chat_id) else {
            return Vec::new();
        };
        chat.messages
            .values()
            .filter(|m| m.from_bot)
            .map(|m| BotMessage {
                message_id: m.json["message_id"].as_i64().unwrap_or_default(),
                text: m.json["text"].as_str().unwrap_or_default().to_owned(),
                caption: m.json["caption"].as_str().map(str::to_owned),
                edits: m.edits,
                reply_to: m.json["reply_to_message"]["message_id"].as_i64(),
                thread: m.json["message_thread_id"].as_i64(),
                reply_markup: m.json.get("reply_markup").cloned(),
            })
            .collect()
    }

    /// Updates queued but not yet confirmed by an `offset`.
    pub fn unconfirmed_updates(&self) -> usize {
        let state = lock(&self.shared.state);
        state
            .updates
            .iter()
            .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= state.confirmed_below)
            .count()
    }

    /// The next call of `method` fails with `fault` (several queue up in order).
    pub fn fail_next(&self, method: &str, fault: FakeFault) {
        lock(&self.shared.state)
            .faults
            .entry(method.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// From now on, a `sendMessage` or `editMessageText` to a chat sooner than
    /// `interval` after the previous one gets 429 with the `retry_after` left.
    pub fn limit_writes_per_chat(&self, interval: Duration) {
        lock(&self.shared.state).write_interval = Some(interval);
    }

    /// Forgets every `offset` confirmation, as after a crash between handing
    /// updates over and confirming them: all updates are delivered again.
    pub fn forget_confirmations(&self) {
        lock(&self.shared.state).confirmed_below = 0;
        self.shared.changed.notify_waiters();
    }

    /// Stops answering: the port is closed (connections are refused) until
    /// [`FakeTelegram::come_back`]. Held polls are ended first.
    pub async fn go_offline(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            running.stop.cancel();
            self.shared.changed.notify_waiters();
            let mut task = running.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves again on the same port, with the same state.
    pub async fn come_back(&self) {
        let (_, running) = serve(Arc::clone(&self.shared), self.port).await;
        *lock(&self.running) = Some(running);
    }

    /// Waits until `pred` holds of the fake (checked after every change).
    /// Panics after 20 s, listing the calls so far.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&FakeTelegram) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if pred(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let calls: Vec<String> = self
                    .calls()
                    .iter()
                    .map(|c| format!("{} {} -> {:?}", c.method, c.params, c.status))
                    .collect();
                panic!("FakeTelegram: timed out waiting for {what}; calls: {calls:#?}");
            }
        }
    }
}

impl World {
    fn add_file(&mut self, bytes: Vec<u8>, extension: &str) -> String {
        self.add_file_in("photos", bytes, extension)
    }

    /// Keeps `bytes` as a file in `folder` (as Telegram's file paths read);
    /// returns its `file_id`.
    fn add_file_in(&mut self, folder: &str, bytes: Vec<u8>, extension: &str) -> String {
        let n = self.next_file;
        self.next_file += 1;
        let id = format!("AgACAgFake{n:06}");
        self.files.insert(
            id.clone(),
            FileEntry {
                path: format!("{folder}/file_{n}.{extension}"),
                bytes,
            },
        );
        id
    }

    /// Keeps a person's file and returns its `Message` key and object.
    fn file_json(&mut self, file: &FakeFile) -> (&'static str, Value) {
        let (key, folder) = file.kind.key_and_folder();
        let extension = file
            .name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map_or_else(
                || match file.kind {
                    FileKind::Voice => "oga".to_owned(),
                    FileKind::Audio => "mp3".to_owned(),
                    FileKind::Video | FileKind::VideoNote => "mp4".to_owned(),
                    FileKind::Document => "bin".to_owned(),
                },
                |(_, ext)| ext.to_owned(),
            );
        let id = self.add_file_in(folder, file.bytes.clone(), &extension);
        let mut json = json!({
            "file_id": id,
            "file_unique_id": format!("AgAD{}", &id[id.len() - 6..]),
            "file_size": file.bytes.len(),
        });
        match file.kind {
            FileKind::Voice | FileKind::Audio => json["duration"] = json!(3),
            FileKind::Video => {
                json["duration"] = json!(3);
                json["width"] = json!(640);
                json["height"] = json!(360);
            }
            FileKind::VideoNote => {
                json["duration"] = json!(3);
                json["length"] = json!(240);
            }
            FileKind::Document => {}
        }
        if let Some(name) = &file.name {
            json["file_name"] = json!(name);
        }
        if let Some(mime) = &file.mime_type {
            json["mime_type"] = json!(mime);
        }
        (key, json)
    }

    fn chat(&mut self, chat: &FakeChat) -> &mut ChatState {
        self.chats.entry(chat.id).or_insert_with(|| ChatState {
            chat: chat.json(),
            next_message_id: 1,
            messages: BTreeMap::new(),
        })
    }

    /// 429 when the per-chat write interval has not passed; records the write otherwise.
    fn flood_check(&mut self, chat_id: i64, now: Instant) -> Option<u64> {
        let interval = self.write_interval?;
        if let Some(last) = self.last_write.get(&chat_id) {
            let since = now.duration_since(*last);
            if since < interval {
                let left = interval - since;
                return Some(left.as_secs() + u64::from(left.subsec_nanos() > 0));
            }
        }
        self.last_write.insert(chat_id, now);
        None
    }
}

async fn serve(shared: Arc<Shared>, port: u16) -> (u16, Running) {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => break listener,
            // The old socket of this port may linger a moment after going offline.
            Err(_) if port != 0 && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("FakeTelegram: cannot bind 127.0.0.1:{port}: {e}"),
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(e) => panic!("FakeTelegram: no local address: {e}"),
    };
    let stop = CancellationToken::new();
    let app = Router::new()
        .route("/file/{bot}/{*path}", get(file))
        .route("/{bot}/{method}", get(method).post(method))
        // Uploads are judged by Telegram's own limits (50 MB), answered in
        // its envelope, not by axum's default 2 MB.
        .layer(DefaultBodyLimit::disable())
        .with_state(Server {
            shared,
            stop: stop.clone(),
        });
    let until = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        let _ = axum::serve(crate::recorder::no_delay(listener), app)
            .with_graceful_shutdown(until)
            .await;
    });
    (port, Running { stop, task })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn ok(result: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({ "ok": true, "result": result })),
    )
        .into_response()
}

fn error(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        axum::Json(json!({ "ok": false, "error_code": code, "description": description })),
    )
        .into_response()
}

fn too_many(retry_after: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": { "retry_after": retry_after },
        })),
    )
        .into_response()
}

fn bad_request(what: &str) -> Response {
    error(400, &format!("Bad Request: {what}"))
}

fn fault(fault: FakeFault) -> Response {
    match fault {
        FakeFault::TooManyRequests { retry_after } => too_many(retry_after),
        FakeFault::ServerError(code) => error(code, "Internal Server Error"),
        FakeFault::Disconnect => {
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset",
                ))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(broken))
                .unwrap_or_else(|_| error(500, "Internal Server Error"))
        }
    }
}

/// The replied-to message as Telegram embeds it: without its own reply.
fn without_reply(message: &Value) -> Value {
    let mut copy = message.clone();
    if let Some(object) = copy.as_object_mut() {
        object.remove("reply_to_message");
        object.remove("quote");
    }
    copy
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The entities Telegram computes for a text: a leading `bot_command` and
/// `@username` mentions, with offsets and lengths in UTF-16 code units.
fn entities_of(text: &str) -> Vec<Value> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut entities = Vec::new();
    if let Some(rest) = text.strip_prefix('/') {
        let head: String = rest.chars().take_while(|c| word(*c) || *c == '@').collect();
        let next = rest[head.len()..].chars().next();
        let (name, bot) = head.split_once('@').unwrap_or((head.as_str(), ""));
        let valid = !name.is_empty() && name.len() <= 32 && !bot.contains('@');
        if valid && next.is_none_or(char::is_whitespace) {
            entities.push(
                json!({ "type": "bot_command", "offset": 0, "length": 1 + utf16_len(&head) }),
            );
        }
    }
    let mut units = 0;
    let mut prev: Option<char> = None;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(byte, ch)) in chars.iter().enumerate() {
        let starts_mention = ch == '@' && !prev.is_some_and(word) && !text[..byte].ends_with('/');
        if starts_mention {
            let name: String = chars[i + 1..]
                .iter()
                .map(|(_, c)| *c)
                .take_while(|c| word(*c))
                .collect();
            if (5..=32).contains(&name.len()) {
                entities
                    .push(json!({ "type": "mention", "offset": units, "length": 1 + name.len() }));
            }
        }
        units += ch.len_utf16();
        prev = Some(ch);
    }
    entities
}

fn param_i64(params: &Value, key: &str) -> Option<i64> {
    match &params[key] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A file part of a `multipart/form-data` request.
struct Upload {
    /// The form field (`photo`, `document`).
    field: String,
    filename: String,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

async fn method(
    State(server): State<Server>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    let shared = &server.shared;
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return error(401, "Unauthorized");
    }
    let (params, uploads) = match read_params(request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let (index, injected) = {
        let mut state = lock(&shared.state);
        let mut recorded = params.clone();
        for upload in &uploads {
            recorded[upload.field.as_str()] = json!({
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": upload.bytes.len(),
            });
        }
        state.calls.push(ApiCall {
            method: method.clone(),
            params: recorded,
            at: Instant::now(),
            status: None,
        });
        let injected = state.faults.get_mut(&method).and_then(VecDeque::pop_front);
        (state.calls.len() - 1, injected)
    };
    shared.changed.notify_waiters();
    let response = match injected {
        Some(injected) => fault(injected),
        None => match method.as_str() {
            "getMe" => ok(lock(&shared.state).bot.json()),
            "getUpdates" => get_updates(&server, &params).await,
            "sendMessage" => send_message(shared, &params),
            "sendPhoto" | "sendDocument" => send_file(shared, &method, &params, uploads),
            "editMessageText" => edit_message_text(shared, &params),
            "sendChatAction" => send_chat_action(shared, &params),
            "answerCallbackQuery" => answer_callback_query(shared, &params),
            "getFile" => get_file(shared, &params),
            _ => error(404, "Not Found"),
        },
    };
    if let Some(call) = lock(&shared.state).calls.get_mut(index) {
        call.status = Some(response.status().as_u16());
    }
    shared.changed.notify_waiters();
    response
}

/// A method's parameters: a JSON body, or the fields of a `multipart/form-data`
/// one (values that are JSON objects or arrays, such as `reply_parameters`,
/// read as JSON) with its file parts.
async fn read_params(request: Request) -> Result<(Value, Vec<Upload>), Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|_| bad_request("can't read the request body"))?;
        if body.is_empty() {
            return Ok((json!({}), Vec::new()));
        }
        return serde_json::from_slice(&body)
            .map(|params| (params, Vec::new()))
            .map_err(|_| bad_request("can't parse JSON object"));
    }
    let unreadable = |_| bad_request("can't parse multipart/form-data");
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|_| bad_request("can't parse multipart/form-data"))?;
    let mut params = serde_json::Map::new();
    let mut uploads = Vec::new();
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.map_err(unreadable)?;
        match filename {
            Some(filename) => uploads.push(Upload {
                field: name,
                filename,
                content_type,
                bytes: bytes.to_vec(),
            }),
            None => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let value = if text.starts_with(['{', '[']) {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                } else {
                    Value::String(text)
                };
                params.insert(name, value);
            }
        }
    }
    Ok((Value::Object(params), uploads))
}

async fn get_updates(server: &Server, params: &Value) -> Response {
    let shared = &server.shared;
    let limit = param_i64(params, "limit").unwrap_or(100).clamp(1, 100);
    let timeout = param_i64(params, "timeout").unwrap_or(0).max(0);
    let deadline = Instant::now() + Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
    let generation = {
        let mut state = lock(&shared.state);
        if let Some(offset) = param_i64(params, "offset")
            && offset > state.confirmed_below
        {
            state.confirmed_below = offset;
        }
        state.poll_generation += 1;
        state.poll_generation
    };
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        {
            let state = lock(&shared.state);
            if state.poll_generation != generation {
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                );
            }
            let pending: Vec<Value> = state
                .updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= state.confirmed_below)
                .take(usize::try_from(limit).unwrap_or(100))
                .cloned()
                .collect();
            if !pending.is_empty() || Instant::now() >= deadline {
                return ok(Value::Array(pending));
            }
        }
        tokio::select! {
            () = &mut changed => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = server.stop.cancelled() => return error(502, "Bad Gateway"),
        }
    }
}

/// Checks a message text as Telegram does.
fn check_text(params: &Value) -> Result<String, &'static str> {
    let text = params["text"].as_str().unwrap_or_default();
    if text.trim().is_empty() {
        return Err("message text is empty");
    }
    if utf16_len(text) > MAX_TEXT_UNITS {
        return Err("message is too long");
    }
    Ok(text.to_owned())
}

fn send_message(shared: &Shared, params: &Value) -> Response {
    let text = match check_text(params) {
        Ok(text) => text,
        Err(refused) => return bad_request(refused),
    };
    match post_bot_message(shared, params, |_| json!({ "text": text })) {
        Ok(message) => ok(message),
        Err(refused) => *refused,
    }
}

/// `sendPhoto` and `sendDocument`, from an upload.
fn send_file(shared: &Shared, method: &str, params: &Value, uploads: Vec<Upload>) -> Response {
    let photo = method == "sendPhoto";
    let field = if photo { "photo" } else { "document" };
    let Some(upload) = uploads.into_iter().find(|u| u.field == field) else {
        // Telegram also takes a `file_id` or a URL; the fake knows only uploads.
        return bad_request(&format!("there is no {field} in the request"));
    };
    let caption = params["caption"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if caption
        .as_deref()
        .is_some_and(|c| utf16_len(c) > MAX_CAPTION_UNITS)
    {
        return bad_request("message caption is too long");
    }
    if upload.bytes.is_empty() {
        return bad_request("file must be non-empty");
    }
    if upload.bytes.len() > MAX_UPLOAD_BYTES {
        return error(413, "Request Entity Too Large");
    }
    let dimensions = if photo {
        match photo_check(&upload.bytes) {
            Ok(dimensions) => Some(dimensions),
            Err(refused) => return bad_request(refused),
        }
    } else {
        None
    };
    let posted = post_bot_message(shared, params, |world| {
        let mut content = json!({});
        if let Some(caption) = &caption {
            content["caption"] = json!(caption);
        }
        match dimensions {
            Some((width, height)) => {
                let scaled = |side: u32| {
                    let longest = width.max(height).max(1);
                    let factor = f64::from(side.min(longest)) / f64::from(longest);
                    let w = (f64::from(width) * factor).round().max(1.0);
                    let h = (f64::from(height) * factor).round().max(1.0);
                    (w as u32, h as u32)
                };
                let thumb_bytes = upload.bytes[..upload.bytes.len().min(16)].to_vec();
                let (tw, th) = scaled(90);
                let (fw, fh) = scaled(1280);
                let thumb_len = thumb_bytes.len();
                let thumb = world.add_file(thumb_bytes, "jpg");
                let full = world.add_file(upload.bytes.clone(), "jpg");
                content["photo"] = json!([
                    { "file_id": thumb, "file_unique_id": format!("u{thumb}"), "width": tw, "height": th, "file_size": thumb_len },
                    { "file_id": full, "file_unique_id": format!("u{full}"), "width": fw, "height": fh, "file_size": upload.bytes.len() },
                ]);
            }
            None => {
                let extension = upload
                    .filename
                    .rsplit_once('.')
                    .map_or("bin", |(_, ext)| ext);
                let id = world.add_file_in("documents", upload.bytes.clone(), extension);
                let mime = upload
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                content["document"] = json!({
                    "file_id": id,
                    "file_unique_id": format!("u{id}"),
                    "file_name": upload.filename,
                    "mime_type": mime,
                    "file_size": upload.bytes.len(),
                });
            }
        }
        content
    });
    let message = match posted {
        Ok(message) => message,
        Err(refused) => return *refused,
    };
    lock(&shared.state).sent_files.push(SentFile {
        chat_id: message["chat"]["id"].as_i64().unwrap_or_default(),
        message_id: message["message_id"].as_i64().unwrap_or_default(),
        method: method.to_owned(),
        filename: upload.filename,
        content_type: upload.content_type,
        bytes: upload.bytes,
        caption,
        thread: message["message_thread_id"].as_i64(),
    });
    ok(message)
}

/// Whether Telegram takes `bytes` as a photo: a PNG, JPEG, GIF or WebP of at
/// most 10 MB whose width and height add up to at most 10000 and differ at
/// most 20 times. Gives its width and height (0 × 0 when they cannot be read,
/// as for WebP here).
fn photo_check(bytes: &[u8]) -> Result<(u32, u32), &'static str> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err("PHOTO_SAVE_FILE_INVALID");
    }
    let Some((width, height)) = image_size(bytes) else {
        return Err("IMAGE_PROCESS_FAILED");
    };
    if (width, height) == (0, 0) {
        return Ok((0, 0));
    }
    let (long, short) = (width.max(height), width.min(height));
    if short == 0 || u64::from(width) + u64::from(height) > 10_000 || long / short > 20 {
        return Err("PHOTO_INVALID_DIMENSIONS");
    }
    Ok((width, height))
}

/// The width and height of a PNG, JPEG or GIF (`(0, 0)` for a WebP); `None`
/// for anything else.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be32 = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let be16 = |at: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR") {
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF8") {
        let le16 = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u32::from(b[0]) | u32::from(b[1]) << 8)
        };
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some((0, 0));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Walk the segments to the frame header (SOF0–SOF15 but DHT, JPG, DAC).
        let mut at = 2;
        while at + 4 <= bytes.len() {
            if bytes[at] != 0xFF {
                return None;
            }
            let marker = bytes[at + 1];
            let length = usize::try_from(be16(at + 2)?).ok()?;
            if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
                return Some((be16(at + 7)?, be16(at + 5)?));
            }
            at += 2 + length;
        }
    }
    None
}

/// A valid PNG of `width` × `height` black pixels (8-bit greyscale, stored
/// without compression), for tests that send pictures: `sendPhoto` reads its
/// size as Telegram would.
pub fn png_of_size(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, greyscale, deflate, no filter method, no interlace.
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    // Each row: filter type 0, then one byte per pixel.
    let raw = vec![0u8; (width as usize + 1) * height as usize];
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    if blocks.is_empty() {
        zlib.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&(b << 16 | a).to_be_bytes());
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Makes a new message of the bot in the chat `params` name, after the checks
/// every sending method makes (the chat, the flood limit, the message replied
/// to, the keyboard); `content` gives its text, photo or document.
fn post_bot_message(
    shared: &Shared,
    params: &Value,
    content: impl FnOnce(&mut World) -> Value,
) -> Result<Value, Box<Response>> {
    let Some(chat_id) = param_i64(params, "chat_id") else {
        return Err(Box::new(bad_request("chat_id is empty")));
    };
    if let Err(refused) = check_markup(params) {
        return Err(Box::new(bad_request(refused)));
    }
    let mut state = lock(&shared.state);
    let bot = state.bot.json();
    if !state.chats.contains_key(&chat_id) {
        return Err(Box::new(bad_request("chat not found")));
    }
    if let Some(retry_after) = state.flood_check(chat_id, Instant::now()) {
        return Err(Box::new(too_many(retry_after)));
    }
    let reply_to = param_i64(&params["reply_parameters"], "message_id");
    let replied = match reply_to {
        Some(id) => match state.chats.get(&chat_id).and_then(|c| c.messages.get(&id)) {
            Some(m) => Some(without_reply(&m.json)),
            None if params["reply_parameters"]["allow_sending_without_reply"] == json!(true) => {
                None
            }
            None => return Err(Box::new(bad_request("message to be replied not found"))),
        },
        None => None,
    };
    let content = content(&mut state);
    let Some(chat) = state.chats.get_mut(&chat_id) else {
        return Err(Box::new(bad_request("chat not found")));
    };
    let message_id = chat.next_message_id;
    chat.next_message_id += 1;
    let mut message = json!({
        "message_id": message_id,
        "from": bot,
        "chat": chat.chat.clone(),
        "date": unix_now(),
    });
    if let Some(fields) = content.as_object() {
        for (key, value) in fields {
            message[key.as_str()] = value.clone();
        }
    }
    if let Some(replied) = replied {
        message["reply_to_message"] = replied;
    }
    if let Some(thread) = param_i64(params, "message_thread_id") {
        message["message_thread_id"] = json!(thread);
        message["is_topic_message"] = json!(true);
    }
    if let Some(markup) = keyboard(params) {
        message["reply_markup"] = markup;
    }
    chat.messages.insert(
        message_id,
        Stored {
            json: message.clone(),
            from_bot: true,
            edits: 0,
        },
    );
    Ok(message)
}

fn edit_message_text(shared: &Shared, params: &Value) -> Response {
    let (Some(chat_id), Some(message_id)) = (
        param_i64(params, "chat_id"),
        param_i64(params, "message_id"),
    ) else {
        return bad_request("message identifier is not specified");
    };
    let text = match check_text(params) {
        Ok(text) => text,
        Err(refused) => return bad_request(refused),
    };
    if let Err(refused) = check_markup(params) {
        return bad_request(refused);
    }
    // Without `reply_markup` the buttons stay; with one they are replaced.
    let new_markup = params.get("reply_markup").map(|_| keyboard(params));
    let mut state = lock(&shared.state);
    let known = state
        .chats
        .get(&chat_id)
        .and_then(|c| c.messages.get(&message_id))
        .map(|m| {
            let same_markup = new_markup
                .as_ref()
                .is_none_or(|new| *new == m.json.get("reply_markup").cloned());
            (m.from_bot, m.json["text"] == json!(text) && same_markup)
        });
    let has_text = state
        .chats
        .get(&chat_id)
        .and_then(|c| c.messages.get(&message_id))
        .is_some_and(|m| m.json.get("text").is_some());
    match known {
        None => return bad_request("message to edit not found"),
        Some((false, _)) => return bad_request("message can't be edited"),
        Some((true, _)) if !has_text => {
            return bad_request("there is no text in the message to edit");
        }
        Some((true, true)) => {
            return bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
            );
        }
        Some((true, false)) => {}
    }
    if let Some(retry_after) = state.flood_check(chat_id, Instant::now()) {
        return too_many(retry_after);
    }
    let Some(stored) = state
        .chats
        .get_mut(&chat_id)
        .and_then(|c| c.messages.get_mut(&message_id))
    else {
        return bad_request("message to edit not found");
    };
    stored.json["text"] = json!(text);
    stored.json["edit_date"] = json!(unix_now());
    match new_markup {
        Some(Some(markup)) => stored.json["reply_markup"] = markup,
        Some(None) => {
            if let Some(object) = stored.json.as_object_mut() {
                object.remove("reply_markup");
            }
        }
        None => {}
    }
    stored.edits += 1;
    ok(stored.json.clone())
}

/// Checks an inline keyboard as Telegram does: rows of buttons, each with a
/// `text` and 1 to 64 bytes of `callback_data`.
fn check_markup(params: &Value) -> Result<(), &'static str> {
    let Some(markup) = params.get("reply_markup") else {
        return Ok(());
    };
    let Some(rows) = markup["inline_keyboard"].as_array() else {
        return Err("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array");
    };
    for row in rows {
        let Some(buttons) = row.as_array() else {
            return Err(
                "field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
            );
        };
        for button in buttons {
            if button["text"].as_str().is_none_or(str::is_empty) {
                return Err("text buttons are unallowed in the inline keyboard");
            }
            let data = button["callback_data"].as_str().unwrap_or_default();
            if data.is_empty() || data.len() > 64 {
                return Err("BUTTON_DATA_INVALID");
            }
        }
    }
    Ok(())
}

/// The keyboard a message keeps: `None` for none or an empty one.
fn keyboard(params: &Value) -> Option<Value> {
    let markup = params.get("reply_markup")?;
    let any = markup["inline_keyboard"].as_array().is_some_and(|rows| {
        rows.iter()
            .any(|r| r.as_array().is_some_and(|b| !b.is_empty()))
    });
    any.then(|| markup.clone())
}

fn answer_callback_query(shared: &Shared, params: &Value) -> Response {
    let id = params["callback_query_id"].as_str().unwrap_or_default();
    let mut state = lock(&shared.state);
    match state.callbacks.get_mut(id) {
        Some(answered) if !*answered => {
            *answered = true;
            ok(json!(true))
        }
        _ => bad_request("query is too old and response timeout expired or query ID is invalid"),
    }
}

fn send_chat_action(shared: &Shared, params: &Value) -> Response {
    let Some(chat_id) = param_i64(params, "chat_id") else {
        return bad_request("chat_id is empty");
    };
    if params["action"].as_str().is_none_or(str::is_empty) {
        return bad_request("action is empty");
    }
    if !lock(&shared.state).chats.contains_key(&chat_id) {
        return bad_request("chat not found");
    }
    ok(json!(true))
}

fn get_file(shared: &Shared, params: &Value) -> Response {
    let id = params["file_id"].as_str().unwrap_or_default();
    let state = lock(&shared.state);
    match state.files.get(id) {
        Some(file) if file.bytes.len() > MAX_DOWNLOAD_BYTES => bad_request("file is too big"),
        Some(file) => ok(json!({
            "file_id": id,
            "file_unique_id": format!("u{id}"),
            "file_size": file.bytes.len(),
            "file_path": file.path,
        })),
        None => bad_request("invalid file_id"),
    }
}

async fn file(State(server): State<Server>, Path((bot, path)): Path<(String, String)>) -> Response {
    let shared = &server.shared;
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return error(401, "Unauthorized");
    }
    let bytes = {
        let mut state = lock(&shared.state);
        state.calls.push(ApiCall {
            method: "file".to_owned(),
            params: json!({ "path": path }),
            at: Instant::now(),
            status: Some(200),
        });
        state
            .files
            .values()
            .find(|f| f.path == path)
            .map(|f| f.bytes.clone())
    };
    shared.changed.notify_waiters();
    match bytes {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => error(404, "Not Found"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entities_count_utf16_units() {
        let e = entities_of("/tier@clara_test_bot high");
        assert_eq!(
            e,
            vec![json!({"type":"bot_command","offset":0,"length":20})]
        );
        let e = entities_of("😀 hi @clara_test_bot!");
        assert_eq!(e, vec![json!({"type":"mention","offset":6,"length":15})]);
        assert!(entities_of("/path/to/file").is_empty());
        assert!(entities_of("mail me at a@example.com").is_empty());
    }

    #[test]
    fn photos_are_judged_by_their_size_and_shape() {
        let png = png_of_size(640, 480);
        assert_eq!(image_size(&png), Some((640, 480)));
        assert_eq!(
            crc32(b"IEND"),
            0xAE42_6082,
            "the IEND chunk's well-known CRC"
        );
        assert_eq!(photo_check(&png), Ok((640, 480)));
        assert_eq!(
            photo_check(&png_of_size(4000, 100)),
            Err("PHOTO_INVALID_DIMENSIONS")
        );
        assert_eq!(
            photo_check(&png_of_size(9600, 480)),
            Err("PHOTO_INVALID_DIMENSIONS")
        );
        assert_eq!(photo_check(b"%PDF-1.7"), Err("IMAGE_PROCESS_FAILED"));
        // A JPEG's frame header, after an APP0 segment.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x4A, 0x46, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01,
            0xE0, 0x02, 0x80,
        ];
        assert_eq!(image_size(&jpeg), Some((640, 480)));
        assert_eq!(
            photo_check(&vec![0x89; MAX_PHOTO_BYTES + 1]),
            Err("PHOTO_SAVE_FILE_INVALID")
        );
    }
}

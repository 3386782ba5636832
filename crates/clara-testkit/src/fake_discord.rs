//! A fake Discord: the gateway WebSocket and the REST API (v10) on one local port,
//! plus a CDN for attachments, written from Discord's public API reference.
//!
//! **Gateway** (`ws://127.0.0.1:PORT`, resumes at `ws://127.0.0.1:PORT/resume`):
//! HELLO (op 10, `heartbeat_interval`) on connect; IDENTIFY (op 2) checks the
//! token (close 4004 otherwise; 4005 when sent twice) and answers READY (op 0,
//! `session_id`, `resume_gateway_url`, the bot user); HEARTBEAT (op 1) gets
//! HEARTBEAT_ACK (op 11); RESUME (op 6) replays the dispatches after the client's
//! `seq` and sends RESUMED, or INVALID_SESSION (op 9, `d: false`) for an unknown
//! or invalidated session. A payload that is not JSON closes with 4002, an
//! opcode a client may not send with 4001; anything but a heartbeat before
//! identifying closes with 4003. Dispatches carry
//! increasing sequence numbers per session; those sent while the client is away
//! are kept for its RESUME, as Discord does. Tests drive it: post a user's
//! message (MESSAGE_CREATE), press a button under the bot's message
//! (INTERACTION_CREATE of type 3, [`FakeDiscord::press_button`]), drop the TCP
//! connection, send RECONNECT (op 7) or INVALID_SESSION, or close with a code.
//!
//! **REST** (`http://127.0.0.1:PORT/api/v10`): `GET /users/@me`,
//! `POST /channels/{id}/messages`, `GET`/`PATCH /channels/{id}/messages/{id}`,
//! `POST /channels/{id}/typing`, and `POST /interactions/{id}/{token}/callback`
//! (no authorization needed; 204, or 404 code 10062 "Unknown interaction", or
//! 400 code 40060 when already acknowledged). Messages may carry `components`
//! (action rows of buttons, checked as Discord does: 50035 otherwise); an edit
//! with `components` replaces them. Every other call needs
//! `Authorization: Bot <token>` (401 otherwise). Errors use Discord's bodies (`{"message","code"}`, 50035
//! "Invalid Form Body" with `errors`, 50006 empty message, 10008 unknown message,
//! 50005 editing another's message). Every answer carries the bucket headers
//! (`X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket`); a bucket is
//! counted per route and channel, and an exhausted one answers 429 with
//! `Retry-After`, `X-RateLimit-Scope` and `{"message": "You are being rate
//! limited.", "retry_after": 0.5, "global": false}` (a global 429 carries no
//! bucket headers, `X-RateLimit-Global: true` instead). Tests may script 429s
//! and server errors (5xx, before serving a call or after it, as when an answer
//! is lost on the way). A new message with `enforce_nonce` and a nonce seen in
//! that channel in the last few minutes is not created again: the first one is
//! returned, as Discord does. A new message may instead be a
//! `multipart/form-data` upload: the message's JSON in `payload_json`, files
//! in `files[n]` parts, named by `attachments: [{"id": n, "filename"}]`; the
//! text may then be empty. Uploads adding up to more than the limit (10 MiB,
//! Discord's default; [`FakeDiscord::set_upload_limit`]) get 413 code 40005
//! "Request entity too large". Sent files are served by the CDN and recorded
//! ([`FakeDiscord::sent_files`]).
//! The bot's own messages come back as MESSAGE_CREATE / MESSAGE_UPDATE
//! dispatches, as on Discord.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The bot's user id.
pub const BOT_ID: u64 = 1_180_000_000_000_000_001;
/// The bot's application id.
pub const APPLICATION_ID: u64 = 1_180_000_000_000_000_002;
/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "fake.discord.token";
/// The heartbeat interval announced in HELLO unless told otherwise (Discord's usual).
pub const DEFAULT_HEARTBEAT_MS: u64 = 41_250;
/// How long the `wait_*` helpers wait before panicking.
pub const WAIT: Duration = Duration::from_secs(20);
/// The most a message's uploads may add up to unless told otherwise: Discord's
/// default (servers with boosts allow more).
pub const DEFAULT_UPLOAD_LIMIT: usize = 10 * 1024 * 1024;

const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A Discord account that writes messages in tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FakeUser {
    /// The user id.
    pub id: u64,
    /// The unique username.
    pub username: String,
    /// The display name, if set.
    pub global_name: Option<String>,
    /// Whether the account is a bot.
    pub bot: bool,
}

impl FakeUser {
    /// A person called `name` (username in lower case, display name as given).
    pub fn new(id: u64, name: &str) -> Self {
        Self {
            id,
            username: name.to_lowercase(),
            global_name: Some(name.to_owned()),
            bot: false,
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": null,
            "bot": self.bot,
            "public_flags": 0,
        })
    }
}

/// A file attached to a user's message, served by the fake's CDN.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FakeAttachment {
    /// The file name.
    pub filename: String,
    /// Its MIME type as Discord reports it (`None`: Discord did not detect one).
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A message a user writes, for [`FakeDiscord::post`] and [`FakeDiscord::store`].
#[derive(Clone, Debug, Default)]
pub struct UserMessage {
    /// The channel.
    pub channel_id: u64,
    /// The server; `None` for a direct message.
    pub guild_id: Option<u64>,
    /// Who writes it.
    pub author: FakeUser,
    /// Their nickname in the server, if any.
    pub nick: Option<String>,
    /// The text (`<@id>` mentions are resolved into `mentions`).
    pub content: String,
    /// The message it replies to.
    pub reply_to: Option<u64>,
    /// Attached files.
    pub attachments: Vec<FakeAttachment>,
    /// Sent by a webhook.
    pub webhook: bool,
}

impl UserMessage {
    /// A direct message from `author` in DM channel `channel`.
    pub fn dm(channel: u64, author: &FakeUser, content: &str) -> Self {
        Self {
            channel_id: channel,
            author: author.clone(),
            content: content.to_owned(),
            ..Self::default()
        }
    }

    /// A message in `channel` of server `guild`.
    pub fn guild(guild: u64, channel: u64, author: &FakeUser, content: &str) -> Self {
        Self {
            guild_id: Some(guild),
            ..Self::dm(channel, author, content)
        }
    }

    /// The same message, replying to message `id`.
    pub fn replying_to(mut self, id: u64) -> Self {
        self.reply_to = Some(id);
        self
    }

    /// The same message, with a file attached.
    pub fn with_attachment(
        mut self,
        filename: &str,
        content_type: Option<&str>,
        data: &[u8],
    ) -> Self {
        self.attachments.push(FakeAttachment {
            filename: filename.to_owned(),
            content_type: content_type.map(str::to_owned),
            data: data.to_vec(),
        });
        self
    }
}

/// A file part of a `multipart/form-data` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field, e.g. `files[0]`.
    pub field: String,
    /// The part's file name.
    pub filename: String,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A file the bot sent as an attachment of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentFile {
    /// The channel.
    pub channel_id: u64,
    /// The message it is attached to.
    pub message_id: u64,
    /// The attachment's file name (from `attachments[].filename`, else the part's).
    pub filename: String,
    /// The `Content-Type` of the uploaded part, if it had one.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
    /// The message's text (the caption); empty when none.
    pub content: String,
    /// The message it replies to, if any.
    pub reply_to: Option<u64>,
}

/// One REST call the fake received.
#[derive(Clone, Debug)]
pub struct RestCall {
    /// `GET`, `POST`, `PATCH`, …
    pub method: String,
    /// The path after `/api/v10/`, e.g. `channels/1/messages`.
    pub path: String,
    /// The JSON body (`Null` when none or not JSON); for a multipart upload,
    /// its `payload_json`.
    pub body: Value,
    /// The files of a multipart upload.
    pub files: Vec<UploadedFile>,
    /// The status the fake answered.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

/// A payload the client sent on the gateway.
#[derive(Clone, Debug)]
pub struct ClientFrame {
    /// Which connection (1, 2, … in order of connecting).
    pub connection: u64,
    /// The opcode.
    pub op: u64,
    /// The payload's `d`.
    pub d: Value,
}

/// A gateway connection the client opened.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// Its number (1, 2, …).
    pub number: u64,
    /// The path and query it asked for (`/?v=10&encoding=json`, `/resume/?v=10…`).
    pub target: String,
}

/// A 429 the fake will answer instead of serving a call.
#[derive(Clone, Debug)]
struct Scripted429 {
    method: String,
    path_suffix: String,
    retry_after: f64,
    global: bool,
    times: usize,
}

/// A server error the fake will answer, before or after serving a call.
#[derive(Clone, Debug)]
struct ScriptedFailure {
    method: String,
    path_suffix: String,
    status: u16,
    after_serving: bool,
    times: usize,
}

/// How long Discord remembers a message nonce for `enforce_nonce`.
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);

enum Control {
    Send(Value),
    Drop,
    Close(u16, String),
}

struct Connection {
    number: u64,
    tx: mpsc::UnboundedSender<Control>,
    /// Identified or resumed: live dispatches go to it.
    live: bool,
}

struct Session {
    id: String,
    seq: u64,
    log: Vec<Value>,
}

struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

struct World {
    port: u16,
    token: String,
    last_snowflake: u64,
    heartbeat_ms: u64,
    messages: HashMap<u64, Value>,
    guild_of: HashMap<u64, u64>,
    bot_messages: Vec<u64>,
    users: HashMap<u64, FakeUser>,
    files: HashMap<String, (Option<String>, Vec<u8>)>,
    calls: Vec<RestCall>,
    scripted: Vec<Scripted429>,
    failures: Vec<ScriptedFailure>,
    /// (channel, nonce) → the message it created, and when.
    nonces: HashMap<(u64, String), (u64, Instant)>,
    bucket_limit: u32,
    bucket_window: Duration,
    buckets: HashMap<(String, String), Bucket>,
    connections: Vec<ConnectionInfo>,
    connection: Option<Connection>,
    session: Option<Session>,
    sessions_made: u64,
    pending: Vec<(String, Value)>,
    frames: Vec<ClientFrame>,
    client_closes: Vec<(u64, u16)>,
    /// Interactions dispatched, by id: their token and the callback's body once answered.
    interactions: HashMap<String, (String, Option<Value>)>,
    /// The most one message's uploads may add up to.
    upload_limit: usize,
    /// Files the bot sent, in order.
    sent_files: Vec<SentFile>,
}

struct Shared {
    state: Mutex<World>,
    changed: Notify,
    shutdown: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        // A poisoned lock only means another test thread panicked.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake Discord on `127.0.0.1`; it stops when dropped.
pub struct FakeDiscord {
    port: u16,
    shared: Arc<Shared>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

impl FakeDiscord {
    /// Starts a fake on a free port. Panics if it cannot bind (this is test code).
    pub async fn start() -> FakeDiscord {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(l) => l,
            Err(e) => panic!("FakeDiscord: cannot bind 127.0.0.1: {e}"),
        };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => panic!("FakeDiscord: no local address: {e}"),
        };
        let mut users = HashMap::new();
        users.insert(BOT_ID, bot_user());
        let shared = Arc::new(Shared {
            state: Mutex::new(World {
                port,
                token: TOKEN.to_owned(),
                last_snowflake: 0,
                heartbeat_ms: DEFAULT_HEARTBEAT_MS,
                messages: HashMap::new(),
                guild_of: HashMap::new(),
                bot_messages: Vec::new(),
                users,
                files: HashMap::new(),
                calls: Vec::new(),
                scripted: Vec::new(),
                failures: Vec::new(),
                nonces: HashMap::new(),
                bucket_limit: 50,
                bucket_window: Duration::from_secs(1),
                buckets: HashMap::new(),
                connections: Vec::new(),
                connection: None,
                session: None,
                sessions_made: 0,
                pending: Vec::new(),
                frames: Vec::new(),
                client_closes: Vec::new(),
                interactions: HashMap::new(),
                upload_limit: DEFAULT_UPLOAD_LIMIT,
                sent_files: Vec::new(),
            }),
            changed: Notify::new(),
            shutdown: CancellationToken::new(),
        });
        let app = Router::new()
            .route("/", get(gateway))
            .route("/resume", get(gateway))
            .route("/resume/", get(gateway))
            .route("/attachments/{channel}/{id}/{name}", get(cdn))
            .fallback(rest)
            // Uploads are judged by Discord's own limit, answered as Discord
            // does, not by axum's default 2 MB.
            .layer(DefaultBodyLimit::disable())
            .with_state(Arc::clone(&shared));
        let stop = shared.shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(crate::recorder::no_delay(listener), app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        FakeDiscord { port, shared }
    }

    /// The REST root, `http://127.0.0.1:PORT/api/v10`.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v10", self.port)
    }

    /// The gateway URL, `ws://127.0.0.1:PORT`.
    pub fn gateway_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The token the fake accepts.
    pub fn token(&self) -> String {
        self.shared.lock().token.clone()
    }

    /// Accept only `token` from now on.
    pub fn set_token(&self, token: &str) {
        self.shared.lock().token = token.to_owned();
    }

    /// `<@BOT_ID>`: a mention of the bot, as a client writes it.
    pub fn mention() -> String {
        format!("<@{BOT_ID}>")
    }

    /// The `heartbeat_interval` sent in the next HELLOs.
    pub fn set_heartbeat_interval(&self, interval: Duration) {
        self.shared.lock().heartbeat_ms = interval.as_millis().max(1) as u64;
    }

    /// Every bucket allows `limit` calls per `window` from now on (default 50 per second).
    pub fn set_bucket(&self, limit: u32, window: Duration) {
        let mut st = self.shared.lock();
        st.bucket_limit = limit.max(1);
        st.bucket_window = window;
        st.buckets.clear();
    }

    /// The next `times` calls of `method` on a path ending with `path_suffix`
    /// (e.g. `/messages`) are refused with a 429 saying `retry_after` seconds;
    /// `global` makes it the bot-wide limit.
    pub fn rate_limit_next(
        &self,
        method: &str,
        path_suffix: &str,
        retry_after: f64,
        global: bool,
        times: usize,
    ) {
        self.shared.lock().scripted.push(Scripted429 {
            method: method.to_uppercase(),
            path_suffix: path_suffix.to_owned(),
            retry_after,
            global,
            times,
        });
    }

    /// The next `times` calls of `method` on a path ending with `path_suffix`
    /// are answered with the server error `status` (500, 502, 503, 504):
    /// without serving them, or, with `after_serving`, after serving them
    /// (the message is created, the answer is lost).
    pub fn fail_next(
        &self,
        method: &str,
        path_suffix: &str,
        status: u16,
        after_serving: bool,
        times: usize,
    ) {
        self.shared.lock().failures.push(ScriptedFailure {
            method: method.to_uppercase(),
            path_suffix: path_suffix.to_owned(),
            status,
            after_serving,
            times,
        });
    }

    /// Stores a user's message without announcing it (older history, e.g. the
    /// start of a reply chain). Returns its id.
    pub fn store(&self, message: UserMessage) -> u64 {
        let mut st = self.shared.lock();
        let (id, _) = st.add_user_message(&message);
        drop(st);
        self.shared.changed.notify_waiters();
        id
    }

    /// A user writes a message: it is stored and dispatched as MESSAGE_CREATE.
    /// Returns its id.
    pub fn post(&self, message: UserMessage) -> u64 {
        let mut st = self.shared.lock();
        let (id, event) = st.add_user_message(&message);
        st.dispatch("MESSAGE_CREATE", event);
        drop(st);
        self.shared.changed.notify_waiters();
        id
    }

    /// A user starts typing (TYPING_START).
    pub fn typing(&self, guild: Option<u64>, channel: u64, user: &FakeUser) {
        let mut d = json!({
            "channel_id": channel.to_string(),
            "user_id": user.id.to_string(),
            "timestamp": now_ms() / 1000,
        });
        if let Some(g) = guild {
            d["guild_id"] = json!(g.to_string());
            d["member"] = json!({ "user": user.json(), "roles": [], "nick": null });
        }
        self.shared.lock().dispatch("TYPING_START", d);
    }

    /// The buttons of message `message_id`, row after row: `(label, custom_id)`.
    pub fn message_buttons(&self, message_id: u64) -> Vec<(String, String)> {
        let st = self.shared.lock();
        let Some(message) = st.messages.get(&message_id) else {
            return Vec::new();
        };
        message["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["components"].as_array())
            .flatten()
            .map(|b| {
                (
                    b["label"].as_str().unwrap_or_default().to_owned(),
                    b["custom_id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// `user` presses the button labelled `label` under the bot's message
    /// `message_id`: an INTERACTION_CREATE (type 3, MESSAGE_COMPONENT) with
    /// its `custom_id` is dispatched, with `member.user` in a server and `user`
    /// in a DM. Returns the interaction's id; see
    /// [`FakeDiscord::interaction_response`]. Panics when there is no such button.
    pub fn press_button(&self, message_id: u64, user: &FakeUser, label: &str) -> String {
        let buttons = self.message_buttons(message_id);
        let Some((_, custom_id)) = buttons.iter().find(|(l, _)| l == label) else {
            panic!("FakeDiscord: message {message_id} has no button {label:?}: {buttons:?}");
        };
        self.send_interaction(message_id, user, custom_id)
    }

    /// Dispatches a button press on message `message_id` carrying `custom_id`
    /// as is (which real buttons could not: a test of stale or forged presses).
    /// Returns the interaction's id. Panics when there is no such message.
    pub fn send_interaction(&self, message_id: u64, user: &FakeUser, custom_id: &str) -> String {
        let mut st = self.shared.lock();
        let Some(message) = st.messages.get(&message_id).cloned() else {
            panic!("FakeDiscord: no message {message_id}");
        };
        let channel: u64 = message["channel_id"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or_default();
        let guild = st.guild_of.get(&channel).copied();
        let id = st.snowflake().to_string();
        let token = format!("aW50ZXJhY3Rpb246{id}:fake-interaction-token");
        st.interactions.insert(id.clone(), (token.clone(), None));
        let mut d = json!({
            "id": id,
            "application_id": APPLICATION_ID.to_string(),
            "type": 3,
            "token": token,
            "version": 1,
            "data": { "custom_id": custom_id, "component_type": 2 },
            "channel_id": channel.to_string(),
            "channel": { "id": channel.to_string(), "type": if guild.is_some() { 0 } else { 1 } },
            "message": message,
            "locale": "en-US",
            "app_permissions": "562949953421311",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": if guild.is_some() { 0 } else { 1 },
        });
        match guild {
            Some(g) => {
                d["guild_id"] = json!(g.to_string());
                d["member"] = json!({
                    "user": user.json(), "roles": [], "nick": null,
                    "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0,
                    "permissions": "562949953421311",
                });
            }
            None => d["user"] = user.json(),
        }
        st.dispatch("INTERACTION_CREATE", d);
        drop(st);
        self.shared.changed.notify_waiters();
        id
    }

    /// The body the interaction `id` was answered with (`{"type": 6}`, …), once
    /// its callback succeeded.
    pub fn interaction_response(&self, id: &str) -> Option<Value> {
        self.shared
            .lock()
            .interactions
            .get(id)
            .and_then(|(_, response)| response.clone())
    }

    /// Sends any dispatch (op 0) with event name `t` and data `d`.
    pub fn dispatch(&self, t: &str, d: Value) {
        self.shared.lock().dispatch(t, d);
    }

    /// Drops the current gateway connection's TCP stream without a close frame.
    /// The session stays resumable.
    pub fn drop_connection(&self) {
        self.control(Control::Drop);
    }

    /// Sends RECONNECT (op 7).
    pub fn request_reconnect(&self) {
        self.control(Control::Send(
            json!({ "op": 7, "d": null, "s": null, "t": null }),
        ));
    }

    /// Sends INVALID_SESSION (op 9). Not resumable: the session is forgotten, so
    /// only a fresh IDENTIFY gets back in.
    pub fn invalidate_session(&self, resumable: bool) {
        let mut st = self.shared.lock();
        if !resumable {
            st.session = None;
        }
        if let Some(c) = &mut st.connection {
            c.live = false;
            let _ = c.tx.send(Control::Send(
                json!({ "op": 9, "d": resumable, "s": null, "t": null }),
            ));
        }
    }

    /// Forgets the session and drops the connection: the client's RESUME will be
    /// answered with INVALID_SESSION (`d: false`), as for a session that expired.
    pub fn expire_session(&self) {
        let mut st = self.shared.lock();
        st.session = None;
        if let Some(c) = &st.connection {
            let _ = c.tx.send(Control::Drop);
        }
    }

    /// Closes the current connection with a close frame (e.g. 4000 "Unknown
    /// error", resumable; 4004 "Authentication failed", fatal).
    pub fn close_connection(&self, code: u16, reason: &str) {
        self.control(Control::Close(code, reason.to_owned()));
    }

    fn control(&self, control: Control) {
        let st = self.shared.lock();
        if let Some(c) = &st.connection {
            let _ = c.tx.send(control);
        }
    }

    /// Every gateway connection so far, in order.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared.lock().connections.clone()
    }

    /// Every payload clients sent on the gateway, in order.
    pub fn frames(&self) -> Vec<ClientFrame> {
        self.shared.lock().frames.clone()
    }

    /// The close frames clients sent: (connection number, close code; 1005 when
    /// the frame had none).
    pub fn client_closes(&self) -> Vec<(u64, u16)> {
        self.shared.lock().client_closes.clone()
    }

    /// The payloads with opcode `op` (2 IDENTIFY, 6 RESUME, 1 HEARTBEAT).
    pub fn frames_with_op(&self, op: u64) -> Vec<ClientFrame> {
        self.frames().into_iter().filter(|f| f.op == op).collect()
    }

    /// The current session's id and last sequence number sent, if one is open.
    pub fn session(&self) -> Option<(String, u64)> {
        let st = self.shared.lock();
        st.session.as_ref().map(|s| (s.id.clone(), s.seq))
    }

    /// Whether a client is connected with a live (identified or resumed) session.
    pub fn is_live(&self) -> bool {
        self.shared
            .lock()
            .connection
            .as_ref()
            .is_some_and(|c| c.live)
    }

    /// Every REST call so far, in order.
    pub fn calls(&self) -> Vec<RestCall> {
        self.shared.lock().calls.clone()
    }

    /// The REST calls of `method` whose path ends with `suffix`.
    pub fn calls_to(&self, method: &str, suffix: &str) -> Vec<RestCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.ends_with(suffix))
            .collect()
    }

    /// The most one message's uploads may add up to from now on (default
    /// [`DEFAULT_UPLOAD_LIMIT`]); more gets 413.
    pub fn set_upload_limit(&self, bytes: usize) {
        self.shared.lock().upload_limit = bytes;
    }

    /// Every file the bot sent, in order.
    pub fn sent_files(&self) -> Vec<SentFile> {
        self.shared.lock().sent_files.clone()
    }

    /// The bot's messages in `channel`, oldest first, as they read now.
    pub fn bot_messages(&self, channel: u64) -> Vec<Value> {
        let st = self.shared.lock();
        st.bot_messages
            .iter()
            .filter_map(|id| st.messages.get(id))
            .filter(|m| m["channel_id"] == json!(channel.to_string()))
            .cloned()
            .collect()
    }

    /// The texts of the bot's messages in `channel`, oldest first.
    pub fn bot_texts(&self, channel: u64) -> Vec<String> {
        self.bot_messages(channel)
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `pred` holds; panics naming `what` after [`WAIT`].
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&FakeDiscord) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            if pred(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "FakeDiscord: timed out waiting for {what}; calls: {:#?}; frames: {:#?}",
                    self.calls()
                        .iter()
                        .map(|c| format!("{} {} → {}", c.method, c.path, c.status))
                        .collect::<Vec<_>>(),
                    self.frames()
                        .iter()
                        .map(|f| format!("#{} op {}", f.connection, f.op))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    /// Waits until a client holds a live session.
    pub async fn wait_live(&self) {
        self.wait_until("a live gateway session", FakeDiscord::is_live)
            .await;
    }
}

fn bot_user() -> FakeUser {
    FakeUser {
        id: BOT_ID,
        username: "clara".to_owned(),
        global_name: Some("Clara".to_owned()),
        bot: true,
    }
}

impl World {
    fn snowflake(&mut self) -> u64 {
        let id = ((now_ms() - DISCORD_EPOCH_MS) << 22).max(self.last_snowflake + 1);
        self.last_snowflake = id;
        id
    }

    /// Keeps the uploaded `files` of a new message in `channel` on the CDN and
    /// returns them as its `attachments`, named as `body.attachments` says (by `id`, the
    /// `n` of `files[n]`), else by the part; Discord turns spaces and other
    /// odd characters of a file name into `_`.
    fn attach(&mut self, channel: u64, body: &Value, files: &[UploadedFile]) -> Vec<Value> {
        let named = |n: &str| -> Option<String> {
            body["attachments"].as_array()?.iter().find_map(|a| {
                let matches = match &a["id"] {
                    Value::Number(i) => i.to_string() == n,
                    Value::String(i) => i == n,
                    _ => false,
                };
                matches
                    .then(|| a["filename"].as_str().map(str::to_owned))
                    .flatten()
            })
        };
        files
            .iter()
            .map(|file| {
                let n = file
                    .field
                    .strip_prefix("files[")
                    .and_then(|f| f.strip_suffix(']'))
                    .unwrap_or_default();
                let name: String = named(n)
                    .unwrap_or_else(|| file.filename.clone())
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let attachment_id = self.snowflake();
                let path = format!("/attachments/{channel}/{attachment_id}/{name}");
                self.files
                    .insert(path.clone(), (file.content_type.clone(), file.data.clone()));
                let mut v = json!({
                    "id": attachment_id.to_string(),
                    "filename": name,
                    "size": file.data.len(),
                    "url": format!("http://127.0.0.1:{}{path}?ex=6745d2a1&is=67448121&hm=3f1e", self.port),
                    "proxy_url": format!("http://127.0.0.1:{}{path}", self.port),
                });
                if let Some(t) = &file.content_type {
                    v["content_type"] = json!(t);
                }
                v
            })
            .collect()
    }

    /// Stores a user's message; returns its id and its MESSAGE_CREATE data.
    fn add_user_message(&mut self, m: &UserMessage) -> (u64, Value) {
        self.users.insert(m.author.id, m.author.clone());
        let id = self.snowflake();
        let mut mentioned: Vec<u64> = mention_ids(&m.content);
        let referenced = m.reply_to.and_then(|r| self.messages.get(&r).cloned());
        if let Some(r) = &referenced {
            // A reply pings the replied-to author by default.
            if let Some(author) = r["author"]["id"].as_str().and_then(|s| s.parse().ok()) {
                mentioned.push(author);
            }
        }
        mentioned.dedup();
        let attachments: Vec<Value> = m
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let att_id = id + 1 + i as u64;
                let path = format!("/attachments/{}/{att_id}/{}", m.channel_id, a.filename);
                self.files
                    .insert(path.clone(), (a.content_type.clone(), a.data.clone()));
                let mut v = json!({
                    "id": att_id.to_string(),
                    "filename": a.filename,
                    "size": a.data.len(),
                    "url": format!("http://127.0.0.1:{}{path}?ex=6745d2a1&is=67448121&hm=3f1e", self.port),
                    "proxy_url": format!("http://127.0.0.1:{}{path}", self.port),
                });
                if let Some(t) = &a.content_type {
                    v["content_type"] = json!(t);
                }
                v
            })
            .collect();
        self.last_snowflake += m.attachments.len() as u64;
        let mut message = self.message_json(id, m.channel_id, &m.author, &m.content, attachments);
        message["mentions"] = Value::Array(
            mentioned
                .iter()
                .filter_map(|u| self.users.get(u))
                .map(FakeUser::json)
                .collect(),
        );
        if m.webhook {
            message["webhook_id"] = json!((id + 7).to_string());
        }
        if let Some(r) = m.reply_to {
            message["type"] = json!(19);
            message["message_reference"] = json!({
                "type": 0,
                "message_id": r.to_string(),
                "channel_id": m.channel_id.to_string(),
                "guild_id": m.guild_id.map(|g| g.to_string()),
            });
            message["referenced_message"] = referenced.map_or(Value::Null, |mut r| {
                if let Some(o) = r.as_object_mut() {
                    o.remove("referenced_message");
                }
                r
            });
        }
        self.messages.insert(id, message.clone());
        if let Some(g) = m.guild_id {
            self.guild_of.insert(m.channel_id, g);
        }
        (
            id,
            self.gateway_form(message, m.guild_id, m.nick.as_deref()),
        )
    }

    fn message_json(
        &self,
        id: u64,
        channel: u64,
        author: &FakeUser,
        content: &str,
        attachments: Vec<Value>,
    ) -> Value {
        json!({
            "id": id.to_string(),
            "channel_id": channel.to_string(),
            "author": author.json(),
            "content": content,
            "timestamp": iso8601(snowflake_ms(id)),
            "edited_timestamp": null,
            "tts": false,
            "mention_everyone": false,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "pinned": false,
            "type": 0,
            "flags": 0,
            "components": [],
        })
    }

    /// A stored (REST-shaped) message as the gateway sends it: with `guild_id`
    /// and `member` in servers.
    fn gateway_form(&self, mut message: Value, guild: Option<u64>, nick: Option<&str>) -> Value {
        if let Some(g) = guild {
            message["guild_id"] = json!(g.to_string());
            message["member"] = json!({
                "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00",
                "deaf": false, "mute": false, "flags": 0, "nick": nick,
            });
            if let Some(mentions) = message["mentions"].as_array_mut() {
                for m in mentions {
                    m["member"] = json!({ "roles": [], "nick": null, "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0 });
                }
            }
        }
        message
    }

    fn dispatch(&mut self, t: &str, d: Value) {
        let Some(session) = &mut self.session else {
            self.pending.push((t.to_owned(), d));
            return;
        };
        session.seq += 1;
        let payload = json!({ "op": 0, "t": t, "s": session.seq, "d": d });
        session.log.push(payload.clone());
        if let Some(c) = &self.connection
            && c.live
        {
            let _ = c.tx.send(Control::Send(payload));
        }
    }
}

// ---------------------------------------------------------------- gateway

async fn gateway(State(shared): State<Arc<Shared>>, uri: Uri, ws: WebSocketUpgrade) -> Response {
    let target = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    ws.on_upgrade(move |socket| connection(shared, target, socket))
}

async fn connection(shared: Arc<Shared>, target: String, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (number, heartbeat_ms) = {
        let mut st = shared.lock();
        let number = st.connections.len() as u64 + 1;
        st.connections.push(ConnectionInfo {
            number,
            target: target.clone(),
        });
        st.connection = Some(Connection {
            number,
            tx,
            live: false,
        });
        (number, st.heartbeat_ms)
    };
    shared.changed.notify_waiters();
    if !target.contains("v=10") || !target.contains("encoding=json") {
        let _ = close(&mut socket, 4012, "Invalid API version.").await;
        return forget(&shared, number);
    }
    let hello =
        json!({ "op": 10, "d": { "heartbeat_interval": heartbeat_ms }, "s": null, "t": null });
    if send(&mut socket, &hello).await.is_err() {
        return forget(&shared, number);
    }
    let mut identified = false;
    loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            control = rx.recv() => match control {
                Some(Control::Send(v)) => {
                    if send(&mut socket, &v).await.is_err() {
                        break;
                    }
                }
                Some(Control::Close(code, reason)) => {
                    let _ = close(&mut socket, code, &reason).await;
                    break;
                }
                // Dropping the socket ends the TCP stream without a close frame.
                Some(Control::Drop) | None => break,
            },
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(WsMessage::Binary(_))) => {
                        let _ = close(&mut socket, 4002, "Error while decoding payload.").await;
                        break;
                    }
                    // Reading on after a close frame sends the echo, as
                    // Discord does, and then ends the stream.
                    Some(Ok(WsMessage::Close(frame))) => {
                        let code = frame.map_or(1005, |f| f.code);
                        shared.lock().client_closes.push((number, code));
                        shared.changed.notify_waiters();
                        continue;
                    }
                    Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                match client_payload(&shared, number, &text, &mut identified) {
                    Reply::Nothing => {}
                    Reply::Send(payloads) => {
                        let mut failed = false;
                        for p in payloads {
                            failed |= send(&mut socket, &p).await.is_err();
                        }
                        if failed {
                            break;
                        }
                    }
                    Reply::Close(code, reason) => {
                        let _ = close(&mut socket, code, reason).await;
                        break;
                    }
                }
                shared.changed.notify_waiters();
            }
        }
    }
    forget(&shared, number);
}

fn forget(shared: &Shared, number: u64) {
    let mut st = shared.lock();
    if st.connection.as_ref().is_some_and(|c| c.number == number) {
        st.connection = None;
    }
    drop(st);
    shared.changed.notify_waiters();
}

enum Reply {
    Nothing,
    Send(Vec<Value>),
    Close(u16, &'static str),
}

fn client_payload(shared: &Shared, number: u64, text: &str, identified: &mut bool) -> Reply {
    let Ok(payload) = serde_json::from_str::<Value>(text) else {
        return Reply::Close(4002, "Error while decoding payload.");
    };
    let Some(op) = payload["op"].as_u64() else {
        return Reply::Close(4001, "Unknown opcode.");
    };
    let d = payload.get("d").cloned().unwrap_or(Value::Null);
    let mut st = shared.lock();
    st.frames.push(ClientFrame {
        connection: number,
        op,
        d: d.clone(),
    });
    match op {
        1 => Reply::Send(vec![json!({ "op": 11, "d": null, "s": null, "t": null })]),
        2 => {
            if *identified {
                return Reply::Close(4005, "Already authenticated.");
            }
            if !token_matches(d["token"].as_str(), &st.token) {
                return Reply::Close(4004, "Authentication failed.");
            }
            if d["intents"].as_u64().is_none() {
                return Reply::Close(4013, "Invalid intent(s).");
            }
            *identified = true;
            st.sessions_made += 1;
            let session_id = format!(
                "{:032x}",
                (now_ms() << 16) ^ (st.sessions_made * 0x9e37_79b9)
            );
            let ready = json!({
                "v": 10,
                "user": { "id": BOT_ID.to_string(), "username": "clara", "global_name": "Clara",
                          "discriminator": "0", "avatar": null, "bot": true, "verified": true,
                          "mfa_enabled": false, "flags": 0 },
                "guilds": [],
                "session_id": session_id,
                "resume_gateway_url": format!("ws://127.0.0.1:{}/resume", st.port),
                "shard": [0, 1],
                "application": { "id": APPLICATION_ID.to_string(), "flags": 0 },
            });
            st.session = Some(Session {
                id: session_id,
                seq: 0,
                log: Vec::new(),
            });
            if let Some(c) = &mut st.connection
                && c.number == number
            {
                c.live = true;
            }
            st.dispatch("READY", ready);
            for (t, d) in std::mem::take(&mut st.pending) {
                st.dispatch(&t, d);
            }
            // Dispatches went through the control channel, in order.
            Reply::Nothing
        }
        6 => {
            if !token_matches(d["token"].as_str(), &st.token) {
                return Reply::Close(4004, "Authentication failed.");
            }
            let wanted = d["session_id"].as_str().unwrap_or_default();
            let after = d["seq"].as_u64().unwrap_or(0);
            let replay = match &st.session {
                Some(s) if s.id == wanted => s
                    .log
                    .iter()
                    .filter(|p| p["s"].as_u64().is_some_and(|n| n > after))
                    .cloned()
                    .collect::<Vec<_>>(),
                _ => {
                    return Reply::Send(vec![json!({ "op": 9, "d": false, "s": null, "t": null })]);
                }
            };
            *identified = true;
            let mut out = replay;
            if let Some(s) = &mut st.session {
                s.seq += 1;
                let resumed = json!({ "op": 0, "t": "RESUMED", "s": s.seq, "d": {} });
                s.log.push(resumed.clone());
                out.push(resumed);
            }
            if let Some(c) = &mut st.connection
                && c.number == number
            {
                c.live = true;
            }
            Reply::Send(out)
        }
        // Opcodes a client may send: presence, voice state, guild members,
        // soundboard sounds.
        3 | 4 | 8 | 31 if !*identified => Reply::Close(4003, "Not authenticated."),
        3 | 4 | 8 | 31 => Reply::Nothing,
        _ => Reply::Close(4001, "Unknown opcode."),
    }
}

fn token_matches(sent: Option<&str>, token: &str) -> bool {
    sent.map(|t| t.strip_prefix("Bot ").unwrap_or(t)) == Some(token)
}

async fn send(socket: &mut WebSocket, payload: &Value) -> Result<(), axum::Error> {
    socket
        .send(WsMessage::Text(payload.to_string().into()))
        .await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) -> Result<(), axum::Error> {
    socket
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await
}

// ---------------------------------------------------------------- REST

async fn cdn(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let file = shared.lock().files.get(uri.path()).cloned();
    match file {
        Some((content_type, data)) => {
            let mut response = Response::new(Body::from(data));
            let t = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
            if let Ok(v) = t.parse() {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            response
        }
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn rest(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    let Some(path) = uri.path().strip_prefix("/api/v10/").map(str::to_owned) else {
        return error(
            StatusCode::NOT_FOUND,
            json!({ "message": "404: Not Found", "code": 0 }),
            &[],
        );
    };
    let (body, files) = match read_body(request).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let now = Instant::now();
    let response = {
        let mut st = shared.lock();
        let (status, response) = serve(&mut st, &method, &path, &headers, &body, &files, now);
        st.calls.push(RestCall {
            method: method.as_str().to_owned(),
            path,
            body,
            files,
            status,
            at: now,
        });
        response
    };
    shared.changed.notify_waiters();
    response
}

/// A request's JSON body, or a multipart one's `payload_json` and files.
async fn read_body(request: Request) -> Result<(Value, Vec<UploadedFile>), Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let invalid = || {
        error(
            StatusCode::BAD_REQUEST,
            json!({ "message": "Invalid Form Body", "code": 50035 }),
            &[],
        )
    };
    if !multipart {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|_| invalid())?;
        return Ok((
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        ));
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|_| invalid())?;
    let mut payload = Value::Null;
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|_| invalid())? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let data = field.bytes().await.map_err(|_| invalid())?;
        match filename {
            Some(filename) => files.push(UploadedFile {
                field: name,
                filename,
                content_type,
                data: data.to_vec(),
            }),
            None if name == "payload_json" => {
                payload = serde_json::from_slice(&data).map_err(|_| invalid())?;
            }
            // Other fields stand for top-level JSON parameters.
            None => {
                if !payload.is_object() {
                    payload = json!({});
                }
                payload[name.as_str()] = json!(String::from_utf8_lossy(&data));
            }
        }
    }
    Ok((payload, files))
}

fn serve(
    st: &mut World,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    files: &[UploadedFile],
    now: Instant,
) -> (u16, Response) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Interaction callbacks are authorized by the interaction's token.
    if let ("POST", ["interactions", id, token, "callback"]) =
        (method.as_str(), segments.as_slice())
    {
        let (status, body) = interaction_callback(st, id, token, body);
        let response = if status == StatusCode::NO_CONTENT {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = status;
            r
        } else {
            error(status, body, &[])
        };
        return (status.as_u16(), response);
    }
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {}", st.token));
    if !authorized {
        return (
            401,
            error(
                StatusCode::UNAUTHORIZED,
                json!({ "message": "401: Unauthorized", "code": 0 }),
                &[],
            ),
        );
    }
    let (template, major) = route_of(method, &segments);
    let bucket_name = format!("{:016x}", fnv(&template));

    // Scripted 429s first.
    if let Some(rule) = st
        .scripted
        .iter_mut()
        .find(|r| r.times > 0 && r.method == method.as_str() && path.ends_with(&r.path_suffix))
    {
        rule.times -= 1;
        let (retry_after, global) = (rule.retry_after, rule.global);
        st.scripted.retain(|r| r.times > 0);
        return (
            429,
            too_many(&bucket_name, st.bucket_limit, retry_after, global),
        );
    }

    let failure = st
        .failures
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method.as_str() && path.ends_with(&f.path_suffix))
        .map(|f| {
            f.times -= 1;
            (f.status, f.after_serving)
        });
    st.failures.retain(|f| f.times > 0);
    if let Some((status, false)) = failure {
        return (status, server_error(status));
    }

    // The route's bucket for this channel.
    let (limit, window) = (st.bucket_limit, st.bucket_window);
    let bucket = st
        .buckets
        .entry((bucket_name.clone(), major))
        .or_insert(Bucket {
            remaining: limit,
            reset_at: now + window,
        });
    if now >= bucket.reset_at {
        bucket.remaining = limit;
        bucket.reset_at = now + window;
    }
    if bucket.remaining == 0 {
        let retry_after = bucket.reset_at.saturating_duration_since(now).as_secs_f64();
        return (429, too_many(&bucket_name, limit, retry_after, false));
    }
    bucket.remaining -= 1;
    let rate_headers = bucket_headers(
        &bucket_name,
        limit,
        bucket.remaining,
        bucket.reset_at.saturating_duration_since(now).as_secs_f64(),
    );

    let (status, body) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["users", "@me"]) => (
            StatusCode::OK,
            json!({
                "id": BOT_ID.to_string(), "username": "clara", "global_name": "Clara", "discriminator": "0",
                "avatar": null, "bot": true, "verified": true, "mfa_enabled": false, "flags": 0, "locale": "en-US",
            }),
        ),
        ("POST", ["channels", channel, "messages"]) => {
            create_message(st, channel, body, files, now)
        }
        ("GET", ["channels", _, "messages", id]) => {
            match id.parse::<u64>().ok().and_then(|id| st.messages.get(&id)) {
                Some(m) => (StatusCode::OK, m.clone()),
                None => unknown_message(),
            }
        }
        ("PATCH", ["channels", _, "messages", id]) => edit_message(st, id, body),
        ("POST", ["channels", _, "typing"]) => (StatusCode::NO_CONTENT, Value::Null),
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "message": "404: Not Found", "code": 0 }),
        ),
    };
    if let Some((status, true)) = failure {
        return (status, server_error(status));
    }
    let mut response = if status == StatusCode::NO_CONTENT {
        Response::new(Body::empty())
    } else {
        axum::Json(body).into_response()
    };
    *response.status_mut() = status;
    for (name, value) in rate_headers {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(name, v);
        }
    }
    (status.as_u16(), response)
}

fn create_message(
    st: &mut World,
    channel: &str,
    body: &Value,
    files: &[UploadedFile],
    now: Instant,
) -> (StatusCode, Value) {
    let Ok(channel) = channel.parse::<u64>() else {
        return (
            StatusCode::NOT_FOUND,
            json!({ "message": "Unknown Channel", "code": 10003 }),
        );
    };
    if files.iter().map(|f| f.data.len()).sum::<usize>() > st.upload_limit {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({ "message": "Request entity too large", "code": 40005 }),
        );
    }
    if files.len() > 10 {
        return (
            StatusCode::BAD_REQUEST,
            json!({
                "message": "Invalid Form Body", "code": 50035,
                "errors": { "attachments": { "_errors": [
                    { "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer in length." } ] } },
            }),
        );
    }
    let nonce = match &body["nonce"] {
        Value::String(n) => Some(n.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if nonce.as_ref().is_some_and(|n| n.chars().count() > 25) {
        return (
            StatusCode::BAD_REQUEST,
            json!({
                "message": "Invalid Form Body", "code": 50035,
                "errors": { "nonce": { "_errors": [
                    { "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length." } ] } },
            }),
        );
    }
    let enforced = nonce.filter(|_| body["enforce_nonce"] == json!(true));
    st.nonces
        .retain(|_, (_, at)| now.saturating_duration_since(*at) < NONCE_WINDOW);
    if let Some(nonce) = &enforced
        && let Some((id, _)) = st.nonces.get(&(channel, nonce.clone()))
        && let Some(message) = st.messages.get(id)
    {
        return (StatusCode::OK, message.clone());
    }
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    if content.trim().is_empty() && files.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "message": "Cannot send an empty message", "code": 50006 }),
        );
    }
    if content.chars().count() > 2000 {
        return too_long();
    }
    if let Err(why) = check_components(body) {
        return invalid_components(why);
    }
    if files.iter().any(|f| f.data.is_empty()) {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "message": "Cannot send an empty file.", "code": 40006 }),
        );
    }
    let reference = body
        .get("message_reference")
        .filter(|r| !r.is_null())
        .cloned();
    let referenced = match &reference {
        Some(r) => {
            let id = r["message_id"].as_str().and_then(|s| s.parse::<u64>().ok());
            match id.and_then(|id| st.messages.get(&id)).cloned() {
                Some(m) => Some(m),
                None if r["fail_if_not_exists"] == json!(false) => None,
                None => {
                    return (
                        StatusCode::BAD_REQUEST,
                        json!({
                            "message": "Invalid Form Body", "code": 50035,
                            "errors": { "message_reference": { "_errors": [
                                { "code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message" } ] } },
                        }),
                    );
                }
            }
        }
        None => None,
    };
    let id = st.snowflake();
    let attachments = st.attach(channel, body, files);
    let mut message = st.message_json(id, channel, &bot_user(), &content, attachments.clone());
    if let Some(components) = body.get("components").filter(|c| !c.is_null()) {
        message["components"] = components.clone();
    }
    if let Some(mut r) = referenced {
        if let Some(o) = r.as_object_mut() {
            o.remove("referenced_message");
        }
        message["type"] = json!(19);
        message["message_reference"] = json!({
            "type": 0, "message_id": r["id"], "channel_id": channel.to_string(),
        });
        message["referenced_message"] = r;
    }
    let reply_to = message["message_reference"]["message_id"]
        .as_str()
        .and_then(|r| r.parse().ok());
    for (attachment, file) in attachments.iter().zip(files) {
        st.sent_files.push(SentFile {
            channel_id: channel,
            message_id: id,
            filename: attachment["filename"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            content_type: file.content_type.clone(),
            data: file.data.clone(),
            content: content.clone(),
            reply_to,
        });
    }
    st.messages.insert(id, message.clone());
    st.bot_messages.push(id);
    if let Some(nonce) = enforced {
        st.nonces.insert((channel, nonce), (id, now));
    }
    let guild = st.guild_of.get(&channel).copied();
    let event = st.gateway_form(message.clone(), guild, None);
    st.dispatch("MESSAGE_CREATE", event);
    (StatusCode::OK, message)
}

fn edit_message(st: &mut World, id: &str, body: &Value) -> (StatusCode, Value) {
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| st.messages.contains_key(id))
    else {
        return unknown_message();
    };
    if !st.bot_messages.contains(&id) {
        return (
            StatusCode::FORBIDDEN,
            json!({ "message": "Cannot edit a message authored by another user", "code": 50005 }),
        );
    }
    if let Some(content) = body.get("content").and_then(Value::as_str) {
        if content.chars().count() > 2000 {
            return too_long();
        }
        if content.trim().is_empty() {
            return (
                StatusCode::BAD_REQUEST,
                json!({ "message": "Cannot send an empty message", "code": 50006 }),
            );
        }
    }
    if let Err(why) = check_components(body) {
        return invalid_components(why);
    }
    let edited_at = iso8601(now_ms());
    let message = match st.messages.get_mut(&id) {
        Some(m) => {
            if let Some(content) = body.get("content").and_then(Value::as_str) {
                m["content"] = json!(content);
            }
            if let Some(components) = body.get("components").filter(|c| !c.is_null()) {
                m["components"] = components.clone();
            }
            m["edited_timestamp"] = json!(edited_at);
            m.clone()
        }
        None => return unknown_message(),
    };
    let channel = message["channel_id"]
        .as_str()
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(0);
    let guild = st.guild_of.get(&channel).copied();
    let event = st.gateway_form(message.clone(), guild, None);
    st.dispatch("MESSAGE_UPDATE", event);
    (StatusCode::OK, message)
}

/// Checks `components` as Discord does for buttons: at most five action rows
/// (type 1) of one to five buttons (type 2), each with a style of 1 to 5 and a
/// label of at most 80 characters; styles 1 to 4 need a `custom_id` of 1 to
/// 100 characters.
fn check_components(body: &Value) -> Result<(), &'static str> {
    let Some(rows) = body.get("components").filter(|c| !c.is_null()) else {
        return Ok(());
    };
    let Some(rows) = rows.as_array() else {
        return Err("components must be an array");
    };
    if rows.len() > 5 {
        return Err("at most 5 action rows");
    }
    for row in rows {
        let buttons = row["components"].as_array();
        if row["type"] != json!(1) || buttons.is_none_or(|b| b.is_empty() || b.len() > 5) {
            return Err("an action row holds 1 to 5 components");
        }
        for button in buttons.into_iter().flatten() {
            let style = button["style"].as_u64().unwrap_or(0);
            if button["type"] != json!(2) || !(1..=5).contains(&style) {
                return Err("a button has type 2 and a style of 1 to 5");
            }
            if button["label"]
                .as_str()
                .is_some_and(|l| l.chars().count() > 80)
            {
                return Err("a label is at most 80 characters");
            }
            let id_len = button["custom_id"]
                .as_str()
                .map_or(0, |c| c.chars().count());
            if style <= 4 && !(1..=100).contains(&id_len) {
                return Err("a button needs a custom_id of 1 to 100 characters");
            }
        }
    }
    Ok(())
}

fn invalid_components(why: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({
            "message": "Invalid Form Body", "code": 50035,
            "errors": { "components": { "_errors": [
                { "code": "COMPONENT_INVALID", "message": why } ] } },
        }),
    )
}

fn interaction_callback(
    st: &mut World,
    id: &str,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let Some((expected, response)) = st.interactions.get_mut(id) else {
        return (
            StatusCode::NOT_FOUND,
            json!({ "message": "Unknown interaction", "code": 10062 }),
        );
    };
    if expected != token {
        return (
            StatusCode::UNAUTHORIZED,
            json!({ "message": "Invalid Webhook Token", "code": 50027 }),
        );
    }
    if response.is_some() {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "message": "Interaction has already been acknowledged.", "code": 40060 }),
        );
    }
    if !body["type"].as_u64().is_some_and(|t| (1..=10).contains(&t)) {
        return (
            StatusCode::BAD_REQUEST,
            json!({ "message": "Invalid Form Body", "code": 50035 }),
        );
    }
    *response = Some(body.clone());
    (StatusCode::NO_CONTENT, Value::Null)
}

fn unknown_message() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({ "message": "Unknown Message", "code": 10008 }),
    )
}

fn too_long() -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({
            "message": "Invalid Form Body", "code": 50035,
            "errors": { "content": { "_errors": [
                { "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length." } ] } },
        }),
    )
}

/// The route's template (ids of minor parameters replaced) and its major parameter.
fn route_of(method: &Method, segments: &[&str]) -> (String, String) {
    let mut major = String::new();
    let mut template = vec![method.as_str().to_owned()];
    for (i, s) in segments.iter().enumerate() {
        let is_id = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if is_id && i == 1 && matches!(segments[0], "channels" | "guilds" | "webhooks") {
            major = (*s).to_owned();
            template.push("{major}".to_owned());
        } else if is_id {
            template.push("{id}".to_owned());
        } else {
            template.push((*s).to_owned());
        }
    }
    (template.join("/"), major)
}

fn bucket_headers(
    bucket: &str,
    limit: u32,
    remaining: u32,
    reset_after: f64,
) -> Vec<(&'static str, String)> {
    let reset = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64())
        + reset_after;
    vec![
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", format!("{reset:.3}")),
        ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
        ("x-ratelimit-bucket", bucket.to_owned()),
    ]
}

fn too_many(bucket: &str, limit: u32, retry_after: f64, global: bool) -> Response {
    // A global limit is not a bucket's: Discord sends no bucket headers with it.
    let mut headers = if global {
        Vec::new()
    } else {
        bucket_headers(bucket, limit, 0, retry_after)
    };
    headers.push(("retry-after", format!("{}", retry_after.ceil() as u64)));
    headers.push((
        "x-ratelimit-scope",
        if global { "global" } else { "user" }.to_owned(),
    ));
    if global {
        headers.push(("x-ratelimit-global", "true".to_owned()));
    }
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": (retry_after * 1000.0).round() / 1000.0,
        "global": global,
    });
    error(StatusCode::TOO_MANY_REQUESTS, body, &headers)
}

/// A 5xx as Discord (or Cloudflare in front of it) answers one.
fn server_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return error(
            status,
            json!({ "message": "500: Internal Server Error", "code": 0 }),
            &[],
        );
    }
    let page = format!(
        "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>cloudflare</center></body></html>"
    );
    let mut response = (status, page).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html"),
    );
    response
}

fn error(status: StatusCode, body: Value, headers: &[(&'static str, String)]) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        if let Ok(v) = value.parse() {
            response.headers_mut().insert(*name, v);
        }
    }
    response
}

// ---------------------------------------------------------------- helpers

fn mention_ids(content: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let inner = rest.strip_prefix('!').unwrap_or(rest);
        let Some(end) = inner.find('>') else { break };
        if let Ok(id) = inner[..end].parse::<u64>()
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(DISCORD_EPOCH_MS)
}

fn snowflake_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// `2024-11-05T10:00:00.123000+00:00`, Discord's timestamp format.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_discords() {
        assert_eq!(
            iso8601(1_462_015_105_796),
            "2016-04-30T11:18:25.796000+00:00"
        );
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000+00:00");
    }

    #[test]
    fn mentions_are_found_in_both_forms() {
        assert_eq!(mention_ids("<@12> hi <@!34> and <@12> <#5>"), vec![12, 34]);
    }

    #[test]
    fn routes_keep_the_channel_as_major_parameter() {
        let (t, major) = route_of(&Method::PATCH, &["channels", "10", "messages", "99"]);
        assert_eq!(t, "PATCH/channels/{major}/messages/{id}");
        assert_eq!(major, "10");
    }
}

//! The frames of protocol version 1, as they travel: one JSON object per
//! WebSocket text message, `{"v": 1, "type": "...", ...}`.
//!
//! [`ClientFrame`]s go from an adapter to the gateway, [`ServerFrame`]s from the
//! gateway to an adapter. `docs/gateway-protocol.md` shows each with an example.

use crate::auth::GatewaySecret;
use clara_core::approval::{ApprovalOutcome, ApprovalPrompt};
use clara_core::{Quoted, ThoughtId, Tier};
use serde::{Deserialize, Serialize};

/// A frame an adapter sends to the gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The answer to the gateway's challenge: who the adapter is and what its platform can do.
    Hello(Hello),
    /// One message from a person.
    Inbound(InboundFrame),
    /// A person is typing.
    Typing(Presence),
    /// A person asked to stop the reply in flight (a stop button or command).
    #[serde(alias = "stop")]
    Cancel(Presence),
    /// A person asked for a fresh session (a `/new` command).
    NewSession(NewSessionFrame),
    /// A `send` reached the platform; here is the platform's message id.
    Sent(SentFrame),
    /// A `send` did not reach the platform.
    SendFailed(SendFailedFrame),
    /// Are you there? Answered with `pong`.
    Ping(PingFrame),
    /// The answer to the gateway's `ping`.
    Pong(PingFrame),
}

impl ClientFrame {
    /// The frame's `type`, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Inbound(_) => "inbound",
            Self::Typing(_) => "typing",
            Self::Cancel(_) => "cancel",
            Self::NewSession(_) => "new_session",
            Self::Sent(_) => "sent",
            Self::SendFailed(_) => "send_failed",
            Self::Ping(_) => "ping",
            Self::Pong(_) => "pong",
        }
    }
}

/// Every `type` a [`ClientFrame`] may have (`stop` is another name for `cancel`).
pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "hello",
    "inbound",
    "typing",
    "cancel",
    "stop",
    "new_session",
    "sent",
    "send_failed",
    "ping",
    "pong",
];

/// A frame the gateway sends to an adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The first frame on every connection: prove you know the secret.
    Challenge(Challenge),
    /// The handshake succeeded; the connection's limits.
    Welcome(Welcome),
    /// An `inbound` was taken.
    Accepted(AcceptedFrame),
    /// An `inbound` or `new_session` was refused, with one sentence saying why.
    Rejected(RejectedFrame),
    /// A `new_session` was done.
    Done(DoneFrame),
    /// A reply to a thought begins (sent before the thought's first other frame).
    Start(ReplyFrame),
    /// Show that Clara is typing.
    Typing(TypingFrame),
    /// Send a new message; answer with `sent` (or `send_failed`).
    Send(SendFrame),
    /// Replace the text of a message sent earlier.
    Edit(EditFrame),
    /// More text of a streamed reply.
    Delta(DeltaFrame),
    /// A streamed reply is complete.
    End(ReplyFrame),
    /// Clara started running a tool for this reply.
    ToolStart(ToolStartFrame),
    /// A tool finished.
    ToolResult(ToolResultFrame),
    /// What a running tool printed lately.
    ToolProgress(ToolProgressFrame),
    /// Send a file as part of the reply.
    File(FileFrame),
    /// The reply was cut short; nothing more follows for it.
    Cancelled(ReplyFrame),
    /// The reply failed; the message is one sentence for the person.
    ReplyError(ReplyErrorFrame),
    /// Ask the owner whether a tool may run; answer with `sent` (or
    /// `send_failed`), like a `send`.
    Ask(AskFrame),
    /// A question was answered, timed out or withdrawn: update its message.
    AskClosed(AskClosedFrame),
    /// Are you there? Answer with `pong`.
    Ping(PingFrame),
    /// The answer to the adapter's `ping`.
    Pong(PingFrame),
    /// A frame of the adapter's could not be used.
    Error(ErrorFrame),
}

impl ServerFrame {
    /// The frame's `type`, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Challenge(_) => "challenge",
            Self::Welcome(_) => "welcome",
            Self::Accepted(_) => "accepted",
            Self::Rejected(_) => "rejected",
            Self::Done(_) => "done",
            Self::Start(_) => "start",
            Self::Typing(_) => "typing",
            Self::Send(_) => "send",
            Self::Edit(_) => "edit",
            Self::Delta(_) => "delta",
            Self::End(_) => "end",
            Self::ToolStart(_) => "tool_start",
            Self::ToolResult(_) => "tool_result",
            Self::ToolProgress(_) => "tool_progress",
            Self::File(_) => "file",
            Self::Cancelled(_) => "cancelled",
            Self::ReplyError(_) => "reply_error",
            Self::Ask(_) => "ask",
            Self::AskClosed(_) => "ask_closed",
            Self::Ping(_) => "ping",
            Self::Pong(_) => "pong",
            Self::Error(_) => "error",
        }
    }
}

/// Every `type` a [`ServerFrame`] may have.
pub const SERVER_FRAME_TYPES: &[&str] = &[
    "challenge",
    "welcome",
    "accepted",
    "rejected",
    "done",
    "start",
    "typing",
    "send",
    "edit",
    "delta",
    "end",
    "tool_start",
    "tool_result",
    "tool_progress",
    "file",
    "cancelled",
    "reply_error",
    "ask",
    "ask_closed",
    "ping",
    "pong",
    "error",
];

/// `hello`: the adapter introduces itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The platform's short name (`telegram`, `matrix`, …): lower-case letters,
    /// digits, `-` and `_`, at most 32 characters.
    pub platform: String,
    /// The shared secret itself (simple; fine on loopback or behind TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<GatewaySecret>,
    /// Lower-case hex HMAC-SHA256 of the challenge's nonce, keyed with the
    /// secret: proves the secret without sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// What the platform can do.
    pub capabilities: Capabilities,
    /// The adapter's name and version, for the gateway's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
}

/// What a platform can do with a reply, declared in `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The longest message the platform accepts, in characters.
    pub max_message_chars: usize,
    /// Whether a sent message can be edited (one message grows as the reply streams).
    #[serde(default)]
    pub can_edit: bool,
    /// The least time between two edits of a message, in milliseconds (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_cooldown_ms: Option<u64>,
    /// Whether text is shown as it arrives (a web page, a terminal): the adapter
    /// gets `delta`s and `end` instead of `send`s and `edit`s.
    #[serde(default)]
    pub streaming: bool,
}

/// Where a message was said, as the adapter's platform names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireConversation {
    /// The platform's id of the chat or channel.
    pub channel: String,
    /// DM, group or server channel.
    pub kind: WireChannelKind,
}

/// The kind of a conversation on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireChannelKind {
    /// A one-to-one conversation (`dm` is accepted too).
    #[serde(alias = "dm")]
    Direct,
    /// A group chat.
    Group,
    /// A channel of a server (a Discord guild, a Slack workspace): shared like a group.
    Server,
}

/// Who said something, as the platform knows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAuthor {
    /// The platform's id of the person.
    pub id: String,
    /// The name to address them by.
    pub name: String,
}

/// `inbound`: one message from a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InboundFrame {
    /// The adapter's id for this request; the answer (`accepted`, `rejected` or
    /// `error`) carries it as `re`.
    pub id: String,
    /// The platform's event id: a repeated delivery of the same id is answered
    /// `duplicate` and not processed again.
    pub event_id: String,
    /// Where it was said.
    pub conversation: WireConversation,
    /// Who said it.
    pub author: WireAuthor,
    /// The text as the person wrote it (a `!high`/`!mid`/`!low` prefix picks a tier).
    pub text: String,
    /// When the platform says it was sent, in Unix milliseconds (default: when it arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<i64>,
    /// A tier the adapter already knows (`high`, `mid`, `low`), e.g. from a slash command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Images attached to the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The messages this one replies to, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replying_to: Vec<Quoted>,
}

/// Something attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Attachment {
    /// An image: either a `url` the model's provider can fetch, or its bytes as
    /// base64 `data` with a `media_type`.
    Image(ImageAttachment),
    /// Any file (a document, a voice note): `name`, `media_type` and its bytes
    /// as base64 `data`. Clara stores it in the person's workspace.
    File(clara_core::FileBlob),
}

/// An attached image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAttachment {
    /// Where the image is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its MIME type (`image/png`), with `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The encoded image, standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `typing` and `cancel` from an adapter: a person did something in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Where.
    pub conversation: WireConversation,
    /// Who.
    pub author: WireAuthor,
}

/// `new_session`: start a fresh session in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSessionFrame {
    /// The adapter's id for this request, answered as `re`.
    pub id: String,
    /// Where.
    pub conversation: WireConversation,
    /// Who asked.
    pub author: WireAuthor,
}

/// `sent`: the answer to a `send`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFrame {
    /// The `send`'s `request_id`.
    pub request_id: u64,
    /// The platform's id of the new message, which later `edit`s name.
    pub message_id: String,
}

/// `send_failed`: a `send` did not reach the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFailedFrame {
    /// The `send`'s `request_id`.
    pub request_id: u64,
    /// One sentence saying what went wrong.
    pub reason: String,
    /// Set when the platform is rate limiting: the gateway retries after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `ping` and `pong`, both ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingFrame {
    /// Chosen by the pinger; the `pong` repeats it.
    pub nonce: u64,
}

/// `challenge`: the gateway's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random, used once: the `hello`'s `proof` is computed over it.
    pub nonce: String,
    /// The protocol versions the gateway speaks.
    pub versions: Vec<u32>,
    /// Whether `hello` must carry the secret (or a proof of it).
    pub auth_required: bool,
}

/// `welcome`: the handshake is done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// This connection's id, as the gateway's logs name it.
    pub connection: String,
    /// The largest frame the gateway reads, in bytes.
    pub max_frame_bytes: usize,
    /// How often the gateway pings, in milliseconds.
    pub ping_interval_ms: u64,
    /// How long the gateway waits for a `pong`, in milliseconds.
    pub pong_timeout_ms: u64,
    /// How long the gateway waits for the answer to a `send`, in milliseconds.
    pub send_ack_timeout_ms: u64,
}

/// `accepted`: an `inbound` was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedFrame {
    /// The `inbound`'s `id`.
    pub re: String,
    /// What happened to it.
    pub outcome: AcceptedOutcome,
}

/// What happened to an accepted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptedOutcome {
    /// It will be answered (alone or with the messages around it).
    Queued,
    /// The platform delivered this event before; ignored.
    Duplicate,
    /// A stop phrase: the reply in flight, if any, was cancelled; no answer follows.
    Stopped,
}

/// `rejected`: an `inbound` or `new_session` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedFrame {
    /// The request's `id`.
    pub re: String,
    /// Why, for programs.
    pub code: RejectCode,
    /// Why, in one sentence fit to show the person.
    pub reason: String,
    /// For `too_long`: the message's length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chars: Option<usize>,
    /// For `too_long`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Nothing to answer.
    Empty,
    /// Longer than Clara takes.
    TooLong,
    /// Clara is shutting down.
    Closed,
    /// Clara cannot take it right now; offer it again later.
    Unavailable,
}

/// `done`: a `new_session` was carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneFrame {
    /// The request's `id`.
    pub re: String,
}

/// A reply frame that says nothing but which thought it is about:
/// `start`, `end`, `cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
}

/// `typing` from the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingFrame {
    /// Where to show it.
    pub conversation: WireConversation,
}

/// `send`: send a new message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFrame {
    /// Repeat it in the `sent` (or `send_failed`) answer.
    pub request_id: u64,
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The message text.
    pub text: String,
}

/// `edit`: replace the text of a message sent earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The platform message id a `sent` returned.
    pub message_id: String,
    /// The new text.
    pub text: String,
}

/// `delta`: more text of a streamed reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// Text to append.
    pub text: String,
}

/// `tool_start`: Clara started running a tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStartFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The tool's (namespaced) name.
    pub name: String,
}

/// `tool_progress`: what a running tool printed lately (its tail when long).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolProgressFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The tool's (namespaced) name.
    pub name: String,
    /// The output so far.
    pub text: String,
}

/// `file`: send a file (`name`, `media_type`, base64 `data`) as part of the
/// reply: a picture where the platform shows pictures, else a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The file.
    pub file: clara_core::FileBlob,
    /// A line to show with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// `tool_result`: a tool finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResultFrame {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// The tool's (namespaced) name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
}

/// `reply_error`: the reply failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyErrorFrame {
    /// The thought that failed.
    pub thought: ThoughtId,
    /// Where.
    pub conversation: WireConversation,
    /// One sentence for the person.
    pub message: String,
}

/// `ask`: ask the owner whether a tool may run. Buttons carry
/// [`ApprovalAnswer::to_token`](clara_core::approval::ApprovalAnswer::to_token)
/// (`approve:ID`, `always:ID`, `deny:ID`); a platform without buttons shows
/// [`ApprovalPrompt::text`] with the typed answers. A press comes back as an
/// `inbound` whose text is the typed answer (`/approve ID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskFrame {
    /// Repeat it in the `sent` (or `send_failed`) answer.
    pub request_id: u64,
    /// Where (the owner's direct conversation).
    pub conversation: WireConversation,
    /// The question.
    pub prompt: ApprovalPrompt,
}

/// `ask_closed`: a question ended; edit its message (remove the buttons, show
/// how it ended).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskClosedFrame {
    /// Where.
    pub conversation: WireConversation,
    /// The question.
    pub prompt: ApprovalPrompt,
    /// The platform message id the `ask`'s `sent` returned, if it returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// How it ended.
    pub outcome: ApprovalOutcome,
}

/// `error`: a frame of the adapter's could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// What kind of problem, for programs.
    pub code: ErrorCode,
    /// One sentence saying what was wrong.
    pub message: String,
    /// The offending frame's `id`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub re: Option<String>,
}

/// The codes of `error` frames. Only those marked *closes* end the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object (or not text).
    Malformed,
    /// Larger than the frame limit.
    TooLarge,
    /// `v` missing or not a version the gateway speaks (*closes* when it is the `hello`).
    UnsupportedVersion,
    /// A `type` this version does not have.
    UnknownType,
    /// A known `type` whose fields are missing or wrong.
    InvalidFrame,
    /// A frame that makes no sense now (before `hello`, a second `hello`).
    OutOfOrder,
    /// A `sent`/`send_failed` for a `request_id` that is not waiting.
    UnknownRequest,
    /// The secret (or proof) is missing or wrong (*closes*).
    Unauthorized,
    /// No `hello` in time (*closes*).
    HandshakeTimeout,
    /// No `pong` in time (*closes*).
    PingTimeout,
    /// The adapter stopped reading its frames (*closes*).
    TooSlow,
}

impl ErrorCode {
    /// The code's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnknownType => "unknown_type",
            Self::InvalidFrame => "invalid_frame",
            Self::OutOfOrder => "out_of_order",
            Self::UnknownRequest => "unknown_request",
            Self::Unauthorized => "unauthorized",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::PingTimeout => "ping_timeout",
            Self::TooSlow => "too_slow",
        }
    }
}

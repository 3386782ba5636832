//! Between frames and Clara's own vocabulary (`clara_core`), both ways, with the
//! checks serde cannot express (a platform name's shape, an image's encoding).
//! Pure: the server and the client share it.

use crate::frames::{
    AcceptedFrame, AcceptedOutcome, AskClosedFrame, AskFrame, Attachment, Capabilities, DeltaFrame,
    EditFrame, FileFrame, Hello, ImageAttachment, InboundFrame, RejectCode, RejectedFrame,
    ReplyErrorFrame, ReplyFrame, SendFrame, ServerFrame, ToolProgressFrame, ToolResultFrame,
    ToolStartFrame, TypingFrame, WireAuthor, WireChannelKind, WireConversation,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clara_core::pacing::{Delivery, DeliveryMode, TypingPace};
use clara_core::port::{Accepted, IngressError};
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Image, Inbound, Outbound};
use std::time::Duration;

/// The longest platform name, in characters.
pub const MAX_PLATFORM_CHARS: usize = 32;

/// The edit cooldown when `can_edit` is declared without one.
pub const DEFAULT_EDIT_COOLDOWN_MS: u64 = 1000;

/// The longest edit cooldown an adapter may declare (a minute).
pub const MAX_EDIT_COOLDOWN_MS: u64 = 60_000;

/// The fewest characters a platform message may be declared to hold.
pub const MIN_MESSAGE_CHARS: usize = 16;

/// The longest adapter name (`hello`'s `adapter`), in characters: it goes into
/// the gateway's log.
pub const MAX_ADAPTER_CHARS: usize = 128;

/// Checks what serde cannot: the platform's name and the capabilities.
/// The error is one sentence.
pub fn validate_hello(hello: &Hello) -> Result<(), String> {
    let name = &hello.platform;
    let well_formed = !name.is_empty()
        && name.chars().count() <= MAX_PLATFORM_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !well_formed {
        return Err(format!(
            "the platform name must be 1 to {MAX_PLATFORM_CHARS} lower-case letters, digits, '-' or '_'."
        ));
    }
    if let Some(adapter) = &hello.adapter
        && adapter.chars().count() > MAX_ADAPTER_CHARS
    {
        return Err(format!(
            "the adapter name must be at most {MAX_ADAPTER_CHARS} characters."
        ));
    }
    validate_capabilities(&hello.capabilities)
}

fn validate_capabilities(c: &Capabilities) -> Result<(), String> {
    if c.max_message_chars < MIN_MESSAGE_CHARS {
        return Err(format!(
            "max_message_chars must be at least {MIN_MESSAGE_CHARS}; got {}.",
            c.max_message_chars
        ));
    }
    if let Some(ms) = c.edit_cooldown_ms
        && ms > MAX_EDIT_COOLDOWN_MS
    {
        return Err(format!(
            "edit_cooldown_ms must be at most {MAX_EDIT_COOLDOWN_MS}; got {ms}."
        ));
    }
    Ok(())
}

impl Capabilities {
    /// How the engine should deliver replies to this platform: streamed text,
    /// one message grown by edits, or human-paced parts.
    pub fn delivery(&self) -> Delivery {
        let mode = if self.streaming {
            DeliveryMode::Stream
        } else if self.can_edit {
            let ms = self
                .edit_cooldown_ms
                .unwrap_or(DEFAULT_EDIT_COOLDOWN_MS)
                .min(MAX_EDIT_COOLDOWN_MS);
            DeliveryMode::Edits {
                cooldown: Duration::from_millis(ms),
            }
        } else {
            DeliveryMode::Parts(TypingPace::default())
        };
        Delivery {
            mode,
            max_chars: self.max_message_chars.max(MIN_MESSAGE_CHARS),
        }
    }

    /// The capabilities that ask for `delivery` (what a client declares for its
    /// sink). A part platform's typing pace is the gateway's default.
    pub fn from_delivery(delivery: &Delivery) -> Self {
        let (streaming, can_edit, edit_cooldown_ms) = match &delivery.mode {
            DeliveryMode::Stream => (true, false, None),
            DeliveryMode::Edits { cooldown } => (
                false,
                true,
                Some(u64::try_from(cooldown.as_millis()).unwrap_or(MAX_EDIT_COOLDOWN_MS)),
            ),
            DeliveryMode::Parts(_) => (false, false, None),
        };
        Self {
            max_message_chars: delivery.max_chars,
            can_edit,
            edit_cooldown_ms,
            streaming,
        }
    }
}

impl WireConversation {
    /// The conversation on `platform`. A server channel is a group to Clara:
    /// shared by several people, so DM memories stay out of it.
    pub fn to_core(&self, platform: &str) -> ConversationRef {
        ConversationRef {
            platform: platform.to_owned(),
            channel: self.channel.clone(),
            kind: match self.kind {
                WireChannelKind::Direct => ChannelKind::Direct,
                WireChannelKind::Group | WireChannelKind::Server => ChannelKind::Group,
            },
        }
    }

    /// The wire form of a conversation (its platform is the connection's).
    pub fn from_core(conversation: &ConversationRef) -> Self {
        Self {
            channel: conversation.channel.clone(),
            kind: match conversation.kind {
                ChannelKind::Direct => WireChannelKind::Direct,
                ChannelKind::Group => WireChannelKind::Group,
            },
        }
    }
}

impl WireAuthor {
    /// The author in Clara's terms.
    pub fn to_core(&self) -> Author {
        Author {
            platform_user_id: self.id.clone(),
            display_name: self.name.clone(),
        }
    }

    /// The wire form of an author.
    pub fn from_core(author: &Author) -> Self {
        Self {
            id: author.platform_user_id.clone(),
            name: author.display_name.clone(),
        }
    }
}

impl InboundFrame {
    /// The message in Clara's terms, said on `platform`; `now_ms` stands in for a
    /// missing `sent_at_ms`. Fails (one sentence) on a broken attachment.
    pub fn to_core(&self, platform: &str, now_ms: i64) -> Result<Inbound, String> {
        let mut images = Vec::new();
        let mut files = Vec::new();
        for (i, attachment) in self.attachments.iter().enumerate() {
            match attachment {
                Attachment::Image(image) => images
                    .push(image_of(image).map_err(|why| format!("attachment {}: {why}", i + 1))?),
                Attachment::File(file) => files.push(file.clone()),
            }
        }
        Ok(Inbound {
            event_id: EventId(self.event_id.clone()),
            conversation: self.conversation.to_core(platform),
            author: self.author.to_core(),
            text: self.text.clone(),
            sent_at_ms: self.sent_at_ms.unwrap_or(now_ms),
            tier: self.tier,
            images,
            files,
            replying_to: self.replying_to.clone(),
        })
    }

    /// The frame for a message (the client's side); `id` is the request's id.
    pub fn from_core(id: String, inbound: &Inbound) -> Self {
        Self {
            id,
            event_id: inbound.event_id.0.clone(),
            conversation: WireConversation::from_core(&inbound.conversation),
            author: WireAuthor::from_core(&inbound.author),
            text: inbound.text.clone(),
            sent_at_ms: Some(inbound.sent_at_ms),
            tier: inbound.tier,
            attachments: inbound
                .images
                .iter()
                .map(attachment_of)
                .chain(inbound.files.iter().cloned().map(Attachment::File))
                .collect(),
            replying_to: inbound.replying_to.clone(),
        }
    }
}

fn image_of(image: &ImageAttachment) -> Result<Image, String> {
    match image {
        ImageAttachment {
            url: Some(url),
            media_type: None,
            data: None,
        } => {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(Image::Url { url: url.clone() })
            } else {
                Err("an image url must start with https:// or http://".to_owned())
            }
        }
        ImageAttachment {
            url: None,
            media_type: Some(media_type),
            data: Some(data),
        } => {
            if !media_type.starts_with("image/") {
                return Err(format!(
                    "media_type must be an image type, got {media_type:?}"
                ));
            }
            let bytes = BASE64
                .decode(data.as_bytes())
                .map_err(|_| "data is not valid standard base64".to_owned())?;
            if bytes.is_empty() {
                return Err("data is empty".to_owned());
            }
            Ok(Image::Bytes {
                media_type: media_type.clone(),
                data: bytes,
            })
        }
        _ => Err("an image has either a url, or media_type and data".to_owned()),
    }
}

fn attachment_of(image: &Image) -> Attachment {
    Attachment::Image(match image {
        Image::Url { url } => ImageAttachment {
            url: Some(url.clone()),
            media_type: None,
            data: None,
        },
        Image::Bytes { media_type, data } => ImageAttachment {
            url: None,
            media_type: Some(media_type.clone()),
            data: Some(BASE64.encode(data)),
        },
    })
}

/// The frame answering a submitted message `re`.
pub fn ingress_frame(re: String, result: Result<Accepted, IngressError>) -> ServerFrame {
    match result {
        Ok(accepted) => ServerFrame::Accepted(AcceptedFrame {
            re,
            outcome: match accepted {
                Accepted::Queued => AcceptedOutcome::Queued,
                Accepted::Duplicate => AcceptedOutcome::Duplicate,
                Accepted::Stopped => AcceptedOutcome::Stopped,
            },
        }),
        Err(error) => ServerFrame::Rejected(rejected_frame(re, &error)),
    }
}

/// The `rejected` frame for a refusal.
pub fn rejected_frame(re: String, error: &IngressError) -> RejectedFrame {
    let (code, chars, limit) = match error {
        IngressError::Empty => (RejectCode::Empty, None, None),
        IngressError::TooLong { chars, limit } => (RejectCode::TooLong, Some(*chars), Some(*limit)),
        IngressError::Closed => (RejectCode::Closed, None, None),
        IngressError::Unavailable => (RejectCode::Unavailable, None, None),
    };
    RejectedFrame {
        re,
        code,
        reason: error.to_string(),
        chars,
        limit,
    }
}

/// The refusal a `rejected` frame names (the client's side).
pub fn ingress_error(frame: &RejectedFrame) -> IngressError {
    match frame.code {
        RejectCode::Empty => IngressError::Empty,
        RejectCode::TooLong => IngressError::TooLong {
            chars: frame.chars.unwrap_or(0),
            limit: frame.limit.unwrap_or(0),
        },
        RejectCode::Closed => IngressError::Closed,
        RejectCode::Unavailable => IngressError::Unavailable,
    }
}

/// The outcome an `accepted` frame names (the client's side).
pub fn accepted_of(outcome: AcceptedOutcome) -> Accepted {
    match outcome {
        AcceptedOutcome::Queued => Accepted::Queued,
        AcceptedOutcome::Duplicate => Accepted::Duplicate,
        AcceptedOutcome::Stopped => Accepted::Stopped,
    }
}

/// The frame for one platform call. `request_id` is used by `Send` and `Ask`
/// only (the calls the adapter answers with a message id).
pub fn outbound_frame(
    conversation: WireConversation,
    outbound: Outbound,
    request_id: u64,
) -> ServerFrame {
    match outbound {
        Outbound::Typing => ServerFrame::Typing(TypingFrame { conversation }),
        Outbound::Send { thought, text } => ServerFrame::Send(SendFrame {
            request_id,
            thought,
            conversation,
            text,
        }),
        Outbound::Edit {
            thought,
            message,
            text,
        } => ServerFrame::Edit(EditFrame {
            thought,
            conversation,
            message_id: message,
            text,
        }),
        Outbound::Delta { thought, text } => ServerFrame::Delta(DeltaFrame {
            thought,
            conversation,
            text,
        }),
        Outbound::End { thought } => ServerFrame::End(ReplyFrame {
            thought,
            conversation,
        }),
        Outbound::ToolStarted { thought, name } => ServerFrame::ToolStart(ToolStartFrame {
            thought,
            conversation,
            name,
        }),
        Outbound::ToolFinished { thought, name, ok } => ServerFrame::ToolResult(ToolResultFrame {
            thought,
            conversation,
            name,
            ok,
        }),
        Outbound::ToolProgress {
            thought,
            name,
            text,
        } => ServerFrame::ToolProgress(ToolProgressFrame {
            thought,
            conversation,
            name,
            text,
        }),
        Outbound::File {
            thought,
            file,
            caption,
        } => ServerFrame::File(FileFrame {
            thought,
            conversation,
            file,
            caption,
        }),
        Outbound::Cancelled { thought } => ServerFrame::Cancelled(ReplyFrame {
            thought,
            conversation,
        }),
        Outbound::Error { thought, message } => ServerFrame::ReplyError(ReplyErrorFrame {
            thought,
            conversation,
            message,
        }),
        Outbound::Ask { prompt } => ServerFrame::Ask(AskFrame {
            request_id,
            conversation,
            prompt,
        }),
        Outbound::AskClosed {
            prompt,
            message,
            outcome,
        } => ServerFrame::AskClosed(AskClosedFrame {
            conversation,
            prompt,
            message_id: message,
            outcome,
        }),
    }
}

/// Whether the adapter answers this call with `sent` (or `send_failed`):
/// a `send` or an `ask`.
pub fn wants_answer(outbound: &Outbound) -> bool {
    matches!(outbound, Outbound::Send { .. } | Outbound::Ask { .. })
}

/// A platform call the gateway asks for, taken apart (the client's side): where,
/// what, and the `request_id` of a `send` or an `ask`. `None` for frames that are not
/// platform calls (`start` and the protocol's own).
pub fn outbound_of(frame: ServerFrame) -> Option<(WireConversation, Outbound, Option<u64>)> {
    Some(match frame {
        ServerFrame::Typing(f) => (f.conversation, Outbound::Typing, None),
        ServerFrame::Send(f) => (
            f.conversation,
            Outbound::Send {
                thought: f.thought,
                text: f.text,
            },
            Some(f.request_id),
        ),
        ServerFrame::Edit(f) => (
            f.conversation,
            Outbound::Edit {
                thought: f.thought,
                message: f.message_id,
                text: f.text,
            },
            None,
        ),
        ServerFrame::Delta(f) => (
            f.conversation,
            Outbound::Delta {
                thought: f.thought,
                text: f.text,
            },
            None,
        ),
        ServerFrame::End(f) => (f.conversation, Outbound::End { thought: f.thought }, None),
        ServerFrame::ToolStart(f) => (
            f.conversation,
            Outbound::ToolStarted {
                thought: f.thought,
                name: f.name,
            },
            None,
        ),
        ServerFrame::ToolResult(f) => (
            f.conversation,
            Outbound::ToolFinished {
                thought: f.thought,
                name: f.name,
                ok: f.ok,
            },
            None,
        ),
        ServerFrame::ToolProgress(f) => (
            f.conversation,
            Outbound::ToolProgress {
                thought: f.thought,
                name: f.name,
                text: f.text,
            },
            None,
        ),
        ServerFrame::File(f) => (
            f.conversation,
            Outbound::File {
                thought: f.thought,
                file: f.file,
                caption: f.caption,
            },
            None,
        ),
        ServerFrame::Cancelled(f) => (
            f.conversation,
            Outbound::Cancelled { thought: f.thought },
            None,
        ),
        ServerFrame::ReplyError(f) => (
            f.conversation,
            Outbound::Error {
                thought: f.thought,
                message: f.message,
            },
            None,
        ),
        ServerFrame::Ask(f) => (
            f.conversation,
            Outbound::Ask { prompt: f.prompt },
            Some(f.request_id),
        ),
        ServerFrame::AskClosed(f) => (
            f.conversation,
            Outbound::AskClosed {
                prompt: f.prompt,
                message: f.message_id,
                outcome: f.outcome,
            },
            None,
        ),
        ServerFrame::Challenge(_)
        | ServerFrame::Welcome(_)
        | ServerFrame::Accepted(_)
        | ServerFrame::Rejected(_)
        | ServerFrame::Done(_)
        | ServerFrame::Start(_)
        | ServerFrame::Ping(_)
        | ServerFrame::Pong(_)
        | ServerFrame::Error(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clara_core::approval::{ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
    use clara_core::{Quoted, ThoughtId, Tier};

    fn caps(max: usize, can_edit: bool, cooldown: Option<u64>, streaming: bool) -> Capabilities {
        Capabilities {
            max_message_chars: max,
            can_edit,
            edit_cooldown_ms: cooldown,
            streaming,
        }
    }

    #[test]
    fn capabilities_pick_the_delivery_mode() {
        let d = caps(2000, true, Some(1500), false).delivery();
        assert_eq!(
            d.mode,
            DeliveryMode::Edits {
                cooldown: Duration::from_millis(1500)
            }
        );
        assert_eq!(d.max_chars, 2000);
        assert_eq!(
            caps(2000, true, None, false).delivery().mode,
            DeliveryMode::Edits {
                cooldown: Duration::from_millis(DEFAULT_EDIT_COOLDOWN_MS)
            }
        );
        assert_eq!(
            caps(4096, false, None, false).delivery().mode,
            DeliveryMode::Parts(TypingPace::default())
        );
        assert_eq!(
            caps(4096, true, None, true).delivery().mode,
            DeliveryMode::Stream
        );
    }

    #[test]
    fn capabilities_round_trip_through_a_delivery() {
        for c in [
            caps(2000, true, Some(700), false),
            caps(4096, false, None, false),
            caps(100_000, false, None, true),
        ] {
            assert_eq!(Capabilities::from_delivery(&c.delivery()), c);
        }
    }

    #[test]
    fn hellos_are_validated() {
        let mut hello = Hello {
            platform: "matrix".into(),
            secret: None,
            proof: None,
            capabilities: caps(4000, true, Some(500), false),
            adapter: None,
        };
        assert_eq!(validate_hello(&hello), Ok(()));
        for bad in ["", "Matrix", "ma trix", "m/x", &"x".repeat(33)] {
            hello.platform = bad.into();
            assert!(validate_hello(&hello).is_err(), "{bad:?}");
        }
        hello.platform = "irc-2_x".into();
        hello.adapter = Some("a".repeat(MAX_ADAPTER_CHARS + 1));
        assert!(validate_hello(&hello).unwrap_err().contains("adapter name"));
        hello.adapter = Some("irc-bridge/2.1".into());
        hello.capabilities.max_message_chars = 3;
        assert!(
            validate_hello(&hello)
                .unwrap_err()
                .contains("max_message_chars")
        );
        hello.capabilities = caps(4000, true, Some(3_600_000), false);
        assert!(
            validate_hello(&hello)
                .unwrap_err()
                .contains("edit_cooldown_ms")
        );
    }

    fn inbound_frame(attachments: Vec<Attachment>) -> InboundFrame {
        InboundFrame {
            id: "c1".into(),
            event_id: "ev-1".into(),
            conversation: WireConversation {
                channel: "guild-1/general".into(),
                kind: WireChannelKind::Server,
            },
            author: WireAuthor {
                id: "u1".into(),
                name: "Ann".into(),
            },
            text: "look at this".into(),
            sent_at_ms: None,
            tier: Some(Tier::High),
            attachments,
            replying_to: vec![Quoted {
                author: "Bob".into(),
                text: "earlier".into(),
                from_clara: false,
            }],
        }
    }

    #[test]
    fn an_inbound_frame_becomes_an_inbound() {
        let frame = inbound_frame(vec![
            Attachment::Image(ImageAttachment {
                url: Some("https://example.org/cat.png".into()),
                media_type: None,
                data: None,
            }),
            Attachment::Image(ImageAttachment {
                url: None,
                media_type: Some("image/png".into()),
                data: Some("iVBORw0K".into()),
            }),
        ]);
        let inbound = frame.to_core("discord", 42).unwrap();
        assert_eq!(inbound.conversation.platform, "discord");
        assert_eq!(
            inbound.conversation.kind,
            ChannelKind::Group,
            "a server channel is a group"
        );
        assert_eq!(inbound.author.display_name, "Ann");
        assert_eq!(inbound.sent_at_ms, 42, "now stands in for a missing time");
        assert_eq!(inbound.tier, Some(Tier::High));
        assert_eq!(inbound.replying_to.len(), 1);
        assert_eq!(
            inbound.images[1],
            Image::Bytes {
                media_type: "image/png".into(),
                data: vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a]
            }
        );
        // And back (the client's side): the same images, a group stays a group.
        let again = InboundFrame::from_core("c2".into(), &inbound)
            .to_core("discord", 0)
            .unwrap();
        assert_eq!(again, inbound);
    }

    #[test]
    fn broken_attachments_say_which_and_why() {
        let cases = [
            (Some("ftp://x"), None, None, "http"),
            (None, Some("image/png"), Some("***"), "base64"),
            (None, Some("text/plain"), Some("aGk="), "image type"),
            (Some("https://x"), Some("image/png"), Some("aGk="), "either"),
            (None, None, None, "either"),
        ];
        for (url, media_type, data, why) in cases {
            let frame = inbound_frame(vec![Attachment::Image(ImageAttachment {
                url: url.map(Into::into),
                media_type: media_type.map(Into::into),
                data: data.map(Into::into),
            })]);
            let err = frame.to_core("x", 0).unwrap_err();
            assert!(
                err.starts_with("attachment 1: ") && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn every_outbound_survives_the_wire() {
        let thought = ThoughtId::new();
        let calls = [
            Outbound::Typing,
            Outbound::Send {
                thought,
                text: "hi".into(),
            },
            Outbound::Edit {
                thought,
                message: "m1".into(),
                text: "hi there".into(),
            },
            Outbound::Delta {
                thought,
                text: "x".into(),
            },
            Outbound::End { thought },
            Outbound::ToolProgress {
                thought,
                name: "code__python".into(),
                text: "rows 4".into(),
            },
            Outbound::File {
                thought,
                file: clara_core::FileBlob::new("chart.png", vec![0x89, b'P', b'N', b'G']),
                caption: Some("Your chart".into()),
            },
            Outbound::ToolStarted {
                thought,
                name: "clara__current_time".into(),
            },
            Outbound::ToolFinished {
                thought,
                name: "clara__current_time".into(),
                ok: true,
            },
            Outbound::Cancelled { thought },
            Outbound::Error {
                thought,
                message: "The model is down.".into(),
            },
            Outbound::Ask { prompt: prompt() },
            Outbound::AskClosed {
                prompt: prompt(),
                message: Some("m2".into()),
                outcome: ApprovalOutcome::Answered(Verdict::Always),
            },
            Outbound::AskClosed {
                prompt: prompt(),
                message: None,
                outcome: ApprovalOutcome::TimedOut,
            },
        ];
        let conversation = WireConversation {
            channel: "c".into(),
            kind: WireChannelKind::Direct,
        };
        for call in calls {
            let frame = outbound_frame(conversation.clone(), call.clone(), 9);
            let text = crate::encode(&frame);
            let decoded = crate::decode_server(text.as_bytes(), 1 << 20).unwrap();
            let (conv, back, request) = outbound_of(decoded).unwrap();
            assert_eq!((conv, back), (conversation.clone(), call.clone()));
            assert_eq!(request.is_some(), wants_answer(&call));
            if wants_answer(&call) {
                assert_eq!(request, Some(9));
            }
        }
    }

    fn prompt() -> ApprovalPrompt {
        ApprovalPrompt {
            id: ApprovalId("3f9a2c1d".into()),
            tool: "mail__send".into(),
            arguments: r#"{"to":"bob@example.org"}"#.into(),
            reason: "It sends a message.".into(),
            asked_for: "Ann".into(),
            timeout_secs: 300,
        }
    }

    #[test]
    fn questions_travel_without_a_thought_and_ask_wants_an_answer() {
        let conversation = WireConversation {
            channel: "42".into(),
            kind: WireChannelKind::Direct,
        };
        let ask = Outbound::Ask { prompt: prompt() };
        assert_eq!(ask.thought(), None);
        assert!(wants_answer(&ask));
        let frame = outbound_frame(conversation.clone(), ask, 5);
        let json: serde_json::Value = serde_json::from_str(&crate::encode(&frame)).unwrap();
        assert_eq!(json["type"], "ask");
        assert_eq!(json["request_id"], 5);
        assert_eq!(json["prompt"]["id"], "3f9a2c1d");
        let closed = Outbound::AskClosed {
            prompt: prompt(),
            message: None,
            outcome: ApprovalOutcome::Answered(Verdict::Deny),
        };
        assert!(!wants_answer(&closed));
        let json: serde_json::Value =
            serde_json::from_str(&crate::encode(&outbound_frame(conversation, closed, 0))).unwrap();
        assert_eq!(json["type"], "ask_closed");
        assert!(json.get("message_id").is_none(), "{json}");
        assert_eq!(json["outcome"], serde_json::json!({"answered": "deny"}));
    }

    #[test]
    fn refusals_survive_the_wire() {
        for error in [
            IngressError::Empty,
            IngressError::TooLong {
                chars: 9000,
                limit: 8000,
            },
            IngressError::Closed,
            IngressError::Unavailable,
        ] {
            let frame = rejected_frame("r".into(), &error);
            assert_eq!(frame.reason, error.to_string());
            assert_eq!(ingress_error(&frame), error);
        }
    }
}

//! The Bot API objects the adapter reads, as the public reference defines them.
//!
//! Only the fields Clara uses are declared; everything else in Telegram's JSON is
//! ignored, and every optional field is `Option` or defaulted, so a new field or
//! a missing optional one never breaks decoding.

use serde::Deserialize;
use serde_json::Value;

/// Every Bot API answer: `{"ok":true,"result":…}` or
/// `{"ok":false,"error_code":…,"description":…,"parameters":{…}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub ok: bool,
    pub result: Option<T>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<ResponseParameters>,
}

/// Why a request failed, in machine-readable form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseParameters {
    /// Seconds to wait before repeating a request that exceeded a flood limit.
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// One incoming update. Kept as JSON until it is read, so one update of an
/// unexpected shape cannot spoil the batch it came in.
#[derive(Debug, Deserialize)]
pub(crate) struct RawUpdate {
    pub update_id: i64,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// A Telegram user or bot.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// The name people see: first and last name.
    pub fn display_name(&self) -> String {
        let full = match &self.last_name {
            Some(last) if !last.trim().is_empty() => format!("{} {last}", self.first_name),
            _ => self.first_name.clone(),
        };
        let full = full.trim().to_owned();
        if full.is_empty() {
            self.username.clone().unwrap_or_else(|| self.id.to_string())
        } else {
            full
        }
    }
}

/// A chat: private, group, supergroup or channel.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Chat {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// A part of a message's text with a meaning (a mention, a command, …). Offsets
/// and lengths count UTF-16 code units.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct MessageEntity {
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: usize,
    pub length: usize,
    /// For `text_mention`: the user mentioned (who has no username).
    #[serde(default)]
    pub user: Option<User>,
}

/// One size of a photo.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PhotoSize {
    pub file_id: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A file of any kind but a photo: a `Document`, `Audio`, `Voice`, `Video` or
/// `VideoNote` (the fields they share; voice and video notes have no name,
/// video notes no type).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Media {
    pub file_id: String,
    /// Stable across bots and time, unlike `file_id`; names unnamed files.
    #[serde(default)]
    pub file_unique_id: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// The part of a message a reply quotes.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TextQuote {
    pub text: String,
}

/// A message.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    #[serde(default)]
    pub is_topic_message: bool,
    #[serde(default)]
    pub from: Option<User>,
    /// The chat a message was sent on behalf of (anonymous admins, channels).
    #[serde(default)]
    pub sender_chat: Option<Chat>,
    pub date: i64,
    pub chat: Chat,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub entities: Vec<MessageEntity>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub caption_entities: Vec<MessageEntity>,
    #[serde(default)]
    pub photo: Vec<PhotoSize>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub voice: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub video_note: Option<Media>,
    /// The message this one replies to (which carries no reply of its own).
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
    #[serde(default)]
    pub quote: Option<TextQuote>,
    #[serde(default)]
    pub forum_topic_created: Option<Value>,
    // Content Clara cannot read yet; present means the person sent one.
    #[serde(default)]
    pub sticker: Option<Value>,
    /// A GIF; it comes with a `document` too, which is what Clara keeps.
    #[serde(default)]
    pub animation: Option<Value>,
    #[serde(default)]
    pub location: Option<Value>,
    #[serde(default)]
    pub contact: Option<Value>,
    #[serde(default)]
    pub poll: Option<Value>,
    #[serde(default)]
    pub dice: Option<Value>,
    #[serde(default)]
    pub venue: Option<Value>,
}

impl Message {
    /// Whether the message carries content of a kind Clara cannot read (a
    /// sticker, a location, a poll, …), as opposed to a service message
    /// (someone joined, a title changed), which needs no answer. Files are
    /// readable: Clara keeps them.
    pub fn has_unreadable_content(&self) -> bool {
        [
            &self.sticker,
            &self.animation,
            &self.location,
            &self.contact,
            &self.poll,
            &self.dice,
            &self.venue,
        ]
        .iter()
        .any(|v| v.is_some())
    }
}

/// A press of an inline keyboard button.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// The message with the button (possibly an inaccessible stub, which still
    /// names its chat and id); absent for inline-mode messages.
    #[serde(default)]
    pub message: Option<ButtonMessage>,
    /// The pressed button's `callback_data`.
    #[serde(default)]
    pub data: Option<String>,
}

/// The part of a `MaybeInaccessibleMessage` a button press needs.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ButtonMessage {
    pub chat: Chat,
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    #[serde(default)]
    pub is_topic_message: bool,
}

/// A file ready to be downloaded.
#[derive(Debug, Deserialize)]
pub(crate) struct File {
    #[serde(default)]
    pub file_size: Option<u64>,
    /// Where to download it: `{root}/file/bot{token}/{file_path}`.
    #[serde(default)]
    pub file_path: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_message_from_the_reference_decodes_and_unknown_fields_are_ignored() {
        let json = r#"{"message_id":7,"from":{"id":42,"is_bot":false,"first_name":"Ann","last_name":"Lee","language_code":"en"},
            "chat":{"id":42,"type":"private","first_name":"Ann"},"date":1700000000,"text":"/start",
            "entities":[{"type":"bot_command","offset":0,"length":6}],"link_preview_options":{"is_disabled":true}}"#;
        let m: Message = serde_json::from_str(json).unwrap();
        assert_eq!(m.message_id, 7);
        assert_eq!(m.from.as_ref().unwrap().display_name(), "Ann Lee");
        assert_eq!(m.chat.kind, "private");
        assert_eq!(m.entities[0].kind, "bot_command");
        assert!(!m.has_unreadable_content());
    }

    #[test]
    fn an_error_envelope_carries_retry_after() {
        let json = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#;
        let e: Envelope<Value> = serde_json::from_str(json).unwrap();
        assert!(!e.ok);
        assert_eq!(e.error_code, Some(429));
        assert_eq!(e.parameters.unwrap().retry_after, Some(3));
    }
}

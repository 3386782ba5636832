//! Discord's JSON, as far as Clara reads it.
//!
//! Only the fields the adapter uses are declared, every one optional or
//! defaulted where Discord may leave it out, so a new field or message type
//! never makes an event unreadable. Ids are snowflakes sent as strings.

use serde::{Deserialize, Deserializer};

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// A gateway payload: `op`, `d`, and for dispatches `t` and `s`.
#[derive(Debug, Deserialize)]
pub struct Envelope<D> {
    /// The opcode (0 for a dispatch).
    pub op: u8,
    /// The event name of a dispatch.
    #[serde(default)]
    pub t: Option<String>,
    /// The event's data.
    pub d: D,
}

/// The part of `READY` the adapter needs.
#[derive(Debug, Deserialize)]
pub struct Ready {
    /// The bot itself.
    pub user: User,
}

/// A user (or bot) account.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    /// Its id.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    /// The unique username.
    #[serde(default)]
    pub username: String,
    /// The display name, when set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Whether it is a bot.
    #[serde(default)]
    pub bot: bool,
}

impl User {
    /// The name people see: the display name, else the username.
    pub fn display_name(&self) -> &str {
        self.global_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.username)
    }
}

/// A guild member's server-specific details.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Member {
    /// The nickname in this server.
    #[serde(default)]
    pub nick: Option<String>,
}

/// A user mentioned in a message; gateway events add the member details.
#[derive(Clone, Debug, Deserialize)]
pub struct Mention {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// Server-specific details, in guild events.
    #[serde(default)]
    pub member: Option<Member>,
}

/// A file attached to a message.
#[derive(Clone, Debug, Deserialize)]
pub struct Attachment {
    /// The file name.
    #[serde(default)]
    pub filename: String,
    /// Its MIME type, when Discord knows it.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Its size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Where to download it.
    pub url: String,
}

/// What a message points at: the message it replies to, or forwards.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageReference {
    /// 0 a reply, 1 a forward.
    #[serde(default, rename = "type")]
    pub kind: u8,
    /// The message pointed at.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub message_id: Option<u64>,
    /// Its channel.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub channel_id: Option<u64>,
}

/// A message, from a `MESSAGE_CREATE` event or `GET /channels/{id}/messages/{id}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// Its id.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    /// Its channel.
    #[serde(deserialize_with = "snowflake")]
    pub channel_id: u64,
    /// Its server; absent in direct messages (and in REST answers).
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub guild_id: Option<u64>,
    /// Who wrote it.
    pub author: User,
    /// The author's server details, in guild events.
    #[serde(default)]
    pub member: Option<Member>,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Users it mentions.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// Attached files.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// What it replies to or forwards.
    #[serde(default)]
    pub message_reference: Option<MessageReference>,
    /// The message it replies to, when Discord includes it (one level deep;
    /// `null` when that message was deleted).
    #[serde(default)]
    pub referenced_message: Option<Box<Message>>,
    /// Set when a webhook sent it.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub webhook_id: Option<u64>,
}

impl Message {
    /// The author's name here: the server nickname, else their display name.
    pub fn author_name(&self) -> &str {
        self.member
            .as_ref()
            .and_then(|m| m.nick.as_deref())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.author.display_name())
    }

    /// When it was sent, in Unix milliseconds (a snowflake carries its time).
    pub fn sent_at_ms(&self) -> i64 {
        snowflake_time_ms(self.id)
    }

    /// The message this one replies to, when it is a reply (not a forward).
    pub fn replied_to(&self) -> Option<(u64, u64)> {
        let r = self.message_reference.as_ref()?;
        if r.kind != 0 {
            return None;
        }
        Some((r.channel_id.unwrap_or(self.channel_id), r.message_id?))
    }
}

/// A `TYPING_START` event.
#[derive(Debug, Deserialize)]
pub struct TypingStart {
    /// Where.
    #[serde(deserialize_with = "snowflake")]
    pub channel_id: u64,
    /// The server, outside direct messages.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub guild_id: Option<u64>,
    /// Who.
    #[serde(deserialize_with = "snowflake")]
    pub user_id: u64,
}

/// An `INTERACTION_CREATE` event: a button pressed (type 3, a message
/// component), or something Clara does not use.
#[derive(Debug, Deserialize)]
pub struct Interaction {
    /// Its id, named in the callback's path.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
    /// 3 for a message component (a button); others are not Clara's.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Answers it (in the callback's path); valid for 15 minutes, so kept out
    /// of logs.
    #[serde(deserialize_with = "secret")]
    pub token: clara_core::Secret,
    /// Where it happened.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub channel_id: Option<u64>,
    /// The server, outside direct messages.
    #[serde(default, deserialize_with = "opt_snowflake")]
    pub guild_id: Option<u64>,
    /// Who pressed, in a direct message.
    #[serde(default)]
    pub user: Option<User>,
    /// Who pressed, in a server.
    #[serde(default)]
    pub member: Option<InteractionMember>,
    /// What was pressed.
    #[serde(default)]
    pub data: Option<ComponentData>,
}

impl Interaction {
    /// Who pressed: the member's user in a server, else the user.
    pub fn presser(&self) -> Option<&User> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
    }

    /// The presser's name here: the server nickname, else their display name.
    pub fn presser_name(&self) -> Option<&str> {
        let nick = self
            .member
            .as_ref()
            .and_then(|m| m.nick.as_deref())
            .filter(|n| !n.trim().is_empty());
        nick.or_else(|| self.presser().map(User::display_name))
    }
}

/// The member who caused an interaction in a server.
#[derive(Debug, Default, Deserialize)]
pub struct InteractionMember {
    /// The account.
    #[serde(default)]
    pub user: Option<User>,
    /// The nickname in this server.
    #[serde(default)]
    pub nick: Option<String>,
}

/// A message component interaction's data.
#[derive(Debug, Default, Deserialize)]
pub struct ComponentData {
    /// The pressed button's `custom_id`.
    #[serde(default)]
    pub custom_id: Option<String>,
}

/// The answer to creating or fetching a message: only its id is needed.
#[derive(Debug, Deserialize)]
pub struct Created {
    /// The message id.
    #[serde(deserialize_with = "snowflake")]
    pub id: u64,
}

/// Discord's error body: `{"message": "...", "code": 50035, ...}`.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// Discord's JSON error code.
    #[serde(default)]
    pub code: u64,
}

/// The body of a 429.
#[derive(Debug, Deserialize)]
pub struct RateLimited {
    /// Seconds to wait.
    pub retry_after: f64,
    /// Whether the whole bot (not one route) is limited.
    #[serde(default)]
    pub global: bool,
}

/// When a snowflake was made, in Unix milliseconds.
pub fn snowflake_time_ms(id: u64) -> i64 {
    i64::try_from(id >> 22).unwrap_or(0) + DISCORD_EPOCH_MS
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdRepr {
    Text(String),
    Number(u64),
}

fn snowflake<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match IdRepr::deserialize(d)? {
        IdRepr::Number(n) => Ok(n),
        IdRepr::Text(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a Discord id"))),
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<clara_core::Secret, D::Error> {
    String::deserialize(d).map(clara_core::Secret::new)
}

fn opt_snowflake<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<IdRepr>::deserialize(d)? {
        None => Ok(None),
        Some(IdRepr::Number(n)) => Ok(Some(n)),
        Some(IdRepr::Text(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a Discord id"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_guild_reply_reads_with_unknown_fields_and_null_reference() {
        let m: Message = serde_json::from_value(json!({
            "id": "1300000000000000000", "channel_id": "20", "guild_id": "30",
            "type": 19, "tts": false, "flags": 0, "pinned": false,
            "author": {"id": "40", "username": "ann", "global_name": "Ann", "discriminator": "0", "avatar": null},
            "member": {"nick": "Annie", "roles": [], "joined_at": "2024-01-01T00:00:00+00:00"},
            "content": "hi <@50>", "timestamp": "2024-11-05T10:00:00.000000+00:00",
            "mentions": [{"id": "50", "username": "clara", "bot": true, "member": {"nick": null}}],
            "attachments": [{"id": "60", "filename": "a.png", "size": 3, "url": "http://x/a.png", "content_type": "image/png"}],
            "message_reference": {"type": 0, "message_id": "70", "channel_id": "20", "guild_id": "30"},
            "referenced_message": null,
            "components": [], "new_field_from_the_future": {"x": 1}
        }))
        .unwrap();
        assert_eq!(m.id, 1_300_000_000_000_000_000);
        assert_eq!(m.guild_id, Some(30));
        assert_eq!(m.author_name(), "Annie");
        assert!(m.mentions[0].user.bot);
        assert_eq!(m.replied_to(), Some((20, 70)));
        assert!(m.referenced_message.is_none());
        assert_eq!(m.attachments[0].content_type.as_deref(), Some("image/png"));
    }

    #[test]
    fn a_forward_is_not_a_reply() {
        let m: Message = serde_json::from_value(json!({
            "id": "1", "channel_id": "2", "author": {"id": "3", "username": "u"},
            "message_reference": {"type": 1, "message_id": "9", "channel_id": "8"}
        }))
        .unwrap();
        assert_eq!(m.replied_to(), None);
        assert_eq!(m.author_name(), "u");
    }

    #[test]
    fn a_button_press_names_its_presser_in_a_server_and_in_a_dm() {
        let guild: Interaction = serde_json::from_value(json!({
            "id": "900", "application_id": "1", "type": 3, "token": "tok-secret", "version": 1,
            "guild_id": "30", "channel_id": "20",
            "member": {"user": {"id": "40", "username": "ann", "global_name": "Ann"}, "nick": "Annie", "roles": []},
            "data": {"custom_id": "deny:3f9a2c1d", "component_type": 2},
            "message": {"id": "5"}
        }))
        .unwrap();
        assert_eq!(guild.id, 900);
        assert_eq!(guild.kind, 3);
        assert_eq!(guild.presser().unwrap().id, 40);
        assert_eq!(guild.presser_name(), Some("Annie"));
        assert!(
            !format!("{guild:?}").contains("tok-secret"),
            "the token stays out of logs"
        );
        let dm: Interaction = serde_json::from_value(json!({
            "id": "901", "type": 3, "token": "t", "channel_id": "21",
            "user": {"id": "41", "username": "bob"}, "data": {"custom_id": "x"}
        }))
        .unwrap();
        assert_eq!(dm.guild_id, None);
        assert_eq!(dm.presser_name(), Some("bob"));
    }

    #[test]
    fn snowflakes_carry_their_time() {
        // Discord's documented example: 175928847299117063 → 2016-04-30T11:18:25.796Z.
        assert_eq!(
            snowflake_time_ms(175_928_847_299_117_063),
            1_462_015_105_796
        );
    }
}

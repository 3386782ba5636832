//! What an adapter hands to Clara: one message from one person, in platform-neutral terms.

use crate::{EventId, Image, Tier};
use serde::{Deserialize, Serialize};

/// Whether a conversation is private to one person or shared by several.
///
/// Memory scoping depends on this: what is said in a DM is not recalled in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A one-to-one conversation.
    Direct,
    /// A group chat or a server channel.
    Group,
}

impl ChannelKind {
    /// The stable name used in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    /// Parses [`ChannelKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            _ => None,
        }
    }
}

/// Where a message was said: a platform and that platform's id for the channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationRef {
    /// The platform's short name (`cli`, `discord`, `telegram`, …).
    pub platform: String,
    /// The platform's id of the chat or channel.
    pub channel: String,
    /// DM or group.
    pub kind: ChannelKind,
}

/// Who said it, as the platform knows them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// The platform's id of the person.
    pub platform_user_id: String,
    /// The name to address them by.
    pub display_name: String,
}

/// One incoming message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The platform's event id; a repeated delivery of the same id is ignored.
    pub event_id: EventId,
    /// Where it was said.
    pub conversation: ConversationRef,
    /// Who said it.
    pub author: Author,
    /// The text as the person wrote it.
    pub text: String,
    /// When the platform says it was sent, in Unix milliseconds.
    pub sent_at_ms: i64,
    /// A tier the adapter already knows (e.g. from a slash command), if any.
    /// A `!high`/`!mid`/`!low` prefix in `text` is handled by the engine.
    pub tier: Option<Tier>,
    /// Images attached to the message (photos, image attachments).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

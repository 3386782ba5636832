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
    /// Files attached to the message (documents, audio, images as files): the
    /// engine stores them and puts them in the person's workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::FileBlob>,
    /// The messages this one replies to, oldest first (a platform's reply chain),
    /// shown to the model as context. Empty when it replies to nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replying_to: Vec<Quoted>,
}

/// A message quoted as context: one link of a reply chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quoted {
    /// Who wrote it, as the platform shows them.
    pub author: String,
    /// What it said.
    pub text: String,
    /// Whether Clara wrote it.
    #[serde(default)]
    pub from_clara: bool,
}

/// How many characters of a reply chain reach the model, at most; the oldest links
/// are dropped first, and one long link is cut.
pub const REPLY_CONTEXT_MAX_CHARS: usize = 4000;

/// The text the model sees for a message that replies to `chain` (oldest first):
/// the chain as quoted lines, then the message itself. With no chain, the text
/// unchanged.
pub fn with_reply_context(chain: &[Quoted], text: &str) -> String {
    if chain.is_empty() {
        return text.to_owned();
    }
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0;
    for quoted in chain.iter().rev() {
        let room = REPLY_CONTEXT_MAX_CHARS.saturating_sub(used);
        if room == 0 {
            break;
        }
        let who = if quoted.from_clara {
            "you (Clara)"
        } else {
            quoted.author.as_str()
        };
        let body: String = quoted.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = if body.chars().count() > room {
            let cut: String = body.chars().take(room).collect();
            format!("{cut}…")
        } else {
            body
        };
        used += body.chars().count();
        lines.push(format!("> {who}: {body}"));
    }
    lines.reverse();
    let intro = if chain.len() == 1 {
        "(replying to this message)"
    } else {
        "(replying to this thread, oldest first)"
    };
    format!("{intro}\n{}\n\n{text}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(author: &str, text: &str, from_clara: bool) -> Quoted {
        Quoted {
            author: author.into(),
            text: text.into(),
            from_clara,
        }
    }

    #[test]
    fn no_chain_leaves_the_text_alone() {
        assert_eq!(with_reply_context(&[], "hello"), "hello");
    }

    #[test]
    fn a_chain_is_quoted_oldest_first_before_the_message() {
        let chain = [q("Bob", "what is  2+2?", false), q("Clara", "4", true)];
        assert_eq!(
            with_reply_context(&chain, "and times 3?"),
            "(replying to this thread, oldest first)\n> Bob: what is 2+2?\n> you (Clara): 4\n\nand times 3?"
        );
    }

    #[test]
    fn a_long_chain_keeps_the_newest_links_within_the_cap() {
        let long = "x".repeat(REPLY_CONTEXT_MAX_CHARS - 10);
        let chain = [
            q("Old", "the oldest link", false),
            q("A", &"y".repeat(20), false),
            q("B", &long, false),
        ];
        let text = with_reply_context(&chain, "ok");
        assert!(!text.contains("the oldest link"));
        assert!(text.contains(&long));
        assert!(text.contains("> A: yyyyyyyyyy…"));
    }
}

//! A thought: the burst of messages Clara answers as one.

use crate::{Author, ConversationRef, EventId, Image, ThoughtId, Tier};
use serde::{Deserialize, Serialize};

/// One or more messages from one person, merged, to be answered once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thought {
    /// Its id.
    pub id: ThoughtId,
    /// Where it was said.
    pub conversation: ConversationRef,
    /// Who said it.
    pub author: Author,
    /// The messages' texts, oldest first, tier prefixes removed.
    pub parts: Vec<String>,
    /// The platform events it was made of.
    pub events: Vec<EventId>,
    /// The tier asked for, if any message asked.
    pub tier: Option<Tier>,
    /// The images of its messages, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

impl Thought {
    /// The text the model answers: the parts, one per line.
    pub fn text(&self) -> String {
        self.parts.join("\n")
    }
}

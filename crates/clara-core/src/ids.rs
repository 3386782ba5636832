//! Identifiers. Each is a distinct type so a user id can never be passed where a
//! conversation id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh id. Version 7, so ids sort by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A person known to Clara, across all the platforms they use.
    UserId
);
uuid_id!(
    /// One conversation: a DM, a group chat or a channel on one platform.
    ConversationId
);
uuid_id!(
    /// A span of conversation that ends after a quiet period and gets a summary.
    SessionId
);
uuid_id!(
    /// One thought: the merged burst of messages Clara answers once.
    ThoughtId
);
uuid_id!(
    /// One stored message.
    MessageId
);
uuid_id!(
    /// A project or topic whose members share its memories.
    ProjectId
);
uuid_id!(
    /// One remembered fact, preference or event.
    MemoryId
);

/// A platform's own id for an incoming event, used to process it exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

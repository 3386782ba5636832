//! The vocabulary of Rook, Clara's long-term memory: whose a memory is ([`Scope`])
//! and what sort of thing it remembers ([`MemoryKind`]).

use crate::{ProjectId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whose memory this is. Every memory read and write names one; a search only ever
/// looks inside the scopes it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Facts and preferences of one person.
    User(UserId),
    /// Context of one project or topic, shared by its members.
    Project(ProjectId),
}

impl Scope {
    /// `"user"` or `"project"`, as stored.
    pub fn kind_str(self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Project(_) => "project",
        }
    }

    /// The owner's id as a string, as stored next to [`Scope::kind_str`].
    pub fn owner_string(self) -> String {
        match self {
            Self::User(id) => id.to_string(),
            Self::Project(id) => id.to_string(),
        }
    }

    /// Rebuilds a scope from its stored halves.
    pub fn from_parts(kind: &str, owner: &str) -> Option<Self> {
        match kind {
            "user" => owner.parse().ok().map(Self::User),
            "project" => owner.parse().ok().map(Self::Project),
            _ => None,
        }
    }
}

/// `user:<uuid>` or `project:<uuid>`.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind_str(), self.owner_string())
    }
}

/// Why a string is not a [`Scope`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a memory scope; expected user:<uuid> or project:<uuid>")]
pub struct ScopeParseError(pub String);

impl FromStr for Scope {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_once(':')
            .and_then(|(kind, owner)| Self::from_parts(kind, owner))
            .ok_or_else(|| ScopeParseError(s.to_owned()))
    }
}

/// What sort of thing a memory holds. Recall caps how many of each kind reach a
/// prompt, so a flood of small facts cannot crowd out a standing instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// Something true about the person or project ("works as a nurse").
    Fact,
    /// A like, dislike or habit ("prefers tea to coffee").
    Preference,
    /// Something that happened or will happen, usually dated ("moving on 3 May").
    Event,
    /// How the person wants Clara to behave ("answer in French").
    Instruction,
}

impl MemoryKind {
    /// Every kind, in prompt order.
    pub const ALL: [MemoryKind; 4] = [Self::Instruction, Self::Preference, Self::Fact, Self::Event];

    /// The stable name used in storage, prompts and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fact => "fact",
            Self::Preference => "preference",
            Self::Event => "event",
            Self::Instruction => "instruction",
        }
    }

    /// Parses [`MemoryKind::as_str`]'s output (case-insensitive, plurals accepted,
    /// because model output is lenient).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.trim_end_matches('s') {
            "fact" => Some(Self::Fact),
            "preference" => Some(Self::Preference),
            "event" => Some(Self::Event),
            "instruction" => Some(Self::Instruction),
            _ => None,
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_round_trips_through_its_string() {
        let user = Scope::User(UserId::new());
        let project = Scope::Project(ProjectId::new());
        assert_eq!(user.to_string().parse::<Scope>(), Ok(user));
        assert_eq!(project.to_string().parse::<Scope>(), Ok(project));
        assert!("team:1".parse::<Scope>().is_err());
        assert!("user:not-a-uuid".parse::<Scope>().is_err());
    }

    #[test]
    fn kinds_parse_leniently() {
        assert_eq!(
            MemoryKind::parse(" Preferences "),
            Some(MemoryKind::Preference)
        );
        assert_eq!(MemoryKind::parse("EVENT"), Some(MemoryKind::Event));
        assert_eq!(MemoryKind::parse("opinion"), None);
        for kind in MemoryKind::ALL {
            assert_eq!(MemoryKind::parse(kind.as_str()), Some(kind));
        }
    }
}

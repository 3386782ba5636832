//! Model tiers and the `!high` / `!mid` / `!low` prefix that picks one.

use serde::{Deserialize, Serialize};

/// How capable (and costly) a model to use for one thought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The strongest model.
    High,
    /// The everyday model.
    #[default]
    Mid,
    /// The cheapest, fastest model.
    Low,
}

impl Tier {
    /// The stable name (`high`, `mid`, `low`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Mid => "mid",
            Self::Low => "low",
        }
    }

    /// Parses a tier name, ignoring case.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "high" => Some(Self::High),
            "mid" | "medium" => Some(Self::Mid),
            "low" => Some(Self::Low),
            _ => None,
        }
    }

    /// Splits a leading `!high`, `!mid` or `!low` off a message.
    ///
    /// Returns the tier and the rest of the text, trimmed at its start. The prefix
    /// must be a whole word: `!highway` is not a tier.
    pub fn strip_prefix(text: &str) -> (Option<Self>, &str) {
        let trimmed = text.trim_start();
        let Some(rest) = trimmed.strip_prefix('!') else {
            return (None, text);
        };
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        match Self::parse(&rest[..word_end]) {
            Some(tier) if rest[..word_end].len() <= 6 => {
                (Some(tier), rest[word_end..].trim_start())
            }
            _ => (None, text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_picks_tier_and_is_removed() {
        assert_eq!(
            Tier::strip_prefix("!high explain monads"),
            (Some(Tier::High), "explain monads")
        );
        assert_eq!(Tier::strip_prefix("  !LOW hi"), (Some(Tier::Low), "hi"));
        assert_eq!(Tier::strip_prefix("!mid"), (Some(Tier::Mid), ""));
    }

    #[test]
    fn non_tier_prefixes_are_left_alone() {
        assert_eq!(
            Tier::strip_prefix("!highway to hell"),
            (None, "!highway to hell")
        );
        assert_eq!(Tier::strip_prefix("high there"), (None, "high there"));
        assert_eq!(Tier::strip_prefix("!"), (None, "!"));
    }
}

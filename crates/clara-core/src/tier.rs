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

/// Words that ask for reasoning rather than a quick answer.
const REASONING: &[&str] = &[
    "explain",
    "analy",
    "design",
    "debug",
    "prove",
    "step by step",
    "compare",
    "architecture",
    "refactor",
    "strategy",
    "trade-off",
    "tradeoff",
    "why does",
    "why is",
    "derive",
    "optimi",
];

/// Messages that are small talk.
const SMALL_TALK: &[&str] = &[
    "hi",
    "hey",
    "hello",
    "yo",
    "thanks",
    "thank you",
    "thx",
    "ok",
    "okay",
    "cool",
    "nice",
    "lol",
    "haha",
    "yes",
    "no",
    "yep",
    "nope",
    "good morning",
    "good night",
    "gn",
    "bye",
    "sure",
];

impl Tier {
    /// Picks a tier from the thought alone, by a cheap rule, and says why:
    /// code or a long text → high; a request for reasoning → high; short small
    /// talk → low; anything else → mid.
    pub fn auto(text: &str) -> (Self, &'static str) {
        let chars = text.chars().count();
        if text.contains("```") || chars > 800 {
            return (Self::High, "long, or contains code");
        }
        let lower = text.to_lowercase();
        if chars > 40 && REASONING.iter().any(|w| lower.contains(w)) {
            return (Self::High, "asks for reasoning");
        }
        let bare = lower
            .trim_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace())
            .trim();
        if chars <= 40 && (bare.is_empty() || SMALL_TALK.contains(&bare)) {
            return (Self::Low, "short small talk");
        }
        (Self::Mid, "an everyday message")
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
    fn auto_choice_follows_the_rule() {
        assert_eq!(Tier::auto("thanks!").0, Tier::Low);
        assert_eq!(Tier::auto("👍").0, Tier::Low);
        assert_eq!(
            Tier::auto("what's the weather like in Oslo today?").0,
            Tier::Mid
        );
        assert_eq!(
            Tier::auto("Can you explain how the borrow checker handles two-phase borrows?").0,
            Tier::High
        );
        assert_eq!(
            Tier::auto("fix this:\n```rust\nfn main(){}\n```").0,
            Tier::High
        );
        assert_eq!(Tier::auto(&"word ".repeat(200)).0, Tier::High);
        assert_eq!(
            Tier::auto("explain?").0,
            Tier::Mid,
            "too short to be a reasoning request"
        );
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

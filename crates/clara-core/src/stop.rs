//! Stop phrases: messages that cancel Clara's reply without getting one.

/// The phrases Clara stops at when a message is nothing but one of them.
#[derive(Clone, Debug, PartialEq)]
pub struct StopPhrases {
    phrases: Vec<String>,
}

impl Default for StopPhrases {
    fn default() -> Self {
        Self::new(["clara stop", "stop clara", "nevermind"])
    }
}

impl StopPhrases {
    /// Uses these phrases (case, punctuation and spacing do not matter).
    pub fn new<I, S>(phrases: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            phrases: phrases
                .into_iter()
                .map(|p| normalize(p.as_ref()))
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// Whether `text` is a stop phrase. Only a whole message counts: "don't stop
    /// clara from helping" is not a stop.
    pub fn matches(&self, text: &str) -> bool {
        let text = normalize(text);
        !text.is_empty() && self.phrases.contains(&text)
    }
}

fn normalize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() || c == '\'' {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_message_stop_phrases_match_loosely() {
        let s = StopPhrases::default();
        assert!(s.matches("clara stop"));
        assert!(s.matches("  Stop, Clara!! "));
        assert!(s.matches("NEVERMIND."));
        assert!(!s.matches("don't stop clara from helping"));
        assert!(!s.matches(""));
        assert!(!s.matches("stop"));
    }

    #[test]
    fn custom_phrases() {
        let s = StopPhrases::new(["halt", " "]);
        assert!(s.matches("Halt!"));
        assert!(!s.matches("clara stop"));
    }
}

//! A string that must never be printed: tokens, API keys, passwords, secrets.
//!
//! Every part of Clara holds such a value as a [`Secret`], so redaction is a
//! property of the type and never written by hand: `Debug` and `Display` print
//! `[redacted]`, there is no `Serialize`, and the value is reached only through
//! [`Secret::expose`], a call a reviewer can find.

use std::fmt;

/// A secret value. Deserialized from a plain string (a `clara.toml` value or an
/// environment variable); surrounding whitespace, which a pasted token often
/// carries, is removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty or whitespace (an unset environment variable often
    /// arrives as `""`).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// `secret` when it holds something, `None` when it is missing or blank: how a
    /// component decides whether it is configured.
    pub fn given(secret: Option<&Secret>) -> Option<&Secret> {
        secret.filter(|s| !s.is_blank())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            // The value is never echoed back in the error: it may be a real key.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.trim().to_owned()))
            }
            // A purely numeric secret (a PIN-like password) arrives as a number
            // from some configuration sources.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::from("sk-very-secret".to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.to_string(), "[redacted]");
        assert_eq!(s.expose(), "sk-very-secret");
        assert!(!format!("{:?}", Some(s)).contains("very"));
    }

    #[test]
    fn deserializes_from_a_trimmed_string_and_blank_is_not_given() {
        #[derive(serde::Deserialize, Debug)]
        struct Section {
            token: Option<Secret>,
        }
        let s: Section = serde_json::from_str(r#"{"token": " abc:def \n"}"#).unwrap();
        assert_eq!(s.token.as_ref().unwrap().expose(), "abc:def");
        assert!(!format!("{s:?}").contains("abc"));
        let blank: Section = serde_json::from_str(r#"{"token": "  "}"#).unwrap();
        assert!(Secret::given(blank.token.as_ref()).is_none());
        let wrong = serde_json::from_str::<Section>(r#"{"token": ["x-secret"]}"#).unwrap_err();
        assert!(!wrong.to_string().contains("x-secret"), "{wrong}");
    }
}

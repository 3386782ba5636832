//! How a pluggable part of Clara (a platform adapter, a tool integration) owns
//! its configuration.
//!
//! A component names its `clara.toml` section and the environment variables
//! that set its keys (the old names, such as `TG_BOT_TOKEN`, keep working), and
//! gives one `Deserialize` type for the section. The binary reads the file and
//! the environment once and hands each component its own section; nothing else
//! restates a component's settings.

use serde::de::DeserializeOwned;
use std::fmt;

/// An environment variable and the key of the component's section it sets
/// (`("TG_BOT_TOKEN", "token")`). A list value may be given comma-separated.
pub type EnvKey = (&'static str, &'static str);

/// A part of Clara with a `clara.toml` section of its own.
pub trait Component {
    /// Its section in `clara.toml` and its name on the command line (`telegram`).
    const NAME: &'static str;
    /// The environment variables that set keys of the section, besides the
    /// generic `CLARA_<NAME>__<KEY>`. The first is the one that turns the
    /// component on (its token), which errors name when it is missing.
    const ENV: &'static [EnvKey];
    /// The section. Unknown keys should be refused (`deny_unknown_fields`), and
    /// tokens held as [`Secret`](crate::Secret)s, so `Debug` can be derived.
    type Settings: DeserializeOwned + Default + fmt::Debug + Send + 'static;
}

/// A setting that cannot be used: one sentence naming the key (and its
/// environment variable) and what was expected. It never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// An error with this sentence.
    pub fn new(sentence: impl fmt::Display) -> Self {
        Self(sentence.to_string())
    }
}

/// A list given either as an array or as one comma-separated string (as the
/// environment gives it), of strings or numbers (Discord ids are often written
/// without quotes). Components use it for allow-lists and phrase lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "ListForm")]
pub struct TextList(pub Vec<String>);

impl TextList {
    /// The items, trimmed, without empty ones.
    pub fn items(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.trim()).filter(|s| !s.is_empty())
    }
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ListForm {
    Text(String),
    List(Vec<Item>),
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Item {
    Text(String),
    Number(u64),
}

impl From<ListForm> for TextList {
    fn from(form: ListForm) -> Self {
        Self(match form {
            ListForm::Text(text) => text
                .split([',', '\n'])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            ListForm::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Item::Text(t) => t,
                    Item::Number(n) => n.to_string(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_an_array_or_a_comma_separated_string() {
        let from_array: TextList = serde_json::from_str(r#"["a b", 12]"#).unwrap();
        assert_eq!(from_array.0, vec!["a b", "12"]);
        let from_text: TextList = serde_json::from_str(r#"" 7, 8 ,,""#).unwrap();
        assert_eq!(from_text.items().collect::<Vec<_>>(), vec!["7", "8"]);
    }
}

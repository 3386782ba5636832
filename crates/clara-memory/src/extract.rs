//! Turning one exchange into candidate facts: the prompt, and a lenient reading of
//! the model's answer.

use crate::json::{find_json, str_field};
use clara_core::{ChatMessage, MemoryKind};
use serde_json::Value;

/// At most this many facts are taken from one exchange; a model that lists more is
/// rambling, and the first ones are the ones it was surest of.
pub const MAX_FACTS: usize = 8;

/// Longer "facts" are paragraphs, not memories, and are dropped.
pub const MAX_FACT_CHARS: usize = 400;

/// One exchange to learn from.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The name of the person.
    pub person: &'a str,
    /// What they said (the whole thought).
    pub said: &'a str,
    /// What Clara answered (may be empty).
    pub reply: &'a str,
    /// The date of the exchange in words, so relative dates can be resolved.
    pub date_label: &'a str,
    /// The project the conversation belongs to, if any.
    pub project: Option<&'a str>,
}

/// Whom a fact is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum About {
    /// The person who spoke.
    Person,
    /// The conversation's project.
    Project,
}

/// A candidate memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    /// One self-contained sentence.
    pub text: String,
    /// What sort of memory.
    pub kind: MemoryKind,
    /// Whom it is about.
    pub about: About,
}

/// The model's answer held no list of facts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the model's answer held no JSON list of facts (it began {0:?})")]
pub struct MalformedFacts(pub String);

const SYSTEM: &str = "You extract long-term memories from a conversation between a person \
and their assistant, Clara. Keep only what will still matter in later conversations: facts \
about the person (job, family, home, health, plans, possessions), their preferences, \
dated events, and instructions about how Clara should behave. Ignore small talk, questions \
without an answer, and anything only Clara said unless the person confirmed it. Write each \
memory as one short self-contained sentence in the third person, naming the person, with \
absolute dates instead of relative ones. If there is nothing worth remembering, return an \
empty list.\n\nAnswer with JSON only, in this shape:\n\
{\"facts\": [{\"text\": \"...\", \"kind\": \"fact|preference|event|instruction\", \"about\": \"person|project\"}]}";

/// The prompt that asks the model for the exchange's facts.
pub fn extraction_messages(exchange: &Exchange<'_>) -> Vec<ChatMessage> {
    let project = match exchange.project {
        Some(name) => format!(
            "This conversation belongs to the project \"{name}\"; mark facts about the \
             project itself (not about the person) with \"about\": \"project\".\n"
        ),
        None => String::new(),
    };
    let reply = if exchange.reply.trim().is_empty() {
        "(no answer)"
    } else {
        exchange.reply.trim()
    };
    let user = format!(
        "Date: {date}\n{project}\n{person} said:\n{said}\n\nClara answered:\n{reply}",
        date = exchange.date_label,
        person = exchange.person,
        said = exchange.said.trim(),
    );
    vec![ChatMessage::system(SYSTEM), ChatMessage::user(user)]
}

/// Reads the facts out of the model's answer.
///
/// Accepts `{"facts": [...]}` (or `memories`), a bare list, and items that are
/// plain strings or objects with a `text`/`fact`/`memory` field. Unknown kinds
/// become facts; empty, over-long and repeated items are dropped.
pub fn parse_facts(output: &str) -> Result<Vec<Fact>, MalformedFacts> {
    let malformed = || MalformedFacts(output.chars().take(60).collect());
    let value = find_json(output).ok_or_else(malformed)?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => ["facts", "memories", "items"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array).map(Vec::as_slice))
            .or_else(|| {
                // A single fact object on its own.
                str_field(&value, &["text", "fact", "memory"]).map(|_| std::slice::from_ref(&value))
            })
            .ok_or_else(malformed)?,
        _ => return Err(malformed()),
    };
    let mut facts: Vec<Fact> = Vec::new();
    for item in items {
        let Some(fact) = read_fact(item) else {
            continue;
        };
        if !facts
            .iter()
            .any(|f| f.text.eq_ignore_ascii_case(&fact.text))
        {
            facts.push(fact);
        }
        if facts.len() == MAX_FACTS {
            break;
        }
    }
    Ok(facts)
}

fn read_fact(item: &Value) -> Option<Fact> {
    let text = match item {
        Value::String(s) => s.trim(),
        Value::Object(_) => str_field(item, &["text", "fact", "memory", "content"])?,
        _ => return None,
    };
    if text.is_empty() || text.chars().count() > MAX_FACT_CHARS {
        return None;
    }
    let kind = str_field(item, &["kind", "type", "category"])
        .and_then(MemoryKind::parse)
        .unwrap_or(MemoryKind::Fact);
    let about = match str_field(item, &["about", "subject", "scope"]) {
        Some(a) if a.eq_ignore_ascii_case("project") => About::Project,
        _ => About::Person,
    };
    Some(Fact {
        text: text.to_owned(),
        kind,
        about,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(facts: &[Fact]) -> Vec<&str> {
        facts.iter().map(|f| f.text.as_str()).collect()
    }

    #[test]
    fn the_documented_shape_is_read() {
        let out = r#"{"facts": [
            {"text": "Ana lives in Lyon", "kind": "fact", "about": "person"},
            {"text": "Ana prefers tea", "kind": "preference"},
            {"text": "The launch is on 3 May 2027", "kind": "event", "about": "project"}
        ]}"#;
        let facts = parse_facts(out).unwrap();
        assert_eq!(facts.len(), 3);
        assert_eq!(facts[1].kind, MemoryKind::Preference);
        assert_eq!(facts[2].about, About::Project);
        assert_eq!(facts[0].about, About::Person);
    }

    #[test]
    fn lenient_shapes_are_accepted() {
        assert_eq!(
            texts(&parse_facts(r#"["Ana has a cat", "Ana has a cat", "  "]"#).unwrap()),
            ["Ana has a cat"]
        );
        let out = "Here:\n```json\n{\"memories\": [{\"memory\": \"Ana is a nurse\", \"type\": \"Facts\"},]}\n```";
        let facts = parse_facts(out).unwrap();
        assert_eq!(texts(&facts), ["Ana is a nurse"]);
        assert_eq!(facts[0].kind, MemoryKind::Fact);
        let single = parse_facts(r#"{"text": "Ana runs", "kind": "habit"}"#).unwrap();
        assert_eq!(single[0].kind, MemoryKind::Fact);
    }

    #[test]
    fn an_empty_list_is_not_an_error() {
        assert_eq!(parse_facts(r#"{"facts": []}"#), Ok(vec![]));
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_start() {
        let err = parse_facts("I think Ana likes tea.").unwrap_err();
        assert!(err.to_string().contains("I think Ana"));
        assert!(parse_facts(r#"{"answer": 42}"#).is_err());
    }

    #[test]
    fn long_and_numerous_facts_are_bounded() {
        let long = "x".repeat(MAX_FACT_CHARS + 1);
        let many: Vec<String> = (0..20).map(|i| format!("fact {i}")).collect();
        let mut items = vec![long];
        items.extend(many);
        let facts = parse_facts(&serde_json::to_string(&items).unwrap()).unwrap();
        assert_eq!(facts.len(), MAX_FACTS);
        assert_eq!(facts[0].text, "fact 0");
    }

    #[test]
    fn the_prompt_names_the_person_the_date_and_the_project() {
        let ex = Exchange {
            person: "Ana",
            said: "I moved to Lyon yesterday",
            reply: "Congratulations!",
            date_label: "Monday 30 November 2026",
            project: Some("garden"),
        };
        let messages = extraction_messages(&ex);
        let user = &messages[1].content;
        assert!(user.contains("Ana said:\nI moved to Lyon yesterday"));
        assert!(user.contains("Monday 30 November 2026"));
        assert!(user.contains("\"garden\""));
        assert!(messages[0].content.contains("\"facts\""));
    }
}

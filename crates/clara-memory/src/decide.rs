//! Deciding what a new fact does to what is already remembered: add it, update an
//! existing memory, delete one it contradicts, or nothing.
//!
//! The cheap cases are decided here without a model: a near-duplicate of an
//! existing memory changes nothing, and a fact with nothing related is added.
//! Otherwise the model chooses, and its answer is read leniently; an unreadable
//! answer falls back to the safe choice for the similarity at hand.

use crate::extract::Fact;
use crate::json::{find_json, str_field};
use clara_core::{ChatMessage, MemoryId};
use serde_json::Value;

/// At or above this cosine a fact says what a memory already says.
pub const DUPLICATE_SIMILARITY: f32 = 0.95;

/// Below this cosine no existing memory is related enough to be updated or deleted.
pub const RELATED_SIMILARITY: f32 = 0.4;

/// An existing memory close to the new fact.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// Its id.
    pub id: MemoryId,
    /// What it says.
    pub text: String,
    /// Cosine similarity to the new fact.
    pub similarity: f32,
}

/// What to do with a fact.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Remember it as a new memory.
    Add,
    /// Replace the text of `target` with `text` (the merged, current truth).
    Update {
        /// The memory to change.
        target: MemoryId,
        /// Its new text.
        text: String,
    },
    /// Forget `target`: the fact says it is no longer true.
    Delete {
        /// The memory to forget.
        target: MemoryId,
    },
    /// Nothing new.
    Nothing,
}

/// A decision and why it was taken (kept in the memory's history).
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// What to do.
    pub decision: Decision,
    /// Why, in words.
    pub reason: String,
}

/// Decides without a model when the answer is obvious; `None` means ask the model.
/// `neighbours` are best first.
pub fn shortcut(fact: &Fact, neighbours: &[Neighbour]) -> Option<Decided> {
    if let Some(same) = neighbours
        .iter()
        .find(|n| n.similarity >= DUPLICATE_SIMILARITY || n.text.eq_ignore_ascii_case(&fact.text))
    {
        return Some(Decided {
            decision: Decision::Nothing,
            reason: format!("already remembered as {:?}", same.text),
        });
    }
    if neighbours.iter().all(|n| n.similarity < RELATED_SIMILARITY) {
        return Some(Decided {
            decision: Decision::Add,
            reason: "new: nothing related was remembered".to_owned(),
        });
    }
    None
}

const SYSTEM: &str = "You keep a person's long-term memories up to date. Given a new fact \
and the existing memories most similar to it (numbered), decide one event:\n\
- ADD: the fact is new information.\n\
- UPDATE: the fact refines or changes memory N; give the full new text of that memory.\n\
- DELETE: the fact says memory N is no longer true and replaces it with nothing.\n\
- NONE: memory N already says this.\n\
Answer with JSON only: {\"event\": \"ADD|UPDATE|DELETE|NONE\", \"memory\": N, \"text\": \"new text for UPDATE\", \"reason\": \"a few words\"}";

/// The prompt that asks the model to decide.
pub fn decision_messages(fact: &Fact, neighbours: &[Neighbour]) -> Vec<ChatMessage> {
    let mut user = format!("New fact: {}\n\nExisting memories:\n", fact.text);
    for (i, n) in neighbours.iter().enumerate() {
        user.push_str(&format!("{}. {}\n", i + 1, n.text));
    }
    vec![ChatMessage::system(SYSTEM), ChatMessage::user(user)]
}

/// The model's answer held no usable decision.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the model's decision could not be read (it began {0:?})")]
pub struct MalformedDecision(pub String);

/// Reads the model's decision. `memory` numbers refer to `neighbours` (1-based;
/// an id string is accepted too). UPDATE without text uses the fact's text.
pub fn parse_decision(
    output: &str,
    fact: &Fact,
    neighbours: &[Neighbour],
) -> Result<Decided, MalformedDecision> {
    let malformed = || MalformedDecision(output.chars().take(60).collect());
    let value = find_json(output).ok_or_else(malformed)?;
    let value = match &value {
        Value::Array(items) => items.first().cloned().ok_or_else(malformed)?,
        _ => value,
    };
    let event = str_field(&value, &["event", "action", "decision", "operation"])
        .ok_or_else(malformed)?
        .to_ascii_uppercase();
    let reason = str_field(&value, &["reason", "why"])
        .unwrap_or("decided by the model")
        .to_owned();
    let target = || target(&value, neighbours).ok_or_else(malformed);
    let decision = match event.as_str() {
        "ADD" => Decision::Add,
        "NONE" | "NOOP" | "NOTHING" | "KEEP" => Decision::Nothing,
        "UPDATE" => Decision::Update {
            target: target()?,
            text: str_field(&value, &["text", "new_text", "memory_text"])
                .unwrap_or(&fact.text)
                .to_owned(),
        },
        "DELETE" | "REMOVE" | "FORGET" => Decision::Delete { target: target()? },
        _ => return Err(malformed()),
    };
    Ok(Decided { decision, reason })
}

/// What to do when the model's decision cannot be read: add, unless a memory is
/// already close, so nothing is lost and little is duplicated.
pub fn fallback(neighbours: &[Neighbour], error: &MalformedDecision) -> Decided {
    let close = neighbours.first().is_some_and(|n| n.similarity >= 0.8);
    Decided {
        decision: if close {
            Decision::Nothing
        } else {
            Decision::Add
        },
        reason: format!("{error}; kept the safe choice"),
    }
}

fn target(value: &Value, neighbours: &[Neighbour]) -> Option<MemoryId> {
    let field = ["memory", "id", "target", "index"]
        .iter()
        .find_map(|k| value.get(*k))?;
    let number = match field {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            if let Ok(id) = s.trim().parse::<MemoryId>() {
                return neighbours.iter().find(|n| n.id == id).map(|n| n.id);
            }
            s.trim().trim_start_matches('#').parse::<u64>().ok()
        }
        _ => None,
    }?;
    let index = usize::try_from(number).ok()?.checked_sub(1)?;
    neighbours.get(index).map(|n| n.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::MemoryKind;

    fn fact(text: &str) -> Fact {
        Fact {
            text: text.to_owned(),
            kind: MemoryKind::Fact,
            about: crate::extract::About::Person,
        }
    }

    fn neighbours() -> Vec<Neighbour> {
        vec![
            Neighbour {
                id: MemoryId::new(),
                text: "Ana lives in Paris".into(),
                similarity: 0.7,
            },
            Neighbour {
                id: MemoryId::new(),
                text: "Ana has a cat".into(),
                similarity: 0.45,
            },
        ]
    }

    #[test]
    fn near_duplicates_and_unrelated_facts_need_no_model() {
        let mut n = neighbours();
        n[0].similarity = 0.97;
        let d = shortcut(&fact("Ana lives in Paris, France"), &n).unwrap();
        assert_eq!(d.decision, Decision::Nothing);
        let d = shortcut(&fact("ana has a cat"), &neighbours()).unwrap();
        assert_eq!(d.decision, Decision::Nothing);
        let mut far = neighbours();
        far.iter_mut().for_each(|n| n.similarity = 0.1);
        assert_eq!(
            shortcut(&fact("Ana plays chess"), &far).unwrap().decision,
            Decision::Add
        );
        assert_eq!(
            shortcut(&fact("Ana plays chess"), &[]).unwrap().decision,
            Decision::Add
        );
        assert_eq!(shortcut(&fact("Ana moved to Lyon"), &neighbours()), None);
    }

    #[test]
    fn each_event_is_read_with_its_target() {
        let n = neighbours();
        let f = fact("Ana moved to Lyon");
        let d = parse_decision(
            r#"{"event": "UPDATE", "memory": 1, "text": "Ana lives in Lyon", "reason": "moved"}"#,
            &f,
            &n,
        )
        .unwrap();
        assert_eq!(
            d,
            Decided {
                decision: Decision::Update {
                    target: n[0].id,
                    text: "Ana lives in Lyon".into()
                },
                reason: "moved".into()
            }
        );
        let d = parse_decision(r#"{"action": "delete", "id": "2"}"#, &f, &n).unwrap();
        assert_eq!(d.decision, Decision::Delete { target: n[1].id });
        let by_id = format!(r#"{{"event": "DELETE", "memory": "{}"}}"#, n[1].id);
        assert_eq!(
            parse_decision(&by_id, &f, &n).unwrap().decision,
            Decision::Delete { target: n[1].id }
        );
        assert_eq!(
            parse_decision("```json\n{\"event\": \"ADD\"}\n```", &f, &n)
                .unwrap()
                .decision,
            Decision::Add
        );
        assert_eq!(
            parse_decision(r#"[{"event": "none", "memory": 1}]"#, &f, &n)
                .unwrap()
                .decision,
            Decision::Nothing
        );
        let d = parse_decision(r#"{"event": "UPDATE", "memory": 1}"#, &f, &n).unwrap();
        assert_eq!(
            d.decision,
            Decision::Update {
                target: n[0].id,
                text: "Ana moved to Lyon".into()
            }
        );
    }

    #[test]
    fn bad_answers_are_errors_and_fall_back_safely() {
        let n = neighbours();
        let f = fact("Ana moved to Lyon");
        for bad in [
            "UPDATE memory 1",
            r#"{"event": "UPDATE", "memory": 7}"#,
            r#"{"event": "DELETE"}"#,
            r#"{"event": "MERGE", "memory": 1}"#,
            r#"{"event": "UPDATE", "memory": 0}"#,
        ] {
            let err = parse_decision(bad, &f, &n).unwrap_err();
            assert_eq!(fallback(&n, &err).decision, Decision::Add, "{bad}");
        }
        let mut close = n.clone();
        close[0].similarity = 0.9;
        let err = parse_decision("nope", &f, &close).unwrap_err();
        assert_eq!(fallback(&close, &err).decision, Decision::Nothing);
    }

    #[test]
    fn the_prompt_numbers_the_neighbours() {
        let messages = decision_messages(&fact("Ana moved to Lyon"), &neighbours());
        assert!(
            messages[1]
                .content
                .contains("1. Ana lives in Paris\n2. Ana has a cat")
        );
    }
}

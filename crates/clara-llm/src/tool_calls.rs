//! Tool calls between providers' wire shapes and [`clara_core::ToolCall`].
//!
//! OpenAI-style servers stream a call as fragments (`id` and `name` first, the
//! arguments' JSON text in pieces), keyed by `index`; [`ToolCallAssembler`] puts them
//! back together. Anthropic and Ollama carry arguments as JSON objects, so the helpers
//! here turn text into objects and back without ever failing: a model's invalid JSON
//! is passed on as text, for the tool loop to report back to the model.

use clara_core::ToolCall;
use serde_json::{Map, Value};

/// One call being assembled.
#[derive(Debug, Default, Clone)]
struct Partial {
    /// The server's `index` (or the fragment's position when it sent none).
    key: u64,
    id: String,
    name: String,
    arguments: String,
}

/// Assembles OpenAI `delta.tool_calls` fragments into whole calls.
///
/// Lenient by design, because compatible servers differ: a whole call in one
/// fragment, fragments without `index` (their position in the array is used), `id`
/// and `name` only on the first fragment, or a server reusing index 0 for several
/// calls and telling them apart only by a new `id` (Ollama's `/v1`, some proxies).
#[derive(Debug, Default, Clone)]
pub struct ToolCallAssembler {
    calls: Vec<Partial>,
    /// Ids handed out for calls the server gave none.
    generated: usize,
}

impl ToolCallAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no fragment has arrived.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Adds one element of a `delta.tool_calls` array; `position` is its place there.
    pub fn push(&mut self, fragment: &Value, position: usize) {
        let key = fragment
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let id = text(fragment.get("id"));
        let function = fragment.get("function");
        let name = text(function.and_then(|f| f.get("name")));
        let arguments = match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(s)) => s.clone(),
            // A few servers send the arguments as an object rather than JSON text.
            Some(v @ Value::Object(_)) => v.to_string(),
            _ => String::new(),
        };

        // The latest call with this key, unless a different id says this is a new one.
        let existing = self.calls.iter().rposition(|c| c.key == key);
        let slot = match existing {
            Some(i) if id.is_empty() || self.calls[i].id.is_empty() || self.calls[i].id == id => i,
            _ => {
                self.calls.push(Partial {
                    key,
                    ..Partial::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if call.id.is_empty() {
            call.id = id;
        }
        // Some servers repeat the name on every fragment; others split it.
        if !name.is_empty() && call.name != name {
            call.name.push_str(&name);
        }
        call.arguments.push_str(&arguments);
    }

    /// The assembled calls, by index (then arrival), and empties the assembler.
    /// Calls without a name are dropped: there is nothing to run. Missing ids become
    /// `call_<n>`; empty arguments become `{}`.
    pub fn take(&mut self) -> Vec<ToolCall> {
        let mut calls = std::mem::take(&mut self.calls);
        calls.sort_by_key(|c| c.key);
        calls
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| ToolCall {
                id: if c.id.is_empty() {
                    self.next_id()
                } else {
                    c.id
                },
                name: c.name,
                arguments: if c.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    c.arguments
                },
            })
            .collect()
    }

    fn next_id(&mut self) -> String {
        self.generated += 1;
        format!("call_{}", self.generated)
    }
}

/// A call's arguments as the JSON object a provider wants; text that is not a JSON
/// object becomes `{}` (the model wrote it, the model gets the tool's complaint).
pub fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

/// Arguments a provider sent as JSON (object or text) as the text [`ToolCall`] carries.
pub fn arguments_text(arguments: Option<&Value>) -> String {
    match arguments {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(s)) if s.trim().is_empty() => "{}".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A tool's parameter schema as providers require it: an object schema.
pub(crate) fn parameters_schema(parameters: &Value) -> Value {
    if parameters.is_object() {
        parameters.clone()
    } else {
        serde_json::json!({ "type": "object", "properties": {} })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn fragments_by_index_in_order() {
        let mut a = ToolCallAssembler::new();
        a.push(
            &json!({"index":1,"id":"b","type":"function","function":{"name":"two","arguments":""}}),
            0,
        );
        a.push(&json!({"index":0,"id":"a","type":"function","function":{"name":"one","arguments":"{\"x\""}}), 0);
        a.push(&json!({"index":0,"function":{"arguments":":1}"}}), 0);
        a.push(&json!({"index":1,"function":{"arguments":"{}"}}), 0);
        assert_eq!(
            a.take(),
            vec![call("a", "one", "{\"x\":1}"), call("b", "two", "{}")]
        );
        assert!(a.is_empty());
    }

    #[test]
    fn lenient_shapes() {
        // No index: position decides. No id: one is made up. Object arguments: text.
        let mut a = ToolCallAssembler::new();
        a.push(&json!({"function":{"name":"f","arguments":{"q":"x"}}}), 0);
        a.push(&json!({"function":{"name":"g"}}), 1);
        assert_eq!(
            a.take(),
            vec![
                call("call_1", "f", "{\"q\":\"x\"}"),
                call("call_2", "g", "{}")
            ]
        );
        // Index 0 reused with new ids: separate calls.
        a.push(
            &json!({"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}),
            0,
        );
        a.push(
            &json!({"index":0,"id":"c2","function":{"name":"f","arguments":"{\"a\":2}"}}),
            0,
        );
        // Name repeated on a later fragment is not doubled; invalid JSON is kept.
        a.push(
            &json!({"index":0,"id":"c2","function":{"name":"f","arguments":" oops"}}),
            0,
        );
        assert_eq!(
            a.take(),
            vec![call("c1", "f", "{}"), call("c2", "f", "{\"a\":2} oops")]
        );
        // Fragments without a name ever are dropped.
        a.push(&json!({"index":0,"function":{"arguments":"{}"}}), 0);
        assert!(a.take().is_empty());
    }

    #[test]
    fn argument_conversions() {
        assert_eq!(arguments_object("{\"a\":1}"), json!({"a":1}));
        assert_eq!(arguments_object("not json"), json!({}));
        assert_eq!(arguments_object("[1]"), json!({}));
        assert_eq!(arguments_text(Some(&json!({"a":1}))), "{\"a\":1}");
        assert_eq!(arguments_text(Some(&json!("{\"a\":1}"))), "{\"a\":1}");
        assert_eq!(arguments_text(None), "{}");
        assert_eq!(parameters_schema(&Value::Null)["type"], "object");
    }
}

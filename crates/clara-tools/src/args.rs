//! Reading a tool call's arguments: the checks every tool makes, with the
//! sentence the model reads when one fails.

use crate::tool::ToolError;
use serde_json::Value;

/// A required, non-blank string argument, trimmed.
pub fn required_text<'a>(args: &'a Value, name: &str) -> Result<&'a str, ToolError> {
    args.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{name}` (a string) is required")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_and_missing_are_refused_with_the_name() {
        assert_eq!(required_text(&json!({"a": " x "}), "a").unwrap(), "x");
        for args in [json!({}), json!({"a": "  "}), json!({"a": 3})] {
            let error = required_text(&args, "a").unwrap_err().to_string();
            assert!(error.contains("`a` (a string) is required"), "{error}");
        }
    }
}

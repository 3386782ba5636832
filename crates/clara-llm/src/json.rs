//! Reading JSON out of what a language model wrote.
//!
//! Models asked for JSON wrap it in prose or code fences, leave trailing commas,
//! or stop mid-object. [`find_json`] recovers the first complete JSON value it can;
//! callers then read fields leniently.

use serde_json::Value;

/// The first JSON object or array in `text` that parses, after removing code
/// fences and trailing commas; `None` when there is none.
pub fn find_json(text: &str) -> Option<Value> {
    let text = strip_fences(text);
    if let Ok(v) = serde_json::from_str::<Value>(text.trim())
        && (v.is_object() || v.is_array())
    {
        return Some(v);
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find(['{', '[']) {
        let start = from + offset;
        if let Some(end) = balanced_end(bytes, start) {
            let candidate = without_trailing_commas(&text[start..=end]);
            if let Ok(v) = serde_json::from_str::<Value>(&candidate) {
                return Some(v);
            }
        }
        from = start + 1;
    }
    None
}

/// The text between the first pair of ``` fences, or all of it.
fn strip_fences(text: &str) -> &str {
    let Some(open) = text.find("```") else {
        return text;
    };
    let after = &text[open + 3..];
    // Skip a language tag such as `json` on the opening fence's line.
    let body_start = after.find('\n').map_or(0, |i| i + 1);
    let body = &after[body_start..];
    match body.find("```") {
        Some(close) => &body[..close],
        None => body,
    }
}

/// The index of the bracket closing the one at `start`, honouring strings.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes commas directly before a closing bracket, outside strings.
fn without_trailing_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The first of `keys` that `value` has as a string field (trimmed, non-empty).
pub fn str_field<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| value.get(*k))
        .filter_map(Value::as_str)
        .map(str::trim)
        .find(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json_is_read_as_is() {
        assert_eq!(find_json(r#"{"a": 1}"#), Some(json!({"a": 1})));
        assert_eq!(find_json(" [1, 2] "), Some(json!([1, 2])));
    }

    #[test]
    fn fences_and_prose_are_skipped() {
        let text = "Sure! Here you go:\n```json\n{\"facts\": [\"likes tea\"]}\n```\nAnything else?";
        assert_eq!(find_json(text), Some(json!({"facts": ["likes tea"]})));
        let text = "The facts are {\"facts\": []} as requested.";
        assert_eq!(find_json(text), Some(json!({"facts": []})));
    }

    #[test]
    fn trailing_commas_are_forgiven_but_not_inside_strings() {
        let text = r#"{"facts": ["a, ]", "b",], }"#;
        assert_eq!(find_json(text), Some(json!({"facts": ["a, ]", "b"]})));
    }

    #[test]
    fn braces_inside_strings_do_not_confuse_the_scan() {
        let text = r#"noise {"t": "a } b \" {"} tail"#;
        assert_eq!(find_json(text), Some(json!({"t": "a } b \" {"})));
    }

    #[test]
    fn garbage_and_truncated_output_give_none() {
        assert_eq!(find_json("I could not find any facts."), None);
        assert_eq!(find_json(r#"{"facts": ["likes tea""#), None);
        assert_eq!(find_json("}{"), None);
    }

    #[test]
    fn a_broken_first_object_does_not_hide_a_later_good_one() {
        let text = r#"{oops} then {"ok": true}"#;
        assert_eq!(find_json(text), Some(json!({"ok": true})));
    }
}

//! Reading a tool call's JSON arguments the way models write them: `null`
//! for an optional argument left out, numbers as strings (`"12"`, `"#12"`),
//! lists as arrays or comma-separated text, and a repository as `owner` plus
//! `repo` or as `repo: "owner/name"`.

use crate::api::Page;
use crate::names::{self, RepoRef};
use clara_tools::ToolError;
use serde_json::Value;

/// A call's arguments (a JSON object, as the registry guarantees).
pub(crate) struct Args<'a>(pub &'a Value);

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments(message.into())
}

impl Args<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A text argument, trimmed; `None` when absent, null or blank.
    pub fn text(&self, key: &str) -> Result<Option<String>, ToolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                Ok((!s.is_empty()).then(|| s.to_owned()))
            }
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(format!("`{key}` must be text"))),
        }
    }

    /// A text argument that must be given.
    pub fn required_text(&self, key: &str) -> Result<String, ToolError> {
        self.text(key)?
            .ok_or_else(|| invalid(format!("`{key}` is required")))
    }

    /// A long text (an issue or comment body): kept as written, but at most
    /// `max_chars`.
    pub fn body(&self, key: &str, max_chars: usize) -> Result<Option<String>, ToolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max_chars => Err(invalid(format!(
                "`{key}` is longer than GitHub accepts ({max_chars} characters)"
            ))),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("`{key}` must be text"))),
        }
    }

    /// A positive whole number (`12`, `"12"` or `"#12"`).
    pub fn number(&self, key: &str) -> Result<Option<u64>, ToolError> {
        let wrong = || invalid(format!("`{key}` must be a positive whole number"));
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().filter(|&n| n > 0).map(Some).ok_or_else(wrong),
            Some(Value::String(s)) => s
                .trim()
                .trim_start_matches('#')
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(wrong),
            Some(_) => Err(wrong()),
        }
    }

    /// A required issue or pull request number.
    pub fn issue_number(&self) -> Result<u64, ToolError> {
        self.number("number")?
            .ok_or_else(|| invalid("`number` (the issue or pull request number) is required"))
    }

    /// A yes/no argument (`true`, `"true"`, `"yes"`…), `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ToolError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(true),
                "false" | "no" | "0" | "" => Ok(false),
                _ => Err(invalid(format!("`{key}` must be true or false"))),
            },
            Some(_) => Err(invalid(format!("`{key}` must be true or false"))),
        }
    }

    /// One of `choices`, `default` when absent.
    pub fn choice(
        &self,
        key: &str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ToolError> {
        let Some(given) = self.text(key)? else {
            return Ok(default);
        };
        let given = given.to_lowercase();
        choices
            .iter()
            .find(|c| **c == given)
            .copied()
            .ok_or_else(|| invalid(format!("`{key}` must be one of: {}", choices.join(", "))))
    }

    /// A list of texts, from an array or one comma-separated string.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ToolError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.split(',').map(str::to_owned).collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(invalid(format!("`{key}` must be a list of texts"))),
                })
                .collect(),
            Some(_) => Err(invalid(format!("`{key}` must be a list of texts"))),
        }
    }

    /// Label names from `labels`.
    pub fn labels(&self) -> Result<Vec<String>, ToolError> {
        let items = self.list("labels")?;
        names::labels(items.iter().map(String::as_str)).map_err(invalid)
    }

    /// The repository: `owner` and `repo`, or `repo` as `owner/name`.
    pub fn repo(&self) -> Result<RepoRef, ToolError> {
        let repo = self.required_text("repo")?;
        match self.text("owner")? {
            Some(owner) if !repo.contains('/') => RepoRef::new(&owner, &repo),
            // `owner/name` in `repo` wins; a matching `owner` is redundant.
            _ if repo.contains('/') => RepoRef::parse(&repo),
            _ => Err("`owner` is required (or give `repo` as owner/name)".into()),
        }
        .map_err(invalid)
    }

    /// An optional git ref from `ref`.
    pub fn git_ref(&self) -> Result<Option<String>, ToolError> {
        self.text("ref")?
            .map(|r| names::git_ref(&r))
            .transpose()
            .map_err(invalid)
    }

    /// `limit` (default `default`, at most `max`) and `page` (default 1).
    pub fn page(&self, default: u32, max: u32) -> Result<Page, ToolError> {
        let per_page = match self.number("limit")? {
            None => default,
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX).min(max),
        };
        let page = match self.number("page")? {
            None => 1,
            Some(n) if n <= 1_000 => n as u32,
            Some(_) => return Err(invalid("`page` must be at most 1000")),
        };
        Ok(Page { page, per_page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn models_loose_forms_are_understood() {
        let v = json!({"number": "#12", "limit": 500, "page": null, "labels": "bug, ui", "all": "yes", "state": "Closed"});
        let a = Args(&v);
        assert_eq!(a.issue_number().unwrap(), 12);
        assert_eq!(
            a.page(10, 50).unwrap(),
            Page {
                page: 1,
                per_page: 50
            }
        );
        assert_eq!(a.labels().unwrap(), vec!["bug", "ui"]);
        assert!(a.flag("all", false).unwrap());
        assert!(!a.flag("participating", false).unwrap());
        assert_eq!(
            a.choice("state", &["open", "closed", "all"], "open")
                .unwrap(),
            "closed"
        );
        assert_eq!(a.choice("sort", &["stars"], "best").unwrap(), "best");
    }

    #[test]
    fn bad_arguments_are_explained() {
        let v = json!({"number": 0, "state": "merged", "labels": [1], "ref": "a..b", "page": 5000});
        let a = Args(&v);
        assert!(
            a.issue_number()
                .unwrap_err()
                .to_string()
                .contains("positive whole number")
        );
        assert!(
            a.choice("state", &["open", "closed", "all"], "open")
                .unwrap_err()
                .to_string()
                .contains("open, closed, all")
        );
        assert!(a.labels().is_err());
        assert!(a.git_ref().is_err());
        assert!(a.page(10, 50).is_err());
        assert_eq!(
            Args(&json!({})).issue_number().unwrap_err(),
            ToolError::InvalidArguments(
                "`number` (the issue or pull request number) is required".into()
            )
        );
    }

    #[test]
    fn a_repository_comes_as_two_parts_or_one() {
        let two = json!({"owner": "octo", "repo": "hello"});
        assert_eq!(Args(&two).repo().unwrap().to_string(), "octo/hello");
        let one = json!({"repo": "octo/hello"});
        assert_eq!(Args(&one).repo().unwrap().to_string(), "octo/hello");
        let both = json!({"owner": "octo", "repo": "octo/hello"});
        assert_eq!(Args(&both).repo().unwrap().to_string(), "octo/hello");
        assert!(
            Args(&json!({"repo": "hello"}))
                .repo()
                .unwrap_err()
                .to_string()
                .contains("`owner` is required")
        );
        assert!(Args(&json!({"owner": "../x", "repo": "r"})).repo().is_err());
    }

    #[test]
    fn bodies_keep_their_text_and_refuse_what_github_would() {
        let v = json!({"body": "  line one\nline two  ", "empty": " ", "long": "x".repeat(11)});
        let a = Args(&v);
        assert_eq!(
            a.body("body", 100).unwrap().unwrap(),
            "  line one\nline two  "
        );
        assert_eq!(a.body("empty", 100).unwrap(), None);
        assert!(a.body("long", 10).is_err());
    }
}

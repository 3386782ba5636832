//! The names a tool call puts into a URL — owner, repository, file path, git
//! ref, labels — checked before they get there.
//!
//! The model writes these, and what it writes may come from a page it just
//! read: a `..` segment or a `?` must never turn a file read into another
//! request. Each check refuses with a sentence the model can act on; the URL
//! builder then percent-encodes every path segment on top.

use std::fmt;

/// The longest path the contents API is asked for.
const MAX_PATH_CHARS: usize = 1024;
/// The longest git ref accepted (branch, tag or commit SHA).
const MAX_REF_CHARS: usize = 255;

/// A repository, `owner/name`, with both parts checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRef {
    owner: String,
    name: String,
}

impl RepoRef {
    /// `owner` and `name` checked: an owner is 1–39 letters, digits, `-` or
    /// `_` (enterprise accounts add `_`), not starting with `-`; a repository
    /// name is 1–100 letters, digits, `-`, `_` or `.`, and not `.` or `..`.
    pub fn new(owner: &str, name: &str) -> Result<Self, String> {
        let owner = owner.trim();
        let name = name.trim().trim_end_matches(".git");
        let owner_ok = (1..=39).contains(&owner.len())
            && !owner.starts_with('-')
            && owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !owner_ok {
            return Err(format!(
                "{owner:?} is not a GitHub owner name (1–39 letters, digits or hyphens)"
            ));
        }
        let name_ok = (1..=100).contains(&name.len())
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "{name:?} is not a GitHub repository name (1–100 letters, digits, '-', '_' or '.')"
            ));
        }
        Ok(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `owner/name` as one string (`octocat/hello-world`).
    pub fn parse(full: &str) -> Result<Self, String> {
        match full.trim().split_once('/') {
            Some((owner, name)) => Self::new(owner, name),
            None => Err(format!(
                "{full:?} is not a repository: write it as owner/name"
            )),
        }
    }

    /// The owner (user or organisation).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A path inside a repository, as its segments. Empty means the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RepoPath(Vec<String>);

impl RepoPath {
    /// `path` checked: `/`-separated, no `.` or `..` segment, no backslash or
    /// control character. Leading, trailing and doubled slashes are dropped.
    pub fn parse(path: &str) -> Result<Self, String> {
        let path = path.trim();
        if path.chars().count() > MAX_PATH_CHARS {
            return Err(format!(
                "the path is longer than {MAX_PATH_CHARS} characters"
            ));
        }
        if path.chars().any(|c| c.is_control() || c == '\\') {
            return Err("the path may not contain backslashes or control characters".into());
        }
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if segments.iter().any(|s| s == "." || s == "..") {
            return Err(format!(
                "{path:?} is not a path inside the repository: `.` and `..` are not allowed"
            ));
        }
        Ok(Self(segments))
    }

    /// The segments, each to be percent-encoded on its own.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether this is the repository's root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("/")
        } else {
            f.write_str(&self.0.join("/"))
        }
    }
}

/// A git ref (branch, tag or SHA) checked the way `git check-ref-format`
/// would refuse the worst of it: no whitespace, control characters, `..`,
/// `~^:?*[\`, and not starting with `-`.
pub fn git_ref(text: &str) -> Result<String, String> {
    let text = text.trim();
    let ok = !text.is_empty()
        && text.len() <= MAX_REF_CHARS
        && !text.starts_with('-')
        && !text.contains("..")
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a branch, tag or commit name"))
    }
}

/// Label names from a list, trimmed and without empty ones (a label may hold
/// spaces).
pub fn labels<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item.chars().count() > 50 || item.chars().any(char::is_control) {
            return Err(format!(
                "{item:?} is not a label name (at most 50 characters)"
            ));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_checked_part_by_part() {
        let repo = RepoRef::new("octo-cat", "hello.world").unwrap();
        assert_eq!(repo.to_string(), "octo-cat/hello.world");
        assert_eq!(
            RepoRef::parse(" rust-lang/rust.git ").unwrap().to_string(),
            "rust-lang/rust"
        );
        for (owner, name) in [
            ("", "x"),
            ("-bad", "x"),
            ("a/b", "x"),
            ("o", ".."),
            ("o", "a/b"),
            ("o", "a?b"),
            ("o", ""),
        ] {
            assert!(RepoRef::new(owner, name).is_err(), "{owner}/{name}");
        }
        assert!(RepoRef::parse("just-a-name").is_err());
    }

    #[test]
    fn paths_refuse_traversal_and_keep_their_segments() {
        let path = RepoPath::parse("/src//lib.rs/").unwrap();
        assert_eq!(path.segments().collect::<Vec<_>>(), vec!["src", "lib.rs"]);
        assert_eq!(path.to_string(), "src/lib.rs");
        assert!(RepoPath::parse("").unwrap().is_root());
        assert_eq!(RepoPath::parse("").unwrap().to_string(), "/");
        // Characters a URL would read specially stay inside one segment.
        let odd = RepoPath::parse("docs/a b?c#d%.md").unwrap();
        assert_eq!(odd.segments().last(), Some("a b?c#d%.md"));
        for bad in ["../secrets", "a/../../b", "./x", "a\\b", "a\nb"] {
            assert!(RepoPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refs_and_labels_refuse_what_would_confuse_a_request() {
        assert_eq!(git_ref(" main ").unwrap(), "main");
        assert_eq!(git_ref("release/v1.2").unwrap(), "release/v1.2");
        for bad in ["", "-x", "a..b", "a b", "a:b", "x~1"] {
            assert!(git_ref(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            labels(["bug", " good first issue ", ""]).unwrap(),
            vec!["bug", "good first issue"]
        );
        assert!(labels(["a\u{7}"]).is_err());
    }
}

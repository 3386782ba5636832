//! The parts of GitHub's REST answers Clara reads, decoded leniently: every
//! field has a default and `null` reads as the default, so a field GitHub
//! drops or nulls never fails a whole answer. Field names are GitHub's
//! (REST API version 2022-11-28).

use serde::{Deserialize, Deserializer};

/// `null` as the type's default (serde's `default` covers only a missing key).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An account, as it appears inside other objects.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct User {
    #[serde(deserialize_with = "nullable")]
    pub login: String,
}

/// A label on an issue or pull request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Label {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
}

/// `GET /search/…`: one page of results.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct SearchResults<T> {
    #[serde(deserialize_with = "nullable")]
    pub total_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub incomplete_results: bool,
    #[serde(deserialize_with = "nullable")]
    pub items: Vec<T>,
}

impl<T> Default for SearchResults<T> {
    fn default() -> Self {
        Self {
            total_count: 0,
            incomplete_results: false,
            items: Vec::new(),
        }
    }
}

/// A repository (`/search/repositories` items).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Repository {
    #[serde(deserialize_with = "nullable")]
    pub full_name: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    #[serde(deserialize_with = "nullable")]
    pub stargazers_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub forks_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub open_issues_count: u64,
    #[serde(deserialize_with = "nullable")]
    pub language: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    #[serde(deserialize_with = "nullable")]
    pub archived: bool,
    #[serde(deserialize_with = "nullable")]
    pub fork: bool,
}

/// An issue, or a pull request seen through the issues API (then
/// `pull_request` is present).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Issue {
    #[serde(deserialize_with = "nullable")]
    pub number: u64,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    #[serde(deserialize_with = "nullable")]
    pub state_reason: String,
    #[serde(deserialize_with = "nullable")]
    pub user: User,
    #[serde(deserialize_with = "nullable")]
    pub body: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "nullable")]
    pub assignees: Vec<User>,
    #[serde(deserialize_with = "nullable")]
    pub comments: u64,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    #[serde(deserialize_with = "nullable")]
    pub closed_at: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    /// `https://api.github.com/repos/{owner}/{repo}`: which repository a
    /// search result is from.
    #[serde(deserialize_with = "nullable")]
    pub repository_url: String,
    /// Present (an object of links) when the issue is a pull request.
    pub pull_request: Option<serde::de::IgnoredAny>,
}

/// A comment on an issue or pull request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Comment {
    #[serde(deserialize_with = "nullable")]
    pub user: User,
    #[serde(deserialize_with = "nullable")]
    pub body: String,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
}

/// A branch end of a pull request (`head` or `base`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Branch {
    /// The branch name.
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub branch: String,
    /// `owner:branch`, which tells a fork's branch apart.
    #[serde(deserialize_with = "nullable")]
    pub label: String,
}

/// A pull request (`/pulls` items and `/pulls/{n}`; the counts only come
/// with the single one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PullRequest {
    #[serde(deserialize_with = "nullable")]
    pub number: u64,
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    #[serde(deserialize_with = "nullable")]
    pub draft: bool,
    #[serde(deserialize_with = "nullable")]
    pub merged: bool,
    #[serde(deserialize_with = "nullable")]
    pub merged_at: String,
    #[serde(deserialize_with = "nullable")]
    pub mergeable: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub user: User,
    #[serde(deserialize_with = "nullable")]
    pub body: String,
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    #[serde(deserialize_with = "nullable")]
    pub head: Branch,
    #[serde(deserialize_with = "nullable")]
    pub base: Branch,
    #[serde(deserialize_with = "nullable")]
    pub additions: u64,
    #[serde(deserialize_with = "nullable")]
    pub deletions: u64,
    #[serde(deserialize_with = "nullable")]
    pub changed_files: u64,
    #[serde(deserialize_with = "nullable")]
    pub commits: u64,
    #[serde(deserialize_with = "nullable")]
    pub comments: u64,
    #[serde(deserialize_with = "nullable")]
    pub review_comments: u64,
    #[serde(deserialize_with = "nullable")]
    pub created_at: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    #[serde(deserialize_with = "nullable")]
    pub closed_at: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
}

/// A file a pull request changes (`/pulls/{n}/files`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PullFile {
    #[serde(deserialize_with = "nullable")]
    pub filename: String,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed`, `unchanged`.
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    #[serde(deserialize_with = "nullable")]
    pub additions: u64,
    #[serde(deserialize_with = "nullable")]
    pub deletions: u64,
    #[serde(deserialize_with = "nullable")]
    pub previous_filename: String,
}

/// A file, directory entry, symlink or submodule (`/contents/{path}`,
/// `/readme`). Directory listings are arrays of these without `content`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Content {
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub size: u64,
    /// `base64` for files up to 1 MB, `none` above.
    #[serde(deserialize_with = "nullable")]
    pub encoding: String,
    #[serde(deserialize_with = "nullable")]
    pub content: String,
    #[serde(deserialize_with = "nullable")]
    pub html_url: String,
    /// A symlink's target.
    #[serde(deserialize_with = "nullable")]
    pub target: String,
    /// A submodule's repository.
    #[serde(deserialize_with = "nullable")]
    pub submodule_git_url: String,
}

/// What the contents API returns: one object, or an array for a directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Contents {
    Directory(Vec<Content>),
    Item(Box<Content>),
}

/// A notification thread (`/notifications`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Notification {
    #[serde(deserialize_with = "nullable")]
    pub unread: bool,
    /// Why the owner got it: `mention`, `review_requested`, `assign`, …
    #[serde(deserialize_with = "nullable")]
    pub reason: String,
    #[serde(deserialize_with = "nullable")]
    pub updated_at: String,
    #[serde(deserialize_with = "nullable")]
    pub subject: Subject,
    #[serde(deserialize_with = "nullable")]
    pub repository: NotifiedRepository,
}

/// What a notification is about.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Subject {
    #[serde(deserialize_with = "nullable")]
    pub title: String,
    /// The API URL of the issue, pull request, release… (`null` for some kinds).
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    /// `Issue`, `PullRequest`, `Release`, `Commit`, `Discussion`, `CheckSuite`…
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub kind: String,
}

/// The repository of a notification.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NotifiedRepository {
    #[serde(deserialize_with = "nullable")]
    pub full_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_missing_fields_read_as_defaults() {
        let issue: Issue = serde_json::from_str(
            r#"{"number": 3, "title": "t", "body": null, "user": null, "closed_at": null, "labels": [{"name": "bug", "color": "f00"}], "extra": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(issue.number, 3);
        assert_eq!(issue.body, "");
        assert_eq!(issue.user.login, "");
        assert_eq!(issue.labels[0].name, "bug");
        assert!(issue.pull_request.is_none());
        let pr: Issue =
            serde_json::from_str(r#"{"number": 4, "pull_request": {"url": "u"}}"#).unwrap();
        assert!(pr.pull_request.is_some());
        let pull: PullRequest = serde_json::from_str(
            r#"{"mergeable": null, "head": {"ref": "feature", "label": "a:feature"}}"#,
        )
        .unwrap();
        assert_eq!(pull.mergeable, None);
        assert_eq!(pull.head.branch, "feature");
    }

    #[test]
    fn contents_are_a_file_or_a_directory() {
        let dir: Contents =
            serde_json::from_str(r#"[{"type": "file", "name": "a", "path": "a", "size": 3}]"#)
                .unwrap();
        assert!(matches!(dir, Contents::Directory(ref d) if d.len() == 1));
        let file: Contents =
            serde_json::from_str(r#"{"type": "file", "encoding": "base64", "content": "aGk=\n"}"#)
                .unwrap();
        assert!(matches!(file, Contents::Item(ref f) if f.kind == "file"));
    }
}

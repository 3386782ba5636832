//! The GitHub tools as the model sees them: names, descriptions, argument
//! schemas and what each does to the world.
//!
//! Reading tools are [`Effect::Read`] with `untrusted_output` (titles,
//! bodies, comments and files are written by other people and may carry
//! instructions); `create_issue` and `add_comment` publish in the owner's
//! name, so they are [`Effect::Send`] and the approval policy asks first.

use crate::api::GitHubApi;
use crate::operations;
use async_trait::async_trait;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use serde_json::{Value, json};
use std::sync::Arc;

/// One of the GitHub tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ToolKind {
    /// `search_repositories`.
    SearchRepositories,
    /// `search_issues` (issues and pull requests).
    SearchIssues,
    /// `get_file` (a file or a directory listing).
    GetFile,
    /// `get_readme`.
    GetReadme,
    /// `list_issues`.
    ListIssues,
    /// `get_issue` (with its last comments).
    GetIssue,
    /// `list_pull_requests`.
    ListPullRequests,
    /// `get_pull_request` (with its changed files).
    GetPullRequest,
    /// `list_notifications`.
    ListNotifications,
    /// `create_issue` (asks the owner).
    CreateIssue,
    /// `add_comment` (asks the owner).
    AddComment,
}

impl ToolKind {
    /// Every tool, in the order they are offered.
    pub const ALL: [ToolKind; 11] = [
        Self::SearchRepositories,
        Self::SearchIssues,
        Self::GetFile,
        Self::GetReadme,
        Self::ListIssues,
        Self::GetIssue,
        Self::ListPullRequests,
        Self::GetPullRequest,
        Self::ListNotifications,
        Self::CreateIssue,
        Self::AddComment,
    ];

    /// The tool's name within the `github` server.
    pub fn name(self) -> &'static str {
        match self {
            Self::SearchRepositories => "search_repositories",
            Self::SearchIssues => "search_issues",
            Self::GetFile => "get_file",
            Self::GetReadme => "get_readme",
            Self::ListIssues => "list_issues",
            Self::GetIssue => "get_issue",
            Self::ListPullRequests => "list_pull_requests",
            Self::GetPullRequest => "get_pull_request",
            Self::ListNotifications => "list_notifications",
            Self::CreateIssue => "create_issue",
            Self::AddComment => "add_comment",
        }
    }

    /// Whether the tool publishes something in the owner's name.
    pub fn sends(self) -> bool {
        matches!(self, Self::CreateIssue | Self::AddComment)
    }

    fn description(self) -> &'static str {
        match self {
            Self::SearchRepositories => {
                "Searches GitHub repositories with GitHub search syntax (e.g. `tokio language:rust stars:>1000`, `user:octocat`, `topic:cli`). Returns names, stars, language, description and links."
            }
            Self::SearchIssues => {
                "Searches GitHub issues and pull requests with GitHub search syntax (e.g. `repo:owner/name is:open label:bug crash`, `author:octocat is:pr`, `involves:@me`). Returns repo#number, title, state, author, comment count and links."
            }
            Self::GetFile => {
                "Reads a file from a GitHub repository (text files up to 1 MB, shown a window of lines at a time: use start_line to read on), or lists a directory's entries when the path is a directory (an empty path lists the root)."
            }
            Self::GetReadme => "Reads the README GitHub shows for a repository.",
            Self::ListIssues => {
                "Lists a repository's issues (newest first; GitHub includes pull requests, which are marked). Filter by state and labels."
            }
            Self::GetIssue => {
                "Reads one issue (or pull request conversation) with its description and its latest comments."
            }
            Self::ListPullRequests => {
                "Lists a repository's pull requests (newest first) with state, author and branches."
            }
            Self::GetPullRequest => {
                "Reads one pull request: description, branches, state, size, mergeability and the files it changes."
            }
            Self::ListNotifications => {
                "Lists the owner's GitHub notifications (unread ones unless all=true): repository, what it is about, why the owner got it. Does not mark them read."
            }
            Self::CreateIssue => {
                "Opens a new issue in a repository, in the owner's name. The owner is asked to approve it first."
            }
            Self::AddComment => {
                "Posts a comment on an issue or pull request, in the owner's name. The owner is asked to approve it first."
            }
        }
    }

    fn parameters(self) -> Value {
        let owner = json!({"type": "string", "description": "The repository's owner (user or organisation)."});
        let repo =
            json!({"type": "string", "description": "The repository's name (or owner/name)."});
        let number = json!({"type": "integer", "minimum": 1, "description": "The issue or pull request number."});
        let limit = |default: u32, max: u32| json!({"type": "integer", "minimum": 1, "maximum": max, "description": format!("How many to return (default {default}, at most {max}).")});
        let page = json!({"type": "integer", "minimum": 1, "description": "Which page of results (default 1)."});
        let state = json!({"type": "string", "enum": ["open", "closed", "all"], "description": "Which ones (default open)."});
        let git_ref = json!({"type": "string", "description": "A branch, tag or commit (default: the repository's default branch)."});
        let (properties, required): (Value, &[&str]) = match self {
            Self::SearchRepositories => (
                json!({
                    "query": {"type": "string", "description": "GitHub repository search query."},
                    "sort": {"type": "string", "enum": ["stars", "forks", "updated"], "description": "Sort order (default: best match)."},
                    "limit": limit(10, 50),
                    "page": page,
                }),
                &["query"],
            ),
            Self::SearchIssues => (
                json!({
                    "query": {"type": "string", "description": "GitHub issue search query (qualifiers such as repo:, is:open, label:, author:)."},
                    "type": {"type": "string", "enum": ["issue", "pr", "any"], "description": "Only issues, only pull requests, or both (default any)."},
                    "sort": {"type": "string", "enum": ["comments", "reactions", "created", "updated"], "description": "Sort order (default: best match)."},
                    "limit": limit(10, 50),
                    "page": page,
                }),
                &["query"],
            ),
            Self::GetFile => (
                json!({
                    "owner": owner,
                    "repo": repo,
                    "path": {"type": "string", "description": "The file or directory path inside the repository (empty for the root)."},
                    "ref": git_ref,
                    "start_line": {"type": "integer", "minimum": 1, "description": "The first line to show (default 1), to read a long file in parts."},
                }),
                &["owner", "repo", "path"],
            ),
            Self::GetReadme => (
                json!({"owner": owner, "repo": repo, "ref": git_ref}),
                &["owner", "repo"],
            ),
            Self::ListIssues => (
                json!({
                    "owner": owner,
                    "repo": repo,
                    "state": state,
                    "labels": {"type": "array", "items": {"type": "string"}, "description": "Only issues with all these labels."},
                    "limit": limit(20, 50),
                    "page": page,
                }),
                &["owner", "repo"],
            ),
            Self::GetIssue | Self::GetPullRequest => (
                json!({"owner": owner, "repo": repo, "number": number}),
                &["owner", "repo", "number"],
            ),
            Self::ListPullRequests => (
                json!({"owner": owner, "repo": repo, "state": state, "limit": limit(20, 50), "page": page}),
                &["owner", "repo"],
            ),
            Self::ListNotifications => (
                json!({
                    "all": {"type": "boolean", "description": "Include notifications already read (default false)."},
                    "participating": {"type": "boolean", "description": "Only threads the owner takes part in or is mentioned in (default false)."},
                    "limit": limit(20, 50),
                    "page": page,
                }),
                &[],
            ),
            Self::CreateIssue => (
                json!({
                    "owner": owner,
                    "repo": repo,
                    "title": {"type": "string", "description": "The issue's title."},
                    "body": {"type": "string", "description": "The issue's text (Markdown)."},
                    "labels": {"type": "array", "items": {"type": "string"}, "description": "Labels to add (they must exist in the repository)."},
                }),
                &["owner", "repo", "title"],
            ),
            Self::AddComment => (
                json!({
                    "owner": owner,
                    "repo": repo,
                    "number": number,
                    "body": {"type": "string", "description": "The comment (Markdown)."},
                }),
                &["owner", "repo", "number", "body"],
            ),
        };
        json!({"type": "object", "properties": properties, "required": required})
    }
}

/// A GitHub tool bound to a client.
pub struct GitHubTool {
    kind: ToolKind,
    api: Arc<GitHubApi>,
}

impl GitHubTool {
    /// Which tool this is.
    pub fn kind(&self) -> ToolKind {
        self.kind
    }
}

/// Every GitHub tool, sharing one client.
pub(crate) fn all(api: Arc<GitHubApi>) -> Vec<Arc<dyn Tool>> {
    ToolKind::ALL
        .into_iter()
        .map(|kind| {
            Arc::new(GitHubTool {
                kind,
                api: Arc::clone(&api),
            }) as Arc<dyn Tool>
        })
        .collect()
}

#[async_trait]
impl Tool for GitHubTool {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn description(&self) -> &str {
        self.kind.description()
    }

    fn parameters(&self) -> Value {
        self.kind.parameters()
    }

    fn traits(&self) -> ToolTraits {
        if self.kind.sends() {
            // Its result is GitHub's echo of what Clara wrote: Clara's own.
            ToolTraits {
                effect: Effect::Send,
                untrusted_output: false,
                definition_sha256: None,
            }
        } else {
            ToolTraits {
                effect: Effect::Read,
                untrusted_output: true,
                definition_sha256: None,
            }
        }
    }

    async fn call(&self, arguments: Value, _context: &ToolContext) -> Result<String, ToolError> {
        operations::run(self.kind, &self.api, &arguments).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_snake_case_and_unique() {
        let names: std::collections::BTreeSet<_> = ToolKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ToolKind::ALL.len());
        for name in names {
            assert!(
                name.len() <= 24 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn every_schema_is_an_object_whose_required_keys_exist() {
        for kind in ToolKind::ALL {
            let schema = kind.parameters();
            assert_eq!(schema["type"], "object");
            for key in schema["required"].as_array().unwrap() {
                assert!(
                    schema["properties"].get(key.as_str().unwrap()).is_some(),
                    "{} requires {key}",
                    kind.name()
                );
            }
            assert!(!kind.description().is_empty());
        }
    }

    #[test]
    fn only_creating_and_commenting_send() {
        let senders: Vec<_> = ToolKind::ALL
            .into_iter()
            .filter(|k| k.sends())
            .map(ToolKind::name)
            .collect();
        assert_eq!(senders, vec!["create_issue", "add_comment"]);
    }
}

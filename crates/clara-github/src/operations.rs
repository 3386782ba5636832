//! What each tool does when called: read its arguments, make its requests,
//! and render the answer.

use crate::api::{GitHubApi, NewIssue, Page};
use crate::args::Args;
use crate::content;
use crate::error::GitHubError;
use crate::names::{RepoPath, RepoRef};
use crate::render;
use crate::tools::ToolKind;
use crate::wire::{Comment, Content, Contents};
use clara_tools::ToolError;
use serde_json::Value;

/// How much of a file one call shows, in characters.
const FILE_WINDOW_CHARS: usize = 6_000;
/// Comments fetched per page for `get_issue`.
const COMMENTS_PER_PAGE: u32 = 30;
/// Fewer comments than this on the last page, and the page before is
/// fetched too.
const MIN_RECENT_COMMENTS: usize = 10;
/// Files fetched for `get_pull_request` (the render shows what fits).
const PULL_FILES: u32 = 100;
/// GitHub's limits on an issue title and on a body.
const MAX_TITLE_CHARS: usize = 256;
const MAX_BODY_CHARS: usize = 65_536;

fn failed(error: GitHubError) -> ToolError {
    ToolError::Failed(error.to_string())
}

/// Runs `kind` with `arguments`.
pub(crate) async fn run(
    kind: ToolKind,
    api: &GitHubApi,
    arguments: &Value,
) -> Result<String, ToolError> {
    let args = Args(arguments);
    match kind {
        ToolKind::SearchRepositories => search_repositories(api, &args).await,
        ToolKind::SearchIssues => search_issues(api, &args).await,
        ToolKind::GetFile => get_file(api, &args).await,
        ToolKind::GetReadme => get_readme(api, &args).await,
        ToolKind::ListIssues => list_issues(api, &args).await,
        ToolKind::GetIssue => get_issue(api, &args).await,
        ToolKind::ListPullRequests => list_pull_requests(api, &args).await,
        ToolKind::GetPullRequest => get_pull_request(api, &args).await,
        ToolKind::ListNotifications => list_notifications(api, &args).await,
        ToolKind::CreateIssue => create_issue(api, &args).await,
        ToolKind::AddComment => add_comment(api, &args).await,
    }
}

async fn search_repositories(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let query = args.required_text("query")?;
    let sort = args.choice("sort", &["stars", "forks", "updated", "best"], "best")?;
    let page = args.page(10, 50)?;
    let sort = (sort != "best").then_some(sort);
    let found = api
        .search_repositories(&query, sort, page)
        .await
        .map_err(failed)?;
    Ok(render::repositories(&query, page, &found))
}

async fn search_issues(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let query = args.required_text("query")?;
    let kind = args.choice("type", &["issue", "pr", "any"], "any")?;
    let sort = args.choice(
        "sort",
        &["comments", "reactions", "created", "updated", "best"],
        "best",
    )?;
    let page = args.page(10, 50)?;
    let query = with_type(&query, kind);
    let sort = (sort != "best").then_some(sort);
    let found = api
        .search_issues(&query, sort, page)
        .await
        .map_err(failed)?;
    Ok(render::found_issues(&query, page, &found))
}

/// `query` narrowed to issues or pull requests, unless it already says
/// which.
fn with_type(query: &str, kind: &str) -> String {
    let lower = query.to_lowercase();
    let says = [
        "is:issue",
        "is:pr",
        "is:pull-request",
        "type:issue",
        "type:pr",
    ]
    .iter()
    .any(|q| lower.contains(q));
    match kind {
        "issue" if !says => format!("{query} is:issue"),
        "pr" if !says => format!("{query} is:pr"),
        _ => query.to_owned(),
    }
}

async fn get_file(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let path = RepoPath::parse(&args.text("path")?.unwrap_or_default())
        .map_err(ToolError::InvalidArguments)?;
    let git_ref = args.git_ref()?;
    let start_line = args.number("start_line")?.unwrap_or(1);
    let contents = api
        .contents(&repo, &path, git_ref.as_deref())
        .await
        .map_err(failed)?;
    match contents {
        Contents::Directory(entries) => Ok(render::directory(
            &repo,
            &path,
            git_ref.as_deref(),
            &entries,
        )),
        Contents::Item(item) if item.kind == "file" || item.kind.is_empty() => {
            Ok(show_file(&repo, &item, git_ref.as_deref(), start_line))
        }
        Contents::Item(item) => Ok(render::special(&repo, &item)),
    }
}

async fn get_readme(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let git_ref = args.git_ref()?;
    let readme = api
        .readme(&repo, git_ref.as_deref())
        .await
        .map_err(failed)?;
    Ok(show_file(&repo, &readme, git_ref.as_deref(), 1))
}

/// A file's window of text, or the sentence saying why it is not shown
/// (binary, too large): that is an answer, not a failed call.
fn show_file(repo: &RepoRef, file: &Content, git_ref: Option<&str>, start_line: u64) -> String {
    match content::decode(file) {
        Ok(text) => {
            let start = usize::try_from(start_line).unwrap_or(usize::MAX);
            let shown = content::window(&text, start, FILE_WINDOW_CHARS);
            render::file(repo, file, git_ref, &shown)
        }
        Err(why) => format!("{repo}: {why}."),
    }
}

async fn list_issues(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let state = args.choice("state", &["open", "closed", "all"], "open")?;
    let labels = args.labels()?;
    let page = args.page(20, 50)?;
    let issues = api
        .issues(&repo, state, &labels, page)
        .await
        .map_err(failed)?;
    Ok(render::issue_list(&repo, state, page, &issues))
}

async fn get_issue(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let number = args.issue_number()?;
    let issue = api.issue(&repo, number).await.map_err(failed)?;
    let comments = if issue.comments == 0 {
        Vec::new()
    } else {
        latest_comments(api, &repo, number, issue.comments).await?
    };
    Ok(render::issue(&repo, &issue, &comments))
}

/// The last comments of an issue with `total` of them: the last page, and
/// the one before when the last is nearly empty.
async fn latest_comments(
    api: &GitHubApi,
    repo: &RepoRef,
    number: u64,
    total: u64,
) -> Result<Vec<Comment>, ToolError> {
    let per_page = COMMENTS_PER_PAGE;
    let last = u32::try_from(total.div_ceil(u64::from(per_page)))
        .unwrap_or(u32::MAX)
        .max(1);
    let mut comments = api
        .issue_comments(
            repo,
            number,
            Page {
                page: last,
                per_page,
            },
        )
        .await
        .map_err(failed)?;
    if comments.len() < MIN_RECENT_COMMENTS && last > 1 {
        let mut earlier = api
            .issue_comments(
                repo,
                number,
                Page {
                    page: last - 1,
                    per_page,
                },
            )
            .await
            .map_err(failed)?;
        earlier.append(&mut comments);
        comments = earlier;
    }
    Ok(comments)
}

async fn list_pull_requests(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let state = args.choice("state", &["open", "closed", "all"], "open")?;
    let page = args.page(20, 50)?;
    let pulls = api.pulls(&repo, state, page).await.map_err(failed)?;
    Ok(render::pull_list(&repo, state, page, &pulls))
}

async fn get_pull_request(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let number = args.issue_number()?;
    let pull = api.pull(&repo, number).await.map_err(failed)?;
    let files = api
        .pull_files(
            &repo,
            number,
            Page {
                page: 1,
                per_page: PULL_FILES,
            },
        )
        .await
        .map_err(failed)?;
    Ok(render::pull(&repo, &pull, &files))
}

async fn list_notifications(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let all = args.flag("all", false)?;
    let participating = args.flag("participating", false)?;
    let page = args.page(20, 50)?;
    let threads = api
        .notifications(all, participating, page)
        .await
        .map_err(failed)?;
    Ok(render::notifications(all, page, &threads))
}

async fn create_issue(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let title = args.required_text("title")?;
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ToolError::InvalidArguments(format!(
            "`title` is longer than GitHub accepts ({MAX_TITLE_CHARS} characters)"
        )));
    }
    let issue = NewIssue {
        title,
        body: args.body("body", MAX_BODY_CHARS)?,
        labels: args.labels()?,
    };
    let created = api.create_issue(&repo, &issue).await.map_err(failed)?;
    Ok(render::created_issue(&repo, &created))
}

async fn add_comment(api: &GitHubApi, args: &Args<'_>) -> Result<String, ToolError> {
    let repo = args.repo()?;
    let number = args.issue_number()?;
    let body = args
        .body("body", MAX_BODY_CHARS)?
        .ok_or_else(|| ToolError::InvalidArguments("`body` is required".into()))?;
    let comment = api
        .create_comment(&repo, number, &body)
        .await
        .map_err(failed)?;
    Ok(render::created_comment(&repo, number, &comment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_narrowed_only_when_it_does_not_say_already() {
        assert_eq!(with_type("crash", "issue"), "crash is:issue");
        assert_eq!(with_type("crash", "pr"), "crash is:pr");
        assert_eq!(with_type("crash is:PR", "issue"), "crash is:PR");
        assert_eq!(with_type("crash", "any"), "crash");
    }
}

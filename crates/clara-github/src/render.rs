//! GitHub's answers as compact text for the model: numbers, titles, states,
//! authors, dates and URLs, one line per item, bodies and comments cut to a
//! budget, and a hint for the next page when there is one.
//!
//! Everything here is pure: the tools fetch, these functions write. The
//! budgets keep a result under the registry's cut (8,000 characters by
//! default), so the model sees an explicit "more" note rather than text
//! chopped mid-line.

use crate::api::Page;
use crate::content::Window;
use crate::names::{RepoPath, RepoRef};
use crate::wire::{
    Comment, Content, Issue, Notification, PullFile, PullRequest, Repository, SearchResults,
};
use std::fmt::Write as _;

/// The most a list's items take, in characters.
const LIST_BUDGET: usize = 6_500;
/// The most of an issue's or pull request's body shown.
const BODY_CHARS: usize = 2_500;
/// The most of one comment shown.
const COMMENT_CHARS: usize = 800;
/// The most all shown comments take together.
const COMMENTS_BUDGET: usize = 3_000;
/// The most a pull request's file list takes.
const FILES_BUDGET: usize = 1_800;
/// GitHub's search gives at most this many results for any query.
const SEARCH_CAP: u64 = 1_000;

/// `/search/repositories`.
pub(crate) fn repositories(query: &str, page: Page, found: &SearchResults<Repository>) -> String {
    let items = found
        .items
        .iter()
        .map(|r| {
            let mut line = format!("- {} ★{}", r.full_name, r.stargazers_count);
            if !r.language.is_empty() {
                let _ = write!(line, " · {}", r.language);
            }
            let _ = write!(
                line,
                " · {} forks · {} open issues · updated {}",
                r.forks_count,
                r.open_issues_count,
                date(&r.updated_at)
            );
            if r.archived {
                line.push_str(" · archived");
            }
            if r.fork {
                line.push_str(" · fork");
            }
            if !r.description.trim().is_empty() {
                let _ = write!(line, "\n  {}", one_line(&r.description, 200));
            }
            let _ = write!(line, "\n  {}", r.html_url);
            line
        })
        .collect();
    let header = search_header("repositories", query, page, found);
    list(header, items, search_more(page, found))
}

/// `/search/issues`: issues and pull requests from any repository.
pub(crate) fn found_issues(query: &str, page: Page, found: &SearchResults<Issue>) -> String {
    let items = found
        .items
        .iter()
        .map(|i| {
            let repo = repo_of(&i.repository_url);
            format!(
                "- {repo}#{} {}\n  {}",
                i.number,
                issue_summary(i),
                i.html_url
            )
        })
        .collect();
    let header = search_header("issues and pull requests", query, page, found);
    list(header, items, search_more(page, found))
}

/// `/repos/{o}/{r}/issues`. GitHub lists pull requests here too; they are
/// marked.
pub(crate) fn issue_list(repo: &RepoRef, state: &str, page: Page, issues: &[Issue]) -> String {
    let items = issues
        .iter()
        .map(|i| format!("- #{} {}", i.number, issue_summary(i)))
        .collect();
    let header = format!(
        "{} issues in {repo} (page {}, {} shown):",
        capitalised(state),
        page.page,
        issues.len()
    );
    list(header, items, list_more(page, issues.len()))
}

/// One issue with the last of its comments (`issue.comments` says how many
/// it has in all).
pub(crate) fn issue(repo: &RepoRef, issue: &Issue, comments: &[Comment]) -> String {
    let kind = if issue.pull_request.is_some() {
        "Pull request"
    } else {
        "Issue"
    };
    let mut out = format!("{repo}#{}: {}\n", issue.number, one_line(&issue.title, 300));
    let _ = write!(out, "{kind} · {}", issue.state);
    if !issue.state_reason.is_empty() {
        let _ = write!(out, " ({})", issue.state_reason.replace('_', " "));
    }
    let _ = write!(
        out,
        " · by {} · opened {} · updated {}",
        login(&issue.user.login),
        moment(&issue.created_at),
        moment(&issue.updated_at)
    );
    if !issue.closed_at.is_empty() {
        let _ = write!(out, " · closed {}", moment(&issue.closed_at));
    }
    out.push('\n');
    if !issue.labels.is_empty() {
        let _ = writeln!(
            out,
            "Labels: {}",
            names(issue.labels.iter().map(|l| &l.name))
        );
    }
    if !issue.assignees.is_empty() {
        let _ = writeln!(
            out,
            "Assignees: {}",
            names(issue.assignees.iter().map(|u| &u.login))
        );
    }
    let _ = writeln!(out, "{}", issue.html_url);
    out.push('\n');
    out.push_str(&body(&issue.body));
    out.push_str(&comment_section(comments, issue.comments));
    out
}

/// `/repos/{o}/{r}/pulls`.
pub(crate) fn pull_list(repo: &RepoRef, state: &str, page: Page, pulls: &[PullRequest]) -> String {
    let items = pulls
        .iter()
        .map(|p| {
            let mut line = format!("- #{} {:?}", p.number, one_line(&p.title, 160));
            let _ = write!(line, " [{}", pull_state(p));
            let _ = write!(
                line,
                "] by {} · {} → {} · updated {}",
                login(&p.user.login),
                head(p),
                p.base.branch,
                date(&p.updated_at)
            );
            if !p.labels.is_empty() {
                let _ = write!(
                    line,
                    " · labels: {}",
                    names(p.labels.iter().map(|l| &l.name))
                );
            }
            line
        })
        .collect();
    let header = format!(
        "{} pull requests in {repo} (page {}, {} shown):",
        capitalised(state),
        page.page,
        pulls.len()
    );
    list(header, items, list_more(page, pulls.len()))
}

/// One pull request with the files it changes (the first `files.len()` of
/// `pull.changed_files`).
pub(crate) fn pull(repo: &RepoRef, pull: &PullRequest, files: &[PullFile]) -> String {
    let mut out = format!("{repo}#{}: {}\n", pull.number, one_line(&pull.title, 300));
    let _ = writeln!(
        out,
        "Pull request · {} · by {} · {} → {} · opened {} · updated {}",
        pull_state(pull),
        login(&pull.user.login),
        head(pull),
        pull.base.branch,
        moment(&pull.created_at),
        moment(&pull.updated_at)
    );
    let mergeable = match (pull.merged, pull.mergeable) {
        (true, _) => String::new(),
        (false, Some(true)) => " · mergeable".into(),
        (false, Some(false)) => " · has conflicts".into(),
        (false, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "+{} −{} in {} · {} · {} · {}{mergeable}",
        pull.additions,
        pull.deletions,
        count(pull.changed_files, "file"),
        count(pull.commits, "commit"),
        count(pull.comments, "comment"),
        count(pull.review_comments, "review comment"),
    );
    if !pull.labels.is_empty() {
        let _ = writeln!(
            out,
            "Labels: {}",
            names(pull.labels.iter().map(|l| &l.name))
        );
    }
    let _ = writeln!(out, "{}", pull.html_url);
    out.push('\n');
    out.push_str(&body(&pull.body));
    if files.is_empty() {
        return out;
    }
    let total = pull.changed_files.max(files.len() as u64);
    let _ = writeln!(out, "\nChanged files ({total}):");
    let mut used = 0;
    for (shown, f) in files.iter().enumerate() {
        let mut line = format!("- {} {}", f.status, f.filename);
        if !f.previous_filename.is_empty() {
            let _ = write!(line, " (from {})", f.previous_filename);
        }
        let _ = writeln!(line, " +{} −{}", f.additions, f.deletions);
        used += line.chars().count();
        if used > FILES_BUDGET {
            let _ = writeln!(out, "… and {} more", total - shown as u64);
            return out;
        }
        out.push_str(&line);
    }
    if total > files.len() as u64 {
        let _ = writeln!(out, "… and {} more", total - files.len() as u64);
    }
    out
}

/// A directory listing from the contents API.
pub(crate) fn directory(
    repo: &RepoRef,
    path: &RepoPath,
    git_ref: Option<&str>,
    entries: &[Content],
) -> String {
    let items = entries
        .iter()
        .map(|e| match e.kind.as_str() {
            "dir" => format!("- {}/", e.name),
            "file" => format!("- {} ({} bytes)", e.name, e.size),
            other => format!("- {} ({other})", e.name),
        })
        .collect();
    let header = format!(
        "{repo}: directory {}{} ({} entries; read a file with get_file and its path):",
        path,
        at_ref(git_ref),
        entries.len()
    );
    list(header, items, None)
}

/// A file (or a README) shown through a [`Window`].
pub(crate) fn file(
    repo: &RepoRef,
    file: &Content,
    git_ref: Option<&str>,
    shown: &Window,
) -> String {
    let mut out = format!(
        "{repo}: {} ({} bytes, {} lines){}\n{}\n",
        file.path,
        file.size,
        shown.total,
        at_ref(git_ref),
        file.html_url
    );
    if shown.text.is_empty() {
        let _ = writeln!(
            out,
            "(nothing from line {}: the file has {} lines)",
            shown.first, shown.total
        );
        return out;
    }
    if !shown.is_whole() {
        let _ = writeln!(
            out,
            "Lines {}–{} of {}:",
            shown.first, shown.last, shown.total
        );
    }
    out.push_str("-----\n");
    out.push_str(&shown.text);
    if !shown.text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("-----\n");
    if shown.last < shown.total {
        let _ = writeln!(
            out,
            "More: call again with start_line={} to read on.",
            shown.last + 1
        );
    }
    out
}

/// A symlink or submodule, which have no content to show.
pub(crate) fn special(repo: &RepoRef, item: &Content) -> String {
    match item.kind.as_str() {
        "symlink" => format!(
            "{repo}: {} is a symlink to {}; read that path instead.",
            item.path, item.target
        ),
        "submodule" => format!(
            "{repo}: {} is a submodule ({}).",
            item.path, item.submodule_git_url
        ),
        other => format!(
            "{repo}: {} is a {other}, which has no content to show.",
            item.path
        ),
    }
}

/// `/notifications`.
pub(crate) fn notifications(all: bool, page: Page, threads: &[Notification]) -> String {
    if threads.is_empty() && page.page == 1 {
        return if all {
            "No notifications.".into()
        } else {
            "No unread notifications.".into()
        };
    }
    let items = threads
        .iter()
        .map(|n| {
            // Only issues and pull requests have numbers people use; a
            // release's or commit's URL ends in an id or a SHA.
            let number = matches!(n.subject.kind.as_str(), "Issue" | "PullRequest")
                .then(|| subject_number(&n.subject.url))
                .flatten()
                .map(|k| format!(" #{k}"))
                .unwrap_or_default();
            let mut line = format!(
                "- {}{} · {}{number} {:?} · {} · {}",
                if n.unread { "[unread] " } else { "" },
                n.repository.full_name,
                kind_words(&n.subject.kind),
                one_line(&n.subject.title, 200),
                n.reason.replace('_', " "),
                date(&n.updated_at)
            );
            if let Some(url) = web_url(&n.subject.url) {
                let _ = write!(line, "\n  {url}");
            }
            line
        })
        .collect();
    let header = format!(
        "{} (page {}, {} shown):",
        if all {
            "Notifications"
        } else {
            "Unread notifications"
        },
        page.page,
        threads.len()
    );
    list(header, items, list_more(page, threads.len()))
}

/// What `create_issue` reports.
pub(crate) fn created_issue(repo: &RepoRef, issue: &Issue) -> String {
    format!(
        "Created issue {repo}#{} {:?}: {}",
        issue.number,
        one_line(&issue.title, 200),
        issue.html_url
    )
}

/// What `add_comment` reports.
pub(crate) fn created_comment(repo: &RepoRef, number: u64, comment: &Comment) -> String {
    format!("Commented on {repo}#{number}: {}", comment.html_url)
}

fn issue_summary(i: &Issue) -> String {
    let mut line = format!(
        "{:?} [{}{}] by {} · {} · updated {}",
        one_line(&i.title, 160),
        i.state,
        if i.pull_request.is_some() {
            ", pull request"
        } else {
            ""
        },
        login(&i.user.login),
        count(i.comments, "comment"),
        date(&i.updated_at)
    );
    if !i.labels.is_empty() {
        let _ = write!(
            line,
            " · labels: {}",
            names(i.labels.iter().map(|l| &l.name))
        );
    }
    line
}

/// The head branch as `owner:branch` (which tells a fork's branch apart),
/// or the bare branch name when GitHub gave no label.
fn head(p: &PullRequest) -> &str {
    if p.head.label.trim().is_empty() {
        &p.head.branch
    } else {
        &p.head.label
    }
}

fn pull_state(p: &PullRequest) -> String {
    if p.merged || !p.merged_at.is_empty() {
        "merged".into()
    } else if p.draft && p.state == "open" {
        "open, draft".into()
    } else {
        p.state.clone()
    }
}

/// The last comments that fit the budget, oldest first.
fn comment_section(comments: &[Comment], total: u64) -> String {
    if comments.is_empty() {
        return if total == 0 {
            "\n(no comments)\n".into()
        } else {
            String::new()
        };
    }
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    for c in comments.iter().rev() {
        let text = format!(
            "--- {}, {}:\n{}\n",
            login(&c.user.login),
            moment(&c.created_at),
            cut(c.body.trim(), COMMENT_CHARS)
        );
        used += text.chars().count();
        if used > COMMENTS_BUDGET && !kept.is_empty() {
            break;
        }
        kept.push(text);
    }
    kept.reverse();
    let total = total.max(comments.len() as u64);
    let heading = if kept.len() as u64 == total {
        format!("\nComments ({total}):\n")
    } else {
        format!("\nComments (the last {} of {total}):\n", kept.len())
    };
    heading + &kept.concat()
}

fn body(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        "(no description)\n".into()
    } else {
        format!("{}\n", cut(text, BODY_CHARS))
    }
}

/// The header line, the items that fit [`LIST_BUDGET`], and a closing note.
fn list(header: String, items: Vec<String>, more: Option<String>) -> String {
    let mut out = header;
    out.push('\n');
    if items.is_empty() {
        out.push_str("(none)\n");
    }
    let mut used = 0;
    let total = items.len();
    for (shown, item) in items.into_iter().enumerate() {
        used += item.chars().count() + 1;
        if used > LIST_BUDGET {
            let _ = writeln!(
                out,
                "… {} more not shown (ask for a smaller limit, or the next page).",
                total - shown
            );
            break;
        }
        out.push_str(&item);
        out.push('\n');
    }
    if let Some(more) = more {
        out.push_str(&more);
        out.push('\n');
    }
    out
}

fn search_header<T>(what: &str, query: &str, page: Page, found: &SearchResults<T>) -> String {
    let mut header = format!(
        "{} {what} match {:?} (page {}, {} shown)",
        found.total_count,
        query,
        page.page,
        found.items.len()
    );
    if found.incomplete_results {
        header.push_str("; GitHub timed out, so the results may be incomplete");
    }
    header.push(':');
    header
}

fn search_more<T>(page: Page, found: &SearchResults<T>) -> Option<String> {
    let seen = u64::from(page.page) * u64::from(page.per_page);
    (seen < found.total_count.min(SEARCH_CAP) && !found.items.is_empty())
        .then(|| format!("More: call again with page={}.", page.page + 1))
}

fn list_more(page: Page, shown: usize) -> Option<String> {
    (shown as u32 >= page.per_page && shown > 0)
        .then(|| format!("More may follow: call again with page={}.", page.page + 1))
}

/// `owner/name` from `https://api.github.com/repos/owner/name`.
fn repo_of(repository_url: &str) -> String {
    let mut parts = repository_url.trim_end_matches('/').rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(name), Some(owner)) => format!("{owner}/{name}"),
        _ => repository_url.to_owned(),
    }
}

/// The issue or pull request number at the end of a notification's API URL.
fn subject_number(api_url: &str) -> Option<&str> {
    let last = api_url.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty() && last.chars().all(|c| c.is_ascii_digit())).then_some(last)
}

/// The web page of a notification's issue or pull request, from its API URL
/// (`…/repos/o/r/issues/5` or `…/pulls/5` → `https://github.com/o/r/issues/5`
/// or `…/pull/5`). Other kinds have no simple mapping and get none.
fn web_url(api_url: &str) -> Option<String> {
    let (_, rest) = api_url.split_once("/repos/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [owner, name, "issues", n] if subject_number(n).is_some() => {
            Some(format!("https://github.com/{owner}/{name}/issues/{n}"))
        }
        [owner, name, "pulls", n] if subject_number(n).is_some() => {
            Some(format!("https://github.com/{owner}/{name}/pull/{n}"))
        }
        _ => None,
    }
}

fn kind_words(kind: &str) -> String {
    match kind {
        "PullRequest" => "pull request".into(),
        "CheckSuite" => "check suite".into(),
        "RepositoryVulnerabilityAlert" => "vulnerability alert".into(),
        "" => "thread".into(),
        other => other.to_lowercase(),
    }
}

fn at_ref(git_ref: Option<&str>) -> String {
    git_ref.map(|r| format!(" at {r}")).unwrap_or_default()
}

fn login(login: &str) -> &str {
    if login.is_empty() { "(unknown)" } else { login }
}

fn names<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `2024-01-02` from `2024-01-02T03:04:05Z`.
fn date(timestamp: &str) -> &str {
    timestamp.get(..10).unwrap_or(timestamp)
}

/// `2024-01-02 03:04 UTC` from `2024-01-02T03:04:05Z`.
fn moment(timestamp: &str) -> String {
    match (timestamp.get(..10), timestamp.get(11..16)) {
        (Some(day), Some(time)) if timestamp.ends_with('Z') => format!("{day} {time} UTC"),
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => timestamp.to_owned(),
    }
}

/// A title-like text on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    cut(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

/// `text` cut to `max` characters, saying how much was left out.
fn cut(text: &str, max: usize) -> String {
    let text = text.replace("\r\n", "\n");
    match text.char_indices().nth(max) {
        Some((at, _)) => {
            let rest = text[at..].chars().count();
            format!("{}… [{rest} more characters]", &text[..at])
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Branch, Label, NotifiedRepository, Subject, User};

    fn repo() -> RepoRef {
        RepoRef::new("octo", "hello").unwrap()
    }

    fn user(login: &str) -> User {
        User {
            login: login.into(),
        }
    }

    fn an_issue(number: u64, title: &str) -> Issue {
        Issue {
            number,
            title: title.into(),
            state: "open".into(),
            user: user("alice"),
            comments: 2,
            created_at: "2024-01-02T03:04:05Z".into(),
            updated_at: "2024-01-03T03:04:05Z".into(),
            html_url: format!("https://github.com/octo/hello/issues/{number}"),
            repository_url: "https://api.github.com/repos/octo/hello".into(),
            labels: vec![Label { name: "bug".into() }],
            ..Issue::default()
        }
    }

    #[test]
    fn search_results_show_totals_items_and_the_next_page() {
        let found = SearchResults {
            total_count: 42,
            incomplete_results: false,
            items: vec![Repository {
                full_name: "octo/hello".into(),
                description: "A  friendly\nrepository".into(),
                html_url: "https://github.com/octo/hello".into(),
                stargazers_count: 80,
                forks_count: 9,
                language: "Rust".into(),
                updated_at: "2024-05-06T07:08:09Z".into(),
                archived: true,
                ..Repository::default()
            }],
        };
        let text = repositories(
            "hello",
            Page {
                page: 1,
                per_page: 1,
            },
            &found,
        );
        assert_eq!(
            text,
            "42 repositories match \"hello\" (page 1, 1 shown):\n\
             - octo/hello ★80 · Rust · 9 forks · 0 open issues · updated 2024-05-06 · archived\n  \
             A friendly repository\n  https://github.com/octo/hello\n\
             More: call again with page=2.\n"
        );
        let issues = SearchResults {
            total_count: 1,
            incomplete_results: true,
            items: vec![an_issue(7, "It breaks")],
        };
        let text = found_issues(
            "breaks",
            Page {
                page: 1,
                per_page: 10,
            },
            &issues,
        );
        assert!(text.contains("may be incomplete"), "{text}");
        assert!(
            text.contains("- octo/hello#7 \"It breaks\" [open] by alice · 2 comments · updated 2024-01-03 · labels: bug"),
            "{text}"
        );
        assert!(!text.contains("More:"), "{text}");
    }

    #[test]
    fn issue_lists_mark_pull_requests_and_offer_the_next_page() {
        let mut pr = an_issue(8, "A fix");
        pr.pull_request = Some(serde::de::IgnoredAny);
        let text = issue_list(
            &repo(),
            "open",
            Page {
                page: 2,
                per_page: 2,
            },
            &[an_issue(7, "Bug"), pr],
        );
        assert!(
            text.starts_with("Open issues in octo/hello (page 2, 2 shown):\n"),
            "{text}"
        );
        assert!(
            text.contains("- #8 \"A fix\" [open, pull request]"),
            "{text}"
        );
        assert!(
            text.ends_with("More may follow: call again with page=3.\n"),
            "{text}"
        );
        let empty = issue_list(
            &repo(),
            "closed",
            Page {
                page: 1,
                per_page: 10,
            },
            &[],
        );
        assert!(
            empty.contains("(none)") && !empty.contains("More"),
            "{empty}"
        );
    }

    #[test]
    fn a_long_list_stops_within_the_budget_and_says_so() {
        let many: Vec<Issue> = (1..=100).map(|n| an_issue(n, &"t".repeat(150))).collect();
        let text = issue_list(
            &repo(),
            "open",
            Page {
                page: 1,
                per_page: 100,
            },
            &many,
        );
        assert!(text.chars().count() < 7_500, "{}", text.len());
        assert!(text.contains("more not shown"), "{text}");
    }

    #[test]
    fn an_issue_shows_its_body_cut_and_its_last_comments() {
        let mut i = an_issue(7, "It breaks");
        i.body = "x".repeat(3_000);
        i.comments = 40;
        i.state = "closed".into();
        i.state_reason = "not_planned".into();
        i.closed_at = "2024-02-01T00:00:00Z".into();
        let comments: Vec<Comment> = (1..=10)
            .map(|n| Comment {
                user: user("bob"),
                body: format!("comment {n} {}", "y".repeat(600)),
                created_at: "2024-01-04T05:06:07Z".into(),
                html_url: String::new(),
            })
            .collect();
        let text = issue(&repo(), &i, &comments);
        assert!(text.starts_with("octo/hello#7: It breaks\nIssue · closed (not planned) · by alice · opened 2024-01-02 03:04 UTC"), "{text}");
        assert!(text.contains("… [500 more characters]"), "{text}");
        assert!(text.contains("Comments (the last 4 of 40):"), "{text}");
        assert!(
            text.contains("comment 10") && !text.contains("comment 6 "),
            "{text}"
        );
        let quiet = issue(
            &repo(),
            &Issue {
                comments: 0,
                ..an_issue(1, "q")
            },
            &[],
        );
        assert!(
            quiet.contains("(no description)") && quiet.contains("(no comments)"),
            "{quiet}"
        );
    }

    #[test]
    fn a_pull_request_shows_branches_counts_and_files() {
        let p = PullRequest {
            number: 5,
            title: "Add it".into(),
            state: "open".into(),
            draft: true,
            mergeable: Some(false),
            user: user("carol"),
            head: Branch {
                branch: "feature".into(),
                label: "carol:feature".into(),
            },
            base: Branch {
                branch: "main".into(),
                label: "octo:main".into(),
            },
            additions: 12,
            deletions: 3,
            changed_files: 3,
            commits: 1,
            html_url: "https://github.com/octo/hello/pull/5".into(),
            ..PullRequest::default()
        };
        let files = vec![
            PullFile {
                filename: "src/new.rs".into(),
                status: "renamed".into(),
                previous_filename: "src/old.rs".into(),
                additions: 2,
                deletions: 1,
            },
            PullFile {
                filename: "README.md".into(),
                status: "modified".into(),
                additions: 10,
                deletions: 2,
                ..PullFile::default()
            },
        ];
        let text = pull(&repo(), &p, &files);
        assert!(
            text.contains("Pull request · open, draft · by carol · carol:feature → main"),
            "{text}"
        );
        assert!(
            text.contains(
                "+12 −3 in 3 files · 1 commit · 0 comments · 0 review comments · has conflicts"
            ),
            "{text}"
        );
        assert!(text.contains("- renamed src/new.rs (from src/old.rs) +2 −1\n- modified README.md +10 −2\n… and 1 more"), "{text}");
        let list = pull_list(
            &repo(),
            "all",
            Page {
                page: 1,
                per_page: 30,
            },
            &[PullRequest {
                merged_at: "2024-01-01T00:00:00Z".into(),
                ..p
            }],
        );
        assert!(
            list.contains("- #5 \"Add it\" [merged] by carol · carol:feature → main"),
            "{list}"
        );
    }

    #[test]
    fn files_directories_and_links_render_with_paging_hints() {
        let f = Content {
            kind: "file".into(),
            path: "src/lib.rs".into(),
            size: 30,
            html_url: "https://github.com/octo/hello/blob/main/src/lib.rs".into(),
            ..Content::default()
        };
        let shown = Window {
            text: "a\nb\n".into(),
            first: 1,
            last: 2,
            total: 5,
        };
        let text = file(&repo(), &f, Some("main"), &shown);
        assert!(
            text.starts_with("octo/hello: src/lib.rs (30 bytes, 5 lines) at main\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "Lines 1–2 of 5:\n-----\na\nb\n-----\nMore: call again with start_line=3"
            ),
            "{text}"
        );
        let entries = vec![
            Content {
                kind: "dir".into(),
                name: "src".into(),
                ..Content::default()
            },
            Content {
                kind: "file".into(),
                name: "Cargo.toml".into(),
                size: 120,
                ..Content::default()
            },
        ];
        let dir = directory(&repo(), &RepoPath::default(), None, &entries);
        assert!(dir.contains("directory / (2 entries"), "{dir}");
        assert!(dir.contains("- src/\n- Cargo.toml (120 bytes)\n"), "{dir}");
        let link = Content {
            kind: "symlink".into(),
            path: "docs".into(),
            target: "book/src".into(),
            ..Content::default()
        };
        assert_eq!(
            special(&repo(), &link),
            "octo/hello: docs is a symlink to book/src; read that path instead."
        );
    }

    #[test]
    fn notifications_name_the_thread_and_link_to_it() {
        let n = Notification {
            unread: true,
            reason: "review_requested".into(),
            updated_at: "2024-03-04T05:06:07Z".into(),
            subject: Subject {
                title: "Add it".into(),
                url: "https://api.github.com/repos/octo/hello/pulls/5".into(),
                kind: "PullRequest".into(),
            },
            repository: NotifiedRepository {
                full_name: "octo/hello".into(),
            },
        };
        let text = notifications(
            false,
            Page {
                page: 1,
                per_page: 50,
            },
            &[n],
        );
        assert!(text.contains("- [unread] octo/hello · pull request #5 \"Add it\" · review requested · 2024-03-04\n  https://github.com/octo/hello/pull/5"), "{text}");
        assert_eq!(
            notifications(
                false,
                Page {
                    page: 1,
                    per_page: 50
                },
                &[]
            ),
            "No unread notifications."
        );
        assert_eq!(web_url("https://api.github.com/repos/o/r/releases/1"), None);
    }

    #[test]
    fn created_things_report_their_link() {
        let i = an_issue(13, "New");
        assert_eq!(
            created_issue(&repo(), &i),
            "Created issue octo/hello#13 \"New\": https://github.com/octo/hello/issues/13"
        );
        let c = Comment {
            html_url: "https://github.com/octo/hello/issues/13#issuecomment-1".into(),
            ..Comment::default()
        };
        assert_eq!(
            created_comment(&repo(), 13, &c),
            "Commented on octo/hello#13: https://github.com/octo/hello/issues/13#issuecomment-1"
        );
    }

    #[test]
    fn cutting_is_safe_on_any_character() {
        assert_eq!(cut("héllo wörld", 4), "héll… [7 more characters]");
        assert_eq!(one_line(" a \n b ", 10), "a b");
        assert_eq!(moment("2024-01-02T03:04:05Z"), "2024-01-02 03:04 UTC");
        assert_eq!(date("x"), "x");
        assert_eq!(repo_of("https://api.github.com/repos/a/b"), "a/b");
    }
}

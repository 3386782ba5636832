//! `clara tools log`: what Clara's tools did, newest first — when, which tool,
//! how it went, who approved or refused it, and its arguments and result, each
//! cut to fit one line. `clara tools grants` / `revoke TOOL`: the owner's
//! standing "always" approvals, and withdrawing them. Read from and written to
//! the store, so they work whether or not a Clara is running (every process
//! reads grants from the store on each call).

use anyhow::{Context, Result};
use clara_core::{ConversationId, MessageId, Permission, ToolRun};
use clara_store::Store;

/// Characters of the arguments shown on a line.
const ARGUMENT_CHARS: usize = 60;

/// Characters of the result shown on a line.
const RESULT_CHARS: usize = 80;

/// `clara tools`.
#[derive(clap::Args, Debug)]
pub struct ToolsCommand {
    #[command(subcommand)]
    action: ToolsAction,
}

#[derive(clap::Subcommand, Debug)]
enum ToolsAction {
    /// Recent tool runs, newest first.
    Log {
        /// Only this conversation's runs (its id, as the web page's API and the
        /// logs show it).
        #[arg(long, value_name = "ID")]
        conversation: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
    },
    /// The owner's standing approvals ("always" for a tool with exact arguments).
    Grants,
    /// Withdraws every standing approval of a tool: it asks again.
    Revoke {
        /// The tool, namespaced (`files__write_file`).
        tool: String,
    },
}

/// Runs `clara tools …` on `store`.
pub async fn run(cmd: ToolsCommand, store: &Store) -> Result<()> {
    match cmd.action {
        ToolsAction::Log {
            conversation,
            limit,
        } => {
            let conversation = conversation
                .map(|id| {
                    id.trim()
                        .parse::<ConversationId>()
                        .ok()
                        .with_context(|| format!("{id:?} is not a conversation id (a uuid)"))
                })
                .transpose()?;
            let runs = store
                .recent_tool_runs(conversation, limit.clamp(1, 10_000))
                .await?;
            print!("{}", format_log(&runs, conversation.is_none()));
            Ok(())
        }
        ToolsAction::Grants => {
            let grants = store.tool_grants().await?;
            if grants.is_empty() {
                println!("No standing approvals.");
            }
            for grant in grants {
                let when = chrono::DateTime::from_timestamp_millis(grant.granted_at_ms)
                    .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string());
                // The arguments are kept only as their hash: the log shows them.
                println!(
                    "{}  arguments {}…  by {}  {when}",
                    grant.tool,
                    grant.arguments_sha256.get(..12).unwrap_or_default(),
                    grant.granted_by
                );
            }
            Ok(())
        }
        ToolsAction::Revoke { tool } => {
            let removed = store.remove_tool_grants(tool.trim()).await?;
            match removed {
                0 => println!("{tool} had no standing approval."),
                1 => println!("Withdrew 1 standing approval of {tool}; it asks again."),
                n => println!("Withdrew {n} standing approvals of {tool}; it asks again."),
            }
            Ok(())
        }
    }
}

/// The log as printed: a header and one line per run, or a sentence when there
/// are none. `with_conversation` adds each run's conversation (when the log
/// spans them all).
pub fn format_log(
    runs: &[(ConversationId, Option<MessageId>, ToolRun)],
    with_conversation: bool,
) -> String {
    if runs.is_empty() {
        return "No tool runs recorded.\n".to_owned();
    }
    let lines: Vec<[String; 5]> = runs
        .iter()
        .map(|(conversation, _, run)| {
            let (outcome, by) = outcome(run);
            let when = chrono::DateTime::from_timestamp_millis(run.started_at_ms).map_or_else(
                || run.started_at_ms.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            );
            let what = format!(
                "{} → {}",
                one_line(&run.arguments, ARGUMENT_CHARS),
                one_line(&run.result, RESULT_CHARS)
            );
            let name = if with_conversation {
                format!("{}  {}", short(conversation), run.name)
            } else {
                run.name.clone()
            };
            [when, name, outcome.to_owned(), by, what]
        })
        .collect();
    let header = [
        "TIME (UTC)".to_owned(),
        if with_conversation {
            "CONV      TOOL".to_owned()
        } else {
            "TOOL".to_owned()
        },
        "OUTCOME".to_owned(),
        "BY".to_owned(),
        "ARGUMENTS → RESULT".to_owned(),
    ];
    let mut widths = [0usize; 4];
    for line in std::iter::once(&header).chain(&lines) {
        for (w, cell) in widths.iter_mut().zip(line.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        for (cell, w) in line.iter().zip(widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        out.push_str(&line[4]);
        out.push('\n');
    }
    out
}

/// How a run went, and who let it run (or refused it).
fn outcome(run: &ToolRun) -> (&'static str, String) {
    match &run.permission {
        Permission::Refused { reason } => ("refused", one_line(reason, 40)),
        Permission::Policy => (if run.ok { "ok" } else { "failed" }, "policy".to_owned()),
        Permission::Owner { owner, always } => (
            if run.ok { "ok" } else { "failed" },
            if *always {
                format!("{owner} (always)")
            } else {
                owner.clone()
            },
        ),
    }
}

/// `text` on one line (whitespace runs become one space), cut to `max`
/// characters with `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

/// The first eight characters of a conversation id: enough to tell them apart.
fn short(conversation: &ConversationId) -> String {
    conversation.to_string().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, result: &str, ok: bool, permission: Permission) -> ToolRun {
        ToolRun {
            call_id: "c".into(),
            name: name.into(),
            arguments: "{\n  \"message\": \"hi\"\n}".into(),
            result: result.into(),
            ok,
            permission,
            // 2026-01-02 03:04:05 UTC
            started_at_ms: 1_767_323_045_000,
            duration_ms: 5,
        }
    }

    #[test]
    fn each_run_is_one_aligned_line() {
        let conversation = ConversationId::new();
        let runs = vec![
            (
                conversation,
                None,
                run(
                    "everything__echo",
                    "Echo: hi\nand more",
                    true,
                    Permission::Owner {
                        owner: "telegram:1".into(),
                        always: true,
                    },
                ),
            ),
            (
                conversation,
                None,
                run(
                    "shell__exec",
                    "",
                    false,
                    Permission::Refused {
                        reason: "the owner said no".into(),
                    },
                ),
            ),
            (
                conversation,
                None,
                run("clara__current_time", "x", false, Permission::Policy),
            ),
        ];
        let log = format_log(&runs, false);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 4, "{log}");
        assert_eq!(
            lines[1],
            "2026-01-02 03:04:05  everything__echo     ok       telegram:1 (always)  \
             { \"message\": \"hi\" } → Echo: hi and more"
        );
        assert!(
            lines[2].contains("shell__exec          refused  the owner said no"),
            "{log}"
        );
        assert!(lines[3].contains("failed   policy"), "{log}");
        // Every line's last column starts at the same place.
        let at = lines[0].find("ARGUMENTS").unwrap();
        for line in &lines[1..] {
            assert_eq!(line.find('{'), Some(at), "{log}");
        }
        let spanning = format_log(&runs[..1], true);
        assert!(
            spanning.contains(&format!("{}  everything__echo", short(&conversation))),
            "{spanning}"
        );
    }

    #[test]
    fn long_results_are_cut_and_an_empty_log_says_so() {
        let long = "word ".repeat(100);
        let runs = vec![(
            ConversationId::new(),
            None,
            run("a__b", &long, true, Permission::Policy),
        )];
        let log = format_log(&runs, false);
        let line = log.lines().nth(1).unwrap();
        assert!(line.ends_with('…'), "{line}");
        assert!(line.chars().count() < 200, "{line}");
        assert_eq!(format_log(&[], true), "No tool runs recorded.\n");
    }
}

//! `clara memory …`: an operator looks at, adds to, corrects and moves what Clara
//! remembers, and measures how well recall finds it.
//!
//! Every command names its scope with `--user` (a user id, or
//! `platform:platform_user_id` such as `cli:alice`) or `--project NAME`. People are
//! looked up, never created: a typo must not become a new person. Only the
//! commands that turn text into vectors (`add`, `search`, `import`, `share`,
//! `unshare`, `eval`) load the embedder; the others work without its files. None
//! needs a chat model.

use crate::memory::{MemoryChoice, load_embedder};
use crate::settings::Resolved;
use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use clara_core::{ChannelKind, MemoryId, MemoryKind, ProjectId, Scope, UserId};
use clara_llm::embed::{EmbedError, Embedder, EmbeddingModel};
use clara_memory::eval;
use clara_memory::rank::RankConfig;
use clara_memory::{ExportedMemory, Origin, Rook, RookConfig};
use clara_runtime::clock::now_ms;
use clara_store::{HistoryRecord, MemoryEvent, MemoryFilter, MemoryRecord, Provenance, Store};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The actor recorded in a memory's history for changes made here.
const ACTOR: &str = "operator";

/// `clara memory`.
#[derive(clap::Args, Debug)]
pub struct MemoryArgs {
    #[command(subcommand)]
    command: MemoryCommand,
}

/// Which memories: one person's, or one project's.
#[derive(clap::Args, Debug, Default, Clone)]
struct ScopeArgs {
    /// The person: their user id, or platform:platform_user_id (e.g. cli:alice).
    #[arg(long, value_name = "USER", conflicts_with = "project")]
    user: Option<String>,
    /// The project, by name (or by id, for imported memories of a project not here).
    #[arg(long, value_name = "NAME")]
    project: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum MemoryCommand {
    /// List the memories of a scope, most recently changed first.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Include forgotten memories.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Search a scope's memories by meaning and words, best first.
    Search {
        /// What to look for.
        text: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: usize,
        /// Include private (direct-message) memories; `--include-private false`
        /// shows what a group would be told.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
        include_private: bool,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remember something in a scope.
    Add {
        /// What to remember.
        text: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// fact, preference, event or instruction.
        #[arg(long, value_name = "KIND", default_value = "fact", value_parser = parse_kind)]
        kind: MemoryKind,
        /// May be recalled in group conversations too (project memories always are).
        #[arg(long)]
        shareable: bool,
        /// Print the new memory as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a memory: it is no longer recalled, but its history stays.
    Forget {
        /// The memory's id.
        id: String,
        /// Check that it belongs to this scope first.
        #[command(flatten)]
        scope: ScopeArgs,
        /// Why, recorded in its history.
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Erase it and its history for good instead.
        #[arg(long)]
        purge: bool,
    },
    /// Everything that happened to a memory, oldest first.
    History {
        /// The memory's id.
        id: String,
        /// Check that it belongs to this scope first.
        #[command(flatten)]
        scope: ScopeArgs,
        /// JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Let a memory be recalled in group conversations.
    Share {
        /// The memory's id.
        id: String,
        /// Check that it belongs to this scope first.
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Recall a memory only in its owner's direct messages again.
    Unshare {
        /// The memory's id.
        id: String,
        /// Check that it belongs to this scope first.
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Write a scope's memories as JSON lines (one memory per line).
    Export {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The file to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read memories written by `export`; ids already present are skipped.
    Import {
        /// The JSON-lines file (`-` for standard input).
        file: PathBuf,
        /// Import into this scope instead of each memory's own.
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Measure recall (recall@k, MRR, latency) on a corpus and queries.
    Eval {
        /// Memories, one JSON object per line: {"id", "scope", "text", …}.
        #[arg(long, value_name = "FILE")]
        corpus: PathBuf,
        /// Queries, one JSON object per line: {"scope", "text", "relevant": [ids]}.
        #[arg(long, value_name = "FILE")]
        queries: PathBuf,
        /// The cut-offs to report, e.g. 1,5,10.
        #[arg(
            long,
            value_name = "K,…",
            value_delimiter = ',',
            default_value = "1,5,10"
        )]
        k: Vec<usize>,
    },
}

fn parse_kind(s: &str) -> Result<MemoryKind, String> {
    MemoryKind::parse(s).ok_or_else(|| {
        format!("{s:?} is not a kind; expected fact, preference, event or instruction")
    })
}

impl MemoryCommand {
    /// Whether the command turns text into vectors, and so needs the embedder.
    fn embeds(&self) -> bool {
        matches!(
            self,
            Self::Search { .. }
                | Self::Add { .. }
                | Self::Import { .. }
                | Self::Share { .. }
                | Self::Unshare { .. }
                | Self::Eval { .. }
        )
    }
}

/// Runs one `clara memory` command.
pub async fn run(resolved: &Resolved, args: MemoryArgs) -> Result<ExitCode> {
    let command = args.command;
    if let MemoryCommand::Eval { corpus, queries, k } = &command {
        return eval(&resolved.memory, corpus, queries, k).await;
    }
    let store = resolved.open_store().await?;
    let result = async {
        let rook = open_rook(&resolved.memory, &store, command.embeds()).await?;
        execute(&rook, command).await
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Rook over the store. Commands that embed nothing get a stand-in embedder, so
/// they work without the model files and without loading every vector.
async fn open_rook(choice: &MemoryChoice, store: &Store, embeds: bool) -> Result<Rook> {
    let embedder: Arc<dyn Embedder> = if embeds {
        load_embedder(&choice.embedder).await?
    } else {
        Arc::new(NoEmbedder {
            model: EmbeddingModel {
                name: "clara-cli/none".to_owned(),
                dim: 0,
            },
        })
    };
    // The operator's Rook never learns from conversations: no chat model.
    let choice = MemoryChoice {
        rook: RookConfig {
            model: None,
            ..choice.rook.clone()
        },
        ..choice.clone()
    };
    crate::memory::open_rook(&choice, store, embedder, None).await
}

/// An embedder for commands that never embed: it holds no vectors and refuses work.
struct NoEmbedder {
    model: EmbeddingModel,
}

#[async_trait]
impl Embedder for NoEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Err(EmbedError::Load(
            "this command does not load the embedding model".to_owned(),
        ))
    }
}

async fn execute(rook: &Rook, command: MemoryCommand) -> Result<()> {
    let store = rook.store();
    match command {
        MemoryCommand::List {
            scope,
            all,
            limit,
            json,
        } => {
            let (scope, _) = require_scope(store, &scope, false).await?;
            let filter = MemoryFilter {
                include_forgotten: all,
                limit,
            };
            let memories = rook.list(scope, filter).await?;
            if json {
                print_json(&memories.iter().map(MemoryJson::from).collect::<Vec<_>>())?;
            } else if memories.is_empty() {
                println!("No memories.");
            } else {
                print_memories(&memories, None);
            }
        }
        MemoryCommand::Search {
            text,
            scope,
            limit,
            include_private,
            json,
        } => {
            let (scope, _) = require_scope(store, &scope, false).await?;
            // The operator wants the best `limit`, not what fits a prompt.
            let rank = RankConfig::default().uncapped(limit.max(1));
            let found = rook.search(&[scope], include_private, &text, &rank).await?;
            if json {
                let rows: Vec<MemoryJson> = found
                    .iter()
                    .map(|r| MemoryJson {
                        score: Some(r.score),
                        ..MemoryJson::from(&r.memory)
                    })
                    .collect();
                print_json(&rows)?;
            } else if found.is_empty() {
                println!("Nothing found.");
            } else {
                let memories: Vec<MemoryRecord> = found.iter().map(|r| r.memory.clone()).collect();
                let scores: Vec<f32> = found.iter().map(|r| r.score).collect();
                print_memories(&memories, Some(&scores));
            }
        }
        MemoryCommand::Add {
            text,
            scope,
            kind,
            shareable,
            json,
        } => {
            if text.trim().is_empty() {
                bail!("there is nothing to remember: the text is empty");
            }
            let (scope, _) = require_scope(store, &scope, true).await?;
            let at_ms = now_ms();
            let origin = Origin {
                user: match scope {
                    Scope::User(user) => user,
                    // A project memory is nobody's; the origin's person is unused.
                    Scope::Project(_) => UserId(uuid::Uuid::nil()),
                },
                person: ACTOR.to_owned(),
                project: match scope {
                    Scope::Project(p) => Some(p),
                    Scope::User(_) => None,
                },
                channel: ChannelKind::Direct,
                conversation: None,
                message: None,
                at_ms,
            };
            let mut memory = rook
                .remember(
                    scope,
                    kind,
                    &text,
                    &origin,
                    ACTOR,
                    "added with clara memory add",
                )
                .await?;
            if shareable && !memory.shareable {
                memory = rook
                    .set_shareable(memory.id, true, &why("shared with clara memory add", at_ms))
                    .await?;
            }
            if json {
                print_json(&MemoryJson::from(&memory))?;
            } else {
                println!(
                    "Remembered {} ({}, {}).",
                    memory.id,
                    memory.kind,
                    visibility(&memory)
                );
            }
        }
        MemoryCommand::Forget {
            id,
            scope,
            reason,
            purge,
        } => {
            let memory = existing(rook, &id, &scope).await?;
            if purge {
                rook.purge(memory.id).await?;
                println!("Erased {} and its history.", memory.id);
            } else {
                if memory.forgotten_at_ms.is_some() {
                    bail!(
                        "memory {} is already forgotten (use --purge to erase it for good)",
                        memory.id
                    );
                }
                let reason = reason
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "forgotten with clara memory forget".to_owned());
                rook.forget(memory.id, &why(&reason, now_ms())).await?;
                println!("Forgot {}.", memory.id);
            }
        }
        MemoryCommand::History { id, scope, json } => {
            let memory = existing(rook, &id, &scope).await?;
            let history = rook.history(memory.id).await?;
            if json {
                print_json(&history.iter().map(HistoryJson::from).collect::<Vec<_>>())?;
            } else {
                print_history(&memory, &history);
            }
        }
        MemoryCommand::Share { id, scope } => share(rook, &id, &scope, true).await?,
        MemoryCommand::Unshare { id, scope } => share(rook, &id, &scope, false).await?,
        MemoryCommand::Export { scope, out } => {
            let (scope, _) = require_scope(store, &scope, false).await?;
            let memories = rook.export(scope).await?;
            let mut text = String::new();
            for m in &memories {
                text.push_str(&serde_json::to_string(m)?);
                text.push('\n');
            }
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!(
                        "Exported {} memories to {}.",
                        memories.len(),
                        path.display()
                    );
                }
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
        }
        MemoryCommand::Import { file, scope } => {
            let memories = read_export(&file)?;
            let into = if scope.user.is_some() || scope.project.is_some() {
                Some(require_scope(store, &scope, true).await?.0)
            } else {
                // Each line's own scope: checked before anything is written.
                for (i, m) in memories.iter().enumerate() {
                    if m.scope.parse::<Scope>().is_err() {
                        bail!(
                            "{} line {}: {:?} is not a memory scope; expected user:<uuid> or project:<uuid>, or import with --user/--project",
                            file.display(),
                            i + 1,
                            m.scope
                        );
                    }
                }
                None
            };
            let added = rook.import(&memories, into, now_ms()).await?;
            println!(
                "Imported {added} of {} memories ({} already present).",
                memories.len(),
                memories.len() - added
            );
        }
        // Handled before the store is opened.
        MemoryCommand::Eval { .. } => {}
    }
    Ok(())
}

/// `share` / `unshare`.
async fn share(rook: &Rook, id: &str, scope: &ScopeArgs, shareable: bool) -> Result<()> {
    let memory = existing(rook, id, scope).await?;
    if memory.forgotten_at_ms.is_some() {
        bail!("memory {} is forgotten, so it is never recalled", memory.id);
    }
    if matches!(memory.scope, Scope::Project(_)) && !shareable {
        bail!(
            "memory {} belongs to a project, whose memories are always shared with its members",
            memory.id
        );
    }
    let reason = if shareable {
        "shared with clara memory share"
    } else {
        "made private with clara memory unshare"
    };
    let memory = rook
        .set_shareable(memory.id, shareable, &why(reason, now_ms()))
        .await?;
    if memory.shareable {
        println!(
            "{} is now shareable: it may be recalled in groups.",
            memory.id
        );
    } else {
        println!(
            "{} is now private: it is recalled only in direct messages.",
            memory.id
        );
    }
    Ok(())
}

fn why(reason: &str, at_ms: i64) -> Provenance {
    Provenance {
        reason: reason.to_owned(),
        actor: ACTOR.to_owned(),
        conversation: None,
        message: None,
        at_ms,
    }
}

/// The scope the flags name: exactly one of `--user` / `--project`. With
/// `create_project`, a project that does not exist yet is created (adding to a
/// project is how it starts); people are never created.
async fn require_scope(
    store: &Store,
    args: &ScopeArgs,
    create_project: bool,
) -> Result<(Scope, String)> {
    match (&args.user, &args.project) {
        (Some(user), None) => Ok((
            Scope::User(find_user(store, user).await?),
            format!("user {user}"),
        )),
        (None, Some(name)) => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--project needs a project name");
            }
            let label = format!("project {name:?}");
            if let Some(p) = store.project_by_name(name).await? {
                return Ok((Scope::Project(p.id), label));
            }
            // Imported project memories may arrive without their project: its id
            // reaches them.
            if let Ok(id) = name.parse::<ProjectId>() {
                let scope = Scope::Project(id);
                if store.project(id).await?.is_some()
                    || store.count_memories(Some(scope)).await? > 0
                {
                    return Ok((scope, label));
                }
            }
            if !create_project {
                bail!("there is no project named {name:?}");
            }
            let project = store.ensure_project(name, now_ms()).await?;
            Ok((Scope::Project(project.id), label))
        }
        _ => bail!(
            "say whose memories: --user ID (or platform:user, e.g. cli:alice) or --project NAME"
        ),
    }
}

/// A user by id, or by `platform:platform_user_id`. An id is accepted when the
/// person is known or has memories (imported memories may outlive the person).
pub(crate) async fn find_user(store: &Store, given: &str) -> Result<UserId> {
    let given = given.trim();
    if let Ok(user) = given.parse::<UserId>() {
        let known = store.user_display_name(user).await?.is_some()
            || store.count_memories(Some(Scope::User(user))).await? > 0;
        if !known {
            bail!("there is no user {user}");
        }
        return Ok(user);
    }
    let Some((platform, id)) = given
        .split_once(':')
        .filter(|(p, id)| !p.is_empty() && !id.is_empty())
    else {
        bail!(
            "--user {given:?} is neither a user id nor platform:platform_user_id (e.g. cli:alice)"
        );
    };
    match store.find_user(platform, id).await? {
        Some(user) => Ok(user),
        None => bail!("there is no user {id:?} on {platform:?} (Clara has not talked with them)"),
    }
}

/// The memory with this id (remembered or forgotten), in the flags' scope if given.
async fn existing(rook: &Rook, id: &str, scope: &ScopeArgs) -> Result<MemoryRecord> {
    let id: MemoryId = id.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "{id:?} is not a memory id; ids look like the ones `clara memory list` shows"
        )
    })?;
    let Some(memory) = rook.memory(id).await? else {
        bail!("there is no memory {id}");
    };
    if scope.user.is_some() || scope.project.is_some() {
        let (expected, label) = require_scope(rook.store(), scope, false).await?;
        if memory.scope != expected {
            bail!("memory {id} does not belong to {label}");
        }
    }
    Ok(memory)
}

fn read_export(file: &Path) -> Result<Vec<ExportedMemory>> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "{} line {} is not an exported memory: {e}",
                    file.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// A memory as `--json` prints it.
#[derive(Serialize)]
struct MemoryJson {
    id: MemoryId,
    scope: String,
    kind: MemoryKind,
    text: String,
    origin: &'static str,
    shareable: bool,
    happened_at_ms: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    forgotten_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
}

impl From<&MemoryRecord> for MemoryJson {
    fn from(m: &MemoryRecord) -> Self {
        Self {
            id: m.id,
            scope: m.scope.to_string(),
            kind: m.kind,
            text: m.text.clone(),
            origin: m.origin.as_str(),
            shareable: m.shareable,
            happened_at_ms: m.happened_at_ms,
            created_at_ms: m.created_at_ms,
            updated_at_ms: m.updated_at_ms,
            forgotten_at_ms: m.forgotten_at_ms,
            score: None,
        }
    }
}

/// A history entry as `--json` prints it.
#[derive(Serialize)]
struct HistoryJson {
    event: &'static str,
    old_text: Option<String>,
    new_text: Option<String>,
    reason: String,
    actor: String,
    conversation: Option<String>,
    message: Option<String>,
    at_ms: i64,
}

impl From<&HistoryRecord> for HistoryJson {
    fn from(h: &HistoryRecord) -> Self {
        Self {
            event: h.event.as_str(),
            old_text: h.old_text.clone(),
            new_text: h.new_text.clone(),
            reason: h.reason.clone(),
            actor: h.actor.clone(),
            conversation: h.conversation.map(|c| c.to_string()),
            message: h.message.map(|m| m.to_string()),
            at_ms: h.at_ms,
        }
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn visibility(m: &MemoryRecord) -> &'static str {
    if m.shareable { "shareable" } else { "private" }
}

/// The terminal's width (`COLUMNS`), else a width most terminals have.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&c: &usize| c >= 40)
        .unwrap_or(120)
}

/// `text` on one line, cut to `width` characters with an ellipsis.
fn one_line(text: &str, width: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `2026-11-30 05:13` (UTC).
fn minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `2026-11-30 05:13:22` (UTC).
fn second(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// A table of memories; with `scores`, a score column leads.
fn print_memories(memories: &[MemoryRecord], scores: Option<&[f32]>) {
    let lead = if scores.is_some() { 7 } else { 0 };
    // id 36, kind 11, shared 6, updated 16 (UTC), and two spaces between columns.
    let text_width = terminal_width()
        .saturating_sub(lead + 36 + 11 + 6 + 16 + 8)
        .max(24);
    let mut out = String::new();
    if scores.is_some() {
        out.push_str(&format!("{:<7}", "SCORE"));
    }
    out.push_str(&format!(
        "{:<36}  {:<11}  {:<6}  {:<16}  TEXT\n",
        "ID", "KIND", "SHARED", "UPDATED (UTC)"
    ));
    for (i, m) in memories.iter().enumerate() {
        if let Some(scores) = scores {
            out.push_str(&format!("{:<7.3}", scores.get(i).copied().unwrap_or(0.0)));
        }
        let text = match m.forgotten_at_ms {
            Some(_) => format!("(forgotten) {}", m.text),
            None => m.text.clone(),
        };
        out.push_str(&format!(
            "{:<36}  {:<11}  {:<6}  {:<16}  {}\n",
            m.id.to_string(),
            m.kind.as_str(),
            if m.shareable { "yes" } else { "no" },
            minute(m.updated_at_ms),
            one_line(&text, text_width)
        ));
    }
    print!("{out}");
}

/// A memory's history, one block per change, texts in full.
fn print_history(memory: &MemoryRecord, history: &[HistoryRecord]) {
    println!(
        "{} ({}, {}, {}{})",
        memory.id,
        memory.kind,
        memory.scope,
        visibility(memory),
        if memory.forgotten_at_ms.is_some() {
            ", forgotten"
        } else {
            ""
        }
    );
    for h in history {
        println!(
            "{} UTC  {:<7}  by {}: {}",
            second(h.at_ms),
            h.event.as_str(),
            h.actor,
            h.reason
        );
        match h.event {
            MemoryEvent::Update => {
                if let Some(old) = &h.old_text {
                    println!("    - {old}");
                }
                if let Some(new) = &h.new_text {
                    println!("    + {new}");
                }
            }
            MemoryEvent::Forget => {
                if let Some(old) = &h.old_text {
                    println!("    - {old}");
                }
            }
            MemoryEvent::Add => {
                if let Some(new) = &h.new_text {
                    println!("    + {new}");
                }
            }
            MemoryEvent::Share | MemoryEvent::Unshare => {}
        }
    }
}

/// `clara memory eval`: the configured embedder and ranking against a corpus and
/// its queries, without touching the store.
async fn eval(
    choice: &MemoryChoice,
    corpus: &Path,
    queries: &Path,
    ks: &[usize],
) -> Result<ExitCode> {
    if ks.is_empty() || ks.contains(&0) {
        bail!("--k needs cut-offs of at least 1, e.g. --k 1,5,10");
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let corpus = eval::parse_corpus(&read(corpus)?)?;
    let queries = eval::parse_queries(&read(queries)?, &corpus)?;
    let embedder = load_embedder(&choice.embedder).await?;
    let mut ks = ks.to_vec();
    ks.sort_unstable();
    ks.dedup();
    let options = eval::EvalOptions {
        ks,
        config: choice.rook.rank,
        ..eval::EvalOptions::default()
    };
    let report = eval::run(&corpus, &queries, embedder, &options).await?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

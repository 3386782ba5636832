//! `code__python` and `code__shell`: one run in the sandbox, its output
//! streamed to the person, its report for the model.

use super::{blocking, sandboxed_unless, string_arg, user_of};
use crate::output::{Collector, Throttle, exit_line};
use crate::run::{Limits, Output, RunSpec, Sandbox};
use crate::workspace::{Changes, RunFiles, Workspaces, human_size};
use async_trait::async_trait;
use clara_tools::{Tool, ToolContext, ToolError, ToolSideband, ToolTraits};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// How the code tools run.
#[derive(Clone, Debug)]
pub struct CodeConfig {
    /// The limits of every run.
    pub limits: Limits,
    /// Whether runs may reach the network (the owner's setting).
    pub network: bool,
    /// About how many characters of output the model reads.
    pub max_output_chars: usize,
    /// The Python libraries available besides the standard library, named
    /// in the tools' descriptions: those of the read-only environment, none
    /// (`Some(vec![])`), or `None` when Clara cannot know (a Docker image of
    /// the owner's choice).
    pub python_libraries: Option<Vec<String>>,
    /// How many runs' logs and scripts a workspace keeps in `.clara/runs/`.
    pub keep_runs: usize,
    /// The least time between two live updates to the person.
    pub progress_interval: Duration,
    /// The most bytes of output a run's log keeps.
    pub max_log_bytes: u64,
}

impl Default for CodeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            network: false,
            max_output_chars: 8_000,
            python_libraries: Some(Vec::new()),
            keep_runs: 100,
            progress_interval: Duration::from_secs(1),
            max_log_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Time a call may take beyond the run's wall limit: starting, reading the
/// workspace before and after.
const CALL_MARGIN: Duration = Duration::from_secs(30);

/// How long output may still arrive after the run ended.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// The most changed files named in a report.
const MAX_NAMED_FILES: usize = 20;

/// What runs the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// A Python program, `python3 <file>`.
    Python,
    /// A shell command, `sh -c <command>`.
    Shell,
}

/// What the code tools share.
pub(super) struct Shared {
    sandbox: Arc<dyn Sandbox>,
    workspaces: Workspaces,
    config: CodeConfig,
}

impl Shared {
    pub(super) fn new(
        sandbox: Arc<dyn Sandbox>,
        workspaces: Workspaces,
        config: CodeConfig,
    ) -> Self {
        Self {
            sandbox,
            workspaces,
            config,
        }
    }
}

/// `code__python` or `code__shell`.
pub struct CodeTool {
    language: Language,
    shared: Arc<Shared>,
    description: String,
}

impl CodeTool {
    pub(super) fn new(language: Language, shared: Arc<Shared>) -> Self {
        let description = describe(language, &shared.config);
        Self {
            language,
            shared,
            description,
        }
    }
}

/// The description the model reads.
fn describe(language: Language, config: &CodeConfig) -> String {
    let what = match language {
        Language::Python => {
            "Runs a Python 3 program in the person's sandbox and returns how it ended, its output (head and tail when long) and the files it created or changed."
        }
        Language::Shell => {
            "Runs a shell command (`sh -c`) in the person's sandbox and returns how it ended, its output (head and tail when long) and the files it created or changed. The system's usual command-line tools are there."
        }
    };
    let network = if config.network {
        "The sandbox can reach the network."
    } else {
        "The sandbox has no network: nothing can be downloaded or installed."
    };
    let libraries = match &config.python_libraries {
        Some(names) if names.is_empty() => "Python has only its standard library.".to_owned(),
        Some(names) => format!("Python has {} and its standard library.", names.join(", ")),
        None => "Check which Python libraries are installed before relying on one.".to_owned(),
    };
    let limits = &config.limits;
    format!(
        "{what} {network} It sees only the person's workspace, /workspace: the working directory, kept between runs, with the files the person sent in /workspace/uploads. /tmp is fresh each run. {libraries} Save charts and results as files in /workspace (for example plt.savefig('chart.png')), then send them with files__send_file. Limits: {} seconds, {} MiB of memory.",
        limits.wall.as_secs(),
        limits.memory_bytes / (1024 * 1024),
    )
}

#[async_trait]
impl Tool for CodeTool {
    fn name(&self) -> &str {
        match self.language {
            Language::Python => "python",
            Language::Shell => "shell",
        }
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> serde_json::Value {
        match self.language {
            Language::Python => serde_json::json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The Python program."}
                },
                "required": ["code"]
            }),
            Language::Shell => serde_json::json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command."}
                },
                "required": ["command"]
            }),
        }
    }

    fn traits(&self) -> ToolTraits {
        let network = self.shared.config.network;
        ToolTraits {
            effect: sandboxed_unless(network),
            // With the network on, output can carry anything from outside.
            untrusted_output: network,
            definition_sha256: None,
        }
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.shared.config.limits.wall + CALL_MARGIN)
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError> {
        let user = user_of(context)?;
        let source = match self.language {
            Language::Python => string_arg(&arguments, "code")?,
            Language::Shell => string_arg(&arguments, "command")?,
        };
        if source.trim().is_empty() {
            return Err(ToolError::InvalidArguments(
                "there is nothing to run".to_owned(),
            ));
        }
        let shared = &self.shared;
        let config = &shared.config;

        let workspaces = shared.workspaces.clone();
        let script = match self.language {
            Language::Python => Some(source.as_bytes().to_vec()),
            Language::Shell => None,
        };
        let keep = config.keep_runs;
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let (dir, before, run) = blocking(move || {
            let dir = workspaces.dir_for(&user)?;
            workspaces.prune_runs(&user, keep.saturating_sub(1))?;
            let before = workspaces.snapshot(&user)?;
            let run = workspaces.create_run(&user, &stamp, script.as_deref().map(|s| ("py", s)))?;
            Ok((dir, before, run))
        })
        .await?;
        let RunFiles {
            log,
            log_path,
            script_path,
            ..
        } = run;

        let argv = match (self.language, script_path) {
            (Language::Python, Some(script)) => vec!["python3".to_owned(), script],
            _ => vec!["sh".to_owned(), "-c".to_owned(), source.to_owned()],
        };
        let spec = RunSpec {
            argv,
            stdin: None,
            workspace: dir,
            env: run_env(),
            limits: config.limits,
            network: config.network,
        };
        let (sender, receiver) = mpsc::channel(256);
        let watch = Watch {
            collector: Collector::new(config.max_output_chars),
            throttle: Throttle::new(config.progress_interval),
            log: tokio::fs::File::from_std(log),
            log_bytes: 0,
            max_log_bytes: config.max_log_bytes,
            sideband: context.sideband.clone(),
        };
        let (ended, ended_signal) = tokio::sync::oneshot::channel();
        let run = async {
            let end = shared.sandbox.run(spec, sender).await;
            let _ = ended.send(());
            end
        };
        let (end, watch) = tokio::join!(
            run,
            watch.follow(receiver, config.progress_interval, ended_signal)
        );
        let end = end
            .map_err(|error| ToolError::Failed(format!("The sandbox could not run it: {error}")))?;

        let workspaces = shared.workspaces.clone();
        let changes =
            blocking(move || Ok(workspaces.snapshot(&user)?.changes_since(&before))).await;
        let mut report = format!(
            "{}\n{}",
            exit_line(&end, &config.limits),
            watch.collector.text(&log_path)
        );
        match changes {
            Ok(changes) => report.push_str(&describe_changes(&changes)),
            Err(error) => report.push_str(&format!("\n(The files could not be compared: {error})")),
        }
        Ok(report)
    }
}

/// The environment of every run, besides the backend's own.
fn run_env() -> Vec<(String, String)> {
    [
        ("MPLBACKEND", "Agg"),
        // Kept in the workspace, so matplotlib builds its font cache once.
        ("MPLCONFIGDIR", "/workspace/.clara/matplotlib"),
        ("XDG_CACHE_HOME", "/workspace/.clara/cache"),
        ("PYTHONUNBUFFERED", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// What follows a run's output while it runs.
struct Watch {
    collector: Collector,
    throttle: Throttle,
    log: tokio::fs::File,
    log_bytes: u64,
    max_log_bytes: u64,
    sideband: Option<ToolSideband>,
}

impl Watch {
    /// Reads output until the channel closes, writing the log and showing
    /// the live text at most once per `interval`. Once `ended` says the run
    /// is over, output still on its way gets [`DRAIN_GRACE`]: a backend
    /// whose output stream outlives its run cannot hold the call.
    async fn follow(
        mut self,
        mut receiver: mpsc::Receiver<Output>,
        interval: Duration,
        mut ended: tokio::sync::oneshot::Receiver<()>,
    ) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ending = false;
        let grace = tokio::time::sleep(DRAIN_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                chunk = receiver.recv() => match chunk {
                    Some(chunk) => self.take(&chunk).await,
                    None => break,
                },
                _ = tick.tick() => self.show(false),
                _ = &mut ended, if !ending => {
                    ending = true;
                    grace.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                }
                () = &mut grace, if ending => {
                    while let Ok(chunk) = receiver.try_recv() {
                        self.take(&chunk).await;
                    }
                    break;
                }
            }
        }
        let text = self.collector.finish();
        self.write_log(&text).await;
        let _ = self.log.flush().await;
        self.show(true);
        self
    }

    /// Takes one chunk of output.
    async fn take(&mut self, chunk: &Output) {
        let text = self.collector.push(chunk);
        self.write_log(&text).await;
        self.show(false);
    }

    /// Appends to the log, up to its cap. A log that cannot be written does
    /// not stop the run: the model still gets the output.
    async fn write_log(&mut self, text: &str) {
        if text.is_empty() || self.log_bytes > self.max_log_bytes {
            return;
        }
        let room = self.max_log_bytes - self.log_bytes;
        let result = if text.len() as u64 <= room {
            self.log.write_all(text.as_bytes()).await
        } else {
            let cut = text.floor_char_boundary(usize::try_from(room).unwrap_or(usize::MAX));
            let notice = format!(
                "{}\n[the log stops here: it reached {}]\n",
                &text[..cut],
                human_size(self.max_log_bytes)
            );
            self.log.write_all(notice.as_bytes()).await
        };
        self.log_bytes += text.len() as u64;
        if let Err(error) = result {
            tracing::warn!(%error, "a sandbox run's log could not be written");
            self.log_bytes = u64::MAX;
        }
    }

    /// Shows the live text when it is due (or, `last`, when it changed).
    fn show(&mut self, last: bool) {
        let Some(sideband) = &self.sideband else {
            return;
        };
        let now = std::time::Instant::now();
        let text = self.collector.live_text();
        let due = if last {
            self.throttle.flush(text, now)
        } else {
            self.throttle.due(text, now)
        };
        if let Some(text) = due {
            sideband.progress(text);
        }
    }
}

/// `\nFiles created or changed: chart.png (23 KB), …` and the files removed;
/// empty when nothing changed.
fn describe_changes(changes: &Changes) -> String {
    let mut out = String::new();
    if !changes.written.is_empty() {
        let named: Vec<String> = changes
            .written
            .iter()
            .take(MAX_NAMED_FILES)
            .map(|(path, size)| format!("{path} ({})", human_size(*size)))
            .collect();
        out.push_str(&format!("\nFiles created or changed: {}", named.join(", ")));
        if changes.written.len() > MAX_NAMED_FILES {
            out.push_str(&format!(
                " and {} more",
                changes.written.len() - MAX_NAMED_FILES
            ));
        }
        out.push('.');
    }
    if !changes.removed.is_empty() {
        let named: Vec<&str> = changes
            .removed
            .iter()
            .take(MAX_NAMED_FILES)
            .map(String::as_str)
            .collect();
        out.push_str(&format!("\nFiles removed: {}", named.join(", ")));
        if changes.removed.len() > MAX_NAMED_FILES {
            out.push_str(&format!(
                " and {} more",
                changes.removed.len() - MAX_NAMED_FILES
            ));
        }
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_with_sizes() {
        let changes = Changes {
            written: vec![("chart.png".into(), 23 * 1024), ("out.csv".into(), 12)],
            removed: vec!["old.txt".into()],
        };
        assert_eq!(
            describe_changes(&changes),
            "\nFiles created or changed: chart.png (23 KB), out.csv (12 bytes).\nFiles removed: old.txt."
        );
        assert_eq!(describe_changes(&Changes::default()), "");
        let many = Changes {
            written: (0..25).map(|i| (format!("f{i}"), 1)).collect(),
            removed: vec![],
        };
        assert!(describe_changes(&many).ends_with("f19 (1 byte) and 5 more."));
    }

    #[test]
    fn descriptions_say_what_the_sandbox_has() {
        let mut config = CodeConfig {
            python_libraries: Some(vec!["numpy".into(), "pandas".into()]),
            ..CodeConfig::default()
        };
        let text = describe(Language::Python, &config);
        assert!(text.contains("no network"), "{text}");
        assert!(text.contains("numpy, pandas"), "{text}");
        assert!(text.contains("files__send_file"), "{text}");
        assert!(text.contains("900 seconds, 512 MiB"), "{text}");
        config.network = true;
        config.python_libraries = Some(vec![]);
        let text = describe(Language::Shell, &config);
        assert!(text.contains("can reach the network"), "{text}");
        assert!(text.contains("only its standard library"), "{text}");
        config.python_libraries = None;
        assert!(describe(Language::Python, &config).contains("Check which Python libraries"));
    }
}

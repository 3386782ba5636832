//! The `clara` binary: command line, configuration and wiring.
//!
//! `clara chat` talks in the terminal, `clara serve` runs the engine as a
//! long-lived process, `clara migrate` manages the database schema, `clara memory`
//! lets an operator look at and manage what Clara remembers.

mod adapters;
mod chat;
mod email;
mod email_cli;
mod gateway;
mod jobs_cli;
#[cfg(feature = "mcp")]
mod mcp_cli;
mod memory;
mod memory_cli;
mod migrate_copy;
mod platforms;
mod proactive;
mod provider;
mod remote_adapter;
#[cfg(feature = "sandbox")]
mod sandbox_cli;
mod schedule_cli;
mod serve;
mod settings;
mod terminal;
mod tools;
mod tools_cli;
mod uploads;
mod worker;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use clara_llm::ChatProvider;
use clara_runtime::{Engine, SessionKeeper};
use provider::{LlmChoice, ModelChoice};
use settings::{Resolved, Sources};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Clara, a self-hosted personal assistant that remembers.
#[derive(Parser, Debug)]
#[command(name = "clara", version, about)]
struct Cli {
    /// The configuration file (default: ./clara.toml, then $XDG_CONFIG_HOME/clara/clara.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where Clara keeps its data (default: $CLARA_DATA_DIR, then ~/.local/share/clara).
    #[arg(long, global = true, value_name = "DIR", env = "CLARA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log more (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Talk with Clara in the terminal. With piped input, each line is a message.
    Chat(chat::ChatArgs),
    /// Run Clara as a long-lived process until SIGINT or SIGTERM.
    Serve,
    /// Run the gateway of a distributed deployment: adapters, web page, API and
    /// conversations, with replies answered by `clara worker`s through Redis.
    Gateway,
    /// Run a worker of a distributed deployment: answers thoughts a gateway
    /// queued in Redis (memory, model, tools).
    Worker(worker::WorkerArgs),
    /// Apply pending database migrations, show them with `status`, or copy a
    /// database into another with `--from sqlite:PATH --to postgres://…`
    /// (resumable: run it again after an interruption).
    #[command(args_conflicts_with_subcommands = true)]
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
        /// Copy from this database (`sqlite:PATH`, a path, or `postgres://…`).
        #[arg(long, value_name = "URL", requires = "to")]
        from: Option<String>,
        /// Copy into this database (usually `postgres://user@host/db`); it is
        /// migrated first.
        #[arg(long, value_name = "URL", requires = "from")]
        to: Option<String>,
        /// Rows copied per transaction.
        #[arg(long, value_name = "ROWS", default_value_t = migrate_copy::DEFAULT_BATCH)]
        batch: u32,
    },
    /// Look at and manage what Clara remembers (no chat model needed).
    Memory(memory_cli::MemoryArgs),
    /// Background jobs (summaries, memory extraction): backlog, failures, retry.
    Jobs(jobs_cli::JobsArgs),
    /// Reminders and scheduled tasks (`list`, `add`, `remove`), each person's
    /// time zone, alerts and quiet hours (`settings`), and what Clara sent
    /// (`outbox`). A running Clara picks up changes within seconds.
    Schedule(schedule_cli::ScheduleArgs),
    /// IMAP accounts Clara watches for people, and their rules for alerts
    /// (`add`, `list`, `remove`, `rule add|list|remove`).
    Email(email_cli::EmailArgs),
    /// Add, list, remove, enable, disable and probe MCP servers (a running
    /// Clara picks up the change within seconds).
    #[cfg(feature = "mcp")]
    Mcp(mcp_cli::McpCommand),
    /// What Clara's tools did and who let them run: `clara tools log`.
    Tools(tools_cli::ToolsCommand),
    /// The code sandbox: `setup` makes its Python libraries, `check` tests it.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox_cli::SandboxCommand),
    /// Run one platform adapter in its own process, connected to a Clara gateway.
    Adapter(remote_adapter::AdapterArgs),
    /// Print the Argon2 hash of a password read from standard input, for
    /// `web.password_hash`.
    HashPassword,
}

#[derive(Subcommand, Debug)]
enum MigrateAction {
    /// List every migration and whether it is applied.
    Status,
}

fn main() -> ExitCode {
    // `.env` fills in what the environment lacks; it never overrides it.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    init_logging(&cli);
    let resolved = match settings::load(&Sources {
        config_file: cli.config.as_deref(),
        data_dir: cli.data_dir.as_deref(),
    }) {
        Ok(resolved) => resolved,
        Err(error) => {
            eprintln!("clara: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    size_local_model_threads(&resolved);
    size_embedder_threads(&resolved);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("clara: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, resolved)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("clara: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sizes candle's process-wide worker pool for the local model, which candle reads
/// once from `CANDLE_NUM_THREADS`, unless the operator already chose.
#[allow(unsafe_code)]
fn size_local_model_threads(resolved: &Resolved) {
    let Ok(LlmChoice {
        model: ModelChoice::Local { threads, .. },
        ..
    }) = &resolved.llm
    else {
        return;
    };
    let chosen = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !chosen {
        // SAFETY: called from `main` before the async runtime or any other thread
        // exists, so nothing can read or write the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
    }
}

/// Sizes how candle splits the local embedder's matrix products, which it reads
/// from `RAYON_NUM_THREADS` on every product, to the embedder's one thread: split
/// wider than its pool, a query takes twice as long. Left alone when the operator
/// chose, and when a local chat model of several threads needs the wider split.
#[allow(unsafe_code)]
fn size_embedder_threads(resolved: &Resolved) {
    if !matches!(
        resolved.memory.embedder,
        memory::EmbedderChoice::Local { .. }
    ) {
        return;
    }
    if let Ok(LlmChoice {
        model: ModelChoice::Local { threads, .. },
        ..
    }) = &resolved.llm
        && *threads > 1
    {
        return;
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_some_and(|v| !v.is_empty()) {
        return;
    }
    // SAFETY: called from `main` before the async runtime or any other thread
    // exists, so nothing can read or write the environment concurrently.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
}

fn init_logging(cli: &Cli) {
    // In a chat the person reads the terminal: they get Clara's one-sentence
    // errors, not the operator's log, unless they ask with -v.
    let default = match (cli.verbose, &cli.command) {
        (0, Command::Serve | Command::Gateway | Command::Worker(_) | Command::Adapter(_)) => "info",
        (0, Command::Chat(_)) => "error",
        (0, _) => "warn",
        (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,hyper=warn,reqwest=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn run(cli: Cli, mut resolved: Resolved) -> Result<ExitCode> {
    std::fs::create_dir_all(&resolved.data_dir).with_context(|| {
        format!(
            "CLARA_DATA_DIR: cannot create the data directory {}",
            resolved.data_dir.display()
        )
    })?;
    match cli.command {
        Command::Migrate {
            from: Some(from),
            to: Some(to),
            batch,
            ..
        } => migrate_copy::run(&from, &to, batch).await,
        Command::Migrate { action, .. } => migrate(&resolved, action).await,
        Command::Memory(args) => memory_cli::run(&resolved, args).await,
        Command::Jobs(args) => jobs_cli::run(&resolved, args).await,
        Command::Schedule(args) => schedule_cli::run(&resolved, args).await,
        Command::Email(args) => email_cli::run(&resolved, args).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(cmd) => sandbox_cli::run(cmd, &resolved)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Tools(cmd) => {
            let store = resolved.open_store().await?;
            let result = tools_cli::run(cmd, &store).await;
            store.close().await;
            result.map(|()| ExitCode::SUCCESS)
        }
        #[cfg(feature = "mcp")]
        Command::Mcp(cmd) => {
            let settings: clara_mcp::McpSettings = resolved.sections.section("mcp")?;
            let dir = settings
                .servers_dir
                .clone()
                .unwrap_or_else(|| resolved.data_dir.join("mcp"));
            mcp_cli::run(cmd, dir, &settings)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Adapter(args) => {
            let adapters = std::mem::take(&mut resolved.adapters);
            remote_adapter::run(&resolved, adapters, args).await
        }
        Command::HashPassword => hash_password(),
        Command::Chat(args) => {
            let running = start_engine(&resolved, false).await?;
            let code = chat::run(&running.engine, args, &resolved.data_dir).await;
            running.stop().await;
            code
        }
        Command::Serve => {
            let adapters = std::mem::take(&mut resolved.adapters);
            let running = start_engine(&resolved, true).await?;
            let served = serve::run(&resolved, &running, adapters).await;
            running.stop().await;
            served.map(|()| ExitCode::SUCCESS)
        }
        Command::Gateway => {
            let redis = resolved.queue.redis()?;
            let adapters = std::mem::take(&mut resolved.adapters);
            let running = start_engine(&resolved, true).await?;
            let served = gateway::run(&resolved, &running, adapters, redis).await;
            running.stop().await;
            served.map(|()| ExitCode::SUCCESS)
        }
        Command::Worker(args) => worker::run(&resolved, args).await,
    }
}

/// What answers: the model, the store and, when enabled, the memory.
pub(crate) struct Answering {
    pub(crate) provider: Arc<dyn ChatProvider>,
    pub(crate) store: clara_store::Store,
    pub(crate) memory: Option<clara_memory::Rook>,
}

/// Opens the model, the store and the memory the settings name.
pub(crate) async fn open_answering(resolved: &Resolved) -> Result<Answering> {
    if let Some(file) = &resolved.file {
        tracing::info!(file = %file.display(), "configuration read");
    }
    let llm = resolved.llm.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let ModelChoice::Local {
        by_default: true, ..
    } = llm.model
    {
        eprintln!(
            "clara: no model is configured, so Clara answers with the built-in local model (SmolLM2-135M: small, slow and often wrong). Set LLM_PROVIDER for a better one."
        );
    }
    let choice = llm.model.clone();
    // Fetching and loading a local model blocks for a while; keep it off the runtime.
    let provider: Arc<dyn ChatProvider> =
        tokio::task::spawn_blocking(move || provider::build(choice)).await??;
    let store = resolved.open_store().await?;
    let memory = memory::open_for_engine(&resolved.memory, &store, &provider).await?;
    Ok(Answering {
        provider,
        store,
        memory,
    })
}

/// The engine of this process, with the store and memory it was built on
/// (the HTTP face is given them explicitly) and its session keeper.
pub(crate) struct Running {
    pub(crate) engine: Engine,
    pub(crate) store: clara_store::Store,
    pub(crate) memory: Option<clara_memory::Rook>,
    keeper: CancellationToken,
}

impl Running {
    /// Stops the keeper, lets the engine finish, and closes the store.
    async fn stop(self) {
        self.keeper.cancel();
        self.engine.shutdown().await;
        self.store.close().await;
    }
}

/// Builds the engine and starts what runs beside it: the session keeper,
/// the scheduler and the outbox's delivery, and — with `watch_mail` (`serve`
/// and `gateway`, not the terminal) — the mail watcher.
async fn start_engine(resolved: &Resolved, watch_mail: bool) -> Result<Running> {
    let Answering {
        provider,
        store,
        memory,
    } = open_answering(resolved).await?;
    let tools =
        crate::tools::registry(&resolved.tools, &resolved.sections, memory.as_ref()).await?;
    let email = email::Email::open(resolved, &store)?;
    let engine = match &memory {
        Some(rook) => Engine::with_memory(
            resolved.engine.clone(),
            store.clone(),
            provider,
            tools,
            rook.clone(),
        ),
        None => Engine::with_tools(resolved.engine.clone(), store.clone(), provider, tools),
    };
    engine.set_uploads(Arc::new(uploads_of(resolved)?));
    proactive::add_tools(
        engine.tools(),
        &store,
        Arc::clone(engine.proactive_signals()),
        email.as_ref(),
    )
    .await;
    let keeper = CancellationToken::new();
    tokio::spawn(SessionKeeper::new(engine.clone()).run(keeper.clone()));
    proactive::start(&engine, email.as_ref(), watch_mail, &keeper);
    Ok(Running {
        engine,
        store,
        memory,
        keeper,
    })
}

/// Where the files people send are kept: the file store of `[files]`, and
/// the person's sandbox workspace.
fn uploads_of(resolved: &Resolved) -> Result<uploads::KeptUploads> {
    use clara_core::component::Component;
    let files: clara_files::FilesSettings = resolved
        .sections
        .section(clara_files::Files::NAME)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = clara_files::FileStore::from_settings(&files, &resolved.data_dir)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    #[cfg(feature = "sandbox")]
    let workspaces = {
        let settings: clara_sandbox::SandboxSettings = resolved
            .sections
            .section(clara_sandbox::SandboxIntegration::NAME)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(
            clara_sandbox::SandboxIntegration::workspaces(&settings)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
    };
    Ok(uploads::KeptUploads::new(
        store,
        #[cfg(feature = "sandbox")]
        workspaces,
    ))
}

async fn migrate(resolved: &Resolved, action: Option<MigrateAction>) -> Result<ExitCode> {
    let store = resolved.open_store_unmigrated().await?;
    match action {
        None => {
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("The database at {} is up to date.", store.display_name());
            }
            for m in applied {
                println!("applied {:>4}  {}", m.version, m.description);
            }
        }
        Some(MigrateAction::Status) => {
            println!("database: {}", store.display_name());
            for m in store.migration_status().await? {
                println!(
                    "{:>4}  {:<8} {}",
                    m.version,
                    if m.applied { "applied" } else { "pending" },
                    m.description
                );
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `clara hash-password`: one line of standard input in, its Argon2 PHC string out.
fn hash_password() -> Result<ExitCode> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("Password (it will show as you type): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let hash = clara_gateway::http::hash_password(line.trim_end_matches(['\r', '\n']))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

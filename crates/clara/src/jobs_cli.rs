//! `clara jobs`: the operator's view of background work (session summaries,
//! memory extraction) — what is waiting, what gave up and why, and a way to try a
//! failed job again once its cause is fixed.

use crate::settings::Resolved;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use clara_store::{JobId, JobStatus, Store};
use std::process::ExitCode;

/// `clara jobs …`
#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(subcommand)]
    command: Option<JobsCommand>,
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// Jobs by kind and status, then every failed job with its last error (the default).
    Status,
    /// Queue a failed job again with a fresh set of attempts.
    Retry {
        /// The job's number, as `clara jobs` shows it.
        id: i64,
    },
}

/// Runs `clara jobs`.
pub async fn run(resolved: &Resolved, args: JobsArgs) -> Result<ExitCode> {
    let store = resolved.open_store().await?;
    let result = execute(&store, args.command.unwrap_or(JobsCommand::Status)).await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn execute(store: &Store, command: JobsCommand) -> Result<()> {
    match command {
        JobsCommand::Status => {
            let counts = store.job_counts().await?;
            if counts.is_empty() {
                println!("No background jobs.");
                return Ok(());
            }
            println!("{:<20} {:<8} {:>7}", "KIND", "STATUS", "JOBS");
            for (kind, status, n) in &counts {
                println!("{kind:<20} {:<8} {n:>7}", status.as_str());
            }
            let failed = store.failed_jobs().await?;
            if !failed.is_empty() {
                println!("\nFailed (retry with `clara jobs retry <id>`):");
                for job in failed {
                    println!(
                        "{:>6}  {:<18} {} attempts  {}",
                        job.id,
                        job.kind,
                        job.attempts,
                        job.last_error.as_deref().unwrap_or("no error recorded")
                    );
                }
            }
            Ok(())
        }
        JobsCommand::Retry { id } => {
            let now = chrono::Utc::now().timestamp_millis();
            if store.retry_failed_job(JobId(id), now).await? {
                println!("Job {id} is queued again; a running Clara picks it up at its next pass.");
                Ok(())
            } else {
                match store.job(JobId(id)).await? {
                    Some(job) if job.status != JobStatus::Failed => {
                        bail!("job {id} has not failed (it is {})", job.status.as_str())
                    }
                    _ => bail!("there is no job {id}; `clara jobs` lists the failed ones"),
                }
            }
        }
    }
}

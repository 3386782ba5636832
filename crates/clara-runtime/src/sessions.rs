//! The session keeper: ends idle sessions and has them summarised.
//!
//! Summaries are durable jobs in the store, so a summary owed when Clara stops is
//! written after it starts again. A failed summary is retried with backoff and,
//! after its last attempt, stays visible as a failed job.

use crate::clock::now_ms;
use crate::engine::{Engine, SUMMARY_JOB};
use clara_core::session::summary_prompt;
use clara_core::{Role, SessionId};
use clara_llm::ChatRequest;
use clara_store::{Job, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a claimed job is reserved before another run may take it over.
const JOB_LEASE_MS: i64 = 5 * 60_000;

/// What one pass of the keeper did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeeperPass {
    /// Sessions ended for idleness.
    pub ended: usize,
    /// Summaries written.
    pub summarised: usize,
    /// Jobs that failed this time.
    pub failed: usize,
}

/// Ends idle sessions and writes their summaries.
#[derive(Clone)]
pub struct SessionKeeper {
    engine: Engine,
}

impl SessionKeeper {
    /// A keeper for `engine`'s store and model.
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Runs a pass every `session_check_every` until `stop` fires.
    pub async fn run(self, stop: CancellationToken) {
        let every = self.engine.config().session_check_every;
        loop {
            match self.pass(now_ms()).await {
                Ok(pass) if pass != KeeperPass::default() => {
                    tracing::info!(?pass, "session keeper pass")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "session keeper pass failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: end what is idle at `now`, then run the due summary jobs.
    pub async fn pass(&self, now: i64) -> Result<KeeperPass, StoreError> {
        let store = self.engine.store();
        let mut pass = KeeperPass::default();
        let idle_ms =
            i64::try_from(self.engine.config().session_idle.as_millis()).unwrap_or(i64::MAX);
        for session in store.idle_sessions(now.saturating_sub(idle_ms)).await? {
            store
                .end_session(session.id, session.last_activity_at_ms)
                .await?;
            let payload = serde_json::json!({ "session": session.id.to_string() });
            store.enqueue_job(SUMMARY_JOB, &payload, now).await?;
            self.engine.session_ended(session.conversation).await;
            pass.ended += 1;
        }
        for job in store.claim_jobs(now, JOB_LEASE_MS, 16).await? {
            match self.run_job(&job).await {
                Ok(wrote) => {
                    store.complete_job(job.id).await?;
                    pass.summarised += usize::from(wrote);
                }
                Err(error) => {
                    pass.failed += 1;
                    let retry_at = now + backoff(job.attempts).as_millis() as i64;
                    tracing::warn!(job = ?job.id, kind = %job.kind, %error, "background job failed");
                    store.fail_job(job.id, &error, Some(retry_at)).await?;
                }
            }
        }
        Ok(pass)
    }

    /// Runs one job; `Ok(true)` when a summary was written.
    async fn run_job(&self, job: &Job) -> Result<bool, String> {
        if job.kind != SUMMARY_JOB {
            return Err(format!(
                "no handler for background jobs of kind {:?}",
                job.kind
            ));
        }
        let session: SessionId = job
            .payload
            .get("session")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "the summary job names no valid session".to_owned())?;
        self.summarise(session).await
    }

    async fn summarise(&self, id: SessionId) -> Result<bool, String> {
        let store = self.engine.store();
        let Some(session) = store.session(id).await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        if session.summary.is_some() {
            return Ok(false);
        }
        // The summary must see every accepted message, some of which may still be
        // on their way through the group-commit writer.
        store.writer().flush().await.map_err(|e| e.to_string())?;
        let messages = store
            .session_messages(id)
            .await
            .map_err(|e| e.to_string())?;
        if !messages.iter().any(|m| m.role == Role::User) {
            return Ok(false);
        }
        let previous = store
            .last_summary(session.conversation)
            .await
            .map_err(|e| e.to_string())?;
        let transcript: Vec<(Role, &str)> = messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect();
        let prompt = summary_prompt(
            previous.as_ref().map(|p| p.summary.as_str()),
            &transcript,
            "The person",
        );
        let request = ChatRequest {
            max_tokens: Some(400),
            temperature: Some(0.2),
            ..ChatRequest::new(prompt)
        };
        let summary = self
            .engine
            .provider()
            .complete(request)
            .await
            .map_err(|e| e.to_string())?;
        let summary = summary.trim();
        if summary.is_empty() {
            return Err("the model returned an empty summary".to_owned());
        }
        store
            .set_session_summary(id, summary, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        self.engine
            .summary_ready(session.conversation, summary.to_owned())
            .await;
        Ok(true)
    }
}

/// Exponential backoff for a job that failed `attempts` times: 10 s, 20 s, 40 s … capped at 30 min.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(10u64.saturating_mul(1u64 << attempts.min(8)))
        .min(Duration::from_secs(1800))
}

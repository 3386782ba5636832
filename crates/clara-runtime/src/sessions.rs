//! The session keeper: ends idle sessions and runs Clara's background jobs —
//! session summaries, memory extraction, and re-embedding memories after a change
//! of embedding model.
//!
//! Jobs are durable rows in the store, so work owed when Clara stops is done after
//! it starts again. A failed job is retried with backoff and, after its last
//! attempt, stays visible as a failed job. Jobs run here, never on a reply's path.

use crate::clock::now_ms;
use crate::engine::{Engine, LEARN_JOB, SUMMARY_JOB};
use clara_core::backoff::Backoff;
use clara_core::session::summary_prompt;
use clara_core::{ConversationId, Role, SessionId, ThoughtId};
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
    /// Answered thoughts memory was extracted from.
    pub learned: usize,
    /// Memories given a vector of the current embedding model.
    pub reembedded: usize,
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
                () = self.engine.jobs_queued().notified() => {}
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
                Ok(done) => {
                    store.complete_job(job.id).await?;
                    match done {
                        Done::Summarised => pass.summarised += 1,
                        Done::Learned => pass.learned += 1,
                        Done::Nothing => {}
                    }
                }
                Err(error) => {
                    pass.failed += 1;
                    let retry_at = now + backoff(job.attempts).as_millis() as i64;
                    tracing::warn!(job = ?job.id, kind = %job.kind, %error, "background job failed");
                    store.fail_job(job.id, &error, Some(retry_at)).await?;
                }
            }
        }
        if let Some(rook) = self.engine.memory() {
            match rook.reembed_pending(REEMBED_BATCH).await {
                Ok(n) => {
                    pass.reembedded = n;
                    if n == REEMBED_BATCH as usize {
                        // More are waiting: come back at once rather than after a period.
                        self.engine.jobs_queued().notify_one();
                    }
                }
                Err(error) => tracing::warn!(%error, "re-embedding memories failed"),
            }
        }
        Ok(pass)
    }

    /// Runs one job.
    async fn run_job(&self, job: &Job) -> Result<Done, String> {
        match job.kind.as_str() {
            SUMMARY_JOB => {
                let session: SessionId = parse_field(job, "session")?;
                Ok(if self.summarise(session).await? {
                    Done::Summarised
                } else {
                    Done::Nothing
                })
            }
            LEARN_JOB => self.learn(job).await,
            other => Err(format!("no handler for background jobs of kind {other:?}")),
        }
    }

    async fn learn(&self, job: &Job) -> Result<Done, String> {
        let Some(rook) = self.engine.memory() else {
            // Memory was switched off since the job was queued: nothing to do.
            return Ok(Done::Nothing);
        };
        let conversation: ConversationId = parse_field(job, "conversation")?;
        let thought: ThoughtId = parse_field(job, "thought")?;
        let person = job
            .payload
            .get("person")
            .and_then(|v| v.as_str())
            .unwrap_or("The person");
        // The reply may still be on its way through the group-commit writer.
        self.engine
            .store()
            .writer()
            .flush()
            .await
            .map_err(|e| e.to_string())?;
        let report = rook
            .learn_from_thought(conversation, thought, person)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(%thought, ?report, "memories learned");
        Ok(Done::Learned)
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

/// What a job did.
enum Done {
    Summarised,
    Learned,
    Nothing,
}

/// How many memories one pass re-embeds at most.
const REEMBED_BATCH: u32 = 64;

/// Reads an id field of a job's payload.
fn parse_field<T: std::str::FromStr>(job: &Job, field: &str) -> Result<T, String> {
    job.payload
        .get(field)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the {} job names no valid {field}", job.kind))
}

/// How long a failed job waits before it is tried again: 10 s doubling, capped
/// at 30 min.
const JOB_BACKOFF: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(1800));

/// The wait after a job's `attempts`-th attempt failed (the count includes the
/// attempt that just failed, so the first retry waits 20 s).
fn backoff(attempts: u32) -> Duration {
    JOB_BACKOFF.delay(attempts.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_jobs_wait_as_they_always_did() {
        let before = |a: u32| {
            Duration::from_secs(10u64.saturating_mul(1u64 << a.min(8)))
                .min(Duration::from_secs(1800))
        };
        for attempts in (0..40).chain([u32::MAX]) {
            assert_eq!(backoff(attempts), before(attempts), "{attempts}");
        }
    }
}

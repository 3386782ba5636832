//! Durable background jobs (session summaries now, memory extraction later).
//!
//! A job is claimed with a lease. A worker that crashes never completes or fails
//! its job, so once the lease runs out the job is due again. Attempts are counted
//! at claim time, so a job that crashes its worker every time still reaches its
//! attempt limit and ends up failed instead of looping for ever.

use crate::StoreError;
use crate::backend::{in_tx, on_read, on_write};
use crate::store::{Store, now_ms};

/// A job's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for its run time.
    Queued,
    /// Claimed by a worker whose lease has not run out.
    Running,
    /// Finished.
    Done,
    /// Gave up after its last attempt; kept so an operator can see it.
    Failed,
}

impl JobStatus {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Parses [`JobStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A background job.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What to do, e.g. `"summarize_session"`.
    pub kind: String,
    /// The arguments.
    pub payload: serde_json::Value,
    /// Claims so far (including the current one).
    pub attempts: u32,
    /// Claims allowed before it is marked failed.
    pub max_attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it is (or was) due, Unix ms.
    pub run_at_ms: i64,
    /// Where it is in its life.
    pub status: JobStatus,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
    last_error: Option<String>,
    run_at_ms: i64,
    status: String,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        let payload = serde_json::from_str(&r.payload).map_err(|e| {
            StoreError::invalid(format!("job {} has a payload that is not JSON: {e}", r.id))
        })?;
        let status = JobStatus::parse(&r.status).ok_or_else(|| {
            StoreError::invalid(format!("job {} has unknown status {:?}", r.id, r.status))
        })?;
        Ok(Job {
            id: JobId(r.id),
            kind: r.kind,
            payload,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            max_attempts: u32::try_from(r.max_attempts).unwrap_or(0),
            last_error: r.last_error,
            run_at_ms: r.run_at_ms,
            status,
        })
    }
}

/// Attempts a job gets unless its kind says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

impl Store {
    /// Queues a job to run at `run_at_ms`, with [`DEFAULT_MAX_ATTEMPTS`].
    pub async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        run_at_ms: i64,
    ) -> Result<JobId, StoreError> {
        self.enqueue_job_with_attempts(kind, payload, run_at_ms, DEFAULT_MAX_ATTEMPTS)
            .await
    }

    /// Queues a job with its own attempt limit (at least one).
    pub async fn enqueue_job_with_attempts(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        run_at_ms: i64,
        max_attempts: u32,
    ) -> Result<JobId, StoreError> {
        let now = now_ms();
        let id: i64 = on_write!(&self.pools, |pool| sqlx::query_scalar(
            "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, 'queued', 0, $3, $4, $5, $6) RETURNING id",
        )
        .bind(kind)
        .bind(payload.to_string())
        .bind(i64::from(max_attempts.max(1)))
        .bind(run_at_ms)
        .bind(now)
        .bind(now)
        .fetch_one(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(JobId(id))
    }

    /// Atomically marks up to `limit` due jobs as running, leased until
    /// `now_ms + lease_ms`, and returns them (oldest due first).
    ///
    /// Due means queued with `run_at_ms <= now_ms`, or running with an expired lease
    /// (its worker crashed). An expired job that already used all its attempts is
    /// marked failed instead.
    pub async fn claim_jobs(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        in_tx!(&mut tx, |c| sqlx::query(
            "UPDATE jobs SET status = 'failed', lease_until_ms = NULL, updated_at_ms = $1, \
             last_error = COALESCE(last_error, 'its worker stopped while running it') \
             WHERE status = 'running' AND lease_until_ms <= $2 AND attempts >= max_attempts",
        )
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        let rows: Vec<JobRow> = in_tx!(&mut tx, |c| sqlx::query_as(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until_ms = $1, updated_at_ms = $2 \
             WHERE id IN ( \
                 SELECT id FROM jobs \
                 WHERE (status = 'queued' AND run_at_ms <= $3) OR (status = 'running' AND lease_until_ms <= $4) \
                 ORDER BY run_at_ms, id LIMIT $5) \
             RETURNING id, kind, payload, attempts, max_attempts, last_error, run_at_ms, status",
        )
        .bind(now_ms.saturating_add(lease_ms))
        .bind(now_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        let mut jobs = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order guarantee.
        jobs.sort_by_key(|j| (j.run_at_ms, j.id));
        Ok(jobs)
    }

    /// Marks a job done.
    pub async fn complete_job(&self, id: JobId) -> Result<(), StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query("UPDATE jobs SET status = 'done', lease_until_ms = NULL, updated_at_ms = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id.0)
            .execute(pool)
            .await
.map(|r| r.rows_affected()))
            .map_err(|e| self.err(e))?;
        job_found(done, id)
    }

    /// Records a failed attempt. The job is queued again at `retry_at_ms`, or
    /// marked failed (kept, visible in [`Store::failed_jobs`]) when `retry_at_ms` is
    /// `None` or it has used all its attempts.
    pub async fn fail_job(
        &self,
        id: JobId,
        error: &str,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let counts: Option<(i64, i64)> = in_tx!(&mut tx, |c| sqlx::query_as(
            "SELECT attempts, max_attempts FROM jobs WHERE id = $1"
        )
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| self.err(e))?;
        let Some((attempts, max_attempts)) = counts else {
            return Err(StoreError::not_found(format!("job {id}")));
        };
        let now = now_ms();
        match retry_at_ms.filter(|_| attempts < max_attempts) {
            Some(retry_at) => {
                in_tx!(&mut tx, |c| sqlx::query(
                    "UPDATE jobs SET status = 'queued', last_error = $1, run_at_ms = $2, lease_until_ms = NULL, \
                     updated_at_ms = $3 WHERE id = $4",
                )
                .bind(error)
                .bind(retry_at)
                .bind(now)
                .bind(id.0)
                .execute(&mut *c)
                .await
.map(|r| r.rows_affected()))
                .map_err(|e| self.err(e))?;
            }
            None => {
                in_tx!(&mut tx, |c| sqlx::query(
                    "UPDATE jobs SET status = 'failed', last_error = $1, lease_until_ms = NULL, updated_at_ms = $2 \
                     WHERE id = $3",
                )
                .bind(error)
                .bind(now)
                .bind(id.0)
                .execute(&mut *c)
                .await
.map(|r| r.rows_affected()))
                .map_err(|e| self.err(e))?;
                tracing::warn!(job = id.0, attempts, error, "job failed for good");
            }
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Jobs that gave up, oldest failure first.
    pub async fn failed_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows: Vec<JobRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, kind, payload, attempts, max_attempts, last_error, run_at_ms, status \
             FROM jobs WHERE status = 'failed' ORDER BY updated_at_ms, id",
        )
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// How many jobs there are of each kind and status, e.g. to see a backlog.
    pub async fn job_counts(&self) -> Result<Vec<(String, JobStatus, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_read!(&self.pools, |pool| {
            sqlx::query_as(
            "SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(pool)
        .await
        })
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(kind, status, n)| {
                let status = JobStatus::parse(&status).ok_or_else(|| {
                    StoreError::invalid(format!("a job has unknown status {status:?}"))
                })?;
                Ok((kind, status, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// Gives a failed job a fresh set of attempts, due at `now_ms` (an operator's
    /// "try again" once the cause is fixed). Returns false when no such failed job exists.
    pub async fn retry_failed_job(&self, id: JobId, now_ms: i64) -> Result<bool, StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at_ms = $1, lease_until_ms = NULL, \
             updated_at_ms = $2 WHERE id = $3 AND status = 'failed'",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(id.0)
        .execute(pool)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(done > 0)
    }

    /// One job by id.
    pub async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, kind, payload, attempts, max_attempts, last_error, run_at_ms, status FROM jobs WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(Job::try_from).transpose()
    }

    /// Deletes finished jobs last updated before `before_ms`; returns how many.
    pub async fn prune_done_jobs(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "DELETE FROM jobs WHERE status = 'done' AND updated_at_ms < $1"
        )
        .bind(before_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(done)
    }
}

fn job_found(rows: u64, id: JobId) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::not_found(format!("job {id}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("complete"), None);
    }
}

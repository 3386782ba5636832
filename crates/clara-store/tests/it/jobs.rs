//! Durable jobs: claiming, leases, retries and giving up, on a real SQLite file
//! and a real PostgreSQL database.

use crate::common::TestDb;
use clara_store::{JobId, JobStatus, StoreError};
use serde_json::json;

async fn due_jobs_are_claimed_once_in_order(db: TestDb) {
    let store = db.open().await;
    let late = store
        .enqueue_job("summarize_session", &json!({"session": "late"}), 300)
        .await
        .unwrap();
    let early = store
        .enqueue_job("summarize_session", &json!({"session": "early"}), 100)
        .await
        .unwrap();
    let future = store
        .enqueue_job("extract_memories", &json!({"n": 1}), 10_000)
        .await
        .unwrap();

    let claimed = store.claim_jobs(500, 1_000, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![early, late]
    );
    let first = &claimed[0];
    assert_eq!(first.kind, "summarize_session");
    assert_eq!(first.payload, json!({"session": "early"}));
    assert_eq!(
        (first.attempts, first.max_attempts, first.status),
        (1, 5, JobStatus::Running)
    );
    // Leased: nobody else gets them, and the future job is not due.
    assert!(store.claim_jobs(600, 1_000, 10).await.unwrap().is_empty());
    assert_eq!(
        store.job(future).await.unwrap().unwrap().status,
        JobStatus::Queued
    );

    store.complete_job(early).await.unwrap();
    assert_eq!(
        store.job(early).await.unwrap().unwrap().status,
        JobStatus::Done
    );
    // Done jobs are never claimed again, even after their old lease would expire.
    let again = store.claim_jobs(5_000, 1_000, 10).await.unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![late]);
    assert_eq!(
        again[0].attempts, 2,
        "the expired lease counted as an attempt"
    );
    assert!(matches!(
        store.complete_job(JobId(987_654)).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

async fn the_limit_is_respected_and_concurrent_claims_never_share_a_job(db: TestDb) {
    let store = db.open().await;
    for i in 0..40 {
        store.enqueue_job("k", &json!(i), i).await.unwrap();
    }
    assert_eq!(store.claim_jobs(1_000, 60_000, 3).await.unwrap().len(), 3);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_jobs(1_000, 60_000, 5).await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap().into_iter().map(|j| j.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((total, ids.len()), (20, 20));
    assert!(store.claim_jobs(1_000, 60_000, 0).await.unwrap().is_empty());
}

async fn an_expired_lease_is_reclaimed_after_a_crash(db: TestDb) {
    let store = db.open().await;
    let id = store
        .enqueue_job("summarize_session", &json!({}), 0)
        .await
        .unwrap();
    assert_eq!(store.claim_jobs(1_000, 5_000, 1).await.unwrap().len(), 1);
    // The worker "crashes": the process restarts without completing the job.
    store.close().await;
    let store = db.open().await;
    assert!(
        store.claim_jobs(5_999, 5_000, 1).await.unwrap().is_empty(),
        "lease still held"
    );
    let reclaimed = store.claim_jobs(6_000, 5_000, 1).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!((reclaimed[0].id, reclaimed[0].attempts), (id, 2));
}

async fn failures_retry_then_give_up_visibly(db: TestDb) {
    let store = db.open().await;
    let id = store
        .enqueue_job_with_attempts("summarize_session", &json!({"s": 1}), 0, 3)
        .await
        .unwrap();
    for attempt in 1..=2 {
        let now = attempt * 1_000;
        let job = store.claim_jobs(now, 100, 1).await.unwrap().pop().unwrap();
        assert_eq!(job.attempts, u32::try_from(attempt).unwrap());
        store
            .fail_job(id, &format!("timeout {attempt}"), Some(now + 500))
            .await
            .unwrap();
        let queued = store.job(id).await.unwrap().unwrap();
        assert_eq!(
            (queued.status, queued.run_at_ms),
            (JobStatus::Queued, now + 500)
        );
        assert_eq!(
            queued.last_error.as_deref(),
            Some(format!("timeout {attempt}").as_str())
        );
        assert!(
            store
                .claim_jobs(now + 499, 100, 1)
                .await
                .unwrap()
                .is_empty(),
            "not before its retry time"
        );
    }
    assert!(store.failed_jobs().await.unwrap().is_empty());
    let job = store
        .claim_jobs(10_000, 100, 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(job.attempts, 3);
    store
        .fail_job(id, "still broken", Some(20_000))
        .await
        .unwrap();
    let failed = store.failed_jobs().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].id, failed[0].status, failed[0].attempts),
        (id, JobStatus::Failed, 3)
    );
    assert_eq!(failed[0].last_error.as_deref(), Some("still broken"));
    assert!(
        store.claim_jobs(100_000, 100, 1).await.unwrap().is_empty(),
        "failed jobs stay failed"
    );

    // No retry time means give up at once.
    let other = store.enqueue_job("k", &json!(null), 0).await.unwrap();
    store.claim_jobs(0, 100, 1).await.unwrap();
    store.fail_job(other, "not retryable", None).await.unwrap();
    assert_eq!(store.failed_jobs().await.unwrap().len(), 2);
}

async fn a_job_that_keeps_crashing_its_worker_ends_up_failed(db: TestDb) {
    let store = db.open().await;
    let id = store
        .enqueue_job_with_attempts("poison", &json!({}), 0, 2)
        .await
        .unwrap();
    assert_eq!(store.claim_jobs(0, 10, 1).await.unwrap()[0].attempts, 1);
    assert_eq!(store.claim_jobs(10, 10, 1).await.unwrap()[0].attempts, 2);
    // Its second lease runs out too: no third attempt.
    assert!(store.claim_jobs(20, 10, 1).await.unwrap().is_empty());
    let failed = store.failed_jobs().await.unwrap();
    assert_eq!(failed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
    assert!(failed[0].last_error.is_some());
}

async fn done_jobs_can_be_pruned(db: TestDb) {
    let store = db.open().await;
    let id = store.enqueue_job("k", &json!(1), 0).await.unwrap();
    let keep = store.enqueue_job("k", &json!(2), 0).await.unwrap();
    store.claim_jobs(0, 100, 2).await.unwrap();
    store.complete_job(id).await.unwrap();
    assert_eq!(store.prune_done_jobs(i64::MAX).await.unwrap(), 1);
    assert!(store.job(id).await.unwrap().is_none());
    assert!(store.job(keep).await.unwrap().is_some());
}

async fn an_operator_sees_counts_and_retries_a_failed_job(db: TestDb) {
    let store = db.open().await;
    let id = store
        .enqueue_job_with_attempts("extract_memories", &json!({}), 0, 1)
        .await
        .unwrap();
    let claimed = store.claim_jobs(0, 1000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.fail_job(id, "model down", Some(10)).await.unwrap();
    assert_eq!(
        store.job(id).await.unwrap().unwrap().status,
        JobStatus::Failed
    );
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("extract_memories".to_owned(), JobStatus::Failed, 1)]
    );
    assert!(store.retry_failed_job(id, 50).await.unwrap());
    assert!(
        !store.retry_failed_job(id, 50).await.unwrap(),
        "only failed jobs"
    );
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.attempts, job.run_at_ms),
        (JobStatus::Queued, 0, 50)
    );
    assert_eq!(store.claim_jobs(50, 1000, 10).await.unwrap().len(), 1);
}

on_both_backends!(
    an_expired_lease_is_reclaimed_after_a_crash,
    due_jobs_are_claimed_once_in_order,
    the_limit_is_respected_and_concurrent_claims_never_share_a_job,
    failures_retry_then_give_up_visibly,
    a_job_that_keeps_crashing_its_worker_ends_up_failed,
    done_jobs_can_be_pruned,
    an_operator_sees_counts_and_retries_a_failed_job,
);

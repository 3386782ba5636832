//! Copying a SQLite store into another store (PostgreSQL above all): every row,
//! resumable after an interruption, verified by counting.

use crate::common::{TestDb, contents, file_store, msg, place};
use clara_core::{
    ChannelKind, MemoryId, MemoryKind, Permission, Role, Scope, ToolGrant, ToolPin, ToolRun,
};
use clara_store::{
    CopyProgress, ModelVector, NewMemory, Provenance, ReplyUsage, Store, StoreError, copied_columns,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

async fn every_column_of_the_schema_is_copied(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.schema_columns().await.unwrap(), copied_columns());
}

fn why(at_ms: i64) -> Provenance {
    Provenance {
        reason: "said so".into(),
        actor: "test".into(),
        conversation: None,
        message: None,
        at_ms,
    }
}

/// A source with a bit of everything: people, a project, sessions, messages with
/// usage, jobs in several states, memories with vectors and history.
async fn filled_source(store: &Store) -> crate::common::Place {
    let p = place(store, "source").await;
    let project = store.ensure_project("garden", 1).await.unwrap();
    store
        .set_conversation_project(p.conversation, Some(project.id))
        .await
        .unwrap();
    let mut batch: Vec<_> = (0..40).map(|i| msg(&p, &format!("m{i}"), i * 10)).collect();
    batch[39].role = Role::Assistant;
    batch[39].user = None;
    batch[39].usage = Some(ReplyUsage {
        user: Some(p.user),
        provider: "local".into(),
        model: "smol".into(),
        tier: "mid".into(),
        input_tokens: 100,
        output_tokens: 7,
        cost_usd: Some(0.25),
        tool_calls: 1,
    });
    batch[39].tool_runs = vec![ToolRun {
        call_id: "c1".into(),
        name: "everything__echo".into(),
        arguments: r#"{"message":"hi"}"#.into(),
        result: "Echo: hi".into(),
        ok: true,
        permission: Permission::Owner {
            owner: "cli:ann".into(),
            always: false,
        },
        started_at_ms: 390,
        duration_ms: 3,
    }];
    store.append_messages(&batch).await.unwrap();
    store
        .add_tool_grant(&ToolGrant {
            tool: "everything__echo".into(),
            arguments_sha256: "ab".into(),
            definition_sha256: "cd".into(),
            granted_by: "cli:ann".into(),
            granted_at_ms: 400,
        })
        .await
        .unwrap();
    store
        .set_tool_pin(&ToolPin {
            tool: "everything__echo".into(),
            definition_sha256: "cd".into(),
            pinned_at_ms: 380,
        })
        .await
        .unwrap();
    store.end_session(p.session, 500).await.unwrap();
    store
        .set_session_summary(p.session, "they counted", 510)
        .await
        .unwrap();
    for i in 0..5 {
        store.enqueue_job("k", &json!({ "i": i }), i).await.unwrap();
    }
    let claimed = store.claim_jobs(10, 1_000, 2).await.unwrap();
    store.complete_job(claimed[0].id).await.unwrap();
    for i in 0..6 {
        let m = NewMemory {
            id: MemoryId::new(),
            scope: Scope::User(p.user),
            kind: MemoryKind::Fact,
            text: format!("fact {i}"),
            origin: ChannelKind::Direct,
            shareable: i % 2 == 0,
            source_conversation: Some(p.conversation),
            source_message: None,
            happened_at_ms: i,
        };
        let v = [0.6f32, 0.8, i as f32];
        store
            .insert_memory(
                &m,
                Some(ModelVector {
                    model: "mini",
                    vector: &v,
                }),
                &why(i),
            )
            .await
            .unwrap();
        if i == 5 {
            store.forget_memory(m.id, &why(99)).await.unwrap();
        }
    }
    p
}

async fn a_sqlite_store_is_copied_whole(db: TestDb) {
    let (_dir, _path, source) = file_store().await;
    let p = filled_source(&source).await;
    let target = db.open().await;
    let mut events = Vec::new();
    let report = source
        .copy_into(&target, 7, &mut |e| {
            if let CopyProgress::Planned { total, done } = e {
                events.push((total, done));
            }
        })
        .await
        .unwrap();
    assert_eq!(report.mismatch(), None, "{report:?}");
    let total: u64 = report.tables.iter().map(|t| t.source).sum();
    assert_eq!(events, [(total, 0)]);
    assert_eq!(report.copied_now, total);

    // The target answers as the source did.
    assert_eq!(
        contents(
            &target
                .recent_messages(p.conversation, 0, 0, 100)
                .await
                .unwrap()
        ),
        contents(
            &source
                .recent_messages(p.conversation, 0, 0, 100)
                .await
                .unwrap()
        )
    );
    assert_eq!(
        target.last_summary(p.conversation).await.unwrap(),
        source.last_summary(p.conversation).await.unwrap()
    );
    assert_eq!(
        target.conversation_project(p.conversation).await.unwrap(),
        source.conversation_project(p.conversation).await.unwrap()
    );
    let mut theirs = target.memories_with_vectors("mini").await.unwrap();
    let mut ours = source.memories_with_vectors("mini").await.unwrap();
    theirs.sort_by_key(|(m, _)| m.id);
    ours.sort_by_key(|(m, _)| m.id);
    assert_eq!(theirs, ours);
    assert_eq!(theirs.len(), 5, "the forgotten one has no vector");
    assert_eq!(
        target.job_counts().await.unwrap(),
        source.job_counts().await.unwrap()
    );
    assert_eq!(
        target.recent_tool_runs(None, 10).await.unwrap(),
        source.recent_tool_runs(None, 10).await.unwrap()
    );
    assert_eq!(target.recent_tool_runs(None, 10).await.unwrap().len(), 1);
    assert_eq!(
        target.tool_grants().await.unwrap(),
        source.tool_grants().await.unwrap()
    );
    assert_eq!(
        target.tool_pin("everything__echo").await.unwrap(),
        source.tool_pin("everything__echo").await.unwrap()
    );

    // New rows numbered by the database do not collide with copied ones.
    let next_job = target.enqueue_job("k", &json!(null), 0).await.unwrap();
    assert!(next_job.0 > 5, "{next_job:?}");
    target
        .append_messages(&[msg(&p, "after the move", 1_000)])
        .await
        .unwrap();
    let window = target
        .recent_messages(p.conversation, 0, 0, 2)
        .await
        .unwrap();
    assert_eq!(contents(&window), ["m39", "after the move"]);

    // Copying again finds everything done.
    let again = source.copy_into(&target, 7, &mut |_| {}).await.unwrap();
    assert_eq!(again.copied_now, 0);
    target.close().await;
}

async fn an_interrupted_copy_resumes_where_it_stopped(db: TestDb) {
    let (_dir, _path, source) = file_store().await;
    filled_source(&source).await;
    let target = db.open().await;

    // The first run dies after its seventh committed batch: one each of users,
    // identities, projects, conversations and sessions, then two of messages.
    let batches = Arc::new(AtomicU64::new(0));
    let (s, t, seen) = (source.clone(), target.clone(), batches.clone());
    let first = tokio::spawn(async move {
        s.copy_into(&t, 5, &mut |e| {
            if let CopyProgress::Copied { .. } = e
                && seen.fetch_add(1, Ordering::SeqCst) == 6
            {
                panic!("killed mid-copy");
            }
        })
        .await
    });
    assert!(first.await.unwrap_err().is_panic());

    let mut resumed_from = None;
    let report = source
        .copy_into(&target, 5, &mut |e| {
            if let CopyProgress::Planned { done, .. } = e {
                resumed_from = Some(done);
            }
        })
        .await
        .unwrap();
    assert_eq!(
        resumed_from,
        Some(15),
        "five rows, then two batches of five messages, were kept"
    );
    assert_eq!(report.mismatch(), None, "{report:?}");
    let total: u64 = report.tables.iter().map(|t| t.source).sum();
    assert_eq!(report.copied_now, total - 15, "nothing was copied twice");
    target.close().await;
}

#[tokio::test]
async fn a_source_with_pending_migrations_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open_with(
        &dir.path().join("old.db"),
        clara_store::StoreOptions {
            migrate: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (_dir, _path, target) = file_store().await;
    let err = source
        .copy_into(&target, 10, &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CopyRefused { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the copy cannot start: the source lacks migration 1 (initial); run `clara migrate` on it first"
    );
}

on_both_backends!(
    every_column_of_the_schema_is_copied,
    a_sqlite_store_is_copied_whole,
    an_interrupted_copy_resumes_where_it_stopped,
);

//! Opening, migrating, people and places, sessions and messages, on real SQLite
//! files and a real PostgreSQL database.

use crate::common::{TestDb, contents, file_store, msg, place};
use clara_core::{ChannelKind, ConversationRef, EventId, Role, ThoughtId};
use clara_store::{Backend, MessageStatus, Store, StoreError, StoreOptions};

async fn opening_applies_every_migration(db: TestDb) {
    let store = db.open().await;
    let status = store.migration_status().await.unwrap();
    assert!(!status.is_empty());
    assert_eq!(status[0].version, 1);
    assert_eq!(status[0].description, "initial");
    assert!(status.iter().all(|m| m.applied));
    assert_eq!(store.backend(), db.backend());
    // Nothing is left to apply.
    assert!(store.migrate().await.unwrap().is_empty());
    store.close().await;
}

/// A gateway and its workers start at once on a fresh database: each opens
/// (and migrates) it; they take turns instead of tripping over each other.
async fn processes_opening_a_fresh_database_at_once_all_succeed(db: TestDb) {
    let url = db.url();
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open_url(&url).await })
        })
        .collect();
    for store in opening {
        let store = store
            .await
            .unwrap()
            .expect("every opener migrates or finds it done");
        assert!(
            store
                .migration_status()
                .await
                .unwrap()
                .iter()
                .all(|m| m.applied)
        );
        store.close().await;
    }
}

#[tokio::test]
async fn a_sqlite_file_is_created_with_its_directories_in_wal_mode() {
    let (_dir, path, store) = file_store().await;
    assert!(path.exists());
    // WAL is a property of the file, so a separate connection sees it.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        conn.close().await.unwrap();
    }
    store.close().await;
}

async fn open_without_migrating_shows_pending_then_migrate_applies_them(db: TestDb) {
    let store = db
        .open_with(StoreOptions {
            migrate: false,
            ..StoreOptions::default()
        })
        .await;
    let status = store.migration_status().await.unwrap();
    assert!(status.iter().all(|m| !m.applied), "{status:?}");
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), status.len());
    assert!(applied.iter().all(|m| m.applied));
    assert!(
        store
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
    store.close().await;
}

async fn a_database_from_a_newer_clara_is_refused_clearly(db: TestDb) {
    db.open().await.close().await;
    let checksum = match db.backend() {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::BYTEA",
    };
    db.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, {checksum}, 0)"
    ))
    .await;
    let err = Store::open_url(&db.url()).await.unwrap_err();
    assert_eq!(err, StoreError::NewerSchema { version: 9999 });
    assert_eq!(
        err.to_string(),
        "the database is newer than this Clara (migration 9999 unknown)"
    );
    let store = db
        .open_with(StoreOptions {
            migrate: false,
            ..StoreOptions::default()
        })
        .await;
    let status = store.migration_status().await.unwrap();
    let last = status.last().unwrap();
    assert_eq!((last.version, last.applied), (9999, true));
}

#[tokio::test]
async fn an_unreachable_postgres_server_is_reported_in_one_sentence() {
    // Nothing listens on port 1.
    let err = Store::open_url("postgres://clara:hunter2@127.0.0.1:1/clara")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("could not reach the database at postgres://clara@127.0.0.1:1/clara: "),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password stays out: {text}");
}

#[tokio::test]
async fn a_malformed_postgres_url_is_refused_without_echoing_it() {
    let err = Store::open_url("postgres://clara:hunter2@127.0.0.1:notaport/clara")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_unwritable_directory_is_reported_as_such() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    let path = locked.join("sub").join("clara.db");
    let result = Store::open(&path).await;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Root ignores directory permissions; the check only means something for others.
    if let Err(err) = result {
        assert_eq!(
            err.to_string(),
            format!(
                "could not open the database file {}: permission denied",
                path.display()
            )
        );
    }
}

#[tokio::test]
async fn a_path_through_a_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("clara.db");
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "could not open the database file {}: ",
            path.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clara.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = Store::open(&path).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Corrupt {
            path: path.display().to_string()
        },
        "{err}"
    );
}

async fn data_survives_a_restart(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "restart").await;
    store
        .append_messages(&[msg(&p, "before restart", 10)])
        .await
        .unwrap();
    store
        .set_session_summary(p.session, "they said hi", 20)
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let store = db.open().await;
    let conv = ConversationRef {
        platform: "cli".into(),
        channel: "restart".into(),
        kind: ChannelKind::Direct,
    };
    assert_eq!(
        store.resolve_conversation(&conv).await.unwrap(),
        p.conversation
    );
    assert_eq!(
        store
            .resolve_user("cli", "restart-user", "Ann")
            .await
            .unwrap(),
        p.user
    );
    let open = store
        .current_session(p.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.id, p.session);
    assert_eq!(open.summary.as_deref(), Some("they said hi"));
    assert_eq!(
        contents(&store.session_messages(p.session).await.unwrap()),
        vec!["before restart"]
    );
}

async fn upserts_are_idempotent_and_refresh_names(db: TestDb) {
    let store = db.open().await;
    let a = store.resolve_user("discord", "42", "Ann").await.unwrap();
    assert_eq!(store.resolve_user("discord", "42", "Ann").await.unwrap(), a);
    assert_eq!(
        store.resolve_user("discord", "42", "Annie").await.unwrap(),
        a
    );
    let b = store.resolve_user("telegram", "42", "Ann").await.unwrap();
    assert_ne!(a, b, "the same id on another platform is another identity");

    let conv = ConversationRef {
        platform: "discord".into(),
        channel: "c1".into(),
        kind: ChannelKind::Group,
    };
    let c = store.resolve_conversation(&conv).await.unwrap();
    assert_eq!(store.resolve_conversation(&conv).await.unwrap(), c);
    let as_dm = ConversationRef {
        kind: ChannelKind::Direct,
        ..conv.clone()
    };
    assert_eq!(store.resolve_conversation(&as_dm).await.unwrap(), c);
    assert_eq!(store.conversation_ref(c).await.unwrap(), Some(as_dm));
    let other = ConversationRef {
        channel: "c2".into(),
        ..conv
    };
    assert_ne!(store.resolve_conversation(&other).await.unwrap(), c);

    // Concurrent first sightings agree on one id.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.resolve_user("slack", "U1", "Bo").await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

async fn recent_messages_follow_the_window_rules(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "window").await;
    // Ten messages at t = 0, 10, …, 90, plus a cancelled one at 95.
    let mut batch: Vec<_> = (0..10).map(|i| msg(&p, &format!("m{i}"), i * 10)).collect();
    let mut cancelled = msg(&p, "cut short", 95);
    cancelled.role = Role::Assistant;
    cancelled.status = MessageStatus::Cancelled;
    batch.push(cancelled);
    // Inserted out of time order: the window must still come out oldest first.
    batch.reverse();
    store.append_messages(&batch).await.unwrap();

    let w = |since, min, max| {
        let store = store.clone();
        async move {
            contents(
                &store
                    .recent_messages(p.conversation, since, min, max)
                    .await
                    .unwrap(),
            )
        }
    };
    // Time cutoff: everything at or after 60.
    assert_eq!(w(60, 0, 100).await, vec!["m6", "m7", "m8", "m9"]);
    // At least the newest 6, however old.
    assert_eq!(
        w(60, 6, 100).await,
        vec!["m4", "m5", "m6", "m7", "m8", "m9"]
    );
    // Never more than the newest 3.
    assert_eq!(w(0, 0, 3).await, vec!["m7", "m8", "m9"]);
    assert_eq!(
        w(0, 6, 3).await,
        vec!["m7", "m8", "m9"],
        "max wins over min"
    );
    // Fewer than the minimum exist: all of them.
    assert_eq!(w(1000, 50, 100).await.len(), 10);
    // Nothing young and no minimum: empty.
    assert!(w(1000, 0, 100).await.is_empty());
    // The cancelled reply is never in a window, but it is counted as stored.
    assert!(!w(0, 100, 100).await.contains(&"cut short".to_string()));
    assert_eq!(store.count_messages(p.conversation).await.unwrap(), 11);
}

async fn duplicate_event_ids_are_ignored(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "dupes").await;
    let other = place(&store, "other").await;
    let mut first = msg(&p, "first delivery", 1);
    first.event_id = Some(EventId::from("ev-1"));
    let mut again = msg(&p, "second delivery", 2);
    again.event_id = Some(EventId::from("ev-1"));
    let mut elsewhere = msg(&other, "same id, other conversation", 3);
    elsewhere.event_id = Some(EventId::from("ev-1"));
    store
        .append_messages(std::slice::from_ref(&first))
        .await
        .unwrap();
    store.append_messages(&[again, elsewhere]).await.unwrap();
    // The same message twice (a retried batch) is ignored too.
    store
        .append_messages(std::slice::from_ref(&first))
        .await
        .unwrap();

    assert_eq!(
        contents(&store.session_messages(p.session).await.unwrap()),
        vec!["first delivery"]
    );
    assert_eq!(store.count_messages(other.conversation).await.unwrap(), 1);
    assert!(
        store
            .has_event(p.conversation, &EventId::from("ev-1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .has_event(p.conversation, &EventId::from("ev-2"))
            .await
            .unwrap()
    );
    // Messages without an event id never collide.
    store
        .append_messages(&[msg(&p, "a", 4), msg(&p, "b", 5)])
        .await
        .unwrap();
    assert_eq!(store.count_messages(p.conversation).await.unwrap(), 3);
}

async fn a_batch_with_a_bad_message_is_rolled_back_whole(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "atomic").await;
    let mut bad = msg(&p, "unknown session", 2);
    bad.session = clara_core::SessionId::new();
    let err = store
        .append_messages(&[msg(&p, "good", 1), bad])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
    assert_eq!(store.count_messages(p.conversation).await.unwrap(), 0);
}

async fn reassign_thought_moves_only_user_messages(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "reassign").await;
    let cancelled = ThoughtId::new();
    let carrier = ThoughtId::new();
    let mut q1 = msg(&p, "question one", 1);
    q1.thought = cancelled;
    let mut q2 = msg(&p, "question two", 2);
    q2.thought = cancelled;
    let mut partial = msg(&p, "Well, a mon", 3);
    partial.thought = cancelled;
    partial.role = Role::Assistant;
    partial.user = None;
    partial.status = MessageStatus::Cancelled;
    let mut follow_up = msg(&p, "and also", 4);
    follow_up.thought = carrier;
    store
        .append_messages(&[q1, q2, partial, follow_up])
        .await
        .unwrap();

    assert_eq!(store.reassign_thought(cancelled, carrier).await.unwrap(), 2);
    let carried = store.thought_messages(carrier).await.unwrap();
    assert_eq!(
        contents(&carried),
        vec!["question one", "question two", "and also"]
    );
    let left = store.thought_messages(cancelled).await.unwrap();
    assert_eq!(contents(&left), vec!["Well, a mon"]);
    assert_eq!(store.reassign_thought(cancelled, carrier).await.unwrap(), 0);
}

async fn one_open_session_per_conversation(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "sessions").await;
    // place() started one at t=0; starting again returns it.
    let again = store.start_session(p.conversation, 500).await.unwrap();
    assert_eq!(again.id, p.session);
    assert_eq!(again.started_at_ms, 0);

    // Racing starts agree.
    let other = place(&store, "race").await;
    store.end_session(other.session, 1).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.start_session(other.conversation, 10 + i)
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], other.session);

    // After ending, a new one starts.
    store.end_session(p.session, 1000).await.unwrap();
    assert!(
        store
            .current_session(p.conversation)
            .await
            .unwrap()
            .is_none()
    );
    let next = store.start_session(p.conversation, 2000).await.unwrap();
    assert_ne!(next.id, p.session);
    assert_eq!(
        (
            next.started_at_ms,
            next.last_activity_at_ms,
            next.ended_at_ms
        ),
        (2000, 2000, None)
    );
    // Ending twice keeps the first end.
    store.end_session(p.session, 5000).await.unwrap();
    assert_eq!(
        store.session(p.session).await.unwrap().unwrap().ended_at_ms,
        Some(1000)
    );
    // Unknown sessions are reported.
    let err = store
        .touch_session(clara_core::SessionId::new(), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn touch_only_moves_activity_forward_and_idle_sessions_are_found(db: TestDb) {
    let store = db.open().await;
    let a = place(&store, "a").await;
    let b = place(&store, "b").await;
    let c = place(&store, "c").await;
    store.touch_session(a.session, 1_000).await.unwrap();
    store.touch_session(a.session, 500).await.unwrap();
    assert_eq!(
        store
            .current_session(a.conversation)
            .await
            .unwrap()
            .unwrap()
            .last_activity_at_ms,
        1_000
    );
    store.touch_session(b.session, 5_000).await.unwrap();
    store.touch_session(c.session, 100).await.unwrap();
    store.end_session(c.session, 200).await.unwrap();

    let idle = store.idle_sessions(2_000).await.unwrap();
    assert_eq!(
        idle.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.session],
        "ended sessions are not idle"
    );
    let idle = store.idle_sessions(10_000).await.unwrap();
    assert_eq!(
        idle.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![a.session, b.session],
        "least recent first"
    );
    assert!(
        store.idle_sessions(1_000).await.unwrap().is_empty(),
        "strictly before"
    );
}

async fn last_summary_is_the_newest_ended_session_with_one(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "summaries").await;
    assert!(store.last_summary(p.conversation).await.unwrap().is_none());
    store.end_session(p.session, 100).await.unwrap();
    store
        .set_session_summary(p.session, "first", 110)
        .await
        .unwrap();
    let second = store.start_session(p.conversation, 200).await.unwrap();
    store.end_session(second.id, 300).await.unwrap();
    store
        .set_session_summary(second.id, "second", 310)
        .await
        .unwrap();
    let third = store.start_session(p.conversation, 400).await.unwrap();
    store.end_session(third.id, 500).await.unwrap(); // ended, not yet summarised
    let open = store.start_session(p.conversation, 600).await.unwrap();
    store
        .set_session_summary(open.id, "open one", 610)
        .await
        .unwrap();

    let last = store.last_summary(p.conversation).await.unwrap().unwrap();
    assert_eq!(
        (last.session, last.summary.as_str(), last.ended_at_ms),
        (second.id, "second", 300)
    );
    let other = place(&store, "no summaries").await;
    assert!(
        store
            .last_summary(other.conversation)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn in_memory_store_works_through_the_pool() {
    let store = Store::open_in_memory().await.unwrap();
    let p = place(&store, "mem").await;
    let writer = store.writer();
    let mut pending = Vec::new();
    for i in 0..50 {
        pending.push(writer.append(msg(&p, &format!("m{i}"), i)).await);
    }
    for d in pending {
        d.await.unwrap();
    }
    assert_eq!(store.count_messages(p.conversation).await.unwrap(), 50);
    // Two in-memory stores are separate databases.
    let other = Store::open_in_memory().await.unwrap();
    assert_eq!(other.count_messages(p.conversation).await.unwrap(), 0);
}

async fn options_are_applied(db: TestDb) {
    let options = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    let store = db.open_with(options).await;
    let p = place(&store, "one connection").await;
    store.append_messages(&[msg(&p, "x", 1)]).await.unwrap();
    assert_eq!(
        store
            .recent_messages(p.conversation, 0, 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
    let err = store.count_messages(p.conversation).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::Closed {
            path: store.display_name().to_owned()
        }
    );
}

on_both_backends!(
    opening_applies_every_migration,
    processes_opening_a_fresh_database_at_once_all_succeed,
    open_without_migrating_shows_pending_then_migrate_applies_them,
    a_database_from_a_newer_clara_is_refused_clearly,
    data_survives_a_restart,
    options_are_applied,
    upserts_are_idempotent_and_refresh_names,
    recent_messages_follow_the_window_rules,
    duplicate_event_ids_are_ignored,
    a_batch_with_a_bad_message_is_rolled_back_whole,
    reassign_thought_moves_only_user_messages,
    one_open_session_per_conversation,
    touch_only_moves_activity_forward_and_idle_sessions_are_found,
    last_summary_is_the_newest_ended_session_with_one,
);

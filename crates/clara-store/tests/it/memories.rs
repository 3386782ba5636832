//! Memories on a real SQLite file and a real PostgreSQL database: every change is one transaction with its history
//! row, vectors are kept per model, forgetting keeps the history, purging does not.

use crate::common::TestDb;
use clara_core::{ChannelKind, MemoryId, MemoryKind, Scope, UserId};
use clara_store::{MemoryEvent, MemoryFilter, ModelVector, NewMemory, Provenance, StoreError};

fn new_memory(scope: Scope, text: &str) -> NewMemory {
    NewMemory {
        id: MemoryId::new(),
        scope,
        kind: MemoryKind::Fact,
        text: text.into(),
        origin: ChannelKind::Direct,
        shareable: false,
        source_conversation: None,
        source_message: None,
        happened_at_ms: 5,
    }
}

fn why(reason: &str, at_ms: i64) -> Provenance {
    Provenance {
        reason: reason.into(),
        actor: "test".into(),
        conversation: None,
        message: None,
        at_ms,
    }
}

async fn a_memory_lives_changes_and_is_forgotten_with_its_history(db: TestDb) {
    let store = db.open().await;
    let user = Scope::User(UserId::new());
    let m = new_memory(user, "Ana lives in Paris");
    let v = [0.6f32, 0.8];
    let vector = ModelVector {
        model: "m1",
        vector: &v,
    };
    store
        .insert_memory(&m, Some(vector), &why("said so", 10))
        .await
        .unwrap();
    let updated = store
        .update_memory(m.id, "Ana lives in Lyon", None, None, &why("moved", 20))
        .await
        .unwrap();
    assert_eq!(
        (updated.text.as_str(), updated.updated_at_ms),
        ("Ana lives in Lyon", 20)
    );
    // The old text's vector went with the update; the memory waits for a new one.
    assert!(store.memories_with_vectors("m1").await.unwrap().is_empty());
    assert_eq!(
        store.memories_without_vector("m1", 10).await.unwrap().len(),
        1
    );
    assert!(store.put_memory_vector(m.id, vector).await.unwrap());
    assert_eq!(store.memories_with_vectors("m1").await.unwrap()[0].1, v);
    assert_eq!(
        store.memory_vector(m.id, "m1").await.unwrap(),
        Some(v.to_vec())
    );

    let shared = store
        .set_memory_shareable(m.id, true, &why("fine in groups", 25))
        .await
        .unwrap();
    assert!(shared.shareable);
    store.forget_memory(m.id, &why("asked", 30)).await.unwrap();
    assert_eq!(store.count_memories(Some(user)).await.unwrap(), 0);
    assert!(
        !store.put_memory_vector(m.id, vector).await.unwrap(),
        "forgotten stays unindexed"
    );
    let err = store
        .update_memory(m.id, "x", None, None, &why("late", 40))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    // Reopened, the whole story is still there.
    store.close().await;
    let store = db.open().await;
    let events: Vec<MemoryEvent> = store
        .memory_history(m.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(
        events,
        [
            MemoryEvent::Add,
            MemoryEvent::Update,
            MemoryEvent::Share,
            MemoryEvent::Forget
        ]
    );
    let all = store
        .list_memories(
            user,
            MemoryFilter {
                include_forgotten: true,
                limit: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(all[0].forgotten_at_ms, Some(30));
    assert!(store.purge_memory(m.id).await.unwrap());
    assert!(store.memory_history(m.id).await.unwrap().is_empty());
    assert!(store.memory(m.id).await.unwrap().is_none());
}

async fn listings_and_lookups_stay_inside_their_scope(db: TestDb) {
    let store = db.open().await;
    let (ana, ben) = (Scope::User(UserId::new()), Scope::User(UserId::new()));
    let a = new_memory(ana, "Ana's secret");
    let b = new_memory(ben, "Ben's secret");
    for m in [&a, &b] {
        store.insert_memory(m, None, &why("t", 1)).await.unwrap();
    }
    let listed = store
        .list_memories(ana, MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].text, "Ana's secret");
    assert_eq!(store.count_memories(None).await.unwrap(), 2);
    let found = store
        .memories_by_ids(&[a.id, b.id, MemoryId::new()])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
}

async fn vectors_of_other_models_are_dropped_once_re_embedding_is_done(db: TestDb) {
    let store = db.open().await;
    let m = new_memory(Scope::User(UserId::new()), "x");
    let old = ModelVector {
        model: "old",
        vector: &[1.0],
    };
    store
        .insert_memory(&m, Some(old), &why("t", 1))
        .await
        .unwrap();
    let new = ModelVector {
        model: "new",
        vector: &[0.0, 1.0],
    };
    store.put_memory_vector(m.id, new).await.unwrap();
    assert_eq!(store.drop_other_memory_vectors("new").await.unwrap(), 1);
    assert!(store.memories_with_vectors("old").await.unwrap().is_empty());
    assert_eq!(store.memories_with_vectors("new").await.unwrap().len(), 1);
}

async fn projects_are_found_by_name_and_hold_conversations(db: TestDb) {
    let store = db.open().await;
    let garden = store.ensure_project("garden", 1).await.unwrap();
    assert_eq!(store.ensure_project("garden", 2).await.unwrap(), garden);
    assert_eq!(
        store.project(garden.id).await.unwrap(),
        Some(garden.clone())
    );
    let conversation = store
        .resolve_conversation(&clara_core::ConversationRef {
            platform: "test".into(),
            channel: "c".into(),
            kind: ChannelKind::Group,
        })
        .await
        .unwrap();
    assert_eq!(
        store.conversation_project(conversation).await.unwrap(),
        None
    );
    store
        .set_conversation_project(conversation, Some(garden.id))
        .await
        .unwrap();
    assert_eq!(
        store.conversation_project(conversation).await.unwrap(),
        Some(garden.id)
    );
}

on_both_backends!(
    a_memory_lives_changes_and_is_forgotten_with_its_history,
    listings_and_lookups_stay_inside_their_scope,
    vectors_of_other_models_are_dropped_once_re_embedding_is_done,
    projects_are_found_by_name_and_hold_conversations,
);

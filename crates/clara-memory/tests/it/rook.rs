//! Rook end to end over a real SQLite store: extraction, decisions, history,
//! scopes, forgetting, export/import and re-embedding after a change of model.

use crate::support::{ScriptedLlm, WordsEmbedder, in_project, origin, rook_with};
use clara_core::{ChannelKind, MemoryKind, Scope, UserId};
use clara_memory::{MemoryError, RecallRequest, Rook, RookConfig};
use clara_store::{MemoryEvent, MemoryFilter, Provenance, Store};

fn texts(memories: &[clara_store::MemoryRecord]) -> Vec<&str> {
    let mut t: Vec<&str> = memories.iter().map(|m| m.text.as_str()).collect();
    t.sort();
    t
}

async fn recall_texts(rook: &Rook, user: UserId, channel: ChannelKind, text: &str) -> Vec<String> {
    rook.recall(&RecallRequest {
        user,
        project: None,
        channel,
        text,
    })
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.memory.text)
    .collect()
}

#[tokio::test]
async fn extracted_facts_are_added_with_their_history() {
    let llm = ScriptedLlm::new(&[r#"{"facts": [
        {"text": "Ana works as a nurse", "kind": "fact"},
        {"text": "Ana prefers green tea", "kind": "preference"}]}"#]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm.clone()).await;
    let user = UserId::new();
    let o = origin(user, ChannelKind::Direct);
    let report = rook
        .learn("I'm a nurse, and green tea please", "Noted!", &o)
        .await
        .unwrap();
    assert_eq!((report.facts, report.added.len()), (2, 2));
    // Nothing related was remembered, so no decision needed the model.
    assert_eq!(llm.calls(), 1);

    let list = rook
        .list(Scope::User(user), MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(
        texts(&list),
        ["Ana prefers green tea", "Ana works as a nurse"]
    );
    let tea = list
        .iter()
        .find(|m| m.kind == MemoryKind::Preference)
        .unwrap();
    assert_eq!(tea.origin, ChannelKind::Direct);
    assert!(!tea.shareable, "a DM memory starts private");
    let history = rook.history(tea.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].event, MemoryEvent::Add);
    assert_eq!(
        history[0].new_text.as_deref(),
        Some("Ana prefers green tea")
    );
    assert_eq!(history[0].actor, "extraction");
    assert_eq!(history[0].message, o.message);
    assert_eq!(history[0].conversation, o.conversation);

    // The prompt carried the exchange.
    let asked = llm.asked.lock();
    assert!(asked[0].messages[1].content.contains("I'm a nurse"));
}

#[tokio::test]
async fn an_update_decision_rewrites_the_memory_and_keeps_the_old_text() {
    let llm = ScriptedLlm::new(&[r#"{"facts": ["Ana lives in Paris"]}"#]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm.clone()).await;
    let user = UserId::new();
    rook.learn(
        "I live in Paris",
        "Nice",
        &origin(user, ChannelKind::Direct),
    )
    .await
    .unwrap();

    llm.push(r#"{"facts": [{"text": "Ana lives in Lyon now", "kind": "fact"}]}"#);
    llm.push(r#"Sure: {"event": "UPDATE", "memory": 1, "text": "Ana lives in Lyon", "reason": "she moved"}"#);
    let report = rook
        .learn(
            "I moved to Lyon",
            "Exciting!",
            &origin(user, ChannelKind::Direct),
        )
        .await
        .unwrap();
    assert_eq!(report.updated.len(), 1);
    assert_eq!(llm.calls(), 3, "extraction, extraction, one decision");
    let decision_prompt = llm.asked.lock()[2].messages[1].content.clone();
    assert!(decision_prompt.contains("1. Ana lives in Paris"));

    let list = rook
        .list(Scope::User(user), MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(texts(&list), ["Ana lives in Lyon"]);
    let history = rook.history(list[0].id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].event, MemoryEvent::Update);
    assert_eq!(history[1].old_text.as_deref(), Some("Ana lives in Paris"));
    assert_eq!(history[1].new_text.as_deref(), Some("Ana lives in Lyon"));
    assert_eq!(history[1].reason, "she moved");
    // Recall finds the new text, not the old.
    let recalled = recall_texts(&rook, user, ChannelKind::Direct, "where does Ana live").await;
    assert_eq!(recalled, ["Ana lives in Lyon"]);
}

#[tokio::test]
async fn a_delete_decision_forgets_and_duplicates_cost_no_model_call() {
    let llm = ScriptedLlm::new(&[r#"{"facts": ["Ana has a dog named Rex"]}"#]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm.clone()).await;
    let user = UserId::new();
    rook.learn("My dog Rex", "Cute", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();

    // The same fact again: a near-duplicate, decided without the model.
    llm.push(r#"{"facts": ["ana has a dog named rex"]}"#);
    let report = rook
        .learn("Rex!", "Yes", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();
    assert_eq!((report.unchanged, llm.calls()), (1, 2));

    llm.push(r#"{"facts": ["Ana no longer has a dog named Rex"]}"#);
    llm.push(r#"{"event": "DELETE", "memory": 1, "reason": "Rex was rehomed"}"#);
    let report = rook
        .learn(
            "Rex went to my parents",
            "Oh",
            &origin(user, ChannelKind::Direct),
        )
        .await
        .unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert!(
        rook.list(Scope::User(user), MemoryFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let all = rook
        .list(
            Scope::User(user),
            MemoryFilter {
                include_forgotten: true,
                limit: None,
            },
        )
        .await
        .unwrap();
    assert!(all[0].forgotten_at_ms.is_some());
    let history = rook.history(all[0].id).await.unwrap();
    assert_eq!(history.last().unwrap().event, MemoryEvent::Forget);
    assert_eq!(history.last().unwrap().reason, "Rex was rehomed");
    assert!(
        recall_texts(&rook, user, ChannelKind::Direct, "Ana's dog Rex")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn bad_json_from_the_model_is_survived() {
    // Extraction that is not JSON at all is an error the job will retry.
    let llm = ScriptedLlm::new(&["Ana seems to like tea."]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm.clone()).await;
    let user = UserId::new();
    let err = rook
        .learn("tea", "ok", &origin(user, ChannelKind::Direct))
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Malformed(_)), "{err}");

    // Fenced JSON with a trailing comma is read.
    llm.push("```json\n{\"facts\": [\"Ana likes tea\",]}\n```");
    let report = rook
        .learn("tea", "ok", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();
    assert_eq!(report.added.len(), 1);

    // An unreadable decision falls back to the safe choice (add when nothing is close).
    llm.push(r#"{"facts": ["Ana likes tea and coffee"]}"#);
    llm.push("I would update memory one, probably.");
    let report = rook
        .learn("and coffee", "ok", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();
    assert_eq!((report.fallbacks, report.added.len()), (1, 1));
    assert_eq!(
        rook.list(Scope::User(user), MemoryFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn dm_memories_stay_out_of_groups_until_shared() {
    let llm = ScriptedLlm::new(&[
        r#"{"facts": ["Ana is pregnant"]}"#,
        r#"{"facts": ["Ana plays the cello"]}"#,
        // Both mention Ana, so the model may be asked whether the second is new.
        r#"{"event": "ADD"}"#,
    ]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm).await;
    let user = UserId::new();
    rook.learn("secret", "ok", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();
    rook.learn("cello", "ok", &origin(user, ChannelKind::Group))
        .await
        .unwrap();

    let q = "Ana pregnant cello";
    let mut dm = recall_texts(&rook, user, ChannelKind::Direct, q).await;
    dm.sort();
    assert_eq!(dm, ["Ana is pregnant", "Ana plays the cello"]);
    assert_eq!(
        recall_texts(&rook, user, ChannelKind::Group, q).await,
        ["Ana plays the cello"]
    );

    let secret = rook
        .list(Scope::User(user), MemoryFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.text == "Ana is pregnant")
        .unwrap();
    let why = Provenance {
        reason: "Ana said it is fine to mention".into(),
        actor: "person".into(),
        conversation: None,
        message: None,
        at_ms: 1,
    };
    rook.set_shareable(secret.id, true, &why).await.unwrap();
    assert_eq!(
        recall_texts(&rook, user, ChannelKind::Group, q).await.len(),
        2
    );
    let history = rook.history(secret.id).await.unwrap();
    assert_eq!(history.last().unwrap().event, MemoryEvent::Share);
}

#[tokio::test]
async fn project_facts_go_to_the_project_and_are_shared_by_its_members() {
    let store = Store::open_in_memory().await.unwrap();
    let project = store.ensure_project("garden", 1).await.unwrap().id;
    let llm = ScriptedLlm::new(&[r#"{"facts": [
        {"text": "The garden project plants tomatoes in May", "about": "project"},
        {"text": "Ana owns a spade", "about": "person"}]}"#]);
    let rook = rook_with(store, llm.clone()).await;
    let (ana, ben) = (UserId::new(), UserId::new());
    rook.learn(
        "we plant tomatoes in May; I have a spade",
        "ok",
        &in_project(origin(ana, ChannelKind::Group), project),
    )
    .await
    .unwrap();
    assert!(
        llm.asked.lock()[0].messages[1]
            .content
            .contains("\"garden\"")
    );

    let project_memories = rook
        .list(Scope::Project(project), MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(
        texts(&project_memories),
        ["The garden project plants tomatoes in May"]
    );
    // Ben, in the project's conversation, recalls the project's memory but not Ana's.
    let recalled: Vec<String> = rook
        .recall(&RecallRequest {
            user: ben,
            project: Some(project),
            channel: ChannelKind::Group,
            text: "tomatoes spade garden",
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.memory.text)
        .collect();
    assert_eq!(recalled, ["The garden project plants tomatoes in May"]);
}

#[tokio::test]
async fn a_new_embedding_model_re_embeds_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clara.db");
    let user = UserId::new();
    {
        let store = Store::open(&path).await.unwrap();
        let llm = ScriptedLlm::new(&[
            r#"{"facts": ["Ana speaks Portuguese", "Ana owns a bike"]}"#,
            r#"{"event": "ADD"}"#,
        ]);
        let rook = rook_with(store.clone(), llm).await;
        rook.learn("x", "y", &origin(user, ChannelKind::Direct))
            .await
            .unwrap();
        store.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    let rook = Rook::open(
        store.clone(),
        WordsEmbedder::new("test/words-v2"),
        None,
        RookConfig::default(),
    )
    .await
    .unwrap();
    // Vectors of the old model are never compared with the new one's.
    assert!(
        recall_texts(&rook, user, ChannelKind::Direct, "Portuguese")
            .await
            .is_empty()
    );
    assert_eq!(rook.reembed_pending(1).await.unwrap(), 1);
    assert_eq!(rook.reembed_pending(10).await.unwrap(), 1);
    assert_eq!(rook.reembed_pending(10).await.unwrap(), 0);
    assert_eq!(
        recall_texts(
            &rook,
            user,
            ChannelKind::Direct,
            "does Ana speak Portuguese"
        )
        .await[0],
        "Ana speaks Portuguese"
    );
    assert!(
        store
            .memories_with_vectors("test/words")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .memories_with_vectors("test/words-v2")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn export_then_import_restores_memories_once() {
    let llm = ScriptedLlm::new(&[
        r#"{"facts": ["Ana runs marathons", "Ana is vegetarian"]}"#,
        r#"{"event": "ADD"}"#,
    ]);
    let rook = rook_with(Store::open_in_memory().await.unwrap(), llm).await;
    let user = UserId::new();
    rook.learn("x", "y", &origin(user, ChannelKind::Direct))
        .await
        .unwrap();
    let exported = rook.export(Scope::User(user)).await.unwrap();
    assert_eq!(exported.len(), 2);
    let line = serde_json::to_string(&exported[0]).unwrap();
    assert!(line.contains("\"scope\":\"user:"));

    let other = rook_with(
        Store::open_in_memory().await.unwrap(),
        ScriptedLlm::new(&[]),
    )
    .await;
    assert_eq!(other.import(&exported, None, 5).await.unwrap(), 2);
    assert_eq!(
        other.import(&exported, None, 6).await.unwrap(),
        0,
        "ids already there"
    );
    assert_eq!(
        recall_texts(&other, user, ChannelKind::Direct, "is Ana vegetarian").await[0],
        "Ana is vegetarian"
    );
    let history = other.history(exported[0].id).await.unwrap();
    assert_eq!(history[0].actor, "import");
}

#[tokio::test]
async fn forgetting_an_unknown_memory_is_refused() {
    let rook = rook_with(
        Store::open_in_memory().await.unwrap(),
        ScriptedLlm::new(&[]),
    )
    .await;
    let why = Provenance {
        reason: "test".into(),
        actor: "person".into(),
        conversation: None,
        message: None,
        at_ms: 1,
    };
    let err = rook
        .forget(clara_core::MemoryId::new(), &why)
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::NotYours(_)));
}

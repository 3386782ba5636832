//! Tool runs are stored with Clara's message (or without one), read back per
//! message and newest first; standing grants and pins are upserted.

use crate::common::{Place, TestDb, msg, place};
use clara_core::{Permission, Role, ThoughtId, ToolGrant, ToolPin, ToolRun};
use clara_store::NewMessage;

fn run(name: &str, arguments: &str, result: &str, ok: bool, permission: Permission) -> ToolRun {
    ToolRun {
        call_id: format!("call-{name}"),
        name: name.into(),
        arguments: arguments.into(),
        result: result.into(),
        ok,
        permission,
        started_at_ms: 1_000,
        duration_ms: 42,
    }
}

fn reply(p: &Place, content: &str, at_ms: i64, runs: Vec<ToolRun>) -> NewMessage {
    let mut m = msg(p, content, at_ms);
    m.role = Role::Assistant;
    m.user = None;
    m.tool_runs = runs;
    m
}

async fn runs_are_stored_with_their_message_in_order(db: TestDb) {
    let store = db.open().await;
    let p = place(&store, "ann").await;
    let runs = vec![
        run(
            "everything__echo",
            r#"{"message":"hi"}"#,
            "Echo: hi",
            true,
            Permission::Owner {
                owner: "telegram:1".into(),
                always: true,
            },
        ),
        run(
            "clara__current_time",
            "{}",
            "12:00",
            true,
            Permission::Policy,
        ),
        run(
            "shell__exec",
            r#"{"cmd":"rm -rf /"}"#,
            "refused: the owner said no",
            false,
            Permission::Refused {
                reason: "the owner said no".into(),
            },
        ),
    ];
    let with_tools = reply(&p, "done", 2_000, runs.clone());
    let plain = reply(&p, "no tools here", 3_000, Vec::new());
    let writer = store.writer();
    writer.append(with_tools.clone()).await.await.unwrap();
    writer.append(plain.clone()).await.await.unwrap();
    // A retried write stores the runs once.
    store
        .append_messages(std::slice::from_ref(&with_tools))
        .await
        .unwrap();

    let found = store
        .tool_runs_for_messages(&[with_tools.id, plain.id])
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "only the message with runs is in the map");
    assert_eq!(found[&with_tools.id], runs);
    assert!(store.tool_runs_for_messages(&[]).await.unwrap().is_empty());

    let recent = store
        .recent_tool_runs(Some(p.conversation), 2)
        .await
        .unwrap();
    let names: Vec<&str> = recent.iter().map(|(_, _, r)| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["shell__exec", "clara__current_time"],
        "newest first"
    );
    assert!(
        recent
            .iter()
            .all(|(c, m, _)| *c == p.conversation && *m == Some(with_tools.id))
    );
}

async fn runs_of_a_reply_that_delivered_nothing_are_kept(db: TestDb) {
    let store = db.open().await;
    let ann = place(&store, "ann").await;
    let bob = place(&store, "bob").await;
    let failed = vec![run(
        "everything__echo",
        "{}",
        "timed out",
        false,
        Permission::Policy,
    )];
    let thought = ThoughtId::new();
    store
        .record_tool_runs(ann.conversation, None, thought, &failed)
        .await
        .unwrap();
    // Recording it twice (a retry) does not double it; nothing is a no-op.
    store
        .record_tool_runs(ann.conversation, None, thought, &failed)
        .await
        .unwrap();
    store
        .record_tool_runs(ann.conversation, None, ThoughtId::new(), &[])
        .await
        .unwrap();
    // And one with a message stored earlier, in another conversation.
    let bobs = reply(&bob, "later", 5_000, Vec::new());
    store
        .append_messages(std::slice::from_ref(&bobs))
        .await
        .unwrap();
    let later = vec![run(
        "clara__current_time",
        "{}",
        "now",
        true,
        Permission::Policy,
    )];
    store
        .record_tool_runs(bob.conversation, Some(bobs.id), ThoughtId::new(), &later)
        .await
        .unwrap();

    let all = store.recent_tool_runs(None, 10).await.unwrap();
    assert_eq!(
        all,
        vec![
            (bob.conversation, Some(bobs.id), later[0].clone()),
            (ann.conversation, None, failed[0].clone()),
        ]
    );
    assert_eq!(
        store
            .recent_tool_runs(Some(ann.conversation), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.tool_runs_for_messages(&[bobs.id]).await.unwrap()[&bobs.id],
        later
    );
}

fn grant(tool: &str, args: &str, by: &str, at_ms: i64) -> ToolGrant {
    ToolGrant {
        tool: tool.into(),
        arguments_sha256: args.into(),
        definition_sha256: format!("def-{at_ms}"),
        granted_by: by.into(),
        granted_at_ms: at_ms,
    }
}

async fn grants_are_upserted_and_withdrawn_per_tool(db: TestDb) {
    let store = db.open().await;
    assert!(store.tool_grants().await.unwrap().is_empty());
    store
        .add_tool_grant(&grant("a__x", "h1", "telegram:1", 1))
        .await
        .unwrap();
    store
        .add_tool_grant(&grant("a__x", "h2", "telegram:1", 2))
        .await
        .unwrap();
    store
        .add_tool_grant(&grant("b__y", "h1", "discord:9", 3))
        .await
        .unwrap();
    // The same tool and arguments again: replaced, not added.
    let newer = grant("a__x", "h1", "discord:9", 4);
    store.add_tool_grant(&newer).await.unwrap();
    assert_eq!(
        store.tool_grant("a__x", "h1").await.unwrap(),
        Some(newer.clone())
    );
    assert_eq!(store.tool_grant("a__x", "h3").await.unwrap(), None);
    let grants = store.tool_grants().await.unwrap();
    assert_eq!(
        grants,
        vec![
            newer,
            grant("a__x", "h2", "telegram:1", 2),
            grant("b__y", "h1", "discord:9", 3)
        ]
    );
    assert_eq!(store.remove_tool_grants("a__x").await.unwrap(), 2);
    assert_eq!(store.remove_tool_grants("a__x").await.unwrap(), 0);
    assert_eq!(
        store.tool_grants().await.unwrap(),
        vec![grant("b__y", "h1", "discord:9", 3)]
    );
}

async fn a_pin_is_set_and_replaced(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.tool_pin("a__x").await.unwrap(), None);
    let first = ToolPin {
        tool: "a__x".into(),
        definition_sha256: "aaa".into(),
        pinned_at_ms: 1,
    };
    store.set_tool_pin(&first).await.unwrap();
    assert_eq!(store.tool_pin("a__x").await.unwrap(), Some(first));
    let second = ToolPin {
        tool: "a__x".into(),
        definition_sha256: "bbb".into(),
        pinned_at_ms: 2,
    };
    store.set_tool_pin(&second).await.unwrap();
    assert_eq!(store.tool_pin("a__x").await.unwrap(), Some(second));
    assert_eq!(store.tool_pin("b__y").await.unwrap(), None);
}

on_both_backends!(
    runs_are_stored_with_their_message_in_order,
    runs_of_a_reply_that_delivered_nothing_are_kept,
    grants_are_upserted_and_withdrawn_per_tool,
    a_pin_is_set_and_replaced,
);

//! `clara migrate --from sqlite:… --to postgres://…` as an operator runs it,
//! against the real PostgreSQL test server.

use crate::common::pg::{drop_schema, fresh_schema};
use crate::common::{clara, run, text};
use clara_core::{ChannelKind, ConversationRef, MessageId, Role, ThoughtId};
use clara_store::{MessageStatus, NewMessage, Store};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_installation_moves_into_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("data").join("clara.db");
    let source = Store::open(&db_path).await.unwrap();
    let conversation = source
        .resolve_conversation(&ConversationRef {
            platform: "cli".into(),
            channel: "ann".into(),
            kind: ChannelKind::Direct,
        })
        .await
        .unwrap();
    let session = source.start_session(conversation, 0).await.unwrap().id;
    let user = source.resolve_user("cli", "ann", "Ann").await.unwrap();
    let messages: Vec<NewMessage> = (0..1_234)
        .map(|i| NewMessage {
            id: MessageId::new(),
            conversation,
            session,
            thought: ThoughtId::new(),
            user: Some(user),
            role: Role::User,
            content: format!("message {i}"),
            event_id: None,
            status: MessageStatus::Complete,
            created_at_ms: i,
            usage: None,
            tool_runs: Vec::new(),
        })
        .collect();
    source.append_messages(&messages).await.unwrap();
    source.close().await;

    let (schema, url) = fresh_schema().await;
    let from = format!("sqlite:{}", db_path.display());
    let copy = |batch: &str| {
        let mut cmd = clara(&dir.path().join("data"), dir.path());
        cmd.args(["migrate", "--from", &from, "--to", &url, "--batch", batch]);
        cmd
    };
    let out = run(&mut copy("100"), "").await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Copying ") && stdout.contains("(SQLite) into postgres://"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["messages", "1234", "rows"]),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Copied 1238 rows now (1238 in all); every table's count matches the source."
        ),
        "{stdout}"
    );

    // Clara on PostgreSQL sees the conversation as it was.
    let target = Store::open_url(&url).await.unwrap();
    let window = target.recent_messages(conversation, 0, 0, 2).await.unwrap();
    assert_eq!(
        window
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>(),
        ["message 1232", "message 1233"]
    );
    target.close().await;

    // Running it again copies nothing more and still verifies.
    let out = run(&mut copy("100"), "").await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Resuming: 1238 of 1238 rows"), "{stdout}");
    assert!(
        stdout.contains("Copied 0 rows now (1238 in all)"),
        "{stdout}"
    );

    // A row the target lost is reported as a mismatch in one sentence.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("DELETE FROM messages WHERE seq = (SELECT MAX(seq) FROM messages)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let out = run(&mut copy("100"), "").await;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "clara: The copy does not match: messages has 1234 rows in the source but 1233 in the target."
    );
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_missing_source_is_reported_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.args([
        "migrate",
        "--from",
        &format!("sqlite:{}", missing.display()),
        "--to",
        "postgres://postgres@127.0.0.1:1/x",
    ]);
    let out = run(&mut cmd, "").await;
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "clara: the source database {} does not exist; --from must name the SQLite file Clara has been using",
            missing.display()
        )
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn an_unreachable_target_is_one_sentence_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("clara.db");
    Store::open(&db_path).await.unwrap().close().await;
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.args([
        "migrate",
        "--from",
        &format!("sqlite:{}", db_path.display()),
        "--to",
        "postgres://clara:hunter2@127.0.0.1:1/clara",
    ]);
    let out = run(&mut cmd, "").await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "clara: could not open the target database (--to): could not reach the database at postgres://clara@127.0.0.1:1/clara: "
        ),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("hunter2") && !text(&out.stdout).contains("hunter2"));
}

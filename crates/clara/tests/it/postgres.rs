//! Clara with `DATABASE_URL=postgres://…`: the store and the memory index live in
//! PostgreSQL (pgvector), across runs.

use crate::common::pg::{drop_schema, fresh_schema};
use crate::common::{chat_requests, clara, run, text, with_fake};
use clara_testkit::fake_openai::FakeOpenAi;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keeps_its_history_and_memory_index_in_postgres() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (schema, url) = fresh_schema().await;
    // Where the pgvector extension lives, next to the schema.
    let url = url.replace(
        &format!("search_path%3D{schema}"),
        &format!("search_path%3D{schema},public"),
    );

    let status = run(
        clara(&data, dir.path())
            .env("DATABASE_URL", &url)
            .args(["migrate", "status"]),
        "",
    )
    .await;
    let listed = text(&status.stdout);
    assert!(
        listed.contains("database: postgres://") && listed.contains("pending"),
        "{listed}\n{}",
        text(&status.stderr)
    );

    for line in ["hello there\n", "what did I say?\n"] {
        let mut cmd = clara(&data, dir.path());
        with_fake(&mut cmd, &fake);
        cmd.env("DATABASE_URL", &url);
        let out = run(cmd.arg("chat"), line).await;
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    }
    assert!(
        !data.join("clara.db").exists(),
        "no SQLite file when the store is in PostgreSQL"
    );
    // The second run's prompt holds the first run's exchange, read from PostgreSQL.
    let messages = chat_requests(&fake)[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let history: Vec<_> = messages
        .iter()
        .skip(1)
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        history,
        ["hello there", "You said: hello there", "what did I say?"]
    );

    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 4);
    // Memory is on by default; with the store in PostgreSQL its index is pgvector.
    let index: Option<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name LIKE 'memory_index_%'",
    )
    .fetch_optional(&mut conn)
    .await
    .unwrap();
    assert_eq!(index.as_deref(), Some("memory_index_384"));
    conn.close().await.unwrap();
    drop_schema(&schema).await;
}

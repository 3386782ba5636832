//! A fresh schema on the PostgreSQL test server for a binary test.
#![allow(dead_code)]

use sqlx::Connection;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fresh schema on the test server (`CLARA_TEST_POSTGRES_URL`, default the
/// local `test` database), and the URL that uses it. Fails the test with what to
/// do when the server is not there.
pub async fn fresh_schema() -> (String, String) {
    let server = std::env::var("CLARA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::PgConnection::connect(&server),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        other => panic!(
            "PostgreSQL is not reachable at {server} ({other:?}); this test needs it: start it \
             with `scripts/services.sh`, or point CLARA_TEST_POSTGRES_URL at a running server"
        ),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("clara_test_{now}_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{schema}");
    (schema, url)
}

pub async fn drop_schema(schema: &str) {
    let server = std::env::var("CLARA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
}

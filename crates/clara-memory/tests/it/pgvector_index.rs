//! The pgvector [`MemoryIndex`] against a real PostgreSQL with pgvector, each
//! test in a fresh schema: the conformance suite the in-process index runs too
//! (scope isolation above all), then what only pgvector has (HNSW, rebuilds, a
//! table per dimension, connection errors). Without PostgreSQL these tests fail,
//! never skip.

use clara_memory::index::conformance::{DIM, id, ids, memory, query, sorted_ids, unit, user};
use clara_memory::index::{IndexError, IndexedMemory, MemoryIndex, PgVectorIndex};
use sqlx::Connection;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

fn server() -> String {
    std::env::var("CLARA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn admin() -> sqlx::PgConnection {
    let server = server();
    match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::PgConnection::connect(&server),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        other => panic!(
            "PostgreSQL is not reachable at {server} ({other:?}); these tests need it with the \
             pgvector extension: run `scripts/services.sh` (it starts PostgreSQL and builds \
             pgvector), or point CLARA_TEST_POSTGRES_URL at such a server"
        ),
    }
}

/// A fresh schema (dropped on drop) and an index in it.
struct Fresh {
    schema: String,
    url: String,
    index: PgVectorIndex,
}

impl std::ops::Deref for Fresh {
    type Target = PgVectorIndex;

    fn deref(&self) -> &PgVectorIndex {
        &self.index
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server()).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// An empty index of [`DIM`] dimensions in a schema of its own.
async fn fresh() -> Fresh {
    let mut conn = admin().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let schema = format!("clara_test_{now}_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let server = server();
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{schema},public");
    let index = PgVectorIndex::connect(&url, DIM).await.unwrap();
    Fresh { schema, url, index }
}

/// The behaviour every index shares.
mod conformance {
    clara_memory::memory_index_conformance!(super::fresh);
}

/// A small scope among a large one, searched both ways: exactly (the default
/// for a scope this size) and through HNSW with the scope filter (iterative
/// scan). Either way the small scope's memories are all found, best first, and
/// never another's.
#[tokio::test]
async fn a_small_scope_is_found_whole_beside_a_large_one() {
    let f = fresh().await;
    let exact = f.index.clone();
    let hnsw = f.index.clone().exact_below(0);
    for index in [&exact, &hnsw] {
        small_scope_among_a_crowd(index).await;
    }
}

async fn small_scope_among_a_crowd(index: &PgVectorIndex) {
    let (crowd, few) = (user(1), user(2));
    // 1,500 memories of another person, all near the query.
    let near = unit(7);
    let crowd_rows: Vec<IndexedMemory> = (0..1_500u128)
        .map(|n| {
            let mut v = near.clone();
            v[(n as usize) % DIM] += 0.05;
            clara_llm::embed::normalize(&mut v);
            memory(1_000 + n, crowd, "someone else's note", v)
        })
        .collect();
    index.rebuild(crowd_rows).await.unwrap();
    for n in 0..3 {
        index
            .upsert(memory(n + 1, few, "my own note", unit(100 + n as u64)))
            .await
            .unwrap();
    }
    let got = index.search(query(&[few], &near, "")).await.unwrap();
    assert_eq!(
        sorted_ids(&got),
        [1, 2, 3],
        "all three, and nothing of the crowd"
    );
    assert!(got.iter().all(|c| c.scope == few));
    // Best first.
    let scores: Vec<f32> = got.iter().map(|c| c.vector_score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(index.len().await.unwrap(), 1_503);
}

/// A rebuild replaces everything with exactly what it was given (the last of
/// duplicates).
#[tokio::test]
async fn a_rebuild_leaves_exactly_what_it_was_given() {
    let f = fresh().await;
    let (alice, bob) = (user(1), user(2));
    for n in 1..=3 {
        f.upsert(memory(n, alice, "old note", unit(n as u64)))
            .await
            .unwrap();
    }
    assert_eq!(
        f.rebuild([
            memory(7, bob, "first take", unit(8)),
            memory(7, bob, "fresh start", unit(7)),
        ])
        .await
        .unwrap(),
        1
    );
    assert_eq!(f.len().await.unwrap(), 1);
    let v7 = unit(7);
    let got = f.search(query(&[bob], &v7, "fresh")).await.unwrap();
    assert_eq!(ids(&got), [7]);
    assert!(got[0].keyword_score.is_some(), "the last text was kept");
    assert!(
        f.search(query(&[alice], &v7, "note"))
            .await
            .unwrap()
            .is_empty()
    );
    let err = f
        .rebuild([memory(8, bob, "short", vec![0.0; 3])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, IndexError::Dimension { got: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        f.len().await.unwrap(),
        1,
        "a refused rebuild changes nothing"
    );
}

#[tokio::test]
async fn indexes_of_two_dimensions_live_side_by_side() {
    let f = fresh().await;
    let small = &f.index;
    let big = PgVectorIndex::connect(&f.url, 32).await.unwrap();
    small
        .upsert(memory(1, user(1), "small", unit(1)))
        .await
        .unwrap();
    let mut v = vec![0.0f32; 32];
    v[0] = 1.0;
    big.upsert(memory(2, user(1), "big", v.clone()))
        .await
        .unwrap();
    assert_eq!(
        ids(&big.search(query(&[user(1)], &v, "")).await.unwrap()),
        [2]
    );
    assert_eq!(small.len().await.unwrap(), 1);
    assert_eq!(big.len().await.unwrap(), 1);
    big.remove(id(1)).await.unwrap();
    assert_eq!(
        small.len().await.unwrap(),
        1,
        "each dimension its own table"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_index_error_without_the_password() {
    let err = PgVectorIndex::connect("postgres://rook:hunter2@127.0.0.1:1/x", DIM)
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Backend(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

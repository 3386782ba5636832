//! The pgvector [`MemoryIndex`] against a real PostgreSQL with pgvector, each
//! test in a fresh schema: the same behaviour as the in-process index, scope
//! isolation above all.
#![cfg(feature = "pgvector")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use clara_core::tokens::{EstimatedTokens, TokenCounter};
use clara_core::{MemoryId, MemoryKind, ProjectId, Scope, UserId};
use clara_memory::index::{
    Candidate, IndexError, IndexQuery, IndexedMemory, MemoryIndex, PgVectorIndex,
};
use sqlx::Connection;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

const DIM: usize = 16;

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

async fn fresh_with_dim(dim: usize) -> Fresh {
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
    let index = PgVectorIndex::connect(&url, dim).await.unwrap();
    Fresh { schema, url, index }
}

async fn fresh() -> Fresh {
    fresh_with_dim(DIM).await
}

/// A deterministic unit vector per seed (the in-process index's tests use the same).
fn unit(seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    clara_llm::embed::normalize(&mut v);
    v
}

fn id(n: u128) -> MemoryId {
    MemoryId(Uuid::from_u128(n))
}

fn user(n: u128) -> Scope {
    Scope::User(UserId(Uuid::from_u128(n)))
}

fn memory(n: u128, scope: Scope, text: &str, vector: Vec<f32>) -> IndexedMemory {
    IndexedMemory {
        id: id(n),
        scope,
        private: false,
        kind: MemoryKind::Fact,
        text: text.to_owned(),
        vector,
        time_ms: n as i64,
    }
}

fn query<'a>(scopes: &'a [Scope], vector: &'a [f32], text: &'a str) -> IndexQuery<'a> {
    IndexQuery {
        scopes,
        include_private: false,
        vector,
        text,
        limit: 10,
    }
}

fn ids(candidates: &[Candidate]) -> Vec<u128> {
    candidates.iter().map(|c| c.id.0.as_u128()).collect()
}

#[tokio::test]
async fn a_query_sees_only_the_scopes_it_names() {
    let f = fresh().await;
    let index = &f.index;
    let (alice, bob, project) = (
        user(1),
        user(2),
        Scope::Project(ProjectId(Uuid::from_u128(3))),
    );
    index
        .upsert(memory(1, alice, "alice likes tea", unit(1)))
        .await
        .unwrap();
    index
        .upsert(memory(2, bob, "bob likes tea", unit(1)))
        .await
        .unwrap();
    index
        .upsert(memory(3, project, "the project drinks tea", unit(1)))
        .await
        .unwrap();
    let v = unit(1);
    let got = index.search(query(&[alice], &v, "tea")).await.unwrap();
    assert_eq!(ids(&got), [1]);
    assert_eq!(got[0].scope, alice);
    let mut got = ids(&index
        .search(query(&[alice, project], &v, "tea"))
        .await
        .unwrap());
    got.sort_unstable();
    assert_eq!(got, [1, 3]);
    assert!(
        index
            .search(query(&[user(9)], &v, "tea"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .search(query(&[], &v, "tea"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(index.len().await.unwrap(), 3);
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
    let mut found = ids(&got);
    found.sort_unstable();
    assert_eq!(found, [1, 2, 3], "all three, and nothing of the crowd");
    assert!(got.iter().all(|c| c.scope == few));
    // Best first.
    let scores: Vec<f32> = got.iter().map(|c| c.vector_score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(index.len().await.unwrap(), 1_503);
}

#[tokio::test]
async fn private_memories_need_include_private() {
    let f = fresh().await;
    let index = &f.index;
    let alice = user(1);
    index
        .upsert(IndexedMemory {
            private: true,
            ..memory(1, alice, "secret tea", unit(1))
        })
        .await
        .unwrap();
    index
        .upsert(memory(2, alice, "public tea", unit(2)))
        .await
        .unwrap();
    let v = unit(1);
    assert_eq!(
        ids(&index.search(query(&[alice], &v, "tea")).await.unwrap()),
        [2]
    );
    let scopes = [alice];
    let q = IndexQuery {
        include_private: true,
        ..query(&scopes, &v, "tea")
    };
    assert_eq!(ids(&index.search(q).await.unwrap()), [1, 2]);
}

#[tokio::test]
async fn candidates_carry_both_scores_and_their_token_cost() {
    let f = fresh().await;
    let index = &f.index;
    let alice = user(1);
    index
        .upsert(memory(1, alice, "walks the dog daily", unit(1)))
        .await
        .unwrap();
    index
        .upsert(memory(2, alice, "plays chess", unit(2)))
        .await
        .unwrap();
    let v = unit(1);
    let got = index
        .search(IndexQuery {
            limit: 1,
            ..query(&[alice], &v, "chess")
        })
        .await
        .unwrap();
    // The vector hit (1, cosine 1) and the keyword hit (2), each with a cosine.
    assert_eq!(ids(&got), [1, 2]);
    assert!((got[0].vector_score.unwrap() - 1.0).abs() < 1e-5);
    assert_eq!(got[0].keyword_score, None);
    assert!(got[1].vector_score.is_some() && got[1].keyword_score.unwrap() > 0.0);
    assert_eq!(got[1].tokens, EstimatedTokens.count("plays chess"));
    assert_eq!(got[1].time_ms, 2);
    // Words match by stem: "walking" finds "walks".
    let got = index
        .search(IndexQuery {
            limit: 1,
            ..query(&[alice], &unit(2), "walking")
        })
        .await
        .unwrap();
    assert!(
        got.iter()
            .any(|c| c.id == id(1) && c.keyword_score.is_some())
    );
}

#[tokio::test]
async fn upsert_replaces_and_moves_between_scopes_and_remove_forgets() {
    let f = fresh().await;
    let index = &f.index;
    let (alice, bob) = (user(1), user(2));
    for n in 1..=5 {
        index
            .upsert(memory(
                n,
                alice,
                &format!("note {n} about cats"),
                unit(n as u64),
            ))
            .await
            .unwrap();
    }
    // Replace in place: new text, new vector.
    index
        .upsert(memory(2, alice, "now about dogs", unit(20)))
        .await
        .unwrap();
    let v = unit(20);
    let got = index.search(query(&[alice], &v, "dogs")).await.unwrap();
    assert_eq!(got[0].id, id(2));
    assert!(got[0].keyword_score.is_some());
    assert!(!ids(&index.search(query(&[alice], &v, "cats")).await.unwrap()).is_empty());
    // Move memory 1 to bob.
    index
        .upsert(memory(1, bob, "note about cats", unit(1)))
        .await
        .unwrap();
    let v1 = unit(1);
    assert_eq!(
        ids(&index.search(query(&[bob], &v1, "cats")).await.unwrap()),
        [1]
    );
    assert!(!ids(&index.search(query(&[alice], &v1, "cats")).await.unwrap()).contains(&1));
    index.remove(id(3)).await.unwrap();
    index.remove(id(3)).await.unwrap();
    index.remove(id(99)).await.unwrap();
    assert_eq!(index.len().await.unwrap(), 4);
    let v5 = unit(5);
    let got = index.search(query(&[alice], &v5, "note 5")).await.unwrap();
    assert_eq!(got[0].id, id(5));
    assert!(!ids(&got).contains(&3));
    index.remove(id(1)).await.unwrap();
    assert!(
        index
            .search(query(&[bob], &v1, "cats"))
            .await
            .unwrap()
            .is_empty()
    );
    // A rebuild leaves exactly what it was given (the last of duplicates).
    assert_eq!(
        index
            .rebuild([
                memory(7, bob, "first take", unit(8)),
                memory(7, bob, "fresh start", unit(7)),
            ])
            .await
            .unwrap(),
        1
    );
    assert_eq!(index.len().await.unwrap(), 1);
    let v7 = unit(7);
    let got = index.search(query(&[bob], &v7, "fresh")).await.unwrap();
    assert_eq!(ids(&got), [7]);
    assert!(got[0].keyword_score.is_some(), "the last text was kept");
}

#[tokio::test]
async fn wrong_dimensions_are_refused() {
    let f = fresh().await;
    let index = &f.index;
    let err = index
        .upsert(memory(1, user(1), "x", vec![0.0; 3]))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        IndexError::Dimension {
            expected: DIM,
            got: 3
        }
    ));
    let err = index
        .search(query(&[user(1)], &[0.0; 5], "x"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        IndexError::Dimension {
            expected: DIM,
            got: 5
        }
    ));
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
}

#[tokio::test]
async fn an_unreachable_server_is_an_index_error_without_the_password() {
    let err = PgVectorIndex::connect("postgres://rook:hunter2@127.0.0.1:1/x", DIM)
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Backend(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

//! The behaviour every [`MemoryIndex`] back-end shares, as one test suite
//! (feature `testing`): the in-process [`super::FlatIndex`] and pgvector run the
//! same properties, so they cannot drift apart.
//!
//! Each property is an `async fn` taking a fresh, empty index for
//! [`DIM`]-dimensional vectors and panicking when the index breaks it. The
//! [`memory_index_conformance!`](crate::memory_index_conformance) macro turns the
//! whole list into one `#[tokio::test]` per property:
//!
//! ```no_run
//! use clara_memory::index::{FlatIndex, conformance};
//!
//! async fn fresh() -> Box<FlatIndex> {
//!     Box::new(FlatIndex::new(conformance::DIM))
//! }
//!
//! clara_memory::memory_index_conformance!(fresh);
//! # fn main() {}
//! ```
//!
//! The helpers ([`unit()`], [`memory()`], [`query()`], …) build the test data; a
//! back-end's own tests (HNSW for pgvector, the binary prefilter for the flat
//! index) use them too.
//!
//! What is covered: an empty index; scopes never leak (not by vector, not by
//! keyword, not with duplicate or unknown scopes); private memories; the vector
//! retriever returns the exact nearest neighbours best first, each retriever
//! bounded by the limit; keyword hits by stem, best first, each memory once with
//! both scores; token cost, time and kind carried through; replacing in place,
//! moving between scopes, removing (twice, or unknown ids) and inserting again;
//! counts; wrong dimensions refused.

// Test code: a broken property is a panic with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{Candidate, IndexError, IndexQuery, IndexedMemory, MemoryIndex};
use clara_core::tokens::{EstimatedTokens, TokenCounter};
use clara_core::{MemoryId, MemoryKind, ProjectId, Scope, UserId};
use uuid::Uuid;

/// The vector dimension the suite's index must hold.
pub const DIM: usize = 16;

/// Runs every property of the suite as its own `#[tokio::test]`.
///
/// `$fresh` names an `async fn` (or a path to one) that returns a fresh, empty
/// index for [`DIM`](crate::index::conformance::DIM)-dimensional vectors behind
/// anything that dereferences to it (a `Box`, an `Arc`, or a guard that cleans up
/// on drop); it is called once per property. Invoke the macro inside a module of
/// its own: the tests are named after the properties.
#[macro_export]
macro_rules! memory_index_conformance {
    (@tests $fresh:path; $($property:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $property() {
                let fixture = $fresh().await;
                $crate::index::conformance::$property(&*fixture).await;
            }
        )*
    };
    ($fresh:path) => {
        $crate::memory_index_conformance!(@tests $fresh;
            an_empty_index_finds_nothing,
            a_query_sees_only_the_scopes_it_names,
            private_memories_need_include_private,
            vector_hits_are_the_exact_nearest_best_first,
            keyword_hits_match_by_stem_best_first,
            candidates_carry_both_scores_and_their_token_cost,
            upsert_replaces_a_memory_in_place,
            upsert_moves_a_memory_between_scopes,
            remove_forgets_and_tolerates_unknown_ids,
            a_removed_memory_can_be_inserted_again,
            counts_follow_inserts_replacements_and_removals,
            wrong_dimensions_are_refused,
        );
    };
}

/// A deterministic unit vector of [`DIM`] dimensions per seed (xorshift).
pub fn unit(seed: u64) -> Vec<f32> {
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

/// Memory number `n`.
pub fn id(n: u128) -> MemoryId {
    MemoryId(Uuid::from_u128(n))
}

/// Person number `n`'s scope.
pub fn user(n: u128) -> Scope {
    Scope::User(UserId(Uuid::from_u128(n)))
}

/// Project number `n`'s scope.
pub fn project(n: u128) -> Scope {
    Scope::Project(ProjectId(Uuid::from_u128(n)))
}

/// A shareable fact, number `n`, happened at `n` ms.
pub fn memory(n: u128, scope: Scope, text: &str, vector: Vec<f32>) -> IndexedMemory {
    IndexedMemory {
        id: id(n),
        scope,
        private: false,
        kind: MemoryKind::Fact,
        text: text.to_owned(),
        vector,
        time_ms: i64::try_from(n).unwrap_or(i64::MAX),
    }
}

/// A search of `scopes` without private memories, 10 candidates per retriever.
pub fn query<'a>(scopes: &'a [Scope], vector: &'a [f32], text: &'a str) -> IndexQuery<'a> {
    IndexQuery {
        scopes,
        include_private: false,
        vector,
        text,
        limit: 10,
    }
}

/// The candidates' memory numbers, in order.
pub fn ids(candidates: &[Candidate]) -> Vec<u128> {
    candidates.iter().map(|c| c.id.0.as_u128()).collect()
}

/// [`ids`], sorted.
pub fn sorted_ids(candidates: &[Candidate]) -> Vec<u128> {
    let mut ids = ids(candidates);
    ids.sort_unstable();
    ids
}

async fn insert(index: &dyn MemoryIndex, memories: impl IntoIterator<Item = IndexedMemory>) {
    for m in memories {
        index.upsert(m).await.unwrap();
    }
}

async fn search(index: &dyn MemoryIndex, q: IndexQuery<'_>) -> Vec<Candidate> {
    let got = index.search(q.clone()).await.unwrap();
    // What every search must hold, whatever it asked.
    for c in &got {
        assert!(
            q.scopes.contains(&c.scope),
            "a search of {:?} returned a memory of {:?}",
            q.scopes,
            c.scope
        );
    }
    let mut unique = ids(&got);
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        got.len(),
        "a memory came twice: {:?}",
        ids(&got)
    );
    got
}

/// An empty index holds nothing and finds nothing; removing from it is no error.
pub async fn an_empty_index_finds_nothing(index: &dyn MemoryIndex) {
    assert_eq!(index.len().await.unwrap(), 0);
    assert!(index.is_empty().await.unwrap());
    let v = unit(1);
    assert!(search(index, query(&[user(1)], &v, "tea")).await.is_empty());
    assert!(search(index, query(&[], &v, "tea")).await.is_empty());
    index.remove(id(1)).await.unwrap();
    assert_eq!(index.len().await.unwrap(), 0);
}

/// A search returns only memories of the scopes it names, by vector and by
/// keyword; unknown, missing or repeated scopes change nothing of that.
pub async fn a_query_sees_only_the_scopes_it_names(index: &dyn MemoryIndex) {
    let (alice, bob, proj) = (user(1), user(2), project(3));
    insert(
        index,
        [
            memory(1, alice, "alice likes tea", unit(1)),
            memory(2, bob, "bob likes tea", unit(1)),
            memory(3, proj, "the project drinks tea", unit(1)),
            memory(4, bob, "bob plays the oboe", unit(4)),
        ],
    )
    .await;
    let v = unit(1);
    let got = search(index, query(&[alice], &v, "tea")).await;
    assert_eq!(ids(&got), [1]);
    assert_eq!(got[0].scope, alice);
    let got = search(index, query(&[alice, proj], &v, "tea")).await;
    assert_eq!(sorted_ids(&got), [1, 3]);
    let got = search(index, query(&[alice, alice, proj, alice], &v, "tea")).await;
    assert_eq!(
        sorted_ids(&got),
        [1, 3],
        "repeated scopes, each memory once"
    );
    // Bob's words and Bob's vector, searched in Alice's scope.
    let oboe = unit(4);
    assert_eq!(
        ids(&search(index, query(&[alice], &oboe, "bob oboe")).await),
        [1]
    );
    assert!(search(index, query(&[user(9)], &v, "tea")).await.is_empty());
    assert!(search(index, query(&[], &v, "tea")).await.is_empty());
    let got = search(index, query(&[bob], &oboe, "oboe")).await;
    assert_eq!(got[0].id, id(4));
    assert_eq!(sorted_ids(&got), [2, 4]);
    assert_eq!(index.len().await.unwrap(), 4);
}

/// Private (DM-only) memories are returned only when the query includes them.
pub async fn private_memories_need_include_private(index: &dyn MemoryIndex) {
    let alice = user(1);
    insert(
        index,
        [
            IndexedMemory {
                private: true,
                ..memory(1, alice, "secret tea", unit(1))
            },
            memory(2, alice, "public tea", unit(2)),
        ],
    )
    .await;
    let v = unit(1);
    // Neither the vector retriever (memory 1 is the query's own vector) nor the
    // keyword retriever ("secret") returns it.
    assert_eq!(
        ids(&search(index, query(&[alice], &v, "secret tea")).await),
        [2]
    );
    let scopes = [alice];
    let q = IndexQuery {
        include_private: true,
        ..query(&scopes, &v, "tea")
    };
    assert_eq!(ids(&search(index, q).await), [1, 2]);
}

/// The vector retriever returns the `limit` memories of highest cosine, exactly
/// and best first, with their cosines; a limit of 0 returns nothing.
pub async fn vector_hits_are_the_exact_nearest_best_first(index: &dyn MemoryIndex) {
    let (alice, bob) = (user(1), user(2));
    let target = unit(999);
    let mine: Vec<IndexedMemory> = (1..=40u128)
        .map(|n| memory(n, alice, "", unit(n as u64)))
        .collect();
    insert(index, mine.clone()).await;
    // Another person's memories, nearer to the query than any of Alice's.
    insert(
        index,
        (0..5u128).map(|n| {
            let mut v = target.clone();
            v[n as usize] += 0.01;
            clara_llm::embed::normalize(&mut v);
            memory(100 + n, bob, "", v)
        }),
    )
    .await;
    let mut expected: Vec<(f32, u128)> = mine
        .iter()
        .map(|m| (super::flat::dot(&m.vector, &target), m.id.0.as_u128()))
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0));
    let scopes = [alice];
    for limit in [1, 5, 40, 100] {
        let got = search(
            index,
            IndexQuery {
                limit,
                ..query(&scopes, &target, "")
            },
        )
        .await;
        let want: Vec<u128> = expected.iter().take(limit).map(|(_, n)| *n).collect();
        assert_eq!(ids(&got), want, "limit {limit}");
        for (c, (cosine, _)) in got.iter().zip(&expected) {
            let score = c.vector_score.expect("a vector hit has its cosine");
            assert!((score - cosine).abs() < 1e-4, "{score} against {cosine}");
            assert_eq!(c.keyword_score, None, "no words were asked for");
        }
    }
    let none = IndexQuery {
        limit: 0,
        ..query(&scopes, &target, "")
    };
    assert!(search(index, none).await.is_empty());
}

/// The keyword retriever finds memories sharing a stem with the query ("walking"
/// finds "walks"), more relevant first, at most `limit` of them; a memory found
/// by both retrievers is one candidate with both scores.
pub async fn keyword_hits_match_by_stem_best_first(index: &dyn MemoryIndex) {
    let alice = user(1);
    insert(
        index,
        [
            memory(1, alice, "tea in the morning", unit(1)),
            memory(
                2,
                alice,
                "saxophone, saxophone and more saxophones",
                unit(2),
            ),
            memory(
                3,
                alice,
                "once heard a saxophone at a long and crowded wedding party in the hills",
                unit(3),
            ),
            memory(4, alice, "cello lessons on tuesdays", unit(4)),
            memory(5, alice, "walks the dog daily", unit(5)),
        ],
    )
    .await;
    let scopes = [alice];
    let v1 = unit(1);
    // One hit per retriever: the nearest by vector, then the best by words.
    let one = IndexQuery {
        limit: 1,
        ..query(&scopes, &v1, "saxophone")
    };
    let got = search(index, one).await;
    assert_eq!(ids(&got), [1, 2]);
    assert_eq!(
        got[0].keyword_score, None,
        "the vector hit has no such word"
    );
    assert!(got[1].keyword_score.unwrap() > 0.0);
    // Every memory with the word, and only those, has a keyword score; more
    // occurrences in a shorter text rank higher.
    let got = search(index, query(&scopes, &v1, "saxophone")).await;
    let scored: Vec<&Candidate> = got.iter().filter(|c| c.keyword_score.is_some()).collect();
    let mut scored_ids: Vec<u128> = scored.iter().map(|c| c.id.0.as_u128()).collect();
    scored_ids.sort_unstable();
    assert_eq!(scored_ids, [2, 3]);
    let score = |n: u128| {
        scored
            .iter()
            .find(|c| c.id == id(n))
            .and_then(|c| c.keyword_score)
            .unwrap()
    };
    assert!(score(2) > score(3), "{} <= {}", score(2), score(3));
    // By stem, and found by both retrievers: one candidate, both scores.
    let v5 = unit(5);
    let got = search(index, query(&scopes, &v5, "walking")).await;
    assert_eq!(got[0].id, id(5));
    assert!(got[0].keyword_score.unwrap() > 0.0);
    assert!((got[0].vector_score.unwrap() - 1.0).abs() < 1e-4);
    // Words nobody used find nothing by keyword.
    let got = search(index, query(&scopes, &v1, "xylophone")).await;
    assert!(got.iter().all(|c| c.keyword_score.is_none()));
}

/// Every candidate carries its cosine (keyword hits too), its keyword score when
/// it matched, its kind, time and token cost.
pub async fn candidates_carry_both_scores_and_their_token_cost(index: &dyn MemoryIndex) {
    let alice = user(1);
    insert(
        index,
        [
            memory(1, alice, "walks the dog daily", unit(1)),
            IndexedMemory {
                kind: MemoryKind::Preference,
                ..memory(2, alice, "plays chess", unit(2))
            },
        ],
    )
    .await;
    let v = unit(1);
    let scopes = [alice];
    let got = search(
        index,
        IndexQuery {
            limit: 1,
            ..query(&scopes, &v, "chess")
        },
    )
    .await;
    // The vector hit (1, cosine 1) and the keyword hit (2), each with a cosine.
    assert_eq!(ids(&got), [1, 2]);
    assert!((got[0].vector_score.unwrap() - 1.0).abs() < 1e-5);
    assert_eq!(got[0].keyword_score, None);
    assert_eq!(got[0].kind, MemoryKind::Fact);
    let cosine = super::flat::dot(&unit(2), &v);
    assert!((got[1].vector_score.unwrap() - cosine).abs() < 1e-4);
    assert!(got[1].keyword_score.unwrap() > 0.0);
    assert_eq!(got[1].kind, MemoryKind::Preference);
    assert_eq!(got[1].tokens, EstimatedTokens.count("plays chess"));
    assert_eq!(got[1].time_ms, 2);
    assert_eq!(got[1].scope, alice);
}

/// Upserting an id already held replaces its text, vector, kind and privacy.
pub async fn upsert_replaces_a_memory_in_place(index: &dyn MemoryIndex) {
    let alice = user(1);
    insert(
        index,
        (1..=5u128).map(|n| memory(n, alice, &format!("note {n} about cats"), unit(n as u64))),
    )
    .await;
    insert(index, [memory(2, alice, "now about dogs", unit(20))]).await;
    assert_eq!(index.len().await.unwrap(), 5);
    let v = unit(20);
    let got = search(index, query(&[alice], &v, "dogs")).await;
    assert_eq!(got[0].id, id(2));
    assert!(got[0].keyword_score.is_some());
    assert!((got[0].vector_score.unwrap() - 1.0).abs() < 1e-4);
    // The old text is gone: "cats" finds the others, not memory 2.
    let got = search(index, query(&[alice], &v, "cats")).await;
    let cats: Vec<u128> = got
        .iter()
        .filter(|c| c.keyword_score.is_some())
        .map(|c| c.id.0.as_u128())
        .collect();
    assert!(!cats.is_empty() && !cats.contains(&2), "{cats:?}");
    // Now private: hidden from a search without private memories.
    insert(
        index,
        [IndexedMemory {
            private: true,
            ..memory(2, alice, "now about dogs", unit(20))
        }],
    )
    .await;
    assert!(!ids(&search(index, query(&[alice], &v, "dogs")).await).contains(&2));
    assert_eq!(index.len().await.unwrap(), 5);
}

/// Upserting an id under another scope moves it: the old scope no longer finds it.
pub async fn upsert_moves_a_memory_between_scopes(index: &dyn MemoryIndex) {
    let (alice, bob) = (user(1), user(2));
    insert(
        index,
        (1..=3u128).map(|n| memory(n, alice, &format!("note {n} about cats"), unit(n as u64))),
    )
    .await;
    insert(index, [memory(1, bob, "note about cats", unit(1))]).await;
    assert_eq!(index.len().await.unwrap(), 3);
    let v1 = unit(1);
    let got = search(index, query(&[bob], &v1, "cats")).await;
    assert_eq!(ids(&got), [1]);
    assert_eq!(got[0].scope, bob);
    let got = search(index, query(&[alice], &v1, "cats")).await;
    assert_eq!(sorted_ids(&got), [2, 3]);
    // And back.
    insert(index, [memory(1, alice, "note about cats", unit(1))]).await;
    assert!(search(index, query(&[bob], &v1, "cats")).await.is_empty());
    assert_eq!(
        sorted_ids(&search(index, query(&[alice], &v1, "cats")).await),
        [1, 2, 3]
    );
}

/// A removed memory is found by neither retriever; the others stay findable;
/// removing it again, or an id never held, is no error.
pub async fn remove_forgets_and_tolerates_unknown_ids(index: &dyn MemoryIndex) {
    let alice = user(1);
    insert(
        index,
        (1..=5u128).map(|n| memory(n, alice, &format!("note {n} about cats"), unit(n as u64))),
    )
    .await;
    // From the middle: in the flat index the last memory moves into its slot.
    index.remove(id(3)).await.unwrap();
    index.remove(id(3)).await.unwrap();
    index.remove(id(99)).await.unwrap();
    assert_eq!(index.len().await.unwrap(), 4);
    let v3 = unit(3);
    let got = search(index, query(&[alice], &v3, "note 3 cats")).await;
    assert!(!ids(&got).contains(&3), "{:?}", ids(&got));
    assert_eq!(sorted_ids(&got), [1, 2, 4, 5]);
    let v5 = unit(5);
    let got = search(index, query(&[alice], &v5, "note 5")).await;
    assert_eq!(got[0].id, id(5));
    assert!(got[0].keyword_score.is_some());
    // The scope's last memories.
    for n in [1, 2, 4, 5] {
        index.remove(id(n)).await.unwrap();
    }
    assert!(search(index, query(&[alice], &v5, "cats")).await.is_empty());
    assert!(index.is_empty().await.unwrap());
}

/// A removed id can be inserted again (in its old scope or another), once.
pub async fn a_removed_memory_can_be_inserted_again(index: &dyn MemoryIndex) {
    let (alice, bob) = (user(1), user(2));
    insert(
        index,
        [
            memory(1, alice, "likes green tea", unit(1)),
            memory(2, alice, "likes black coffee", unit(2)),
        ],
    )
    .await;
    index.remove(id(1)).await.unwrap();
    insert(index, [memory(1, alice, "likes oolong tea", unit(7))]).await;
    assert_eq!(index.len().await.unwrap(), 2);
    let v7 = unit(7);
    let got = search(index, query(&[alice], &v7, "oolong")).await;
    assert_eq!(got[0].id, id(1));
    assert!(got[0].keyword_score.is_some());
    assert!((got[0].vector_score.unwrap() - 1.0).abs() < 1e-4);
    let green = search(index, query(&[alice], &v7, "green")).await;
    assert!(
        green.iter().all(|c| c.keyword_score.is_none()),
        "old text gone"
    );
    // Emptied scope, then filled again, elsewhere too.
    index.remove(id(1)).await.unwrap();
    index.remove(id(2)).await.unwrap();
    assert!(index.is_empty().await.unwrap());
    insert(index, [memory(2, bob, "likes black coffee", unit(2))]).await;
    let v2 = unit(2);
    assert_eq!(ids(&search(index, query(&[bob], &v2, "coffee")).await), [2]);
    assert!(
        search(index, query(&[alice], &v2, "coffee"))
            .await
            .is_empty()
    );
    assert_eq!(index.len().await.unwrap(), 1);
}

/// `len` and `is_empty` count memories across scopes, once per id.
pub async fn counts_follow_inserts_replacements_and_removals(index: &dyn MemoryIndex) {
    let (alice, bob, proj) = (user(1), user(2), project(3));
    insert(
        index,
        [
            memory(1, alice, "one", unit(1)),
            memory(2, bob, "two", unit(2)),
            memory(3, proj, "three", unit(3)),
            IndexedMemory {
                private: true,
                ..memory(4, alice, "four", unit(4))
            },
        ],
    )
    .await;
    assert_eq!(index.len().await.unwrap(), 4);
    assert!(!index.is_empty().await.unwrap());
    insert(index, [memory(1, alice, "one again", unit(1))]).await;
    insert(index, [memory(2, proj, "two moved", unit(2))]).await;
    assert_eq!(index.len().await.unwrap(), 4);
    for n in 1..=4 {
        index.remove(id(n)).await.unwrap();
        assert_eq!(index.len().await.unwrap(), 4 - n as usize);
    }
    assert!(index.is_empty().await.unwrap());
}

/// A vector of the wrong length is refused, in a write and in a search, and
/// nothing is stored.
pub async fn wrong_dimensions_are_refused(index: &dyn MemoryIndex) {
    let err = index
        .upsert(memory(1, user(1), "x", vec![0.0; 3]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Dimension {
                expected: DIM,
                got: 3
            }
        ),
        "{err:?}"
    );
    let err = index
        .search(query(&[user(1)], &[0.0; 5], "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IndexError::Dimension {
                expected: DIM,
                got: 5
            }
        ),
        "{err:?}"
    );
    assert!(index.is_empty().await.unwrap());
}

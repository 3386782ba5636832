//! The embedded deployment's [`MemoryIndex`]: everything in process memory,
//! partitioned by scope.
//!
//! Each scope is a partition of parallel columns (metadata, vectors, sign
//! codes, keyword postings) addressed by dense slots; removal moves the last
//! memory into the freed slot so the columns stay dense. A query reads only the
//! partitions of the scopes it names. The large per-query buffers (distances,
//! scores) are reused per thread: fresh ones would mean fresh pages, and page
//! faults, on every query.
//!
//! Vector search is exact below [`FlatConfig::exact_below`] memories per scope.
//! Above it, a scan over sign-bit codes (`quantized.rs`: one bit per dimension,
//! compared against a query weighted by magnitude) keeps the `rescore` nearest
//! ([`VectorSearch::Binary`]), which are then scored exactly: at 100k memories
//! that reads 4.8 MB of codes in order plus 256 vectors, instead of 150 MB of
//! floats.
//!
//! Keyword search is BM25 over an inverted index per partition (`keyword.rs`,
//! tokenizer in `text.rs`). Every candidate carries both scores, so ranking
//! ([`crate::rank`]) can fuse them.
//!
//! One [`parking_lot::RwLock`] guards it all: searches share it, writes hold it
//! for microseconds (a keyword removal scans the posting lists of the removed
//! memory's terms, still well under a millisecond).

use super::keyword::{Bm25Params, KeywordIndex, QueryTerms};
use super::quantized;
use super::{Candidate, IndexError, IndexQuery, IndexedMemory, MemoryIndex};
use async_trait::async_trait;
use clara_core::tokens::{EstimatedTokens, TokenCounter};
use clara_core::{MemoryId, MemoryKind, Scope};
use parking_lot::RwLock;
use std::cell::RefCell;
use std::collections::HashMap;

/// How the vector retriever searches a large partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorSearch {
    /// Score every vector exactly (the reference; ~15 ms at 100k × 384).
    Exact,
    /// Prefilter over sign bits (query-weighted), then exact scores for the `rescore`
    /// nearest codes.
    Binary {
        /// How many prefiltered memories are scored exactly per partition.
        rescore: usize,
    },
}

/// Tuning of a [`FlatIndex`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlatConfig {
    /// How partitions of at least `exact_below` memories are searched by vector.
    pub vector: VectorSearch,
    /// Partitions smaller than this are always searched exactly: it is cheap there
    /// and gives the prefilter nothing to save.
    pub exact_below: usize,
    /// The keyword retriever's BM25 parameters.
    pub bm25: Bm25Params,
}

impl Default for FlatConfig {
    /// Binary prefilter with 256 rescored, exact below 2,048 memories.
    ///
    /// Rescoring reads each kept vector from a random place in memory, the
    /// dominant cost after the scan (0.5–1 µs a vector on a busy virtual machine,
    /// where page walks are expensive), so few are kept. On real embeddings that
    /// loses little: for all-MiniLM-L6-v2 vectors of LongMemEval turns, keeping
    /// 0.3% of the memories found 0.96 of the exact top 10 (0.98 at 0.5%).
    /// Random vectors are the worst case (no structure, the true top 10 barely
    /// closer than the rest); `benches/search.rs` measures both.
    fn default() -> Self {
        Self {
            vector: VectorSearch::Binary { rescore: 256 },
            exact_below: 2048,
            bm25: Bm25Params::default(),
        }
    }
}

/// An in-process [`MemoryIndex`]: exact or binary-prefiltered vector search plus
/// BM25 keyword search, partitioned by scope. Cheap to share as
/// `Arc<dyn MemoryIndex>`; searches run concurrently with each other and wait
/// only for writes.
#[derive(Debug)]
pub struct FlatIndex {
    dim: usize,
    config: FlatConfig,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    partitions: HashMap<Scope, Partition>,
    /// Where each memory lives.
    slots: HashMap<MemoryId, (Scope, usize)>,
}

/// One scope's memories, as parallel columns indexed by slot.
#[derive(Debug, Default)]
struct Partition {
    /// What a candidate reports, one cache line per memory (a search reads it
    /// only for its few dozen candidates, each at a random slot).
    meta: Vec<Meta>,
    private_count: usize,
    /// `dim` floats per slot.
    vectors: Vec<f32>,
    /// `quantized::words(dim)` words per slot.
    codes: Vec<u64>,
    keyword: KeywordIndex,
}

/// A memory's fields other than its vector and text.
#[derive(Clone, Copy, Debug)]
struct Meta {
    id: MemoryId,
    time_ms: i64,
    tokens: u32,
    kind: MemoryKind,
    private: bool,
}

impl Meta {
    fn of(m: &IndexedMemory) -> Self {
        Self {
            id: m.id,
            time_ms: m.time_ms,
            tokens: token_estimate(&m.text),
            kind: m.kind,
            private: m.private,
        }
    }
}

/// Per-thread buffers a search reuses: a fresh 200 KB buffer per query would be
/// fresh pages, and page faults, every time.
#[derive(Debug, Default)]
struct Scratch {
    /// The prefilter's distances, one per slot of the partition being scanned.
    distances: Vec<u16>,
    /// BM25 scores by slot; all zeros between uses.
    scores: Vec<f32>,
    /// Slots the keyword retriever touched.
    touched: Vec<u32>,
    /// The keyword retriever's hits before the cut.
    hits: Vec<Hit>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A hit of one retriever: partition number (in the query's scope order), slot,
/// score.
#[derive(Clone, Copy, Debug)]
struct Hit {
    part: usize,
    slot: usize,
    score: f32,
}

impl FlatIndex {
    /// An empty index for vectors of `dim` dimensions, with the default tuning.
    pub fn new(dim: usize) -> Self {
        Self::with_config(dim, FlatConfig::default())
    }

    /// An empty index for vectors of `dim` dimensions.
    pub fn with_config(dim: usize, config: FlatConfig) -> Self {
        Self {
            dim,
            config,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The vector dimension this index holds.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Its tuning.
    pub fn config(&self) -> FlatConfig {
        self.config
    }

    /// Adds or replaces many memories under one write lock (bulk loading at
    /// start-up). Stops at the first memory with a wrong-length vector; those
    /// before it are in.
    pub fn upsert_many(
        &self,
        memories: impl IntoIterator<Item = IndexedMemory>,
    ) -> Result<(), IndexError> {
        let mut inner = self.inner.write();
        for memory in memories {
            self.check_dim(memory.vector.len())?;
            inner.upsert(memory, self.dim);
        }
        Ok(())
    }

    /// [`MemoryIndex::search`], synchronously: it never waits on anything but the
    /// lock, so async callers can call it inline.
    pub fn search_now(&self, query: &IndexQuery<'_>) -> Result<Vec<Candidate>, IndexError> {
        self.check_dim(query.vector.len())?;
        let inner = self.inner.read();
        let mut scopes: Vec<Scope> = query.scopes.to_vec();
        scopes.sort_unstable();
        scopes.dedup();
        let (scopes, parts): (Vec<Scope>, Vec<&Partition>) = scopes
            .iter()
            .filter_map(|s| Some((*s, inner.partitions.get(s)?)))
            .unzip();
        if parts.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.search_parts(query, &scopes, &parts, &mut scratch),
            // Only reachable if a search ran inside a search on one thread, which
            // nothing does; a fresh buffer keeps it correct all the same.
            Err(_) => self.search_parts(query, &scopes, &parts, &mut Scratch::default()),
        })
    }

    /// [`FlatIndex::search_now`] over the partitions that exist, with `scratch`
    /// for the large per-query buffers.
    fn search_parts(
        &self,
        query: &IndexQuery<'_>,
        scopes: &[Scope],
        parts: &[&Partition],
        scratch: &mut Scratch,
    ) -> Result<Vec<Candidate>, IndexError> {
        let include_private = query.include_private;
        let vector_hits =
            self.vector_hits(parts, query.vector, query.limit, include_private, scratch);
        // Each vector hit's BM25 score, filled in below.
        let mut vector_keyword: Vec<Option<f32>> = vec![None; vector_hits.len()];

        let terms = QueryTerms::new(query.text, parts.iter().map(|p| &p.keyword));
        // Scratch again: a common word can touch a tenth of the memories.
        let mut keyword_hits = std::mem::take(&mut scratch.hits);
        let mut touched = std::mem::take(&mut scratch.touched);
        keyword_hits.clear();
        if !terms.terms.is_empty() {
            for (i, part) in parts.iter().enumerate() {
                let n = part.meta.len();
                // Invariant: `scratch.scores` is all zeros between uses.
                if scratch.scores.len() < n {
                    scratch.scores.resize(n, 0.0);
                }
                let scores = &mut scratch.scores[..n];
                touched.clear();
                part.keyword
                    .score_into(&terms, self.config.bm25, scores, &mut touched);
                keyword_hits.extend(
                    touched
                        .iter()
                        .map(|&slot| slot as usize)
                        .filter(|&slot| include_private || !part.meta[slot].private)
                        .map(|slot| Hit {
                            part: i,
                            slot,
                            score: scores[slot],
                        }),
                );
                for (hit, keyword) in vector_hits.iter().zip(&mut vector_keyword) {
                    if hit.part == i && scores[hit.slot] > 0.0 {
                        *keyword = Some(scores[hit.slot]);
                    }
                }
                for &slot in &touched {
                    scores[slot as usize] = 0.0;
                }
            }
        }
        top(&mut keyword_hits, query.limit);

        // The union, each candidate with both scores: a keyword hit's cosine is
        // one dot product away, and the ranker needs both to fuse.
        let mut out = Vec::with_capacity(vector_hits.len() + keyword_hits.len());
        let mut seen: Vec<(usize, usize)> = Vec::with_capacity(vector_hits.len());
        for (hit, keyword) in vector_hits.iter().zip(vector_keyword) {
            seen.push((hit.part, hit.slot));
            out.push(candidate(scopes, parts, hit, Some(hit.score), keyword));
        }
        seen.sort_unstable();
        for hit in &keyword_hits {
            if seen.binary_search(&(hit.part, hit.slot)).is_ok() {
                continue;
            }
            let cosine = dot(parts[hit.part].vector(hit.slot, self.dim), query.vector);
            out.push(candidate(scopes, parts, hit, Some(cosine), Some(hit.score)));
        }
        scratch.hits = keyword_hits;
        scratch.touched = touched;
        Ok(out)
    }

    /// The `limit` best vector hits over `parts`, best first.
    fn vector_hits(
        &self,
        parts: &[&Partition],
        query: &[f32],
        limit: usize,
        include_private: bool,
        scratch: &mut Scratch,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        let query_code = quantized::QueryCode::new(query);
        for (i, part) in parts.iter().enumerate() {
            let n = part.meta.len();
            let visible = |slot: usize| include_private || !part.meta[slot].private;
            match self.config.vector {
                VectorSearch::Binary { rescore } if n >= self.config.exact_below && rescore < n => {
                    let words = quantized::words(self.dim);
                    let dist = &mut scratch.distances;
                    quantized::distances(&part.codes, words, &query_code, dist);
                    if !include_private && part.private_count > 0 {
                        for (slot, d) in dist.iter_mut().enumerate() {
                            if part.meta[slot].private {
                                *d = u16::MAX;
                            }
                        }
                    }
                    let max = u16::try_from(query_code.max_distance()).unwrap_or(u16::MAX - 1);
                    let mut slots = quantized::nearest(dist, rescore.max(limit), max);
                    // Memory order: neighbouring reads share pages and prefetches.
                    slots.sort_unstable();
                    hits.extend(slots.into_iter().map(|slot| {
                        let slot = slot as usize;
                        let score = dot(part.vector(slot, self.dim), query);
                        Hit {
                            part: i,
                            slot,
                            score,
                        }
                    }));
                }
                _ => {
                    for (slot, v) in part.vectors.chunks_exact(self.dim).enumerate() {
                        if visible(slot) {
                            hits.push(Hit {
                                part: i,
                                slot,
                                score: dot(v, query),
                            });
                        }
                    }
                }
            }
        }
        top(&mut hits, limit);
        hits
    }

    fn check_dim(&self, got: usize) -> Result<(), IndexError> {
        IndexError::check_dim(self.dim, got)
    }
}

impl Inner {
    fn upsert(&mut self, memory: IndexedMemory, dim: usize) {
        if let Some(&(scope, slot)) = self.slots.get(&memory.id) {
            if scope == memory.scope
                && let Some(part) = self.partitions.get_mut(&scope)
            {
                part.replace(slot, &memory, dim);
                return;
            }
            // It moved scopes: out of the old partition, into the new one.
            self.remove(memory.id, dim);
        }
        let part = self.partitions.entry(memory.scope).or_default();
        let slot = part.meta.len();
        part.push(&memory, dim);
        self.slots.insert(memory.id, (memory.scope, slot));
    }

    fn remove(&mut self, id: MemoryId, dim: usize) {
        let Some((scope, slot)) = self.slots.remove(&id) else {
            return;
        };
        let Some(part) = self.partitions.get_mut(&scope) else {
            return;
        };
        if let Some(moved) = part.swap_remove(slot, dim) {
            self.slots.insert(moved, (scope, slot));
        }
        if part.meta.is_empty() {
            self.partitions.remove(&scope);
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

impl Partition {
    fn vector(&self, slot: usize, dim: usize) -> &[f32] {
        &self.vectors[slot * dim..(slot + 1) * dim]
    }

    fn push(&mut self, m: &IndexedMemory, _dim: usize) {
        self.meta.push(Meta::of(m));
        self.private_count += usize::from(m.private);
        self.vectors.extend_from_slice(&m.vector);
        quantized::encode_into(&m.vector, &mut self.codes);
        self.keyword.push(&m.text);
    }

    fn replace(&mut self, slot: usize, m: &IndexedMemory, dim: usize) {
        self.private_count =
            self.private_count - usize::from(self.meta[slot].private) + usize::from(m.private);
        self.meta[slot] = Meta::of(m);
        self.vectors[slot * dim..(slot + 1) * dim].copy_from_slice(&m.vector);
        let words = quantized::words(dim);
        let mut code = Vec::with_capacity(words);
        quantized::encode_into(&m.vector, &mut code);
        self.codes[slot * words..(slot + 1) * words].copy_from_slice(&code);
        self.keyword.replace(slot, &m.text);
    }

    /// Removes `slot`, moving the last memory into it; returns the moved id.
    fn swap_remove(&mut self, slot: usize, dim: usize) -> Option<MemoryId> {
        let last = self.meta.len() - 1;
        let removed = self.meta.swap_remove(slot);
        self.private_count -= usize::from(removed.private);
        swap_remove_row(&mut self.vectors, slot, last, dim);
        swap_remove_row(&mut self.codes, slot, last, quantized::words(dim));
        self.keyword.swap_remove(slot);
        (slot != last).then(|| self.meta[slot].id)
    }
}

/// Moves row `last` of a `width`-wide row-major table into row `slot` and drops
/// the last row.
fn swap_remove_row<T: Copy>(table: &mut Vec<T>, slot: usize, last: usize, width: usize) {
    if slot != last {
        table.copy_within(last * width..(last + 1) * width, slot * width);
    }
    table.truncate(last * width);
}

fn token_estimate(text: &str) -> u32 {
    u32::try_from(EstimatedTokens.count(text)).unwrap_or(u32::MAX)
}

fn candidate(
    scopes: &[Scope],
    parts: &[&Partition],
    hit: &Hit,
    vector_score: Option<f32>,
    keyword_score: Option<f32>,
) -> Candidate {
    let meta = parts[hit.part].meta[hit.slot];
    Candidate {
        id: meta.id,
        scope: scopes[hit.part],
        kind: meta.kind,
        vector_score,
        keyword_score,
        time_ms: meta.time_ms,
        tokens: meta.tokens as usize,
    }
}

/// Keeps the `limit` highest-scoring hits, best first.
fn top(hits: &mut Vec<Hit>, limit: usize) {
    let by_score = |a: &Hit, b: &Hit| b.score.total_cmp(&a.score);
    if hits.len() > limit {
        hits.select_nth_unstable_by(limit, by_score);
        hits.truncate(limit);
    }
    hits.sort_unstable_by(by_score);
}

/// The dot product, in eight lanes so it vectorises without `unsafe`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[async_trait]
impl MemoryIndex for FlatIndex {
    async fn upsert(&self, memory: IndexedMemory) -> Result<(), IndexError> {
        self.check_dim(memory.vector.len())?;
        self.inner.write().upsert(memory, self.dim);
        Ok(())
    }

    async fn remove(&self, id: MemoryId) -> Result<(), IndexError> {
        self.inner.write().remove(id, self.dim);
        Ok(())
    }

    async fn search(&self, query: IndexQuery<'_>) -> Result<Vec<Candidate>, IndexError> {
        self.search_now(&query)
    }

    async fn len(&self) -> Result<usize, IndexError> {
        Ok(self.inner.read().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::conformance::{DIM, id, memory, query, unit, user};
    use std::sync::Arc;

    /// The behaviour every index shares.
    mod conformance {
        use super::*;

        async fn fresh() -> Box<FlatIndex> {
            Box::new(FlatIndex::new(DIM))
        }

        crate::memory_index_conformance!(fresh);
    }

    #[tokio::test]
    async fn the_binary_prefilter_agrees_with_exact_search_on_clear_neighbours() {
        let exact = FlatIndex::with_config(
            DIM,
            FlatConfig {
                vector: VectorSearch::Exact,
                ..FlatConfig::default()
            },
        );
        let binary = FlatIndex::with_config(
            DIM,
            FlatConfig {
                vector: VectorSearch::Binary { rescore: 40 },
                exact_below: 0,
                ..FlatConfig::default()
            },
        );
        let alice = user(1);
        let memories: Vec<IndexedMemory> = (0..500u128)
            .map(|n| memory(n, alice, "", unit(n as u64 + 1000)))
            .collect();
        exact.upsert_many(memories.clone()).unwrap();
        binary.upsert_many(memories).unwrap();
        for n in [3u64, 77, 250, 499] {
            let v = unit(n + 1000);
            let a = exact.search(query(&[alice], &v, "")).await.unwrap();
            let b = binary.search(query(&[alice], &v, "")).await.unwrap();
            assert_eq!(a[0].id, id(u128::from(n)), "exact finds the memory itself");
            assert_eq!(a[0], b[0], "binary too");
        }
    }

    #[tokio::test]
    async fn searches_run_while_another_task_writes() {
        let index = Arc::new(FlatIndex::new(DIM));
        let alice = user(1);
        let writer = {
            let index = Arc::clone(&index);
            tokio::spawn(async move {
                for n in 0..300u128 {
                    index
                        .upsert(memory(n, alice, "tea and cake", unit(n as u64)))
                        .await
                        .unwrap();
                    if n % 3 == 0 {
                        index.remove(id(n / 2)).await.unwrap();
                    }
                }
            })
        };
        let v = unit(7);
        for _ in 0..100 {
            let got = index.search(query(&[alice], &v, "tea")).await.unwrap();
            assert!(got.len() <= 20);
            tokio::task::yield_now().await;
        }
        writer.await.unwrap();
        let dyn_index: Arc<dyn MemoryIndex> = index;
        assert_eq!(dyn_index.len().await.unwrap(), 200);
    }
}

//! Recall search latency, exact vs the binary-prefiltered index, at 10k and 100k
//! memories in one scope (random unit vectors of dimension 384, synthetic texts).
//!
//! `cargo bench -p clara-memory --bench search` runs the full sizes;
//! `cargo test --benches` (no `--bench` argument) runs a tiny size as a smoke test.
//!
//! Each query goes through [`search_ranked_with_vector`], the path replies take
//! minus the query's embedding: index search and ranking, in hybrid mode (vector
//! + BM25) and plain-cosine mode (vector only). Two query sets:
//! - *near*: a stored vector plus noise (cosine ≈ 0.8 to its source), the usual
//!   shape of a query that has an answer;
//! - *random*: unrelated random vectors, the prefilter's hardest case, since the
//!   true top 10 are barely closer than everything else.
//!
//! Reported: p50/p95/p99 latency of each index and their ratio (latency on the
//! near set), recall@10 of the binary index's vector retriever against exact
//! search on both sets, and how often both agree on the top hit of a near query
//! (its source). Random vectors have no structure, so beyond the source a near
//! query's exact top 10 is as arbitrary as a random query's: recall@10 here is a
//! floor; real embeddings cluster and lose far less (see `FlatConfig::default`).

use clara_core::{MemoryId, MemoryKind, Scope, UserId};
use clara_memory::index::{FlatConfig, FlatIndex, IndexQuery, IndexedMemory, VectorSearch};
use clara_memory::rank::{RankConfig, RankMode};
use clara_memory::recall::{RecallQuery, search_ranked_with_vector};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

const DIM: usize = 384;

/// How many of the most frequent words of a language are function words.
const FUNCTION_WORDS: usize = 150;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit_f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A standard normal sample (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit_f32().max(1e-7);
        let v = self.unit_f32();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| self.normal()).collect();
        clara_llm::embed::normalize(&mut v);
        v
    }

    /// A Zipf-distributed word index in `0..n` (P(r) ∝ 1/r), by inverting the
    /// continuous approximation of its CDF, ln(r)/ln(n).
    fn word(&mut self, n: usize) -> usize {
        let u = self.unit_f32().max(1e-6);
        ((n as f32).powf(u) as usize).saturating_sub(1).min(n - 1)
    }

    /// A content word: Zipf over a vocabulary whose most common ranks would be
    /// function words, which the tokenizer drops; so they are skipped here, as
    /// in real text after stopword removal.
    fn content_word(&mut self, n: usize) -> usize {
        loop {
            let w = self.word(n);
            if w >= FUNCTION_WORDS {
                return w;
            }
        }
    }
}

/// A pseudo-English vocabulary of `n` words built from syllables.
fn vocabulary(n: usize) -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ter", "san", "do", "ri", "pel", "on", "ba", "vu", "gen", "tra", "ce",
        "fil", "mo", "nu", "zar", "ing", "ed", "ver", "ly", "tion", "es",
    ];
    (0..n)
        .map(|i| {
            let mut word = String::new();
            let mut x = i + 1;
            while x > 0 {
                word.push_str(SYLLABLES[x % SYLLABLES.len()]);
                x /= SYLLABLES.len();
            }
            word
        })
        .collect()
}

fn sentence(rng: &mut Rng, vocab: &[String], words: usize) -> String {
    (0..words)
        .map(|_| vocab[rng.content_word(vocab.len())].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Query {
    vector: Vec<f32>,
    text: String,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Latencies of `queries` through the ranked search path on `index`, sorted.
fn latencies(
    index: &FlatIndex,
    scope: Scope,
    queries: &[Query],
    config: &RankConfig,
) -> Vec<Duration> {
    let scopes = [scope];
    let mut out: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let recall = RecallQuery {
                scopes: &scopes,
                include_private: false,
                text: &q.text,
            };
            let start = Instant::now();
            let ranked = futures::executor::block_on(search_ranked_with_vector(
                index, &recall, &q.vector, config,
            ));
            let elapsed = start.elapsed();
            assert!(
                ranked.is_ok_and(|r| !r.is_empty()),
                "every query finds something"
            );
            elapsed
        })
        .collect();
    out.sort_unstable();
    out
}

/// Recall@10 of `fast`'s vector retriever against `exact`'s, and the share of
/// queries whose top hit both agree on.
fn recall_at_10(
    exact: &FlatIndex,
    fast: &FlatIndex,
    scope: Scope,
    queries: &[Query],
) -> (f64, f64) {
    let scopes = [scope];
    let top = |index: &FlatIndex, q: &Query| -> Vec<MemoryId> {
        let query = IndexQuery {
            scopes: &scopes,
            include_private: false,
            vector: &q.vector,
            text: "",
            limit: 10,
        };
        index
            .search_now(&query)
            .map(|c| c.into_iter().map(|c| c.id).collect())
            .unwrap_or_default()
    };
    let mut found = 0;
    let mut first = 0;
    for q in queries {
        let (a, b) = (top(exact, q), top(fast, q));
        let b_set: HashSet<&MemoryId> = b.iter().collect();
        found += a.iter().filter(|id| b_set.contains(id)).count();
        first += usize::from(!a.is_empty() && a.first() == b.first());
    }
    let n = queries.len().max(1) as f64;
    (found as f64 / (10.0 * n), first as f64 / n)
}

fn run(size: usize, query_count: usize, rng: &mut Rng, vocab: &[String]) {
    let scope = Scope::User(UserId(Uuid::from_u128(1)));
    let start = Instant::now();
    let memories: Vec<IndexedMemory> = (0..size)
        .map(|i| {
            let words = 12 + rng.word(24);
            IndexedMemory {
                id: MemoryId(Uuid::from_u128(i as u128 + 1)),
                scope,
                private: false,
                kind: MemoryKind::Fact,
                text: sentence(rng, vocab, words),
                vector: rng.unit_vector(),
                time_ms: i as i64,
            }
        })
        .collect();
    let exact = FlatIndex::with_config(
        DIM,
        FlatConfig {
            vector: VectorSearch::Exact,
            ..FlatConfig::default()
        },
    );
    let fast = FlatIndex::new(DIM);
    let (Ok(()), Ok(())) = (
        exact.upsert_many(memories.clone()),
        fast.upsert_many(memories.iter().cloned()),
    ) else {
        panic!("indexing failed");
    };
    let built = start.elapsed();

    let near: Vec<Query> = (0..query_count)
        .map(|_| {
            let source = &memories[rng.next() as usize % size];
            let noise = rng.unit_vector();
            // cos(source, query) ≈ 0.8: 0.8·source + 0.6·noise, noise ⟂ source on average.
            let mut vector: Vec<f32> = source
                .vector
                .iter()
                .zip(&noise)
                .map(|(s, n)| 0.8 * s + 0.6 * n)
                .collect();
            clara_llm::embed::normalize(&mut vector);
            let words: Vec<&str> = source.text.split(' ').take(4).collect();
            Query {
                vector,
                text: format!(
                    "{} {}",
                    words.join(" "),
                    vocab[rng.content_word(vocab.len())]
                ),
            }
        })
        .collect();
    let random: Vec<Query> = (0..query_count)
        .map(|_| Query {
            vector: rng.unit_vector(),
            text: sentence(rng, vocab, 6),
        })
        .collect();

    let (recall_near, top1_near) = recall_at_10(&exact, &fast, scope, &near);
    let (recall_random, _) = recall_at_10(&exact, &fast, scope, &random);
    println!(
        "{size} memories, {query_count} queries (indexes built in {:.1} s); binary+rescore \
         vs exact: recall@10 near {recall_near:.3}, random {recall_random:.3}; \
         same top hit (near) {top1_near:.3}",
        built.as_secs_f64()
    );
    for mode in [RankMode::Hybrid, RankMode::PlainCosine] {
        let config = RankConfig::default().with_mode(mode);
        // Warm caches, page tables and the allocator before timing.
        latencies(&exact, scope, &near[..near.len().min(50)], &config);
        latencies(&fast, scope, &near, &config);
        let exact_times = latencies(&exact, scope, &near, &config);
        let fast_times = latencies(&fast, scope, &near, &config);
        let row = |name: &str, t: &[Duration]| {
            println!(
                "  {:<13} {:<15} p50 {:>9}  p95 {:>9}  p99 {:>9}",
                mode.as_str(),
                name,
                us(percentile(t, 0.5)),
                us(percentile(t, 0.95)),
                us(percentile(t, 0.99)),
            );
        };
        row("exact", &exact_times);
        row("binary+rescore", &fast_times);
        println!(
            "  {:<13} speed-up        p50 {:.1}×  p95 {:.1}×",
            mode.as_str(),
            ratio(&exact_times, &fast_times, 0.5),
            ratio(&exact_times, &fast_times, 0.95),
        );
    }
}

fn ratio(slow: &[Duration], fast: &[Duration], q: f64) -> f64 {
    percentile(slow, q).as_secs_f64() / percentile(fast, q).as_secs_f64().max(1e-9)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let vocab = vocabulary(20_000);
    println!(
        "recall search, one scope, dim {DIM}, FlatConfig::default() (binary prefilter, 256 rescored)"
    );
    if full {
        run(10_000, 1_000, &mut rng, &vocab);
        run(100_000, 1_000, &mut rng, &vocab);
    } else {
        // Above `exact_below`, so the prefilter path runs.
        run(5_000, 20, &mut rng, &vocab);
    }
}

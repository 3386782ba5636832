//! `clara memory eval`: how well recall finds what it should, and how fast.
//!
//! Input is two JSONL files.
//!
//! **Corpus**, one memory per line:
//! `{"id": "m1", "scope": "alice", "text": "Alice moved to Lisbon"}`
//! - `id` (string or integer, unique), `scope` (any name; `user:<uuid>` and
//!   `project:<uuid>` are taken as those scopes, any other name is a project of
//!   its own), `text`: required.
//! - `time` (optional): when it was said, RFC 3339 or Unix milliseconds; it
//!   becomes the memory's `time_ms` (0 without it).
//! - `session` (optional): the conversation it came from. Parsed and kept on
//!   [`CorpusEntry`], unused by ranking today: mixing neighbouring turns into a
//!   memory's vector or keywords was measured on LongMemEval and lowered
//!   hybrid recall@5 (0.67 → 0.66 with neighbour-smoothed vectors, → 0.63 with
//!   the neighbours' words in BM25), as it blurs a turn into its neighbours.
//! - Any other field (`role`, …) is ignored.
//!
//! **Queries**, one per line:
//! `{"scope": "alice", "text": "where does Alice live?", "relevant": ["m1"]}`
//! - `scope`, `text` and `relevant` (ids from the corpus, at least one):
//!   required.
//! - `id` (optional): a name for the query. `time` (optional): when it is
//!   asked; parsed and kept on [`EvalQuery`], unused by ranking today (hiding
//!   memories dated after the question moved hybrid recall@5 by under 0.01).
//! - Any other field (`type`, …) is ignored.
//!
//! [`run`] indexes the corpus with an embedder (batched; the build time is
//! reported), then answers every query in its scope through
//! [`crate::recall::search_ranked`], the path replies take, once per mode (the
//! configured one and the [`RankMode::PlainCosine`] baseline, same index, same
//! run). It reports recall@k (a hit when any relevant id is in the top k), MRR,
//! and search latency p50/p95 with and without the query's embedding.

use crate::index::{FlatConfig, FlatIndex, IndexError, IndexedMemory};
use crate::rank::{RankConfig, RankMode};
use crate::recall::{RecallError, RecallQuery, search_ranked, search_ranked_with_vector};
use clara_core::{MemoryId, MemoryKind, ProjectId, Scope};
use clara_llm::embed::{EmbedError, Embedder};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One corpus memory.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusEntry {
    /// Its id, unique within the corpus.
    pub id: String,
    /// Its scope's name.
    pub scope: String,
    /// What it says.
    pub text: String,
    /// When it was said, Unix ms.
    pub time_ms: Option<i64>,
    /// The conversation it belongs to.
    pub session: Option<String>,
}

/// One query and what it should find.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalQuery {
    /// Its name, if given.
    pub id: Option<String>,
    /// The scope searched.
    pub scope: String,
    /// The query text.
    pub text: String,
    /// Corpus ids that answer it.
    pub relevant: Vec<String>,
    /// When it is asked, Unix ms.
    pub time_ms: Option<i64>,
}

/// Why an eval could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A line of an input file is not what the format says.
    #[error("{file} line {line}: {message}")]
    Line {
        /// `corpus` or `queries`.
        file: &'static str,
        /// 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An input file holds nothing.
    #[error("the {0} file has no entries")]
    Empty(&'static str),
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Embed(#[from] EmbedError),
    /// The embedder returned a different number of vectors than texts.
    #[error("the embedder returned {got} vectors for {expected} texts")]
    VectorCount {
        /// Texts sent.
        expected: usize,
        /// Vectors back.
        got: usize,
    },
    /// The index refused a memory.
    #[error("indexing failed: {0}")]
    Index(#[from] IndexError),
    /// Recall failed.
    #[error("recall failed: {0}")]
    Recall(#[from] RecallError),
}

/// A `time` field: RFC 3339 text or Unix milliseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeField {
    Millis(i64),
    Text(String),
}

/// An `id` field: string or integer.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdField {
    Int(i64),
    Text(String),
}

impl IdField {
    fn into_string(self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Text(s) => s,
        }
    }
}

#[derive(Deserialize)]
struct CorpusLine {
    id: IdField,
    scope: String,
    text: String,
    #[serde(default)]
    time: Option<TimeField>,
    #[serde(default)]
    session: Option<String>,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(default)]
    id: Option<IdField>,
    scope: String,
    text: String,
    relevant: Vec<IdField>,
    #[serde(default)]
    time: Option<TimeField>,
}

fn parse_time(field: Option<TimeField>) -> Result<Option<i64>, String> {
    match field {
        None => Ok(None),
        Some(TimeField::Millis(ms)) => Ok(Some(ms)),
        Some(TimeField::Text(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|e| format!("`time` {s:?} is not RFC 3339 ({e})")),
    }
}

/// Calls `each` with every non-blank line's 1-based number and text.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Parses a corpus file's contents (see the [module docs](self)).
pub fn parse_corpus(text: &str) -> Result<Vec<CorpusEntry>, EvalError> {
    let err = |line, message| EvalError::Line {
        file: "corpus",
        line,
        message,
    };
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, line) in lines(text) {
        let raw: CorpusLine = serde_json::from_str(line).map_err(|e| err(n, e.to_string()))?;
        let id = raw.id.into_string();
        if let Some(first) = seen.insert(id.clone(), n) {
            return Err(err(n, format!("id {id:?} already used on line {first}")));
        }
        let time_ms = parse_time(raw.time).map_err(|m| err(n, m))?;
        out.push(CorpusEntry {
            id,
            scope: raw.scope,
            text: raw.text,
            time_ms,
            session: raw.session,
        });
    }
    if out.is_empty() {
        return Err(EvalError::Empty("corpus"));
    }
    Ok(out)
}

/// Parses a queries file's contents; every relevant id must be in `corpus`.
pub fn parse_queries(text: &str, corpus: &[CorpusEntry]) -> Result<Vec<EvalQuery>, EvalError> {
    let err = |line, message| EvalError::Line {
        file: "queries",
        line,
        message,
    };
    let known: HashSet<&str> = corpus.iter().map(|c| c.id.as_str()).collect();
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        let raw: QueryLine = serde_json::from_str(line).map_err(|e| err(n, e.to_string()))?;
        let relevant: Vec<String> = raw.relevant.into_iter().map(IdField::into_string).collect();
        if relevant.is_empty() {
            return Err(err(
                n,
                "`relevant` is empty; a query needs at least one relevant id".to_owned(),
            ));
        }
        if let Some(missing) = relevant.iter().find(|id| !known.contains(id.as_str())) {
            return Err(err(
                n,
                format!("relevant id {missing:?} is not in the corpus"),
            ));
        }
        let time_ms = parse_time(raw.time).map_err(|m| err(n, m))?;
        out.push(EvalQuery {
            id: raw.id.map(IdField::into_string),
            scope: raw.scope,
            text: raw.text,
            relevant,
            time_ms,
        });
    }
    if out.is_empty() {
        return Err(EvalError::Empty("queries"));
    }
    Ok(out)
}

/// Whether any relevant id is among the first `k` results.
pub fn hit_at(results: &[&str], relevant: &[String], k: usize) -> bool {
    results
        .iter()
        .take(k)
        .any(|r| relevant.iter().any(|x| x == r))
}

/// 1 / the rank of the first relevant result, 0 when none is returned.
pub fn reciprocal_rank(results: &[&str], relevant: &[String]) -> f64 {
    results
        .iter()
        .position(|r| relevant.iter().any(|x| x == r))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// The `q`-quantile (0..=1) of `samples` by nearest rank; zero when empty.
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What an eval run does besides the inputs.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// The k of each recall@k reported.
    pub ks: Vec<usize>,
    /// The ranking evaluated; the [`RankMode::PlainCosine`] baseline is run with
    /// the same settings. Caps and the token budget are lifted so ranking alone
    /// is measured.
    pub config: RankConfig,
    /// The index's tuning.
    pub index: FlatConfig,
    /// Texts per embedder call while indexing.
    pub batch: usize,
}

impl Default for EvalOptions {
    /// k = 1, 5, 10; the default ranking and index; batches of 64.
    fn default() -> Self {
        Self {
            ks: vec![1, 5, 10],
            config: RankConfig::default(),
            index: FlatConfig::default(),
            batch: 64,
        }
    }
}

/// Latency percentiles of one measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
}

impl Latency {
    fn of(samples: &[Duration]) -> Self {
        Self {
            p50: percentile(samples, 0.5),
            p95: percentile(samples, 0.95),
        }
    }
}

/// How one ranking mode did.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeReport {
    /// The mode.
    pub mode: RankMode,
    /// `(k, recall@k)` for each requested k.
    pub recall: Vec<(usize, f64)>,
    /// Mean reciprocal rank of the first relevant memory within the results
    /// returned (the largest k, at least 10).
    pub mrr: f64,
    /// Search and ranking alone, the query vector given.
    pub search: Latency,
    /// Embedding the query, then search and ranking.
    pub search_with_embedding: Latency,
}

impl ModeReport {
    /// Recall at `k`, if it was measured.
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        self.recall.iter().find(|(x, _)| *x == k).map(|(_, r)| *r)
    }
}

/// The numbers of one eval run.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// The embedding model's name.
    pub model: String,
    /// Corpus memories.
    pub memories: usize,
    /// Distinct scopes in the corpus.
    pub scopes: usize,
    /// Texts embedded to build the index.
    pub embedded_texts: usize,
    /// Queries run (per mode).
    pub queries: usize,
    /// Embedding the corpus and filling the index.
    pub build: Duration,
    /// The configured mode first, then the plain-cosine baseline.
    pub modes: Vec<ModeReport>,
}

impl EvalReport {
    /// The configured mode's recall@k over the baseline's, when both are known
    /// and the baseline's is not zero.
    pub fn gain_at(&self, k: usize) -> Option<f64> {
        let mine = self.modes.first()?.recall_at(k)?;
        let base = self
            .modes
            .iter()
            .find(|m| m.mode == RankMode::PlainCosine)?
            .recall_at(k)?;
        (base > 0.0 && self.modes.len() > 1).then(|| mine / base)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The plain-text report `clara memory eval` prints.
impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "embedder: {}", self.model)?;
        writeln!(
            f,
            "corpus: {} memories in {} scope(s); {} queries",
            self.memories, self.scopes, self.queries
        )?;
        writeln!(
            f,
            "index build: {:.1} s ({} texts embedded)",
            self.build.as_secs_f64(),
            self.embedded_texts
        )?;
        let ks: Vec<usize> = self
            .modes
            .first()
            .map(|m| m.recall.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        write!(f, "{:<14}", "mode")?;
        for k in &ks {
            write!(f, " {:>10}", format!("recall@{k}"))?;
        }
        writeln!(
            f,
            " {:>7}  {:>21}  {:>21}",
            "MRR", "search p50 / p95", "+ embedding p50 / p95"
        )?;
        for m in &self.modes {
            write!(f, "{:<14}", m.mode.as_str())?;
            for (_, r) in &m.recall {
                write!(f, " {r:>10.3}")?;
            }
            writeln!(
                f,
                " {:>7.3}  {:>21}  {:>21}",
                m.mrr,
                format!("{} / {}", ms(m.search.p50), ms(m.search.p95)),
                format!(
                    "{} / {}",
                    ms(m.search_with_embedding.p50),
                    ms(m.search_with_embedding.p95)
                ),
            )?;
        }
        for k in &ks {
            if let Some(gain) = self.gain_at(*k) {
                writeln!(f, "recall@{k}: {:.2}× the plain-cosine baseline", gain)?;
            }
        }
        Ok(())
    }
}

/// Scope names to scopes: `user:<uuid>` / `project:<uuid>` as themselves, any
/// other name a project of its own (numbered in order of appearance, so runs
/// are reproducible).
#[derive(Debug, Default)]
struct ScopeNames(HashMap<String, Scope>);

impl ScopeNames {
    fn scope(&mut self, name: &str) -> Scope {
        let next = self.0.len() as u128 + 1;
        *self.0.entry(name.to_owned()).or_insert_with(|| {
            name.parse()
                .unwrap_or(Scope::Project(ProjectId(Uuid::from_u128(next))))
        })
    }

    fn get(&self, name: &str) -> Option<Scope> {
        self.0.get(name).copied()
    }
}

/// The corpus, indexed: the index plus the way back from memory ids to corpus
/// entries.
#[derive(Debug)]
pub struct EvalIndex {
    /// The index, as recall sees it.
    pub index: FlatIndex,
    /// Index entry → corpus position.
    entries: HashMap<MemoryId, usize>,
    scopes: ScopeNames,
    /// Texts embedded.
    pub embedded: usize,
    /// Time to embed and index.
    pub build: Duration,
}

/// Embeds `corpus` in batches of `options.batch` and indexes it, one memory per
/// entry (kind [`MemoryKind::Fact`], never private; entries without `time` at
/// time 0).
pub async fn build_index(
    corpus: &[CorpusEntry],
    embedder: &dyn Embedder,
    options: &EvalOptions,
) -> Result<EvalIndex, EvalError> {
    let start = Instant::now();
    let index = FlatIndex::with_config(embedder.model().dim, options.index);
    let mut entries = HashMap::with_capacity(corpus.len());
    let mut scopes = ScopeNames::default();
    let mut embedded = 0;
    for (offset, batch) in (0..corpus.len())
        .step_by(options.batch.max(1))
        .zip(corpus.chunks(options.batch.max(1)))
    {
        let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
        let vectors = embedder.embed(&texts).await?;
        if vectors.len() != texts.len() {
            return Err(EvalError::VectorCount {
                expected: texts.len(),
                got: vectors.len(),
            });
        }
        embedded += texts.len();
        let mut memories = Vec::with_capacity(batch.len());
        for (i, (entry, vector)) in batch.iter().zip(vectors).enumerate() {
            let id = MemoryId(Uuid::from_u128((offset + i) as u128 + 1));
            entries.insert(id, offset + i);
            memories.push(IndexedMemory {
                id,
                scope: scopes.scope(&entry.scope),
                private: false,
                kind: MemoryKind::Fact,
                text: entry.text.clone(),
                vector,
                time_ms: entry.time_ms.unwrap_or(0),
            });
        }
        index.upsert_many(memories)?;
    }
    Ok(EvalIndex {
        index,
        entries,
        scopes,
        embedded,
        build: start.elapsed(),
    })
}

/// One query's outcome in one mode.
struct QueryRun {
    /// Corpus positions, best first, each once.
    found: Vec<usize>,
    search: Duration,
    with_embedding: Duration,
}

async fn run_query(
    built: &EvalIndex,
    embedder: &dyn Embedder,
    query: &EvalQuery,
    config: &RankConfig,
) -> Result<QueryRun, EvalError> {
    let Some(scope) = built.scopes.get(&query.scope) else {
        // A scope the corpus never mentions holds nothing.
        return Ok(QueryRun {
            found: Vec::new(),
            search: Duration::ZERO,
            with_embedding: Duration::ZERO,
        });
    };
    let scopes = [scope];
    let recall = RecallQuery {
        scopes: &scopes,
        include_private: false,
        text: &query.text,
    };

    let start = Instant::now();
    search_ranked(&built.index, embedder, &recall, config).await?;
    let with_embedding = start.elapsed();

    let vector = embedder.embed_one(&query.text).await?;
    let start = Instant::now();
    let ranked = search_ranked_with_vector(&built.index, &recall, &vector, config).await?;
    let search = start.elapsed();

    let mut found: Vec<usize> = Vec::with_capacity(ranked.len());
    for r in &ranked {
        if let Some(&pos) = built.entries.get(&r.id)
            && !found.contains(&pos)
        {
            found.push(pos);
        }
    }
    Ok(QueryRun {
        found,
        search,
        with_embedding,
    })
}

/// Runs `queries` against an index of `corpus` made with `embedder`, in
/// `options.config`'s mode and in the plain-cosine baseline.
pub async fn run(
    corpus: &[CorpusEntry],
    queries: &[EvalQuery],
    embedder: Arc<dyn Embedder>,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    let built = build_index(corpus, embedder.as_ref(), options).await?;
    let depth = options.ks.iter().copied().max().unwrap_or(10).max(10);
    let base = RankConfig {
        candidates: options.config.candidates.max(depth),
        ..options.config
    }
    .uncapped(depth);
    let mut modes = vec![base.mode];
    if base.mode != RankMode::PlainCosine {
        modes.push(RankMode::PlainCosine);
    }
    let mut reports = Vec::with_capacity(modes.len());
    for mode in modes {
        let config = base.with_mode(mode);
        let mut hits = vec![0usize; options.ks.len()];
        let mut mrr = 0.0;
        let mut search = Vec::with_capacity(queries.len());
        let mut with_embedding = Vec::with_capacity(queries.len());
        for query in queries {
            let outcome = run_query(&built, embedder.as_ref(), query, &config).await?;
            let ids: Vec<&str> = outcome
                .found
                .iter()
                .map(|&i| corpus[i].id.as_str())
                .collect();
            for (hit, &k) in hits.iter_mut().zip(&options.ks) {
                *hit += usize::from(hit_at(&ids, &query.relevant, k));
            }
            mrr += reciprocal_rank(&ids, &query.relevant);
            search.push(outcome.search);
            with_embedding.push(outcome.with_embedding);
        }
        let n = queries.len().max(1) as f64;
        reports.push(ModeReport {
            mode,
            recall: options
                .ks
                .iter()
                .zip(&hits)
                .map(|(&k, &h)| (k, h as f64 / n))
                .collect(),
            mrr: mrr / n,
            search: Latency::of(&search),
            search_with_embedding: Latency::of(&with_embedding),
        });
    }
    Ok(EvalReport {
        model: embedder.model().name.clone(),
        memories: corpus.len(),
        scopes: built.scopes.0.len(),
        embedded_texts: built.embedded,
        queries: queries.len(),
        build: built.build,
        modes: reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use clara_llm::embed::{EmbeddingModel, normalize};

    /// A deterministic bag-of-words embedder: each word adds to one of 64
    /// dimensions chosen by its hash, so texts sharing words point alike.
    struct WordHashEmbedder(EmbeddingModel);

    impl WordHashEmbedder {
        fn new() -> Self {
            Self(EmbeddingModel {
                name: "test/word-hash".to_owned(),
                dim: 64,
            })
        }
    }

    #[async_trait]
    impl Embedder for WordHashEmbedder {
        fn model(&self) -> &EmbeddingModel {
            &self.0
        }

        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0f32; 64];
                    for word in t
                        .to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                    {
                        let h = word
                            .bytes()
                            .fold(5381u64, |h, b| h.wrapping_mul(33) ^ u64::from(b));
                        v[(h % 64) as usize] += 1.0;
                    }
                    v[63] += 0.1; // never the zero vector
                    normalize(&mut v);
                    v
                })
                .collect())
        }
    }

    const CORPUS: &str = r#"
{"id": "a1", "scope": "alice", "text": "Alice adopted a cat called Miso", "time": "2024-03-01T10:00:00Z", "session": "s1"}
{"id": "a2", "scope": "alice", "text": "Alice works as a nurse in Lisbon", "time": 1700000000000}
{"id": 3, "scope": "alice", "text": "Alice prefers green tea to coffee"}
{"id": "b1", "scope": "bob", "text": "Bob adopted a cat called Pixel"}
"#;

    const QUERIES: &str = r#"
{"id": "q1", "scope": "alice", "text": "what is the name of my cat", "relevant": ["a1"], "time": "2024-05-01T00:00:00Z"}
{"scope": "alice", "text": "which drink do I like, tea or coffee", "relevant": [3]}
{"scope": "bob", "text": "where does Alice work as a nurse", "relevant": ["b1"]}
"#;

    #[test]
    fn the_corpus_format_is_read_with_optional_fields() {
        let corpus = parse_corpus(CORPUS).unwrap();
        assert_eq!(corpus.len(), 4);
        assert_eq!(corpus[0].time_ms, Some(1_709_287_200_000));
        assert_eq!(corpus[0].session.as_deref(), Some("s1"));
        assert_eq!(corpus[1].time_ms, Some(1_700_000_000_000));
        assert_eq!(corpus[2].id, "3");
        assert_eq!(corpus[2].time_ms, None);
        let queries = parse_queries(QUERIES, &corpus).unwrap();
        assert_eq!(queries.len(), 3);
        assert_eq!(queries[0].id.as_deref(), Some("q1"));
        assert_eq!(queries[1].relevant, ["3"]);
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let err = |r: Result<Vec<CorpusEntry>, EvalError>| r.unwrap_err().to_string();
        let e = err(parse_corpus(
            "{\"id\":\"a\",\"scope\":\"s\",\"text\":\"x\"}\n\n{\"id\":\"b\",\"scope\":\"s\"}",
        ));
        assert!(e.starts_with("corpus line 3: missing field `text`"), "{e}");
        let e = err(parse_corpus(
            "{\"id\":\"a\",\"scope\":\"s\",\"text\":\"x\"}\n{\"id\":\"a\",\"scope\":\"s\",\"text\":\"y\"}",
        ));
        assert_eq!(e, "corpus line 2: id \"a\" already used on line 1");
        let e = err(parse_corpus(
            "{\"id\":\"a\",\"scope\":\"s\",\"text\":\"x\",\"time\":\"yesterday\"}",
        ));
        assert!(
            e.starts_with("corpus line 1: `time` \"yesterday\" is not RFC 3339"),
            "{e}"
        );
        assert_eq!(
            err(parse_corpus("not json")).split(':').next(),
            Some("corpus line 1")
        );
        assert_eq!(
            err(parse_corpus("\n  \n")),
            "the corpus file has no entries"
        );

        let corpus = parse_corpus(CORPUS).unwrap();
        let e = parse_queries(
            "{\"scope\":\"alice\",\"text\":\"x\",\"relevant\":[\"zz\"]}",
            &corpus,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "queries line 1: relevant id \"zz\" is not in the corpus"
        );
        let e = parse_queries(
            "\n{\"scope\":\"alice\",\"text\":\"x\",\"relevant\":[]}",
            &corpus,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("queries line 2: `relevant` is empty"),
            "{e}"
        );
    }

    #[test]
    fn metrics() {
        let relevant = vec!["b".to_owned(), "z".to_owned()];
        let results = ["a", "b", "c"];
        assert!(!hit_at(&results, &relevant, 1));
        assert!(hit_at(&results, &relevant, 2));
        assert!((reciprocal_rank(&results, &relevant) - 0.5).abs() < 1e-12);
        assert_eq!(reciprocal_rank(&["x"], &relevant), 0.0);
        let ms = |n: u64| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&samples, 0.5), ms(50));
        assert_eq!(percentile(&samples, 0.95), ms(95));
        assert_eq!(percentile(&samples, 1.0), ms(100));
        assert_eq!(percentile(&[ms(7)], 0.95), ms(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn scope_names_are_stable_and_typed_scopes_stay_themselves() {
        let mut names = ScopeNames::default();
        let a = names.scope("alice");
        assert_eq!(names.scope("alice"), a);
        assert_ne!(names.scope("bob"), a);
        let user = Scope::User(clara_core::UserId::new());
        assert_eq!(names.scope(&user.to_string()), user);
    }

    #[tokio::test]
    async fn a_run_measures_both_modes_within_each_querys_scope() {
        let corpus = parse_corpus(CORPUS).unwrap();
        let queries = parse_queries(QUERIES, &corpus).unwrap();
        let options = EvalOptions {
            batch: 3,
            ..EvalOptions::default()
        };
        let report = run(
            &corpus,
            &queries,
            Arc::new(WordHashEmbedder::new()),
            &options,
        )
        .await
        .unwrap();
        assert_eq!(
            (
                report.memories,
                report.scopes,
                report.queries,
                report.embedded_texts
            ),
            (4, 2, 3, 4)
        );
        assert_eq!(report.modes.len(), 2);
        assert_eq!(report.modes[0].mode, RankMode::Hybrid);
        assert_eq!(report.modes[1].mode, RankMode::PlainCosine);
        for mode in &report.modes {
            assert_eq!(
                mode.recall.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                [1, 5, 10]
            );
            // Bob's scope holds one memory, so the query there finds it whatever
            // it asks, and Alice's never leak into it; Alice's two queries find
            // theirs among her three memories.
            assert_eq!(mode.recall_at(5), Some(1.0), "{mode:?}");
            assert!(mode.mrr > 0.5);
            assert!(mode.search.p95 >= mode.search.p50);
        }
        assert_eq!(report.gain_at(5), Some(1.0));
        let text = report.to_string();
        assert!(text.contains("embedder: test/word-hash"), "{text}");
        assert!(
            text.contains("hybrid") && text.contains("plain-cosine"),
            "{text}"
        );
        assert!(
            text.contains("recall@5: 1.00× the plain-cosine baseline"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_embedder_returning_too_few_vectors_is_an_error() {
        struct Short(EmbeddingModel);
        #[async_trait]
        impl Embedder for Short {
            fn model(&self) -> &EmbeddingModel {
                &self.0
            }
            async fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
                Ok(vec![vec![1.0; 4]])
            }
        }
        let corpus = parse_corpus(CORPUS).unwrap();
        let short = Short(EmbeddingModel {
            name: "short".to_owned(),
            dim: 4,
        });
        let err = build_index(&corpus, &short, &EvalOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            EvalError::VectorCount {
                expected: 4,
                got: 1
            }
        ));
    }
}

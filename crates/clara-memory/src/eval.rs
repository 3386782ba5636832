//! `clara memory eval`: how well recall finds what it should, and how fast.
//!
//! Input is two JSONL files.
//!
//! **Corpus**, one memory per line:
//! `{"id": "m1", "scope": "alice", "text": "Alice moved to Lisbon"}`
//! - `id` (string or integer, unique), `scope` (any name; `user:<uuid>` and
//!   `project:<uuid>` are taken as those scopes, any other name is a project of
//!   its own), `text`: required.
//! - `time` (optional): when it was said, RFC 3339 or Unix milliseconds.
//! - `session` (optional): a conversation id. Memories of one session, in file
//!   order, are each other's neighbours: with [`Indexing::context`] each memory
//!   is also embedded together with the turns before it (see [`Indexing`]).
//! - Any other field (`role`, …) is ignored.
//!
//! **Queries**, one per line:
//! `{"scope": "alice", "text": "where does Alice live?", "relevant": ["m1"]}`
//! - `scope`, `text` and `relevant` (ids from the corpus, at least one):
//!   required.
//! - `id` (optional): a name for the query. `time` (optional): when it is asked;
//!   with [`EvalOptions::as_of`] memories dated after it are out of the query's
//!   store (see [`EvalOptions::as_of`]).
//! - Any other field (`type`, …) is ignored.
//!
//! [`run`] indexes the corpus with an embedder (batched; the build time is
//! reported), then answers every query in its scope through
//! [`crate::recall::search_ranked`], the path replies take, once per mode (the
//! configured one and the [`RankMode::PlainCosine`] baseline, same index, same
//! run). It reports recall@k (a hit when any relevant id is in the top k), MRR,
//! and search latency p50/p95 with and without the query's embedding.

use crate::index::{FlatConfig, FlatIndex, IndexError, IndexedMemory, MemoryIndex};
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
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty())
}

/// Parses a corpus file's contents (see the [module docs](self)).
pub fn parse_corpus(text: &str) -> Result<Vec<CorpusEntry>, EvalError> {
    let err = |line, message| EvalError::Line { file: "corpus", line, message };
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, line) in lines(text) {
        let raw: CorpusLine = serde_json::from_str(line).map_err(|e| err(n, e.to_string()))?;
        let id = raw.id.into_string();
        if let Some(first) = seen.insert(id.clone(), n) {
            return Err(err(n, format!("id {id:?} already used on line {first}")));
        }
        let time_ms = parse_time(raw.time).map_err(|m| err(n, m))?;
        out.push(CorpusEntry { id, scope: raw.scope, text: raw.text, time_ms, session: raw.session });
    }
    if out.is_empty() {
        return Err(EvalError::Empty("corpus"));
    }
    Ok(out)
}

/// Parses a queries file's contents; every relevant id must be in `corpus`.
pub fn parse_queries(text: &str, corpus: &[CorpusEntry]) -> Result<Vec<EvalQuery>, EvalError> {
    let err = |line, message| EvalError::Line { file: "queries", line, message };
    let known: HashSet<&str> = corpus.iter().map(|c| c.id.as_str()).collect();
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        let raw: QueryLine = serde_json::from_str(line).map_err(|e| err(n, e.to_string()))?;
        let relevant: Vec<String> = raw.relevant.into_iter().map(IdField::into_string).collect();
        if relevant.is_empty() {
            return Err(err(n, "`relevant` is empty; a query needs at least one relevant id".to_owned()));
        }
        if let Some(missing) = relevant.iter().find(|id| !known.contains(id.as_str())) {
            return Err(err(n, format!("relevant id {missing:?} is not in the corpus")));
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
    results.iter().take(k).any(|r| relevant.iter().any(|x| x == r))
}

/// 1 / the rank of the first relevant result, 0 when none is returned.
pub fn reciprocal_rank(results: &[&str], relevant: &[String]) -> f64 {
    results.iter().position(|r| relevant.iter().any(|x| x == r)).map_or(0.0, |i| 1.0 / (i + 1) as f64)
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

//! The distributed deployment's [`MemoryIndex`]: memories in a PostgreSQL table
//! with a pgvector `vector(dim)` column, searched through an HNSW index
//! (`vector_cosine_ops`), and PostgreSQL full-text search for keywords.
//!
//! **Scopes.** Every search names its scopes in the `WHERE` clause, so a row of
//! another scope is never returned. HNSW applies such filters after its graph
//! walk, which on its own could leave a small scope with no hits among a large
//! table. So scopes holding fewer than [`PgVectorIndex::exact_below`] memories
//! (most people's) are searched exactly, through the scope index; larger ones
//! through HNSW with pgvector's iterative scan (`hnsw.iterative_scan =
//! relaxed_order`), which keeps walking the graph until enough rows of the named
//! scopes are found, the outer query restoring the exact order.
//!
//! **Keywords.** The text's English stems (`to_tsvector('english', …)`, kept in a
//! generated column with a GIN index) are matched against any of the query's
//! stems; `ts_rank_cd` is the keyword score. Like [`super::FlatIndex`], every
//! candidate carries both scores.
//!
//! The table is named after the dimension (`memory_index_384`), so vectors of
//! models of different sizes never meet; [`PgVectorIndex::rebuild`] refills it
//! from the store (the store is memory's truth).

use super::{Candidate, IndexError, IndexQuery, IndexedMemory, MemoryIndex};
use async_trait::async_trait;
use clara_core::tokens::{EstimatedTokens, TokenCounter};
use clara_core::{MemoryId, MemoryKind, Scope};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::time::Duration;

/// The advisory lock that serializes creating the extension and tables, which
/// PostgreSQL does not make safe for concurrent `IF NOT EXISTS` ("Rook" in ASCII).
const DDL_LOCK_KEY: i64 = 0x526F_6F6B;

/// A [`MemoryIndex`] in PostgreSQL with pgvector. Cheap to share as
/// `Arc<dyn MemoryIndex>`.
#[derive(Clone, Debug)]
pub struct PgVectorIndex {
    pool: PgPool,
    dim: usize,
    table: String,
    exact_below: i64,
}

/// Scopes with fewer memories than this are searched exactly (a few milliseconds
/// of distance computations at this size); larger ones through HNSW.
pub const DEFAULT_EXACT_BELOW: usize = 10_000;

impl PgVectorIndex {
    /// Connects to `url` (e.g. `ROOK_DATABASE_URL`; it may be the store's own
    /// database) and prepares the index for `dim`-dimensional vectors.
    pub async fn connect(url: &str, dim: usize) -> Result<PgVectorIndex, IndexError> {
        let options: PgConnectOptions = url.parse().map_err(|_| {
            IndexError::Backend("the memory index URL is not a valid postgres:// URL".into())
        })?;
        // One direct attempt, so an unreachable server is reported at once rather
        // than after the pool's patient retries (which cover restarts later on).
        let first = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| IndexError::Backend("PostgreSQL did not answer within 10 s".into()))?
            .map_err(backend)?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);
        Self::with_pool(pool, dim).await
    }

    /// Prepares the index on an existing pool (the store's, see
    /// `clara_store::Store::postgres_pool`): creates the `vector` extension when
    /// missing, the table and its HNSW, GIN and scope indexes.
    pub async fn with_pool(pool: PgPool, dim: usize) -> Result<PgVectorIndex, IndexError> {
        if dim == 0 || dim > 16_000 {
            return Err(IndexError::Backend(format!(
                "pgvector cannot index {dim}-dimensional vectors"
            )));
        }
        let table = format!("memory_index_{dim}");
        let mut tx = pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DDL_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let installed: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if installed.is_none() {
            // In `public`, where every schema's search path finds it, rather than
            // in whichever schema comes first for this connection.
            sqlx::query("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    IndexError::Backend(format!(
                        "the pgvector extension is not available in PostgreSQL ({}); \
                         install it (scripts/services.sh builds it on Debian)",
                        short(&e)
                    ))
                })?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                 id         TEXT PRIMARY KEY,
                 scope_kind TEXT NOT NULL,
                 scope_id   TEXT NOT NULL,
                 private    BOOLEAN NOT NULL,
                 kind       TEXT NOT NULL,
                 text       TEXT NOT NULL,
                 tokens     INTEGER NOT NULL,
                 time_ms    BIGINT NOT NULL,
                 embedding  vector({dim}) NOT NULL,
                 words      tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
             );
             CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops);
             CREATE INDEX IF NOT EXISTS {table}_words ON {table} USING gin (words);
             CREATE INDEX IF NOT EXISTS {table}_scope ON {table} (scope_kind, scope_id);"
        )))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(PgVectorIndex {
            pool,
            dim,
            table,
            exact_below: DEFAULT_EXACT_BELOW as i64,
        })
    }

    /// Searches scopes holding fewer than `n` memories exactly instead of through
    /// HNSW (default [`DEFAULT_EXACT_BELOW`]; 0 always uses HNSW).
    pub fn exact_below(mut self, n: usize) -> Self {
        self.exact_below = i64::try_from(n).unwrap_or(i64::MAX);
        self
    }

    /// Replaces everything the index holds with `memories`, in one transaction
    /// (at start: the store's memories with a vector of the current model).
    /// Searches meanwhile see the old contents until it commits.
    pub async fn rebuild(
        &self,
        memories: impl IntoIterator<Item = IndexedMemory>,
    ) -> Result<usize, IndexError> {
        // The same memory twice: the last one wins, as with upserts (one INSERT
        // cannot update a row twice).
        let mut seen = std::collections::HashSet::new();
        let mut memories: Vec<IndexedMemory> = memories.into_iter().collect();
        memories.reverse();
        memories.retain(|m| seen.insert(m.id));
        memories.reverse();
        for m in &memories {
            self.check_dim(m.vector.len())?;
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {}", self.table)))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Many rows per statement: one round trip per row would make a start with
        // 100k memories take minutes.
        for chunk in memories.chunks(REBUILD_ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(format!(
                "INSERT INTO {} (id, scope_kind, scope_id, private, kind, text, tokens, time_ms, embedding) ",
                self.table
            ));
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(m.id.to_string())
                    .push_bind(m.scope.kind_str())
                    .push_bind(m.scope.owner_string())
                    .push_bind(m.private)
                    .push_bind(m.kind.as_str())
                    .push_bind(m.text.clone())
                    .push_bind(token_count(&m.text))
                    .push_bind(m.time_ms)
                    .push_bind(vector_literal(&m.vector))
                    .push_unseparated("::vector");
            });
            insert.push(
                " ON CONFLICT (id) DO UPDATE SET scope_kind = excluded.scope_kind, \
                 scope_id = excluded.scope_id, private = excluded.private, kind = excluded.kind, \
                 text = excluded.text, tokens = excluded.tokens, time_ms = excluded.time_ms, \
                 embedding = excluded.embedding",
            );
            insert.build().execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(memories.len())
    }

    fn check_dim(&self, got: usize) -> Result<(), IndexError> {
        IndexError::check_dim(self.dim, got)
    }

    fn upsert_query<'q>(
        &self,
        m: &'q IndexedMemory,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let tokens = token_count(&m.text);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (id, scope_kind, scope_id, private, kind, text, tokens, time_ms, embedding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::vector) \
             ON CONFLICT (id) DO UPDATE SET scope_kind = excluded.scope_kind, scope_id = excluded.scope_id, \
             private = excluded.private, kind = excluded.kind, text = excluded.text, tokens = excluded.tokens, \
             time_ms = excluded.time_ms, embedding = excluded.embedding",
            self.table
        )))
        .bind(m.id.to_string())
        .bind(m.scope.kind_str())
        .bind(m.scope.owner_string())
        .bind(m.private)
        .bind(m.kind.as_str())
        .bind(m.text.as_str())
        .bind(tokens)
        .bind(m.time_ms)
        .bind(vector_literal(&m.vector))
    }
}

/// Rows per INSERT of a rebuild (9 parameters each; PostgreSQL allows 65,535).
const REBUILD_ROWS_PER_STATEMENT: usize = 500;

fn token_count(text: &str) -> i32 {
    i32::try_from(EstimatedTokens.count(text)).unwrap_or(i32::MAX)
}

/// pgvector's text form, `[0.1,0.2,…]`. Rust prints the shortest decimal that
/// reads back as the same f32, so nothing is lost.
fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

fn backend(e: sqlx::Error) -> IndexError {
    IndexError::Backend(short(&e))
}

/// The driver's message without anything but the reason (never a URL).
fn short(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    scope_kind: String,
    scope_id: String,
    kind: String,
    tokens: i32,
    time_ms: i64,
    cosine: f64,
    keyword: Option<f32>,
}

impl Row {
    fn candidate(self, from_vector: bool) -> Result<Candidate, IndexError> {
        let bad = |what: &str| IndexError::Backend(format!("the index holds a bad {what}"));
        Ok(Candidate {
            id: MemoryId(self.id.parse().map_err(|_| bad("memory id"))?),
            scope: Scope::from_parts(&self.scope_kind, &self.scope_id)
                .ok_or_else(|| bad("scope"))?,
            kind: MemoryKind::parse(&self.kind).ok_or_else(|| bad("kind"))?,
            vector_score: Some(self.cosine as f32),
            keyword_score: if from_vector {
                self.keyword.filter(|k| *k > 0.0)
            } else {
                self.keyword
            },
            time_ms: self.time_ms,
            tokens: usize::try_from(self.tokens).unwrap_or(0),
        })
    }
}

#[async_trait]
impl MemoryIndex for PgVectorIndex {
    async fn upsert(&self, memory: IndexedMemory) -> Result<(), IndexError> {
        self.check_dim(memory.vector.len())?;
        self.upsert_query(&memory)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn remove(&self, id: MemoryId) -> Result<(), IndexError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE id = $1",
            self.table
        )))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn search(&self, query: IndexQuery<'_>) -> Result<Vec<Candidate>, IndexError> {
        self.check_dim(query.vector.len())?;
        let mut scopes: Vec<Scope> = query.scopes.to_vec();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        let kinds: Vec<&str> = scopes.iter().map(|s| s.kind_str()).collect();
        let owners: Vec<String> = scopes.iter().map(|s| s.owner_string()).collect();
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let vector = vector_literal(query.vector);
        let table = &self.table;
        // $1 kinds, $2 owners (the scopes, pairwise), $3 include_private,
        // $4 the query vector, $5 its text, $6 the limit.
        let in_scopes = "(scope_kind, scope_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
                         AND ($3 OR NOT private)";
        // Any of the query's stems: plainto_tsquery joins them with AND.
        let words = "replace(plainto_tsquery('english', $5)::text, '&', '|')::tsquery";
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // How many memories the scopes hold, counted no further than needed.
        let (in_scope,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {in_scopes} LIMIT $4) AS s"
        )))
        .bind(&kinds)
        .bind(&owners)
        .bind(query.include_private)
        .bind(self.exact_below)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        // `+ 0` hides the distance from the planner's HNSW matching: an exact scan
        // of the scopes' rows, found through the scope index.
        let order = if in_scope < self.exact_below {
            "(embedding <=> $4::vector) + 0"
        } else {
            "embedding <=> $4::vector"
        };
        let by_vector = format!(
            "SELECT id, scope_kind, scope_id, kind, tokens, time_ms, cosine, \
                    ts_rank_cd(words, {words}) AS keyword \
             FROM (SELECT *, 1 - (embedding <=> $4::vector) AS cosine FROM {table} \
                   WHERE {in_scopes} ORDER BY {order} LIMIT $6) AS nearest \
             ORDER BY cosine DESC, id"
        );
        let by_words = format!(
            "SELECT id, scope_kind, scope_id, kind, tokens, time_ms, \
                    1 - (embedding <=> $4::vector) AS cosine, ts_rank_cd(words, {words}) AS keyword \
             FROM {table} WHERE {in_scopes} AND words @@ {words} \
             ORDER BY keyword DESC, id LIMIT $6"
        );
        // Keep walking the HNSW graph until the scopes' rows are found.
        sqlx::query("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let mut rows = Vec::with_capacity(2);
        for sql in [by_vector, by_words] {
            let found: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(&kinds)
                .bind(&owners)
                .bind(query.include_private)
                .bind(&vector)
                .bind(query.text)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            rows.push(found);
        }
        tx.commit().await.map_err(backend)?;
        let keyword_rows = rows.pop().unwrap_or_default();
        let vector_rows = rows.pop().unwrap_or_default();
        let mut out = Vec::with_capacity(vector_rows.len() + keyword_rows.len());
        let mut seen = std::collections::HashSet::with_capacity(vector_rows.len());
        for row in vector_rows {
            seen.insert(row.id.clone());
            out.push(row.candidate(true)?);
        }
        for row in keyword_rows {
            if !seen.contains(&row.id) {
                out.push(row.candidate(false)?);
            }
        }
        Ok(out)
    }

    async fn len(&self) -> Result<usize, IndexError> {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}",
            self.table
        )))
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_written_in_pgvector_text_form_exactly() {
        let v = [0.1f32, -1.0, 1e-7, 0.333_333_34];
        let text = vector_literal(&v);
        assert_eq!(text, "[0.1,-1,0.0000001,0.33333334]");
        let back: Vec<f32> = text
            .trim_matches(['[', ']'])
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(back, v);
    }
}

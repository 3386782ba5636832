//! Copying one store into another (`clara migrate --from sqlite:… --to
//! postgres://…`): every table, parents before children, in batches.
//!
//! **Resumable.** Rows are read in primary-key order. Each batch is inserted
//! with `ON CONFLICT DO NOTHING` and, in the same transaction, the key of its
//! last row is recorded in the target's `_clara_copy_progress` table (per source
//! and table). A copy that stops — killed, the server restarted — resumes after
//! the last committed batch; nothing is copied twice and nothing is skipped.
//!
//! **Verified.** At the end every table's rows are counted on both sides.
//!
//! Clara should not be running on the source meanwhile: a row changed after its
//! batch was copied is not copied again.

use crate::backend::{in_tx, on_read};
use crate::store::{Store, begin_insert};
use crate::{Backend, StoreError};
use sqlx::{QueryBuilder, Row};

/// How a column is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Real,
    Blob,
}

/// One table: its columns (every one of them; a test checks against the schema)
/// and its primary key.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    key: &'static [&'static str],
    /// A column PostgreSQL numbers itself (an identity), whose sequence must move
    /// past the copied values.
    identity: Option<&'static str>,
}

use Kind::{Blob, Int, Real, Text};

/// Every table, each after the tables it references.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[("id", Text), ("display_name", Text), ("created_at_ms", Int)],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "identities",
        columns: &[
            ("platform", Text),
            ("platform_user_id", Text),
            ("user_id", Text),
            ("display_name", Text),
            ("created_at_ms", Int),
            ("updated_at_ms", Int),
        ],
        key: &["platform", "platform_user_id"],
        identity: None,
    },
    Table {
        name: "projects",
        columns: &[("id", Text), ("name", Text), ("created_at_ms", Int)],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "conversations",
        columns: &[
            ("id", Text),
            ("platform", Text),
            ("channel", Text),
            ("kind", Text),
            ("project_id", Text),
            ("created_at_ms", Int),
            ("context_after_seq", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("conversation_id", Text),
            ("started_at_ms", Int),
            ("last_activity_at_ms", Int),
            ("ended_at_ms", Int),
            ("summary", Text),
            ("summarized_at_ms", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "messages",
        columns: &[
            ("seq", Int),
            ("id", Text),
            ("conversation_id", Text),
            ("session_id", Text),
            ("thought_id", Text),
            ("user_id", Text),
            ("role", Text),
            ("content", Text),
            ("status", Text),
            ("event_id", Text),
            ("created_at_ms", Int),
        ],
        key: &["seq"],
        identity: Some("seq"),
    },
    Table {
        name: "jobs",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("payload", Text),
            ("status", Text),
            ("attempts", Int),
            ("max_attempts", Int),
            ("last_error", Text),
            ("run_at_ms", Int),
            ("lease_until_ms", Int),
            ("created_at_ms", Int),
            ("updated_at_ms", Int),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "usage",
        columns: &[
            ("thought_id", Text),
            ("conversation_id", Text),
            ("user_id", Text),
            ("provider", Text),
            ("model", Text),
            ("tier", Text),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cost_usd", Real),
            ("tool_calls", Int),
            ("created_at_ms", Int),
        ],
        key: &["thought_id"],
        identity: None,
    },
    Table {
        name: "memories",
        columns: &[
            ("id", Text),
            ("scope_kind", Text),
            ("scope_id", Text),
            ("kind", Text),
            ("text", Text),
            ("origin", Text),
            ("shareable", Int),
            ("source_conversation_id", Text),
            ("source_message_id", Text),
            ("happened_at_ms", Int),
            ("created_at_ms", Int),
            ("updated_at_ms", Int),
            ("forgotten_at_ms", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "memory_vectors",
        columns: &[
            ("memory_id", Text),
            ("model", Text),
            ("dim", Int),
            ("vector", Blob),
        ],
        key: &["memory_id", "model"],
        identity: None,
    },
    Table {
        name: "memory_history",
        columns: &[
            ("seq", Int),
            ("memory_id", Text),
            ("event", Text),
            ("old_text", Text),
            ("new_text", Text),
            ("reason", Text),
            ("actor", Text),
            ("conversation_id", Text),
            ("message_id", Text),
            ("at_ms", Int),
        ],
        key: &["seq"],
        identity: Some("seq"),
    },
    Table {
        name: "tool_runs",
        columns: &[
            ("seq", Int),
            ("conversation_id", Text),
            ("message_id", Text),
            ("thought_id", Text),
            ("position", Int),
            ("call_id", Text),
            ("name", Text),
            ("arguments", Text),
            ("result", Text),
            ("ok", Int),
            ("permission", Text),
            ("started_at_ms", Int),
            ("duration_ms", Int),
        ],
        key: &["seq"],
        identity: Some("seq"),
    },
    Table {
        name: "tool_grants",
        columns: &[
            ("tool", Text),
            ("arguments_sha256", Text),
            ("definition_sha256", Text),
            ("granted_by", Text),
            ("granted_at_ms", Int),
        ],
        key: &["tool", "arguments_sha256"],
        identity: None,
    },
    Table {
        name: "tool_pins",
        columns: &[
            ("tool", Text),
            ("definition_sha256", Text),
            ("pinned_at_ms", Int),
        ],
        key: &["tool"],
        identity: None,
    },
    Table {
        name: "person_settings",
        columns: &[
            ("user_id", Text),
            ("time_zone", Text),
            ("alerts_to", Text),
            ("quiet_start", Text),
            ("quiet_end", Text),
            ("updated_at_ms", Int),
        ],
        key: &["user_id"],
        identity: None,
    },
    Table {
        name: "schedules",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("conversation_id", Text),
            ("kind", Text),
            ("body", Text),
            ("timing", Text),
            ("time_zone", Text),
            ("next_at_ms", Int),
            ("last_fired_at_ms", Int),
            ("fired", Int),
            ("created_at_ms", Int),
            ("cancelled_at_ms", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "proactive",
        columns: &[
            ("key", Text),
            ("user_id", Text),
            ("conversation_id", Text),
            ("kind", Text),
            ("body", Text),
            ("note", Text),
            ("due_at_ms", Int),
            ("status", Text),
            ("claimed_until_ms", Int),
            ("attempts", Int),
            ("last_error", Text),
            ("created_at_ms", Int),
            ("sent_at_ms", Int),
        ],
        key: &["key"],
        identity: None,
    },
    Table {
        name: "mail_accounts",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("label", Text),
            ("host", Text),
            ("port", Int),
            ("security", Text),
            ("username", Text),
            ("password", Blob),
            ("folders", Text),
            ("use_idle", Int),
            ("status", Text),
            ("created_at_ms", Int),
            ("updated_at_ms", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "mail_folders",
        columns: &[
            ("account_id", Text),
            ("folder", Text),
            ("uid_validity", Int),
            ("last_uid", Int),
            ("updated_at_ms", Int),
        ],
        key: &["account_id", "folder"],
        identity: None,
    },
    Table {
        name: "mail_rules",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("name", Text),
            ("conditions", Text),
            ("created_at_ms", Int),
        ],
        key: &["id"],
        identity: None,
    },
];

/// The table in the target that remembers how far each table's copy got.
const PROGRESS_TABLE: &str = "_clara_copy_progress";

/// The names of the tables a copy covers, in the order it copies them.
pub fn copied_tables() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.name)
}

/// One value of a row, as read from the source.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Text(Some(s)) => serde_json::Value::from(s.as_str()),
            Value::Int(Some(i)) => serde_json::Value::from(*i),
            _ => serde_json::Value::Null,
        }
    }

    fn from_json(kind: Kind, v: &serde_json::Value) -> Option<Value> {
        match kind {
            Text => v.as_str().map(|s| Value::Text(Some(s.to_owned()))),
            Int => v.as_i64().map(|i| Value::Int(Some(i))),
            Real | Blob => None,
        }
    }
}

/// What a copy is doing, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyProgress<'a> {
    /// Counting done: this many rows in all, of which `done` were copied by an
    /// earlier, interrupted run.
    Planned {
        /// Rows in the source, over every table.
        total: u64,
        /// Rows an earlier run already copied.
        done: u64,
    },
    /// A table's copy starts.
    Table {
        /// Its name.
        table: &'a str,
        /// Its rows in the source.
        rows: u64,
    },
    /// A batch of a table was committed in the target.
    Copied {
        /// The table.
        table: &'a str,
        /// Rows in the batch.
        rows: u64,
    },
}

/// One table's rows on both sides after a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: &'static str,
    /// Rows in the source.
    pub source: u64,
    /// Rows in the target.
    pub target: u64,
}

/// What a finished copy found when it counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyReport {
    /// Every table, in copy order.
    pub tables: Vec<TableCount>,
    /// Rows this run copied (an earlier, interrupted run may have copied others).
    pub copied_now: u64,
}

impl CopyReport {
    /// One sentence naming every table whose counts differ, or `None` when the
    /// target holds exactly the source's rows.
    pub fn mismatch(&self) -> Option<String> {
        let off: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.source != t.target)
            .map(|t| {
                format!(
                    "{} has {} rows in the source but {} in the target",
                    t.table, t.source, t.target
                )
            })
            .collect();
        (!off.is_empty()).then(|| format!("The copy does not match: {}.", off.join("; ")))
    }
}

impl Store {
    /// Copies every row of this store into `target` (already migrated, normally
    /// empty, usually PostgreSQL), `batch` rows per transaction, reporting
    /// progress; then counts both sides. Re-running after an interruption resumes.
    pub async fn copy_into(
        &self,
        target: &Store,
        batch: u32,
        progress: &mut (dyn FnMut(CopyProgress<'_>) + Send),
    ) -> Result<CopyReport, StoreError> {
        if self.db == target.db {
            return Err(StoreError::CopyRefused {
                reason: "the source and the target are the same database".into(),
            });
        }
        let (source_status, target_status) = (
            self.migration_status().await?,
            target.migration_status().await?,
        );
        if let Some(m) = source_status.iter().find(|m| !m.applied) {
            return Err(StoreError::CopyRefused {
                reason: format!(
                    "the source lacks migration {} ({}); run `clara migrate` on it first",
                    m.version, m.description
                ),
            });
        }
        if source_status != target_status {
            return Err(StoreError::CopyRefused {
                reason: "the source and the target are at different schema versions".into(),
            });
        }
        let batch = i64::from(batch.clamp(1, 2000));
        target.ensure_progress_table().await?;

        let mut plan = Vec::with_capacity(TABLES.len());
        let (mut total, mut done) = (0, 0);
        for table in TABLES {
            let rows = self.count_rows(table.name).await?;
            let (last_key, copied) = target.copy_mark(&self.db.name, table).await?;
            total += rows;
            done += copied.min(rows);
            plan.push((table, rows, last_key, copied));
        }
        progress(CopyProgress::Planned { total, done });

        let mut copied_now = 0;
        for (table, rows, mut last_key, mut copied) in plan {
            progress(CopyProgress::Table {
                table: table.name,
                rows,
            });
            loop {
                let page = self.read_page(table, last_key.as_deref(), batch).await?;
                let Some(last) = page.last() else { break };
                let key: Vec<Value> = table
                    .key
                    .iter()
                    .map(|k| {
                        let i = table.columns.iter().position(|(c, _)| c == k).unwrap_or(0);
                        last[i].clone()
                    })
                    .collect();
                let n = page.len() as u64;
                copied += n;
                target
                    .write_page(table, &page, &self.db.name, &key, copied)
                    .await?;
                copied_now += n;
                progress(CopyProgress::Copied {
                    table: table.name,
                    rows: n,
                });
                last_key = Some(key);
                if (n as i64) < batch {
                    break;
                }
            }
            target.move_identity_past_copied(table).await?;
        }

        let mut tables = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            tables.push(TableCount {
                table: table.name,
                source: self.count_rows(table.name).await?,
                target: target.count_rows(table.name).await?,
            });
        }
        Ok(CopyReport { tables, copied_now })
    }

    async fn ensure_progress_table(&self) -> Result<(), StoreError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (source TEXT NOT NULL, table_name TEXT NOT NULL, \
             last_key TEXT NOT NULL, copied BIGINT NOT NULL, PRIMARY KEY (source, table_name))"
        );
        crate::backend::on_write!(&self.pools, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Where an earlier copy from `source` stopped in `table`: the key of the last
    /// row it committed, and how many rows it had copied.
    async fn copy_mark(
        &self,
        source: &str,
        table: &Table,
    ) -> Result<(Option<Vec<Value>>, u64), StoreError> {
        let sql = format!(
            "SELECT last_key, copied FROM {PROGRESS_TABLE} WHERE source = $1 AND table_name = $2"
        );
        let row: Option<(String, i64)> =
            on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(source)
                .bind(table.name)
                .fetch_optional(pool)
                .await)
            .map_err(|e| self.err(e))?;
        let Some((last_key, copied)) = row else {
            return Ok((None, 0));
        };
        let parts: Vec<serde_json::Value> = serde_json::from_str(&last_key).map_err(|_| {
            StoreError::invalid(format!(
                "{PROGRESS_TABLE} holds a bad key for {}",
                table.name
            ))
        })?;
        let key = table
            .key
            .iter()
            .zip(&parts)
            .map(|(k, v)| {
                let kind = table
                    .columns
                    .iter()
                    .find(|(c, _)| c == k)
                    .map_or(Text, |(_, kind)| *kind);
                Value::from_json(kind, v)
            })
            .collect::<Option<Vec<_>>>()
            .filter(|k| k.len() == table.key.len())
            .ok_or_else(|| {
                StoreError::invalid(format!(
                    "{PROGRESS_TABLE} holds a bad key for {}",
                    table.name
                ))
            })?;
        Ok((Some(key), u64::try_from(copied).unwrap_or(0)))
    }

    async fn count_rows(&self, table: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = on_read!(&self.pools, |pool| sqlx::query_scalar(sqlx::AssertSqlSafe(
            sql
        ))
        .fetch_one(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` rows of `table` after `after` in key order.
    async fn read_page(
        &self,
        table: &Table,
        after: Option<&[Value]>,
        limit: i64,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let columns = column_list(table);
        let key = table.key.join(", ");
        let sql = match after {
            None => format!(
                "SELECT {columns} FROM {} ORDER BY {key} LIMIT $1",
                table.name
            ),
            Some(_) => {
                let marks = (1..=table.key.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "SELECT {columns} FROM {} WHERE ({key}) > ({marks}) ORDER BY {key} LIMIT ${}",
                    table.name,
                    table.key.len() + 1
                )
            }
        };
        on_read!(&self.pools, |pool| async {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for value in after.unwrap_or_default() {
                query = match value {
                    Value::Text(v) => query.bind(v.clone()),
                    Value::Int(v) => query.bind(*v),
                    Value::Real(v) => query.bind(*v),
                    Value::Blob(v) => query.bind(v.clone()),
                };
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    table
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, kind))| {
                            Ok(match kind {
                                Text => Value::Text(row.try_get(i)?),
                                Int => Value::Int(row.try_get(i)?),
                                Real => Value::Real(row.try_get(i)?),
                                Blob => Value::Blob(row.try_get(i)?),
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }
        .await)
        .map_err(|e| self.err(e))
    }

    /// Inserts a page and records how far the copy got, in one transaction.
    async fn write_page(
        &self,
        table: &Table,
        page: &[Vec<Value>],
        source: &str,
        last_key: &[Value],
        copied: u64,
    ) -> Result<(), StoreError> {
        let insert = format!("INSERT INTO {} ({}) ", table.name, column_list(table));
        let mark = format!(
            "INSERT INTO {PROGRESS_TABLE} (source, table_name, last_key, copied) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (source, table_name) DO UPDATE SET last_key = excluded.last_key, copied = excluded.copied"
        );
        let key_json =
            serde_json::Value::Array(last_key.iter().map(Value::to_json).collect()).to_string();
        let copied = i64::try_from(copied).unwrap_or(i64::MAX);
        let mut tx = begin_insert(&self.pools, &self.db).await?;
        in_tx!(&mut tx, |c| async {
            let mut query = QueryBuilder::new(insert);
            query.push_values(page, |mut row, values| {
                for value in values {
                    match value {
                        Value::Text(v) => row.push_bind(v.clone()),
                        Value::Int(v) => row.push_bind(*v),
                        Value::Real(v) => row.push_bind(*v),
                        Value::Blob(v) => row.push_bind(v.clone()),
                    };
                }
            });
            // Rows a crashed run committed without its mark are already there.
            query.push(" ON CONFLICT DO NOTHING");
            query.build().execute(&mut *c).await?;
            sqlx::query(sqlx::AssertSqlSafe(mark))
                .bind(source)
                .bind(table.name)
                .bind(key_json)
                .bind(copied)
                .execute(&mut *c)
                .await
                .map(|_| ())
        }
        .await)
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Moves a PostgreSQL identity past the largest copied value, so the next row
    /// Clara inserts does not collide with a copied one. (SQLite numbers rows from
    /// the largest present by itself.)
    async fn move_identity_past_copied(&self, table: &Table) -> Result<(), StoreError> {
        let (Some(column), Backend::Postgres) = (table.identity, self.db.backend) else {
            return Ok(());
        };
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{name}', '{column}'), \
             COALESCE((SELECT MAX({column}) FROM {name}), 0) + 1, false)",
            name = table.name
        );
        crate::backend::on_write!(&self.pools, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Every column of every table the schema holds (the migrations' tables only),
    /// sorted, for checking that a copy misses nothing.
    #[doc(hidden)]
    pub async fn schema_columns(&self) -> Result<Vec<(String, String)>, StoreError> {
        let sql = match self.db.backend {
            Backend::Sqlite => {
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name NOT LIKE '\\_%' ESCAPE '\\' \
                 ORDER BY 1, 2"
            }
            Backend::Postgres => {
                "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_%' ESCAPE '\\' \
                 ORDER BY 1, 2"
            }
        };
        on_read!(&self.pools, |pool| sqlx::query_as(sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| self.err(e))
    }
}

fn column_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every (table, column) the copy covers, sorted like [`Store::schema_columns`].
#[doc(hidden)]
pub fn copied_columns() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = TABLES
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .map(|(c, _)| (t.name.to_owned(), (*c).to_owned()))
        })
        .collect();
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_every_mismatch_in_one_sentence() {
        let report = CopyReport {
            tables: vec![
                TableCount {
                    table: "users",
                    source: 3,
                    target: 3,
                },
                TableCount {
                    table: "messages",
                    source: 10,
                    target: 9,
                },
            ],
            copied_now: 12,
        };
        assert_eq!(
            report.mismatch().unwrap(),
            "The copy does not match: messages has 10 rows in the source but 9 in the target."
        );
        let fine = CopyReport {
            tables: vec![TableCount {
                table: "users",
                source: 3,
                target: 3,
            }],
            copied_now: 0,
        };
        assert_eq!(fine.mismatch(), None);
    }

    #[test]
    fn keys_are_key_columns_and_survive_json() {
        for table in TABLES {
            for k in table.key {
                let kind = table.columns.iter().find(|(c, _)| c == k).map(|(_, k)| *k);
                assert!(
                    matches!(kind, Some(Text | Int)),
                    "{}.{k} must be a text or integer column",
                    table.name
                );
            }
        }
        let v = Value::Int(Some(42));
        assert_eq!(Value::from_json(Int, &v.to_json()), Some(v));
        let v = Value::Text(Some("a\"b".into()));
        assert_eq!(Value::from_json(Text, &v.to_json()), Some(v));
    }
}

//! Tools on the record: the calls each reply made (with their results and who
//! let them run), the owner's standing approvals, and the tool definitions as
//! first allowed.

use crate::StoreError;
use crate::backend::{WriteTx, in_tx, on_read, on_write};
use crate::store::{Store, parse_uuid};
use clara_core::{ConversationId, MessageId, Permission, ThoughtId, ToolGrant, ToolPin, ToolRun};
use sqlx::QueryBuilder;
use std::collections::HashMap;

/// Rows per INSERT statement (14 parameters each), as for messages.
const ROWS_PER_STATEMENT: usize = 64;

/// The columns a [`ToolRun`] is read from, in [`RunRow`]'s order.
const RUN_COLUMNS: &str = "conversation_id, message_id, call_id, name, arguments, result, ok, \
                           permission, started_at_ms, duration_ms";

/// One reply's tool runs, as the writer stores them with Clara's message.
pub(crate) struct ReplyRuns<'a> {
    pub(crate) conversation: ConversationId,
    pub(crate) message: Option<MessageId>,
    pub(crate) thought: ThoughtId,
    pub(crate) runs: &'a [ToolRun],
}

/// Inserts tool runs inside a transaction, many rows per statement. A reply's
/// runs already stored (a retried batch) are skipped, not doubled.
pub(crate) async fn insert_tool_runs(
    tx: &mut WriteTx,
    replies: impl Iterator<Item = ReplyRuns<'_>>,
) -> Result<(), sqlx::Error> {
    let replies: Vec<ReplyRuns<'_>> = replies.filter(|r| !r.runs.is_empty()).collect();
    let rows: Vec<(&ReplyRuns<'_>, usize, &ToolRun)> = replies
        .iter()
        .flat_map(|reply| {
            reply
                .runs
                .iter()
                .enumerate()
                .map(move |(i, run)| (reply, i, run))
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        in_tx!(&mut *tx, |c| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO tool_runs (conversation_id, message_id, thought_id, position, call_id, name, \
                 arguments, result, ok, permission, started_at_ms, duration_ms) ",
            );
            insert.push_values(chunk, |mut row, (reply, position, run)| {
                row.push_bind(reply.conversation.0.to_string())
                    .push_bind(reply.message.map(|m| m.0.to_string()))
                    .push_bind(reply.thought.0.to_string())
                    .push_bind(i64::try_from(*position).unwrap_or(i64::MAX))
                    .push_bind(run.call_id.clone())
                    .push_bind(run.name.clone())
                    .push_bind(run.arguments.clone())
                    .push_bind(run.result.clone())
                    .push_bind(i64::from(run.ok))
                    .push_bind(permission_json(&run.permission))
                    .push_bind(run.started_at_ms)
                    .push_bind(i64::try_from(run.duration_ms).unwrap_or(i64::MAX));
            });
            insert.push(" ON CONFLICT (thought_id, position) DO NOTHING");
            insert.build().execute(&mut *c).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// The stored form of a permission.
fn permission_json(permission: &Permission) -> String {
    // A plain enum of strings and a bool: serialising it cannot fail.
    serde_json::to_string(permission).unwrap_or_else(|_| r#"{"by":"policy"}"#.to_owned())
}

#[derive(sqlx::FromRow)]
struct RunRow {
    conversation_id: String,
    message_id: Option<String>,
    call_id: String,
    name: String,
    arguments: String,
    result: String,
    ok: i64,
    permission: String,
    started_at_ms: i64,
    duration_ms: i64,
}

impl RunRow {
    fn parse(self) -> Result<(ConversationId, Option<MessageId>, ToolRun), StoreError> {
        let permission = serde_json::from_str(&self.permission).map_err(|_| {
            StoreError::invalid(format!(
                "tool run {} has an unreadable permission {:?}",
                self.call_id, self.permission
            ))
        })?;
        let conversation = ConversationId(parse_uuid(
            &self.conversation_id,
            "tool_runs.conversation_id",
        )?);
        let message = self
            .message_id
            .as_deref()
            .map(|m| parse_uuid(m, "tool_runs.message_id").map(MessageId))
            .transpose()?;
        Ok((
            conversation,
            message,
            ToolRun {
                call_id: self.call_id,
                name: self.name,
                arguments: self.arguments,
                result: self.result,
                ok: self.ok != 0,
                permission,
                started_at_ms: self.started_at_ms,
                duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            },
        ))
    }
}

/// Ids per `IN (…)` list: far below every backend's parameter limit.
const IDS_PER_QUERY: usize = 500;

impl Store {
    /// Stores one reply's tool runs, in order, in one transaction: with Clara's
    /// message for the reply (which must be stored already), or with none when
    /// the reply delivered nothing. Runs of a thought already stored are skipped.
    ///
    /// Clara's own replies store their runs with their message through the
    /// [`crate::MessageWriter`] (`NewMessage::tool_runs`); this is for the rest.
    pub async fn record_tool_runs(
        &self,
        conversation: ConversationId,
        message: Option<MessageId>,
        thought: ThoughtId,
        runs: &[ToolRun],
    ) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let err = |e| self.err(e);
        let mut tx = crate::store::begin_insert(&self.pools, &self.db).await?;
        let reply = ReplyRuns {
            conversation,
            message,
            thought,
            runs,
        };
        insert_tool_runs(&mut tx, std::iter::once(reply))
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    /// The tool runs of each of these messages that has any, in the order they
    /// ran.
    pub async fn tool_runs_for_messages(
        &self,
        messages: &[MessageId],
    ) -> Result<HashMap<MessageId, Vec<ToolRun>>, StoreError> {
        let mut out: HashMap<MessageId, Vec<ToolRun>> = HashMap::new();
        for chunk in messages.chunks(IDS_PER_QUERY) {
            // The builder is typed by its database, so it is built on each side.
            let sql = format!("SELECT {RUN_COLUMNS} FROM tool_runs WHERE message_id IN (");
            let rows: Vec<RunRow> = on_read!(&self.pools, |pool| {
                let mut query = QueryBuilder::new(sql.as_str());
                let mut ids = query.separated(", ");
                for id in chunk {
                    ids.push_bind(id.0.to_string());
                }
                query.push(") ORDER BY seq");
                query.build_query_as().fetch_all(pool).await
            })
            .map_err(|e| self.err(e))?;
            for row in rows {
                let (_, message, run) = row.parse()?;
                if let Some(message) = message {
                    out.entry(message).or_default().push(run);
                }
            }
        }
        Ok(out)
    }

    /// The most recent tool runs, newest first: of one conversation, or of all.
    pub async fn recent_tool_runs(
        &self,
        conversation: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<(ConversationId, Option<MessageId>, ToolRun)>, StoreError> {
        let limit = i64::from(limit);
        let rows: Vec<RunRow> = match conversation {
            Some(conversation) => on_read!(&self.pools, |pool| sqlx::query_as(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {RUN_COLUMNS} FROM tool_runs WHERE conversation_id = $1 \
                     ORDER BY seq DESC LIMIT $2"
                ))
            )
            .bind(conversation.0.to_string())
            .bind(limit)
            .fetch_all(pool)
            .await),
            None => on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
                format!("SELECT {RUN_COLUMNS} FROM tool_runs ORDER BY seq DESC LIMIT $1")
            ))
            .bind(limit)
            .fetch_all(pool)
            .await),
        }
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(RunRow::parse).collect()
    }

    /// Every standing approval, by tool and arguments.
    pub async fn tool_grants(&self) -> Result<Vec<ToolGrant>, StoreError> {
        let rows: Vec<(String, String, String, String, i64)> =
            on_read!(&self.pools, |pool| sqlx::query_as(
                "SELECT tool, arguments_sha256, definition_sha256, granted_by, granted_at_ms \
                 FROM tool_grants ORDER BY tool, arguments_sha256",
            )
            .fetch_all(pool)
            .await)
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(
                |(tool, arguments_sha256, definition_sha256, granted_by, granted_at_ms)| {
                    ToolGrant {
                        tool,
                        arguments_sha256,
                        definition_sha256,
                        granted_by,
                        granted_at_ms,
                    }
                },
            )
            .collect())
    }

    /// The standing approval of exactly this call, if there is one: what the
    /// approval gate reads on every call (one indexed lookup).
    pub async fn tool_grant(
        &self,
        tool: &str,
        arguments_sha256: &str,
    ) -> Result<Option<ToolGrant>, StoreError> {
        let row: Option<(String, String, String, String, i64)> =
            on_read!(&self.pools, |pool| sqlx::query_as(
                "SELECT tool, arguments_sha256, definition_sha256, granted_by, granted_at_ms \
                 FROM tool_grants WHERE tool = $1 AND arguments_sha256 = $2",
            )
            .bind(tool)
            .bind(arguments_sha256)
            .fetch_optional(pool)
            .await)
            .map_err(|e| self.err(e))?;
        Ok(row.map(
            |(tool, arguments_sha256, definition_sha256, granted_by, granted_at_ms)| ToolGrant {
                tool,
                arguments_sha256,
                definition_sha256,
                granted_by,
                granted_at_ms,
            },
        ))
    }

    /// Records a standing approval; one for the same tool and arguments is
    /// replaced (the newest grant says which definition was approved).
    pub async fn add_tool_grant(&self, grant: &ToolGrant) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO tool_grants (tool, arguments_sha256, definition_sha256, granted_by, granted_at_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tool, arguments_sha256) DO UPDATE SET \
             definition_sha256 = excluded.definition_sha256, granted_by = excluded.granted_by, \
             granted_at_ms = excluded.granted_at_ms",
        )
        .bind(&grant.tool)
        .bind(&grant.arguments_sha256)
        .bind(&grant.definition_sha256)
        .bind(&grant.granted_by)
        .bind(grant.granted_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Withdraws every standing approval of `tool`; returns how many there were.
    pub async fn remove_tool_grants(&self, tool: &str) -> Result<u64, StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "DELETE FROM tool_grants WHERE tool = $1"
        )
        .bind(tool)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))
    }

    /// The definition `tool` was pinned with, if it was.
    pub async fn tool_pin(&self, tool: &str) -> Result<Option<ToolPin>, StoreError> {
        let row: Option<(String, String, i64)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT tool, definition_sha256, pinned_at_ms FROM tool_pins WHERE tool = $1",
        )
        .bind(tool)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(row.map(|(tool, definition_sha256, pinned_at_ms)| ToolPin {
            tool,
            definition_sha256,
            pinned_at_ms,
        }))
    }

    /// Pins a tool's definition, replacing an earlier pin (the owner approved the
    /// new definition).
    pub async fn set_tool_pin(&self, pin: &ToolPin) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO tool_pins (tool, definition_sha256, pinned_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (tool) DO UPDATE SET definition_sha256 = excluded.definition_sha256, \
             pinned_at_ms = excluded.pinned_at_ms",
        )
        .bind(&pin.tool)
        .bind(&pin.definition_sha256)
        .bind(pin.pinned_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }
}

//! What replies cost: tokens and money per thought, summed per person.

use crate::StoreError;
use crate::backend::{WriteTx, in_tx, on_read};
use crate::store::Store;
use clara_core::{ThoughtId, UserId};
use sqlx::QueryBuilder;

/// What one reply cost, stored with Clara's message for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyUsage {
    /// The person the reply was for.
    pub user: Option<UserId>,
    /// The provider that answered (`openai-compatible`, `anthropic`, `local`, …).
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// The tier of the thought (`high`, `mid`, `low`).
    pub tier: String,
    /// Prompt tokens over every model call of the reply.
    pub input_tokens: u32,
    /// Answer tokens over every model call of the reply.
    pub output_tokens: u32,
    /// US dollars, when the provider reports it.
    pub cost_usd: Option<f64>,
    /// Tool calls the reply made.
    pub tool_calls: u32,
}

/// Usage added up over many replies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageTotals {
    /// Replies counted.
    pub replies: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// US dollars, over the replies whose cost was reported.
    pub cost_usd: f64,
}

/// Rows per INSERT statement, as for messages (11 parameters each).
const ROWS_PER_STATEMENT: usize = 64;

/// Inserts the usage of a batch's replies (inside the batch's transaction), many
/// rows per statement.
pub(crate) async fn insert_usage(
    tx: &mut WriteTx,
    rows: impl Iterator<Item = (&crate::NewMessage, &ReplyUsage)>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        in_tx!(&mut *tx, |c| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO usage (thought_id, conversation_id, user_id, provider, model, tier, input_tokens, \
                 output_tokens, cost_usd, tool_calls, created_at_ms) ",
            );
            insert.push_values(chunk, |mut row, (message, usage)| {
                row.push_bind(message.thought.0.to_string())
                    .push_bind(message.conversation.0.to_string())
                    .push_bind(usage.user.map(|u| u.0.to_string()))
                    .push_bind(usage.provider.clone())
                    .push_bind(usage.model.clone())
                    .push_bind(usage.tier.clone())
                    .push_bind(i64::from(usage.input_tokens))
                    .push_bind(i64::from(usage.output_tokens))
                    .push_bind(usage.cost_usd)
                    .push_bind(i64::from(usage.tool_calls))
                    .push_bind(message.created_at_ms);
            });
            insert.push(" ON CONFLICT (thought_id) DO NOTHING");
            insert.build().execute(&mut *c).await.map(|_| ())
        })?;
    }
    Ok(())
}

impl Store {
    /// What the reply to `thought` cost, if it was recorded.
    pub async fn thought_usage(
        &self,
        thought: ThoughtId,
    ) -> Result<Option<ReplyUsage>, StoreError> {
        type Row = (
            Option<String>,
            String,
            String,
            String,
            i64,
            i64,
            Option<f64>,
            i64,
        );
        let row: Option<Row> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT user_id, provider, model, tier, input_tokens, output_tokens, cost_usd, tool_calls \
             FROM usage WHERE thought_id = $1",
        )
        .bind(thought.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        let Some((user, provider, model, tier, input, output, cost_usd, tool_calls)) = row else {
            return Ok(None);
        };
        let user = match user {
            Some(u) => Some(UserId(crate::store::parse_uuid(&u, "usage.user_id")?)),
            None => None,
        };
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Some(ReplyUsage {
            user,
            provider,
            model,
            tier,
            input_tokens: count(input),
            output_tokens: count(output),
            cost_usd,
            tool_calls: count(tool_calls),
        }))
    }

    /// Everything `user`'s replies cost since `since_ms`.
    pub async fn user_usage(&self, user: UserId, since_ms: i64) -> Result<UsageTotals, StoreError> {
        let (replies, input, output, cost): (i64, Option<i64>, Option<i64>, Option<f64>) =
            on_read!(&self.pools, |pool| sqlx::query_as(
                // PostgreSQL sums BIGINTs into NUMERIC; the casts keep both at BIGINT.
                "SELECT COUNT(*), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), \
                 SUM(cost_usd) FROM usage \
             WHERE user_id = $1 AND created_at_ms >= $2",
            )
            .bind(user.0.to_string())
            .bind(since_ms)
            .fetch_one(pool)
            .await)
            .map_err(|e| self.err(e))?;
        let count = |n: Option<i64>| u64::try_from(n.unwrap_or(0)).unwrap_or(0);
        Ok(UsageTotals {
            replies: count(Some(replies)),
            input_tokens: count(input),
            output_tokens: count(output),
            cost_usd: cost.unwrap_or(0.0),
        })
    }
}

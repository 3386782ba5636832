//! People and places: users with their platform identities, and conversations.
//!
//! Both are idempotent upserts keyed by the platform's own ids. They run on every
//! incoming message, so the common case (already known, name unchanged) is one
//! read and no write.

use crate::StoreError;
use crate::backend::{in_tx, on_read};
use crate::store::{Store, now_ms, parse_uuid};
use clara_core::{ChannelKind, ConversationId, ConversationRef, UserId};

impl Store {
    /// The user behind a platform identity, created on first sight. A changed
    /// display name is stored (on the identity and the user).
    pub async fn resolve_user(
        &self,
        platform: &str,
        platform_user_id: &str,
        display_name: &str,
    ) -> Result<UserId, StoreError> {
        const FIND: &str = "SELECT user_id, display_name FROM identities WHERE platform = $1 AND platform_user_id = $2";
        let known: Option<(String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(FIND)
            .bind(platform)
            .bind(platform_user_id)
            .fetch_optional(pool)
            .await)
        .map_err(|e| self.err(e))?;
        if let Some((id, name)) = &known
            && name == display_name
        {
            return Ok(UserId(parse_uuid(id, "identities.user_id")?));
        }

        let now = now_ms();
        let mut tx = self.begin_write().await?;
        // Read again under the write lock: another writer may have created it.
        let known: Option<(String, String)> = in_tx!(&mut tx, |c| sqlx::query_as(FIND)
            .bind(platform)
            .bind(platform_user_id)
            .fetch_optional(&mut *c)
            .await)
        .map_err(|e| self.err(e))?;
        let user = match known {
            Some((id, name)) => {
                let user = UserId(parse_uuid(&id, "identities.user_id")?);
                if name != display_name {
                    in_tx!(&mut tx, |c| sqlx::query(
                        "UPDATE identities SET display_name = $1, updated_at_ms = $2 WHERE platform = $3 AND platform_user_id = $4",
                    )
                    .bind(display_name)
                    .bind(now)
                    .bind(platform)
                    .bind(platform_user_id)
                    .execute(&mut *c)
                    .await
.map(|r| r.rows_affected()))
                    .map_err(|e| self.err(e))?;
                    in_tx!(&mut tx, |c| sqlx::query(
                        "UPDATE users SET display_name = $1 WHERE id = $2"
                    )
                    .bind(display_name)
                    .bind(&id)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected()))
                    .map_err(|e| self.err(e))?;
                }
                user
            }
            None => {
                let user = UserId::new();
                let id = user.0.to_string();
                in_tx!(&mut tx, |c| sqlx::query(
                    "INSERT INTO users (id, display_name, created_at_ms) VALUES ($1, $2, $3)"
                )
                .bind(&id)
                .bind(display_name)
                .bind(now)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
                .map_err(|e| self.err(e))?;
                in_tx!(&mut tx, |c| sqlx::query(
                    "INSERT INTO identities (platform, platform_user_id, user_id, display_name, created_at_ms, updated_at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(platform)
                .bind(platform_user_id)
                .bind(&id)
                .bind(display_name)
                .bind(now)
                .bind(now)
                .execute(&mut *c)
                .await
.map(|r| r.rows_affected()))
                .map_err(|e| self.err(e))?;
                user
            }
        };
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(user)
    }

    /// How `platform` knows `user`: their id there and display name (the
    /// most recently updated identity, should there be several).
    pub async fn identity_on(
        &self,
        user: UserId,
        platform: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT platform_user_id, display_name FROM identities WHERE user_id = $1 AND platform = $2 \
             ORDER BY updated_at_ms DESC LIMIT 1",
        )
        .bind(user.0.to_string())
        .bind(platform)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))
    }

    /// The user behind a platform identity, if Clara has seen it (never creates
    /// one: an operator's typo must not become a new person).
    pub async fn find_user(
        &self,
        platform: &str,
        platform_user_id: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<(String,)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT user_id FROM identities WHERE platform = $1 AND platform_user_id = $2",
        )
        .bind(platform)
        .bind(platform_user_id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(id,)| parse_uuid(&id, "identities.user_id").map(UserId))
            .transpose()
    }

    /// The display name of the user with this id, if the user exists.
    pub async fn user_display_name(&self, user: UserId) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT display_name FROM users WHERE id = $1"
        )
        .bind(user.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(row.map(|(name,)| name))
    }

    /// The conversation for a platform channel, created on first sight. A changed
    /// kind (a DM that became a group) is stored.
    pub async fn resolve_conversation(
        &self,
        conversation: &ConversationRef,
    ) -> Result<ConversationId, StoreError> {
        const FIND: &str =
            "SELECT id, kind FROM conversations WHERE platform = $1 AND channel = $2";
        let kind = conversation.kind.as_str();
        let known: Option<(String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(FIND)
            .bind(&conversation.platform)
            .bind(&conversation.channel)
            .fetch_optional(pool)
            .await)
        .map_err(|e| self.err(e))?;
        if let Some((id, stored_kind)) = &known
            && stored_kind == kind
        {
            return Ok(ConversationId(parse_uuid(id, "conversations.id")?));
        }

        let mut tx = self.begin_write().await?;
        let new_id = ConversationId::new();
        // On conflict the existing row keeps its id; only the kind is refreshed.
        in_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO conversations (id, platform, channel, kind, created_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (platform, channel) DO UPDATE SET kind = excluded.kind",
        )
        .bind(new_id.0.to_string())
        .bind(&conversation.platform)
        .bind(&conversation.channel)
        .bind(kind)
        .bind(now_ms())
        .execute(&mut *c)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        let (id, _): (String, String) = in_tx!(&mut tx, |c| sqlx::query_as(FIND)
            .bind(&conversation.platform)
            .bind(&conversation.channel)
            .fetch_one(&mut *c)
            .await)
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(ConversationId(parse_uuid(&id, "conversations.id")?))
    }

    /// The conversation on `platform` with this channel id, if Clara has seen
    /// it (never creates one: an operator's typo must not become a new place).
    pub async fn find_conversation(
        &self,
        platform: &str,
        channel: &str,
    ) -> Result<Option<(ConversationId, ConversationRef)>, StoreError> {
        let row: Option<(String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, kind FROM conversations WHERE platform = $1 AND channel = $2"
        )
        .bind(platform)
        .bind(channel)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(id, kind)| {
            let id = ConversationId(parse_uuid(&id, "conversations.id")?);
            let kind = ChannelKind::parse(&kind).ok_or_else(|| {
                StoreError::invalid(format!("conversation {id} has unknown kind {kind:?}"))
            })?;
            Ok((
                id,
                ConversationRef {
                    platform: platform.to_owned(),
                    channel: channel.to_owned(),
                    kind,
                },
            ))
        })
        .transpose()
    }

    /// Where a stored conversation lives, if it exists.
    pub async fn conversation_ref(
        &self,
        conversation: ConversationId,
    ) -> Result<Option<ConversationRef>, StoreError> {
        let row: Option<(String, String, String)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT platform, channel, kind FROM conversations WHERE id = $1"
        )
        .bind(conversation.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(platform, channel, kind)| {
            let kind = ChannelKind::parse(&kind).ok_or_else(|| {
                StoreError::invalid(format!(
                    "conversation {conversation} has unknown kind {kind:?}"
                ))
            })?;
            Ok(ConversationRef {
                platform,
                channel,
                kind,
            })
        })
        .transpose()
    }
}

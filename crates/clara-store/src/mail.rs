//! Watched mailboxes: IMAP accounts (the password sealed by the caller),
//! where watching stopped in each folder, and the rules that make a mail worth
//! an alert. What the columns mean is `clara-email`'s; the store keeps them.

use crate::StoreError;
use crate::backend::{on_read, on_write};
use crate::store::{Store, now_ms, parse_uuid};
use clara_core::UserId;

/// An IMAP account to add.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMailAccount {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose mailbox it is.
    pub user: UserId,
    /// How people name it (usually the address).
    pub label: String,
    /// The IMAP server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `tls`, `start_tls` or `plain`.
    pub security: String,
    /// The login name.
    pub username: String,
    /// The password, sealed (never stored in the clear).
    pub password_sealed: Vec<u8>,
    /// The folders watched.
    pub folders: Vec<String>,
    /// IDLE when the server offers it; otherwise polling.
    pub use_idle: bool,
}

impl std::fmt::Debug for NewMailAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMailAccount")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A stored IMAP account.
#[derive(Clone, PartialEq, Eq)]
pub struct MailAccountRecord {
    /// The account as added.
    pub account: NewMailAccount,
    /// The watcher's last word about it.
    pub status: Option<String>,
    /// When it was added.
    pub created_at_ms: i64,
}

impl std::fmt::Debug for MailAccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailAccountRecord")
            .field("account", &self.account)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A rule to add: conditions as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct MailRuleRecord {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose rule it is.
    pub user: UserId,
    /// How people name it.
    pub name: String,
    /// Its conditions (`clara_email`'s rule as JSON).
    pub conditions: serde_json::Value,
    /// When it was made.
    pub created_at_ms: i64,
}

const ACCOUNT_COLUMNS: &str = "id, user_id, label, host, port, security, username, password, folders, use_idle, \
                               status, created_at_ms";

type AccountRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Vec<u8>,
    String,
    i64,
    Option<String>,
    i64,
);

fn account(row: AccountRow) -> Result<MailAccountRecord, StoreError> {
    let (
        id,
        user,
        label,
        host,
        port,
        security,
        username,
        password_sealed,
        folders,
        use_idle,
        status,
        created_at_ms,
    ) = row;
    Ok(MailAccountRecord {
        account: NewMailAccount {
            user: UserId(parse_uuid(&user, "mail_accounts.user_id")?),
            label,
            host,
            port: u16::try_from(port)
                .map_err(|_| StoreError::invalid(format!("mail account {id} has port {port}")))?,
            security,
            username,
            password_sealed,
            folders: serde_json::from_str(&folders).map_err(|e| {
                StoreError::invalid(format!("mail account {id}'s folders are not JSON: {e}"))
            })?,
            use_idle: use_idle != 0,
            id: parse_uuid(&id, "mail_accounts.id")?,
        },
        status,
        created_at_ms,
    })
}

type RuleRow = (String, String, String, String, i64);

fn rule(row: RuleRow) -> Result<MailRuleRecord, StoreError> {
    let (id, user, name, conditions, created_at_ms) = row;
    Ok(MailRuleRecord {
        user: UserId(parse_uuid(&user, "mail_rules.user_id")?),
        name,
        conditions: serde_json::from_str(&conditions).map_err(|e| {
            StoreError::invalid(format!("mail rule {id}'s conditions are not JSON: {e}"))
        })?,
        created_at_ms,
        id: parse_uuid(&id, "mail_rules.id")?,
    })
}

impl Store {
    /// Adds an account, or replaces the one with the same id.
    pub async fn put_mail_account(&self, account: &NewMailAccount) -> Result<(), StoreError> {
        let now = now_ms();
        let folders = serde_json::Value::from(account.folders.clone()).to_string();
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO mail_accounts (id, user_id, label, host, port, security, username, password, folders, use_idle, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO UPDATE SET label = excluded.label, host = excluded.host, port = excluded.port, \
             security = excluded.security, username = excluded.username, password = excluded.password, \
             folders = excluded.folders, use_idle = excluded.use_idle, status = NULL, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(account.id.to_string())
        .bind(account.user.0.to_string())
        .bind(&account.label)
        .bind(&account.host)
        .bind(i64::from(account.port))
        .bind(&account.security)
        .bind(&account.username)
        .bind(&account.password_sealed)
        .bind(folders)
        .bind(i64::from(account.use_idle))
        .bind(now)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Accounts, oldest first: `user`'s, or everyone's.
    pub async fn mail_accounts(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<MailAccountRecord>, StoreError> {
        let rows: Vec<AccountRow> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM mail_accounts WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1) \
             ORDER BY created_at_ms, id"
        )))
        .bind(user.map(|u| u.0.to_string()))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(account).collect()
    }

    /// Removes an account (only `user`'s, when given) with its folder marks.
    pub async fn remove_mail_account(
        &self,
        id: uuid::Uuid,
        user: Option<UserId>,
    ) -> Result<bool, StoreError> {
        let removed = on_write!(&self.pools, |pool| sqlx::query(
            "DELETE FROM mail_accounts WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR user_id = $2)",
        )
        .bind(id.to_string())
        .bind(user.map(|u| u.0.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(removed > 0)
    }

    /// Records the watcher's last word about an account.
    pub async fn set_mail_status(&self, id: uuid::Uuid, status: &str) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE mail_accounts SET status = $1 WHERE id = $2"
        )
        .bind(status)
        .bind(id.to_string())
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Where watching stopped in a folder: `(uid validity, last uid)`.
    pub async fn mail_mark(
        &self,
        account: uuid::Uuid,
        folder: &str,
    ) -> Result<Option<(u32, u32)>, StoreError> {
        let row: Option<(i64, i64)> = on_read!(&self.pools, |pool| {
            sqlx::query_as(
            "SELECT uid_validity, last_uid FROM mail_folders WHERE account_id = $1 AND folder = $2",
        )
        .bind(account.to_string())
        .bind(folder)
        .fetch_optional(pool)
        .await
        })
        .map_err(|e| self.err(e))?;
        Ok(row.map(|(validity, last)| {
            (
                u32::try_from(validity).unwrap_or(0),
                u32::try_from(last).unwrap_or(0),
            )
        }))
    }

    /// Records where watching stopped in a folder.
    pub async fn set_mail_mark(
        &self,
        account: uuid::Uuid,
        folder: &str,
        uid_validity: u32,
        last_uid: u32,
    ) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO mail_folders (account_id, folder, uid_validity, last_uid, updated_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (account_id, folder) DO UPDATE SET uid_validity = excluded.uid_validity, \
             last_uid = excluded.last_uid, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(account.to_string())
        .bind(folder)
        .bind(i64::from(uid_validity))
        .bind(i64::from(last_uid))
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Adds a rule.
    pub async fn add_mail_rule(&self, rule: &MailRuleRecord) -> Result<(), StoreError> {
        on_write!(&self.pools, |pool| sqlx::query(
            "INSERT INTO mail_rules (id, user_id, name, conditions, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rule.id.to_string())
        .bind(rule.user.0.to_string())
        .bind(&rule.name)
        .bind(rule.conditions.to_string())
        .bind(rule.created_at_ms)
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(|e| self.err(e))
    }

    /// Rules, oldest first: `user`'s, or everyone's.
    pub async fn mail_rules(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<MailRuleRecord>, StoreError> {
        let rows: Vec<RuleRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, user_id, name, conditions, created_at_ms FROM mail_rules \
             WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1) ORDER BY created_at_ms, id",
        )
        .bind(user.map(|u| u.0.to_string()))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(rule).collect()
    }

    /// Removes a rule (only `user`'s, when given).
    pub async fn remove_mail_rule(
        &self,
        id: uuid::Uuid,
        user: Option<UserId>,
    ) -> Result<bool, StoreError> {
        let removed = on_write!(&self.pools, |pool| {
            sqlx::query(
            "DELETE FROM mail_rules WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR user_id = $2)",
        )
        .bind(id.to_string())
        .bind(user.map(|u| u.0.to_string()))
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
        })
        .map_err(|e| self.err(e))?;
        Ok(removed > 0)
    }
}

//! E-mail wired into Clara: the store as the watcher's [`MailBook`] (IMAP
//! passwords sealed with the vault key, opened only here), the proactive
//! outbox as its [`Alerts`], and the watcher and mail tools started when
//! `[email] enabled` (`EMAIL_MONITORING_ENABLED`).

use crate::settings::Resolved;
use anyhow::{Context, Result};
use async_trait::async_trait;
use clara_core::component::Component;
use clara_core::{Secret, UserId};
use clara_email::{
    AccountId, AccountStatus, Alerts, EmailConfig, EmailIntegration, EmailSettings, FolderMark,
    MailAccount, MailBook, MailBookError, MailRule, Security,
};
use clara_runtime::Proactive;
use clara_store::{MailAccountRecord, MailRuleRecord, NewMailAccount, ProactiveKind, Store};
use clara_vault::Vault;
use std::sync::Arc;

/// The directory of the key that seals stored secrets (unless
/// `CLARA_SECRET_KEY` gives it): `<data dir>/.credentials`.
pub fn vault(resolved: &Resolved) -> Result<Vault> {
    Vault::new(&resolved.data_dir.join(".credentials"))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot open the key that seals mail passwords")
}

/// `[email]`, checked.
pub fn config(resolved: &Resolved) -> Result<EmailConfig> {
    let settings: EmailSettings = resolved
        .sections
        .section(EmailIntegration::NAME)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.config().map_err(|e| anyhow::anyhow!("{e}"))
}

/// A rule's conditions as the store keeps them.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Sender glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Subject regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Body regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Attachments required (or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_attachment: Option<bool>,
    /// The person's wish, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_model: Option<String>,
}

/// The store as the watcher's book.
pub struct StoreMailBook {
    store: Store,
    vault: Vault,
}

impl StoreMailBook {
    /// Accounts and marks in `store`, passwords opened with `vault`.
    pub fn new(store: Store, vault: Vault) -> Self {
        Self { store, vault }
    }

    /// Seals a password for account `id`: only that account's row opens it.
    pub fn seal(&self, id: uuid::Uuid, password: &Secret) -> Result<Vec<u8>> {
        self.vault
            .seal(&aad(id), password.expose().as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn account(&self, record: MailAccountRecord) -> Option<MailAccount> {
        let a = record.account;
        let opened = self.vault.open(&aad(a.id), &a.password_sealed);
        let password = match opened.ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(p) => Secret::new(p),
            None => {
                // Another key, or damage: the account cannot sign in. Said once
                // per reload in the log, never the bytes.
                tracing::warn!(account = %a.label, "a mail account's password does not open with this key (CLARA_SECRET_KEY or <data dir>/.credentials/key); add the account again");
                return None;
            }
        };
        let security = match a.security.as_str() {
            "tls" => Security::Tls,
            "start_tls" => Security::StartTls,
            "plain" => Security::Plain,
            other => {
                tracing::warn!(account = %a.label, security = other, "a mail account has an unknown security setting");
                return None;
            }
        };
        Some(MailAccount {
            id: AccountId(a.id),
            user: a.user,
            label: a.label,
            host: a.host,
            port: a.port,
            security,
            username: a.username,
            password,
            folders: a.folders,
            use_idle: a.use_idle,
        })
    }
}

fn aad(id: uuid::Uuid) -> String {
    format!("mail-account:{id}")
}

fn book_error(e: impl std::fmt::Display) -> MailBookError {
    MailBookError::new(e)
}

/// A stored rule as the watcher reads it; a rule that no longer parses is
/// left out (and said in the log).
pub fn rule_of(record: MailRuleRecord) -> Option<MailRule> {
    match serde_json::from_value::<Conditions>(record.conditions) {
        Ok(c) => Some(MailRule {
            id: record.id,
            user: record.user,
            name: record.name,
            from: c.from,
            subject: c.subject,
            body: c.body,
            has_attachment: c.has_attachment,
            ask_model: c.ask_model,
        }),
        Err(error) => {
            tracing::warn!(rule = %record.name, %error, "a mail rule cannot be read; it is skipped");
            None
        }
    }
}

#[async_trait]
impl MailBook for StoreMailBook {
    async fn accounts(&self) -> Result<Vec<MailAccount>, MailBookError> {
        let records = self.store.mail_accounts(None).await.map_err(book_error)?;
        Ok(records
            .into_iter()
            .filter_map(|r| self.account(r))
            .collect())
    }

    async fn accounts_of(&self, user: UserId) -> Result<Vec<MailAccount>, MailBookError> {
        let records = self
            .store
            .mail_accounts(Some(user))
            .await
            .map_err(book_error)?;
        Ok(records
            .into_iter()
            .filter_map(|r| self.account(r))
            .collect())
    }

    async fn rules(&self, user: UserId) -> Result<Vec<MailRule>, MailBookError> {
        let records = self
            .store
            .mail_rules(Some(user))
            .await
            .map_err(book_error)?;
        Ok(records.into_iter().filter_map(rule_of).collect())
    }

    async fn mark(
        &self,
        account: AccountId,
        folder: &str,
    ) -> Result<Option<FolderMark>, MailBookError> {
        let mark = self
            .store
            .mail_mark(account.0, folder)
            .await
            .map_err(book_error)?;
        Ok(mark.map(|(uid_validity, last_uid)| FolderMark {
            uid_validity,
            last_uid,
        }))
    }

    async fn set_mark(
        &self,
        account: AccountId,
        folder: &str,
        mark: FolderMark,
    ) -> Result<(), MailBookError> {
        self.store
            .set_mail_mark(account.0, folder, mark.uid_validity, mark.last_uid)
            .await
            .map_err(book_error)
    }

    async fn set_status(
        &self,
        account: AccountId,
        status: AccountStatus,
    ) -> Result<(), MailBookError> {
        let text = match status {
            AccountStatus::Watching { idle: true } => "watching (IDLE)".to_owned(),
            AccountStatus::Watching { idle: false } => "watching (polling)".to_owned(),
            AccountStatus::Failing(why) => why,
        };
        self.store
            .set_mail_status(account.0, &text)
            .await
            .map_err(book_error)
    }
}

/// The outbox as the watcher's way to reach people.
pub struct OutboxAlerts(pub Proactive);

#[async_trait]
impl Alerts for OutboxAlerts {
    async fn alert(&self, user: UserId, key: String, text: String) {
        if let Err(error) = self.0.alert(user, ProactiveKind::Alert, &key, &text).await {
            tracing::warn!(%error, %key, "a mail alert could not be queued");
        }
    }

    async fn problem(&self, user: UserId, key: String, text: String) {
        tracing::warn!(%key, "{text}");
        // Once a day at most: an account fixed and broken again later is
        // said again, a broken one does not nag.
        let day = clara_runtime::clock::now_ms() / 86_400_000;
        let key = format!("{key}:{day}");
        if let Err(error) = self.0.alert(user, ProactiveKind::Notice, &key, &text).await {
            tracing::warn!(%error, %key, "a mail problem could not be told to its person");
        }
    }
}

/// The mail watcher and tools of a running Clara, when e-mail is on.
pub struct Email {
    /// The checked settings.
    pub config: EmailConfig,
    /// The store as the book.
    pub book: Arc<StoreMailBook>,
}

impl Email {
    /// `None` when `[email]` is off.
    pub fn open(resolved: &Resolved, store: &Store) -> Result<Option<Self>> {
        let config = config(resolved)?;
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Self {
            config,
            book: Arc::new(StoreMailBook::new(store.clone(), vault(resolved)?)),
        }))
    }

    /// The `mail__*` tools.
    pub fn tools(&self) -> clara_email::MailTools {
        clara_email::MailTools::new(
            Arc::clone(&self.book) as Arc<dyn MailBook>,
            self.config.clone(),
        )
    }

    /// Starts watching every account; the model judges rules that ask it
    /// when `[email] judge` is on.
    pub fn watch(
        &self,
        proactive: Proactive,
        provider: Arc<dyn clara_llm::ChatProvider>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let judge = self.config.judge.then(|| {
            Arc::new(clara_email::ModelJudge::new(provider)) as Arc<dyn clara_email::MailJudge>
        });
        let watcher = clara_email::MailWatcher::new(
            self.config.clone(),
            Arc::clone(&self.book) as Arc<dyn MailBook>,
            Arc::new(OutboxAlerts(proactive)),
            judge,
        );
        tracing::info!("e-mail monitoring on: watching the accounts people added");
        tokio::spawn(watcher.run(stop));
    }
}

/// A new account row, its password sealed.
pub fn sealed_account(book: &StoreMailBook, account: &MailAccount) -> Result<NewMailAccount> {
    Ok(NewMailAccount {
        id: account.id.0,
        user: account.user,
        label: account.label.clone(),
        host: account.host.clone(),
        port: account.port,
        security: account.security.as_str().to_owned(),
        username: account.username.clone(),
        password_sealed: book.seal(account.id.0, &account.password)?,
        folders: account.folders.clone(),
        use_idle: account.use_idle,
    })
}

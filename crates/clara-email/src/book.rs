//! What the watcher needs from the rest of Clara: where accounts, rules and
//! marks live ([`MailBook`]), and how a message reaches the person ([`Alerts`]).

use crate::model::{AccountId, AccountStatus, FolderMark, MailAccount, MailRule};
use async_trait::async_trait;
use clara_core::UserId;

/// The store could not answer. One sentence; never a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MailBookError(pub String);

impl MailBookError {
    /// An error with this sentence.
    pub fn new(sentence: impl std::fmt::Display) -> Self {
        Self(sentence.to_string())
    }
}

/// Where accounts, rules and marks live.
#[async_trait]
pub trait MailBook: Send + Sync {
    /// Every account to watch (passwords opened).
    async fn accounts(&self) -> Result<Vec<MailAccount>, MailBookError>;
    /// `user`'s accounts.
    async fn accounts_of(&self, user: UserId) -> Result<Vec<MailAccount>, MailBookError>;
    /// `user`'s rules, in the order they are tried.
    async fn rules(&self, user: UserId) -> Result<Vec<MailRule>, MailBookError>;
    /// Where watching `folder` of `account` stopped; `None` before the first look.
    async fn mark(
        &self,
        account: AccountId,
        folder: &str,
    ) -> Result<Option<FolderMark>, MailBookError>;
    /// Records where watching `folder` of `account` stopped.
    async fn set_mark(
        &self,
        account: AccountId,
        folder: &str,
        mark: FolderMark,
    ) -> Result<(), MailBookError>;
    /// Records how watching `account` goes.
    async fn set_status(
        &self,
        account: AccountId,
        status: AccountStatus,
    ) -> Result<(), MailBookError>;
}

/// How alerts reach the person (the runtime's proactive outbox).
#[async_trait]
pub trait Alerts: Send + Sync {
    /// One alert for `user`; `key` identifies it: the same key is delivered
    /// at most once, across restarts and processes.
    async fn alert(&self, user: UserId, key: String, text: String);
    /// One sentence about a broken account (bad credentials, unreachable);
    /// `key` (`mail-problem:<account>:<kind>`) dedupes, so a failing account
    /// does not repeat the sentence on every retry.
    async fn problem(&self, user: UserId, key: String, text: String);
}

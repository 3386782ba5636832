//! Doubles for tests (feature `testing`): a [`MemoryBook`] holding accounts,
//! rules, marks and statuses in memory, and [`RecordingAlerts`] that keeps
//! what would have reached the person, delivering each key once as the real
//! outbox does; and [`dovecot::Dovecot`], a private real IMAP server per test
//! (this crate's tests and the binary's end-to-end tests share it).

pub mod dovecot;

use crate::book::{Alerts, MailBook, MailBookError};
use crate::judge::MailJudge;
use crate::model::{AccountId, AccountStatus, FolderMark, MailAccount, MailRule, MailSummary};
use async_trait::async_trait;
use clara_core::UserId;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A [`MailBook`] in memory. Clones share it.
#[derive(Clone, Default)]
pub struct MemoryBook {
    inner: Arc<Mutex<BookState>>,
}

#[derive(Default)]
struct BookState {
    accounts: Vec<MailAccount>,
    rules: Vec<MailRule>,
    marks: HashMap<(AccountId, String), FolderMark>,
    statuses: HashMap<AccountId, Vec<AccountStatus>>,
}

impl MemoryBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, by id) an account.
    pub fn put_account(&self, account: MailAccount) {
        let mut s = self.inner.lock();
        s.accounts.retain(|a| a.id != account.id);
        s.accounts.push(account);
    }

    /// Removes an account.
    pub fn remove_account(&self, id: AccountId) {
        self.inner.lock().accounts.retain(|a| a.id != id);
    }

    /// Adds a rule.
    pub fn add_rule(&self, rule: MailRule) {
        self.inner.lock().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.inner.lock().rules.clear();
    }

    /// The mark of `folder` of `account`.
    pub fn mark_of(&self, account: AccountId, folder: &str) -> Option<FolderMark> {
        self.inner
            .lock()
            .marks
            .get(&(account, folder.to_owned()))
            .copied()
    }

    /// Every status `account` was given, oldest first.
    pub fn statuses(&self, account: AccountId) -> Vec<AccountStatus> {
        self.inner
            .lock()
            .statuses
            .get(&account)
            .cloned()
            .unwrap_or_default()
    }

    /// The latest status of `account`.
    pub fn status(&self, account: AccountId) -> Option<AccountStatus> {
        self.statuses(account).pop()
    }
}

#[async_trait]
impl MailBook for MemoryBook {
    async fn accounts(&self) -> Result<Vec<MailAccount>, MailBookError> {
        Ok(self.inner.lock().accounts.clone())
    }

    async fn accounts_of(&self, user: UserId) -> Result<Vec<MailAccount>, MailBookError> {
        Ok(self
            .inner
            .lock()
            .accounts
            .iter()
            .filter(|a| a.user == user)
            .cloned()
            .collect())
    }

    async fn rules(&self, user: UserId) -> Result<Vec<MailRule>, MailBookError> {
        Ok(self
            .inner
            .lock()
            .rules
            .iter()
            .filter(|r| r.user == user)
            .cloned()
            .collect())
    }

    async fn mark(
        &self,
        account: AccountId,
        folder: &str,
    ) -> Result<Option<FolderMark>, MailBookError> {
        Ok(self.mark_of(account, folder))
    }

    async fn set_mark(
        &self,
        account: AccountId,
        folder: &str,
        mark: FolderMark,
    ) -> Result<(), MailBookError> {
        self.inner
            .lock()
            .marks
            .insert((account, folder.to_owned()), mark);
        Ok(())
    }

    async fn set_status(
        &self,
        account: AccountId,
        status: AccountStatus,
    ) -> Result<(), MailBookError> {
        self.inner
            .lock()
            .statuses
            .entry(account)
            .or_default()
            .push(status);
        Ok(())
    }
}

/// One message that reached the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// For whom.
    pub user: UserId,
    /// Its key.
    pub key: String,
    /// The text.
    pub text: String,
}

/// [`Alerts`] that record what was delivered; a key seen before is dropped,
/// as the real outbox does. Clones share the record.
#[derive(Clone, Default)]
pub struct RecordingAlerts {
    inner: Arc<Mutex<AlertState>>,
    changed: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct AlertState {
    keys: HashSet<String>,
    alerts: Vec<Sent>,
    problems: Vec<Sent>,
    /// Every call, delivered or not.
    calls: usize,
}

impl RecordingAlerts {
    /// Nothing recorded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The alerts delivered, oldest first.
    pub fn alerts(&self) -> Vec<Sent> {
        self.inner.lock().alerts.clone()
    }

    /// The problem sentences delivered, oldest first.
    pub fn problems(&self) -> Vec<Sent> {
        self.inner.lock().problems.clone()
    }

    /// How many times `alert` or `problem` was called (duplicates included).
    pub fn calls(&self) -> usize {
        self.inner.lock().calls
    }

    /// Waits until `done` holds for the recorded alerts and problems, or
    /// `deadline` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        done: impl Fn(&[Sent], &[Sent]) -> bool,
    ) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let changed = self.changed.notified();
            {
                let s = self.inner.lock();
                if done(&s.alerts, &s.problems) {
                    return true;
                }
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                let s = self.inner.lock();
                return done(&s.alerts, &s.problems);
            }
        }
    }

    /// Waits until at least `n` alerts were delivered (or `deadline`).
    pub async fn wait_for_alerts(&self, n: usize, deadline: Duration) -> Vec<Sent> {
        self.wait_until(deadline, |a, _| a.len() >= n).await;
        self.alerts()
    }

    /// Waits until at least `n` problems were delivered (or `deadline`).
    pub async fn wait_for_problems(&self, n: usize, deadline: Duration) -> Vec<Sent> {
        self.wait_until(deadline, |_, p| p.len() >= n).await;
        self.problems()
    }

    fn record(&self, problem: bool, user: UserId, key: String, text: String) {
        {
            let mut s = self.inner.lock();
            s.calls += 1;
            if s.keys.insert(key.clone()) {
                let sent = Sent { user, key, text };
                if problem {
                    s.problems.push(sent);
                } else {
                    s.alerts.push(sent);
                }
            }
        }
        self.changed.notify_waiters();
    }
}

#[async_trait]
impl Alerts for RecordingAlerts {
    async fn alert(&self, user: UserId, key: String, text: String) {
        self.record(false, user, key, text);
    }

    async fn problem(&self, user: UserId, key: String, text: String) {
        self.record(true, user, key, text);
    }
}

/// A [`MailJudge`] answering with a function, recording the wishes asked.
pub struct FnJudge<F> {
    answer: F,
    asked: Mutex<Vec<(String, MailSummary)>>,
}

impl<F> FnJudge<F>
where
    F: Fn(&str, &MailSummary) -> Result<Option<String>, String> + Send + Sync,
{
    /// A judge answering with `answer`.
    pub fn new(answer: F) -> Self {
        Self {
            answer,
            asked: Mutex::new(Vec::new()),
        }
    }

    /// Every (wish, mail) asked about.
    pub fn asked(&self) -> Vec<(String, MailSummary)> {
        self.asked.lock().clone()
    }
}

#[async_trait]
impl<F> MailJudge for FnJudge<F>
where
    F: Fn(&str, &MailSummary) -> Result<Option<String>, String> + Send + Sync,
{
    async fn judge(&self, wish: &str, mail: &MailSummary) -> Result<Option<String>, String> {
        self.asked.lock().push((wish.to_owned(), mail.clone()));
        (self.answer)(wish, mail)
    }
}

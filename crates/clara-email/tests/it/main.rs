//! Integration tests, one binary for the crate: the watcher and the tools
//! against a real Dovecot (a private one per test, see
//! `clara_email::testing::dovecot`).
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code, missing_docs)]

mod judge;
mod tools;
mod watch;

use clara_core::UserId;
use clara_email::imap;
use clara_email::testing::{MemoryBook, RecordingAlerts};
use clara_email::{EmailConfig, MailAccount, MailRule, MailWatcher};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A generous deadline for things that should take a second or two.
pub const DEADLINE: Duration = Duration::from_secs(45);

/// Settings for tests: fast polls, reloads and retries; no batching wait.
pub fn config() -> EmailConfig {
    EmailConfig {
        enabled: true,
        poll: Duration::from_secs(1),
        idle_renew: Duration::from_secs(300),
        batch: Duration::ZERO,
        reload: Duration::from_millis(500),
        judge: false,
        connect_timeout: Duration::from_secs(10),
        check_timeout: Duration::from_secs(60),
        auth_retry: Duration::from_secs(1),
    }
}

pub fn rule(user: UserId, name: &str, change: impl FnOnce(&mut MailRule)) -> MailRule {
    let mut rule = MailRule {
        id: uuid::Uuid::new_v4(),
        user,
        name: name.into(),
        from: None,
        subject: None,
        body: None,
        has_attachment: None,
        ask_model: None,
    };
    change(&mut rule);
    rule
}

/// A running watcher, stopped (and waited for) by [`Running::stop`].
pub struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the watcher stops when cancelled")
            .unwrap();
    }
}

pub fn watch(
    config: EmailConfig,
    book: &MemoryBook,
    alerts: &RecordingAlerts,
    judge: Option<Arc<dyn clara_email::MailJudge>>,
) -> Running {
    let watcher = MailWatcher::new(
        config,
        Arc::new(book.clone()),
        Arc::new(alerts.clone()),
        judge,
    );
    let cancel = CancellationToken::new();
    let task = tokio::spawn(watcher.run(cancel.clone()));
    Running { cancel, task }
}

/// Waits until `check` holds, polling; panics with `what` at the deadline.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the watcher has taken its first look at `account`'s INBOX
/// (mail delivered before that is old news and never alerted).
pub async fn first_look(book: &MemoryBook, account: &MailAccount) {
    eventually("the watcher looked at the folder", || {
        book.mark_of(account.id, "INBOX").is_some()
    })
    .await;
}

/// Waits until the mark of `account`'s INBOX has passed `uid`.
pub async fn marked_past(book: &MemoryBook, account: &MailAccount, uid: u32) {
    eventually(&format!("the mark passed uid {uid}"), || {
        book.mark_of(account.id, "INBOX")
            .is_some_and(|m| m.last_uid >= uid)
    })
    .await;
}

/// The UIDs of `account`'s INBOX and whether each is `\Seen`, read in a
/// session of its own (read-only).
pub async fn seen_flags(account: &MailAccount) -> Vec<(u32, bool)> {
    let (mut session, _) = imap::connect(account, Duration::from_secs(10))
        .await
        .unwrap();
    imap::examine(&mut session, "INBOX").await.unwrap();
    let uids = imap::uid_search(&mut session, "ALL").await.unwrap();
    let fetched = imap::uid_fetch(&mut session, &uids, "(UID FLAGS)")
        .await
        .unwrap();
    imap::logout(session).await;
    let mut flags: Vec<(u32, bool)> = fetched.into_iter().map(|f| (f.uid, f.seen)).collect();
    flags.sort_unstable();
    flags
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "clara_email=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

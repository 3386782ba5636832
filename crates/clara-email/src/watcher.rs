//! The watcher: one task per watched folder of every account in the book,
//! kept in step with the book as accounts come, change and go.

use crate::book::{Alerts, MailBook};
use crate::folder::{FolderWatch, Shared};
use crate::judge::MailJudge;
use crate::model::{AccountId, MailAccount};
use crate::settings::EmailConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long stopping waits for the folder tasks to end.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Watches every account of a [`MailBook`] and sends [`Alerts`].
pub struct MailWatcher {
    shared: Shared,
    reload: Arc<Notify>,
}

/// Asks a running [`MailWatcher`] to re-read its accounts now (after
/// `clara email add`, say) instead of at the next `reload_secs`.
#[derive(Clone, Debug)]
pub struct Reloader(Arc<Notify>);

impl Reloader {
    /// Re-read the accounts now.
    pub fn reload_now(&self) {
        self.0.notify_one();
    }
}

struct Running {
    account: MailAccount,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl MailWatcher {
    /// A watcher of `book`'s accounts, alerting through `alerts`; `judge`
    /// answers rules that ask the model (used only when `config.judge`).
    pub fn new(
        config: EmailConfig,
        book: Arc<dyn MailBook>,
        alerts: Arc<dyn Alerts>,
        judge: Option<Arc<dyn MailJudge>>,
    ) -> Self {
        Self {
            shared: Shared {
                config,
                book,
                alerts,
                judge,
            },
            reload: Arc::new(Notify::new()),
        }
    }

    /// A handle that makes the running watcher re-read its accounts.
    pub fn reloader(&self) -> Reloader {
        Reloader(Arc::clone(&self.reload))
    }

    /// Re-read the accounts now (also through [`MailWatcher::reloader`]).
    pub fn reload_now(&self) {
        self.reload.notify_one();
    }

    /// Watches until `shutdown`, re-reading the accounts every
    /// `config.reload` (or when asked): a new account or folder gets a task,
    /// a removed one loses it, a changed one (server, credentials, IDLE
    /// choice) is restarted.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running: HashMap<(AccountId, String), Running> = HashMap::new();
        loop {
            match self.shared.book.accounts().await {
                Ok(accounts) => self.reconcile(&mut running, accounts, &shutdown),
                Err(error) => {
                    tracing::warn!(%error, "the mail accounts could not be read; keeping the current watches");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.shared.config.reload) => {}
                () = self.reload.notified() => {}
            }
        }
        for (_, r) in running.iter() {
            r.cancel.cancel();
        }
        for (_, r) in running.drain() {
            let _ = tokio::time::timeout(STOP_WAIT, r.task).await;
        }
    }

    fn reconcile(
        &self,
        running: &mut HashMap<(AccountId, String), Running>,
        accounts: Vec<MailAccount>,
        shutdown: &CancellationToken,
    ) {
        let mut wanted: HashMap<(AccountId, String), MailAccount> = HashMap::new();
        for account in accounts {
            for folder in account.watched_folders() {
                wanted.insert((account.id, folder), account.clone());
            }
        }
        running.retain(|key, r| {
            let keep = wanted
                .get(key)
                .is_some_and(|a| !a.connection_differs(&r.account))
                && !r.task.is_finished();
            if !keep {
                tracing::info!(account = %key.0, folder = %key.1, "no longer watching this mail folder (removed or changed)");
                r.cancel.cancel();
            }
            keep
        });
        for (key, account) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let cancel = shutdown.child_token();
            let watch = FolderWatch::new(self.shared.clone(), account.clone(), key.1.clone());
            let task = tokio::spawn(watch.run(cancel.clone()));
            running.insert(
                key,
                Running {
                    account,
                    cancel,
                    task,
                },
            );
        }
    }
}

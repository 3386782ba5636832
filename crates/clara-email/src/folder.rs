//! Watching one folder of one account: connect, look at what is new, wait
//! for more (IDLE or polling), and start over when the connection breaks.
//!
//! Nothing here changes the mailbox: the folder is opened with `EXAMINE`
//! (read-only) and messages are read with `BODY.PEEK`, so no mail becomes
//! `\Seen`. Progress is the folder's [`FolderMark`] in the book: it moves only
//! after the alert for the mails below it has been handed over, and alerts
//! carry keys made from UIDVALIDITY and UIDs, so a crash between the two
//! repeats a key the outbox has already delivered rather than an alert.

use crate::alert::{Matched, alert_for, place};
use crate::book::{Alerts, MailBook, MailBookError};
use crate::imap::{self, ConnectError, Session};
use crate::judge::MailJudge;
use crate::model::{AccountStatus, FolderMark, MailAccount};
use crate::parse::{FETCH_BYTES, summarize};
use crate::rules::RuleSet;
use crate::settings::EmailConfig;
use async_imap::extensions::idle::IdleResponse;
use clara_core::backoff::Backoff;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Retries of a connection that failed for a passing reason (network, a
/// server restart): one second, doubling up to five minutes.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
/// How long an account may stay unreachable before the person is told.
const UNREACHABLE_TELL_AFTER: Duration = Duration::from_secs(10 * 60);
/// How long one IMAP command may take before the connection counts as dead.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The most new mails one check reads; older ones past it are passed over
/// (after weeks offline, the newest are the ones worth a look).
const MAX_PER_CHECK: usize = 500;
/// Messages fetched per `UID FETCH`.
const FETCH_CHUNK: usize = 25;
/// The most model calls one check makes for rules that ask the model.
const MAX_MODEL_CALLS: usize = 20;

/// Why a round of watching ended.
#[derive(Debug)]
enum RoundError {
    /// The server: connecting, signing in, a command.
    Imap(ConnectError),
    /// The book could not be read or written.
    Book(MailBookError),
}

impl From<ConnectError> for RoundError {
    fn from(e: ConnectError) -> Self {
        Self::Imap(e)
    }
}

impl From<MailBookError> for RoundError {
    fn from(e: MailBookError) -> Self {
        Self::Book(e)
    }
}

/// What a folder watch shares with the watcher.
#[derive(Clone)]
pub(crate) struct Shared {
    pub config: EmailConfig,
    pub book: Arc<dyn MailBook>,
    pub alerts: Arc<dyn Alerts>,
    pub judge: Option<Arc<dyn MailJudge>>,
}

/// One folder of one account, watched until cancelled.
pub(crate) struct FolderWatch {
    shared: Shared,
    account: MailAccount,
    folder: String,
    /// When the last alert of this folder went out (for batching).
    last_alert: Option<Instant>,
    /// Failures in a row.
    failures: u32,
    /// Since when the account has failed for a passing reason.
    failing_since: Option<Instant>,
    /// The kind of failure already told to the person since the last
    /// success (the outbox dedupes across restarts; this spares it the calls).
    told: Option<&'static str>,
}

impl FolderWatch {
    pub(crate) fn new(shared: Shared, account: MailAccount, folder: String) -> Self {
        Self {
            shared,
            account,
            folder,
            last_alert: None,
            failures: 0,
            failing_since: None,
            told: None,
        }
    }

    /// Watches until `cancel`: rounds of connect-and-watch, with waits between.
    pub(crate) async fn run(mut self, cancel: CancellationToken) {
        loop {
            let error = tokio::select! {
                () = cancel.cancelled() => return,
                error = self.round() => error,
            };
            let wait = self.failed(error).await;
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Handles a failed round: status, maybe one sentence for the person;
    /// returns how long to wait before the next.
    async fn failed(&mut self, error: RoundError) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let retry = RETRY.jittered(self.failures, rand::random::<f64>());
        let error = match error {
            RoundError::Book(error) => {
                tracing::warn!(account = %self.account.id, folder = %self.folder, %error, "the mail book failed; retrying");
                return retry;
            }
            RoundError::Imap(error) => error,
        };
        let sentence = error.sentence(&self.account);
        tracing::warn!(
            account = %self.account.id, host = %self.account.host, folder = %self.folder,
            kind = error.kind(), %error, failures = self.failures,
            "watching a mail folder failed"
        );
        self.set_status(AccountStatus::Failing(sentence.clone()))
            .await;
        if error.is_lasting() {
            self.tell(&error, sentence).await;
            return self.shared.config.auth_retry;
        }
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= UNREACHABLE_TELL_AFTER {
            self.tell(&error, sentence).await;
        }
        retry
    }

    /// Tells the person about a broken account, once per kind (the key dedupes).
    async fn tell(&mut self, error: &ConnectError, sentence: String) {
        if self.told == Some(error.kind()) {
            return;
        }
        self.told = Some(error.kind());
        let key = format!("mail-problem:{}:{}", self.account.id, error.kind());
        self.shared
            .alerts
            .problem(self.account.user, key, sentence)
            .await;
    }

    async fn set_status(&self, status: AccountStatus) {
        if let Err(error) = self.shared.book.set_status(self.account.id, status).await {
            tracing::warn!(account = %self.account.id, %error, "the mail account's status could not be saved");
        }
    }

    /// One connection's life: sign in, check, then wait for news and check
    /// again until something fails. Never returns `Ok`.
    async fn round(&mut self) -> RoundError {
        match self.round_inner().await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    async fn round_inner(&mut self) -> Result<std::convert::Infallible, RoundError> {
        let config = self.shared.config.clone();
        let (mut session, offers_idle) =
            imap::connect(&self.account, config.connect_timeout).await?;
        let idle = offers_idle && self.account.use_idle;
        let mailbox = within(imap::examine(&mut session, &self.folder)).await?;
        self.failures = 0;
        self.failing_since = None;
        self.told = None;
        self.set_status(AccountStatus::Watching { idle }).await;
        tracing::info!(account = %self.account.id, host = %self.account.host, folder = %self.folder, idle, "watching a mail folder");
        self.check_within(&mut session, &mailbox).await?;
        loop {
            if idle {
                session = self.idle(session).await?;
            } else {
                tokio::time::sleep(config.poll).await;
            }
            self.batch_window().await;
            let mailbox = within(imap::examine(&mut session, &self.folder)).await?;
            self.check_within(&mut session, &mailbox).await?;
        }
    }

    /// Waits in IDLE until the server reports a change or it is time to
    /// renew; returns the session, or the error that ended the connection.
    async fn idle(&self, session: Session) -> Result<Session, RoundError> {
        let renew = self.shared.config.idle_renew;
        let mut handle = session.idle();
        within(async { handle.init().await.map_err(imap::protocol) }).await?;
        let outcome = {
            let (wait, stop) = handle.wait_with_timeout(renew);
            // The inner timeout restarts with every keepalive; this one makes
            // sure IDLE is renewed at least every `renew` (RFC 2177).
            let outcome = tokio::time::timeout(renew, wait).await;
            drop(stop);
            outcome
        };
        match outcome {
            // Renewal time, or news: end IDLE and look.
            Err(_) | Ok(Ok(IdleResponse::Timeout | IdleResponse::NewData(_))) => {}
            // Nobody interrupts by hand: the stream ended, the server hung up.
            Ok(Ok(IdleResponse::ManualInterrupt)) => {
                return Err(
                    ConnectError::Protocol("the server closed the connection".into()).into(),
                );
            }
            Ok(Err(error)) => return Err(imap::protocol(error).into()),
        }
        Ok(within(async { handle.done().await.map_err(imap::protocol) }).await?)
    }

    /// After an alert, new mail waits out the batch window so a burst is one
    /// message rather than one per mail.
    async fn batch_window(&self) {
        if let Some(last) = self.last_alert {
            let until = last + self.shared.config.batch;
            tokio::time::sleep_until(until.into()).await;
        }
    }

    async fn check_within(
        &mut self,
        session: &mut Session,
        mailbox: &async_imap::types::Mailbox,
    ) -> Result<(), RoundError> {
        let limit = self.shared.config.check_timeout;
        match tokio::time::timeout(limit, self.check(session, mailbox)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Protocol(format!(
                "checking for new mail took longer than {} s",
                limit.as_secs()
            ))
            .into()),
        }
    }

    /// Looks at what is new since the mark, alerts about what the rules
    /// pick, and moves the mark.
    async fn check(
        &mut self,
        session: &mut Session,
        mailbox: &async_imap::types::Mailbox,
    ) -> Result<(), RoundError> {
        let book = Arc::clone(&self.shared.book);
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        let top = match mailbox.uid_next {
            Some(next) => next.saturating_sub(1),
            None => within(highest_uid(session)).await?,
        };
        let here = FolderMark {
            uid_validity,
            last_uid: top,
        };
        let mark = match book.mark(self.account.id, &self.folder).await? {
            None => {
                // First sight: what is there now is old news.
                tracing::info!(account = %self.account.id, folder = %self.folder, uid_validity, last_uid = top, "first look at a mail folder; existing mail is not alerted");
                return Ok(book.set_mark(self.account.id, &self.folder, here).await?);
            }
            Some(mark) if mark.uid_validity != uid_validity => {
                tracing::info!(account = %self.account.id, folder = %self.folder, old = mark.uid_validity, new = uid_validity, "the folder's UIDVALIDITY changed; starting over from its current top without alerts");
                return Ok(book.set_mark(self.account.id, &self.folder, here).await?);
            }
            Some(mark) => mark,
        };
        if top <= mark.last_uid {
            return Ok(());
        }
        // `n:*` always includes the highest message, even below n.
        let mut new: Vec<u32> = within(imap::uid_search(
            session,
            &format!("UID {}:*", mark.last_uid.saturating_add(1)),
        ))
        .await?
        .into_iter()
        .filter(|&uid| uid > mark.last_uid)
        .collect();
        let highest = new.iter().copied().max().unwrap_or(0).max(top);
        let done = FolderMark {
            uid_validity,
            last_uid: highest,
        };
        if new.len() > MAX_PER_CHECK {
            tracing::warn!(account = %self.account.id, folder = %self.folder, new = new.len(), "many new mails at once; only the newest {MAX_PER_CHECK} are checked against the rules");
            new.drain(..new.len() - MAX_PER_CHECK);
        }
        let rules = RuleSet::new(book.rules(self.account.user).await?);
        if new.is_empty() || rules.is_empty() {
            return Ok(book.set_mark(self.account.id, &self.folder, done).await?);
        }
        let judge = if self.shared.config.judge {
            self.shared.judge.as_deref()
        } else {
            None
        };
        let mut model_calls = MAX_MODEL_CALLS;
        let mut matched = Vec::new();
        let query = format!("(UID BODY.PEEK[]<0.{FETCH_BYTES}>)");
        for chunk in new.chunks(FETCH_CHUNK) {
            let fetched = within(imap::uid_fetch(session, chunk, &query)).await?;
            for message in fetched {
                let mail = summarize(message.uid, &self.folder, &message.bytes);
                if let Some(rule) = rules.decide(&mail, judge, &mut model_calls).await {
                    matched.push(Matched { mail, rule });
                }
            }
        }
        matched.sort_by_key(|m| m.mail.uid);
        if let Some(text) = alert_for(&place(&self.account.label, &self.folder), &matched) {
            let first = matched.first().map_or(0, |m| m.mail.uid);
            let last = matched.last().map_or(0, |m| m.mail.uid);
            let uids = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            let key = format!(
                "mail:{}:{}:{uid_validity}:{uids}",
                self.account.id, self.folder
            );
            tracing::info!(account = %self.account.id, folder = %self.folder, mails = matched.len(), %key, "mail alert");
            self.shared.alerts.alert(self.account.user, key, text).await;
            self.last_alert = Some(Instant::now());
        }
        Ok(book.set_mark(self.account.id, &self.folder, done).await?)
    }
}

/// The highest UID in the selected folder, for servers that send no UIDNEXT.
async fn highest_uid(session: &mut Session) -> Result<u32, ConnectError> {
    Ok(imap::uid_search(session, "ALL")
        .await?
        .last()
        .copied()
        .unwrap_or(0))
}

/// `step` within [`COMMAND_TIMEOUT`]: a server that stops answering
/// counts as a broken connection.
async fn within<T, E: From<ConnectError>>(
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(COMMAND_TIMEOUT, step).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Protocol(format!(
            "the server did not answer within {} s",
            COMMAND_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

//! E-mail for Clara: watching a person's IMAP accounts for mail worth an
//! alert, and tools to ask about their mail.
//!
//! **Watching.** [`MailWatcher`] keeps one task per watched folder of every
//! account in the [`MailBook`] (re-read every `reload_secs`). A task signs
//! in, opens the folder read-only (`EXAMINE`) and waits for news with IDLE
//! when the server offers it and the account allows it, else polls every
//! `poll_secs`. New mail (UIDs above the folder's [`FolderMark`]) is read with
//! `BODY.PEEK` — it stays unread — and run through the person's
//! [`MailRule`]s; what they pick becomes one short alert through [`Alerts`].
//! A broken connection is retried with the project's backoff; a refused
//! password is told to the person once and retried every 15 minutes.
//!
//! **Marks.** On first sight of a folder, and when its UIDVALIDITY changes,
//! the mark is set to the current top and nothing old is alerted. The mark
//! moves after the alert is handed over; alert keys are made of the account,
//! folder, UIDVALIDITY and UIDs, so a restart repeats nothing.
//!
//! **Batching.** A check that finds several matching mails sends one message
//! listing the first five ([`alert::batch_text`]); after an alert, the next
//! check of that folder waits out `batch_secs`, so a burst is one or two
//! messages, not one per mail.
//!
//! **The model's judgement** ([`ModelJudge`]) is asked only for rules with
//! `ask_model`, only after their other conditions hold, with the mail as
//! untrusted data and no tools, and only when `[email] judge = true`.
//!
//! **Tools** ([`MailTools`], server `mail`): `list_unread`, `search`, `read`;
//! read-only, untrusted output, only the calling person's accounts.
//!
//! Settings (`[email]`, or the environment):
//!
//! | key | environment | meaning |
//! |---|---|---|
//! | `enabled` | `EMAIL_MONITORING_ENABLED` | watch accounts and offer the tools (default false) |
//! | `poll_secs` | `EMAIL_POLL_SECS` | seconds between checks without IDLE (default 300) |
//! | `idle_renew_secs` | `CLARA_EMAIL__IDLE_RENEW_SECS` | IDLE renewal, at most 1740 (RFC 2177), default 300 |
//! | `batch_secs` | `CLARA_EMAIL__BATCH_SECS` | how long new mail gathers after an alert (default 15) |
//! | `reload_secs` | `CLARA_EMAIL__RELOAD_SECS` | how often the account list is re-read (default 10) |
//! | `judge` | `EMAIL_JUDGE` | let rules ask the model (default false) |
//!
//! TLS is rustls with the aws-lc-rs provider (no `ring`) and the system's
//! trust store. Passwords are [`clara_core::Secret`]s: never in a log, an
//! error or `Debug`.

pub mod alert;
pub mod book;
mod folder;
pub mod imap;
pub mod judge;
pub mod model;
pub mod parse;
pub mod rules;
pub mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;
mod watcher;

pub use alert::{Matched, alert_for, alert_text, batch_text};
pub use book::{Alerts, MailBook, MailBookError};
pub use imap::ConnectError;
pub use judge::{MailJudge, ModelJudge};
pub use model::{
    AccountId, AccountStatus, DEFAULT_FOLDER, FolderMark, MailAccount, MailRule, MailSummary,
    Security,
};
pub use rules::{RuleMatch, RuleSet, check_rule};
pub use settings::{EmailConfig, EmailSettings};
pub use tools::{MailToolKind, MailTools, SERVER};
pub use watcher::{MailWatcher, Reloader};

use clara_core::component::{Component, EnvKey};

/// The e-mail integration: section `[email]`. The binary builds the
/// [`MailWatcher`] and [`MailTools`] from its [`EmailConfig`] and the
/// store's [`MailBook`].
pub struct EmailIntegration;

impl Component for EmailIntegration {
    const NAME: &'static str = "email";
    const ENV: &'static [EnvKey] = &[
        ("EMAIL_MONITORING_ENABLED", "enabled"),
        ("EMAIL_POLL_SECS", "poll_secs"),
        ("EMAIL_JUDGE", "judge"),
    ];
    type Settings = EmailSettings;
}

/// Sign-in and connection checks for `clara email add`: connects to
/// `account`, opens each folder read-only and signs out. `Err` is the one
/// sentence for the person.
pub async fn test_account(account: &MailAccount, config: &EmailConfig) -> Result<bool, String> {
    let (mut session, idle) = imap::connect(account, config.connect_timeout)
        .await
        .map_err(|e| e.sentence(account))?;
    for folder in account.watched_folders() {
        imap::examine(&mut session, &folder)
            .await
            .map_err(|e| e.sentence(account))?;
    }
    imap::logout(session).await;
    Ok(idle && account.use_idle)
}

//! `clara email …`: the IMAP accounts Clara watches for people, and their
//! rules for what is worth an alert.
//!
//! An account's password is read from standard input (never an argument,
//! which other users of the machine could see in the process list) or from
//! `CLARA_EMAIL_PASSWORD`, tried against the server, and stored sealed with
//! the key in `<data dir>/.credentials/key` (or `CLARA_SECRET_KEY`). A
//! running Clara with `EMAIL_MONITORING_ENABLED` picks accounts and rules up
//! within seconds.

use crate::email::{Conditions, StoreMailBook, rule_of, sealed_account};
use crate::memory_cli::find_user;
use crate::settings::Resolved;
use anyhow::{Context, Result, bail};
use clara_core::Secret;
use clara_email::{AccountId, DEFAULT_FOLDER, MailAccount, Security};
use clara_store::MailRuleRecord;
use std::io::Read;
use std::process::ExitCode;

/// The environment variable a password may come from instead of standard input.
const PASSWORD_ENV: &str = "CLARA_EMAIL_PASSWORD";

/// `clara email`.
#[derive(clap::Args, Debug)]
pub struct EmailArgs {
    #[command(subcommand)]
    command: EmailCommand,
}

#[derive(clap::Subcommand, Debug)]
enum EmailCommand {
    /// Connect an IMAP account for a person. The password is read from
    /// standard input (or CLARA_EMAIL_PASSWORD) and checked by signing in.
    /// The same login on the same server again updates that account.
    Add {
        /// The person: their user id, or platform:platform_user_id (e.g. telegram:123).
        #[arg(long, value_name = "USER")]
        user: String,
        /// The IMAP server.
        #[arg(long)]
        host: String,
        /// Its port (default: 993 with tls, 143 otherwise).
        #[arg(long)]
        port: Option<u16>,
        /// tls (the default), start-tls, or plain (only for a server on this machine).
        #[arg(long, default_value = "tls")]
        security: String,
        /// The login name (often the address).
        #[arg(long)]
        username: String,
        /// How people name the account (default: the login name).
        #[arg(long)]
        label: Option<String>,
        /// A folder to watch (repeat for several; default INBOX).
        #[arg(long = "folder", value_name = "FOLDER")]
        folders: Vec<String>,
        /// Poll every few minutes even when the server offers IDLE.
        #[arg(long)]
        no_idle: bool,
        /// Store it without signing in first.
        #[arg(long)]
        no_check: bool,
    },
    /// The accounts (a person's, or everyone's) and how watching them goes.
    List {
        /// Only this person's.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Stop watching an account and forget it (its password with it).
    Remove {
        /// The account id (or its first characters).
        id: String,
    },
    /// What makes a mail worth an alert.
    #[command(subcommand)]
    Rule(RuleCommand),
}

#[derive(clap::Subcommand, Debug)]
enum RuleCommand {
    /// Add a rule for a person: every condition given must hold.
    Add {
        /// The person.
        #[arg(long, value_name = "USER")]
        user: String,
        /// Its name, shown in alerts.
        #[arg(long)]
        name: String,
        /// The sender: a glob over "Name <address>" such as *@bank.example.
        #[arg(long)]
        from: Option<String>,
        /// A regular expression searched in the subject (case-insensitive).
        #[arg(long)]
        subject: Option<String>,
        /// A regular expression searched in the body (case-insensitive).
        #[arg(long)]
        body: Option<String>,
        /// Only mails with attachments.
        #[arg(long, conflicts_with = "no_attachment")]
        attachment: bool,
        /// Only mails without attachments.
        #[arg(long)]
        no_attachment: bool,
        /// Let the model judge too, with the person's wish in their words
        /// (needs `[email] judge = true`).
        #[arg(long, value_name = "WISH")]
        ask_model: Option<String>,
    },
    /// The rules (a person's, or everyone's).
    List {
        /// Only this person's.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Remove a rule.
    Remove {
        /// The rule id (or its first characters).
        id: String,
    },
}

/// Runs `clara email …`.
pub async fn run(resolved: &Resolved, args: EmailArgs) -> Result<ExitCode> {
    let store = resolved.open_store().await?;
    let result = match args.command {
        EmailCommand::Add {
            user,
            host,
            port,
            security,
            username,
            label,
            folders,
            no_idle,
            no_check,
        } => {
            let user = find_user(&store, &user).await?;
            let security: Security = security.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            if security == Security::Plain && !is_loopback(&host) {
                bail!(
                    "--security plain sends the password unencrypted; it is only allowed for a server on this machine (127.0.0.1, ::1, localhost): use tls or start-tls for {host}"
                );
            }
            let password = read_password()?;
            // The same mailbox of the same person again (a new password, as the
            // watcher's "Update the account with `clara email add …`" asks) updates
            // that account: its id, and so its folder marks, stay, so no second
            // watch of the mailbox alerts every mail twice and the old entry does
            // not go on failing.
            let existing = store
                .mail_accounts(Some(user))
                .await?
                .into_iter()
                .map(|r| r.account)
                .find(|a| {
                    a.host.eq_ignore_ascii_case(&host) && a.username.eq_ignore_ascii_case(&username)
                });
            let account = MailAccount {
                id: existing
                    .as_ref()
                    .map_or_else(AccountId::new, |a| AccountId(a.id)),
                user,
                label: label
                    .or_else(|| existing.as_ref().map(|a| a.label.clone()))
                    .unwrap_or_else(|| username.clone()),
                port: port.unwrap_or_else(|| security.default_port()),
                host,
                security,
                username,
                password,
                folders: match (folders.is_empty(), &existing) {
                    (false, _) => folders,
                    (true, Some(a)) => a.folders.clone(),
                    (true, None) => vec![DEFAULT_FOLDER.to_owned()],
                },
                use_idle: !no_idle,
            };
            let config = crate::email::config(resolved)?;
            if !no_check {
                let idle = clara_email::test_account(&account, &config)
                    .await
                    .map_err(|sentence| anyhow::anyhow!(sentence))?;
                println!(
                    "Signed in to {} on {}: {}.",
                    account.label,
                    account.host,
                    if idle {
                        "new mail arrives by IDLE"
                    } else {
                        "new mail is polled for"
                    }
                );
            }
            let book = StoreMailBook::new(store.clone(), crate::email::vault(resolved)?);
            store
                .put_mail_account(&sealed_account(&book, &account)?)
                .await?;
            println!(
                "{} mail account {} ({}).",
                if existing.is_some() {
                    "Updated"
                } else {
                    "Added"
                },
                short(account.id.0),
                account.label
            );
            if !config.enabled {
                println!(
                    "E-mail monitoring is off: set EMAIL_MONITORING_ENABLED=true (or [email] enabled = true) for Clara to watch it."
                );
            }
            Ok(())
        }
        EmailCommand::List { user } => {
            let user = match user {
                Some(u) => Some(find_user(&store, &u).await?),
                None => None,
            };
            let accounts = store.mail_accounts(user).await?;
            if accounts.is_empty() {
                println!("No mail accounts.");
            }
            for record in accounts {
                let a = &record.account;
                println!(
                    "{}  {}  {}:{} ({})  folders: {}  {}",
                    short(a.id),
                    a.label,
                    a.host,
                    a.port,
                    a.security,
                    a.folders.join(", "),
                    record.status.as_deref().unwrap_or("not watched yet")
                );
            }
            Ok(())
        }
        EmailCommand::Remove { id } => {
            let account = unique(
                store
                    .mail_accounts(None)
                    .await?
                    .into_iter()
                    .map(|r| (r.account.id, r.account.label)),
                &id,
                "mail account",
            )?;
            store.remove_mail_account(account.0, None).await?;
            println!("Removed mail account {} ({}).", short(account.0), account.1);
            Ok(())
        }
        EmailCommand::Rule(RuleCommand::Add {
            user,
            name,
            from,
            subject,
            body,
            attachment,
            no_attachment,
            ask_model,
        }) => {
            let user = find_user(&store, &user).await?;
            let conditions = Conditions {
                from,
                subject,
                body,
                has_attachment: match (attachment, no_attachment) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                ask_model,
            };
            let record = MailRuleRecord {
                id: uuid::Uuid::new_v4(),
                user,
                name,
                conditions: serde_json::to_value(&conditions)?,
                created_at_ms: clara_runtime::clock::now_ms(),
            };
            // The watcher's own check: a bad pattern is refused now, not at the first mail.
            let rule = rule_of(record.clone()).context("the rule cannot be read")?;
            clara_email::check_rule(&rule).map_err(|e| anyhow::anyhow!("{e}"))?;
            store.add_mail_rule(&record).await?;
            println!("Added rule {} ({}).", short(record.id), record.name);
            Ok(())
        }
        EmailCommand::Rule(RuleCommand::List { user }) => {
            let user = match user {
                Some(u) => Some(find_user(&store, &u).await?),
                None => None,
            };
            let rules = store.mail_rules(user).await?;
            if rules.is_empty() {
                println!("No mail rules: with none, no mail is worth an alert.");
            }
            for rule in rules {
                println!("{}  {}  {}", short(rule.id), rule.name, rule.conditions);
            }
            Ok(())
        }
        EmailCommand::Rule(RuleCommand::Remove { id }) => {
            let rule = unique(
                store
                    .mail_rules(None)
                    .await?
                    .into_iter()
                    .map(|r| (r.id, r.name)),
                &id,
                "mail rule",
            )?;
            store.remove_mail_rule(rule.0, None).await?;
            println!("Removed rule {} ({}).", short(rule.0), rule.1);
            Ok(())
        }
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// The password: `CLARA_EMAIL_PASSWORD`, else standard input (one line).
fn read_password() -> Result<Secret> {
    if let Ok(password) = std::env::var(PASSWORD_ENV)
        && !password.is_empty()
    {
        return Ok(Secret::new(password));
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password: pipe it on standard input or set {PASSWORD_ENV}");
    }
    Ok(Secret::new(password))
}

/// Whether `host` is this machine, where plain IMAP crosses no network.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The first eight hex digits of an id.
fn short(id: uuid::Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// The one item whose id starts with `prefix`.
fn unique(
    items: impl Iterator<Item = (uuid::Uuid, String)>,
    prefix: &str,
    what: &str,
) -> Result<(uuid::Uuid, String)> {
    let wanted: String = prefix.trim().replace('-', "").to_ascii_lowercase();
    let mut found: Vec<_> = items
        .filter(|(id, _)| !wanted.is_empty() && id.simple().to_string().starts_with(&wanted))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("there is no {what} {prefix:?}"),
        _ => bail!("{prefix:?} names several {what}s; give more of the id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_imap_only_on_this_machine() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("LocalHost"));
        assert!(!is_loopback("imap.example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}

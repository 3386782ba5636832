//! The mail tools: the person asks about their mail in conversation.
//!
//! | tool | what it does |
//! |---|---|
//! | `mail__list_unread` | the newest unread mails of a folder (default INBOX) of every account, or one |
//! | `mail__search` | mails matching words and `from:`/`to:`/`subject:`/`since:`/`before:`/`is:unread` |
//! | `mail__read` | one mail by UID: headers, attachments' names, the text |
//!
//! All are [`Effect::Read`] with `untrusted_output` (mail is written by
//! strangers; the registry hands results to the model as data). They reach
//! only the accounts of the person the reply is for, open folders with
//! `EXAMINE` and read with `BODY.PEEK`, so no mail becomes `\Seen`.

use crate::book::MailBook;
use crate::imap::{self, ConnectError, Session};
use crate::model::{DEFAULT_FOLDER, MailAccount, MailSummary};
use crate::parse::{FETCH_BYTES, cap_chars, one_line, summarize};
use crate::settings::EmailConfig;
use async_trait::async_trait;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolProvider, ToolTraits};
use serde_json::{Value, json};
use std::sync::Arc;

/// The server the mail tools are offered under (`mail__read`).
pub const SERVER: &str = "mail";
/// Mails listed when no limit is given.
const DEFAULT_LIMIT: usize = 10;
/// The most mails one call lists.
const MAX_LIMIT: usize = 50;
/// The most characters of a body `read` returns.
const READ_CHARS: usize = 12_000;

/// One of the mail tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailToolKind {
    /// `list_unread`.
    ListUnread,
    /// `search`.
    Search,
    /// `read`.
    Read,
}

impl MailToolKind {
    /// Every tool, in the order offered.
    pub const ALL: [MailToolKind; 3] = [Self::ListUnread, Self::Search, Self::Read];

    /// The name within the `mail` server.
    pub fn name(self) -> &'static str {
        match self {
            Self::ListUnread => "list_unread",
            Self::Search => "search",
            Self::Read => "read",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::ListUnread => {
                "Lists the person's newest unread e-mails (sender, subject, date, uid) in a folder (default INBOX) of all their connected accounts, or of one. Does not mark anything read."
            }
            Self::Search => {
                "Searches the person's e-mail in a folder (default INBOX). The query is words to find in the mail, plus optional filters: from:alice, to:bob, subject:invoice, since:2026-01-31, before:2026-02-28, is:unread, is:read; \"quoted phrases\" stay together. Lists the newest matches (sender, subject, date, uid). Does not mark anything read."
            }
            Self::Read => {
                "Reads one e-mail by its uid (from list_unread or search): sender, recipients, subject, date, attachment names and the text. Does not mark it read."
            }
        }
    }

    fn parameters(self) -> Value {
        let account = json!({"type": "string", "description": "Which account (its address or label); default: all of them (read: the only one)."});
        let folder = json!({"type": "string", "description": "The folder, default INBOX."});
        let limit = json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": format!("How many to list (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).")});
        let (properties, required): (Value, &[&str]) = match self {
            Self::ListUnread => (
                json!({"account": account, "folder": folder, "limit": limit}),
                &[],
            ),
            Self::Search => (
                json!({
                    "query": {"type": "string", "description": "Words and filters, e.g. `invoice from:bank.example since:2026-01-01`."},
                    "account": account, "folder": folder, "limit": limit,
                }),
                &["query"],
            ),
            Self::Read => (
                json!({
                    "uid": {"type": "integer", "minimum": 1, "description": "The mail's uid."},
                    "account": account, "folder": folder,
                }),
                &["uid"],
            ),
        };
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    }
}

struct Inner {
    book: Arc<dyn MailBook>,
    config: EmailConfig,
}

/// The mail tools as a provider, server `mail`.
pub struct MailTools {
    inner: Arc<Inner>,
}

impl MailTools {
    /// The tools over `book`'s accounts.
    pub fn new(book: Arc<dyn MailBook>, config: EmailConfig) -> Self {
        Self {
            inner: Arc::new(Inner { book, config }),
        }
    }

    /// Every mail tool.
    pub fn all(&self) -> Vec<Arc<dyn Tool>> {
        MailToolKind::ALL
            .into_iter()
            .map(|kind| {
                Arc::new(MailTool {
                    kind,
                    inner: Arc::clone(&self.inner),
                }) as Arc<dyn Tool>
            })
            .collect()
    }
}

#[async_trait]
impl ToolProvider for MailTools {
    fn server(&self) -> &str {
        SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        Ok(self.all())
    }
}

/// One mail tool.
pub struct MailTool {
    kind: MailToolKind,
    inner: Arc<Inner>,
}

#[async_trait]
impl Tool for MailTool {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn description(&self) -> &str {
        self.kind.description()
    }

    fn parameters(&self) -> Value {
        self.kind.parameters()
    }

    fn traits(&self) -> ToolTraits {
        ToolTraits {
            effect: Effect::Read,
            untrusted_output: true,
            definition_sha256: None,
        }
    }

    async fn call(&self, arguments: Value, context: &ToolContext) -> Result<String, ToolError> {
        let args = Args::read(&arguments, self.kind)?;
        let Some(user) = context.user else {
            return Err(ToolError::Failed(
                "The mail tools need to know whose mail to read, and this conversation has no known person.".into(),
            ));
        };
        let accounts =
            self.inner.book.accounts_of(user).await.map_err(|e| {
                ToolError::Failed(format!("The mail accounts could not be read: {e}"))
            })?;
        if accounts.is_empty() {
            return Err(ToolError::Failed(
                "No mail account is connected for this person; add one with `clara email add …`."
                    .into(),
            ));
        }
        let chosen = choose(&accounts, args.account.as_deref())?;
        match self.kind {
            MailToolKind::ListUnread => self.list(&chosen, &args, "UNSEEN", "unread").await,
            MailToolKind::Search => {
                let query = search_keys(args.query.as_deref().unwrap_or_default())
                    .map_err(ToolError::InvalidArguments)?;
                self.list(&chosen, &args, &query, "found").await
            }
            MailToolKind::Read => {
                let [account] = chosen.as_slice() else {
                    return Err(ToolError::InvalidArguments(format!(
                        "several accounts are connected ({}); say which with `account`",
                        labels(&accounts)
                    )));
                };
                self.read(account, &args).await
            }
        }
    }
}

/// The arguments, checked.
#[derive(Debug, Default)]
struct Args {
    account: Option<String>,
    folder: String,
    limit: usize,
    query: Option<String>,
    uid: u32,
}

impl Args {
    fn read(value: &Value, kind: MailToolKind) -> Result<Self, ToolError> {
        let bad = |m: &str| ToolError::InvalidArguments(m.to_owned());
        let text = |key: &str| -> Result<Option<String>, ToolError> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(bad(&format!("`{key}` must be a string"))),
            }
        };
        let number = |key: &str| -> Result<Option<u64>, ToolError> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(Some)
                    .ok_or_else(|| bad(&format!("`{key}` must be a positive whole number"))),
            }
        };
        let limit = number("limit")?.unwrap_or(DEFAULT_LIMIT as u64);
        if limit == 0 {
            return Err(bad("`limit` must be at least 1"));
        }
        let mut args = Args {
            account: text("account")?,
            folder: text("folder")?.unwrap_or_else(|| DEFAULT_FOLDER.to_owned()),
            limit: (limit as usize).min(MAX_LIMIT),
            query: text("query")?,
            uid: 0,
        };
        match kind {
            MailToolKind::Search if args.query.is_none() => {
                return Err(bad("`query` is required: words or filters to search for"));
            }
            MailToolKind::Read => {
                let uid = number("uid")?.ok_or_else(|| bad("`uid` is required"))?;
                args.uid = u32::try_from(uid)
                    .ok()
                    .filter(|&u| u > 0)
                    .ok_or_else(|| bad("`uid` must be a mail's uid from list_unread or search"))?;
            }
            _ => {}
        }
        Ok(args)
    }
}

fn labels(accounts: &[MailAccount]) -> String {
    accounts
        .iter()
        .map(|a| a.label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The accounts `wanted` names (label, user name or id), or all of them.
fn choose(accounts: &[MailAccount], wanted: Option<&str>) -> Result<Vec<MailAccount>, ToolError> {
    let Some(wanted) = wanted else {
        return Ok(accounts.to_vec());
    };
    let hit: Vec<MailAccount> = accounts
        .iter()
        .filter(|a| {
            a.label.eq_ignore_ascii_case(wanted)
                || a.username.eq_ignore_ascii_case(wanted)
                || a.id.to_string() == wanted
        })
        .cloned()
        .collect();
    if hit.is_empty() {
        return Err(ToolError::InvalidArguments(format!(
            "no connected account is called {wanted:?}; the accounts are: {}",
            labels(accounts)
        )));
    }
    Ok(hit)
}

impl MailTool {
    async fn open(&self, account: &MailAccount, folder: &str) -> Result<Session, ConnectError> {
        let (mut session, _) = imap::connect(account, self.inner.config.connect_timeout).await?;
        imap::examine(&mut session, folder).await?;
        Ok(session)
    }

    /// The newest `limit` mails `query` finds in each account's folder.
    async fn list(
        &self,
        accounts: &[MailAccount],
        args: &Args,
        query: &str,
        what: &str,
    ) -> Result<String, ToolError> {
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for account in accounts {
            match self.list_one(account, args, query).await {
                Ok((total, mails)) => {
                    let mut part = format!("{} — {}: {total} {what}", account.label, args.folder);
                    if total > mails.len() {
                        part.push_str(&format!(", the newest {} shown", mails.len()));
                    }
                    for mail in &mails {
                        part.push('\n');
                        part.push_str(&line(mail));
                    }
                    out.push(part);
                }
                Err(error) => {
                    failures.push(error.sentence(account));
                }
            }
        }
        if out.is_empty() {
            return Err(ToolError::Failed(failures.join("\n")));
        }
        out.extend(failures);
        Ok(out.join("\n\n"))
    }

    async fn list_one(
        &self,
        account: &MailAccount,
        args: &Args,
        query: &str,
    ) -> Result<(usize, Vec<(MailSummary, bool)>), ConnectError> {
        let mut session = self.open(account, &args.folder).await?;
        let uids = imap::uid_search(&mut session, query).await?;
        let total = uids.len();
        let newest: Vec<u32> = uids.iter().rev().take(args.limit).copied().collect();
        let fetched =
            imap::uid_fetch(&mut session, &newest, "(UID FLAGS BODY.PEEK[HEADER])").await?;
        imap::logout(session).await;
        let mut mails: Vec<(MailSummary, bool)> = fetched
            .into_iter()
            .map(|f| (summarize(f.uid, &args.folder, &f.bytes), f.seen))
            .collect();
        mails.sort_by_key(|m| std::cmp::Reverse(m.0.uid));
        Ok((total, mails))
    }

    async fn read(&self, account: &MailAccount, args: &Args) -> Result<String, ToolError> {
        let failed = |e: ConnectError| ToolError::Failed(e.sentence(account));
        let mut session = self.open(account, &args.folder).await.map_err(failed)?;
        let query = format!("(UID FLAGS RFC822.SIZE BODY.PEEK[]<0.{FETCH_BYTES}>)");
        let fetched = imap::uid_fetch(&mut session, &[args.uid], &query)
            .await
            .map_err(failed)?;
        imap::logout(session).await;
        let Some(message) = fetched.into_iter().find(|f| f.uid == args.uid) else {
            return Err(ToolError::Failed(format!(
                "There is no mail with uid {} in {} of {}.",
                args.uid, args.folder, account.label
            )));
        };
        let mail = summarize(message.uid, &args.folder, &message.bytes);
        let recipients = recipients(&message.bytes);
        let mut text = format!("From: {}\n", mail.from);
        if !recipients.is_empty() {
            text.push_str(&format!("To: {recipients}\n"));
        }
        text.push_str(&format!("Subject: {}\n", mail.subject));
        if let Some(date) = &mail.date {
            text.push_str(&format!("Date: {date}\n"));
        }
        text.push_str(&format!(
            "Account: {}, folder {}, uid {}, {}\n",
            account.label,
            args.folder,
            mail.uid,
            if message.seen { "read" } else { "unread" }
        ));
        if mail.has_attachment() {
            text.push_str(&format!("Attachments: {}\n", mail.attachments.join(", ")));
        }
        if message.size.is_some_and(|s| s > FETCH_BYTES) {
            text.push_str("(The mail is large; only its beginning was read.)\n");
        }
        text.push('\n');
        text.push_str(&cap_chars(&mail.body, READ_CHARS));
        Ok(text)
    }
}

/// `To` and `Cc`, as `Name <addr>` joined.
fn recipients(raw: &[u8]) -> String {
    let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return String::new();
    };
    let mut all = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        for addr in list.iter() {
            let address = addr.address().unwrap_or_default();
            all.push(match addr.name() {
                Some(name) if !name.trim().is_empty() => format!("{} <{address}>", name.trim()),
                _ => address.to_owned(),
            });
        }
    }
    cap_chars(&all.join(", "), 500)
}

/// One listed mail: `uid 42 · 2026-12-07 10:00 · Alice <a@x> · Subject (read)`.
fn line(mail: &(MailSummary, bool)) -> String {
    let (mail, seen) = mail;
    let date = mail
        .date
        .as_deref()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "no date".to_owned());
    let subject = if mail.subject.is_empty() {
        "(no subject)".to_owned()
    } else {
        cap_chars(&one_line(&mail.subject), 120)
    };
    format!(
        "- uid {} · {date} · {} · {subject}{}",
        mail.uid,
        cap_chars(&mail.from, 80),
        if *seen { " (read)" } else { "" }
    )
}

/// A search query as IMAP `SEARCH` keys: words → `TEXT`, and the filters
/// `from:`, `to:`, `subject:`, `since:`/`before:` (YYYY-MM-DD), `is:unread`/`is:read`.
/// Every value is a quoted string, so nothing the model writes becomes
/// another IMAP command.
pub fn search_keys(query: &str) -> Result<String, String> {
    let mut keys = Vec::new();
    for token in tokens(query) {
        let (key, value) = match token.split_once(':') {
            Some((k, v))
                if !v.is_empty()
                    && matches!(
                        k.to_ascii_lowercase().as_str(),
                        "from" | "to" | "subject" | "since" | "before" | "is"
                    ) =>
            {
                (k.to_ascii_lowercase(), v.to_owned())
            }
            _ => ("text".to_owned(), token.clone()),
        };
        let key = match key.as_str() {
            "from" => format!("FROM {}", imap::quote(&value)),
            "to" => format!("TO {}", imap::quote(&value)),
            "subject" => format!("SUBJECT {}", imap::quote(&value)),
            "since" | "before" => {
                let date = chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                    .map_err(|_| format!("`{key}:` needs a date as YYYY-MM-DD, got {value:?}"))?;
                format!("{} {}", key.to_ascii_uppercase(), date.format("%-d-%b-%Y"))
            }
            "is" => match value.to_ascii_lowercase().as_str() {
                "unread" | "unseen" => "UNSEEN".to_owned(),
                "read" | "seen" => "SEEN".to_owned(),
                _ => return Err(format!("`is:` takes unread or read, got {value:?}")),
            },
            _ => format!("TEXT {}", imap::quote(&value)),
        };
        keys.push(key);
    }
    if keys.is_empty() {
        return Err("the query is empty: give words or filters to search for".into());
    }
    let charset = if query.is_ascii() {
        ""
    } else {
        "CHARSET UTF-8 "
    };
    Ok(format!("{charset}{}", keys.join(" ")))
}

/// Whitespace-separated tokens; `"quoted phrases"` (also after `from:`) stay one.
fn tokens(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => quoted = !quoted,
            c if (c.is_whitespace() || c.is_control()) && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            // Inside quotes a line break is a space: it must never end the command.
            c if c.is_whitespace() || c.is_control() => current.push(' '),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn queries_become_quoted_search_keys() {
        assert_eq!(search_keys("invoice").unwrap(), "TEXT \"invoice\"");
        assert_eq!(
            search_keys(
                "from:bank.example \"late fee\" subject:Invoice since:2026-01-05 is:unread"
            )
            .unwrap(),
            "FROM \"bank.example\" TEXT \"late fee\" SUBJECT \"Invoice\" SINCE 5-Jan-2026 UNSEEN"
        );
        assert_eq!(
            search_keys("from:\"Alice Example\"").unwrap(),
            "FROM \"Alice Example\""
        );
        assert_eq!(
            search_keys("Grüße").unwrap(),
            "CHARSET UTF-8 TEXT \"Grüße\""
        );
        // Nothing the model writes escapes its quotes or ends the command.
        assert_eq!(
            search_keys("x\\\" ALL\r\nA1 LOGOUT").unwrap(),
            "TEXT \"x\\\\ ALL  A1 LOGOUT\""
        );
        assert!(search_keys("  ").is_err());
        assert!(
            search_keys("since:yesterday")
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        assert!(search_keys("is:flagged").is_err());
        // A colon that is no filter is just a word.
        assert_eq!(search_keys("re:hello").unwrap(), "TEXT \"re:hello\"");
    }

    #[test]
    fn arguments_are_checked() {
        let a = Args::read(&json!({}), MailToolKind::ListUnread).unwrap();
        assert_eq!((a.folder.as_str(), a.limit), ("INBOX", DEFAULT_LIMIT));
        let a = Args::read(
            &json!({"limit": 500, "folder": "Work"}),
            MailToolKind::ListUnread,
        )
        .unwrap();
        assert_eq!((a.folder.as_str(), a.limit), ("Work", MAX_LIMIT));
        assert!(Args::read(&json!({}), MailToolKind::Search).is_err());
        assert!(Args::read(&json!({"uid": 0}), MailToolKind::Read).is_err());
        assert_eq!(
            Args::read(&json!({"uid": "7"}), MailToolKind::Read)
                .unwrap()
                .uid,
            7
        );
        assert!(Args::read(&json!({"limit": -1}), MailToolKind::ListUnread).is_err());
    }
}

//! What the watcher and the tools work with: accounts, marks, rules, mails.

use clara_core::{Secret, UserId};
use std::fmt;

/// An account's id (the store's uuid).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(pub uuid::Uuid);

impl AccountId {
    /// A fresh id (version 7, sorting by creation).
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for AccountId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// How the connection to the IMAP server is protected.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (port 993, "IMAPS"). The default.
    #[default]
    Tls,
    /// A plain connection upgraded with `STARTTLS` before signing in (port 143).
    /// A server that does not offer STARTTLS is refused rather than spoken to in
    /// the clear.
    StartTls,
    /// No encryption at all: the password crosses the network readable. Only
    /// sensible for a server on the same machine (`127.0.0.1`), such as a local
    /// Dovecot or a bridge (Proton Mail Bridge) that listens on loopback.
    Plain,
}

impl Security {
    /// The usual port: 993 for TLS, 143 otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 993,
            Self::StartTls | Self::Plain => 143,
        }
    }

    /// The word used in settings and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::StartTls => "start_tls",
            Self::Plain => "plain",
        }
    }
}

impl std::str::FromStr for Security {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "tls" | "ssl" | "imaps" => Ok(Self::Tls),
            "start_tls" | "starttls" => Ok(Self::StartTls),
            "plain" | "none" => Ok(Self::Plain),
            other => Err(format!(
                "the connection security must be tls, start_tls or plain, got {other:?}"
            )),
        }
    }
}

/// The folder watched when an account names none.
pub const DEFAULT_FOLDER: &str = "INBOX";

/// One IMAP account a person connected.
#[derive(Clone, Debug)]
pub struct MailAccount {
    /// Its id.
    pub id: AccountId,
    /// Whose it is: alerts go to this person, and only they reach it with the tools.
    pub user: UserId,
    /// What the person calls it, e.g. the address (`you@example.test`).
    pub label: String,
    /// The IMAP server's host name.
    pub host: String,
    /// The IMAP server's port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// The user name to sign in with.
    pub username: String,
    /// The password (or app password); never logged.
    pub password: Secret,
    /// The folders to watch; `["INBOX"]` when empty.
    pub folders: Vec<String>,
    /// Whether to use IDLE (push) when the server offers it; `false` always polls.
    pub use_idle: bool,
}

impl MailAccount {
    /// The folders to watch: the configured ones, or `INBOX`.
    pub fn watched_folders(&self) -> Vec<String> {
        let mut folders: Vec<String> = self
            .folders
            .iter()
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        folders.dedup();
        if folders.is_empty() {
            folders.push(DEFAULT_FOLDER.to_owned());
        }
        folders
    }

    /// Whether the settings that decide the connection differ from `other`'s
    /// (a watcher restarts the account's tasks when they do).
    pub fn connection_differs(&self, other: &MailAccount) -> bool {
        self.host != other.host
            || self.port != other.port
            || self.security != other.security
            || self.username != other.username
            || self.password != other.password
            || self.use_idle != other.use_idle
            || self.user != other.user
            || self.label != other.label
    }
}

/// Where watching a folder stopped: the folder's UIDVALIDITY and the highest
/// UID already looked at. A changed UIDVALIDITY means the UIDs were renumbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FolderMark {
    /// The folder's UIDVALIDITY when the mark was taken.
    pub uid_validity: u32,
    /// The highest UID already looked at.
    pub last_uid: u32,
}

/// What the watcher reports about an account, for the person and `clara email list`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AccountStatus {
    /// Signed in and watching.
    Watching {
        /// Whether by IDLE (push); `false`: polling.
        idle: bool,
    },
    /// Not watching: one sentence saying why (bad credentials, unreachable).
    Failing(String),
}

/// A rule saying which mails are worth an alert. Every condition given must
/// hold; a rule with no condition matches every mail. `ask_model` is asked
/// only when the other conditions hold, and only when a judge is configured
/// (without one, a rule with `ask_model` never matches).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailRule {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose rule it is: it applies to all of this person's accounts.
    pub user: UserId,
    /// Its name, shown in alerts ("bank").
    pub name: String,
    /// A case-insensitive glob over the sender as `Name <address>`: `*` is
    /// any run of characters, `?` one. `*@bank.example` matches the address;
    /// a pattern without wildcards matches when it occurs anywhere
    /// (`alice@example.test`, or a name).
    pub from: Option<String>,
    /// A case-insensitive regular expression searched in the subject.
    pub subject: Option<String>,
    /// A case-insensitive regular expression searched in the text of the body.
    pub body: Option<String>,
    /// Whether the mail must (`true`) or must not (`false`) carry attachments.
    pub has_attachment: Option<bool>,
    /// The person's wish in their words ("anything my landlord writes about the
    /// flat"), for the model's judgement.
    pub ask_model: Option<String>,
}

/// One mail as rules, the judge and alerts see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailSummary {
    /// Its UID in its folder.
    pub uid: u32,
    /// The folder it is in.
    pub folder: String,
    /// The sender as `Name <address>` (or the address alone).
    pub from: String,
    /// The sender's address alone, lower-case.
    pub from_address: String,
    /// The subject ("" when none).
    pub subject: String,
    /// The `Date:` header, RFC 3339, when the mail has a readable one.
    pub date: Option<String>,
    /// The text of the body (HTML turned into text), capped.
    pub body: String,
    /// The attachments' file names ("" for unnamed ones).
    pub attachments: Vec<String>,
}

impl MailSummary {
    /// Whether the mail carries attachments.
    pub fn has_attachment(&self) -> bool {
        !self.attachments.is_empty()
    }
}

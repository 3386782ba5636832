//! Connecting and signing in to an IMAP server, and the few commands the
//! watcher and the tools share.
//!
//! TLS is rustls with the aws-lc-rs provider the rest of Clara uses (reqwest's
//! `rustls`), set per connection so no process-wide provider is needed, and
//! the system's trust store through rustls-platform-verifier, as reqwest
//! verifies. Every failure becomes a [`ConnectError`], which says in one
//! sentence what the person can do; none carries the password.

use crate::model::{MailAccount, Security};
use async_imap::error::Error as ImapError;
use futures::TryStreamExt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A signed-in IMAP session over a plain or TLS stream.
pub type Session = async_imap::Session<MailStream>;

/// The byte stream under a session: TCP, or TLS over TCP.
#[derive(Debug)]
pub enum MailStream {
    /// Unencrypted (only [`Security::Plain`]).
    Plain(TcpStream),
    /// TLS, from the start or after STARTTLS.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why an account could not be reached or signed in to. The texts name the
/// server, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the user name or password.
    #[error("the server refused the user name or password")]
    Auth,
    /// The server refuses to take a password over an unencrypted connection.
    #[error("the server does not accept a password over an unencrypted connection")]
    PlaintextRefused,
    /// The host could not be found or reached, or did not answer in time.
    #[error("the server could not be reached ({0})")]
    Unreachable(String),
    /// The TLS handshake failed (certificate, protocol).
    #[error("the secure connection failed ({0})")]
    Tls(String),
    /// `start_tls` was asked for and the server does not offer STARTTLS.
    #[error("the server does not offer STARTTLS")]
    NoStartTls,
    /// The folder does not exist (or cannot be opened).
    #[error("the folder {0:?} could not be opened ({1})")]
    Folder(String, String),
    /// The connection broke or the server said something unexpected.
    #[error("the connection failed ({0})")]
    Protocol(String),
}

impl ConnectError {
    /// A short, stable word for the kind of failure (for dedupe keys).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::PlaintextRefused => "plaintext",
            Self::Unreachable(_) => "unreachable",
            Self::Tls(_) => "tls",
            Self::NoStartTls => "starttls",
            Self::Folder(..) => "folder",
            Self::Protocol(_) => "protocol",
        }
    }

    /// Whether retrying soon could help: a refused password or a missing
    /// folder stays wrong until the person changes something.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            Self::Auth
                | Self::PlaintextRefused
                | Self::NoStartTls
                | Self::Folder(..)
                | Self::Tls(_)
        )
    }

    /// One sentence for the person about `account`.
    pub fn sentence(&self, account: &MailAccount) -> String {
        let who = format!(
            "Clara could not sign in to {} on {}",
            account.label, account.host
        );
        let fix = "Update the account with `clara email add …`.";
        match self {
            Self::Auth => format!("{who}: the server refused the user name or password. {fix}"),
            Self::PlaintextRefused => format!(
                "{who}: the server does not accept a password over an unencrypted connection; use tls or start_tls. {fix}"
            ),
            Self::Unreachable(why) => format!(
                "Clara cannot reach {} for {} ({why}); it keeps trying.",
                account.host, account.label
            ),
            Self::Tls(why) => format!(
                "{who}: the secure connection to port {} failed ({why}). Check the port and security setting. {fix}",
                account.port
            ),
            Self::NoStartTls => format!(
                "{who}: the server does not offer STARTTLS on port {}; use tls (usually port 993). {fix}",
                account.port
            ),
            Self::Folder(folder, why) => format!(
                "Clara cannot open the folder “{folder}” of {} ({why}). Check the folder names. {fix}",
                account.label
            ),
            Self::Protocol(why) => format!(
                "Clara lost the connection to {} for {} ({why}); it keeps trying.",
                account.host, account.label
            ),
        }
    }
}

/// An async-imap error from a command on a signed-in session.
pub(crate) fn protocol(error: ImapError) -> ConnectError {
    match error {
        ImapError::Io(e) => ConnectError::Protocol(e.to_string()),
        ImapError::ConnectionLost => ConnectError::Protocol("the server closed it".into()),
        ImapError::No(why) | ImapError::Bad(why) => ConnectError::Protocol(why),
        other => ConnectError::Protocol(other.to_string()),
    }
}

/// The client TLS configuration: aws-lc-rs, the system's roots.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_platform_verifier())
                .map(|b| Arc::new(b.with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ConnectError::Tls)
}

async fn tls_wrap(tcp: TcpStream, host: &str) -> Result<MailStream, ConnectError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| ConnectError::Tls(format!("{host:?} is not a valid host name")))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config()?);
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    Ok(MailStream::Tls(Box::new(tls)))
}

/// Connects to `account`'s server and signs in, all within `limit`.
/// Returns the session and whether the server offers IDLE.
pub async fn connect(
    account: &MailAccount,
    limit: Duration,
) -> Result<(Session, bool), ConnectError> {
    tokio::time::timeout(limit, connect_inner(account))
        .await
        .map_err(|_| ConnectError::Unreachable(format!("no answer within {} s", limit.as_secs())))?
}

async fn connect_inner(account: &MailAccount) -> Result<(Session, bool), ConnectError> {
    let tcp = TcpStream::connect((account.host.as_str(), account.port))
        .await
        .map_err(|e| ConnectError::Unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let stream = match account.security {
        Security::Tls => tls_wrap(tcp, &account.host).await?,
        Security::Plain | Security::StartTls => MailStream::Plain(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    let greeting = client
        .read_response()
        .await
        .map_err(|e| ConnectError::Protocol(e.to_string()))?
        .ok_or_else(|| ConnectError::Protocol("the server closed the connection at once".into()))?;
    if let async_imap::imap_proto::Response::Data {
        status: async_imap::imap_proto::Status::Bye,
        ..
    } = greeting.parsed()
    {
        return Err(ConnectError::Unreachable(
            "the server said BYE at once".into(),
        ));
    }
    if account.security == Security::StartTls {
        client
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .map_err(|e| match e {
                ImapError::No(_) | ImapError::Bad(_) => ConnectError::NoStartTls,
                other => protocol(other),
            })?;
        let MailStream::Plain(tcp) = client.into_inner() else {
            return Err(ConnectError::Protocol("STARTTLS on a TLS stream".into()));
        };
        // No greeting after STARTTLS (RFC 3501 6.2.1).
        client = async_imap::Client::new(tls_wrap(tcp, &account.host).await?);
    }
    let mut session = client
        .login(&account.username, account.password.expose())
        .await
        .map_err(|(e, _)| login_error(e))?;
    let idle = match session.capabilities().await {
        Ok(caps) => caps.has_str("IDLE"),
        Err(e) => return Err(protocol(e)),
    };
    Ok((session, idle))
}

/// A LOGIN failure: NO is the server refusing the credentials, except the
/// "no plaintext here" refusal Dovecot and others send on unencrypted ports.
fn login_error(error: ImapError) -> ConnectError {
    match error {
        ImapError::No(why) | ImapError::Bad(why)
            if why.contains("PRIVACYREQUIRED")
                || why.to_ascii_lowercase().contains("plaintext")
                || why.contains("LOGINDISABLED") =>
        {
            ConnectError::PlaintextRefused
        }
        ImapError::No(_) => ConnectError::Auth,
        // A user name or password with a line break cannot be sent at all;
        // the character itself is not repeated.
        ImapError::Validate(_) => ConnectError::Auth,
        other => protocol(other),
    }
}

/// `EXAMINE`s `folder` (read-only: nothing becomes `\Seen`).
pub async fn examine(
    session: &mut Session,
    folder: &str,
) -> Result<async_imap::types::Mailbox, ConnectError> {
    let folder_error = |e: ImapError| match e {
        ImapError::No(why) => ConnectError::Folder(folder.to_owned(), why),
        other => protocol(other),
    };
    match session.examine(quote(folder)).await {
        Ok(mailbox) => Ok(mailbox),
        // Dovecot (and others) create INBOX lazily, on the first delivery or
        // SELECT, and a read-only EXAMINE does not create it. Selecting an
        // empty INBOX changes no message; then it is examined as usual.
        Err(ImapError::No(_)) if folder.eq_ignore_ascii_case(crate::model::DEFAULT_FOLDER) => {
            session.select("INBOX").await.map_err(folder_error)?;
            session.examine("INBOX").await.map_err(folder_error)
        }
        Err(e) => Err(folder_error(e)),
    }
}

/// `folder` as an IMAP quoted string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        // A line break would end the command; nothing legitimate needs one.
        if !matches!(c, '\r' | '\n') {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// The UIDs `UID SEARCH <query>` finds, ascending.
pub async fn uid_search(session: &mut Session, query: &str) -> Result<Vec<u32>, ConnectError> {
    let mut uids: Vec<u32> = session
        .uid_search(query)
        .await
        .map_err(protocol)?
        .into_iter()
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// One fetched message: its UID, flags, size and the bytes asked for.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its UID.
    pub uid: u32,
    /// Whether it carries `\Seen`.
    pub seen: bool,
    /// Its size in bytes, when asked for.
    pub size: Option<u32>,
    /// The bytes (the header, or the first bytes of the whole message).
    pub bytes: Vec<u8>,
}

/// `UID FETCH` of `uids` (a comma list) with `query`; messages without a
/// UID (unsolicited fetches) are skipped.
pub async fn uid_fetch(
    session: &mut Session,
    uids: &[u32],
    query: &str,
) -> Result<Vec<Fetched>, ConnectError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let stream = session.uid_fetch(set, query).await.map_err(protocol)?;
    let fetches: Vec<async_imap::types::Fetch> = stream.try_collect().await.map_err(protocol)?;
    Ok(fetches
        .into_iter()
        .filter_map(|f| {
            let uid = f.uid?;
            let seen = f
                .flags()
                .any(|flag| matches!(flag, async_imap::types::Flag::Seen));
            let bytes = f
                .body()
                .or_else(|| f.header())
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            Some(Fetched {
                uid,
                seen,
                size: f.size,
                bytes,
            })
        })
        .collect())
}

/// Signs out politely, within a second; a broken connection is just dropped.
pub async fn logout(mut session: Session) {
    let _ = tokio::time::timeout(Duration::from_secs(1), session.logout()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_quoted_and_cannot_break_the_command() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("x\r\nA1 LOGOUT"), "\"xA1 LOGOUT\"");
    }

    #[test]
    fn login_refusals_are_told_apart() {
        assert_eq!(
            login_error(ImapError::No(
                "code: Some(AuthenticationFailed), info: Some(\"Authentication failed.\")".into()
            )),
            ConnectError::Auth
        );
        assert_eq!(
            login_error(ImapError::No(
                "code: Some(PrivacyRequired)... Plaintext authentication disallowed".into()
            )),
            ConnectError::PlaintextRefused
        );
        assert!(ConnectError::Auth.is_lasting());
        assert!(!ConnectError::Unreachable("refused".into()).is_lasting());
    }

    #[test]
    fn the_tls_configuration_builds_with_aws_lc() {
        assert!(tls_config().is_ok());
    }
}

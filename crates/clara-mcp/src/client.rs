//! Connecting to one MCP server: a child process Clara starts (stdio) or an
//! endpoint it reaches (streamable HTTP).
//!
//! A stdio server gets a clean environment (only what its configuration gives,
//! a minimal `PATH` and its own `HOME`), runs in its own process group that is
//! killed as a whole, and has its stderr logged line by line (never inherited:
//! it would write over Clara's own output).

use crate::config::{ServerConfig, Transport};
use crate::credentials::Credentials;
use crate::oauth::OAuthError;
use clara_core::Secret;
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{ClientInitializeError, NotificationContext, RunningService};
use rmcp::transport::{
    StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

/// The `PATH` a stdio server gets unless its `env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long starting and initialising a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopped server gets to exit after `SIGTERM` before `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// The longest stderr line logged (a server printing a blob is cut).
const MAX_STDERR_LINE: usize = 2_000;

const SIGTERM: i32 = 15;

/// Why a server could not be connected. Never holds a secret: env values and
/// tokens are not part of any message.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The program could not be started.
    #[error("could not start {program:?}: {source}")]
    Spawn {
        /// The command.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Its per-server home could not be made.
    #[error("could not create its home directory {path}: {source}")]
    Home {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The MCP handshake failed.
    #[error("the MCP handshake failed: {0}")]
    Initialize(String),
    /// The handshake did not finish in time.
    #[error("the server did not finish the MCP handshake in {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    /// The HTTP server answered 401 and Clara has no usable OAuth tokens for
    /// it: someone has to run `clara mcp login NAME`.
    #[error("the server needs a login: run `clara mcp login {server}`")]
    NeedsAuth {
        /// The server's name.
        server: String,
        /// Its URL.
        url: String,
    },
    /// Preparing the OAuth client failed (discovery, stored credentials).
    #[error("{0}")]
    Auth(OAuthError),
    /// The configuration names no command or url (validation prevents it).
    #[error("the server has neither a command nor a url")]
    Unconfigured,
}

/// Clara's side of the MCP session: it tells the supervisor when the server
/// announces that its tool list changed.
#[derive(Clone, Default)]
pub struct Handler {
    tools_changed: Arc<Notify>,
}

impl Handler {
    /// Notified on every `notifications/tools/list_changed`.
    pub fn tools_changed(&self) -> Arc<Notify> {
        Arc::clone(&self.tools_changed)
    }
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("clara", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// A live session with a server.
pub struct Connection {
    /// The rmcp session.
    pub service: RunningService<RoleClient, Handler>,
    /// The child process of a stdio server.
    pub child: Option<ChildGuard>,
}

/// The process group of a stdio server: killed as a whole when dropped.
pub struct ChildGuard {
    child: Option<Box<dyn ChildWrapper>>,
    pid: Option<u32>,
}

impl ChildGuard {
    /// The server's process id (also its process group id).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Stops the whole group: `SIGTERM`, then `SIGKILL` after a grace period,
    /// and waits for it.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.signal(SIGTERM).is_ok()
            && tokio::time::timeout(TERM_GRACE, child.wait()).await.is_ok()
        {
            return;
        }
        if let Err(error) = Box::into_pin(child.kill()).await {
            tracing::debug!(%error, "killing an MCP server's process group");
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL to the group now (synchronous), then reap it off this thread.
            let _ = child.start_kill();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}

/// Connects to `config`'s server; `home` is the `HOME` of a stdio server that
/// does not set its own.
pub async fn connect(
    config: &ServerConfig,
    home: &Path,
    handler: Handler,
) -> Result<Connection, ConnectError> {
    connect_with(config, home, handler, None).await
}

/// [`connect`], with the OAuth `credentials` an HTTP server without a
/// `bearer_token` uses when it has stored tokens (refreshed as they expire).
pub async fn connect_with(
    config: &ServerConfig,
    home: &Path,
    handler: Handler,
    credentials: Option<&Credentials>,
) -> Result<Connection, ConnectError> {
    match config.transport() {
        Transport::Stdio => connect_stdio(config, home, handler).await,
        Transport::Http => connect_http(config, handler, credentials).await,
    }
}

async fn connect_stdio(
    config: &ServerConfig,
    home: &Path,
    handler: Handler,
) -> Result<Connection, ConnectError> {
    let program = config
        .command
        .as_deref()
        .ok_or(ConnectError::Unconfigured)?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(&config.args)
        .env_clear()
        .env("PATH", DEFAULT_PATH);
    if !config.env.contains_key("HOME") {
        std::fs::create_dir_all(home).map_err(|source| ConnectError::Home {
            path: home.display().to_string(),
            source,
        })?;
        command.env("HOME", home);
    }
    for (key, value) in &config.env {
        command.env(key, Secret::expose(value));
    }
    if let Some(cwd) = &config.cwd {
        command.current_dir(cwd);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut wrap = CommandWrap::from(command);
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let mut child = wrap.spawn().map_err(|source| ConnectError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let pid = child.id();
    let (stdin, stdout) = (child.stdin().take(), child.stdout().take());
    if let Some(stderr) = child.stderr().take() {
        // The server's own secrets (its configured variables) are scrubbed
        // from what it prints: a server that logs its configuration must not
        // put its token in Clara's log.
        let secrets: Vec<String> = config
            .env
            .values()
            .map(|v| Secret::expose(v).to_owned())
            .filter(|v| v.len() >= MIN_SCRUBBED)
            .collect();
        tokio::spawn(forward_stderr(config.name.clone(), stderr, secrets));
    }
    let guard = ChildGuard {
        child: Some(child),
        pid,
    };
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(ConnectError::Spawn {
            program: program.to_owned(),
            source: std::io::Error::other("its stdin or stdout was not piped"),
        });
    };
    // On an error the guard is dropped here, which kills what was started.
    let service = handshake(config, handler.serve((stdout, stdin))).await?;
    Ok(Connection {
        service,
        child: Some(guard),
    })
}

async fn connect_http(
    config: &ServerConfig,
    handler: Handler,
    credentials: Option<&Credentials>,
) -> Result<Connection, ConnectError> {
    let url = config.url.as_deref().ok_or(ConnectError::Unconfigured)?;
    let mut transport_config = StreamableHttpClientTransportConfig::with_uri(url);
    let bearer = Secret::given(config.bearer_token.as_ref());
    if let Some(token) = bearer {
        // rmcp sends it as `Authorization: Bearer <token>`.
        transport_config = transport_config.auth_header(token.expose());
    }
    let oauth = match credentials {
        Some(credentials) if bearer.is_none() && credentials.has_tokens(&config.name, url) => Some(
            crate::oauth::authorized_client(config, credentials)
                .await
                .map_err(|error| match error {
                    OAuthError::NeedsLogin(_) => ConnectError::NeedsAuth {
                        server: config.name.clone(),
                        url: url.to_owned(),
                    },
                    other => ConnectError::Auth(other),
                })?,
        ),
        _ => None,
    };
    let service = match oauth {
        Some(client) => {
            let transport = StreamableHttpClientTransport::with_client(client, transport_config);
            handshake(config, handler.serve(transport)).await?
        }
        None => {
            let transport = StreamableHttpClientTransport::from_config(transport_config);
            handshake(config, handler.serve(transport)).await?
        }
    };
    Ok(Connection {
        service,
        child: None,
    })
}

async fn handshake(
    config: &ServerConfig,
    serving: impl Future<Output = Result<RunningService<RoleClient, Handler>, ClientInitializeError>>,
) -> Result<RunningService<RoleClient, Handler>, ConnectError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, serving).await {
        Ok(Ok(service)) => Ok(service),
        // A 401 without (or despite refreshed) OAuth tokens: a login is
        // needed. A configured bearer token that is refused is a plain error.
        Ok(Err(error))
            if error.is_authorization_required()
                && Secret::given(config.bearer_token.as_ref()).is_none() =>
        {
            Err(ConnectError::NeedsAuth {
                server: config.name.clone(),
                url: config.url.clone().unwrap_or_default(),
            })
        }
        Ok(Err(error)) => Err(ConnectError::Initialize(error.to_string())),
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// Configured values shorter than this are not scrubbed from stderr (`1`,
/// `true`, a port): they are not secrets and would blank out ordinary text.
const MIN_SCRUBBED: usize = 6;

/// `line` with every occurrence of a configured value replaced.
fn scrub(line: String, secrets: &[String]) -> String {
    secrets.iter().fold(line, |line, secret| {
        if line.contains(secret.as_str()) {
            line.replace(secret.as_str(), "[redacted]")
        } else {
            line
        }
    })
}

/// Logs each line the server writes to stderr, at target `clara_mcp::stderr`,
/// without its configured values.
async fn forward_stderr(server: String, stderr: tokio::process::ChildStderr, secrets: Vec<String>) {
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                let mut line = scrub(line, &secrets);
                if line.len() > MAX_STDERR_LINE {
                    let mut cut = MAX_STDERR_LINE;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                    line.push('…');
                }
                tracing::info!(target: "clara_mcp::stderr", server = %server, "{line}");
            }
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(target: "clara_mcp::stderr", server = %server, %error, "stderr unreadable");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_are_scrubbed_from_stderr() {
        let secrets = vec!["tok-123456".to_owned()];
        assert_eq!(
            scrub("auth with tok-123456, again tok-123456".into(), &secrets),
            "auth with [redacted], again [redacted]"
        );
        assert_eq!(scrub("nothing here".into(), &secrets), "nothing here");
    }
}

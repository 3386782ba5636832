//! OAuth for remote (streamable-HTTP) MCP servers, on rmcp's `auth` module.
//!
//! A login has two halves, so the redirect may arrive anywhere (a local
//! listener here; later Clara's web page, with the link sent to the owner's
//! DM):
//! - [`start_login`] asks the server without a token, reads the `401`'s
//!   `WWW-Authenticate` challenge, discovers the authorization server
//!   (protected resource metadata, RFC 9728; authorization server metadata,
//!   RFC 8414), registers Clara as a public client (RFC 7591) and builds the
//!   authorization URL with a PKCE S256 challenge. The verifier, `state` and
//!   registration go to the server's encrypted [credentials](crate::credentials).
//! - [`finish_login`] exchanges the code the redirect brought for tokens,
//!   which are stored there too.
//!
//! [`authorized_client`] is the HTTP client the transport uses afterwards: it
//! sends the stored access token and refreshes it (saving the new tokens)
//! when it is about to expire or the server refuses it.
//!
//! [`login_interactive`] is `clara mcp login NAME`: both halves around a
//! one-shot listener on `127.0.0.1`.

use crate::config::{ServerConfig, Transport};
use crate::credentials::{ClientRegistration, CredentialError, Credentials, ServerCredentials};
use rmcp::transport::auth::{AuthClient, AuthError, AuthorizationManager, OAuthClientConfig};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name Clara registers under.
const CLIENT_NAME: &str = "Clara";

/// How long [`login_interactive`] waits for the owner to approve.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the unauthenticated probe for the challenge may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest callback request read (its head only).
const MAX_CALLBACK_REQUEST: usize = 16 * 1024;

/// Why a login or an authorised connection failed. Never holds a token, a
/// code or a client secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The server is a stdio server.
    #[error("server {0:?} is not an HTTP server; OAuth is for remote servers")]
    NotHttp(String),
    /// The server has a fixed bearer token in its configuration.
    #[error("server {0:?} has a bearer_token configured; remove it to log in with OAuth")]
    HasBearerToken(String),
    /// The server could not be asked, or its authorization server not found.
    #[error("discovering the authorization server of {server:?} failed: {detail}")]
    Discovery {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// Dynamic client registration failed.
    #[error("registering Clara with the authorization server of {server:?} failed: {detail}")]
    Registration {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// No login of this server is waiting for that `state`.
    #[error(
        "no login of {0:?} is waiting for this answer (it expired, was replaced by a newer one, or the state is wrong); start again"
    )]
    NoPendingLogin(String),
    /// The authorization server refused the code.
    #[error("exchanging the authorization code of {server:?} failed: {detail}")]
    Exchange {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The owner (or the authorization server) refused.
    #[error("the authorization server refused the login of {server:?}: {error}")]
    Denied {
        /// The server.
        server: String,
        /// Its `error` (and description).
        error: String,
    },
    /// There are no usable tokens: someone has to log in.
    #[error("server {0:?} needs a login: run `clara mcp login {0}`")]
    NeedsLogin(String),
    /// Anything else rmcp's OAuth client reported.
    #[error("OAuth for {server:?} failed: {detail}")]
    Auth {
        /// The server.
        server: String,
        /// What failed.
        detail: String,
    },
    /// The credentials could not be read or written.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The local redirect listener failed.
    #[error("the local login listener failed: {0}")]
    Listener(std::io::Error),
    /// Nobody came back from the authorization page in time.
    #[error("no answer from the authorization page within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// The first half of a login: the URL the owner opens, and its `state`.
#[derive(Clone)]
pub struct LoginStart {
    /// The authorization server's page, with Clara's client id, the redirect
    /// URI, the PKCE challenge and `state`.
    pub authorization_url: String,
    /// The `state` the redirect must bring back.
    pub state: String,
}

impl std::fmt::Debug for LoginStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginStart")
            .field("authorization_url", &"[redacted]")
            .field("state", &"[redacted]")
            .finish()
    }
}

/// The server's URL, for a server OAuth applies to.
fn oauth_url(server: &ServerConfig) -> Result<&str, OAuthError> {
    match (server.transport(), server.url.as_deref()) {
        (Transport::Http, Some(url)) => {
            if clara_core::Secret::given(server.bearer_token.as_ref()).is_some() {
                return Err(OAuthError::HasBearerToken(server.name.clone()));
            }
            Ok(url)
        }
        _ => Err(OAuthError::NotHttp(server.name.clone())),
    }
}

/// An rmcp manager for `url` keeping its tokens and login state in `store`.
/// rmcp's own client refuses metadata on private addresses unless the server
/// itself is on one of the same class (a `127.0.0.1` server may use a
/// `127.0.0.1` authorization server).
async fn manager(
    server: &ServerConfig,
    url: &str,
    store: &ServerCredentials,
) -> Result<AuthorizationManager, OAuthError> {
    let mut manager = AuthorizationManager::new(url)
        .await
        .map_err(|e| auth(server, e))?;
    manager.set_credential_store(store.clone());
    manager.set_state_store(store.clone());
    Ok(manager)
}

/// Discovers the authorization server again the way the login did.
async fn discover(
    server: &ServerConfig,
    manager: &mut AuthorizationManager,
    challenge: Option<&str>,
) -> Result<(), OAuthError> {
    let resolution = manager
        .resolve_metadata_from_challenge(challenge)
        .await
        .map_err(|e| OAuthError::Discovery {
            server: server.name.clone(),
            detail: e.to_string(),
        })?;
    manager.set_metadata(resolution.metadata);
    Ok(())
}

fn auth(server: &ServerConfig, error: AuthError) -> OAuthError {
    OAuthError::Auth {
        server: server.name.clone(),
        detail: error.to_string(),
    }
}

fn client_config(client: &ClientRegistration) -> OAuthClientConfig {
    let mut config = OAuthClientConfig::new(&client.client_id, &client.redirect_uri)
        .with_scopes(client.scopes.clone());
    if let Some(secret) = &client.client_secret {
        config = config.with_client_secret(secret);
    }
    config
}

/// Asks the server without a token; its `401` carries the challenge
/// (`WWW-Authenticate`), which points at its metadata. `None` when it does not
/// answer `401` (discovery then tries the well-known addresses).
async fn challenge(server: &ServerConfig, url: &str) -> Result<Option<String>, OAuthError> {
    let discovery = |detail: String| OAuthError::Discovery {
        server: server.name.clone(),
        detail,
    };
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| discovery(e.to_string()))?;
    let initialize = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "clara", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let response = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .map_err(|e| discovery(format!("the server did not answer: {e}")))?;
    if response.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    Ok(response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

/// The first half of a login to `server`: discovery, dynamic registration
/// (with `redirect_uri`) and the authorization URL with its PKCE challenge.
/// The owner opens the URL; the authorization server then redirects to
/// `redirect_uri?code=…&state=…`, which goes to [`finish_login`]. A newer
/// login replaces one in progress; tokens already stored stay usable until
/// the new login finishes.
pub async fn start_login(
    server: &ServerConfig,
    redirect_uri: &str,
    credentials: &Credentials,
) -> Result<LoginStart, OAuthError> {
    let url = oauth_url(server)?;
    let store = credentials.server(&server.name);
    let challenge = challenge(server, url).await?;
    let mut manager = manager(server, url, &store).await?;
    discover(server, &mut manager, challenge.as_deref()).await?;
    let scopes = manager.select_scopes(None, &[]);
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let registered = manager
        .register_client(CLIENT_NAME, redirect_uri, &scope_refs)
        .await
        .map_err(|e| OAuthError::Registration {
            server: server.name.clone(),
            detail: e.to_string(),
        })?;
    let client = ClientRegistration {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        redirect_uri: redirect_uri.to_owned(),
        scopes: scopes.clone(),
        challenge,
    };
    store
        .update(|r| {
            r.pending = None;
            r.pending_client = Some(client);
        })
        .await?;
    // Saves the PKCE verifier and `state` in the store.
    let authorization_url = manager
        .get_authorization_url(&scope_refs)
        .await
        .map_err(|e| auth(server, e))?;
    let state = reqwest::Url::parse(&authorization_url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| OAuthError::Auth {
            server: server.name.clone(),
            detail: "the authorization URL has no state".to_owned(),
        })?;
    tracing::info!(server = %server.name, "OAuth login started");
    Ok(LoginStart {
        authorization_url,
        state,
    })
}

/// The second half of a login: exchanges `code` (from the redirect, with its
/// `state`) for tokens, which are stored encrypted. The server's supervisor
/// notices the new credentials and connects with them.
pub async fn finish_login(
    server: &ServerConfig,
    code: &str,
    state: &str,
    credentials: &Credentials,
) -> Result<(), OAuthError> {
    finish(server, code, state, None, credentials).await
}

/// [`finish_login`] with the redirect's `iss` (RFC 9207), when it had one.
async fn finish(
    server: &ServerConfig,
    code: &str,
    state: &str,
    issuer: Option<&str>,
    credentials: &Credentials,
) -> Result<(), OAuthError> {
    let url = oauth_url(server)?;
    let store = credentials.server(&server.name);
    let record = store.load_record().unwrap_or_default();
    let waiting = record.pending.as_ref().is_some_and(|(s, _)| s == state);
    let Some(client) = record.pending_client.filter(|_| waiting) else {
        return Err(OAuthError::NoPendingLogin(server.name.clone()));
    };
    let mut manager = manager(server, url, &store).await?;
    discover(server, &mut manager, client.challenge.as_deref()).await?;
    manager
        .configure_client(client_config(&client))
        .map_err(|e| auth(server, e))?;
    // Checks `state` against the stored one, sends the PKCE verifier, saves
    // the tokens in the store.
    manager
        .exchange_code_for_token_with_issuer(code, state, issuer)
        .await
        .map_err(|e| OAuthError::Exchange {
            server: server.name.clone(),
            detail: e.to_string(),
        })?;
    let url = url.to_owned();
    store
        .update(|r| {
            r.url = Some(url);
            r.client = Some(client);
            r.pending_client = None;
        })
        .await?;
    tracing::info!(server = %server.name, "OAuth login finished; tokens stored");
    Ok(())
}

/// The HTTP client for `server`'s transport: it sends the stored access
/// token and refreshes it when it expires (or the server refuses it), saving
/// the new tokens. [`OAuthError::NeedsLogin`] when there are no usable tokens.
pub async fn authorized_client(
    server: &ServerConfig,
    credentials: &Credentials,
) -> Result<AuthClient<reqwest::Client>, OAuthError> {
    let url = oauth_url(server)?;
    let store = credentials.server(&server.name);
    let needs_login = || OAuthError::NeedsLogin(server.name.clone());
    let record = store
        .load_record()
        .filter(|r| r.tokens.is_some() && r.url.as_deref() == Some(url))
        .ok_or_else(needs_login)?;
    let client = record.client.ok_or_else(needs_login)?;
    let mut manager = manager(server, url, &store).await?;
    discover(server, &mut manager, client.challenge.as_deref()).await?;
    if !manager
        .initialize_from_store()
        .await
        .map_err(|e| auth(server, e))?
    {
        return Err(needs_login());
    }
    // `initialize_from_store` knows only the client id: add the secret and
    // the redirect URI it was registered with.
    manager
        .configure_client(client_config(&client))
        .map_err(|e| auth(server, e))?;
    Ok(AuthClient::new(reqwest::Client::new(), manager))
}

/// `clara mcp login NAME`: logs in to `server` with its credentials under
/// `servers_dir`. Listens once on `127.0.0.1` (a random port) for the
/// redirect, prints the authorization URL for the owner to open, waits up to
/// [`LOGIN_TIMEOUT`] and stores the tokens.
///
/// Sending the link to the owner's DM and taking the redirect on Clara's web
/// page instead is a later step: it is [`start_login`] and [`finish_login`]
/// around another redirect URI.
pub async fn login_interactive(
    server: &ServerConfig,
    servers_dir: &Path,
) -> Result<(), OAuthError> {
    let credentials = Credentials::new(servers_dir)?;
    login_with_listener(server, &credentials, LOGIN_TIMEOUT, |url| {
        println!(
            "Open this address in a browser to let Clara use {:?}:\n\n  {url}\n\nWaiting for the answer (up to {} minutes)…",
            server.name,
            LOGIN_TIMEOUT.as_secs() / 60
        );
    })
    .await
}

/// [`login_interactive`] with the URL given to `show` instead of printed, and
/// its own `timeout`.
pub async fn login_with_listener(
    server: &ServerConfig,
    credentials: &Credentials,
    timeout: Duration,
    show: impl FnOnce(&str),
) -> Result<(), OAuthError> {
    oauth_url(server)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(OAuthError::Listener)?;
    let port = listener.local_addr().map_err(OAuthError::Listener)?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let start = start_login(server, &redirect_uri, credentials).await?;
    show(&start.authorization_url);
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let accepted = tokio::time::timeout(left, listener.accept())
            .await
            .map_err(|_| OAuthError::Timeout(timeout))?;
        let (mut stream, _) = accepted.map_err(OAuthError::Listener)?;
        let Some(target) = read_request_target(&mut stream).await else {
            continue;
        };
        let callback = match Callback::parse(&target) {
            Some(callback) => callback,
            None => {
                respond(&mut stream, "404 Not Found", "Not found.").await;
                continue;
            }
        };
        // A request with another state is not this login's answer.
        if callback.state.as_deref() != Some(start.state.as_str()) {
            respond(
                &mut stream,
                "400 Bad Request",
                "This answer does not belong to the login Clara is waiting for.",
            )
            .await;
            continue;
        }
        if let Some(error) = callback.error {
            respond(
                &mut stream,
                "200 OK",
                "The login was refused. You can close this tab.",
            )
            .await;
            return Err(OAuthError::Denied {
                server: server.name.clone(),
                error,
            });
        }
        let Some(code) = callback.code else {
            respond(&mut stream, "400 Bad Request", "The answer has no code.").await;
            continue;
        };
        let finished = finish(
            server,
            &code,
            &start.state,
            callback.issuer.as_deref(),
            credentials,
        )
        .await;
        let page = match &finished {
            Ok(()) => format!(
                "Clara is logged in to {}. You can close this tab.",
                server.name
            ),
            Err(_) => "The login failed; see Clara's output.".to_owned(),
        };
        respond(&mut stream, "200 OK", &page).await;
        return finished;
    }
}

/// The query of a redirect to `/callback`.
struct Callback {
    code: Option<String>,
    state: Option<String>,
    issuer: Option<String>,
    error: Option<String>,
}

impl Callback {
    /// `target` is the request's path and query; `None` unless it is `/callback`.
    fn parse(target: &str) -> Option<Self> {
        let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
        if url.path() != "/callback" {
            return None;
        }
        let mut callback = Self {
            code: None,
            state: None,
            issuer: None,
            error: None,
        };
        let mut description = None;
        for (key, value) in url.query_pairs() {
            let value = Some(value.into_owned());
            match key.as_ref() {
                "code" => callback.code = value,
                "state" => callback.state = value,
                "iss" => callback.issuer = value,
                "error" => callback.error = value,
                "error_description" => description = value,
                _ => {}
            }
        }
        if let (Some(error), Some(description)) = (&mut callback.error, description) {
            error.push_str(": ");
            error.push_str(&description);
        }
        Some(callback)
    }
}

/// Reads a request's head and gives its target (`/callback?…`) for a `GET`.
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_CALLBACK_REQUEST {
            let n = stream.read(&mut buffer).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&head);
    let mut parts = head.lines().next()?.split_whitespace();
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_owned)
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Clara</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(error) = stream.write_all(response.as_bytes()).await {
        tracing::debug!(%error, "answering the login callback");
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn callbacks_are_parsed() {
        let c = Callback::parse("/callback?code=abc&state=s1&iss=http%3A%2F%2Fa").unwrap();
        assert_eq!(
            (c.code.as_deref(), c.state.as_deref(), c.issuer.as_deref()),
            (Some("abc"), Some("s1"), Some("http://a"))
        );
        let refused =
            Callback::parse("/callback?error=access_denied&error_description=no&state=s").unwrap();
        assert_eq!(refused.error.as_deref(), Some("access_denied: no"));
        assert!(Callback::parse("/favicon.ico").is_none());
    }

    #[test]
    fn login_start_debug_hides_the_url_and_state() {
        let start = LoginStart {
            authorization_url: "https://as/authorize?state=xyz".into(),
            state: "xyz".into(),
        };
        assert!(!format!("{start:?}").contains("xyz"));
    }
}

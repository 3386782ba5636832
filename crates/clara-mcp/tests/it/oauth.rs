//! OAuth against `tests/fixtures/oauth_server.py`: an MCP server that is its
//! own authorization server (discovery, dynamic registration, PKCE, refresh),
//! approves every login at once and issues access tokens that live 2 s.

use crate::fixtures::{call, data, settings, start, status_of, wait_for_tool, wait_until};
use clara_mcp::ServerConfig;
use clara_mcp::ServerState;
use clara_mcp::client::{ConnectError, Handler, connect, connect_with};
use clara_mcp::credentials::Credentials;
use clara_mcp::oauth::{OAuthError, finish_login, login_with_listener, start_login};
use clara_testkit::mcp_servers::PythonMcpServer;
use serde_json::json;
use std::time::Duration;

/// How long the fixture's access tokens live.
const TOKEN_SECONDS: u64 = 2;

/// The OAuth fixture on a free port; killed on drop.
struct OAuthFixture {
    /// Kept for its drop, which stops the server.
    _server: PythonMcpServer,
    url: String,
}

impl OAuthFixture {
    fn start() -> Self {
        let server =
            PythonMcpServer::start("oauth_server.py", &[TOKEN_SECONDS.to_string().as_str()]);
        let url = server.url.clone();
        Self {
            _server: server,
            url,
        }
    }

    fn config(&self, name: &str) -> ServerConfig {
        ServerConfig {
            name: name.into(),
            command: None,
            args: Vec::new(),
            env: Default::default(),
            cwd: None,
            url: Some(self.url.clone()),
            bearer_token: None,
            enabled: true,
            source: Some("url".into()),
        }
    }
}

/// Opens `authorization_url` as a browser would, without following the
/// redirect: the fixture approves at once and sends back `(code, state)`.
async fn approve(authorization_url: &str, redirect_uri: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(authorization_url).send().await.unwrap();
    assert!(
        response.status().is_redirection(),
        "the authorization page did not redirect: {}",
        response.status()
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(redirect_uri),
        "redirected elsewhere: {location}"
    );
    let url = reqwest::Url::parse(&location).unwrap();
    let get = |key: &str| {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {key} in {location}"))
    };
    (get("code"), get("state"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_wants_oauth_waits_for_a_login_then_connects_and_refreshes() {
    let fixture = OAuthFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture.config("secured");

    // Without credentials: a probe says a login is needed, and the supervisor
    // waits in NeedsAuth instead of failing in a loop.
    let home = dir.path().join("home");
    match connect(&config, &home, Handler::default()).await {
        Err(ConnectError::NeedsAuth { server, url }) => {
            assert_eq!(
                (server.as_str(), url.as_str()),
                ("secured", fixture.url.as_str())
            );
        }
        Err(other) => panic!("expected NeedsAuth, got {other}"),
        Ok(_) => panic!("connected without a token"),
    }
    let (manager, registry) = start(settings(vec![config.clone()], Some(dir.path()))).await;
    wait_until(&manager, "secured to need a login", || {
        matches!(
            status_of(&manager, "secured").state,
            ServerState::NeedsAuth { .. }
        )
    })
    .await;
    let status = status_of(&manager, "secured");
    assert_eq!(
        status.state.describe(),
        "needs login: run `clara mcp login secured`"
    );
    assert!(status.tools.is_empty());

    // Log in: start, approve (the fixture redirects at once), finish.
    let credentials = Credentials::new(dir.path()).unwrap();
    let redirect_uri = "http://127.0.0.1:9/callback";
    let login = start_login(&config, redirect_uri, &credentials)
        .await
        .unwrap();
    let (code, state) = approve(&login.authorization_url, redirect_uri).await;
    assert_eq!(state, login.state);
    // A forged state is refused and leaves the login usable.
    match finish_login(&config, &code, "forged", &credentials).await {
        Err(OAuthError::NoPendingLogin(server)) => assert_eq!(server, "secured"),
        other => panic!("expected NoPendingLogin, got {other:?}"),
    }
    finish_login(&config, &code, &state, &credentials)
        .await
        .unwrap();
    // The code is single-use: a replay finds no login waiting.
    assert!(matches!(
        finish_login(&config, &code, &state, &credentials).await,
        Err(OAuthError::NoPendingLogin(_))
    ));

    // The supervisor sees the new credentials and connects with them.
    wait_for_tool(&manager, &registry, "secured__whoami").await;
    let sum = call(&registry, "secured__add", json!({"a": 2, "b": 40})).await;
    assert!(sum.ok, "{}", sum.content);
    assert_eq!(data(&sum.content), "42");
    let first = call(&registry, "secured__whoami", json!({})).await;
    assert!(first.ok, "{}", first.content);
    let first_token = data(&first.content).to_owned();
    assert!(first_token.starts_with("at-"), "{first_token}");

    // At rest the token is sealed.
    let sealed = std::fs::read(credentials.file("secured")).unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains(&first_token),
        "the credentials file holds the access token in plain text"
    );
    assert!(!format!("{:?}", manager.status()).contains(&first_token));

    // Once the access token has expired, the next call refreshes it.
    tokio::time::sleep(Duration::from_secs(TOKEN_SECONDS + 1)).await;
    let second = call(&registry, "secured__whoami", json!({})).await;
    assert!(second.ok, "{}", second.content);
    let second_token = data(&second.content).to_owned();
    assert!(second_token.starts_with("at-"), "{second_token}");
    assert_ne!(
        second_token, first_token,
        "the expired token was sent again"
    );
    let refreshes = call(&registry, "secured__refreshes", json!({})).await;
    assert!(refreshes.ok, "{}", refreshes.content);
    assert_ne!(data(&refreshes.content), "0", "no refresh grant was made");
    // The refreshed tokens were saved (sealed) for the next connection.
    let resealed = std::fs::read(credentials.file("secured")).unwrap();
    assert_ne!(resealed, sealed);
    assert!(!String::from_utf8_lossy(&resealed).contains(&second_token));
    assert!(matches!(
        status_of(&manager, "secured").state,
        ServerState::Ready { .. }
    ));
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_interactive_login_takes_the_redirect_on_a_local_listener() {
    let fixture = OAuthFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let config = fixture.config("remote");
    let credentials = Credentials::new(dir.path()).unwrap();

    // The "browser" follows the authorization URL and its redirect to the
    // listener, as the owner's would.
    let mut browser = None;
    login_with_listener(&config, &credentials, Duration::from_secs(60), |url| {
        let url = url.to_owned();
        browser = Some(tokio::spawn(async move {
            let page = reqwest::get(&url).await?;
            let status = page.status();
            let text = page.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }));
    })
    .await
    .unwrap();
    let (status, page) = browser.unwrap().await.unwrap().unwrap();
    assert!(status.is_success(), "{status}: {page}");
    assert!(page.contains("logged in to remote"), "{page}");

    // The stored tokens connect.
    let home = dir.path().join("home");
    let connection = connect_with(&config, &home, Handler::default(), Some(&credentials))
        .await
        .unwrap();
    let tools = connection.service.peer().list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "whoami"), "{tools:?}");
    connection.service.cancel().await.unwrap();

    // Another key opens nothing: the server counts as logged out.
    let other = Credentials::with_key(dir.path(), [9; 32]);
    match connect_with(&config, &home, Handler::default(), Some(&other)).await {
        Err(ConnectError::NeedsAuth { .. }) => {}
        Err(error) => panic!("expected NeedsAuth, got {error}"),
        Ok(_) => panic!("connected with credentials that do not open"),
    }
}

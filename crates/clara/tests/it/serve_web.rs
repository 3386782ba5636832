//! `clara serve` serves the web page and the HTTP API on the gateway port: on
//! loopback with no login, and off loopback behind the password and the API key
//! from the environment, which never reach its log.

use crate::common::{clara, terminate, text, with_fake};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "web-pa55word-never-logged";
const API_KEY: &str = "sk-clara-api-key-never-logged";

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "clara serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(child: tokio::process::Child) -> String {
    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    log
}

#[tokio::test]
async fn serve_offers_the_page_and_the_openai_api_on_loopback() {
    let llm = FakeOpenAi::start().await;
    llm.push(FakeReply::text("Hello from Clara."));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("CLARA_GATEWAY_PORT", port.to_string())
        .env("CLARA_MEMORY__ENABLED", "false");
    let child = cmd.arg("serve").spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    let page = client
        .get(&base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<title>Clara</title>"));
    let me: Value = client
        .get(format!("{base}/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["logged_in"], true, "loopback needs no login: {me}");
    assert_eq!(me["person"], "ann", "the page's person is $USER");

    let answer: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({ "model": "clara", "messages": [{ "role": "user", "content": "Hi" }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from Clara."
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("clara_thoughts_total"), "{metrics}");
    stop(child).await;
}

#[tokio::test]
async fn serve_off_loopback_asks_for_the_password_and_the_key() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("CLARA_GATEWAY_HOST", "0.0.0.0")
        .env("CLARA_GATEWAY_PORT", port.to_string())
        .env("CLARA_GATEWAY_SECRET", "gateway-secret")
        .env("CLARA_WEB_PASSWORD", PASSWORD)
        .env("CLARA_API_KEY", API_KEY)
        .env("CLARA_MEMORY__ENABLED", "false");
    let child = cmd.arg("serve").spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;

    let me: Value = client
        .get(format!("{base}/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["logged_in"], false);
    assert_eq!(me["login_required"], true);
    let refused = client
        .post(format!("{base}/auth/login"))
        .json(&json!({ "password": "guess" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let login = client
        .post(format!("{base}/auth/login"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(
        login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );

    let models = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    let models = client
        .get(format!("{base}/v1/models"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);

    let log = stop(child).await;
    assert!(!log.contains(PASSWORD) && !log.contains(API_KEY), "{log}");
}

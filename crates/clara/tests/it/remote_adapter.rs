//! `clara adapter discord` runs the Discord adapter in its own process, talking
//! to `clara serve` over the gateway protocol: two real `clara` processes, the
//! fake Discord (REST and gateway) and the fake OpenAI server as the model,
//! which only `clara serve` is told about.

use crate::common::{SECRET, clara, free_port, terminate, text, wait_ready, with_fake};
use clara_testkit::fake_discord::{FakeDiscord, FakeUser, UserMessage};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

const GATEWAY_SECRET: &str = "gateway-s3cret-shared-by-both";

/// `clara serve` on `port` with the gateway secret, answering through `llm`.
fn serve(dir: &Path, port: u16, llm: &FakeOpenAi) -> Command {
    let mut cmd = clara(&dir.join("serve-data"), dir);
    with_fake(&mut cmd, llm);
    cmd.env("CLARA_GATEWAY_PORT", port.to_string())
        .env("CLARA_GATEWAY_SECRET", GATEWAY_SECRET)
        .env("CLARA_MEMORY__ENABLED", "false")
        .arg("serve");
    cmd
}

/// `clara adapter discord`, pointed at the fake Discord and at serve's gateway;
/// it is given no model: the adapter needs none.
fn adapter(dir: &Path, port: u16, discord: &FakeDiscord, secret: &str) -> Command {
    let mut cmd = clara(&dir.join("adapter-data"), dir);
    cmd.env("DISCORD_BOT_TOKEN", discord.token())
        .env("DISCORD_API_URL", discord.api_url())
        .env("DISCORD_GATEWAY_URL", discord.gateway_url())
        .env(
            "CLARA_GATEWAY_URL",
            format!("ws://127.0.0.1:{port}/gateway"),
        )
        .env("CLARA_GATEWAY_SECRET", secret)
        .args(["adapter", "discord"]);
    cmd
}

/// The lines `clara` printed as its error (`clara: …`), leaving out the log.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("clara: "))
        .collect()
}

#[tokio::test]
async fn a_discord_dm_is_answered_through_an_adapter_in_its_own_process() {
    let llm = FakeOpenAi::start().await;
    let words = ["Hello ", "from ", "the ", "other ", "process!"];
    llm.push(FakeReply::Stream {
        chunks: words.iter().map(|w| (*w).to_owned()).collect(),
        delay: Duration::from_millis(100),
    });
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let clara_serve = serve(dir.path(), port, &llm).spawn().unwrap();
    wait_ready(port).await;

    let clara_adapter = adapter(dir.path(), port, &discord, GATEWAY_SECRET)
        .spawn()
        .unwrap();
    // The adapter joins the gateway before it opens its Discord session.
    discord.wait_live().await;

    let ann = FakeUser::new(4242, "Ann");
    discord.post(UserMessage::dm(7000, &ann, "hi Clara, where are you?"));
    discord
        .wait_until("Clara's whole answer on Discord", |d| {
            d.bot_texts(7000) == ["Hello from the other process!"]
        })
        .await;
    assert!(
        !discord.calls_to("POST", "channels/7000/typing").is_empty(),
        "the gateway's typing reached Discord"
    );
    assert!(
        !discord.calls_to("PATCH", "").is_empty(),
        "the message was grown by edits naming the id the adapter's `sent` gave back"
    );
    let asked = llm.requests();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert!(
        asked[0]
            .user_texts()
            .iter()
            .any(|t| t.contains("hi Clara, where are you?")),
        "the DM reached the model in the other process"
    );

    let adapter_out = terminate(clara_adapter).await;
    let adapter_log = text(&adapter_out.stderr);
    assert!(
        adapter_out.status.success(),
        "adapter exit: {:?}, stderr: {adapter_log}",
        adapter_out.status
    );
    assert_eq!(
        discord.client_closes(),
        vec![(1, 1000)],
        "the Discord session was closed normally"
    );
    let serve_out = terminate(clara_serve).await;
    let serve_log = text(&serve_out.stderr);
    assert!(
        serve_out.status.success(),
        "serve exit: {:?}, stderr: {serve_log}",
        serve_out.status
    );
    assert!(
        serve_log.contains("an adapter connected to the gateway") && serve_log.contains("discord"),
        "{serve_log}"
    );
    for log in [&adapter_log, &serve_log] {
        assert!(
            !log.contains(GATEWAY_SECRET),
            "the gateway secret leaked: {log}"
        );
        assert!(
            !log.contains(&discord.token()),
            "the bot token leaked: {log}"
        );
        assert!(!log.contains(SECRET), "the model's key leaked: {log}");
    }
}

#[tokio::test]
async fn a_wrong_gateway_secret_stops_the_adapter_with_one_sentence() {
    let llm = FakeOpenAi::start().await;
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let clara_serve = serve(dir.path(), port, &llm).spawn().unwrap();
    wait_ready(port).await;

    const WRONG: &str = "not-the-gateway-s3cret";
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        adapter(dir.path(), port, &discord, WRONG).output(),
    )
    .await
    .expect("the refused adapter exits")
    .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "one error: {stderr}");
    let error = errors[0];
    assert!(
        error.contains("refused CLARA_GATEWAY_SECRET") && error.ends_with("started with"),
        "{error}"
    );
    assert_eq!(error.matches(". ").count(), 0, "one sentence: {error}");
    assert!(!stderr.contains(WRONG) && !stderr.contains(GATEWAY_SECRET));
    assert!(
        discord.connections().is_empty(),
        "a refused adapter never goes online on Discord"
    );

    let serve_out = terminate(clara_serve).await;
    let serve_log = text(&serve_out.stderr);
    assert!(serve_out.status.success(), "{serve_log}");
    assert!(serve_log.contains("an adapter was refused"), "{serve_log}");
    assert!(!serve_log.contains(WRONG) && !serve_log.contains(GATEWAY_SECRET));
}

#[tokio::test]
async fn an_adapter_for_a_platform_serve_runs_itself_is_refused() {
    let llm = FakeOpenAi::start().await;
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = serve(dir.path(), port, &llm);
    cmd.env("DISCORD_BOT_TOKEN", discord.token())
        .env("DISCORD_API_URL", discord.api_url())
        .env("DISCORD_GATEWAY_URL", discord.gateway_url());
    let clara_serve = cmd.spawn().unwrap();
    wait_ready(port).await;
    discord.wait_live().await;

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        adapter(dir.path(), port, &discord, GATEWAY_SECRET).output(),
    )
    .await
    .expect("the refused adapter exits")
    .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "one error: {stderr}");
    assert!(
        errors[0].contains("\"discord\" is served inside Clara"),
        "{stderr}"
    );
    assert_eq!(
        discord.connections().len(),
        1,
        "only serve's own Discord session"
    );

    let serve_out = terminate(clara_serve).await;
    assert!(serve_out.status.success(), "{}", text(&serve_out.stderr));
}

//! `clara serve` with `DISCORD_BOT_TOKEN` answers on Discord: the real binary,
//! started as the README says, with `DISCORD_API_URL` and `DISCORD_GATEWAY_URL`
//! pointed at the fake Discord and the fake OpenAI server as its model.

use crate::common::{SECRET, clara, terminate, text, with_fake};
use clara_testkit::fake_discord::{FakeDiscord, FakeUser, UserMessage};
use clara_testkit::fake_openai::FakeOpenAi;
use std::time::Duration;

#[tokio::test]
async fn serve_answers_a_discord_message_end_to_end() {
    let llm = FakeOpenAi::start().await;
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("DISCORD_BOT_TOKEN", discord.token())
        .env("DISCORD_API_URL", discord.api_url())
        .env("DISCORD_GATEWAY_URL", discord.gateway_url())
        .env("DISCORD_ALLOWED_SERVERS", "3000")
        .env("CLARA_GATEWAY_PORT", "0");
    let child = cmd.arg("serve").spawn().unwrap();
    discord.wait_live().await;

    let ann = FakeUser::new(4242, "Ann");
    discord.post(UserMessage::dm(7000, &ann, "hello Clara, are you there?"));
    // Another server is not in DISCORD_ALLOWED_SERVERS: no answer there.
    discord.post(UserMessage::guild(
        9999,
        9001,
        &ann,
        &format!("{} over here!", FakeDiscord::mention()),
    ));
    discord
        .wait_until("Clara's answer", |d| {
            d.bot_texts(7000)
                .iter()
                .any(|t| t == "You said: hello Clara, are you there?")
        })
        .await;
    assert_eq!(discord.bot_texts(7000).len(), 1);
    assert!(
        !discord.calls_to("POST", "channels/7000/typing").is_empty(),
        "typing while thinking"
    );

    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    assert!(log.contains("Discord"), "{log}");
    assert!(
        !log.contains(&discord.token()),
        "the bot token is never logged"
    );
    assert!(!log.contains(SECRET));
    assert!(discord.bot_texts(9001).is_empty());
    // The gateway session was closed normally on the way out.
    assert_eq!(discord.client_closes(), vec![(1, 1000)]);
}

#[tokio::test]
async fn a_bad_discord_setting_stops_start_up_with_one_sentence() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("DISCORD_BOT_TOKEN", "token-SECRET")
        .env("DISCORD_ALLOWED_CHANNELS", "123, general")
        .env("CLARA_GATEWAY_PORT", "0");
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.arg("serve").output())
        .await
        .expect("clara exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("DISCORD_ALLOWED_CHANNELS"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

//! `clara serve` with `TG_BOT_TOKEN` answers on Telegram: the real binary,
//! started as the README says, with `TELEGRAM_API_URL` pointed at the fake Bot
//! API and the fake OpenAI server as its model.

use crate::common::{SECRET, clara, terminate, text, with_fake};
use clara_testkit::fake_openai::FakeOpenAi;
use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser, UserMessage};
use std::time::Duration;

#[tokio::test]
async fn serve_answers_a_telegram_message_end_to_end() {
    let llm = FakeOpenAi::start().await;
    let tg = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("TG_BOT_TOKEN", tg.token())
        .env("TELEGRAM_API_URL", tg.api_url())
        .env("CLARA_GATEWAY_PORT", "0");
    let child = cmd.arg("serve").spawn().unwrap();

    let ann = FakeUser::new(4242, "Ann");
    let chat = FakeChat::private(&ann);
    tg.send(UserMessage::text(
        &chat,
        &ann,
        "hello Clara, are you there?",
    ));
    tg.wait_for("Clara's answer", |tg| {
        tg.bot_messages(ann.id)
            .iter()
            .any(|m| m.text == "You said: hello Clara, are you there?")
    })
    .await;
    assert_eq!(tg.bot_messages(ann.id).len(), 1);
    assert!(
        !tg.calls_to("sendChatAction").is_empty(),
        "typing while thinking"
    );

    let out = terminate(child).await;
    let log = text(&out.stderr);
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {log}",
        out.status
    );
    assert!(log.contains("Telegram"), "{log}");
    assert!(!log.contains(tg.token()), "the bot token is never logged");
    assert!(!log.contains(SECRET));
    tg.wait_for("the last update confirmed", |tg| {
        tg.unconfirmed_updates() == 0
    })
    .await;
}

#[tokio::test]
async fn a_malformed_telegram_token_stops_start_up_with_one_sentence() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("TG_BOT_TOKEN", "not-a-token-SECRET")
        .env("CLARA_GATEWAY_PORT", "0");
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.arg("serve").output())
        .await
        .expect("clara exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("TG_BOT_TOKEN"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
}

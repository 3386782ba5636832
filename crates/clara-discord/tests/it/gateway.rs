//! The Discord adapter's gateway session against the fake gateway: IDENTIFY,
//! heartbeats, RESUME after a dropped connection, INVALID_SESSION, RECONNECT,
//! fatal close codes, and a clean stop.

use crate::support::*;
use clara_core::ChannelKind;
use clara_discord::DiscordError;
use clara_testkit::fake_discord::{FakeDiscord, UserMessage};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// Gateway intents, from Discord's reference.
const GUILD_MESSAGES: u64 = 1 << 9;
const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
const DIRECT_MESSAGES: u64 = 1 << 12;
const DIRECT_MESSAGE_TYPING: u64 = 1 << 14;
const MESSAGE_CONTENT: u64 = 1 << 15;

#[tokio::test]
async fn discord_identifies_with_the_token_and_intents_then_takes_a_dm() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;

    let identify = fake.frames_with_op(2);
    assert_eq!(identify.len(), 1);
    let d = &identify[0].d;
    assert_eq!(d["token"], format!("Bot {}", fake.token()));
    let intents = d["intents"].as_u64().unwrap();
    for wanted in [
        GUILD_MESSAGES,
        DIRECT_MESSAGES,
        MESSAGE_CONTENT,
        GUILD_MESSAGE_TYPING,
        DIRECT_MESSAGE_TYPING,
    ] {
        assert_eq!(
            intents & wanted,
            wanted,
            "intent {wanted} missing from {intents}"
        );
    }
    assert!(fake.connections()[0].target.contains("v=10"));
    assert!(fake.connections()[0].target.contains("encoding=json"));
    // The bot's account was checked over REST first.
    assert_eq!(fake.calls_to("GET", "users/@me").len(), 1);

    let id = fake.post(UserMessage::dm(DM, &ann(), "hello Clara"));
    let got = assistant.wait_submitted(1).await;
    let inbound = &got[0];
    assert_eq!(inbound.event_id.0, format!("discord:{id}"));
    assert_eq!(inbound.text, "hello Clara");
    assert_eq!(inbound.conversation.platform, "discord");
    assert_eq!(inbound.conversation.channel, DM.to_string());
    assert_eq!(inbound.conversation.kind, ChannelKind::Direct);
    assert_eq!(inbound.author.platform_user_id, ann().id.to_string());
    assert_eq!(inbound.author.display_name, "Ann");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        (now_ms - inbound.sent_at_ms).abs() < 60_000,
        "sent_at from the snowflake"
    );
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_heartbeats_carry_the_last_sequence_and_acks_keep_the_connection() {
    let fake = FakeDiscord::start().await;
    fake.set_heartbeat_interval(Duration::from_millis(250));
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.post(UserMessage::dm(DM, &ann(), "one"));
    assistant.wait_submitted(1).await;
    let (_, seq) = fake.session().unwrap();

    fake.wait_until("heartbeats with the last sequence", |f| {
        f.frames_with_op(1)
            .iter()
            .filter(|h| h.d.as_u64() == Some(seq))
            .count()
            >= 3
    })
    .await;
    // Every heartbeat was acknowledged, so the client never judged the
    // connection dead and reconnected.
    assert_eq!(fake.connections().len(), 1);
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_resumes_after_a_dropped_connection_and_gets_what_it_missed() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.post(UserMessage::dm(DM, &ann(), "before the drop"));
    assistant.wait_submitted(1).await;
    let (session_id, seen) = fake.session().unwrap();

    fake.drop_connection();
    // Said while Clara is away: Discord keeps it for the RESUME.
    fake.post(UserMessage::dm(DM, &ann(), "while you were away"));

    fake.wait_until("a RESUME", |f| !f.frames_with_op(6).is_empty())
        .await;
    let resume = &fake.frames_with_op(6)[0];
    assert_eq!(resume.d["session_id"], session_id.as_str());
    assert_eq!(resume.d["seq"].as_u64(), Some(seen));
    assert_eq!(resume.d["token"], format!("Bot {}", fake.token()));
    // Resumed at the URL READY named, not with a fresh IDENTIFY.
    let connections = fake.connections();
    assert_eq!(connections.len(), 2);
    assert!(
        connections[1].target.starts_with("/resume"),
        "{connections:?}"
    );
    assert_eq!(fake.frames_with_op(2).len(), 1);

    let got = assistant.wait_submitted(2).await;
    assert_eq!(got[1].text, "while you were away");

    fake.post(UserMessage::dm(DM, &ann(), "after"));
    let got = assistant.wait_submitted(3).await;
    assert_eq!(got.len(), 3, "nothing was delivered twice: {got:#?}");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_reconnect_op_resumes_the_session() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.request_reconnect();
    fake.wait_until("a RESUME after RECONNECT", |f| {
        !f.frames_with_op(6).is_empty() && f.is_live()
    })
    .await;
    assert_eq!(fake.frames_with_op(2).len(), 1);
    fake.post(UserMessage::dm(DM, &ann(), "still there?"));
    assert_eq!(assistant.wait_submitted(1).await[0].text, "still there?");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_invalid_session_leads_to_a_fresh_identify() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    let (first_session, _) = fake.session().unwrap();

    fake.invalidate_session(false);
    fake.post(UserMessage::dm(DM, &ann(), "are you back?"));
    fake.wait_until("a second IDENTIFY", |f| {
        f.frames_with_op(2).len() == 2 && f.is_live()
    })
    .await;
    assert!(
        fake.frames_with_op(6).is_empty(),
        "a non-resumable session is not resumed"
    );
    let (second_session, _) = fake.session().unwrap();
    assert_ne!(first_session, second_session);
    // A fresh session starts at the configured gateway URL, not the resume URL.
    assert!(!fake.connections()[1].target.starts_with("/resume"));
    assert_eq!(assistant.wait_submitted(1).await[0].text, "are you back?");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_refused_resume_falls_back_to_identify() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.expire_session();
    fake.wait_until("RESUME refused, then IDENTIFY", |f| {
        f.frames_with_op(6).len() == 1 && f.frames_with_op(2).len() == 2 && f.is_live()
    })
    .await;
    fake.post(UserMessage::dm(DM, &ann(), "hi again"));
    assert_eq!(assistant.wait_submitted(1).await[0].text, "hi again");
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_resumable_close_code_resumes() {
    let fake = FakeDiscord::start().await;
    let (running, assistant) = recording(&fake, config_for(&fake)).await;
    fake.close_connection(4000, "Unknown error.");
    fake.wait_until("a RESUME after close 4000", |f| {
        !f.frames_with_op(6).is_empty() && f.is_live()
    })
    .await;
    fake.post(UserMessage::dm(DM, &ann(), "ok"));
    assistant.wait_submitted(1).await;
    running.shut_down().await.unwrap();
}

#[tokio::test]
async fn discord_fatal_close_ends_run_with_a_sentence_naming_the_fix() {
    let fake = FakeDiscord::start().await;
    let (running, _assistant) = recording(&fake, config_for(&fake)).await;
    fake.close_connection(4014, "Disallowed intent(s).");
    let ended = tokio::time::timeout(WAIT, running.task)
        .await
        .unwrap()
        .unwrap();
    let err = ended.unwrap_err();
    assert!(
        matches!(err, DiscordError::GatewayClosed { code: 4014, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Message Content intent"), "{err}");
}

#[tokio::test]
async fn discord_bad_token_is_reported_without_the_token() {
    let fake = FakeDiscord::start().await;
    let mut config = config_for(&fake);
    config.token = "wrong-and-secret".into();
    let running = start(config, RecordingAssistant::new());
    let err = tokio::time::timeout(WAIT, running.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, DiscordError::Unauthorized));
    assert!(err.to_string().contains("DISCORD_BOT_TOKEN"));
    assert!(!err.to_string().contains("wrong-and-secret"));
    assert!(
        fake.connections().is_empty(),
        "no gateway connection with a refused token"
    );
}

#[tokio::test]
async fn discord_stop_closes_the_gateway_cleanly() {
    let fake = FakeDiscord::start().await;
    let (running, _assistant) = recording(&fake, config_for(&fake)).await;
    running.shut_down().await.unwrap();
    fake.wait_until("the connection to close", |f| !f.is_live())
        .await;
    // A normal close (1000) ends the session; nothing reconnects afterwards.
    assert_eq!(fake.client_closes(), vec![(1, 1000)]);
    assert_eq!(fake.connections().len(), 1);
}

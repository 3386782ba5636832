//! Long polling: held requests (never a busy loop), offsets confirmed only
//! after a message was handed over, the backlog after downtime answered in
//! order and once, outages and flood limits waited out, a refused token.

use crate::support::*;
use clara_core::port::IngressError;
use clara_telegram::{ApiError, TelegramError};
use clara_testkit::fake_telegram::{FakeFault, FakeTelegram, UserMessage};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn an_idle_bot_holds_each_poll_and_confirms_what_it_handed_over() {
    let r = Recorded::start().await;
    r.tg.wait_for("the first poll", |tg| !tg.calls_to("getUpdates").is_empty())
        .await;
    // Polls are held for `timeout` (2 s here): about three in five seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let polls = r.tg.calls_to("getUpdates");
    assert!(
        (2..=5).contains(&polls.len()),
        "{} polls in 5 s while idle",
        polls.len()
    );
    assert!(polls.iter().all(|p| p.params["timeout"] == 2));

    let ann = ann();
    r.tg.send(UserMessage::text(&dm(&ann), &ann, "hello"));
    r.assistant.wait_for_inbounds(1).await;
    r.all_handled().await;
    let polls = r.tg.calls_to("getUpdates");
    let offsets: Vec<i64> = polls
        .iter()
        .filter_map(|p| p.params["offset"].as_i64())
        .collect();
    assert!(!offsets.is_empty(), "the next poll confirms with an offset");
    assert_eq!(r.tg.unconfirmed_updates(), 0);
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_clara_cannot_take_yet_is_offered_again_not_lost() {
    let tg = FakeTelegram::start().await;
    let assistant = Arc::new(RecordingAssistant::default());
    assistant
        .refuse
        .lock()
        .unwrap()
        .extend([IngressError::Unavailable, IngressError::Unavailable]);
    let (_sink, adapter) = Recorded::run(&tg, Arc::clone(&assistant));
    let ann = ann();
    tg.send(UserMessage::text(&dm(&ann), &ann, "first"));
    tg.send(UserMessage::text(&dm(&ann), &ann, "second"));
    let got = assistant.wait_for_inbounds(2).await;
    let texts: Vec<&str> = got.iter().map(|i| i.text.as_str()).collect();
    assert_eq!(texts, vec!["first", "second"], "in order, each once");
    assert!(
        assistant.refuse.lock().unwrap().is_empty(),
        "offered again after each refusal"
    );
    tg.wait_for("all confirmed", |tg| tg.unconfirmed_updates() == 0)
        .await;
    assert!(
        bot_texts(&tg, &dm(&ann)).is_empty(),
        "no sentence for a retry"
    );
    adapter.stop().await.unwrap();
}

#[tokio::test]
async fn the_backlog_after_downtime_is_answered_in_order_and_only_once() {
    let mut rig = Rig::start(edits()).await;
    rig.stop_adapter().await;
    // Said while Clara was offline.
    let (ann, bob) = (ann(), bob());
    rig.tg
        .send(UserMessage::text(&dm(&ann), &ann, "first thing"));
    rig.tg.send(UserMessage::text(&dm(&bob), &bob, "hello?"));
    rig.tg
        .send(UserMessage::text(&dm(&ann), &ann, "second thing"));
    rig.start_adapter(edits());
    rig.tg
        .wait_for("both answers", |tg| {
            tg.bot_messages(ann.id).len() == 1 && tg.bot_messages(bob.id).len() == 1
        })
        .await;
    rig.settle(&dm(&ann)).await;
    rig.settle(&dm(&bob)).await;
    assert_eq!(
        bot_texts(&rig.tg, &dm(&ann)),
        vec!["You said: first thing\nsecond thing".to_owned()]
    );
    assert_eq!(
        bot_texts(&rig.tg, &dm(&bob)),
        vec!["You said: hello?".to_owned()]
    );
    assert_eq!(rig.llm.requests().len(), 2);

    // A crash between handing over and confirming: Telegram delivers it all
    // again, to a restarted Clara (a new engine on the same database).
    rig.tg
        .wait_for("confirmed", |tg| tg.unconfirmed_updates() == 0)
        .await;
    rig.stop_adapter().await;
    rig.engine.shutdown().await;
    rig.engine = engine_on(rig.dir.path(), &rig.llm).await;
    rig.tg.forget_confirmations();
    assert_eq!(rig.tg.unconfirmed_updates(), 3);
    rig.start_adapter(edits());
    rig.tg
        .wait_for("the redelivery handled", |tg| tg.unconfirmed_updates() == 0)
        .await;
    rig.settle(&dm(&ann)).await;
    rig.settle(&dm(&bob)).await;
    assert_eq!(rig.llm.requests().len(), 2, "nothing answered twice");
    assert_eq!(rig.tg.bot_messages(ann.id).len(), 1);
    assert_eq!(rig.tg.bot_messages(bob.id).len(), 1);

    // And the conversation goes on.
    rig.tg
        .send(UserMessage::text(&dm(&ann), &ann, "third thing"));
    rig.tg
        .wait_for("the answer", |tg| tg.bot_messages(ann.id).len() == 2)
        .await;
    let history = rig.llm.requests()[2].user_texts();
    assert_eq!(history.last().unwrap(), "third thing");
    assert!(history.iter().any(|t| t.contains("first thing")));
}

#[tokio::test]
async fn an_outage_is_waited_out_and_what_was_said_meanwhile_is_answered() {
    let rig = Rig::start(edits()).await;
    let ann = ann();
    let chat = dm(&ann);
    rig.tg
        .wait_for("polling", |tg| !tg.calls_to("getUpdates").is_empty())
        .await;
    rig.tg.go_offline().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rig.tg
        .send(UserMessage::text(&chat, &ann, "are you there?"));
    rig.tg.come_back().await;
    rig.tg
        .wait_for("the answer", |tg| {
            bot_texts(tg, &chat) == vec!["You said: are you there?".to_owned()]
        })
        .await;
    rig.settle(&chat).await;
    assert_eq!(rig.llm.requests().len(), 1);
}

#[tokio::test]
async fn polling_failures_back_off_and_flood_limits_wait_retry_after() {
    let r = Recorded::start().await;
    r.tg.wait_for("the first poll", |tg| !tg.calls_to("getUpdates").is_empty())
        .await;
    let before = r.tg.calls_to("getUpdates").len();
    r.tg.fail_next("getUpdates", FakeFault::ServerError(502));
    r.tg.fail_next("getUpdates", FakeFault::Disconnect);
    r.tg.fail_next("getUpdates", FakeFault::ServerError(500));
    r.tg.fail_next("getUpdates", FakeFault::TooManyRequests { retry_after: 1 });
    // The poll held now ends after its timeout; the faults answer the next four.
    r.tg.wait_for("four failed polls and a good one", |tg| {
        tg.calls_to("getUpdates").len() > before + 4
    })
    .await;
    let polls = r.tg.calls_to("getUpdates");
    let statuses: Vec<_> = polls[before..before + 4].iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        vec![Some(502), Some(200), Some(500), Some(429)],
        "(200: the broken answer)"
    );
    let gap = |i: usize| {
        polls[before + i + 1]
            .at
            .duration_since(polls[before + i].at)
    };
    assert!(gap(0) >= Duration::from_millis(100), "backoff after a 502");
    assert!(
        gap(1) >= Duration::from_millis(200),
        "doubled after a broken connection"
    );
    assert!(gap(2) >= Duration::from_millis(400), "doubled again");
    assert!(gap(3) >= Duration::from_secs(1), "retry_after honoured");

    let ann = ann();
    r.tg.send(UserMessage::text(&dm(&ann), &ann, "still there?"));
    let got = r.assistant.wait_for_inbounds(1).await;
    assert_eq!(got[0].text, "still there?");
    r.adapter.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_stops_the_adapter_with_one_clear_error() {
    let other = FakeTelegram::start_with_token("111:the-right-one").await;
    let mut config = config(&other, edits());
    config.token = "222:a-wrong-one-SECRET".into();
    let telegram = clara_telegram::Telegram::new(config).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let ended = tokio::time::timeout(
        WAIT,
        telegram.run(Arc::new(RecordingAssistant::default()), stop),
    )
    .await
    .expect("the adapter gives up on a refused token");
    let error = ended.unwrap_err();
    assert!(
        matches!(
            error,
            TelegramError::Api(ApiError::Unauthorized { code: 401 })
        ),
        "{error:?}"
    );
    let said = error.to_string();
    assert!(said.contains("TG_BOT_TOKEN"), "{said}");
    assert!(!said.contains("SECRET"), "{said}");
    assert_eq!(
        other.calls_to("getUpdates").len(),
        0,
        "no polling without a bot"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_before_anything_runs() {
    use clara_telegram::{Telegram, TelegramConfig};
    let err = |config: TelegramConfig| Telegram::new(config).unwrap_err().to_string();
    assert!(err(TelegramConfig::new("")).contains("TG_BOT_TOKEN is empty"));
    assert!(err(TelegramConfig::new("not a token")).contains("does not look like"));
    let mut config = TelegramConfig::new("123:abc");
    config.api_url = "ftp://example.org".into();
    assert!(err(config.clone()).contains("TELEGRAM_API_URL"));
    config.api_url = "http://127.0.0.1:1".into();
    let shown = format!("{:?}", Telegram::new(config).unwrap());
    assert!(
        shown.contains("[redacted]") && !shown.contains("123:abc"),
        "{shown}"
    );
}

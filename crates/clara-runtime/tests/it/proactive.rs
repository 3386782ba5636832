//! Messages Clara sends first, with a clock the test moves: reminders fire at
//! their time through the send queue and are stored; recurring ones follow
//! the person's zone across daylight-saving changes; a restart before the due
//! time loses nothing and one after it delivers late, once, with a note;
//! cancelled ones stay silent; alerts wait out quiet hours; a scheduled task
//! is answered as the person's thought; two gateways on one PostgreSQL fire
//! each reminder once.

use crate::support::*;
use clara_core::schedule::{LocalTime, Tz, local_to_utc};
use clara_core::testing::{RecordingSink, streamed};
use clara_core::{ConversationId, Outbound, Role, UserId};
use clara_runtime::proactive::ProactiveConfig;
use clara_runtime::{
    Engine, ManualClock, Proactive, ProactiveDelivery, ScheduleBook, ScheduleRequest, Scheduler,
};
use clara_store::{ProactiveKind, ProactiveStatus, ScheduleKind, Store};
use clara_testkit::fake_openai::FakeReply;
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-08 09:00 in Berlin.
fn nine_berlin() -> i64 {
    local_to_utc(
        chrono::NaiveDate::from_ymd_opt(2026, 12, 8).unwrap(),
        LocalTime { hour: 9, minute: 0 },
        Tz::Europe__Berlin,
    )
}

/// Everything that fires, on one engine, with a test clock.
struct Proactives {
    clock: ManualClock,
    book: ScheduleBook,
    scheduler: Scheduler,
    delivery: ProactiveDelivery,
}

fn proactives(engine: &Engine, clock: &ManualClock) -> Proactives {
    let signals = Arc::clone(engine.proactive_signals());
    let clock_dyn: Arc<dyn clara_runtime::Clock> = Arc::new(clock.clone());
    Proactives {
        clock: clock.clone(),
        book: ScheduleBook::new(
            engine.store().clone(),
            Arc::clone(&clock_dyn),
            Arc::clone(&signals),
        ),
        scheduler: Scheduler::new(
            engine.store().clone(),
            Arc::clone(&clock_dyn),
            signals,
            ProactiveConfig::default(),
        ),
        delivery: ProactiveDelivery::new(engine.clone(), clock_dyn, ProactiveConfig::default()),
    }
}

impl Proactives {
    /// Fires and delivers what is due now.
    async fn tick(&self) -> usize {
        self.scheduler.fire_due().await.unwrap();
        self.delivery.deliver_due().await.unwrap()
    }

    async fn remind(&self, who: (UserId, ConversationId), when: &str, zone: Option<&str>) {
        self.book
            .add(ScheduleRequest {
                user: who.0,
                person: "Ann",
                conversation: who.1,
                kind: ScheduleKind::Reminder,
                when,
                text: "stretch",
                time_zone: zone,
            })
            .await
            .unwrap();
    }
}

/// Ann, after she said hello (so Clara knows her and her conversation).
async fn ann_is_known(h: &Harness) -> (UserId, ConversationId) {
    h.fake.push(FakeReply::text("Hello Ann."));
    h.say("hello", "hello").await.unwrap();
    h.settle().await;
    let store = h.engine.store();
    let user = store.find_user("test", "u-ann").await.unwrap().unwrap();
    let conversation = store.resolve_conversation(&conversation()).await.unwrap();
    (user, conversation)
}

fn reminders_sent(sink: &RecordingSink) -> Vec<String> {
    let calls = sink.calls();
    let mut texts = Vec::new();
    for call in &calls {
        if let Outbound::End { thought } = call {
            let text = sink.streamed(*thought);
            if text.contains("Reminder") || text.contains("📧") {
                texts.push(text);
            }
        }
    }
    texts
}

#[tokio::test]
async fn a_reminder_fires_at_its_time_and_is_stored() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&h.engine, &clock);
    p.remind(ann, "in 2 minutes", None).await;

    assert_eq!(p.tick().await, 0, "not due yet");
    clock.advance(Duration::from_secs(119));
    assert_eq!(p.tick().await, 0, "still not due");
    clock.advance(Duration::from_secs(1));
    assert_eq!(p.tick().await, 1);
    assert_eq!(reminders_sent(&h.sink), vec!["⏰ Reminder: stretch"]);
    // Never twice.
    clock.advance(Duration::from_secs(600));
    assert_eq!(p.tick().await, 0);
    assert_eq!(reminders_sent(&h.sink).len(), 1);

    // Stored as Clara's message, so "what was that about?" sees it.
    h.engine.shutdown().await;
    let messages = h
        .engine
        .store()
        .recent_messages(ann.1, 0, 10, 100)
        .await
        .unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert_eq!(last.content, "⏰ Reminder: stretch");
    assert!(p.book.list(Some(ann.0), false).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_next_prompt_sees_the_reminder() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&h.engine, &clock);
    p.remind(ann, "in 1 minute", None).await;
    clock.advance(Duration::from_secs(60));
    p.tick().await;
    h.fake
        .push(FakeReply::text("It was your stretch reminder."));
    h.say("what", "what was that about?").await.unwrap();
    h.settle().await;
    let request = h.fake.requests().last().cloned().unwrap().body;
    assert!(
        request.to_string().contains("⏰ Reminder: stretch"),
        "{request}"
    );
}

#[tokio::test]
async fn recurring_reminders_follow_the_zone_across_a_dst_change() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    // Saturday 2026-03-28, 12:00 in Berlin; clocks go forward on Sunday at 02:00.
    let start = local_to_utc(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 28).unwrap(),
        LocalTime {
            hour: 12,
            minute: 0,
        },
        Tz::Europe__Berlin,
    );
    let clock = ManualClock::at(start);
    let p = proactives(&h.engine, &clock);
    p.remind(ann, "every day at 9", Some("Europe/Berlin")).await;
    let schedule = p.book.list(Some(ann.0), false).await.unwrap().remove(0);
    let view = p.book.view(&schedule);
    assert_eq!(view.when, "every day at 09:00");
    // 09:00 on Sunday (CET → CEST that night) is 07:00 UTC, not 08:00.
    let sunday = local_to_utc(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
        LocalTime { hour: 9, minute: 0 },
        Tz::Europe__Berlin,
    );
    assert_eq!(schedule.next_at_ms, Some(sunday));
    assert_eq!(
        sunday - start,
        20 * 3_600_000,
        "21 wall-clock hours, one of them skipped"
    );
    clock.set(sunday);
    assert_eq!(p.tick().await, 1);
    let monday = p.book.list(Some(ann.0), false).await.unwrap()[0]
        .next_at_ms
        .unwrap();
    assert_eq!(monday - sunday, 24 * 3_600_000);
    clock.set(monday);
    assert_eq!(p.tick().await, 1);
    assert_eq!(reminders_sent(&h.sink).len(), 2);
    // The person's zone was remembered with the first schedule.
    let settings = h.engine.store().person_settings(ann.0).await.unwrap();
    assert_eq!(settings.time_zone.as_deref(), Some("Europe/Berlin"));
}

#[tokio::test]
async fn a_local_time_without_a_zone_asks_for_one() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&h.engine, &clock);
    let error = p
        .book
        .add(ScheduleRequest {
            user: ann.0,
            person: "Ann",
            conversation: ann.1,
            kind: ScheduleKind::Reminder,
            when: "tomorrow at 9",
            text: "call Mum",
            time_zone: None,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("Ann's time zone is not known"), "{error}");
}

#[tokio::test]
async fn cancelled_reminders_stay_silent() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&h.engine, &clock);
    p.remind(ann, "in 5 minutes", None).await;
    let id = p.book.list(Some(ann.0), false).await.unwrap()[0].id.short();
    let stranger = h
        .engine
        .store()
        .resolve_user("test", "u-bob", "Bob")
        .await
        .unwrap();
    assert!(p.book.cancel(Some(stranger), &id).await.is_err());
    p.book.cancel(Some(ann.0), &id[..6]).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(p.tick().await, 0);
    assert!(reminders_sent(&h.sink).is_empty());
}

#[tokio::test]
async fn a_restart_loses_nothing_and_a_missed_reminder_comes_late_once() {
    let fake = clara_testkit::fake_openai::FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(nine_berlin());
    let ann = {
        let engine = engine_on(&dir, &fake, fast_config()).await;
        let sink = RecordingSink::streaming();
        engine.attach("test", sink.clone());
        fake.push(FakeReply::text("Hi."));
        engine.submit(inbound("hello", "hello")).await.unwrap();
        engine.wait_idle(&conversation()).await;
        let store = engine.store();
        let user = store.find_user("test", "u-ann").await.unwrap().unwrap();
        let conv = store.resolve_conversation(&conversation()).await.unwrap();
        let p = proactives(&engine, &clock);
        p.remind((user, conv), "in 10 minutes", None).await;
        p.remind((user, conv), "every day at 10", Some("Europe/Berlin"))
            .await;
        // Restart before the due time.
        engine.shutdown().await;
        (user, conv)
    };
    {
        let engine = engine_on(&dir, &fake, fast_config()).await;
        let sink = RecordingSink::streaming();
        engine.attach("test", sink.clone());
        let p = proactives(&engine, &clock);
        assert_eq!(p.book.list(Some(ann.0), false).await.unwrap().len(), 2);
        clock.advance(Duration::from_secs(600));
        assert_eq!(p.tick().await, 1);
        assert_eq!(reminders_sent(&sink), vec!["⏰ Reminder: stretch"]);
        engine.shutdown().await;
    }
    // Down for three days: the daily one comes once, late, with a note.
    clock.advance(Duration::from_secs(3 * 86_400));
    let engine = engine_on(&dir, &fake, fast_config()).await;
    let sink = RecordingSink::streaming();
    engine.attach("test", sink.clone());
    let p = proactives(&engine, &clock);
    assert_eq!(p.tick().await, 1);
    assert_eq!(p.tick().await, 0);
    let sent = reminders_sent(&sink);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("(Late"), "{}", sent[0]);
    assert!(sent[0].contains("10:00"), "{}", sent[0]);
    assert!(sent[0].ends_with("⏰ Reminder: stretch"), "{}", sent[0]);
    // And the next is tomorrow's, on time.
    let next = p.book.list(Some(ann.0), false).await.unwrap()[0]
        .next_at_ms
        .unwrap();
    assert!(next > clara_runtime::Clock::now_ms(&p.clock));
}

#[tokio::test]
async fn alerts_wait_out_quiet_hours_and_reminders_do_not() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    // 23:30 in Berlin.
    let late = nine_berlin() + 14 * 3_600_000 + 30 * 60_000;
    let clock = ManualClock::at(late);
    let p = proactives(&h.engine, &clock);
    p.book.set_time_zone(ann.0, "Europe/Berlin").await.unwrap();
    p.book
        .set_alerts(ann.0, None, Some("22:00-07:00"))
        .await
        .unwrap();
    let alerts = Proactive::new(
        h.engine.store().clone(),
        Arc::clone(h.engine.proactive_signals()),
        Arc::new(clock.clone()),
    );
    assert!(
        alerts
            .alert(ann.0, ProactiveKind::Alert, "mail:1", "📧 Bob: lunch?")
            .await
            .unwrap()
    );
    assert!(
        !alerts
            .alert(ann.0, ProactiveKind::Alert, "mail:1", "📧 Bob: lunch?")
            .await
            .unwrap(),
        "the same key is queued once"
    );
    p.remind(ann, "in 1 minute", None).await;
    clock.advance(Duration::from_secs(60));
    p.tick().await;
    assert_eq!(reminders_sent(&h.sink), vec!["⏰ Reminder: stretch"]);
    let held = h.engine.store().proactive("mail:1").await.unwrap().unwrap();
    assert_eq!(held.status, ProactiveStatus::Pending);
    // 07:00 next morning: the alert goes.
    clock.set(late + 7 * 3_600_000 + 30 * 60_000);
    p.tick().await;
    assert_eq!(
        reminders_sent(&h.sink),
        vec!["⏰ Reminder: stretch", "📧 Bob: lunch?"]
    );
    let sent = h.engine.store().proactive("mail:1").await.unwrap().unwrap();
    assert_eq!(sent.status, ProactiveStatus::Sent);
}

#[tokio::test]
async fn a_scheduled_task_is_answered_as_the_persons_thought() {
    let h = Harness::start(fast_config()).await;
    let ann = ann_is_known(&h).await;
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&h.engine, &clock);
    p.book
        .add(ScheduleRequest {
            user: ann.0,
            person: "Ann",
            conversation: ann.1,
            kind: ScheduleKind::Task,
            when: "in 5 minutes",
            text: "Tell me a fact about otters.",
            time_zone: None,
        })
        .await
        .unwrap();
    clock.advance(Duration::from_secs(300));
    h.fake
        .push(FakeReply::text("Otters hold hands while they sleep."));
    p.tick().await;
    h.settle().await;
    let calls = h.sink.calls();
    assert!(streamed(&calls).contains("Otters hold hands"), "{calls:?}");
    let request = h.fake.requests().last().cloned().unwrap().body.to_string();
    assert!(request.contains("Scheduled task: Tell me a fact about otters."));
    h.engine.shutdown().await;
    let messages = h
        .engine
        .store()
        .recent_messages(ann.1, 0, 10, 100)
        .await
        .unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 2].role, Role::User);
    assert!(messages[n - 2].content.contains("Scheduled task"));
    assert_eq!(
        messages[n - 1].content,
        "Otters hold hands while they sleep."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_postgres_fire_each_reminder_once() {
    let schema = crate::support::postgres_schema().await;
    let fake = clara_testkit::fake_openai::FakeOpenAi::start().await;
    let provider = || {
        let llm = clara_llm::OpenAiCompatibleConfig::new(fake.base_url(), "fake-model");
        Arc::new(clara_llm::OpenAiCompatible::new(llm).unwrap())
    };
    let store_a = Store::open_url(&schema.url).await.unwrap();
    let store_b = Store::open_url(&schema.url).await.unwrap();
    let a = Engine::new(fast_config(), store_a, provider());
    let b = Engine::new(fast_config(), store_b, provider());
    let (sink_a, sink_b) = (RecordingSink::streaming(), RecordingSink::streaming());
    a.attach("test", sink_a.clone());
    b.attach("test", sink_b.clone());
    fake.push(FakeReply::text("Hi."));
    a.submit(inbound("hello", "hello")).await.unwrap();
    a.wait_idle(&conversation()).await;
    let user = a.store().find_user("test", "u-ann").await.unwrap().unwrap();
    let conv = a
        .store()
        .resolve_conversation(&conversation())
        .await
        .unwrap();
    let clock = ManualClock::at(nine_berlin());
    let (pa, pb) = (proactives(&a, &clock), proactives(&b, &clock));
    for i in 1..=10 {
        pa.remind((user, conv), &format!("in {i} minutes"), None)
            .await;
    }
    for _ in 0..10 {
        clock.advance(Duration::from_secs(60));
        tokio::join!(pa.tick(), pb.tick());
    }
    let total = reminders_sent(&sink_a).len() + reminders_sent(&sink_b).len();
    assert_eq!(total, 10, "each of ten reminders delivered exactly once");
    a.shutdown().await;
    b.shutdown().await;
}

/// The whole path with the real Telegram adapter and a scripted model: the
/// person asks, the model calls `schedule__remind`, and two minutes later
/// (by the test's clock) the reminder arrives in their Telegram chat and is
/// stored in the conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remind_me_in_two_minutes_over_telegram() {
    use clara_telegram::{Telegram, TelegramConfig};
    use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser, UserMessage};
    use clara_tools::ToolRegistry;

    let tg = FakeTelegram::start().await;
    let fake = clara_testkit::fake_openai::FakeOpenAi::start().await;
    fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "schedule__remind".into(),
            r#"{"text":"stretch","when":"in 2 minutes"}"#.into(),
        )],
        fragmented: false,
    });
    fake.push(FakeReply::text("I'll remind you in 2 minutes."));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
    let provider = Arc::new(
        clara_llm::OpenAiCompatible::new(clara_llm::OpenAiCompatibleConfig::new(
            fake.base_url(),
            "fake-model",
        ))
        .unwrap(),
    );
    let registry = ToolRegistry::default();
    let engine = Engine::with_tools(fast_config(), store.clone(), provider, registry.clone());
    let clock = ManualClock::at(nine_berlin());
    let p = proactives(&engine, &clock);
    registry
        .add_provider(Arc::new(clara_runtime::ScheduleTools::new(p.book.clone())))
        .await
        .unwrap();

    let telegram = Telegram::new(TelegramConfig {
        api_url: tg.api_url(),
        poll_timeout: Duration::from_secs(2),
        ..TelegramConfig::new(tg.token())
    })
    .unwrap();
    engine.attach("telegram", telegram.sink());
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(telegram.run(Arc::new(engine.clone()), stop.clone()));

    let ann = FakeUser::new(42, "Ann");
    let chat = FakeChat::private(&ann);
    tg.send(UserMessage::text(
        &chat,
        &ann,
        "remind me in 2 minutes to stretch",
    ));
    tg.wait_for("the confirmation", |t| {
        t.bot_messages(chat.id)
            .iter()
            .any(|m| m.text.contains("I'll remind you"))
    })
    .await;
    let call = fake.requests()[1].body.to_string();
    assert!(call.contains("\\\"scheduled\\\""), "{call}");

    clock.advance(Duration::from_secs(119));
    assert_eq!(p.tick().await, 0);
    clock.advance(Duration::from_secs(1));
    assert_eq!(p.tick().await, 1);
    tg.wait_for("the reminder", |t| {
        t.bot_messages(chat.id)
            .iter()
            .any(|m| m.text == "⏰ Reminder: stretch")
    })
    .await;

    stop.cancel();
    running.await.unwrap().unwrap();
    engine.shutdown().await;
    let conv = store
        .resolve_conversation(&clara_core::ConversationRef {
            platform: "telegram".into(),
            channel: chat.id.to_string(),
            kind: clara_core::ChannelKind::Direct,
        })
        .await
        .unwrap();
    let messages = store.recent_messages(conv, 0, 10, 100).await.unwrap();
    assert_eq!(messages.last().unwrap().content, "⏰ Reminder: stretch");
}

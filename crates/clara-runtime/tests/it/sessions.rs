//! Sessions end when idle, are summarised by the model as durable jobs, and the
//! summary opens the next session's context; history survives a restart.

use crate::support::*;
use clara_runtime::SessionKeeper;
use clara_runtime::clock::now_ms;
use clara_testkit::fake_openai::FakeReply;
use std::time::Duration;

const SUMMARY: &str = "The person just moved to Oslo and likes tea.";

fn short_sessions() -> clara_runtime::EngineConfig {
    let mut config = fast_config();
    config.session_idle = Duration::from_millis(400);
    config
}

/// A conversation where `text` was said and answered, and the session has since
/// gone idle.
async fn idle_after(text: &str) -> Harness {
    let h = Harness::start(short_sessions()).await;
    h.say("1", text).await.unwrap();
    h.sink.wait_until("an answer", |c| ends(c) == 1).await;
    h.settle().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    h
}

#[tokio::test]
async fn an_idle_session_is_summarised_and_the_summary_opens_the_next() {
    let h = idle_after("I just moved to Oslo.").await;

    h.fake.push(FakeReply::text(SUMMARY));
    let keeper = SessionKeeper::new(h.engine.clone());
    let pass = keeper.pass(now_ms()).await.unwrap();
    assert_eq!((pass.ended, pass.summarised, pass.failed), (1, 1, 0));
    let summary_request = &h.fake.requests()[1];
    assert!(
        summary_request
            .last_user_text()
            .unwrap()
            .contains("Clara: You said: I just moved to Oslo.")
    );

    let store = h.engine.store();
    let conv = store.resolve_conversation(&conversation()).await.unwrap();
    assert_eq!(
        store.last_summary(conv).await.unwrap().unwrap().summary,
        SUMMARY
    );

    h.say("2", "where do I live?").await.unwrap();
    h.sink.wait_until("a second answer", |c| ends(c) == 2).await;
    let system = h.fake.requests()[2].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains(SUMMARY),
        "summary in the new session's prompt: {system}"
    );
    // Nothing more is owed.
    assert_eq!(keeper.pass(now_ms()).await.unwrap().summarised, 0);
}

#[tokio::test]
async fn a_message_after_the_idle_time_starts_a_new_session_itself() {
    let h = idle_after("I just moved to Oslo.").await;

    // No keeper pass ran: the actor notices the idle session on the next message.
    h.say("2", "hello again.").await.unwrap();
    h.sink.wait_until("a second answer", |c| ends(c) == 2).await;
    h.settle().await;
    let store = h.engine.store();
    // Accepted messages are committed by the group-commit writer; wait for it.
    store.writer().flush().await.unwrap();
    let conv = store.resolve_conversation(&conversation()).await.unwrap();
    let current = store.current_session(conv).await.unwrap().unwrap();
    let in_new: Vec<_> = store
        .session_messages(current.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(in_new, vec!["hello again.", "You said: hello again."]);

    // The ended session's summary was queued as a job, and the keeper writes it.
    h.fake.push(FakeReply::text(SUMMARY));
    let pass = SessionKeeper::new(h.engine.clone())
        .pass(now_ms())
        .await
        .unwrap();
    assert_eq!(pass.summarised, 1);
    h.say("3", "where do I live?").await.unwrap();
    h.sink.wait_until("a third answer", |c| ends(c) == 3).await;
    let last = h.fake.requests().pop().unwrap();
    assert!(
        last.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains(SUMMARY)
    );
}

#[tokio::test]
async fn a_failed_summary_is_retried_later_and_not_lost() {
    let h = idle_after("remember: my cat is Miso.").await;

    h.fake.push(FakeReply::Error {
        status: 400,
        message: "bad request".into(),
        retry_after: None,
    });
    let keeper = SessionKeeper::new(h.engine.clone());
    let pass = keeper.pass(now_ms()).await.unwrap();
    assert_eq!((pass.ended, pass.summarised, pass.failed), (1, 0, 1));
    // Not due yet: the retry waits for its backoff.
    assert_eq!(keeper.pass(now_ms()).await.unwrap().summarised, 0);
    h.fake.push(FakeReply::text(SUMMARY));
    let later = now_ms() + 60_000;
    assert_eq!(keeper.pass(later).await.unwrap().summarised, 1);
}

#[tokio::test]
async fn history_survives_a_restart() {
    let fake = clara_testkit::fake_openai::FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine_on(&dir, &fake, fast_config()).await;
        let sink = RecordingSink::streaming();
        engine.attach("test", sink.clone());
        engine
            .submit(inbound("1", "my name is Ann and I like tea."))
            .await
            .unwrap();
        sink.wait_until("an answer", |c| ends(c) == 1).await;
        engine.shutdown().await;
        engine.store().close().await;
    }
    let engine = engine_on(&dir, &fake, fast_config()).await;
    let sink = RecordingSink::streaming();
    engine.attach("test", sink.clone());
    // The platform redelivers the old event after the restart: it is not answered again.
    engine
        .submit(inbound("1", "my name is Ann and I like tea."))
        .await
        .unwrap();
    engine
        .submit(inbound("2", "what do I like?"))
        .await
        .unwrap();
    sink.wait_until("an answer", |c| ends(c) == 1).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1].body["messages"].as_array().unwrap().clone();
    let contents: Vec<_> = messages[1..]
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        contents,
        vec![
            ("user", "my name is Ann and I like tea."),
            ("assistant", "You said: my name is Ann and I like tea."),
            ("user", "what do I like?"),
        ]
    );
}

#[tokio::test]
async fn a_fresh_start_hides_earlier_messages_from_the_model_even_after_a_restart() {
    let fake = clara_testkit::fake_openai::FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = engine_on(&dir, &fake, fast_config()).await;
        let sink = RecordingSink::streaming();
        engine.attach("test", sink.clone());
        engine
            .submit(inbound("1", "my secret plan is to learn Welsh."))
            .await
            .unwrap();
        sink.wait_until("an answer", |c| ends(c) == 1).await;
        engine.new_session(&conversation(), &ann()).await.unwrap();
        // The ended session's summary is owed as a durable job.
        let store = engine.store();
        let conv = store.resolve_conversation(&conversation()).await.unwrap();
        let sessions = store.sessions_of(conv, 10).await.unwrap();
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert!(sessions[0].ended_at_ms.is_none() && sessions[1].ended_at_ms.is_some());
        let owed = store.job_counts().await.unwrap();
        assert!(
            owed.iter()
                .any(|(kind, _, n)| kind == "summarize_session" && *n == 1),
            "{owed:?}"
        );

        engine.submit(inbound("2", "hello")).await.unwrap();
        sink.wait_until("a second answer", |c| ends(c) == 2).await;
        engine.shutdown().await;
        engine.store().close().await;
    }
    let engine = engine_on(&dir, &fake, fast_config()).await;
    let sink = RecordingSink::streaming();
    engine.attach("test", sink.clone());
    engine
        .submit(inbound("3", "what is my plan?"))
        .await
        .unwrap();
    sink.wait_until("an answer", |c| ends(c) == 1).await;
    let requests = fake.requests();
    for (i, request) in requests[1..].iter().enumerate() {
        let text = request.body["messages"].to_string();
        assert!(
            !text.contains("Welsh"),
            "request {} still sees the old session: {text}",
            i + 1
        );
    }
    let last: Vec<_> = requests[2].body["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(last, vec!["hello", "You said: hello", "what is my plan?"]);
}

#[tokio::test]
async fn a_reply_chain_reaches_the_model_as_quoted_context() {
    let h = Harness::start(fast_config()).await;
    let mut message = inbound("1", "and in Celsius?");
    message.replying_to = vec![
        clara_core::Quoted {
            author: "Bob".into(),
            text: "It is 451 Fahrenheit.".into(),
            from_clara: false,
        },
        clara_core::Quoted {
            author: "Clara".into(),
            text: "That is hot.".into(),
            from_clara: true,
        },
    ];
    h.engine.submit(message).await.unwrap();
    h.sink.wait_until("an answer", |c| ends(c) == 1).await;
    let asked = h.fake.requests()[0].last_user_text().unwrap().to_owned();
    assert!(asked.contains("> Bob: It is 451 Fahrenheit."), "{asked}");
    assert!(asked.contains("> you (Clara): That is hot."), "{asked}");
    assert!(asked.ends_with("and in Celsius?"), "{asked}");
}

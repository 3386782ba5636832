//! The Redis queue on a real Redis server, in one process: an engine whose
//! replies run on a worker, event ids claimed once across gateways, a malformed
//! job dropped without stopping the worker, and a thought answered once even
//! when it is queued twice. (The gateway and workers as separate processes,
//! with a worker killed mid-reply, are tested in `crates/clara/tests/it/distributed.rs`.)

use crate::support::{Harness, RecordingSink, ends, fast_config};
use clara_core::pacing::DeliveryMode;
use clara_core::{ChannelKind, ConversationRef, EventId, Outbound, Thought, ThoughtId};
use clara_llm::ChatRequest;
use clara_runtime::brain::ReplyJob;
use clara_runtime::queue::SeenEvents;
use clara_runtime::queue::redis::{
    Envelope, RedisConfig, RedisQueue, RedisSeenEvents, Step, Worker, WorkerConfig, WorkerEvent,
    decode,
};
use clara_testkit::fake_openai::FakeReply;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn redis_url() -> String {
    std::env::var("CLARA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Settings on a key prefix of this test's own, after checking Redis is there.
async fn config() -> RedisConfig {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await;
    assert!(
        matches!(reachable, Ok(Ok(_))),
        "Redis is not reachable at {url}; this test needs it: start it with \
         `scripts/services.sh`, or point CLARA_TEST_REDIS_URL at a running server"
    );
    let mut config = RedisConfig::new(url);
    config.prefix = format!("clara-test-{}", uuid::Uuid::new_v4().simple());
    config.claim_idle = Duration::from_millis(600);
    config
}

async fn conn(config: &RedisConfig) -> redis::aio::MultiplexedConnection {
    redis::Client::open(config.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn clean(config: &RedisConfig) {
    let mut c = conn(config).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", config.prefix))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

/// A worker answering with the harness engine's brain until `stop`; the handle
/// ends when it has stopped.
async fn start_worker(
    h: &Harness,
    config: &RedisConfig,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let worker = Worker::connect(
        h.engine.brain(),
        WorkerConfig {
            redis: config.clone(),
            name: "w1".into(),
            concurrency: 4,
        },
    )
    .await
    .unwrap();
    tokio::spawn(worker.run(stop.clone()))
}

/// An engine whose replies go through Redis to an in-process worker.
async fn distributed(sink: Arc<RecordingSink>) -> (Harness, RedisConfig, CancellationToken) {
    let h = Harness::with_sink(fast_config(), sink).await;
    let config = config().await;
    let stop = CancellationToken::new();
    let queue = RedisQueue::connect(config.clone(), stop.clone())
        .await
        .unwrap();
    h.engine.set_reply_queue(Arc::new(queue));
    start_worker(&h, &config, &stop).await;
    (h, config, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_stream_back_from_a_worker() {
    let (h, config, stop) = distributed(RecordingSink::streaming()).await;
    h.fake.set_default(FakeReply::Stream {
        chunks: vec!["Hello".into(), " from".into(), " a worker".into()],
        delay: Duration::from_millis(20),
    });
    h.say("e1", "hi").await.unwrap();
    let calls = h.sink.wait_until("the answer", |c| ends(c) == 1).await;
    let deltas: Vec<&str> = calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Delta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas.concat(), "Hello from a worker");
    assert!(deltas.len() >= 2, "streamed, not in one piece: {deltas:?}");
    h.settle().await;
    // The gateway's reply stream expires if the gateway goes away.
    let mut c = conn(&config).await;
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:replies:*", config.prefix))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(streams.len(), 1, "{streams:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&streams[0])
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0, "{ttl}");
    stop.cancel();
    clean(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editing_platform_gets_one_message_grown_by_edits() {
    let sink = RecordingSink::new(
        DeliveryMode::Edits {
            cooldown: Duration::from_millis(30),
        },
        4096,
    );
    let (h, config, stop) = distributed(sink).await;
    h.fake.set_default(FakeReply::Stream {
        chunks: vec!["One".into(), " two".into(), " three".into()],
        delay: Duration::from_millis(50),
    });
    h.say("e1", "count").await.unwrap();
    let calls = h.sink.wait_until("the answer", |c| ends(c) == 1).await;
    let sends = calls
        .iter()
        .filter(|c| matches!(c, Outbound::Send { .. }))
        .count();
    let last_edit = calls.iter().rev().find_map(|c| match c {
        Outbound::Edit { text, .. } => Some(text.clone()),
        _ => None,
    });
    assert_eq!(sends, 1, "{calls:#?}");
    assert_eq!(last_edit.as_deref(), Some("One two three"), "{calls:#?}");
    stop.cancel();
    clean(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_is_taken_once_across_gateways() {
    let config = config().await;
    let first = RedisSeenEvents::connect(config.clone()).await.unwrap();
    let second = RedisSeenEvents::connect(config.clone()).await.unwrap();
    let room = |channel: &str| ConversationRef {
        platform: "telegram".into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    };
    let event = EventId::from("update-1");
    assert!(first.first_time(&room("a"), &event).await);
    assert!(!second.first_time(&room("a"), &event).await);
    assert!(!first.first_time(&room("a"), &event).await);
    assert!(
        second.first_time(&room("b"), &event).await,
        "ids are per chat"
    );
    let mut c = conn(&config).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}:event:telegram:a:update-1", config.prefix))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0, "remembered for a while, not forever: {ttl}");
    clean(&config).await;
}

/// A job as a gateway would queue it, replying to `reply_to`.
fn envelope(thought: &Thought, reply_to: &str) -> String {
    serde_json::to_string(&Envelope {
        reply_to: reply_to.into(),
        job: ReplyJob {
            thought: thought.clone(),
            request: ChatRequest::new(vec![clara_core::ChatMessage::text(
                clara_core::Role::User,
                thought.text(),
            )]),
            tools: None,
            recall: None,
        },
    })
    .unwrap()
}

fn thought(text: &str) -> Thought {
    let inbound = crate::support::inbound("x", text);
    Thought {
        id: ThoughtId::new(),
        conversation: inbound.conversation,
        author: inbound.author,
        parts: vec![text.into()],
        images: Vec::new(),
        events: Vec::new(),
        tier: None,
    }
}

async fn add(config: &RedisConfig, json: &str) {
    let mut c = conn(config).await;
    let _: String = redis::cmd("XADD")
        .arg(format!("{}:thoughts", config.prefix))
        .arg("*")
        .arg("v")
        .arg(json)
        .query_async(&mut c)
        .await
        .unwrap();
}

/// Every step on a reply stream so far.
async fn steps(config: &RedisConfig, stream: &str) -> Vec<WorkerEvent> {
    let mut c = conn(config).await;
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    reply.ids.iter().map(|e| decode(e).unwrap()).collect()
}

/// Whether the workers' group has read every entry and acknowledged it.
async fn all_acknowledged(config: &RedisConfig) -> bool {
    let mut c = conn(config).await;
    let info: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("{}:thoughts", config.prefix))
        .query_async(&mut c)
        .await
        .unwrap();
    let group = &info.groups[0];
    group.pending == 0 && group.lag == Some(0)
}

async fn wait_for_finished(config: &RedisConfig, stream: &str, n: usize) -> Vec<WorkerEvent> {
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    loop {
        let steps = steps(config, stream).await;
        let finished = steps
            .iter()
            .filter(|e| matches!(e.step, Step::Finished { .. }))
            .count();
        if finished >= n {
            return steps;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer on {stream}: {steps:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_job_is_dropped_and_a_thought_queued_twice_is_answered_once() {
    let h = Harness::start(fast_config()).await;
    let config = config().await;
    let stop = CancellationToken::new();
    start_worker(&h, &config, &stop).await;
    let replies = format!("{}:replies:test", config.prefix);

    add(&config, "{not json").await;
    let t = thought("hello");
    add(&config, &envelope(&t, &replies)).await;
    let answered = wait_for_finished(&config, &replies, 1).await;
    let text: String = answered
        .iter()
        .filter_map(|e| match &e.step {
            Step::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "You said: hello");
    assert!(answered.iter().all(|e| e.thought == t.id));

    // The same thought again (a gateway queuing it twice): already answered.
    add(&config, &envelope(&t, &replies)).await;
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while !all_acknowledged(&config).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every entry is read and acknowledged, the bad one too"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        steps(&config, &replies).await.len(),
        answered.len(),
        "nothing more was sent"
    );
    assert_eq!(h.fake.request_count(), 1, "one model call");
    stop.cancel();
    clean(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_finishes_what_it_holds_then_leaves_the_group() {
    let h = Harness::start(fast_config()).await;
    let config = config().await;
    let gateway_stop = CancellationToken::new();
    let queue = RedisQueue::connect(config.clone(), gateway_stop.clone())
        .await
        .unwrap();
    h.engine.set_reply_queue(Arc::new(queue));
    let worker_stop = CancellationToken::new();
    let worker = start_worker(&h, &config, &worker_stop).await;
    h.fake.set_default(FakeReply::Stream {
        chunks: vec!["Still".into(), " here".into(), " to the end".into()],
        delay: Duration::from_millis(150),
    });
    h.say("e1", "hi").await.unwrap();
    h.sink
        .wait_until("the answer to start", |c| {
            c.iter().any(|o| matches!(o, Outbound::Delta { .. }))
        })
        .await;
    // SIGTERM, as it were, in the middle of the reply.
    worker_stop.cancel();
    let calls = h
        .sink
        .wait_until("the whole answer", |c| ends(c) == 1)
        .await;
    let text: String = calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Delta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Still here to the end");
    tokio::time::timeout(crate::support::WAIT, worker)
        .await
        .expect("the worker stops once its reply is done")
        .unwrap();
    let mut c = conn(&config).await;
    let consumers: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{}:thoughts", config.prefix))
        .arg("workers")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(consumers.is_empty(), "it left the group: {consumers:?}");
    gateway_stop.cancel();
    clean(&config).await;
}

/// A gateway-side asker that answers every question with `verdict` and
/// records what it was asked.
struct Owner {
    verdict: clara_core::approval::Verdict,
    asked: parking_lot::Mutex<Vec<clara_runtime::approvals::Question>>,
}

#[async_trait::async_trait]
impl clara_runtime::approvals::Asker for Owner {
    async fn ask(
        &self,
        question: clara_runtime::approvals::Question,
    ) -> clara_runtime::approvals::Answer {
        self.asked.lock().push(question);
        clara_runtime::approvals::Answer::Given {
            verdict: self.verdict,
            by: "telegram:42".into(),
        }
    }
}

#[tokio::test]
async fn a_workers_question_reaches_the_owner_through_the_gateway() {
    use clara_runtime::approvals::{Answer, Asker, Question};
    use clara_runtime::queue::redis::{RedisAsker, serve_asks};
    let config = config().await;
    let owner = Arc::new(Owner {
        verdict: clara_core::approval::Verdict::Once,
        asked: parking_lot::Mutex::new(Vec::new()),
    });
    let stop = CancellationToken::new();
    let served = tokio::spawn(serve_asks(config.clone(), owner.clone(), stop.clone()));
    let asker = RedisAsker::new(config.clone(), Duration::from_secs(5)).unwrap();
    let question = Question {
        tool: "mail__send".into(),
        arguments: r#"{"to":"bob"}"#.into(),
        reason: "It sends.".into(),
        asked_for: "Ann".into(),
    };
    let answer = asker.ask(question).await;
    assert_eq!(
        answer,
        Answer::Given {
            verdict: clara_core::approval::Verdict::Once,
            by: "telegram:42".into()
        }
    );
    assert_eq!(owner.asked.lock()[0].tool, "mail__send");
    stop.cancel();
    served.await.unwrap().unwrap();

    // With no gateway serving questions, the worker's wait ends in a deny.
    let lonely = RedisAsker::new(config.clone(), Duration::from_millis(10)).unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        lonely.ask(Question {
            tool: "mail__send".into(),
            arguments: "{}".into(),
            reason: String::new(),
            asked_for: String::new(),
        }),
    )
    .await
    .expect("the wait is bounded");
    assert!(matches!(answer, Answer::Unreachable { .. }), "{answer:?}");
    clean(&config).await;
}

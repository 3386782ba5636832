//! The distributed deployment end to end: `clara gateway` and `clara worker`s
//! as separate processes on the real Redis and PostgreSQL, an adapter connected
//! over the gateway protocol. Streaming, burst chunking, cancellation across
//! processes, and a worker killed with SIGKILL mid-reply: every thought is
//! answered exactly once.

use crate::common::pg::{drop_schema, fresh_schema};
use crate::common::{clara, free_port, wait_ready, with_fake};
use clara_core::pacing::DeliveryMode;
use clara_core::port::{Accepted, Assistant};
use clara_core::testing::RecordingSink;
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound, Outbound, ThoughtId};
use clara_protocol::GatewaySecret;
use clara_protocol::client::{ClientConfig, RemoteAssistant};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Child;

const GATEWAY_SECRET: &str = "distributed-s3cret";
const PLATFORM: &str = "remote";

/// What the adapter's side saw: every platform call with its conversation.
type Screen = RecordingSink;

/// What one channel saw, per thought.
#[derive(Debug, Default)]
struct Seen {
    /// Text streamed per thought, in order of first appearance.
    text: BTreeMap<String, String>,
    ends: HashMap<String, usize>,
    cancelled: Vec<String>,
    errors: Vec<String>,
    order: Vec<String>,
}

/// The screen, read per channel.
trait ScreenView {
    fn channel(&self, channel: &str) -> Seen;
    fn deltas(&self) -> usize;
    fn ends(&self) -> usize;
    /// Every call with its channel.
    fn on_channels(&self) -> Vec<(String, Outbound)>;
}

impl ScreenView for Screen {
    fn on_channels(&self) -> Vec<(String, Outbound)> {
        self.calls_with_conversations()
            .into_iter()
            .map(|(c, call)| (c.channel, call))
            .collect()
    }

    fn channel(&self, channel: &str) -> Seen {
        let mut seen = Seen::default();
        for (c, call) in &self.on_channels() {
            if c != channel {
                continue;
            }
            let id = |t: &ThoughtId| t.to_string();
            match call {
                Outbound::Delta { thought, text } => {
                    if !seen.text.contains_key(&id(thought)) {
                        seen.order.push(id(thought));
                    }
                    seen.text.entry(id(thought)).or_default().push_str(text);
                }
                Outbound::End { thought } => *seen.ends.entry(id(thought)).or_default() += 1,
                Outbound::Cancelled { thought } => seen.cancelled.push(id(thought)),
                Outbound::Error { message, .. } => seen.errors.push(message.clone()),
                _ => {}
            }
        }
        seen
    }

    fn deltas(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Outbound::Delta { .. }))
            .count()
    }

    fn ends(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| matches!(c, Outbound::End { .. }))
            .count()
    }
}

/// A gateway, its workers and an adapter, on a fresh PostgreSQL schema and a
/// fresh Redis key prefix.
struct Deployment {
    llm: FakeOpenAi,
    dir: tempfile::TempDir,
    schema: String,
    pg_url: String,
    prefix: String,
    gateway: Option<Child>,
    workers: Vec<Child>,
    remote: Option<RemoteAssistant>,
    screen: Arc<Screen>,
    env: Vec<(String, String)>,
}

fn redis_url() -> String {
    std::env::var("CLARA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).unwrap();
    match tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Ok(Ok(c)) => c,
        other => panic!(
            "Redis is not reachable at {url} ({other:?}); this test needs it: start it with \
             `scripts/services.sh`, or point CLARA_TEST_REDIS_URL at a running server"
        ),
    }
}

impl Deployment {
    async fn start(workers: usize, reply: FakeReply) -> Self {
        Self::start_with(workers, reply, &[]).await
    }

    /// Started with `extra` settings on top of the defaults (later ones win).
    async fn start_with(workers: usize, reply: FakeReply, extra: &[(&str, &str)]) -> Self {
        redis().await;
        let llm = FakeOpenAi::start().await;
        llm.set_default(reply);
        let (schema, pg_url) = fresh_schema().await;
        // Where the pgvector extension lives, next to the schema.
        let pg_url = pg_url.replace(
            &format!("search_path%3D{schema}"),
            &format!("search_path%3D{schema},public"),
        );
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("clara-test-{}", uuid::Uuid::new_v4().simple());
        let env = vec![
            ("DATABASE_URL".to_owned(), pg_url.clone()),
            ("REDIS_URL".to_owned(), redis_url()),
            ("CLARA_QUEUE__PREFIX".to_owned(), prefix.clone()),
            ("CLARA_QUEUE__CLAIM_IDLE_MS".to_owned(), "1500".to_owned()),
            ("CLARA_MEMORY__ENABLED".to_owned(), "false".to_owned()),
            ("CLARA_CHAT__QUIET_MS".to_owned(), "400".to_owned()),
            (
                "CLARA_CHAT__QUIET_WHEN_COMPLETE_MS".to_owned(),
                "400".to_owned(),
            ),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ]
        .into_iter()
        .chain(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect::<Vec<_>>();
        let port = free_port();
        let mut d = Self {
            llm,
            dir,
            schema,
            pg_url,
            prefix,
            gateway: None,
            workers: Vec::new(),
            remote: None,
            screen: RecordingSink::new(DeliveryMode::Stream, 10_000),
            env,
        };
        let mut cmd = d.command("gateway");
        cmd.env("CLARA_GATEWAY_PORT", port.to_string())
            .env("CLARA_GATEWAY_SECRET", GATEWAY_SECRET)
            .arg("gateway");
        d.gateway = Some(cmd.spawn().unwrap());
        if tokio::spawn(wait_ready(port)).await.is_err() {
            panic!("the gateway did not come up{}", d.logs());
        }
        for _ in 0..workers {
            d.add_worker().await;
        }
        let remote = RemoteAssistant::spawn(
            ClientConfig::new(format!("ws://127.0.0.1:{port}/gateway"), PLATFORM)
                .with_secret(GatewaySecret::new(GATEWAY_SECRET)),
            d.screen.clone(),
        );
        assert!(remote.wait_connected(Duration::from_secs(30)).await);
        d.remote = Some(remote);
        d
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// `clara` with this deployment's settings, its log in `<name>.log`.
    fn command(&self, name: &str) -> tokio::process::Command {
        let data = self.dir.path().join(format!("data-{name}"));
        let mut cmd = clara(&data, self.dir.path());
        with_fake(&mut cmd, &self.llm);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stderr(std::fs::File::create(self.log_path(name)).unwrap())
            .stdout(std::process::Stdio::null());
        cmd
    }

    async fn add_worker(&mut self) {
        let name = format!("worker{}", self.workers.len());
        let mut cmd = self.command(&name);
        cmd.args(["worker", "--name", &name, "--concurrency", "16"]);
        self.workers.push(cmd.spawn().unwrap());
        let log = self.log_path(&name);
        wait_for(Duration::from_secs(60), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("worker ready"))
        })
        .await
        .unwrap_or_else(|()| panic!("{name} did not start: {}", read(&log)));
    }

    async fn say(&self, channel: &str, event: &str, text: &str) {
        assert_eq!(
            self.submit(channel, event, text).await,
            Ok(Accepted::Queued)
        );
    }

    async fn submit(
        &self,
        channel: &str,
        event: &str,
        text: &str,
    ) -> Result<Accepted, clara_core::port::IngressError> {
        self.submit_as(channel, &format!("user-{channel}"), event, text)
            .await
    }

    async fn submit_as(
        &self,
        channel: &str,
        user: &str,
        event: &str,
        text: &str,
    ) -> Result<Accepted, clara_core::port::IngressError> {
        let inbound = Inbound {
            event_id: EventId::from(event),
            conversation: conversation(channel),
            author: Author {
                platform_user_id: user.into(),
                display_name: user.into(),
            },
            text: text.into(),
            sent_at_ms: 0,
            tier: None,
            images: Vec::new(),
            files: Vec::new(),
            replying_to: Vec::new(),
        };
        self.remote.as_ref().unwrap().submit(inbound).await
    }

    /// Every process's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                out.push_str(&format!("\n--- {} ---\n{}", path.display(), read(&path)));
            }
        }
        out
    }

    /// Waits until `done` holds of the screen, or fails with the logs.
    async fn until(&self, what: &str, secs: u64, done: impl Fn(&Screen) -> bool) {
        if wait_for(Duration::from_secs(secs), || done(&self.screen))
            .await
            .is_err()
        {
            panic!(
                "timed out waiting for {what}; calls: {:#?}{}",
                self.screen.on_channels(),
                self.logs()
            );
        }
    }

    /// Assistant messages stored per channel: (content, status).
    async fn stored_replies(&self) -> HashMap<String, Vec<(String, String)>> {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(&self.pg_url).await.unwrap();
        let rows = sqlx::query(
            "SELECT c.channel, m.content, m.status FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.role = 'assistant' ORDER BY m.created_at_ms, m.seq",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for row in rows {
            out.entry(row.get::<String, _>(0))
                .or_default()
                .push((row.get(1), row.get(2)));
        }
        out
    }

    async fn stop(mut self) {
        if let Some(remote) = &self.remote {
            remote.close();
        }
        for w in &mut self.workers {
            let _ = w.start_kill();
        }
        if let Some(g) = self.gateway.take() {
            let out = crate::common::terminate(g).await;
            assert!(out.status.success(), "{}", self.logs());
        }
        let logs = self.logs();
        assert!(
            !logs.contains(GATEWAY_SECRET),
            "the gateway secret is never logged"
        );
        assert!(
            !logs.contains(crate::common::SECRET),
            "the API key is never logged"
        );
        drop_schema(&self.schema).await;
        let mut r = redis().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut r)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut r)
                .await
                .unwrap();
        }
    }
}

fn conversation(channel: &str) -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

fn kill9(child: &Child) {
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_two_workers_stream_merge_bursts_and_cancel_across_processes() {
    let d = Deployment::start(
        2,
        FakeReply::PacedEcho {
            delay: Duration::from_millis(80),
        },
    )
    .await;

    // Streaming: the answer arrives in several deltas, then one end.
    d.say("streaming", "s-1", "hello over redis").await;
    d.until("the streamed answer", 30, |s| {
        !s.channel("streaming").ends.is_empty()
    })
    .await;
    let seen = d.screen.channel("streaming");
    assert_eq!(seen.text.len(), 1, "{seen:?}");
    assert_eq!(
        seen.text.values().next().unwrap(),
        "You said: hello over redis"
    );
    let deltas = d
        .screen
        .on_channels()
        .iter()
        .filter(|(c, o)| c == "streaming" && matches!(o, Outbound::Delta { .. }))
        .count();
    assert!(deltas >= 3, "streamed in parts, got {deltas} deltas");

    // A burst: three quick messages are one thought, answered once.
    let before = d.llm.request_count();
    for (i, word) in ["one", "two", "three"].iter().enumerate() {
        d.say("burst", &format!("b-{i}"), word).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    d.until("the burst's answer", 30, |s| {
        !s.channel("burst").ends.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = d.screen.channel("burst");
    assert_eq!(seen.ends.len(), 1, "one answer for the burst: {seen:?}");
    let answer = seen.text.values().next().unwrap();
    for word in ["one", "two", "three"] {
        assert!(answer.contains(word), "{answer}");
    }
    assert_eq!(d.llm.request_count() - before, 1, "one model call");

    // Cancellation across processes: a new message while the answer streams
    // from a worker stops that worker's model call; one answer covers both.
    let dropped = d.llm.dropped_streams();
    d.say(
        "cancel",
        "c-1",
        "tell me a long story about the sea and the ships and the sailors",
    )
    .await;
    d.until("the first answer to start", 30, |s| {
        !s.channel("cancel").text.is_empty()
    })
    .await;
    d.say("cancel", "c-2", "actually, about mountains").await;
    d.until("the answer after the interruption", 30, |s| {
        !s.channel("cancel").ends.is_empty()
    })
    .await;
    let seen = d.screen.channel("cancel");
    assert_eq!(seen.cancelled.len(), 1, "{seen:?}");
    assert_eq!(seen.ends.len(), 1, "{seen:?}");
    let first = &seen.order[0];
    assert_eq!(&seen.cancelled[0], first, "the first reply was cancelled");
    assert!(!seen.ends.contains_key(first), "{seen:?}");
    let last = seen.text.get(&seen.order[1]).unwrap();
    assert!(
        last.contains("the sailors") && last.contains("about mountains"),
        "the unanswered words carry into the new thought: {last}"
    );
    d.until("the worker to drop its model call", 10, |_| {
        d.llm.dropped_streams() > dropped
    })
    .await;

    // Three people in one conversation at once: three thoughts, answered one
    // after the other in the order they came, though two workers could take
    // them at once.
    for (i, who) in ["amy", "bob", "cat"].iter().enumerate() {
        let said = d
            .submit_as("group", who, &format!("g-{i}"), &format!("{who} asks"))
            .await;
        assert_eq!(said, Ok(Accepted::Queued));
    }
    d.until("three answers in the group", 30, |s| {
        s.channel("group").ends.len() == 3
    })
    .await;
    let replies: Vec<(String, String)> = d
        .screen
        .on_channels()
        .iter()
        .filter(|(c, _)| c == "group")
        .filter_map(|(_, o)| match o {
            Outbound::Delta { thought, text } => Some((thought.to_string(), text.clone())),
            Outbound::End { thought } => Some((thought.to_string(), String::new())),
            _ => None,
        })
        .collect();
    let mut order: Vec<&str> = Vec::new();
    for (thought, _) in &replies {
        if order.last() != Some(&thought.as_str()) {
            assert!(
                !order.contains(&thought.as_str()),
                "one reply at a time, never interleaved: {replies:#?}"
            );
            order.push(thought);
        }
    }
    let seen = d.screen.channel("group");
    let answers: Vec<&String> = order.iter().map(|t| &seen.text[*t]).collect();
    assert!(answers[0].contains("amy asks"), "{answers:?}");
    assert!(answers[1].contains("bob asks"), "{answers:?}");
    assert!(answers[2].contains("cat asks"), "{answers:?}");

    // A platform delivering the same event twice gets one answer.
    let ends = d.screen.ends();
    assert_eq!(
        d.submit("streaming", "s-1", "hello over redis").await,
        Ok(Accepted::Duplicate)
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(d.screen.ends(), ends, "a redelivered event is not answered");

    // What was stored is what the person saw.
    let stored = d.stored_replies().await;
    assert_eq!(
        stored["streaming"],
        vec![(
            "You said: hello over redis".to_owned(),
            "complete".to_owned()
        )]
    );
    let cancel = &stored["cancel"];
    assert_eq!(cancel.len(), 2, "{cancel:?}");
    assert_eq!(cancel[0].1, "cancelled");
    assert_eq!(&cancel[1], &(last.clone(), "complete".to_owned()));

    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_reply_costs_nothing_lost_or_doubled() {
    let mut d = Deployment::start(
        2,
        FakeReply::PacedEcho {
            delay: Duration::from_millis(120),
        },
    )
    .await;
    const N: usize = 24;
    ask(&d, 0, N).await;
    // Replies are streaming from both workers: kill one of them outright.
    d.until("replies to be under way", 30, |s| s.deltas() >= 2 * N / 3)
        .await;
    let victim = d.workers.remove(0);
    kill9(&victim);
    check_each_answered_once(&d, N).await;
    assert!(
        d.llm.dropped_streams() >= 1,
        "the killed worker was answering something{}",
        d.logs()
    );
    let survivor = read(&d.log_path("worker1"));
    assert!(
        survivor.contains("taking over a thought"),
        "the survivor took the killed worker's thoughts over{}",
        d.logs()
    );
    d.stop().await;
}

/// Memory lives with the workers: a memory the operator adds (in another
/// process, into PostgreSQL and its pgvector index) is recalled into the prompt
/// a worker sends to the model.
#[cfg(feature = "local-model")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_recalls_memories_from_the_shared_database() {
    let d = Deployment::start_with(
        1,
        FakeReply::Echo,
        &[
            ("CLARA_MEMORY__ENABLED", "true"),
            ("CLARA_MEMORY__EXTRACTION", "false"),
        ],
    )
    .await;
    d.say("mem", "m-1", "hello").await;
    d.until("the first answer", 60, |s| {
        !s.channel("mem").ends.is_empty()
    })
    .await;
    let mut cmd = d.command("memory-cli");
    cmd.args([
        "memory",
        "add",
        "Ann's cat is called Miso",
        "--user",
        "remote:user-mem",
    ]);
    let out = cmd.spawn().unwrap().wait().await.unwrap();
    assert!(out.success(), "{}", d.logs());
    d.say("mem", "m-2", "what is my cat called?").await;
    d.until("the second answer", 60, |s| {
        s.channel("mem").ends.len() == 2
    })
    .await;
    let asked = d
        .llm
        .requests()
        .into_iter()
        .find(|r| r.last_user_text().as_deref() == Some("what is my cat called?"))
        .expect("the worker asked the model");
    let system = asked.body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Ann's cat is called Miso"), "{system}");
    d.stop().await;
}

/// Sends `n` questions, one per room, numbered from `from`.
async fn ask(d: &Deployment, from: usize, n: usize) {
    for i in from..from + n {
        d.say(&format!("room-{i}"), &format!("q-{i}"), &question(i))
            .await;
    }
}

fn question(i: usize) -> String {
    format!("question {i} about the weather today")
}

/// Every room from 0 to `n` got exactly one whole answer, and it was stored.
async fn check_each_answered_once(d: &Deployment, n: usize) {
    d.until("every thought to be answered", 120, |s| s.ends() >= n)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored = d.stored_replies().await;
    for i in 0..n {
        let channel = format!("room-{i}");
        let seen = d.screen.channel(&channel);
        let expected = format!("You said: {}", question(i));
        assert_eq!(seen.ends.values().sum::<usize>(), 1, "{channel}: {seen:?}");
        assert!(
            seen.cancelled.is_empty() && seen.errors.is_empty(),
            "{seen:?}"
        );
        assert_eq!(seen.text.len(), 1, "{channel}: {seen:?}");
        assert_eq!(seen.text.values().next().unwrap(), &expected, "{channel}");
        assert_eq!(
            stored.get(&channel),
            Some(&vec![(expected, "complete".to_owned())]),
            "{channel}"
        );
    }
}

/// A gateway and two workers with 16 replies streaming.
async fn under_load() -> Deployment {
    let d = Deployment::start(
        2,
        FakeReply::PacedEcho {
            delay: Duration::from_millis(100),
        },
    )
    .await;
    ask(&d, 0, 16).await;
    d.until("replies to be under way", 30, |s| s.deltas() >= 10)
        .await;
    d
}

fn services_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh")
}

/// Redis restarts empty (it keeps nothing on disk) while replies stream and
/// thoughts wait: the gateway and workers reconnect, the lost thoughts are
/// queued again, and every one is answered exactly once. Ignored by default
/// because it restarts the Redis every other test uses; CI runs it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared Redis server; run alone"]
async fn redis_restarted_under_load_loses_nothing() {
    let d = under_load().await;
    // `shutdown` ends the connection it came on, so its status says nothing;
    // the restart below checks that Redis was down.
    let _ = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"])
        .status();
    // Thoughts accepted while Redis is down wait for it.
    ask(&d, 16, 8).await;
    let up = tokio::process::Command::new("bash")
        .arg(services_script())
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(up.success(), "Redis is started again");
    ask(&d, 24, 8).await;
    check_each_answered_once(&d, 32).await;
    let gateway = read(&d.log_path("gateway"));
    assert!(
        gateway.contains("queuing it again"),
        "thoughts in flight when Redis restarted were queued again{}",
        d.logs()
    );
    d.stop().await;
}

/// PostgreSQL restarts while messages and replies are being stored: nothing
/// accepted is lost, nothing is answered twice. Ignored by default because it
/// restarts the PostgreSQL every other test uses; CI runs it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared PostgreSQL server; run alone"]
async fn postgres_restarted_under_load_loses_nothing() {
    let d = under_load().await;
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .unwrap();
    let restart = tokio::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status();
    ask(&d, 16, 8).await;
    assert!(restart.await.unwrap().success());
    ask(&d, 24, 8).await;
    check_each_answered_once(&d, 32).await;
    d.stop().await;
}

/// Without Redis the distributed commands stop at once with one sentence that
/// names what to set, and never print the URL's password.
#[tokio::test]
async fn without_redis_the_gateway_and_workers_say_what_is_missing() {
    let llm = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("CLARA_MEMORY__ENABLED", "false").arg("gateway");
    let out = crate::common::run(&mut cmd, "").await;
    let err = crate::common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("REDIS_URL (queue.redis_url) or REDIS_HOST must be set"),
        "{err}"
    );

    let closed = free_port();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &llm);
    cmd.env("CLARA_MEMORY__ENABLED", "false")
        .env(
            "REDIS_URL",
            format!("redis://:pa55word@127.0.0.1:{closed}/0"),
        )
        .arg("worker");
    let out = crate::common::run(&mut cmd, "").await;
    let err = crate::common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "cannot join the queue: Redis at 127.0.0.1:{closed}"
        )),
        "{err}"
    );
    assert!(!err.contains("pa55word"), "{err}");
}

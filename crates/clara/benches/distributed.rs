//! The distributed deployment under load, against the embedded one as baseline.
//!
//! Simulated people talk over the gateway protocol through several adapter
//! connections; each sends their next message when the previous answer has
//! ended. The model is instant (the fake OpenAI server answering at once), the
//! chunker emits at once, memory is off, and the store is PostgreSQL in every
//! configuration, so the difference between `clara serve` (replies in process)
//! and `clara gateway` + N `clara worker`s is the Redis hop: the job onto the
//! stream, a worker's read, its reply steps back, the gateway's read.
//!
//! Measured per configuration: thoughts per second, latency from the adapter's
//! submit to the reply's end (p50/p99), and the gateway's resident memory
//! (at the end and at its peak).
//!
//! `cargo bench -p clara --bench distributed` (env: `CLARA_BENCH_USERS`,
//! `CLARA_BENCH_THOUGHTS` per person at saturation; needs PostgreSQL and Redis,
//! as the tests do: `scripts/services.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/common/mod.rs"]
mod common;

use clara_core::port::{Accepted, Assistant};
use clara_core::testing::EndSink;
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound};
use clara_protocol::client::{ClientConfig, RemoteAssistant};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Deployment {
    /// `clara serve`: replies in process.
    Embedded,
    /// `clara gateway` and this many `clara worker`s.
    Distributed(usize),
}

impl Deployment {
    fn name(self) -> String {
        match self {
            Self::Embedded => "baseline: clara serve (in process)".into(),
            Self::Distributed(1) => "clara gateway + 1 worker (Redis)".into(),
            Self::Distributed(n) => format!("clara gateway + {n} workers (Redis)"),
        }
    }
}

struct Figures {
    thoughts: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    rss_kb: u64,
    peak_rss_kb: u64,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.thoughts as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// Resident and peak resident memory of a process, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Every log the processes wrote, for a failure message.
fn logs(dir: &std::path::Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

async fn run(deployment: Deployment, users: usize, thoughts: usize, adapters: usize) -> Figures {
    let llm = FakeOpenAi::start().await;
    llm.set_default(FakeReply::text("ok"));
    let (schema, pg_url) = common::pg::fresh_schema().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("clara-bench-{}", uuid::Uuid::new_v4().simple());
    let port = common::free_port();
    let spawn = |name: &str, args: &[&str]| -> Child {
        let mut cmd = common::clara(&dir.path().join(format!("data-{name}")), dir.path());
        common::with_fake(&mut cmd, &llm);
        cmd.env("DATABASE_URL", &pg_url)
            .env("REDIS_URL", "redis://127.0.0.1:6379/0")
            .env("CLARA_QUEUE__PREFIX", &prefix)
            .env("CLARA_MEMORY__ENABLED", "false")
            .env("CLARA_CHAT__QUIET_MS", "0")
            .env("CLARA_CHAT__QUIET_WHEN_COMPLETE_MS", "0")
            .env("CLARA_CHAT__MAX_WAIT_MS", "0")
            .env("CLARA_GATEWAY_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap())
            .args(args);
        cmd.spawn().unwrap()
    };
    let (front, workers) = match deployment {
        Deployment::Embedded => (spawn("serve", &["serve"]), Vec::new()),
        Deployment::Distributed(n) => {
            let gateway = spawn("gateway", &["gateway"]);
            let workers = (0..n)
                .map(|i| spawn(&format!("worker{i}"), &["worker", "--concurrency", "64"]))
                .collect::<Vec<_>>();
            (gateway, workers)
        }
    };
    if tokio::spawn(common::wait_ready(port)).await.is_err() {
        panic!("{deployment:?} did not start; logs:\n{}", logs(dir.path()));
    }

    // One adapter connection per platform; people spread over them.
    let mut remotes = Vec::new();
    let mut waiters = Vec::new();
    for a in 0..adapters {
        let mine: HashMap<String, Arc<Notify>> = (0..users)
            .filter(|u| u % adapters == a)
            .map(|u| (format!("p{u}"), Arc::new(Notify::new())))
            .collect();
        waiters.push(mine.clone());
        let remote = Arc::new(RemoteAssistant::spawn(
            ClientConfig::new(
                format!("ws://127.0.0.1:{port}/gateway"),
                format!("bench{a}"),
            ),
            EndSink::new(mine),
        ));
        assert!(remote.wait_connected(Duration::from_secs(30)).await);
        remotes.push(remote);
    }
    let talk = |range: std::ops::Range<usize>| {
        let mut tasks = Vec::new();
        for u in 0..users {
            let a = u % adapters;
            let remote = remotes[a].clone();
            let done = waiters[a][&format!("p{u}")].clone();
            let range = range.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                for t in range {
                    let text = format!("p{u}-t{t}");
                    let inbound = Inbound {
                        event_id: EventId(text.clone()),
                        conversation: ConversationRef {
                            platform: format!("bench{a}"),
                            channel: format!("p{u}"),
                            kind: ChannelKind::Direct,
                        },
                        author: Author {
                            platform_user_id: format!("u{u}"),
                            display_name: format!("Person {u}"),
                        },
                        text,
                        sent_at_ms: 0,
                        tier: None,
                        images: Vec::new(),
                        files: Vec::new(),
                        replying_to: Vec::new(),
                    };
                    let sent = Instant::now();
                    assert_eq!(remote.submit(inbound).await, Ok(Accepted::Queued));
                    let answered =
                        tokio::time::timeout(Duration::from_secs(30), done.notified()).await;
                    if answered.is_err() {
                        return Err(format!("p{u}-t{t}: no answer within 30 s"));
                    }
                    latencies.push(sent.elapsed());
                }
                Ok(latencies)
            }));
        }
        tasks
    };
    // Each person's first thoughts start their conversation and warm every
    // process; the steady state is timed after.
    let answered = |result: Result<Vec<Duration>, String>| match result {
        Ok(latencies) => latencies,
        Err(e) => panic!("{deployment:?}: {e}; logs:\n{}", logs(dir.path())),
    };
    for t in talk(0..2) {
        answered(t.await.unwrap());
    }
    let start = Instant::now();
    let mut latencies = Vec::new();
    for t in talk(2..2 + thoughts) {
        latencies.extend(answered(t.await.unwrap()));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let (rss_kb, peak_rss_kb) = rss_kb(front.id().unwrap());
    for r in &remotes {
        r.close();
    }
    for mut w in workers {
        let _ = w.start_kill();
        let _ = w.wait().await;
    }
    let out = common::terminate(front).await;
    assert!(out.status.success(), "{}", logs(dir.path()));
    common::pg::drop_schema(&schema).await;
    forget_keys(&prefix).await;
    Figures {
        thoughts: users * thoughts,
        elapsed,
        latencies,
        rss_kb,
        peak_rss_kb,
    }
}

/// Deletes the run's Redis keys (streams, event ids).
async fn forget_keys(prefix: &str) {
    let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn table(title: &str, rows: &[(Deployment, Figures)]) {
    println!("{title}");
    println!();
    println!(
        "| deployment | thoughts/s (× baseline) | p50 | p99 | added p50 | added p99 | gateway RSS (peak) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let base = &rows[0].1;
    for (d, f) in rows {
        let added = |p: f64| {
            if *d == Deployment::Embedded {
                "—".to_owned()
            } else {
                ms(f.percentile(p).saturating_sub(base.percentile(p)))
            }
        };
        println!(
            "| {} | {:.0} ({:.2}×) | {} | {} | {} | {} | {:.1} MB ({:.1} MB) |",
            d.name(),
            f.per_second(),
            f.per_second() / base.per_second(),
            ms(f.percentile(0.5)),
            ms(f.percentile(0.99)),
            added(0.5),
            added(0.99),
            f.rss_kb as f64 / 1024.0,
            f.peak_rss_kb as f64 / 1024.0,
        );
    }
    println!();
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let users = env_or("CLARA_BENCH_USERS", if quick { 4 } else { 64 });
    let thoughts = env_or("CLARA_BENCH_THOUGHTS", if quick { 3 } else { 30 });
    let (light_users, light_thoughts) = if quick { (2, 5) } else { (4, 150) };
    let deployments: &[Deployment] = if quick {
        &[Deployment::Embedded, Deployment::Distributed(1)]
    } else {
        &[
            Deployment::Embedded,
            Deployment::Distributed(1),
            Deployment::Distributed(2),
            Deployment::Distributed(4),
        ]
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut saturation = Vec::new();
        let mut light = Vec::new();
        for &d in deployments {
            saturation.push((d, run(d, users, thoughts, 4).await));
            light.push((d, run(d, light_users, light_thoughts, 2).await));
        }
        println!(
            "Distributed bench: instant fake model over HTTP, chunker emitting at once, memory off, PostgreSQL store, Redis on loopback."
        );
        println!(
            "Latency is from the adapter's submit (over the gateway protocol) to the reply's end; \"added\" is over the baseline at the same load."
        );
        println!();
        table(
            &format!(
                "Saturation: {users} people over 4 adapter connections, {thoughts} thoughts each"
            ),
            &saturation,
        );
        table(
            &format!(
                "Light load: {light_users} people over 2 adapter connections, {light_thoughts} thoughts each"
            ),
            &light,
        );
    });
}

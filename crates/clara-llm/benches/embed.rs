//! Speed of the local sentence embedder (all-MiniLM-L6-v2 on candle, one thread):
//! query latency (p50/p95 of a short query through the async API) and throughput on
//! 128 assistant-style sentences at batch 1 and batch 32, as a markdown table with
//! ratios against baselines measured in the same run (tokenizing alone, batch 1).
//!
//! ```text
//! CANDLE_NUM_THREADS=1 cargo bench -p clara-llm --features local --bench embed
//! ```
//!
//! Without `--bench` (under `cargo test --benches`) it does a tiny run. The model
//! files must be in place (`scripts/fetch-models.sh`).
//!
//! Wall times on a shared machine include waiting for a core, so CPU time (all the
//! process's threads, from `/proc/self/task/*/schedstat`) is printed beside them.
//!
//! The measurements run in a child process with `CANDLE_NUM_THREADS=1` and
//! `RAYON_NUM_THREADS=1`: candle's f32 matrix products split their work for
//! `RAYON_NUM_THREADS` threads (else one per core) even inside the embedder's
//! one-thread pool. With `--bench`, a second child shows that cost with
//! `RAYON_NUM_THREADS` left unset.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use clara_llm::embed::local::MINILM_MAX_TOKENS;
use clara_llm::{Embedder, LocalEmbedder, LocalEmbedderConfig};

/// The target for one short query on one core.
const QUERY_TARGET: Duration = Duration::from_millis(10);

const QUERY: &str = "when is my sister's birthday?";

/// `n` sentences of the kind Clara remembers and searches: requests, facts, plans.
fn sentences(n: usize) -> Vec<String> {
    let openings = [
        "Remind me to",
        "Last week I told you that I wanted to",
        "Please don't forget that I need to",
        "Can you help me plan how to",
        "My manager asked whether I could",
        "I'd like to",
        "Yesterday we talked about how I should",
        "Note for later: I promised my sister I would",
    ];
    let tasks = [
        "call the dentist about moving my appointment to Thursday afternoon",
        "renew the car insurance before the end of the month",
        "buy flowers",
        "finish the quarterly budget review and send it to the finance team",
        "book train tickets to Lyon for the conference in October, ideally a morning train",
        "water the plants",
        "write a short thank-you note to the neighbours who looked after the cat",
        "back up the family photos to the external drive and check that the copy is complete",
        "cancel the gym membership",
        "prepare three questions for tomorrow's one-on-one",
        "look up a vegetarian lasagne recipe that does not need ricotta",
        "pay the electricity bill",
        "ask the landlord about the broken heating in the bedroom, which has been cold since Monday",
        "practise the piano piece for twenty minutes",
        "send the signed contract back",
        "update my password manager after changing the bank credentials",
    ];
    (0..n)
        .map(|i| {
            let opening = openings[i % openings.len()];
            let task = tasks[(i / openings.len() + i) % tasks.len()];
            format!("{opening} {task}.")
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Set in the child processes that measure; its value labels the run.
const CHILD_ENV: &str = "CLARA_EMBED_BENCH_CHILD";

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    if let Ok(label) = std::env::var(CHILD_ENV) {
        measure(&label, quick);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut runs = vec![("RAYON_NUM_THREADS=1", Some("1"))];
    if !quick {
        runs.push(("RAYON_NUM_THREADS unset", None));
    }
    for (label, rayon) in runs {
        let mut child = Command::new(&exe);
        child
            .args(std::env::args().skip(1))
            .env(CHILD_ENV, label)
            .env("CANDLE_NUM_THREADS", "1");
        match rayon {
            Some(n) => child.env("RAYON_NUM_THREADS", n),
            None => child.env_remove("RAYON_NUM_THREADS"),
        };
        let output = child.output().expect("run the bench child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "bench child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        print!("{stdout}");
    }
}

/// CPU time used so far by every thread of this process (Linux; `None` elsewhere).
/// On a shared machine wall time includes waiting for a core; CPU time does not.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Wall and CPU time of one measured stretch.
#[derive(Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Option<Duration>,
}

struct Stopwatch {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            cpu: cpu_time(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> Spent {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, cpu_time()) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        Spent { wall, cpu }
    }
}

fn measure(label: &str, quick: bool) {
    let (query_runs, sentence_count) = if quick { (10, 16) } else { (200, 128) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let config = LocalEmbedderConfig {
        threads: 1,
        ..LocalEmbedderConfig::default()
    };
    let started = Instant::now();
    let embedder = LocalEmbedder::load(config.clone())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models.sh first)"));
    let load = started.elapsed();

    // The baseline: the tokenizer alone, configured as the embedder configures it.
    let mut tokenizer =
        tokenizers::Tokenizer::from_file(config.dir.join("tokenizer.json")).expect("tokenizer");
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: MINILM_MAX_TOKENS,
            ..Default::default()
        }))
        .expect("truncation");
    tokenizer.with_padding(None);
    let texts = sentences(sentence_count);
    let tokens: usize = texts
        .iter()
        .map(|t| tokenizer.encode(t.as_str(), true).expect("encode").len())
        .sum();

    runtime.block_on(async {
        // Warm-up: first touches of the weights and the allocator.
        embedder
            .embed(&texts[..4.min(texts.len())])
            .await
            .expect("warm-up");

        let watch = Stopwatch::start();
        for text in &texts {
            std::hint::black_box(tokenizer.encode(text.as_str(), true).expect("encode"));
        }
        let tokenize = watch.stop();

        let mut latencies: Vec<Duration> = Vec::with_capacity(query_runs);
        let watch = Stopwatch::start();
        for _ in 0..query_runs {
            let started = Instant::now();
            std::hint::black_box(embedder.embed_one(QUERY).await.expect("query"));
            latencies.push(started.elapsed());
        }
        let queries = watch.stop();
        latencies.sort();
        let (p50, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));

        let watch = Stopwatch::start();
        for text in &texts {
            std::hint::black_box(embedder.embed_one(text).await.expect("batch 1"));
        }
        let batch1 = watch.stop();

        let watch = Stopwatch::start();
        for chunk in texts.chunks(32) {
            std::hint::black_box(embedder.embed(chunk).await.expect("batch 32"));
        }
        let batch32 = watch.stop();

        let per_s = |d: Duration| texts.len() as f64 / d.as_secs_f64().max(1e-9);
        let cpu_ms = |s: Spent| s.cpu.map_or_else(|| "n/a".to_owned(), |c| format!("{:.1} ms", ms(c)));
        let cpu_rate =
            |s: Spent| s.cpu.map_or_else(|| "n/a".to_owned(), |c| format!("{:.1}", per_s(c)));
        println!();
        println!(
            "all-MiniLM-L6-v2 (candle, f32, 1 thread, {label}), {} sentences of {:.1} tokens on average{}",
            texts.len(),
            tokens as f64 / texts.len() as f64,
            if quick {
                " (quick run; use --bench)"
            } else {
                ""
            }
        );
        println!();
        println!("load: {:.2} s", load.as_secs_f64());
        let cpu_per_query = queries
            .cpu
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.2} ms", ms(c) / query_runs as f64));
        println!(
            "query {QUERY:?} over {query_runs} runs: p50 {:.2} ms, p95 {:.2} ms wall; \
             {cpu_per_query} CPU each (target < {} ms: {})",
            ms(p50),
            ms(p95),
            QUERY_TARGET.as_millis(),
            if p50 < QUERY_TARGET { "met" } else { "missed" }
        );
        println!();
        println!(
            "| run | wall | CPU | sentences/s (wall) | sentences/s (CPU) | wall vs tokenizing | speed-up vs batch 1 (wall / CPU) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (name, spent) in [
            ("tokenizing alone", tokenize),
            ("batch 1", batch1),
            ("batch 32", batch32),
        ] {
            let cpu_speedup = match (batch1.cpu, spent.cpu) {
                (Some(b), Some(c)) => format!("{:.2}×", b.as_secs_f64() / c.as_secs_f64().max(1e-9)),
                _ => "n/a".to_owned(),
            };
            println!(
                "| {name} | {:.1} ms | {} | {:.1} | {} | {:.0}× | {:.2}× / {cpu_speedup} |",
                ms(spent.wall),
                cpu_ms(spent),
                per_s(spent.wall),
                cpu_rate(spent),
                spent.wall.as_secs_f64() / tokenize.wall.as_secs_f64().max(1e-9),
                batch1.wall.as_secs_f64() / spent.wall.as_secs_f64().max(1e-9),
            );
        }
    });
}

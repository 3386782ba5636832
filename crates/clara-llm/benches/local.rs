//! Speed of the embedded local chat model (SmolLM2-135M-Instruct on candle): load
//! time, prefill tokens/s and decode tokens/s (greedy, 64 new tokens) on 1 and 2
//! threads, printed as a markdown table.
//!
//! ```text
//! cargo bench -p clara-llm --features local --bench local
//! ```
//!
//! Without `--bench` (under `cargo test --benches`) it does a tiny run on one thread.
//! Each thread count runs in a child process: candle sizes its thread pool once per
//! process. The model is fetched with `ensure_smollm2` when missing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Instant;

use clara_core::{ChatMessage, Role};
use clara_llm::local::{default_models_dir, ensure_smollm2, render_chatml};
use clara_llm::{LocalModel, LocalModelConfig};

const CHILD_ENV: &str = "CLARA_LOCAL_BENCH_THREADS";

fn prompt() -> String {
    render_chatml(&[
        ChatMessage::system(
            "You are Clara, a friendly personal assistant. Answer briefly and precisely, \
             and say so when you do not know something.",
        ),
        ChatMessage::text(
            Role::User,
            "My team meeting moved from Tuesday at 10:00 to Thursday at 14:30 because two \
             people are travelling. Please write a short, polite message to the team that \
             explains the change and asks everyone to update their calendars.",
        ),
    ])
}

struct Figures {
    load_s: f64,
    prompt_tokens: usize,
    prefill_tps: f64,
    decode_tps: f64,
}

fn child(threads: usize, quick: bool) {
    let path = ensure_smollm2(&default_models_dir()).expect("local model file");
    let started = Instant::now();
    let model = LocalModel::load(LocalModelConfig {
        threads,
        ..LocalModelConfig::new(path)
    })
    .expect("load");
    let load_s = started.elapsed().as_secs_f64();
    let prompt = prompt();
    let (new_tokens, runs) = if quick { (4, 1) } else { (64, 3) };
    // Warm-up: first touches of the weights and candle's pools.
    model.measure_speed(&prompt, 2).expect("warm-up");
    let mut reports: Vec<_> = (0..runs)
        .map(|_| model.measure_speed(&prompt, new_tokens).expect("measure"))
        .collect();
    // The median run by decode speed.
    reports.sort_by(|a, b| {
        a.decode_tokens_per_second()
            .total_cmp(&b.decode_tokens_per_second())
    });
    let r = reports[reports.len() / 2];
    println!(
        "RESULT {load_s} {} {} {}",
        r.prompt_tokens,
        r.prefill_tokens_per_second(),
        r.decode_tokens_per_second()
    );
}

fn parse(stdout: &str) -> Option<Figures> {
    let line = stdout.lines().find(|l| l.starts_with("RESULT "))?;
    let mut parts = line.split_whitespace().skip(1);
    Some(Figures {
        load_s: parts.next()?.parse().ok()?,
        prompt_tokens: parts.next()?.parse().ok()?,
        prefill_tps: parts.next()?.parse().ok()?,
        decode_tps: parts.next()?.parse().ok()?,
    })
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    if let Ok(threads) = std::env::var(CHILD_ENV) {
        child(threads.parse().expect("thread count"), quick);
        return;
    }
    // Fetch once here, not in two children at the same time.
    ensure_smollm2(&default_models_dir()).expect("local model file");
    let thread_counts: &[usize] = if quick { &[1] } else { &[1, 2] };
    let exe = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for &threads in thread_counts {
        let output = Command::new(&exe)
            .args(std::env::args().skip(1))
            .env(CHILD_ENV, threads.to_string())
            .env("CANDLE_NUM_THREADS", threads.to_string())
            .output()
            .expect("run the bench child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "bench child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        rows.push((threads, parse(&stdout).expect("child figures")));
    }
    println!();
    println!(
        "SmolLM2-135M-Instruct (Q4_1 re-quantized to Q8_0), greedy, {} new tokens{}",
        if quick { 4 } else { 64 },
        if quick {
            " (quick run; use --bench)"
        } else {
            ""
        }
    );
    println!();
    println!("| threads | load | prompt tokens | prefill tok/s | decode tok/s |");
    println!("|---|---|---|---|---|");
    for (threads, f) in rows {
        println!(
            "| {threads} | {:.2} s | {} | {:.1} | {:.1} |",
            f.load_s, f.prompt_tokens, f.prefill_tps, f.decode_tps
        );
    }
}

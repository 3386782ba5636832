//! What a sandboxed run costs from start to exit, for `python3 -c pass`, in
//! one run with its baselines:
//! - `direct`: the host's python3, spawned as a child (the floor);
//! - `bwrap`: the same command inside a bare bubblewrap with Clara's isolation
//!   flags (what bubblewrap itself costs);
//! - `clara`: `Bwrap::run` — cgroups made and removed, the limit wrapper,
//!   output streaming and status decoding (what Clara adds on top).
//!
//! `cargo bench -p clara-sandbox --bench start` (needs bubblewrap).
//! `cargo test --benches` runs it in a quick mode.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use clara_sandbox::bwrap::{bwrap_args, host_root_entries, sandbox_env};
use clara_sandbox::{Bwrap, BwrapConfig, Limits, RunSpec, Sandbox};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Series {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Series {
    fn p50(&self) -> Duration {
        percentile(&self.samples, 0.5)
    }
    fn p99(&self) -> Duration {
        percentile(&self.samples, 0.99)
    }
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs = if quick { 3 } else { 200 };
    let warmup = if quick { 1 } else { 10 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let workspace = tempfile::tempdir().unwrap();
        let sandbox = Bwrap::new(BwrapConfig::default());
        let bwrap = sandbox
            .bwrap_path()
            .expect("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
            .to_owned();
        let argv = ["python3", "-c", "pass"];
        let env = sandbox_env(&[], &[]).unwrap();
        let bare_args = bwrap_args(&host_root_entries(), &[], workspace.path(), false, &env);

        let direct = || async {
            let status = tokio::process::Command::new("/usr/bin/python3")
                .args(&argv[1..])
                .status()
                .await
                .unwrap();
            assert!(status.success());
        };
        let bare = || async {
            let status = tokio::process::Command::new(&bwrap)
                .args(&bare_args)
                .args(argv)
                .status()
                .await
                .unwrap();
            assert!(status.success());
        };
        let clara = || async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let spec = RunSpec {
                argv: argv.iter().map(|s| (*s).to_owned()).collect(),
                stdin: None,
                workspace: workspace.path().to_owned(),
                env: Vec::new(),
                limits: Limits::default(),
                network: false,
            };
            let end = sandbox.run(spec, tx).await.unwrap();
            assert!(end.success(), "{end:?}");
            drain.await.unwrap();
        };

        let mut series = [
            Series { name: "direct", samples: Vec::new() },
            Series { name: "bwrap", samples: Vec::new() },
            Series { name: "clara", samples: Vec::new() },
        ];
        for i in 0..warmup + runs {
            // The three alternate, so the machine's mood falls on all alike.
            for (n, s) in series.iter_mut().enumerate() {
                let started = Instant::now();
                match n {
                    0 => direct().await,
                    1 => bare().await,
                    _ => clara().await,
                }
                if i >= warmup {
                    s.samples.push(started.elapsed());
                }
            }
        }
        for s in &mut series {
            s.samples.sort();
        }
        let [direct, bare, clara] = &series;
        println!(
            "python3 -c pass, start to exit, {runs} runs each, alternating ({:?} limits: {:?}):",
            sandbox.name(),
            sandbox.limit_method()
        );
        for s in &series {
            println!(
                "  {:<7} p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.2}x direct at p50)",
                s.name,
                millis(s.p50()),
                millis(s.p99()),
                s.p50().as_secs_f64() / direct.p50().as_secs_f64()
            );
        }
        println!(
            "  bubblewrap adds {:.2} ms at p50; Clara adds {:.2} ms on top of bubblewrap ({:.2} ms at p99)",
            millis(bare.p50().saturating_sub(direct.p50())),
            millis(clara.p50().saturating_sub(bare.p50())),
            millis(clara.p99().saturating_sub(bare.p99())),
        );
    });
}

//! Runs the memory eval with the local embedder (all-MiniLM-L6-v2 in process).
//!
//! ```text
//! python3 scripts/longmemeval_to_eval.py ../shared/data/longmemeval_oracle.json /tmp/lme
//! CANDLE_NUM_THREADS=1 cargo run --release -p clara-memory --features local-embed --example eval -- \
//!     --corpus /tmp/lme/corpus.jsonl --queries /tmp/lme/queries.jsonl --k 1,5,10
//! ```
//!
//! Options: `--k 1,5,10` (recall cut-offs), `--mode hybrid|plain-cosine` (the
//! mode evaluated; the plain-cosine baseline always runs too), `--threads N`
//! (embedder threads, default 1), `--batch N` (texts per embedder call). The
//! model files come from `CLARA_MODELS_DIR` (see `scripts/fetch-models.sh`).
//! The report goes to stdout; the same numbers come back from
//! [`clara_memory::eval::run`] as a struct.

use clara_llm::embed::{Embedder, LocalEmbedder, LocalEmbedderConfig};
use clara_memory::eval::{self, EvalOptions};
use clara_memory::rank::RankMode;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

const USAGE: &str = "usage: eval --corpus FILE --queries FILE [--k 1,5,10] [--mode hybrid|plain-cosine] \
                     [--threads N] [--batch N]";

struct Args {
    corpus: PathBuf,
    queries: PathBuf,
    options: EvalOptions,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut corpus = None;
    let mut queries = None;
    let mut options = EvalOptions::default();
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(value()?)),
            "--queries" => queries = Some(PathBuf::from(value()?)),
            "--k" => {
                options.ks = value()?
                    .split(',')
                    .map(|k| {
                        k.trim()
                            .parse::<usize>()
                            .map_err(|_| format!("--k: {k:?} is not a number"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--mode" => {
                options.config.mode = match value()?.as_str() {
                    "hybrid" => RankMode::Hybrid,
                    "plain-cosine" => RankMode::PlainCosine,
                    other => {
                        return Err(format!(
                            "--mode: {other:?} is neither hybrid nor plain-cosine"
                        ));
                    }
                }
            }
            "--threads" => {
                threads = value()?
                    .parse()
                    .map_err(|_| "--threads needs a number".to_owned())?
            }
            "--batch" => {
                options.batch = value()?
                    .parse()
                    .map_err(|_| "--batch needs a number".to_owned())?
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let corpus = corpus.ok_or_else(|| format!("--corpus is required\n{USAGE}"))?;
    let queries = queries.ok_or_else(|| format!("--queries is required\n{USAGE}"))?;
    Ok(Args {
        corpus,
        queries,
        options,
        threads,
    })
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let corpus = eval::parse_corpus(&read(&args.corpus)?)?;
    let queries = eval::parse_queries(&read(&args.queries)?, &corpus)?;
    let config = LocalEmbedderConfig {
        threads: args.threads,
        ..LocalEmbedderConfig::default()
    };
    let embedder: Arc<dyn Embedder> =
        Arc::new(tokio::task::spawn_blocking(move || LocalEmbedder::load(config)).await??);
    eprintln!(
        "indexing {} memories, then {} queries per mode…",
        corpus.len(),
        queries.len()
    );
    let report = eval::run(&corpus, &queries, embedder, &args.options).await?;
    print!("{report}");
    Ok(())
}

//! The token loop: prefill the prompt, then sample, decode and stream one token at a
//! time until a stop token, the length limit or the reader going away.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::ModelWeights;
use candle_transformers::utils::apply_repeat_penalty;
use tokenizers::Tokenizer;
use tokio::sync::mpsc::Sender;

use super::{Engine, usage};
use crate::LlmError;
use crate::provider::{ChatRequest, StreamEvent};

/// Prompt tokens per forward pass while prefilling; between chunks a dropped stream
/// is noticed, so a long prompt does not delay the next request by much.
const PREFILL_CHUNK: usize = 128;

/// How many recent tokens the repeat penalty looks at.
const REPEAT_LAST_N: usize = 64;

/// One generation's inputs.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The prompt's token ids, template applied and fitted into the context.
    pub prompt: Vec<u32>,
    /// At most this many new tokens.
    pub max_new: usize,
    /// 0 (or below 1e-7) means greedy.
    pub temperature: f64,
    /// Nucleus sampling threshold; `None` samples from all tokens.
    pub top_p: Option<f64>,
    /// 1 turns the penalty off.
    pub repeat_penalty: f32,
    /// The sampler's seed.
    pub seed: u64,
    /// Tokens that end the answer (not emitted).
    pub stop_ids: HashSet<u32>,
}

/// How a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A stop token.
    Stop,
    /// `max_new` tokens.
    Length,
    /// The reader went away.
    Cancelled,
}

/// What a generation did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub end: End,
    /// New tokens (stop token not counted).
    pub generated: usize,
    pub prefill: Duration,
    pub decode: Duration,
}

/// Where decoded text goes.
pub(crate) trait Output {
    /// Whether nobody is reading any more.
    fn cancelled(&self) -> bool;
    /// Passes text on; `false` when nobody is reading any more.
    fn text(&mut self, text: String) -> bool;
}

/// Reads nothing (speed measurements).
pub(crate) struct Discard;

impl Output for Discard {
    fn cancelled(&self) -> bool {
        false
    }

    fn text(&mut self, _text: String) -> bool {
        true
    }
}

type Events = Sender<Result<StreamEvent, LlmError>>;

impl Output for Events {
    fn cancelled(&self) -> bool {
        self.is_closed()
    }

    fn text(&mut self, text: String) -> bool {
        // This runs on a plain thread, never inside the async runtime, so blocking on
        // a full channel is allowed (and is the back-pressure we want).
        self.blocking_send(Ok(StreamEvent::Delta(text))).is_ok()
    }
}

/// Candle's errors mid-answer, for the reader.
pub(crate) fn model_error(e: candle_core::Error) -> LlmError {
    LlmError::ProviderError {
        detail: crate::error::truncate(&format!("local model failed: {e}"), 200),
    }
}

/// Runs one request on its own thread: waits its turn for the model, generates into
/// `tx`, ends with `Finished` or an error. Returns at once when the reader is gone.
pub(crate) fn serve(engine: &Engine, request: &ChatRequest, mut tx: Events) {
    let job = match engine.job(request) {
        Ok(job) => job,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    // One generation at a time; the others wait here, in their own threads.
    let mut weights = engine.weights.lock();
    if tx.is_closed() {
        return;
    }
    let started = Instant::now();
    let model: &mut ModelWeights = &mut weights;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        engine
            .pool
            .install(|| run(model, &engine.tokenizer, &job, &mut tx))
    }));
    drop(weights);
    let event = match result {
        Ok(Ok(outcome)) => {
            tracing::debug!(
                prompt_tokens = job.prompt.len(),
                generated = outcome.generated,
                end = ?outcome.end,
                prefill_ms = outcome.prefill.as_millis() as u64,
                decode_ms = outcome.decode.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                "local model generation"
            );
            let reason = match outcome.end {
                End::Stop => "stop",
                End::Length => "length",
                End::Cancelled => return,
            };
            Ok(StreamEvent::Finished {
                reason: Some(reason.to_owned()),
                usage: Some(usage(job.prompt.len(), outcome.generated)),
            })
        }
        Ok(Err(e)) => Err(model_error(e)),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            tracing::error!(%detail, "local model generation panicked");
            Err(LlmError::ProviderError {
                detail: crate::error::truncate(&format!("local model crashed: {detail}"), 200),
            })
        }
    };
    let _ = tx.blocking_send(event);
}

/// The token loop. Must run inside the model's rayon pool.
pub(crate) fn run(
    weights: &mut ModelWeights,
    tokenizer: &Tokenizer,
    job: &Job,
    out: &mut dyn Output,
) -> candle_core::Result<Outcome> {
    let device = Device::Cpu;
    weights.clear_kv_cache();
    let mut outcome = Outcome {
        end: End::Length,
        generated: 0,
        prefill: Duration::ZERO,
        decode: Duration::ZERO,
    };

    let started = Instant::now();
    let mut logits = None;
    let mut position = 0;
    for chunk in job.prompt.chunks(PREFILL_CHUNK) {
        if out.cancelled() {
            outcome.end = End::Cancelled;
            return Ok(outcome);
        }
        let input = Tensor::new(chunk, &device)?.unsqueeze(0)?;
        logits = Some(weights.forward(&input, position)?);
        position += chunk.len();
    }
    let Some(mut logits) = logits else {
        // An empty prompt: nothing to continue from.
        outcome.end = End::Stop;
        return Ok(outcome);
    };
    outcome.prefill = started.elapsed();

    let started = Instant::now();
    let mut sampler = LogitsProcessor::new(job.seed, Some(job.temperature), job.top_p);
    let mut tokens = job.prompt.clone();
    let mut decoder = tokenizer.decode_stream(true);
    while outcome.generated < job.max_new {
        let mut scores = logits.squeeze(0)?;
        if job.repeat_penalty != 1.0 {
            let start = tokens.len().saturating_sub(REPEAT_LAST_N);
            scores = apply_repeat_penalty(&scores, job.repeat_penalty, &tokens[start..])?;
        }
        let next = sampler.sample(&scores)?;
        if job.stop_ids.contains(&next) {
            outcome.end = End::Stop;
            break;
        }
        tokens.push(next);
        outcome.generated += 1;
        // A token can end in the middle of a character; the stream decoder holds such
        // bytes back until the character is complete.
        let text = decoder
            .step(next)
            .map_err(|e| candle_core::Error::Msg(format!("cannot decode token {next}: {e}")))?;
        if let Some(text) = text.filter(|t| !t.is_empty())
            && !out.text(text)
        {
            outcome.end = End::Cancelled;
            break;
        }
        if outcome.generated >= job.max_new {
            break;
        }
        if out.cancelled() {
            outcome.end = End::Cancelled;
            break;
        }
        let input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        logits = weights.forward(&input, position)?;
        position += 1;
    }
    outcome.decode = started.elapsed();
    Ok(outcome)
}

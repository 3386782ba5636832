//! Reading a GGUF file: the weights (re-quantized where candle is slow) and the
//! tokenizer its metadata describes.

use std::collections::HashSet;
use std::io::{BufReader, Cursor};
use std::path::Path;

use candle_core::Device;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// What a GGUF file yields.
pub(crate) struct Loaded {
    pub weights: ModelWeights,
    pub tokenizer: Tokenizer,
    /// Ids that end an answer: `<|im_end|>`, the EOS token, `<|endoftext|>` and
    /// `<|im_start|>`.
    pub stop_ids: HashSet<u32>,
    /// The model's trained context length.
    pub context_length: Option<usize>,
    /// How many tensors were re-quantized to Q8_0.
    pub requantized: usize,
}

/// Why a file could not be loaded, before it is worded for the person.
pub(crate) enum LoadError {
    /// The file cannot be opened.
    Io(std::io::Error),
    /// The file is not a GGUF file candle can read.
    NotGguf(String),
    /// It is a GGUF file, but not one this code can run.
    Unsupported(String),
}

impl From<candle_core::Error> for LoadError {
    fn from(e: candle_core::Error) -> Self {
        Self::Unsupported(e.to_string())
    }
}

/// Loads weights and tokenizer. Runs candle work on the calling thread's rayon pool.
pub(crate) fn load(path: &Path) -> Result<Loaded, LoadError> {
    let file = std::fs::File::open(path).map_err(LoadError::Io)?;
    let mut reader = BufReader::new(file);
    let content =
        gguf_file::Content::read(&mut reader).map_err(|e| LoadError::NotGguf(e.to_string()))?;

    let arch = meta_str(&content, "general.architecture").unwrap_or_default();
    if arch != "llama" {
        return Err(LoadError::Unsupported(format!(
            "architecture {arch:?} is not supported (only llama-family models such as SmolLM2)"
        )));
    }
    let context_length = content
        .metadata
        .get("llama.context_length")
        .and_then(|v| v.to_u32().ok())
        .map(|v| v as usize);
    let (tokenizer, stop_ids) = build_tokenizer(&content)?;

    let device = Device::Cpu;
    let (requantized_file, requantized) = requantize(&content, &mut reader, &device)?;
    drop(reader);
    let weights = if requantized == 0 {
        let mut reader = BufReader::new(std::fs::File::open(path).map_err(LoadError::Io)?);
        ModelWeights::from_gguf(content, &mut reader, &device)?
    } else {
        let mut cursor = Cursor::new(requantized_file);
        let content = gguf_file::Content::read(&mut cursor)?;
        ModelWeights::from_gguf(content, &mut cursor, &device)?
    };
    Ok(Loaded {
        weights,
        tokenizer,
        stop_ids,
        context_length,
        requantized,
    })
}

/// Whether candle has no fast (AVX2) matmul kernel for this type, so it is worth
/// converting to Q8_0 (see MODELS.md, pitfall 1: twice the decode speed).
fn needs_requantizing(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Rewrites the file in memory with its Q4_1/Q5_0/Q5_1 tensors as Q8_0. Returns an
/// empty buffer and 0 when no tensor needs it.
fn requantize<R: std::io::Read + std::io::Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
    device: &Device,
) -> Result<(Vec<u8>, usize), LoadError> {
    if !content
        .tensor_infos
        .values()
        .any(|info| needs_requantizing(info.ggml_dtype))
    {
        return Ok((Vec::new(), 0));
    }
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(&str, QTensor)> = Vec::with_capacity(names.len());
    let mut count = 0;
    for name in names {
        let tensor = content.tensor(reader, name, device)?;
        let tensor = if needs_requantizing(tensor.dtype()) {
            count += 1;
            QTensor::quantize(&tensor.dequantize(device)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    Ok((out.into_inner(), count))
}

fn meta_str(content: &gguf_file::Content, key: &str) -> Option<String> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn meta_array<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a Vec<Value>, LoadError> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_vec().ok())
        .ok_or_else(|| LoadError::Unsupported(format!("the file has no {key} metadata")))
}

/// Builds the byte-level BPE tokenizer from `tokenizer.ggml.*` metadata (a GGUF ships
/// no tokenizer.json; MODELS.md pitfall 3). Token types 3 (control) and 4 (user
/// defined) become special added tokens.
fn build_tokenizer(content: &gguf_file::Content) -> Result<(Tokenizer, HashSet<u32>), LoadError> {
    let model = meta_str(content, "tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(LoadError::Unsupported(format!(
            "tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")"
        )));
    }
    let bad = |what: &str| LoadError::Unsupported(format!("malformed tokenizer metadata: {what}"));
    let tokens: Vec<String> = meta_array(content, "tokenizer.ggml.tokens")?
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|_| bad("a token is not a string"))
        })
        .collect::<Result<_, _>>()?;
    let merges: Vec<(String, String)> = meta_array(content, "tokenizer.ggml.merges")?
        .iter()
        .map(|v| {
            let merge = v.to_string().map_err(|_| bad("a merge is not a string"))?;
            let (a, b) = merge
                .split_once(' ')
                .ok_or_else(|| bad("a merge has no space"))?;
            Ok((a.to_owned(), b.to_owned()))
        })
        .collect::<Result<_, LoadError>>()?;
    let types: Vec<i64> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| match v {
                Value::I32(t) => Ok(i64::from(*t)),
                Value::U32(t) => Ok(i64::from(*t)),
                _ => Err(bad("a token type is not an integer")),
            })
            .collect::<Result<_, _>>()?,
        _ => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(bad("token and token type counts differ"));
    }

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), id as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let byte_level = ByteLevel::new(false, true, true);
    let pre = meta_str(content, "tokenizer.ggml.pre").unwrap_or_default();
    match pre.as_str() {
        // SmolLM2: every digit on its own, then GPT-2 byte-level splitting.
        "smollm" => {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                byte_level.into(),
            ])));
        }
        other => {
            tracing::warn!(
                pre = other,
                "unknown GGUF pre-tokenizer; using plain GPT-2 byte-level splitting"
            );
            tokenizer.with_pre_tokenizer(Some(byte_level));
        }
    }
    tokenizer.with_decoder(Some(ByteLevel::default()));

    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, t)| **t == 3 || **t == 4)
        .map(|(token, _)| AddedToken::from(token.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| bad(&e.to_string()))?;

    let mut stop_ids = HashSet::new();
    // `<|im_start|>` too: a new turn means the answer is over.
    for token in ["<|im_end|>", "<|endoftext|>", "<|im_start|>"] {
        if let Some(id) = tokenizer.token_to_id(token) {
            stop_ids.insert(id);
        }
    }
    if let Some(id) = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
    {
        stop_ids.insert(id);
    }
    if stop_ids.is_empty() {
        return Err(bad("no end-of-turn token"));
    }
    Ok((tokenizer, stop_ids))
}

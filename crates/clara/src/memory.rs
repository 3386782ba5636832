//! Long-term memory (Rook) from the `[memory]` settings: which embedder, whether
//! Clara learns from conversations, and how much recall may put in a prompt.
//!
//! Memory is optional at run time: when its embedder cannot be had (the local
//! model files are missing, the embeddings endpoint is down), `clara chat` and
//! `clara serve` say so once and carry on without it, so the quick start keeps
//! working. Wrong settings, by contrast, stop start-up like every other setting.

use crate::provider::{LlmChoice, LlmSettings, ModelChoice};
use anyhow::{Result, bail};
use clara_llm::embed::{EmbedError, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use clara_llm::{ChatProvider, OpenAiCompatibleConfig, Secret};
use clara_memory::rank::RankConfig;
use clara_memory::{Rook, RookConfig};
use clara_store::Store;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The folder, inside the models folder, holding the local embedding model.
const LOCAL_MODEL_DIR: &str = "all-minilm-l6-v2";
/// The embeddings model asked of OpenAI when none is named.
const OPENAI_DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
/// Fewest tokens recall may use: below this hardly one memory fits.
const MIN_RECALL_TOKENS: usize = 32;

/// `[memory]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// Whether Clara has long-term memory at all (default true).
    pub enabled: Option<bool>,
    /// Whether Clara learns from conversations in the background (default true,
    /// false with the built-in local chat model, which is too small for it).
    pub extraction: Option<bool>,
    /// `local` (default: all-MiniLM-L6-v2 in process) or `openai` (any
    /// OpenAI-compatible `/v1/embeddings`).
    pub embedder: Option<String>,
    /// The embeddings API root for `openai` (default `https://api.openai.com/v1`).
    pub embeddings_url: Option<String>,
    /// The embeddings model for `openai` (default `text-embedding-3-small`).
    pub embedding_model: Option<String>,
    /// The embeddings API key (default: `OPENAI_API_KEY` when the URL is OpenAI's).
    pub api_key: Option<Secret>,
    /// The most prompt tokens recalled memories may take.
    pub recall_tokens: Option<usize>,
    /// The model that extracts facts (default: the chat provider's default model).
    pub extraction_model: Option<String>,
    /// A PostgreSQL database (with pgvector) for the memory index; without one,
    /// the index is in process, or in the store's database when that is PostgreSQL.
    pub database_url: Option<Secret>,
}

/// Which embedder turns memories into vectors.
#[derive(Debug, Clone)]
pub enum EmbedderChoice {
    /// all-MiniLM-L6-v2 in process, its files in `dir`.
    Local {
        /// The folder holding `model.safetensors`, `tokenizer.json`, `config.json`.
        dir: PathBuf,
    },
    /// An OpenAI-compatible embeddings endpoint (its `Debug` hides the key).
    OpenAi(Box<OpenAiEmbedderConfig>),
}

/// The `[memory]` settings, resolved and checked.
#[derive(Debug, Clone)]
pub struct MemoryChoice {
    /// Whether `chat` and `serve` use memory (the `memory` commands work regardless).
    pub enabled: bool,
    /// Whether Clara learns from conversations.
    pub extraction: bool,
    /// Why extraction is off though nobody turned it off, said once at start.
    pub extraction_note: Option<&'static str>,
    /// The embedder.
    pub embedder: EmbedderChoice,
    /// Rook's behaviour (recall budget, extraction model).
    pub rook: RookConfig,
    /// The pgvector index's database (`ROOK_DATABASE_URL`), if set.
    pub index_url: Option<String>,
}

/// What `resolve` reads besides `[memory]`.
pub struct MemoryContext<'a> {
    /// `[llm]` as written (for the models folder and a reusable OpenAI key).
    pub llm_settings: &'a LlmSettings,
    /// The resolved chat model, if the settings name a valid one.
    pub llm: Option<&'a LlmChoice>,
    /// Where model files live when `llm.local.models_dir` is not set.
    pub default_models_dir: PathBuf,
    /// `OPENAI_API_KEY` from the environment (the legacy name), if set.
    pub openai_api_key: Option<Secret>,
    /// The prompt's whole token budget, which recall must fit well inside.
    pub prompt_tokens: usize,
}

/// Resolves `[memory]`, naming the key of anything wrong.
pub fn resolve(m: &MemorySettings, cx: &MemoryContext<'_>) -> Result<MemoryChoice> {
    let local_chat = matches!(
        cx.llm,
        Some(LlmChoice {
            model: ModelChoice::Local { .. },
            ..
        })
    );
    let (extraction, extraction_note) = match m.extraction {
        Some(on) => (on, None),
        None if local_chat => (
            false,
            Some(
                "memory extraction is off: the built-in local chat model is too small to pick out facts; set memory.extraction = true to force it",
            ),
        ),
        None => (true, None),
    };
    let embedder = match non_blank(&m.embedder)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("local") => EmbedderChoice::Local {
            dir: cx
                .llm_settings
                .local
                .models_dir
                .clone()
                .unwrap_or_else(|| cx.default_models_dir.clone())
                .join(LOCAL_MODEL_DIR),
        },
        Some("openai") => EmbedderChoice::OpenAi(Box::new(openai_embedder(m, cx)?)),
        Some(other) => {
            bail!("memory.embedder (CLARA_MEMORY__EMBEDDER) is {other:?}; expected local or openai")
        }
    };
    let mut rank = RankConfig::default();
    if let Some(tokens) = m.recall_tokens {
        if tokens < MIN_RECALL_TOKENS || tokens >= cx.prompt_tokens {
            bail!(
                "memory.recall_tokens (CLARA_MEMORY__RECALL_TOKENS) must be at least {MIN_RECALL_TOKENS} and less than chat.token_budget ({}), got {tokens}",
                cx.prompt_tokens
            );
        }
        rank.token_budget = tokens;
    }
    Ok(MemoryChoice {
        enabled: m.enabled.unwrap_or(true),
        extraction,
        extraction_note,
        embedder,
        rook: RookConfig {
            rank,
            model: non_blank(&m.extraction_model).map(str::to_owned),
            ..RookConfig::default()
        },
        index_url: Secret::given(m.database_url.as_ref()).map(|u| u.expose().to_owned()),
    })
}

fn openai_embedder(m: &MemorySettings, cx: &MemoryContext<'_>) -> Result<OpenAiEmbedderConfig> {
    let base_url = non_blank(&m.embeddings_url)
        .unwrap_or(OpenAiCompatibleConfig::OPENAI_BASE_URL)
        .trim_end_matches('/')
        .to_owned();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
        || base_url.len() <= "https://".len()
    {
        bail!(
            "memory.embeddings_url (CLARA_MEMORY__EMBEDDINGS_URL) must be an http:// or https:// URL, got {base_url:?}"
        );
    }
    let is_openai = is_openai_url(&base_url);
    let model = match (non_blank(&m.embedding_model), is_openai) {
        (Some(model), _) => model.to_owned(),
        (None, true) => OPENAI_DEFAULT_EMBEDDING_MODEL.to_owned(),
        (None, false) => bail!(
            "memory.embedding_model (CLARA_MEMORY__EMBEDDING_MODEL) is not set; an embeddings server other than OpenAI needs a model name, e.g. nomic-embed-text"
        ),
    };
    // A key meant for OpenAI goes only to OpenAI: a local server (Ollama) needs none,
    // and must not be handed one it was never meant to see.
    let llm_openai = &cx.llm_settings.openai;
    let chat_key_is_openai = llm_openai.base_url.as_deref().is_none_or(is_openai_url);
    let (key, setting) = if let Some(key) = Secret::given(m.api_key.as_ref()) {
        (Some(key.clone()), "CLARA_MEMORY__API_KEY (memory.api_key)")
    } else if !is_openai {
        (None, "CLARA_MEMORY__API_KEY (memory.api_key)")
    } else if let Some(key) = Secret::given(cx.openai_api_key.as_ref()) {
        (Some(key.clone()), "OPENAI_API_KEY")
    } else if let Some(key) =
        Secret::given(llm_openai.api_key.as_ref()).filter(|_| chat_key_is_openai)
    {
        (
            Some(key.clone()),
            "CUSTOM_OPENAI_API_KEY (llm.openai.api_key)",
        )
    } else {
        bail!(
            "memory.embedder is openai and OpenAI's embeddings need an API key; set OPENAI_API_KEY or CLARA_MEMORY__API_KEY (memory.api_key), or point memory.embeddings_url at a server that needs none"
        )
    };
    Ok(OpenAiEmbedderConfig {
        api_key: key,
        key_setting: Some(setting.to_owned()),
        ..OpenAiEmbedderConfig::new(base_url, model)
    })
}

/// Where model files live by default (`CLARA_MODELS_DIR`, else the user's cache).
#[cfg(feature = "local-model")]
pub fn default_models_dir() -> PathBuf {
    clara_llm::local::default_models_dir()
}

/// Where model files would live; without the local models nothing is kept there.
#[cfg(not(feature = "local-model"))]
pub fn default_models_dir() -> PathBuf {
    PathBuf::from("models")
}

fn is_openai_url(url: &str) -> bool {
    url.trim_end_matches('/') == OpenAiCompatibleConfig::OPENAI_BASE_URL
}

fn non_blank(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Loads the embedder: the local model's files are read off the async runtime
/// (about a fifth of a second); an endpoint is asked once for its vector length,
/// which the index must know before it loads the stored vectors.
pub async fn load_embedder(choice: &EmbedderChoice) -> Result<Arc<dyn Embedder>, EmbedError> {
    match choice {
        EmbedderChoice::Local { dir } => load_local(dir.clone()).await,
        EmbedderChoice::OpenAi(config) => {
            let embedder = OpenAiEmbedder::new((**config).clone())?;
            embedder.probe().await?;
            Ok(Arc::new(embedder))
        }
    }
}

#[cfg(feature = "local-model")]
async fn load_local(dir: PathBuf) -> Result<Arc<dyn Embedder>, EmbedError> {
    use clara_llm::local::{MINILM_FOLDER, ensure_minilm};
    let loaded = tokio::task::spawn_blocking(move || {
        // The default folder is fetched on first use, like the local chat model; a
        // folder the operator chose is theirs to fill.
        if let Some(models_dir) = dir
            .parent()
            .filter(|_| dir.file_name().is_some_and(|n| n == MINILM_FOLDER))
            && !dir.join("model.safetensors").is_file()
        {
            eprintln!(
                "clara: fetching the local embedding model (all-MiniLM-L6-v2, 91 MB) into {} …",
                models_dir.display()
            );
            ensure_minilm(models_dir).map_err(|e| EmbedError::Load(e.to_string()))?;
        }
        clara_llm::embed::LocalEmbedder::load(clara_llm::embed::LocalEmbedderConfig::new(dir))
    })
    .await
    .map_err(|e| EmbedError::Load(format!("the loading thread failed ({e})")))??;
    Ok(Arc::new(loaded))
}

#[cfg(not(feature = "local-model"))]
async fn load_local(_dir: PathBuf) -> Result<Arc<dyn Embedder>, EmbedError> {
    Err(EmbedError::Load(
        "this Clara was built without the local embedding model (feature local-model); set memory.embedder = \"openai\"".to_owned(),
    ))
}

/// Rook for `clara chat` / `clara serve`, or `None` when memory is off or its
/// embedder cannot be had (said once, in one sentence, on standard error).
pub async fn open_for_engine(
    choice: &MemoryChoice,
    store: &Store,
    provider: &Arc<dyn ChatProvider>,
) -> Result<Option<Rook>> {
    if !choice.enabled {
        tracing::info!("long-term memory is off (memory.enabled = false)");
        return Ok(None);
    }
    if let Some(note) = choice.extraction_note {
        tracing::info!("{note}");
    }
    let embedder = match load_embedder(&choice.embedder).await {
        Ok(embedder) => embedder,
        Err(error) => {
            // A warning, not an error: `clara: …` lines are reserved for what failed.
            eprintln!("warning: long-term memory is off for this run, because {error}");
            return Ok(None);
        }
    };
    let llm = choice.extraction.then(|| provider.clone());
    let rook = open_rook(choice, store, embedder, llm).await?;
    Ok(Some(rook))
}

/// Rook with the index the deployment calls for: pgvector when
/// `ROOK_DATABASE_URL` names a database or the store is in PostgreSQL, else the
/// in-process index.
pub async fn open_rook(
    choice: &MemoryChoice,
    store: &Store,
    embedder: Arc<dyn Embedder>,
    llm: Option<Arc<dyn ChatProvider>>,
) -> Result<Rook> {
    let config = choice.rook.clone();
    let wants_pgvector =
        choice.index_url.is_some() || store.backend() == clara_store::Backend::Postgres;
    // An operator command that never embeds (dimension 0) needs no index at all.
    if wants_pgvector && embedder.model().dim > 0 {
        let rook = Rook::open_pgvector(
            store.clone(),
            choice.index_url.as_deref(),
            embedder,
            llm,
            config,
        )
        .await?;
        return Ok(rook);
    }
    Ok(Rook::open(store.clone(), embedder, llm, config).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(llm: &'a LlmSettings, key: Option<&str>) -> MemoryContext<'a> {
        MemoryContext {
            llm_settings: llm,
            llm: None,
            default_models_dir: PathBuf::from("/models"),
            openai_api_key: key.map(Secret::from),
            prompt_tokens: 12_000,
        }
    }

    #[test]
    fn defaults_are_on_local_and_learning() {
        let llm = LlmSettings::default();
        let choice = resolve(&MemorySettings::default(), &cx(&llm, None)).unwrap();
        assert!(choice.enabled && choice.extraction);
        assert!(
            matches!(&choice.embedder, EmbedderChoice::Local { dir } if dir == &PathBuf::from("/models/all-minilm-l6-v2"))
        );
        assert_eq!(
            choice.rook.rank.token_budget,
            RankConfig::default().token_budget
        );
    }

    #[test]
    fn the_local_chat_model_does_not_extract_unless_asked() {
        let llm = LlmSettings::default();
        let local = crate::provider::resolve(&llm).unwrap();
        let context = MemoryContext {
            llm: Some(&local),
            ..cx(&llm, None)
        };
        let off = resolve(&MemorySettings::default(), &context).unwrap();
        assert!(!off.extraction && off.extraction_note.is_some());
        let forced = MemorySettings {
            extraction: Some(true),
            ..MemorySettings::default()
        };
        let on = resolve(&forced, &context).unwrap();
        assert!(on.extraction && on.extraction_note.is_none());
    }

    #[test]
    fn openai_keys_go_only_to_openai() {
        let llm = LlmSettings::default();
        let openai = MemorySettings {
            embedder: Some("OpenAI".to_owned()),
            ..MemorySettings::default()
        };
        let err = resolve(&openai, &cx(&llm, None)).unwrap_err().to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        let choice = resolve(&openai, &cx(&llm, Some("sk-secret"))).unwrap();
        let EmbedderChoice::OpenAi(config) = &choice.embedder else {
            panic!("openai")
        };
        assert_eq!(config.model, "text-embedding-3-small");
        assert_eq!(config.key_setting.as_deref(), Some("OPENAI_API_KEY"));
        assert!(!format!("{choice:?}").contains("sk-secret"));

        let ollama = MemorySettings {
            embeddings_url: Some("http://127.0.0.1:11434/v1".to_owned()),
            embedding_model: Some("nomic-embed-text".to_owned()),
            ..openai
        };
        let choice = resolve(&ollama, &cx(&llm, Some("sk-secret"))).unwrap();
        let EmbedderChoice::OpenAi(config) = &choice.embedder else {
            panic!("openai")
        };
        assert!(config.api_key.is_none(), "the OpenAI key stays with OpenAI");
    }

    #[test]
    fn wrong_values_name_their_key() {
        let llm = LlmSettings::default();
        let cases = [
            (
                MemorySettings {
                    embedder: Some("bert".to_owned()),
                    ..MemorySettings::default()
                },
                "memory.embedder",
            ),
            (
                MemorySettings {
                    embedder: Some("openai".to_owned()),
                    embeddings_url: Some("localhost:11434".to_owned()),
                    ..MemorySettings::default()
                },
                "memory.embeddings_url",
            ),
            (
                MemorySettings {
                    embedder: Some("openai".to_owned()),
                    embeddings_url: Some("http://127.0.0.1:11434/v1".to_owned()),
                    ..MemorySettings::default()
                },
                "memory.embedding_model",
            ),
            (
                MemorySettings {
                    recall_tokens: Some(20_000),
                    ..MemorySettings::default()
                },
                "memory.recall_tokens",
            ),
        ];
        for (settings, key) in cases {
            let err = resolve(&settings, &cx(&llm, None)).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}

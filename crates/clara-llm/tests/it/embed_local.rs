//! The local sentence embedder with the real all-MiniLM-L6-v2 files (put in the models
//! folder by `scripts/fetch-models.sh`, which CI runs first; the tests fail, never
//! skip, when the files are missing).
//!
//! One embedder, loaded once on one thread, serves every test.

use std::sync::{Arc, OnceLock};

use clara_llm::embed::local::{MINILM_DIM, MINILM_NAME};
use clara_llm::{EmbedError, Embedder, LocalEmbedder, LocalEmbedderConfig};

fn embedder() -> LocalEmbedder {
    static EMBEDDER: OnceLock<LocalEmbedder> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            LocalEmbedder::load(LocalEmbedderConfig::default())
                .unwrap_or_else(|e| panic!("the local embedder must load: {e}"))
        })
        .clone()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn model_name_and_dimension() {
    let e = embedder();
    assert_eq!(e.model().name, MINILM_NAME);
    assert_eq!(e.model().name, "local/all-minilm-l6-v2");
    assert_eq!(e.model().dim, MINILM_DIM);
    assert_eq!(e.config().max_tokens, 256);
    let v = e.embed_one("hello").await.unwrap();
    assert_eq!(v.len(), 384);
    assert!((cos(&v, &v) - 1.0).abs() < 1e-5, "unit length");
}

/// A paragraph of about 320 tokens: cut to 256, as sentence-transformers does.
fn long_paragraph() -> String {
    "My sister Anna lives in Lyon and works as a nurse at the city hospital, and she \
     visits us every summer with her two children. "
        .repeat(12)
        .trim()
        .to_owned()
}

/// Reference cosines of sentence-transformers' pipeline for this model (BERT
/// tokenizer, truncation at 256, encoder, mean pooling over the attention mask, L2
/// normalisation), computed in float64 by an independent NumPy implementation from
/// the same files. It reproduces sentence-transformers 6.2.0's figures to 6 decimals
/// where they are known; `shared/MODELS.md`'s own pairs (cat/kitten 0.641133,
/// cat/revenue −0.027249, password/credentials 0.685735) were measured on texts it
/// does not record, so they cannot be re-run here.
#[tokio::test]
async fn matches_the_sentence_transformers_pipeline() {
    let texts = [
        "cat".to_owned(),
        "kitten".to_owned(),
        "revenue".to_owned(),
        "password".to_owned(),
        "credentials".to_owned(),
        "The cat sat on the mat.".to_owned(),
        "A kitten is resting on a rug.".to_owned(),
        "Quarterly revenue grew by 12 percent.".to_owned(),
        "How do I reset my password?".to_owned(),
        "I forgot my login credentials.".to_owned(),
        long_paragraph(),
    ];
    let v = embedder().embed(&texts).await.unwrap();
    let expected = [
        (0, 1, 0.788_211),
        (0, 2, 0.316_346),
        (3, 4, 0.583_191),
        (5, 6, 0.608_407),
        (5, 7, -0.028_915),
        (8, 9, 0.636_816),
        // Truncating at 128 tokens instead of 256 would give -0.023360.
        (10, 5, -0.020_370),
        (10, 6, 0.005_730),
    ];
    for (a, b, want) in expected {
        let got = cos(&v[a], &v[b]);
        assert!(
            (got - want).abs() < 1e-4,
            "cos({:?}, {:?}) = {got:.6}, reference {want:.6}",
            &texts[a][..texts[a].len().min(30)],
            &texts[b][..texts[b].len().min(30)],
        );
    }
    let first = [0.130_237f32, -0.015_773, -0.036_717, 0.057_986, -0.059_792];
    for (got, want) in v[5].iter().zip(first) {
        assert!(
            (got - want).abs() < 1e-5,
            "{:?} against {first:?}",
            &v[5][..5]
        );
    }
}

#[tokio::test]
async fn a_batch_equals_one_by_one() {
    let e = embedder();
    let texts = owned(&[
        "Remind me to call the dentist tomorrow morning.",
        "ok",
        "What did we decide about the quarterly budget meeting last week?",
        "",
        "My password manager is Bitwarden and I keep the recovery codes offline.",
        "Paris",
    ]);
    let batch = e.embed(&texts).await.unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, together) in texts.iter().zip(&batch) {
        let alone = e.embed_one(text).await.unwrap();
        assert_eq!(alone.len(), MINILM_DIM);
        let worst = alone
            .iter()
            .zip(together)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{text:?} differs by {worst} in a batch");
    }
}

#[tokio::test]
async fn empty_input_gives_empty_output() {
    assert!(embedder().embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn long_text_is_truncated_without_error() {
    let e = embedder();
    // Each repetition is at least one token: both are cut to the same 256 tokens.
    let long = "memory ".repeat(5000);
    let longer = "memory ".repeat(8000);
    let v = e.embed(&[long, longer]).await.unwrap();
    assert_eq!(v[0].len(), MINILM_DIM);
    assert!(cos(&v[0], &v[1]) > 0.999_99, "{}", cos(&v[0], &v[1]));
}

#[tokio::test]
async fn concurrent_callers_queue_and_get_their_own_answers() {
    let e = Arc::new(embedder());
    let texts: Vec<String> = (0..8)
        .map(|i| format!("note {i}: buy {i} apples"))
        .collect();
    let tasks: Vec<_> = texts
        .iter()
        .cloned()
        .map(|text| {
            let e = Arc::clone(&e);
            tokio::spawn(async move { e.embed_one(&text).await })
        })
        .collect();
    let expected = e.embed(&texts).await.unwrap();
    for (task, want) in tasks.into_iter().zip(expected) {
        let got = task.await.unwrap().unwrap();
        assert!(cos(&got, &want) > 0.999_99);
    }
}

#[tokio::test]
async fn missing_files_name_the_fix() {
    let dir = std::env::temp_dir().join(format!("clara-no-models-{}", std::process::id()));
    let err = LocalEmbedder::load(LocalEmbedderConfig::new(&dir)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EmbedError::Load(_)), "{text}");
    assert!(text.contains("scripts/fetch-models.sh"), "{text}");
    assert!(text.contains("CLARA_MODELS_DIR"), "{text}");
    assert!(text.contains(&dir.display().to_string()), "{text}");
    assert_eq!(text.matches(". ").count(), 0, "one sentence: {text}");
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let zero_threads = LocalEmbedderConfig {
        threads: 0,
        ..LocalEmbedderConfig::default()
    };
    assert!(matches!(
        LocalEmbedder::load(zero_threads),
        Err(EmbedError::Load(_))
    ));
    let too_long = LocalEmbedderConfig {
        max_tokens: 4096,
        ..LocalEmbedderConfig::default()
    };
    let err = LocalEmbedder::load(too_long).unwrap_err();
    assert!(err.to_string().contains("max_tokens"), "{err}");
}

//! The OpenAI-compatible embedder against the fake OpenAI server over real HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{WAIT, closed_port, fast_retry, test_timeouts};
use clara_llm::{EmbedError, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig, Secret};
use clara_testkit::FakeOpenAi;
use clara_testkit::fake_openai::{FAKE_EMBEDDING_DIM, FakeEmbeddingReply, fake_embedding};
use serde_json::json;

const KEY: &str = "sk-embed-secret-123";

fn config(base_url: String) -> OpenAiEmbedderConfig {
    OpenAiEmbedderConfig {
        api_key: Some(Secret::from(KEY)),
        key_setting: Some("CLARA_EMBEDDINGS_API_KEY".into()),
        retry: fast_retry(),
        timeouts: test_timeouts(),
        ..OpenAiEmbedderConfig::new(base_url, "text-embedding-test")
    }
}

fn embedder(fake: &FakeOpenAi) -> OpenAiEmbedder {
    OpenAiEmbedder::new(config(fake.base_url())).unwrap()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-6, "{a:?} != {b:?}");
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn request_shape_auth_header_and_vectors() {
    let fake = FakeOpenAi::start().await;
    let e = embedder(&fake);
    assert_eq!(e.model().name, "127.0.0.1/text-embedding-test");
    assert_eq!(e.model().dim, 0, "unknown until the first answer");

    let input = texts(&["The cat sat on the mat", "Quarterly revenue grew"]);
    let vectors = e.embed(&input).await.unwrap();

    let requests = fake.wait_for_embedding_requests(1, WAIT).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.body["model"], "text-embedding-test");
    assert_eq!(
        request.body["input"],
        json!(["The cat sat on the mat", "Quarterly revenue grew"])
    );
    assert_eq!(request.body["encoding_format"], "float");
    assert!(request.body.get("dimensions").is_none());
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(fake.requests().is_empty(), "no chat request was made");

    assert_eq!(vectors.len(), 2);
    for (text, vector) in input.iter().zip(&vectors) {
        assert_close(vector, &fake_embedding(text, FAKE_EMBEDDING_DIM));
    }
    assert_eq!(e.model().dim, FAKE_EMBEDDING_DIM, "learned from the answer");
}

#[tokio::test]
async fn large_inputs_are_split_into_batches_in_order() {
    let fake = FakeOpenAi::start().await;
    let e = OpenAiEmbedder::new(OpenAiEmbedderConfig {
        batch_size: 2,
        ..config(fake.base_url())
    })
    .unwrap();
    let input: Vec<String> = (0..5)
        .map(|i| format!("note number {i} about topic {i}"))
        .collect();
    let vectors = e.embed(&input).await.unwrap();

    let requests = fake.embedding_requests();
    let sizes: Vec<usize> = requests.iter().map(|r| r.inputs().len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    let sent: Vec<String> = requests.iter().flat_map(|r| r.inputs()).collect();
    assert_eq!(sent, input, "every text once, in order");
    assert_eq!(vectors.len(), 5);
    for (text, vector) in input.iter().zip(&vectors) {
        assert_close(vector, &fake_embedding(text, FAKE_EMBEDDING_DIM));
    }
}

#[tokio::test]
async fn vectors_are_put_in_order_by_index() {
    let fake = FakeOpenAi::start().await;
    fake.push_embedding(FakeEmbeddingReply::Reversed);
    let input = texts(&["alpha beta", "gamma delta", "epsilon zeta"]);
    let vectors = embedder(&fake).embed(&input).await.unwrap();
    for (text, vector) in input.iter().zip(&vectors) {
        assert_close(vector, &fake_embedding(text, FAKE_EMBEDDING_DIM));
    }
}

#[tokio::test]
async fn similar_texts_stay_similar_and_vectors_are_normalised() {
    let fake = FakeOpenAi::start().await;
    let e: Arc<dyn Embedder> = Arc::new(embedder(&fake));
    let a = e
        .embed_one("remember my dentist appointment")
        .await
        .unwrap();
    let b = e
        .embed_one("my dentist appointment is on friday")
        .await
        .unwrap();
    let c = e.embed_one("quarterly revenue report").await.unwrap();
    assert!((dot(&a, &a) - 1.0).abs() < 1e-5);
    assert!(dot(&a, &b) > dot(&a, &c));
}

#[tokio::test]
async fn empty_input_sends_nothing_and_empty_texts_still_get_vectors() {
    let fake = FakeOpenAi::start().await;
    let e = embedder(&fake);
    assert!(e.embed(&[]).await.unwrap().is_empty());
    assert_eq!(fake.embedding_requests().len(), 0);

    // The fake refuses empty strings as OpenAI does; the embedder sends a space.
    let vectors = e.embed(&texts(&["", "hello"])).await.unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(fake.embedding_requests()[0].inputs(), vec![" ", "hello"]);
}

#[tokio::test]
async fn dimensions_are_sent_when_asked_and_checked() {
    let fake = FakeOpenAi::start().await;
    let e = OpenAiEmbedder::new(OpenAiEmbedderConfig {
        dimensions: Some(16),
        send_dimensions: true,
        ..config(fake.base_url())
    })
    .unwrap();
    assert_eq!(e.model().dim, 16);
    let vectors = e.embed(&texts(&["short"])).await.unwrap();
    assert_eq!(vectors[0].len(), 16);
    assert_eq!(fake.embedding_requests()[0].body["dimensions"], 16);

    // Configured but not sent: the server's 64 numbers are refused.
    let e = OpenAiEmbedder::new(OpenAiEmbedderConfig {
        dimensions: Some(16),
        ..config(fake.base_url())
    })
    .unwrap();
    let err = e.embed(&texts(&["short"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Malformed(_)), "{err}");
}

#[tokio::test]
async fn probe_learns_the_dimension() {
    let fake = FakeOpenAi::start().await;
    fake.set_embedding_dim(48);
    let e = embedder(&fake);
    let model = e.probe().await.unwrap();
    assert_eq!(model.dim, 48);
    assert_eq!(e.model(), &model);
    // Known now: no second request.
    e.probe().await.unwrap();
    assert_eq!(fake.embedding_requests().len(), 1);
}

#[tokio::test]
async fn unauthorized_names_the_setting_never_the_key_and_is_not_retried() {
    for status in [401, 403] {
        let fake = FakeOpenAi::start().await;
        fake.push_embedding(FakeEmbeddingReply::error(
            status,
            format!("Incorrect API key provided: {KEY}."),
        ));
        let err = embedder(&fake).embed(&texts(&["hi"])).await.unwrap_err();
        match &err {
            EmbedError::Unauthorized { key_setting } => {
                assert_eq!(key_setting, "CLARA_EMBEDDINGS_API_KEY");
            }
            other => panic!("expected Unauthorized for {status}, got {other:?}"),
        }
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
        assert!(err.to_string().contains("CLARA_EMBEDDINGS_API_KEY"));
        assert_eq!(fake.embedding_requests().len(), 1, "not retried");
    }
}

#[tokio::test]
async fn openai_config_names_openai_api_key() {
    let fake = FakeOpenAi::start().await;
    fake.push_embedding(FakeEmbeddingReply::error(401, "bad key"));
    let mut config = OpenAiEmbedderConfig::openai(KEY, "text-embedding-3-small");
    config.base_url = fake.base_url();
    config.retry = fast_retry();
    let err = OpenAiEmbedder::new(config)
        .unwrap()
        .embed(&texts(&["hi"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EmbedError::Unauthorized { key_setting } if key_setting == "OPENAI_API_KEY"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let fake = FakeOpenAi::start().await;
    fake.push_embedding(FakeEmbeddingReply::Error {
        status: 429,
        message: "Rate limit reached for requests".into(),
        retry_after: Some(1),
    });
    let started = Instant::now();
    let vectors = embedder(&fake).embed(&texts(&["hello"])).await.unwrap();
    assert_eq!(vectors.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(fake.embedding_requests().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let fake = FakeOpenAi::start().await;
    fake.push_embedding(FakeEmbeddingReply::error(500, "boom"));
    fake.push_embedding(FakeEmbeddingReply::error(502, "bad gateway"));
    let e = embedder(&fake);
    assert_eq!(e.embed(&texts(&["hello"])).await.unwrap().len(), 1);
    assert_eq!(fake.embedding_requests().len(), 3);

    for _ in 0..3 {
        fake.push_embedding(FakeEmbeddingReply::error(503, "overloaded"));
    }
    let err = e.embed(&texts(&["hello"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Endpoint(_)), "{err:?}");
    assert_eq!(fake.embedding_requests().len(), 6, "three attempts");
}

#[tokio::test]
async fn client_errors_carry_the_servers_message_and_are_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push_embedding(FakeEmbeddingReply::error(
        400,
        "This model's maximum context length is 8192 tokens",
    ));
    let err = embedder(&fake).embed(&texts(&["x"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Endpoint(m) if m.contains("8192") && m.contains("400")),
        "{err:?}"
    );
    assert_eq!(fake.embedding_requests().len(), 1);
}

#[tokio::test]
async fn wrong_count_dimension_or_json_is_malformed() {
    let fake = FakeOpenAi::start().await;
    let e = embedder(&fake);

    fake.push_embedding(FakeEmbeddingReply::MissingOne);
    let err = e.embed(&texts(&["one", "two"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Malformed(m) if m.contains("1 vectors for 2 texts")),
        "{err:?}"
    );

    fake.push_embedding(FakeEmbeddingReply::Raw("not json at all".into()));
    let err = e.embed(&texts(&["one"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Malformed(_)), "{err:?}");

    fake.push_embedding(FakeEmbeddingReply::Raw(
        r#"{"object":"list","data":"nope"}"#.into(),
    ));
    let err = e.embed(&texts(&["one"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Malformed(_)), "{err:?}");

    // Learn 64, then an answer of 3 numbers.
    e.embed(&texts(&["one"])).await.unwrap();
    fake.push_embedding(FakeEmbeddingReply::Raw(
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]})
            .to_string(),
    ));
    let err = e.embed(&texts(&["one"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Malformed(m) if m.contains("3 numbers")),
        "{err:?}"
    );
    // Malformed answers are not retried: one request each.
    assert_eq!(fake.embedding_requests().len(), 5);
}

#[tokio::test]
async fn unreachable_server_is_an_endpoint_error() {
    let e = OpenAiEmbedder::new(config(format!("http://127.0.0.1:{}/v1", closed_port()))).unwrap();
    let err = e.embed(&texts(&["hi"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Endpoint(m) if m.contains("127.0.0.1")),
        "{err:?}"
    );
}

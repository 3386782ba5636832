//! `clara memory …` and memory in `clara chat`, through the real binary: the local
//! embedding model (fetched by scripts/fetch-models.sh; a test that needs it fails
//! when it is missing), a real SQLite file, and fake model APIs.

use crate::common::{SECRET, clara, run, text, with_fake};
use clara_testkit::fake_openai::FakeOpenAi;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// `clara` with the local embedding model's folder (shared by every data dir).
#[cfg(feature = "local-model")]
fn clara_with_model(data_dir: &Path, cwd: &Path) -> Command {
    let mut cmd = clara(data_dir, cwd);
    cmd.env("CLARA_MODELS_DIR", models_dir());
    cmd
}

/// The machine's models folder; the embedding model must be in it.
#[cfg(feature = "local-model")]
fn models_dir() -> PathBuf {
    let dir = clara_llm::local::default_models_dir();
    let model = dir.join("all-minilm-l6-v2").join("model.safetensors");
    assert!(
        model.is_file(),
        "the local embedding model is missing ({}); run scripts/fetch-models.sh",
        model.display()
    );
    dir
}

/// Runs `clara <args>`, expecting success; returns standard output.
async fn ok(cmd: &mut Command, args: &[&str]) -> String {
    let out = run(cmd.args(args), "").await;
    assert!(
        out.status.success(),
        "clara {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `clara <args>`, expecting failure with one `clara: …` sentence; returns it.
async fn fails(cmd: &mut Command, args: &[&str]) -> String {
    let out = run(cmd.args(args), "").await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "clara {args:?} succeeded: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.starts_with("clara: "), "{stderr}");
    stderr
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[cfg(feature = "local-model")]
#[tokio::test]
async fn add_list_search_history_forget_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cwd = dir.path();
    let project = ["--project", "garden"];

    let tea = json(
        &ok(
            &mut clara_with_model(&data, cwd),
            &[
                &["memory", "add", "Ann drinks green tea every morning"][..],
                &project,
                &["--json"],
            ]
            .concat(),
        )
        .await,
    );
    let tea_id = tea["id"].as_str().unwrap().to_owned();
    assert_eq!(tea["kind"], "fact");
    assert_eq!(tea["shareable"], true, "project memories are shared");
    let said = ok(
        &mut clara_with_model(&data, cwd),
        &[
            &["memory", "add", "The tomatoes need watering on Tuesdays"][..],
            &project,
            &["--kind", "event"],
        ]
        .concat(),
    )
    .await;
    assert!(
        said.starts_with("Remembered ") && said.contains("event"),
        "{said}"
    );

    let table = ok(
        &mut clara(&data, cwd),
        &[&["memory", "list"][..], &project].concat(),
    )
    .await;
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&tea_id) && table.contains("Ann drinks green tea"),
        "{table}"
    );
    assert!(table.contains("The tomatoes need watering"), "{table}");

    let found = json(
        &ok(
            &mut clara_with_model(&data, cwd),
            &[
                &["memory", "search", "what does Ann drink?"][..],
                &project,
                &["--json"],
            ]
            .concat(),
        )
        .await,
    );
    assert_eq!(found[0]["id"].as_str(), Some(tea_id.as_str()), "{found}");
    assert!(found[0]["score"].as_f64().unwrap() > 0.0);

    let history = ok(&mut clara(&data, cwd), &["memory", "history", &tea_id]).await;
    assert!(
        history.contains(" add ") && history.contains("+ Ann drinks green tea"),
        "{history}"
    );

    // Export, then import into a fresh data dir: the project is recreated by name.
    let export = dir.path().join("garden.jsonl");
    ok(
        &mut clara(&data, cwd),
        &[
            &["memory", "export", "--out", export.to_str().unwrap()][..],
            &project,
        ]
        .concat(),
    )
    .await;
    let lines: Vec<Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(json)
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["project"], "garden");
    let fresh = dir.path().join("fresh");
    let said = ok(
        &mut clara_with_model(&fresh, cwd),
        &["memory", "import", export.to_str().unwrap()],
    )
    .await;
    assert!(said.contains("Imported 2 of 2"), "{said}");
    let imported = json(
        &ok(
            &mut clara(&fresh, cwd),
            &["memory", "list", "--project", "garden", "--json"],
        )
        .await,
    );
    let texts: Vec<&str> = imported
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"Ann drinks green tea every morning"),
        "{texts:?}"
    );
    // Imported memories are searchable at once (they were embedded on import).
    let found = json(
        &ok(
            &mut clara_with_model(&fresh, cwd),
            &[
                "memory",
                "search",
                "watering plants",
                "--project",
                "garden",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(found[0]["text"], "The tomatoes need watering on Tuesdays");
    // Importing again adds nothing; into another scope by flag.
    let said = ok(
        &mut clara_with_model(&fresh, cwd),
        &["memory", "import", export.to_str().unwrap()],
    )
    .await;
    assert!(said.contains("Imported 0 of 2"), "{said}");

    // Forget one, then erase the other: the list is empty, the history stays.
    let said = ok(
        &mut clara(&data, cwd),
        &[
            "memory",
            "forget",
            &tea_id,
            "--reason",
            "Ann switched to coffee",
        ],
    )
    .await;
    assert!(said.contains("Forgot"), "{said}");
    let history = ok(&mut clara(&data, cwd), &["memory", "history", &tea_id]).await;
    assert!(
        history.contains(" forget ") && history.contains("Ann switched to coffee"),
        "{history}"
    );
    let listed = json(
        &ok(
            &mut clara(&data, cwd),
            &[&["memory", "list", "--json"][..], &project].concat(),
        )
        .await,
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let other = listed[0]["id"].as_str().unwrap().to_owned();
    ok(
        &mut clara(&data, cwd),
        &["memory", "forget", &other, "--purge"],
    )
    .await;
    let listed = ok(
        &mut clara(&data, cwd),
        &[&["memory", "list"][..], &project].concat(),
    )
    .await;
    assert_eq!(listed.trim(), "No memories.");
    let all = ok(
        &mut clara(&data, cwd),
        &[&["memory", "list", "--all"][..], &project].concat(),
    )
    .await;
    assert!(all.contains("(forgotten) Ann drinks green tea"), "{all}");
    assert!(!all.contains("tomatoes"), "purged memories are gone: {all}");
    let err = fails(&mut clara(&data, cwd), &["memory", "history", &other]).await;
    assert!(err.contains("no memory"), "{err}");
    // A forgotten memory is not found by search.
    let found = json(
        &ok(
            &mut clara_with_model(&data, cwd),
            &[&["memory", "search", "green tea", "--json"][..], &project].concat(),
        )
        .await,
    );
    assert_eq!(found, Value::Array(Vec::new()));
}

#[tokio::test]
async fn unknown_people_ids_and_scopes_are_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cwd = dir.path();

    let err = fails(
        &mut clara(&data, cwd),
        &["memory", "list", "--user", "cli:nobody"],
    )
    .await;
    assert!(err.contains("no user") && err.contains("nobody"), "{err}");
    let err = fails(
        &mut clara(&data, cwd),
        &[
            "memory",
            "list",
            "--user",
            "0190b3a1-0000-7000-8000-000000000000",
        ],
    )
    .await;
    assert!(err.contains("no user"), "{err}");
    let err = fails(
        &mut clara(&data, cwd),
        &["memory", "list", "--user", "alice"],
    )
    .await;
    assert!(err.contains("platform:platform_user_id"), "{err}");
    let err = fails(
        &mut clara(&data, cwd),
        &["memory", "list", "--project", "nope"],
    )
    .await;
    assert!(err.contains("no project"), "{err}");
    let err = fails(&mut clara(&data, cwd), &["memory", "list"]).await;
    assert!(err.contains("--user") && err.contains("--project"), "{err}");
    let err = fails(
        &mut clara(&data, cwd),
        &["memory", "history", "0190b3a1-0000-7000-8000-000000000000"],
    )
    .await;
    assert!(err.contains("no memory"), "{err}");
    let err = fails(&mut clara(&data, cwd), &["memory", "forget", "not-an-id"]).await;
    assert!(err.contains("not a memory id"), "{err}");
    // None of this needs a chat model, even a wrongly configured one.
    let mut cmd = clara(&data, cwd);
    cmd.env("LLM_PROVIDER", "anthropic");
    let err = fails(&mut cmd, &["memory", "list", "--project", "nope"]).await;
    assert!(err.contains("no project"), "{err}");
    // Wrong memory settings are named at start.
    let mut cmd = clara(&data, cwd);
    cmd.env("CLARA_MEMORY__EMBEDDER", "word2vec");
    let err = fails(&mut cmd, &["memory", "list", "--project", "nope"]).await;
    assert!(err.contains("memory.embedder"), "{err}");
}

#[cfg(feature = "local-model")]
#[tokio::test]
async fn eval_prints_recall_at_k() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    let queries = dir.path().join("queries.jsonl");
    std::fs::write(
        &corpus,
        [
            r#"{"id": "m1", "scope": "alice", "text": "Alice moved to Lisbon last spring"}"#,
            r#"{"id": "m2", "scope": "alice", "text": "Alice is allergic to peanuts"}"#,
            r#"{"id": "m3", "scope": "alice", "text": "Alice plays the cello in an orchestra"}"#,
            r#"{"id": "m4", "scope": "bob", "text": "Bob lives in Lisbon too"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    std::fs::write(
        &queries,
        [
            r#"{"scope": "alice", "text": "where does Alice live?", "relevant": ["m1"]}"#,
            r#"{"scope": "alice", "text": "what instrument does she play", "relevant": ["m3"]}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let report = ok(
        &mut clara_with_model(&dir.path().join("data"), dir.path()),
        &[
            "memory",
            "eval",
            "--corpus",
            corpus.to_str().unwrap(),
            "--queries",
            queries.to_str().unwrap(),
            "--k",
            "1,3",
        ],
    )
    .await;
    assert!(
        report.contains("recall@1") && report.contains("recall@3"),
        "{report}"
    );
    assert!(report.contains("local/all-minilm-l6-v2"), "{report}");
    assert!(
        !dir.path().join("data").join("clara.db").exists(),
        "eval leaves the store alone"
    );
}

/// Memory must not break the chat path: with memory on, the answer still comes,
/// and a memory added by the operator reaches the next prompt.
#[cfg(feature = "local-model")]
#[tokio::test]
async fn chat_with_memory_answers_and_recalls_what_the_operator_added() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cwd = dir.path();

    let mut cmd = clara_with_model(&data, cwd);
    with_fake(&mut cmd, &fake);
    let out = run(cmd.arg("chat"), "hello there\n").await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "You said: hello there\n");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    // `ann` (the test's $USER) now exists as cli:ann.
    ok(
        &mut clara_with_model(&data, cwd),
        &[
            "memory",
            "add",
            "Ann's favourite colour is green",
            "--user",
            "cli:ann",
            "--kind",
            "preference",
        ],
    )
    .await;

    let before = fake.request_count();
    let mut cmd = clara_with_model(&data, cwd);
    with_fake(&mut cmd, &fake);
    let out = run(cmd.arg("chat"), "what is my favourite colour?\n").await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "You said: what is my favourite colour?\n"
    );
    let reply = fake
        .requests()
        .into_iter()
        .skip(before)
        .find(|r| r.last_user_text().as_deref() == Some("what is my favourite colour?"))
        .expect("the reply's request");
    assert!(
        reply.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Ann's favourite colour is green"),
        "recalled into the prompt: {}",
        reply.body
    );
}

/// The quick start keeps working without the embedding model: one sentence says
/// how to get it, and Clara answers without memory.
#[tokio::test]
async fn without_the_embedding_model_chat_runs_without_memory_and_says_so_once() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &fake);
    // No python3 on the PATH: the model cannot be fetched on first use either.
    cmd.env("CLARA_MODELS_DIR", dir.path().join("no-models"))
        .env("PATH", dir.path());
    let out = run(cmd.arg("chat"), "hi\n").await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "You said: hi\n");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "what is fetched, then why not: {stderr}");
    assert!(lines[0].starts_with("clara: fetching the local embedding model"));
    assert!(
        lines[1].starts_with("warning: long-term memory is off")
            && lines[1].contains("python3")
            && lines[1].contains("scripts/fetch-models.sh"),
        "{stderr}"
    );
    // Commands that need the embedder fail with the same advice.
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.env("CLARA_MODELS_DIR", dir.path().join("no-models"))
        .env("PATH", dir.path());
    let out = run(cmd.args(["memory", "add", "x", "--project", "p"]), "").await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("clara: ") && last.contains("scripts/fetch-models.sh"),
        "{stderr}"
    );
}

/// `memory.embedder = "openai"`: an OpenAI-compatible embeddings endpoint, its key
/// sent there and never printed.
#[tokio::test]
async fn an_openai_compatible_embedder_works_and_keeps_its_key_secret() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let embedder = |cmd: &mut Command| {
        cmd.env("CLARA_MEMORY__EMBEDDER", "openai")
            .env("CLARA_MEMORY__EMBEDDINGS_URL", fake.base_url())
            .env("CLARA_MEMORY__EMBEDDING_MODEL", "fake-embed")
            .env("CLARA_MEMORY__API_KEY", SECRET);
    };
    let mut cmd = clara(&data, dir.path());
    embedder(&mut cmd);
    ok(
        &mut cmd,
        &[
            "memory",
            "add",
            "The launch is on Friday",
            "--project",
            "rocket",
        ],
    )
    .await;
    let mut cmd = clara(&data, dir.path());
    embedder(&mut cmd);
    let found = json(
        &ok(
            &mut cmd,
            &[
                "memory",
                "search",
                "The launch is on Friday",
                "--project",
                "rocket",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(found[0]["text"], "The launch is on Friday");
    let requests = fake.embedding_requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {SECRET}")))
    );
    assert_eq!(requests[0].body["model"], "fake-embed");

    // A rejected key names its setting, not its value.
    fake.push_embedding(clara_testkit::fake_openai::FakeEmbeddingReply::error(
        401,
        format!("Incorrect API key provided: {SECRET}"),
    ));
    let mut cmd = clara(&data, dir.path());
    embedder(&mut cmd);
    cmd.arg("-vv");
    let out = run(cmd.args(["memory", "add", "x", "--project", "rocket"]), "").await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CLARA_MEMORY__API_KEY"), "{stderr}");
    assert!(
        !stderr.contains(SECRET) && !text(&out.stdout).contains(SECRET),
        "{stderr}"
    );
}

#[tokio::test]
async fn jobs_shows_the_backlog_and_refuses_to_retry_what_did_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let said = ok(&mut clara(&data, dir.path()), &["jobs"]).await;
    assert_eq!(said.trim(), "No background jobs.");
    let err = fails(&mut clara(&data, dir.path()), &["jobs", "retry", "7"]).await;
    assert!(err.contains("there is no job 7"), "{err}");
}

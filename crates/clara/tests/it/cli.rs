//! The `clara` binary as a person uses it: piped chat, history across runs,
//! configuration errors, migrations, and a clean stop of `clara serve`.

use crate::common::{
    SECRET, chat_requests, clara, free_port, run, terminate, text, wait_ready, with_fake,
};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};

#[tokio::test]
async fn piped_lines_are_one_thought_and_history_persists_across_runs() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut cmd = clara(&data, dir.path());
    with_fake(&mut cmd, &fake);
    let out = run(cmd.arg("chat"), "hello there\nhow are you?\n").await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "You said: hello there\nhow are you?\n");
    assert_eq!(
        chat_requests(&fake).len(),
        1,
        "two lines piped together are one thought"
    );
    assert!(
        fake.requests()[0]
            .header("authorization")
            .unwrap()
            .ends_with(SECRET)
    );
    assert!(
        data.join("clara.db").is_file(),
        "the database lives in CLARA_DATA_DIR"
    );

    let mut cmd = clara(&data, dir.path());
    with_fake(&mut cmd, &fake);
    let out = run(cmd.arg("chat"), "what did I say?\n").await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let messages = chat_requests(&fake)[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let history: Vec<_> = messages
        .iter()
        .skip(1)
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        history,
        vec![
            "hello there",
            "how are you?",
            "You said: hello there\nhow are you?",
            "what did I say?"
        ]
    );
    let system = messages[0]["content"].as_str().unwrap();
    assert!(system.contains("You are Clara"));
    assert!(system.contains("talking with ann"));
}

#[tokio::test]
async fn a_failing_model_is_one_sentence_and_the_key_never_shows() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::Error {
        status: 401,
        message: format!("Incorrect API key provided: {SECRET}"),
        retry_after: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &fake);
    cmd.arg("-vv");
    let out = run(cmd.arg("chat"), "hi\n").await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let sentence = stderr
        .lines()
        .find(|l| l.starts_with("clara: "))
        .expect("an error line");
    assert!(sentence.contains("API key"), "{sentence}");
    assert!(
        !stderr.contains(SECRET) && !text(&out.stdout).contains(SECRET),
        "secret leaked: {stderr}"
    );
}

#[tokio::test]
async fn missing_or_wrong_settings_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "anthropic");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert_eq!(err.lines().count(), 1, "one sentence: {err}");
    assert!(err.contains("ANTHROPIC_API_KEY"), "{err}");

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "gpt5");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert!(
        err.contains("LLM_PROVIDER") && err.contains("anthropic"),
        "{err}"
    );

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "ollama");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert!(err.contains("LLM_MODEL"), "{err}");

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "openai")
        .env("CUSTOM_OPENAI_BASE_URL", "http://x")
        .env("MODEL_TIER", "ultra");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert!(err.contains("MODEL_TIER"), "{err}");

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "openai")
        .env("CUSTOM_OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert!(err.contains("CUSTOM_OPENAI_MODEL"), "{err}");

    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "openai")
        .env("CUSTOM_OPENAI_BASE_URL", "localhost:8080")
        .env("CUSTOM_OPENAI_MODEL", "m");
    let err = text(&run(cmd.arg("chat"), "").await.stderr);
    assert!(
        err.contains("CUSTOM_OPENAI_BASE_URL") && err.contains("http"),
        "{err}"
    );

    std::fs::write(dir.path().join("clara.toml"), "[chat]\nquiet_msec = 5\n").unwrap();
    let err = text(&run(clara(&data, dir.path()).arg("chat"), "").await.stderr);
    assert!(
        err.contains("quiet_msec") && err.contains("clara.toml"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("clara.toml"),
        "[chat]\nquiet_ms = \"soon\"\n",
    )
    .unwrap();
    let err = text(&run(clara(&data, dir.path()).arg("chat"), "").await.stderr);
    assert!(err.contains("quiet_ms"), "{err}");
}

#[tokio::test]
async fn the_config_file_and_its_environment_overrides_apply() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[llm]\nprovider = \"openai\"\n[llm.openai]\nbase_url = \"{}\"\nmodel = \"from-file\"\n[chat]\npersona = \"You are Test-Clara.\"\n",
        fake.base_url()
    );
    std::fs::write(dir.path().join("clara.toml"), toml).unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.env("CLARA_LLM__OPENAI__MODEL", "from-env");
    let out = run(cmd.arg("chat"), "hi\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let request = &fake.requests()[0];
    assert_eq!(request.model(), Some("from-env"));
    assert!(
        request.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are Test-Clara.")
    );
    assert!(
        request.header("authorization").is_none(),
        "no key configured, none sent"
    );
}

#[cfg(feature = "local-model")]
#[tokio::test]
async fn with_no_configuration_the_local_model_answers_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    // The model is shared by every data dir; fetched once per machine (pip).
    cmd.env("CLARA_MODELS_DIR", clara_llm::local::default_models_dir())
        .env("CLARA_LLM__LOCAL__MAX_TOKENS", "24");
    let out = run(cmd.arg("chat"), "What is the capital of France?\n").await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(!text(&out.stdout).trim().is_empty(), "an answer");
    assert_eq!(
        stderr.matches("built-in local model").count(),
        1,
        "said once: {stderr}"
    );
}

#[tokio::test]
async fn environment_names_of_the_old_system_pick_providers_and_tier_models() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &fake);
    cmd.env("CUSTOM_OPENAI_MODEL_HIGH", "big-one")
        .env("CLARA_UNRELATED_SETTING", "ignored");
    let out = run(cmd.arg("chat"), "!high hello?\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fake.requests()[0].model(), Some("big-one"));
    assert_eq!(fake.requests()[0].last_user_text().unwrap(), "hello?");
}

#[tokio::test]
async fn migrate_and_migrate_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = text(
        &run(clara(&data, dir.path()).args(["migrate", "status"]), "")
            .await
            .stdout,
    );
    assert!(status.contains("pending"), "{status}");
    // A model setting that is wrong does not stop a migration, which needs none.
    let mut cmd = clara(&data, dir.path());
    cmd.env("LLM_PROVIDER", "anthropic");
    let out = run(cmd.arg("migrate"), "").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("applied"));
    let status = text(
        &run(clara(&data, dir.path()).args(["migrate", "status"]), "")
            .await
            .stdout,
    );
    assert!(
        status.contains("applied") && !status.contains("pending"),
        "{status}"
    );
    let again = text(
        &run(clara(&data, dir.path()).arg("migrate"), "")
            .await
            .stdout,
    );
    assert!(again.contains("up to date"), "{again}");
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    with_fake(&mut cmd, &fake);
    let port = free_port();
    cmd.env("CLARA_GATEWAY_PORT", port.to_string());
    let child = cmd.arg("serve").spawn().unwrap();
    wait_ready(port).await;
    let out = terminate(child).await;
    assert!(
        out.status.success(),
        "exit: {:?}, stderr: {}",
        out.status,
        text(&out.stderr)
    );
    let log = text(&out.stderr);
    assert!(
        log.contains("Clara is running") && log.contains("shutting down"),
        "{log}"
    );
    assert!(!log.contains(SECRET));
}

#[tokio::test]
async fn each_provider_answers_through_the_binary_with_the_old_variable_names() {
    use clara_testkit::fake_anthropic::FakeAnthropic;
    use clara_testkit::fake_ollama::FakeOllama;

    let anthropic = FakeAnthropic::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.env("LLM_PROVIDER", "anthropic")
        .env("ANTHROPIC_API_KEY", SECRET)
        .env("ANTHROPIC_BASE_URL", anthropic.base_url())
        .env("ANTHROPIC_MODEL_LOW", "claude-haiku");
    let out = run(cmd.arg("chat"), "!low hi there\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "You said: hi there\n");
    let request = &anthropic.requests()[0];
    assert_eq!(request.header("x-api-key"), Some(SECRET));
    assert_eq!(request.body["model"], "claude-haiku");
    assert!(request.body["system"].to_string().contains("You are Clara"));

    let ollama = FakeOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = clara(&dir.path().join("data"), dir.path());
    cmd.env("LLM_PROVIDER", "ollama")
        .env("LLM_API_URL", ollama.base_url())
        .env("LLM_MODEL", "llama3.2");
    let out = run(cmd.arg("chat"), "hello ollama\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "You said: hello ollama\n");
    assert_eq!(ollama.requests()[0].body["model"], "llama3.2");
}

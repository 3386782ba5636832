//! Serves the fake OpenAI-compatible API on 127.0.0.1:8089 (or the port given), so
//! Clara can be tried end to end without a model. It answers "You said: …".
//!
//! ```sh
//! cargo run -p clara-testkit --example fake_openai
//! LLM_PROVIDER=openai CUSTOM_OPENAI_BASE_URL=http://127.0.0.1:8089/v1 CUSTOM_OPENAI_MODEL=fake cargo run -p clara -- chat
//! ```
#![allow(missing_docs)]

use clara_testkit::fake_openai::FakeOpenAi;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8089);
    let fake = FakeOpenAi::start_on(port).await;
    println!(
        "fake OpenAI-compatible API at {} (Ctrl-C to stop)",
        fake.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
}

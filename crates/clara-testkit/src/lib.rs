//! Fakes of the outside services Clara talks to, for tests and benchmarks.
//!
//! Each fake is a real local server speaking the service's real wire format (status
//! codes, JSON shapes, SSE framing, rate-limit answers), scripted per test. This crate is
//! only ever a dev-dependency: production code must never depend on it, and it depends
//! on no Clara crate, so it cannot drift into testing Clara against itself.

pub mod fake_anthropic;
pub mod fake_discord;
pub mod fake_ollama;
pub mod fake_openai;
pub mod fake_telegram;
pub mod mcp_servers;
mod recorder;

pub use fake_anthropic::{FakeAnthropic, FakeAnthropicReply};
pub use fake_discord::FakeDiscord;
pub use fake_ollama::{FakeOllama, FakeOllamaReply};
pub use fake_openai::{FakeOpenAi, FakeReply, RecordedRequest};
pub use fake_telegram::FakeTelegram;

//! The engine's settings.

use crate::approvals::Owner;
use clara_core::Tier;
use clara_core::chunker::ChunkerConfig;
use clara_core::context::WindowRules;
use clara_core::stop::StopPhrases;
use clara_tools::Rule;
use std::time::Duration;

/// Clara's default persona.
pub const DEFAULT_PERSONA: &str = "You are Clara, a warm, direct and capable personal assistant. \
You remember the people you talk with and what matters to them. Answer in the person's language, \
keep answers as short as the question allows, and say so plainly when you don't know something.";

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Who Clara is.
    pub persona: String,
    /// How bursts are merged.
    pub chunker: ChunkerConfig,
    /// Which history goes into a prompt.
    pub window: WindowRules,
    /// Messages that cancel without a reply.
    pub stop_phrases: StopPhrases,
    /// A session ends after this long without messages.
    pub session_idle: Duration,
    /// How often idle sessions are looked for and summary jobs run.
    pub session_check_every: Duration,
    /// The longest message accepted, in characters.
    pub max_message_chars: usize,
    /// How long a platform event id is remembered for de-duplication.
    pub dedupe_ttl: Duration,
    /// A conversation's actor stops after this long with nothing to do (it is
    /// started again, from the store, by the next message).
    pub actor_idle: Duration,
    /// Upper bound of the answer's length, in tokens, if any.
    pub max_reply_tokens: Option<u32>,
    /// Which model answers at each tier.
    pub tiers: TierModels,
    /// The tier of a thought that names none.
    pub default_tier: Tier,
    /// Pick the tier from the thought itself (see [`Tier::auto`]) instead of the default.
    pub auto_tier: bool,
    /// Rounds of tool calls a reply may make before it must answer.
    pub tool_rounds: usize,
    /// How long a reply waits for memory recall before it goes on without memories.
    pub recall_timeout: Duration,
    /// Who approves tool calls, how long a question waits, the owner's rules.
    pub approvals: ApprovalConfig,
}

/// Who approves tool calls, and the rules that decide when they are asked.
#[derive(Clone, Debug)]
pub struct ApprovalConfig {
    /// Whose answers count (`telegram:123456`; `cli:*` is whoever runs the
    /// terminal). Questions go to an owner's direct conversation.
    pub owners: Vec<Owner>,
    /// How long a question waits; no answer is a deny.
    pub timeout: Duration,
    /// The owner's rules, after Clara's defaults.
    pub rules: Vec<Rule>,
}

impl Default for ApprovalConfig {
    /// The operator at the terminal and on the web page; two minutes; no rules.
    fn default() -> Self {
        Self {
            owners: vec![
                Owner {
                    platform: "cli".into(),
                    user: "*".into(),
                },
                Owner {
                    platform: "web".into(),
                    user: "owner".into(),
                },
            ],
            timeout: Duration::from_secs(120),
            rules: Vec::new(),
        }
    }
}

/// The model for each tier; `None` means the provider's configured model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierModels {
    /// `!high`.
    pub high: Option<String>,
    /// `!mid`.
    pub mid: Option<String>,
    /// `!low`.
    pub low: Option<String>,
}

impl TierModels {
    /// The model for `tier`.
    pub fn model_for(&self, tier: Tier) -> Option<&str> {
        match tier {
            Tier::High => self.high.as_deref(),
            Tier::Mid => self.mid.as_deref(),
            Tier::Low => self.low.as_deref(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            persona: DEFAULT_PERSONA.to_owned(),
            chunker: ChunkerConfig::default(),
            window: WindowRules::default(),
            stop_phrases: StopPhrases::default(),
            session_idle: Duration::from_secs(30 * 60),
            session_check_every: Duration::from_secs(30),
            max_message_chars: 16_000,
            dedupe_ttl: Duration::from_secs(24 * 3600),
            actor_idle: Duration::from_secs(15 * 60),
            max_reply_tokens: None,
            tiers: TierModels::default(),
            default_tier: Tier::Mid,
            auto_tier: false,
            tool_rounds: 5,
            recall_timeout: Duration::from_millis(500),
            approvals: ApprovalConfig::default(),
        }
    }
}

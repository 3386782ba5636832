//! The tools this `clara` offers: the one place tool providers are listed and
//! the registry is built. `serve`, `chat` and `gateway` (through `start_engine`)
//! and `worker` all call [`registry`], so every process offers the same tools.
//!
//! A reply's tools come from three kinds of entry:
//! - the built-in tools (`clara__*`), always;
//! - the memory tools (`memory__*`), when memory is on (they need Rook);
//! - the integrations: each a crate (or module) implementing
//!   [`clara_tools::ToolIntegration`], behind a Cargo feature of the same name,
//!   with one line in [`INTEGRATIONS`]. Its `clara.toml` section, its
//!   environment variables and its providers follow from the entry, as a
//!   platform's do from its line in `platforms.rs`.

use crate::settings::Sections;
use anyhow::Result;
use clara_core::component::{ConfigError, EnvKey, TextList};
use clara_memory::Rook;
use clara_runtime::memory_tools::MemoryTools;
use clara_runtime::{ApprovalConfig, Owner};
use clara_tools::{Rule, ToolProvider, ToolRegistry};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// `[tools]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolSettings {
    /// Rounds of tool calls in one reply before the model must answer (0: no tools).
    pub rounds: Option<usize>,
    /// Seconds one tool call may take.
    pub timeout_secs: Option<u64>,
    /// Characters of a tool's result the model sees.
    pub max_result_chars: Option<usize>,
    /// Whose approvals count (`telegram:123`); default the terminal and the
    /// web page's operator.
    pub owners: Option<TextList>,
    /// Seconds a question to the owner waits; no answer is a deny.
    pub approval_timeout_secs: Option<u64>,
    /// The owner's rules.
    pub rules: Vec<Rule>,
}

impl ToolSettings {
    /// The approvals part of the engine's settings; a malformed owner is an
    /// error naming it.
    pub fn approvals(&self) -> Result<ApprovalConfig, ConfigError> {
        let mut config = ApprovalConfig::default();
        if let Some(owners) = &self.owners {
            config.owners = owners
                .items()
                .map(|text| {
                    Owner::parse(text).ok_or_else(|| {
                        ConfigError::new(format!(
                            "[tools] owners: {text:?} is not `platform:user id` (like \"telegram:123456\")"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(secs) = self.approval_timeout_secs {
            config.timeout = Duration::from_secs(secs.max(1));
        }
        config.rules = self.rules.clone();
        Ok(config)
    }
}

/// Tool providers, as integrations give them.
pub type Providers = Vec<Arc<dyn ToolProvider>>;

/// One tool integration, with its types erased so the list can hold them all.
pub struct IntegrationEntry {
    /// Its name: its `clara.toml` section.
    pub name: &'static str,
    /// Its environment variables and the keys they set.
    pub env: &'static [EnvKey],
    /// Reads its section and makes its providers (none: not configured).
    pub providers: fn(&Sections) -> Result<Providers, ConfigError>,
    /// Checks its section as written in a `clara.toml` file, strictly.
    pub check_file: fn(toml::Value) -> Result<(), String>,
}

pub use entries::entry;

// Unused in a build without integrations; the tests below also run a
// made-up one through them.
#[cfg_attr(
    not(any(
        test,
        feature = "mcp",
        feature = "web",
        feature = "github",
        feature = "sandbox"
    )),
    allow(dead_code)
)]
mod entries {
    use super::{IntegrationEntry, Providers, Sections};
    use clara_core::component::ConfigError;
    use clara_tools::ToolIntegration;

    /// The entry of integration `I`.
    pub const fn entry<I: ToolIntegration>() -> IntegrationEntry {
        IntegrationEntry {
            name: I::NAME,
            env: I::ENV,
            providers: build::<I>,
            check_file: crate::settings::check_section::<I::Settings>,
        }
    }

    fn build<I: ToolIntegration>(sections: &Sections) -> Result<Providers, ConfigError> {
        I::providers(sections.section::<I::Settings>(I::NAME)?)
    }
}

/// Every tool integration built into this binary: the one list a new
/// integration joins, one line each, behind its feature:
///
/// ```ignore
/// #[cfg(feature = "mcp")]
/// entry::<clara_mcp::Mcp>(),
/// ```
pub const INTEGRATIONS: &[IntegrationEntry] = &[
    #[cfg(feature = "mcp")]
    entry::<clara_mcp::Mcp>(),
    #[cfg(feature = "web")]
    entry::<clara_web::Web>(),
    #[cfg(feature = "github")]
    entry::<clara_github::GitHub>(),
    #[cfg(feature = "sandbox")]
    entry::<clara_sandbox::SandboxIntegration>(),
];

/// The providers of this process, in the order their tools are added: the
/// built-ins, the memory tools when memory is on, then every configured
/// integration's. A wrong integration setting is an error naming the key.
pub fn providers(sections: &Sections, memory: Option<&Rook>) -> Result<Providers, ConfigError> {
    let mut providers: Providers = vec![Arc::new(clara_tools::builtin::Builtin)];
    if let Some(rook) = memory {
        providers.push(Arc::new(MemoryTools::new(rook.clone())));
    }
    for integration in INTEGRATIONS {
        providers.extend((integration.providers)(sections)?);
    }
    Ok(providers)
}

/// The registry every reply of this process answers with, holding every
/// provider's tools. A provider that cannot list its tools now (an MCP server
/// that does not start, the sandbox whose self-test failed) is logged once
/// and left attached, without tools until it publishes some; Clara goes on
/// without them, and `ToolRegistry::unavailable` says why for the owner. The
/// registry stays shared: whoever holds a clone can add or remove servers
/// while Clara runs.
pub async fn registry(
    settings: &ToolSettings,
    sections: &Sections,
    memory: Option<&Rook>,
) -> Result<ToolRegistry> {
    let registry = ToolRegistry::new(
        Duration::from_secs(settings.timeout_secs.unwrap_or(30).max(1)),
        settings.max_result_chars.unwrap_or(8_000),
    );
    for provider in providers(sections, memory)? {
        let server = provider.server().to_owned();
        match registry.add_provider(provider).await {
            Ok(tools) => tracing::debug!(%server, tools, "tool server ready"),
            Err(error) => {
                tracing::warn!(%server, %error, "a tool server has no tools for now; Clara goes on without them")
            }
        }
    }
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::component::Component;
    use clara_tools::{StaticTools, Tool, ToolContext, ToolError, ToolIntegration};

    /// A made-up integration: a `[echo]` section whose `servers` each become
    /// a tool server with one `say` tool.
    struct Echo;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct EchoSettings {
        servers: Vec<String>,
        greeting: Option<clara_core::Secret>,
    }

    struct Say;

    #[async_trait::async_trait]
    impl Tool for Say {
        fn name(&self) -> &str {
            "say"
        }
        fn description(&self) -> &str {
            "Says hello."
        }
        fn parameters(&self) -> serde_json::Value {
            serde_json::json!({"type": "object"})
        }
        async fn call(
            &self,
            _arguments: serde_json::Value,
            _context: &ToolContext,
        ) -> Result<String, ToolError> {
            Ok("hello".into())
        }
    }

    impl Component for Echo {
        const NAME: &'static str = "echo";
        const ENV: &'static [EnvKey] = &[("ECHO_SERVERS", "servers")];
        type Settings = EchoSettings;
    }

    impl ToolIntegration for Echo {
        fn providers(settings: EchoSettings) -> Result<Providers, ConfigError> {
            if settings.servers.iter().any(|s| s.contains("__")) {
                return Err(ConfigError::new(
                    "echo.servers: a name may not contain `__`",
                ));
            }
            Ok(settings
                .servers
                .into_iter()
                .map(|server| {
                    Arc::new(StaticTools::new(
                        server,
                        vec![Arc::new(Say) as Arc<dyn Tool>],
                    )) as Arc<dyn ToolProvider>
                })
                .collect())
        }
    }

    fn sections(toml: &str) -> Sections {
        Sections::from_toml(toml).unwrap()
    }

    #[tokio::test]
    async fn an_integration_reads_its_section_and_its_servers_join_the_registry() {
        let entry = entry::<Echo>();
        assert!((entry.providers)(&sections("")).unwrap().is_empty());
        let providers = (entry.providers)(&sections(
            "[echo]\nservers = [\"one\", \"two\"]\ngreeting = \"s3cret\"\n",
        ))
        .unwrap();
        let registry = ToolRegistry::default();
        for provider in providers {
            registry.add_provider(provider).await.unwrap();
        }
        let snapshot = registry.snapshot();
        assert_eq!(
            snapshot.names().collect::<Vec<_>>(),
            vec!["one__say", "two__say"]
        );
        let Err(bad) = (entry.providers)(&sections("[echo]\nservers = [\"a__b\"]\n")) else {
            panic!("a server name with `__` was taken");
        };
        assert!(bad.to_string().contains("echo.servers"), "{bad}");
        let typo = (entry.check_file)(toml::from_str("servrs = []").unwrap()).unwrap_err();
        assert!(typo.contains("servrs"), "{typo}");
    }
}

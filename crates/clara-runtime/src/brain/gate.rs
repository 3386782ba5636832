//! Whether a reply's tool call may run: the owner's [`Policy`], their standing
//! grants and pinned definitions ([`Permits`]), and, when the policy says to
//! ask, the owner themself ([`Asker`]). Every path that cannot decide fails
//! closed: a store that cannot be read counts as no grant, an owner who cannot
//! be reached or does not answer as a deny.

use super::permits::{MemoryPermits, Permits, StorePermits};
use crate::approvals::{Answer, Asker, NoOwner, Question};
use clara_core::approval::Verdict;
use clara_core::{ChannelKind, Permission, ToolGrant, ToolPin};
use clara_store::Store;
use clara_tools::policy::{CallFacts, PinState, canonical_json, sha256_hex};
use clara_tools::{Decision, Policy, Rule, RuleAction, ToolContext, ToolTraits};
use std::sync::Arc;

/// The rules every policy starts with, before the owner's: a person's own
/// memories (`memory__*`) and their own reminders and alert settings
/// (`schedule__*`), scoped to them by the tools, are theirs to read and change
/// without asking the owner. The owner's deny and ask rules still win.
pub fn default_rules() -> Vec<Rule> {
    ["memory__*", "schedule__*"]
        .into_iter()
        .map(|tool| Rule {
            action: RuleAction::Allow,
            tool: tool.to_owned(),
            arguments: None,
        })
        .collect()
}

/// The gate a reply's tool calls pass. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    /// The owner's rules (after [`default_rules`]).
    pub policy: Arc<Policy>,
    /// Standing grants and pins.
    pub permits: Arc<dyn Permits>,
    /// Who asks the owner.
    pub asker: Arc<dyn Asker>,
}

impl Default for Gate {
    /// The default rules, grants in memory, and nobody to ask: tools that only
    /// read run, the rest are refused.
    fn default() -> Self {
        Self {
            policy: Arc::new(Policy::new(default_rules())),
            permits: Arc::new(MemoryPermits::default()),
            asker: Arc::new(NoOwner {
                why: "No owner is configured to approve this tool.".to_owned(),
            }),
        }
    }
}

/// One call as the gate sees it.
pub struct Call<'a> {
    /// The namespaced tool name.
    pub tool: &'a str,
    /// The parsed arguments.
    pub arguments: &'a serde_json::Value,
    /// What the tool does.
    pub traits: &'a ToolTraits,
    /// Whether the reply has read untrusted content in an earlier round.
    pub tainted: bool,
    /// Who the reply is for.
    pub context: &'a ToolContext,
}

impl Gate {
    /// Clara's [`default_rules`] then the owner's `rules`, grants and pins in
    /// `store`, questions through `asker`.
    pub fn new(rules: &[Rule], store: &Store, asker: Arc<dyn Asker>) -> Self {
        let mut all = default_rules();
        all.extend(rules.iter().cloned());
        Self {
            policy: Arc::new(Policy::new(all)),
            permits: Arc::new(StorePermits(store.clone())),
            asker,
        }
    }

    /// Decides whether `call` runs, asking the owner when the policy says so.
    /// `Permission::Refused` carries the sentence the model gets.
    pub async fn permit(&self, call: Call<'_>) -> Permission {
        let arguments = canonical_json(call.arguments);
        let arguments_sha256 = sha256_hex(&arguments);
        let definition = call.traits.definition_sha256.as_deref();
        let pin = match definition {
            None => PinState::Unpinned,
            Some(current) => match self.permits.pin(call.tool).await {
                None => PinState::Unpinned,
                Some(pinned) if pinned == current => PinState::Same,
                Some(_) => PinState::Changed,
            },
        };
        let grant = self
            .permits
            .grant(call.tool, &arguments_sha256)
            .await
            .filter(|g| g.definition_sha256 == definition.unwrap_or_default());
        let facts = CallFacts {
            tool: call.tool,
            arguments: &arguments,
            traits: call.traits,
            tainted: call.tainted,
            granted: grant.is_some(),
            pin,
        };
        match self.policy.decide(&facts) {
            Decision::Allow { granted } => {
                if pin == PinState::Unpinned {
                    self.pin(call.tool, definition).await;
                }
                match grant.filter(|_| granted) {
                    Some(g) => Permission::Owner {
                        owner: g.granted_by,
                        always: true,
                    },
                    None => Permission::Policy,
                }
            }
            Decision::Deny { reason } => Permission::Refused { reason },
            Decision::Ask { reason } => {
                let question = Question {
                    tool: call.tool.to_owned(),
                    arguments: arguments.clone(),
                    reason,
                    asked_for: asked_for(call.context),
                };
                match self.asker.ask(question).await {
                    Answer::Given { verdict, by } => {
                        self.answered(call.tool, definition, &arguments_sha256, verdict, by)
                            .await
                    }
                    Answer::TimedOut { after_secs } => Permission::Refused {
                        reason: format!(
                            "The owner did not answer within {after_secs} seconds, so the call was not made."
                        ),
                    },
                    Answer::Unreachable { why } => Permission::Refused { reason: why },
                }
            }
        }
    }

    async fn answered(
        &self,
        tool: &str,
        definition: Option<&str>,
        arguments_sha256: &str,
        verdict: Verdict,
        by: String,
    ) -> Permission {
        match verdict {
            Verdict::Deny => Permission::Refused {
                reason: format!("The owner ({by}) denied this call."),
            },
            Verdict::Once => {
                self.pin(tool, definition).await;
                Permission::Owner {
                    owner: by,
                    always: false,
                }
            }
            Verdict::Always => {
                self.pin(tool, definition).await;
                self.permits
                    .add_grant(ToolGrant {
                        tool: tool.to_owned(),
                        arguments_sha256: arguments_sha256.to_owned(),
                        definition_sha256: definition.unwrap_or_default().to_owned(),
                        granted_by: by.clone(),
                        granted_at_ms: now_ms(),
                    })
                    .await;
                Permission::Owner {
                    owner: by,
                    always: true,
                }
            }
        }
    }

    async fn pin(&self, tool: &str, definition: Option<&str>) {
        if let Some(definition) = definition {
            self.permits
                .set_pin(ToolPin {
                    tool: tool.to_owned(),
                    definition_sha256: definition.to_owned(),
                    pinned_at_ms: now_ms(),
                })
                .await;
        }
    }
}

fn asked_for(context: &ToolContext) -> String {
    let person = if context.person.is_empty() {
        "someone"
    } else {
        context.person.as_str()
    };
    match context.channel {
        Some(ChannelKind::Group) => format!("{person}, in a group conversation"),
        Some(ChannelKind::Direct) => format!("{person}, in a direct conversation"),
        None => person.to_owned(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use clara_tools::Effect;

    struct Always(Answer);

    #[async_trait]
    impl Asker for Always {
        async fn ask(&self, _: Question) -> Answer {
            self.0.clone()
        }
    }

    fn gate(answer: Answer) -> Gate {
        Gate {
            asker: Arc::new(Always(answer)),
            ..Gate::default()
        }
    }

    fn mcp(hash: &str) -> ToolTraits {
        ToolTraits {
            effect: Effect::Write,
            untrusted_output: true,
            definition_sha256: Some(hash.to_owned()),
        }
    }

    async fn permit(gate: &Gate, traits: &ToolTraits, args: serde_json::Value) -> Permission {
        gate.permit(Call {
            tool: "fs__write",
            arguments: &args,
            traits,
            tainted: false,
            context: &ToolContext::default(),
        })
        .await
    }

    #[tokio::test]
    async fn always_grants_exactly_these_arguments_until_the_definition_changes() {
        let given = |verdict| Answer::Given {
            verdict,
            by: "telegram:1".into(),
        };
        let g = gate(given(Verdict::Always));
        let args = serde_json::json!({"path": "a", "text": "b"});
        assert_eq!(
            permit(&g, &mcp("v1"), args.clone()).await,
            Permission::Owner {
                owner: "telegram:1".into(),
                always: true
            }
        );
        // Now the owner would deny: the grant must carry the same call.
        let g = Gate {
            asker: Arc::new(Always(given(Verdict::Deny))),
            ..g
        };
        let reordered = serde_json::json!({"text": "b", "path": "a"});
        assert!(matches!(
            permit(&g, &mcp("v1"), reordered).await,
            Permission::Owner { always: true, .. }
        ));
        assert!(matches!(
            permit(&g, &mcp("v1"), serde_json::json!({"path": "other"})).await,
            Permission::Refused { .. }
        ));
        // The server changed the tool's definition: blocked until approved again.
        assert!(matches!(
            permit(&g, &mcp("v2"), args).await,
            Permission::Refused { .. }
        ));
    }

    #[tokio::test]
    async fn no_answer_and_no_owner_are_denials() {
        let g = gate(Answer::TimedOut { after_secs: 120 });
        let Permission::Refused { reason } = permit(&g, &mcp("v1"), serde_json::json!({})).await
        else {
            panic!("a timeout must refuse")
        };
        assert!(reason.contains("120 seconds"));
        let g = Gate::default();
        assert!(matches!(
            permit(&g, &mcp("v1"), serde_json::json!({})).await,
            Permission::Refused { .. }
        ));
    }
}

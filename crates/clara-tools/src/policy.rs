//! The owner's rules for tools: which calls run, which ask first, which never
//! run. Pure: the facts of one call go in, a [`Decision`] comes out.
//!
//! Order, as in Claude Code's permission rules: a *deny* rule wins over
//! everything; then what forces a question (a changed definition, a reply
//! that has read untrusted content wanting to send, an *ask* rule); then what
//! lets a call through (a standing grant for exactly these arguments, an
//! *allow* rule); then the defaults: tools that only read run, everything else
//! asks, and a tool whose definition comes from outside (MCP) asks until the
//! owner allows it. What an MCP server says about its own tools can only have
//! made them look *more* dangerous (see [`ToolTraits`]).

use crate::tool::{Effect, ToolTraits};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a rule does to the calls it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Run without asking.
    Allow,
    /// Ask the owner every time.
    Ask,
    /// Never run.
    Deny,
}

/// One rule: `{ action = "allow", tool = "time__*" }`, optionally narrowed by a
/// pattern over the arguments (`arguments = '*"path":"/home/ana/notes/*'`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// What it does.
    pub action: RuleAction,
    /// The namespaced tool name it matches; `*` matches any run of characters,
    /// `?` one character (`github__*`, `*__send_*`).
    pub tool: String,
    /// A pattern the call's arguments, as canonical JSON (keys sorted, no
    /// spaces), must match too; none matches any arguments.
    #[serde(default)]
    pub arguments: Option<String>,
}

impl Rule {
    fn matches(&self, tool: &str, arguments: &str) -> bool {
        wildcard(&self.tool, tool)
            && self
                .arguments
                .as_deref()
                .is_none_or(|pattern| wildcard(pattern, arguments))
    }
}

/// Whether the tool's definition is the one the owner allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinState {
    /// Clara's own tool, or one never allowed before (nothing pinned yet).
    Unpinned,
    /// The same definition as when first allowed.
    Same,
    /// The definition changed since it was allowed: blocked until approved again.
    Changed,
}

/// Everything the policy looks at for one call.
#[derive(Clone, Copy, Debug)]
pub struct CallFacts<'a> {
    /// The namespaced tool name.
    pub tool: &'a str,
    /// The arguments as canonical JSON ([`canonical_json`]).
    pub arguments: &'a str,
    /// What the tool does.
    pub traits: &'a ToolTraits,
    /// Whether this reply has already read untrusted content.
    pub tainted: bool,
    /// Whether the owner granted exactly this call "always".
    pub granted: bool,
    /// The tool's definition against the pinned one.
    pub pin: PinState,
}

/// What to do with one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Allow {
        /// Whether a standing grant of the owner's let it through (rather than
        /// a rule or the defaults).
        granted: bool,
    },
    /// Ask the owner first; `reason` is one sentence for them.
    Ask {
        /// Why.
        reason: String,
    },
    /// Do not run it; `reason` is one sentence for the model and the record.
    Deny {
        /// Why.
        reason: String,
    },
}

/// The owner's rules, in the order written.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// A policy of these rules (their order does not matter: deny, then ask,
    /// then allow).
    pub fn new(rules: Vec<Rule>) -> Self {
        Self { rules }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    fn any(&self, action: RuleAction, facts: &CallFacts<'_>) -> bool {
        self.rules
            .iter()
            .any(|r| r.action == action && r.matches(facts.tool, facts.arguments))
    }

    /// Decides one call.
    pub fn decide(&self, facts: &CallFacts<'_>) -> Decision {
        let tool = facts.tool;
        if self.any(RuleAction::Deny, facts) {
            return Decision::Deny {
                reason: format!("The owner's rules do not allow {tool} to run."),
            };
        }
        if facts.pin == PinState::Changed {
            return Decision::Ask {
                reason: format!(
                    "The definition of {tool} (its description or arguments) changed since it was allowed; it stays blocked until approved again."
                ),
            };
        }
        if facts.tainted && facts.traits.effect >= Effect::Send {
            return Decision::Ask {
                reason: "This reply has read content from outside Clara (a web page, a mail, a tool's output), and this tool sends or publishes: an injected instruction could be using it.".to_owned(),
            };
        }
        if self.any(RuleAction::Ask, facts) {
            return Decision::Ask {
                reason: format!("The owner's rules ask before {tool} runs."),
            };
        }
        if facts.granted {
            return Decision::Allow { granted: true };
        }
        if self.any(RuleAction::Allow, facts) {
            return Decision::Allow { granted: false };
        }
        if facts.traits.definition_sha256.is_some() {
            return Decision::Ask {
                reason: format!("{tool} comes from an MCP server and has not been allowed yet."),
            };
        }
        match facts.traits.effect {
            // The sandbox is the boundary: what stays inside the person's own
            // sandbox needs no question; what crosses it does.
            Effect::Read | Effect::Sandboxed => Decision::Allow { granted: false },
            Effect::Write => Decision::Ask {
                reason: format!("{tool} changes something."),
            },
            Effect::Execute => Decision::Ask {
                reason: format!("{tool} runs code or installs software."),
            },
            Effect::Send => Decision::Ask {
                reason: format!("{tool} sends or publishes something to someone else."),
            },
            Effect::Spend => Decision::Ask {
                reason: format!("{tool} spends money."),
            },
        }
    }
}

/// `value` as canonical JSON: object keys sorted at every level, no
/// whitespace. Two calls with the same arguments in another key order are the
/// same call. (Sorted here rather than trusting serde_json's map order, which a
/// dependency enabling `preserve_order` would change for the whole build.)
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// SHA-256 (hex) of `text`: what grants and pins store.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters
/// (also none) and `?` exactly one. Iterative, with one backtrack point, so a
/// hostile pattern cannot make it exponential.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(effect: Effect, mcp: bool) -> ToolTraits {
        ToolTraits {
            effect,
            untrusted_output: mcp,
            definition_sha256: mcp.then(|| "abc".to_owned()),
        }
    }

    fn facts<'a>(tool: &'a str, args: &'a str, traits: &'a ToolTraits) -> CallFacts<'a> {
        CallFacts {
            tool,
            arguments: args,
            traits,
            tainted: false,
            granted: false,
            pin: PinState::Unpinned,
        }
    }

    fn rule(action: RuleAction, tool: &str, arguments: Option<&str>) -> Rule {
        Rule {
            action,
            tool: tool.into(),
            arguments: arguments.map(Into::into),
        }
    }

    fn is_ask(d: &Decision) -> bool {
        matches!(d, Decision::Ask { .. })
    }

    #[test]
    fn defaults_allow_reading_and_ask_for_the_rest() {
        let policy = Policy::default();
        let read = traits(Effect::Read, false);
        assert_eq!(
            policy.decide(&facts("clara__current_time", "{}", &read)),
            Decision::Allow { granted: false }
        );
        for effect in [Effect::Write, Effect::Execute, Effect::Send, Effect::Spend] {
            let t = traits(effect, false);
            assert!(
                is_ask(&policy.decide(&facts("x__y", "{}", &t))),
                "{effect:?}"
            );
        }
    }

    #[test]
    fn a_new_mcp_tool_asks_even_when_it_claims_to_only_read() {
        let t = traits(Effect::Read, true);
        assert!(is_ask(
            &Policy::default().decide(&facts("fs__read", "{}", &t))
        ));
    }

    #[test]
    fn deny_beats_ask_beats_allow_whatever_the_order() {
        let t = traits(Effect::Write, true);
        let policy = Policy::new(vec![
            rule(RuleAction::Allow, "fs__*", None),
            rule(RuleAction::Ask, "fs__write*", None),
            rule(RuleAction::Deny, "fs__write_file", Some("*\"/etc/*")),
        ]);
        assert_eq!(
            policy.decide(&facts("fs__read_file", "{}", &t)),
            Decision::Allow { granted: false }
        );
        assert!(is_ask(&policy.decide(&facts(
            "fs__write_file",
            r#"{"path":"/home/a"}"#,
            &t
        ))));
        assert!(matches!(
            policy.decide(&facts("fs__write_file", r#"{"path":"/etc/passwd"}"#, &t)),
            Decision::Deny { .. }
        ));
    }

    #[test]
    fn a_grant_lets_exactly_that_call_through_but_not_past_an_ask_rule() {
        let t = traits(Effect::Send, true);
        let mut f = facts("mail__send", "{}", &t);
        f.granted = true;
        assert_eq!(
            Policy::default().decide(&f),
            Decision::Allow { granted: true }
        );
        let strict = Policy::new(vec![rule(RuleAction::Ask, "mail__*", None)]);
        assert!(is_ask(&strict.decide(&f)));
    }

    #[test]
    fn a_changed_definition_asks_even_with_an_allow_rule_or_a_grant() {
        let t = traits(Effect::Read, true);
        let policy = Policy::new(vec![rule(RuleAction::Allow, "*", None)]);
        let mut f = facts("fs__read", "{}", &t);
        f.granted = true;
        f.pin = PinState::Changed;
        let Decision::Ask { reason } = policy.decide(&f) else {
            panic!("expected ask")
        };
        assert!(reason.contains("changed"));
    }

    #[test]
    fn after_untrusted_content_sending_asks_even_when_allowed() {
        let send = traits(Effect::Send, false);
        let policy = Policy::new(vec![rule(RuleAction::Allow, "*", None)]);
        let mut f = facts("mail__send", "{}", &send);
        assert_eq!(policy.decide(&f), Decision::Allow { granted: false });
        f.tainted = true;
        assert!(is_ask(&policy.decide(&f)));
        f.granted = true;
        assert!(
            is_ask(&policy.decide(&f)),
            "a grant does not lift the taint"
        );
        // Reading stays allowed after taint.
        let read = traits(Effect::Write, false);
        let mut g = facts("notes__save", "{}", &read);
        g.tainted = true;
        assert_eq!(policy.decide(&g), Decision::Allow { granted: false });
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("github__*", "github__create_issue"));
        assert!(!wildcard("github__*", "gitlab__x"));
        assert!(wildcard("*__send_?", "mail__send_1"));
        assert!(!wildcard("a*b", "acbx"));
        assert!(wildcard("a*b*c", "aXbYbZc"));
        let hostile = "*a".repeat(30);
        assert!(!wildcard(&hostile, &"a".repeat(29)));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"c":3,"d":2},"b":1}"#);
        assert_eq!(sha256_hex("").len(), 64);
    }
}

//! The registry: the one way a model's tool call reaches a tool.
//!
//! The registry holds every server's tools as an immutable [`ToolSet`] behind a
//! lock that is only ever held to copy or swap an `Arc`. A change (a server
//! added, its list replaced, a server removed) builds a new set and swaps it in;
//! nothing already handed out changes. A reply takes one [`ToolRegistry::snapshot`]
//! when it starts and uses it for every round, for the specs it offers and the
//! calls it runs, so a server removed mid-reply does not break a call in flight
//! and a server added mid-reply does not appear halfway through.

use crate::provider::ToolProvider;
use crate::tool::{Tool, ToolContext, ToolError, ToolOutcome, ToolTraits};
use clara_core::tool::namespaced;
use clara_core::{ToolCall, ToolSpec};
use parking_lot::{RwLock, RwLockUpgradableReadGuard};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What every call of a registry is held to.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// How long one call may take.
    timeout: Duration,
    /// How many characters of a result the model sees.
    max_result_chars: usize,
}

/// One tool in a set, with the server it came from.
#[derive(Clone)]
struct Entry {
    server: Arc<str>,
    tool: Arc<dyn Tool>,
}

/// The tools at one moment, by namespaced name: what one reply offers the model
/// and runs, from its first round to its last. Immutable; a change to the
/// registry makes a new set.
#[derive(Clone)]
pub struct ToolSet {
    tools: BTreeMap<String, Entry>,
    limits: Limits,
    version: u64,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSet")
            .field("version", &self.version)
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ToolSet {
    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// The namespaced names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// The servers that have tools here, in order.
    pub fn servers(&self) -> Vec<&str> {
        let servers: BTreeSet<&str> = self.tools.values().map(|e| &*e.server).collect();
        servers.into_iter().collect()
    }

    /// Counts the registry's changes: a later snapshot has a larger number.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The specs to offer the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|(name, entry)| ToolSpec {
                name: name.clone(),
                description: entry.tool.description().to_owned(),
                parameters: entry.tool.parameters(),
            })
            .collect()
    }

    /// What the tool named by `call` is, and the call's arguments parsed, as
    /// the approval policy needs them and [`ToolSet::run_checked`] runs them;
    /// or, when the call cannot run (an unknown tool, arguments that are not a
    /// JSON object), the result that tells the model why.
    pub fn check(&self, call: &ToolCall) -> Result<CheckedCall, ToolOutcome> {
        let refuse = |content: String| ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            ok: false,
        };
        let Some(entry) = self.tools.get(&call.name) else {
            let known: Vec<_> = self.names().collect();
            return Err(refuse(format!(
                "Error: there is no tool named {:?}. Available tools: {}.",
                call.name,
                known.join(", ")
            )));
        };
        let raw = if call.arguments.trim().is_empty() {
            "{}"
        } else {
            call.arguments.as_str()
        };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(CheckedCall {
                traits: entry.tool.traits(),
                arguments: v,
                tool: Arc::clone(&entry.tool),
            }),
            Ok(other) => Err(refuse(format!(
                "Error: the arguments must be a JSON object, got {other}."
            ))),
            Err(e) => Err(refuse(format!(
                "Error: the arguments are not valid JSON ({e}). Call the tool again with valid JSON."
            ))),
        }
    }

    /// Runs one call. Never fails: an unknown tool, bad JSON, a tool error or a
    /// timeout becomes a result that tells the model what went wrong. The
    /// output of a tool whose output is untrusted (an MCP server, the web)
    /// comes back [wrapped](crate::untrusted::wrap) as data.
    pub async fn run(&self, call: &ToolCall, context: &ToolContext) -> ToolOutcome {
        match self.check(call) {
            Ok(checked) => self.run_checked(call, checked, context).await,
            Err(refused) => refused,
        }
    }

    /// Runs a call [`ToolSet::check`] accepted (and, in a reply, the gate let
    /// through), without parsing its arguments again.
    pub async fn run_checked(
        &self,
        call: &ToolCall,
        checked: CheckedCall,
        context: &ToolContext,
    ) -> ToolOutcome {
        let CheckedCall {
            traits,
            arguments,
            tool,
        } = checked;
        let limits = self.limits;
        let timeout = tool.timeout().unwrap_or(limits.timeout);
        let (content, ok) = match tokio::time::timeout(timeout, tool.call(arguments, context)).await
        {
            Ok(Ok(result)) => (truncate(&result, limits.max_result_chars), true),
            Ok(Err(error)) => (
                truncate(&format!("Error: {error}"), limits.max_result_chars),
                false,
            ),
            Err(_) => (
                format!(
                    "Error: the tool did not finish within {} seconds.",
                    timeout.as_secs()
                ),
                false,
            ),
        };
        let content = if traits.untrusted_output {
            crate::untrusted::wrap(&call.name, &content)
        } else {
            content
        };
        ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            ok,
        }
    }
}

/// A call [`ToolSet::check`] accepted: its tool, what the tool is, and the
/// arguments parsed once.
pub struct CheckedCall {
    /// What the tool does, for the approval policy.
    pub traits: ToolTraits,
    /// The arguments, a JSON object.
    pub arguments: serde_json::Value,
    tool: Arc<dyn Tool>,
}

struct Shared {
    current: RwLock<Arc<ToolSet>>,
    /// Servers whose provider could not list its tools at its last refresh,
    /// with the sentence why (the sandbox whose self-test failed).
    unavailable: RwLock<BTreeMap<String, String>>,
}

/// Every tool Clara can offer, as it is now, and the place it changes. Cheap to
/// clone: clones share one registry, so whoever changes it (an MCP client whose
/// server came or went) and every reply see the same tools.
#[derive(Clone)]
pub struct ToolRegistry {
    shared: Arc<Shared>,
}

/// A handle to a registry that does not keep it alive: what a provider keeps to
/// publish its changed tool list (its tools hold the provider, so a strong
/// handle would be a cycle).
#[derive(Clone, Debug)]
pub struct WeakToolRegistry(Weak<Shared>);

impl WeakToolRegistry {
    /// The registry, if it still exists.
    pub fn upgrade(&self) -> Option<ToolRegistry> {
        self.0.upgrade().map(|shared| ToolRegistry { shared })
    }
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), 8_000)
    }
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.snapshot();
        f.debug_struct("ToolRegistry")
            .field("version", &current.version)
            .field("tools", &current.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry; each call gets `timeout`, each result is cut to
    /// `max_result_chars`.
    pub fn new(timeout: Duration, max_result_chars: usize) -> Self {
        let set = ToolSet {
            tools: BTreeMap::new(),
            limits: Limits {
                timeout,
                max_result_chars: max_result_chars.max(64),
            },
            version: 0,
        };
        Self {
            shared: Arc::new(Shared {
                current: RwLock::new(Arc::new(set)),
                unavailable: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// The tools as they are now. A reply takes one snapshot when it starts and
    /// keeps it to its end; later changes do not touch it.
    pub fn snapshot(&self) -> Arc<ToolSet> {
        Arc::clone(&self.shared.current.read())
    }

    /// Whether there are no tools now.
    pub fn is_empty(&self) -> bool {
        self.shared.current.read().is_empty()
    }

    /// A handle that does not keep the registry alive.
    pub fn downgrade(&self) -> WeakToolRegistry {
        WeakToolRegistry(Arc::downgrade(&self.shared))
    }

    /// Makes `tools` the whole of `server`'s tools, as `{server}__{name}`: its
    /// earlier tools that are not in the list are gone from the next snapshot.
    /// An empty list removes the server.
    pub fn set_server(&self, server: &str, tools: Vec<Arc<dyn Tool>>) {
        let server: Arc<str> = Arc::from(server);
        let names: Vec<String> = tools
            .iter()
            .map(|t| namespaced(&server, t.name()))
            .collect();
        self.change(|set| {
            set.retain(|_, entry| entry.server != server);
            for (name, tool) in names.into_iter().zip(tools) {
                insert(
                    set,
                    name,
                    Entry {
                        server: Arc::clone(&server),
                        tool,
                    },
                );
            }
        });
        tracing::debug!(%server, "tool server updated");
    }

    /// Removes every tool of `server` from the next snapshot. Returns whether it
    /// had any.
    pub fn remove_server(&self, server: &str) -> bool {
        let mut had = false;
        self.change(|set| {
            let before = set.len();
            set.retain(|_, entry| &*entry.server != server);
            had = set.len() != before;
        });
        if had {
            tracing::debug!(%server, "tool server removed");
        }
        had
    }

    /// Adds one tool as `{server}__{name}`, replacing one of the same name and
    /// keeping the server's others.
    pub fn register(&self, server: &str, tool: Arc<dyn Tool>) {
        let name = namespaced(server, tool.name());
        let server = Arc::from(server);
        self.change(|set| insert(set, name, Entry { server, tool }));
    }

    /// Adds `provider`: hands it a handle to this registry (so it can publish a
    /// changed list later), then puts its current tools under its server.
    /// Returns how many tools it gave. On an error the provider stays attached
    /// and its server has no tools until it publishes some.
    pub async fn add_provider(&self, provider: Arc<dyn ToolProvider>) -> Result<usize, ToolError> {
        provider.attached(self.downgrade());
        self.refresh(&*provider).await
    }

    /// Asks `provider` for its tools again and makes them its server's tools.
    /// Returns how many there are; on an error the server's tools are left as
    /// they were.
    pub async fn refresh(&self, provider: &dyn ToolProvider) -> Result<usize, ToolError> {
        let server = provider.server();
        let tools = match provider.tools().await {
            Ok(tools) => tools,
            Err(error) => {
                self.shared
                    .unavailable
                    .write()
                    .insert(server.to_owned(), error.to_string());
                return Err(error);
            }
        };
        self.shared.unavailable.write().remove(server);
        let count = tools.len();
        self.set_server(server, tools);
        Ok(count)
    }

    /// The servers whose provider could not list its tools when last asked,
    /// each with the sentence why: what the owner is shown.
    pub fn unavailable(&self) -> Vec<(String, String)> {
        self.shared
            .unavailable
            .read()
            .iter()
            .map(|(server, why)| (server.clone(), why.clone()))
            .collect()
    }

    /// Builds the next set from the current one and swaps it in. Changes are
    /// made one at a time; readers are not held up while the set is built.
    fn change(&self, edit: impl FnOnce(&mut BTreeMap<String, Entry>)) {
        let current = self.shared.current.upgradable_read();
        let mut next = ToolSet::clone(&current);
        edit(&mut next.tools);
        next.version += 1;
        *RwLockUpgradableReadGuard::upgrade(current) = Arc::new(next);
    }
}

/// Inserts one tool, saying so when it takes another server's name.
fn insert(set: &mut BTreeMap<String, Entry>, name: String, entry: Entry) {
    if let Some(old) = set.get(&name)
        && old.server != entry.server
    {
        tracing::warn!(tool = %name, first = %old.server, now = %entry.server, "two tool servers give a tool of the same name; the later one is used");
    }
    set.insert(name, entry);
}

/// Cuts `text` to `max` characters, saying so, so the model knows it saw a part.
fn truncate(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let note = format!(
        "\n[… result cut: {count} characters, showing the first {}]",
        max.saturating_sub(64)
    );
    let kept: String = text.chars().take(max.saturating_sub(64)).collect();
    kept + &note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::StaticTools;
    use async_trait::async_trait;
    use serde_json::json;
    use tokio::sync::Notify;

    struct Echo;
    #[async_trait]
    impl Tool for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn description(&self) -> &str {
            "Repeats its text."
        }
        fn parameters(&self) -> serde_json::Value {
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
        }
        async fn call(
            &self,
            args: serde_json::Value,
            _: &ToolContext,
        ) -> Result<String, ToolError> {
            match args.get("text").and_then(|t| t.as_str()) {
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok("late".into())
                }
                Some(t) => Ok(t.to_owned()),
                None => Err(ToolError::InvalidArguments("`text` is required".into())),
            }
        }
    }

    /// A tool that answers `answer` once `go` is notified, telling `started`.
    struct Gated {
        name: &'static str,
        answer: &'static str,
        started: Arc<Notify>,
        go: Arc<Notify>,
    }
    #[async_trait]
    impl Tool for Gated {
        fn name(&self) -> &str {
            self.name
        }
        fn description(&self) -> &str {
            "Waits, then answers."
        }
        fn parameters(&self) -> serde_json::Value {
            json!({"type": "object"})
        }
        async fn call(&self, _: serde_json::Value, _: &ToolContext) -> Result<String, ToolError> {
            self.started.notify_one();
            self.go.notified().await;
            Ok(self.answer.to_owned())
        }
    }

    fn registry() -> ToolRegistry {
        let r = ToolRegistry::new(Duration::from_millis(100), 100);
        r.register("test", Arc::new(Echo));
        r
    }

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[tokio::test]
    async fn names_are_namespaced_and_calls_run() {
        let r = registry().snapshot();
        assert_eq!(r.specs()[0].name, "test__echo");
        let out = r
            .run(
                &call("test__echo", r#"{"text":"hi"}"#),
                &ToolContext::default(),
            )
            .await;
        assert_eq!(
            (out.content.as_str(), out.ok, out.call_id.as_str()),
            ("hi", true, "c1")
        );
    }

    #[tokio::test]
    async fn every_failure_is_a_result_the_model_can_read() {
        let r = registry().snapshot();
        let ctx = ToolContext::default();
        let bad_json = r.run(&call("test__echo", r#"{"text": "#), &ctx).await;
        assert!(
            !bad_json.ok && bad_json.content.contains("not valid JSON"),
            "{}",
            bad_json.content
        );
        let not_object = r.run(&call("test__echo", "[1]"), &ctx).await;
        assert!(!not_object.ok && not_object.content.contains("JSON object"));
        let unknown = r.run(&call("nope", "{}"), &ctx).await;
        assert!(!unknown.ok && unknown.content.contains("test__echo"));
        let failed = r.run(&call("test__echo", "{}"), &ctx).await;
        assert_eq!(
            failed.content,
            "Error: invalid arguments: `text` is required"
        );
        let slow = r.run(&call("test__echo", r#"{"text":"slow"}"#), &ctx).await;
        assert!(!slow.ok && slow.content.contains("did not finish"));
    }

    #[tokio::test]
    async fn long_results_are_cut_and_say_so() {
        let r = registry().snapshot();
        let out = r
            .run(
                &call("test__echo", &json!({"text": "x".repeat(500)}).to_string()),
                &ToolContext::default(),
            )
            .await;
        assert!(out.ok);
        assert!(
            out.content.chars().count() <= 100 + 60,
            "{}",
            out.content.len()
        );
        assert!(out.content.contains("result cut: 500 characters"));
    }

    #[tokio::test]
    async fn a_server_replaced_or_removed_mid_call_finishes_the_call_with_the_old_tool() {
        let registry = ToolRegistry::new(Duration::from_secs(10), 1_000);
        let (started, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let old = Gated {
            name: "lookup",
            answer: "old answer",
            started: Arc::clone(&started),
            go: Arc::clone(&go),
        };
        registry.set_server("mcp", vec![Arc::new(old)]);
        let reply = registry.snapshot();
        let in_flight = tokio::spawn({
            let reply = Arc::clone(&reply);
            async move {
                reply
                    .run(&call("mcp__lookup", "{}"), &ToolContext::default())
                    .await
            }
        });
        started.notified().await;

        // The server changes its list, then goes away, while the call runs.
        registry.set_server("mcp", vec![Arc::new(Echo)]);
        assert_eq!(
            registry.snapshot().names().collect::<Vec<_>>(),
            vec!["mcp__echo"]
        );
        assert!(registry.remove_server("mcp"));
        assert!(!registry.remove_server("mcp"), "removed once");
        assert!(registry.is_empty());

        go.notify_one();
        let outcome = in_flight.await.unwrap();
        assert_eq!((outcome.content.as_str(), outcome.ok), ("old answer", true));
        // The reply's snapshot is what it was: same specs for its next round.
        assert_eq!(reply.names().collect::<Vec<_>>(), vec!["mcp__lookup"]);
        assert!(registry.snapshot().version() > reply.version());
        // The next reply sees the registry as it is now.
        let next = registry.snapshot();
        let gone = next
            .run(&call("mcp__lookup", "{}"), &ToolContext::default())
            .await;
        assert!(!gone.ok && gone.content.contains("no tool named"));
    }

    #[tokio::test]
    async fn a_server_added_mid_reply_waits_for_the_next_reply() {
        let registry = registry();
        let reply = registry.snapshot();
        registry.set_server("web", vec![Arc::new(Echo)]);
        assert_eq!(reply.names().collect::<Vec<_>>(), vec!["test__echo"]);
        let next = registry.snapshot();
        assert_eq!(
            next.names().collect::<Vec<_>>(),
            vec!["test__echo", "web__echo"]
        );
        assert_eq!(next.servers(), vec!["test", "web"]);
    }

    #[tokio::test]
    async fn set_server_replaces_only_that_servers_tools() {
        let registry = registry();
        registry.set_server("other", vec![Arc::new(Echo)]);
        registry.register("test", Arc::new(StaticName("second")));
        assert_eq!(registry.snapshot().len(), 3);
        registry.set_server("test", vec![Arc::new(StaticName("only"))]);
        assert_eq!(
            registry.snapshot().names().collect::<Vec<_>>(),
            vec!["other__echo", "test__only"]
        );
        registry.set_server("test", Vec::new());
        assert_eq!(registry.snapshot().servers(), vec!["other"]);
    }

    struct StaticName(&'static str);
    #[async_trait]
    impl Tool for StaticName {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            "A name only."
        }
        fn parameters(&self) -> serde_json::Value {
            json!({"type": "object"})
        }
        async fn call(&self, _: serde_json::Value, _: &ToolContext) -> Result<String, ToolError> {
            Ok(self.0.to_owned())
        }
    }

    /// A provider whose list changes, like an MCP server announcing
    /// `tools/list_changed`: it publishes through the handle it was given.
    #[derive(Default)]
    struct Changing {
        registry: parking_lot::Mutex<Option<WeakToolRegistry>>,
        fail: bool,
    }
    impl Changing {
        fn announce(&self, tools: Vec<Arc<dyn Tool>>) -> bool {
            let registry = self.registry.lock().as_ref().and_then(|w| w.upgrade());
            match registry {
                Some(registry) => {
                    registry.set_server(self.server(), tools);
                    true
                }
                None => false,
            }
        }
    }
    #[async_trait]
    impl ToolProvider for Changing {
        fn server(&self) -> &str {
            "changing"
        }
        async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
            if self.fail {
                return Err(ToolError::Failed("the server did not start".into()));
            }
            Ok(vec![Arc::new(StaticName("first"))])
        }
        fn attached(&self, registry: WeakToolRegistry) {
            *self.registry.lock() = Some(registry);
        }
    }

    #[tokio::test]
    async fn providers_add_their_tools_and_publish_changes() {
        let registry = ToolRegistry::default();
        let builtin = StaticTools::new("clara", vec![Arc::new(Echo) as Arc<dyn Tool>]);
        assert_eq!(registry.add_provider(Arc::new(builtin)).await, Ok(1));
        let changing = Arc::new(Changing::default());
        assert_eq!(registry.add_provider(changing.clone()).await, Ok(1));
        assert_eq!(
            registry.snapshot().names().collect::<Vec<_>>(),
            vec!["changing__first", "clara__echo"]
        );
        assert!(changing.announce(vec![Arc::new(StaticName("second"))]));
        assert_eq!(
            registry.snapshot().names().collect::<Vec<_>>(),
            vec!["changing__second", "clara__echo"]
        );
        assert_eq!(registry.refresh(&*changing).await, Ok(1));
        assert!(registry.snapshot().names().any(|n| n == "changing__first"));

        // A provider that cannot list its tools yet stays attached, and may
        // publish later.
        let late = Arc::new(Changing {
            fail: true,
            ..Changing::default()
        });
        assert!(registry.add_provider(late.clone()).await.is_err());
        // ... and the registry says which server has no tools, and why.
        assert_eq!(
            registry.unavailable(),
            vec![("changing".to_owned(), "the server did not start".to_owned())]
        );
        assert_eq!(registry.refresh(&*changing).await, Ok(1));
        assert!(registry.unavailable().is_empty(), "a success clears it");
        assert!(late.announce(vec![Arc::new(StaticName("late"))]));
        assert!(registry.snapshot().names().any(|n| n == "changing__late"));

        // The handle does not keep the registry alive.
        drop(registry);
        assert!(!changing.announce(Vec::new()));
    }

    #[test]
    fn clones_share_one_registry() {
        let registry = ToolRegistry::default();
        let clone = registry.clone();
        clone.register("clara", Arc::new(Echo));
        assert_eq!(registry.snapshot().len(), 1);
        assert!(format!("{registry:?}").contains("clara__echo"));
    }
}

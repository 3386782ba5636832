//! The `memory__*` tools: how a person, in conversation, asks what Clara remembers
//! about them and has it corrected or forgotten.
//!
//! Every tool acts only within the asking person's scope (and their conversation's
//! project), and in a group only on what may be shown there, so a tool call can
//! never read or change someone else's memory. Changes are recorded in the
//! memory's history with the person as the actor and the conversation they came from.
//!
//! They reach the registry like every other tool: [`MemoryTools`] is a
//! [`ToolProvider`], added where Clara's tools are assembled when memory is on.

use async_trait::async_trait;
use clara_core::{ChannelKind, MemoryId, MemoryKind, MessageId, Role, Scope};
use clara_memory::{Origin, Recalled, Rook};
use clara_store::{MemoryFilter, MemoryRecord, Provenance};
use clara_tools::args::required_text;
use clara_tools::{Tool, ToolContext, ToolError, ToolProvider};
use serde_json::{Value, json};
use std::sync::Arc;

/// The tool server's name: tools are offered as `memory__recall`, `memory__forget`, ….
pub const SERVER: &str = "memory";

/// How many memories a listing shows at most.
const LIST_LIMIT: u32 = 40;

/// The provider of the memory tools (`memory__recall`, `memory__remember`,
/// `memory__forget`, `memory__correct`, `memory__share`), over one [`Rook`].
pub struct MemoryTools {
    rook: Arc<Rook>,
}

impl MemoryTools {
    /// The memory tools over `rook`.
    pub fn new(rook: Rook) -> Self {
        Self {
            rook: Arc::new(rook),
        }
    }
}

#[async_trait]
impl ToolProvider for MemoryTools {
    fn server(&self) -> &str {
        SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        let rook = &self.rook;
        Ok(vec![
            Arc::new(RecallTool(Arc::clone(rook))),
            Arc::new(RememberTool(Arc::clone(rook))),
            Arc::new(ForgetTool(Arc::clone(rook))),
            Arc::new(CorrectTool(Arc::clone(rook))),
            Arc::new(ShareTool(Arc::clone(rook))),
        ])
    }
}

/// Who is asking, and what they may see.
struct Asker {
    scopes: Vec<Scope>,
    in_dm: bool,
    origin: Origin,
}

impl Asker {
    async fn of(rook: &Rook, context: &ToolContext) -> Result<Asker, ToolError> {
        let user = context.user.ok_or_else(|| {
            ToolError::Failed("the person is not known, so there are no memories to show".into())
        })?;
        let channel = context.channel.unwrap_or(ChannelKind::Group);
        let message = match context.thought {
            Some(thought) => first_user_message(rook, thought).await,
            None => None,
        };
        Ok(Asker {
            scopes: clara_memory::scopes_of(user, context.project),
            in_dm: channel == ChannelKind::Direct,
            origin: Origin {
                user,
                person: context.person.clone(),
                project: context.project,
                channel,
                conversation: context.conversation,
                message,
                at_ms: crate::clock::now_ms(),
            },
        })
    }

    fn may_see(&self, memory: &MemoryRecord) -> bool {
        self.scopes.contains(&memory.scope)
            && memory.forgotten_at_ms.is_none()
            && (self.in_dm || memory.shareable || matches!(memory.scope, Scope::Project(_)))
    }

    fn provenance(&self, reason: &str) -> Provenance {
        Provenance {
            reason: reason.to_owned(),
            actor: "person".to_owned(),
            conversation: self.origin.conversation,
            message: self.origin.message,
            at_ms: self.origin.at_ms,
        }
    }

    /// The memory `id` names (a full id, or the first 8+ characters of one), if the
    /// person may see it.
    async fn memory(&self, rook: &Rook, id: &str) -> Result<MemoryRecord, ToolError> {
        let id = id.trim();
        let not_found = || {
            ToolError::Failed(format!(
                "no memory {id:?} of this person; call memory__recall to see the ids"
            ))
        };
        if let Ok(full) = id.parse::<MemoryId>() {
            let memory = rook
                .memory(full)
                .await
                .map_err(failed)?
                .ok_or_else(not_found)?;
            return if self.may_see(&memory) {
                Ok(memory)
            } else {
                Err(not_found())
            };
        }
        if id.len() < 8 {
            return Err(not_found());
        }
        let mut matches = Vec::new();
        for scope in &self.scopes {
            for m in rook
                .list(*scope, MemoryFilter::default())
                .await
                .map_err(failed)?
            {
                if m.id.to_string().starts_with(id) && self.may_see(&m) {
                    matches.push(m);
                }
            }
        }
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(not_found()),
            _ => Err(ToolError::Failed(format!(
                "{id:?} matches several memories; use the whole id"
            ))),
        }
    }
}

async fn first_user_message(rook: &Rook, thought: clara_core::ThoughtId) -> Option<MessageId> {
    let messages = rook.store().thought_messages(thought).await.ok()?;
    messages.iter().find(|m| m.role == Role::User).map(|m| m.id)
}

fn failed(e: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(e.to_string())
}

fn line(memory: &MemoryRecord) -> Value {
    json!({
        "id": memory.id.to_string(),
        "kind": memory.kind.as_str(),
        "text": memory.text,
        "about": match memory.scope { Scope::User(_) => "person", Scope::Project(_) => "project" },
        "shareable_in_groups": memory.shareable,
    })
}

struct RecallTool(Arc<Rook>);

#[async_trait]
impl Tool for RecallTool {
    fn name(&self) -> &str {
        "recall"
    }
    fn traits(&self) -> clara_tools::ToolTraits {
        clara_tools::ToolTraits::read_only()
    }
    fn description(&self) -> &str {
        "Lists what you remember about the person (and their project), with ids. Give \
         `query` to find the memories about something; without it the newest are listed. \
         Use it when they ask what you know about them, and before forgetting or \
         correcting a memory."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for (optional)."}
            }
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let asker = Asker::of(&self.0, context).await?;
        let query = args
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        let memories: Vec<MemoryRecord> = if query.is_empty() {
            let mut all = Vec::new();
            for scope in &asker.scopes {
                let filter = MemoryFilter {
                    include_forgotten: false,
                    limit: Some(LIST_LIMIT),
                };
                all.extend(self.0.list(*scope, filter).await.map_err(failed)?);
            }
            all.retain(|m| asker.may_see(m));
            all.truncate(LIST_LIMIT as usize);
            all
        } else {
            let rank = clara_memory::rank::RankConfig::default().uncapped(LIST_LIMIT as usize);
            self.0
                .search(&asker.scopes, asker.in_dm, query, &rank)
                .await
                .map_err(failed)?
                .into_iter()
                .map(|Recalled { memory, .. }| memory)
                .collect()
        };
        Ok(json!({ "memories": memories.iter().map(line).collect::<Vec<_>>() }).to_string())
    }
}

struct RememberTool(Arc<Rook>);

#[async_trait]
impl Tool for RememberTool {
    fn name(&self) -> &str {
        "remember"
    }
    fn description(&self) -> &str {
        "Remembers something the person explicitly asked you to remember, as one short \
         third-person sentence."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "kind": {"type": "string", "enum": ["fact", "preference", "event", "instruction"]},
                "about": {"type": "string", "enum": ["person", "project"]}
            },
            "required": ["text"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let asker = Asker::of(&self.0, context).await?;
        let text = required_text(&args, "text")?;
        let kind = args
            .get("kind")
            .and_then(Value::as_str)
            .and_then(MemoryKind::parse)
            .unwrap_or(MemoryKind::Fact);
        let scope = match (args.get("about").and_then(Value::as_str), context.project) {
            (Some("project"), Some(project)) => Scope::Project(project),
            _ => Scope::User(asker.origin.user),
        };
        let memory = self
            .0
            .remember(
                scope,
                kind,
                text,
                &asker.origin,
                "person",
                "the person asked to remember it",
            )
            .await
            .map_err(failed)?;
        Ok(json!({ "remembered": line(&memory) }).to_string())
    }
}

struct ForgetTool(Arc<Rook>);

#[async_trait]
impl Tool for ForgetTool {
    fn name(&self) -> &str {
        "forget"
    }
    fn description(&self) -> &str {
        "Forgets one memory, by the id memory__recall showed, when the person asks you \
         to forget it or says it is wrong and not to be replaced."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "reason": {"type": "string", "description": "In a few words, why."}
            },
            "required": ["id"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let asker = Asker::of(&self.0, context).await?;
        let memory = asker.memory(&self.0, required_text(&args, "id")?).await?;
        let reason = args
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("the person asked to forget it");
        let old = self
            .0
            .forget(memory.id, &asker.provenance(reason))
            .await
            .map_err(failed)?;
        Ok(json!({ "forgotten": line(&old) }).to_string())
    }
}

struct CorrectTool(Arc<Rook>);

#[async_trait]
impl Tool for CorrectTool {
    fn name(&self) -> &str {
        "correct"
    }
    fn description(&self) -> &str {
        "Replaces the text of one memory, by the id memory__recall showed, when the \
         person corrects it."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "text": {"type": "string", "description": "The corrected memory, one sentence."},
                "reason": {"type": "string"}
            },
            "required": ["id", "text"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let asker = Asker::of(&self.0, context).await?;
        let memory = asker.memory(&self.0, required_text(&args, "id")?).await?;
        let text = required_text(&args, "text")?;
        let reason = args
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("the person corrected it");
        let new = self
            .0
            .correct(memory.id, text, &asker.provenance(reason))
            .await
            .map_err(failed)?;
        Ok(json!({ "corrected": line(&new), "was": memory.text }).to_string())
    }
}

struct ShareTool(Arc<Rook>);

#[async_trait]
impl Tool for ShareTool {
    fn name(&self) -> &str {
        "share"
    }
    fn description(&self) -> &str {
        "Sets whether one of the person's memories may be mentioned in group \
         conversations (memories learned in private start private)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "shareable": {"type": "boolean"}
            },
            "required": ["id", "shareable"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let asker = Asker::of(&self.0, context).await?;
        let memory = asker.memory(&self.0, required_text(&args, "id")?).await?;
        let shareable = args
            .get("shareable")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                ToolError::InvalidArguments("`shareable` (a boolean) is required".into())
            })?;
        let reason = if shareable {
            "the person allowed it in groups"
        } else {
            "the person made it private"
        };
        let new = self
            .0
            .set_shareable(memory.id, shareable, &asker.provenance(reason))
            .await
            .map_err(failed)?;
        Ok(json!({ "memory": line(&new) }).to_string())
    }
}

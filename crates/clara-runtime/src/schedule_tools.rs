//! The `schedule__*` tools: reminders, scheduled tasks and alert settings
//! from conversation ("remind me in 2 minutes to stretch", "every weekday at
//! 7 tell me the weather", "cancel that reminder", "no alerts after 10 pm").
//!
//! Each acts only on the asking person's own schedules and settings, so
//! Clara's default rules let them run without the owner
//! ([`default_rules`](crate::brain::gate::default_rules)). What they make is
//! delivered where it was asked for.

use crate::schedule_book::{ScheduleBook, ScheduleBookError, ScheduleRequest};
use async_trait::async_trait;
use clara_core::UserId;
use clara_store::ScheduleKind;
use clara_tools::args::required_text;
use clara_tools::{Tool, ToolContext, ToolError, ToolProvider};
use serde_json::{Value, json};
use std::sync::Arc;

/// The tool server's name.
pub const SERVER: &str = "schedule";

/// The provider of the `schedule__*` tools.
pub struct ScheduleTools {
    book: Arc<ScheduleBook>,
}

impl ScheduleTools {
    /// The tools over `book`.
    pub fn new(book: ScheduleBook) -> Self {
        Self {
            book: Arc::new(book),
        }
    }
}

#[async_trait]
impl ToolProvider for ScheduleTools {
    fn server(&self) -> &str {
        SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        let book = &self.book;
        Ok(vec![
            Arc::new(AddTool {
                book: Arc::clone(book),
                kind: ScheduleKind::Reminder,
            }),
            Arc::new(AddTool {
                book: Arc::clone(book),
                kind: ScheduleKind::Task,
            }),
            Arc::new(ListTool(Arc::clone(book))),
            Arc::new(CancelTool(Arc::clone(book))),
            Arc::new(TimeZoneTool(Arc::clone(book))),
            Arc::new(AlertsTool(Arc::clone(book))),
        ])
    }
}

fn person(context: &ToolContext) -> Result<UserId, ToolError> {
    context.user.ok_or_else(|| {
        ToolError::Failed("the person is not known, so nothing can be scheduled for them".into())
    })
}

fn failed(error: ScheduleBookError) -> ToolError {
    ToolError::Failed(error.to_string())
}

const WHEN_HELP: &str = "When, as the person said it: \"in 2 minutes\", \"in 1h30m\", \
    \"tomorrow at 9\", \"2026-12-24 18:00\", \"at 17:45\", \"every day at 7\", \"every weekday at \
    7:30\", \"every monday and thursday at 8\", \"monthly on 1 at 9\", \"every 2 hours\".";

struct AddTool {
    book: Arc<ScheduleBook>,
    kind: ScheduleKind,
}

#[async_trait]
impl Tool for AddTool {
    fn name(&self) -> &str {
        match self.kind {
            ScheduleKind::Reminder => "remind",
            ScheduleKind::Task => "task",
        }
    }
    fn description(&self) -> &str {
        match self.kind {
            ScheduleKind::Reminder => {
                "Reminds the person of something at a time, once or repeatedly, here in this \
                 conversation. Local times use their time zone: when it is not known yet the \
                 tool says so; ask them (or infer it) and pass `time_zone` once."
            }
            ScheduleKind::Task => {
                "Schedules a task: at the time, you will be given `prompt` and answer it with \
                 the person's tools and memories, and the answer is sent to them here (e.g. \
                 \"every Monday at 8\" + \"summarise my unread mail\"). Same time rules as \
                 schedule__remind."
            }
        }
    }
    fn parameters(&self) -> Value {
        let text = match self.kind {
            ScheduleKind::Reminder => ("text", "What to remind them of, short (\"call Mum\")."),
            ScheduleKind::Task => (
                "prompt",
                "What to do at that time, as an instruction to you.",
            ),
        };
        json!({
            "type": "object",
            "properties": {
                text.0: {"type": "string", "description": text.1},
                "when": {"type": "string", "description": WHEN_HELP},
                "time_zone": {"type": "string", "description": "IANA zone such as Europe/Berlin, when the person's is not known yet or they say another."}
            },
            "required": [text.0, "when"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let user = person(context)?;
        let conversation = context
            .conversation
            .ok_or_else(|| ToolError::Failed("there is no conversation to deliver it to".into()))?;
        let text_key = match self.kind {
            ScheduleKind::Reminder => "text",
            ScheduleKind::Task => "prompt",
        };
        let text = required_text(&args, text_key)?;
        let when = required_text(&args, "when")?;
        let time_zone = args.get("time_zone").and_then(Value::as_str);
        let schedule = self
            .book
            .add(ScheduleRequest {
                user,
                person: &context.person,
                conversation,
                kind: self.kind,
                when,
                text,
                time_zone,
            })
            .await
            .map_err(failed)?;
        let view = self.book.view(&schedule);
        Ok(json!({ "scheduled": view }).to_string())
    }
}

struct ListTool(Arc<ScheduleBook>);

#[async_trait]
impl Tool for ListTool {
    fn name(&self) -> &str {
        "list"
    }
    fn description(&self) -> &str {
        "Lists the person's reminders and scheduled tasks that will still fire, with ids, \
         and their alert settings (time zone, where alerts go, quiet hours)."
    }
    fn traits(&self) -> clara_tools::ToolTraits {
        clara_tools::ToolTraits::read_only()
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    async fn call(&self, _args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let user = person(context)?;
        let schedules = self.0.list(Some(user), false).await.map_err(failed)?;
        let settings = self.0.alert_settings(user).await.map_err(failed)?;
        let views: Vec<_> = schedules.iter().map(|s| self.0.view(s)).collect();
        Ok(json!({ "schedules": views, "settings": settings }).to_string())
    }
}

struct CancelTool(Arc<ScheduleBook>);

#[async_trait]
impl Tool for CancelTool {
    fn name(&self) -> &str {
        "cancel"
    }
    fn description(&self) -> &str {
        "Cancels one of the person's reminders or tasks by its id (from schedule__list)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let user = person(context)?;
        let id = required_text(&args, "id")?;
        let schedule = self.0.cancel(Some(user), id).await.map_err(failed)?;
        Ok(json!({ "cancelled": self.0.view(&schedule) }).to_string())
    }
}

struct TimeZoneTool(Arc<ScheduleBook>);

#[async_trait]
impl Tool for TimeZoneTool {
    fn name(&self) -> &str {
        "set_time_zone"
    }
    fn description(&self) -> &str {
        "Remembers the person's time zone (IANA name such as Europe/Berlin), when they tell \
         you where they are or that they moved."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"time_zone": {"type": "string"}},
            "required": ["time_zone"]
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let user = person(context)?;
        let zone = required_text(&args, "time_zone")?;
        let tz = self.0.set_time_zone(user, zone).await.map_err(failed)?;
        Ok(json!({ "time_zone": tz.name() }).to_string())
    }
}

struct AlertsTool(Arc<ScheduleBook>);

#[async_trait]
impl Tool for AlertsTool {
    fn name(&self) -> &str {
        "alert_settings"
    }
    fn description(&self) -> &str {
        "Changes where the person's alerts (e.g. about new mail) go and their quiet hours. \
         `send_here: true` sends alerts to this conversation; `quiet_hours` like \"22:00-07:00\" \
         holds alerts until the morning (\"off\" clears them). Reminders they set still come \
         at the time they chose."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "send_here": {"type": "boolean"},
                "quiet_hours": {"type": "string"}
            }
        })
    }
    async fn call(&self, args: Value, context: &ToolContext) -> Result<String, ToolError> {
        let user = person(context)?;
        let here = args
            .get("send_here")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then_some(context.conversation)
            .flatten();
        let quiet = args.get("quiet_hours").and_then(Value::as_str);
        self.0.set_alerts(user, here, quiet).await.map_err(failed)?;
        let settings = self.0.alert_settings(user).await.map_err(failed)?;
        Ok(json!({ "settings": settings }).to_string())
    }
}

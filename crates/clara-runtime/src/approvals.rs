//! Asking the owner: the questions a paused reply is waiting on, where they go,
//! and the answers that come back.
//!
//! A reply whose tool call the policy says to ask about calls
//! [`Asker::ask`]. In the process that talks to the platforms that is
//! [`Approvals`]: it sends an [`Outbound::Ask`] to the owner's direct
//! conversation (the one where an owner last wrote to Clara, else the owner's
//! user id as a DM channel, which is what Telegram uses), and waits. The
//! owner's answer — a button, or a typed `/approve ID` — reaches
//! [`Approvals::answer`] through the engine's ingress, which checks that it
//! comes from an owner in a direct conversation. No answer within the timeout
//! is a deny; a reply cancelled while waiting withdraws its question.

use crate::sink::OutboundSink;
use async_trait::async_trait;
use clara_core::approval::{ApprovalAnswer, ApprovalId, ApprovalOutcome, ApprovalPrompt, Verdict};
use clara_core::{Author, ChannelKind, ConversationRef, Outbound};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Someone whose approval counts: `platform:user` as written in
/// `[tools] owners` (`telegram:123456`); `*` as the user matches everyone on
/// that platform (the terminal, where whoever runs `clara chat` is the operator).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The platform (`telegram`).
    pub platform: String,
    /// The platform's user id, or `*`.
    pub user: String,
}

impl Owner {
    /// Parses `platform:user`.
    pub fn parse(text: &str) -> Option<Self> {
        let (platform, user) = text.trim().split_once(':')?;
        (!platform.is_empty() && !user.is_empty()).then(|| Self {
            platform: platform.to_owned(),
            user: user.to_owned(),
        })
    }

    fn is(&self, platform: &str, user: &str) -> bool {
        self.platform == platform && (self.user == "*" || self.user == user)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.platform, self.user)
    }
}

/// One question a reply asks.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Question {
    /// The tool, namespaced.
    pub tool: String,
    /// Its arguments as JSON.
    pub arguments: String,
    /// Why the policy asks.
    pub reason: String,
    /// Whom the reply is for, and where.
    pub asked_for: String,
}

/// How a question ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    /// An owner answered.
    Given {
        /// What they said.
        verdict: Verdict,
        /// Who, as `platform:user`.
        by: String,
    },
    /// Nobody answered in time.
    TimedOut {
        /// How long Clara waited, in seconds.
        after_secs: u64,
    },
    /// The question could not be asked (no owner reachable); `why` says so.
    Unreachable {
        /// One sentence.
        why: String,
    },
}

/// Whoever asks the owner on a reply's behalf.
#[async_trait]
pub trait Asker: Send + Sync + 'static {
    /// Asks, and waits for the answer (or the timeout). Dropping the future
    /// withdraws the question.
    async fn ask(&self, question: Question) -> Answer;
}

/// Asks nobody: every question is answered "unreachable" with `why` — a
/// deny, fail closed. What a process that cannot reach the owner uses.
pub struct NoOwner {
    /// The sentence the model and the record get.
    pub why: String,
}

#[async_trait]
impl Asker for NoOwner {
    async fn ask(&self, _: Question) -> Answer {
        Answer::Unreachable {
            why: self.why.clone(),
        }
    }
}

/// The platforms' sinks, by platform name, as the engine keeps them.
pub type Sinks = Arc<RwLock<HashMap<String, Arc<dyn OutboundSink>>>>;

struct Pending {
    answer: oneshot::Sender<(Verdict, String)>,
}

struct Inner {
    owners: Vec<Owner>,
    timeout: Duration,
    sinks: Sinks,
    pending: Mutex<HashMap<ApprovalId, Pending>>,
    /// Where each owner last wrote to Clara directly, and when (a counter):
    /// questions go to the most recent.
    last_direct: Mutex<HashMap<Owner, (u64, ConversationRef)>>,
    seen_count: std::sync::atomic::AtomicU64,
}

/// The owner's questions and answers, in the process that holds the
/// platforms' sinks. Cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    inner: Arc<Inner>,
}

impl Approvals {
    /// Questions go to `owners` through `sinks`, and wait `timeout` for an answer.
    pub fn new(owners: Vec<Owner>, timeout: Duration, sinks: Sinks) -> Self {
        Self {
            inner: Arc::new(Inner {
                owners,
                timeout,
                sinks,
                pending: Mutex::new(HashMap::new()),
                last_direct: Mutex::new(HashMap::new()),
                seen_count: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// The owner `author` is on `platform`, if they are one.
    fn owner_of(&self, platform: &str, author: &Author) -> Option<&Owner> {
        self.inner
            .owners
            .iter()
            .find(|o| o.is(platform, &author.platform_user_id))
    }

    /// Notes that `author` wrote in `conversation`: if they are an owner and it
    /// is a direct conversation, their questions go there from now on.
    pub fn seen(&self, conversation: &ConversationRef, author: &Author) {
        if conversation.kind != ChannelKind::Direct {
            return;
        }
        if self.owner_of(&conversation.platform, author).is_some() {
            let key = Owner {
                platform: conversation.platform.clone(),
                user: author.platform_user_id.clone(),
            };
            let when = self
                .inner
                .seen_count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner
                .last_direct
                .lock()
                .insert(key, (when, conversation.clone()));
        }
    }

    /// Where a question goes: the direct conversation an owner wrote in most
    /// recently, else the first owner with a concrete user id whose platform
    /// is attached, as a DM channel of that id.
    fn destination(&self) -> Option<(ConversationRef, Arc<dyn OutboundSink>)> {
        let sinks = self.inner.sinks.read();
        let mut recent: Vec<(u64, ConversationRef)> =
            self.inner.last_direct.lock().values().cloned().collect();
        recent.sort_by_key(|(when, _)| std::cmp::Reverse(*when));
        for (_, conversation) in recent {
            if let Some(sink) = sinks.get(&conversation.platform) {
                return Some((conversation, Arc::clone(sink)));
            }
        }
        for owner in &self.inner.owners {
            if owner.user == "*" {
                continue;
            }
            if let Some(sink) = sinks.get(&owner.platform) {
                let conversation = ConversationRef {
                    platform: owner.platform.clone(),
                    channel: owner.user.clone(),
                    kind: ChannelKind::Direct,
                };
                return Some((conversation, Arc::clone(sink)));
            }
        }
        None
    }

    /// Reads an owner's answer. Returns the sentence to show in `conversation`
    /// when the answer does not count (a group, not an owner, a question no
    /// longer open); `None` when it was taken (the question's own message
    /// shows the outcome).
    pub fn answer(
        &self,
        conversation: &ConversationRef,
        author: &Author,
        answer: &ApprovalAnswer,
    ) -> Option<&'static str> {
        if conversation.kind != ChannelKind::Direct {
            return Some(
                "Tool approvals are answered in a direct conversation with Clara, not in a group.",
            );
        }
        let Some(owner) = self.owner_of(&conversation.platform, author) else {
            return Some("Only Clara's owner can approve tool calls.");
        };
        let by = format!("{}:{}", owner.platform, author.platform_user_id);
        let pending = self.inner.pending.lock().remove(&answer.id);
        let closed = "That question is no longer open: it was answered, timed out or withdrawn.";
        match pending {
            Some(p) => p.answer.send((answer.verdict, by)).err().map(|_| closed),
            None => Some(closed),
        }
    }

    fn new_id(&self) -> ApprovalId {
        loop {
            let id = ApprovalId(format!("{:08x}", rand::random::<u32>()));
            if !self.inner.pending.lock().contains_key(&id) {
                return id;
            }
        }
    }
}

/// Closes a question however the wait ends (answer, timeout, or the reply
/// dropped mid-wait): removes it and updates its message.
struct Open {
    approvals: Approvals,
    prompt: ApprovalPrompt,
    conversation: ConversationRef,
    sink: Arc<dyn OutboundSink>,
    message: Option<String>,
    outcome: Option<ApprovalOutcome>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.approvals.inner.pending.lock().remove(&self.prompt.id);
        let outcome = self.outcome.take().unwrap_or(ApprovalOutcome::Withdrawn);
        let closed = Outbound::AskClosed {
            prompt: self.prompt.clone(),
            message: self.message.take(),
            outcome,
        };
        let sink = Arc::clone(&self.sink);
        let conversation = self.conversation.clone();
        // Drop cannot wait; the update is best effort (the question is closed
        // in Clara either way).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = sink.deliver(&conversation, closed).await {
                    tracing::debug!(%error, "could not update a closed approval question");
                }
            });
        }
    }
}

#[async_trait]
impl Asker for Approvals {
    async fn ask(&self, question: Question) -> Answer {
        let Some((conversation, sink)) = self.destination() else {
            return Answer::Unreachable {
                why: "No owner could be asked (set [tools] owners, and write to Clara once in a direct conversation).".to_owned(),
            };
        };
        let id = self.new_id();
        let prompt = ApprovalPrompt {
            id: id.clone(),
            tool: question.tool,
            arguments: cut(&question.arguments, 600),
            reason: question.reason,
            asked_for: question.asked_for,
            timeout_secs: self.inner.timeout.as_secs(),
        };
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().insert(id, Pending { answer: tx });
        let mut open = Open {
            approvals: self.clone(),
            prompt: prompt.clone(),
            conversation: conversation.clone(),
            sink: Arc::clone(&sink),
            message: None,
            outcome: None,
        };
        match sink.deliver(&conversation, Outbound::Ask { prompt }).await {
            Ok(message) => open.message = message,
            Err(error) => {
                tracing::warn!(%error, platform = %conversation.platform, "could not ask the owner");
                open.outcome = Some(ApprovalOutcome::Withdrawn);
                return Answer::Unreachable {
                    why: "The owner could not be asked: their platform refused the message."
                        .to_owned(),
                };
            }
        }
        match tokio::time::timeout(self.inner.timeout, rx).await {
            Ok(Ok((verdict, by))) => {
                open.outcome = Some(ApprovalOutcome::Answered(verdict));
                Answer::Given { verdict, by }
            }
            Ok(Err(_)) | Err(_) => {
                open.outcome = Some(ApprovalOutcome::TimedOut);
                Answer::TimedOut {
                    after_secs: self.inner.timeout.as_secs(),
                }
            }
        }
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_and_match() {
        let owner = Owner::parse("telegram:42").unwrap();
        assert!(owner.is("telegram", "42"));
        assert!(!owner.is("telegram", "43"));
        assert!(!owner.is("discord", "42"));
        assert!(Owner::parse("cli:*").unwrap().is("cli", "anyone"));
        assert_eq!(Owner::parse("nocolon"), None);
        assert_eq!(Owner::parse("telegram:"), None);
    }
}

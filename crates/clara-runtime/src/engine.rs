//! The engine: the one entry point adapters talk to.
//!
//! [`Engine::submit`] is ingress: it checks a message (empty, too long, seen
//! before, a stop phrase, a tier prefix) and hands it to its conversation's actor,
//! starting the actor on first use.

use crate::actor::{ActorMsg, ConversationActor};
use crate::approvals::{Approvals, Sinks};
use crate::brain::Brain;
use crate::brain::gate::Gate;
use crate::config::EngineConfig;
use crate::proactive::{ProactiveError, ProactiveMsg, ProactiveSignals, text_of};
use crate::queue::{LocalQueue, ReplyQueue, SeenEvents};
use crate::sink::OutboundSink;
use crate::uploads::Uploads;
use clara_core::dedupe::RecentEvents;
use clara_core::{
    Author, ConversationId, ConversationRef, Inbound, Outbound, SessionId, Thought, ThoughtId, Tier,
};
use clara_llm::ChatProvider;
use clara_memory::Rook;
use clara_store::{MessageWriter, Store};
use clara_tools::ToolRegistry;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// How many messages may wait for one conversation's actor before `submit` waits.
const ACTOR_MAILBOX: usize = 256;
/// The background job that summarises an ended session.
pub const SUMMARY_JOB: &str = "summarize_session";

/// The job kind that extracts memories from one answered thought.
pub const LEARN_JOB: &str = "extract_memories";

pub use clara_core::port::{Accepted, IngressError};

pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) writer: MessageWriter,
    pub(crate) provider: Arc<dyn ChatProvider>,
    pub(crate) tools: ToolRegistry,
    pub(crate) memory: Option<Rook>,
    pub(crate) config: EngineConfig,
    /// Where replies run: this process, or workers behind Redis.
    replies: RwLock<Arc<dyn ReplyQueue>>,
    /// Platform event ids seen by every gateway (Redis `SET NX`), besides the
    /// in-process `dedupe`.
    seen_events: RwLock<Option<Arc<dyn SeenEvents>>>,
    /// Where files people send are kept; none: they are not kept.
    pub(crate) uploads: RwLock<Option<Arc<dyn Uploads>>>,
    sinks: Sinks,
    /// The owner's open questions (tool approvals) and their answers.
    approvals: Approvals,
    actors: Mutex<HashMap<ConversationRef, mpsc::Sender<ActorMsg>>>,
    by_id: Mutex<HashMap<ConversationId, ConversationRef>>,
    dedupe: Mutex<RecentEvents>,
    closed: AtomicBool,
    /// Wakes the session keeper when a job was queued, so memories are learned
    /// seconds after an exchange rather than at the next periodic pass.
    pub(crate) jobs_queued: Notify,
    /// Wakes the scheduler and the outbox's delivery.
    proactive: Arc<ProactiveSignals>,
}

/// Clara's conversation engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// An engine answering with `provider` and remembering in `store`.
    pub fn new(config: EngineConfig, store: Store, provider: Arc<dyn ChatProvider>) -> Self {
        Self::with_tools(config, store, provider, ToolRegistry::default())
    }

    /// An engine whose replies may use `tools`. The registry is shared, not
    /// copied: a change to it (a tool server added or removed while Clara runs)
    /// reaches the replies that start afterwards.
    pub fn with_tools(
        config: EngineConfig,
        store: Store,
        provider: Arc<dyn ChatProvider>,
        tools: ToolRegistry,
    ) -> Self {
        Self::build(config, store, provider, tools, None)
    }

    /// An engine with long-term memory: replies recall from `memory`, and each
    /// exchange is learned from in the background. The `memory__*` tools, with
    /// which the person asks what is remembered and corrects or forgets it, are
    /// a tool provider like any other
    /// ([`MemoryTools`](crate::memory_tools::MemoryTools)): they are in `tools`
    /// when whoever assembled the registry added them.
    pub fn with_memory(
        config: EngineConfig,
        store: Store,
        provider: Arc<dyn ChatProvider>,
        tools: ToolRegistry,
        memory: Rook,
    ) -> Self {
        Self::build(config, store, provider, tools, Some(memory))
    }

    fn build(
        config: EngineConfig,
        store: Store,
        provider: Arc<dyn ChatProvider>,
        tools: ToolRegistry,
        memory: Option<Rook>,
    ) -> Self {
        let dedupe = RecentEvents::new(config.dedupe_ttl, 100_000);
        let sinks: Sinks = Arc::new(RwLock::new(HashMap::new()));
        let approvals = Approvals::new(
            config.approvals.owners.clone(),
            config.approvals.timeout,
            Arc::clone(&sinks),
        );
        let gate = gate_of(&store, &approvals, &config);
        let brain = brain_of(&provider, &tools, memory.as_ref(), &config, gate);
        let shared = Shared {
            writer: store.writer(),
            store,
            provider,
            tools,
            memory,
            replies: RwLock::new(Arc::new(LocalQueue::new(brain))),
            seen_events: RwLock::new(None),
            uploads: RwLock::new(None),
            config,
            sinks,
            approvals,
            actors: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
            dedupe: Mutex::new(dedupe),
            closed: AtomicBool::new(false),
            jobs_queued: Notify::new(),
            proactive: Arc::new(ProactiveSignals::default()),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Notified when a background job was queued.
    pub(crate) fn jobs_queued(&self) -> &Notify {
        &self.shared.jobs_queued
    }

    /// What wakes the scheduler and the outbox's delivery in this process.
    pub fn proactive_signals(&self) -> &Arc<ProactiveSignals> {
        &self.shared.proactive
    }

    /// The platforms with an adapter attached here.
    pub fn platforms(&self) -> Vec<String> {
        let mut names: Vec<String> = self.shared.sinks.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Delivers one outbox message to its conversation: said through the
    /// send queue and stored as Clara's message, or — a scheduled task — turned
    /// into a thought of the person's and answered. Waits until it was
    /// delivered (a task: until its thought started).
    pub async fn deliver_proactive(
        &self,
        record: &clara_store::ProactiveRecord,
    ) -> Result<(), ProactiveError> {
        let conversation = &record.conversation_ref;
        if self.shared.sink(&conversation.platform).is_none() {
            return Err(ProactiveError::NoAdapter(conversation.platform.clone()));
        }
        let author = match (record.kind, record.user) {
            (clara_store::ProactiveKind::Task, Some(user)) => {
                let (platform_user_id, display_name) = self
                    .shared
                    .store
                    .identity_on(user, &conversation.platform)
                    .await?
                    .ok_or_else(|| ProactiveError::Unknown(conversation.platform.clone()))?;
                Some(Author {
                    platform_user_id,
                    display_name,
                })
            }
            (clara_store::ProactiveKind::Task, None) => {
                return Err(ProactiveError::Unknown(conversation.platform.clone()));
            }
            _ => None,
        };
        let (done, delivered) = oneshot::channel();
        let msg = ProactiveMsg {
            key: record.key.clone(),
            kind: record.kind,
            text: text_of(record),
            author,
            done,
        };
        self.shared
            .send(conversation, ActorMsg::Proactive(Box::new(msg)))
            .await;
        match delivered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(ProactiveError::Failed(why)),
            Err(_) => Err(ProactiveError::Failed("Clara is stopping".into())),
        }
    }

    /// The tools replies may use: the registry whose changes the next reply sees.
    pub fn tools(&self) -> &ToolRegistry {
        &self.shared.tools
    }

    /// Long-term memory, when the engine has it.
    pub fn memory(&self) -> Option<&Rook> {
        self.shared.memory.as_ref()
    }

    /// Attaches the adapter that delivers replies for `platform`.
    pub fn attach(&self, platform: &str, sink: Arc<dyn OutboundSink>) {
        self.shared.sinks.write().insert(platform.to_owned(), sink);
    }

    /// Runs replies through `queue` from now on (the distributed deployment's
    /// workers); by default they run in this process.
    pub fn set_reply_queue(&self, queue: Arc<dyn ReplyQueue>) {
        *self.shared.replies.write() = queue;
    }

    /// Also checks platform event ids against `seen`, shared by every gateway
    /// process, so a platform delivering an event twice, to two gateways, gets
    /// one answer.
    pub fn set_seen_events(&self, seen: Arc<dyn SeenEvents>) {
        *self.shared.seen_events.write() = Some(seen);
    }

    /// Keeps the files people send with `uploads` from now on (the file store
    /// and their sandbox workspace); without it the model hears that files
    /// are not kept here.
    pub fn set_uploads(&self, uploads: Arc<dyn Uploads>) {
        *self.shared.uploads.write() = Some(uploads);
    }

    /// What answers replies in this process: the model, the tools (behind the
    /// owner's approvals) and the memory.
    pub fn brain(&self) -> Brain {
        let s = &self.shared;
        let gate = gate_of(&s.store, &s.approvals, &s.config);
        brain_of(&s.provider, &s.tools, s.memory.as_ref(), &s.config, gate)
    }

    /// The owner's open questions: where a tool approval is asked and answered.
    pub fn approvals(&self) -> &Approvals {
        &self.shared.approvals
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The model the engine answers with.
    pub fn provider(&self) -> &Arc<dyn ChatProvider> {
        &self.shared.provider
    }

    /// Ingress: takes one message from an adapter.
    pub async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        let received = Instant::now();
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(IngressError::Closed);
        }
        let (tier, text) = Tier::strip_prefix(&inbound.text);
        let text = text.trim();
        // A file or a picture alone is something to answer.
        let attached = !inbound.files.is_empty() || !inbound.images.is_empty();
        if text.is_empty() && tier.is_none() && !attached {
            return Err(IngressError::Empty);
        }
        let chars = text.chars().count();
        if chars > self.shared.config.max_message_chars {
            return Err(IngressError::TooLong {
                chars,
                limit: self.shared.config.max_message_chars,
            });
        }
        if !self
            .shared
            .dedupe
            .lock()
            .first_time(&inbound.event_id, received.into_std())
        {
            return Ok(Accepted::Duplicate);
        }
        let seen = self.shared.seen_events.read().clone();
        if let Some(seen) = seen
            && !seen
                .first_time(&inbound.conversation, &inbound.event_id)
                .await
        {
            return Ok(Accepted::Duplicate);
        }
        self.shared
            .approvals
            .seen(&inbound.conversation, &inbound.author);
        if let Some(answer) = clara_core::approval::parse_command(text) {
            // An answer to a tool approval is Clara's to read, never the model's,
            // and is not part of the conversation.
            if let Some(refusal) =
                self.shared
                    .approvals
                    .answer(&inbound.conversation, &inbound.author, &answer)
            {
                self.shared.tell(&inbound.conversation, refusal).await;
            }
            return Ok(Accepted::Queued);
        }
        if self.shared.config.stop_phrases.matches(text) {
            let author = inbound.author.clone();
            self.shared
                .send(&inbound.conversation, ActorMsg::Stop { author })
                .await;
            return Ok(Accepted::Stopped);
        }
        if text.is_empty() && !attached {
            // A bare "!high": nothing to answer, but not an error either.
            return Err(IngressError::Empty);
        }
        // The person's own words were checked above; a quoted reply chain (capped
        // in `with_reply_context`) travels with them as context for the model.
        let text = clara_core::inbound::with_reply_context(&inbound.replying_to, text);
        let conversation = inbound.conversation.clone();
        self.shared
            .send(
                &conversation,
                ActorMsg::Inbound {
                    inbound: Box::new(inbound),
                    text,
                    tier,
                    received,
                },
            )
            .await;
        Ok(Accepted::Queued)
    }

    /// Stops `author`'s reply in `conversation` (a stop button or command), exactly
    /// as a stop phrase would: the reply in flight is cancelled and what they said
    /// but was not yet answered is dropped.
    pub async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        if self.shared.has_actor(conversation) {
            self.shared
                .send(
                    conversation,
                    ActorMsg::Stop {
                        author: author.clone(),
                    },
                )
                .await;
        }
    }

    /// Starts a fresh session in `conversation` (a `/new` command or button): the
    /// reply in flight is cancelled, the current session ends (its summary is
    /// written in the background and becomes the new session's starting context),
    /// and the model no longer sees the earlier messages, also after a restart.
    /// Long-term memories are kept.
    pub async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(IngressError::Closed);
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .send(
                conversation,
                ActorMsg::NewSession {
                    author: author.clone(),
                    done: tx,
                },
            )
            .await;
        let _ = rx.await;
        Ok(())
    }

    /// The platform says `author` is typing in `conversation`.
    pub async fn typing(&self, conversation: &ConversationRef, author: &Author) {
        if self.shared.has_actor(conversation) {
            self.shared
                .send(
                    conversation,
                    ActorMsg::Typing {
                        author: author.clone(),
                    },
                )
                .await;
        }
    }

    /// Answers what is pending in `conversation` now, without waiting for the quiet
    /// period (the end of piped input).
    pub async fn flush(&self, conversation: &ConversationRef) {
        if self.shared.has_actor(conversation) {
            self.shared.send(conversation, ActorMsg::Flush).await;
        }
    }

    /// Waits until `conversation` has nothing pending, queued or in flight.
    pub async fn wait_idle(&self, conversation: &ConversationRef) {
        if !self.shared.has_actor(conversation) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        self.shared.send(conversation, ActorMsg::WhenIdle(tx)).await;
        let _ = rx.await;
    }

    /// Stops taking messages, cancels replies in flight (recording what was shown),
    /// and waits until everything accepted is committed to the store.
    pub async fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let actors: Vec<_> = self
            .shared
            .actors
            .lock()
            .drain()
            .map(|(_, tx)| tx)
            .collect();
        for tx in actors {
            let (done, wait) = oneshot::channel();
            if tx.send(ActorMsg::Shutdown(done)).await.is_ok() {
                let _ = wait.await;
            }
        }
        if let Err(error) = self.shared.writer.flush().await {
            tracing::error!(%error, "messages could not be written at shutdown");
        }
    }

    /// A summary for `conversation` was written; its actor, if running, uses it.
    pub(crate) async fn summary_ready(&self, conversation: ConversationId, summary: String) {
        let conv = self.shared.by_id.lock().get(&conversation).cloned();
        if let Some(conv) = conv {
            self.shared
                .send_if_running(&conv, ActorMsg::Summary(summary))
                .await;
        }
    }

    /// The session keeper ended `conversation`'s session.
    pub(crate) async fn session_ended(&self, conversation: ConversationId) {
        let conv = self.shared.by_id.lock().get(&conversation).cloned();
        if let Some(conv) = conv {
            self.shared
                .send_if_running(&conv, ActorMsg::SessionEnded)
                .await;
        }
    }
}

impl Shared {
    pub(crate) fn replies(&self) -> Arc<dyn ReplyQueue> {
        Arc::clone(&self.replies.read())
    }

    pub(crate) fn sink(&self, platform: &str) -> Option<Arc<dyn OutboundSink>> {
        self.sinks.read().get(platform).cloned()
    }

    /// Says one sentence in `conversation`, outside any reply (a refused
    /// approval answer). Best effort: a platform that refuses is logged.
    async fn tell(&self, conversation: &ConversationRef, text: &str) {
        let Some(sink) = self.sink(&conversation.platform) else {
            return;
        };
        let out = Outbound::Send {
            thought: ThoughtId::new(),
            text: text.to_owned(),
        };
        if let Err(error) = sink.deliver(conversation, out).await {
            tracing::debug!(%error, "could not answer an approval command");
        }
    }

    fn has_actor(&self, conversation: &ConversationRef) -> bool {
        self.actors.lock().contains_key(conversation)
    }

    /// Sends to the conversation's actor, starting one when none runs.
    pub(crate) async fn send(self: &Arc<Self>, conversation: &ConversationRef, mut msg: ActorMsg) {
        loop {
            let tx = {
                let mut actors = self.actors.lock();
                match actors.get(conversation) {
                    Some(tx) => tx.clone(),
                    None => {
                        let (tx, rx) = mpsc::channel(ACTOR_MAILBOX);
                        actors.insert(conversation.clone(), tx.clone());
                        tokio::spawn(ConversationActor::start(
                            Arc::clone(self),
                            conversation.clone(),
                            rx,
                        ));
                        tx
                    }
                }
            };
            match tx.send(msg).await {
                Ok(()) => return,
                // The actor retired between lookup and send: start a new one.
                Err(mpsc::error::SendError(returned)) => {
                    msg = returned;
                    let mut actors = self.actors.lock();
                    if actors
                        .get(conversation)
                        .is_some_and(|t| t.same_channel(&tx))
                    {
                        actors.remove(conversation);
                    }
                }
            }
        }
    }

    async fn send_if_running(self: &Arc<Self>, conversation: &ConversationRef, msg: ActorMsg) {
        let tx = self.actors.lock().get(conversation).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(msg).await;
        }
    }

    /// Sends a message a retiring actor could not handle to its successor.
    ///
    /// Boxed as a `Send` future: an actor's future contains this call, which may
    /// start an actor, so its type would otherwise contain itself.
    pub(crate) fn reroute<'a>(
        self: &'a Arc<Self>,
        conversation: &'a ConversationRef,
        msg: ActorMsg,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(self.send(conversation, msg))
    }

    pub(crate) fn register_id(&self, id: ConversationId, conversation: &ConversationRef) {
        self.by_id.lock().insert(id, conversation.clone());
    }

    /// Removes a retiring actor, unless messages are waiting for it. Returns
    /// whether it was removed.
    pub(crate) fn unregister(
        &self,
        conversation: &ConversationRef,
        id: ConversationId,
        rx: &mpsc::Receiver<ActorMsg>,
    ) -> bool {
        let mut actors = self.actors.lock();
        if !rx.is_empty() || self.closed.load(Ordering::Acquire) {
            return false;
        }
        actors.remove(conversation);
        self.by_id.lock().remove(&id);
        true
    }

    pub(crate) async fn enqueue_summary(&self, session: SessionId, now_ms: i64) {
        let payload = serde_json::json!({ "session": session.to_string() });
        match self.store.enqueue_job(SUMMARY_JOB, &payload, now_ms).await {
            Ok(_) => self.jobs_queued.notify_one(),
            Err(error) => tracing::error!(%error, %session, "could not queue the session summary"),
        }
    }

    /// Queues the extraction of memories from an answered thought. The job is
    /// durable: a restart before it runs delays it, it does not lose it.
    pub(crate) async fn enqueue_learning(
        &self,
        conversation: ConversationId,
        thought: &Thought,
        now_ms: i64,
    ) {
        let payload = serde_json::json!({
            "conversation": conversation.to_string(),
            "thought": thought.id.to_string(),
            "person": thought.author.display_name,
        });
        match self.store.enqueue_job(LEARN_JOB, &payload, now_ms).await {
            Ok(_) => self.jobs_queued.notify_one(),
            Err(error) => {
                tracing::error!(%error, thought = %thought.id, "could not queue memory extraction")
            }
        }
    }
}

/// The brain made of the engine's parts.
fn brain_of(
    provider: &Arc<dyn ChatProvider>,
    tools: &ToolRegistry,
    memory: Option<&Rook>,
    config: &EngineConfig,
    gate: Gate,
) -> Brain {
    Brain {
        provider: Arc::clone(provider),
        tools: tools.clone(),
        memory: memory.cloned(),
        recall_timeout: config.recall_timeout,
        gate,
    }
}

/// The gate of this process's replies: Clara's default rules then the
/// owner's, grants and pins in the store, questions through `approvals`.
fn gate_of(store: &Store, approvals: &Approvals, config: &EngineConfig) -> Gate {
    Gate::new(&config.approvals.rules, store, Arc::new(approvals.clone()))
}

/// The engine is Clara for in-process adapters.
#[async_trait::async_trait]
impl clara_core::port::Assistant for Engine {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        Engine::submit(self, inbound).await
    }

    async fn typing(&self, conversation: &ConversationRef, author: &Author) {
        Engine::typing(self, conversation, author).await;
    }

    async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        Engine::stop(self, conversation, author).await;
    }

    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        Engine::new_session(self, conversation, author).await
    }
}

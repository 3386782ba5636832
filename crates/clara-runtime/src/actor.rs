//! One conversation's actor: the single owner of that conversation's state.
//!
//! Every message of a conversation goes through its actor, in order, so chunking,
//! cancellation and the conversation window need no locks. The actor stores each
//! message as it is accepted, feeds the chunker, starts one reply at a time and
//! records what reached the person when the reply ends.

use crate::brain::{
    CachedTurn, ConversationContext, RecallScope, ReplyJob, ReplyOutcome, ReplyStatus, Spent,
    ToolScope,
};
use crate::clock::now_ms;
use crate::engine::Shared;
use crate::proactive::{ProactiveMsg, event_of};
use crate::send_queue::SendQueue;
use clara_core::chunker::{Chunker, Said};
use clara_core::{
    Author, ConversationRef, EventId, Inbound, MessageId, ProjectId, Role, Thought, ThoughtId,
    Tier, UserId,
};
use clara_store::{MessageStatus, NewMessage, ReplyUsage, SessionRecord};
use clara_tools::ToolContext;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often, at most, a session's last activity is written to the store. The
/// idle rule counts in tens of minutes, so a minute of lag is harmless and saves a
/// write per message.
const TOUCH_EVERY_MS: i64 = 60_000;

/// What an actor is asked to do.
#[derive(Debug)]
pub(crate) enum ActorMsg {
    /// A new message (tier prefix already removed from `text`).
    Inbound {
        // Boxed: an `Inbound` (images, reply chain) dwarfs the other messages.
        inbound: Box<Inbound>,
        text: String,
        tier: Option<Tier>,
        received: Instant,
    },
    /// A stop phrase from `author`.
    Stop { author: Author },
    /// `author` asked for a fresh session; `done` fires when it has started.
    NewSession {
        author: Author,
        done: oneshot::Sender<()>,
    },
    /// The platform says `author` is typing.
    Typing { author: Author },
    /// Emit the pending burst now.
    Flush,
    /// Answer when nothing is pending, queued or in flight.
    WhenIdle(oneshot::Sender<()>),
    /// A summary of an ended session was written.
    Summary(String),
    /// The session was ended elsewhere (by the session keeper).
    SessionEnded,
    /// A message Clara starts (an alert, a reminder, a scheduled task).
    Proactive(Box<ProactiveMsg>),
    /// Cancel what is in flight and stop.
    Shutdown(oneshot::Sender<()>),
}

struct InFlight {
    thought: Thought,
    tier: Tier,
    model: String,
    cancel: CancellationToken,
    handle: JoinHandle<ReplyOutcome>,
}

pub(crate) struct ConversationActor {
    shared: Arc<Shared>,
    conversation: ConversationRef,
    rx: mpsc::Receiver<ActorMsg>,
    chunker: Chunker,
    context: ConversationContext,
    session: SessionRecord,
    last_activity_ms: i64,
    last_touch_ms: i64,
    /// Events already stored before this actor started (a platform redelivering
    /// after a restart).
    stored_events: HashSet<EventId>,
    users: HashMap<String, UserId>,
    /// The project the conversation belongs to (its memories are recalled here).
    project: Option<ProjectId>,
    in_flight: Option<InFlight>,
    queued: VecDeque<Thought>,
    /// Proactive messages to say once the reply in flight has ended (they
    /// never cut into a reply).
    waiting_say: VecDeque<ProactiveMsg>,
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// What this actor last added to the `clara_thoughts_queued` and
    /// `clara_replies_in_flight` gauges (`/metrics`).
    reported_load: (usize, usize),
}

impl ConversationActor {
    /// Loads the conversation from the store, retrying while the store is
    /// unavailable (messages wait in the channel meanwhile), then runs.
    pub(crate) async fn start(
        shared: Arc<Shared>,
        conversation: ConversationRef,
        mut rx: mpsc::Receiver<ActorMsg>,
    ) {
        let mut delay = Duration::from_millis(50);
        loop {
            match Self::load(&shared, &conversation, rx).await {
                Ok(actor) => return actor.run().await,
                Err((error, returned)) => {
                    tracing::error!(platform = %conversation.platform, %error, "cannot load the conversation; retrying");
                    rx = returned;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn load(
        shared: &Arc<Shared>,
        conversation: &ConversationRef,
        rx: mpsc::Receiver<ActorMsg>,
    ) -> Result<Self, (clara_store::StoreError, mpsc::Receiver<ActorMsg>)> {
        let store = &shared.store;
        let now = now_ms();
        let loaded = async {
            let id = store.resolve_conversation(conversation).await?;
            let session = match store.current_session(id).await? {
                Some(s) => s,
                None => store.start_session(id, now).await?,
            };
            let rules = &shared.config.window;
            let max_age_ms = i64::try_from(rules.max_age.as_millis()).unwrap_or(i64::MAX);
            let recent = store
                .recent_messages(
                    id,
                    now.saturating_sub(max_age_ms),
                    clamp_u32(rules.min_messages),
                    clamp_u32(rules.max_messages),
                )
                .await?;
            let summary = store.last_summary(id).await?.map(|s| s.summary);
            let project = store.conversation_project(id).await?;
            // Clara's messages in the window show the tools their replies used.
            let replies: Vec<MessageId> = recent
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .map(|m| m.id)
                .collect();
            let tool_runs = if replies.is_empty() {
                HashMap::new()
            } else {
                store.tool_runs_for_messages(&replies).await?
            };
            Ok::<_, clara_store::StoreError>((id, session, recent, tool_runs, summary, project))
        }
        .await;
        let (id, session, recent, tool_runs, summary, project) = match loaded {
            Ok(v) => v,
            Err(e) => return Err((e, rx)),
        };
        let context = ConversationContext::new(
            id,
            recent,
            &tool_runs,
            summary,
            shared.config.window.max_messages,
        );
        let stored_events = context.events().cloned().collect();
        shared.register_id(id, conversation);
        let last_activity_ms = session.last_activity_at_ms;
        Ok(Self {
            shared: Arc::clone(shared),
            conversation: conversation.clone(),
            rx,
            chunker: Chunker::new(shared.config.chunker.clone()),
            context,
            last_activity_ms,
            last_touch_ms: last_activity_ms,
            session,
            stored_events,
            users: HashMap::new(),
            project,
            in_flight: None,
            queued: VecDeque::new(),
            waiting_say: VecDeque::new(),
            idle_waiters: Vec::new(),
            reported_load: (0, 0),
        })
    }

    async fn run(mut self) {
        loop {
            let deadline = self.chunker.deadline().map(Instant::from_std);
            let idle = self.is_idle();
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(ActorMsg::Shutdown(done)) => {
                        self.shutdown().await;
                        self.report_load();
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => self.handle(msg).await,
                    None => {
                        self.shutdown().await;
                        self.report_load();
                        return;
                    }
                },
                () = sleep_until_opt(deadline), if deadline.is_some() => {
                    if let Some(thought) = self.chunker.poll(Instant::now().into_std()) {
                        self.dispatch(thought);
                    }
                }
                outcome = join_in_flight(&mut self.in_flight), if self.in_flight.is_some() => {
                    self.finish_reply(outcome).await;
                }
                () = tokio::time::sleep(self.shared.config.actor_idle), if idle => {
                    if self.retire().await {
                        return;
                    }
                }
            }
            if self.is_idle() {
                for waiter in self.idle_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
            self.report_load();
        }
    }

    /// Moves the load gauges by what changed since the last report.
    fn report_load(&mut self) {
        let now = (self.queued.len(), usize::from(self.in_flight.is_some()));
        let (queued, in_flight) = self.reported_load;
        move_gauge(metrics::gauge!("clara_thoughts_queued"), queued, now.0);
        move_gauge(metrics::gauge!("clara_replies_in_flight"), in_flight, now.1);
        self.reported_load = now;
    }

    fn is_idle(&self) -> bool {
        !self.chunker.is_pending()
            && self.in_flight.is_none()
            && self.queued.is_empty()
            && self.waiting_say.is_empty()
    }

    async fn handle(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Inbound {
                inbound,
                text,
                tier,
                received,
            } => self.on_inbound(*inbound, text, tier, received).await,
            ActorMsg::Stop { author } => self.on_stop(&author),
            ActorMsg::NewSession { author, done } => {
                self.on_stop(&author);
                // A reply that already ended (or was just cancelled) is recorded
                // first, so it belongs to the old session, not the fresh one.
                if self.in_flight.is_some() {
                    let outcome = join_in_flight(&mut self.in_flight).await;
                    self.finish_reply(outcome).await;
                }
                self.start_afresh(now_ms()).await;
                let _ = done.send(());
            }
            ActorMsg::Typing { author } => self.chunker.typing(&author, Instant::now().into_std()),
            ActorMsg::Flush => {
                if let Some(thought) = self.chunker.take() {
                    self.dispatch(thought);
                }
            }
            ActorMsg::WhenIdle(waiter) => self.idle_waiters.push(waiter),
            ActorMsg::Summary(summary) => self.context.summary = Some(summary),
            ActorMsg::SessionEnded => self.session.ended_at_ms = Some(now_ms()),
            ActorMsg::Proactive(msg) => self.on_proactive(*msg).await,
            ActorMsg::Shutdown(_) => {}
        }
    }

    async fn on_inbound(
        &mut self,
        mut inbound: Inbound,
        text: String,
        tier: Option<Tier>,
        received: Instant,
    ) {
        if self.stored_events.contains(&inbound.event_id) {
            tracing::debug!(event = %inbound.event_id, "event already stored; ignoring the redelivery");
            return;
        }
        let now = now_ms();
        let user = self.user_id(&inbound.author).await;
        self.ensure_session(now).await;
        let uploads = self.shared.uploads.read().clone();
        let text = crate::uploads::keep_files(
            uploads.as_deref(),
            user,
            &text,
            std::mem::take(&mut inbound.files),
            &inbound.images,
        )
        .await;

        let at = received.into_std();
        let said = Said {
            event: inbound.event_id.clone(),
            text: text.clone(),
            tier: tier.or(inbound.tier),
            images: std::mem::take(&mut inbound.images),
        };
        let pushed = self.chunker.push(
            &inbound.conversation,
            &inbound.author,
            said,
            at,
            ThoughtId::new(),
        );
        // Accepted: stored before anything else can go wrong.
        self.append_message(
            pushed.thought,
            user,
            Role::User,
            text.clone(),
            Some(inbound.event_id.clone()),
            now,
        )
        .await;
        self.context.record(CachedTurn {
            role: Role::User,
            content: text,
            at_ms: now,
            event: Some(inbound.event_id),
        });

        let mut ready = pushed.ready;
        // The person wrote again: what they said before is still unanswered. Cancel
        // that reply and carry its text into the thought now forming.
        if let Some(unanswered) = self.take_unanswered(&inbound.author) {
            match ready.iter_mut().find(|t| t.author == unanswered.author) {
                Some(thought) => prepend(thought, unanswered),
                None => ready.extend(self.chunker.carry(unanswered, at)),
            }
        }
        for thought in ready {
            self.dispatch(thought);
        }
    }

    /// Cancels `author`'s reply in flight, or takes their queued thought, and
    /// returns the thought that is left unanswered.
    fn take_unanswered(&mut self, author: &Author) -> Option<Thought> {
        if let Some(pos) = self.queued.iter().position(|t| t.author == *author) {
            return self.queued.remove(pos);
        }
        let in_flight = self
            .in_flight
            .as_ref()
            .filter(|f| f.thought.author == *author)?;
        in_flight.cancel.cancel();
        tracing::debug!(thought = %in_flight.thought.id, "reply cancelled by a newer message");
        Some(in_flight.thought.clone())
    }

    fn on_stop(&mut self, author: &Author) {
        if let Some(f) = self
            .in_flight
            .as_ref()
            .filter(|f| f.thought.author == *author)
        {
            f.cancel.cancel();
        }
        self.queued.retain(|t| t.author != *author);
        if self.chunker.is_pending() {
            // The pending burst may be someone else's; only this person's is dropped.
            if let Some(pending) = self.chunker.take() {
                if pending.author == *author {
                    tracing::debug!(thought = %pending.id, "pending thought dropped by a stop phrase");
                } else {
                    self.dispatch(pending);
                }
            }
        }
    }

    fn dispatch(&mut self, thought: Thought) {
        metrics::counter!("clara_thoughts_total").increment(1);
        if self.in_flight.is_some() {
            self.queued.push_back(thought);
        } else {
            self.start_reply(thought);
        }
    }

    fn start_reply(&mut self, thought: Thought) {
        let Some(sink) = self.shared.sink(&self.conversation.platform) else {
            tracing::error!(platform = %self.conversation.platform, "no adapter is attached for this platform; the thought stays unanswered");
            return;
        };
        let config = &self.shared.config;
        let mut request = self.context.request_for(&thought, config, now_ms());
        let (tier, why) = match thought.tier {
            Some(tier) => (tier, "asked for"),
            None if config.auto_tier => Tier::auto(&thought.text()),
            None => (config.default_tier, "the default"),
        };
        request.model = config.tiers.model_for(tier).map(str::to_owned);
        tracing::debug!(thought = %thought.id, tier = tier.as_str(), why, model = ?request.model, "tier chosen");
        let user = self.users.get(&thought.author.platform_user_id).copied();
        // Whoever answers decides which tools there are: its registry, as it is
        // when the reply starts (a worker's, in the distributed deployment).
        let tools = Some(ToolScope {
            context: ToolContext {
                user,
                person: thought.author.display_name.clone(),
                conversation: Some(self.context.id),
                channel: Some(self.conversation.kind),
                project: self.project,
                thought: Some(thought.id),
                sideband: None,
            },
            max_rounds: config.tool_rounds,
        });
        let recall = self
            .shared
            .memory
            .as_ref()
            .and(user)
            .map(|user| RecallScope {
                user,
                project: self.project,
                channel: self.conversation.kind,
            });
        let queue = SendQueue::new(sink, self.conversation.clone(), thought.id);
        let cancel = CancellationToken::new();
        let job = ReplyJob {
            thought: thought.clone(),
            request,
            tools,
            recall,
        };
        let model = job
            .request
            .model
            .clone()
            .unwrap_or_else(|| self.shared.provider.model().to_owned());
        let replies = self.shared.replies();
        let reply_cancel = cancel.clone();
        let handle = tokio::spawn(async move { replies.run(job, queue, reply_cancel).await });
        self.in_flight = Some(InFlight {
            thought,
            tier,
            model,
            cancel,
            handle,
        });
    }

    async fn finish_reply(&mut self, outcome: Result<ReplyOutcome, tokio::task::JoinError>) {
        let Some(in_flight) = self.in_flight.take() else {
            return;
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(error) => {
                tracing::error!(thought = %in_flight.thought.id, %error, "reply task failed");
                ReplyOutcome {
                    thought: in_flight.thought,
                    status: ReplyStatus::Failed,
                    delivered: String::new(),
                    whole_parts: false,
                    spent: Spent::default(),
                    // Lost with the task; nothing is known of what ran.
                    tool_runs: Vec::new(),
                }
            }
        };
        let now = now_ms();
        if !outcome.delivered.trim().is_empty() {
            // What the person saw is what Clara said. A stream cut mid-sentence is
            // kept for the record but left out of later prompts; whole parts were
            // read as messages and stay in the conversation.
            let status = match outcome.status {
                ReplyStatus::Finished => MessageStatus::Complete,
                ReplyStatus::Cancelled if outcome.whole_parts => MessageStatus::Complete,
                ReplyStatus::Cancelled => MessageStatus::Cancelled,
                ReplyStatus::Failed => MessageStatus::Failed,
            };
            drop(
                self.shared
                    .writer
                    .append(NewMessage {
                        id: MessageId::new(),
                        conversation: self.context.id,
                        session: self.session.id,
                        thought: outcome.thought.id,
                        user: None,
                        role: Role::Assistant,
                        content: outcome.delivered.clone(),
                        event_id: None,
                        status,
                        created_at_ms: now,
                        // Committed with the message; an empty list costs no write.
                        tool_runs: outcome.tool_runs.clone(),
                        usage: outcome.spent.usage.map(|u| ReplyUsage {
                            user: self
                                .users
                                .get(&outcome.thought.author.platform_user_id)
                                .copied(),
                            provider: self.shared.provider.name().to_owned(),
                            model: in_flight.model.clone(),
                            tier: in_flight.tier.as_str().to_owned(),
                            input_tokens: u.input_tokens,
                            output_tokens: u.output_tokens,
                            cost_usd: u.cost_usd,
                            tool_calls: u32::try_from(outcome.spent.tool_calls).unwrap_or(u32::MAX),
                        }),
                    })
                    .await,
            );
            if status == MessageStatus::Complete
                && self.shared.memory.as_ref().is_some_and(|m| m.learns())
            {
                self.shared
                    .enqueue_learning(self.context.id, &outcome.thought, now)
                    .await;
            }
            if status == MessageStatus::Complete {
                // The window shows what the reply did, as it will after a restart.
                self.context.record(CachedTurn::reply(
                    &outcome.delivered,
                    &outcome.tool_runs,
                    now,
                ));
            }
        } else if !outcome.tool_runs.is_empty() {
            // Nothing reached the person, but the tools ran (or were refused):
            // what was done must be on record. Rare, so written directly.
            if let Err(error) = self
                .shared
                .store
                .record_tool_runs(
                    self.context.id,
                    None,
                    outcome.thought.id,
                    &outcome.tool_runs,
                )
                .await
            {
                tracing::warn!(thought = %outcome.thought.id, %error, "could not record the reply's tool runs");
            }
        }
        self.note_activity(now).await;
        while self.in_flight.is_none()
            && let Some(msg) = self.waiting_say.pop_front()
        {
            self.say_proactive(msg).await;
        }
        if self.in_flight.is_none()
            && let Some(next) = self.queued.pop_front()
        {
            self.start_reply(next);
        }
    }

    /// A message Clara starts. Said at once, or after the reply in flight; a
    /// scheduled task becomes a thought of the person's.
    async fn on_proactive(&mut self, msg: ProactiveMsg) {
        let event = event_of(&msg.key);
        if self.stored_events.contains(&event) {
            // Delivered before (by a process that died before marking it).
            let _ = msg.done.send(Ok(()));
            return;
        }
        if msg.kind == clara_store::ProactiveKind::Task {
            self.start_task(msg).await;
        } else if self.in_flight.is_some() {
            self.waiting_say.push_back(msg);
        } else {
            self.say_proactive(msg).await;
        }
    }

    /// Says a proactive message through the send queue and stores it as
    /// Clara's.
    async fn say_proactive(&mut self, msg: ProactiveMsg) {
        let Some(sink) = self.shared.sink(&self.conversation.platform) else {
            let _ = msg.done.send(Err(format!(
                "no {} adapter is attached",
                self.conversation.platform
            )));
            return;
        };
        let now = now_ms();
        self.ensure_session(now).await;
        let thought = ThoughtId::new();
        let mut queue = SendQueue::new(sink, self.conversation.clone(), thought);
        queue.push(&msg.text).await;
        let delivered = queue.finish().await;
        if delivered.trim().is_empty() {
            let _ = msg
                .done
                .send(Err("the platform did not take the message".into()));
            return;
        }
        let event = event_of(&msg.key);
        self.append_message(
            thought,
            None,
            Role::Assistant,
            delivered.clone(),
            Some(event.clone()),
            now,
        )
        .await;
        self.context.record(CachedTurn {
            role: Role::Assistant,
            content: delivered,
            at_ms: now,
            event: Some(event.clone()),
        });
        self.stored_events.insert(event);
        let _ = msg.done.send(Ok(()));
    }

    /// A scheduled task: its prompt is stored as the person's message and
    /// answered like one, with their tools and memories.
    async fn start_task(&mut self, msg: ProactiveMsg) {
        let Some(author) = msg.author else {
            let _ = msg.done.send(Err("a task needs its person".into()));
            return;
        };
        let now = now_ms();
        let user = self.user_id(&author).await;
        self.ensure_session(now).await;
        let event = event_of(&msg.key);
        let thought = Thought {
            id: ThoughtId::new(),
            conversation: self.conversation.clone(),
            author,
            parts: vec![msg.text.clone()],
            events: vec![event.clone()],
            tier: None,
            images: Vec::new(),
        };
        self.append_message(
            thought.id,
            user,
            Role::User,
            msg.text.clone(),
            Some(event.clone()),
            now,
        )
        .await;
        self.context.record(CachedTurn {
            role: Role::User,
            content: msg.text.clone(),
            at_ms: now,
            event: Some(event.clone()),
        });
        self.stored_events.insert(event);
        // The person sees what is being answered: the prompt, as a line of its own.
        if let Some(sink) = self.shared.sink(&self.conversation.platform) {
            let mut header = SendQueue::new(sink, self.conversation.clone(), ThoughtId::new());
            header.push(&msg.text).await;
            header.finish().await;
        }
        self.dispatch(thought);
        let _ = msg.done.send(Ok(()));
    }

    /// Stores a complete message of the current session. The writer commits
    /// in the background; waiting for it here would put a disk write on every
    /// message's path for no gain in safety (a crash loses the same either way).
    async fn append_message(
        &self,
        thought: ThoughtId,
        user: Option<UserId>,
        role: Role,
        content: String,
        event_id: Option<EventId>,
        now: i64,
    ) {
        drop(
            self.shared
                .writer
                .append(NewMessage {
                    id: MessageId::new(),
                    conversation: self.context.id,
                    session: self.session.id,
                    thought,
                    user,
                    role,
                    content,
                    event_id,
                    status: MessageStatus::Complete,
                    created_at_ms: now,
                    usage: None,
                    tool_runs: Vec::new(),
                })
                .await,
        );
    }

    /// Ends the session when it has been idle, and opens the next one.
    async fn ensure_session(&mut self, now: i64) {
        let idle = clara_core::session::is_idle(
            self.last_activity_ms,
            now,
            self.shared.config.session_idle,
        );
        if self.session.ended_at_ms.is_none() && !idle {
            self.note_activity(now).await;
            return;
        }
        let store = &self.shared.store;
        if self.session.ended_at_ms.is_none() {
            let ended = self.last_activity_ms;
            match store.end_session(self.session.id, ended).await {
                Ok(()) => self.shared.enqueue_summary(self.session.id, now).await,
                Err(error) => tracing::warn!(%error, "could not end the idle session"),
            }
        }
        match store.start_session(self.context.id, now).await {
            Ok(session) => {
                self.session = session;
                self.last_activity_ms = now;
                self.last_touch_ms = now;
            }
            // Keep writing into the old session rather than lose messages.
            Err(error) => tracing::warn!(%error, "could not start a new session"),
        }
    }

    /// Ends the session now, whatever its age, and starts the next one with an
    /// empty window: the ended session's summary is its only trace in the prompt.
    async fn start_afresh(&mut self, now: i64) {
        let store = &self.shared.store;
        if self.session.ended_at_ms.is_none() {
            match store.end_session(self.session.id, now).await {
                Ok(()) => self.shared.enqueue_summary(self.session.id, now).await,
                Err(error) => tracing::warn!(%error, "could not end the session"),
            }
        }
        // Everything said so far must be committed to count as before the start.
        let reset = match self.shared.writer.flush().await {
            Ok(()) => store.reset_context(self.context.id).await,
            Err(error) => Err(error),
        };
        if let Err(error) = reset {
            tracing::warn!(%error, "could not record the fresh start");
        }
        self.context.clear();
        match store.start_session(self.context.id, now).await {
            Ok(session) => {
                self.session = session;
                self.last_activity_ms = now;
                self.last_touch_ms = now;
            }
            Err(error) => tracing::warn!(%error, "could not start a new session"),
        }
    }

    async fn note_activity(&mut self, now: i64) {
        self.last_activity_ms = now;
        if now - self.last_touch_ms >= TOUCH_EVERY_MS {
            self.last_touch_ms = now;
            if let Err(error) = self.shared.store.touch_session(self.session.id, now).await {
                tracing::warn!(%error, "could not record session activity");
            }
        }
    }

    async fn user_id(&mut self, author: &Author) -> Option<UserId> {
        if let Some(id) = self.users.get(&author.platform_user_id) {
            return Some(*id);
        }
        let resolved = self
            .shared
            .store
            .resolve_user(
                &self.conversation.platform,
                &author.platform_user_id,
                &author.display_name,
            )
            .await;
        match resolved {
            Ok(id) => {
                self.users.insert(author.platform_user_id.clone(), id);
                Some(id)
            }
            Err(error) => {
                // The message is still stored and answered; only the link to the
                // person is missing, and the next message tries again.
                tracing::warn!(%error, "could not resolve the person");
                None
            }
        }
    }

    /// Stops this actor after a long idle spell, unless a message slipped in.
    async fn retire(&mut self) -> bool {
        if !self
            .shared
            .unregister(&self.conversation, self.context.id, &self.rx)
        {
            return false;
        }
        self.touch_now().await;
        // A sender that cloned the channel before it was unregistered may still have
        // sent something; hand it to a fresh actor rather than drop it.
        self.rx.close();
        while let Ok(msg) = self.rx.try_recv() {
            self.shared.reroute(&self.conversation, msg).await;
        }
        true
    }

    async fn touch_now(&mut self) {
        if self.last_touch_ms < self.last_activity_ms {
            let now = self.last_activity_ms;
            self.last_touch_ms = now;
            if let Err(error) = self.shared.store.touch_session(self.session.id, now).await {
                tracing::warn!(%error, "could not record session activity");
            }
        }
    }

    async fn shutdown(&mut self) {
        // Queued thoughts stay unanswered; their messages are stored.
        self.queued.clear();
        // Still in the outbox: another start delivers them.
        for msg in self.waiting_say.drain(..) {
            let _ = msg.done.send(Err("Clara is stopping".into()));
        }
        if let Some(in_flight) = &self.in_flight {
            in_flight.cancel.cancel();
            let outcome = join_in_flight(&mut self.in_flight).await;
            self.finish_reply(outcome).await;
        }
        self.touch_now().await;
    }
}

fn move_gauge(gauge: metrics::Gauge, from: usize, to: usize) {
    if to > from {
        gauge.increment((to - from) as f64);
    } else if from > to {
        gauge.decrement((from - to) as f64);
    }
}

fn prepend(thought: &mut Thought, earlier: Thought) {
    let mut parts = earlier.parts;
    parts.append(&mut thought.parts);
    thought.parts = parts;
    let mut events = earlier.events;
    events.append(&mut thought.events);
    thought.events = events;
    thought.tier = thought.tier.or(earlier.tier);
}

async fn join_in_flight(
    in_flight: &mut Option<InFlight>,
) -> Result<ReplyOutcome, tokio::task::JoinError> {
    match in_flight {
        Some(f) => (&mut f.handle).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at).await;
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

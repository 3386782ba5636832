//! The gateway side: one WebSocket session (twilight-gateway keeps it alive —
//! heartbeats, RESUME after a drop, a fresh IDENTIFY after an invalid session,
//! RECONNECT), its dispatches judged and turned into calls on the [`Assistant`].
//!
//! Messages of one channel are handled in order by that channel's worker, so a
//! slow fetch (a reply chain, an image) never reorders a burst, and holds up
//! neither other channels nor the gateway connection (heartbeats are sent while
//! it is polled) — until a channel has [`CHANNEL_QUEUE`] messages waiting: then
//! the gateway waits for that channel (a wait long enough to miss heartbeats
//! ends in a RESUME, which replays what was not read).
//! Idle workers retire after [`WORKER_IDLE`].

use super::addressing::{Me, Rules, Verdict, judge};
use super::approval;
use super::inbound::{author_of, conversation_of, inbound_for};
use super::rest::Rest;
use super::sink::Channels;
use super::wire::{Envelope, Interaction, Message, Ready, TypingStart};
use clara_core::Author;
use clara_core::port::{Accepted, Assistant};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Work queued for one channel, at most (beyond it the gateway waits).
const CHANNEL_QUEUE: usize = 256;
/// People remembered for typing events (and idle channels' workers) at most,
/// before they are forgotten.
const MAX_NAMES: usize = 10_000;
/// A channel's worker ends after this long without work.
const WORKER_IDLE: Duration = Duration::from_secs(120);

/// One thing to do in a channel, in arrival order.
#[derive(Debug)]
pub enum Work {
    /// Hand this message to Clara with this text.
    Answer(Box<Message>, String),
    /// Stop this person's reply.
    Stop(Box<Message>),
    /// This person is typing.
    Typing {
        /// The server, if any.
        guild: Option<u64>,
        /// The channel.
        channel: u64,
        /// Who.
        author: Author,
    },
}

/// What every channel worker shares.
pub struct Context {
    /// Clara, as the adapter sees her.
    pub assistant: Arc<dyn Assistant>,
    /// The REST client.
    pub rest: Arc<Rest>,
    /// Which message each channel's reply answers.
    pub channels: Arc<Channels>,
    /// Who Clara is.
    pub me: Me,
    /// Reply-chain links fetched, at most.
    pub max_chain: usize,
    /// The largest file a person sends that Clara keeps.
    pub max_file_bytes: u64,
    /// Ends the workers.
    pub stop: CancellationToken,
}

/// The gateway's dispatches, judged and routed to per-channel workers.
pub struct Dispatcher {
    context: Arc<Context>,
    rules: Rules,
    workers: HashMap<u64, mpsc::Sender<Work>>,
    /// (channel, user) → the name their last message to Clara carried.
    names: HashMap<(u64, u64), String>,
}

impl Dispatcher {
    /// A dispatcher for Clara as `context.me`.
    pub fn new(context: Context, rules: Rules) -> Self {
        Self {
            context: Arc::new(context),
            rules,
            workers: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Handles one gateway payload (JSON text). Only dispatches matter here; the
    /// gateway client answers the rest itself.
    pub async fn handle(&mut self, json: &str) {
        let Ok(head) = serde_json::from_str::<Envelope<serde::de::IgnoredAny>>(json) else {
            tracing::debug!("a Discord gateway payload without op/d was ignored");
            return;
        };
        if head.op != 0 {
            return;
        }
        match head.t.as_deref() {
            Some("READY") => match serde_json::from_str::<Envelope<Ready>>(json) {
                Ok(ready) => tracing::info!(
                    bot = %ready.d.user.username,
                    "connected to the Discord gateway"
                ),
                Err(e) => tracing::warn!(error = %e, "Discord's READY could not be read"),
            },
            Some("RESUMED") => tracing::info!("Discord gateway session resumed"),
            Some("MESSAGE_CREATE") => match serde_json::from_str::<Envelope<Message>>(json) {
                Ok(event) => self.message(event.d).await,
                Err(e) => {
                    tracing::warn!(error = %e, "a Discord message could not be read and was skipped");
                }
            },
            Some("INTERACTION_CREATE") => match serde_json::from_str::<Envelope<Interaction>>(json)
            {
                Ok(event) => self.interaction(event.d),
                Err(e) => {
                    tracing::warn!(error = %e, "a Discord interaction could not be read and was skipped");
                }
            },
            Some("TYPING_START") => {
                if let Ok(event) = serde_json::from_str::<Envelope<TypingStart>>(json) {
                    self.typing(event.d).await;
                }
            }
            _ => {}
        }
    }

    async fn message(&mut self, message: Message) {
        match judge(&message, &self.context.me, &self.rules) {
            Verdict::Ignore(why) => {
                tracing::debug!(message = message.id, why, "Discord message not for Clara");
            }
            Verdict::Stop => {
                let channel = message.channel_id;
                self.route(channel, Work::Stop(Box::new(message))).await;
            }
            Verdict::Answer(text) => {
                self.remember_name(&message);
                let channel = message.channel_id;
                self.route(channel, Work::Answer(Box::new(message), text))
                    .await;
            }
        }
    }

    /// A button press: acknowledged at once (Discord allows three seconds, so
    /// it does not wait behind the channel's messages), then an answer to one
    /// of Clara's questions goes to the engine, which checks it comes from the
    /// owner. Other interactions are not Clara's and are left alone.
    fn interaction(&self, interaction: Interaction) {
        if !approval::is_button(&interaction) {
            tracing::debug!(
                kind = interaction.kind,
                "a Discord interaction Clara does not use"
            );
            return;
        }
        let context = Arc::clone(&self.context);
        tokio::spawn(async move {
            let press = approval::press_of(&interaction);
            let ack = serde_json::json!({ "type": approval::ACKNOWLEDGE });
            let acknowledged = tokio::select! {
                () = context.stop.cancelled() => return,
                answer = context.rest.interaction_callback(interaction.id, &interaction.token, ack) => answer,
            };
            if let Err(e) = acknowledged {
                // The press still counts; Discord only shows it as failed.
                tracing::warn!(error = %e, "acknowledging a Discord button press failed");
            }
            let Some(press) = press else {
                tracing::debug!(
                    interaction = interaction.id,
                    "a Discord button press that answers no question"
                );
                return;
            };
            let answered = context
                .assistant
                .answer_approval(
                    &press.conversation,
                    &press.author,
                    press.answer,
                    press.event,
                )
                .await;
            if let Err(refused) = answered {
                tracing::warn!(error = %refused, "a Discord button press could not be handed to Clara");
            }
        });
    }

    async fn typing(&mut self, event: TypingStart) {
        if event.user_id == self.context.me.id {
            return;
        }
        // Typing matters only to someone Clara is talking with here, and the
        // engine knows them by the name their messages carry (TYPING_START in a
        // DM carries none).
        let Some(name) = self.names.get(&(event.channel_id, event.user_id)).cloned() else {
            return;
        };
        let work = Work::Typing {
            guild: event.guild_id,
            channel: event.channel_id,
            author: Author {
                platform_user_id: event.user_id.to_string(),
                display_name: name,
            },
        };
        self.route(event.channel_id, work).await;
    }

    fn remember_name(&mut self, message: &Message) {
        if self.names.len() >= MAX_NAMES {
            self.names.clear();
        }
        self.names.insert(
            (message.channel_id, message.author.id),
            message.author_name().to_owned(),
        );
    }

    /// Queues `work` on its channel's worker, starting one when there is none
    /// (or the last one just ended).
    async fn route(&mut self, channel: u64, work: Work) {
        if self.workers.len() >= MAX_NAMES {
            // Forget the channels whose workers retired.
            self.workers.retain(|_, w| !w.is_closed());
        }
        let mut work = work;
        loop {
            let sender = self
                .workers
                .entry(channel)
                .or_insert_with(|| spawn_worker(Arc::clone(&self.context)));
            match sender.send(work).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => {
                    // The worker retired between two messages: start a new one.
                    self.workers.remove(&channel);
                    work = back;
                }
            }
        }
    }
}

fn spawn_worker(context: Arc<Context>) -> mpsc::Sender<Work> {
    let (tx, mut rx) = mpsc::channel(CHANNEL_QUEUE);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                () = context.stop.cancelled() => return,
                next = tokio::time::timeout(WORKER_IDLE, rx.recv()) => next,
            };
            match next {
                Ok(Some(work)) => {
                    // A stop does not wait for a long fetch or a busy Clara.
                    tokio::select! {
                        () = context.stop.cancelled() => return,
                        () = do_work(&context, work) => {}
                    }
                }
                Ok(None) => return,
                Err(_idle) => {
                    // Refuse new work, then finish what raced in before retiring.
                    rx.close();
                    while let Some(work) = rx.recv().await {
                        tokio::select! {
                            () = context.stop.cancelled() => return,
                            () = do_work(&context, work) => {}
                        }
                    }
                    return;
                }
            }
        }
    });
    tx
}

async fn do_work(context: &Context, work: Work) {
    match work {
        Work::Answer(message, text) => {
            let inbound = inbound_for(
                &context.rest,
                &message,
                text,
                &context.me,
                context.max_chain,
                context.max_file_bytes,
            )
            .await;
            // Noted before Clara can answer it, so her reply finds it.
            context
                .channels
                .answering(message.channel_id, message.id, message.author.id);
            let accepted = context.assistant.submit(inbound).await;
            if !matches!(accepted, Ok(Accepted::Queued)) {
                // No reply of hers will answer it.
                context.channels.forget(message.channel_id, message.id);
            }
            match accepted {
                Ok(accepted) => {
                    tracing::debug!(
                        message = message.id,
                        ?accepted,
                        "Discord message handed to Clara"
                    );
                }
                Err(refused) => {
                    // One sentence back to the person; nothing else is lost.
                    let reply_to = message.guild_id.map(|_| message.id);
                    if let Err(e) = context
                        .rest
                        .create_message(message.channel_id, &refused.to_string(), reply_to)
                        .await
                    {
                        tracing::warn!(error = %e, "telling a Discord user why their message was refused failed");
                    }
                }
            }
        }
        Work::Stop(message) => {
            let conversation = conversation_of(message.guild_id, message.channel_id);
            context
                .assistant
                .stop(&conversation, &author_of(&message))
                .await;
        }
        Work::Typing {
            guild,
            channel,
            author,
        } => {
            let conversation = conversation_of(guild, channel);
            context.assistant.typing(&conversation, &author).await;
        }
    }
}

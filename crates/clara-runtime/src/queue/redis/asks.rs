//! The owner's approvals in the distributed deployment: a worker cannot reach
//! the platforms, so it hands its question to the gateway, which asks the owner
//! and hands the answer back.
//!
//! - Worker ([`RedisAsker`]): `RPUSH {prefix}:asks {id, question}`, then
//!   `BLPOP {prefix}:answer:{id}` until the owner's timeout (plus a margin)
//!   has passed. No answer at all (no gateway serving asks) is a deny.
//! - Gateway ([`serve_asks`]): `BLPOP {prefix}:asks`, asks through its own
//!   [`Asker`] (the engine's [`Approvals`](crate::approvals::Approvals)), and
//!   `RPUSH`es the answer with a TTL, so an answer nobody waits for expires.

use super::{Connector, QueueError, RedisConfig, backoff};
use crate::approvals::{Answer, Asker, Question};
use async_trait::async_trait;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an answer nobody took stays.
const ANSWER_TTL_SECS: i64 = 600;
/// What a worker waits beyond the owner's timeout (the gateway's own wait, and
/// the hop both ways).
const MARGIN: Duration = Duration::from_secs(15);
/// How long one blocking read of the ask list waits before checking shutdown.
const POLL: f64 = 2.0;

#[derive(Serialize, Deserialize)]
struct AskEnvelope {
    id: String,
    question: Question,
}

fn asks_key(config: &RedisConfig) -> String {
    format!("{}:asks", config.prefix)
}

fn answer_key(config: &RedisConfig, id: &str) -> String {
    format!("{}:answer:{id}", config.prefix)
}

/// A worker's [`Asker`]: questions go to whichever gateway serves asks.
pub struct RedisAsker {
    config: RedisConfig,
    connector: Connector,
    /// The owner's timeout, as the gateway applies it.
    timeout: Duration,
}

impl RedisAsker {
    /// An asker on `config`'s Redis; `timeout` is the owner's (`[tools]
    /// approval_timeout_secs`), which the gateway applies.
    pub fn new(config: RedisConfig, timeout: Duration) -> Result<Self, QueueError> {
        Ok(Self {
            connector: Connector::new(&config.url)?,
            config,
            timeout,
        })
    }

    async fn try_ask(&self, question: Question) -> Result<Option<Answer>, QueueError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let envelope = AskEnvelope {
            id: id.clone(),
            question,
        };
        let json = serde_json::to_string(&envelope).unwrap_or_default();
        // A connection of its own: BLPOP would stall a shared one.
        let wait = self.timeout + MARGIN;
        let mut conn = self.connector.blocking_for(wait).await?;
        let err = |e| self.connector.error(e);
        let _: i64 = conn
            .rpush(asks_key(&self.config), json)
            .await
            .map_err(err)?;
        let popped: Option<(String, String)> = redis::cmd("BLPOP")
            .arg(answer_key(&self.config, &id))
            .arg(wait.as_secs_f64())
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(popped.and_then(|(_, json)| serde_json::from_str(&json).ok()))
    }
}

#[async_trait]
impl Asker for RedisAsker {
    async fn ask(&self, question: Question) -> Answer {
        match self.try_ask(question).await {
            Ok(Some(answer)) => answer,
            Ok(None) => Answer::Unreachable {
                why: "No gateway answered with the owner's decision in time, so the call was not made.".to_owned(),
            },
            Err(error) => {
                tracing::warn!(%error, "could not hand a question for the owner to the gateway");
                Answer::Unreachable {
                    why: "The owner could not be asked (the queue is unreachable), so the call was not made.".to_owned(),
                }
            }
        }
    }
}

/// The gateway's side: takes workers' questions from Redis and asks them
/// through `asker`, until `shutdown`. Each question waits in a task of its
/// own, so one slow owner does not hold up the others.
pub async fn serve_asks(
    config: RedisConfig,
    asker: Arc<dyn Asker>,
    shutdown: CancellationToken,
) -> Result<(), QueueError> {
    let connector = Connector::new(&config.url)?;
    let answers = connector.manager().await?;
    let key = asks_key(&config);
    let mut failures = 0;
    while !shutdown.is_cancelled() {
        let mut conn = match connector.blocking().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "cannot read questions for the owner; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
                failures = failures.saturating_add(1);
                continue;
            }
        };
        failures = 0;
        let mut blpop = redis::cmd("BLPOP");
        blpop.arg(&key).arg(POLL);
        loop {
            let popped: redis::RedisResult<Option<(String, String)>> = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                popped = blpop.query_async(&mut conn) => popped,
            };
            let json = match popped {
                Ok(Some((_, json))) => json,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, "lost the connection for questions; reconnecting");
                    break;
                }
            };
            let Ok(envelope) = serde_json::from_str::<AskEnvelope>(&json) else {
                tracing::warn!("dropped a malformed question for the owner");
                continue;
            };
            let asker = Arc::clone(&asker);
            let mut answers = answers.clone();
            let answer_key = answer_key(&config, &envelope.id);
            tokio::spawn(async move {
                let answer = asker.ask(envelope.question).await;
                let json = serde_json::to_string(&answer).unwrap_or_default();
                let pushed: redis::RedisResult<()> = redis::pipe()
                    .rpush(&answer_key, json)
                    .ignore()
                    .expire(&answer_key, ANSWER_TTL_SECS)
                    .ignore()
                    .query_async(&mut answers)
                    .await;
                if let Err(error) = pushed {
                    tracing::warn!(%error, "could not hand the owner's answer back to the worker");
                }
            });
        }
    }
    Ok(())
}

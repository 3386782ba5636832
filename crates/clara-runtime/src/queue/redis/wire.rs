//! What crosses Redis: a job on the thoughts stream, and a worker's reply steps
//! on the owning gateway's reply stream. JSON, one field per entry.

use crate::brain::{ReplyJob, Spent};
use clara_core::{ThoughtId, ToolRun};
use serde::{Deserialize, Serialize};

/// The field of a stream entry that holds its JSON.
pub const FIELD: &str = "v";

/// The JSON value of a stream entry, if it holds one of the expected shape.
pub fn decode<T: serde::de::DeserializeOwned>(entry: &redis::streams::StreamId) -> Option<T> {
    let json: String = redis::from_redis_value_ref(entry.map.get(FIELD)?).ok()?;
    serde_json::from_str(&json).ok()
}

/// A job on the thoughts stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The reply stream of the gateway that owns the conversation.
    pub reply_to: String,
    /// What to answer.
    pub job: ReplyJob,
}

/// One step of a worker's reply, on the gateway's reply stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerEvent {
    /// The thought answered.
    pub thought: ThoughtId,
    /// Which attempt at it (a worker that dies has its thought claimed by
    /// another: a new attempt).
    pub attempt: String,
    /// What happened.
    pub step: Step,
}

/// The steps of a reply, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    /// Clara is working on it.
    Typing,
    /// More answer text.
    Delta {
        /// Text to append.
        text: String,
    },
    /// A tool started.
    ToolStarted {
        /// Its namespaced name.
        name: String,
    },
    /// What a running tool printed lately.
    ToolProgress {
        /// Its namespaced name.
        name: String,
        /// The output so far, or its tail.
        text: String,
    },
    /// A file to send with the reply.
    File {
        /// The file.
        file: clara_core::FileBlob,
        /// A line to show with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// A tool finished (or was refused), with its record.
    ToolFinished {
        /// The call, its result and who let it run.
        run: ToolRun,
    },
    /// The whole answer was sent.
    Finished {
        /// What it cost.
        spent: Spent,
    },
    /// The model failed.
    Failed {
        /// One sentence for the person.
        message: String,
        /// What it cost.
        spent: Spent,
    },
}

//! What the engine emits while answering a thought.

use crate::ThoughtId;
use crate::approval::{ApprovalOutcome, ApprovalPrompt};
use serde::{Deserialize, Serialize};

/// One step of a reply, in the order they happen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyEvent {
    /// The thought being answered.
    pub thought: ThoughtId,
    /// What happened.
    pub kind: ReplyKind,
}

/// The steps of a reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyKind {
    /// The model has been asked; the platform may show "typing".
    Start,
    /// More text of the answer.
    Delta {
        /// The new text, to append.
        text: String,
    },
    /// The answer is complete.
    End {
        /// The whole answer.
        text: String,
    },
    /// The thought was cancelled (a newer message or a stop phrase); nothing more follows.
    Cancelled,
    /// The answer failed; `message` is one sentence fit to show the person.
    Error {
        /// What to tell the person.
        message: String,
    },
}

impl ReplyKind {
    /// Whether no more events follow this one.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::End { .. } | Self::Cancelled | Self::Error { .. }
        )
    }
}

impl Outbound {
    /// The thought this call is about; `None` for typing and the owner's
    /// approval questions, which belong to no one reply's text.
    pub fn thought(&self) -> Option<ThoughtId> {
        match self {
            Self::Send { thought, .. }
            | Self::Edit { thought, .. }
            | Self::Delta { thought, .. }
            | Self::End { thought }
            | Self::ToolStarted { thought, .. }
            | Self::ToolFinished { thought, .. }
            | Self::ToolProgress { thought, .. }
            | Self::File { thought, .. }
            | Self::Cancelled { thought }
            | Self::Error { thought, .. } => Some(*thought),
            Self::Typing | Self::Ask { .. } | Self::AskClosed { .. } => None,
        }
    }
}

/// A platform call the send queue asks an adapter to make.
///
/// Which calls come depends on the platform's
/// [`DeliveryMode`](crate::pacing::DeliveryMode): streaming platforms get
/// `Delta`s and `End`; editing platforms `Send` then `Edit`s; others `Typing` and
/// `Send`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// Show that Clara is typing.
    Typing,
    /// Send a new message; the adapter answers with its platform message id.
    Send {
        /// The thought answered.
        thought: ThoughtId,
        /// The message text.
        text: String,
    },
    /// Replace the text of a message sent earlier.
    Edit {
        /// The thought answered.
        thought: ThoughtId,
        /// The platform message id `Send` returned.
        message: String,
        /// The new text.
        text: String,
    },
    /// More text of a streamed reply.
    Delta {
        /// The thought answered.
        thought: ThoughtId,
        /// Text to append.
        text: String,
    },
    /// A streamed reply is complete.
    End {
        /// The thought answered.
        thought: ThoughtId,
    },
    /// Clara started running a tool for this reply.
    ToolStarted {
        /// The thought answered.
        thought: ThoughtId,
        /// The tool's (namespaced) name.
        name: String,
    },
    /// A tool finished.
    ToolFinished {
        /// The thought answered.
        thought: ThoughtId,
        /// The tool's (namespaced) name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// What a running tool printed lately (a sandbox run's last lines): the
    /// web page shows it in the tool's chip; platforms without live output
    /// ignore it (the send queue shows editing platforms a status line).
    ToolProgress {
        /// The thought answered.
        thought: ThoughtId,
        /// The tool's (namespaced) name.
        name: String,
        /// The output so far, its tail when long.
        text: String,
    },
    /// Send a file as part of the reply (a chart the sandbox drew): a picture
    /// where the platform shows pictures, else a document. The adapter
    /// answers with its platform message id.
    File {
        /// The thought answered.
        thought: ThoughtId,
        /// The file.
        file: crate::FileBlob,
        /// A line to show with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// The reply was cut short by the person; nothing more follows for it.
    Cancelled {
        /// The thought whose reply stopped.
        thought: ThoughtId,
    },
    /// The reply failed; `message` is one sentence for the person.
    Error {
        /// The thought that failed.
        thought: ThoughtId,
        /// What to tell the person.
        message: String,
    },
    /// Ask the owner whether a tool may run: buttons where the platform has
    /// them (each carrying an [`ApprovalAnswer`](crate::approval::ApprovalAnswer)
    /// token), else [`ApprovalPrompt::text`] with the typed answers. The
    /// adapter answers with its platform message id, which `AskClosed` names.
    Ask {
        /// The question.
        prompt: ApprovalPrompt,
    },
    /// A question was answered, timed out or withdrawn: update its message
    /// (remove the buttons, say how it ended).
    AskClosed {
        /// The question.
        prompt: ApprovalPrompt,
        /// The platform message id `Ask` returned, if it returned one.
        message: Option<String>,
        /// How it ended.
        outcome: ApprovalOutcome,
    },
}

//! One reply assembled from a worker's events, surviving the worker's death.
//!
//! A thought's stream entry is claimed by another worker when the one answering
//! it stops heart-beating, so the gateway may hear from several *attempts* at
//! the same thought. The person must get one reply: events of one attempt are
//! delivered, the others are only recorded; when the delivering attempt has been
//! silent for `takeover_after`, the gateway switches to the freshest other
//! attempt and skips the text the person already saw. A model answering the same
//! prompt the same way continues seamlessly; one that answers differently has
//! its answer delivered after a paragraph break (the earlier text cannot be
//! unsaid on every platform).
//!
//! Pure logic: time comes in as an argument.

use super::wire::Step;
use crate::brain::Spent;
use clara_core::ToolRun;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the gateway does for the person, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Show typing.
    Typing,
    /// Deliver more text.
    Push(String),
    /// A tool started.
    ToolStarted(String),
    /// A running tool's latest output: (name, text).
    ToolProgress(String, String),
    /// A file to send: (file, caption).
    File(clara_core::FileBlob, Option<String>),
    /// A tool finished.
    ToolFinished(ToolRun),
    /// The answer is complete.
    Finish(Spent),
    /// The answer failed; tell the person this.
    Fail(String, Spent),
}

#[derive(Default)]
struct Attempt {
    text: String,
    /// How it ended, when it has.
    end: Option<Step>,
    last_heard: Option<Instant>,
}

/// How the delivering attempt's text relates to what the person saw.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Follow {
    /// Everything it says is delivered.
    Free,
    /// It is repeating what was shown: deliver only what goes past it.
    Catching,
}

/// The reply to one thought, as the gateway assembles it.
pub struct ReplyAssembly {
    takeover_after: Duration,
    attempts: HashMap<String, Attempt>,
    current: Option<String>,
    follow: Follow,
    /// What reached the person (pushed) so far.
    shown: String,
    /// Bytes of the current attempt's text accounted for (delivered or
    /// matched against `shown`).
    delivered: usize,
    done: bool,
}

impl ReplyAssembly {
    /// An assembly that moves to another attempt after the delivering one has
    /// been silent this long.
    pub fn new(takeover_after: Duration) -> Self {
        Self {
            takeover_after,
            attempts: HashMap::new(),
            current: None,
            follow: Follow::Free,
            shown: String::new(),
            delivered: 0,
            done: false,
        }
    }

    /// Whether the reply has ended (finished or failed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes one event of `attempt`.
    pub fn on_event(&mut self, attempt: &str, step: Step, now: Instant) -> Vec<Action> {
        if self.done {
            return Vec::new();
        }
        let entry = self.attempts.entry(attempt.to_owned()).or_default();
        entry.last_heard = Some(now);
        if self.current.is_none() {
            self.current = Some(attempt.to_owned());
        }
        let is_current = self.current.as_deref() == Some(attempt);
        match step {
            Step::Delta { text } => {
                entry.text.push_str(&text);
                if is_current {
                    self.deliver_current_text()
                } else {
                    self.maybe_take_over(now)
                }
            }
            Step::Finished { .. } | Step::Failed { .. } => {
                entry.end = Some(step);
                if is_current {
                    self.end_current()
                } else {
                    self.maybe_take_over(now)
                }
            }
            Step::Typing if is_current => vec![Action::Typing],
            Step::ToolStarted { name } if is_current => vec![Action::ToolStarted(name)],
            Step::ToolFinished { run } if is_current => vec![Action::ToolFinished(run)],
            Step::ToolProgress { name, text } if is_current => {
                vec![Action::ToolProgress(name, text)]
            }
            Step::File { file, caption } if is_current => vec![Action::File(file, caption)],
            Step::Typing
            | Step::ToolStarted { .. }
            | Step::ToolFinished { .. }
            | Step::ToolProgress { .. }
            | Step::File { .. } => self.maybe_take_over(now),
        }
    }

    /// Called now and then: moves on from a silent attempt.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        if self.done {
            return Vec::new();
        }
        self.maybe_take_over(now)
    }

    /// When the delivering attempt would be given up, if another one exists.
    pub fn next_check(&self) -> Option<Instant> {
        let current = self.attempts.get(self.current.as_deref()?)?;
        (self.attempts.len() > 1)
            .then(|| current.last_heard.map(|t| t + self.takeover_after))
            .flatten()
    }

    /// Prefers the next attempt at once: the delivering one is known to be gone
    /// (the queue lost its entry and the job was put on it again).
    pub fn forget_current(&mut self) {
        if let Some(current) = self.current.as_ref().and_then(|c| self.attempts.get_mut(c)) {
            current.last_heard = None;
        }
    }

    fn maybe_take_over(&mut self, now: Instant) -> Vec<Action> {
        let silent = self
            .current
            .as_ref()
            .and_then(|c| self.attempts.get(c))
            .is_none_or(|a| {
                a.last_heard
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.takeover_after)
            });
        if !silent {
            return Vec::new();
        }
        // The freshest other attempt: the one most likely still alive.
        let next = self
            .attempts
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != self.current.as_deref())
            .max_by_key(|(_, a)| a.last_heard)
            .map(|(id, _)| id.clone());
        let Some(next) = next else {
            return Vec::new();
        };
        let ended = self.attempts.get(&next).is_some_and(|a| a.end.is_some());
        self.current = Some(next);
        self.follow = Follow::Catching;
        self.delivered = 0;
        let mut actions = self.deliver_current_text();
        if ended {
            actions.extend(self.end_current());
        }
        actions
    }

    /// Delivers whatever of the current attempt's text the person has not seen.
    fn deliver_current_text(&mut self) -> Vec<Action> {
        let Some(text) = self
            .current
            .as_ref()
            .and_then(|c| self.attempts.get(c))
            .map(|a| a.text.as_str())
        else {
            return Vec::new();
        };
        let new = match self.follow {
            Follow::Free => text.get(self.delivered..).unwrap_or_default().to_owned(),
            Follow::Catching if self.shown.starts_with(text) => String::new(),
            Follow::Catching if text.starts_with(self.shown.as_str()) => {
                self.follow = Follow::Free;
                text[self.shown.len()..].to_owned()
            }
            Follow::Catching => {
                // A different answer: it cannot replace what was shown, so it
                // follows it as a new paragraph.
                self.follow = Follow::Free;
                if self.shown.trim().is_empty() {
                    text.to_owned()
                } else {
                    format!("\n\n{text}")
                }
            }
        };
        self.delivered = text.len();
        if new.is_empty() {
            return Vec::new();
        }
        self.shown.push_str(&new);
        vec![Action::Push(new)]
    }

    /// Ends the reply the way the current attempt ended.
    fn end_current(&mut self) -> Vec<Action> {
        let end = self
            .current
            .as_ref()
            .and_then(|c| self.attempts.get_mut(c))
            .and_then(|a| a.end.take());
        let action = match end {
            Some(Step::Finished { spent }) => Action::Finish(spent),
            Some(Step::Failed { message, spent }) => Action::Fail(message, spent),
            _ => return Vec::new(),
        };
        self.done = true;
        vec![action]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(text: &str) -> Step {
        Step::Delta { text: text.into() }
    }

    fn finished() -> Step {
        Step::Finished {
            spent: Spent::default(),
        }
    }

    fn pushed(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Push(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    const TAKEOVER: Duration = Duration::from_secs(5);

    #[test]
    fn one_attempt_is_delivered_as_it_comes() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        assert_eq!(a.on_event("a", Step::Typing, t0), vec![Action::Typing]);
        assert_eq!(pushed(&a.on_event("a", delta("Hel"), t0)), "Hel");
        assert_eq!(pushed(&a.on_event("a", delta("lo"), t0)), "lo");
        assert_eq!(
            a.on_event("a", finished(), t0),
            vec![Action::Finish(Spent::default())]
        );
        assert!(a.is_done());
        assert!(a.on_event("a", delta("late"), t0).is_empty());
    }

    #[test]
    fn a_second_attempt_is_ignored_while_the_first_is_alive() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        a.on_event("a", delta("Hello"), t0);
        assert!(
            a.on_event("b", delta("Hello"), t0 + Duration::from_secs(1))
                .is_empty()
        );
        assert_eq!(
            pushed(&a.on_event("a", delta(" there"), t0 + Duration::from_secs(2))),
            " there"
        );
        assert!(
            a.on_event("b", finished(), t0 + Duration::from_secs(2))
                .is_empty()
        );
        assert_eq!(
            a.on_event("a", finished(), t0 + Duration::from_secs(3)),
            vec![Action::Finish(Spent::default())]
        );
    }

    #[test]
    fn a_takeover_repeating_the_same_answer_continues_where_the_person_is() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        a.on_event("a", delta("The answer "), t0);
        a.on_event("a", delta("is"), t0);
        // The first worker died; the second starts over.
        let t1 = t0 + TAKEOVER;
        assert!(a.on_event("b", delta("The "), t1).is_empty());
        assert!(a.on_event("b", delta("answer is"), t1).is_empty());
        assert_eq!(pushed(&a.on_event("b", delta(" 42."), t1)), " 42.");
        assert_eq!(
            a.on_event("b", finished(), t1),
            vec![Action::Finish(Spent::default())]
        );
        // The dead worker's ghost cannot add to it.
        assert!(a.on_event("a", delta(" no"), t1).is_empty());
    }

    #[test]
    fn a_takeover_with_a_different_answer_follows_as_a_new_paragraph() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        a.on_event("a", delta("Maybe"), t0);
        let t1 = t0 + TAKEOVER;
        assert_eq!(pushed(&a.on_event("b", delta("Yes"), t1)), "\n\nYes");
        assert_eq!(pushed(&a.on_event("b", delta(", sure"), t1)), ", sure");
    }

    #[test]
    fn an_attempt_that_finished_unseen_is_used_when_the_other_goes_silent() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        a.on_event("a", delta("Hi"), t0);
        a.on_event("b", delta("Hi there"), t0 + Duration::from_secs(1));
        a.on_event("b", finished(), t0 + Duration::from_secs(1));
        assert_eq!(a.next_check(), Some(t0 + TAKEOVER));
        assert!(a.on_tick(t0 + Duration::from_secs(4)).is_empty());
        let actions = a.on_tick(t0 + TAKEOVER);
        assert_eq!(pushed(&actions), " there");
        assert_eq!(actions.last(), Some(&Action::Finish(Spent::default())));
    }

    #[test]
    fn a_known_lost_attempt_is_left_at_once() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        a.on_event("a", delta("One"), t0);
        a.forget_current();
        assert_eq!(pushed(&a.on_event("b", delta("One two"), t0)), " two");
    }

    #[test]
    fn failures_and_tools_of_the_current_attempt_pass_through() {
        let t0 = Instant::now();
        let mut a = ReplyAssembly::new(TAKEOVER);
        assert_eq!(
            a.on_event("a", Step::ToolStarted { name: "x".into() }, t0),
            vec![Action::ToolStarted("x".into())]
        );
        assert!(
            a.on_event("b", Step::ToolStarted { name: "x".into() }, t0)
                .is_empty()
        );
        let failed = Step::Failed {
            message: "The model is unavailable.".into(),
            spent: Spent::default(),
        };
        assert_eq!(
            a.on_event("a", failed, t0),
            vec![Action::Fail(
                "The model is unavailable.".into(),
                Spent::default()
            )]
        );
    }
}

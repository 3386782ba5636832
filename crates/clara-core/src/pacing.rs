//! How a reply reaches a platform over time.
//!
//! Two modes, both pure state machines driven by the send queue:
//! - [`EditStream`]: one message that grows by edits, no more often than the
//!   platform's cooldown, continued in a new message past the length limit;
//! - [`PartStream`]: separate messages, one per paragraph, each after a typing pause
//!   that fits its length, as a person would send them.

use crate::split::{split_message, split_parts};
use std::time::{Duration, Instant};

/// What a platform can do with a reply, and how fast.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// How the reply is shown.
    pub mode: DeliveryMode,
    /// The longest message the platform accepts, in characters.
    pub max_chars: usize,
}

/// How a reply is shown.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryMode {
    /// Text is shown as it arrives (a terminal, a web page).
    Stream,
    /// One message, edited as the reply grows, at most once per `cooldown`.
    Edits {
        /// The least time between two edits.
        cooldown: Duration,
    },
    /// Separate messages with typing pauses.
    Parts(TypingPace),
}

/// How fast a person types, for human-paced parts.
#[derive(Clone, Debug, PartialEq)]
pub struct TypingPace {
    /// Characters per second.
    pub chars_per_second: f64,
    /// The shortest pause before a part.
    pub min: Duration,
    /// The longest pause before a part.
    pub max: Duration,
}

impl Default for TypingPace {
    fn default() -> Self {
        Self {
            chars_per_second: 40.0,
            min: Duration::from_millis(600),
            max: Duration::from_secs(4),
        }
    }
}

impl TypingPace {
    /// The typing pause before sending `part`.
    pub fn delay_for(&self, part: &str) -> Duration {
        let secs = part.chars().count() as f64 / self.chars_per_second.max(1.0);
        Duration::from_secs_f64(secs).clamp(self.min, self.max.max(self.min))
    }
}

/// One platform call the send queue should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditAction {
    /// Send a new message; it is the `index`th message of this reply.
    Send {
        /// The message's position in the reply.
        index: usize,
        /// Its text.
        text: String,
    },
    /// Replace the text of the `index`th message of this reply.
    Edit {
        /// The message's position in the reply.
        index: usize,
        /// Its new text.
        text: String,
    },
}

/// A reply shown as one message that grows by edits.
#[derive(Debug)]
pub struct EditStream {
    cooldown: Duration,
    max_chars: usize,
    text: String,
    shown: Vec<String>,
    last_call: Option<Instant>,
}

impl EditStream {
    /// A stream for a platform with this edit cooldown and message limit.
    pub fn new(cooldown: Duration, max_chars: usize) -> Self {
        Self {
            cooldown,
            max_chars,
            text: String::new(),
            shown: Vec::new(),
            last_call: None,
        }
    }

    /// Appends text of the reply.
    pub fn push(&mut self, delta: &str) {
        self.text.push_str(delta);
    }

    /// When the next update may be made, if one is needed (`now` or later).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        if !self.has_changes() {
            return None;
        }
        Some(
            self.last_call
                .map_or(now, |at| (at + self.cooldown).max(now)),
        )
    }

    /// Whether the shown messages differ from the reply so far.
    pub fn has_changes(&self) -> bool {
        !self.text.trim().is_empty() && self.pages() != self.shown
    }

    /// Whether an update may be made at `now` (the cooldown has passed).
    pub fn may_update(&self, now: Instant) -> bool {
        self.last_call.is_none_or(|at| now >= at + self.cooldown)
    }

    /// The calls that bring the platform up to date, if the cooldown allows one at
    /// `now`; records them as made.
    pub fn poll(&mut self, now: Instant) -> Vec<EditAction> {
        if !self.has_changes() || !self.may_update(now) {
            return Vec::new();
        }
        let pages = self.pages();
        let mut actions = Vec::new();
        for (index, page) in pages.iter().enumerate() {
            match self.shown.get(index) {
                None => actions.push(EditAction::Send {
                    index,
                    text: page.clone(),
                }),
                Some(shown) if shown != page => actions.push(EditAction::Edit {
                    index,
                    text: page.clone(),
                }),
                Some(_) => {}
            }
        }
        self.shown = pages;
        self.last_call = Some(now);
        actions
    }

    /// The calls [`poll`](Self::poll) returned were made, the last finishing at
    /// `now`: the cooldown runs from here, not from when they were planned.
    pub fn calls_done(&mut self, now: Instant) {
        if self.last_call.is_some_and(|at| now > at) {
            self.last_call = Some(now);
        }
    }

    /// The text shown so far, all messages together.
    pub fn shown_text(&self) -> String {
        self.shown.join("\n")
    }

    /// The whole reply so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn pages(&self) -> Vec<String> {
        split_message(self.text.trim_end(), self.max_chars)
    }
}

/// A reply sent as separate, human-paced parts.
#[derive(Debug)]
pub struct PartStream {
    max_chars: usize,
    buffer: String,
    sent: Vec<String>,
}

impl PartStream {
    /// Parts of at most `max_chars`.
    pub fn new(max_chars: usize) -> Self {
        Self {
            max_chars,
            buffer: String::new(),
            sent: Vec::new(),
        }
    }

    /// Appends text of the reply.
    pub fn push(&mut self, delta: &str) {
        self.buffer.push_str(delta);
    }

    /// Parts that are complete (followed by a paragraph break outside code) and so
    /// can be sent before the reply ends. Removes them from the buffer.
    pub fn ready(&mut self) -> Vec<String> {
        let Some(cut) = last_paragraph_break_outside_code(&self.buffer) else {
            return Vec::new();
        };
        let done: String = self.buffer.drain(..cut).collect();
        split_parts(&done, self.max_chars)
    }

    /// Whatever remains once the reply has ended.
    pub fn finish(&mut self) -> Vec<String> {
        let rest = std::mem::take(&mut self.buffer);
        split_parts(&rest, self.max_chars)
    }

    /// Records that `part` reached the person.
    pub fn mark_sent(&mut self, part: String) {
        self.sent.push(part);
    }

    /// The parts the person actually received, joined as one message.
    pub fn sent_text(&self) -> String {
        self.sent.join("\n\n")
    }
}

fn last_paragraph_break_outside_code(text: &str) -> Option<usize> {
    let mut in_fence = false;
    let mut last = None;
    let mut offset = 0;
    let mut prev_blank = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_fence = !in_fence;
        }
        let blank = trimmed.is_empty() && line.ends_with('\n');
        offset += line.len();
        if blank && !in_fence && !prev_blank && offset > 1 {
            last = Some(offset);
        }
        prev_blank = blank;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_text_is_sent_then_edited_no_faster_than_the_cooldown() {
        let t0 = Instant::now();
        let mut s = EditStream::new(1000 * MS, 2000);
        assert!(s.poll(t0).is_empty(), "nothing to show yet");
        s.push("Hel");
        assert_eq!(
            s.poll(t0),
            vec![EditAction::Send {
                index: 0,
                text: "Hel".into()
            }]
        );
        s.push("lo");
        assert_eq!(s.next_due(t0), Some(t0 + 1000 * MS));
        assert!(s.poll(t0 + 999 * MS).is_empty());
        assert_eq!(
            s.poll(t0 + 1000 * MS),
            vec![EditAction::Edit {
                index: 0,
                text: "Hello".into()
            }]
        );
        assert_eq!(s.next_due(t0), None, "up to date");
        assert_eq!(s.shown_text(), "Hello");
    }

    #[test]
    fn the_cooldown_runs_from_when_a_slow_call_finished() {
        let t0 = Instant::now();
        let mut s = EditStream::new(1000 * MS, 2000);
        s.push("Hel");
        assert_eq!(s.poll(t0).len(), 1);
        // The platform rate-limited the send; it went through 3 s later.
        s.calls_done(t0 + 3000 * MS);
        s.push("lo");
        assert_eq!(s.next_due(t0 + 3000 * MS), Some(t0 + 4000 * MS));
        assert!(s.poll(t0 + 3500 * MS).is_empty());
        // An earlier completion time never moves the cooldown back.
        s.calls_done(t0 + 10 * MS);
        assert_eq!(s.next_due(t0), Some(t0 + 4000 * MS));
    }

    #[test]
    fn a_long_reply_continues_in_a_new_message() {
        let t0 = Instant::now();
        let mut s = EditStream::new(MS, 20);
        s.push("aaaa bbbb cccc");
        s.poll(t0);
        s.push(" dddd eeee ffff");
        let actions = s.poll(t0 + MS);
        assert_eq!(
            actions,
            vec![EditAction::Send {
                index: 1,
                text: "dddd eeee ffff".into()
            }]
        );
        s.push("x");
        assert_eq!(
            s.poll(t0 + 2 * MS),
            vec![EditAction::Edit {
                index: 1,
                text: "dddd eeee ffffx".into()
            }]
        );
        assert_eq!(s.shown_text(), "aaaa bbbb cccc\ndddd eeee ffffx");
    }

    #[test]
    fn typing_pause_fits_the_length() {
        let pace = TypingPace::default();
        assert_eq!(pace.delay_for("hi"), pace.min);
        assert_eq!(pace.delay_for(&"x".repeat(10_000)), pace.max);
        assert_eq!(pace.delay_for(&"x".repeat(80)), Duration::from_secs(2));
    }

    #[test]
    fn parts_are_released_paragraph_by_paragraph() {
        let mut p = PartStream::new(2000);
        p.push("First para");
        assert!(p.ready().is_empty());
        p.push("graph.\n\nSecond");
        assert_eq!(p.ready(), vec!["First paragraph."]);
        p.push(" one.\n\n```\ncode\n\n");
        assert_eq!(
            p.ready(),
            vec!["Second one."],
            "open code block is held back"
        );
        p.push("more\n```\n\nEnd.");
        assert_eq!(p.ready(), vec!["```\ncode\n\nmore\n```"]);
        assert_eq!(p.finish(), vec!["End."]);
        p.mark_sent("a".into());
        p.mark_sent("b".into());
        assert_eq!(p.sent_text(), "a\n\nb");
    }
}

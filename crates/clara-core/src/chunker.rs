//! The chunker: turns one person's rapid messages into one thought.
//!
//! People write in bursts ("hey" … "quick question" … "what's a monad?"). Answering
//! each line separately is wrong and expensive, so messages are held until the
//! person seems done:
//!
//! - after a quiet period (default 1.5 s) since the last message;
//! - sooner when the last message clearly completes a thought (it ends in `?`, `!`
//!   or `.`);
//! - later when it clearly does not (it ends in `,`, `…`, `:` or a word like "and"),
//!   or while the platform says the person is typing;
//! - but never later than a cap counted from the first message, so a chatty person
//!   still gets an answer.
//!
//! The chunker is a plain state machine: the caller passes the time and asks for the
//! next deadline; it never sleeps or reads a clock.

use crate::{Author, ConversationRef, EventId, Image, Thought, ThoughtId, Tier};

use std::time::{Duration, Instant};

/// Timing rules of the chunker.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkerConfig {
    /// Quiet time after a message before the burst is emitted.
    pub quiet: Duration,
    /// Quiet time when the last message clearly completes a thought.
    pub quiet_when_complete: Duration,
    /// Quiet time when the last message clearly continues.
    pub quiet_when_continuing: Duration,
    /// How long a "typing" signal holds the burst open.
    pub typing_grace: Duration,
    /// The longest a burst is held, counted from its first message.
    pub max_wait: Duration,
    /// A burst with this many messages is emitted at once.
    pub max_parts: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(1500),
            quiet_when_complete: Duration::from_millis(600),
            quiet_when_continuing: Duration::from_millis(3000),
            typing_grace: Duration::from_millis(4000),
            max_wait: Duration::from_secs(8),
            max_parts: 20,
        }
    }
}

impl ChunkerConfig {
    /// Rules that emit every message as soon as it arrives (benchmarks, batch input).
    pub fn immediate() -> Self {
        Self {
            quiet: Duration::ZERO,
            quiet_when_complete: Duration::ZERO,
            quiet_when_continuing: Duration::ZERO,
            typing_grace: Duration::ZERO,
            max_wait: Duration::ZERO,
            max_parts: 1,
        }
    }

    fn quiet_after(&self, text: &str) -> Duration {
        match ending(text) {
            Ending::Complete => self.quiet_when_complete,
            Ending::Continuing => self.quiet_when_continuing,
            Ending::Unclear => self.quiet,
        }
    }
}

#[derive(Debug)]
struct Pending {
    burst: Thought,
    first_at: Instant,
    quiet_until: Instant,
    typing_until: Option<Instant>,
}

/// One message, as the chunker takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Said {
    /// The platform's event id.
    pub event: EventId,
    /// The text, tier prefix removed.
    pub text: String,
    /// The tier the message asked for.
    pub tier: Option<Tier>,
    /// Its images.
    pub images: Vec<Image>,
}

impl Said {
    /// A text message with no tier and no images.
    pub fn text(event: impl Into<EventId>, text: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            text: text.into(),
            tier: None,
            images: Vec::new(),
        }
    }
}

/// What [`Chunker::push`] did with a message.
#[derive(Debug)]
pub struct Pushed {
    /// The thought the message joined.
    pub thought: ThoughtId,
    /// Thoughts to answer now.
    pub ready: Vec<Thought>,
}

/// One conversation's chunker.
#[derive(Debug)]
pub struct Chunker {
    config: ChunkerConfig,
    pending: Option<Pending>,
}

impl Chunker {
    /// A chunker with these rules and nothing pending.
    pub fn new(config: ChunkerConfig) -> Self {
        Self {
            config,
            pending: None,
        }
    }

    /// Adds a message. `new_id` names the thought if this message starts one.
    ///
    /// Returns the id of the thought the message joined, and the thoughts that must
    /// be emitted now: the previous burst of a different author (bursts never mix
    /// people), or this one when it hit `max_parts`.
    pub fn push(
        &mut self,
        conversation: &ConversationRef,
        author: &Author,
        said: Said,
        now: Instant,
        new_id: ThoughtId,
    ) -> Pushed {
        let Said {
            event,
            text,
            tier,
            images,
        } = said;
        let mut ready = Vec::new();
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.burst.author != *author)
        {
            ready.extend(self.take());
        }
        let quiet_until = now + self.config.quiet_after(&text);
        match &mut self.pending {
            Some(pending) => {
                pending.burst.parts.push(text);
                pending.burst.events.push(event);
                pending.burst.tier = tier.or(pending.burst.tier);
                pending.burst.images.extend(images);
                pending.quiet_until = quiet_until;
                // A sent message means the typing that announced it is over.
                pending.typing_until = None;
            }
            None => {
                self.pending = Some(Pending {
                    burst: Thought {
                        id: new_id,
                        conversation: conversation.clone(),
                        author: author.clone(),
                        parts: vec![text],
                        events: vec![event],
                        tier,
                        images,
                    },
                    first_at: now,
                    quiet_until,
                    typing_until: None,
                });
            }
        }
        let thought = self.pending.as_ref().map_or(new_id, |p| p.burst.id);
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.burst.parts.len() >= self.config.max_parts)
        {
            ready.extend(self.take());
        }
        Pushed { thought, ready }
    }

    /// Puts the text of an unanswered (cancelled) thought in front of the pending
    /// burst, so one answer covers everything the person said.
    ///
    /// When nothing of theirs is pending the carried thought becomes the pending
    /// burst, due after the usual quiet period. A different person's pending burst
    /// (bursts never mix people) is returned, to be emitted now.
    pub fn carry(&mut self, unanswered: Thought, now: Instant) -> Option<Thought> {
        match &mut self.pending {
            Some(pending) if pending.burst.author == unanswered.author => {
                let mut parts = unanswered.parts;
                parts.append(&mut pending.burst.parts);
                pending.burst.parts = parts;
                let mut events = unanswered.events;
                events.append(&mut pending.burst.events);
                pending.burst.events = events;
                pending.burst.tier = pending.burst.tier.or(unanswered.tier);
                let mut images = unanswered.images;
                images.append(&mut pending.burst.images);
                pending.burst.images = images;
                None
            }
            _ => {
                let other = self.take();
                self.pending = Some(Self::pending_from(unanswered, now, &self.config));
                other
            }
        }
    }

    fn pending_from(thought: Thought, now: Instant, config: &ChunkerConfig) -> Pending {
        let quiet = thought
            .parts
            .last()
            .map_or(config.quiet, |t| config.quiet_after(t));
        Pending {
            burst: thought,
            first_at: now,
            quiet_until: now + quiet,
            typing_until: None,
        }
    }

    /// The platform says `author` is typing: hold their burst a little longer.
    pub fn typing(&mut self, author: &Author, now: Instant) {
        if let Some(pending) = &mut self.pending
            && pending.burst.author == *author
        {
            pending.typing_until = Some(now + self.config.typing_grace);
        }
    }

    /// When the pending burst is due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let pending = self.pending.as_ref()?;
        let wanted = match pending.typing_until {
            Some(typing) => pending.quiet_until.max(typing),
            None => pending.quiet_until,
        };
        Some(wanted.min(pending.first_at + self.config.max_wait))
    }

    /// Emits the pending burst if its deadline has passed.
    pub fn poll(&mut self, now: Instant) -> Option<Thought> {
        if self.deadline()? <= now {
            self.take()
        } else {
            None
        }
    }

    /// Emits the pending burst now, whatever the time (end of input, shutdown).
    pub fn take(&mut self) -> Option<Thought> {
        self.pending.take().map(|p| p.burst)
    }

    /// Drops the pending burst (a stop phrase) and returns it.
    pub fn discard(&mut self) -> Option<Thought> {
        self.take()
    }

    /// Whether a burst is pending.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[derive(Debug, PartialEq)]
enum Ending {
    Complete,
    Continuing,
    Unclear,
}

/// Words after which a sentence obviously goes on.
const CONTINUING_WORDS: &[&str] = &[
    "and", "but", "or", "so", "because", "also", "then", "like", "the", "a", "to",
];

fn ending(text: &str) -> Ending {
    let t = text.trim_end();
    if t.ends_with("...")
        || t.ends_with('…')
        || t.ends_with(',')
        || t.ends_with(':')
        || t.ends_with(';')
        || t.ends_with('-')
    {
        return Ending::Continuing;
    }
    if t.ends_with('?') || t.ends_with('!') || t.ends_with('.') {
        return Ending::Complete;
    }
    let last_word = t.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
    if CONTINUING_WORDS
        .iter()
        .any(|w| last_word.eq_ignore_ascii_case(w))
    {
        return Ending::Continuing;
    }
    Ending::Unclear
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChannelKind, Image};

    fn conv() -> ConversationRef {
        ConversationRef {
            platform: "cli".into(),
            channel: "term".into(),
            kind: ChannelKind::Direct,
        }
    }
    fn person(id: &str) -> Author {
        Author {
            platform_user_id: id.into(),
            display_name: id.into(),
        }
    }
    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }
    fn push(c: &mut Chunker, who: &str, ev: &str, text: &str, at: Instant) -> Vec<Thought> {
        c.push(
            &conv(),
            &person(who),
            Said::text(ev, text),
            at,
            ThoughtId::new(),
        )
        .ready
    }

    #[test]
    fn messages_of_a_burst_share_the_first_ones_id() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::default());
        let (a, b) = (ThoughtId::new(), ThoughtId::new());
        let first = c.push(&conv(), &person("ann"), Said::text("1", "hi"), t0, a);
        let second = c.push(&conv(), &person("ann"), Said::text("2", "you"), t0, b);
        assert_eq!((first.thought, second.thought), (a, a));
        assert_eq!(c.take().map(|t| t.id), Some(a));
    }

    #[test]
    fn rapid_messages_become_one_burst_after_quiet() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::default());
        assert!(push(&mut c, "ann", "1", "hey", t0).is_empty());
        assert!(push(&mut c, "ann", "2", "quick one", t0 + ms(400)).is_empty());
        assert_eq!(c.deadline(), Some(t0 + ms(400 + 1500)));
        assert!(c.poll(t0 + ms(1899)).is_none());
        let burst = c.poll(t0 + ms(1900)).expect("due");
        assert_eq!(burst.parts, vec!["hey", "quick one"]);
        assert_eq!(burst.events, vec![EventId::from("1"), EventId::from("2")]);
        assert!(!c.is_pending());
    }

    #[test]
    fn a_question_is_answered_sooner_and_a_comma_later() {
        let t0 = Instant::now();
        let config = ChunkerConfig::default();
        let mut c = Chunker::new(config.clone());
        push(&mut c, "ann", "1", "what's a monad?", t0);
        assert_eq!(c.deadline(), Some(t0 + config.quiet_when_complete));
        push(&mut c, "ann", "2", "I mean,", t0 + ms(100));
        assert_eq!(
            c.deadline(),
            Some(t0 + ms(100) + config.quiet_when_continuing)
        );
        push(&mut c, "ann", "3", "in haskell and", t0 + ms(200));
        assert_eq!(
            c.deadline(),
            Some(t0 + ms(200) + config.quiet_when_continuing)
        );
    }

    #[test]
    fn typing_holds_the_burst_but_never_past_the_cap() {
        let t0 = Instant::now();
        let config = ChunkerConfig::default();
        let mut c = Chunker::new(config.clone());
        push(&mut c, "ann", "1", "so", t0);
        c.typing(&person("ann"), t0 + ms(2000));
        assert_eq!(c.deadline(), Some(t0 + ms(2000) + config.typing_grace));
        c.typing(&person("ann"), t0 + ms(7000));
        assert_eq!(c.deadline(), Some(t0 + config.max_wait), "capped");
        // Someone else typing changes nothing.
        let mut c = Chunker::new(config.clone());
        push(&mut c, "ann", "1", "hi", t0);
        c.typing(&person("bob"), t0 + ms(100));
        assert_eq!(c.deadline(), Some(t0 + config.quiet));
    }

    #[test]
    fn a_different_author_flushes_the_previous_burst() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::default());
        push(&mut c, "ann", "1", "hi", t0);
        let ready = push(&mut c, "bob", "2", "yo", t0 + ms(10));
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].author, person("ann"));
        assert_eq!(c.take().map(|b| b.parts), Some(vec!["yo".to_string()]));
    }

    #[test]
    fn max_parts_emits_at_once() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig {
            max_parts: 2,
            ..ChunkerConfig::default()
        });
        assert!(push(&mut c, "ann", "1", "a", t0).is_empty());
        let ready = push(&mut c, "ann", "2", "b", t0);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].parts, vec!["a", "b"]);
        assert!(!c.is_pending());
    }

    #[test]
    fn images_of_a_burst_are_kept_in_order() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::default());
        let img = |u: &str| Image::Url { url: u.into() };
        let with = |ev: &str, u: &str| Said {
            images: vec![img(u)],
            ..Said::text(ev, "look")
        };
        c.push(
            &conv(),
            &person("ann"),
            with("1", "a"),
            t0,
            ThoughtId::new(),
        );
        c.push(
            &conv(),
            &person("ann"),
            with("2", "b"),
            t0,
            ThoughtId::new(),
        );
        assert_eq!(c.take().unwrap().images, vec![img("a"), img("b")]);
    }

    #[test]
    fn immediate_config_emits_every_message() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::immediate());
        let ready = push(&mut c, "ann", "1", "a", t0);
        assert_eq!(ready.len(), 1);
    }

    #[test]
    fn carried_thought_goes_in_front() {
        let t0 = Instant::now();
        let mut c = Chunker::new(ChunkerConfig::default());
        push(&mut c, "ann", "2", "and also this", t0);
        let old = Thought {
            id: ThoughtId::new(),
            conversation: conv(),
            author: person("ann"),
            parts: vec!["first question".into()],
            events: vec!["1".into()],
            tier: Some(Tier::High),
            images: vec![Image::Url {
                url: "https://x/cat.png".into(),
            }],
        };
        assert!(c.carry(old, t0).is_none());
        let burst = c.take().expect("pending");
        assert_eq!(burst.parts, vec!["first question", "and also this"]);
        assert_eq!(burst.events, vec![EventId::from("1"), EventId::from("2")]);
        assert_eq!(burst.tier, Some(Tier::High));
        assert_eq!(
            burst.images.len(),
            1,
            "the carried message's image comes along"
        );
    }

    #[test]
    fn endings() {
        assert_eq!(ending("really?"), Ending::Complete);
        assert_eq!(ending("wait..."), Ending::Continuing);
        assert_eq!(ending("me and"), Ending::Continuing);
        assert_eq!(ending("ok"), Ending::Unclear);
        assert_eq!(ending(""), Ending::Unclear);
    }
}

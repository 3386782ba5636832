//! The live status line of a running tool on platforms that edit messages
//! (Telegram, Discord): one message, sent at the tool's first output, edited
//! no faster than the platform's cooldown while the tool runs, and given its
//! final line when the tool ends. Pure: time is passed in.

use std::time::{Duration, Instant};

/// How many characters of a tool's latest output the status shows.
pub const STATUS_OUTPUT_CHARS: usize = 600;

/// A platform call the status needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusAction {
    /// Send the status message with this text.
    Send(String),
    /// Replace the status message's text.
    Edit(String),
}

/// One reply's tool status message.
#[derive(Debug)]
pub struct ToolStatus {
    cooldown: Duration,
    /// Whether the message was sent (edits need it).
    sent: bool,
    /// When the message was last sent or edited.
    last_call: Option<Instant>,
    /// The text the message shows.
    shown: String,
    /// A newer text waiting for the cooldown.
    pending: Option<String>,
    /// The tool the message is about now (the last one that printed).
    owner: Option<String>,
}

impl ToolStatus {
    /// A status edited at most once per `cooldown`.
    pub fn new(cooldown: Duration) -> Self {
        Self {
            cooldown,
            sent: false,
            last_call: None,
            shown: String::new(),
            pending: None,
            owner: None,
        }
    }

    /// `tool` printed `output` (the output so far, or its tail). Returns the
    /// call to make now, if one is due; otherwise the text waits for
    /// [`ToolStatus::poll`].
    pub fn progress(&mut self, tool: &str, output: &str, now: Instant) -> Option<StatusAction> {
        let text = running_text(tool, output);
        self.owner = Some(tool.to_owned());
        if !self.sent {
            return Some(self.show(text, now, true));
        }
        self.pending = Some(text);
        self.poll(now)
    }

    /// When a waiting text may be shown.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        // A pending text exists only after the first call, so `last_call` is set.
        self.last_call.map(|at| at + self.cooldown)
    }

    /// Shows a waiting text if the cooldown has passed.
    pub fn poll(&mut self, now: Instant) -> Option<StatusAction> {
        let due = self.last_call.is_none_or(|at| now >= at + self.cooldown);
        if !due {
            return None;
        }
        let text = self.pending.take()?;
        (text != self.shown).then(|| self.show(text, now, false))
    }

    /// `tool` ended (`ok`, after `seconds`): the message gets its last line
    /// at once (the cooldown is the platform's rule for a stream of edits;
    /// one more edit is fine). Nothing when no message was sent, or when the
    /// message is about another tool (one that printed later).
    pub fn finish(
        &mut self,
        tool: &str,
        ok: bool,
        seconds: f64,
        now: Instant,
    ) -> Option<StatusAction> {
        if !self.sent || self.owner.as_deref() != Some(tool) {
            return None;
        }
        self.pending = None;
        let mark = if ok { "✓" } else { "✗" };
        let text = format!("{mark} {} ran for {seconds:.1} s", display_name(tool));
        let action = self.show(text, now, false);
        // The next tool of the reply gets a message of its own.
        self.sent = false;
        Some(action)
    }

    /// The reply ended (or stopped) with a tool's message still open: it says
    /// the tool stopped, so no "running" line stays behind.
    pub fn abandon(&mut self, now: Instant) -> Option<StatusAction> {
        self.pending = None;
        if !self.sent {
            return None;
        }
        let tool = self.owner.take().unwrap_or_default();
        let action = self.show(format!("✗ {} stopped", display_name(&tool)), now, false);
        self.sent = false;
        Some(action)
    }

    fn show(&mut self, text: String, now: Instant, send: bool) -> StatusAction {
        self.sent = true;
        self.last_call = Some(now);
        self.shown.clone_from(&text);
        if send {
            StatusAction::Send(text)
        } else {
            StatusAction::Edit(text)
        }
    }
}

/// The status text of a running tool: its name, then the tail of its output
/// in a code block.
pub fn running_text(tool: &str, output: &str) -> String {
    let tail = tail_chars(output.trim_end(), STATUS_OUTPUT_CHARS);
    // A fence inside the output would end the block early.
    let tail = tail.replace("```", "'''");
    if tail.trim().is_empty() {
        format!("⏳ {} is running…", display_name(tool))
    } else {
        format!("⏳ {} is running…\n```\n{tail}\n```", display_name(tool))
    }
}

/// `code__python` → `python`: what people recognise.
fn display_name(tool: &str) -> &str {
    tool.rsplit(crate::tool::NAMESPACE_SEPARATOR)
        .next()
        .unwrap_or(tool)
}

fn tail_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(count - max).collect();
    // Start at a line boundary when there is one, so the first line is whole.
    match tail.split_once('\n') {
        Some((_, rest)) if !rest.is_empty() => format!("…\n{rest}"),
        _ => format!("…{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(1);

    #[test]
    fn first_output_sends_then_edits_wait_for_the_cooldown() {
        let t0 = Instant::now();
        let mut status = ToolStatus::new(COOLDOWN);
        let first = status.progress("code__python", "step 1", t0);
        assert_eq!(
            first,
            Some(StatusAction::Send(
                "⏳ python is running…\n```\nstep 1\n```".into()
            ))
        );
        assert_eq!(
            status.progress(
                "code__python",
                "step 1\nstep 2",
                t0 + Duration::from_millis(200)
            ),
            None
        );
        assert_eq!(status.next_due(), Some(t0 + COOLDOWN));
        assert_eq!(status.poll(t0 + Duration::from_millis(500)), None);
        let edit = status.poll(t0 + COOLDOWN).unwrap();
        assert!(
            matches!(edit, StatusAction::Edit(ref t) if t.contains("step 2")),
            "{edit:?}"
        );
        assert_eq!(status.next_due(), None);
    }

    #[test]
    fn the_end_is_shown_at_once_and_the_next_tool_starts_a_new_message() {
        let t0 = Instant::now();
        let mut status = ToolStatus::new(COOLDOWN);
        status.progress("code__shell", "x", t0);
        let end = status.finish("code__shell", true, 2.04, t0 + Duration::from_millis(10));
        assert_eq!(
            end,
            Some(StatusAction::Edit("✓ shell ran for 2.0 s".into()))
        );
        let next = status.progress("code__python", "y", t0 + Duration::from_millis(20));
        assert!(matches!(next, Some(StatusAction::Send(_))));
    }

    #[test]
    fn only_the_tool_the_message_is_about_closes_it_and_an_open_one_is_closed_at_the_end() {
        let t0 = Instant::now();
        let mut status = ToolStatus::new(COOLDOWN);
        status.progress("code__python", "x", t0);
        assert_eq!(status.finish("web__fetch", true, 0.1, t0), None);
        assert_eq!(
            status.abandon(t0),
            Some(StatusAction::Edit("✗ python stopped".into()))
        );
        assert_eq!(status.abandon(t0), None);
        assert_eq!(status.next_due(), None);
    }

    #[test]
    fn a_tool_that_printed_nothing_leaves_no_message() {
        let mut status = ToolStatus::new(COOLDOWN);
        assert_eq!(
            status.finish("code__python", false, 1.0, Instant::now()),
            None
        );
    }

    #[test]
    fn long_output_shows_its_last_whole_lines_and_no_stray_fence() {
        let output: String = (0..200).map(|i| format!("line {i} ```\n")).collect();
        let text = running_text("code__python", &output);
        assert!(text.ends_with("line 199 '''\n```"), "{text}");
        assert!(text.contains("```\n…\nline"), "{text}");
        assert!(text.chars().count() < STATUS_OUTPUT_CHARS + 60);
    }
}

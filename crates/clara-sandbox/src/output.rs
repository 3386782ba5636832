//! What is made of a run's output: the full log (written by the caller to
//! `/workspace/.clara/runs/<id>.log`), what the model reads (head and tail
//! within a budget, a marker saying what was cut and where the full log is,
//! and a line saying how the run ended), and the live text the person sees
//! while it runs (the last lines, at most about once a second).
//!
//! Output arrives in chunks that may split lines and UTF-8 characters. Text
//! is decoded a whole line at a time (a newline byte is never inside a
//! character); a long line without a newline is decoded up to its last whole
//! character. Standard error is marked where it starts (`[stderr]`) and where
//! standard output resumes (`[stdout]`), each mark on a line of its own.
//!
//! Pure: no I/O, no clock (callers pass the time).

use crate::run::{Limits, Output, RunEnd, Stream};
use std::time::{Duration, Instant};

/// The mark before lines of standard error.
pub const STDERR_MARK: &str = "[stderr]";
/// The mark before lines of standard output that follow standard error.
pub const STDOUT_MARK: &str = "[stdout]";

/// Bytes of a line kept waiting for its newline before its whole characters
/// are let through anyway.
const MAX_PENDING: usize = 4096;
/// Characters kept for the live text.
const RECENT_CHARS: usize = 2000;
/// Lines of the live text.
const LIVE_LINES: usize = 6;
/// Characters of the live text.
const LIVE_CHARS: usize = 500;

/// A run's output as it arrives: keeps the head and the tail within a budget
/// and gives back, chunk by chunk, the text for the full log.
#[derive(Debug)]
pub struct Collector {
    head_budget: usize,
    tail_budget: usize,
    head: String,
    head_chars: usize,
    tail: String,
    tail_chars: usize,
    total_chars: usize,
    pending_out: Vec<u8>,
    pending_err: Vec<u8>,
    /// The stream of the text emitted last, `None` before any.
    last_stream: Option<Stream>,
    /// Whether the text emitted so far ends a line (or is empty).
    at_line_start: bool,
    /// The stream that sent bytes last, for the live text's partial line.
    last_seen: Stream,
    recent: String,
}

impl Collector {
    /// A collector whose [`Collector::report`] keeps to about `max_chars`
    /// characters of output: two fifths from the head, the rest from the
    /// tail (where errors and results usually are).
    pub fn new(max_chars: usize) -> Self {
        let max_chars = max_chars.max(100);
        let head_budget = max_chars * 2 / 5;
        Self {
            head_budget,
            tail_budget: max_chars - head_budget,
            head: String::new(),
            head_chars: 0,
            tail: String::new(),
            tail_chars: 0,
            total_chars: 0,
            pending_out: Vec::new(),
            pending_err: Vec::new(),
            last_stream: None,
            at_line_start: true,
            last_seen: Stream::Stdout,
            recent: String::new(),
        }
    }

    /// Takes one chunk; returns the text it completes, for the full log
    /// (empty while a line is still waiting for its end).
    pub fn push(&mut self, output: &Output) -> String {
        self.last_seen = output.stream;
        let pending = match output.stream {
            Stream::Stdout => &mut self.pending_out,
            Stream::Stderr => &mut self.pending_err,
        };
        pending.extend_from_slice(&output.bytes);
        let ready = match pending.iter().rposition(|b| *b == b'\n') {
            Some(newline) => newline + 1,
            None if pending.len() > MAX_PENDING => whole_chars(pending),
            None => 0,
        };
        if ready == 0 {
            return String::new();
        }
        let bytes: Vec<u8> = pending.drain(..ready).collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.emit(output.stream, &text)
    }

    /// Ends the output (the run has ended): returns the text of lines that
    /// never got their newline, for the full log.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = match stream {
                Stream::Stdout => std::mem::take(&mut self.pending_out),
                Stream::Stderr => std::mem::take(&mut self.pending_err),
            };
            if !pending.is_empty() {
                let text = String::from_utf8_lossy(&pending).into_owned();
                out.push_str(&self.emit(stream, &text));
            }
        }
        if !self.at_line_start {
            out.push_str(&self.emit_raw("\n"));
        }
        out
    }

    /// Appends `text` of `stream`, with a mark first when the stream changes.
    fn emit(&mut self, stream: Stream, text: &str) -> String {
        let mut out = String::new();
        if self.last_stream != Some(stream) {
            let first = self.last_stream.is_none();
            self.last_stream = Some(stream);
            if !(first && stream == Stream::Stdout) {
                if !self.at_line_start {
                    out.push('\n');
                }
                out.push_str(match stream {
                    Stream::Stdout => STDOUT_MARK,
                    Stream::Stderr => STDERR_MARK,
                });
                out.push('\n');
            }
        }
        out.push_str(text);
        self.emit_raw(&out)
    }

    /// Appends `text` as it is to the head, the tail and the recent text.
    fn emit_raw(&mut self, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        self.at_line_start = text.ends_with('\n');
        let chars = text.chars().count();
        self.total_chars += chars;
        let mut rest = text;
        if self.head_chars < self.head_budget {
            let room = self.head_budget - self.head_chars;
            let split = byte_index_of_char(rest, room);
            let (into_head, after) = rest.split_at(split);
            self.head.push_str(into_head);
            self.head_chars += into_head.chars().count();
            rest = after;
        }
        if !rest.is_empty() {
            self.tail.push_str(rest);
            self.tail_chars += rest.chars().count();
            // Trimmed in batches, so long output costs linear time.
            if self.tail_chars > 2 * self.tail_budget {
                let drop = self.tail_chars - self.tail_budget;
                let cut = byte_index_of_char(&self.tail, drop);
                self.tail.drain(..cut);
                self.tail_chars -= drop;
            }
        }
        self.recent.push_str(text);
        let recent_chars = self.recent.chars().count();
        if recent_chars > 2 * RECENT_CHARS {
            let cut = byte_index_of_char(&self.recent, recent_chars - RECENT_CHARS);
            self.recent.drain(..cut);
        }
        text.to_owned()
    }

    /// Characters of output so far (marks included).
    pub fn total_chars(&self) -> usize {
        self.total_chars
    }

    /// What the model reads of the output: all of it when it fits the budget,
    /// else its head, a marker naming how much was cut and `log_path`, and
    /// its tail (both cut at line ends where one is near). `(no output)` when
    /// there was none. Call after [`Collector::finish`].
    pub fn text(&self, log_path: &str) -> String {
        if self.total_chars == 0 {
            return "(no output)".to_owned();
        }
        let tail_kept = self.tail_chars.min(self.tail_budget);
        let tail_start = byte_index_of_char(&self.tail, self.tail_chars - tail_kept);
        let tail = &self.tail[tail_start..];
        let shown = self.head_chars + tail_kept;
        if shown >= self.total_chars {
            let mut all = format!("{}{tail}", self.head);
            trim_newline(&mut all);
            return all;
        }
        let head = cut_head_at_line(&self.head);
        let tail = cut_tail_at_line(tail);
        let cut = self.total_chars - head.chars().count() - tail.chars().count();
        let mut text = format!(
            "{head}{}[… {cut} characters cut; the full log is {log_path} (files__read_file reads it) …]\n{tail}",
            if head.ends_with('\n') || head.is_empty() {
                ""
            } else {
                "\n"
            },
        );
        trim_newline(&mut text);
        text
    }

    /// The live text: the last few lines (at most about 500 characters),
    /// with the line still being written; for a progress bar redrawn with
    /// `\r`, its latest state.
    pub fn live_text(&self) -> String {
        let pending = match self.last_seen {
            Stream::Stdout => &self.pending_out,
            Stream::Stderr => &self.pending_err,
        };
        let partial = String::from_utf8_lossy(&pending[..whole_chars(pending)]);
        let all = format!("{}{partial}", self.recent);
        let lines: Vec<&str> = all
            .trim_end_matches('\n')
            .split('\n')
            .map(|line| {
                let line = line.trim_end_matches('\r');
                line.rsplit('\r').next().unwrap_or(line)
            })
            .collect();
        let start = lines.len().saturating_sub(LIVE_LINES);
        let text = lines[start..].join("\n");
        let chars = text.chars().count();
        if chars <= LIVE_CHARS {
            return text;
        }
        let cut = byte_index_of_char(&text, chars - (LIVE_CHARS - 1));
        format!("…{}", &text[cut..])
    }
}

/// The byte index of character `n` of `text` (its length when shorter).
fn byte_index_of_char(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// How many leading bytes of `bytes` end on a character boundary: all of them
/// unless the last character is incomplete (invalid bytes count as whole;
/// lossy decoding replaces them).
fn whole_chars(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look for the last lead byte among the
    // last 4 and see whether its character is complete.
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let byte = bytes[len - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte
        }
        let needed = match byte {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        return if needed > back { len - back } else { len };
    }
    len
}

/// The head, cut after its last newline when that drops at most a fifth of it.
fn cut_head_at_line(head: &str) -> &str {
    match head.rfind('\n') {
        Some(i) if head.len() - (i + 1) <= head.len() / 5 => &head[..=i],
        _ => head,
    }
}

/// The tail, from after its first newline when that drops at most a fifth of it.
fn cut_tail_at_line(tail: &str) -> &str {
    match tail.find('\n') {
        Some(i) if i < tail.len() / 5 => &tail[i + 1..],
        _ => tail,
    }
}

fn trim_newline(text: &mut String) {
    while text.ends_with('\n') {
        text.pop();
    }
}

/// How a run ended, in one line: `Exit code 0 after 1.2 s.`, with the
/// limit that stopped it described when one did.
pub fn exit_line(end: &RunEnd, limits: &Limits) -> String {
    let after = format_duration(end.duration);
    let mut line = match (end.exit_code, end.signal) {
        (Some(code), _) => format!("Exit code {code} after {after}."),
        (None, Some(signal)) => format!("Ended by signal {signal} after {after}."),
        (None, None) => format!("Ended after {after}."),
    };
    if let Some(stopped) = end.stopped {
        line.push(' ');
        line.push_str(&stopped.describe(limits));
    }
    line
}

/// A duration in words: `0.4 s`, `12 s`, `3 min 5 s`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 60.0 {
        format!("{secs:.0} s")
    } else {
        let whole = duration.as_secs();
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// Decides when the live text is shown again: at most once per interval, and
/// only when it changed.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last_sent: Option<Instant>,
    last_text: String,
}

impl Throttle {
    /// At most one update per `interval` (about a second suits every platform).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            last_text: String::new(),
        }
    }

    /// `text` when it should be shown now (`now` is the caller's clock).
    pub fn due(&mut self, text: String, now: Instant) -> Option<String> {
        if text.is_empty() || text == self.last_text {
            return None;
        }
        if let Some(last) = self.last_sent
            && now.saturating_duration_since(last) < self.interval
        {
            return None;
        }
        self.last_sent = Some(now);
        self.last_text.clone_from(&text);
        Some(text)
    }

    /// `text` when it differs from what was shown last, whatever the time:
    /// the final state when the run ends.
    pub fn flush(&mut self, text: String, now: Instant) -> Option<String> {
        self.last_sent = None;
        self.due(text, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Stopped;

    fn out(bytes: &[u8]) -> Output {
        Output {
            stream: Stream::Stdout,
            bytes: bytes.to_vec(),
        }
    }

    fn err(bytes: &[u8]) -> Output {
        Output {
            stream: Stream::Stderr,
            bytes: bytes.to_vec(),
        }
    }

    fn collect(max: usize, chunks: &[Output]) -> (Collector, String) {
        let mut c = Collector::new(max);
        let mut log = String::new();
        for chunk in chunks {
            log.push_str(&c.push(chunk));
        }
        log.push_str(&c.finish());
        (c, log)
    }

    #[test]
    fn short_output_is_kept_whole() {
        let (c, log) = collect(1000, &[out(b"one\ntw"), out(b"o\n")]);
        assert_eq!(log, "one\ntwo\n");
        assert_eq!(c.text("/l.log"), "one\ntwo");
    }

    #[test]
    fn no_output_says_so() {
        let (c, log) = collect(1000, &[]);
        assert_eq!(log, "");
        assert_eq!(c.text("/l.log"), "(no output)");
    }

    #[test]
    fn characters_split_across_chunks_survive() {
        let text = "héllo ✓ 😀\n".as_bytes();
        let chunks: Vec<Output> = text.chunks(1).map(out).collect();
        let (c, log) = collect(1000, &chunks);
        assert_eq!(log, "héllo ✓ 😀\n");
        assert_eq!(c.text("/l.log"), "héllo ✓ 😀");
    }

    #[test]
    fn long_lines_are_let_through_on_a_character_boundary() {
        let line = "é".repeat(3000); // 6000 bytes, no newline
        let bytes = line.as_bytes();
        let mut c = Collector::new(100_000);
        // Split inside a character: 4097 is odd, the middle of an "é".
        let first = c.push(&out(&bytes[..4097]));
        assert_eq!(first, "é".repeat(2048));
        let rest = c.push(&out(&bytes[4097..])) + &c.finish();
        assert_eq!(first + &rest, format!("{line}\n"));
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (c, _) = collect(1000, &[out(b"a\xffb\n"), out(b"end\xe2\x9c")]);
        assert_eq!(c.text("/l.log"), "a\u{fffd}b\nend\u{fffd}");
    }

    #[test]
    fn stderr_is_marked_where_it_starts_and_stops() {
        let (c, log) = collect(
            1000,
            &[
                out(b"result 1\n"),
                err(b"Traceback\n  line\n"),
                out(b"partial"),
                err(b"warn"),
            ],
        );
        assert_eq!(
            log,
            "result 1\n[stderr]\nTraceback\n  line\n[stdout]\npartial\n[stderr]\nwarn\n"
        );
        assert!(c.text("/l.log").ends_with("[stderr]\nwarn"));
        let (_, only_err) = collect(1000, &[err(b"boom\n")]);
        assert_eq!(only_err, "[stderr]\nboom\n");
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_names_the_log() {
        let lines: Vec<Output> = (0..5000)
            .map(|i| out(format!("line {i}\n").as_bytes()))
            .collect();
        let (c, log) = collect(1000, &lines);
        assert_eq!(log.chars().count(), c.total_chars());
        let text = c.text("/workspace/.clara/runs/x.log");
        assert!(text.starts_with("line 0\nline 1\n"), "{text}");
        assert!(text.ends_with("line 4998\nline 4999"), "{text}");
        assert!(text.contains("characters cut; the full log is /workspace/.clara/runs/x.log"));
        // The count is exact: shown plus cut is everything.
        let marker_start = text.find("[…").unwrap();
        let marker_end = text[marker_start..].find("…]\n").unwrap() + marker_start + "…]\n".len();
        let number: usize = text[marker_start + "[… ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let shown = text[..marker_start].chars().count() + text[marker_end..].chars().count() + 1;
        assert_eq!(shown + number, c.total_chars());
        assert!(text.chars().count() < 1200, "{}", text.chars().count());
    }

    #[test]
    fn live_text_is_the_last_lines_and_short() {
        let mut c = Collector::new(1000);
        for i in 0..20 {
            c.push(&out(format!("step {i}\n").as_bytes()));
        }
        c.push(&out(b"progress 10%\rprogress 50%"));
        assert_eq!(
            c.live_text(),
            "step 15\nstep 16\nstep 17\nstep 18\nstep 19\nprogress 50%"
        );
        c.push(&out("x".repeat(3000).as_bytes()));
        c.push(&out(b"\n"));
        let live = c.live_text();
        assert!(live.starts_with('…'));
        assert_eq!(live.chars().count(), 500);
    }

    #[test]
    fn updates_come_at_most_once_a_second_and_only_when_changed() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(1));
        assert_eq!(t.due("a".into(), start), Some("a".into()));
        assert_eq!(t.due("b".into(), start + Duration::from_millis(500)), None);
        assert_eq!(
            t.due("b".into(), start + Duration::from_millis(1000)),
            Some("b".into())
        );
        assert_eq!(t.due("b".into(), start + Duration::from_secs(5)), None);
        assert_eq!(t.due(String::new(), start + Duration::from_secs(9)), None);
        assert_eq!(
            t.flush("c".into(), start + Duration::from_millis(5001)),
            Some("c".into())
        );
    }

    #[test]
    fn the_exit_line_says_how_it_ended() {
        let limits = Limits::default();
        let mut end = RunEnd {
            exit_code: Some(0),
            signal: None,
            stopped: None,
            duration: Duration::from_millis(1234),
        };
        assert_eq!(exit_line(&end, &limits), "Exit code 0 after 1.2 s.");
        end.exit_code = None;
        end.signal = Some(9);
        end.stopped = Some(Stopped::WallTime);
        end.duration = Duration::from_secs(905);
        assert_eq!(
            exit_line(&end, &limits),
            format!(
                "Ended by signal 9 after 15 min 5 s. {}",
                Stopped::WallTime.describe(&limits)
            )
        );
        assert_eq!(format_duration(Duration::from_secs(42)), "42 s");
    }
}

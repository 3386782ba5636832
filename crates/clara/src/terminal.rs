//! The terminal as a platform: replies stream to standard output.

use async_trait::async_trait;
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::{ConversationRef, Outbound};
use clara_runtime::{OutboundSink, SinkError};
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prints replies as they stream. On a terminal they are labelled and coloured;
/// piped, they are plain text, one reply per line, errors on standard error.
pub struct TerminalSink {
    interactive: bool,
    /// Where files Clara sends are saved (a terminal cannot show them).
    downloads: std::path::PathBuf,
    started: Mutex<bool>,
    last_failed: AtomicBool,
}

impl TerminalSink {
    /// A sink for a terminal (`interactive`) or a pipe, saving files Clara
    /// sends into `downloads`.
    pub fn new(interactive: bool, downloads: std::path::PathBuf) -> Self {
        Self {
            interactive,
            downloads,
            started: Mutex::new(false),
            last_failed: AtomicBool::new(false),
        }
    }

    /// Whether the most recent reply failed.
    pub fn last_failed(&self) -> bool {
        self.last_failed.load(Ordering::Acquire)
    }

    fn write(&self, text: &str) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| SinkError::Failed(format!("cannot write to the terminal: {e}")))
    }

    fn begin(&self) -> Result<(), SinkError> {
        let mut started = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*started {
            *started = true;
            if self.interactive {
                self.write("\x1b[1;36mClara:\x1b[0m ")?;
            }
        }
        Ok(())
    }

    /// Prints a line that is not reply text: labelled on a terminal; piped, on
    /// standard error, so standard output stays the replies alone.
    fn notice(&self, label: &str, text: &str) -> Result<(), SinkError> {
        if self.interactive {
            self.write(&format!("\x1b[1;33m{label}:\x1b[0m {text}\n"))
        } else {
            eprintln!("clara: {text}");
            Ok(())
        }
    }

    /// Ends the current reply's line; returns whether anything had been printed.
    fn end_line(&self, suffix: &str) -> Result<bool, SinkError> {
        let mut started = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let was = std::mem::replace(&mut *started, false);
        drop(started);
        if was {
            self.write(suffix)?;
            self.write("\n")?;
        }
        Ok(was)
    }
}

#[async_trait]
impl OutboundSink for TerminalSink {
    fn delivery(&self) -> Delivery {
        Delivery {
            mode: DeliveryMode::Stream,
            max_chars: usize::MAX,
        }
    }

    async fn deliver(
        &self,
        _conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        match outbound {
            Outbound::Delta { text, .. } => {
                self.begin()?;
                self.write(&text)?;
            }
            Outbound::End { .. } => {
                self.last_failed.store(false, Ordering::Release);
                self.end_line("")?;
            }
            Outbound::Cancelled { .. } => {
                self.end_line(if self.interactive {
                    " \x1b[2m[interrupted]\x1b[0m"
                } else {
                    ""
                })?;
            }
            Outbound::Error { message, .. } => {
                self.last_failed.store(true, Ordering::Release);
                self.end_line("")?;
                if self.interactive {
                    self.write(&format!("\x1b[1;31mClara:\x1b[0m {message}\n"))?;
                } else {
                    eprintln!("clara: {message}");
                }
            }
            Outbound::ToolStarted { name, .. } if self.interactive => {
                self.begin()?;
                self.write(&format!("\x1b[2m[{}…]\x1b[0m ", display_tool(&name)))?;
            }
            Outbound::ToolStarted { .. }
            | Outbound::ToolFinished { .. }
            | Outbound::ToolProgress { .. } => {}
            Outbound::File { file, caption, .. } => {
                self.end_line("")?;
                let saved = save_file(&self.downloads, &file)
                    .map_err(|e| SinkError::Failed(format!("could not save {}: {e}", file.name)))?;
                let caption = caption.map(|c| format!(": {c}")).unwrap_or_default();
                self.notice(
                    "Clara sent a file",
                    &format!(
                        "{} ({}, {} bytes){caption}, saved as {}",
                        file.name,
                        file.media_type,
                        file.data.len(),
                        saved.display()
                    ),
                )?;
            }
            Outbound::Ask { prompt } => {
                // The question interrupts the reply's line; the person answers
                // by typing `/approve ID` (or `/always`, `/deny`), which the
                // engine reads.
                self.end_line("")?;
                self.notice("Clara asks", &prompt.text(true))?;
            }
            Outbound::AskClosed {
                prompt, outcome, ..
            } => {
                self.end_line("")?;
                self.notice(
                    "Clara",
                    &format!("{} ({}): {}", prompt.tool, prompt.id, outcome.describe()),
                )?;
            }
            // A terminal shows text as it streams; it has no messages to send or edit.
            Outbound::Typing | Outbound::Send { .. } | Outbound::Edit { .. } => {}
        }
        Ok(None)
    }
}

/// Writes `file` into `dir` under its own name (only its last component),
/// never over an existing file: `chart.png`, then `chart-1.png`, ….
fn save_file(
    dir: &std::path::Path,
    file: &clara_core::FileBlob,
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = std::path::Path::new(&file.name)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or("file");
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut out) => {
                std::io::Write::write_all(&mut out, &file.data)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files of that name"))
}

/// `clara__current_time` → `current time`: what the tool does, not its plumbing.
fn display_tool(name: &str) -> String {
    let tool = name
        .rsplit(clara_core::tool::NAMESPACE_SEPARATOR)
        .next()
        .unwrap_or(name);
    tool.replace('_', " ")
}

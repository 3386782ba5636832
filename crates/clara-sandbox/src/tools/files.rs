//! `files__read_file`, `files__write_file`, `files__list_files` and
//! `files__send_file`: the workspace's files from the host side, kept inside
//! the workspace by [`Workspaces`].

use super::{blocking, optional_string, string_arg, user_of};
use crate::workspace::{EntryKind, Listing, WorkspacePath, Workspaces, human_size};
use async_trait::async_trait;
use clara_core::FileBlob;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use std::sync::Arc;

/// How the file tools behave.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// Whether the sandbox can reach the network: the workspace may then
    /// hold anything from outside, so what the tools read is untrusted.
    pub network: bool,
    /// Characters of a file one read returns (the model reads on with `offset`).
    pub max_read_chars: usize,
    /// Entries one listing shows.
    pub max_list_entries: usize,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            network: false,
            max_read_chars: 8_000,
            max_list_entries: 500,
        }
    }
}

/// What the file tools share.
pub(super) struct Shared {
    pub(super) workspaces: Workspaces,
    pub(super) config: FilesConfig,
}

impl Shared {
    fn reading(&self) -> ToolTraits {
        ToolTraits {
            effect: Effect::Read,
            untrusted_output: self.config.network,
            definition_sha256: None,
        }
    }
}

fn path_arg(arguments: &serde_json::Value) -> Result<WorkspacePath, ToolError> {
    WorkspacePath::parse(string_arg(arguments, "path")?).map_err(super::failed)
}

/// `files__read_file`: a file's text, a window at a time.
pub struct ReadFileTool(pub(super) Arc<Shared>);

#[async_trait]
impl Tool for ReadFileTool {
    fn name(&self) -> &str {
        "read_file"
    }

    fn description(&self) -> &str {
        "Reads a text file of the person's workspace (/workspace: files they sent are in /workspace/uploads, run logs in /workspace/.clara/runs). Paths are relative to /workspace or start with /workspace/. Long files come a window at a time: call again with `offset` to read on."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file, e.g. uploads/data.csv."},
                "offset": {"type": "integer", "minimum": 0, "description": "The character to start at (default 0)."}
            },
            "required": ["path"]
        })
    }

    fn traits(&self) -> ToolTraits {
        self.0.reading()
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError> {
        let user = user_of(context)?;
        let path = path_arg(&arguments)?;
        let offset = match arguments.get("offset") {
            None | Some(serde_json::Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    ToolError::InvalidArguments("`offset` must be a whole number".to_owned())
                })?,
        };
        let workspaces = self.0.workspaces.clone();
        let target = path.clone();
        let bytes = blocking(move || workspaces.read(&user, &target)).await?;
        Ok(render_text(
            &path,
            &bytes,
            offset,
            self.0.config.max_read_chars,
        ))
    }
}

/// What a read returns: the text (or the window from `offset`), or why a
/// binary file is not shown.
fn render_text(path: &WorkspacePath, bytes: &[u8], offset: usize, max_chars: usize) -> String {
    let inside = path.inside();
    let size = human_size(bytes.len() as u64);
    // A NUL among the first bytes means a binary file; anything else is read
    // as text, bytes that are not UTF-8 (a Latin-1 CSV) replaced.
    if bytes.iter().take(8192).any(|b| *b == 0) {
        let media_type = clara_core::file::media_type_for(path.name().unwrap_or_default());
        return format!(
            "{inside} is a binary file ({media_type}, {size}); it is not shown as text. files__send_file sends it to the person."
        );
    }
    let text = String::from_utf8_lossy(bytes);
    let total = text.chars().count();
    if offset == 0 && total <= max_chars {
        return format!("{inside} ({size}):\n{text}");
    }
    if offset >= total {
        return format!("{inside} has {total} characters; offset {offset} is past its end.");
    }
    let window: String = text.chars().skip(offset).take(max_chars.max(1)).collect();
    let end = offset + window.chars().count();
    let mut out = format!("{inside} ({size}), characters {offset}–{end} of {total}:\n{window}");
    if end < total {
        out.push_str(&format!(
            "\n[… {} characters more: call files__read_file again with offset {end} to read on]",
            total - end
        ));
    }
    out
}

/// `files__write_file`: writes a text file.
pub struct WriteFileTool(pub(super) Arc<Shared>);

#[async_trait]
impl Tool for WriteFileTool {
    fn name(&self) -> &str {
        "write_file"
    }

    fn description(&self) -> &str {
        "Writes a text file in the person's workspace (/workspace), replacing it if it exists and making missing directories. Paths are relative to /workspace or start with /workspace/. Code run with code__python or code__shell sees it."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file, e.g. notes/todo.md."},
                "content": {"type": "string", "description": "The whole text of the file."}
            },
            "required": ["path", "content"]
        })
    }

    /// [`Effect::Sandboxed`]: it changes only the person's own workspace,
    /// which nothing but their sandbox and these tools touch.
    fn traits(&self) -> ToolTraits {
        ToolTraits {
            effect: Effect::Sandboxed,
            untrusted_output: false,
            definition_sha256: None,
        }
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError> {
        let user = user_of(context)?;
        let path = path_arg(&arguments)?;
        let content = string_arg(&arguments, "content")?.as_bytes().to_vec();
        let size = human_size(content.len() as u64);
        let workspaces = self.0.workspaces.clone();
        let target = path.clone();
        blocking(move || workspaces.write(&user, &target, &content)).await?;
        Ok(format!("Wrote {} ({size}).", path.inside()))
    }
}

/// `files__list_files`: what is in a directory.
pub struct ListFilesTool(pub(super) Arc<Shared>);

#[async_trait]
impl Tool for ListFilesTool {
    fn name(&self) -> &str {
        "list_files"
    }

    fn description(&self) -> &str {
        "Lists a directory of the person's workspace (/workspace by default): names, sizes and times. Files they sent are in /workspace/uploads. With `recursive`, subdirectories too (except Clara's own .clara)."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The directory (default /workspace)."},
                "recursive": {"type": "boolean", "description": "List subdirectories too (default false)."}
            }
        })
    }

    fn traits(&self) -> ToolTraits {
        self.0.reading()
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError> {
        let user = user_of(context)?;
        let path = match optional_string(&arguments, "path")? {
            Some(raw) => WorkspacePath::parse(raw).map_err(super::failed)?,
            None => WorkspacePath::root(),
        };
        let recursive = match arguments.get("recursive") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ToolError::InvalidArguments(
                    "`recursive` must be true or false".to_owned(),
                ));
            }
        };
        let workspaces = self.0.workspaces.clone();
        let max = self.0.config.max_list_entries;
        let listing = blocking(move || workspaces.list(&user, &path, recursive, max)).await?;
        Ok(render_listing(&listing))
    }
}

/// A listing, one entry a line.
fn render_listing(listing: &Listing) -> String {
    let dir = listing.dir.inside();
    if listing.entries.is_empty() {
        return format!("{dir} is empty.");
    }
    let count = listing.entries.len();
    let mut out = format!(
        "{dir} ({count} {}):",
        if count == 1 { "entry" } else { "entries" }
    );
    for entry in &listing.entries {
        let time = entry
            .modified
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_default();
        let line = match entry.kind {
            EntryKind::File => format!("{}  {}  {time}", entry.path, human_size(entry.size)),
            EntryKind::Dir => format!("{}/  directory", entry.path),
            EntryKind::Link => format!("{}  symbolic link", entry.path),
            EntryKind::Other => format!("{}  special file", entry.path),
        };
        out.push('\n');
        out.push_str(line.trim_end());
    }
    if listing.truncated {
        out.push_str(&format!("\n[only the first {count} entries are shown]"));
    }
    out
}

/// `files__send_file`: sends a workspace file to the person with the reply.
pub struct SendFileTool(pub(super) Arc<Shared>);

#[async_trait]
impl Tool for SendFileTool {
    fn name(&self) -> &str {
        "send_file"
    }

    fn description(&self) -> &str {
        "Sends a file of the person's workspace to them with your reply (pictures such as PNG and JPEG show as images): a chart made with code__python, a result file, a converted document. Paths are relative to /workspace or start with /workspace/."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The file, e.g. chart.png."},
                "caption": {"type": "string", "description": "A short line shown with it."}
            },
            "required": ["path"]
        })
    }

    /// [`Effect::Sandboxed`], not [`Effect::Send`]: the file goes only to the
    /// person Clara is answering, in the conversation they wrote in, with the
    /// reply — the same audience as the reply's text, never a third party —
    /// and it comes from their own workspace.
    fn traits(&self) -> ToolTraits {
        ToolTraits {
            effect: Effect::Sandboxed,
            untrusted_output: false,
            definition_sha256: None,
        }
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError> {
        let user = user_of(context)?;
        let path = path_arg(&arguments)?;
        let caption = optional_string(&arguments, "caption")?
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let Some(sideband) = &context.sideband else {
            return Err(ToolError::Failed(
                "Files cannot be sent here: nothing delivers them in this conversation.".to_owned(),
            ));
        };
        let Some(name) = path.name().map(str::to_owned) else {
            return Err(ToolError::Failed(
                "/workspace is a directory; give a file to send.".to_owned(),
            ));
        };
        let workspaces = self.0.workspaces.clone();
        let target = path.clone();
        let bytes = blocking(move || workspaces.read(&user, &target)).await?;
        let file = FileBlob::new(name, bytes);
        let summary = format!(
            "Sent {} ({}, {}); it reaches the person with your reply{}.",
            path.inside(),
            file.media_type,
            human_size(file.data.len() as u64),
            if file.is_image() { " as a picture" } else { "" }
        );
        sideband.send_file(file, caption);
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::Entry;

    fn p(raw: &str) -> WorkspacePath {
        WorkspacePath::parse(raw).unwrap()
    }

    #[test]
    fn short_text_comes_whole_and_long_text_in_windows() {
        assert_eq!(
            render_text(&p("a.txt"), b"hello", 0, 100),
            "/workspace/a.txt (5 bytes):\nhello"
        );
        let long = "abcdefghij".repeat(3);
        let first = render_text(&p("a.txt"), long.as_bytes(), 0, 10);
        assert!(
            first.contains("characters 0–10 of 30:\nabcdefghij\n"),
            "{first}"
        );
        assert!(
            first.ends_with("again with offset 10 to read on]"),
            "{first}"
        );
        let last = render_text(&p("a.txt"), long.as_bytes(), 20, 10);
        assert!(
            last.ends_with("characters 20–30 of 30:\nabcdefghij"),
            "{last}"
        );
        assert!(render_text(&p("a.txt"), b"x", 5, 10).contains("past its end"));
    }

    #[test]
    fn binary_files_are_not_shown() {
        let text = render_text(&p("chart.png"), b"\x89PNG\0\0", 0, 100);
        assert_eq!(
            text,
            "/workspace/chart.png is a binary file (image/png, 6 bytes); it is not shown as text. files__send_file sends it to the person."
        );
        // Latin-1 text still reads.
        assert!(render_text(&p("a.csv"), b"caf\xe9", 0, 100).ends_with("caf\u{fffd}"));
    }

    #[test]
    fn listings_read_as_lines() {
        let listing = Listing {
            dir: WorkspacePath::root(),
            entries: vec![
                Entry {
                    path: "data".into(),
                    kind: EntryKind::Dir,
                    size: 0,
                    modified: None,
                },
                Entry {
                    path: "data/a.csv".into(),
                    kind: EntryKind::File,
                    size: 2048,
                    modified: Some(std::time::UNIX_EPOCH),
                },
            ],
            truncated: true,
        };
        assert_eq!(
            render_listing(&listing),
            "/workspace (2 entries):\ndata/  directory\ndata/a.csv  2 KB  1970-01-01 00:00 UTC\n[only the first 2 entries are shown]"
        );
        let empty = Listing {
            dir: p("x"),
            entries: vec![],
            truncated: false,
        };
        assert_eq!(render_listing(&empty), "/workspace/x is empty.");
    }
}

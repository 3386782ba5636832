//! A file from the contents API made readable: its base64 decoded, binary
//! and oversized files refused, and a long file shown one window of lines at
//! a time so the model can page through it with `start_line`.

use crate::wire::Content;
use base64::Engine as _;

/// The largest file decoded. The contents API itself serves content up to
/// 1 MB (above that it sends `encoding: none` and no content).
pub(crate) const MAX_FILE_BYTES: u64 = 1_000_000;

/// A file's text, or why it cannot be shown, in one sentence.
pub(crate) fn decode(file: &Content) -> Result<String, String> {
    if file.size > MAX_FILE_BYTES || (file.encoding == "none" && file.size > 0) {
        return Err(format!(
            "{} is {} bytes, more than the {} MB Clara reads through the contents API; open {} instead",
            file.path,
            file.size,
            MAX_FILE_BYTES / 1_000_000,
            file.html_url
        ));
    }
    if !file.encoding.is_empty() && file.encoding != "base64" {
        return Err(format!(
            "{} came in an encoding Clara does not read ({:?})",
            file.path, file.encoding
        ));
    }
    // GitHub wraps the base64 every 60 characters.
    let packed: String = file
        .content
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(packed.as_bytes())
        .map_err(|e| format!("{}'s content is not valid base64 ({e})", file.path))?;
    if bytes.contains(&0) {
        return Err(binary(file, bytes.len()));
    }
    String::from_utf8(bytes).map_err(|e| binary(file, e.as_bytes().len()))
}

fn binary(file: &Content, len: usize) -> String {
    format!(
        "{} is a binary file ({len} bytes), so its content is not shown; it is at {}",
        file.path, file.html_url
    )
}

/// The lines of `text` from `start_line` (1-based) that fit in `budget`
/// characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// The text shown.
    pub text: String,
    /// The first line shown (1-based).
    pub first: usize,
    /// The last line shown, whole or cut.
    pub last: usize,
    /// How many lines the file has.
    pub total: usize,
}

impl Window {
    /// Whether the whole file is shown.
    pub fn is_whole(&self) -> bool {
        self.first <= 1 && self.last >= self.total
    }
}

/// The window of `text` starting at `start_line`, at most `budget`
/// characters. Always at least part of one line, so a minified file with a
/// single huge line still shows something.
pub(crate) fn window(text: &str, start_line: usize, budget: usize) -> Window {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    let first = start_line.max(1);
    if first > total {
        return Window {
            text: String::new(),
            first,
            last: total,
            total,
        };
    }
    let mut out = String::new();
    let mut used = 0;
    let mut last = first - 1;
    for line in &lines[first - 1..] {
        let len = line.chars().count() + 1;
        if used + len > budget {
            if last < first {
                // The first line alone is over the budget: show its start.
                out.extend(line.chars().take(budget));
                out.push_str(" …[line cut]");
                last = first;
            }
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += len;
        last += 1;
    }
    Window {
        text: out,
        first,
        last,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(encoding: &str, content: &str, size: u64) -> Content {
        Content {
            kind: "file".into(),
            path: "src/a.rs".into(),
            html_url: "https://github.com/o/r/blob/main/src/a.rs".into(),
            encoding: encoding.into(),
            content: content.into(),
            size,
            ..Content::default()
        }
    }

    #[test]
    fn base64_wrapped_at_sixty_columns_decodes() {
        // "fn main() {}\n" as GitHub sends it, with a line break inside.
        let f = file("base64", "Zm4gbWFpbigp\nIHt9Cg==\n", 13);
        assert_eq!(decode(&f).unwrap(), "fn main() {}\n");
    }

    #[test]
    fn binary_oversized_and_garbled_files_are_refused_in_a_sentence() {
        let png = file("base64", "iVBORw0KGgoAAAANSUhEUg==", 16);
        assert!(decode(&png).unwrap_err().contains("binary file"));
        let big = file("none", "", 5_000_000);
        let e = decode(&big).unwrap_err();
        assert!(
            e.contains("5000000 bytes") && e.contains("https://github.com/o/r/blob"),
            "{e}"
        );
        assert!(
            decode(&file("base64", "!!!", 3))
                .unwrap_err()
                .contains("not valid base64")
        );
    }

    #[test]
    fn a_window_pages_through_lines_within_the_budget() {
        let text = (1..=10)
            .map(|n| format!("line {n}"))
            .collect::<Vec<_>>()
            .join("\n");
        let all = window(&text, 1, 1000);
        assert!(all.is_whole());
        assert_eq!((all.first, all.last, all.total), (1, 10, 10));
        // "line N\n" is 7 characters: 3 lines fit in 21.
        let part = window(&text, 4, 21);
        assert_eq!(part.text, "line 4\nline 5\nline 6\n");
        assert_eq!((part.first, part.last), (4, 6));
        assert!(!part.is_whole());
        let past = window(&text, 20, 100);
        assert!(past.text.is_empty() && past.last == 10);
        let huge = window(&"x".repeat(50), 1, 10);
        assert_eq!(huge.text, "xxxxxxxxxx …[line cut]");
        assert_eq!(huge.last, 1);
    }
}

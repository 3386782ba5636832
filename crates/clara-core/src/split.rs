//! Cutting a reply to fit a platform's message limit.
//!
//! Cuts fall at the most natural boundary that fits — a blank line, then a line
//! break, then a sentence end, then a space — and never leave a code block broken:
//! a block cut in two is closed at the end of one message and reopened, with its
//! language, at the start of the next.

/// Splits `text` into messages of at most `max_chars` characters each.
///
/// `max_chars` below 16 is raised to 16, the least that still fits a reopened fence
/// and some text.
pub fn split_message(text: &str, max_chars: usize) -> Vec<String> {
    let max_chars = max_chars.max(16);
    if text.chars().count() <= max_chars {
        return vec![text.to_owned()];
    }
    let mut out = Vec::new();
    let mut rest = text;
    let mut reopen: Option<String> = None;
    while !rest.is_empty() {
        let prefix = reopen
            .as_ref()
            .map(|f| format!("{f}\n"))
            .unwrap_or_default();
        let prefix_len = prefix.chars().count();
        let whole_fits = prefix_len + rest.chars().count() <= max_chars;
        if whole_fits {
            out.push(prefix + rest);
            break;
        }
        // Keep room for a closing fence in case the cut lands inside a block.
        let budget = max_chars
            .saturating_sub(prefix_len + FENCE_CLOSE.len())
            .max(1);
        let cut = best_cut(rest, budget);
        let (head, tail) = rest.split_at(cut);
        let mut chunk = prefix + head.trim_end_matches([' ', '\n']);
        let fence = open_fence_after(reopen.as_deref(), head);
        if fence.is_some() {
            chunk.push_str(FENCE_CLOSE);
        }
        out.push(chunk);
        // Inside a code block, leading spaces are indentation: keep them.
        rest = if fence.is_some() {
            tail.trim_start_matches('\n')
        } else {
            tail.trim_start_matches(['\n', ' '])
        };
        reopen = fence;
    }
    out
}

const FENCE_CLOSE: &str = "\n```";

/// The byte offset to cut `text` at so that the head has at most `budget` chars.
fn best_cut(text: &str, budget: usize) -> usize {
    let limit = text
        .char_indices()
        .nth(budget)
        .map_or(text.len(), |(i, _)| i);
    let window = &text[..limit];
    // Don't accept a cut that leaves a tiny first part: it reads as a glitch.
    let min = limit / 3;
    let candidates = [
        window.rfind("\n\n").map(|i| i + 2),
        window.rfind('\n').map(|i| i + 1),
        rfind_sentence_end(window),
        window.rfind(' ').map(|i| i + 1),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|&i| i > min)
        .unwrap_or(limit)
}

fn rfind_sentence_end(window: &str) -> Option<usize> {
    [". ", "! ", "? "]
        .iter()
        .filter_map(|p| window.rfind(p).map(|i| i + 2))
        .max()
}

/// Whether a code fence is open after `head`, given the one open before it; returns
/// the fence's opening line to reopen with.
fn open_fence_after(open_before: Option<&str>, head: &str) -> Option<String> {
    let mut open = open_before.map(str::to_owned);
    for line in head.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            open = match open {
                Some(_) => None,
                None => Some(t.trim_end().to_owned()),
            };
        }
    }
    open
}

/// Splits a reply into the parts a person would send as separate messages: one per
/// paragraph, code blocks kept whole, each part at most `max_chars`.
pub fn split_parts(text: &str, max_chars: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if line.trim().is_empty() && !in_fence {
            if !current.trim().is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            current.clear();
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
        .into_iter()
        .flat_map(|p| split_message(&p, max_chars))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn short_text_is_one_message() {
        assert_eq!(split_message("hello", 2000), vec!["hello"]);
    }

    #[test]
    fn cuts_at_paragraphs_then_lines_then_words() {
        let text = format!("{}\n\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(
            split_message(&text, 40),
            vec!["a".repeat(30), "b".repeat(30)]
        );
        let text = format!("{}\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(
            split_message(&text, 40),
            vec!["a".repeat(30), "b".repeat(30)]
        );
        let words = "word ".repeat(20);
        for part in split_message(words.trim(), 32) {
            assert!(chars(&part) <= 32);
            assert!(!part.starts_with(' ') && !part.ends_with(' '));
            assert!(
                part.split(' ').all(|w| w == "word"),
                "no word broken: {part:?}"
            );
        }
    }

    #[test]
    fn unbreakable_text_is_cut_hard_and_nothing_is_lost() {
        let text = "x".repeat(100);
        let parts = split_message(&text, 30);
        assert!(parts.iter().all(|p| chars(p) <= 30));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(50) + " " + &"日".repeat(50);
        let parts = split_message(&text, 20);
        assert!(parts.iter().all(|p| chars(p) <= 20));
        assert_eq!(parts.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn code_blocks_are_closed_and_reopened() {
        let code: String = (0..30).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n```rust\n{code}```\nDone.");
        let parts = split_message(&text, 120);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(chars(p) <= 120, "{} > 120", chars(p));
            assert_eq!(p.matches("```").count() % 2, 0, "balanced fences in {p:?}");
        }
        assert!(parts[1].starts_with("```rust\n"));
        // Every line of code survives.
        let joined = parts.join("\n");
        for i in 0..30 {
            assert!(joined.contains(&format!("let x{i} = {i};")));
        }
        assert!(joined.ends_with("Done."));
    }

    #[test]
    fn indentation_survives_a_cut_inside_a_code_block() {
        let code: String = (0..40).map(|i| format!("    let x{i} = {i};\n")).collect();
        let text = format!("```python\n{code}```");
        let parts = split_message(&text, 200);
        assert!(parts.len() > 1);
        for part in &parts[1..] {
            let first_code_line = part.lines().nth(1).unwrap();
            assert!(first_code_line.starts_with("    let"), "{part:?}");
        }
    }

    #[test]
    fn parts_follow_paragraphs_and_keep_code_whole() {
        let text = "Hi there!\n\nFirst point.\nStill first.\n\n```\na\n\nb\n```\n\nBye.";
        assert_eq!(
            split_parts(text, 2000),
            vec![
                "Hi there!",
                "First point.\nStill first.",
                "```\na\n\nb\n```",
                "Bye."
            ]
        );
        assert!(split_parts("  \n\n ", 2000).is_empty());
    }
}

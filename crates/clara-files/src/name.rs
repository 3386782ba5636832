//! A file name as a person sent it, made safe to be one segment of a key.
//!
//! The name comes from outside (a Telegram document, a browser upload) and is
//! not trusted: it may be a path (`../../etc/passwd`, `C:\fakepath\a.pdf`), a
//! hidden file (`.bashrc`), carry control or bidi-override characters that
//! disguise its extension, or be very long. The result is the name a person
//! would recognise, with its extension kept.

/// The most bytes a sanitised name has: well under a filesystem's 255 per
/// segment, with room for the id a key puts in front.
pub const MAX_NAME_BYTES: usize = 120;

/// The longest extension kept when a long name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// The name given when nothing usable is left (`..`, `///`, only control characters).
const FALLBACK: &str = "file";

/// `name` as one safe key segment: only its last path component, control,
/// invisible and bidi characters removed, characters object stores escape
/// replaced (`[`/`]` become parentheses, the rest `_`), no leading dots or
/// spaces, no trailing dots or spaces, at most [`MAX_NAME_BYTES`] bytes with
/// the extension kept; `file` when nothing is left.
pub fn sanitise_name(name: &str) -> String {
    // Browsers and some clients send the whole path; the person meant its last part.
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean = String::with_capacity(base.len());
    for c in base.chars() {
        if is_invisible(c) {
            continue;
        }
        let c = match c {
            '[' | '{' => '(',
            ']' | '}' => ')',
            c if is_reserved(c) => '_',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        // Runs of spaces (often left where characters were removed) become one.
        if c == ' ' && clean.ends_with(' ') {
            continue;
        }
        clean.push(c);
    }
    let clean = trim_edges(&clean);
    let short = shorten(clean, MAX_NAME_BYTES);
    if short.is_empty() {
        FALLBACK.to_owned()
    } else {
        short
    }
}

/// Whether `segment` may stand in a key as it is: what [`sanitise_name`]
/// produces, a date or an id. Non-empty, at most 255 bytes, not starting with
/// a dot, without invisible or reserved characters.
pub fn is_clean_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 255
        && !segment.starts_with('.')
        && !segment.chars().any(|c| is_invisible(c) || is_reserved(c))
}

/// Characters that carry nothing visible, or make a name look other than it is
/// (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Path separators and the characters object_store percent-encodes in a key
/// (AWS and Google advise against them), which would make the stored name
/// differ from the key.
fn is_reserved(c: char) -> bool {
    matches!(
        c,
        '/' | '\\'
            | '%'
            | '`'
            | '"'
            | '<'
            | '>'
            | '~'
            | '#'
            | '|'
            | '*'
            | '?'
            | ':'
            | '^'
            | '['
            | ']'
            | '{'
            | '}'
    )
}

/// Without leading dots and spaces (a hidden file, a name that is only dots)
/// and trailing ones (Windows drops them, so two names would meet).
fn trim_edges(name: &str) -> &str {
    name.trim_matches(|c| c == '.' || c == ' ')
}

/// `name` in at most `max` bytes, cut on a character boundary; a name that
/// has to be cut keeps its extension, so its type stays recognisable.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let extension = name
        .rsplit_once('.')
        .filter(|(stem, ext)| {
            !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= MAX_EXTENSION_BYTES
                && ext.chars().all(char::is_alphanumeric)
        })
        .map(|(_, ext)| ext);
    match extension {
        Some(ext) => {
            let stem = &name[..name.len() - ext.len() - 1];
            let stem = trim_edges(cut(stem, max - ext.len() - 1));
            if stem.is_empty() {
                format!("{FALLBACK}.{ext}")
            } else {
                format!("{stem}.{ext}")
            }
        }
        None => trim_edges(cut(name, max)).to_owned(),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_keeps_only_its_last_part() {
        assert_eq!(sanitise_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_name(r"C:\fakepath\report.pdf"), "report.pdf");
        assert_eq!(sanitise_name("a/b/"), "file");
        assert_eq!(sanitise_name(".."), "file");
        assert_eq!(sanitise_name(""), "file");
    }

    #[test]
    fn hidden_files_lose_their_leading_dots() {
        assert_eq!(sanitise_name(".bashrc"), "bashrc");
        assert_eq!(sanitise_name("...env.local"), "env.local");
        assert_eq!(sanitise_name(" notes.txt. "), "notes.txt");
    }

    #[test]
    fn control_and_bidi_characters_are_removed_and_reserved_ones_replaced() {
        assert_eq!(sanitise_name("in\nvoice\u{0}.pdf"), "invoice.pdf");
        assert_eq!(sanitise_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitise_name("a\u{200B}b.txt"), "ab.txt");
        assert_eq!(sanitise_name("q3: what?*.csv"), "q3_ what__.csv");
        assert_eq!(
            sanitise_name("report [final] {v2}.pdf"),
            "report (final) (v2).pdf"
        );
        assert_eq!(sanitise_name("100%#1~.txt"), "100__1_.txt");
        assert_eq!(sanitise_name("a \t  b.txt"), "a b.txt");
    }

    #[test]
    fn unicode_names_stay_as_they_are() {
        assert_eq!(sanitise_name("Отчёт за май.pdf"), "Отчёт за май.pdf");
        assert_eq!(sanitise_name("写真 🐈.jpg"), "写真 🐈.jpg");
        assert_eq!(sanitise_name("café.ogg"), "café.ogg");
    }

    #[test]
    fn very_long_names_are_cut_and_keep_their_extension() {
        let long = format!("{}.pdf", "a".repeat(500));
        let short = sanitise_name(&long);
        assert_eq!(short.len(), MAX_NAME_BYTES);
        assert!(short.ends_with("aaa.pdf"), "{short}");

        // Multi-byte characters are never split.
        let cyrillic = format!("{}.docx", "ж".repeat(300));
        let short = sanitise_name(&cyrillic);
        assert!(short.len() <= MAX_NAME_BYTES);
        assert!(short.ends_with("жж.docx"), "{short}");

        // Without an extension worth keeping, the name is simply cut.
        let no_ext = "b".repeat(300);
        assert_eq!(sanitise_name(&no_ext), "b".repeat(MAX_NAME_BYTES));
        let odd_ext = format!("x.{}", "y".repeat(300));
        assert_eq!(sanitise_name(&odd_ext).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn what_comes_out_is_a_clean_segment() {
        let hostile = [
            "../../etc/passwd",
            ".bashrc",
            "a\u{202E}b",
            "%2e%2e",
            "con:..",
            "   ",
            "\u{FEFF}.",
            "ok.txt",
        ];
        for name in hostile {
            let clean = sanitise_name(name);
            assert!(is_clean_segment(&clean), "{name:?} gave {clean:?}");
        }
        assert!(!is_clean_segment(".x"));
        assert!(!is_clean_segment(".."));
        assert!(!is_clean_segment("a/b"));
        assert!(!is_clean_segment(""));
        assert!(!is_clean_segment(&"z".repeat(256)));
    }
}

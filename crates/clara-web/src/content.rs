//! What a response holds, and its bytes as text.
//!
//! HTML is turned into readable text; other text (plain, Markdown, CSV, JSON,
//! XML) passes through; anything else (images, PDFs, archives, audio) is
//! refused before its body is read. The charset comes from a byte-order mark,
//! else the `Content-Type` header, else (for HTML) a `<meta>` in the first
//! kilobyte, else UTF-8 when the bytes are UTF-8 and windows-1252 (what
//! browsers assume) when not.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How a response body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An HTML page: reduced to its readable text.
    Html,
    /// Text of another kind, kept as it is.
    Text,
}

/// A `Content-Type` header, parsed: its media type (lowercase) and charset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentType {
    /// `text/html`, `application/json`…; empty when the header is missing.
    pub essence: String,
    /// The `charset` parameter, when given.
    pub charset: Option<String>,
}

impl ContentType {
    /// Parses a header value (`text/html; charset="UTF-8"`).
    pub fn parse(header: &str) -> Self {
        let mut parts = header.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let charset = parts.find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
                .filter(|value| !value.is_empty())
        });
        Self { essence, charset }
    }

    /// How to read a body of this type, or `None` when it is not text.
    /// `None` is also the answer for a missing type: see [`sniff`].
    pub fn kind(&self) -> Option<Kind> {
        let essence = self.essence.as_str();
        match essence {
            "text/html" | "application/xhtml+xml" => Some(Kind::Html),
            "application/json"
            | "application/xml"
            | "application/javascript"
            | "application/ecmascript"
            | "application/x-javascript"
            | "application/yaml"
            | "application/x-yaml"
            | "application/toml"
            | "application/x-ndjson"
            | "application/sql"
            | "application/x-sh" => Some(Kind::Text),
            _ if essence.starts_with("text/") => Some(Kind::Text),
            _ if essence.starts_with("application/")
                && (essence.ends_with("+json") || essence.ends_with("+xml")) =>
            {
                Some(Kind::Text)
            }
            _ => None,
        }
    }
}

/// How to read a body that came without a `Content-Type`: HTML when it looks
/// like a page, text when it has no NUL byte, `None` (binary) otherwise.
pub fn sniff(head: &[u8]) -> Option<Kind> {
    if head.contains(&0) {
        return None;
    }
    let start: Vec<u8> = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(256)
        .map(u8::to_ascii_lowercase)
        .collect();
    let html = [b"<!doctype html".as_slice(), b"<html", b"<head", b"<body"]
        .iter()
        .any(|tag| start.starts_with(tag));
    Some(if html { Kind::Html } else { Kind::Text })
}

/// `body` as text, by the rules in the module's doc. `header_charset` is the
/// `Content-Type`'s; an unknown label is ignored.
pub fn decode(body: &[u8], header_charset: Option<&str>, kind: Kind) -> String {
    let declared = header_charset
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .or_else(|| match kind {
            Kind::Html => meta_charset(body),
            Kind::Text => None,
        });
    let encoding = declared.unwrap_or_else(|| {
        if std::str::from_utf8(body).is_ok() || utf8_cut_at_end(body) {
            UTF_8
        } else {
            WINDOWS_1252
        }
    });
    // `decode` honours a byte-order mark over the declared encoding, as the
    // HTML standard says.
    let (text, _, _) = encoding.decode(body);
    text.into_owned()
}

/// Whether `body` is UTF-8 but for a character cut by the size cap. Only
/// UTF-8 already seen before the cut counts as evidence: ASCII followed by a
/// lone high byte is more likely windows-1252.
fn utf8_cut_at_end(body: &[u8]) -> bool {
    match std::str::from_utf8(body) {
        Ok(_) => true,
        Err(error) => {
            let valid = &body[..error.valid_up_to()];
            error.error_len().is_none() && body.len() - valid.len() < 4 && !valid.is_ascii()
        }
    }
}

/// The charset a page declares in a `<meta>` within its first kilobyte:
/// `<meta charset="…">` or `<meta http-equiv="Content-Type" content="…;
/// charset=…">`. A simplified form of the standard's prescan.
fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head: Vec<u8> = body.iter().take(1024).map(u8::to_ascii_lowercase).collect();
    let mut rest = head.as_slice();
    while let Some(at) = find(rest, b"<meta") {
        rest = &rest[at + 5..];
        let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
        let tag = &rest[..end];
        if let Some(at) = find(tag, b"charset") {
            let value = tag[at + 7..]
                .iter()
                .skip_while(|b| b.is_ascii_whitespace() || **b == b'=')
                .skip_while(|b| **b == b'"' || **b == b'\'')
                .take_while(|b| {
                    !(b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b';' | b'/'))
                })
                .copied()
                .collect::<Vec<u8>>();
            if let Some(encoding) = Encoding::for_label(&value) {
                // A page cannot truly be UTF-16 if its meta was read as ASCII.
                return Some(
                    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
                        UTF_8
                    } else {
                        encoding
                    },
                );
            }
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_parse() {
        let ct = ContentType::parse("Text/HTML; Charset=\"ISO-8859-1\"");
        assert_eq!(ct.essence, "text/html");
        assert_eq!(ct.charset.as_deref(), Some("ISO-8859-1"));
        assert_eq!(ContentType::parse("").essence, "");
        assert_eq!(ContentType::parse("application/json").charset, None);
    }

    #[test]
    fn html_and_text_are_read_and_the_rest_refused() {
        let kind = |t: &str| ContentType::parse(t).kind();
        assert_eq!(kind("text/html; charset=utf-8"), Some(Kind::Html));
        assert_eq!(kind("application/xhtml+xml"), Some(Kind::Html));
        assert_eq!(kind("text/plain"), Some(Kind::Text));
        assert_eq!(kind("text/markdown"), Some(Kind::Text));
        assert_eq!(kind("application/json"), Some(Kind::Text));
        assert_eq!(kind("application/ld+json"), Some(Kind::Text));
        assert_eq!(kind("application/rss+xml"), Some(Kind::Text));
        for refused in [
            "image/png",
            "application/pdf",
            "application/octet-stream",
            "video/mp4",
            "application/zip",
            "",
        ] {
            assert_eq!(kind(refused), None, "{refused}");
        }
    }

    #[test]
    fn untyped_bodies_are_sniffed() {
        assert_eq!(sniff(b"  <!DOCTYPE html><html>"), Some(Kind::Html));
        assert_eq!(sniff(b"<HTML><body>hi"), Some(Kind::Html));
        assert_eq!(sniff(b"just words"), Some(Kind::Text));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0"), None);
    }

    #[test]
    fn the_charset_comes_from_the_header_then_the_meta_then_the_bytes() {
        // "café" in Latin-1.
        let latin1 = b"caf\xe9";
        assert_eq!(decode(latin1, Some("iso-8859-1"), Kind::Text), "café");
        // No header: not UTF-8, so windows-1252.
        assert_eq!(decode(latin1, None, Kind::Text), "café");
        assert_eq!(decode("café".as_bytes(), None, Kind::Text), "café");
        let page = b"<html><head><meta charset=\"windows-1251\"></head><body>\xcf\xf0\xe8\xe2\xe5\xf2</body></html>";
        assert!(decode(page, None, Kind::Html).contains("Привет"));
        let http_equiv = b"<meta http-equiv='Content-Type' content='text/html; charset=koi8-r'>\xf0\xd2\xc9\xd7\xc5\xd4";
        assert!(decode(http_equiv, None, Kind::Html).contains("Привет"));
        // The header wins over the meta.
        let both = b"<meta charset=windows-1251>caf\xc3\xa9";
        assert!(decode(both, Some("utf-8"), Kind::Html).contains("café"));
        // A byte-order mark wins over everything.
        assert_eq!(
            decode(b"\xef\xbb\xbfcaf\xc3\xa9", Some("iso-8859-1"), Kind::Text),
            "café"
        );
        // UTF-8 cut in the middle of a character by the cap stays UTF-8.
        assert!(decode(b"caf\xc3\xa9 \xc3", None, Kind::Text).starts_with("café"));
    }
}

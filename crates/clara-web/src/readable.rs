//! An HTML page as the text a person would read on it.
//!
//! One pass over html5gum's tokens, no DOM:
//! - scripts, styles, navigation, footers, asides, forms, embedded frames and
//!   hidden elements are dropped, and so is a `<header>` outside the main
//!   content (the site's banner);
//! - headings become `#` lines, list items `- ` lines, table cells are joined
//!   with ` | `, paragraphs are separated by a blank line, `<pre>` keeps its
//!   spacing;
//! - a link reads `text (absolute url)`;
//! - when the page marks its main content (`<main>`, `<article>`) and that has
//!   some substance, only it is kept.

use html5gum::{DefaultEmitter, StartTag, Token, Tokenizer};
use reqwest::Url;

/// A page's title and text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readable {
    /// The `<title>`, whitespace collapsed; `None` when missing or empty.
    pub title: Option<String>,
    /// The readable text.
    pub text: String,
}

/// Elements whose content is never text for a reader.
const DROPPED: &[&[u8]] = &[
    b"script",
    b"style",
    b"noscript",
    b"template",
    b"svg",
    b"math",
    b"nav",
    b"footer",
    b"aside",
    b"form",
    b"iframe",
    b"object",
    b"canvas",
    b"button",
    b"select",
    b"dialog",
    b"video",
    b"audio",
];

/// Elements whose end tag may be left out: hiding one cannot be tracked to
/// its end without a tree, so `hidden` on them is ignored rather than risk
/// dropping the rest of the page.
const OPTIONAL_END: &[&[u8]] = &[
    b"p",
    b"li",
    b"dt",
    b"dd",
    b"option",
    b"optgroup",
    b"tr",
    b"td",
    b"th",
    b"thead",
    b"tbody",
    b"tfoot",
    b"colgroup",
    b"caption",
    b"rp",
    b"rt",
    b"html",
    b"head",
    b"body",
];

/// Elements that never have an end tag.
const VOID: &[&[u8]] = &[
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta",
    b"source", b"track", b"wbr",
];

/// Elements that start and end a block of text.
const BLOCKS: &[&[u8]] = &[
    b"p",
    b"div",
    b"section",
    b"header",
    b"blockquote",
    b"figure",
    b"figcaption",
    b"table",
    b"thead",
    b"tbody",
    b"tfoot",
    b"caption",
    b"address",
    b"details",
    b"summary",
    b"dl",
    b"hr",
    b"body",
    b"center",
    b"fieldset",
    b"legend",
];

/// Main content shorter than this is probably a teaser: the whole page is kept.
const MAIN_MIN_CHARS: usize = 200;

/// The readable text of `html`, its links made absolute against `base`.
pub fn extract(html: &str, base: Option<&Url>) -> Readable {
    let mut emitter = DefaultEmitter::default();
    // Without this the tokenizer would read a script's `<` as tags.
    emitter.naively_switch_states(true);
    let mut reader = Reader::new(base);
    for Ok(token) in Tokenizer::new_with_emitter(html, emitter) {
        match token {
            Token::StartTag(tag) => reader.start(&tag),
            Token::EndTag(tag) => reader.end(&tag.name),
            Token::String(text) => reader.text(&String::from_utf8_lossy(&text)),
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    reader.finish()
}

/// The text of an HTML fragment (a search snippet with `<strong>`
/// highlights and entities), tags removed and whitespace collapsed.
pub fn inline_text(fragment: &str) -> String {
    let mut text = String::new();
    for Ok(token) in Tokenizer::new(fragment) {
        if let Token::String(part) = token {
            text.push_str(&String::from_utf8_lossy(&part));
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A finished line of text.
struct Block {
    text: String,
    /// Inside `<main>` or `<article>`.
    main: bool,
    /// A list item, table row or line break: no blank line before it when it
    /// follows another such line.
    tight: bool,
}

struct Reader<'a> {
    base: Option<&'a Url>,
    blocks: Vec<Block>,
    line: String,
    prefix: String,
    tight: bool,
    /// The dropped element being skipped and how deeply it is nested in itself.
    skipping: Option<(Vec<u8>, usize)>,
    in_title: bool,
    title: String,
    pre: usize,
    main: usize,
    lists: usize,
    /// The open link: its URL and where its text starts in `line`.
    link: Option<(String, usize)>,
}

fn is(name: &[u8], list: &[&[u8]]) -> bool {
    list.contains(&name)
}

fn heading_level(name: &[u8]) -> Option<usize> {
    match name {
        [b'h', digit @ b'1'..=b'6'] => Some(usize::from(digit - b'0')),
        _ => None,
    }
}

fn attribute<'t>(tag: &'t StartTag<()>, name: &str) -> Option<std::borrow::Cow<'t, str>> {
    tag.attributes
        .get(name.as_bytes())
        .map(|value| String::from_utf8_lossy(value))
}

impl<'a> Reader<'a> {
    fn new(base: Option<&'a Url>) -> Self {
        Self {
            base,
            blocks: Vec::new(),
            line: String::new(),
            prefix: String::new(),
            tight: false,
            skipping: None,
            in_title: false,
            title: String::new(),
            pre: 0,
            main: 0,
            lists: 0,
            link: None,
        }
    }

    fn hidden(tag: &StartTag<()>) -> bool {
        let name = tag.name.as_slice();
        if is(name, OPTIONAL_END) || is(name, VOID) {
            return false;
        }
        tag.attributes.contains_key(b"hidden".as_slice())
            || attribute(tag, "aria-hidden").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || attribute(tag, "role").is_some_and(|v| v.trim().eq_ignore_ascii_case("navigation"))
    }

    fn start(&mut self, tag: &StartTag<()>) {
        let name = tag.name.as_slice();
        if let Some((skipped, depth)) = &mut self.skipping {
            if skipped.as_slice() == name && !tag.self_closing {
                *depth += 1;
            }
            return;
        }
        let dropped =
            is(name, DROPPED) || (name == b"header" && self.main == 0) || Self::hidden(tag);
        if dropped {
            if !tag.self_closing && !is(name, VOID) {
                self.skipping = Some((name.to_vec(), 1));
            }
            return;
        }
        if let Some(level) = heading_level(name) {
            self.close_block();
            self.prefix = format!("{} ", "#".repeat(level));
            return;
        }
        match name {
            b"title" => self.in_title = true,
            b"main" | b"article" => {
                self.flush();
                self.main += 1;
            }
            b"pre" => {
                self.flush();
                self.pre += 1;
            }
            b"ul" | b"ol" | b"menu" => {
                self.flush();
                self.lists += 1;
            }
            b"li" => {
                self.close_block();
                self.prefix = format!("{}- ", "  ".repeat(self.lists.saturating_sub(1)));
                self.tight = true;
            }
            b"dt" | b"dd" | b"tr" => {
                self.close_block();
                self.tight = true;
            }
            b"br" => {
                // The line before a break and the one after belong together.
                self.tight = true;
                self.flush();
                self.tight = true;
            }
            b"td" | b"th" if !self.line.trim().is_empty() => {
                self.line.truncate(self.line.trim_end().len());
                self.line.push_str(" | ");
            }
            b"a" => {
                self.link = attribute(tag, "href")
                    .and_then(|href| self.absolute(&href))
                    .map(|href| (href, self.line.len()));
            }
            _ if is(name, BLOCKS) => self.flush(),
            _ => {}
        }
    }

    fn end(&mut self, name: &[u8]) {
        if let Some((skipped, depth)) = &mut self.skipping {
            if skipped.as_slice() == name {
                *depth -= 1;
                if *depth == 0 {
                    self.skipping = None;
                }
            } else if name == b"body" || name == b"html" {
                // An unclosed dropped element ends with the page.
                self.skipping = None;
            }
            return;
        }
        if heading_level(name).is_some() {
            self.close_block();
            return;
        }
        match name {
            b"title" => self.in_title = false,
            b"a" => self.close_link(),
            b"main" | b"article" => {
                self.flush();
                self.main = self.main.saturating_sub(1);
            }
            b"pre" => {
                self.flush();
                self.pre = self.pre.saturating_sub(1);
            }
            b"ul" | b"ol" | b"menu" => {
                self.flush();
                self.lists = self.lists.saturating_sub(1);
            }
            b"li" | b"dt" | b"dd" | b"tr" => self.close_block(),
            _ if is(name, BLOCKS) => self.flush(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if self.skipping.is_some() {
            return;
        }
        if self.in_title {
            self.title.push_str(text);
            return;
        }
        if self.pre > 0 {
            self.line.push_str(text);
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() {
                if !self.line.is_empty() && !self.line.ends_with(' ') {
                    self.line.push(' ');
                }
            } else {
                self.line.push(c);
            }
        }
    }

    /// `href` made absolute, or `None` for links that lead nowhere a reader
    /// could follow (scripts, same-page anchors).
    fn absolute(&self, href: &str) -> Option<String> {
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') {
            return None;
        }
        let url = match self.base {
            Some(base) => base.join(href).ok()?,
            None => Url::parse(href).ok()?,
        };
        matches!(url.scheme(), "http" | "https" | "mailto" | "ftp").then(|| url.to_string())
    }

    fn close_link(&mut self) {
        let Some((href, start)) = self.link.take() else {
            return;
        };
        let Some(text) = self.line.get(start..) else {
            return;
        };
        let text = text.trim();
        if text.is_empty() || text == href || href.trim_end_matches('/') == text {
            return;
        }
        self.line.truncate(self.line.trim_end().len());
        self.line.push_str(&format!(" ({href})"));
    }

    /// Ends the current line. A line with no text yet keeps its prefix, so
    /// `<li><p>text` still reads `- text`.
    fn flush(&mut self) {
        // A link left open across a block boundary closes with its line.
        self.close_link();
        let text = if self.pre > 0 {
            self.line.trim_matches('\n').trim_end().to_owned()
        } else {
            self.line.trim().to_owned()
        };
        self.line.clear();
        if text.is_empty() {
            return;
        }
        self.blocks.push(Block {
            text: format!("{}{text}", self.prefix),
            main: self.main > 0,
            tight: self.tight,
        });
        self.prefix.clear();
        self.tight = false;
    }

    /// Ends the current line and whatever item or heading it was.
    fn close_block(&mut self) {
        self.flush();
        self.prefix.clear();
        self.tight = false;
    }

    fn finish(mut self) -> Readable {
        self.flush();
        let main_chars: usize = self
            .blocks
            .iter()
            .filter(|b| b.main)
            .map(|b| b.text.len())
            .sum();
        let only_main = main_chars >= MAIN_MIN_CHARS;
        let mut text = String::new();
        let mut previous_tight = false;
        for block in self.blocks.iter().filter(|b| b.main || !only_main) {
            if !text.is_empty() {
                text.push_str(if block.tight && previous_tight {
                    "\n"
                } else {
                    "\n\n"
                });
            }
            text.push_str(&block.text);
            previous_tight = block.tight;
        }
        let title = self.title.split_whitespace().collect::<Vec<_>>().join(" ");
        Readable {
            title: (!title.is_empty()).then_some(title),
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(html: &str) -> Readable {
        let base = Url::parse("https://example.com/docs/page.html").unwrap();
        extract(html, Some(&base))
    }

    #[test]
    fn title_headings_paragraphs_lists_and_links() {
        let page = read(
            r#"<!doctype html><html><head><title> The
            Title </title><style>p { color: red }</style>
            <script>var x = "<p>not text</p>";</script></head>
            <body>
            <h1>Main &amp; heading</h1>
            <p>First   paragraph with a <a href="/other">link</a> and
            <a href="https://example.org/">https://example.org/</a>.</p>
            <ul><li>one</li><li>two <b>bold</b></li></ul>
            <p>Caf&eacute;&nbsp;au lait &lt;3</p>
            </body></html>"#,
        );
        assert_eq!(page.title.as_deref(), Some("The Title"));
        assert_eq!(
            page.text,
            "# Main & heading\n\nFirst paragraph with a link (https://example.com/other) and https://example.org/.\n\n- one\n- two bold\n\nCafé au lait <3"
        );
    }

    #[test]
    fn navigation_footers_scripts_and_hidden_parts_are_dropped() {
        let page = read(
            r#"<body><header><a href="/">Site</a> <nav><a href="/a">A</a></nav></header>
            <nav><ul><li>Menu</li></ul></nav>
            <div hidden>secret hidden</div>
            <div aria-hidden="true">also hidden</div>
            <p>Kept.</p>
            <noscript>enable js</noscript>
            <form><input name=q><button>Go</button></form>
            <footer>Copyright</footer>
            <aside>Related</aside></body>"#,
        );
        assert_eq!(page.text, "Kept.");
    }

    #[test]
    fn nested_dropped_elements_end_at_their_own_end_tag() {
        let page = read("<nav><nav>x</nav>still nav</nav><p>after</p>");
        assert_eq!(page.text, "after");
        // An unclosed dropped element ends with the body.
        let page = read("<p>a</p><aside>open</body><p>b</p>");
        assert_eq!(page.text, "a\n\nb");
    }

    #[test]
    fn main_content_is_preferred_when_it_has_substance() {
        let long = "word ".repeat(60);
        let page = read(&format!(
            "<div>Sidebar junk</div><main><h2>Story</h2><p>{long}</p></main><div>More junk</div>"
        ));
        assert!(page.text.starts_with("## Story"), "{}", page.text);
        assert!(!page.text.contains("junk"));
        let short = read("<div>Intro</div><article><p>Teaser</p></article><div>Rest</div>");
        assert_eq!(short.text, "Intro\n\nTeaser\n\nRest");
    }

    #[test]
    fn tables_pre_and_breaks() {
        let page = read(
            "<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>31</td></tr></table>\
             <pre>fn main() {\n    x();\n}</pre><p>line one<br>line two</p>",
        );
        assert_eq!(
            page.text,
            "Name | Age\nAnn | 31\n\nfn main() {\n    x();\n}\n\nline one\nline two"
        );
    }

    #[test]
    fn script_links_and_anchors_are_not_shown() {
        let page = read(
            r##"<p><a href="javascript:alert(1)">click</a> <a href="#top">top</a> <a href="mailto:a@b.c">mail</a></p>"##,
        );
        assert_eq!(page.text, "click top mail (mailto:a@b.c)");
    }

    #[test]
    fn inline_text_drops_tags_and_decodes_entities() {
        assert_eq!(
            inline_text("The <strong>best</strong> &amp; <em>only</em>\n  one"),
            "The best & only one"
        );
        assert_eq!(inline_text("a < b"), "a < b");
    }

    #[test]
    fn an_empty_or_textless_page_gives_empty_text() {
        assert_eq!(read("").text, "");
        assert_eq!(read("<script>only()</script>").text, "");
        assert_eq!(read("<title> </title>").title, None);
    }
}

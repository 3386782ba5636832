//! Brave's Web Search API: `GET {base}/res/v1/web/search?q=…&count=…` with
//! `Accept: application/json` and `X-Subscription-Token: <key>`; the answer
//! is `{"type": "search", "query": {…}, "web": {"type": "search", "results":
//! [{"title", "url", "description", "age", …}]}, …}`. Titles and descriptions
//! carry `<strong>` highlights and HTML entities, removed here.

use super::{SearchHit, SearchResults};
use crate::readable::inline_text;
use clara_core::Secret;
use serde::Deserialize;

/// Brave's address, when `brave_base_url` is not set.
pub const DEFAULT_BASE: &str = "https://api.search.brave.com";

/// The most results Brave returns for one request.
const MAX_COUNT: usize = 20;

/// The request for `query`.
pub fn request(
    http: &reqwest::Client,
    base: &str,
    key: &Secret,
    query: &str,
    max_results: usize,
) -> reqwest::RequestBuilder {
    let count = max_results.clamp(1, MAX_COUNT).to_string();
    let params = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("count", &count)
        .finish();
    http.get(format!(
        "{}/res/v1/web/search?{params}",
        base.trim_end_matches('/')
    ))
    .header(reqwest::header::ACCEPT, "application/json")
    .header("X-Subscription-Token", key.expose())
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "type")]
    kind: String,
    // A query with no web results has no `web` section.
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default)]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    description: String,
}

/// The results in Brave's answer, or `None` when it is not one.
pub fn parse(body: &str) -> Option<SearchResults> {
    let answer: Answer = serde_json::from_str(body).ok()?;
    if answer.kind != "search" {
        return None;
    }
    Some(SearchResults {
        answer: None,
        hits: answer
            .web
            .map(|web| web.results)
            .unwrap_or_default()
            .into_iter()
            .map(|hit| SearchHit {
                title: inline_text(&hit.title),
                url: hit.url,
                snippet: inline_text(&hit.description),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_answer_parses_with_highlights_removed() {
        let body = r#"{
            "query": {"original": "rust html tokenizer", "show_strict_warning": false,
                      "is_navigational": false, "spellcheck_off": true, "country": "us"},
            "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": false}]},
            "type": "search",
            "web": {
                "type": "search",
                "results": [
                    {"title": "GitHub - untitaker/<strong>html5gum</strong>", "url": "https://github.com/untitaker/html5gum",
                     "is_source_local": false, "is_source_both": false,
                     "description": "A WHATWG-compliant <strong>HTML5</strong> tokenizer &amp; tag soup parser.",
                     "profile": {"name": "GitHub", "url": "https://github.com"}, "language": "en",
                     "family_friendly": true, "type": "search_result", "subtype": "generic", "age": "March 3, 2026"}
                ],
                "family_friendly": true
            }
        }"#;
        let results = parse(body).unwrap();
        assert_eq!(results.answer, None);
        assert_eq!(
            results.hits,
            vec![SearchHit {
                title: "GitHub - untitaker/html5gum".into(),
                url: "https://github.com/untitaker/html5gum".into(),
                snippet: "A WHATWG-compliant HTML5 tokenizer & tag soup parser.".into(),
            }]
        );
    }

    #[test]
    fn no_web_section_and_garbage() {
        let results = parse(r#"{"type":"search","query":{"original":"zzzz"}}"#).unwrap();
        assert!(results.hits.is_empty());
        assert_eq!(
            parse(r#"{"type":"ErrorResponse","error":{"code":"SUBSCRIPTION_TOKEN_INVALID"}}"#),
            None
        );
        assert_eq!(parse("not json"), None);
    }
}

//! Tavily's search API (`tavily-python` 0.8's client is the reference):
//! `POST {base}/search` with `Authorization: Bearer <key>` and
//! `{"query", "max_results", "search_depth", "include_answer", "topic"}`;
//! the answer is `{"query", "answer", "results": [{"title", "url",
//! "content", "score", "raw_content"}], "response_time"}`.

use super::{SearchHit, SearchResults};
use clara_core::Secret;
use serde::Deserialize;

/// Tavily's address, when `tavily_base_url` is not set.
pub const DEFAULT_BASE: &str = "https://api.tavily.com";

/// The request for `query`.
pub fn request(
    http: &reqwest::Client,
    base: &str,
    key: &Secret,
    query: &str,
    max_results: usize,
) -> reqwest::RequestBuilder {
    http.post(format!("{}/search", base.trim_end_matches('/')))
        .bearer_auth(key.expose())
        .json(&serde_json::json!({
            "query": query,
            "max_results": max_results,
            "search_depth": "basic",
            "topic": "general",
            "include_answer": true,
        }))
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    answer: Option<String>,
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    content: String,
}

/// The results in Tavily's answer, or `None` when it is not one.
pub fn parse(body: &str) -> Option<SearchResults> {
    let answer: Answer = serde_json::from_str(body).ok()?;
    Some(SearchResults {
        answer: answer.answer.filter(|a| !a.trim().is_empty()),
        hits: answer
            .results
            .into_iter()
            .map(|hit| SearchHit {
                title: hit.title,
                url: hit.url,
                snippet: hit.content,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_answer_parses() {
        let body = r#"{
            "query": "who maintains html5gum",
            "follow_up_questions": null,
            "answer": "html5gum is maintained by Markus Unterwaditzer.",
            "images": [],
            "results": [
                {"url": "https://github.com/untitaker/html5gum", "title": "untitaker/html5gum",
                 "content": "A WHATWG-compliant HTML5 tokenizer.", "score": 0.91, "raw_content": null},
                {"url": "https://docs.rs/html5gum", "title": "html5gum - Rust",
                 "content": "html5gum is a WHATWG-compliant HTML tokenizer.", "score": 0.85, "raw_content": null}
            ],
            "response_time": 1.09,
            "request_id": "123e4567-e89b-12d3-a456-426614174111"
        }"#;
        let results = parse(body).unwrap();
        assert_eq!(
            results.answer.as_deref(),
            Some("html5gum is maintained by Markus Unterwaditzer.")
        );
        assert_eq!(results.hits.len(), 2);
        assert_eq!(results.hits[1].url, "https://docs.rs/html5gum");
        assert_eq!(
            results.hits[0].snippet,
            "A WHATWG-compliant HTML5 tokenizer."
        );
    }

    #[test]
    fn no_answer_and_garbage() {
        let results = parse(r#"{"query":"q","answer":null,"results":[]}"#).unwrap();
        assert_eq!(results, SearchResults::default());
        assert_eq!(parse("<html>502 Bad Gateway</html>"), None);
        assert_eq!(parse(r#"{"detail":{"error":"Unauthorized"}}"#), None);
    }
}

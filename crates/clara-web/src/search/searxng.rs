//! A SearXNG instance's search API: `GET {url}/search?q=…&format=json`
//! (the instance must list `json` under `search.formats`, else it answers
//! 403); the answer is `{"query", "number_of_results", "results": [{"url",
//! "title", "content", "engine", "score", …}], "answers": […], "infoboxes":
//! [{"infobox", "content", …}], "suggestions": […], …}`. Answers are strings
//! in older versions and `{"answer": …}` objects in newer ones.

use super::{SearchHit, SearchResults};
use serde::Deserialize;

/// The request for `query` to the instance at `url` (with or without a
/// trailing `/search`).
pub fn request(http: &reqwest::Client, url: &str, query: &str) -> reqwest::RequestBuilder {
    let base = url.trim_end_matches('/');
    let base = base.strip_suffix("/search").unwrap_or(base);
    let params = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", query)
        .append_pair("format", "json")
        .finish();
    http.get(format!("{base}/search?{params}"))
        .header(reqwest::header::ACCEPT, "application/json")
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<Hit>,
    #[serde(default)]
    answers: Vec<Said>,
    #[serde(default)]
    infoboxes: Vec<Infobox>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default)]
    title: String,
    // Some engines' results (a map, an image) have no page URL.
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Said {
    Text(String),
    Object {
        #[serde(default)]
        answer: Option<String>,
    },
}

#[derive(Deserialize)]
struct Infobox {
    #[serde(default)]
    infobox: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

/// The results in the instance's answer, or `None` when it is not one.
pub fn parse(body: &str) -> Option<SearchResults> {
    let answer: Answer = serde_json::from_str(body).ok()?;
    let said = answer.answers.into_iter().find_map(|said| match said {
        Said::Text(text) => Some(text),
        Said::Object { answer } => answer,
    });
    let infobox = answer.infoboxes.into_iter().find_map(|info| {
        let content = info.content.filter(|c| !c.trim().is_empty())?;
        Some(match info.infobox {
            Some(name) if !name.trim().is_empty() => format!("{name}: {content}"),
            _ => content,
        })
    });
    Some(SearchResults {
        answer: said.or(infobox).filter(|a| !a.trim().is_empty()),
        hits: answer
            .results
            .into_iter()
            .filter_map(|hit| {
                Some(SearchHit {
                    title: hit.title,
                    url: hit.url.filter(|u| !u.is_empty())?,
                    snippet: hit.content.unwrap_or_default(),
                })
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
            "query": "rust tokenizer",
            "number_of_results": 0,
            "results": [
                {"url": "https://github.com/untitaker/html5gum", "title": "untitaker/html5gum",
                 "content": "A WHATWG-compliant HTML5 tokenizer.", "publishedDate": null,
                 "thumbnail": "", "engine": "duckduckgo", "template": "default.html",
                 "parsed_url": ["https", "github.com", "/untitaker/html5gum", "", "", ""],
                 "img_src": "", "priority": "", "engines": ["duckduckgo", "brave"],
                 "positions": [1, 2], "score": 3.0, "category": "general"},
                {"title": "A map", "engine": "openstreetmap", "template": "map.html", "score": 0.5}
            ],
            "answers": [{"answer": "A tokenizer splits text.", "url": null, "engine": "wikipedia", "template": "answer/legacy.html"}],
            "corrections": [],
            "infoboxes": [],
            "suggestions": ["rust lexer"],
            "unresponsive_engines": [["google", "timeout"]]
        }"#;
        let results = parse(body).unwrap();
        assert_eq!(results.answer.as_deref(), Some("A tokenizer splits text."));
        assert_eq!(results.hits.len(), 1);
        assert_eq!(results.hits[0].title, "untitaker/html5gum");
    }

    #[test]
    fn older_string_answers_and_infoboxes() {
        let old = parse(r#"{"results": [], "answers": ["42"]}"#).unwrap();
        assert_eq!(old.answer.as_deref(), Some("42"));
        let info = parse(
            r#"{"results": [], "answers": [], "infoboxes": [{"infobox": "Rust", "id": "x", "content": "A language.", "urls": []}]}"#,
        )
        .unwrap();
        assert_eq!(info.answer.as_deref(), Some("Rust: A language."));
        assert_eq!(parse("<!doctype html><p>403 Forbidden"), None);
    }
}

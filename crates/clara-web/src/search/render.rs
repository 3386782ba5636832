//! Search results as the model reads them: numbered, one title, address and
//! short snippet each, the service's direct answer (when it gives one) first.

use super::{SearchResults, compact};

/// The longest snippet shown for one result, in characters.
const SNIPPET_CHARS: usize = 300;

/// `results` for `query`, from `service`.
pub fn render(service: &str, query: &str, results: &SearchResults) -> String {
    let query = compact(query, 200);
    if results.hits.is_empty() && results.answer.is_none() {
        return format!("{service} found nothing for \"{query}\".");
    }
    let mut out = format!("Search results for \"{query}\" ({service}):\n");
    if let Some(answer) = &results.answer {
        out.push_str(&format!("\nAnswer: {}\n", compact(answer, 1_000)));
    }
    for (n, hit) in results.hits.iter().enumerate() {
        let title = compact(&hit.title, 200);
        let title = if title.is_empty() {
            "(no title)".to_owned()
        } else {
            title
        };
        out.push_str(&format!("\n{}. {title}\n   {}\n", n + 1, hit.url.trim()));
        let snippet = compact(&hit.snippet, SNIPPET_CHARS);
        if !snippet.is_empty() {
            out.push_str(&format!("   {snippet}\n"));
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::SearchHit;

    #[test]
    fn results_render_compactly() {
        let results = SearchResults {
            answer: Some("It is  42.".into()),
            hits: vec![
                SearchHit {
                    title: "First\npage".into(),
                    url: "https://a.example/".into(),
                    snippet: "x ".repeat(400),
                },
                SearchHit {
                    title: String::new(),
                    url: "https://b.example/".into(),
                    snippet: String::new(),
                },
            ],
        };
        let text = render("Tavily", "the answer", &results);
        let expected_start = "Search results for \"the answer\" (Tavily):\n\nAnswer: It is 42.\n\n1. First page\n   https://a.example/\n   x x";
        assert!(text.starts_with(expected_start), "{text}");
        assert!(
            text.contains("…\n\n2. (no title)\n   https://b.example/"),
            "{text}"
        );
        assert!(text.ends_with("https://b.example/"));
    }

    #[test]
    fn nothing_found_is_one_sentence() {
        assert_eq!(
            render("Brave Search", "zzqx", &SearchResults::default()),
            "Brave Search found nothing for \"zzqx\"."
        );
    }
}

//! The two tools the model sees: `web__search` and `web__fetch`. Both only
//! read, and what they return comes from outside Clara, so the registry
//! hands it to the model as data.

use crate::fetch::{self, Fetcher, Window};
use crate::search::{self, SearchClient};
use crate::settings::MAX_RESULTS;
use async_trait::async_trait;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use serde_json::{Value, json};

fn web_traits() -> ToolTraits {
    ToolTraits {
        effect: Effect::Read,
        untrusted_output: true,
        definition_sha256: None,
    }
}

/// `web__search`: searches the web with the configured service.
pub struct SearchTool {
    client: SearchClient,
    default_results: usize,
}

impl SearchTool {
    /// The tool over `client`, returning `default_results` results unless the
    /// model asks for another number.
    pub fn new(client: SearchClient, default_results: usize) -> Self {
        Self {
            client,
            default_results,
        }
    }
}

#[async_trait]
impl Tool for SearchTool {
    fn name(&self) -> &str {
        "search"
    }

    fn description(&self) -> &str {
        "Searches the web and returns the best results (title, address, snippet), with a direct answer when the search service has one. Use it for current events, facts you are unsure of, or to find pages to read with web__fetch."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to search for, as you would type it into a search engine."
                },
                "max_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_RESULTS,
                    "description": format!("How many results to return (default {}).", self.default_results)
                }
            },
            "required": ["query"]
        })
    }

    fn traits(&self) -> ToolTraits {
        web_traits()
    }

    async fn call(&self, arguments: Value, _context: &ToolContext) -> Result<String, ToolError> {
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| {
                ToolError::InvalidArguments("query must be a non-empty string".into())
            })?;
        let max_results = match arguments.get("max_results") {
            None | Some(Value::Null) => self.default_results,
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=MAX_RESULTS as u64).contains(n))
                .map(|n| n as usize)
                .ok_or_else(|| {
                    ToolError::InvalidArguments(format!(
                        "max_results must be a whole number from 1 to {MAX_RESULTS}"
                    ))
                })?,
        };
        let results = self
            .client
            .search(query, max_results)
            .await
            .map_err(|error| ToolError::Failed(error.to_string()))?;
        Ok(search::render(self.client.service(), query, &results))
    }
}

/// `web__fetch`: one page as readable text.
pub struct FetchTool {
    fetcher: Fetcher,
    max_chars: usize,
}

impl FetchTool {
    /// The tool over `fetcher`, returning at most `max_chars` characters of
    /// text per call.
    pub fn new(fetcher: Fetcher, max_chars: usize) -> Self {
        Self { fetcher, max_chars }
    }
}

#[async_trait]
impl Tool for FetchTool {
    fn name(&self) -> &str {
        "fetch"
    }

    fn description(&self) -> &str {
        "Fetches a public web page (http or https) and returns its readable text: title, headings, paragraphs, lists and links, without menus or scripts. Plain text and JSON come back as they are; images and PDFs are refused. Long pages come in parts: call again with the offset it gives to read on. Addresses on the local network are refused."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "description": "The page's full address, starting with https:// or http://."
                },
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Characters of the page's text to skip, to read on from where an earlier call stopped (default 0)."
                }
            },
            "required": ["url"]
        })
    }

    fn traits(&self) -> ToolTraits {
        web_traits()
    }

    async fn call(&self, arguments: Value, _context: &ToolContext) -> Result<String, ToolError> {
        let url = arguments
            .get("url")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ToolError::InvalidArguments("url must be a non-empty string".into()))?;
        let offset = match arguments.get("offset") {
            None | Some(Value::Null) => 0,
            Some(value) => value.as_u64().map(|n| n as usize).ok_or_else(|| {
                ToolError::InvalidArguments("offset must be a whole number, 0 or more".into())
            })?,
        };
        let page = self
            .fetcher
            .fetch(url)
            .await
            .map_err(|error| ToolError::Failed(error.to_string()))?;
        Ok(fetch::render(
            &page,
            Window {
                offset,
                max_chars: self.max_chars,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::AllowList;
    use crate::fetch::FetchLimits;

    #[tokio::test]
    async fn bad_arguments_are_refused_before_any_request() {
        let tool = FetchTool::new(
            Fetcher::new(FetchLimits::default(), AllowList::default()),
            100,
        );
        let context = ToolContext::default();
        assert!(matches!(
            tool.call(json!({}), &context).await,
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            tool.call(json!({"url": "https://x.test/", "offset": -1}), &context)
                .await,
            Err(ToolError::InvalidArguments(_))
        ));
        let refused = tool
            .call(json!({"url": "file:///etc/passwd"}), &context)
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            ToolError::Failed("only http and https URLs can be fetched, not file:".into())
        );
        assert_eq!(tool.traits().effect, Effect::Read);
        assert!(tool.traits().untrusted_output);
    }
}

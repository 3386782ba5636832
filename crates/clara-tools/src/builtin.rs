//! Tools Clara always has, served by the [`Builtin`] provider as `clara__*`.

use crate::provider::ToolProvider;
use crate::tool::{Tool, ToolContext, ToolError};
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;

/// The server name of Clara's built-in tools.
pub const SERVER: &str = "clara";

/// The provider of the built-in tools (`clara__current_time`). Needs no
/// configuration and never fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct Builtin;

#[async_trait]
impl ToolProvider for Builtin {
    fn server(&self) -> &str {
        SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        Ok(vec![Arc::new(CurrentTime)])
    }
}

/// The current date and time, in UTC or a named time-zone offset.
pub struct CurrentTime;

#[async_trait]
impl Tool for CurrentTime {
    fn name(&self) -> &str {
        "current_time"
    }

    fn traits(&self) -> crate::ToolTraits {
        crate::ToolTraits::read_only()
    }

    fn description(&self) -> &str {
        "Returns the current date and time (ISO 8601 and in words). Use it whenever the answer depends on today's date or the time."
    }

    fn parameters(&self) -> serde_json::Value {
        json!({
            "type": "object",
            "properties": {
                "utc_offset": {
                    "type": "string",
                    "description": "Optional offset from UTC such as \"+02:00\" or \"-05:30\"; UTC when omitted."
                }
            }
        })
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        _context: &ToolContext,
    ) -> Result<String, ToolError> {
        let now = chrono::Utc::now();
        let offset = match arguments.get("utc_offset").and_then(|v| v.as_str()) {
            None | Some("") => chrono::FixedOffset::east_opt(0),
            Some(text) => parse_offset(text),
        }
        .ok_or_else(|| {
            ToolError::InvalidArguments("utc_offset must look like +02:00 or -05:30".into())
        })?;
        let local = now.with_timezone(&offset);
        Ok(format!(
            "{} ({})",
            local.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            local.format("%A %-d %B %Y, %H:%M")
        ))
    }
}

fn parse_offset(text: &str) -> Option<chrono::FixedOffset> {
    let text = text.trim();
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_the_time_in_utc_and_at_an_offset() {
        let ctx = ToolContext::default();
        let utc = CurrentTime.call(json!({}), &ctx).await.unwrap();
        assert!(
            utc.contains('Z') && utc.contains(&chrono::Utc::now().format("%Y-%m-%d").to_string()),
            "{utc}"
        );
        let plus = CurrentTime
            .call(json!({"utc_offset": "+05:30"}), &ctx)
            .await
            .unwrap();
        assert!(plus.contains("+05:30"), "{plus}");
        let bad = CurrentTime
            .call(json!({"utc_offset": "soon"}), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(bad, ToolError::InvalidArguments(_)));
    }

    #[tokio::test]
    async fn the_builtin_provider_serves_the_time_as_clara() {
        let registry = crate::ToolRegistry::default();
        assert_eq!(registry.add_provider(Arc::new(Builtin)).await, Ok(1));
        assert_eq!(
            registry.snapshot().names().collect::<Vec<_>>(),
            vec!["clara__current_time"]
        );
    }
}

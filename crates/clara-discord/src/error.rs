//! What can stop the Discord adapter, each as one sentence for the operator.

/// Why the Discord adapter could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// Discord refused the bot token.
    #[error(
        "Discord refused DISCORD_BOT_TOKEN (401 Unauthorized); copy the bot token again from the Discord developer portal"
    )]
    Unauthorized,
    /// The gateway closed the connection with a code that forbids reconnecting.
    #[error("{}", gateway_close_sentence(*.code, reason))]
    GatewayClosed {
        /// Discord's close code.
        code: u16,
        /// Discord's close reason, as sent.
        reason: String,
    },
    /// The HTTP client could not be built (TLS, or a token no header can carry).
    #[error("the Discord HTTP client could not be set up: {0}")]
    Client(String),
}

fn gateway_close_sentence(code: u16, reason: &str) -> String {
    let advice = match code {
        4004 => {
            "Discord refused DISCORD_BOT_TOKEN; copy the bot token again from the developer portal"
        }
        4013 => "the intents Clara asked for are invalid",
        4014 => {
            "enable the Message Content intent for the bot in the Discord developer portal (Bot → Privileged Gateway Intents)"
        }
        4010 | 4011 => "this bot needs sharding, which Clara does not do yet",
        4012 => "the gateway does not speak API version 10",
        _ => "the gateway will not accept this bot again until the problem is fixed",
    };
    if reason.is_empty() {
        format!("the Discord gateway closed the connection for good (code {code}): {advice}")
    } else {
        format!(
            "the Discord gateway closed the connection for good (code {code}, {reason:?}): {advice}"
        )
    }
}

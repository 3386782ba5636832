//! Telegram: the Bot API over long polling.

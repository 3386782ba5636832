//! A thin typed client of the Bot API: the few calls Clara makes, over reqwest.
//!
//! Requests are `POST {root}/bot{token}/{method}` with a JSON body (a
//! `multipart/form-data` one for `sendPhoto` and `sendDocument`, which upload
//! the file); files come from `GET {root}/file/bot{token}/{file_path}`. Every answer is decoded from
//! Telegram's envelope, and failures become [`ApiError`]s that say what to do
//! next (wait `retry_after`, retry with backoff, or give up). The token appears
//! only in request URLs: reqwest's errors are stripped of their URL before they
//! are kept, and no error text includes the root with the token.

use super::types::{Envelope, File, RawUpdate, User};
use clara_core::{FileBlob, Secret};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// The longest error description kept from Telegram.
const MAX_DESCRIPTION: usize = 300;

/// A failed Bot API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Telegram refused the token (401, or 404 for a token of the wrong shape).
    #[error("Telegram refused the bot token ({code}); check TG_BOT_TOKEN")]
    Unauthorized {
        /// The HTTP status Telegram answered with.
        code: u16,
    },
    /// A flood limit was hit; the call may be repeated after `retry_after` seconds.
    #[error("Telegram asks Clara to slow down: retry after {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Telegram could not be reached, or failed on its side (5xx); worth retrying.
    #[error("Telegram could not be reached for {method}: {detail}")]
    Network {
        /// The Bot API method.
        method: &'static str,
        /// What went wrong, without the token.
        detail: String,
        /// Whether repeating even a non-idempotent call (a new message) is safe:
        /// the connection failed before the request was sent, or Telegram
        /// answered 5xx (it did not act on it).
        retry_safe: bool,
    },
    /// Telegram refused the request (4xx other than the above).
    #[error("Telegram refused {method}: {description} ({code})")]
    Refused {
        /// The Bot API method.
        method: &'static str,
        /// `error_code`.
        code: u16,
        /// `description`, capped.
        description: String,
    },
    /// The answer was not the JSON the reference describes.
    #[error("Telegram's answer to {method} could not be read: {detail}")]
    Decode {
        /// The Bot API method.
        method: &'static str,
        /// What did not fit.
        detail: String,
    },
}

impl ApiError {
    /// Whether repeating the call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Network { .. } | Self::RateLimited { .. })
    }

    /// Whether this is Telegram saying an edit would change nothing.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, Self::Refused { code: 400, description, .. } if description.contains("message is not modified"))
    }

    /// Whether this is a file over a size limit: Clara's own on a download,
    /// the Bot API's 20 MB for `getFile`, or Telegram's 413 for an upload.
    pub fn is_file_too_big(&self) -> bool {
        match self {
            Self::Refused { code: 413, .. } => true,
            Self::Refused {
                code: 400,
                description,
                ..
            } => description.to_ascii_lowercase().contains("file is too big"),
            _ => false,
        }
    }

    /// Whether this is `sendPhoto` refusing the picture itself (its size,
    /// its dimensions, or bytes it cannot read as an image): sent as a
    /// document, it goes through.
    pub fn is_photo_refused(&self) -> bool {
        matches!(self, Self::Refused { method: "sendPhoto", code: 400, description } if [
            "PHOTO_INVALID_DIMENSIONS",
            "PHOTO_SAVE_FILE_INVALID",
            "IMAGE_PROCESS_FAILED",
            "PHOTO_EXT_INVALID",
            "PHOTO_INVALID",
            "too big",
        ]
        .iter()
        .any(|why| description.contains(why)))
            || matches!(
                self,
                Self::Refused {
                    method: "sendPhoto",
                    code: 413,
                    ..
                }
            )
    }

    /// Whether this is 409 Conflict: another `getUpdates` poller or a webhook.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Refused { code: 409, .. })
    }
}

/// The Bot API client.
#[derive(Debug)]
pub(crate) struct BotApi {
    http: Client,
    /// `{root}/bot{token}/`: it holds the token.
    methods: Secret,
    /// `{root}/file/bot{token}/`: it holds the token.
    files: Secret,
    /// How long an ordinary call may take.
    call_timeout: Duration,
}

/// `sendMessage`'s parameters (plain text: no `parse_mode`, so nothing the model
/// writes can be refused as malformed markup).
#[derive(Debug, Serialize)]
pub(crate) struct SendMessage<'a> {
    pub chat_id: i64,
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<Value>,
    /// Buttons under the message (an `InlineKeyboardMarkup`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_markup: Option<Value>,
}

/// How a file is sent: as a picture people see in the chat, or as a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upload {
    /// `sendPhoto`.
    Photo,
    /// `sendDocument`.
    Document,
}

impl Upload {
    fn method(self) -> &'static str {
        match self {
            Self::Photo => "sendPhoto",
            Self::Document => "sendDocument",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Document => "document",
        }
    }
}

impl BotApi {
    /// A client for the Bot API at `root` (e.g. `https://api.telegram.org`).
    pub fn new(root: &str, token: &str, call_timeout: Duration) -> Result<Self, String> {
        let root = root.trim_end_matches('/');
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("clara/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self {
            http,
            methods: Secret::new(format!("{root}/bot{token}/")),
            files: Secret::new(format!("{root}/file/bot{token}/")),
            call_timeout,
        })
    }

    /// `getMe`: the bot's own user (its id and `@username`).
    pub async fn get_me(&self) -> Result<User, ApiError> {
        self.call("getMe", &json!({}), self.call_timeout).await
    }

    /// `getUpdates`: updates after `offset` (confirming those before it), held
    /// open by Telegram for up to `timeout` when there are none.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        timeout: Duration,
        limit: u32,
    ) -> Result<Vec<RawUpdate>, ApiError> {
        let mut params = json!({
            "timeout": timeout.as_secs(),
            "limit": limit,
            // Button presses come as `callback_query` updates.
            "allowed_updates": ["message", "callback_query"],
        });
        if let Some(offset) = offset {
            params["offset"] = json!(offset);
        }
        // The HTTP request outlives the long poll by a margin, so a held
        // request is never mistaken for a dead connection.
        let wait = timeout + self.call_timeout;
        let raw: Vec<Value> = self.call("getUpdates", &params, wait).await?;
        // One undecodable update must not block the others: keep what decodes,
        // skipping (and logging) only the odd one.
        Ok(raw
            .into_iter()
            .filter_map(|u| match serde_json::from_value::<RawUpdate>(u) {
                Ok(update) => Some(update),
                Err(error) => {
                    tracing::warn!(%error, "a Telegram update without an update_id was skipped");
                    None
                }
            })
            .collect())
    }

    /// `sendMessage`: returns the new message's id.
    pub async fn send_message(&self, message: &SendMessage<'_>) -> Result<i64, ApiError> {
        let sent: MessageId = self.call("sendMessage", message, self.call_timeout).await?;
        Ok(sent.message_id)
    }

    /// `sendPhoto` or `sendDocument`: uploads `file` as a `multipart/form-data`
    /// request, with `caption` under it, into the forum topic `thread` when
    /// given; returns the new message's id.
    pub async fn send_file(
        &self,
        how: Upload,
        chat_id: i64,
        thread: Option<i64>,
        file: &FileBlob,
        caption: Option<&str>,
    ) -> Result<i64, ApiError> {
        let method = how.method();
        // A control character would break the part's header line.
        let name: String = file
            .name
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        let part = || Part::bytes(file.data.clone()).file_name(name.clone());
        let part = part()
            .mime_str(&file.media_type)
            .or_else(|_| part().mime_str("application/octet-stream"))
            .map_err(|_| ApiError::Decode {
                method,
                detail: "the file's type could not be written".into(),
            })?;
        let mut form = Form::new()
            .text("chat_id", chat_id.to_string())
            .part(how.field(), part);
        if let Some(thread) = thread {
            form = form.text("message_thread_id", thread.to_string());
        }
        if let Some(caption) = caption.filter(|c| !c.trim().is_empty()) {
            form = form.text("caption", caption.to_owned());
        }
        let response = self
            .http
            .post(format!("{}{method}", self.methods.expose()))
            // An upload of tens of megabytes takes longer than a call.
            .timeout(self.call_timeout * 4)
            .multipart(form)
            .send()
            .await
            .map_err(|e| network(method, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| network(method, &e))?;
        let sent: MessageId = decode(method, status, &body)?;
        Ok(sent.message_id)
    }

    /// `editMessageText` of a message the bot sent; `reply_markup` replaces its
    /// buttons (an empty `inline_keyboard` removes them; `None` keeps them).
    pub async fn edit_message_text(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
        reply_markup: Option<&Value>,
    ) -> Result<(), ApiError> {
        let mut params = json!({ "chat_id": chat_id, "message_id": message_id, "text": text });
        if let Some(markup) = reply_markup {
            params["reply_markup"] = markup.clone();
        }
        let _: Value = self
            .call("editMessageText", &params, self.call_timeout)
            .await?;
        Ok(())
    }

    /// `answerCallbackQuery`: stops the pressed button's progress indicator and
    /// shows `text` briefly.
    pub async fn answer_callback_query(&self, id: &str, text: &str) -> Result<(), ApiError> {
        let params = json!({ "callback_query_id": id, "text": text });
        let _: Value = self
            .call("answerCallbackQuery", &params, self.call_timeout)
            .await?;
        Ok(())
    }

    /// `sendChatAction` `typing` (shown for five seconds, or until the bot sends).
    pub async fn send_typing(&self, chat_id: i64, thread: Option<i64>) -> Result<(), ApiError> {
        let mut params = json!({ "chat_id": chat_id, "action": "typing" });
        if let Some(thread) = thread {
            params["message_thread_id"] = json!(thread);
        }
        let _: Value = self
            .call("sendChatAction", &params, self.call_timeout)
            .await?;
        Ok(())
    }

    /// `getFile`, then the file's bytes, refusing files over `max_bytes`.
    pub async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Vec<u8>, ApiError> {
        const METHOD: &str = "getFile";
        let file: File = self
            .call(METHOD, &json!({ "file_id": file_id }), self.call_timeout)
            .await?;
        if file.file_size.is_some_and(|size| size > max_bytes) {
            return Err(too_big(max_bytes));
        }
        let Some(path) = file.file_path else {
            return Err(ApiError::Decode {
                method: METHOD,
                detail: "no file_path (the file may be over the Bot API's 20 MB limit)".into(),
            });
        };
        let response = self
            .http
            .get(format!("{}{path}", self.files.expose()))
            .timeout(self.call_timeout * 4)
            .send()
            .await
            .map_err(|e| network("file download", &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(if status.is_server_error() {
                ApiError::Network {
                    method: "file download",
                    detail: format!("HTTP {status}"),
                    retry_safe: true,
                }
            } else {
                ApiError::Refused {
                    method: "file download",
                    code: status.as_u16(),
                    description: status.canonical_reason().unwrap_or("refused").into(),
                }
            });
        }
        if response.content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_big(max_bytes));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| network("file download", &e))?;
        if bytes.len() as u64 > max_bytes {
            return Err(too_big(max_bytes));
        }
        Ok(bytes.to_vec())
    }

    /// One method call: POST the JSON parameters, decode the envelope.
    async fn call<P: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &P,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let response = self
            .http
            .post(format!("{}{method}", self.methods.expose()))
            .timeout(timeout)
            .json(params)
            .send()
            .await
            .map_err(|e| network(method, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| network(method, &e))?;
        decode(method, status, &body)
    }
}

/// The `message_id` of a sent message (the rest of it is not needed).
#[derive(serde::Deserialize)]
struct MessageId {
    message_id: i64,
}

fn too_big(max_bytes: u64) -> ApiError {
    ApiError::Refused {
        method: "getFile",
        code: 413,
        description: format!("the file is larger than {} MB", max_bytes / 1_000_000),
    }
}

/// A transport failure, without the URL (which holds the token).
fn network(method: &'static str, error: &reqwest::Error) -> ApiError {
    let retry_safe = error.is_connect();
    let mut detail = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the answer".to_owned()
    } else {
        "the request failed".to_owned()
    };
    // The deepest cause says why (refused, reset, DNS…); only reqwest's own
    // message holds the URL.
    let mut cause = std::error::Error::source(error);
    let mut deepest = None;
    while let Some(c) = cause {
        deepest = Some(c);
        cause = c.source();
    }
    if let Some(deepest) = deepest {
        detail = format!("{detail} ({})", cap(&deepest.to_string()));
    }
    ApiError::Network {
        method,
        detail,
        retry_safe,
    }
}

/// Reads Telegram's envelope from a body of any status.
pub(crate) fn decode<T: DeserializeOwned>(
    method: &'static str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, ApiError> {
    let envelope: Envelope<T> = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(error) => {
            // Proxies and outages answer with HTML; judge those by status.
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                return Err(ApiError::Refused {
                    method,
                    code: 413,
                    description: "Request Entity Too Large".into(),
                });
            }
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(ApiError::Network {
                    method,
                    detail: format!("HTTP {status}"),
                    retry_safe: true,
                });
            }
            return Err(ApiError::Decode {
                method,
                detail: format!("HTTP {status}: {}", cap(&error.to_string())),
            });
        }
    };
    if envelope.ok {
        return envelope.result.ok_or(ApiError::Decode {
            method,
            detail: "`ok` without a `result`".into(),
        });
    }
    let code = envelope
        .error_code
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(status.as_u16());
    let description = cap(envelope.description.as_deref().unwrap_or("no description"));
    let retry_after = envelope.parameters.as_ref().and_then(|p| p.retry_after);
    Err(match code {
        429 => ApiError::RateLimited {
            // "retry after N" is also in the description when parameters are absent.
            retry_after: retry_after
                .or_else(|| retry_after_in(&description))
                .unwrap_or(1),
        },
        401 => ApiError::Unauthorized { code },
        404 if method == "getMe" => ApiError::Unauthorized { code },
        500..=599 => ApiError::Network {
            method,
            detail: format!("{description} ({code})"),
            retry_safe: true,
        },
        _ => ApiError::Refused {
            method,
            code,
            description,
        },
    })
}

/// `N` from "Too Many Requests: retry after N".
fn retry_after_in(description: &str) -> Option<u64> {
    let rest = description.rsplit("retry after").next()?;
    rest.trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn cap(text: &str) -> String {
    if text.chars().count() <= MAX_DESCRIPTION {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_DESCRIPTION).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flood_limits_give_retry_after_from_parameters_or_the_description() {
        let body = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let e = decode::<Value>("sendMessage", StatusCode::TOO_MANY_REQUESTS, body).unwrap_err();
        assert_eq!(e, ApiError::RateLimited { retry_after: 7 });
        let body =
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 12"}"#;
        let e = decode::<Value>("sendMessage", StatusCode::TOO_MANY_REQUESTS, body).unwrap_err();
        assert_eq!(e, ApiError::RateLimited { retry_after: 12 });
    }

    #[test]
    fn errors_are_classified() {
        let e = decode::<Value>(
            "getMe",
            StatusCode::UNAUTHORIZED,
            br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
        .unwrap_err();
        assert_eq!(e, ApiError::Unauthorized { code: 401 });
        let e = decode::<Value>(
            "editMessageText",
            StatusCode::BAD_REQUEST,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}"#,
        )
        .unwrap_err();
        assert!(e.is_not_modified());
        let e = decode::<Value>(
            "getUpdates",
            StatusCode::BAD_GATEWAY,
            b"<html>Bad Gateway</html>",
        )
        .unwrap_err();
        assert!(e.is_transient());
        let e = decode::<Value>(
            "getUpdates",
            StatusCode::CONFLICT,
            br#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#,
        )
        .unwrap_err();
        assert!(e.is_conflict() && !e.is_transient());
        let ok: i64 = decode("x", StatusCode::OK, br#"{"ok":true,"result":5}"#).unwrap();
        assert_eq!(ok, 5);
    }

    #[tokio::test]
    async fn a_network_error_never_shows_the_token() {
        // A port nothing listens on: bind one, note it, close it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let token = "123456:SECRET-token-value";
        let api = BotApi::new(
            &format!("http://127.0.0.1:{port}"),
            token,
            Duration::from_secs(2),
        )
        .unwrap();
        let e = api.get_me().await.unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::Network {
                    retry_safe: true,
                    ..
                }
            ),
            "{e:?}"
        );
        let shown = format!("{e} {e:?} {api:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

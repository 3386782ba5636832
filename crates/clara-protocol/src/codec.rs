//! Turning WebSocket text into frames and back.
//!
//! Decoding is pure and total: any bytes give a frame or a [`FrameError`] that
//! says, in one sentence, what was wrong — never a panic (fuzzed:
//! `crates/clara-protocol/fuzz`). The checks run cheapest first: size, JSON,
//! object, version, type, fields.

use crate::frames::{
    CLIENT_FRAME_TYPES, ClientFrame, ErrorCode, ErrorFrame, SERVER_FRAME_TYPES, ServerFrame,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The protocol version every frame carries in `v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame read by default, in bytes (room for a few attached photos).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The longest `re` echoed back from a broken frame, in characters.
const MAX_ECHOED_ID_CHARS: usize = 128;

/// The longest detail quoted from the JSON parser, in characters.
const MAX_DETAIL_CHARS: usize = 200;

/// Why some bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Larger than the limit; not parsed at all.
    #[error("The frame is {len} bytes; the limit is {max}.")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, or not a JSON object.
    #[error("The frame is not a JSON object: {detail}.")]
    Malformed {
        /// What the parser said.
        detail: String,
    },
    /// `v` is missing or names a version this side does not speak.
    #[error(
        "The frame's version {got} is not supported; this gateway speaks version 1 (\"v\": 1)."
    )]
    UnsupportedVersion {
        /// What `v` was, as JSON (`missing` when absent).
        got: String,
        /// The frame's `id`, if it had one.
        re: Option<String>,
    },
    /// `type` is missing or unknown.
    #[error("The frame's type {got} is not part of protocol version 1.")]
    UnknownType {
        /// What `type` was, as JSON (`missing` when absent).
        got: String,
        /// The frame's `id`, if it had one.
        re: Option<String>,
    },
    /// The type is known but its fields are wrong.
    #[error("The {kind} frame is invalid: {detail}.")]
    Invalid {
        /// The frame's type.
        kind: String,
        /// What was wrong.
        detail: String,
        /// The frame's `id`, if it had one.
        re: Option<String>,
    },
}

impl FrameError {
    /// The matching `error` frame code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Malformed { .. } => ErrorCode::Malformed,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::UnknownType { .. } => ErrorCode::UnknownType,
            Self::Invalid { .. } => ErrorCode::InvalidFrame,
        }
    }

    /// The broken frame's `id`, when it had a string one.
    pub fn re(&self) -> Option<&str> {
        match self {
            Self::UnsupportedVersion { re, .. }
            | Self::UnknownType { re, .. }
            | Self::Invalid { re, .. } => re.as_deref(),
            Self::TooLarge { .. } | Self::Malformed { .. } => None,
        }
    }

    /// The frame's `type` when it was a known one (`hello` matters to the server:
    /// a broken hello is still a hello).
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Invalid { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The `error` frame that answers this.
    pub fn to_error_frame(&self) -> ErrorFrame {
        ErrorFrame {
            code: self.code(),
            message: self.to_string(),
            re: self.re().map(str::to_owned),
        }
    }
}

/// Decodes a frame an adapter sent, refusing anything over `max_bytes`.
pub fn decode_client(bytes: &[u8], max_bytes: usize) -> Result<ClientFrame, FrameError> {
    decode(bytes, max_bytes, CLIENT_FRAME_TYPES)
}

/// Decodes a frame the gateway sent, refusing anything over `max_bytes`.
pub fn decode_server(bytes: &[u8], max_bytes: usize) -> Result<ServerFrame, FrameError> {
    decode(bytes, max_bytes, SERVER_FRAME_TYPES)
}

fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    max_bytes: usize,
    known_types: &[&str],
) -> Result<T, FrameError> {
    if bytes.len() > max_bytes {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed {
        detail: cap(&e.to_string()),
    })?;
    let Value::Object(map) = value else {
        return Err(FrameError::Malformed {
            detail: format!("it is {}", json_kind(&value)),
        });
    };
    let re = echoed_id(&map);
    match map.get("v") {
        Some(v) if v.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {}
        other => {
            return Err(FrameError::UnsupportedVersion {
                got: other.map_or_else(|| "missing".to_owned(), |v| cap(&v.to_string())),
                re,
            });
        }
    }
    let kind = match map.get("type") {
        Some(Value::String(t)) if known_types.contains(&t.as_str()) => t.clone(),
        other => {
            return Err(FrameError::UnknownType {
                got: other.map_or_else(|| "missing".to_owned(), |v| cap(&v.to_string())),
                re,
            });
        }
    };
    T::deserialize(Value::Object(map)).map_err(|e| FrameError::Invalid {
        kind,
        detail: cap(&e.to_string()),
        re,
    })
}

/// Encodes a frame as the text of one WebSocket message, with `"v": 1`.
pub fn encode<F: Serialize>(frame: &F) -> String {
    #[derive(Serialize)]
    struct Versioned<'a, F> {
        v: u32,
        #[serde(flatten)]
        frame: &'a F,
    }
    let versioned = Versioned {
        v: PROTOCOL_VERSION,
        frame,
    };
    // Invariant: frames are structs of strings, numbers, booleans, lists and
    // string-keyed objects, which serde_json always serializes.
    #[allow(clippy::expect_used)]
    serde_json::to_string(&versioned).expect("frames always serialize")
}

fn echoed_id(map: &Map<String, Value>) -> Option<String> {
    match map.get("id") {
        Some(Value::String(id)) => Some(id.chars().take(MAX_ECHOED_ID_CHARS).collect()),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn cap(text: &str) -> String {
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::frames::{PingFrame, Presence};

    const MAX: usize = 4096;

    fn client(text: &str) -> Result<ClientFrame, FrameError> {
        decode_client(text.as_bytes(), MAX)
    }

    #[test]
    fn a_ping_round_trips_with_its_version() {
        let frame = ClientFrame::Ping(PingFrame { nonce: 7 });
        let text = encode(&frame);
        assert_eq!(text, r#"{"v":1,"type":"ping","nonce":7}"#);
        assert_eq!(client(&text).unwrap(), frame);
    }

    #[test]
    fn oversize_frames_are_refused_before_parsing() {
        let text = format!(
            r#"{{"v":1,"type":"ping","nonce":1,"pad":"{}"}}"#,
            "x".repeat(MAX)
        );
        let err = client(&text).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TooLarge);
        assert!(err.to_string().contains("limit is 4096"), "{err}");
    }

    #[test]
    fn non_json_and_non_objects_are_malformed() {
        for text in ["", "{", "not json", "[1,2]", "\"hello\"", "null", "1e400"] {
            let err = client(text).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Malformed, "{text}: {err}");
        }
        assert!(decode_client(&[0xff, 0xfe], MAX).is_err());
    }

    #[test]
    fn the_version_is_checked_before_the_type() {
        let err = client(r#"{"type":"ping","nonce":1,"id":"r1"}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        assert_eq!(err.re(), Some("r1"));
        let err = client(r#"{"v":2,"type":"ping","nonce":1}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        assert!(err.to_string().contains("version 2"), "{err}");
        let err = client(r#"{"v":"1","type":"ping","nonce":1}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    }

    #[test]
    fn unknown_and_missing_types_are_named() {
        let err = client(r#"{"v":1,"type":"teleport","id":"x"}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownType);
        assert!(err.to_string().contains("\"teleport\""), "{err}");
        assert_eq!(err.re(), Some("x"));
        assert_eq!(
            client(r#"{"v":1}"#).unwrap_err().code(),
            ErrorCode::UnknownType
        );
        // A server frame type is not a client frame type.
        assert_eq!(
            client(r#"{"v":1,"type":"welcome"}"#).unwrap_err().code(),
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn wrong_fields_say_which_frame_and_what() {
        let err = client(r#"{"v":1,"type":"inbound","id":"c9","text":"hi"}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidFrame);
        assert_eq!(err.kind(), Some("inbound"));
        assert_eq!(err.re(), Some("c9"));
        assert!(
            err.to_string()
                .starts_with("The inbound frame is invalid: missing field"),
            "{err}"
        );
        let err = client(r#"{"v":1,"type":"ping","nonce":-1}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidFrame);
    }

    #[test]
    fn stop_is_another_name_for_cancel_and_dm_for_direct() {
        let frame = client(
            r#"{"v":1,"type":"stop","conversation":{"channel":"c","kind":"dm"},"author":{"id":"u","name":"U"}}"#,
        )
        .unwrap();
        let ClientFrame::Cancel(Presence { conversation, .. }) = frame else {
            panic!("{frame:?}");
        };
        assert_eq!(conversation.kind, crate::WireChannelKind::Direct);
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        let frame = client(r#"{"v":1,"type":"ping","nonce":3,"future_field":[1,2]}"#).unwrap();
        assert_eq!(frame, ClientFrame::Ping(PingFrame { nonce: 3 }));
    }

    #[test]
    fn long_details_and_ids_are_capped() {
        let id = "i".repeat(1000);
        let text = format!(r#"{{"v":1,"type":"{}","id":"{id}"}}"#, "t".repeat(1000));
        let err = decode_client(text.as_bytes(), 1 << 20).unwrap_err();
        assert!(err.to_string().chars().count() < 400, "{err}");
        assert_eq!(err.re().unwrap().chars().count(), MAX_ECHOED_ID_CHARS);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            decode_client(text.as_bytes(), 1 << 20).unwrap_err().code(),
            ErrorCode::Malformed
        );
    }
}

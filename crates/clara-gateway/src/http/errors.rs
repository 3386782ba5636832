//! Every error the HTTP face answers, in the shape OpenAI clients expect:
//! `{"error": {"message", "type", "param", "code"}}` with a fitting status code.
//!
//! The message is one sentence for the caller. Internal failures are logged in
//! full and answered with a sentence that names no path, query or secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    /// 400: the request is wrong.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400: the body is not JSON.
    pub(crate) fn bad_json(detail: impl std::fmt::Display) -> Self {
        Self::invalid(format!(
            "We could not parse the JSON body of your request ({detail}). The API expects a JSON object."
        ))
        .with_code("invalid_json")
    }

    /// 401: no credentials, or wrong ones.
    pub(crate) fn unauthorized(message: impl Into<String>, code: Option<&'static str>) -> Self {
        Self {
            code,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
        }
    }

    /// 403: known, but not allowed.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    /// 404: nothing by that name that the caller may see.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message).with_code("not_found")
    }

    /// 404 for a model name `/v1/models` does not list.
    pub(crate) fn unknown_model(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model `{model}` does not exist; GET /v1/models lists the ones Clara serves."
            ),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    /// 405: the path exists, the method does not.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "That method is not allowed on this path.",
        )
    }

    /// 409: the request conflicts with the state of things.
    pub(crate) fn conflict(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", message).with_code(code)
    }

    /// 413: the body is over the limit.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("The request body is larger than the {limit} bytes this server accepts."),
        )
        .with_code("request_too_large")
    }

    /// 413 with its own sentence (a file over its limit), and `code`.
    pub(crate) fn too_large_because(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            message,
        )
        .with_code(code)
    }

    /// 415: not JSON.
    pub(crate) fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "The request body must be JSON, sent with Content-Type: application/json.",
        )
        .with_code("unsupported_media_type")
    }

    /// 429: slow down.
    pub(crate) fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
            .with_code("rate_limit_exceeded")
    }

    /// 500: Clara failed; `what` says at what, the log has the details.
    pub(crate) fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{what}");
        metrics::counter!("clara_errors_total", "kind" => "http").increment(1);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("Clara could not {what}; the operator's log has the details."),
        )
    }

    /// 503: not available now.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
    }

    /// Names the request field at fault.
    pub(crate) fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Sets the machine-readable code.
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The error object, as the body and as a streamed `data:` frame carry it.
    pub(crate) fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<clara_core::port::IngressError> for ApiError {
    fn from(e: clara_core::port::IngressError) -> Self {
        use clara_core::port::IngressError as E;
        match e {
            E::Empty => Self::invalid(e.to_string()).with_code("empty_message"),
            E::TooLong { .. } => Self::invalid(e.to_string()).with_code("message_too_long"),
            E::Closed | E::Unavailable => Self::unavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_openais_shape() {
        let e = ApiError::unknown_model("gpt-9");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let body = e.body();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("gpt-9"))
        );
    }

    #[test]
    fn unset_fields_are_null_not_missing() {
        let body = ApiError::invalid("no").body();
        assert!(body["error"].get("param").is_some_and(|p| p.is_null()));
        assert!(body["error"].get("code").is_some_and(|c| c.is_null()));
    }
}

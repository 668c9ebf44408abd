//! Errors as the HTTP caller sees them: `{"error":{"code","message"}}` with a 4xx for anything
//! the caller can fix, 503 when a dependency of ours is down (so the caller retries).

use lambda_http::{Body, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// Every failed authentication gets the same answer, whether the signature was wrong or
    /// the bot, its provider or its platform kind does not exist: an unauthenticated caller
    /// learns nothing about what is configured. The reason is logged for the operator.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        tracing::info!(reason = %reason.into(), "request not authenticated");
        Self::new(401, "unauthorized", NOT_AUTHENTICATED)
    }

    /// A dependency of the bot's set-up (a secret, the stored configuration) is unusable. The
    /// caller may retry; the details are logged, never answered.
    pub fn setup_unavailable(detail: impl Into<String>) -> Self {
        tracing::error!(detail = %detail.into(), "bot set-up unusable");
        Self::new(503, "unavailable", "temporarily unavailable, retry later")
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    /// A dependency failed; the request may be retried as is.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }

    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }
}

/// The one answer to an unauthenticated request.
pub const NOT_AUTHENTICATED: &str = "not authenticated: the signature or token is missing, outside the 300 s window or wrong, or the bot or provider is unknown";

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::unavailable("storage is unavailable, retry later")
    }
}

pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("status and header are valid")
}

/// A bot platform's refusal of a request, answered like every API error.
impl From<crate::platform::Refusal> for ApiError {
    fn from(r: crate::platform::Refusal) -> Self {
        match r {
            crate::platform::Refusal::Unauthenticated(reason) => ApiError::unauthorized(reason),
            crate::platform::Refusal::Invalid { code, message } => ApiError::bad_request(code, message),
            crate::platform::Refusal::TooLarge(message) => ApiError::unprocessable("too_large", message),
        }
    }
}

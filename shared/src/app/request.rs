//! Reading a `lambda_http::Request` the same way for every route.

use lambda_http::{Body, Request, RequestExt};

use super::error::ApiError;

/// Largest body accepted on any route (API Gateway allows more; we do not need it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The raw body, refused with 413 above the limit.
pub fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The path without an API Gateway stage prefix: every route starts at `/v1/`.
pub fn route_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    match raw.find("/v1/") {
        Some(i) => raw[i..].to_owned(),
        None => raw.to_string(),
    }
}

/// Query parameters as ordered pairs.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    let q = req.query_string_parameters();
    let mut out = Vec::new();
    for (k, _) in q.iter() {
        for v in q.all(k).unwrap_or_default() {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    out
}

/// Parses a JSON body. Syntax errors are `malformed_json`; a well-formed body that does not fit
/// is `invalid_request`, with the path of the offending field (`message.actor: unknown variant…`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::platform::parse_json(body).map_err(ApiError::from)
}

/// When this request must be answered by: the Lambda invocation's deadline minus
/// [`DEADLINE_MARGIN`], and never later than `budget` from now (outside Lambda, or when the
/// runtime gave no deadline). A handover's start attempts and failover all share it.
pub fn request_deadline(req: &Request, budget: std::time::Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    let by_budget = now + budget;
    let Some(lambda) = req.lambda_context_ref() else {
        return by_budget;
    };
    let deadline = lambda.deadline();
    if deadline <= std::time::UNIX_EPOCH {
        return by_budget;
    }
    match deadline.duration_since(std::time::SystemTime::now()) {
        Ok(left) => by_budget.min(now + left.saturating_sub(DEADLINE_MARGIN)),
        Err(_) => now,
    }
}

/// Kept free before the Lambda deadline to abandon, answer and flush logs.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(3);

//! What the adapters' unit tests share: a provider entry from JSON settings, a callback
//! request from a body and headers, and the events a parsed callback carries. Compiled for
//! tests only.

use chrono::Utc;
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::{ProviderConfig, ProviderKind};
use crate::providers::{Callback, CallbackError, CallbackRequest, Provider, ProviderEvent};

/// A `providers[]` entry of `kind` with these settings (a JSON object).
pub fn config(kind: ProviderKind, settings: Value) -> ProviderConfig {
    let Value::Object(settings) = settings else {
        panic!("settings are an object")
    };
    ProviderConfig {
        id: kind.as_str().into(),
        kind,
        url: None,
        availability_url: None,
        secret_ref: format!("handover/acme/{}", kind.as_str()),
        settings,
    }
}

/// Headers from name–value pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

/// The adapter's verdict on a POST with these headers and body.
pub fn verify(p: &dyn Provider, pairs: &[(&str, &str)], body: &[u8]) -> Result<(), CallbackError> {
    let h = headers(pairs);
    p.verify_callback(
        &CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body,
        },
        Utc::now(),
    )
}

/// The adapter's reading of a POSTed JSON body, with these headers.
pub fn parse_with(p: &dyn Provider, pairs: &[(&str, &str)], body: &Value) -> Result<Callback, CallbackError> {
    let bytes = serde_json::to_vec(body).unwrap();
    let h = headers(pairs);
    p.parse_callback(&CallbackRequest {
        method: "POST",
        headers: &h,
        query: &[],
        body: &bytes,
    })
}

/// The adapter's reading of a POSTed JSON body.
pub fn parse(p: &dyn Provider, body: &Value) -> Result<Callback, CallbackError> {
    parse_with(p, &[], body)
}

/// The events of a callback that must carry events.
pub fn events(cb: Callback) -> Vec<ProviderEvent> {
    match cb {
        Callback::Events(e) => e,
        other => panic!("expected events, got {other:?}"),
    }
}

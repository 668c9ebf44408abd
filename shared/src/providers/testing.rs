//! What the adapters' unit tests share: a provider entry from JSON settings, a callback
//! request from a body and headers, the events a parsed callback carries, and a handover and
//! transcript entries to build requests from. Compiled for tests only.

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::bot::{ProviderConfig, ProviderKind};
use crate::domain::{Actor, Handover, Message, TranscriptEntry, Trigger, UserInfo};
use crate::providers::{Callback, CallbackError, CallbackRequest, Provider, ProviderEvent, StartRequest};

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
    parse_bytes(p, pairs, &serde_json::to_vec(body).unwrap())
}

/// The adapter's reading of a POSTed raw body (not JSON, say), with these headers.
pub fn parse_bytes(p: &dyn Provider, pairs: &[(&str, &str)], body: &[u8]) -> Result<Callback, CallbackError> {
    let h = headers(pairs);
    p.parse_callback(&CallbackRequest {
        method: "POST",
        headers: &h,
        query: &[],
        body,
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
        Callback::Partial { events, unreadable } => {
            panic!("expected events, got {events:?} and unreadable {unreadable:?}")
        }
        other => panic!("expected events, got {other:?}"),
    }
}

/// A time written as RFC 3339.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A handover `h-1` to queue `general`, in English, requested at 2026-11-25T09:00:00Z and
/// nothing else: tests set what they check with struct update syntax.
pub fn handover() -> Handover {
    Handover {
        id: "h-1".into(),
        trigger: Trigger::ExplicitRequest,
        provider: "test".into(),
        queue: "general".into(),
        language: "en".into(),
        variables: Default::default(),
        tags: Vec::new(),
        summary: None,
        provider_conversation_id: None,
        requested_at: at("2026-11-25T09:00:00Z"),
        joined_at: None,
        ended_at: None,
        end_reason: None,
        agent: None,
        position: None,
        estimated_wait_seconds: None,
    }
}

/// A transcript entry: `actor` said `message` at `time` (RFC 3339).
pub fn entry(seq: u64, actor: Actor, message: Message, time: &str) -> TranscriptEntry {
    TranscriptEntry {
        seq,
        actor,
        timestamp: at(time),
        message,
        agent: None,
        event_id: None,
    }
}

/// The start of handover `h` for session `s-42` of bot `acme` on the `web` channel.
pub fn start_request<'a>(
    h: &'a Handover,
    user: Option<&'a UserInfo>,
    transcript: &'a [TranscriptEntry],
) -> StartRequest<'a> {
    StartRequest {
        delivery_id: "h-1-start",
        bot_id: "acme",
        session_id: "s-42",
        handover: h,
        user,
        channel: Some("web"),
        transcript,
    }
}

/// The user the bot platform names in most start requests of the tests.
pub fn ann() -> UserInfo {
    UserInfo {
        id: "u-7".into(),
        name: Some("Ann Peeters".into()),
        email: Some("ann@example.com".into()),
        locale: None,
    }
}

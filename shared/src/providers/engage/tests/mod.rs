//! Unit tests of the Engage adapter: the webhook's authentication and handshake, the events
//! read from published and realistic notifications, categories, availability and set-up.

use serde_json::{Value, json};

use super::*;
use crate::domain::Message;
use crate::providers::kit::testing;
use crate::providers::{ProviderEvent, ProviderEventKind};

mod events;
mod rules;

const SECRET: &str = "whsec-engage";
const VERIFY: &str = "verify-me";
const BOT_USER: &str = "4f4f3a08a90ffb27ee000583";
const AGENT: &str = "52fcf5157aa58dd768000006";
const THREAD: &str = "565739986b65795289000029";

/// The `intervention.assigned` notification of Engage's "Event Types" page, as published.
const ASSIGNED: &str = r#"{"id":"bd13a9d9baa8c20cf93046cd","domain_id":"48cc6703bdae1462ce06a555","events":[{"type":"intervention.assigned","id":"70d340997b8cd2c6f4dfee22","user_id":"4f4f3a08a90ffb27ee000583","resource":{"type":"intervention","id":"5464b5c04d61639684110000","metadata":{"custom_field_values":{"sample_field":null},"category_ids":["4f3951557aa58d1462017a8f","50895dbea90ffb3c35001ace"],"closed_at":null,"deferred_at":null,"identity_id":"557f003c7765620fdc0002cc","source_id":"56178fd27765625e06000a66","thread_id":"565739986b65795289000029","user_id":"52fcf5157aa58dd768000006"}},"issued_at":"2014-02-10T18:35:35.251Z"}]}"#;

/// The `content.imported` notification of Engage's chatbot implementation guide.
const IMPORTED: &str = r#"{"id":"50df05692c64ac7799f09a98","domain_id":"48cc6703bdae1462ce06a555","events":[{"type":"content.imported","id":"5950328914bf8a22305f446a","issued_at":"2017-06-25T22:00:41.339Z","resource":{"type":"answers/private_message","id":"5950328814bf8abf7f79e3cb","metadata":{"approval_required":false,"author_id":"536cbd9e7aa58d58f3000050","body":"This is just one more test email, sent automatically","body_input_format":"text","creator_id":null,"date":"2017-06-26","first_in_thread":false,"foreign_categories":[],"foreign_id":"1056855","has_attachment":false,"intervention_id":"541014eea90ffb3f600000ac","in_reply_to_author_id":"4dcceb1f2f1a692a2a000057","in_reply_to_id":"541015010f4ca111df0000b0","source_id":"4f97fbea7aa58d073900344f","status":"assigned","thread_id":"541014e17aa58d8ccf000024","thread_title":"This is a nagios check thread, please don't delete!","created_from":"synchronizer","private":true}}}]}"#;

fn secret() -> Secret {
    Secret::from_json(r#"{"accessToken":"tok","webhookSecret":"whsec-engage","verifyToken":"verify-me"}"#).unwrap()
}

fn provider_with(settings: Value) -> Result<EngageProvider, ProviderSetupError> {
    EngageProvider::new(
        &testing::config(ProviderKind::Engage, settings),
        &secret(),
        reqwest::Client::new(),
    )
}

fn base_settings() -> Value {
    json!({
        "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
        "botUserId": BOT_USER
    })
}

fn provider() -> EngageProvider {
    provider_with(base_settings()).unwrap()
}

fn headers(secret: Option<&str>) -> lambda_http::http::HeaderMap {
    match secret {
        Some(s) => testing::headers(&[(SECRET_HEADER, s)]),
        None => testing::headers(&[]),
    }
}

fn verify(
    p: &EngageProvider,
    method: &str,
    secret: Option<&str>,
    query: &[(String, String)],
    body: &[u8],
) -> Result<(), CallbackError> {
    let h = headers(secret);
    let req = CallbackRequest {
        method,
        headers: &h,
        query,
        body,
    };
    p.verify_callback(&req, Utc::now())
}

fn parse_raw(
    p: &EngageProvider,
    method: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Result<Callback, CallbackError> {
    let h = headers(Some(SECRET));
    let req = CallbackRequest {
        method,
        headers: &h,
        query,
        body,
    };
    p.parse_callback(&req)
}

fn events(p: &EngageProvider, body: &Value) -> Vec<ProviderEvent> {
    let bytes = serde_json::to_vec(body).unwrap();
    testing::events(parse_raw(p, "POST", &[], &bytes).unwrap())
}

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn envelope(events: Vec<Value>) -> Value {
    json!({ "id": "req-1", "domain_id": "48cc6703bdae1462ce06a555", "events": events })
}

fn reply(event_id: &str, user: Option<&str>, body: &str) -> Value {
    let mut e = json!({
        "type": "content.replied", "id": event_id, "issued_at": "2026-11-25T09:05:00.000Z",
        "resource": { "type": "chat/message", "id": format!("c-{event_id}"), "metadata": {
            "approval_required": false, "author_id": "536cbd9e7aa58d58f3000099", "body": body,
            "body_input_format": "text", "creator_id": user, "first_in_thread": false,
            "has_attachment": false, "intervention_id": "541014eea90ffb3f600000ac",
            "in_reply_to_id": "541015010f4ca111df0000b0", "source_id": "56178fd27765625e06000a66",
            "status": "replied", "thread_id": THREAD, "private": true
        } }
    });
    if let Some(u) = user {
        e["user_id"] = json!(u);
    }
    e
}

fn intervention(kind: &str, event_id: &str, owner: Option<&str>) -> Value {
    json!({
        "type": kind, "id": event_id, "issued_at": "2026-11-25T09:04:00.000Z", "user_id": owner,
        "resource": { "type": "intervention", "id": "5464b5c04d61639684110000", "metadata": {
            "category_ids": ["cat-agent"], "closed_at": null, "deferred_at": null,
            "identity_id": "557f003c7765620fdc0002cc", "source_id": "56178fd27765625e06000a66",
            "thread_id": THREAD, "user_id": owner
        } }
    })
}

#[test]
fn only_the_configured_secret_is_accepted() {
    let p = provider();
    let body = ASSIGNED.as_bytes();
    assert!(verify(&p, "POST", Some(SECRET), &[], body).is_ok());
    assert!(matches!(
        verify(&p, "POST", Some("another-secret"), &[], body),
        Err(CallbackError::Unauthenticated(_))
    ));
    assert!(
        verify(&p, "POST", Some("whsec-engag"), &[], body).is_err(),
        "a prefix is not the secret"
    );
    assert!(matches!(
        verify(&p, "POST", None, &[], body),
        Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
    ));
}

#[test]
fn the_secret_does_not_cover_the_body() {
    // Engage sends the secret itself, not a signature of the body: a changed body with the
    // right secret passes verification (duplicates are absorbed by event-id idempotency).
    let p = provider();
    let tampered = ASSIGNED.replace("52fcf5157aa58dd768000006", "000000000000000000000000");
    assert!(verify(&p, "POST", Some(SECRET), &[], tampered.as_bytes()).is_ok());
}

#[test]
fn the_validation_request_needs_the_secret_and_the_verify_token() {
    let p = provider();
    let good = q(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "abc123"),
        ("hub.verify_token", VERIFY),
    ]);
    assert!(verify(&p, "GET", Some(SECRET), &good, b"").is_ok());
    assert!(verify(&p, "GET", None, &good, b"").is_err());
    let wrong = q(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "abc123"),
        ("hub.verify_token", "nope"),
    ]);
    assert!(matches!(
        verify(&p, "GET", Some(SECRET), &wrong, b""),
        Err(CallbackError::Unauthenticated(_))
    ));
    let missing = q(&[("hub.mode", "subscribe"), ("hub.challenge", "abc123")]);
    assert!(verify(&p, "GET", Some(SECRET), &missing, b"").is_err());
}

#[test]
fn the_challenge_is_echoed_as_the_whole_body() {
    let p = provider();
    let good = q(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "abc123"),
        ("hub.verify_token", VERIFY),
    ]);
    assert_eq!(
        parse_raw(&p, "GET", &good, b"").unwrap(),
        Callback::Challenge {
            status: 200,
            content_type: "text/plain",
            body: "abc123".into()
        }
    );
    let bad_mode = q(&[("hub.mode", "unsubscribe"), ("hub.challenge", "abc123")]);
    assert!(matches!(
        parse_raw(&p, "GET", &bad_mode, b""),
        Err(CallbackError::Malformed(_))
    ));
    let no_challenge = q(&[("hub.mode", "subscribe")]);
    assert!(matches!(
        parse_raw(&p, "GET", &no_challenge, b""),
        Err(CallbackError::Malformed(_))
    ));
}

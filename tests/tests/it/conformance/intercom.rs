//! Intercom, for a user outside Intercom: a contact and a conversation are created, the
//! transcript goes in as a note and the conversation is assigned to the queue's team; user
//! turns are replies of the contact. Webhooks are signed with `X-Hub-Signature` (HMAC-SHA1).

use chrono::{DateTime, Utc};
use handover::providers::intercom;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, Event, refuse_twice};

const BOT_ADMIN: &str = "991267000";
const EVA: &str = "991267001";
const TEAM: &str = "5017691";
const CLIENT_SECRET: &[u8] = b"cs-456";
const CONTACT: &str = "6762f0dd1bb69f9f2193bb83";
/// The conversation the mock creates.
const CREATED: &str = "499";
const REPLY_PATH: &str = "/conversations/499/reply";
const PARTS_PATH: &str = "/conversations/499/parts";

fn conversation_json(id: &str, parts: Value) -> Value {
    json!({
        "type": "conversation", "id": id, "created_at": 1764061200, "updated_at": 1764061200,
        "source": { "type": "conversation", "id": "403918330", "delivered_as": "customer_initiated",
                    "body": "<p>Where is my parcel?</p>", "author": { "type": "user", "id": CONTACT } },
        "contacts": { "type": "contact.list", "contacts": [ { "type": "contact", "id": CONTACT, "external_id": "u-7" } ] },
        "admin_assignee_id": 991267001u64, "team_assignee_id": 5017691, "open": true, "state": "open",
        "conversation_parts": { "type": "conversation_part.list", "conversation_parts": parts, "total_count": 1 }
    })
}

fn notification(id: &str, topic: &str, conv: &str, part: Value) -> Value {
    json!({
        "type": "notification_event", "app_id": "abc123",
        "data": { "type": "notification_event_data", "item": conversation_json(conv, json!([part])) },
        "links": {}, "id": id, "topic": topic, "delivery_status": "pending", "delivery_attempts": 1,
        "delivered_at": 0, "first_sent_at": 1764061260, "created_at": 1764061260, "self": null
    })
}

/// A conversation part by Eva; its id follows the event id, so a repeat repeats it.
fn part(event_id: &str, part_type: &str, body: Value) -> Value {
    json!({
        "type": "conversation_part", "id": format!("p-{event_id}"), "part_type": part_type, "body": body,
        "created_at": 1764061260, "updated_at": 1764061260, "notified_at": 1764061260,
        "assigned_to": if part_type == "assignment" { json!({ "type": "admin", "id": EVA }) } else { Value::Null },
        "author": { "type": "admin", "id": EVA, "name": "Eva", "email": "eva@acme.example" },
        "attachments": [], "external_id": null, "redacted": false
    })
}

async fn posts(api: &MockServer, p: &str) -> Vec<Value> {
    requests_to(api, "POST", p).await.iter().map(json_of).collect()
}

pub struct Intercom;

impl Backend for Intercom {
    const ID: &'static str = "intercom";

    fn secret(&self) -> Value {
        json!({ "accessToken": "tok-123", "clientSecret": "cs-456" })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: intercom\n    secretRef: {secret_ref}\n    apiBaseUrl: {api}\n    botAdminId: \"{BOT_ADMIN}\"\n    teams:\n      general: {TEAM}\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/contacts"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "contact", "id": CONTACT, "role": "user", "external_id": "u-7", "name": "Ann"
            })))
            .mount(api)
            .await;
        Mock::given(method("POST"))
            .and(path("/conversations"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "user_message", "id": "403918330", "created_at": 1764061200,
                "body": "Where is my parcel?", "message_type": "inapp", "conversation_id": CREATED
            })))
            .mount(api)
            .await;
        for p in [REPLY_PATH, PARTS_PATH] {
            Mock::given(method("POST"))
                .and(path(p))
                .respond_with(ResponseTemplate::new(200).set_body_json(conversation_json(CREATED, json!([]))))
                .with_priority(10)
                .mount(api)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/admins"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "admin.list",
                "admins": [
                    { "type": "admin", "id": BOT_ADMIN, "name": "Acme Bot", "away_mode_enabled": false,
                      "has_inbox_seat": true, "team_ids": [] },
                    { "type": "admin", "id": EVA, "name": "Eva", "away_mode_enabled": false,
                      "has_inbox_seat": true, "team_ids": [5017691] }
                ]
            })))
            .mount(api)
            .await;
    }

    async fn starts(&self, api: &MockServer) -> usize {
        requests_to(api, "POST", "/conversations").await.len()
    }

    fn conversation_id(&self, _handover_id: &str) -> String {
        CREATED.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        match event {
            Event::AgentJoined => notification(
                event_id,
                "conversation.admin.assigned",
                conv,
                part(event_id, "assignment", Value::Null),
            ),
            Event::AgentMessage(text) => notification(
                event_id,
                "conversation.admin.replied",
                conv,
                part(event_id, "comment", json!(format!("<p>{text}</p>"))),
            ),
            Event::AgentClosed => notification(
                event_id,
                "conversation.admin.closed",
                conv,
                part(event_id, "close", Value::Null),
            ),
            Event::Unknown => notification(
                event_id,
                "conversation.priority.updated",
                conv,
                part(event_id, "priority_changed", Value::Null),
            ),
        }
    }

    fn headers(&self, _event: Event<'_>, body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match auth {
            Auth::Valid => vec![("x-hub-signature", intercom::signature(CLIENT_SECRET, body))],
            Auth::WrongSecret => vec![("x-hub-signature", intercom::signature(b"another-secret", body))],
            Auth::Missing => Vec::new(),
        }
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// Replies written as the contact.
    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        posts(api, REPLY_PATH)
            .await
            .iter()
            .filter(|b| b["type"] == "user")
            .filter_map(|b| b["body"].as_str().map(str::to_owned))
            .collect()
    }

    /// The bot teammate closes the conversation it created.
    async fn ends(&self, api: &MockServer) -> usize {
        posts(api, PARTS_PATH)
            .await
            .iter()
            .filter(|b| b["message_type"] == "close")
            .count()
    }

    async fn mount_refusals(&self, api: &MockServer) {
        refuse_twice(api, "POST", REPLY_PATH, json!({ "type": "user", "body": "anyone?" })).await;
    }
}

conformance_cases!(Intercom);

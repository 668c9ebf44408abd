//! The generic webhook provider: signed envelopes both ways, the native signature scheme with
//! the provider's own secret.

use chrono::{DateTime, Utc};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, Event, refuse_twice};

pub struct Webhook;

async fn of_kind(api: &MockServer, kind: &str) -> Vec<Value> {
    received(api).await.into_iter().filter(|b| b["type"] == kind).collect()
}

impl Backend for Webhook {
    const ID: &'static str = "desk";

    fn secret(&self) -> Value {
        json!({ "signingSecret": "desk-secret" })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!("    kind: webhook\n    url: {api}/desk\n    secretRef: {secret_ref}\n")
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/desk"))
            .respond_with(ResponseTemplate::new(202))
            .with_priority(10)
            .mount(api)
            .await;
    }

    async fn starts(&self, api: &MockServer) -> usize {
        of_kind(api, "conversation.started").await.len()
    }

    fn conversation_id(&self, handover_id: &str) -> String {
        handover_id.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        let mut v = json!({ "id": event_id, "conversationId": conv, "timestamp": "2026-11-25T09:01:00Z" });
        let extra = match event {
            Event::AgentJoined => json!({ "type": "agent.joined", "agent": { "id": "a-3", "name": "Eva" } }),
            Event::AgentMessage(text) => json!({
                "type": "agent.message", "agent": { "id": "a-3", "name": "Eva" }, "message": { "text": text }
            }),
            Event::AgentClosed => json!({ "type": "conversation.closed" }),
            Event::Unknown => json!({ "type": "agent.coffee_break" }),
        };
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    }

    fn headers(&self, _event: Event<'_>, body: &[u8], auth: Auth, now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        let secret: &[u8] = match auth {
            Auth::Valid => b"desk-secret",
            Auth::WrongSecret => b"not-the-desk-secret",
            Auth::Missing => return Vec::new(),
        };
        handover::signing::headers(secret, now.timestamp(), body).to_vec()
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Ok(())
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        of_kind(api, "user.message")
            .await
            .iter()
            .filter(|b| b["actor"] == "user")
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect()
    }

    async fn ends(&self, api: &MockServer) -> usize {
        of_kind(api, "conversation.ended").await.len()
    }

    async fn mount_refusals(&self, api: &MockServer) {
        refuse_twice(api, "POST", "/desk", json!({ "text": "anyone?" })).await;
    }
}

conformance_cases!(Webhook);

//! Genesys Cloud Open Messaging: a client-credentials token, one inbound message that creates
//! the conversation, outbound webhooks signed with `X-Hub-Signature-256`. Webhooks report
//! agent messages only: the agent's first message is the join, and the close is learnt by
//! polling the conversation.

use chrono::{DateTime, Utc};
use handover::providers::genesys;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, CloseBy, Event, refuse_twice};

const INTEGRATION: &str = "int-1";
const GENESYS_CONVERSATION: &str = "gconv-1";
const WEBHOOK_SECRET: &[u8] = b"whsec-test";
const TOKEN_PATH: &str = "/oauth/token";
const INBOUND_PATH: &str = "/api/v2/conversations/messages/int-1/inbound/open/message";
const CONVERSATION_PATH: &str = "/api/v2/conversations/messages/gconv-1";

/// A polled `MessageConversation` with participants of the given purpose and state.
fn polled(participants: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = participants
        .iter()
        .enumerate()
        .map(|(i, (purpose, state))| {
            json!({ "id": format!("p-{i}"), "name": "Eva Peeters", "purpose": purpose, "state": state,
                    "user": { "id": format!("u-{i}") } })
        })
        .collect();
    json!({ "id": GENESYS_CONVERSATION, "participants": list })
}

/// The inbound messages other than the one that opens the conversation.
async fn inbound(api: &MockServer) -> Vec<Value> {
    requests_to(api, "POST", INBOUND_PATH)
        .await
        .iter()
        .map(json_of)
        .collect()
}

fn is_start(body: &Value) -> bool {
    body["channel"]["messageId"]
        .as_str()
        .is_some_and(|id| id.ends_with("-start"))
}

pub struct Genesys;

impl Backend for Genesys {
    const ID: &'static str = "genesys";

    fn secret(&self) -> Value {
        json!({ "clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-test" })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: genesys\n    region: mypurecloud.ie\n    integrationId: {INTEGRATION}\n    apiBaseUrl: '{api}'\n    loginBaseUrl: '{api}'\n    secretRef: {secret_ref}\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "access_token": "tok-1", "token_type": "bearer", "expires_in": 86400 })),
            )
            .mount(api)
            .await;
        Mock::given(method("POST"))
            .and(path(INBOUND_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "gm-1", "channel": { "from": { "id": "x", "idType": "Opaque" }, "time": "2026-11-25T09:00:00.000Z" },
                "type": "Text", "text": "echo", "conversationId": GENESYS_CONVERSATION
            })))
            .with_priority(10)
            .mount(api)
            .await;
        Mock::given(method("PATCH"))
            .and(path(CONVERSATION_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": GENESYS_CONVERSATION })))
            .mount(api)
            .await;
        // Polled by the evaluator: until a case says otherwise the customer waits in the queue.
        Mock::given(method("GET"))
            .and(path(CONVERSATION_PATH))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(polled(&[("customer", "connected"), ("acd", "connected")])),
            )
            .with_priority(10)
            .mount(api)
            .await;
    }

    async fn starts(&self, api: &MockServer) -> usize {
        inbound(api).await.iter().filter(|b| is_start(b)).count()
    }

    /// Genesys addresses the customer by the id we gave it: the handover id.
    fn conversation_id(&self, handover_id: &str) -> String {
        handover_id.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        let channel = json!({
            "id": INTEGRATION, "platform": "Open", "type": "Private", "to": { "id": conv },
            "from": { "nickname": "Eva", "id": INTEGRATION, "idType": "Opaque" },
            "time": "2026-11-25T09:01:00.000Z", "messageId": event_id
        });
        let text = |t: &str| {
            json!({ "id": event_id, "channel": channel, "type": "Text", "text": t,
                    "direction": "Outbound", "originatingEntity": "Human" })
        };
        match event {
            // The first agent message is the join: Genesys posts no join event.
            Event::AgentJoined => text("Hi, this is Eva."),
            Event::AgentMessage(t) => text(t),
            Event::AgentClosed => unreachable!("Genesys webhooks never report the close; it is polled"),
            Event::Unknown => json!({
                "id": event_id, "channel": channel, "type": "Receipt", "status": "Delivered",
                "isFinalReceipt": true, "direction": "Outbound"
            }),
        }
    }

    fn headers(&self, _event: Event<'_>, body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match auth {
            Auth::Valid => vec![("x-hub-signature-256", genesys::signature(WEBHOOK_SECRET, body))],
            Auth::WrongSecret => vec![("x-hub-signature-256", genesys::signature(b"another-secret", body))],
            Auth::Missing => Vec::new(),
        }
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Ok(())
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        inbound(api)
            .await
            .iter()
            .filter(|b| !is_start(b))
            .filter_map(|b| b["text"].as_str().map(str::to_owned))
            .collect()
    }

    async fn ends(&self, api: &MockServer) -> usize {
        requests_to(api, "PATCH", CONVERSATION_PATH).await.len()
    }

    async fn mount_refusals(&self, api: &MockServer) {
        refuse_twice(api, "POST", INBOUND_PATH, json!({ "text": "anyone?" })).await;
    }

    fn close_by(&self) -> CloseBy {
        CloseBy::Polling
    }

    async fn mount_closed(&self, api: &MockServer) {
        Mock::given(method("GET"))
            .and(path(CONVERSATION_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(polled(&[
                ("customer", "connected"),
                ("acd", "disconnected"),
                ("agent", "disconnected"),
            ])))
            .with_priority(1)
            .mount(api)
            .await;
    }
}

conformance_cases!(Genesys);

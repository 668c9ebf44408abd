//! Proximus #Interact under the adapter's documented default contract: our calls carry the
//! #Interact API token, its callbacks carry the callback token we gave it as a bearer token.

use chrono::{DateTime, Utc};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, Event, refuse_twice};

const CALLBACK_TOKEN: &str = "cbtok-0123456789abcdef";
const CONVERSATION: &str = "ic-1";
const START_PATH: &str = "/interact-api/conversations";
const MESSAGE_PATH: &str = "/interact-api/conversations/ic-1/messages";
const CLOSE_PATH: &str = "/interact-api/conversations/ic-1/close";

pub struct Interact;

impl Backend for Interact {
    const ID: &'static str = "interact";

    fn secret(&self) -> Value {
        json!({ "apiToken": "itok-1", "callbackToken": CALLBACK_TOKEN })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!("    kind: interact\n    apiBaseUrl: '{api}/interact-api'\n    secretRef: {secret_ref}\n")
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path(START_PATH))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "conversationId": CONVERSATION })))
            .with_priority(10)
            .mount(api)
            .await;
        for (p, status) in [(MESSAGE_PATH, 202), (CLOSE_PATH, 200)] {
            Mock::given(method("POST"))
                .and(path(p))
                .respond_with(ResponseTemplate::new(status))
                .with_priority(10)
                .mount(api)
                .await;
        }
    }

    async fn starts(&self, api: &MockServer) -> usize {
        requests_to(api, "POST", START_PATH).await.len()
    }

    fn conversation_id(&self, _handover_id: &str) -> String {
        CONVERSATION.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        match event {
            Event::AgentJoined => json!({
                "type": "agent.joined", "id": event_id, "conversationId": conv, "agent": { "id": "a-3", "name": "Eva" }
            }),
            Event::AgentMessage(text) => json!({
                "type": "agent.message", "id": event_id, "conversationId": conv,
                "agent": { "id": "a-3", "name": "Eva" }, "message": { "text": text }
            }),
            Event::AgentClosed => json!({ "type": "conversation.closed", "id": event_id, "conversationId": conv }),
            Event::Unknown => json!({ "type": "agent.typing", "id": event_id, "conversationId": conv }),
        }
    }

    fn headers(&self, _event: Event<'_>, _body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match auth {
            Auth::Valid => vec![("authorization", format!("Bearer {CALLBACK_TOKEN}"))],
            Auth::WrongSecret => vec![("authorization", "Bearer another-token".to_owned())],
            Auth::Missing => Vec::new(),
        }
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Err("the default contract authenticates callbacks with a bearer token, which does not cover the body")
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        requests_to(api, "POST", MESSAGE_PATH)
            .await
            .iter()
            .filter_map(|r| json_of(r)["text"].as_str().map(str::to_owned))
            .collect()
    }

    async fn ends(&self, api: &MockServer) -> usize {
        requests_to(api, "POST", CLOSE_PATH).await.len()
    }

    async fn mount_refusals(&self, api: &MockServer) {
        refuse_twice(api, "POST", MESSAGE_PATH, json!({ "text": "anyone?" })).await;
    }
}

conformance_cases!(Interact);

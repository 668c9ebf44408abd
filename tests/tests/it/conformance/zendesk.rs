//! Zendesk messaging (Sunshine Conversations switchboard, the embedded shape): the handover
//! passes switchboard control to the Agent Workspace; webhooks carry the webhook secret in
//! `X-API-Key`. User turns already live in the SunCo conversation, so none is relayed, and the
//! call the retry case refuses is the hand-back to the bot's integration.

use chrono::{DateTime, Utc};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, Event, Retried, all_texts};

const APP: &str = "5ebee0975ac5304b664a12fa";
const CONV: &str = "f52b01137aa6c250bc7251fa";
const WEBHOOK_SECRET: &str = "8564b3e6a8b20a4bdb68b05ce9bc5936";

fn pass_control_path() -> String {
    format!("/sc/v2/apps/{APP}/conversations/{CONV}/passControl")
}

fn release_control_path() -> String {
    format!("/sc/v2/apps/{APP}/conversations/{CONV}/releaseControl")
}

fn agent_workspace() -> Value {
    json!({ "id": "69b431db701f816b35d0929e", "name": "zd-agentWorkspace",
            "integrationId": "69b431da02e3021a49370df2", "integrationType": "zd:agentWorkspace" })
}

fn chatbot() -> Value {
    json!({ "id": "5eecde2dcdbffb08f5c3ed37", "name": "chatbot",
            "integrationId": "5f11a650e4e987667c2051d1", "integrationType": "custom" })
}

/// A `conversation:message` written by an agent in the Agent Workspace.
fn agent_message(event_id: &str, conv: &str, text: &str) -> Value {
    json!({
        "id": event_id, "createdAt": "2026-11-25T09:05:00.000Z", "type": "conversation:message",
        "payload": {
            "conversation": { "id": conv, "type": "personal", "activeSwitchboardIntegration": agent_workspace() },
            "message": {
                "id": format!("msg-{event_id}"), "received": "2026-11-25T09:05:00.000Z",
                "author": { "type": "business", "displayName": "Eva" },
                "content": { "type": "text", "text": text },
                "source": { "type": "zd:agentWorkspace" }
            }
        }
    })
}

/// Control-passing calls whose target is `integration`.
async fn passes_to(api: &MockServer, integration: &str) -> usize {
    requests_to(api, "POST", &pass_control_path())
        .await
        .iter()
        .filter(|r| json_of(r)["switchboardIntegration"] == integration)
        .count()
}

pub struct Zendesk;

impl Backend for Zendesk {
    const ID: &'static str = "zd";

    fn secret(&self) -> Value {
        json!({ "keyId": "app_key_1", "keySecret": "s3cr3t", "webhookSecret": WEBHOOK_SECRET })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: zendesk\n    secretRef: {secret_ref}\n    appId: \"{APP}\"\n    apiBaseUrl: {api}/sc\n    botIntegrationId: chatbot\n    ticketFields:\n      transcript: \"360002\"\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        for p in [pass_control_path(), release_control_path()] {
            Mock::given(method("POST"))
                .and(path(p))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
                .with_priority(10)
                .mount(api)
                .await;
        }
    }

    fn handover_request(&self, id: &str, session: &str) -> Value {
        let mut r = handover_request(id, session);
        r["handover"]["providerConversationId"] = json!(CONV);
        r
    }

    async fn starts(&self, api: &MockServer) -> usize {
        passes_to(api, "zd:agentWorkspace").await
    }

    fn conversation_id(&self, _handover_id: &str) -> String {
        CONV.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        let e = match event {
            // The agent's first message is the join: SunCo reports no separate event.
            Event::AgentJoined => agent_message(event_id, conv, "Hi, this is Eva."),
            Event::AgentMessage(text) => agent_message(event_id, conv, text),
            Event::AgentClosed => json!({
                "id": event_id, "createdAt": "2026-11-25T09:10:00.000Z", "type": "switchboard:passControl",
                "payload": { "conversation": { "id": conv, "type": "personal", "activeSwitchboardIntegration": chatbot() },
                             "reason": "ticketClosed" }
            }),
            Event::Unknown => json!({
                "id": event_id, "createdAt": "2026-11-25T09:06:00.000Z", "type": "conversation:read",
                "payload": { "conversation": { "id": conv, "type": "personal" },
                             "activity": { "type": "conversation:read", "author": { "type": "user" } } }
            }),
        };
        json!({ "app": { "id": APP }, "webhook": { "id": "5f4eaef81e3dcc117c7ba48a", "version": "v2" }, "events": [e] })
    }

    fn headers(&self, _event: Event<'_>, _body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match auth {
            Auth::Valid => vec![("x-api-key", WEBHOOK_SECRET.to_owned())],
            Auth::WrongSecret => vec![("x-api-key", "not-the-webhook-secret".to_owned())],
            Auth::Missing => Vec::new(),
        }
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Err("SunCo sends the webhook secret itself in X-API-Key; nothing covers the body")
    }

    fn relays_user_messages(&self) -> Result<(), &'static str> {
        Err("embedded shape: user turns are already messages of the SunCo conversation")
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        all_texts(api).await
    }

    async fn ends(&self, api: &MockServer) -> usize {
        passes_to(api, "chatbot").await + requests_to(api, "POST", &release_control_path()).await.len()
    }

    fn retried(&self) -> Retried {
        Retried::End
    }

    async fn mount_refusals(&self, api: &MockServer) {
        let hand_back = json!({ "switchboardIntegration": "chatbot" });
        Mock::given(method("POST"))
            .and(path(pass_control_path()))
            .and(body_partial_json(&hand_back))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "45"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(api)
            .await;
        Mock::given(method("POST"))
            .and(path(pass_control_path()))
            .and(body_partial_json(&hand_back))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(api)
            .await;
    }
}

conformance_cases!(Zendesk);

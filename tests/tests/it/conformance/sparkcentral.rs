//! Sparkcentral / Hootsuite Inbox virtual agent (embedded): the handover is one call that
//! completes the virtual agent's part; Sparkcentral reports no join and no agent message,
//! only the conversation coming back (`CONVERSATION_DELEGATED`). Webhooks are signed with
//! `X-Hootsuite-Signature` under the hex shared secret.

use chrono::{DateTime, SecondsFormat, Utc};
use handover::providers::sparkcentral;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Auth, Backend, Event, Retried, all_texts, refuse_twice};

const CONV: &str = "0ad42eef-a806-11eb-9642-f1ceb2f21def";
const SHARED: &str = "5e1f3c9a7b2d4e6f8091a2b3c4d5e6f70123456789abcdef0fedcba987654321";
const OTHER_SHARED: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const TOKEN_PATH: &str = "/oauth2/token";
const CONVERSATION_PATH: &str = "/inbox/v1/virtual-agent/conversations/0ad42eef-a806-11eb-9642-f1ceb2f21def";

async fn manipulations(api: &MockServer) -> Vec<Value> {
    requests_to(api, "POST", CONVERSATION_PATH)
        .await
        .iter()
        .map(json_of)
        .collect()
}

pub struct Sparkcentral;

impl Backend for Sparkcentral {
    const ID: &'static str = "sc";

    fn secret(&self) -> Value {
        json!({ "clientId": "va-client", "clientSecret": "va-secret", "sharedSecret": SHARED })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: sparkcentral\n    secretRef: {secret_ref}\n    region: hootsuite\n    apiBaseUrl: {api}\n    organizationId: \"900002\"\n    handoverMessage: One moment, a colleague takes over.\n    queueTopics:\n      general: Parcels\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "access_token": "tok-sc", "token_Type": "bearer", "expires_in": 3599 })),
            )
            .mount(api)
            .await;
        Mock::given(method("POST"))
            .and(path(CONVERSATION_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .with_priority(10)
            .mount(api)
            .await;
        Mock::given(method("GET"))
            .and(path("/inbox/v1/user-presence/online-agents"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "agents": [
                { "id": "e7553889-d775-11ec-9dc9-4e81c846c8b4", "userPresence": "AVAILABLE", "statusChangedAt": "2026-11-25T08:16:33.413Z" }
            ] })))
            .mount(api)
            .await;
    }

    fn handover_request(&self, id: &str, session: &str) -> Value {
        let mut r = handover_request(id, session);
        r["handover"]["providerConversationId"] = json!(CONV);
        r
    }

    /// The call completing the virtual agent's part with a handover.
    async fn starts(&self, api: &MockServer) -> usize {
        manipulations(api)
            .await
            .iter()
            .filter(|b| b["complete"] == "HANDOVER")
            .count()
    }

    fn conversation_id(&self, _handover_id: &str) -> String {
        CONV.to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        let kind = match event {
            Event::AgentClosed => "CONVERSATION_DELEGATED",
            Event::Unknown => "CONVERSATION_TOPICS_CHANGED",
            Event::AgentJoined | Event::AgentMessage(_) => {
                unreachable!("Sparkcentral reports neither joins nor agent messages")
            }
        };
        json!({
            "timestamp": t0().to_rfc3339_opts(SecondsFormat::Nanos, true),
            "idempotencyKey": event_id, "version": 1, "type": kind,
            "data": {
                "conversationId": conv, "medium": { "id": "fb" },
                "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
                "language": "en",
                "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "primaryIdentifier": "John Smith" }
            }
        })
    }

    fn headers(&self, _event: Event<'_>, body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        let secret = match auth {
            Auth::Valid => SHARED,
            Auth::WrongSecret => OTHER_SHARED,
            Auth::Missing => return Vec::new(),
        };
        vec![("x-hootsuite-signature", sparkcentral::signature(secret, body).unwrap())]
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Ok(())
    }

    fn joins_by_callback(&self) -> Result<(), &'static str> {
        Err("the handover call itself puts the agents in charge; no join is reported")
    }

    fn reports_agent_messages(&self) -> Result<(), &'static str> {
        Err("the virtual-agent API reports nothing agents write")
    }

    fn ends_on_cancel(&self) -> Result<(), &'static str> {
        Err("the virtual-agent API has no call to take a handed-over conversation back")
    }

    fn relays_user_messages(&self) -> Result<(), &'static str> {
        Err("embedded: user turns are already in the Sparkcentral conversation")
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        all_texts(api).await
    }

    /// Conversation calls other than the handover (none exists to end it).
    async fn ends(&self, api: &MockServer) -> usize {
        manipulations(api)
            .await
            .iter()
            .filter(|b| b["complete"] != "HANDOVER")
            .count()
    }

    fn retried(&self) -> Retried {
        Retried::Start
    }

    async fn mount_refusals(&self, api: &MockServer) {
        refuse_twice(api, "POST", CONVERSATION_PATH, json!({ "complete": "HANDOVER" })).await;
    }

    fn quick_replies_form(&self) -> Result<&'static str, &'static str> {
        Err("the handover call carries a fixed message and notes; the bot's turns are already in the conversation")
    }
}

conformance_cases!(Sparkcentral);

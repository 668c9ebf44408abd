//! Sparkcentral (Hootsuite Inbox) virtual agents end to end: the real handlers and the emulator,
//! a native bot platform on a mock server, and a mock answering like the Virtual Agent REST API
//! (token endpoint and `POST …/virtual-agent/conversations/{id}`). Callbacks are the virtual
//! agent's webhook events, shaped like the documented examples and signed as Sparkcentral signs
//! them: lowercase hex HMAC-SHA256 of the body, keyed with the hex-decoded shared secret.
//!
//! What this shape cannot show: Sparkcentral tells a virtual agent nothing about agents (no
//! join, no agent message, no typing), and after the handover the virtual agent can no longer
//! act on the conversation. So the "agent" part of a handover is invisible here: the session
//! waits until the conversation comes back to the virtual agent. Nothing is relayed and nothing
//! goes through the outbox towards Sparkcentral; the call that can fail and be retried is the
//! handover itself, which runs inline (one quick second try, then fail-over).

use chrono::{Duration, SecondsFormat};
use handover::domain::{EndReason, State};
use handover::providers::sparkcentral;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A Hootsuite Inbox conversation id (the spec's example).
const CONV: &str = "0ad42eef-a806-11eb-9642-f1ceb2f21def";
/// The virtual agent's shared secret, as Sparkcentral shows it (hex).
const SHARED: &str = "5e1f3c9a7b2d4e6f8091a2b3c4d5e6f70123456789abcdef0fedcba987654321";
const ORG: &str = "900002";
/// `Basic base64("va-client:va-secret")`, the client id and secret stored below.
const BASIC_AUTH: &str = "Basic dmEtY2xpZW50OnZhLXNlY3JldA==";
/// The access token of Hootsuite's example.
const TOKEN: &str = "oZy8FDUHEiZ0mh0j4rUwOT9t5yHouTzBDsn-x_GROB0.rz-pMQzh-1F6VIGwnJZMBwH3SRwDfEHE4CRi-AClpcg";
const CALLBACK: &str = "/v1/bots/acme/providers/sc/callback";
const BOT_SECRET: &[u8] = b"bot-secret";

/// One generation of the API: Hootsuite Inbox or Sparkcentral's own.
#[derive(Clone, Copy)]
struct Gen {
    region: &'static str,
    token_path: &'static str,
    token_form: &'static str,
    conversation_path: &'static str,
    signature_header: &'static str,
}

const INBOX: Gen = Gen {
    region: "hootsuite",
    token_path: "/oauth2/token",
    token_form: "grant_type=organization_app&organization_id=900002",
    conversation_path: "/inbox/v1/virtual-agent/conversations/0ad42eef-a806-11eb-9642-f1ceb2f21def",
    signature_header: "X-Hootsuite-Signature",
};

const LEGACY: Gen = Gen {
    region: "us",
    token_path: "/virtual-agent/oauth2/token",
    token_form: "grant_type=client_credentials&scope=client-read",
    conversation_path: "/virtual-agent/conversations/0ad42eef-a806-11eb-9642-f1ceb2f21def",
    signature_header: "X-Sparkcentral-Signature",
};

struct World {
    env: TestEnv,
    bot_srv: MockServer,
    sc: MockServer,
    api: Gen,
}

/// One call received by the Sparkcentral mock.
#[derive(Debug)]
struct Call {
    method: String,
    path: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A bot routed to one Sparkcentral provider `sc`; `extra` adds lines to the provider entry.
/// The API answers like Sparkcentral unless a test mounts something more specific first.
async fn world(api: Gen, extra: &str) -> World {
    let env = TestEnv::in_memory().await;
    let bot_srv = MockServer::start().await;
    let sc = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot_srv)
        .await;
    Mock::given(method("POST"))
        .and(path(api.token_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "token_Type": "bearer", "expires_in": 3599
        })))
        .with_priority(10)
        .mount(&sc)
        .await;
    Mock::given(method("POST"))
        .and(path(api.conversation_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .with_priority(10)
        .mount(&sc)
        .await;
    Mock::given(method("GET"))
        .and(path("/inbox/v1/user-presence/online-agents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "agents": [
                { "id": "e7553889-d775-11ec-9dc9-4e81c846c8b4", "userPresence": "AVAILABLE", "statusChangedAt": "2026-11-25T08:16:33.413Z" }
            ]
        })))
        .with_priority(10)
        .mount(&sc)
        .await;
    let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
    let sc_ref = env
        .secret(
            "sparkcentral",
            &json!({ "clientId": "va-client", "clientSecret": "va-secret", "sharedSecret": SHARED }),
        )
        .await;
    let org = if api.region == "hootsuite" {
        format!("    organizationId: \"{ORG}\"\n")
    } else {
        String::new()
    };
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {bot}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: sc\n    kind: sparkcentral\n    secretRef: {sc_ref}\n    region: {region}\n    apiBaseUrl: {api_base}\n{org}    handoverMessage: One moment, a colleague takes over.\n    queueTopics:\n      general: Parcels\n{extra}routing:\n  - provider: sc\n    queue: general\n",
        bot = bot_srv.uri(),
        region = api.region,
        api_base = sc.uri(),
    );
    env.put_bot(&yaml).await;
    World { env, bot_srv, sc, api }
}

impl World {
    async fn send(&self, body: &Value) -> (u16, Value) {
        self.env.send_event("acme", BOT_SECRET, body).await
    }

    /// A virtual-agent webhook event sent now.
    fn event(&self, kind: &str, key: &str, data: Value) -> Value {
        json!({
            "timestamp": self.env.now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            "idempotencyKey": key, "version": 1, "type": kind, "data": data
        })
    }

    /// `CONVERSATION_DELEGATED` / `CONVERSATION_STARTED` data, shaped like the spec's example.
    fn assignment(&self, kind: &str, key: &str) -> Value {
        self.event(
            kind,
            key,
            json!({
                "conversationId": CONV, "medium": { "id": "fb" },
                "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
                "language": "en",
                "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "mediumContactProfileId": "bb7b0f8f00cc989b97f0725b",
                                    "primaryIdentifier": "John Smith", "secondaryIdentifier": "+32439487192" },
                "contactAttributes": [ { "attribute": "email", "value": "john.smith@example.com", "source": "CRM_CONFIRMED" } ]
            }),
        )
    }

    fn inbound(&self, key: &str, text: &str) -> Value {
        self.event(
            "INBOUND_MESSAGE_RECEIVED",
            key,
            json!({
                "conversationId": CONV,
                "message": { "messageId": format!("msg-{key}"), "text": text },
                "trigger": null, "conversationTopics": ["Parcels"],
                "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
                "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "primaryIdentifier": "John Smith" },
                "medium": { "id": "facebook" }
            }),
        )
    }

    /// Forwards a webhook delivery to the callback URL with the given signature headers.
    async fn deliver(&self, headers: Vec<(&str, String)>, bytes: &[u8]) -> (u16, Value) {
        let req = self.env.request("POST", CALLBACK, &headers, bytes);
        self.env.call_provider(req).await
    }

    /// Forwards a webhook delivery signed as Sparkcentral signs it.
    async fn webhook(&self, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let sig = sparkcentral::signature(SHARED, &bytes).unwrap();
        self.deliver(vec![(self.api.signature_header, sig)], &bytes).await
    }

    async fn calls(&self) -> Vec<Call> {
        recorded(&self.sc)
            .await
            .iter()
            .map(|r| {
                let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                Call {
                    method: r.method.as_str().to_owned(),
                    path: r.url.path().to_owned(),
                    auth: h("authorization"),
                    content_type: h("content-type"),
                    body: String::from_utf8_lossy(&r.body).into_owned(),
                }
            })
            .collect()
    }

    /// The token requests, each checked for HTTP Basic client credentials and a form body.
    async fn token_requests(&self) -> Vec<String> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c.path == self.api.token_path)
            .map(|c| {
                assert_eq!(c.method, "POST");
                assert_eq!(c.auth.as_deref(), Some(BASIC_AUTH), "client credentials in HTTP Basic");
                assert_eq!(c.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
                c.body
            })
            .collect()
    }

    /// The conversation manipulations: (Authorization header, JSON body).
    async fn manipulations(&self) -> Vec<(Option<String>, Value)> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c.path == self.api.conversation_path)
            .map(|c| {
                assert_eq!(c.method, "POST");
                assert!(
                    c.content_type
                        .as_deref()
                        .is_some_and(|t| t.starts_with("application/json")),
                    "JSON body"
                );
                (c.auth, serde_json::from_str(&c.body).unwrap_or(Value::Null))
            })
            .collect()
    }

    async fn to_bot_types(&self) -> Vec<String> {
        received(&self.bot_srv)
            .await
            .iter()
            .map(|b| b["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn opened(&self, event_id: &str, session: &str) -> String {
        let (status, answer) = self.send(&sparkcentral_handover(event_id, session)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
        answer["handoverId"].as_str().unwrap().to_owned()
    }
}

fn sparkcentral_handover(id: &str, session: &str) -> Value {
    json!({
        "id": id, "type": "handover.request", "sessionId": session,
        "handover": {
            "trigger": "explicit_request", "providerConversationId": CONV,
            "variables": { "orderId": "A-1" }, "tags": ["vip"], "summary": "Parcel A-1 is late"
        }
    })
}

fn bearer() -> Option<String> {
    Some(format!("Bearer {TOKEN}"))
}

fn expected_handover() -> Value {
    json!({
        "sendMessage": { "text": "One moment, a colleague takes over." },
        "applyConversationNotes": [ { "text": "Handed over by the bot (explicit_request, queue general)\nSummary: Parcel A-1 is late\norderId: A-1\nTags: vip" } ],
        "applyTopics": ["Parcels", "vip"],
        "complete": "HANDOVER"
    })
}

#[tokio::test]
async fn the_virtual_agent_hands_over_and_a_delegation_gives_control_back_to_the_bot() {
    let w = world(INBOX, "").await;

    // The bot is in control: nothing reaches Sparkcentral's API.
    assert_eq!(
        w.send(&user_message("e1", "s-42", "Where is my parcel?")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );
    assert_eq!(
        w.send(&bot_message("e2", "s-42", "Do you have a tracking number?"))
            .await
            .0,
        200
    );
    assert!(w.calls().await.is_empty());

    // The handover: one token, then one call completing the virtual agent's part.
    let handover_id = w.opened("e3", "s-42").await;
    assert_eq!(w.token_requests().await, [INBOX.token_form]);
    let m = w.manipulations().await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, bearer());
    assert_eq!(m[0].1, expected_handover());
    let s = w.env.session("acme", "s-42").await.unwrap();
    // Sparkcentral reports no join: the handover itself puts the agents in charge.
    assert_eq!(s.state, State::Agent);
    assert_eq!(
        s.handover.as_ref().unwrap().provider_conversation_id.as_deref(),
        Some(CONV)
    );

    // While the agents have it, nothing is relayed (the turns are already in Sparkcentral), and
    // a contact message forwarded from the virtual agent's webhook changes nothing.
    assert_eq!(
        w.send(&user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    let (status, answer) = w.webhook(&w.inbound("in-1", "Hello?")).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)), "{answer}");
    assert_eq!(
        w.manipulations().await.len(),
        1,
        "nothing relayed in the embedded shape"
    );
    assert_eq!(
        w.to_bot_types().await,
        ["agent.joined"],
        "Sparkcentral reports nothing about agents: only the join recorded at the start"
    );

    // An agent delegates the conversation to the virtual agent again: the bot takes over.
    let delegated = w.assignment("CONVERSATION_DELEGATED", "6ebc6a78-d9e9-48be-b172-51eda40b7af8");
    let (status, answer) = w.webhook(&delegated).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let to_bot = received(&w.bot_srv).await;
    assert_eq!(to_bot.len(), 2);
    assert_eq!(to_bot[1]["type"], "handover.ended");
    assert_eq!(to_bot[1]["reason"], "agent_closed");
    assert_eq!(to_bot[1]["handoverId"], handover_id.as_str());
    for r in w.bot_srv.received_requests().await.unwrap() {
        assert_signed(&r, BOT_SECRET);
    }
    assert_eq!(w.manipulations().await.len(), 1, "nothing to release at Sparkcentral");
    assert_eq!(
        w.send(&user_message("e5", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );
    let s = w.env.session("acme", "s-42").await.unwrap();
    assert_eq!(s.last_handover.unwrap().end_reason, Some(EndReason::AgentClosed));
    assert!(
        w.env
            .store
            .outbox(&SessionKey::new("acme", "s-42"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sparkcentral_hosts_use_their_own_token_request_paths_and_signature_header() {
    let w = world(LEGACY, "").await;
    w.opened("e1", "s-1").await;
    assert_eq!(w.token_requests().await, [LEGACY.token_form]);
    let m = w.manipulations().await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, bearer());
    assert_eq!(m[0].1, expected_handover());

    // The contact writes again after the agents resolved it and Sparkcentral assigns the
    // conversation to the inception virtual agent: the bot has it back.
    let started = w.assignment("CONVERSATION_STARTED", "36bce710-87d1-4b4c-9299-c873c34fac64");
    let bytes = serde_json::to_vec(&started).unwrap();
    let sig = sparkcentral::signature(SHARED, &bytes).unwrap();
    let (status, answer) = w.deliver(vec![("X-Sparkcentral-Signature", sig)], &bytes).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    assert_eq!(w.to_bot_types().await, ["agent.joined", "handover.ended"]);
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Bot);
}

#[tokio::test]
async fn a_user_cancel_ends_the_handover_and_leaves_sparkcentral_alone() {
    let w = world(INBOX, "").await;
    let handover_id = w.opened("e1", "s-1").await;
    let (status, answer) = w
        .send(&json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );
    assert_eq!(received(&w.bot_srv).await.last().unwrap()["reason"], "user_cancelled");
    // The end was handled (nothing left to deliver), but the virtual agent API has no call to
    // take a handed-over conversation back: Sparkcentral sees one call only, the handover.
    assert!(
        w.env
            .store
            .outbox(&SessionKey::new("acme", "s-1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.manipulations().await.len(), 1);

    // Later, the conversation comes back to the virtual agent: for an ended handover that
    // changes nothing.
    let before = w.env.dump().await;
    let delegated = w.assignment("CONVERSATION_DELEGATED", "d-late");
    assert_eq!(w.webhook(&delegated).await.0, 200);
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Bot);
    assert_eq!(w.env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn a_failing_handover_call_is_tried_again_and_sent_once() {
    let w = world(INBOX, "").await;
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sc)
        .await;
    w.opened("e1", "s-1").await;
    let m = w.manipulations().await;
    assert_eq!(m.len(), 2, "refused once with 429 (Retry-After 1 s), then accepted");
    assert!(m.iter().all(|(_, b)| *b == expected_handover()), "the same request");

    let w = world(INBOX, "").await;
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sc)
        .await;
    w.opened("e1", "s-1").await;
    assert_eq!(w.manipulations().await.len(), 2, "503 once, then accepted");
    assert_eq!(w.token_requests().await.len(), 1, "the token is reused");
}

#[tokio::test]
async fn a_handover_that_went_through_before_a_failure_is_not_lost() {
    let w = world(INBOX, "").await;
    // Sparkcentral applied the first call but the answer was a 503; the second try finds the
    // conversation no longer with the virtual agent (404): the handover did happen.
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sc)
        .await;
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(2)
        .mount(&w.sc)
        .await;
    w.opened("e1", "s-1").await;
    assert_eq!(w.manipulations().await.len(), 2);

    // Without an earlier unanswered attempt, a 404 means the conversation is not the virtual
    // agent's: nothing opens.
    let (status, answer) = w.send(&sparkcentral_handover("e2", "s-2")).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["outcome"], "opened", "{answer}");
    assert_eq!(answer["reason"], "provider_unavailable", "{answer}");
}

#[tokio::test]
async fn a_long_retry_after_fails_the_handover_over_instead_of_waiting() {
    let w = world(INBOX, "").await;
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sc)
        .await;
    let (status, answer) = w.send(&sparkcentral_handover("e1", "s-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["outcome"], "opened", "{answer}");
    assert_eq!(w.manipulations().await.len(), 1, "not tried again inline");
    assert!(
        w.env.session("acme", "s-1").await.is_none_or(|s| s.state == State::Bot),
        "the bot keeps control"
    );

    // Once Retry-After has passed, a new request goes through.
    w.env.clock.advance(Duration::seconds(31));
    w.opened("e2", "s-1").await;
    assert_eq!(w.manipulations().await.len(), 2);
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_the_call_replayed_once() {
    let w = world(INBOX, "").await;
    Mock::given(method("POST"))
        .and(path(INBOX.token_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "expired-token", "token_Type": "bearer", "expires_in": 3599
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sc)
        .await;
    Mock::given(method("POST"))
        .and(path(INBOX.conversation_path))
        .and(header("authorization", "Bearer expired-token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "token_expired", "error_description": "The token has expired", "status_code": 401
        })))
        .with_priority(1)
        .mount(&w.sc)
        .await;
    w.opened("e1", "s-1").await;
    w.opened("e2", "s-2").await;
    let auths: Vec<Option<String>> = w.manipulations().await.into_iter().map(|(a, _)| a).collect();
    assert_eq!(auths, [Some("Bearer expired-token".to_owned()), bearer(), bearer()]);
    assert_eq!(
        w.token_requests().await.len(),
        2,
        "renewed once after the 401, then cached"
    );
}

#[tokio::test]
async fn wrong_missing_or_stale_signatures_are_refused_and_change_nothing() {
    let w = world(INBOX, "").await;
    w.opened("e1", "s-1").await;
    let before = w.env.dump().await;
    let delegated = w.assignment("CONVERSATION_DELEGATED", "d-1");
    let bytes = serde_json::to_vec(&delegated).unwrap();

    let other_secret = sparkcentral::signature("00112233445566778899aabbccddeeff", &bytes).unwrap();
    assert_eq!(
        w.deliver(vec![("X-Hootsuite-Signature", other_secret)], &bytes).await.0,
        401
    );
    assert_eq!(w.deliver(vec![], &bytes).await.0, 401);
    let good = sparkcentral::signature(SHARED, &bytes).unwrap();
    let mut tampered = bytes.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    assert_eq!(w.deliver(vec![("X-Hootsuite-Signature", good)], &tampered).await.0, 401);

    // Correctly signed, but sent more than five minutes ago: a replay.
    w.env.clock.advance(Duration::minutes(6));
    let (status, _) = w.webhook(&delegated).await;
    assert_eq!(status, 401);

    assert_eq!(w.env.dump().await, before);
    assert_eq!(
        w.to_bot_types().await,
        ["agent.joined"],
        "only the join recorded at the start"
    );
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Agent);
}

#[tokio::test]
async fn a_request_without_the_conversation_id_opens_nothing() {
    let w = world(INBOX, "").await;
    let mut request = sparkcentral_handover("e1", "s-1");
    request["handover"]
        .as_object_mut()
        .unwrap()
        .remove("providerConversationId");
    let (status, answer) = w.send(&request).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["outcome"], "opened", "{answer}");
    assert!(w.calls().await.is_empty(), "no call without a conversation");
}

#[tokio::test]
async fn with_every_agent_away_the_handover_is_not_offered() {
    let w = world(INBOX, "    checkOnlineAgents: true\n").await;
    Mock::given(method("GET"))
        .and(path("/inbox/v1/user-presence/online-agents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "agents": [
                { "id": "f7553884-d876-11ec-3dc5-4e81684ac8bb", "userPresence": "AWAY",
                  "awayStateId": "e75893ea-d775-11ec-9dc9-4e81c846c8b4", "statusChangedAt": "2026-11-25T08:17:34.414Z" }
            ]
        })))
        .with_priority(1)
        .mount(&w.sc)
        .await;
    let (status, answer) = w.send(&sparkcentral_handover("e1", "s-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "closed", "{answer}");
    assert_eq!(answer["reason"], "no_agents_online", "{answer}");
    assert!(w.manipulations().await.is_empty(), "nothing handed over");
    let presence: Vec<Call> = w.calls().await.into_iter().filter(|c| c.method == "GET").collect();
    assert_eq!(presence.len(), 1);
    assert_eq!(presence[0].auth, bearer());
}

#[tokio::test]
async fn with_an_available_agent_the_handover_opens() {
    let w = world(INBOX, "    checkOnlineAgents: true\n").await;
    w.opened("e1", "s-1").await;
    assert_eq!(w.manipulations().await.len(), 1);
}

#[tokio::test]
async fn the_evaluator_refreshes_agent_presence() {
    let w = world(INBOX, "    checkOnlineAgents: true\n").await;
    assert_eq!(
        w.env.refreshed_presence("acme", "sc", "general").await,
        Some(Some(true))
    );
}

#[tokio::test]
async fn without_presence_checks_the_evaluator_stores_no_presence() {
    let w = world(INBOX, "").await;
    assert_eq!(w.env.refreshed_presence("acme", "sc", "general").await, None);
}

/// A form body (`application/x-www-form-urlencoded`) as a JSON object of strings.
fn form_fields(body: &str) -> Value {
    let url = reqwest::Url::parse(&format!("http://form.invalid/?{body}")).unwrap();
    Value::Object(
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

#[tokio::test]
async fn every_request_body_matches_hootsuites_published_schema() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sparkcentral/inbox-requests.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = |operation: &str| {
        let mut root = spec["operations"][operation]["schema"].clone();
        assert!(root.is_object(), "no schema for {operation}");
        root["components"] = spec["components"].clone();
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{operation}: {e}"))
    };
    const MANIPULATE: &str = "POST /inbox/v1/virtual-agent/conversations/{conversationId}";
    const TOKEN: &str = "POST /oauth2/token";

    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for api in [INBOX, LEGACY] {
        let w = world(api, "").await;
        // A handover (token, then the manipulation with message, note, topics and HANDOVER),
        // a user turn and the user's cancel, which send nothing more.
        w.opened("e1", "s-1").await;
        w.send(&user_message("e2", "s-1", "Still there?")).await;
        w.send(&json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"}))
            .await;
        for call in w.calls().await.into_iter().filter(|c| c.method != "GET") {
            let (operation, body) = match call.path.as_str() {
                "/oauth2/token" => (TOKEN, form_fields(&call.body)),
                // Sparkcentral's own hosts: the same Virtual Agent API under its older path
                // (assumed to take the same body; Hootsuite's description covers the Inbox path).
                p if p == INBOX.conversation_path || p == LEGACY.conversation_path => {
                    (MANIPULATE, serde_json::from_str(&call.body).unwrap())
                }
                // Sparkcentral's token request (client credentials, scope `client-read`) is not
                // in Hootsuite's description: nothing to validate it against.
                p if p == LEGACY.token_path => continue,
                other => panic!("a request to {other} has no schema here"),
            };
            let media = spec["operations"][operation]["mediaType"].as_str().unwrap();
            assert!(
                call.content_type.as_deref().is_some_and(|t| t.starts_with(media)),
                "{operation} sent as {:?}",
                call.content_type
            );
            let errors: Vec<String> = validator(operation)
                .iter_errors(&body)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            assert!(errors.is_empty(), "{operation} {body}: {errors:?}");
            *checked.entry(operation).or_default() += 1;
        }
    }
    // Each kind of request was sent and checked; the schemas can refuse (a wrong body fails).
    assert_eq!(checked.get(MANIPULATE), Some(&2), "{checked:?}");
    assert_eq!(checked.get(TOKEN), Some(&1), "{checked:?}");
    assert!(
        !validator(MANIPULATE).is_valid(&json!({"complete": "HANDED_OVER", "applyTopics": "Parcels"})),
        "an unknown completion and topics that are not a list are refused"
    );
    assert!(
        !validator(TOKEN).is_valid(&json!({"grant_type": "client_credentials"})),
        "a token request without the organization is refused"
    );
}

/// `fixtures/sparkcentral/inbox-queue.json`: Hootsuite's published queue, presence-metric and
/// lock operations (sources in its `_source`).
fn inbox_queue() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sparkcentral/inbox-queue.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

/// A validator of one operation's request or response schema in the fixture.
fn inbox_schema(spec: &Value, operation: &str, which: &str) -> jsonschema::Validator {
    let mut root = spec["operations"][operation][which].clone();
    assert!(root.is_object(), "no {which} for {operation}");
    root["components"] = spec["components"].clone();
    jsonschema::validator_for(&root).unwrap()
}

#[tokio::test]
async fn a_queues_teams_decide_its_availability() {
    const METRIC: &str = "POST /inbox/v1/user-presence/metrics/agent-availability";
    let spec = inbox_queue();
    let w = world(
        INBOX,
        "    checkOnlineAgents: true\n    queueTeams:\n      general: [\"team-nl\", \"team-be\"]\n",
    )
    .await;
    // Someone is available in the organization, but nobody in the queue's teams.
    Mock::given(method("POST"))
        .and(path("/inbox/v1/user-presence/metrics/agent-availability"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": 0})))
        .mount(&w.sc)
        .await;
    let (status, answer) = w.send(&sparkcentral_handover("e1", "s-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["reason"], "no_agents_online", "{answer}");
    let asked: Vec<Call> = w
        .calls()
        .await
        .into_iter()
        .filter(|c| c.path == "/inbox/v1/user-presence/metrics/agent-availability")
        .collect();
    assert_eq!(asked.len(), 1);
    let body: Value = serde_json::from_str(&asked[0].body).unwrap();
    assert_eq!(
        body,
        json!({"teamIds": ["team-nl", "team-be"], "userPresenceStatus": "AVAILABLE"})
    );
    assert!(inbox_schema(&spec, METRIC, "requestSchema").is_valid(&body));
    assert!(
        !inbox_schema(&spec, METRIC, "requestSchema").is_valid(&json!({"userPresenceStatus": "BUSY"})),
        "the schema can refuse"
    );
    assert!(inbox_schema(&spec, METRIC, "responseSchema").is_valid(&json!({"value": 0})));
}

#[tokio::test]
async fn with_join_from_lock_the_agent_who_locked_the_conversation_joins_and_the_wait_is_hootsuites() {
    const LOCK: &str = "GET /inbox/v1/queue/lock";
    let spec = inbox_queue();
    let w = world(INBOX, "    joinFromLock: true\n").await;
    // Queue metrics as Hootsuite documents them: 6 contacts waiting, the longest for 131 s.
    for (p, op) in [
        (
            "/inbox/v1/queue/metrics/contacts-waiting",
            "POST /inbox/v1/queue/metrics/contacts-waiting",
        ),
        (
            "/inbox/v1/queue/metrics/longest-wait-time",
            "POST /inbox/v1/queue/metrics/longest-wait-time",
        ),
    ] {
        let value = spec["operations"][op]["examples"]["singleValue"]["value"].clone();
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": value })))
            .mount(&w.sc)
            .await;
    }
    // Nobody has locked it yet: the published example's lock is another conversation's.
    let example = spec["operations"][LOCK]["example"].clone();
    assert!(inbox_schema(&spec, LOCK, "responseSchema").is_valid(&example));
    Mock::given(method("GET"))
        .and(path("/inbox/v1/queue/lock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(example.clone()))
        .with_priority(5)
        .mount(&w.sc)
        .await;
    w.opened("e1", "s-1").await;
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Waiting);
    assert!(w.to_bot_types().await.is_empty(), "no join at the handover call");
    tick_minutes(&w.env, 1).await;
    tick_minutes(&w.env, 1).await;
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Waiting);
    // The still-waiting nudge (every 120 s by default) carries Hootsuite's queue metrics.
    let events = received(&w.bot_srv).await;
    let waiting = of_type(&events, "handover.waiting");
    assert_eq!(waiting.len(), 1, "{events:?}");
    assert_eq!(waiting[0]["estimatedWaitSeconds"], 131);
    assert_eq!(waiting[0]["position"], 6);

    // Eva locks it: the next poll reports her as the agent who joined.
    let mut locked = example.clone();
    locked["locks"][0]["conversationId"] = json!(CONV);
    Mock::given(method("GET"))
        .and(path("/inbox/v1/queue/lock"))
        .respond_with(ResponseTemplate::new(200).set_body_json(locked))
        .with_priority(1)
        .mount(&w.sc)
        .await;
    tick_minutes(&w.env, 1).await;
    let events = received(&w.bot_srv).await;
    let joined = of_type(&events, "agent.joined");
    assert_eq!(joined.len(), 1, "{events:?}");
    assert_eq!(joined[0]["agent"]["id"], "57fc9dc2-2b6f-11ec-aed1-66640cff431f");
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Agent);
}

//! Zendesk messaging (Sunshine Conversations switchboard, the embedded shape) end to end: the
//! real handlers and the emulator, a native bot platform on a mock server, and a mock answering
//! like the SunCo API. Webhooks are shaped like the OpenAPI spec's examples and carry the webhook
//! secret in `X-API-Key`, as SunCo sends them.
//!
//! In this shape user and bot turns are already SunCo messages, so nothing is relayed to the
//! provider; the calls that can fail and be retried are the switchboard actions (the retry test
//! uses the hand-back at the end).

use handover::domain::{Actor, State};
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const APP: &str = "5ebee0975ac5304b664a12fa";
pub(crate) const CONV: &str = "f52b01137aa6c250bc7251fa";
pub(crate) const WEBHOOK_SECRET: &str = "8564b3e6a8b20a4bdb68b05ce9bc5936";
/// `Basic base64("app_key_1:s3cr3t")`, the key id and secret stored below.
const BASIC_AUTH: &str = "Basic YXBwX2tleV8xOnMzY3IzdA==";

pub(crate) fn pass_control_path() -> String {
    format!("/sc/v2/apps/{APP}/conversations/{CONV}/passControl")
}

pub(crate) fn release_control_path() -> String {
    format!("/sc/v2/apps/{APP}/conversations/{CONV}/releaseControl")
}

pub(crate) struct World {
    pub(crate) env: TestEnv,
    pub(crate) bot_srv: MockServer,
    pub(crate) zd_srv: MockServer,
}

pub(crate) const BOT_SECRET: &[u8] = b"bot-secret";

/// A bot routed to one Zendesk provider `zd`; `bot_integration` is the switchboard integration
/// control goes back to (none: control is released). Zendesk's API answers 200 `{}` unless a
/// test mounts something more specific first.
pub(crate) async fn world(bot_integration: Option<&str>) -> World {
    let env = TestEnv::in_memory().await;
    let bot_srv = MockServer::start().await;
    let zd_srv = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot_srv)
        .await;
    for p in [pass_control_path(), release_control_path()] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .with_priority(10)
            .mount(&zd_srv)
            .await;
    }
    let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
    let zd_ref = env
        .secret(
            "zendesk",
            &json!({ "keyId": "app_key_1", "keySecret": "s3cr3t", "webhookSecret": WEBHOOK_SECRET }),
        )
        .await;
    let bot_line = bot_integration
        .map(|b| format!("    botIntegrationId: {b}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {bot}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: zd\n    kind: zendesk\n    secretRef: {zd_ref}\n    appId: \"{APP}\"\n    apiBaseUrl: {zd}/sc\n{bot_line}    ticketFields:\n      summary: \"360001\"\n      transcript: \"360002\"\n      orderId: \"360003\"\nrouting:\n  - provider: zd\n    queue: general\n",
        bot = bot_srv.uri(),
        zd = zd_srv.uri(),
    );
    env.put_bot(&yaml).await;
    World { env, bot_srv, zd_srv }
}

impl World {
    pub(crate) async fn send(&self, body: &Value) -> (u16, Value) {
        self.env.send_event("acme", BOT_SECRET, body).await
    }

    /// Posts a SunCo webhook to the provider's callback URL with `key` in `X-API-Key`.
    async fn webhook_with_key(&self, key: Option<&str>, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers: Vec<(&str, String)> = key.map(|k| ("x-api-key", k.to_owned())).into_iter().collect();
        let req = self
            .env
            .request("POST", "/v1/bots/acme/providers/zd/callback", &headers, &bytes);
        self.env.call_provider(req).await
    }

    pub(crate) async fn webhook(&self, body: &Value) -> (u16, Value) {
        self.webhook_with_key(Some(WEBHOOK_SECRET), body).await
    }

    /// The Zendesk API calls so far: (path, JSON body), each checked for Basic auth and JSON.
    pub(crate) async fn zd_calls(&self) -> Vec<(String, Value)> {
        let reqs = recorded(&self.zd_srv).await;
        for r in &reqs {
            let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            assert_eq!(
                h("authorization").as_deref(),
                Some(BASIC_AUTH),
                "basic auth with key id and secret"
            );
            assert!(
                h("content-type").is_some_and(|c| c.starts_with("application/json")),
                "JSON body"
            );
        }
        reqs.iter()
            .map(|r| {
                (
                    r.url.path().to_owned(),
                    serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    pub(crate) async fn to_bot_types(&self) -> Vec<String> {
        received(&self.bot_srv)
            .await
            .iter()
            .map(|b| b["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub(crate) async fn opened(&self, event_id: &str, session: &str) -> String {
        let (status, answer) = self.send(&zendesk_handover(event_id, session)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
        answer["handoverId"].as_str().unwrap().to_owned()
    }
}

pub(crate) fn zendesk_handover(id: &str, session: &str) -> Value {
    json!({
        "id": id, "type": "handover.request", "sessionId": session,
        "handover": {
            "trigger": "explicit_request", "providerConversationId": CONV,
            "variables": { "orderId": "A-1" }, "tags": ["vip"], "summary": "Parcel A-1 is late"
        }
    })
}

pub(crate) fn envelope(events: Vec<Value>) -> Value {
    json!({ "app": { "id": APP }, "webhook": { "id": "5f4eaef81e3dcc117c7ba48a", "version": "v2" }, "events": events })
}

pub(crate) fn agent_workspace() -> Value {
    json!({ "id": "69b431db701f816b35d0929e", "name": "zd-agentWorkspace",
            "integrationId": "69b431da02e3021a49370df2", "integrationType": "zd:agentWorkspace" })
}

fn chatbot() -> Value {
    json!({ "id": "5eecde2dcdbffb08f5c3ed37", "name": "chatbot",
            "integrationId": "5f11a650e4e987667c2051d1", "integrationType": "custom" })
}

/// A `conversation:message` written by the business side: an agent when `source` is the Agent
/// Workspace, the bot when it is the API.
pub(crate) fn business_message(event_id: &str, source: &str, name: &str, text: &str) -> Value {
    json!({
        "id": event_id, "createdAt": "2026-11-25T09:05:00.000Z", "type": "conversation:message",
        "payload": {
            "conversation": { "id": CONV, "type": "personal", "activeSwitchboardIntegration": agent_workspace() },
            "message": {
                "id": format!("msg-{event_id}"), "received": "2026-11-25T09:05:00.000Z",
                "author": { "type": "business", "displayName": name, "avatarUrl": "https://example.com/a.png" },
                "content": { "type": "text", "text": text },
                "source": { "type": source }
            }
        }
    })
}

fn agent_typing(event_id: &str) -> Value {
    json!({
        "id": event_id, "createdAt": "2026-11-25T09:04:00.000Z", "type": "conversation:typing",
        "payload": {
            "conversation": { "id": CONV, "type": "personal", "activeSwitchboardIntegration": agent_workspace() },
            "activity": { "type": "typing:start", "author": { "type": "business", "displayName": "Eva" },
                          "source": { "type": "zd:agentWorkspace" } }
        }
    })
}

fn switchboard(event_id: &str, kind: &str, active: Option<Value>, extra: Value) -> Value {
    let mut conversation = json!({ "id": CONV, "type": "personal" });
    if let Some(a) = active {
        conversation["activeSwitchboardIntegration"] = a;
    }
    let mut payload = json!({ "conversation": conversation });
    payload
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({ "id": event_id, "createdAt": "2026-11-25T09:10:00.000Z", "type": kind, "payload": payload })
}

#[tokio::test]
async fn handover_to_the_agent_workspace_and_back_to_the_bot() {
    let w = world(Some("chatbot")).await;

    // The bot is in control; nothing reaches Zendesk's API.
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
    assert!(w.zd_calls().await.is_empty());

    // The handover passes switchboard control to the Agent Workspace, with context in metadata.
    let handover_id = w.opened("e3", "s-42").await;
    let calls = w.zd_calls().await;
    assert_eq!(calls.len(), 1);
    let (p, body) = &calls[0];
    assert_eq!(p, &pass_control_path());
    assert_eq!(
        body["switchboardIntegration"], "zd:agentWorkspace",
        "the default target"
    );
    let meta = &body["metadata"];
    assert_eq!(meta["handover_id"], handover_id.as_str());
    assert_eq!(meta["handover_trigger"], "explicit_request");
    assert_eq!(meta["handover_queue"], "general");
    assert_eq!(meta["dataCapture.systemField.tags"], "vip");
    assert_eq!(meta["dataCapture.ticketField.360001"], "Parcel A-1 is late");
    assert_eq!(meta["dataCapture.ticketField.360003"], "A-1");
    assert_eq!(
        meta["dataCapture.ticketField.360002"],
        "User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"
    );
    assert!(
        meta.as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_object() && !v.is_array()),
        "SunCo metadata is flat"
    );

    // SunCo echoes our pass to the Agent Workspace: acknowledged, nothing happens.
    let echo = switchboard(
        "sw-echo",
        "switchboard:passControl",
        Some(agent_workspace()),
        json!({ "metadata": meta.clone() }),
    );
    let (status, answer) = w.webhook(&envelope(vec![echo])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 0);
    assert_eq!(w.env.session("acme", "s-42").await.unwrap().state, State::Waiting);

    // While waiting, the user's and the bot's turns are already in the SunCo conversation:
    // nothing is posted, and the bot answering in SunCo is not taken for the agent.
    assert_eq!(
        w.send(&user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    let (status, _) = w
        .webhook(&envelope(vec![business_message(
            "ev-bot",
            "api:conversations",
            "Acme bot",
            "An agent is on the way.",
        )]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.zd_calls().await.len(), 1, "no message relayed in the embedded shape");
    assert!(w.to_bot_types().await.is_empty());

    // The agent's first message is the join.
    let (status, answer) = w
        .webhook(&envelope(vec![business_message(
            "ev-1",
            "zd:agentWorkspace",
            "Eva",
            "Hi Ann, let me check.",
        )]))
        .await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)));
    w.webhook(&envelope(vec![agent_typing("ev-2")])).await;
    let to_bot = received(&w.bot_srv).await;
    let types: Vec<&str> = to_bot.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["agent.joined", "agent.message", "agent.typing"]);
    assert_eq!(to_bot[0]["agent"]["name"], "Eva");
    assert_eq!(to_bot[1]["message"]["text"], "Hi Ann, let me check.");
    assert_eq!(to_bot[1]["handoverId"], handover_id.as_str());
    for r in w.bot_srv.received_requests().await.unwrap() {
        assert_signed(&r, BOT_SECRET);
    }
    assert_eq!(
        w.send(&user_message("e5", "s-42", "Hi Eva, it is order A-1")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    assert_eq!(w.zd_calls().await.len(), 1, "the user's message is already in SunCo");

    // The agent closes the ticket: Zendesk passes control on to the bot's integration.
    let closed = switchboard(
        "sw-closed",
        "switchboard:passControl",
        Some(chatbot()),
        json!({ "reason": "ticketClosed" }),
    );
    let (status, answer) = w.webhook(&envelope(vec![closed])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)));
    let to_bot = received(&w.bot_srv).await;
    let ended = to_bot.last().unwrap();
    assert_eq!(ended["type"], "handover.ended");
    assert_eq!(ended["reason"], "agent_closed");
    assert_eq!(
        w.zd_calls().await.len(),
        1,
        "control already left the Agent Workspace: nothing to hand back"
    );
    assert_eq!(
        w.send(&user_message("e6", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );

    // The agent's turn is in the bot's history.
    let transcript = w
        .env
        .store
        .transcript(&SessionKey::new("acme", "s-42"), None)
        .await
        .unwrap();
    let agent_turns: Vec<_> = transcript.iter().filter(|e| e.actor == Actor::Agent).collect();
    assert_eq!(agent_turns.len(), 1);
    assert_eq!(agent_turns[0].message.text.as_deref(), Some("Hi Ann, let me check."));
    assert_eq!(
        agent_turns[0].agent.as_ref().and_then(|a| a.name.as_deref()),
        Some("Eva")
    );
    let s = w.env.session("acme", "s-42").await.unwrap();
    assert_eq!(
        s.last_handover.unwrap().end_reason,
        Some(handover::domain::EndReason::AgentClosed)
    );
}

#[tokio::test]
async fn user_cancel_while_waiting_passes_control_back_to_the_bot() {
    let w = world(Some("chatbot")).await;
    let handover_id = w.opened("e1", "s-1").await;
    let cancel = json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = w.send(&cancel).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );
    let calls = w.zd_calls().await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].0, pass_control_path());
    assert_eq!(
        calls[1].1,
        json!({
            "switchboardIntegration": "chatbot",
            "metadata": { "handover_id": handover_id, "handover_end_reason": "user_cancelled" }
        })
    );
    assert_eq!(received(&w.bot_srv).await.last().unwrap()["reason"], "user_cancelled");

    // SunCo echoes the hand-back; for an ended handover it changes nothing.
    let before = w.env.dump().await;
    let echo = switchboard(
        "sw-back",
        "switchboard:passControl",
        Some(chatbot()),
        json!({ "metadata": { "handover_id": handover_id, "handover_end_reason": "user_cancelled" } }),
    );
    assert_eq!(w.webhook(&envelope(vec![echo])).await.0, 200);
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Bot);
    assert_eq!(w.env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn without_a_bot_integration_control_is_released() {
    let w = world(None).await;
    let handover_id = w.opened("e1", "s-1").await;
    w.send(&json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;
    let calls = w.zd_calls().await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].0, release_control_path());
    assert_eq!(
        calls[1].1,
        json!({ "metadata": { "handover_id": handover_id, "handover_end_reason": "user_cancelled" } })
    );
}

#[tokio::test]
async fn a_request_without_the_sunco_conversation_id_opens_nothing() {
    let w = world(Some("chatbot")).await;
    let mut request = zendesk_handover("e1", "s-1");
    request["handover"]
        .as_object_mut()
        .unwrap()
        .remove("providerConversationId");
    let (status, answer) = w.send(&request).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["outcome"], "opened", "{answer}");
    assert!(
        w.zd_calls().await.is_empty(),
        "no switchboard call without a conversation"
    );
}

/// Every switchboard request body sent to Sunshine Conversations (the hand-over with its
/// metadata, the hand-back to a bot integration, the release), checked against the schema of its
/// operation in the published API description (tests/fixtures/zendesk/, with its source and
/// commit).
#[tokio::test]
async fn every_switchboard_body_matches_the_published_schema() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/zendesk/switchboard-requests.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = |action: &str| {
        let op = format!("POST /v2/apps/{{appId}}/conversations/{{conversationId}}/{action}");
        let mut root = spec["operations"][op.as_str()]["schema"].clone();
        assert!(root.is_object(), "no schema for {op}");
        root["components"] = spec["components"].clone();
        jsonschema::validator_for(&root).unwrap()
    };
    let cancel = json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"});
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    for bot_integration in [Some("chatbot"), None] {
        let w = world(bot_integration).await;
        w.opened("e1", "s-1").await;
        assert_eq!(w.send(&cancel).await.0, 200);
        for (path, body) in w.zd_calls().await {
            let action = path.rsplit('/').next().unwrap().to_owned();
            let errors: Vec<String> = validator(&action)
                .iter_errors(&body)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            assert!(errors.is_empty(), "{action} {body}: {errors:?}");
            *checked.entry(action).or_default() += 1;
        }
    }
    assert_eq!(checked.get("passControl"), Some(&3), "{checked:?}");
    assert_eq!(checked.get("releaseControl"), Some(&1), "{checked:?}");
    assert!(
        !validator("passControl").is_valid(&json!({"metadata": {}})),
        "a hand-over without its target is refused"
    );
}

#[tokio::test]
async fn an_agents_carousel_and_quick_replies_reach_the_bot_as_a_rich_message() {
    let w = world(Some("chatbot")).await;
    w.opened("e1", "s-42").await;
    let mut rich = business_message("ev-rich", "zd:agentWorkspace", "Eva", "Which parcel?");
    rich["payload"]["message"]["content"] = json!({
        "type": "carousel",
        "items": [
            { "title": "Parcel A-1", "description": "Late by a day", "mediaUrl": "https://cdn.example.com/a1.png",
              "actions": [ { "type": "link", "text": "Track", "uri": "https://track.example.com/A-1" },
                           { "type": "postback", "text": "This one", "payload": "A-1" } ] },
            { "title": "Parcel B-2", "actions": [ { "type": "postback", "text": "This one", "payload": "B-2" } ] }
        ],
        "actions": [ { "type": "reply", "text": "Neither", "payload": "none" } ]
    });
    let (status, answer) = w.webhook(&envelope(vec![rich])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let to_bot = received(&w.bot_srv).await;
    let message = &to_bot.last().unwrap()["message"];
    assert_eq!(
        message["cards"],
        json!([
            { "title": "Parcel A-1", "subtitle": "Late by a day", "imageUrl": "https://cdn.example.com/a1.png",
              "buttons": [ { "title": "Track", "url": "https://track.example.com/A-1" },
                           { "title": "This one", "payload": "A-1" } ] },
            { "title": "Parcel B-2", "buttons": [ { "title": "This one", "payload": "B-2" } ] }
        ])
    );
    assert_eq!(message["quickReplies"], json!(["Neither"]));
}

/// A Zendesk bot whose secret has Support API credentials, its Support API (agent
/// availabilities, answered with `answer` of `fixtures/zendesk/agent-availabilities.json`) and
/// its Conversations API on one mock.
async fn bot_with_presence(env: &TestEnv, answer: &str) -> (MockServer, MockServer) {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/zendesk/agent-availabilities.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let bot_srv = MockServer::start().await;
    let zd_srv = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot_srv)
        .await;
    Mock::given(method("POST"))
        .and(path(pass_control_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&zd_srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/agent_availabilities"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture[answer].clone()))
        .mount(&zd_srv)
        .await;
    let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
    let zd_ref = env
        .secret(
            "zendesk",
            &json!({ "keyId": "app_key_1", "keySecret": "s3cr3t", "webhookSecret": WEBHOOK_SECRET,
                     "supportEmail": "bot@acme.example", "supportApiToken": "zd-token" }),
        )
        .await;
    env.put_bot(&format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {bot}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: zd\n    kind: zendesk\n    secretRef: {zd_ref}\n    appId: \"{APP}\"\n    apiBaseUrl: {zd}/sc\n    supportBaseUrl: {zd}\nrouting:\n  - provider: zd\n    queue: general\n",
        bot = bot_srv.uri(),
        zd = zd_srv.uri(),
    ))
    .await;
    (bot_srv, zd_srv)
}

#[tokio::test]
async fn messaging_presence_comes_from_zendesks_agent_availability_api() {
    // Nobody online on messaging: the handover is not offered, nothing is passed.
    let env = TestEnv::in_memory().await;
    let (_bot, zd) = bot_with_presence(&env, "none_online").await;
    let (status, answer) = env
        .send_event("acme", BOT_SECRET, &zendesk_handover("e1", "s-none"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "closed", "{answer}");
    assert_eq!(answer["reason"], "no_agents_online");
    assert!(requests_to(&zd, "POST", &pass_control_path()).await.is_empty());
    let asked = requests_to(&zd, "GET", "/api/v2/agent_availabilities").await;
    assert_eq!(asked.len(), 1);
    let query: Vec<(String, String)> = asked[0].url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("filter[channel_status]".to_owned(), "messaging:online".to_owned())),
        "{query:?}"
    );
    // Zendesk's API-token scheme: `{email}/token:{token}` as HTTP Basic.
    assert_eq!(
        asked[0].headers.get("authorization").unwrap(),
        "Basic Ym90QGFjbWUuZXhhbXBsZS90b2tlbjp6ZC10b2tlbg=="
    );

    // An agent online: the handover opens.
    let env = TestEnv::in_memory().await;
    let (_bot, zd) = bot_with_presence(&env, "one_online").await;
    let (status, answer) = env
        .send_event("acme", BOT_SECRET, &zendesk_handover("e1", "s-one"))
        .await;
    assert_eq!((status, answer["outcome"].clone()), (200, json!("opened")), "{answer}");
    assert_eq!(requests_to(&zd, "POST", &pass_control_path()).await.len(), 1);
}

#[tokio::test]
async fn a_chatlayer_bot_does_not_repeat_the_agents_message_of_an_embedded_conversation() {
    const TOKEN: &str = "verify-me";
    let env = TestEnv::in_memory().await;
    let cl = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&cl)
        .await;
    let zd = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(pass_control_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&zd)
        .await;
    let cl_ref = env
        .secret("chatlayer", &json!({"verifyToken": TOKEN, "apiToken": "cl-api-token"}))
        .await;
    let zd_ref = env
        .secret(
            "zendesk",
            &json!({ "keyId": "app_key_1", "keySecret": "s3cr3t", "webhookSecret": WEBHOOK_SECRET }),
        )
        .await;
    env.put_bot(&format!(
        "botId: acme\nplatform:\n  kind: chatlayer\n  secretRef: {cl_ref}\n  apiBaseUrl: '{}'\nproviders:\n  - id: zd\n    kind: zendesk\n    secretRef: {zd_ref}\n    appId: \"{APP}\"\n    apiBaseUrl: {}/sc\nrouting:\n  - provider: zd\n    queue: general\n",
        cl.uri(),
        zd.uri()
    ))
    .await;
    // Chatlayer's documented offload event (fixtures/chatlayer, sources in its README), its
    // payload naming the SunCo conversation the user and Chatlayer's bot are in.
    let mut offload: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/chatlayer/offload-event.json"
        ))
        .unwrap(),
    )
    .unwrap();
    offload["payload"] = json!({ "providerConversationId": CONV });
    let req = env.request(
        "POST",
        &format!("/v1/bots/acme/chatlayer?token={TOKEN}"),
        &[],
        &serde_json::to_vec(&offload).unwrap(),
    );
    let (status, answer) = env.call_bot(req).await;
    assert_eq!(
        (status, answer["offloadSuccess"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    assert_eq!(requests_to(&zd, "POST", &pass_control_path()).await.len(), 1);

    // The agent answers in the Agent Workspace: SunCo shows it to the user in their channel.
    let bytes = serde_json::to_vec(&envelope(vec![business_message(
        "ev-eva",
        "zd:agentWorkspace",
        "Eva",
        "Hi, Eva here.",
    )]))
    .unwrap();
    let req = env.request(
        "POST",
        "/v1/bots/acme/providers/zd/callback",
        &[("x-api-key", WEBHOOK_SECRET.to_owned())],
        &bytes,
    );
    let (status, answer) = env.call_provider(req).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    // Chatlayer gets our own dialogs (the join), never the agent's words a second time.
    let sent: Vec<String> = recorded(&cl)
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/actions"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(!sent.is_empty(), "the joined dialog reaches Chatlayer");
    assert!(sent.iter().all(|b| !b.contains("Eva here")), "{sent:?}");
    let key = SessionKey::new("acme", offload["sessionId"].as_str().unwrap());
    let transcript = env.store.transcript(&key, None).await.unwrap();
    assert!(
        transcript
            .iter()
            .any(|e| e.actor == Actor::Agent && e.message.text.as_deref() == Some("Hi, Eva here.")),
        "the agent's turn is still in the bot's history"
    );
}

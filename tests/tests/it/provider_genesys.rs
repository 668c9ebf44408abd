//! Genesys Cloud Open Messaging end to end: the real handlers, the emulator, a mock bot
//! platform and a mock Genesys (OAuth token, inbound Open Messages, conversation disconnect).
//! Agent messages and typing events arrive as signed Outbound Open NormalizedMessages.

use handover::providers::genesys;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const INTEGRATION: &str = "int-1";
const GENESYS_CONVERSATION: &str = "gconv-1";
const WEBHOOK_SECRET: &[u8] = b"whsec-test";
const TOKEN_PATH: &str = "/oauth/token";
const INBOUND_PATH: &str = "/api/v2/conversations/messages/int-1/inbound/open/message";
const DISCONNECT_PATH: &str = "/api/v2/conversations/messages/gconv-1";
const CALLBACK_PATH: &str = "/v1/bots/acme/providers/genesys/callback";
/// base64("cid:csecret")
const BASIC_AUTH: &str = "Basic Y2lkOmNzZWNyZXQ=";
const PLATFORM_SECRET: &[u8] = b"bot-secret";

/// The bot platform, and Genesys answering like its API: a token, inbound messages answered
/// with the conversation id (we ask for it with `prefetchConversationId=true`), disconnects.
async fn servers() -> (MockServer, MockServer) {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot)
        .await;
    // A fresh server (not one recycled from wiremock's pool), so no token cached by an earlier
    // test for the same address is reused.
    let genesys = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok-1", "token_type": "bearer", "expires_in": 86400
        })))
        .mount(&genesys)
        .await;
    Mock::given(method("POST"))
        .and(path(INBOUND_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "gm-1",
            "channel": {"from": {"id": "x", "idType": "Opaque"}, "time": "2026-11-25T09:00:00.000Z"},
            "type": "Text", "text": "echo",
            "conversationId": GENESYS_CONVERSATION
        })))
        .mount(&genesys)
        .await;
    Mock::given(method("PATCH"))
        .and(path(DISCONNECT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GENESYS_CONVERSATION})))
        .mount(&genesys)
        .await;
    // Polled by the evaluator: by default the customer waits in the queue.
    Mock::given(method("GET"))
        .and(path(DISCONNECT_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(polled(&[("customer", "connected"), ("acd", "connected")])),
        )
        .with_priority(5)
        .mount(&genesys)
        .await;
    (bot, genesys)
}

/// A `MessageConversation` with participants of the given purpose and state.
fn polled(participants: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = participants
        .iter()
        .enumerate()
        .map(|(i, (purpose, state))| {
            json!({"id": format!("p-{i}"), "name": if *purpose == "agent" { "Eva Peeters" } else { "Ann" },
                   "purpose": purpose, "state": state, "user": {"id": format!("u-{i}")}})
        })
        .collect();
    json!({"id": GENESYS_CONVERSATION, "participants": list})
}

/// A native bot whose only provider is Genesys, with the API and login hosts on the mock.
async fn genesys_bot(env: &TestEnv, bot: &MockServer, genesys: &MockServer) {
    genesys_bot_with(
        env,
        bot,
        genesys,
        "timeouts: { noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 60 }\n",
    )
    .await;
}

/// As [`genesys_bot`], with its own `timeouts` (and `dialogs`) lines.
async fn genesys_bot_with(env: &TestEnv, bot: &MockServer, genesys: &MockServer, tail: &str) {
    let platform_ref = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let genesys_ref = env
        .secret(
            "genesys",
            &json!({"clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-test"}),
        )
        .await;
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: genesys\n    kind: genesys\n    region: mypurecloud.ie\n    integrationId: {INTEGRATION}\n    apiBaseUrl: '{}'\n    loginBaseUrl: '{}'\n    secretRef: {genesys_ref}\nrouting:\n  - provider: genesys\n    queue: Support_NL\n{tail}",
        bot.uri(),
        genesys.uri(),
        genesys.uri()
    );
    env.put_bot(&yaml).await;
}

async fn send(env: &TestEnv, body: Value) -> (u16, Value) {
    env.send_event("acme", PLATFORM_SECRET, &body).await
}

/// POSTs an outbound-webhook body signed as Genesys signs it.
async fn callback(env: &TestEnv, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = [("x-hub-signature-256", genesys::signature(WEBHOOK_SECRET, &bytes))];
    let req = env.request("POST", CALLBACK_PATH, &headers, &bytes);
    env.call_provider(req).await
}

/// An agent's text message as Genesys posts it to the outbound webhook.
fn agent_text(id: &str, to: &str, text: &str) -> Value {
    json!({
        "id": id,
        "channel": {
            "id": INTEGRATION, "platform": "Open", "type": "Private",
            "to": {"id": to},
            "from": {"nickname": "Eva", "id": INTEGRATION, "idType": "Opaque"},
            "time": "2026-11-25T09:01:00.000Z", "messageId": id
        },
        "type": "Text", "text": text, "direction": "Outbound", "originatingEntity": "Human"
    })
}

/// The agent-typing event, shaped as Genesys documents it.
fn agent_typing(id: &str, to: &str) -> Value {
    json!({
        "id": id,
        "channel": {
            "id": INTEGRATION, "platform": "Open", "type": "Private",
            "to": {"id": to},
            "from": {"nickname": "Acme Open Messaging", "id": INTEGRATION, "idType": "Opaque"},
            "time": "2026-11-25T09:00:30.000Z", "messageId": id
        },
        "type": "Event",
        "events": [{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}],
        "direction": "Outbound"
    })
}

async fn open(env: &TestEnv, session: &str) -> String {
    env.open_handover(PLATFORM_SECRET, session).await
}

#[tokio::test]
async fn handover_to_a_genesys_agent_and_back_to_the_bot() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;

    // The bot is in control: nothing reaches Genesys.
    send(&env, user_message("e1", "s-42", "Where is my parcel?")).await;
    send(&env, bot_message("e2", "s-42", "Do you have a tracking number?")).await;
    assert!(genesys_srv.received_requests().await.unwrap().is_empty());

    // Handover: a client-credentials token, then one inbound message that creates the
    // conversation and carries the transcript and the routing context.
    let (status, answer) = send(&env, handover_request("e3", "s-42")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "opened");
    assert_eq!(answer["state"], "waiting");
    let handover_id = answer["handoverId"].as_str().unwrap().to_owned();

    let tokens = requests_to(&genesys_srv, "POST", TOKEN_PATH).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(header_of(&tokens[0], "authorization").as_deref(), Some(BASIC_AUTH));
    assert_eq!(
        header_of(&tokens[0], "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(tokens[0].body, b"grant_type=client_credentials".to_vec());

    let inbound = requests_to(&genesys_srv, "POST", INBOUND_PATH).await;
    assert_eq!(inbound.len(), 1);
    let first = &inbound[0];
    assert_eq!(first.url.query(), Some("prefetchConversationId=true"));
    assert_eq!(header_of(first, "authorization").as_deref(), Some("Bearer tok-1"));
    assert!(
        header_of(first, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = json_of(first);
    let from = &body["channel"]["from"];
    assert_eq!(from["id"], handover_id.as_str(), "the sender id is the handover id");
    assert_eq!(from["idType"], "Opaque");
    assert_eq!(from["nickname"], "Ann");
    assert_eq!(body["channel"]["messageId"], format!("{handover_id}-start"));
    assert!(body["channel"]["time"].as_str().unwrap().ends_with('Z'));
    let attrs = &body["channel"]["metadata"]["customAttributes"];
    assert_eq!(attrs["queue"], "Support_NL");
    assert_eq!(attrs["orderId"], "A-1");
    assert_eq!(attrs["tags"], "vip");
    assert_eq!(attrs["trigger"], "explicit_request");
    assert_eq!(attrs["handoverId"], handover_id.as_str());
    assert_eq!(attrs["sessionId"], "s-42");
    assert_eq!(attrs["botId"], "acme");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("queue: Support_NL"), "{text}");
    assert!(
        text.ends_with("User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"),
        "{text}"
    );
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(
        s.handover.as_ref().unwrap().provider_conversation_id.as_deref(),
        Some(GENESYS_CONVERSATION),
        "Genesys' conversation id is recorded for the disconnect"
    );

    // While waiting, the user's and the bot's turns follow as inbound messages.
    assert_eq!(
        send(&env, user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    send(&env, bot_message("e5", "s-42", "An agent is on the way.")).await;
    let inbound = requests_to(&genesys_srv, "POST", INBOUND_PATH).await;
    assert_eq!(inbound.len(), 3);
    let user_turn = json_of(&inbound[1]);
    assert_eq!(user_turn["text"], "Are you still there?");
    assert_eq!(user_turn["channel"]["from"]["id"], handover_id.as_str());
    assert!(user_turn["channel"]["metadata"].is_null(), "context is sent once");
    assert_eq!(inbound[1].url.query(), None);
    assert_eq!(header_of(&inbound[1], "authorization").as_deref(), Some("Bearer tok-1"));
    assert_eq!(
        json_of(&inbound[2])["text"],
        "Bot: An agent is on the way.\n[Quick replies: Yes | No]"
    );

    // The agent types, then writes: the first message is the join.
    assert_eq!(callback(&env, &agent_typing("t-1", &handover_id)).await.0, 200);
    let (status, answer) = callback(&env, &agent_text("m-1", &handover_id, "Hi Ann, I'm Eva.")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let to_bot = received(&bot_srv).await;
    let types: Vec<&str> = to_bot.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["agent.typing", "agent.joined", "agent.message"]);
    assert_eq!(to_bot[2]["message"]["text"], "Hi Ann, I'm Eva.");
    assert_eq!(to_bot[2]["handoverId"], handover_id.as_str());
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Agent);
    assert_eq!(s.handover.unwrap().agent.unwrap().name.as_deref(), Some("Eva"));

    // Now the user talks to the agent only, still through inbound messages.
    assert_eq!(
        send(&env, user_message("e6", "s-42", "My parcel is late")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    let inbound = requests_to(&genesys_srv, "POST", INBOUND_PATH).await;
    assert_eq!(json_of(inbound.last().unwrap())["text"], "My parcel is late");

    // An agent attachment reaches the bot as an attachment.
    let mut label = agent_text("m-2", &handover_id, "Here is your label.");
    label["content"] = json!([{
        "contentType": "Attachment",
        "attachment": {"mediaType": "Image", "url": "https://files.example/label.png", "mime": "image/png", "filename": "label.png"}
    }]);
    assert_eq!(callback(&env, &label).await.0, 200);
    let to_bot = received(&bot_srv).await;
    let last = to_bot.last().unwrap();
    assert_eq!(last["type"], "agent.message");
    assert_eq!(
        last["message"]["attachments"][0]["url"],
        "https://files.example/label.png"
    );
    assert_eq!(last["message"]["attachments"][0]["type"], "image");

    // The agent leaves without a word: Genesys does not tell the webhook, so the idle timeout
    // hands back to the bot and disconnects the Genesys conversation.
    tick_minutes(&env, 2).await;
    let to_bot = received(&bot_srv).await;
    let ended = of_type(&to_bot, "handover.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_idle_timeout");
    let patches = requests_to(&genesys_srv, "PATCH", DISCONNECT_PATH).await;
    assert_eq!(patches.len(), 1);
    assert_eq!(json_of(&patches[0]), json!({"state": "disconnected"}));
    assert_eq!(header_of(&patches[0], "authorization").as_deref(), Some("Bearer tok-1"));
    assert_eq!(
        send(&env, user_message("e7", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );
    assert_eq!(
        requests_to(&genesys_srv, "POST", INBOUND_PATH).await.len(),
        4,
        "nothing more is relayed after the end"
    );

    // One token served every call; the agent's turns are in the bot's history.
    assert_eq!(requests_to(&genesys_srv, "POST", TOKEN_PATH).await.len(), 1);
    let transcript = env
        .store
        .transcript(&SessionKey::new("acme", "s-42"), None)
        .await
        .unwrap();
    assert!(
        transcript
            .iter()
            .any(|e| e.message.text.as_deref() == Some("Hi Ann, I'm Eva."))
    );
}

#[tokio::test]
async fn a_user_cancel_while_waiting_disconnects_the_genesys_conversation() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    send(&env, user_message("e1", "s-1", "Agent please")).await;
    let handover_id = open(&env, "s-1").await;

    let cancel = json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = send(&env, cancel).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );

    let patches = requests_to(&genesys_srv, "PATCH", DISCONNECT_PATH).await;
    assert_eq!(patches.len(), 1);
    assert_eq!(json_of(&patches[0]), json!({"state": "disconnected"}));
    assert_eq!(header_of(&patches[0], "authorization").as_deref(), Some("Bearer tok-1"));
    let to_bot = received(&bot_srv).await;
    assert_eq!(to_bot.last().unwrap()["type"], "handover.ended");
    assert_eq!(to_bot.last().unwrap()["reason"], "user_cancelled");

    // A late agent message for the ended handover changes nothing.
    let before = env.dump().await;
    assert_eq!(
        callback(&env, &agent_text("m-late", &handover_id, "Hello?")).await.0,
        200
    );
    assert_eq!(env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn without_a_conversation_id_the_end_asks_genesys_for_it() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    // The first inbound message is answered without `conversationId`.
    Mock::given(method("POST"))
        .and(path(INBOUND_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "gm-0", "type": "Text", "text": "x"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&genesys_srv)
        .await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    let handover_id = open(&env, "s-1").await;
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.handover.unwrap().provider_conversation_id, None);

    send(&env, json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"})).await;
    let inbound = requests_to(&genesys_srv, "POST", INBOUND_PATH).await;
    assert_eq!(inbound.len(), 2);
    let notice = &inbound[1];
    assert_eq!(notice.url.query(), Some("prefetchConversationId=true"));
    let body = json_of(notice);
    assert_eq!(body["channel"]["from"]["id"], handover_id.as_str());
    assert!(body["text"].as_str().unwrap().contains("user_cancelled"), "{body}");
    let patches = requests_to(&genesys_srv, "PATCH", DISCONNECT_PATH).await;
    assert_eq!(patches.len(), 1, "the conversation is disconnected all the same");
    assert_eq!(json_of(&patches[0]), json!({"state": "disconnected"}));
}

#[tokio::test]
async fn unsigned_or_missigned_webhooks_are_refused_and_receipts_ignored() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    let handover_id = open(&env, "s-1").await;
    let bytes = serde_json::to_vec(&agent_text("m-1", &handover_id, "Hello")).unwrap();

    let unsigned = env.request("POST", CALLBACK_PATH, &[], &bytes);
    assert_eq!(env.call_provider(unsigned).await.0, 401);
    let wrong = [("x-hub-signature-256", genesys::signature(b"another-secret", &bytes))];
    assert_eq!(
        env.call_provider(env.request("POST", CALLBACK_PATH, &wrong, &bytes))
            .await
            .0,
        401
    );
    let hex_style = [(
        "x-hub-signature-256",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000".to_owned(),
    )];
    assert_eq!(
        env.call_provider(env.request("POST", CALLBACK_PATH, &hex_style, &bytes))
            .await
            .0,
        401
    );
    assert!(of_type(&received(&bot_srv).await, "agent.message").is_empty());

    // A delivery receipt is acknowledged and ignored; so is a message for an unknown user.
    let receipt = json!({
        "id": "m-9",
        "channel": {"id": INTEGRATION, "to": {"id": handover_id}, "time": "2026-11-25T09:02:00.000Z"},
        "type": "Receipt", "status": "Delivered", "isFinalReceipt": true, "direction": "Outbound"
    });
    let (status, answer) = callback(&env, &receipt).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));
    let (status, answer) = callback(&env, &agent_text("m-10", "someone-else", "Hi")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["ignored"], 1);
    assert!(received(&bot_srv).await.is_empty());
}

#[tokio::test]
async fn polling_learns_the_join_and_the_close_that_webhooks_never_report() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    let handover_id = open(&env, "s-1").await;
    assert_eq!(
        env.session("acme", "s-1").await.unwrap().state,
        handover::domain::State::Waiting
    );

    // A minute later Genesys shows an agent connected: the bot is told to stay silent.
    Mock::given(method("GET"))
        .and(path(DISCONNECT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(polled(&[
            ("customer", "connected"),
            ("acd", "disconnected"),
            ("agent", "connected"),
        ])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&genesys_srv)
        .await;
    tick_minutes(&env, 1).await;
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Agent);
    let joined = of_type(&received(&bot_srv).await, "agent.joined")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["agent"]["name"], "Eva Peeters");
    assert_eq!(joined[0]["handoverId"], handover_id.as_str());
    let gets = requests_to(&genesys_srv, "GET", DISCONNECT_PATH).await;
    assert_eq!(header_of(&gets[0], "authorization").as_deref(), Some("Bearer tok-1"));

    // The agent disconnects and nobody else is offered the conversation: back to the bot.
    Mock::given(method("GET"))
        .and(path(DISCONNECT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(polled(&[
            ("customer", "connected"),
            ("acd", "disconnected"),
            ("agent", "disconnected"),
        ])))
        .with_priority(2)
        .mount(&genesys_srv)
        .await;
    tick_minutes(&env, 1).await;
    let ended = of_type(&received(&bot_srv).await, "handover.ended")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
    assert!(s.timers.poll_at.is_none(), "no more polling once it ended");
    let polls = requests_to(&genesys_srv, "GET", DISCONNECT_PATH).await.len();
    tick_minutes(&env, 5).await;
    assert_eq!(requests_to(&genesys_srv, "GET", DISCONNECT_PATH).await.len(), polls);
    assert_eq!(
        of_type(&received(&bot_srv).await, "handover.ended").len(),
        1,
        "ended once"
    );
    assert!(
        requests_to(&genesys_srv, "PATCH", DISCONNECT_PATH).await.is_empty(),
        "Genesys ended it itself"
    );
}

/// An agent's Open Messaging `Structured` message: text, two quick replies and a carousel.
fn agent_structured(id: &str, to: &str) -> Value {
    let mut m = agent_text(id, to, "Which parcel?");
    m["type"] = json!("Structured");
    m["content"] = json!([
        {"contentType": "QuickReply", "quickReply": {"text": "Both", "payload": "both", "action": "Message"}},
        {"contentType": "QuickReply", "quickReply": {"text": "Neither", "payload": "none", "action": "Message"}},
        {"contentType": "Carousel", "carousel": {"cards": [
            {"title": "Parcel A-1", "description": "Late by a day", "image": "https://cdn.example.com/a1.png",
             "actions": [{"type": "Link", "text": "Track", "url": "https://track.example.com/A-1"},
                         {"type": "Postback", "text": "This one", "payload": "A-1"}]},
            {"title": "Parcel B-2", "actions": [{"type": "Postback", "text": "This one", "payload": "B-2"}]}
        ]}}
    ]);
    m
}

#[tokio::test]
async fn an_agents_quick_replies_and_carousel_reach_a_chatlayer_bot_as_chatlayer_templates() {
    let env = TestEnv::in_memory().await;
    let (_, gen_srv) = servers().await;
    let cl = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&cl)
        .await;
    let platform_ref = env
        .secret(
            "chatlayer",
            &json!({"verifyToken": "verify-me", "apiToken": "cl-api-token"}),
        )
        .await;
    let genesys_ref = env
        .secret(
            "genesys",
            &json!({"clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-test"}),
        )
        .await;
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: chatlayer, secretRef: {platform_ref}, apiBaseUrl: '{}' }}\nproviders:\n  - {{ id: genesys, kind: genesys, region: mypurecloud.ie, integrationId: {INTEGRATION}, apiBaseUrl: '{}', loginBaseUrl: '{}', secretRef: {genesys_ref} }}\nrouting:\n  - {{ provider: genesys, queue: Support_NL }}\n",
        cl.uri(),
        gen_srv.uri(),
        gen_srv.uri()
    ))
    .await;
    let user = json!({"actor": "user", "timestamp": "2026-11-25T09:00:01.000Z", "message": {"messageType": "text", "text": "Where are my parcels?", "sender": {"id": "s-9"}}});
    let offload = json!({"botId": "cl-bot", "version": "LIVE", "sessionId": "s-9", "timestamp": "2026-11-25T09:00:04.000Z",
        "event": "offload", "transcript": [user], "payload": {"queue": "Support_NL"}});
    let req = env.request(
        "POST",
        "/v1/bots/acme/chatlayer?token=verify-me",
        &[],
        &serde_json::to_vec(&offload).unwrap(),
    );
    let (status, answer) = env.call_bot(req).await;
    assert_eq!(
        (status, answer["offloadSuccess"].clone()),
        (200, json!(true)),
        "{answer}"
    );
    let handover_id = answer["handoverId"].as_str().unwrap().to_owned();

    let (status, _) = callback(&env, &agent_structured("m-rich", &handover_id)).await;
    assert_eq!(status, 200);
    let sent: Vec<Value> = cl
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/bots/cl-bot/conversations/s-9/actions")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter_map(|b| b.get("sendMessages").cloned())
        .collect();
    let rich = sent
        .iter()
        .find(|m| m.to_string().contains("carouselTemplate"))
        .unwrap_or_else(|| panic!("no carousel among {sent:?}"));
    let elements = &rich[0]["carouselTemplate"]["elements"];
    assert_eq!(elements[0]["title"], "Parcel A-1");
    assert_eq!(elements[0]["subTitle"], "Late by a day");
    assert_eq!(elements[0]["imageUrl"], "https://cdn.example.com/a1.png");
    assert_eq!(
        elements[0]["buttons"][0],
        json!({"urlButton": {"title": "Track", "url": "https://track.example.com/A-1"}})
    );
    assert_eq!(
        elements[1]["buttons"][0]["postBackButton"]["payload"]["sessionDataToSet"][0]["value"],
        "B-2"
    );
    let quick = &rich[1]["quickReplyTemplate"];
    assert_eq!(quick["textMessages"][0]["text"], "Which parcel?");
    let titles: Vec<&str> = quick["quickReplies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Both", "Neither"]);
}

#[tokio::test]
async fn every_request_body_matches_genesys_published_schema() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/genesys/open-messaging-requests.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // Swagger 2.0: the schemas refer to `#/definitions/…`.
    const INBOUND: &str = "POST /api/v2/conversations/messages/{integrationId}/inbound/open/message";
    const DISCONNECT: &str = "PATCH /api/v2/conversations/messages/{conversationId}";
    let validator = |operation: &str| {
        let mut root = spec["operations"][operation]["schema"].clone();
        assert!(root.is_object(), "no schema for {operation}");
        root["definitions"] = spec["definitions"].clone();
        if operation == DISCONNECT {
            // The one exception, and why: the PATCH reuses the whole `Conversation` model,
            // whose `required` (participants, startTime) describes a conversation read back,
            // while the operation itself says "Update a conversation by disconnecting all of
            // the participants" and the model's `state` says "On update, 'disconnected' will
            // disconnect the conversation. No other values are valid". So the update is
            // checked against the model without its `required` list: field names and types,
            // and `state` among its values.
            let conversation = root["definitions"]["Conversation"]
                .as_object_mut()
                .expect("the Conversation model");
            assert!(
                conversation.remove("required").is_some(),
                "the model lists required fields"
            );
        }
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{operation}: {e}"))
    };

    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    // The handover (an inbound message with the transcript and the routing context), the
    // user's and the bot's turns while waiting, and the disconnect at the user's cancel.
    send(&env, user_message("e1", "s-1", "Where is my parcel?")).await;
    open(&env, "s-1").await;
    send(&env, user_message("e2", "s-1", "Are you still there?")).await;
    send(&env, bot_message("e3", "s-1", "An agent is on the way.")).await;
    send(&env, json!({"id": "e4", "type": "handover.cancel", "sessionId": "s-1"})).await;

    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for r in genesys_srv.received_requests().await.unwrap() {
        let operation = match (r.method.as_str(), r.url.path()) {
            ("POST", INBOUND_PATH) => INBOUND,
            ("PATCH", DISCONNECT_PATH) => DISCONNECT,
            // The login host's client-credentials form is not part of the Platform API
            // description; GETs carry no body.
            ("POST", TOKEN_PATH) | ("GET", _) => continue,
            (verb, other) => panic!("a {verb} to {other} has no schema here"),
        };
        let body = json_of(&r);
        let errors: Vec<String> = validator(operation)
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{operation} {body}: {errors:?}");
        *checked.entry(operation).or_default() += 1;
    }
    // Each kind of request was sent and checked; the schemas can refuse (a wrong body fails).
    assert_eq!(checked.get(INBOUND), Some(&3), "{checked:?}");
    assert_eq!(checked.get(DISCONNECT), Some(&1), "{checked:?}");
    let wrong = json!({"channel": {"from": {"id": "h-1", "idType": "Handover"}}, "text": "x"});
    assert!(
        !validator(INBOUND).is_valid(&wrong),
        "a sender of an unknown id type, and a message without its time, are refused"
    );
    assert!(
        !validator(DISCONNECT).is_valid(&json!({"state": "gone"})),
        "a state outside the model's values is refused"
    );
}

/// One outbound-webhook body composed from Genesys' published models
/// (`fixtures/genesys/outbound-webhook-messages.json`, sources in its `_source`), addressed to `to`.
fn published(name: &str, to: &str) -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/genesys/outbound-webhook-messages.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut m = all["messages"][name].clone();
    assert!(m.is_object(), "no fixture {name}");
    m["channel"]["to"]["id"] = json!(to);
    m
}

#[tokio::test]
async fn an_in_queue_bot_flow_speaks_to_the_user_without_counting_as_the_join() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    let handover_id = open(&env, "s-flow").await;

    let (status, _) = callback(&env, &published("bot_flow_quick_reply_v2", &handover_id)).await;
    assert_eq!(status, 200);
    let (status, _) = callback(&env, &published("bot_flow_date_picker", &handover_id)).await;
    assert_eq!(status, 200);

    let events = received(&bot_srv).await;
    let messages = of_type(&events, "agent.message");
    assert_eq!(messages.len(), 2, "{events:?}");
    assert_eq!(
        messages[0]["message"]["quickReplies"],
        json!(["A late parcel", "A refund"])
    );
    assert_eq!(
        messages[1]["message"]["text"],
        "When should we call you back?\nPick a weekday"
    );
    assert!(of_type(&events, "agent.joined").is_empty(), "a flow is not an agent");
    let s = env.session("acme", "s-flow").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Waiting);

    // The person who answers later still joins as usual.
    let (status, _) = callback(&env, &agent_text("m-eva", &handover_id, "Hi, Eva here.")).await;
    assert_eq!(status, 200);
    assert_eq!(of_type(&received(&bot_srv).await, "agent.joined").len(), 1);
    assert_eq!(
        env.session("acme", "s-flow").await.unwrap().state,
        handover::domain::State::Agent
    );
}

#[tokio::test]
async fn the_still_waiting_nudge_carries_genesys_own_wait_estimate() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot_with(
        &env,
        &bot_srv,
        &genesys_srv,
        "timeouts: { noAgentSeconds: 3600, stillWaitingEverySeconds: 60, agentIdleSeconds: 60 }\ndialogs:\n  en:\n    stillWaiting: \"About {waitMinutes} more minutes.\"\n",
    )
    .await;
    // `fixtures/genesys/estimated-wait-time.json` (sources in its `_source`): the conversation
    // waits in queue q-nl (its `acd` participant, as `MessageMediaParticipant` carries it), and
    // Genesys predicts 900 s for calls and 230 s for messages there.
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/genesys/estimated-wait-time.json"
        ))
        .unwrap()
        .replace("CONVERSATION", GENESYS_CONVERSATION),
    )
    .unwrap();
    Mock::given(method("GET"))
        .and(path(DISCONNECT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture["conversation"].clone()))
        .with_priority(1)
        .mount(&genesys_srv)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/routing/queues/q-nl/estimatedwaittime"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture["predictions"].clone()))
        .mount(&genesys_srv)
        .await;
    open(&env, "s-wait").await;
    tick_minutes(&env, 1).await;

    let events = received(&bot_srv).await;
    let waiting = of_type(&events, "handover.waiting");
    assert_eq!(waiting.len(), 1, "{events:?}");
    assert_eq!(waiting[0]["estimatedWaitSeconds"], 230);
    assert_eq!(waiting[0]["dialog"]["text"], "About 4 more minutes.");
    let asked = requests_to(&genesys_srv, "GET", "/api/v2/routing/queues/q-nl/estimatedwaittime").await;
    assert_eq!(asked[0].url.query(), Some("conversationId=gconv-1"));
}

/// One EventBridge delivery composed from the published models
/// (`fixtures/genesys/eventbridge-events.json`, sources in its `_source`).
fn pushed(name: &str) -> Value {
    let all: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/genesys/eventbridge-events.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let e = all["events"][name]
        .to_string()
        .replace("CONVERSATION", GENESYS_CONVERSATION);
    serde_json::from_str(&e).unwrap()
}

/// POSTs an EventBridge event as the template's API destination does: the body unchanged, the
/// provider's push token in its header.
async fn push(env: &TestEnv, body: &Value, token: &str) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let req = env.request(
        "POST",
        CALLBACK_PATH,
        &[(genesys::PUSH_TOKEN_HEADER, token.to_owned())],
        &bytes,
    );
    env.call_provider(req).await
}

#[tokio::test]
async fn eventbridge_pushes_the_join_and_the_close_and_nothing_is_polled() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    let platform_ref = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let genesys_ref = env
        .secret(
            "genesys",
            &json!({"clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-test", "pushToken": "push-123"}),
        )
        .await;
    env.put_bot(&format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: genesys\n    kind: genesys\n    region: mypurecloud.ie\n    integrationId: {INTEGRATION}\n    apiBaseUrl: '{}'\n    loginBaseUrl: '{}'\n    pushedEvents: true\n    secretRef: {genesys_ref}\nrouting:\n  - provider: genesys\n    queue: Support_NL\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 3600 }}\n",
        bot_srv.uri(),
        genesys_srv.uri(),
        genesys_srv.uri()
    ))
    .await;
    open(&env, "s-push").await;

    // A wrong token writes nothing.
    let (status, _) = push(&env, &pushed("acd_end_answered"), "nope").await;
    assert_eq!(status, 401);

    // Queue assignment: acknowledged, the user still waits.
    let (status, _) = push(&env, &pushed("acd_start"), "push-123").await;
    assert_eq!(status, 200);
    assert_eq!(
        env.session("acme", "s-push").await.unwrap().state,
        handover::domain::State::Waiting
    );
    // Answered by Eva: the join, within the delivery.
    let (status, answer) = push(&env, &pushed("acd_end_answered"), "push-123").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let joined = of_type(&received(&bot_srv).await, "agent.joined")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["agent"]["id"], "u-eva");
    // Minutes pass: the evaluator asks Genesys nothing.
    tick_minutes(&env, 3).await;
    assert!(
        requests_to(&genesys_srv, "GET", DISCONNECT_PATH).await.is_empty(),
        "no poll"
    );
    // Eva transfers: not a close. The customer leaves: the close.
    push(&env, &pushed("user_end_transfer"), "push-123").await;
    assert_eq!(
        env.session("acme", "s-push").await.unwrap().state,
        handover::domain::State::Agent
    );
    push(&env, &pushed("customer_end"), "push-123").await;
    let ended = of_type(&received(&bot_srv).await, "handover.ended")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
}

/// `fixtures/genesys/structured-response.json` (sources in its `_source`), with the conversation
/// id filled in.
fn structured_fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/genesys/structured-response.json"
    ))
    .unwrap()
    .replace("CONVERSATION", GENESYS_CONVERSATION);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_users_choice_of_a_flows_quick_reply_goes_back_as_a_button_response() {
    const RESPONSE_PATH: &str = "/api/v2/conversations/messages/int-1/inbound/open/structured/response";
    let fixture = structured_fixture();
    let env = TestEnv::in_memory().await;
    let (bot_srv, genesys_srv) = servers().await;
    genesys_bot(&env, &bot_srv, &genesys_srv).await;
    // Genesys' conversation lists the flow's structured message last; read back, it offers
    // "A late parcel" (late) and "A refund" (refund).
    Mock::given(method("GET"))
        .and(path(DISCONNECT_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture["conversation"].clone()))
        .with_priority(1)
        .mount(&genesys_srv)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{DISCONNECT_PATH}/messages/m-flow-qr2")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture["message"].clone()))
        .mount(&genesys_srv)
        .await;
    Mock::given(method("POST"))
        .and(path(RESPONSE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "gm-2"})))
        .mount(&genesys_srv)
        .await;
    let handover_id = open(&env, "s-choice").await;
    callback(&env, &published("bot_flow_quick_reply_v2", &handover_id)).await;

    // The user taps "A refund": a ButtonResponse answering the flow's message, not text.
    send(&env, user_message("e-choice", "s-choice", "A refund")).await;
    let responses = requests_to(&genesys_srv, "POST", RESPONSE_PATH).await;
    assert_eq!(responses.len(), 1, "one structured response");
    let body = json_of(&responses[0]);
    assert_eq!(
        body["buttonResponse"],
        json!({"type": "QuickReply", "text": "A refund", "payload": "refund"})
    );
    assert_eq!(body["originatingMessageId"], "m-flow-qr2");
    assert_eq!(body["channel"]["from"]["id"], json!(handover_id));
    let inbound_texts = |requests: Vec<wiremock::Request>| -> Vec<Value> {
        requests.iter().map(|r| json_of(r)["text"].clone()).collect()
    };
    let texts = inbound_texts(requests_to(&genesys_srv, "POST", INBOUND_PATH).await);
    assert!(!texts.contains(&json!("A refund")), "{texts:?}");

    // The body is what the published models describe, and the schema can refuse.
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/genesys/open-messaging-requests.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut schema = fixture["schema"].clone();
    schema["definitions"] = spec["definitions"].clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{body}: {errors:?}");
    let mut wrong = body.clone();
    wrong["buttonResponse"]["type"] = json!("Text");
    assert!(!validator.is_valid(&wrong));

    // Words that are no choice stay an ordinary inbound message.
    send(&env, user_message("e-free", "s-choice", "Something else entirely")).await;
    assert_eq!(requests_to(&genesys_srv, "POST", RESPONSE_PATH).await.len(), 1);
    let texts = inbound_texts(requests_to(&genesys_srv, "POST", INBOUND_PATH).await);
    assert!(texts.contains(&json!("Something else entirely")), "{texts:?}");
}

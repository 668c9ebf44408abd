//! Proximus #Interact end to end: the real handlers, the emulator, a mock bot platform and a
//! mock #Interact that follows the adapter's documented default contract (no public #Interact
//! API exists; see docs/providers/interact.md). Our calls carry the #Interact token; #Interact's
//! callbacks carry the token we gave it.

use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const API_TOKEN: &str = "itok-1";
const CALLBACK_TOKEN: &str = "cbtok-0123456789abcdef";
const INTERACT_CONVERSATION: &str = "ic-1";
/// The default paths under the configured `apiBaseUrl` (`{mock}/interact-api`).
const START_PATH: &str = "/interact-api/conversations";
const MESSAGE_PATH: &str = "/interact-api/conversations/ic-1/messages";
const CLOSE_PATH: &str = "/interact-api/conversations/ic-1/close";
const CALLBACK_PATH: &str = "/v1/bots/acme/providers/interact/callback";
const PLATFORM_SECRET: &[u8] = b"bot-secret";

/// The bot platform, and #Interact answering like the documented default contract: the start
/// answers with its conversation id; messages and the close are accepted.
async fn servers() -> (MockServer, MockServer) {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot)
        .await;
    let interact = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"conversationId": INTERACT_CONVERSATION})))
        .mount(&interact)
        .await;
    Mock::given(method("POST"))
        .and(path(MESSAGE_PATH))
        .respond_with(ResponseTemplate::new(202))
        .mount(&interact)
        .await;
    Mock::given(method("POST"))
        .and(path(CLOSE_PATH))
        .respond_with(ResponseTemplate::new(200))
        .mount(&interact)
        .await;
    (bot, interact)
}

/// A native bot whose only provider is #Interact; `settings` are extra lines of the provider
/// entry (each starting with four spaces).
async fn interact_bot(env: &TestEnv, bot: &MockServer, interact: &MockServer, settings: &str) {
    let platform_ref = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let interact_ref = env
        .secret(
            "interact",
            &json!({"apiToken": API_TOKEN, "callbackToken": CALLBACK_TOKEN}),
        )
        .await;
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: interact\n    kind: interact\n    apiBaseUrl: '{}/interact-api'\n    secretRef: {interact_ref}\n{settings}routing:\n  - provider: interact\n    queue: Support_NL\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 3600 }}\n",
        bot.uri(),
        interact.uri(),
    );
    env.put_bot(&yaml).await;
}

async fn send(env: &TestEnv, body: Value) -> (u16, Value) {
    env.send_event("acme", PLATFORM_SECRET, &body).await
}

/// POSTs a callback as #Interact would under the default contract: our token as a bearer token.
async fn callback(env: &TestEnv, body: &Value) -> (u16, Value) {
    callback_with(env, &[("authorization", format!("Bearer {CALLBACK_TOKEN}"))], body).await
}

async fn callback_with(env: &TestEnv, headers: &[(&str, String)], body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let req = env.request("POST", CALLBACK_PATH, headers, &bytes);
    env.call_provider(req).await
}

fn joined(id: &str, conversation: &str) -> Value {
    json!({"type": "agent.joined", "id": id, "conversationId": conversation, "agent": {"id": "a-3", "name": "Eva"}})
}

fn agent_text(id: &str, conversation: &str, text: &str) -> Value {
    json!({
        "type": "agent.message", "id": id, "conversationId": conversation,
        "agent": {"id": "a-3", "name": "Eva"}, "message": {"text": text}
    })
}

fn closed(id: &str, conversation: &str) -> Value {
    json!({"type": "conversation.closed", "id": id, "conversationId": conversation})
}

/// POST requests to a path.
async fn posts_to(srv: &MockServer, p: &str) -> Vec<Request> {
    requests_to(srv, "POST", p).await
}

/// The message bodies #Interact received with this text, in order.
async fn relayed(srv: &MockServer, text: &str) -> Vec<Value> {
    posted_with(srv, MESSAGE_PATH, "text", text).await
}

async fn open(env: &TestEnv, session: &str) -> String {
    env.open_handover(PLATFORM_SECRET, session).await
}

#[tokio::test]
async fn handover_to_an_interact_agent_and_back_to_the_bot() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, interact_srv) = servers().await;
    interact_bot(&env, &bot_srv, &interact_srv, "").await;

    // The bot is in control: nothing reaches #Interact.
    send(&env, user_message("e1", "s-42", "Where is my parcel?")).await;
    send(&env, bot_message("e2", "s-42", "Do you have a tracking number?")).await;
    assert!(interact_srv.received_requests().await.unwrap().is_empty());

    // Handover: one start call with the #Interact token, the context and the transcript.
    let (status, answer) = send(&env, handover_request("e3", "s-42")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "opened");
    assert_eq!(answer["state"], "waiting");
    let handover_id = answer["handoverId"].as_str().unwrap().to_owned();

    let starts = posts_to(&interact_srv, START_PATH).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(header_of(&starts[0], "authorization").as_deref(), Some("Bearer itok-1"));
    assert!(
        header_of(&starts[0], "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = json_of(&starts[0]);
    assert_eq!(body["type"], "conversation.started");
    assert_eq!(body["id"], format!("{handover_id}-start"));
    assert_eq!(body["conversationId"], handover_id.as_str());
    assert_eq!(body["handoverId"], handover_id.as_str());
    assert_eq!(body["botId"], "acme");
    assert_eq!(body["sessionId"], "s-42");
    assert_eq!(body["queue"], "Support_NL");
    assert_eq!(body["trigger"], "explicit_request");
    assert_eq!(body["variables"], json!({"orderId": "A-1"}));
    assert_eq!(body["tags"], json!(["vip"]));
    assert_eq!(body["user"]["name"], "Ann");
    let text = body["transcriptText"].as_str().unwrap();
    assert!(
        text.ends_with("User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"),
        "{text}"
    );
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(
        s.handover.as_ref().unwrap().provider_conversation_id.as_deref(),
        Some(INTERACT_CONVERSATION),
        "#Interact's conversation id is recorded"
    );

    // While waiting, the user's and the bot's turns are relayed as text.
    assert_eq!(
        send(&env, user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    send(&env, bot_message("e5", "s-42", "An agent is on the way.")).await;
    let messages = posts_to(&interact_srv, MESSAGE_PATH).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        header_of(&messages[0], "authorization").as_deref(),
        Some("Bearer itok-1")
    );
    let user_turn = json_of(&messages[0]);
    assert_eq!(user_turn["type"], "user.message");
    assert_eq!(user_turn["actor"], "user");
    assert_eq!(user_turn["text"], "Are you still there?");
    assert_eq!(user_turn["conversationId"], INTERACT_CONVERSATION);
    assert_eq!(user_turn["handoverId"], handover_id.as_str());
    let bot_turn = json_of(&messages[1]);
    assert_eq!(bot_turn["type"], "bot.message");
    assert_eq!(bot_turn["text"], "An agent is on the way.\n[Quick replies: Yes | No]");

    // The agent joins (this callback names our handover id, which is indexed too), then writes
    // (naming #Interact's id).
    let (status, answer) = callback(&env, &joined("ev-1", &handover_id)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let (status, answer) = callback(&env, &agent_text("ev-2", INTERACT_CONVERSATION, "Hi Ann, I'm Eva.")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let to_bot = received(&bot_srv).await;
    let types: Vec<&str> = to_bot.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["agent.joined", "agent.message"]);
    assert_eq!(to_bot[1]["message"]["text"], "Hi Ann, I'm Eva.");
    assert_eq!(to_bot[1]["handoverId"], handover_id.as_str());
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Agent);
    assert_eq!(s.handover.unwrap().agent.unwrap().name.as_deref(), Some("Eva"));

    // The user now talks to the agent.
    assert_eq!(
        send(&env, user_message("e6", "s-42", "My parcel is late")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    assert_eq!(relayed(&interact_srv, "My parcel is late").await.len(), 1);

    // The agent closes the conversation: the bot resumes, and nothing is sent back to
    // #Interact (it closed the conversation itself).
    let (status, answer) = callback(&env, &closed("ev-3", INTERACT_CONVERSATION)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let to_bot = received(&bot_srv).await;
    let ended = of_type(&to_bot, "handover.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
    assert!(posts_to(&interact_srv, CLOSE_PATH).await.is_empty());
    assert_eq!(
        send(&env, user_message("e7", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );
    assert_eq!(
        posts_to(&interact_srv, MESSAGE_PATH).await.len(),
        3,
        "nothing more is relayed after the close"
    );

    // The agent's turns are in the bot's history.
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
async fn a_user_cancel_while_waiting_closes_the_interact_conversation() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, interact_srv) = servers().await;
    interact_bot(&env, &bot_srv, &interact_srv, "").await;
    send(&env, user_message("e1", "s-1", "Agent please")).await;
    let handover_id = open(&env, "s-1").await;

    let cancel = json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = send(&env, cancel).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );

    let closes = posts_to(&interact_srv, CLOSE_PATH).await;
    assert_eq!(closes.len(), 1);
    assert_eq!(header_of(&closes[0], "authorization").as_deref(), Some("Bearer itok-1"));
    let body = json_of(&closes[0]);
    assert_eq!(body["type"], "conversation.ended");
    assert_eq!(body["reason"], "user_cancelled");
    assert_eq!(body["conversationId"], INTERACT_CONVERSATION);
    assert_eq!(body["handoverId"], handover_id.as_str());
    let to_bot = received(&bot_srv).await;
    assert_eq!(to_bot.last().unwrap()["type"], "handover.ended");
    assert_eq!(to_bot.last().unwrap()["reason"], "user_cancelled");

    // A late agent message for the ended handover changes nothing.
    let before = env.dump().await;
    assert_eq!(
        callback(&env, &agent_text("ev-late", INTERACT_CONVERSATION, "Hello?"))
            .await
            .0,
        200
    );
    assert_eq!(env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn callbacks_without_our_token_are_refused_and_unknown_ones_ignored() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, interact_srv) = servers().await;
    interact_bot(&env, &bot_srv, &interact_srv, "").await;
    let _handover_id = open(&env, "s-1").await;
    let msg = agent_text("ev-1", INTERACT_CONVERSATION, "Hello");

    assert_eq!(callback_with(&env, &[], &msg).await.0, 401, "no token");
    let wrong = [("authorization", "Bearer another-token".to_owned())];
    assert_eq!(callback_with(&env, &wrong, &msg).await.0, 401, "wrong token");
    let ours = [("authorization", format!("Bearer {API_TOKEN}"))];
    assert_eq!(
        callback_with(&env, &ours, &msg).await.0,
        401,
        "the token we send is not the one #Interact must send"
    );
    let elsewhere = [("x-interact-token", CALLBACK_TOKEN.to_owned())];
    assert_eq!(
        callback_with(&env, &elsewhere, &msg).await.0,
        401,
        "the token in another header"
    );
    assert!(received(&bot_srv).await.is_empty());

    // An event type outside the contract is acknowledged and ignored; so is a conversation we
    // never handed over; an incomplete event is refused.
    let typing = json!({"type": "agent.typing", "id": "ev-2", "conversationId": INTERACT_CONVERSATION});
    let (status, answer) = callback(&env, &typing).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));
    let (status, answer) = callback(&env, &agent_text("ev-3", "ic-unknown", "Hi")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["ignored"], 1);
    let no_text = json!({"type": "agent.message", "id": "ev-4", "conversationId": INTERACT_CONVERSATION});
    assert_eq!(callback(&env, &no_text).await.0, 400);
    assert!(received(&bot_srv).await.is_empty());
}

#[tokio::test]
async fn paths_headers_and_relaying_follow_the_settings() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, interact_srv) = servers().await;
    Mock::given(method("POST"))
        .and(path("/interact-api/v2/chats/ic-77/handover"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&interact_srv)
        .await;
    let settings = "    startPath: /v2/chats/{conversationId}/handover\n    messagePath: /v2/chats/{conversationId}/messages\n    endPath: /v2/chats/{conversationId}/end\n    tokenHeader: X-Api-Key\n    tokenScheme: ''\n    callbackTokenHeader: X-Interact-Token\n    relayMessages: false\n";
    interact_bot(&env, &bot_srv, &interact_srv, settings).await;

    // The user already talks to #Interact's widget: the bot platform names the conversation.
    let request = json!({
        "id": "e-open", "type": "handover.request", "sessionId": "s-1",
        "handover": {"trigger": "explicit_request", "providerConversationId": "ic-77"}
    });
    let (status, answer) = send(&env, request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "opened", "{answer}");
    let starts = posts_to(&interact_srv, "/interact-api/v2/chats/ic-77/handover").await;
    assert_eq!(starts.len(), 1);
    assert_eq!(header_of(&starts[0], "x-api-key").as_deref(), Some(API_TOKEN));
    assert_eq!(header_of(&starts[0], "authorization"), None);
    assert_eq!(json_of(&starts[0])["conversationId"], "ic-77");

    // Messages are not relayed: the user's channel already runs through #Interact.
    send(&env, user_message("e2", "s-1", "Hello?")).await;
    let all = interact_srv.received_requests().await.unwrap();
    assert_eq!(all.len(), 1, "only the start reached #Interact");

    // #Interact's callbacks carry our token, alone, in its own header.
    let headers = [("x-interact-token", CALLBACK_TOKEN.to_owned())];
    let (status, answer) = callback_with(&env, &headers, &agent_text("ev-1", "ic-77", "Hi, Eva here")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let bearer = [("authorization", format!("Bearer {CALLBACK_TOKEN}"))];
    assert_eq!(
        callback_with(&env, &bearer, &closed("ev-2", "ic-77")).await.0,
        401,
        "the default header is not the configured one"
    );
    let (status, answer) = callback_with(&env, &headers, &closed("ev-2", "ic-77")).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)));
    let to_bot = received(&bot_srv).await;
    assert_eq!(of_type(&to_bot, "agent.message").len(), 1);
    let ended = of_type(&to_bot, "handover.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
    assert_eq!(interact_srv.received_requests().await.unwrap().len(), 1);
}

/// A configured `endPath` is where a handover that ends on our side is closed (the default
/// path is not called).
#[tokio::test]
async fn a_configured_end_path_receives_the_close_with_its_reason() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, interact_srv) = servers().await;
    for p in [
        "/interact-api/v2/chats/ic-9/handover",
        "/interact-api/v2/chats/ic-9/end",
    ] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(204))
            .mount(&interact_srv)
            .await;
    }
    let settings = "    startPath: /v2/chats/{conversationId}/handover\n    endPath: /v2/chats/{conversationId}/end\n";
    interact_bot(&env, &bot_srv, &interact_srv, settings).await;
    let request = json!({
        "id": "e-open", "type": "handover.request", "sessionId": "s-1",
        "handover": {"trigger": "explicit_request", "providerConversationId": "ic-9"}
    });
    let (status, answer) = send(&env, request).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("opened")), "{answer}");

    let (status, answer) = send(
        &env,
        json!({"id": "e-x", "type": "handover.cancel", "sessionId": "s-1"}),
    )
    .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (200, Some("user_cancelled")),
        "{answer}"
    );
    let ends = posts_to(&interact_srv, "/interact-api/v2/chats/ic-9/end").await;
    assert_eq!(ends.len(), 1, "the close went to endPath");
    assert_eq!(json_of(&ends[0])["reason"], "user_cancelled");
    assert!(
        posts_to(&interact_srv, "/interact-api/conversations/ic-9/close")
            .await
            .is_empty(),
        "not to the default path"
    );
}

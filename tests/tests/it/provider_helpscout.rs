//! Help Scout end to end: the real handlers, the emulator, a mock bot platform and a mock Help
//! Scout answering like its Inbox API 2.0 (OAuth token, create conversation with `Resource-ID`,
//! get conversation, customer threads, notes). Agent replies, assignments and status changes
//! arrive as webhooks signed `X-HelpScout-Signature: base64(HMAC-SHA1(secret, body))`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use handover::domain::{EndReason, State};
use handover::providers::helpscout;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const WEBHOOK_SECRET: &[u8] = b"whsec-hs-test";
const TOKEN_PATH: &str = "/v2/oauth2/token";
const CONVERSATIONS_PATH: &str = "/v2/conversations";
const CONVERSATION_PATH: &str = "/v2/conversations/4321";
const CUSTOMER_PATH: &str = "/v2/conversations/4321/customer";
const NOTES_PATH: &str = "/v2/conversations/4321/notes";
const CALLBACK_PATH: &str = "/v1/bots/acme/providers/helpscout/callback";
const PLATFORM_SECRET: &[u8] = b"bot-secret";
/// The placeholder address of user `u-7` of bot `acme` (the test user has no email).
const CUSTOMER_EMAIL: &str = "acme.u-7@handover.invalid";
const CUSTOMER_ID: u64 = 777;

/// The bot platform, and Help Scout answering like its API. New conversations get the ids
/// 4321, 4322, … in the `Resource-ID` header (201 without a body, as Help Scout answers).
async fn servers() -> (MockServer, MockServer) {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot)
        .await;
    // A fresh server (not one recycled from wiremock's pool), so no token cached by an earlier
    // test for the same address is reused.
    let hs = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "tok-1", "expires_in": 172800
        })))
        .mount(&hs)
        .await;
    let next_id = Arc::new(AtomicU64::new(4321));
    let base = hs.uri();
    Mock::given(method("POST"))
        .and(path(CONVERSATIONS_PATH))
        .respond_with(move |_: &Request| {
            let id = next_id.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(201)
                .insert_header("resource-id", id.to_string())
                .insert_header("location", format!("{base}/v2/conversations/{id}"))
        })
        .mount(&hs)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v2/conversations/\d+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4321, "number": 12, "threads": 3, "type": "chat", "folderId": 11,
            "status": "active", "state": "published", "subject": "Chat handed over by the bot",
            "mailboxId": 85,
            "createdBy": {"id": CUSTOMER_ID, "type": "customer", "email": CUSTOMER_EMAIL},
            "primaryCustomer": {"id": CUSTOMER_ID, "type": "customer", "first": "Ann", "email": CUSTOMER_EMAIL},
            "_links": {"self": {"href": "…"}}
        })))
        .mount(&hs)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v2/conversations/\d+/(customer|notes)$"))
        .respond_with(ResponseTemplate::new(201).insert_header("resource-id", "9100"))
        .mount(&hs)
        .await;
    (bot, hs)
}

/// A native bot whose only provider is Help Scout, with the API (and token endpoint) on the mock.
async fn helpscout_bot(env: &TestEnv, bot: &MockServer, hs: &MockServer) {
    let platform_ref = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let hs_ref = env
        .secret(
            "helpscout",
            &json!({"clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-hs-test"}),
        )
        .await;
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: helpscout\n    kind: helpscout\n    mailboxes:\n      Support_NL: 85\n    apiBaseUrl: '{}'\n    secretRef: {hs_ref}\nrouting:\n  - provider: helpscout\n    queue: Support_NL\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 3600 }}\n",
        bot.uri(),
        hs.uri()
    );
    env.put_bot(&yaml).await;
}

async fn send(env: &TestEnv, body: Value) -> (u16, Value) {
    env.send_event("acme", PLATFORM_SECRET, &body).await
}

/// POSTs a webhook body signed as Help Scout signs it, with its event header.
async fn callback(env: &TestEnv, event: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers = [
        ("x-helpscout-event", event.to_owned()),
        ("x-helpscout-signature", helpscout::signature(WEBHOOK_SECRET, &bytes)),
    ];
    env.call_provider(env.request("POST", CALLBACK_PATH, &headers, &bytes))
        .await
}

/// A 2.0 conversation object as Help Scout's webhooks carry it (the body of
/// `fixtures/helpscout/webhook-conversations.json`, sources in its `_source`, in mailbox 85),
/// with this status and these threads embedded (newest first).
fn conversation(id: u64, status: &str, threads: Vec<Value>) -> Value {
    let mut c = published("moved", id, 85);
    c["status"] = json!(status);
    c["threads"] = json!(threads.len());
    c["_embedded"]["threads"] = json!(threads);
    c
}

/// An agent's reply thread (type `message`, written by a user), its body HTML.
fn agent_reply(thread_id: u64, html: &str, at: &str) -> Value {
    json!({
        "id": thread_id, "type": "message", "status": "active", "state": "published",
        "body": html, "source": {"type": "web", "via": "user"},
        "createdBy": {"id": 99, "type": "user", "first": "Eva", "last": "", "email": "eva@acme.example"},
        "createdAt": at
    })
}

fn customer_thread(thread_id: u64, text: &str, at: &str) -> Value {
    json!({
        "id": thread_id, "type": "customer", "status": "active", "state": "published",
        "body": text, "source": {"type": "api", "via": "customer"},
        "createdBy": {"id": CUSTOMER_ID, "type": "customer", "email": CUSTOMER_EMAIL},
        "customer": {"id": CUSTOMER_ID, "email": CUSTOMER_EMAIL},
        "createdAt": at
    })
}

/// The customer-thread bodies Help Scout received with this text.
async fn relayed(srv: &MockServer, text: &str) -> Vec<Value> {
    posted_with(srv, CUSTOMER_PATH, "text", text).await
}

async fn open(env: &TestEnv, session: &str) -> String {
    env.open_handover(PLATFORM_SECRET, session).await
}

#[tokio::test]
async fn handover_to_a_help_scout_agent_and_back_to_the_bot() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;

    // The bot is in control: nothing reaches Help Scout.
    send(&env, user_message("e1", "s-42", "Where is my parcel?")).await;
    send(&env, bot_message("e2", "s-42", "Do you have a tracking number?")).await;
    assert!(hs.received_requests().await.unwrap().is_empty());

    // Handover: a client-credentials token (form fields), then one create call carrying the
    // customer, the transcript as imported threads and the context note.
    let (status, answer) = send(&env, handover_request("e3", "s-42")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "opened");
    assert_eq!(answer["state"], "waiting");
    let handover_id = answer["handoverId"].as_str().unwrap().to_owned();

    let tokens = requests_to(&hs, "POST", TOKEN_PATH).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        header_of(&tokens[0], "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header_of(&tokens[0], "authorization"),
        None,
        "credentials travel as form fields"
    );
    assert_eq!(
        String::from_utf8(tokens[0].body.clone()).unwrap(),
        "grant_type=client_credentials&client_id=cid&client_secret=csecret"
    );

    let created = requests_to(&hs, "POST", CONVERSATIONS_PATH).await;
    assert_eq!(created.len(), 1);
    assert_eq!(header_of(&created[0], "authorization").as_deref(), Some("Bearer tok-1"));
    assert!(
        header_of(&created[0], "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = json_of(&created[0]);
    assert_eq!(body["mailboxId"], 85, "the mailbox routed for the queue");
    assert_eq!(body["type"], "chat");
    assert_eq!(body["status"], "active");
    assert_eq!(
        body["imported"], true,
        "the history is imported: nobody is emailed about it"
    );
    assert_eq!(body["subject"], "Chat handed over by the bot");
    assert_eq!(body["tags"], json!(["vip"]));
    assert_eq!(body["customer"], json!({"email": CUSTOMER_EMAIL, "firstName": "Ann"}));
    let threads = body["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3, "{threads:?}");
    assert_eq!(threads[0]["type"], "customer");
    assert_eq!(threads[0]["customer"], json!({"email": CUSTOMER_EMAIL}));
    assert_eq!(threads[0]["text"], "Where is my parcel?");
    assert_eq!(threads[1]["type"], "note");
    assert_eq!(
        threads[1]["text"],
        "Bot: Do you have a tracking number?<br>[Quick replies: Yes | No]"
    );
    assert_eq!(threads[2]["type"], "note");
    let note = threads[2]["text"].as_str().unwrap();
    assert!(
        note.starts_with("Handed over by the bot (queue: Support_NL, reason: explicit_request"),
        "{note}"
    );
    assert!(note.contains("orderId: A-1"), "{note}");
    assert!(note.contains(&handover_id), "{note}");
    let times: Vec<&str> = threads.iter().map(|t| t["createdAt"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "threads keep their order: {times:?}"
    );
    assert_eq!(body["createdAt"], times[0]);
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(
        s.handover.as_ref().unwrap().provider_conversation_id.as_deref(),
        Some("4321"),
        "the Resource-ID is the conversation id"
    );

    // While waiting, user turns become customer threads (the customer id is read once from
    // the conversation) and bot turns notes.
    assert_eq!(
        send(&env, user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    send(&env, bot_message("e5", "s-42", "An agent is on the way.")).await;
    assert_eq!(requests_to(&hs, "GET", CONVERSATION_PATH).await.len(), 1);
    let customer = requests_to(&hs, "POST", CUSTOMER_PATH).await;
    assert_eq!(customer.len(), 1);
    assert_eq!(
        json_of(&customer[0]),
        json!({"customer": {"id": CUSTOMER_ID}, "text": "Are you still there?"})
    );
    assert_eq!(
        header_of(&customer[0], "authorization").as_deref(),
        Some("Bearer tok-1")
    );
    let notes = requests_to(&hs, "POST", NOTES_PATH).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        json_of(&notes[0]),
        json!({"text": "Bot: An agent is on the way.<p>Quick replies: Yes | No</p>"}),
        "a note is HTML: the quick replies as a line of their own"
    );

    // An agent takes the conversation, then replies.
    let (status, answer) = callback(&env, "convo.assigned", &conversation(4321, "active", vec![])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let reply = conversation(
        4321,
        "active",
        vec![
            agent_reply(9003, "<div>Hi Ann, I&#39;m Eva.</div>", "2026-11-25T09:01:00Z"),
            customer_thread(9002, "Are you still there?", "2026-11-25T09:00:30Z"),
        ],
    );
    let (status, answer) = callback(&env, "convo.agent.reply.created", &reply).await;
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

    // Now the user talks to the agent only; the customer id is remembered.
    assert_eq!(
        send(&env, user_message("e6", "s-42", "My parcel is late")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    assert_eq!(relayed(&hs, "My parcel is late").await.len(), 1);
    assert_eq!(requests_to(&hs, "GET", CONVERSATION_PATH).await.len(), 1);

    // Our own customer thread comes back as a customer-reply webhook: ignored.
    let echo = conversation(
        4321,
        "active",
        vec![customer_thread(9004, "My parcel is late", "2026-11-25T09:01:30Z")],
    );
    let (status, answer) = callback(&env, "convo.customer.reply.created", &echo).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));

    // The agent closes the conversation: back to the bot, and nothing is posted to Help Scout.
    let (status, answer) = callback(&env, "convo.status", &conversation(4321, "closed", vec![])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1);
    let to_bot = received(&bot_srv).await;
    let ended = of_type(&to_bot, "handover.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
    assert_eq!(requests_to(&hs, "POST", NOTES_PATH).await.len(), 1, "no closing note");
    assert_eq!(
        send(&env, user_message("e7", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );
    assert!(
        relayed(&hs, "Thanks!").await.is_empty(),
        "nothing is relayed after the end"
    );

    // The next handover opens a new conversation, whose history includes the agent's turn.
    let (status, answer) = send(&env, handover_request("e8", "s-42")).await;
    assert_eq!((status, answer["outcome"].clone()), (200, json!("opened")), "{answer}");
    let created = requests_to(&hs, "POST", CONVERSATIONS_PATH).await;
    assert_eq!(created.len(), 2);
    let second = json_of(&created[1]);
    assert!(
        second["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "note" && t["text"] == "Agent Eva: Hi Ann, I'm Eva."),
        "{second}"
    );
    let s = env.session("acme", "s-42").await.unwrap();
    assert_eq!(
        s.handover.as_ref().unwrap().provider_conversation_id.as_deref(),
        Some("4322")
    );

    // One token served every call; the agent's turn is in the bot's history.
    assert_eq!(requests_to(&hs, "POST", TOKEN_PATH).await.len(), 1);
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
async fn a_user_cancel_while_waiting_closes_the_help_scout_conversation() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    send(&env, user_message("e1", "s-1", "Agent please")).await;
    let handover_id = open(&env, "s-1").await;

    let cancel = json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = send(&env, cancel).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );

    // One note that says why, posted with `status: closed`.
    let notes = requests_to(&hs, "POST", NOTES_PATH).await;
    assert_eq!(notes.len(), 1);
    let note = json_of(&notes[0]);
    assert_eq!(note["status"], "closed");
    assert!(note["text"].as_str().unwrap().contains("user_cancelled"), "{note}");
    assert_eq!(header_of(&notes[0], "authorization").as_deref(), Some("Bearer tok-1"));
    let to_bot = received(&bot_srv).await;
    assert_eq!(to_bot.last().unwrap()["type"], "handover.ended");
    assert_eq!(to_bot.last().unwrap()["reason"], "user_cancelled");

    // A late agent reply for the ended handover changes nothing.
    let before = env.dump().await;
    let late = conversation(
        4321,
        "closed",
        vec![agent_reply(9010, "<p>Hello?</p>", "2026-11-25T09:05:00Z")],
    );
    assert_eq!(callback(&env, "convo.agent.reply.created", &late).await.0, 200);
    assert_eq!(env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn a_repeated_webhook_is_applied_once() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    let _handover_id = open(&env, "s-1").await;

    let reply = conversation(
        4321,
        "active",
        vec![agent_reply(9020, "<p>Hello</p>", "2026-11-25T09:01:00Z")],
    );
    let first = callback(&env, "convo.agent.reply.created", &reply).await;
    let second = callback(&env, "convo.agent.reply.created", &reply).await;
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first, second);
    let to_bot = received(&bot_srv).await;
    assert_eq!(of_type(&to_bot, "agent.message").len(), 1, "delivered once");
    assert_eq!(
        of_type(&to_bot, "agent.joined").len(),
        1,
        "the first agent message is the join"
    );
    // A later webhook still lists the first reply: only the new one is applied.
    let later = conversation(
        4321,
        "active",
        vec![
            agent_reply(9021, "<p>Anything else?</p>", "2026-11-25T09:02:00Z"),
            agent_reply(9020, "<p>Hello</p>", "2026-11-25T09:01:00Z"),
        ],
    );
    assert_eq!(callback(&env, "convo.agent.reply.created", &later).await.0, 200);
    let messages: Vec<Value> = of_type(&received(&bot_srv).await, "agent.message")
        .into_iter()
        .map(|m| m["message"]["text"].clone())
        .collect();
    assert_eq!(messages, [json!("Hello"), json!("Anything else?")]);
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.seq, 2, "two agent turns in the transcript");
}

#[tokio::test]
async fn unsigned_or_missigned_webhooks_are_refused_and_other_events_ignored() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    let _handover_id = open(&env, "s-1").await;
    let reply = conversation(
        4321,
        "active",
        vec![agent_reply(9030, "<p>Hello</p>", "2026-11-25T09:01:00Z")],
    );
    let bytes = serde_json::to_vec(&reply).unwrap();
    let event = ("x-helpscout-event", "convo.agent.reply.created".to_owned());

    let unsigned = env.request("POST", CALLBACK_PATH, std::slice::from_ref(&event), &bytes);
    assert_eq!(env.call_provider(unsigned).await.0, 401);
    let wrong = [
        event.clone(),
        ("x-helpscout-signature", helpscout::signature(b"another-secret", &bytes)),
    ];
    assert_eq!(
        env.call_provider(env.request("POST", CALLBACK_PATH, &wrong, &bytes))
            .await
            .0,
        401
    );
    let hex_style = [
        event.clone(),
        (
            "x-helpscout-signature",
            "0000000000000000000000000000000000000000".to_owned(),
        ),
    ];
    assert_eq!(
        env.call_provider(env.request("POST", CALLBACK_PATH, &hex_style, &bytes))
            .await
            .0,
        401
    );

    // The settings page's test delivery, and events not acted on, are acknowledged.
    let (status, answer) = callback(&env, "helpscout.test", &json!({"id": 123})).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));
    let (status, answer) = callback(&env, "convo.note.created", &reply).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));
    // A reply in a conversation that is not ours is ignored.
    let other = conversation(
        9999,
        "active",
        vec![agent_reply(9031, "<p>Hi</p>", "2026-11-25T09:01:00Z")],
    );
    let (status, answer) = callback(&env, "convo.agent.reply.created", &other).await;
    assert_eq!(status, 200);
    assert_eq!(answer["ignored"], 1);
    assert!(received(&bot_srv).await.is_empty());
}

#[tokio::test]
async fn a_reply_webhook_without_threads_is_completed_from_the_api() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    open(&env, "s-42").await;

    // Help Scout's threads endpoint: the agent's reply and the customer's first message
    // (newest first, as the API lists them).
    let threads_path = format!("{CONVERSATION_PATH}/threads");
    Mock::given(method("GET"))
        .and(path(threads_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "_embedded": {"threads": [
                agent_reply(9002, "<p>Hi Ann,&nbsp;I&#39;m Eva.</p>", "2026-11-25T09:00:05Z"),
                customer_thread(9001, "Where is my parcel?", "2026-11-25T08:59:58Z"),
            ]},
            "page": {"size": 25, "totalElements": 2, "totalPages": 1, "number": 1}
        })))
        .mount(&hs)
        .await;

    // The webhook names the conversation but carries no threads. (The start read the
    // conversation back once already, for events before its answer: not counted here.)
    let read_by_the_start = requests_to(&hs, "GET", &threads_path).await.len();
    let mut bare = conversation(4321, "active", Vec::new());
    bare.as_object_mut().unwrap().remove("_embedded");
    let (status, answer) = callback(&env, "convo.agent.reply.created", &bare).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 1, "{answer}");
    let fetched = requests_to(&hs, "GET", &threads_path).await[read_by_the_start..].to_vec();
    assert_eq!(fetched.len(), 1);
    assert_eq!(header_of(&fetched[0], "authorization").as_deref(), Some("Bearer tok-1"));
    let to_bot = received(&bot_srv).await;
    let messages = of_type(&to_bot, "agent.message");
    assert_eq!(messages.len(), 1, "{to_bot:?}");
    assert_eq!(messages[0]["message"]["text"], "Hi Ann, I'm Eva.");

    // Delivered again (webhooks are at least once): read again, applied once.
    let (status, _) = callback(&env, "convo.agent.reply.created", &bare).await;
    assert_eq!(status, 200);
    assert_eq!(
        requests_to(&hs, "GET", &threads_path).await.len(),
        read_by_the_start + 2
    );
    assert_eq!(of_type(&received(&bot_srv).await, "agent.message").len(), 1);

    // For a conversation that is not ours, Help Scout is not asked.
    let mut foreign = bare.clone();
    foreign["id"] = json!(999);
    let (status, answer) = callback(&env, "convo.agent.reply.created", &foreign).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)), "{answer}");
    assert!(
        requests_to(&hs, "GET", "/v2/conversations/999/threads")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_failed_threads_read_is_a_503_so_help_scout_delivers_again() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    open(&env, "s-42").await;
    let threads_path = format!("{CONVERSATION_PATH}/threads");
    Mock::given(method("GET"))
        .and(path(threads_path.as_str()))
        .respond_with(ResponseTemplate::new(500))
        .mount(&hs)
        .await;
    let mut bare = conversation(4321, "active", Vec::new());
    bare.as_object_mut().unwrap().remove("_embedded");
    let before = env.dump().await;
    let (status, answer) = callback(&env, "convo.agent.reply.created", &bare).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"]["code"].is_string(), "{answer}");
    assert_eq!(env.dump().await, before, "nothing is written");
    assert!(of_type(&received(&bot_srv).await, "agent.message").is_empty());
}

#[tokio::test]
async fn rich_turns_reach_help_scout_as_html_and_an_agents_html_reaches_the_bot() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    open(&env, "s-42").await;

    // A bot turn with a carousel while the user waits: a note with a list, images and links.
    let carousel = json!({
        "id": "e-rich", "type": "message", "sessionId": "s-42",
        "message": { "actor": "bot", "text": "Your parcels:", "cards": [
            {"title": "Parcel A-1", "subtitle": "Late", "imageUrl": "https://cdn.example.com/a1.png",
             "buttons": [{"title": "Track", "url": "https://track.example.com/A-1"}]},
            {"title": "Parcel B-2", "buttons": [{"title": "This one", "payload": "B-2"}]}
        ]}
    });
    assert_eq!(send(&env, carousel).await.0, 200);
    let notes = requests_to(&hs, "POST", NOTES_PATH).await;
    let note = json_of(notes.last().unwrap())["text"].as_str().unwrap().to_owned();
    assert_eq!(
        note,
        "Bot: Your parcels:<ul>\
         <li><b>Parcel A-1</b> — Late<br><img src=\"https://cdn.example.com/a1.png\" alt=\"Parcel A-1\"><br><a href=\"https://track.example.com/A-1\">Track</a></li>\
         <li><b>Parcel B-2</b><br>This one</li></ul>"
    );

    // The agent answers in HTML with a link, a list and an image.
    let html = "<p>Hi Ann, see <a href=\"https://track.example.com/A-1\">the tracking page</a>:</p>\
                <ul><li>A-1 leaves today</li><li>B-2 tomorrow</li></ul><p><img src=\"https://cdn.example.com/map.png\"></p>";
    let body = conversation(4321, "active", vec![agent_reply(9005, html, "2026-11-25T09:01:00Z")]);
    assert_eq!(callback(&env, "convo.agent.reply.created", &body).await.0, 200);
    let to_bot = received(&bot_srv).await;
    let message = &of_type(&to_bot, "agent.message")[0]["message"];
    assert_eq!(
        message["text"],
        "Hi Ann, see the tracking page (https://track.example.com/A-1):\n- A-1 leaves today\n- B-2 tomorrow"
    );
    assert_eq!(
        message["attachments"],
        json!([{"type": "image", "url": "https://cdn.example.com/map.png"}])
    );
}

/// A body of `fixtures/helpscout/webhook-conversations.json` (sources in its `_source`) for a
/// conversation and a mailbox.
fn published(name: &str, conversation: u64, mailbox: u64) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/helpscout/webhook-conversations.json"
    ))
    .unwrap()
    .replace("\"CONVERSATION\"", &conversation.to_string())
    .replace("/CONVERSATION", &format!("/{conversation}"))
    .replace("\"MAILBOX\"", &mailbox.to_string());
    let all: Value = serde_json::from_str(&text).unwrap();
    assert!(all[name].is_object(), "no fixture {name}");
    all[name].clone()
}

#[tokio::test]
async fn a_move_out_of_the_bots_mailboxes_ends_the_handover_and_a_move_within_them_does_not() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    open(&env, "s-move").await;

    // Still in mailbox 85, one of the bot's: nothing changes.
    let (status, answer) = callback(&env, "convo.moved", &published("moved", 4321, 85)).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)), "{answer}");
    assert_eq!(env.session("acme", "s-move").await.unwrap().state, State::Waiting);

    // Moved to mailbox 90, which the bot does not hand over to: the agent side took it away.
    let (status, answer) = callback(&env, "convo.moved", &published("moved", 4321, 90)).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let events = received(&bot_srv).await;
    let ended = of_type(&events, "handover.ended");
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0]["reason"], "agent_closed");
    assert_eq!(env.session("acme", "s-move").await.unwrap().state, State::Bot);
}

#[tokio::test]
async fn a_conversation_merged_into_another_ends_its_handover_at_the_next_turn() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, hs) = servers().await;
    helpscout_bot(&env, &bot_srv, &hs).await;
    open(&env, "s-merge").await;

    // 4321 is merged into 5555: the webhook names the survivor, not ours.
    let (status, answer) = callback(&env, "convo.merged", &published("merged", 5555, 85)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 0);
    // A merge into ours changes nothing either.
    let (status, answer) = callback(&env, "convo.merged", &published("merged", 4321, 85)).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)), "{answer}");
    assert_eq!(env.session("acme", "s-merge").await.unwrap().state, State::Waiting);

    // From now on Help Scout redirects every call on 4321 to the survivor.
    for p in [CONVERSATION_PATH, CUSTOMER_PATH, NOTES_PATH] {
        Mock::given(path(p))
            .respond_with(
                ResponseTemplate::new(301).insert_header("location", format!("{}/v2/conversations/5555", hs.uri())),
            )
            .with_priority(1)
            .mount(&hs)
            .await;
    }
    send(&env, user_message("e-after", "s-merge", "Hello?")).await;
    let events = received(&bot_srv).await;
    let ended = of_type(&events, "handover.ended");
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0]["reason"], "provider_error");
    let s = env.session("acme", "s-merge").await.unwrap();
    assert_eq!(s.state, State::Bot);
    assert_eq!(s.last_handover.unwrap().end_reason, Some(EndReason::ProviderError));
}

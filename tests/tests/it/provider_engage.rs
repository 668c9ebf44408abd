//! RingCentral Engage Digital (the embedded shape) end to end: the real handlers and the
//! emulator, a native bot platform on a mock server, and a stateful fake of Engage's REST API
//! (a thread whose categories change when they are updated, agent presence, interventions).
//! Webhook notifications are shaped like the examples of Engage's developer guide and carry the
//! webhook secret in `X-Dimelo-Secret`, as Engage sends them.
//!
//! In this shape the customer's and the bot's messages are already contents of the Engage
//! thread, so nothing is relayed; the calls that can fail and be retried are the
//! recategorisations (the retry test uses the hand-back at the end).

use std::sync::{Arc, Mutex};

use chrono::Duration;
use handover::app::evaluator;
use handover::config::{ProviderConfig, ProviderKind};
use handover::domain::{Actor, EndReason, State};
use handover::providers::engage::EngageProvider;
use handover::providers::{Provider, ProviderConversation};
use handover::secrets::Secret;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const THREAD: &str = "5be5ae57d6cb009bde8e5674";
const SOURCE: &str = "5b3b6562d6cb00f93fe59c9f";
const OTHER_CATEGORY: &str = "5bdcb766799fc227748f4453";
const BOT_CATEGORY: &str = "5be59e0a13047d01f46caa62";
const AGENT_CATEGORY: &str = "5be59e1f13047d026b6ca8af";
const BOT_USER: &str = "5b8eaf1813047d298f940001";
const AGENT: &str = "52fcf5157aa58dd768000006";
const ACCESS_TOKEN: &str = "tok-engage";
const WEBHOOK_SECRET: &str = "whsec-engage";
const VERIFY_TOKEN: &str = "verify-engage";
const CALLBACK_PATH: &str = "/v1/bots/acme/providers/engage/callback";
const BOT_SECRET: &[u8] = b"bot-secret";

fn thread_path() -> String {
    format!("/1.0/content_threads/{THREAD}")
}

fn update_path() -> String {
    format!("/1.0/content_threads/{THREAD}/update_categories")
}

/// The thread as `GET /content_threads/{id}` renders it (the transfer guide's example shape).
fn thread_json(categories: &[String]) -> Value {
    json!({
        "id": THREAD, "source_id": SOURCE, "title": "salut", "interventions_count": 0,
        "contents_count": 4, "closed": false, "category_ids": categories,
        "thread_category_ids": categories, "extra_data": {}, "foreign_id": null,
        "created_at": "2026-11-25T08:58:00Z", "updated_at": "2026-11-25T09:00:00Z"
    })
}

/// The thread's categories, shared by the fake's GET and PUT.
type Categories = Arc<Mutex<Vec<String>>>;

struct GetThread(Categories);

impl Respond for GetThread {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(thread_json(&self.0.lock().unwrap()))
    }
}

/// `PUT …/update_categories?thread_category_ids[]=…`: the thread gets exactly those categories.
struct UpdateCategories(Categories);

impl Respond for UpdateCategories {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let categories: Vec<String> = request
            .url
            .query_pairs()
            .filter(|(k, _)| *k == "thread_category_ids[]")
            .map(|(_, v)| v.into_owned())
            .collect();
        *self.0.lock().unwrap() = categories.clone();
        ResponseTemplate::new(200).set_body_json(thread_json(&categories))
    }
}

struct World {
    env: TestEnv,
    bot_srv: MockServer,
    engage: MockServer,
    categories: Categories,
}

/// An intervention record as `GET /interventions` lists it.
fn intervention_record(id: &str, user: &str, closed: bool, replies: u64) -> Value {
    json!({
        "id": id, "created_at": "2026-11-25T09:01:00Z", "updated_at": "2026-11-25T09:02:00Z",
        "source_id": SOURCE, "thread_id": THREAD, "content_id": "5be5aeffd6cb009bde8e56e2",
        "identity_id": "5b8eaf1813047d298f940265", "closed": closed, "category_ids": [AGENT_CATEGORY],
        "user_id": user, "user_replies_count": replies, "status": if closed { "closed" } else { "opened" }
    })
}

/// A bot whose only provider is Engage; the thread starts in the bot category (plus another
/// category that must survive every recategorisation); one agent is available.
async fn world() -> World {
    let env = TestEnv::in_memory().await;
    let bot_srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot_srv)
        .await;
    let engage = MockServer::builder().start().await;
    let categories: Categories = Arc::new(Mutex::new(vec![OTHER_CATEGORY.to_owned(), BOT_CATEGORY.to_owned()]));
    Mock::given(method("GET"))
        .and(path(thread_path()))
        .respond_with(GetThread(categories.clone()))
        .mount(&engage)
        .await;
    Mock::given(method("PUT"))
        .and(path(update_path()))
        .respond_with(UpdateCategories(categories.clone()))
        .mount(&engage)
        .await;
    // The transfer guide's `/status` example, for an agent of the agent category.
    Mock::given(method("GET"))
        .and(path("/1.0/status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "agent_id": AGENT,
            "channels": [
                {"id": "55794bd9416472d4e8050000", "name": "Async", "status": "available", "busyness": "busy"},
                {"id": "55794bda416472d4e8060000", "name": "Realtime", "status": "available", "busyness": "unoccupied"}
            ],
            "custom_status": null
        }])))
        .with_priority(10)
        .mount(&engage)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/interventions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"count": 0, "limit": 150, "offset": 0, "records": []})),
        )
        .with_priority(10)
        .mount(&engage)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/1\.0/interventions/[^/]+/close$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x", "closed": true})))
        .mount(&engage)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(r"^/1\.0/interventions/[^/]+/cancel$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "x"})))
        .mount(&engage)
        .await;

    let platform_ref = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let engage_ref = env
        .secret(
            "engage",
            &json!({"accessToken": ACCESS_TOKEN, "webhookSecret": WEBHOOK_SECRET, "verifyToken": VERIFY_TOKEN}),
        )
        .await;
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {bot}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: engage\n    kind: engage\n    secretRef: {engage_ref}\n    domain: acme\n    apiBaseUrl: '{api}'\n    agentCategoryId: '{AGENT_CATEGORY}'\n    botCategoryId: '{BOT_CATEGORY}'\n    botUserId: '{BOT_USER}'\n    sourceId: '{SOURCE}'\nrouting:\n  - provider: engage\n    queue: general\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 60 }}\n",
        bot = bot_srv.uri(),
        api = engage.uri(),
    );
    env.put_bot(&yaml).await;
    World {
        env,
        bot_srv,
        engage,
        categories,
    }
}

fn handover_for_thread(id: &str, session: &str) -> Value {
    json!({
        "id": id, "type": "handover.request", "sessionId": session,
        "handover": {
            "trigger": "explicit_request", "providerConversationId": THREAD,
            "summary": "Parcel A-1 is late", "tags": ["vip"], "variables": {"orderId": "A-1"}
        }
    })
}

/// A webhook notification: `{id, domain_id, events[]}`.
fn notification(request_id: &str, events: Vec<Value>) -> Value {
    json!({ "id": request_id, "domain_id": "582af25a799fc247acfcde38", "events": events })
}

/// An intervention event for the thread: the events page's sample
/// (`fixtures/engage/webhook-events.json`, sources in its `_source`) with this type, id and agent.
fn intervention_event(kind: &str, event_id: &str, owner: &str) -> Value {
    let sample = published_notification("sample", &["assigned"]);
    let mut e = sample["events"][0].clone();
    e["type"] = json!(kind);
    e["id"] = json!(event_id);
    e["user_id"] = json!(owner);
    e["issued_at"] = json!("2026-11-25T09:03:00.000Z");
    let meta = &mut e["resource"]["metadata"];
    meta["user_id"] = json!(owner);
    meta["category_ids"] = json!([OTHER_CATEGORY, AGENT_CATEGORY]);
    e
}

/// A reply written in Engage (by an agent, or by the bot through the API), as `content.replied`
/// carries it: content metadata of the chatbot guide's example shape.
fn reply_event(event_id: &str, user: &str, body: &str) -> Value {
    json!({
        "type": "content.replied", "id": event_id, "user_id": user, "issued_at": "2026-11-25T09:04:00.000Z",
        "resource": { "type": "chat/message", "id": format!("content-{event_id}"), "metadata": {
            "approval_required": false, "author_id": "5b8eaf1813047d298f940999", "body": body,
            "body_input_format": "text", "creator_id": user, "first_in_thread": false,
            "foreign_categories": [], "category_ids": [OTHER_CATEGORY, AGENT_CATEGORY],
            "has_attachment": false, "intervention_id": "5464b5c04d61639684110000",
            "in_reply_to_id": "5be5aeffd6cb009bde8e56e2", "language": "en", "source_id": SOURCE,
            "status": "replied", "thread_id": THREAD, "thread_title": "salut",
            "created_from": "interface", "private": true
        } }
    })
}

impl World {
    async fn send(&self, body: &Value) -> (u16, Value) {
        self.env.send_event("acme", BOT_SECRET, body).await
    }

    async fn callback_with(&self, secret: Option<&str>, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers: Vec<(&str, String)> = secret.map(|s| ("x-dimelo-secret", s.to_owned())).into_iter().collect();
        let req = self.env.request("POST", CALLBACK_PATH, &headers, &bytes);
        self.env.call_provider(req).await
    }

    async fn callback(&self, body: &Value) -> (u16, Value) {
        self.callback_with(Some(WEBHOOK_SECRET), body).await
    }

    /// Every request Engage received, each checked for the bearer token.
    async fn engage_requests(&self) -> Vec<Request> {
        let reqs = recorded(&self.engage).await;
        for r in &reqs {
            assert_eq!(
                r.headers.get("authorization").and_then(|v| v.to_str().ok()),
                Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
                "{} {}",
                r.method,
                r.url
            );
            assert!(
                !r.url.query_pairs().any(|(k, _)| k == "access_token"),
                "the token travels in the header only"
            );
        }
        reqs
    }

    /// `METHOD path` of every call but agent presence, in order.
    async fn engage_calls(&self) -> Vec<String> {
        self.engage_requests()
            .await
            .iter()
            .filter(|r| r.url.path() != "/1.0/status")
            .map(|r| format!("{} {}", r.method, r.url.path()))
            .collect()
    }

    /// The category lists sent to `update_categories`, in order.
    async fn recategorisations(&self) -> Vec<Vec<String>> {
        self.engage_requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() == "PUT" && r.url.path() == update_path())
            .map(|r| {
                r.url
                    .query_pairs()
                    .filter(|(k, _)| *k == "thread_category_ids[]")
                    .map(|(_, v)| v.into_owned())
                    .collect()
            })
            .collect()
    }

    fn thread_categories(&self) -> Vec<String> {
        self.categories.lock().unwrap().clone()
    }

    async fn to_bot(&self) -> Vec<Value> {
        received(&self.bot_srv).await
    }

    async fn to_bot_types(&self) -> Vec<String> {
        self.to_bot()
            .await
            .iter()
            .map(|b| b["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn opened(&self, event_id: &str, session: &str) -> String {
        let (status, answer) = self.send(&handover_for_thread(event_id, session)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
        answer["handoverId"].as_str().unwrap().to_owned()
    }

    /// Advances the clock and runs the evaluator (retries and timers).
    async fn after_seconds(&self, seconds: i64) {
        self.env.clock.advance(Duration::seconds(seconds));
        evaluator::run(&self.env.ctx, self.env.now()).await;
    }

    async fn mount_interventions(&self, records: Vec<Value>) {
        Mock::given(method("GET"))
            .and(path("/1.0/interventions"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "count": records.len(), "limit": 150, "offset": 0, "records": records
            })))
            .with_priority(1)
            .mount(&self.engage)
            .await;
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn handover_to_engage_agents_and_back_to_the_bot() {
    let w = world().await;

    // The bot is in control; nothing reaches Engage.
    assert_eq!(
        w.send(&user_message("e1", "s-42", "Where is my parcel?")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );
    w.send(&bot_message("e2", "s-42", "Do you have a tracking number?"))
        .await;
    assert!(w.engage_requests().await.is_empty());

    // The handover asks who is available for the agent category, then moves the thread from
    // the bot category to the agent category, keeping its other category.
    let handover_id = w.opened("e3", "s-42").await;
    let status = w
        .engage_requests()
        .await
        .into_iter()
        .find(|r| r.url.path() == "/1.0/status")
        .expect("agent presence asked");
    let status_query: Vec<(String, String)> = status.url.query_pairs().into_owned().collect();
    assert_eq!(
        status_query,
        [
            ("category_ids[]".to_owned(), AGENT_CATEGORY.to_owned()),
            ("source_ids[]".to_owned(), SOURCE.to_owned())
        ]
    );
    assert_eq!(
        w.engage_calls().await,
        [format!("GET {}", thread_path()), format!("PUT {}", update_path())]
    );
    assert_eq!(
        w.recategorisations().await,
        [strings(&[OTHER_CATEGORY, AGENT_CATEGORY])]
    );
    assert_eq!(w.thread_categories(), strings(&[OTHER_CATEGORY, AGENT_CATEGORY]));
    let s = w.env.session("acme", "s-42").await.unwrap();
    assert_eq!(s.state, State::Waiting);
    assert_eq!(
        s.handover.unwrap().provider_conversation_id.as_deref(),
        Some(THREAD),
        "the thread id is the conversation id"
    );

    // While waiting, the user's turns are already in the thread: nothing is posted, and the
    // bot answering in Engage through its own user is not taken for an agent.
    assert_eq!(
        w.send(&user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    let (status, answer) = w
        .callback(&notification(
            "req-1",
            vec![reply_event("ev-bot", BOT_USER, "An agent is on the way.")],
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], 0);
    assert!(w.to_bot().await.is_empty());
    assert_eq!(w.engage_calls().await.len(), 2, "nothing relayed in the embedded shape");

    // An agent engages, then replies.
    let (status, answer) = w
        .callback(&notification(
            "req-2",
            vec![intervention_event("intervention.opened", "ev-1", AGENT)],
        ))
        .await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let (status, answer) = w
        .callback(&notification(
            "req-3",
            vec![reply_event("ev-2", AGENT, "Hi Ann, I'm Eva. Let me check.")],
        ))
        .await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let to_bot = w.to_bot().await;
    let types: Vec<&str> = to_bot.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["agent.joined", "agent.message"]);
    assert_eq!(to_bot[0]["agent"]["id"], AGENT);
    assert_eq!(to_bot[1]["message"]["text"], "Hi Ann, I'm Eva. Let me check.");
    assert_eq!(to_bot[1]["handoverId"], handover_id.as_str());
    for r in w.bot_srv.received_requests().await.unwrap() {
        assert_signed(&r, BOT_SECRET);
    }
    assert_eq!(w.env.session("acme", "s-42").await.unwrap().state, State::Agent);

    // The user now talks to the agent, still only through Engage's own channel.
    assert_eq!(
        w.send(&user_message("e5", "s-42", "It is order A-1")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    assert_eq!(w.engage_calls().await.len(), 2);

    // The agent closes the intervention: control returns to the bot.
    let (status, answer) = w
        .callback(&notification(
            "req-4",
            vec![intervention_event("intervention.closed", "ev-3", AGENT)],
        ))
        .await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let ended = w.to_bot().await.last().cloned().unwrap();
    assert_eq!(ended["type"], "handover.ended");
    assert_eq!(ended["reason"], "agent_closed");
    // ... and the thread goes back to the bot's category, so the next message reaches the bot.
    assert!(
        w.thread_categories().contains(&BOT_CATEGORY.to_owned()),
        "{:?}",
        w.thread_categories()
    );
    assert!(!w.thread_categories().contains(&AGENT_CATEGORY.to_owned()));
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
    assert_eq!(
        agent_turns[0].message.text.as_deref(),
        Some("Hi Ann, I'm Eva. Let me check.")
    );
    let s = w.env.session("acme", "s-42").await.unwrap();
    assert_eq!(s.last_handover.unwrap().end_reason, Some(EndReason::AgentClosed));
}

#[tokio::test]
async fn the_end_after_an_agent_close_puts_the_thread_back_in_the_bot_category() {
    // What `end` does when the agent closed the conversation, called on the adapter itself:
    // the thread goes back to the bot category and no intervention is touched.
    let w = world().await;
    *w.categories.lock().unwrap() = strings(&[OTHER_CATEGORY, AGENT_CATEGORY]);
    let Value::Object(settings) = json!({
        "apiBaseUrl": w.engage.uri(), "agentCategoryId": AGENT_CATEGORY,
        "botCategoryId": BOT_CATEGORY, "botUserId": BOT_USER
    }) else {
        unreachable!()
    };
    let config = ProviderConfig {
        id: "engage".into(),
        kind: ProviderKind::Engage,
        url: None,
        availability_url: None,
        secret_ref: "handover/acme/engage".into(),
        settings,
    };
    let secret = Secret::from_json(
        &json!({"accessToken": ACCESS_TOKEN, "webhookSecret": WEBHOOK_SECRET, "verifyToken": VERIFY_TOKEN}).to_string(),
    )
    .unwrap();
    let p = EngageProvider::new(&config, &secret, reqwest::Client::new()).unwrap();
    let conversation = ProviderConversation {
        handover_id: "h-1".into(),
        conversation_id: THREAD.into(),
    };
    p.end("d-1", &conversation, EndReason::AgentClosed).await.unwrap();
    assert_eq!(w.recategorisations().await, [strings(&[OTHER_CATEGORY, BOT_CATEGORY])]);
    assert_eq!(w.thread_categories(), strings(&[OTHER_CATEGORY, BOT_CATEGORY]));
    assert_eq!(
        w.engage_calls().await,
        [format!("GET {}", thread_path()), format!("PUT {}", update_path())],
        "the agent already closed the intervention"
    );

    // Repeated (a retried delivery): the thread is already the bot's, nothing is sent.
    p.end("d-1", &conversation, EndReason::AgentClosed).await.unwrap();
    assert_eq!(w.recategorisations().await.len(), 1);
}

#[tokio::test]
async fn the_validation_request_is_answered_with_the_challenge() {
    let w = world().await;
    let get = |query: &str, secret: Option<&str>| {
        let headers: Vec<(&str, String)> = secret.map(|s| ("x-dimelo-secret", s.to_owned())).into_iter().collect();
        w.env.request("GET", &format!("{CALLBACK_PATH}?{query}"), &headers, b"")
    };
    let query = format!("hub.mode=subscribe&hub.challenge=6d1f9a2c&hub.verify_token={VERIFY_TOKEN}");
    let resp = handover::app::provider_callback::handle(&w.env.ctx, get(&query, Some(WEBHOOK_SECRET))).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
    let body: &[u8] = resp.body();
    assert_eq!(body, b"6d1f9a2c", "the body is exactly the challenge");

    let wrong_token = "hub.mode=subscribe&hub.challenge=6d1f9a2c&hub.verify_token=nope";
    assert_eq!(w.env.call_provider(get(wrong_token, Some(WEBHOOK_SECRET))).await.0, 401);
    assert_eq!(
        w.env.call_provider(get(&query, None)).await.0,
        401,
        "the secret comes with the validation too"
    );
    let wrong_mode = format!("hub.mode=unsubscribe&hub.challenge=6d1f9a2c&hub.verify_token={VERIFY_TOKEN}");
    assert_eq!(w.env.call_provider(get(&wrong_mode, Some(WEBHOOK_SECRET))).await.0, 400);
    assert!(w.engage_requests().await.is_empty());
}

#[tokio::test]
async fn a_user_cancel_while_waiting_hands_the_thread_back_and_releases_interventions() {
    let w = world().await;
    w.mount_interventions(vec![
        // The bot's own statistics intervention: left to the bot.
        intervention_record("i-bot", BOT_USER, false, 3),
        // An agent engaged without replying yet: cancelled (it cannot be closed).
        intervention_record("i-engaged", AGENT, false, 0),
        // An earlier, closed one: untouched.
        intervention_record("i-old", AGENT, true, 4),
    ])
    .await;
    let handover_id = w.opened("e1", "s-1").await;

    let (status, answer) = w
        .send(&json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );
    assert_eq!(
        w.recategorisations().await,
        [
            strings(&[OTHER_CATEGORY, AGENT_CATEGORY]),
            strings(&[OTHER_CATEGORY, BOT_CATEGORY])
        ]
    );
    assert_eq!(w.thread_categories(), strings(&[OTHER_CATEGORY, BOT_CATEGORY]));
    assert_eq!(
        w.engage_calls().await[2..],
        [
            format!("GET {}", thread_path()),
            format!("PUT {}", update_path()),
            "GET /1.0/interventions".to_owned(),
            "DELETE /1.0/interventions/i-engaged/cancel".to_owned(),
        ]
    );
    let listing = w
        .engage_requests()
        .await
        .into_iter()
        .find(|r| r.url.path() == "/1.0/interventions")
        .unwrap();
    let listing_query: Vec<(String, String)> = listing.url.query_pairs().into_owned().collect();
    assert_eq!(
        listing_query,
        [
            ("thread_id".to_owned(), THREAD.to_owned()),
            ("limit".to_owned(), "150".to_owned())
        ]
    );
    assert_eq!(w.to_bot().await.last().unwrap()["reason"], "user_cancelled");

    // A late agent reply for the ended handover changes nothing.
    let before = w.env.dump().await;
    let late = notification("req-9", vec![reply_event("ev-late", AGENT, "Hello?")]);
    assert_eq!(w.callback(&late).await.0, 200);
    assert_eq!(w.env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn an_idle_agent_is_released_and_the_thread_returns_to_the_bot() {
    let w = world().await;
    w.mount_interventions(vec![intervention_record("i-eva", AGENT, false, 2)])
        .await;
    w.opened("e1", "s-1").await;
    w.callback(&notification("req-1", vec![reply_event("ev-1", AGENT, "Hello")]))
        .await;
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Agent);

    // agentIdleSeconds is 60.
    w.after_seconds(120).await;
    let ended = w.to_bot().await.last().cloned().unwrap();
    assert_eq!(ended["type"], "handover.ended");
    assert_eq!(ended["reason"], "agent_idle_timeout");
    assert_eq!(w.thread_categories(), strings(&[OTHER_CATEGORY, BOT_CATEGORY]));
    let calls = w.engage_calls().await;
    assert_eq!(
        calls.last().map(String::as_str),
        Some("PUT /1.0/interventions/i-eva/close"),
        "{calls:?}"
    );
    assert_eq!(w.env.session("acme", "s-1").await.unwrap().state, State::Bot);
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_refused_and_other_threads_are_ignored() {
    let w = world().await;
    w.opened("e1", "s-1").await;
    let before = w.env.dump().await;
    let msg = notification("req-1", vec![reply_event("ev-1", AGENT, "Hello")]);
    assert_eq!(w.callback_with(Some("not-the-secret"), &msg).await.0, 401);
    assert_eq!(w.callback_with(None, &msg).await.0, 401);
    assert_eq!(w.env.dump().await, before);
    assert!(w.to_bot_types().await.is_empty());

    // Engage reports every thread of the subscribed sources: one the bot never handed over is
    // acknowledged and ignored.
    let mut elsewhere = reply_event("ev-2", AGENT, "Hi");
    elsewhere["resource"]["metadata"]["thread_id"] = json!("5be5ae57d6cb009bde8e9999");
    let (status, answer) = w.callback(&notification("req-2", vec![elsewhere])).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["applied"].clone(), answer["ignored"].clone()),
        (json!(0), json!(1))
    );
    // A customer message is not an agent event at all.
    let imported = json!({
        "type": "content.imported", "id": "ev-3", "issued_at": "2026-11-25T09:05:00.000Z",
        "resource": { "type": "chat/message", "id": "5be5aeffd6cb009bde8e56e9", "metadata": {
            "author_id": "5b8eaf1813047d298f940265", "body": "Hello?", "body_input_format": "text",
            "creator_id": null, "source_id": SOURCE, "status": "new", "thread_id": THREAD,
            "created_from": "synchronizer", "private": true
        } }
    });
    let (status, answer) = w.callback(&notification("req-3", vec![imported])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)));
    assert!(w.to_bot_types().await.is_empty());
}

#[tokio::test]
async fn a_request_without_the_thread_id_opens_nothing() {
    let w = world().await;
    let mut request = handover_for_thread("e1", "s-1");
    request["handover"]
        .as_object_mut()
        .unwrap()
        .remove("providerConversationId");
    let (status, answer) = w.send(&request).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(answer["outcome"], "opened", "{answer}");
    assert!(w.engage_calls().await.is_empty(), "no thread touched");
    assert_eq!(w.thread_categories(), strings(&[OTHER_CATEGORY, BOT_CATEGORY]));
}

#[tokio::test]
async fn without_an_available_agent_the_handover_is_closed() {
    let w = world().await;
    Mock::given(method("GET"))
        .and(path("/1.0/status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"agent_id": AGENT, "channels": [{"id": "c1", "name": "Realtime", "status": "away", "busyness": "ok"}]},
            {"agent_id": "52fcf5157aa58dd768000007", "channels": [{"id": "c1", "name": "Realtime", "status": "available", "busyness": "full"}]}
        ])))
        .with_priority(1)
        .mount(&w.engage)
        .await;
    let (status, answer) = w.send(&handover_for_thread("e1", "s-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "closed", "{answer}");
    assert_eq!(answer["reason"], "no_agents_online");
    assert!(w.engage_calls().await.is_empty(), "the thread stays with the bot");
}

#[tokio::test]
async fn the_evaluator_refreshes_agent_presence() {
    let w = world().await;
    assert_eq!(
        w.env.refreshed_presence("acme", "engage", "general").await,
        Some(Some(true))
    );
}

/// The operation of `templates` (`METHOD /path/{param}`) a request matches, with the values of
/// its path parameters.
fn operation_of<'a>(
    templates: impl Iterator<Item = &'a String>,
    verb: &str,
    path: &str,
) -> Option<(&'a str, Vec<(String, String)>)> {
    let segments: Vec<&str> = path.split('/').collect();
    templates.map(String::as_str).find_map(|t| {
        let (t_verb, t_path) = t.split_once(' ')?;
        let t_segments: Vec<&str> = t_path.split('/').collect();
        if t_verb != verb || t_segments.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (want, got) in t_segments.iter().zip(&segments) {
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) => params.push((name.to_owned(), (*got).to_owned())),
                None if want == got => {}
                None => return None,
            }
        }
        Some((t, params))
    })
}

/// A request's path and query parameters as one JSON object, each value typed as the
/// operation's parameter declares it (repeated `name[]` parameters are arrays).
fn parameters_of(declared: &[Value], path_params: &[(String, String)], request: &Request) -> Value {
    let declared_type = |name: &str| {
        declared
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["schema"]["type"].as_str())
            .unwrap_or("string")
            .to_owned()
    };
    let mut object = serde_json::Map::new();
    for (name, value) in path_params {
        object.insert(name.clone(), json!(value));
    }
    for (name, value) in request.url.query_pairs() {
        let typed = match declared_type(&name).as_str() {
            "integer" | "number" | "boolean" => serde_json::from_str(&value).unwrap_or(json!(value)),
            _ => json!(value),
        };
        if declared_type(&name) == "array" {
            let entry = object.entry(name.into_owned()).or_insert_with(|| json!([]));
            entry.as_array_mut().unwrap().push(typed);
        } else {
            assert!(
                object.insert(name.clone().into_owned(), typed).is_none(),
                "{name} repeated"
            );
        }
    }
    Value::Object(object)
}

/// The parameters an operation declares, as the schema of the object `parameters_of` builds:
/// each parameter's own schema, the required ones required, no other names.
fn parameters_schema(declared: &[Value]) -> Value {
    let properties: serde_json::Map<String, Value> = declared
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
        .collect();
    let required: Vec<&Value> = declared
        .iter()
        .filter(|p| p["required"] == true)
        .map(|p| &p["name"])
        .collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

#[tokio::test]
async fn every_request_matches_engages_published_parameters() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/engage/requests-openapi3.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let operations = spec["operations"].as_object().unwrap();
    let declared = |operation: &str| -> Vec<Value> {
        let params = spec["operations"][operation]["parameters"].as_array();
        params
            .unwrap_or_else(|| panic!("no parameters for {operation}"))
            .clone()
    };
    let validator = |operation: &str| {
        jsonschema::validator_for(&parameters_schema(&declared(operation)))
            .unwrap_or_else(|e| panic!("{operation}: {e}"))
    };

    let w = world().await;
    // At the cancel, the agent who replied has their intervention closed, the one who did not
    // has theirs cancelled.
    w.mount_interventions(vec![
        intervention_record("i-replied", AGENT, false, 2),
        intervention_record("i-engaged", "52fcf5157aa58dd768000007", false, 0),
    ])
    .await;
    // The handover (agent presence, the thread, its recategorisation), a user turn, and the
    // hand-back at the user's cancel (the thread, its recategorisation, the interventions).
    w.opened("e1", "s-1").await;
    w.send(&user_message("e2", "s-1", "Still there?")).await;
    w.send(&json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;

    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for r in w.engage_requests().await {
        let path = r.url.path().strip_prefix("/1.0").expect("under the API version");
        let (operation, path_params) = operation_of(operations.keys(), r.method.as_str(), path)
            .unwrap_or_else(|| panic!("a {} to {path} has no operation here", r.method));
        // None of these operations declares a request body: everything is in the URL.
        assert!(r.body.is_empty(), "{operation} sent a body");
        let params = parameters_of(&declared(operation), &path_params, &r);
        let errors: Vec<String> = validator(operation)
            .iter_errors(&params)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{operation} {params}: {errors:?}");
        *checked.entry(operation).or_default() += 1;
    }
    // Each kind of request was sent and checked; the schemas can refuse (wrong parameters fail).
    for op in [
        "GET /status",
        "GET /content_threads/{threadId}",
        "PUT /content_threads/{threadId}/update_categories",
        "GET /interventions",
        "PUT /interventions/{interventionId}/close",
        "DELETE /interventions/{interventionId}/cancel",
    ] {
        assert!(
            checked.get(op).is_some_and(|n| *n > 0),
            "{op} not exercised: {checked:?}"
        );
    }
    assert!(
        !validator("PUT /content_threads/{threadId}/update_categories")
            .is_valid(&json!({"threadId": THREAD, "thread_category_ids": [BOT_CATEGORY]})),
        "categories under a name the operation does not declare are refused"
    );
    assert!(
        !validator("GET /interventions").is_valid(&json!({"thread_id": THREAD, "limit": "all"})),
        "a limit that is not an integer is refused"
    );
}

/// One notification of `fixtures/engage/webhook-events.json` (sources in its `_source`): the
/// events named, for this test's thread, source and agent.
fn published_notification(request_id: &str, names: &[&str]) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/engage/webhook-events.json"
    ))
    .unwrap()
    .replace("\"THREAD\"", &format!("\"{THREAD}\""))
    .replace("\"SOURCE\"", &format!("\"{SOURCE}\""))
    .replace("\"AGENT\"", &format!("\"{AGENT}\""));
    let all: Value = serde_json::from_str(&text).unwrap();
    let mut n = all["notification"].clone();
    n["id"] = json!(request_id);
    n["events"] = names
        .iter()
        .map(|name| {
            let e = all["events"][*name].clone();
            assert!(e.is_object(), "no fixture event {name}");
            e
        })
        .collect();
    n
}

#[tokio::test]
async fn a_deferred_intervention_stays_with_its_agent_and_a_canceled_one_ends_the_handover() {
    let w = world().await;
    w.opened("e1", "s-cancel").await;
    let (status, answer) = w.callback(&published_notification("req-a", &["assigned"])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    assert_eq!(w.env.session("acme", "s-cancel").await.unwrap().state, State::Agent);

    // Deferred: put aside by its agent, reactivated later; the handover goes on.
    let (status, answer) = w.callback(&published_notification("req-d", &["deferred"])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(0)), "{answer}");
    assert_eq!(w.env.session("acme", "s-cancel").await.unwrap().state, State::Agent);
    assert!(!w.to_bot_types().await.contains(&"handover.ended".to_owned()));

    // Canceled by the agent: the agent side is done, control returns to the bot.
    let (status, answer) = w.callback(&published_notification("req-c", &["canceled"])).await;
    assert_eq!((status, answer["applied"].clone()), (200, json!(1)), "{answer}");
    let ended = w.to_bot().await.last().cloned().unwrap();
    assert_eq!(ended["type"], "handover.ended");
    assert_eq!(ended["reason"], "agent_closed");
    let s = w.env.session("acme", "s-cancel").await.unwrap();
    assert_eq!(s.state, State::Bot);
    assert_eq!(s.last_handover.unwrap().end_reason, Some(EndReason::AgentClosed));
}

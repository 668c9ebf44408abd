//! Behaviour docs/api.md promises that no other test reached: each 503 `unavailable` cause,
//! `unknown_route`, `no_route`, `empty_message`, the callback's `unknown_session`, the field
//! limits checked on their own (not behind the body cap), an invalid `timestamp`, an empty agent
//! message, the dialogs of every end, `position` in `handover.waiting`, and which outbound
//! statuses are retried.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use handover::app::ApiError;
use handover::app::engine::EngineError;
use handover::config::{Bot, BotConfig, Compile};
use handover::domain::{
    BotEvent, Conditions, Effect, Event, HandoverRequest, Input, Message, Opened, Rejection, Session, Speaker,
    TimerKind, Trigger, decide, started,
};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ok_world(env: &TestEnv, extra: &str) -> (MockServer, StandardBot) {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), extra)
        .await;
    (srv, bot)
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

/// A signed native event through a given context (another function instance).
async fn send_via(env: &TestEnv, ctx: &handover::app::AppContext, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let req = env.request(
        "POST",
        "/v1/bots/acme/events",
        &env.signed(b"bot-secret", &bytes),
        &bytes,
    );
    response_json(handover::app::bot_webhook::handle(ctx, req).await)
}

// ---- 503 unavailable, cause by cause ------------------------------------------------------

/// Fails every DynamoDB request before it is sent: storage is down.
#[derive(Debug, Clone)]
struct StorageDown;

impl Intercept for StorageDown {
    fn name(&self) -> &'static str {
        "StorageDown"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        Err("injected: storage is down".into())
    }
}

#[tokio::test]
async fn storage_down_is_503_unavailable_and_changes_nothing() {
    let env = TestEnv::new().await;
    let (_srv, _bot) = ok_world(&env, "").await;
    let before = env.dump().await;
    let sdk = emulator_sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(StorageDown)
            .build(),
    );
    let ctx = env.context_on(dynamo, aws_sdk_secretsmanager::Client::new(&sdk));
    let (status, answer) = send_via(&env, &ctx, &user_message("e1", "s-1", "hello")).await;
    assert_eq!((status, code(&answer)), (503, "unavailable"), "{answer}");
    assert_eq!(env.dump().await, before);
}

#[tokio::test]
async fn a_missing_secret_is_503_unavailable_for_the_bot_and_for_the_provider() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    let platform = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let u = srv.uri();
    // The desk's secret was never created (or was deleted).
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {platform} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', secretRef: handover/never-created }}\nrouting:\n  - {{ provider: desk, queue: general }}\n"
    ))
    .await;
    let before = env.dump().await;
    let cb = json!({"id": "c1", "type": "agent.joined", "conversationId": "h-1", "agent": {"id": "a-1"}});
    let (status, answer) = env.send_callback("acme", "desk", b"anything", &cb).await;
    assert_eq!((status, code(&answer)), (503, "unavailable"), "{answer}");
    assert_eq!(env.dump().await, before);

    // And the platform's secret: the bot's own requests cannot be verified.
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: handover/never-created }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', secretRef: {platform} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n"
    ))
    .await;
    let before_event = env.dump().await;
    // A fresh instance: the configuration cache of `env.ctx` may still hold the first version.
    let ctx = env.other_function(&ActionRecorder::default()).await;
    let (status, answer) = send_via(&env, &ctx, &user_message("e1", "s-1", "hello")).await;
    assert_eq!((status, code(&answer)), (503, "unavailable"), "{answer}");
    assert_eq!(env.dump().await, before_event);
    assert!(recorded(&srv).await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn an_unusable_stored_configuration_is_503_unavailable() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    let platform = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let u = srv.uri();
    // Stored without validation (as an old release or a hand edit could): routing names a
    // provider the bot does not have.
    let config: BotConfig = serde_yaml_ng::from_str(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {platform} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', secretRef: {platform} }}\nrouting:\n  - {{ provider: ghost, queue: general }}\n"
    ))
    .unwrap();
    assert!(Bot::new(config.clone()).is_err(), "the document is invalid");
    handover::store::BotStore::put_bot(&*env.store, &config).await.unwrap();
    let before = env.dump().await;
    let (status, answer) = env
        .send_event("acme", b"bot-secret", &user_message("e1", "s-1", "hello"))
        .await;
    assert_eq!((status, code(&answer)), (503, "unavailable"), "{answer}");
    assert_eq!(env.dump().await, before);
}

/// Another writer commits to the session between every read and every write of the function:
/// its version check fails each time.
#[derive(Debug, Clone)]
struct HotSession {
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    bumps: Arc<std::sync::atomic::AtomicUsize>,
}

impl Intercept for HotSession {
    fn name(&self) -> &'static str {
        "HotSession"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or_default();
        if target.ends_with("TransactWriteItems") {
            let (dynamo, table) = (self.dynamo.clone(), self.table.clone());
            // The interceptor is synchronous: the competing write runs on a thread of its own.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(
                        dynamo
                            .update_item()
                            .table_name(table)
                            .key("pk", AttributeValue::S("SESSION#acme#s-1".into()))
                            .key("sk", AttributeValue::S("STATE".into()))
                            .update_expression("ADD #v :one")
                            .expression_attribute_names("#v", "version")
                            .expression_attribute_values(":one", AttributeValue::N("1".into()))
                            .send(),
                    )
                    .expect("the competing write");
            })
            .join()
            .expect("the competing writer");
            self.bumps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_session_too_busy_to_commit_is_503_unavailable() {
    let env = TestEnv::new().await;
    let (_srv, bot) = ok_world(&env, "").await;
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e1", "s-1", "first"))
        .await;
    assert_eq!(status, 200);
    let sdk = emulator_sdk().await;
    let hot = HotSession {
        dynamo: env.dynamo().clone(),
        table: env.table().to_owned(),
        bumps: Arc::default(),
    };
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(hot.clone())
            .build(),
    );
    let ctx = env.context_on(dynamo, aws_sdk_secretsmanager::Client::new(&sdk));
    let (status, answer) = send_via(&env, &ctx, &user_message("e2", "s-1", "second")).await;
    assert_eq!((status, code(&answer)), (503, "unavailable"), "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap_or_default().contains("busy"),
        "{answer}"
    );
    assert!(
        hot.bumps.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "it retried before giving up"
    );
    let key = handover::store::SessionKey::new("acme", "s-1");
    let transcript = handover::store::SessionStore::transcript(&*env.store, &key, None)
        .await
        .unwrap();
    assert_eq!(transcript.len(), 1, "the busy message was not stored");
}

// ---- 404 and 422 codes --------------------------------------------------------------------

#[tokio::test]
async fn a_path_that_is_no_route_is_404_unknown_route() {
    let env = TestEnv::in_memory().await;
    let (_srv, bot) = ok_world(&env, "").await;
    for path in ["/v1/bots/acme/nothing-here", "/v2/bots/acme/events", "/v1/status"] {
        let body = b"{}";
        let (status, answer) = env
            .call_bot(env.request("POST", path, &env.signed(&bot.platform_secret, body), body))
            .await;
        assert_eq!((status, code(&answer)), (404, "unknown_route"), "{path}: {answer}");
    }
}

fn core_bot(routing: &str, extra: &str) -> Bot {
    let yaml = format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: p }}\nproviders:\n  - {{ id: desk, kind: webhook, url: 'https://desk.example.com', secretRef: d }}\nrouting:\n{routing}{extra}"
    );
    Bot::new(serde_yaml_ng::from_str::<BotConfig>(&yaml).unwrap()).unwrap()
}

fn request() -> HandoverRequest {
    HandoverRequest {
        trigger: Trigger::ExplicitRequest,
        provider: None,
        queue: None,
        language: None,
        variables: Default::default(),
        tags: vec![],
        summary: None,
        provider_conversation_id: None,
    }
}

/// The two rejections only the core can make (the native contract refuses an empty message
/// earlier, and a stored configuration always has a default rule), with the HTTP answer the
/// shell gives them.
#[test]
fn the_core_rejects_an_unroutable_request_with_no_route_and_an_empty_message_with_empty_message() {
    let now = t0();
    let session = Session::new("acme", "s-1", now);
    // A bot whose only rule applies to Dutch: valid configurations always end with a default
    // rule, so this one is edited after validation.
    let mut bot = core_bot("  - { provider: desk, queue: general }\n", "");
    bot.config.routing[0] =
        serde_yaml_ng::from_str("{ when: { language: nl }, provider: desk, queue: dutch }").unwrap();
    let refused = decide(
        &session,
        &Input::new(Event::HandoverRequested(request())),
        &bot,
        &Conditions::default(),
        now,
        "h-1",
    )
    .unwrap_err();
    assert_eq!(refused, Rejection::NoRoute);
    let api = ApiError::from(EngineError::Rejected(refused));
    assert_eq!((api.status, api.code), (422, "no_route"));

    let bot = core_bot("  - { provider: desk, queue: general }\n", "");
    for message in [Message::text(""), Message::text("   \n ")] {
        let refused = decide(
            &session,
            &Input::new(Event::Message {
                speaker: Speaker::User,
                message,
            }),
            &bot,
            &Conditions::default(),
            now,
            "h-1",
        )
        .unwrap_err();
        assert_eq!(refused, Rejection::EmptyMessage);
        let api = ApiError::from(EngineError::Rejected(refused));
        assert_eq!((api.status, api.code), (422, "empty_message"));
    }
}

#[tokio::test]
async fn a_callback_for_a_known_conversation_whose_session_is_gone_is_404_unknown_session() {
    let env = TestEnv::new().await;
    let (_srv, bot) = ok_world(&env, "").await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("h1", "s-1"))
        .await;
    let conversation = opened["handoverId"].as_str().unwrap().to_owned();
    // The session's state item is gone (expired), the conversation's link is still there.
    env.dynamo()
        .delete_item()
        .table_name(env.table())
        .key("pk", AttributeValue::S("SESSION#acme#s-1".into()))
        .key("sk", AttributeValue::S("STATE".into()))
        .send()
        .await
        .unwrap();
    let before = env.dump().await;
    let cb = json!({"id": "c1", "type": "agent.joined", "conversationId": conversation, "agent": {"id": "a-1"}});
    let (status, answer) = env.send_callback("acme", "desk", &bot.desk_secret, &cb).await;
    assert_eq!((status, code(&answer)), (404, "unknown_session"), "{answer}");
    assert_eq!(env.dump().await, before);
}

// ---- field limits, each on its own ---------------------------------------------------------

#[tokio::test]
async fn message_text_and_summary_limits_are_exact_and_refused_as_too_large() {
    let env = TestEnv::in_memory().await;
    let (srv, bot) = ok_world(&env, "").await;
    // At the limit: accepted (16,384 bytes of text; 4,096 of summary).
    let (status, answer) = env
        .send_event(
            "acme",
            &bot.platform_secret,
            &user_message("e1", "s-1", &"é".repeat(8 * 1024)),
        )
        .await;
    assert_eq!(status, 200, "16,384 bytes of text are accepted: {answer}");
    let mut at_limit = handover_request("h1", "s-1");
    at_limit["handover"]["summary"] = json!("s".repeat(4096));
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &at_limit).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("opened")), "{answer}");

    // One byte over: 422 `too_large` naming the field, far below the 256 KiB body cap, and
    // nothing changes (nothing reaches the provider either).
    let before = env.dump().await;
    let sent_before = recorded(&srv).await.len();
    let over_text = user_message("e2", "s-1", &format!("{}x", "é".repeat(8 * 1024)));
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &over_text).await;
    assert_eq!((status, code(&answer)), (422, "too_large"), "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("message.text"),
        "{answer}"
    );
    let mut over_summary = handover_request("h2", "s-2");
    over_summary["handover"]["summary"] = json!("s".repeat(4097));
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &over_summary).await;
    assert_eq!((status, code(&answer)), (422, "too_large"), "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("summary"),
        "{answer}"
    );
    assert_eq!(env.dump().await, before);
    assert_eq!(recorded(&srv).await.len(), sent_before, "nothing was sent");
}

#[tokio::test]
async fn a_timestamp_that_is_no_time_is_400_invalid_request() {
    let env = TestEnv::in_memory().await;
    let (_srv, bot) = ok_world(&env, "").await;
    let before = env.dump().await;
    let mut body = user_message("e1", "s-1", "hello");
    body["timestamp"] = json!("yesterday at noon");
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &body).await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"), "{answer}");
    assert_eq!(env.dump().await, before);
    // A valid one is read and accepted.
    body["timestamp"] = json!("2026-11-25T10:00:00Z");
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn an_empty_agent_message_is_400_invalid_callback() {
    let env = TestEnv::in_memory().await;
    let (_srv, bot) = ok_world(&env, "").await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("h1", "s-1"))
        .await;
    let conversation = opened["handoverId"].as_str().unwrap().to_owned();
    let before = env.dump().await;
    for (i, text) in ["", "   "].iter().enumerate() {
        let cb = json!({"id": format!("c{i}"), "type": "agent.message", "conversationId": conversation,
                        "agent": {"id": "a-1"}, "message": {"text": text}});
        let (status, answer) = env.send_callback("acme", "desk", &bot.desk_secret, &cb).await;
        assert_eq!((status, code(&answer)), (400, "invalid_callback"), "{text:?}: {answer}");
    }
    assert_eq!(env.dump().await, before);
}

async fn open_handover_of(env: &TestEnv, bot: &StandardBot, session: &str) -> String {
    let (status, a) = env
        .send_event(
            "acme",
            &bot.platform_secret,
            &handover_request(&format!("{session}-h"), session),
        )
        .await;
    assert_eq!((status, a["outcome"].as_str()), (200, Some("opened")), "{a}");
    a["handoverId"].as_str().unwrap().to_owned()
}

// ---- dialogs -------------------------------------------------------------------------------

#[tokio::test]
async fn every_end_reason_comes_with_its_documented_dialog_and_a_join_with_agent_joined() {
    let env = TestEnv::in_memory().await;
    let (srv, bot) = ok_world(
        &env,
        "timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0, agentIdleSeconds: 600 }\n",
    )
    .await;
    let cb = |id: &str, kind: &str, conversation: &str| json!({"id": id, "type": kind, "conversationId": conversation, "agent": {"id": "a-1", "name": "Eva"}});
    // agent_closed: joined, then closed by the agent.
    let closed = open_handover_of(&env, &bot, "s-closed").await;
    env.send_callback("acme", "desk", &bot.desk_secret, &cb("j1", "agent.joined", &closed))
        .await;
    env.send_callback(
        "acme",
        "desk",
        &bot.desk_secret,
        &cb("c1", "conversation.closed", &closed),
    )
    .await;
    // user_cancelled.
    let cancelled = open_handover_of(&env, &bot, "s-cancelled").await;
    env.send_event(
        "acme",
        &bot.platform_secret,
        &json!({"id": "x1", "type": "handover.cancel", "sessionId": "s-cancelled"}),
    )
    .await;
    // agent_idle_timeout: joined, then silent; no_agent_timeout: nobody joins.
    let idle = open_handover_of(&env, &bot, "s-idle").await;
    env.send_callback("acme", "desk", &bot.desk_secret, &cb("j2", "agent.joined", &idle))
        .await;
    let unanswered = open_handover_of(&env, &bot, "s-unanswered").await;
    env.tick_minutes(6).await;
    env.tick_minutes(5).await;

    let bodies = received(&srv).await;
    let ended = |h: &str| -> (String, String) {
        let e: Vec<&Value> = bodies
            .iter()
            .filter(|b| b["type"] == "handover.ended" && b["handoverId"] == h)
            .collect();
        assert_eq!(e.len(), 1, "{h}: {bodies:#?}");
        (
            e[0]["reason"].as_str().unwrap().to_owned(),
            e[0]["dialog"]["name"].as_str().unwrap().to_owned(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(ended(&closed), pair("agent_closed", "returned_to_bot"));
    assert_eq!(ended(&cancelled), pair("user_cancelled", "returned_to_bot"));
    assert_eq!(ended(&idle), pair("agent_idle_timeout", "returned_to_bot"));
    assert_eq!(ended(&unanswered), pair("no_agent_timeout", "no_agent"));
    let joins: Vec<&Value> = bodies.iter().filter(|b| b["type"] == "agent.joined").collect();
    assert_eq!(joins.len(), 2, "{joins:#?}");
    for j in joins {
        assert_eq!(j["dialog"]["name"], "agent_joined", "{j}");
        assert!(j["dialog"]["text"].as_str().is_some_and(|t| !t.is_empty()), "{j}");
    }
}

// ---- position in handover.waiting ------------------------------------------------------------

/// `position` is sent when the handover knows it (a provider reported it), and left out
/// otherwise; no provider of this release reports one, so this is shown on the core and the
/// native body.
#[test]
fn handover_waiting_carries_the_position_only_when_known() {
    let bot = core_bot(
        "  - { provider: desk, queue: general }\n",
        "timeouts: { noAgentSeconds: 600, stillWaitingEverySeconds: 60 }\n",
    );
    let now = t0();
    let requested = decide(
        &Session::new("acme", "s-1", now),
        &Input::new(Event::HandoverRequested(request())),
        &bot,
        &Conditions::default(),
        now,
        "h-1",
    )
    .unwrap();
    let start = requested.start.clone().expect("a start");
    let opened = Opened {
        conversation_id: "conv-1".into(),
        through_seq: start.through_seq,
        named_by_answer: false,
    };
    let waiting = started(requested, &bot, &opened, now).session;
    let nudge = |position: Option<u32>| {
        let mut session = waiting.clone();
        session.handover.as_mut().unwrap().position = position;
        let d = decide(
            &session,
            &Input::new(Event::TimerFired {
                handover_id: "h-1".into(),
                timer: TimerKind::StillWaiting,
            }),
            &bot,
            &Conditions::default(),
            now + chrono::Duration::seconds(61),
            "h-2",
        )
        .unwrap();
        let event = d
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Bot {
                    event: event @ BotEvent::Waiting { .. },
                    ..
                } => Some(event.clone()),
                _ => None,
            })
            .expect("a handover.waiting");
        let key = handover::store::SessionKey::new("acme", "s-1");
        handover::platform::native::outbound_body("ev-1", &key, "h-1", &event, now)
    };
    let with = nudge(Some(3));
    assert_eq!(with["type"], "handover.waiting");
    assert_eq!(with["position"], 3, "{with}");
    assert_eq!(with["dialog"]["name"], "still_waiting");
    let without = nudge(None);
    assert!(without.get("position").is_none(), "{without}");
}

// ---- outbound statuses: 408 and 425 retried, other 4xx given up --------------------------

async fn agent_message_with_bot_answering(first: u16) -> (TestEnv, MockServer, handover::app::evaluator::Report) {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(first))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("h1", "s-1"))
        .await;
    let conversation = opened["handoverId"].as_str().unwrap().to_owned();
    let cb = json!({"id": "c1", "type": "agent.message", "conversationId": conversation,
                    "agent": {"id": "a-1"}, "message": {"text": "Hello from Eva"}});
    let (status, _) = env.send_callback("acme", "desk", &bot.desk_secret, &cb).await;
    assert_eq!(status, 200);
    let report = env.tick_minutes(2).await;
    (env, srv, report)
}

/// How many times the first delivery to the bot (refused with the status under test) was sent.
async fn tries_of_the_first_delivery(srv: &MockServer) -> usize {
    let bodies: Vec<Value> = requests_to(srv, "POST", "/bot").await.iter().map(json_of).collect();
    let first = bodies.first().expect("a delivery to the bot")["id"].clone();
    bodies.iter().filter(|b| b["id"] == first).count()
}

#[tokio::test]
async fn outbound_401_403_408_and_425_are_retried_and_another_4xx_is_given_up_at_once() {
    for status in [401, 403, 408, 425, 429, 500, 503] {
        let (_env, srv, report) = agent_message_with_bot_answering(status).await;
        assert_eq!(
            tries_of_the_first_delivery(&srv).await,
            2,
            "{status}: refused once, delivered on the retry"
        );
        assert_eq!(report.gave_up, 0, "{status}: {report:?}");
        assert!(report.delivered >= 1, "{status}: {report:?}");
    }
    for status in [400, 404, 409, 410, 413, 422] {
        let (_env, srv, report) = agent_message_with_bot_answering(status).await;
        assert_eq!(
            tries_of_the_first_delivery(&srv).await,
            1,
            "{status}: tried once, never again"
        );
        assert_eq!(report.retried, 0, "{status}: {report:?}");
    }
}

// ---- caches: unknown bots, stored and inline agent presence -------------------------------

#[tokio::test]
async fn an_unknown_bot_id_is_remembered_without_a_read_then_looked_up_again() {
    assert_eq!(
        handover::app::bots::UNKNOWN_BOT_TTL,
        std::time::Duration::from_secs(10),
        "docs/api.md: an unknown bot id is remembered for 10 s"
    );
    let env = TestEnv::new().await;
    let (_srv, _bot) = ok_world(&env, "").await;
    let counter = OpCounter::default();
    let counted = env.counted_function(&counter).await;
    // The window is the shorter of 10 s and the bot cache's time: 300 ms here, so the test
    // can see it end without waiting 10 s.
    let ctx = handover::app::AppContext::new(counted.store.clone(), counted.secrets.clone(), env.clock.clone())
        .with_bot_cache_ttl(std::time::Duration::from_millis(300));
    let ghost = |id: &str| {
        let bytes = serde_json::to_vec(&user_message(id, "s-1", "hello")).unwrap();
        env.request(
            "POST",
            "/v1/bots/ghost/events",
            &env.signed(b"bot-secret", &bytes),
            &bytes,
        )
    };
    let (status, _) = response_json(handover::app::bot_webhook::handle(&ctx, ghost("e1")).await);
    assert_eq!(status, 401);
    assert_eq!(
        counter.total(),
        1,
        "the first request read the store: {:?}",
        counter.counts()
    );
    // The bot is created now, but its id is remembered as unknown: still 401, no read.
    let u = "http://127.0.0.1:9";
    env.put_bot(&format!(
        "botId: ghost\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', secretRef: {p} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n",
        p = env.secret("ghost-platform", &json!({"signingSecret": "bot-secret"})).await
    ))
    .await;
    counter.reset();
    let (status, _) = response_json(handover::app::bot_webhook::handle(&ctx, ghost("e2")).await);
    assert_eq!(status, 401);
    assert_eq!(
        counter.total(),
        0,
        "answered from the negative cache: {:?}",
        counter.counts()
    );
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let (status, answer) = response_json(handover::app::bot_webhook::handle(&ctx, ghost("e3")).await);
    assert_eq!(status, 200, "looked up again after the window: {answer}");
}

#[tokio::test]
async fn stored_presence_is_used_for_two_minutes_and_an_inline_answer_is_reused() {
    assert_eq!(
        handover::app::health::STORED_PRESENCE_MAX_AGE,
        chrono::Duration::minutes(2)
    );
    assert_eq!(
        handover::app::health::AGENTS_CACHE_TTL,
        std::time::Duration::from_secs(30)
    );
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/presence"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"agentsOnline": 2})))
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let p = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let u = srv.uri();
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', availabilityUrl: '{u}/presence', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n"
    ))
    .await;
    let asked = || async { requests_to(&srv, "GET", "/presence").await.len() };
    // The evaluator (this instance) stores the presence; requests go to another instance, whose
    // in-process cache starts empty.
    assert_eq!(
        env.refreshed_presence("acme", "desk", "general").await,
        Some(Some(true))
    );
    assert_eq!(asked().await, 1);
    let other = env.other_function(&ActionRecorder::default()).await;
    env.clock.advance(chrono::Duration::seconds(120));
    let (_, a) = send_via(&env, &other, &handover_request("h1", "s-1")).await;
    assert_eq!(a["outcome"], "opened", "{a}");
    assert_eq!(asked().await, 1, "a stored answer 120 s old is used as it is");
    env.clock.advance(chrono::Duration::seconds(1));
    let (_, a) = send_via(&env, &other, &handover_request("h2", "s-2")).await;
    assert_eq!(a["outcome"], "opened", "{a}");
    assert_eq!(asked().await, 2, "older than 2 minutes: asked inline");
    let (_, a) = send_via(&env, &other, &handover_request("h3", "s-3")).await;
    assert_eq!(a["outcome"], "opened", "{a}");
    assert_eq!(asked().await, 2, "the inline answer is reused within its 30 s");
}

// ---- the evaluator's report ----------------------------------------------------------------

#[tokio::test]
async fn the_evaluator_report_shows_backlog_skipped_bots_an_exhausted_budget_and_writes() {
    use handover::app::evaluator;
    let env = TestEnv::in_memory().await;
    let (_srv, bot) = ok_world(&env, "timeouts: { noAgentSeconds: 60, stillWaitingEverySeconds: 0 }\n").await;
    open_handover_of(&env, &bot, "s-1").await;
    open_handover_of(&env, &bot, "s-2").await;
    env.clock.advance(chrono::Duration::minutes(2));
    // No time left for any unit of work: everything is left for the next run, and said so.
    let starved = evaluator::handle_until(&env.ctx, &json!({}), tokio::time::Instant::now()).await;
    assert_eq!(
        (
            &starved["backlog"],
            &starved["botsSkipped"],
            &starved["budgetExhausted"],
            &starved["availabilityWritten"],
            &starved["timersFired"]
        ),
        (&json!(2), &json!(1), &json!(true), &json!(0), &json!(0)),
        "{starved}"
    );
    // With time: both timers fire, the bot's availability is written once, then unchanged.
    let full = evaluator::handle_until(
        &env.ctx,
        &json!({}),
        tokio::time::Instant::now() + evaluator::RUN_BUDGET,
    )
    .await;
    assert_eq!(
        (
            &full["backlog"],
            &full["botsSkipped"],
            &full["budgetExhausted"],
            &full["availabilityWritten"],
            &full["timersFired"]
        ),
        (&json!(0), &json!(0), &json!(false), &json!(1), &json!(2)),
        "{full}"
    );
    env.clock.advance(chrono::Duration::minutes(1));
    let next = evaluator::handle_until(
        &env.ctx,
        &json!({}),
        tokio::time::Instant::now() + evaluator::RUN_BUDGET,
    )
    .await;
    assert_eq!(next["availabilityWritten"], 0, "nothing changed: {next}");
}

//! The shell as a driver: provider adapters built once per bot load (not per request), and
//! agent presence refreshed by the evaluator for the generic webhook (the other kinds that can
//! report presence are checked in their own modules).

use std::time::Duration;

use handover::app::{AppContext, bot_webhook, evaluator, provider_callback};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A second function instance on the test's table that reads the bot on every request (cache
/// time zero), so "once per load" is checked against the strictest cache.
fn uncached(env: &TestEnv) -> AppContext {
    AppContext::new(env.ctx.store.clone(), env.ctx.secrets.clone(), env.clock.clone())
        .with_bot_cache_ttl(Duration::ZERO)
}

async fn post(ctx: &AppContext, env: &TestEnv, secret: &[u8], body: &Value) -> Value {
    let bytes = serde_json::to_vec(body).unwrap();
    let req = env.request("POST", "/v1/bots/acme/events", &env.signed(secret, &bytes), &bytes);
    response_json(bot_webhook::handle(ctx, req).await).1
}

async fn callback(ctx: &AppContext, env: &TestEnv, secret: &[u8], body: &Value) -> u16 {
    let bytes = serde_json::to_vec(body).unwrap();
    let req = env.request(
        "POST",
        "/v1/bots/acme/providers/desk/callback",
        &env.signed(secret, &bytes),
        &bytes,
    );
    response_json(provider_callback::handle(ctx, req).await).0
}

#[tokio::test]
async fn provider_adapters_are_built_once_per_bot_load_not_per_request() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let ctx = uncached(&env);
    let secret = &bot.platform_secret;

    post(&ctx, &env, secret, &user_message("e1", "s-1", "hello")).await;
    let opened = post(&ctx, &env, secret, &handover_request("e2", "s-1")).await;
    assert_eq!(opened["outcome"], "opened", "{opened}");
    let conversation = opened["handoverId"].as_str().unwrap().to_owned();
    post(&ctx, &env, secret, &user_message("e3", "s-1", "still there?")).await;
    let cb = |id: &str, kind: &str| json!({"id": id, "type": kind, "conversationId": conversation, "timestamp": "2026-11-25T09:01:00Z", "agent": {"id": "a-1", "name": "Eva"}, "message": {"text": "Hi"}});
    for (id, kind) in [
        ("c1", "agent.joined"),
        ("c2", "agent.message"),
        ("c3", "conversation.closed"),
    ] {
        assert_eq!(callback(&ctx, &env, &bot.desk_secret, &cb(id, kind)).await, 200);
    }
    evaluator::run(&ctx, env.now()).await;
    let desk_calls = received(&srv).await.iter().filter(|b| b["type"] != Value::Null).count();
    assert!(
        desk_calls >= 5,
        "the flow reached the provider and the bot ({desk_calls} calls)"
    );
    assert_eq!(
        ctx.adapters_built(),
        1,
        "one adapter for one provider of one loaded bot"
    );

    // A changed configuration is a new load: its adapter is built again, once.
    let mut config = env.store.get_bot("acme").await.unwrap().unwrap().value;
    config.timeouts.no_agent_seconds = 900;
    env.store.put_bot(&config).await.unwrap();
    post(&ctx, &env, secret, &handover_request("e4", "s-1")).await;
    post(&ctx, &env, secret, &user_message("e5", "s-1", "again")).await;
    assert_eq!(ctx.adapters_built(), 2);
}

#[tokio::test]
async fn the_evaluator_refreshes_the_presence_a_webhook_provider_reports() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/presence"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"agentsOnline": 2})))
        .mount(&srv)
        .await;
    let p = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let u = srv.uri();
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', availabilityUrl: '{u}/presence', secretRef: {d} }}\n  - {{ id: plain, kind: webhook, url: '{u}/plain', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n  - {{ provider: plain, queue: other }}\n"
    ))
    .await;
    assert_eq!(
        env.refreshed_presence("acme", "desk", "general").await,
        Some(Some(true))
    );
    assert_eq!(
        env.refreshed_presence("acme", "plain", "other").await,
        None,
        "a webhook provider without availabilityUrl cannot tell"
    );
}

#[tokio::test]
async fn the_outbound_http_client_is_built_only_when_something_goes_out() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    assert!(!env.ctx.http.is_built(), "nothing is built at start");
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e1", "s-1", "hello"))
        .await;
    assert_eq!(status, 200);
    assert!(
        !env.ctx.http.is_built(),
        "a turn in bot control sends nothing out and builds no client"
    );
    let (status, answer) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e2", "s-1"))
        .await;
    assert_eq!((status, answer["outcome"].clone()), (200, json!("opened")), "{answer}");
    assert!(env.ctx.http.is_built(), "the handover called the provider");
    assert!(!received(&srv).await.is_empty());
}

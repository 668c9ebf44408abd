//! DynamoDB round trips on the hot path, counted by an SDK interceptor
//! (figures in docs/performance.md).

use handover::store::Store;
use handover_tests::*;
use wiremock::MockServer;

#[tokio::test]
async fn user_message_while_bot_in_control_takes_one_round_trip() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    // Warm container: the first request reads the bot configuration into the cache.
    env.ddb_requests.reset();
    env.send_event("acme", &bot.platform_secret, &user_message("e1", "s-1", "first"))
        .await;
    let cold = env.ddb_requests.get();
    assert_eq!(cold, 3, "config read + session read + transaction on a cold cache");

    env.ddb_requests.reset();
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e2", "s-1", "second"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.ddb_requests.get(),
        1,
        "one transactional write, decided on this instance's copy of the session"
    );

    // A new session: the read finds nothing, the write creates it.
    env.ddb_requests.reset();
    env.send_event("acme", &bot.platform_secret, &user_message("e3", "s-2", "hello"))
        .await;
    assert_eq!(env.ddb_requests.get(), 2);

    // Another instance wrote meanwhile: this copy is stale, its commit fails the version
    // condition, and the session is read and the turn decided again. Nothing is lost.
    let other = env.context_on(env.dynamo.clone(), env.secrets.clone());
    let body = serde_json::to_vec(&user_message("e4", "s-1", "from elsewhere")).unwrap();
    let req = env.request(
        "POST",
        "/v1/bots/acme/events",
        &env.signed(&bot.platform_secret, &body),
        &body,
    );
    assert_eq!(
        response_json(handover::app::bot_webhook::handle(&other, req).await).0,
        200
    );
    env.ddb_requests.reset();
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e5", "s-1", "third"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.ddb_requests.get(), 3, "a failed write, a read, a write");
    let texts: Vec<String> = env
        .store
        .transcript(&handover::store::SessionKey::new("acme", "s-1"), None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.render_text())
        .collect();
    assert_eq!(texts, ["first", "second", "from elsewhere", "third"]);
}

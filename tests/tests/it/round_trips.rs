//! DynamoDB round trips on the hot path, counted by an SDK interceptor
//! (figures in docs/performance.md).

use handover_tests::*;
use wiremock::MockServer;

#[tokio::test]
async fn user_message_while_bot_in_control_takes_two_round_trips() {
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
    assert_eq!(env.ddb_requests.get(), 2, "one read, one transactional write");

    // A new session costs the same: the read finds nothing, the write creates it.
    env.ddb_requests.reset();
    env.send_event("acme", &bot.platform_secret, &user_message("e3", "s-2", "hello"))
        .await;
    assert_eq!(env.ddb_requests.get(), 2);
}

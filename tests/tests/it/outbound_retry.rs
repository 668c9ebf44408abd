//! Effects leave only after their commit and are retried until delivered or given up, never
//! silently dropped.

use chrono::Duration;
use handover::app::evaluator;
use handover::store::{OutboxStatus, SessionKey};
use handover_tests::*;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn open_and_join(env: &TestEnv, bot: &StandardBot) -> String {
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    let conv = opened["handoverId"].as_str().expect("opened").to_owned();
    let joined =
        json!({"id": "c-join", "type": "agent.joined", "conversationId": conv, "agent": {"id": "a-1", "name": "Eva"}});
    assert_eq!(
        env.send_callback("acme", "desk", &bot.desk_secret, &joined).await.0,
        200
    );
    conv
}

async fn run_evaluator_after(env: &TestEnv, minutes: i64) -> evaluator::Report {
    env.clock.advance(Duration::minutes(minutes));
    evaluator::run(&env.ctx, env.now()).await
}

#[tokio::test]
async fn bot_outbound_failing_twice_is_delivered_exactly_once_after_retries() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let conv = open_and_join(&env, &bot).await;

    // From now on the bot's receiver fails twice, then recovers.
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&srv)
        .await;
    let msg = json!({"id": "c-msg", "type": "agent.message", "conversationId": conv, "message": {"text": "Found it!"}});
    assert_eq!(
        env.send_callback("acme", "desk", &bot.desk_secret, &msg).await.0,
        200,
        "accepted even though delivery failed"
    );

    let key = SessionKey::new("acme", "s-1");
    let pending = env.store.outbox(&key).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
    assert!(pending[0].last_error.as_deref().unwrap().contains("500"));

    let r1 = run_evaluator_after(&env, 1).await;
    assert_eq!((r1.delivered, r1.retried), (0, 1));
    let r2 = run_evaluator_after(&env, 1).await;
    assert_eq!((r2.delivered, r2.retried), (1, 0));
    let r3 = run_evaluator_after(&env, 10).await;
    assert_eq!(r3.delivered, 0, "nothing left to deliver");
    assert!(env.store.outbox(&key).await.unwrap().is_empty());

    let attempts: Vec<_> = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "agent.message")
        .collect();
    assert_eq!(attempts.len(), 3, "two failures and one success");
    assert!(
        attempts.iter().all(|a| a["id"] == attempts[0]["id"]),
        "every attempt carries the same id for deduplication"
    );
}

#[tokio::test]
async fn a_receiver_that_never_recovers_ends_in_a_visible_give_up() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let _conv = open_and_join(&env, &bot).await;
    let key = SessionKey::new("acme", "s-1");
    let mut gave_up = 0;
    for _ in 0..6 {
        gave_up += run_evaluator_after(&env, 2).await.gave_up;
    }
    assert_eq!(gave_up, 1, "given up once, after the configured attempts");
    let items = env.store.outbox(&key).await.unwrap();
    assert_eq!(items.len(), 1, "kept, not deleted");
    assert_eq!(items[0].status, OutboxStatus::GaveUp);
    assert_eq!(items[0].attempts, test_retry().max_attempts);
    assert!(items[0].last_error.as_deref().unwrap().contains("503"));
    let tries = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "agent.joined")
        .count();
    assert_eq!(tries, test_retry().max_attempts as usize);
    // A given-up item no longer blocks or appears in the due index.
    assert_eq!(run_evaluator_after(&env, 60).await.retried, 0);
}

/// The desk accepts conversations but fails everything else with `status`.
async fn desk_accepting_only_starts(srv: &MockServer, failing: ResponseTemplate, times: Option<u64>) {
    Mock::given(method("POST"))
        .and(path("/desk"))
        .and(body_partial_json(json!({"type": "conversation.started"})))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(1)
        .mount(srv)
        .await;
    let failing = Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(failing)
        .with_priority(2);
    match times {
        Some(n) => failing.up_to_n_times(n).mount(srv).await,
        None => failing.mount(srv).await,
    }
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(3)
        .mount(srv)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(srv)
        .await;
}

#[tokio::test]
async fn a_provider_that_never_recovers_ends_the_handover_with_provider_error() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    desk_accepting_only_starts(&srv, ResponseTemplate::new(503), None).await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(opened["outcome"], "opened");
    // The user keeps talking; mirroring to the provider fails until we give up.
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e2", "s-1", "hello?"))
        .await;
    assert_eq!(status, 200, "accepted even though the provider is failing");
    for _ in 0..5 {
        run_evaluator_after(&env, 2).await;
    }
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
    assert_eq!(
        s.last_handover.unwrap().end_reason,
        Some(handover::domain::EndReason::ProviderError)
    );
    let to_bot: Vec<_> = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "handover.ended")
        .collect();
    assert_eq!(to_bot.len(), 1);
    assert_eq!(to_bot[0]["reason"], "provider_error");
    assert_eq!(to_bot[0]["dialog"]["name"], "no_agent", "the user is told");
}

#[tokio::test]
async fn retry_after_from_a_rate_limited_provider_is_honoured() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    desk_accepting_only_starts(
        &srv,
        ResponseTemplate::new(429).insert_header("retry-after", "45"),
        Some(1),
    )
    .await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", srv.uri()),
            &format!("{}/desk", srv.uri()),
            "timeouts: { stillWaitingEverySeconds: 0 }",
        )
        .await;
    env.send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    env.send_event("acme", &bot.platform_secret, &user_message("e2", "s-1", "anyone?"))
        .await;
    let mirrored = || async {
        received(&srv)
            .await
            .into_iter()
            .filter(|b| b["type"] == "user.message")
            .count()
    };
    assert_eq!(mirrored().await, 1, "refused once with 429");
    env.clock.advance(Duration::seconds(40));
    evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(
        mirrored().await,
        1,
        "no second attempt before Retry-After (45 s), although backoff alone allows it"
    );
    env.clock.advance(Duration::seconds(10));
    evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(mirrored().await, 2, "delivered once Retry-After passed");
    let left = env.store.outbox(&SessionKey::new("acme", "s-1")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

//! The evaluator at scale: one destination that hangs must not hold back the others.

use std::time::{Duration, Instant};

use handover::domain::State;
use handover_tests::*;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Sessions per provider.
const SESSIONS: usize = 12;

/// One bot with two providers: `slow` stops answering (each call runs into the client's
/// timeout) after its handovers have started, `fast` keeps answering. Every session's
/// no-agent timer is due in the same run; the sessions alternate between the providers in the
/// due order, so a one-at-a-time evaluator meets a hanging session every other unit and runs
/// out of budget after about ten. Every due session of the healthy provider must fire in the
/// first run.
#[tokio::test]
async fn a_hanging_provider_takes_only_its_own_slots() {
    let env = TestEnv::new().await;
    let platform = MockServer::start().await;
    let slow = MockServer::start().await;
    let fast = MockServer::start().await;
    for srv in [&platform, &slow, &fast] {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(srv)
            .await;
    }
    let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
    let desk_ref = env.secret("desk", &json!({ "signingSecret": "desk-secret" })).await;
    let yaml = format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{}/bot', secretRef: {platform_ref} }}\n\
         providers:\n  - {{ id: slow, kind: webhook, url: '{}/desk', secretRef: {desk_ref} }}\n  \
         - {{ id: fast, kind: webhook, url: '{}/desk', secretRef: {desk_ref} }}\n\
         routing:\n  - {{ provider: slow, queue: general }}\n\
         timeouts: {{ noAgentSeconds: 60 }}\n",
        platform.uri(),
        slow.uri(),
        fast.uri()
    );
    env.put_bot(&yaml).await;

    for i in 0..2 * SESSIONS {
        let provider = if i % 2 == 0 { "slow" } else { "fast" };
        let body = json!({
            "id": format!("req-{i}"), "type": "handover.request", "sessionId": format!("s-{i:02}"),
            "handover": { "trigger": "explicit_request", "provider": provider }
        });
        let (status, answer) = env.send_event("acme", b"bot-secret", &body).await;
        assert_eq!(status, 200, "{answer}");
    }
    for i in 0..2 * SESSIONS {
        let session = env.session("acme", &format!("s-{i:02}")).await.unwrap();
        let expected = if i % 2 == 0 { "slow" } else { "fast" };
        assert_eq!(session.handover.unwrap().provider, expected);
    }

    // From now on the slow provider answers only after the client has given up.
    slow.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&slow)
        .await;

    env.clock.advance(chrono::Duration::minutes(2));
    let started = Instant::now();
    // The function's own budget: units start until 10 s before its end.
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;

    let mut healthy_fired = 0;
    for i in (1..2 * SESSIONS).step_by(2) {
        // The no-agent timer ended the handover: the session is back with the bot.
        let session = env.session("acme", &format!("s-{i:02}")).await.unwrap();
        if session.state == State::Bot {
            healthy_fired += 1;
        }
    }
    assert_eq!(
        healthy_fired, SESSIONS,
        "every due session of the healthy provider fires in the first run: {report:?}"
    );
    // The hanging provider was called (its units ran into the client timeout), and the run
    // kept its budget.
    assert!(!slow.received_requests().await.unwrap_or_default().is_empty());
    assert!(
        started.elapsed() < handover::app::evaluator::RUN_BUDGET + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(report.timers_fired >= SESSIONS as u32, "{report:?}");
}

/// The procedure of docs/performance.md ("Raising the due shards") on a live table: sessions
/// waiting under 4 shards, then the functions write and read 8; every due timer still fires in
/// the next run, those written before the change and those written after.
#[tokio::test]
async fn raising_the_due_shards_on_a_live_table_loses_no_due_work() {
    use handover::store::{DueShards, DynamoStore, SessionKey, shard_among};
    let env = TestEnv::new().await;
    let srv = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", srv.uri()),
            &format!("{}/desk", srv.uri()),
            "timeouts: { noAgentSeconds: 60, stillWaitingEverySeconds: 0 }",
        )
        .await;
    for n in 0..12 {
        let (_, a) = env
            .send_event(
                "acme",
                &bot.platform_secret,
                &handover_request(&format!("h-{n}"), &format!("old-{n}")),
            )
            .await;
        assert_eq!(a["outcome"], "opened", "{a}");
    }
    // The change: the functions now write to 8 shards and read 8.
    let raised = DueShards { write: 8, read: 8 };
    let ctx = handover::app::AppContext::new(
        std::sync::Arc::new(DynamoStore::new(env.dynamo.clone(), env.table.clone()).with_due_shards(raised)),
        env.ctx.secrets.clone(),
        env.clock.clone(),
    )
    .with_retry(test_retry());
    let mut in_new_shards = 0;
    for n in 0..12 {
        let session = format!("new-{n}");
        let body = serde_json::to_vec(&handover_request(&format!("h-{n}"), &session)).unwrap();
        let req = env.request(
            "POST",
            "/v1/bots/acme/events",
            &env.signed(&bot.platform_secret, &body),
            &body,
        );
        let (_, a) = response_json(handover::app::bot_webhook::handle(&ctx, req).await);
        assert_eq!(a["outcome"], "opened", "{a}");
        if shard_among(&SessionKey::new("acme", &session), 8) >= 4 {
            in_new_shards += 1;
        }
    }
    assert!(in_new_shards > 0, "some sessions were written to the new shards");
    env.clock.advance(chrono::Duration::seconds(61));
    // A reader of the old 4 shards alone would miss those: the raised count reads all 8.
    let old_reader = DynamoStore::new(env.dynamo.clone(), env.table.clone());
    let mut seen_by_old = 0;
    for shard in 0..4 {
        seen_by_old += handover::store::DueIndex::due(&old_reader, shard, env.now(), 1000)
            .await
            .unwrap()
            .due
            .len();
    }
    assert!(seen_by_old < 24, "the old reader sees {seen_by_old} of 24");
    let report = handover::app::evaluator::run(&ctx, env.now()).await;
    assert_eq!(
        report.timers_fired, 24,
        "every no-agent timer fired, old shards and new: {report:?}"
    );
}

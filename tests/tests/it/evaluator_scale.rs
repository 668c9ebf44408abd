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

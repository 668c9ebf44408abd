//! Availability end to end: timers fired by the evaluator on a controllable clock, failover
//! and the circuit breaker, agent presence, the kill switch and opening hours.

use std::sync::Arc;

use chrono::Duration;
use handover::app::evaluator;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn ok_server() -> MockServer {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    srv
}

fn count(bodies: &[Value], t: &str) -> usize {
    bodies.iter().filter(|b| b["type"] == t).count()
}

async fn tick(env: &TestEnv, secs: i64) -> evaluator::Report {
    env.clock.advance(Duration::seconds(secs));
    evaluator::run(&env.ctx, env.now()).await
}

#[tokio::test]
async fn still_waiting_nudges_arrive_at_the_configured_interval() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 600, stillWaitingEverySeconds: 120, agentIdleSeconds: 900 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    env.send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    let nudges = || async { count(&received(&srv).await, "handover.waiting") };
    tick(&env, 60).await;
    assert_eq!(nudges().await, 0);
    tick(&env, 60).await;
    assert_eq!(nudges().await, 1, "first nudge at 120 s");
    tick(&env, 60).await;
    assert_eq!(nudges().await, 1);
    tick(&env, 60).await;
    assert_eq!(nudges().await, 2, "second nudge at 240 s");
    let nudge = received(&srv)
        .await
        .into_iter()
        .find(|b| b["type"] == "handover.waiting")
        .unwrap();
    assert_eq!(nudge["dialog"]["name"], "still_waiting");
}

#[tokio::test]
async fn no_agent_timeout_ends_the_provider_conversation_and_returns_to_the_bot() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(tick(&env, 299).await.timers_fired, 0);
    assert_eq!(tick(&env, 1).await.timers_fired, 1);
    let bodies = received(&srv).await;
    let ended = bodies
        .iter()
        .find(|b| b["type"] == "conversation.ended")
        .expect("provider told");
    assert_eq!(ended["conversationId"], opened["handoverId"]);
    assert_eq!(ended["reason"], "no_agent_timeout");
    let to_bot = bodies.iter().find(|b| b["type"] == "handover.ended").expect("bot told");
    assert_eq!(to_bot["reason"], "no_agent_timeout");
    assert_eq!(to_bot["dialog"]["name"], "no_agent");
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
    assert_eq!(tick(&env, 600).await.timers_fired, 0, "nothing left to fire");
}

#[tokio::test]
async fn an_idle_agent_hands_the_conversation_back() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0, agentIdleSeconds: 600 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    let joined =
        json!({"id": "c1", "type": "agent.joined", "conversationId": opened["handoverId"], "agent": {"id": "a"}});
    env.send_callback("acme", "desk", &bot.desk_secret, &joined).await;
    tick(&env, 500).await;
    let said = json!({"id": "c2", "type": "agent.message", "conversationId": opened["handoverId"], "message": {"text": "one moment"}});
    env.send_callback("acme", "desk", &bot.desk_secret, &said).await;
    assert_eq!(
        tick(&env, 500).await.timers_fired,
        0,
        "the agent's message restarted the idle timer"
    );
    assert_eq!(tick(&env, 100).await.timers_fired, 1);
    let ended: Vec<_> = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "handover.ended")
        .collect();
    assert_eq!(ended[0]["reason"], "agent_idle_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_evaluators_running_at_once_fire_each_timer_once() {
    let env = TestEnv::new().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    for i in 0..8 {
        env.send_event(
            "acme",
            &bot.platform_secret,
            &handover_request(&format!("e{i}"), &format!("s-{i}")),
        )
        .await;
    }
    env.clock.advance(Duration::seconds(301));
    let a = env.other_function(&ActionRecorder::default()).await;
    let b = env.other_function(&ActionRecorder::default()).await;
    let now = env.now();
    let (ra, rb) = tokio::join!(evaluator::run(&a, now), evaluator::run(&b, now));
    assert_eq!(ra.timers_fired + rb.timers_fired, 8, "{ra:?} {rb:?}");
    let bodies = received(&srv).await;
    assert_eq!(count(&bodies, "handover.ended"), 8);
    assert_eq!(count(&bodies, "conversation.ended"), 8);
    let run_again = evaluator::run(&Arc::clone(&env.ctx), env.now()).await;
    assert_eq!((run_again.timers_fired, run_again.delivered), (0, 0));
}

/// A bot with two webhook providers, `desk` then `backup`.
async fn two_provider_bot(env: &TestEnv, bot_url: &str, desk_url: &str, backup_url: &str) -> Vec<u8> {
    let p = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let yaml = format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{bot_url}', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{desk_url}', secretRef: {d} }}\n  - {{ id: backup, kind: webhook, url: '{backup_url}', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general, failover: [backup] }}\n"
    );
    env.put_bot(&yaml).await;
    b"bot-secret".to_vec()
}

#[tokio::test]
async fn failover_opens_on_the_second_provider_and_both_down_is_disabled() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&down)
        .await;
    let secret = two_provider_bot(
        &env,
        &format!("{}/bot", srv.uri()),
        &format!("{}/desk", down.uri()),
        &format!("{}/backup", srv.uri()),
    )
    .await;

    let (status, answer) = env.send_event("acme", &secret, &handover_request("e1", "s-1")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "opened", "{answer}");
    assert_eq!(
        env.session("acme", "s-1").await.unwrap().handover.unwrap().provider,
        "backup"
    );
    let on_backup = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "conversation.started")
        .count();
    assert_eq!(on_backup, 1);

    // Both down: the disabled dialog, nothing opened, the bot keeps control.
    let env2 = TestEnv::in_memory().await;
    let secret = two_provider_bot(
        &env2,
        &format!("{}/bot", srv.uri()),
        &format!("{}/desk", down.uri()),
        &format!("{}/backup", down.uri()),
    )
    .await;
    let (status, answer) = env2.send_event("acme", &secret, &handover_request("e1", "s-1")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "disabled");
    assert_eq!(answer["reason"], "provider_unavailable");
    assert_eq!(answer["dialog"]["name"], "disabled");
    assert!(answer.get("handoverId").is_none());
    assert!(
        env2.session("acme", "s-1").await.is_none(),
        "nothing was stored for a refused handover"
    );
}

#[tokio::test]
async fn an_open_circuit_skips_the_failing_provider_without_calling_it() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let secret = two_provider_bot(
        &env,
        &format!("{}/bot", srv.uri()),
        &format!("{}/desk", down.uri()),
        &format!("{}/backup", srv.uri()),
    )
    .await;
    let threshold = env.ctx.health.policy.threshold as usize;
    for i in 0..threshold {
        let (_, a) = env
            .send_event("acme", &secret, &handover_request(&format!("e{i}"), &format!("s-{i}")))
            .await;
        assert_eq!(a["outcome"], "opened");
    }
    let calls_before = down.received_requests().await.unwrap().len();
    assert_eq!(
        calls_before,
        threshold * 2,
        "each request tried desk twice (one quick retry)"
    );
    let (_, a) = env
        .send_event("acme", &secret, &handover_request("e-next", "s-next"))
        .await;
    assert_eq!(a["outcome"], "opened");
    assert_eq!(
        down.received_requests().await.unwrap().len(),
        calls_before,
        "the open circuit was not called"
    );
    // After the open period, desk is tried again.
    env.clock.advance(Duration::seconds(61));
    env.send_event("acme", &secret, &handover_request("e-later", "s-later"))
        .await;
    assert!(down.received_requests().await.unwrap().len() > calls_before);
}

/// After the open period one request tries the provider again; when that try fails too, the
/// breaker opens again at once (not after another five failures).
#[tokio::test]
async fn one_more_failure_after_the_open_period_reopens_the_breaker_at_once() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let down = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&down)
        .await;
    let secret = two_provider_bot(
        &env,
        &format!("{}/bot", srv.uri()),
        &format!("{}/desk", down.uri()),
        &format!("{}/backup", srv.uri()),
    )
    .await;
    let calls = || async { recorded(&down).await.len() };
    let threshold = env.ctx.health.policy.threshold as usize;
    for i in 0..threshold {
        let (_, a) = env
            .send_event("acme", &secret, &handover_request(&format!("e{i}"), &format!("s-{i}")))
            .await;
        assert_eq!(a["outcome"], "opened");
    }
    let opened_at = calls().await;
    env.clock.advance(Duration::seconds(61));
    let (_, a) = env
        .send_event("acme", &secret, &handover_request("e-probe", "s-probe"))
        .await;
    assert_eq!(a["outcome"], "opened", "the backup took it: {a}");
    let after_probe = calls().await;
    assert!(after_probe > opened_at, "the probe tried desk again");
    for i in 0..3 {
        let (_, a) = env
            .send_event(
                "acme",
                &secret,
                &handover_request(&format!("e-after{i}"), &format!("s-after{i}")),
            )
            .await;
        assert_eq!(a["outcome"], "opened", "{a}");
    }
    assert_eq!(
        calls().await,
        after_probe,
        "one failed probe reopened the breaker: desk was not called again"
    );
    // And it is open for the whole period again, then probed once more.
    env.clock.advance(Duration::seconds(61));
    env.send_event("acme", &secret, &handover_request("e-probe2", "s-probe2"))
        .await;
    assert!(calls().await > after_probe);
}

#[tokio::test]
async fn no_agent_online_gives_the_closed_dialog() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    Mock::given(method("GET"))
        .and(path("/presence"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"agentsOnline": 0})))
        .mount(&srv)
        .await;
    let p = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let u = srv.uri();
    let yaml = format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{u}/bot', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{u}/desk', availabilityUrl: '{u}/presence', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n"
    );
    env.put_bot(&yaml).await;
    let (_, answer) = env
        .send_event("acme", b"bot-secret", &handover_request("e1", "s-1"))
        .await;
    assert_eq!(answer["outcome"], "closed", "{answer}");
    assert_eq!(answer["reason"], "no_agents_online");
    assert_eq!(answer["dialog"]["name"], "closed");
    assert_eq!(count(&received(&srv).await, "conversation.started"), 0);
    let presence = srv
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/presence")
        .unwrap();
    assert_eq!(presence.url.query(), Some("queue=general"));
    assert_signed(&presence, b"desk-secret");
}

#[tokio::test]
async fn kill_switch_and_opening_hours_decide_the_dialog() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let extra = "disabled: { reason: 'Incident in the contact center', until: '2026-11-25T10:00:00Z' }\nhours: { timeZone: Europe/Brussels, openingHours: 'Mo-Fr 08:30-12:00,13:00-17:30; PH off', publicHolidays: BE }\ndialogs: { en: { closed: 'We open again {nextOpening}.', disabled: 'Sorry: {reason}.' } }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), extra)
        .await;
    // 09:00 UTC = 10:00 in Brussels, during the incident.
    let (_, a) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(
        (a["outcome"].as_str(), a["reason"].as_str()),
        (Some("disabled"), Some("kill_switch"))
    );
    assert_eq!(a["dialog"]["text"], "Sorry: Incident in the contact center.");
    // 11:30 UTC = 12:30 in Brussels: the switch has expired, but it is lunch.
    env.clock.advance(Duration::minutes(150));
    let (_, a) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e2", "s-1"))
        .await;
    assert_eq!(
        (a["outcome"].as_str(), a["reason"].as_str()),
        (Some("closed"), Some("outside_hours"))
    );
    assert_eq!(a["nextOpening"], "2026-11-25T12:00:00Z");
    assert_eq!(a["dialog"]["text"], "We open again today at 13:00.");
    // 12:00 UTC = 13:00: open.
    env.clock.advance(Duration::minutes(30));
    let (_, a) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e3", "s-1"))
        .await;
    assert_eq!(a["outcome"], "opened");
}

#[tokio::test]
async fn still_waiting_estimate_comes_from_recent_times_to_join() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 3600, stillWaitingEverySeconds: 120 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    // An earlier user waited 300 s for an agent.
    let (_, first) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    env.clock.advance(Duration::seconds(300));
    let joined =
        json!({"id": "c1", "type": "agent.joined", "conversationId": first["handoverId"], "agent": {"id": "a"}});
    env.send_callback("acme", "desk", &bot.desk_secret, &joined).await;
    // A new user starts waiting; the nudge at 120 s estimates the remaining 180 s.
    env.send_event("acme", &bot.platform_secret, &handover_request("e2", "s-2"))
        .await;
    tick(&env, 120).await;
    let nudges: Vec<_> = received(&srv)
        .await
        .into_iter()
        .filter(|b| b["type"] == "handover.waiting" && b["sessionId"] == "s-2")
        .collect();
    assert_eq!(nudges.len(), 1);
    assert_eq!(nudges[0]["estimatedWaitSeconds"], 180);
}

#[tokio::test]
async fn with_the_ticket_fallback_the_contact_center_keeps_the_conversation() {
    let env = TestEnv::in_memory().await;
    let srv = ok_server().await;
    let timeouts = "timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0, noAgentFallback: ticket }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    tick(&env, 300).await;
    let bodies = received(&srv).await;
    let ended = bodies
        .iter()
        .find(|b| b["type"] == "conversation.ended")
        .expect("provider told");
    assert_eq!(ended["conversationId"], opened["handoverId"]);
    assert_eq!(
        (ended["reason"].as_str(), ended["ticket"].as_bool()),
        (Some("no_agent_timeout"), Some(true))
    );
    let to_bot = bodies.iter().find(|b| b["type"] == "handover.ended").expect("bot told");
    assert_eq!(to_bot["dialog"]["name"], "no_agent_ticket");
    assert_eq!(
        env.session("acme", "s-1").await.unwrap().state,
        handover::domain::State::Bot
    );
}

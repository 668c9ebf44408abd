//! Prompt relay: a turn reaches the other side within about a second of its commit at chat
//! cadence, even when the previous turn is still being delivered to a slow receiver, and a
//! failover handover's turns never wait behind the previous provider's pending end.

use std::time::{Duration, Instant};

use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How long the receivers in these tests take to answer each call.
const SLOW: Duration = Duration::from_secs(1);

/// Waits until `srv` has received `n` bodies of type `kind` at `p`, failing the test when that
/// takes longer than `within` from `since`. Returns them in the order received.
async fn arrived(srv: &MockServer, p: &str, kind: &str, n: usize, since: Instant, within: Duration) -> Vec<Value> {
    loop {
        let bodies: Vec<Value> = requests_to(srv, "POST", p)
            .await
            .iter()
            .map(json_of)
            .filter(|b| b["type"] == kind)
            .collect();
        if bodies.len() >= n {
            return bodies;
        }
        assert!(
            since.elapsed() < within,
            "only {} of {n} {kind} at {p} within {within:?}",
            bodies.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn mock(srv: &MockServer, p: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(p))
        .respond_with(answer)
        .mount(srv)
        .await;
}

#[tokio::test]
async fn two_quick_user_turns_reach_a_slow_contact_center_within_three_seconds_in_order() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    mock(&srv, "/bot", ResponseTemplate::new(200)).await;
    mock(&srv, "/desk", ResponseTemplate::new(200).set_delay(SLOW)).await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    env.open_handover(&bot.platform_secret, "s-1").await;

    let sent = Instant::now();
    let first_turn = user_message("m-1", "s-1", "first");
    let first = env.send_event("acme", &bot.platform_secret, &first_turn);
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        env.send_event("acme", &bot.platform_secret, &user_message("m-2", "s-1", "second"))
            .await
    };
    let ((s1, a1), (s2, a2)) = tokio::join!(first, second);
    assert_eq!((s1, s2), (200, 200), "{a1} {a2}");

    let turns = arrived(&srv, "/desk", "user.message", 2, sent, Duration::from_secs(3)).await;
    let texts: Vec<&str> = turns.iter().map(|b| b["text"].as_str().unwrap_or_default()).collect();
    assert_eq!(texts, ["first", "second"], "both turns, in the order they were sent");
}

#[tokio::test]
async fn two_quick_agent_messages_reach_a_slow_bot_platform_within_three_seconds_in_order() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    mock(&srv, "/bot", ResponseTemplate::new(200).set_delay(SLOW)).await;
    mock(&srv, "/desk", ResponseTemplate::new(200)).await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let handover = env.open_handover(&bot.platform_secret, "s-1").await;
    let (status, _) = env
        .send_callback(
            "acme",
            "desk",
            &bot.desk_secret,
            &json!({"id": "j-1", "type": "agent.joined", "conversationId": handover, "agent": {"id": "a-1", "name": "Eva"}}),
        )
        .await;
    assert_eq!(status, 200);
    let agent_says = |id: &str, text: &str| {
        json!({"id": id, "type": "agent.message", "conversationId": handover,
               "agent": {"id": "a-1", "name": "Eva"}, "message": {"text": text}})
    };

    let sent = Instant::now();
    let first_message = agent_says("c-1", "first");
    let first = env.send_callback("acme", "desk", &bot.desk_secret, &first_message);
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        env.send_callback("acme", "desk", &bot.desk_secret, &agent_says("c-2", "second"))
            .await
    };
    let ((s1, a1), (s2, a2)) = tokio::join!(first, second);
    assert_eq!((s1, s2), (200, 200), "{a1} {a2}");

    let messages = arrived(&srv, "/bot", "agent.message", 2, sent, Duration::from_secs(3)).await;
    let texts: Vec<&str> = messages
        .iter()
        .map(|b| b["message"]["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["first", "second"], "both messages, in the order they were sent");
}

#[tokio::test]
async fn a_failover_handovers_turns_do_not_wait_behind_the_previous_providers_pending_end() {
    let env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    mock(&srv, "/bot", ResponseTemplate::new(200)).await;
    mock(&srv, "/backup", ResponseTemplate::new(200)).await;
    let desk = MockServer::start().await;
    mock(&desk, "/desk", ResponseTemplate::new(200)).await;
    let p = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{}/bot', secretRef: {p} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{}/desk', secretRef: {d} }}\n  - {{ id: backup, kind: webhook, url: '{}/backup', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general, failover: [backup] }}\n",
        srv.uri(),
        desk.uri(),
        srv.uri()
    ))
    .await;
    let secret = b"bot-secret";
    let (_, first) = env.send_event("acme", secret, &handover_request("h-1", "s-1")).await;
    assert_eq!(first["outcome"], "opened", "{first}");

    // The desk goes down: the end of the first handover waits for its retry (minutes away)...
    desk.reset().await;
    mock(&desk, "/desk", ResponseTemplate::new(503)).await;
    let (status, answer) = env
        .send_event(
            "acme",
            secret,
            &json!({"id": "c-1", "type": "handover.cancel", "sessionId": "s-1"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    // ...and the next handover fails over to the backup.
    let (_, second) = env.send_event("acme", secret, &handover_request("h-2", "s-1")).await;
    assert_eq!(second["outcome"], "opened", "{second}");
    assert_eq!(
        env.session("acme", "s-1").await.unwrap().handover.unwrap().provider,
        "backup"
    );

    let sent = Instant::now();
    let (status, _) = env
        .send_event("acme", secret, &user_message("m-1", "s-1", "are you there?"))
        .await;
    assert_eq!(status, 200);
    let turns = arrived(&srv, "/backup", "user.message", 1, sent, Duration::from_secs(3)).await;
    assert_eq!(turns[0]["text"], "are you there?");
    let ends = requests_to(&desk, "POST", "/desk")
        .await
        .iter()
        .map(json_of)
        .filter(|b| b["type"] == "conversation.ended")
        .count();
    assert!(
        ends >= 1,
        "the end to the desk was tried and is still pending its retry"
    );
}

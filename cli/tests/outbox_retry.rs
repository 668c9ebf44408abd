//! `handover outbox retry` on the emulator: a delivery that gave up is requeued by the command,
//! the evaluator delivers it exactly once, and repeating the command changes nothing.

use std::process::Output;

use chrono::Utc;
use handover::store::{OutboxStatus, SessionKey};
use handover_tests::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Runs the CLI against this test's table on the emulator.
fn handover(env: &TestEnv, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_handover"))
        .args(args)
        .env("AWS_ENDPOINT_URL", emulator_endpoint())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env("TABLE_NAME", env.table())
        .output()
        .expect("the CLI runs")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How many times the bot platform was sent the delivery `id`.
async fn deliveries_of(srv: &MockServer, id: &str) -> usize {
    received(srv).await.iter().filter(|b| b["id"] == id).count()
}

#[tokio::test]
async fn a_given_up_item_is_requeued_once_and_delivered_once() {
    let env = TestEnv::new().await;
    // The command requeues at the wall clock's now; the handlers run on the same clock.
    env.clock.set(Utc::now());
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    // The bot platform refuses the join (a 4xx gives up at once)…
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(400))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&srv)
        .await;
    // …and accepts everything afterwards.
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let conv = env.open_handover(&bot.platform_secret, "s-1").await;
    let (status, _) = env
        .send_callback(
            "acme",
            "desk",
            &bot.desk_secret,
            &json!({"id": "c-1", "type": "agent.joined", "conversationId": conv, "agent": {"id": "a-1"}}),
        )
        .await;
    assert_eq!(status, 200);

    let key = SessionKey::new("acme", "s-1");
    let given_up: Vec<_> = env
        .store
        .outbox(&key)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.status == OutboxStatus::GaveUp)
        .collect();
    assert_eq!(given_up.len(), 1, "the refused agent.joined gave up");
    let item = given_up[0].clone();
    assert_eq!(deliveries_of(&srv, &item.id).await, 1, "one refused attempt");
    // Left alone, the evaluator never tries it again.
    env.clock.set(Utc::now());
    handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(deliveries_of(&srv, &item.id).await, 1);

    // By seq.
    let seq = item.seq.to_string();
    let out = handover(&env, &["outbox", "retry", "acme", "s-1", &seq]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("requeued"),
        "{}",
        text(&out)
    );
    let requeued = env.store.outbox(&key).await.unwrap();
    let again = requeued.iter().find(|o| o.seq == item.seq).expect("still there");
    assert_eq!((again.status, again.attempts), (OutboxStatus::Pending, 0));

    // Again, by its delivery id: already queued, nothing changes.
    let out = handover(&env, &["outbox", "retry", "acme", "s-1", &item.id]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already queued"),
        "{}",
        text(&out)
    );
    assert_eq!(env.store.outbox(&key).await.unwrap(), requeued);

    // The next run delivers it, once; later runs have nothing left to send.
    env.clock.set(Utc::now() + chrono::Duration::seconds(1));
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    env.clock.set(Utc::now() + chrono::Duration::minutes(2));
    handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(
        deliveries_of(&srv, &item.id).await,
        2,
        "one refused attempt and one delivery"
    );
    assert!(
        env.store.outbox(&key).await.unwrap().is_empty(),
        "delivered items are deleted"
    );

    // Once delivered there is nothing to requeue: said plainly, and a failure.
    let out = handover(&env, &["outbox", "retry", "acme", "s-1", &seq]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no outbox item"),
        "{}",
        text(&out)
    );
    assert_eq!(deliveries_of(&srv, &item.id).await, 2);
}

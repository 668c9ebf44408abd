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

/// DynamoDB requests of one evaluator run beyond those of a run with nothing due (the due-index
/// queries and the availability refresh, paid once per run whatever the number of sessions).
async fn requests_for_due_work(
    env: &TestEnv,
    counter: &OpCounter,
    ctx: &handover::app::AppContext,
    secs: i64,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    counter.reset();
    handover::app::evaluator::run(ctx, env.now()).await;
    let idle = counter.counts();
    env.clock.advance(chrono::Duration::seconds(secs));
    counter.reset();
    let report = handover::app::evaluator::run(ctx, env.now()).await;
    assert_eq!(report.timers_fired, 1, "{report:?}");
    let mut due = counter.counts();
    for (op, n) in idle {
        let left = due.get(&op).copied().unwrap_or(0).saturating_sub(n);
        due.insert(op, left);
    }
    due.retain(|_, n| *n > 0);
    (due.values().sum(), due)
}

#[tokio::test]
async fn a_due_session_in_the_evaluator_is_read_once_and_written_once() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let timeouts = "timeouts: { noAgentSeconds: 400, stillWaitingEverySeconds: 120 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    env.send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    let counter = OpCounter::default();
    let ctx = env.counted_function(&counter).await;
    // Warm the function's bot cache, as a scheduled container is after its first run.
    handover::app::evaluator::run(&ctx, env.now()).await;
    let ops = |pairs: &[(&str, usize)]| -> std::collections::BTreeMap<String, usize> {
        pairs.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
    };

    // The first still-waiting nudge of a container also reads the time-to-join statistics
    // it quotes (BatchGetItem); the session is read once (GetItem), the decision and its
    // outbox item committed in one transaction, the session's outbox read to keep order
    // (Query), the delivered item deleted, and the outbox read once more to drain what others
    // committed meanwhile (Query).
    let (n, seen) = requests_for_due_work(&env, &counter, &ctx, 120).await;
    let steady = [
        ("GetItem", 1),
        ("TransactWriteItems", 1),
        ("Query", 2),
        ("DeleteItem", 1),
    ];
    let mut first = steady.to_vec();
    first.push(("BatchGetItem", 1));
    assert_eq!(seen, ops(&first), "first nudge: {n} requests");
    // The next nudge quotes the statistics this container read a moment ago.
    let (n, seen) = requests_for_due_work(&env, &counter, &ctx, 120).await;
    assert_eq!((n, seen), (5, ops(&steady)), "later nudge");

    // The no-agent timeout ends the handover: two deliveries (the provider's end and the
    // bot's `handover.ended`), each deleted once delivered. The provider's conversation id
    // comes from the session just committed, not from another read. This is the container's
    // first success at that provider, which resets the provider's failure count once
    // (a conditional UpdateItem, once per container and provider).
    let (n, seen) = requests_for_due_work(&env, &counter, &ctx, 160).await;
    let mut ending = steady.to_vec();
    ending[3] = ("DeleteItem", 2);
    ending.push(("UpdateItem", 1));
    assert_eq!(seen, ops(&ending), "no-agent timeout: {n} requests");
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
}

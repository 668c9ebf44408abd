//! DynamoDB round trips on the hot path, counted by an SDK interceptor
//! (figures in docs/performance.md).
//!
//! Every count the page states is in [`DOCUMENTED`], under the first column of its row; the
//! tests assert these very numbers, and `the_documented_round_trips_are_the_asserted_ones`
//! fails when the page and this table differ (a row changed, added or missing).

use std::collections::BTreeMap;

use handover_tests::*;
use wiremock::MockServer;

const WARM_TURN: &str = "user or bot message while the bot is in control, warm function (configuration cached, this instance wrote the session last)";
const STALE_COPY: &str = "the same when another instance wrote the session meanwhile";
const UNSEEN_SESSION: &str = "the first message of a session this instance has not seen (warm function)";
const COLD_CONFIG: &str = "the same on a cold configuration cache (first request of a container, then once per 30 s)";
const NEW_SESSION: &str = "a message for a new session";
const REPEATED_EVENT: &str = "a repeated event id";
const NUDGE: &str = "a \"still waiting\" nudge";
const FIRST_NUDGE: &str = "the first nudge of a container";
const NO_AGENT_TIMEOUT: &str =
    "the no-agent timeout (ends the handover: the provider's end and the bot's `handover.ended`)";

/// The request counts of docs/performance.md's two round-trip tables, by row.
const DOCUMENTED: [(&str, usize); 9] = [
    (WARM_TURN, 1),
    (STALE_COPY, 3),
    (UNSEEN_SESSION, 2),
    (COLD_CONFIG, 3),
    (NEW_SESSION, 2),
    (REPEATED_EVENT, 2),
    (NUDGE, 5),
    (FIRST_NUDGE, 6),
    (NO_AGENT_TIMEOUT, 7),
];

fn documented(row: &str) -> usize {
    DOCUMENTED
        .iter()
        .find(|(r, _)| *r == row)
        .map(|(_, n)| *n)
        .expect("a documented row")
}

/// The rows of the round-trip tables as the page has them: first column → the first number of
/// the second.
fn rows_in_performance_md() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(format!("{}/../docs/performance.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = doc
        .split("## DynamoDB round trips on the hot path")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let label = cells.first()?.trim_start_matches("| ").to_owned();
            let digits: String = cells
                .get(1)?
                .trim_start_matches("**")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            Some((label, digits.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_documented_round_trips_are_the_asserted_ones() {
    let page = rows_in_performance_md();
    let asserted: BTreeMap<String, usize> = DOCUMENTED.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
    assert_eq!(
        page, asserted,
        "docs/performance.md's round-trip tables and the counts tests/tests/it/round_trips.rs asserts differ"
    );
}

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
    assert_eq!(
        cold,
        documented(COLD_CONFIG),
        "config read + session read + transaction on a cold cache"
    );

    env.ddb_requests.reset();
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e2", "s-1", "second"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.ddb_requests.get(),
        documented(WARM_TURN),
        "one transactional write, decided on this instance's copy of the session"
    );
    env.ddb_requests.reset();
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &bot_message("e2b", "s-1", "a bot turn"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.ddb_requests.get(), documented(WARM_TURN), "a bot turn likewise");

    // A new session: the read finds nothing, the write creates it.
    env.ddb_requests.reset();
    env.send_event("acme", &bot.platform_secret, &user_message("e3", "s-2", "hello"))
        .await;
    assert_eq!(env.ddb_requests.get(), documented(NEW_SESSION));

    // A warm instance that has not seen s-1 yet: it reads the session, then writes.
    let counter = OpCounter::default();
    let unseen = env.counted_function(&counter).await;
    let send_to = |ctx: std::sync::Arc<handover::app::AppContext>, id: &'static str, session: &'static str| {
        let body = serde_json::to_vec(&user_message(id, session, "hi")).unwrap();
        let req = env.request(
            "POST",
            "/v1/bots/acme/events",
            &env.signed(&bot.platform_secret, &body),
            &body,
        );
        async move { response_json(handover::app::bot_webhook::handle(&ctx, req).await).0 }
    };
    assert_eq!(send_to(unseen.clone(), "e-warm", "s-9").await, 200);
    counter.reset();
    assert_eq!(send_to(unseen, "e-unseen", "s-1").await, 200);
    assert_eq!(counter.total(), documented(UNSEEN_SESSION), "{:?}", counter.counts());

    // Another instance wrote meanwhile: this copy is stale, its commit fails the version
    // condition, and the session is read and the turn decided again. Nothing is lost.
    let other = env.context_on(env.dynamo().clone(), env.secrets_client().clone());
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
    assert_eq!(
        env.ddb_requests.get(),
        documented(STALE_COPY),
        "a failed write, a read, a write"
    );
    let texts: Vec<String> = env
        .store
        .transcript(&handover::store::SessionKey::new("acme", "s-1"), None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.render_text())
        .collect();
    assert_eq!(
        texts,
        [
            "first",
            "second",
            "a bot turn\n[Quick replies: Yes | No]",
            "hi",
            "from elsewhere",
            "third"
        ]
    );

    // The same event id again (this instance wrote the session last): the transaction is
    // refused on the idempotency marker, and the first answer is read. Nothing is stored.
    env.ddb_requests.reset();
    let (status, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("e5", "s-1", "third"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        env.ddb_requests.get(),
        documented(REPEATED_EVENT),
        "a repeated event id"
    );
    let stored = env
        .store
        .transcript(&handover::store::SessionKey::new("acme", "s-1"), None)
        .await
        .unwrap()
        .len();
    assert_eq!(stored, texts.len(), "the repeat stored nothing");
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
    assert_eq!(n, documented(FIRST_NUDGE));
    // The next nudge quotes the statistics this container read a moment ago.
    let (n, seen) = requests_for_due_work(&env, &counter, &ctx, 120).await;
    assert_eq!((n, seen), (documented(NUDGE), ops(&steady)), "later nudge");

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
    assert_eq!(n, documented(NO_AGENT_TIMEOUT));
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
}

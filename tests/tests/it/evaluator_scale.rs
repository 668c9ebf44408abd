//! The evaluator at scale: one destination that hangs must not hold back the others.

use std::time::Duration;

use tokio::time::Instant;

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
        std::sync::Arc::new(DynamoStore::new(env.dynamo().clone(), env.table().to_owned()).with_due_shards(raised)),
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
    let old_reader = DynamoStore::new(env.dynamo().clone(), env.table().to_owned());
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

/// The fan-out past one invocation: a scheduled run that finds more due than one invocation
/// takes on works on none of it and hands every shard with due work on; the shards'
/// invocations, each shard run twice at once (the state machine's invocation and one that
/// overlaps it, as when the next minute hands the same shard on before the first is done), fire
/// every timer exactly once and deliver every outbox item exactly once.
#[tokio::test]
async fn a_run_that_cannot_drain_hands_each_shard_on_and_nothing_is_done_twice() {
    use handover::app::evaluator::{self, Bulkheads};
    use handover::store::{SessionKey, shard_among};
    const DUE: usize = 16;
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", srv.uri()),
            &format!("{}/desk", srv.uri()),
            "timeouts: { noAgentSeconds: 60, stillWaitingEverySeconds: 0 }",
        )
        .await;
    let mut shards_with_work = std::collections::BTreeSet::new();
    for n in 0..DUE {
        let session = format!("s-{n:02}");
        let (_, a) = env
            .send_event(
                "acme",
                &bot.platform_secret,
                &handover_request(&format!("h-{n}"), &session),
            )
            .await;
        assert_eq!(a["outcome"], "opened", "{a}");
        shards_with_work.insert(shard_among(&SessionKey::new("acme", &session), 4));
    }
    assert!(shards_with_work.len() > 1, "the sessions spread over shards");
    srv.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    env.clock.advance(chrono::Duration::seconds(61));
    let now = env.now();
    let deadline = Instant::now() + evaluator::RUN_BUDGET;

    // One invocation takes on 4 here: 16 are due, so the run hands every shard on.
    let scheduled = evaluator::run_scheduled_with(&env.ctx, now, deadline, Bulkheads::default(), 4).await;
    assert_eq!(scheduled.report.handed_off, DUE as u32, "{scheduled:?}");
    assert_eq!(
        (scheduled.report.sessions, scheduled.report.timers_fired),
        (0, 0),
        "{scheduled:?}"
    );
    assert_eq!(
        scheduled.hand_off,
        shards_with_work.iter().copied().collect::<Vec<_>>(),
        "each shard with due work, once"
    );
    assert!(srv.received_requests().await.unwrap_or_default().is_empty());
    // The state machine reads `handOff` from the answer.
    assert_eq!(
        serde_json::to_value(&scheduled).unwrap()["handOff"],
        json!(scheduled.hand_off)
    );

    // The shards' own invocations, each twice at once, through the Lambda handler.
    let mut runs = tokio::task::JoinSet::new();
    for &shard in &scheduled.hand_off {
        for _ in 0..2 {
            let ctx = env.ctx.clone();
            runs.spawn(async move { evaluator::handle_until(&ctx, &json!({ "shard": shard }), deadline).await });
        }
    }
    let reports = runs.join_all().await;
    let fired: u64 = reports.iter().map(|r| r["timersFired"].as_u64().unwrap()).sum();
    assert_eq!(fired, DUE as u64, "every timer fired once: {reports:?}");
    assert!(
        reports.iter().all(|r| r["errors"] == 0 && r["backlog"] == 0),
        "{reports:?}"
    );
    for n in 0..DUE {
        let session = env.session("acme", &format!("s-{n:02}")).await.unwrap();
        assert_eq!(session.state, State::Bot, "s-{n:02}: nothing lost");
    }
    // Every delivery (the provider's end, the bot's handover.ended) arrived once.
    let sent = received(&srv).await;
    let mut ids = std::collections::BTreeSet::new();
    for body in &sent {
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        assert!(ids.insert(id.clone()), "delivered twice: {id}");
    }
    let count = |t: &str| sent.iter().filter(|b| b["type"] == t).count();
    assert_eq!(
        (count("conversation.ended"), count("handover.ended")),
        (DUE, DUE),
        "{sent:?}"
    );
}

/// The state machine in template.yaml matches the function: it starts with the scheduled run,
/// maps over the `handOff` the run answers, hands each shard on as `{"shard": n}`, invokes the
/// function's "live" alias, and every state it names exists (cfn-lint cannot see inside a
/// definition SAM turns into a string).
#[test]
fn the_state_machine_hands_on_what_the_run_answers() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let sm = &t["Resources"]["EvaluatorRun"]["Properties"];
    assert_eq!(sm["Events"]["EveryMinute"]["Type"].as_str(), Some("ScheduleV2"));
    assert_eq!(
        sm["Events"]["EveryMinute"]["Properties"]["RetryPolicy"]["MaximumRetryAttempts"].as_u64(),
        Some(0),
        "a late run is not retried: the next minute's does the same work"
    );
    let f = &t["Resources"]["HoursEvaluatorFunction"]["Properties"];
    assert!(
        f.get("Events").is_none(),
        "the schedule starts the state machine, not the function"
    );
    let target = serde_yaml_ng::to_string(&sm["DefinitionSubstitutions"]["EvaluatorFunction"]).unwrap();
    assert!(target.contains("HoursEvaluatorFunction.Alias"), "{target}");

    fn check(states: &serde_yaml_ng::Value, start: &str, seen: &mut Vec<String>) {
        let names: Vec<&str> = states
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert!(names.contains(&start), "StartAt {start}");
        for (name, state) in states.as_mapping().unwrap() {
            seen.push(name.as_str().unwrap().to_owned());
            let mut next: Vec<&str> = state["Next"].as_str().into_iter().collect();
            for c in state["Catch"].as_sequence().into_iter().flatten() {
                next.extend(c["Next"].as_str());
            }
            for n in next {
                assert!(names.contains(&n), "{name:?} goes to {n}, which is not a state");
            }
            assert!(
                state["Next"].is_string() || state["End"].as_bool() == Some(true),
                "{name:?} neither goes on nor ends"
            );
            if state["Type"].as_str() == Some("Task") {
                assert_eq!(
                    state["Parameters"]["FunctionName"].as_str(),
                    Some("${EvaluatorFunction}")
                );
            }
            let processor = &state["ItemProcessor"];
            if !processor.is_null() {
                check(&processor["States"], processor["StartAt"].as_str().unwrap(), seen);
            }
        }
    }
    let def = &sm["Definition"];
    let mut seen = Vec::new();
    check(&def["States"], def["StartAt"].as_str().unwrap(), &mut seen);
    let first = &def["States"][def["StartAt"].as_str().unwrap()];
    let map = &def["States"][first["Next"].as_str().unwrap()];
    assert_eq!(map["Type"].as_str(), Some("Map"));
    let answered = serde_json::to_value(handover::app::evaluator::Scheduled::default()).unwrap();
    let field = map["ItemsPath"].as_str().unwrap().trim_start_matches("$.");
    assert!(answered.get(field).is_some(), "the run answers {field}: {answered}");
    assert_eq!(map["ItemSelector"]["shard.$"].as_str(), Some("$$.Map.Item.Value"));
}

/// Fewer writes to the due index: each agent message pushes the agent-idle deadline later,
/// but the session's index entry keeps its time (`Timers::hold_index`), so a message changes
/// no index key; when that time comes the evaluator finds nothing due, fires nothing and moves
/// the entry to the deadline once; the agent-idle timeout still fires on time. Prints the
/// index write units per relayed message by DynamoDB's rule for a GSI that projects every
/// attribute (a write that changes the key: a delete and a put; one that changes another
/// projected attribute: one write; each of the item's size in KB, rounded up).
#[tokio::test]
async fn agent_messages_leave_the_due_index_where_it_is() {
    use aws_sdk_dynamodb::types::AttributeValue;
    const MESSAGES: usize = 10;
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", srv.uri()),
            &format!("{}/desk", srv.uri()),
            "timeouts: { noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 300 }",
        )
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("h-1", "s-1"))
        .await;
    let conversation = opened["handoverId"].as_str().unwrap().to_owned();
    let callback = |id: String, kind: &str| json!({"id": id, "type": kind, "conversationId": conversation, "agent": {"id": "a"}, "message": {"text": "hello, how can I help?"}});
    let (status, _) = env
        .send_callback(
            "acme",
            "desk",
            &bot.desk_secret,
            &callback("c-join".into(), "agent.joined"),
        )
        .await;
    assert_eq!(status, 200);
    let item = || async {
        env.dynamo()
            .get_item()
            .table_name(env.table())
            .key("pk", AttributeValue::S("SESSION#acme#s-1".into()))
            .key("sk", AttributeValue::S("STATE".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let due_at = |item: &std::collections::HashMap<String, AttributeValue>| item["dueAt"].as_n().unwrap().clone();
    // DynamoDB's item size: attribute names and values, in bytes.
    let kb = |item: &std::collections::HashMap<String, AttributeValue>| {
        let bytes: usize = item
            .iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        AttributeValue::S(s) => s.len(),
                        AttributeValue::N(n) => n.len(),
                        _ => 1,
                    }
            })
            .sum();
        bytes.div_ceil(1024)
    };
    let joined = item().await;
    let mut before = joined.clone();
    let (mut moved, mut index_units) = (0, 0);
    for m in 0..MESSAGES {
        env.clock.advance(chrono::Duration::seconds(20));
        let (status, _) = env
            .send_callback(
                "acme",
                "desk",
                &bot.desk_secret,
                &callback(format!("c-{m}"), "agent.message"),
            )
            .await;
        assert_eq!(status, 200);
        let after = item().await;
        let key_moved = due_at(&after) != due_at(&before);
        moved += usize::from(key_moved);
        index_units += if key_moved {
            kb(&before) + kb(&after)
        } else {
            kb(&after)
        };
        before = after;
    }
    eprintln!(
        "{MESSAGES} agent messages: the index key moved {moved} times, {index_units} index write units for the session entry ({:.1} per message)",
        index_units as f64 / MESSAGES as f64
    );
    assert_eq!(moved, 0, "no agent message moved the session's index entry");
    let last_message = env.now();

    // The held time (the join's deadline) comes: nothing fires, the entry moves once.
    env.clock
        .advance(chrono::Duration::seconds(300 - 20 * MESSAGES as i64 + 1));
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(
        (report.sessions, report.timers_fired, report.errors),
        (1, 0, 0),
        "{report:?}"
    );
    let rearmed = item().await;
    assert_eq!(
        due_at(&rearmed),
        (last_message + chrono::Duration::seconds(300))
            .timestamp_millis()
            .to_string(),
        "the entry moved to the last message's deadline"
    );
    assert_eq!(env.session("acme", "s-1").await.unwrap().state, State::Agent);
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(report.sessions, 0, "nothing due until then: {report:?}");

    // The agent-idle timeout fires at the last message's deadline, not before.
    env.clock.advance(chrono::Duration::seconds(20 * MESSAGES as i64 - 2));
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(report.sessions, 0, "{report:?}");
    assert_eq!(env.session("acme", "s-1").await.unwrap().state, State::Agent);
    env.clock.advance(chrono::Duration::seconds(2));
    let report = handover::app::evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(report.timers_fired, 1, "{report:?}");
    let session = env.session("acme", "s-1").await.unwrap();
    assert_eq!(session.state, State::Bot);
    assert_eq!(
        session.last_handover.unwrap().end_reason,
        Some(handover::domain::EndReason::AgentIdleTimeout)
    );
}

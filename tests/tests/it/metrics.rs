//! Metrics: the EMF lines the handlers write, read back, for a full handover, a refused one, a
//! timeout and repeated events; and the dashboard and alarms of template.yaml checked against
//! the metrics the code declares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;
use handover::app::{AppContext, evaluator};
use handover::metrics::{self, Captured, Parsed};
use handover::store::schema::TEMPLATE;
use handover_tests::*;
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A test world whose handlers write their metric lines into `Captured`.
async fn world(extra: &str) -> (TestEnv, MockServer, StandardBot, Captured) {
    let mut env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), extra)
        .await;
    let captured = Captured::default();
    env.ctx = Arc::new(
        AppContext::new(env.ctx.store.clone(), env.ctx.secrets.clone(), env.clock.clone())
            .with_retry(test_retry())
            .with_metrics(Arc::new(captured.clone())),
    );
    (env, srv, bot, captured)
}

/// Every line parsed back, each checked against the declared table (name, unit, dimensions).
fn read_back(captured: &Captured) -> Vec<Parsed> {
    let mut out = Vec::new();
    for line in captured.take() {
        for p in metrics::parse(&line).unwrap_or_else(|e| panic!("{line}: {e}")) {
            let m = metrics::metric(&p.name).unwrap_or_else(|| panic!("undeclared metric {}", p.name));
            assert_eq!(p.namespace, metrics::namespace());
            assert_eq!(p.unit, m.unit.as_str(), "{}", p.name);
            let declared: Vec<Vec<String>> = m
                .dimensions
                .iter()
                .map(|s| s.iter().map(|k| (*k).to_owned()).collect())
                .collect();
            assert_eq!(p.dimension_sets, declared, "{}", p.name);
            out.push(p);
        }
    }
    out
}

/// The handover metrics as `name value key=value…` (bot id left out), in order; the values are
/// every field of the line, dimensions and the properties Logs Insights groups by. Deliveries
/// and their relay latency are read by their own tests.
fn handover_lines(parsed: &[Parsed]) -> Vec<String> {
    parsed
        .iter()
        .filter(|p| !p.name.starts_with("Outbox") && !p.name.starts_with("Evaluator") && p.name != "RelayLatency")
        .map(|p| {
            let dims: Vec<String> = p
                .properties
                .iter()
                .filter(|(k, _)| *k != "botId")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{} {} {}", p.name, p.value, dims.join(" "))
                .trim_end()
                .to_owned()
        })
        .collect()
}

/// Deliveries per metric and direction.
fn deliveries(parsed: &[Parsed]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for p in parsed.iter().filter(|p| p.name.starts_with("Outbox")) {
        *out.entry(format!("{} {}", p.name, p.dims["direction"])).or_default() += p.value;
    }
    out
}

fn callback(id: &str, kind: &str, conversation: &str) -> Value {
    json!({"id": id, "type": kind, "conversationId": conversation, "agent": {"id": "a-3", "name": "Eva"}})
}

#[tokio::test]
async fn a_full_handover_counts_request_join_wait_and_end_once_each() {
    let (env, _srv, bot, captured) = world("timeouts: { noAgentSeconds: 600, stillWaitingEverySeconds: 0 }").await;
    let send = |body: Value| {
        let env = &env;
        let secret = bot.platform_secret.clone();
        async move { env.send_event("acme", &secret, &body).await }
    };
    send(user_message("e1", "s-1", "Where is my parcel?")).await;
    let (_, opened) = send(handover_request("e2", "s-1")).await;
    assert_eq!(opened["outcome"], "opened");
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    send(bot_message("e3", "s-1", "An agent is on the way.")).await;
    env.clock.advance(Duration::seconds(90));
    let (status, _) = env
        .send_callback("acme", "desk", &bot.desk_secret, &callback("c1", "agent.joined", &conv))
        .await;
    assert_eq!(status, 200);
    env.clock.advance(Duration::seconds(600));
    env.send_callback(
        "acme",
        "desk",
        &bot.desk_secret,
        &callback("c2", "conversation.closed", &conv),
    )
    .await;

    let parsed = read_back(&captured);
    assert!(parsed.iter().all(|p| p.dims.get("botId").is_none_or(|b| b == "acme")));
    assert_eq!(
        handover_lines(&parsed),
        [
            "HandoverRequested 1 trigger=explicit_request",
            "HandoverOpened 1 provider=desk queue=general",
            "BotTurnsWhileWaiting 1",
            "AgentJoined 1 provider=desk queue=general",
            "TimeToAgent 90 provider=desk queue=general",
            "HandoverEnded 1 reason=agent_closed",
            "HandoverDuration 690 provider=desk",
        ]
    );
    // The mirrored bot turn went to the provider; the join and the end went to the bot.
    assert_eq!(
        deliveries(&parsed),
        BTreeMap::from([
            ("OutboxDelivered bot".to_owned(), 2.0),
            ("OutboxDelivered provider".to_owned(), 1.0)
        ])
    );
}

#[tokio::test]
async fn a_request_outside_opening_hours_counts_as_closed_with_its_reason() {
    let hours = "hours: { timeZone: Europe/Brussels, openingHours: 'Mo-Fr 08:30-17:30' }";
    let (env, _srv, bot, captured) = world(hours).await;
    // 20:00 UTC is 21:00 in Brussels.
    env.clock.set(t0() + Duration::hours(11));
    let (_, answer) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(answer["outcome"], "closed", "{answer}");
    let parsed = read_back(&captured);
    assert_eq!(
        handover_lines(&parsed),
        [
            "HandoverRequested 1 trigger=explicit_request",
            "HandoverClosed 1 reason=outside_hours",
        ]
    );
}

#[tokio::test]
async fn a_no_agent_timeout_counts_as_abandoned_once_and_the_evaluator_reports_its_run() {
    let (env, _srv, bot, captured) = world("timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0 }").await;
    env.send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    captured.take();

    env.clock.advance(Duration::seconds(301));
    evaluator::run(&env.ctx, env.now()).await;
    // A second run finds nothing due: nothing more is counted.
    env.clock.advance(Duration::seconds(60));
    evaluator::run(&env.ctx, env.now()).await;

    let parsed = read_back(&captured);
    assert_eq!(
        handover_lines(&parsed),
        [
            "HandoverEnded 1 reason=no_agent_timeout",
            "HandoverDuration 301 provider=desk",
            "HandoverAbandoned 1 queue=general reason=no_agent_timeout",
        ]
    );
    let evaluator_runs: Vec<(String, f64)> = parsed
        .iter()
        .filter(|p| ["EvaluatorBacklog", "EvaluatorErrors"].contains(&p.name.as_str()))
        .map(|p| (p.name.clone(), p.value))
        .collect();
    assert_eq!(
        evaluator_runs,
        [
            ("EvaluatorBacklog".to_owned(), 1.0),
            ("EvaluatorErrors".to_owned(), 0.0),
            ("EvaluatorBacklog".to_owned(), 0.0),
            ("EvaluatorErrors".to_owned(), 0.0),
        ]
    );
    // One budget figure per run, each a share of the budget.
    let budget_used: Vec<f64> = parsed
        .iter()
        .filter(|p| p.name == "EvaluatorBudgetUsed")
        .map(|p| p.value)
        .collect();
    assert_eq!(budget_used.len(), 2, "one per evaluator run: {budget_used:?}");
    assert!(budget_used.iter().all(|v| (0.0..100.0).contains(v)), "{budget_used:?}");
}

#[tokio::test]
async fn work_a_run_leaves_for_the_next_is_a_metric() {
    let (env, _srv, bot, captured) = world("timeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 0 }").await;
    env.send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    captured.take();
    env.clock.advance(Duration::seconds(301));

    // No time left: the due timer and the bot's availability wait for the next run.
    let cut = evaluator::run_until(&env.ctx, env.now(), tokio::time::Instant::now()).await;
    assert!(cut.budget_exhausted, "{cut:?}");
    // A run with time does the work and leaves nothing.
    let full = evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(full.timers_fired, 1, "{full:?}");

    let leftover: Vec<f64> = read_back(&captured)
        .iter()
        .filter(|p| p.name == metrics::EVALUATOR_LEFTOVER.name)
        .map(|p| p.value)
        .collect();
    assert_eq!(leftover, [f64::from(cut.backlog + cut.bots_skipped), 0.0]);
    assert!(leftover[0] >= 1.0);
}

#[tokio::test]
async fn repeated_events_are_counted_once() {
    let (env, _srv, bot, captured) = world("").await;
    let send = |body: Value| {
        let env = &env;
        let secret = bot.platform_secret.clone();
        async move { env.send_event("acme", &secret, &body).await }
    };
    let (_, first) = send(handover_request("e1", "s-1")).await;
    let (_, again) = send(handover_request("e1", "s-1")).await;
    assert_eq!(first, again, "a repeat gets the first answer");
    let conv = first["handoverId"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, _) = env
            .send_callback("acme", "desk", &bot.desk_secret, &callback("c1", "agent.joined", &conv))
            .await;
        assert_eq!(status, 200);
    }
    let cancel = json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"});
    let (_, cancelled) = send(cancel.clone()).await;
    assert_eq!(send(cancel).await.1, cancelled);

    let parsed = read_back(&captured);
    assert_eq!(
        handover_lines(&parsed),
        [
            "HandoverRequested 1 trigger=explicit_request",
            "HandoverOpened 1 provider=desk queue=general",
            "AgentJoined 1 provider=desk queue=general",
            "TimeToAgent 0 provider=desk queue=general",
            "HandoverEnded 1 reason=user_cancelled",
            "HandoverDuration 0 provider=desk",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// template.yaml: every metric a widget or alarm shows is one the code emits
// ---------------------------------------------------------------------------------------------

/// AWS's own metrics the template may use (not emitted by this code).
const AWS_METRICS: &[(&str, &str, &[&str])] = &[
    ("AWS/ApiGateway", "5xx", &["ApiId"]),
    ("AWS/ApiGateway", "4xx", &["ApiId"]),
    ("AWS/ApiGateway", "Count", &["ApiId"]),
    ("AWS/Lambda", "Errors", &["FunctionName"]),
    ("AWS/Lambda", "Throttles", &["FunctionName"]),
    ("AWS/DynamoDB", "ReadThrottleEvents", &["TableName"]),
    (
        "AWS/DynamoDB",
        "ReadThrottleEvents",
        &["GlobalSecondaryIndexName", "TableName"],
    ),
    ("AWS/DynamoDB", "WriteThrottleEvents", &["TableName"]),
    (
        "AWS/DynamoDB",
        "WriteThrottleEvents",
        &["GlobalSecondaryIndexName", "TableName"],
    ),
];

/// A metric as a widget or alarm names it: namespace, name, dimension keys (sorted).
type Shown = (String, String, Vec<String>);

/// The namespace the template gives the functions (`METRICS_NAMESPACE`), with the stack name
/// as `stack`: the one every application metric a widget or alarm shows must be in.
fn stack_namespace() -> String {
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let var = &t["Globals"]["Function"]["Environment"]["Variables"][metrics::NAMESPACE_VAR];
    untag(var).as_str().unwrap().replace("${AWS::StackName}", "stack")
}

/// A namespace as written in the template, with the stack name as `stack`.
fn in_stack(namespace: &str) -> String {
    namespace.replace("${AWS::StackName}", "stack")
}

fn check(where_: &str, (namespace, name, mut dims): Shown) {
    dims.sort();
    if !namespace.starts_with("AWS/") {
        assert_eq!(
            namespace,
            stack_namespace(),
            "{where_}: {name} is read from another namespace than the functions write to"
        );
        let m = metrics::metric(&name).unwrap_or_else(|| panic!("{where_}: {name} is not emitted by the code"));
        let keys: Vec<&str> = dims.iter().map(String::as_str).collect();
        assert!(
            m.has_dimension_set(&keys),
            "{where_}: {name} is not emitted with dimensions {dims:?}"
        );
    } else {
        assert!(
            AWS_METRICS
                .iter()
                .any(|(ns, n, d)| *ns == namespace && *n == name && d.iter().eq(dims.iter())),
            "{where_}: {namespace} {name} {dims:?} is not a metric this template expects"
        );
    }
}

fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => &t.value,
        other => other,
    }
}

fn resources(t: &Yaml, kind: &str) -> Vec<(String, Yaml)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn alarm_metrics(props: &Yaml) -> Vec<Shown> {
    let dims = |d: &Yaml| -> Vec<String> {
        d.as_sequence()
            .into_iter()
            .flatten()
            .map(|x| x["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    if let Some(name) = props["MetricName"].as_str() {
        return vec![(
            in_stack(untag(&props["Namespace"]).as_str().unwrap()),
            name.to_owned(),
            dims(&props["Dimensions"]),
        )];
    }
    props["Metrics"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|q| {
            let m = &q["MetricStat"]["Metric"];
            m["MetricName"].as_str().map(|name| {
                (
                    in_stack(untag(&m["Namespace"]).as_str().unwrap()),
                    name.to_owned(),
                    dims(&m["Dimensions"]),
                )
            })
        })
        .collect()
}

/// The metrics of a dashboard body: `[namespace, name, key, value, …, {options}]` entries and
/// `SEARCH('{Namespace,key,…} MetricName="…"', …)` expressions.
fn dashboard_metrics(body: &str) -> Vec<Shown> {
    let mut json_text = String::new();
    let mut rest = body;
    // ${…} references become plain text so the body parses as JSON; the stack name as in
    // `in_stack`.
    while let Some(i) = rest.find("${") {
        json_text.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        json_text.push_str(if &rest[i..=end] == "${AWS::StackName}" {
            "stack"
        } else {
            "ref"
        });
        rest = &rest[end + 1..];
    }
    json_text.push_str(rest);
    let doc: Value = serde_json::from_str(&json_text).expect("the dashboard body is JSON");
    let mut out = Vec::new();
    for w in doc["widgets"].as_array().unwrap() {
        for entry in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let parts = entry.as_array().unwrap();
            if let Some(expr) = parts[0].get("expression").and_then(Value::as_str) {
                let inner = &expr[expr.find('{').unwrap() + 1..expr.find('}').unwrap()];
                let mut keys = inner.split(',').map(str::to_owned);
                let namespace = keys.next().unwrap();
                let name = expr.split("MetricName=\"").nth(1).unwrap().split('"').next().unwrap();
                out.push((namespace, name.to_owned(), keys.collect()));
                continue;
            }
            let strings: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            let dims = strings[2..].chunks(2).map(|kv| kv[0].to_owned()).collect();
            out.push((strings[0].to_owned(), strings[1].to_owned(), dims));
        }
    }
    out
}

#[test]
fn every_alarm_and_dashboard_metric_is_one_the_code_emits() {
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    let names: BTreeSet<&str> = alarms.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "Api5xxRateAlarm",
            "DeliveryGaveUpAlarm",
            "DynamoDbThrottleAlarm",
            "EvaluatorErrorsAlarm",
            "EvaluatorLeftoverAlarm",
            "EvaluatorOverrunAlarm",
            "EvaluatorStoppedAlarm",
            "HttpFunctionErrorsAlarm",
            "ProviderCircuitOpenAlarm",
            "RelayLatencyAlarm",
            "StartUnresolvedAlarm",
        ])
    );
    for (name, alarm) in &alarms {
        let shown = alarm_metrics(&alarm["Properties"]);
        assert!(!shown.is_empty(), "{name}");
        for s in shown {
            check(name, s);
        }
        // Notifications only when a topic is given.
        for actions in ["AlarmActions", "OKActions"] {
            let a = serde_yaml_ng::to_string(&alarm["Properties"][actions]).unwrap();
            assert!(
                a.contains("NotifyAlarms") && a.contains("AlarmTopicArn"),
                "{name} {actions}: {a}"
            );
        }
    }

    let dashboards = resources(&t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let body = untag(&dashboards[0].1["Properties"]["DashboardBody"]).as_str().unwrap();
    let shown = dashboard_metrics(body);
    let handover: BTreeSet<String> = shown
        .iter()
        .filter(|s| s.0 == stack_namespace())
        .map(|s| s.1.clone())
        .collect();
    for wanted in [
        "HandoverRequested",
        "HandoverOpened",
        "AgentJoined",
        "TimeToAgent",
        "HandoverAbandoned",
        "OutboxGaveUp",
        "EvaluatorDuration",
    ] {
        assert!(handover.contains(wanted), "the dashboard shows {wanted}");
    }
    for s in shown {
        check("OperationsDashboard", s);
    }
}

#[test]
fn the_overrun_alarm_fires_before_runs_leave_work_behind() {
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let timeout = t["Resources"]["HoursEvaluatorFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert!(
        evaluator::RUN_BUDGET.as_secs() < timeout,
        "the budget fits in the timeout"
    );
    // EvaluatorBudgetUsed is a share of RUN_BUDGET; past this share no work starts.
    let stops_at =
        100.0 * (evaluator::RUN_BUDGET - evaluator::WORK_RESERVE).as_secs_f64() / evaluator::RUN_BUDGET.as_secs_f64();
    let overrun = &t["Resources"]["EvaluatorOverrunAlarm"]["Properties"];
    assert_eq!(overrun["MetricName"].as_str(), Some("EvaluatorBudgetUsed"));
    let threshold = overrun["Threshold"].as_f64().unwrap();
    assert!(
        threshold < stops_at,
        "the overrun alarm ({threshold}%) must fire before a run stops starting work ({stops_at}%)"
    );
    // What a run leaves for the next is a metric, and alarmed.
    let leftover = &t["Resources"]["EvaluatorLeftoverAlarm"]["Properties"];
    assert_eq!(leftover["MetricName"].as_str(), Some(metrics::EVALUATOR_LEFTOVER.name));
    assert_eq!(leftover["Threshold"].as_f64(), Some(0.0));
    // The heartbeat: finished runs, missing data counted as none.
    let stopped = &t["Resources"]["EvaluatorStoppedAlarm"]["Properties"];
    assert_eq!(stopped["MetricName"].as_str(), Some(metrics::EVALUATOR_DURATION.name));
    assert_eq!(stopped["Statistic"].as_str(), Some("SampleCount"));
    assert_eq!(stopped["TreatMissingData"].as_str(), Some("breaching"));
}

#[test]
fn operations_guide_explains_every_metric_and_alarm() {
    let doc = std::fs::read_to_string(format!("{}/../docs/operations.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for m in metrics::METRICS {
        assert!(
            doc.contains(&format!("`{}`", m.name)),
            "docs/operations.md explains {}",
            m.name
        );
    }
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    for (name, alarm) in resources(&t, "AWS::CloudWatch::Alarm") {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/operations.md has a runbook for {name}"
        );
        let description = alarm["Properties"]["AlarmDescription"].as_str().unwrap();
        let anchor = description.split("docs/operations.md#").nth(1).unwrap().trim();
        let heading = format!("### {}", anchor.replace('-', " "));
        assert!(
            doc.to_lowercase().contains(&heading),
            "{name} links to #{anchor}; docs/operations.md needs the heading {heading:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_provider_counts_an_error_and_the_failover_and_a_refused_bot_event_a_give_up() {
    let mut env = TestEnv::in_memory().await;
    let srv = MockServer::start().await;
    for (p, status) in [("/desk", 500), ("/backup", 200), ("/bot", 400)] {
        Mock::given(method("POST"))
            .and(wiremock::matchers::path(p))
            .respond_with(ResponseTemplate::new(status))
            .mount(&srv)
            .await;
    }
    let platform = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    let desk = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let backup = env.secret("backup", &json!({"signingSecret": "backup-secret"})).await;
    let url = srv.uri();
    env.put_bot(&format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: '{url}/bot', secretRef: {platform} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{url}/desk', secretRef: {desk} }}\n  - {{ id: backup, kind: webhook, url: '{url}/backup', secretRef: {backup} }}\nrouting:\n  - {{ provider: desk, queue: general, failover: [backup] }}\n"
    ))
    .await;
    let captured = Captured::default();
    env.ctx = Arc::new(
        AppContext::new(env.ctx.store.clone(), env.ctx.secrets.clone(), env.clock.clone())
            .with_retry(test_retry())
            .with_metrics(Arc::new(captured.clone())),
    );

    let (_, opened) = env
        .send_event("acme", b"bot-secret", &handover_request("e1", "s-1"))
        .await;
    assert_eq!(opened["outcome"], "opened", "{opened}");
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    let (status, _) = env
        .send_callback(
            "acme",
            "backup",
            b"backup-secret",
            &callback("c1", "agent.joined", &conv),
        )
        .await;
    assert_eq!(status, 200);

    let parsed = read_back(&captured);
    assert_eq!(
        handover_lines(&parsed),
        [
            "ProviderErrors 1 provider=desk",
            "HandoverRequested 1 trigger=explicit_request",
            "HandoverOpened 1 provider=backup queue=general",
            "ProviderFailover 1 provider=backup",
            "AgentJoined 1 provider=backup queue=general",
            "TimeToAgent 0 provider=backup queue=general",
        ]
    );
    // The bot platform refused the join event (400): given up at once.
    assert_eq!(
        deliveries(&parsed),
        BTreeMap::from([("OutboxGaveUp bot".to_owned(), 1.0)])
    );
}

#[tokio::test]
async fn relay_latency_is_measured_from_the_commit_to_the_delivery_retries_included() {
    let (env, srv, bot, captured) = world("").await;
    env.open_handover(&bot.platform_secret, "s-1").await;
    read_back(&captured);
    // Delivered at once: the commit and the delivery are one moment on the test clock.
    env.send_event("acme", &bot.platform_secret, &user_message("m-1", "s-1", "first"))
        .await;
    let relayed: Vec<(f64, String)> = read_back(&captured)
        .into_iter()
        .filter(|p| p.name == "RelayLatency")
        .map(|p| (p.value, p.dims["direction"].clone()))
        .collect();
    assert_eq!(relayed, [(0.0, "provider".to_owned())]);

    // The desk fails once: the turn waits for its retry, and its latency says so.
    srv.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&srv)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    env.send_event("acme", &bot.platform_secret, &user_message("m-2", "s-1", "second"))
        .await;
    env.clock.advance(chrono::Duration::seconds(5));
    handover::app::evaluator::run(&env.ctx, env.now()).await;
    let relayed: Vec<(f64, String)> = read_back(&captured)
        .into_iter()
        .filter(|p| p.name == "RelayLatency")
        .map(|p| (p.value, p.dims["direction"].clone()))
        .collect();
    assert_eq!(
        relayed,
        [(5000.0, "provider".to_owned())],
        "redelivered 5 s after its commit"
    );
}

// ---------------------------------------------------------------------------------------------
// Cost: what the metric table and the alarms cost a month, as docs/deploy.md states it
// ---------------------------------------------------------------------------------------------

/// CloudWatch list price of one custom metric series for a month (first 10,000 series).
const PRICE_PER_SERIES_MONTH: f64 = 0.30;
/// CloudWatch list price of one metric in a standard-resolution alarm, for a month.
const PRICE_PER_ALARM_METRIC_MONTH: f64 = 0.10;
/// The stated configuration: a bot with two providers and three queues.
const PROVIDERS: u64 = 2;
const QUEUES: u64 = 3;

/// `(series per stack, series per bot)` for the stated configuration.
fn series_counts() -> (u64, u64) {
    metrics::METRICS.iter().fold((0, 0), |(stack, bot), m| {
        let (s, b) = metrics::series(m, PROVIDERS, QUEUES);
        (stack + s, bot + b)
    })
}

#[test]
fn a_bot_costs_well_under_a_dollar_a_month_in_metrics_and_the_guide_says_so() {
    let (per_stack, per_bot) = series_counts();
    let bot_cost = per_bot as f64 * PRICE_PER_SERIES_MONTH;
    assert!(
        bot_cost <= 0.75,
        "a bot with {PROVIDERS} providers and {QUEUES} queues adds {per_bot} series: ${bot_cost:.2} a month"
    );
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let alarm_metrics: usize = resources(&t, "AWS::CloudWatch::Alarm")
        .iter()
        .map(|(_, a)| alarm_metrics(&a["Properties"]).len())
        .sum();
    let doc = std::fs::read_to_string(format!("{}/../docs/deploy.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for stated in [
        format!(
            "{per_bot} metric series per bot (${:.2} a month)",
            per_bot as f64 * PRICE_PER_SERIES_MONTH
        ),
        format!(
            "{per_stack} metric series per stack (${:.2} a month)",
            per_stack as f64 * PRICE_PER_SERIES_MONTH
        ),
        format!(
            "{alarm_metrics} alarm metrics (${:.2} a month)",
            alarm_metrics as f64 * PRICE_PER_ALARM_METRIC_MONTH
        ),
    ] {
        assert!(doc.contains(&stated), "docs/deploy.md states {stated:?}");
    }
}

#[test]
fn per_provider_and_per_queue_detail_is_logged_not_published_as_series() {
    // The EMF line of an opened handover names its provider and queue for Logs Insights,
    // without a dimension set that would make a series per provider or queue.
    let line = metrics::Record::count(&metrics::HANDOVER_OPENED)
        .dim("botId", "acme")
        .dim("provider", "desk")
        .dim("queue", "general")
        .to_emf(chrono::Utc::now());
    let parsed = metrics::parse(&line).unwrap();
    assert_eq!(parsed[0].properties["provider"], "desk");
    assert_eq!(parsed[0].properties["queue"], "general");
    for m in metrics::METRICS {
        for set in m.dimensions {
            assert!(
                !set.contains(&"provider") && !set.contains(&"queue"),
                "{} makes a series per provider or queue",
                m.name
            );
        }
    }
}

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
    let mut env = TestEnv::new().await;
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
            assert_eq!(p.namespace, metrics::NAMESPACE);
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

/// The handover metrics as `name value key=value…` (bot id left out), in order.
fn handover_lines(parsed: &[Parsed]) -> Vec<String> {
    parsed
        .iter()
        .filter(|p| !p.name.starts_with("Outbox") && !p.name.starts_with("Evaluator"))
        .map(|p| {
            let dims: Vec<String> = p
                .dims
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
    ("AWS/Lambda", "Invocations", &["FunctionName"]),
    ("AWS/DynamoDB", "ReadThrottleEvents", &["TableName"]),
    ("AWS/DynamoDB", "WriteThrottleEvents", &["TableName"]),
    (
        "AWS/DynamoDB",
        "WriteThrottleEvents",
        &["GlobalSecondaryIndexName", "TableName"],
    ),
];

/// A metric as a widget or alarm names it: namespace, name, dimension keys (sorted).
type Shown = (String, String, Vec<String>);

fn check(where_: &str, (namespace, name, mut dims): Shown) {
    dims.sort();
    if namespace == metrics::NAMESPACE {
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
            props["Namespace"].as_str().unwrap().to_owned(),
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
                    m["Namespace"].as_str().unwrap().to_owned(),
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
    // ${…} references become plain text so the body parses as JSON.
    while let Some(i) = rest.find("${") {
        json_text.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        json_text.push_str("ref");
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
            "EvaluatorOverrunAlarm",
            "EvaluatorStoppedAlarm",
            "ProviderCircuitOpenAlarm",
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
        .filter(|s| s.0 == metrics::NAMESPACE)
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
fn the_evaluator_budget_is_its_function_timeout() {
    let t: Yaml = serde_yaml_ng::from_str(TEMPLATE).unwrap();
    let timeout = t["Resources"]["HoursEvaluatorFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert_eq!(metrics::EVALUATOR_BUDGET.as_secs(), timeout);
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
    let mut env = TestEnv::new().await;
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

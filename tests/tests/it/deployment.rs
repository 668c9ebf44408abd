//! The template is the production truth: the local stack, the sample events and the IAM
//! grants must agree with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::DateTime;
use handover::app::routes::{Function, PLATFORM_GATEWAY_METHOD, PLATFORM_GATEWAY_PATH, ROUTES};
use handover::app::{bot_webhook, evaluator, provider_callback};
use handover::store::schema::{self, TEMPLATE};
use handover_tests::*;
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn template() -> Yaml {
    serde_yaml_ng::from_str(TEMPLATE).expect("template.yaml parses")
}

fn functions(t: &Yaml) -> BTreeMap<String, Yaml> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(_, r)| {
            (
                r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned(),
                r.clone(),
            )
        })
        .collect()
}

/// The template's HTTP routes as (method, path, binary), each checked for payload format 2.0.
fn template_routes(t: &Yaml) -> BTreeSet<(String, String, String)> {
    let mut declared = BTreeSet::new();
    for (binary, f) in functions(t) {
        for (_, ev) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if ev["Type"].as_str() == Some("HttpApi") {
                let p = &ev["Properties"];
                declared.insert((
                    p["Method"].as_str().unwrap().to_owned(),
                    p["Path"].as_str().unwrap().to_owned(),
                    binary.clone(),
                ));
                assert_eq!(
                    p["PayloadFormatVersion"].as_str(),
                    Some("2.0"),
                    "handlers parse payload 2.0"
                );
            }
        }
    }
    declared
}

/// Whether a route's path pattern matches a concrete path: `{name}` takes one non-empty
/// segment, a last `{name+}` one or more.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    for (i, p) in pattern.iter().enumerate() {
        if p.starts_with('{') && p.ends_with("+}") {
            return segments.len() > i && segments[i..].iter().all(|s| !s.is_empty());
        }
        match segments.get(i) {
            None => return false,
            Some(s) if p.starts_with('{') => {
                if s.is_empty() {
                    return false;
                }
            }
            Some(s) if s != p => return false,
            Some(_) => {}
        }
    }
    pattern.len() == segments.len()
}

/// The template route API Gateway picks for a request, by its documented precedence: a route
/// whose path matches without a greedy variable first (its own method before `ANY`), then one
/// with a greedy path variable; `None` where API Gateway answers 404 itself.
fn gateway_route<'a>(
    declared: &'a BTreeSet<(String, String, String)>,
    method: &str,
    path: &str,
) -> Option<&'a (String, String, String)> {
    let candidates = |greedy: bool| {
        declared.iter().filter(move |(m, p, _)| {
            (m == method || m == "ANY") && p.contains("+}") == greedy && pattern_matches(p, path)
        })
    };
    candidates(false)
        .min_by_key(|(m, _, _)| m == "ANY")
        .or_else(|| candidates(true).min_by_key(|(m, _, _)| m == "ANY"))
}

/// A concrete path for a route's pattern.
fn example_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|s| if s.starts_with('{') { "x1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every route the code serves reaches its function through the route API Gateway picks in the
/// template, and every template route is picked for one: the bot platforms share one greedy
/// route (each platform declares its routes in the code), the provider callback's routes are
/// declared one by one.
#[test]
fn served_routes_are_the_template_routes() {
    let declared = template_routes(&template());
    let mut used = BTreeSet::new();
    for r in ROUTES.iter() {
        let path = example_path(r.path);
        let chosen = gateway_route(&declared, r.method, &path)
            .unwrap_or_else(|| panic!("{} {} has no route in template.yaml", r.method, r.path));
        assert_eq!(
            chosen.2,
            r.function.binary(),
            "{} {} reaches {chosen:?}",
            r.method,
            r.path
        );
        used.insert(chosen.clone());
    }
    assert_eq!(used, declared, "every template route serves a route of the code");
    let callbacks: BTreeSet<_> = ROUTES
        .iter()
        .filter(|r| r.function == Function::ProviderCallback)
        .map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.binary().to_owned()))
        .collect();
    let declared_callbacks: BTreeSet<_> = declared
        .iter()
        .filter(|d| d.2 == "provider-callback")
        .cloned()
        .collect();
    assert_eq!(callbacks, declared_callbacks);
    let platforms: BTreeSet<_> = declared.iter().filter(|d| d.2 == "bot-webhook").cloned().collect();
    assert_eq!(
        platforms,
        BTreeSet::from([(
            PLATFORM_GATEWAY_METHOD.to_owned(),
            PLATFORM_GATEWAY_PATH.to_owned(),
            "bot-webhook".to_owned()
        )]),
        "the route local events and `handover serve` name (routes::PLATFORM_GATEWAY_PATH)"
    );
}

/// What the greedy route lets through that no route serves is answered by the bot-webhook
/// function like `handover serve` answers it: 405 on a served path, else 404, both JSON.
#[tokio::test]
async fn requests_under_a_bot_that_no_route_serves_get_the_handlers_answers() {
    let declared = template_routes(&template());
    let env = TestEnv::new().await;
    for (method, path, status, code) in [
        (
            "DELETE",
            "/v1/bots/acme/providers/desk/callback",
            405,
            "method_not_allowed",
        ),
        ("PUT", "/v1/bots/acme/events", 405, "method_not_allowed"),
        ("POST", "/v1/bots/acme/elsewhere", 404, "unknown_route"),
        ("GET", "/v1/bots/acme/events/deeper", 404, "unknown_route"),
    ] {
        let chosen = gateway_route(&declared, method, path).expect("under a bot, the greedy route takes it");
        assert_eq!(chosen.2, "bot-webhook", "{method} {path}");
        let (got, body) = env.call_bot(env.request(method, path, &[], b"")).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(
        gateway_route(&declared, "GET", "/v2/elsewhere"),
        None,
        "API Gateway's own 404"
    );
}

#[test]
fn functions_are_the_workspace_binaries() {
    let names: BTreeSet<String> = functions(&template()).into_keys().collect();
    let expected: BTreeSet<String> = ["bot-webhook", "provider-callback", "hours-evaluator"]
        .map(String::from)
        .into();
    assert_eq!(names, expected);
    for name in &names {
        let manifest = format!("{}/../functions/{name}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::fs::read_to_string(&manifest)
                .unwrap()
                .contains(&format!("name = \"{name}\"")),
            "{manifest}"
        );
    }
}

#[tokio::test]
async fn the_table_tests_use_is_the_template_table() {
    let env = TestEnv::new().await;
    let def = schema::table_definition(TEMPLATE).unwrap();
    let d = env
        .dynamo()
        .describe_table()
        .table_name(env.table())
        .send()
        .await
        .unwrap();
    let table = d.table().unwrap();
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
        .collect();
    let want: Vec<(String, String)> = def
        .key_schema
        .iter()
        .map(|k| (k.attribute_name.clone(), k.key_type.clone()))
        .collect();
    assert_eq!(keys, want);
    let gsis: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| g.index_name().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(gsis, vec![schema::DUE_INDEX.to_owned()]);
    assert_eq!(def.global_secondary_indexes[0].index_name, schema::DUE_INDEX);
    let ttl = env
        .dynamo()
        .describe_time_to_live()
        .table_name(env.table())
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description().and_then(|t| t.attribute_name()),
        Some("expiresAt")
    );
    assert_eq!(def.time_to_live_specification.unwrap().attribute_name, "expiresAt");
    assert_eq!(def.billing_mode, "PAY_PER_REQUEST");
}

fn load_event(name: &str) -> Value {
    let p = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Stores the demo bot with this test's secrets and mock URLs.
async fn demo_bot(env: &TestEnv, srv: &MockServer) {
    let platform = env
        .secret("demo-platform", &json!({"signingSecret": "demo-signing-secret"}))
        .await;
    let desk = env
        .secret("demo-desk", &json!({"signingSecret": "demo-desk-secret"}))
        .await;
    let yaml = std::fs::read_to_string(format!("{}/../examples/demo-bot.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("http://127.0.0.1:3000/playground", &srv.uri())
        .replace("handover/demo/platform", &platform)
        .replace("handover/demo/desk", &desk);
    env.put_bot(&yaml).await;
}

#[tokio::test]
async fn every_sample_event_runs_through_its_handler() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    demo_bot(&env, &srv).await;
    // The sample events are signed at a fixed time and name conversation `h-demo-1`.
    env.clock.set(DateTime::from_timestamp(1_795_600_800, 0).unwrap());
    let ctx = Arc::new(
        handover::app::AppContext::new(env.ctx.store.clone(), env.ctx.secrets.clone(), env.clock.clone())
            .with_handover_ids(Arc::new(|| "h-demo-1".to_owned())),
    );
    let http = |name: &str| {
        let ctx = ctx.clone();
        let event = load_event(name);
        async move {
            let req = handover::app::local::to_request(&event).expect("sample event parses as lambda_http does");
            let resp = match event["routeKey"].as_str().unwrap() {
                k if k.contains("/providers/") => provider_callback::handle(&ctx, req).await,
                _ => bot_webhook::handle(&ctx, req).await,
            };
            response_json(resp)
        }
    };

    let (status, first) = http("bot-message.json").await;
    assert_eq!((status, &first), (200, &json!({"control": "bot", "state": "bot"})));
    // Same event id through a named stage: a repeat, answered identically.
    assert_eq!(http("bot-message-live-stage.json").await, (200, first));
    let (status, opened) = http("bot-handover-request.json").await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["outcome"], "opened");
    assert_eq!(opened["handoverId"], "h-demo-1");
    assert_eq!(
        http("provider-agent-joined.json").await,
        (200, json!({"status": "ok", "applied": 1, "ignored": 0}))
    );
    assert_eq!(http("provider-agent-message.json").await.0, 200);
    let (status, session) = http("bot-session-get.json").await;
    assert_eq!(status, 200);
    assert_eq!(session["state"], "agent");
    assert_eq!(session["handover"]["agent"]["name"], "Eva");
    assert_eq!(http("provider-conversation-closed.json").await.0, 200);
    let (status, err) = http("bot-handover-cancel.json").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("no_active_handover")),
        "nothing left to cancel"
    );

    let report = evaluator::handle(&ctx, load_event("schedule.json")).await;
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report.get("timersFired").is_some());
    // Events only: the demo bot's availability question is a GET without a body.
    let sent: Vec<String> = received(&srv)
        .await
        .iter()
        .filter(|b| !b.is_null())
        .map(|b| b["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        sent,
        [
            "conversation.started",
            "agent.joined",
            "agent.message",
            "handover.ended"
        ]
    );
}

/// The actions each function is granted, from its policy statements.
fn granted(f: &Yaml) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
        for st in policy["Statement"].as_sequence().unwrap() {
            let on_index = serde_yaml_ng::to_string(&st["Resource"]).unwrap().contains("/index/");
            for a in st["Action"].as_sequence().unwrap() {
                let a = a.as_str().unwrap();
                out.insert(if on_index { format!("{a}@index") } else { a.to_owned() });
            }
        }
    }
    out
}

#[tokio::test]
async fn iam_grants_exactly_what_each_function_calls() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    // Each outbound target fails once, so retry bookkeeping runs on every path.
    for p in ["/bot", "/agent"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&srv)
            .await;
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200))
            .mount(&srv)
            .await;
    }
    demo_bot(&env, &srv).await;
    let (webhook_rec, callback_rec, evaluator_rec) = (
        ActionRecorder::default(),
        ActionRecorder::default(),
        ActionRecorder::default(),
    );
    let webhook = env.other_function(&webhook_rec).await;
    let callback = env.other_function(&callback_rec).await;
    let eval = env.other_function(&evaluator_rec).await;
    let platform = b"demo-signing-secret";
    let desk = b"demo-desk-secret";

    let send = |body: Value| {
        let webhook = webhook.clone();
        let env = &env;
        async move {
            let bytes = serde_json::to_vec(&body).unwrap();
            response_json(
                bot_webhook::handle(
                    &webhook,
                    env.request("POST", "/v1/bots/demo/events", &env.signed(platform, &bytes), &bytes),
                )
                .await,
            )
        }
    };
    // bot-webhook: messages, a handover (its start fails once, then a later request finds it
    // due and claims it), a session read.
    send(user_message("e1", "s-1", "hello")).await;
    let (_, opened) = send(handover_request("e2", "s-1")).await;
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    env.clock.advance(chrono::Duration::minutes(1));
    send(user_message("e3", "s-1", "still there?")).await;
    let req = env.request(
        "GET",
        "/v1/bots/demo/sessions/s-1",
        &env.signed_read(platform, "/v1/bots/demo/sessions/s-1"),
        b"",
    );
    assert_eq!(bot_webhook::handle(&webhook, req).await.status(), 200);

    // provider-callback: the agent joins (its bot delivery fails once), writes, then a later
    // callback finds the failed item due and claims it.
    let cb = |id: &str, t: &str| json!({"id": id, "type": t, "conversationId": conv, "agent": {"id": "a"}, "message": {"text": "hi"}});
    let call = |body: Value| {
        let callback = callback.clone();
        let env = &env;
        async move {
            let bytes = serde_json::to_vec(&body).unwrap();
            let req = env.request(
                "POST",
                "/v1/bots/demo/providers/desk/callback",
                &env.signed(desk, &bytes),
                &bytes,
            );
            response_json(provider_callback::handle(&callback, req).await)
        }
    };
    assert_eq!(call(cb("c1", "agent.joined")).await.0, 200);
    env.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(call(cb("c2", "agent.message")).await.0, 200);

    // hours-evaluator: an idle agent times out (timer commit), an outbound failure is
    // retried, delivered and removed.
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&srv)
        .await;
    env.clock.advance(chrono::Duration::hours(1));
    evaluator::run(&eval, env.now()).await;
    env.clock.advance(chrono::Duration::minutes(5));
    evaluator::run(&eval, env.now()).await;

    let t = template();
    let f = functions(&t);
    for (name, recorder) in [
        ("bot-webhook", &webhook_rec),
        ("provider-callback", &callback_rec),
        ("hours-evaluator", &evaluator_rec),
    ] {
        assert_eq!(
            recorder.actions(),
            granted(&f[name]),
            "{name}: called (left) vs granted (right)"
        );
    }
}

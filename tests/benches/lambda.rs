//! `make bench`, the functions as Lambda runs them: the release binaries of the three functions
//! against a hello-world `lambda_http` binary built with the same profile in the same run, each
//! started under a local Lambda Runtime API. Measures artifact size, init time (process start to
//! the first `/next` request), first-invocation latency, memory over a warm loop, DynamoDB
//! requests and consumed capacity per event type, warm handler time against injected DynamoDB
//! latency, a load run through `handover serve`, and the cost per million relayed messages.
//!
//! Writes its tables between the `lambda-bench` markers of docs/performance.md (or to
//! `BENCH_OUT`). Sizes: `BENCH_RUNS` (cold starts per binary, default 20), `BENCH_WARM` (events
//! in the warm loop, default 1000), `BENCH_LATENCY_MS` (injected DynamoDB latency, default 10),
//! `BENCH_SESSIONS` / `BENCH_MESSAGES` (load run, default 20 × 20), `BENCH_EVAL_BOTS` (default 1000).
//! The binaries are built first by `make bench` (`cargo build --release -p …`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use handover::app::{AppContext, bot_webhook, evaluator, local, provider_callback};
use handover::clock::SystemClock;
use handover::config::Document;
use handover_tests::runtime_api::{FunctionProcess, binaries_dir, lambda_env};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const RELEASE_BUILD: &str = "cargo build --release -p bot-webhook -p provider-callback -p hours-evaluator -p hello-lambda -p init-probe -p handover-cli";
const HELLO: &str = "hello-lambda";
const FUNCTIONS: [&str; 3] = ["bot-webhook", "provider-callback", "hours-evaluator"];

// Prices used for the cost table: AWS list prices, US East (N. Virginia), as published on the
// AWS pricing pages; DynamoDB on-demand after the 1 November 2024 reduction.
const PRICES_DATE: &str = "list prices for US East (N. Virginia) as of 2 December 2026 (DynamoDB on-demand prices unchanged since their 1 November 2024 reduction)";
const LAMBDA_ARM_GB_S: f64 = 0.000_013_333_4;
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const DDB_PER_WRU: f64 = 0.625 / 1e6;
const DDB_PER_RRU: f64 = 0.125 / 1e6;
const HTTP_API_PER_REQUEST: f64 = 1.00 / 1e6;
const MEMORY_MB: f64 = 256.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn binary(name: &str) -> PathBuf {
    let p = binaries_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: `make bench` builds it ({RELEASE_BUILD})",
        p.display()
    );
    p
}

/// The binaries measured: hello world and the functions found in the binaries folder. A
/// function missing from a partial build is named in the output, never silently left out.
fn measured() -> Vec<&'static str> {
    [HELLO]
        .into_iter()
        .chain(FUNCTIONS)
        .filter(|name| *name == HELLO || binaries_dir().join(name).is_file())
        .collect()
}

fn missing_note(out: &mut String) {
    let missing: Vec<&str> = FUNCTIONS
        .into_iter()
        .filter(|name| !binaries_dir().join(name).is_file())
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "Not measured in this run (not built): {}. `make bench` builds them all.\n",
            missing.join(", ")
        );
    }
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: f64) -> f64 {
    bytes / 1024.0 / 1024.0
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A context on the test's table and secrets on the system clock, as a function has.
fn live_ctx(env: &TestEnv) -> Arc<AppContext> {
    Arc::new(AppContext::new(
        env.ctx.store.clone(),
        env.ctx.secrets.clone(),
        Arc::new(SystemClock),
    ))
}

fn signed_event(method: &str, path: &str, secret: &[u8], body: &Value) -> Value {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let mut headers: Vec<(String, String)> = handover::signing::headers(secret, chrono::Utc::now().timestamp(), &bytes)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    local::apigw_v2_event(method, path, &headers, &bytes)
}

fn user_event(bot: &StandardBot, session: &str, id: &str) -> Value {
    signed_event(
        "POST",
        &format!("/v1/bots/{}/events", bot.bot_id),
        &bot.platform_secret,
        &user_message(id, session, "Where is my parcel?"),
    )
}

fn agent_event(bot: &StandardBot, conv: &str, id: &str, kind: &str) -> Value {
    signed_event(
        "POST",
        &format!("/v1/bots/{}/providers/desk/callback", bot.bot_id),
        &bot.desk_secret,
        &json!({"id": id, "type": kind, "conversationId": conv, "agent": {"id": "a-1", "name": "Eva"}, "message": {"text": "Let me check."}}),
    )
}

/// Sends an event to a handler in-process.
async fn call(ctx: &AppContext, event: &Value) -> (u16, Value) {
    let req = local::to_request(event).expect("event parses");
    let resp = if event["routeKey"].as_str().unwrap_or("").contains("/providers/") {
        provider_callback::handle(ctx, req).await
    } else {
        bot_webhook::handle(ctx, req).await
    };
    response_json(resp)
}

/// Opens a handover on `session` and lets an agent join; returns the conversation id.
async fn agent_session(ctx: &AppContext, bot: &StandardBot, session: &str) -> String {
    let req = signed_event(
        "POST",
        &format!("/v1/bots/{}/events", bot.bot_id),
        &bot.platform_secret,
        &handover_request(&format!("{session}-h"), session),
    );
    let (status, opened) = call(ctx, &req).await;
    assert_eq!(status, 200, "{opened}");
    let conv = opened["handoverId"].as_str().expect("a handover id").to_owned();
    let (status, joined) = call(ctx, &agent_event(bot, &conv, &format!("{session}-j"), "agent.joined")).await;
    assert_eq!(status, 200, "{joined}");
    conv
}

async fn ok_server() -> MockServer {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    srv
}

async fn standard(env: &TestEnv, srv: &MockServer) -> StandardBot {
    env.standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await
}

fn hello_event() -> Value {
    local::apigw_v2_event("GET", "/hello", &[], b"")
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.1}×", a / b)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}

// ---------------------------------------------------------------------------------------------
// Sizes

fn sizes(out: &mut String) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    for name in measured().iter() {
        sizes.insert(name.to_string(), std::fs::metadata(binary(name)).unwrap().len());
    }
    let hello = sizes[HELLO] as f64;
    let _ = writeln!(
        out,
        "### Artifact size (release profile, stripped)\n\n| binary | bytes | MiB | against hello world | goal ≤ 4× |\n|---|---|---|---|---|"
    );
    for (name, bytes) in &sizes {
        let b = *bytes as f64;
        let goal = if name == HELLO {
            "—".to_owned()
        } else {
            verdict(b / hello <= 4.0).to_owned()
        };
        let _ = writeln!(
            out,
            "| {name} | {bytes} | {:.2} | {} | {goal} |",
            mib(b),
            ratio(b, hello)
        );
    }
    out.push('\n');
    sizes
}

// ---------------------------------------------------------------------------------------------
// Init and first invocation

struct Cold {
    init: Vec<f64>,
    first: Vec<f64>,
}

async fn cold_starts(out: &mut String, runs: usize) -> BTreeMap<String, Cold> {
    let env = TestEnv::new().await;
    let srv = ok_server().await;
    let bot = standard(&env, &srv).await;
    let ctx = live_ctx(&env);
    let mut results: BTreeMap<String, Cold> = BTreeMap::new();
    // Interleaved (one start of each binary in turn), so the load of the shared machine weighs
    // on the hello world and the functions alike; one binary's starts in a row measured each
    // under whatever else ran at that moment.
    for i in 0..runs {
        for name in measured().iter() {
            let path = binary(name);
            // The first event of each run, prepared before the process starts.
            let event = match *name {
                HELLO => hello_event(),
                "bot-webhook" => user_event(&bot, &format!("cold-{i}"), &format!("cold-{i}")),
                "provider-callback" => {
                    let conv = agent_session(&ctx, &bot, &format!("cb-{i}")).await;
                    agent_event(&bot, &conv, &format!("cb-{i}-m"), "agent.message")
                }
                _ => json!({}),
            };
            let mut p = FunctionProcess::start(&path, &lambda_env(name, emulator_endpoint(), env.table())).await;
            let init = p.ready().await;
            let t = Instant::now();
            let answer = p.invoke_json(&event).await;
            let first = t.elapsed();
            if answer.get("statusCode").is_some() {
                assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
            } else {
                assert_eq!(answer["errors"], 0, "{name}: {answer}");
            }
            let cold = results.entry(name.to_string()).or_insert_with(|| Cold {
                init: Vec::new(),
                first: Vec::new(),
            });
            cold.init.push(ms(init));
            cold.first.push(ms(first));
        }
    }
    let h = &results[HELLO];
    let (hi, hf) = (median(&h.init), median(&h.first));
    let _ = writeln!(
        out,
        "### Cold start ({runs} starts per binary, medians)\n\n\
         Init is the time from spawning the process to its first `/next` request; the first \
         invocation is the time from handing it its first event to its answer (bot-webhook: a \
         user message on a new session; provider-callback: an agent message in a live handover; \
         hours-evaluator: a scheduled run; all against the local emulator, so DynamoDB time is \
         the emulator's).\n\n\
         | binary | init (ms) | init against hello world | goal ≤ 1.3× | first invocation (ms) | against hello world |\n|---|---|---|---|---|---|"
    );
    for (name, c) in &results {
        let (i, f) = (median(&c.init), median(&c.first));
        let goal = if name == HELLO {
            "—".to_owned()
        } else {
            verdict(i / hi <= 1.3).to_owned()
        };
        let _ = writeln!(
            out,
            "| {name} | {i:.2} | {} | {goal} | {f:.2} | {} |",
            ratio(i, hi),
            ratio(f, hf)
        );
    }
    out.push('\n');
    results
}

/// Where init time goes: `init-probe` times each step in a fresh process, for each variant.
fn init_breakdown(out: &mut String, runs: usize) {
    if !binaries_dir().join("init-probe").is_file() {
        let _ = writeln!(
            out,
            "### Where init time goes\n\nNot measured in this run: `init-probe` was not built.\n"
        );
        return;
    }
    let probe = binary("init-probe");
    let env_vars = lambda_env("init-probe", emulator_endpoint(), "missing-table");
    let variants = ["aws-config", "env", "env-sdk-tls"];
    let mut table: BTreeMap<String, BTreeMap<&str, Vec<f64>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for _ in 0..runs {
        // Interleaved, so background load spreads over every variant alike.
        for variant in variants {
            let output = std::process::Command::new(&probe)
                .args(variant.split(' '))
                .env_clear()
                .envs(env_vars.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("init-probe runs");
            let text = String::from_utf8_lossy(&output.stdout);
            let line = text.lines().last().unwrap_or("{}");
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("init-probe printed {line:?}: {e}"));
            for (k, x) in v.as_object().unwrap() {
                if let Some(us) = x.as_f64() {
                    if !order.contains(k) {
                        order.push(k.clone());
                    }
                    table
                        .entry(k.clone())
                        .or_default()
                        .entry(variant)
                        .or_default()
                        .push(us / 1000.0);
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "### Where init time goes (`init-probe`, {runs} fresh processes per variant, medians in ms)\n\n\
         Each step of a function's initialisation, in a fresh process: the process's one TLS \
         configuration (`tls::client_config`: trust roots compiled in, nothing read or parsed), \
         then AWS clients from `aws-config`'s default chain (what `AppContext::from_env` does) or \
         from the Lambda environment variables alone (`env`), both over that configuration \
         (`tls::sdk_http_client`), then the outbound HTTP client (`delivery::http_client`, the \
         same configuration; the functions build it on first outbound use, `LazyHttp`). \
         `env-sdk-tls` builds the clients from the environment with the SDK's own default HTTP \
         client instead, which reads and parses the system's CA bundle (the functions before \
         the shared configuration). The two DynamoDB requests show what the clients leave until \
         first use (the connection; the emulator answers over plain HTTP, so no handshake).\n\n| step | {} |\n|---|{}",
        variants.join(" | "),
        "---|".repeat(variants.len())
    );
    for k in &order {
        let cells: Vec<String> = variants
            .iter()
            .map(|v| table[k].get(v).map(|x| format!("{:.2}", median(x))).unwrap_or_default())
            .collect();
        let _ = writeln!(out, "| {k} | {} |", cells.join(" | "));
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Memory over a warm loop

async fn warm_memory(out: &mut String, events: usize) {
    let _ = writeln!(
        out,
        "### Memory over {events} warm events\n\n\
         `VmRSS` after 10 events and after the last, and the peak (`VmHWM`). Events: hello world, \
         GET; bot-webhook, user messages on 100 sessions in bot control; provider-callback, agent \
         messages relayed to the bot in 10 live handovers; hours-evaluator, scheduled runs.\n\n\
         | binary | RSS after 10 (MiB) | RSS after {events} (MiB) | peak (MiB) | growth | goal ≤ 16 MiB, no growth | warm event p50 (ms) |\n|---|---|---|---|---|---|---|"
    );
    for name in measured().iter() {
        // A table of its own for each function: the emulator copies the whole table for every
        // transaction, so one shared table would make the later functions wait on the earlier
        // ones' items.
        let env = TestEnv::new().await;
        let srv = ok_server().await;
        let bot = standard(&env, &srv).await;
        let ctx = live_ctx(&env);
        let mut convs: Vec<String> = Vec::new();
        if *name == "provider-callback" {
            for i in 0..10 {
                convs.push(agent_session(&ctx, &bot, &format!("warm-agent-{i}")).await);
            }
        }
        let mut p = FunctionProcess::start(&binary(name), &lambda_env(name, emulator_endpoint(), env.table())).await;
        p.ready().await;
        let mut after10 = 0;
        let mut times = Vec::new();
        for i in 0..events {
            let event = match *name {
                HELLO => hello_event(),
                "bot-webhook" => user_event(&bot, &format!("warm-{}", i % 100), &format!("w-{i}")),
                "provider-callback" => agent_event(&bot, &convs[i % convs.len()], &format!("wm-{i}"), "agent.message"),
                _ => json!({}),
            };
            let t = Instant::now();
            let answer = p.invoke_json(&event).await;
            times.push(ms(t.elapsed()));
            if let Some(s) = answer.get("statusCode") {
                assert_eq!(s, 200, "{name}: {answer}");
            }
            if i == 9 {
                after10 = memory_kib(p.pid()).0;
            }
        }
        let (rss, peak) = memory_kib(p.pid());
        let growth = rss as f64 - after10 as f64;
        let peak_mib = peak as f64 / 1024.0;
        let goal = if *name == HELLO {
            "—"
        } else {
            // "No growth": less than 1 MiB between event 10 and the last.
            verdict(peak_mib <= 16.0 && growth < 1024.0)
        };
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {peak_mib:.1} | {:+.1} MiB | {goal} | {:.2} |",
            after10 as f64 / 1024.0,
            rss as f64 / 1024.0,
            growth / 1024.0,
            median(&times)
        );
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// DynamoDB requests and consumed capacity

/// Counts DynamoDB requests per operation and estimates the capacity units DynamoDB on-demand
/// would bill for them, by its rules: a read is one unit per started 4 KB (half for an eventually
/// consistent read, at least one unit or half), a write one unit per started KB, a transaction's
/// items twice. Item sizes are the JSON sizes of the items sent and received (an upper bound);
/// updates and deletes, whose item is not on the wire, count as one KB. The emulator's own
/// `ConsumedCapacity` is a constant per operation, so it is not used.
#[derive(Debug, Default, Clone)]
struct CapacityMeter(Arc<Mutex<Meter>>);

#[derive(Debug, Default, Clone)]
struct Meter {
    ops: BTreeMap<String, usize>,
    read: f64,
    write: f64,
    largest_item: usize,
}

impl CapacityMeter {
    fn take(&self) -> Meter {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// What the response hook needs to know about its request.
#[derive(Debug, Clone)]
struct PendingRead {
    op: String,
    consistent: bool,
}

impl aws_smithy_types::config_bag::Storable for PendingRead {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

fn size(item: &Value) -> usize {
    serde_json::to_vec(item).map(|v| v.len()).unwrap_or(0)
}

fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

impl Intercept for CapacityMeter {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = ctx.request();
        let target = req.headers().get("x-amz-target").unwrap_or("?").to_owned();
        let op = target.rsplit('.').next().unwrap_or("?").to_owned();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut m = self.0.lock().unwrap();
        *m.ops.entry(op.clone()).or_default() += 1;
        let put = |m: &mut Meter, item: &Value, factor: f64| {
            let bytes = size(item);
            m.largest_item = m.largest_item.max(bytes);
            m.write += factor * write_units(bytes);
        };
        match op.as_str() {
            "PutItem" => put(&mut m, &body["Item"], 1.0),
            "UpdateItem" | "DeleteItem" => m.write += 1.0,
            "BatchWriteItem" => {
                for reqs in body["RequestItems"].as_object().into_iter().flat_map(|o| o.values()) {
                    for r in reqs.as_array().into_iter().flatten() {
                        match r.get("PutRequest") {
                            Some(p) => put(&mut m, &p["Item"], 1.0),
                            None => m.write += 1.0,
                        }
                    }
                }
            }
            "TransactWriteItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    match item.get("Put") {
                        Some(p) => put(&mut m, &p["Item"], 2.0),
                        None => m.write += 2.0,
                    }
                }
            }
            _ => {}
        }
        let consistent = match op.as_str() {
            "BatchGetItem" => body["RequestItems"]
                .as_object()
                .and_then(|o| o.values().next())
                .map(|t| t["ConsistentRead"] == json!(true))
                .unwrap_or(false),
            _ => body["ConsistentRead"] == json!(true) && body.get("IndexName").is_none(),
        };
        cfg.interceptor_state().store_put(PendingRead { op, consistent });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(pending) = cfg.load::<PendingRead>().cloned() else {
            return Ok(());
        };
        let body: Value = ctx
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut m = self.0.lock().unwrap();
        match pending.op.as_str() {
            "GetItem" => {
                m.read += read_units(
                    size(&body["Item"]) * usize::from(body.get("Item").is_some()),
                    pending.consistent,
                )
            }
            "Query" => {
                let bytes: usize = body["Items"].as_array().into_iter().flatten().map(size).sum();
                m.read += read_units(bytes, pending.consistent);
            }
            "BatchGetItem" => {
                for items in body["Responses"].as_object().into_iter().flat_map(|o| o.values()) {
                    for item in items.as_array().into_iter().flatten() {
                        m.read += read_units(size(item), pending.consistent);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

struct Capacity {
    requests: usize,
    read: f64,
    write: f64,
}

async fn capacity(out: &mut String, eval_bots: usize) -> BTreeMap<&'static str, Capacity> {
    let env = TestEnv::new().await;
    let srv = ok_server().await;
    let bot = standard(&env, &srv).await;
    let meter = CapacityMeter::default();
    let sdk = emulator_sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let base = env.context_on(dynamo, aws_sdk_secretsmanager::Client::new(&sdk));
    let ctx = AppContext::new(base.store.clone(), base.secrets.clone(), Arc::new(SystemClock));
    let mut rows: Vec<(&'static str, Meter)> = Vec::new();
    let measure = async |label: &'static str, event: Value, rows: &mut Vec<(&'static str, Meter)>| {
        meter.take();
        let (status, body) = call(&ctx, &event).await;
        assert_eq!(status, 200, "{label}: {body}");
        rows.push((label, meter.take()));
        body
    };
    let events = format!("/v1/bots/{}/events", bot.bot_id);
    let ev = |body: Value| signed_event("POST", &events, &bot.platform_secret, &body);
    // Warm the configuration cache first, as a warm function has it.
    measure(
        "user message, new session (cold configuration cache)",
        ev(user_message("c0", "s-0", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "user message, bot in control",
        ev(user_message("c1", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "user message, bot in control",
        ev(user_message("c2", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "bot message, bot in control",
        ev(bot_message("c3", "s-1", "hello")),
        &mut rows,
    )
    .await;
    let opened = measure("handover request", ev(handover_request("c4", "s-1")), &mut rows).await;
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    measure(
        "user message, waiting for an agent",
        ev(user_message("c5", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "bot message, waiting for an agent",
        ev(bot_message("c6", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "callback agent.joined",
        agent_event(&bot, &conv, "k1", "agent.joined"),
        &mut rows,
    )
    .await;
    measure(
        "user message, agent in control (relayed)",
        ev(user_message("c7", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "user message, agent in control (relayed)",
        ev(user_message("c8", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "bot message, agent in control",
        ev(bot_message("c9", "s-1", "hi")),
        &mut rows,
    )
    .await;
    measure(
        "callback agent.message (relayed)",
        agent_event(&bot, &conv, "k2", "agent.message"),
        &mut rows,
    )
    .await;
    measure(
        "callback agent.message (relayed)",
        agent_event(&bot, &conv, "k3", "agent.message"),
        &mut rows,
    )
    .await;
    measure(
        "callback conversation.closed",
        agent_event(&bot, &conv, "k4", "conversation.closed"),
        &mut rows,
    )
    .await;

    // The evaluator over `eval_bots` bots with nothing due.
    for i in 0..eval_bots {
        let yaml = format!(
            "botId: eval-{i:04}\nplatform: {{ kind: native, outboundUrl: '{url}/bot', secretRef: none }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{url}/desk', secretRef: none }}\nrouting:\n  - {{ provider: desk, queue: general }}\nhours:\n  timeZone: Europe/Brussels\n  openingHours: 'Mo-Fr 08:30-12:00,13:00-17:30; Sa 09:00-12:00; PH off'\n  publicHolidays: BE\n",
            url = srv.uri()
        );
        let config = handover::config::BotConfig::parse(&yaml).expect("valid configuration");
        env.store.put_bot(&config).await.expect("bot stored");
    }
    meter.take();
    evaluator::run(&ctx, chrono::Utc::now()).await;
    let first_run = meter.take();
    evaluator::run(&ctx, chrono::Utc::now()).await;
    let steady = meter.take();

    // One due session: a waiting session whose still-waiting nudge is due.
    let due_env = TestEnv::new().await;
    let due_bot = standard(&due_env, &srv).await;
    let due_meter = CapacityMeter::default();
    let due_dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(due_meter.clone())
            .build(),
    );
    let due_ctx = due_env.context_on(due_dynamo, aws_sdk_secretsmanager::Client::new(&sdk));
    due_env
        .send_event(
            &due_bot.bot_id,
            &due_bot.platform_secret,
            &handover_request("d1", "s-due"),
        )
        .await;
    evaluator::run(&due_ctx, due_env.now()).await;
    due_meter.take();
    evaluator::run(&due_ctx, due_env.now()).await;
    let idle = due_meter.take();
    due_env.clock.advance(chrono::Duration::minutes(3));
    let report = evaluator::run(&due_ctx, due_env.now()).await;
    let due = due_meter.take();
    assert!(report.sessions >= 1, "a session was due: {report:?}");

    let largest = rows.iter().map(|(_, m)| m.largest_item).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "### DynamoDB requests and capacity units per event\n\n\
         Counted by an SDK interceptor; capacity units are estimated by DynamoDB's on-demand \
         rules from the items on the wire (read: one unit per started 4 KB, half if eventually \
         consistent, at least one or half; write: one unit per started KB; transaction items \
         twice; updates and deletes, whose item is not on the wire, as one KB; the largest item \
         written by these events was {largest} bytes of JSON). The emulator's own \
         `ConsumedCapacity` is a constant per operation and is not used. Warm function \
         (configuration cached) unless said.\n\n\
         | event | requests | operations | read units | write units |\n|---|---|---|---|---|"
    );
    let mut summary: BTreeMap<&'static str, Capacity> = BTreeMap::new();
    let line = |label: &str, m: &Meter, out: &mut String| {
        let ops: Vec<String> = m.ops.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let requests: usize = m.ops.values().sum();
        let _ = writeln!(
            out,
            "| {label} | {requests} | {} | {:.1} | {:.1} |",
            ops.join(", "),
            m.read,
            m.write
        );
        requests
    };
    let mut seen = std::collections::BTreeSet::new();
    for (label, m) in &rows {
        // The second of two identical events is the steady state; print it.
        let repeated = rows.iter().filter(|(l, _)| l == label).count() > 1;
        if repeated && seen.insert(*label) {
            continue;
        }
        let requests = line(label, m, out);
        summary.insert(
            label,
            Capacity {
                requests,
                read: m.read,
                write: m.write,
            },
        );
    }
    line(
        &format!("evaluator, first run over {eval_bots} bots (availability written)"),
        &first_run,
        out,
    );
    line(
        &format!("evaluator, next run over {eval_bots} bots (steady state)"),
        &steady,
        out,
    );
    let mut per_due = due.clone();
    for (op, n) in &idle.ops {
        if let Some(v) = per_due.ops.get_mut(op) {
            *v = v.saturating_sub(*n);
        }
    }
    per_due.ops.retain(|_, v| *v > 0);
    per_due.read -= idle.read;
    per_due.write -= idle.write;
    line(
        "evaluator, one due session (still-waiting nudge), beyond an idle run",
        &per_due,
        out,
    );
    out.push('\n');
    summary
}

// ---------------------------------------------------------------------------------------------
// Warm handler time against injected DynamoDB latency

/// An HTTP proxy in front of the emulator that waits `delay` before forwarding each request,
/// and records how long each request took as the function saw it.
struct DelayProxy {
    url: String,
    spent: Arc<Mutex<Vec<Duration>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    async fn start(upstream: &str, delay: Duration) -> DelayProxy {
        let client = reqwest::Client::new();
        let upstream = upstream.to_owned();
        let spent = Arc::new(Mutex::new(Vec::new()));
        let record = spent.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let client = client.clone();
                let upstream = upstream.clone();
                let record = record.clone();
                async move {
                    let t = Instant::now();
                    tokio::time::sleep(delay).await;
                    let mut req = client.request(
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                        format!("{upstream}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")),
                    );
                    for (k, v) in &headers {
                        if k != "host" && k != "content-length" {
                            req = req.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let resp = req.body(body.to_vec()).send().await.expect("the emulator answers");
                    let status = resp.status().as_u16();
                    let mut out = axum::http::Response::builder().status(status);
                    for (k, v) in resp.headers() {
                        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                            out = out.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let bytes = resp.bytes().await.unwrap_or_default();
                    record.lock().unwrap().push(t.elapsed());
                    out.body(axum::body::Body::from(bytes)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        DelayProxy {
            url,
            spent,
            _task: task,
        }
    }

    fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.spent.lock().unwrap())
    }
}

/// Per event kind: median handler time and median DynamoDB wait (ms).
struct Warm {
    handler: f64,
    dynamo: f64,
    overhead: f64,
}

async fn warm_latency(out: &mut String, delay_ms: u64, events: usize) -> BTreeMap<&'static str, Warm> {
    let env = TestEnv::new().await;
    let srv = ok_server().await;
    let bot = standard(&env, &srv).await;
    let ctx = live_ctx(&env);
    let proxy = DelayProxy::start(emulator_endpoint(), Duration::from_millis(delay_ms)).await;
    let convs: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(agent_session(&ctx, &bot, &format!("lat-agent-{i}")).await);
        }
        v
    };
    let start = |name: &'static str| {
        let env_vars = lambda_env(name, &proxy.url, env.table());
        async move {
            let mut p = FunctionProcess::start(&binary(name), &env_vars).await;
            p.ready().await;
            p
        }
    };
    let mut webhook = start("bot-webhook").await;
    let mut callback = start("provider-callback").await;
    let mut results = BTreeMap::new();
    let kinds: [&'static str; 3] = [
        "user message, bot in control",
        "user message relayed to the agent",
        "agent message relayed to the bot",
    ];
    for kind in kinds {
        let (mut handler, mut dynamo, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..events + 5 {
            let (p, event) = match kind {
                k if k == kinds[0] => (
                    &mut webhook,
                    user_event(&bot, &format!("lat-{}", i % 20), &format!("l-{i}")),
                ),
                k if k == kinds[1] => (
                    &mut webhook,
                    user_event(&bot, &format!("lat-agent-{}", i % 10), &format!("lu-{i}")),
                ),
                _ => (
                    &mut callback,
                    agent_event(&bot, &convs[i % convs.len()], &format!("la-{i}"), "agent.message"),
                ),
            };
            proxy.take();
            let t = Instant::now();
            let answer = p.invoke_json(&event).await;
            let h = ms(t.elapsed());
            assert_eq!(answer["statusCode"], 200, "{kind}: {answer}");
            let d: f64 = proxy.take().into_iter().map(ms).sum();
            // The first few events warm the caches (configuration, secrets, connections).
            if i >= 5 {
                handler.push(h);
                dynamo.push(d);
                overhead.push(h - d);
            }
        }
        results.insert(
            kind,
            Warm {
                handler: median(&handler),
                dynamo: median(&dynamo),
                overhead: median(&overhead),
            },
        );
    }
    let _ = writeln!(
        out,
        "### Warm handler time against DynamoDB time ({delay_ms} ms injected per request, {events} events each, medians)\n\n\
         A proxy in front of the emulator waits {delay_ms} ms before forwarding each request and \
         records how long each request took as the function saw it. Handler time is measured at \
         the Runtime API (event handed over → answer posted), so it includes the Runtime API \
         round trip; overhead is handler time minus DynamoDB time. Outbound deliveries go to a \
         local mock.\n\n\
         | event | handler (ms) | DynamoDB (ms) | overhead (ms) | overhead share | goal ≤ 10 % |\n|---|---|---|---|---|---|"
    );
    for kind in kinds {
        let w = &results[kind];
        let share = w.overhead / w.handler * 100.0;
        let _ = writeln!(
            out,
            "| {kind} | {:.2} | {:.2} | {:.2} | {share:.1} % | {} |",
            w.handler,
            w.dynamo,
            w.overhead,
            verdict(share <= 10.0)
        );
    }
    out.push('\n');
    results
}

// ---------------------------------------------------------------------------------------------
// Load through `handover serve`

async fn load_run(out: &mut String, sessions: usize, messages: usize) {
    let env = TestEnv::new().await;
    let srv = ok_server().await;
    let bot = standard(&env, &srv).await;
    if !binaries_dir().join("handover").is_file() {
        let _ = writeln!(
            out,
            "### Load through `handover serve`\n\nNot measured in this run: the release `handover` CLI was not built.\n"
        );
        return;
    }
    let cli = binary("handover");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new(&cli);
    cmd.args([
        "serve",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--evaluate-every",
        "3600",
    ])
    .env_clear()
    .envs(lambda_env("serve", emulator_endpoint(), env.table()))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _serve = Kill(cmd.spawn().expect("handover serve starts"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "handover serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let post = move |path: String, secret: Vec<u8>, body: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let bytes = serde_json::to_vec(&body).unwrap();
            let mut req = http
                .post(format!("{base}{path}"))
                .header("content-type", "application/json");
            for (k, v) in handover::signing::headers(&secret, chrono::Utc::now().timestamp(), &bytes) {
                req = req.header(k, v);
            }
            let resp = req.body(bytes).send().await.expect("serve answers");
            let status = resp.status().as_u16();
            let json: Value = resp.json().await.unwrap_or(Value::Null);
            (status, json)
        }
    };
    let events = format!("/v1/bots/{}/events", bot.bot_id);
    let callback = format!("/v1/bots/{}/providers/desk/callback", bot.bot_id);
    // Set-up: every session is handed over and an agent has joined.
    for s in 0..sessions {
        let (st, opened) = post(
            events.clone(),
            bot.platform_secret.clone(),
            handover_request(&format!("h-{s}"), &format!("load-{s}")),
        )
        .await;
        assert_eq!(st, 200, "{opened}");
        let conv = opened["handoverId"].as_str().unwrap().to_owned();
        let (st, joined) = post(
            callback.clone(),
            bot.desk_secret.clone(),
            json!({"id": format!("j-{s}"), "type": "agent.joined", "conversationId": conv, "agent": {"id": "a"}}),
        )
        .await;
        assert_eq!(st, 200, "{joined}");
    }
    let before = received(&srv).await.len();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let post = post.clone();
        let (events, secret) = (events.clone(), bot.platform_secret.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for m in 0..messages {
                let t = Instant::now();
                let (st, body) = post(
                    events.clone(),
                    secret.clone(),
                    user_message(
                        &format!("m-{s}-{m}"),
                        &format!("load-{s}"),
                        &format!("load-{s} message {m}"),
                    ),
                )
                .await;
                assert_eq!(st, 200, "{body}");
                lat.push(ms(t.elapsed()));
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.unwrap());
    }
    let wall = t.elapsed().as_secs_f64();
    // Nothing lost: every message reached the agent once, in order per session.
    let relayed: Vec<Value> = received(&srv).await.into_iter().skip(before).collect();
    let mut per_session: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for b in &relayed {
        if b["type"] == "user.message" {
            let text = serde_json::to_string(b).unwrap();
            if let Some(pos) = text.find("load-") {
                let rest = &text[pos..];
                let session: String = rest.split_whitespace().next().unwrap_or("").to_owned();
                let n: usize = rest
                    .split("message ")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(usize::MAX);
                per_session.entry(session).or_default().push(n);
            }
        }
    }
    let total: usize = per_session.values().map(Vec::len).sum();
    let in_order = per_session.values().all(|v| v.iter().copied().eq(0..messages));
    assert_eq!(total, sessions * messages, "every message relayed exactly once");
    assert!(in_order, "every session's messages reached the agent in order");
    let _ = writeln!(
        out,
        "### Load through `handover serve`\n\n\
         {sessions} sessions with an agent joined, each sending {messages} user messages one after \
         the other, all sessions at once; every message is relayed to a local mock provider. \
         Check: the provider received all {} messages exactly once, in order per session.\n\n\
         | messages | wall time (s) | throughput (messages/s) | p50 (ms) | p99 (ms) | lost |\n|---|---|---|---|---|---|\n\
         | {} | {wall:.2} | {:.1} | {:.1} | {:.1} | 0 |\n",
        sessions * messages,
        sessions * messages,
        (sessions * messages) as f64 / wall,
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );
}

// ---------------------------------------------------------------------------------------------
// Cost

fn cost(out: &mut String, caps: &BTreeMap<&'static str, Capacity>, warm: &BTreeMap<&'static str, Warm>, delay_ms: u64) {
    let _ = writeln!(
        out,
        "### Cost per million relayed messages\n\n\
         From the figures above: the DynamoDB units a relayed message consumed, the warm handler \
         time at {delay_ms} ms per DynamoDB request (billed per started millisecond, at the \
         template's {MEMORY_MB} MB, arm64 prices; the time was measured on this host, not on \
         Graviton), one Lambda request and one HTTP API request per message. Prices: {PRICES_DATE}: \
         Lambda arm64 $0.0000133334 per GB-s and $0.20 per million requests; DynamoDB on-demand \
         $0.625 per million write request units and $0.125 per million read request units; HTTP \
         API $1.00 per million requests. DynamoDB units are the estimates of the table above.\n\n\
         | direction | Lambda compute | Lambda requests | DynamoDB | HTTP API | total per million | goal ≤ $10 |\n|---|---|---|---|---|---|---|"
    );
    for (label, cap_key, warm_key) in [
        (
            "user → agent (bot-webhook)",
            "user message, agent in control (relayed)",
            "user message relayed to the agent",
        ),
        (
            "agent → bot (provider-callback)",
            "callback agent.message (relayed)",
            "agent message relayed to the bot",
        ),
    ] {
        let (Some(c), Some(w)) = (caps.get(cap_key), warm.get(warm_key)) else {
            continue;
        };
        let billed_ms = w.handler.ceil();
        let compute = billed_ms / 1000.0 * MEMORY_MB / 1024.0 * LAMBDA_ARM_GB_S * 1e6;
        let requests = LAMBDA_PER_REQUEST * 1e6;
        let dynamo = (c.write * DDB_PER_WRU + c.read * DDB_PER_RRU) * 1e6;
        let api = HTTP_API_PER_REQUEST * 1e6;
        let total = compute + requests + dynamo + api;
        let _ = writeln!(
            out,
            "| {label} | ${compute:.2} ({billed_ms:.0} ms) | ${requests:.2} | ${dynamo:.2} ({} requests, {:.1} WRU, {:.1} RRU) | ${api:.2} | **${total:.2}** | {} |",
            c.requests,
            c.write,
            c.read,
            verdict(total <= 10.0)
        );
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------

fn host() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{} ({cpu}, {cores} cores), {rustc}, {}",
        std::env::consts::ARCH,
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

/// Writes the generated block. A full run replaces it whole; a partial run (`BENCH_ONLY` with
/// `BENCH_WRITE=1`) replaces only the sections it measured ([`merge_sections`]).
fn write_doc(section: &str, partial: Option<&str>) {
    const BEGIN: &str = "<!-- lambda-bench:begin -->";
    const END: &str = "<!-- lambda-bench:end -->";
    let path = std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/performance.md"));
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let block = match partial {
                Some(steps) => merge_sections(&doc[b + BEGIN.len() + 1..e], section, steps),
                None => section.to_owned(),
            };
            format!("{}{BEGIN}\n{block}{}", &doc[..b], &doc[e..])
        }
        _ => format!("{doc}\n{BEGIN}\n{section}{END}\n"),
    };
    std::fs::write(&path, new).expect("docs/performance.md written");
    eprintln!("wrote {}", path.display());
}

/// The `### ` sections of a generated block: the text before the first, then each section
/// with its key (the heading up to its parenthesis, which carries the run's counts).
fn sections(block: &str) -> (String, Vec<(String, String)>) {
    let mut intro = String::new();
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in block.split_inclusive('\n') {
        if let Some(heading) = line.strip_prefix("### ") {
            let key = heading.split(" (").next().unwrap_or(heading).trim().to_owned();
            parts.push((key, String::new()));
        }
        match parts.last_mut() {
            Some((_, text)) => text.push_str(line),
            None => intro.push_str(line),
        }
    }
    (intro, parts)
}

/// The previous block with the sections a partial run measured replaced by the new ones
/// (each marked with the run it comes from) and any new section appended; the others stay
/// as the earlier run wrote them.
fn merge_sections(old: &str, new: &str, steps: &str) -> String {
    let (old_intro, old_parts) = sections(old);
    let (new_intro, new_parts) = sections(new);
    let provenance = new_intro.trim().lines().next().unwrap_or_default().to_owned();
    let marked = |text: &str| {
        let (heading, rest) = text.split_once('\n').unwrap_or((text, ""));
        format!("{heading}\n\n*Partial run (`BENCH_ONLY={steps}`). {provenance}*\n{rest}")
    };
    const NOTE: &str = " Sections marked \"partial run\" come from a later run of only those steps \
                        (`BENCH_ONLY=… BENCH_WRITE=1`); compare ratios within one section.";
    let mut out = old_intro.trim_end().to_owned();
    if !out.contains(NOTE) {
        out.push_str(NOTE);
    }
    out.push_str("\n\n");
    let mut used = vec![false; new_parts.len()];
    for (key, text) in &old_parts {
        match new_parts.iter().position(|(k, _)| k == key) {
            Some(i) => {
                used[i] = true;
                out.push_str(&marked(&new_parts[i].1));
            }
            None => out.push_str(text),
        }
    }
    for (i, (_, text)) in new_parts.iter().enumerate() {
        if !used[i] {
            out.push_str(&marked(text));
        }
    }
    out
}

fn main() {
    let runs = env_usize("BENCH_RUNS", 20);
    let warm_events = env_usize("BENCH_WARM", 1000);
    let delay_ms = env_usize("BENCH_LATENCY_MS", 10) as u64;
    let load_sessions = env_usize("BENCH_SESSIONS", 20);
    let load_messages = env_usize("BENCH_MESSAGES", 20);
    let eval_bots = env_usize("BENCH_EVAL_BOTS", 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} The bench: `cargo bench -p handover-tests --bench lambda`. Host: {}. \
             Every ratio compares binaries measured side by side in this one run.\n",
            handover_tests::doc_block::provenance("make bench"),
            host()
        );
        let steps: [&str; 7] = ["sizes", "cold", "init", "memory", "capacity", "latency", "load"];
        let only = std::env::var("BENCH_ONLY").unwrap_or_default();
        let on = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
        let t = Instant::now();
        let mut caps = BTreeMap::new();
        let mut warm = BTreeMap::new();
        for step in steps {
            if !on(step) {
                continue;
            }
            eprintln!("[{:>6.1} s] {step}", t.elapsed().as_secs_f64());
            match step {
                "sizes" => {
                    missing_note(&mut out);
                    sizes(&mut out);
                }
                "cold" => {
                    cold_starts(&mut out, runs).await;
                }
                "init" => init_breakdown(&mut out, runs),
                "memory" => warm_memory(&mut out, warm_events).await,
                "capacity" => caps = capacity(&mut out, eval_bots).await,
                "latency" => warm = warm_latency(&mut out, delay_ms, 100).await,
                _ => load_run(&mut out, load_sessions, load_messages).await,
            }
        }
        if !caps.is_empty() && !warm.is_empty() {
            cost(&mut out, &caps, &warm, delay_ms);
        }
        print!("{out}");
        if only.is_empty() {
            write_doc(&out, None);
        } else if std::env::var("BENCH_WRITE").is_ok_and(|v| v == "1") {
            write_doc(&out, Some(&only));
        }
    });
}

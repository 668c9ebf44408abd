//! `make bench`, relay latency at chat cadence: how long a user's turn takes to reach the agent,
//! with the outbox's drain (this release) and without it (the delivery of the previous release:
//! one pass, a busy lane left to its lease), measured side by side in one run on the emulator.
//!
//! Each session has an agent joined and sends its turns in quick pairs (the second 100 ms after
//! the first, then a pause): several turns per second per session, all sessions at once. The
//! contact center takes `BENCH_RELAY_PROVIDER_MS` (default 200) to answer each call. Latency is
//! the time from sending a turn to the contact center receiving it. Production holds items for
//! a 30 s lease and runs the evaluator once a minute; this bench scales both down (2 s lease,
//! evaluator every second) so the run takes seconds: the old path's figures here are a floor of
//! what it costs in production.
//!
//! Writes its table between the `relay-bench` markers of docs/performance.md (or to
//! `BENCH_OUT`). Sizes: `BENCH_RELAY_SESSIONS` (default 5), `BENCH_RELAY_TURNS` (default 6): small, because the
//! emulator (one Python process) is the bottleneck long before the service is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handover::app::{AppContext, bot_webhook, evaluator, provider_callback};
use handover::clock::SystemClock;
use handover::delivery::RetryPolicy;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// When the contact center received each turn, by its text.
type Arrivals = Arc<Mutex<BTreeMap<String, Instant>>>;

/// A request as API Gateway delivers it, signed now (the live clock).
fn signed(env: &TestEnv, path: &str, secret: &[u8], body: &Value) -> lambda_http::Request {
    let bytes = serde_json::to_vec(body).unwrap();
    let headers: Vec<(&str, String)> =
        handover::signing::headers(secret, chrono::Utc::now().timestamp(), &bytes).to_vec();
    env.request("POST", path, &headers, &bytes)
}

struct Figures {
    p50: f64,
    p99: f64,
    max: f64,
    turns: usize,
}

async fn run(
    env: &TestEnv,
    bot: &StandardBot,
    (drain, round): (bool, usize),
    (sessions, turns): (usize, usize),
    arrivals: &Arrivals,
) -> Figures {
    let ctx = Arc::new(
        AppContext::new(env.ctx.store.clone(), env.ctx.secrets.clone(), Arc::new(SystemClock))
            .with_retry(RetryPolicy {
                lease: Duration::from_secs(2),
                ..RetryPolicy::default()
            })
            .with_drain(drain),
    );
    let mode = format!("{}-r{round}", if drain { "drain" } else { "pass" });
    // The evaluator, every second (a minute in production).
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let ticker = {
        let (ctx, running) = (ctx.clone(), running.clone());
        tokio::spawn(async move {
            while running.load(std::sync::atomic::Ordering::SeqCst) {
                evaluator::run(&ctx, chrono::Utc::now()).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    // Set-up: every session handed over, an agent joined.
    for s in 0..sessions {
        let session = format!("{mode}-{s}");
        let req = signed(
            env,
            "/v1/bots/acme/events",
            &bot.platform_secret,
            &handover_request(&format!("h-{session}"), &session),
        );
        let (status, opened) = response_json(bot_webhook::handle(&ctx, req).await);
        assert_eq!(status, 200, "{opened}");
        let join = json!({"id": format!("j-{session}"), "type": "agent.joined", "conversationId": opened["handoverId"], "agent": {"id": "a"}});
        let req = signed(env, "/v1/bots/acme/providers/desk/callback", &bot.desk_secret, &join);
        assert_eq!(response_json(provider_callback::handle(&ctx, req).await).0, 200);
    }
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let (ctx, bot_secret) = (ctx.clone(), bot.platform_secret.clone());
        let session = format!("{mode}-{s}");
        let requests: Vec<(String, lambda_http::Request)> = (0..turns)
            .map(|t| {
                let text = format!("{session} turn {t}");
                let body = user_message(&format!("m-{session}-{t}"), &session, &text);
                (text, signed(env, "/v1/bots/acme/events", &bot_secret, &body))
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut sent = BTreeMap::new();
            let mut pending = Vec::new();
            for (t, (text, req)) in requests.into_iter().enumerate() {
                // Pairs: the second 100 ms after the first, then a pause.
                let pause = if t % 2 == 1 { 100 } else { 500 };
                if t > 0 {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                sent.insert(text, Instant::now());
                let ctx = ctx.clone();
                pending.push(tokio::spawn(async move {
                    response_json(bot_webhook::handle(&ctx, req).await).0
                }));
            }
            for p in pending {
                assert_eq!(p.await.unwrap(), 200);
            }
            sent
        }));
    }
    let mut sent = BTreeMap::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = {
            let a = arrivals.lock().unwrap();
            sent.keys().all(|k| a.contains_key(k))
        };
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "turns not relayed within 120 s ({mode})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let _ = ticker.await;
    let a = arrivals.lock().unwrap();
    let lat: Vec<f64> = sent
        .iter()
        .map(|(text, at)| a[text].saturating_duration_since(*at).as_secs_f64() * 1000.0)
        .collect();
    Figures {
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        max: lat.iter().copied().fold(0.0, f64::max),
        turns: lat.len(),
    }
}

fn write_doc(section: &str) {
    const BEGIN: &str = "<!-- relay-bench:begin -->";
    const END: &str = "<!-- relay-bench:end -->";
    let path = std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/performance.md"));
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{section}{}", &doc[..b], &doc[e..]),
        _ => format!("{doc}\n{BEGIN}\n{section}{END}\n"),
    };
    std::fs::write(&path, new).expect("docs/performance.md written");
    eprintln!("wrote {}", path.display());
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// One run in a table and a contact center of its own, so runs do not slow each other down
/// (the emulator's queries grow with the table).
async fn one_run(drain: bool, round: usize, size: (usize, usize), provider_ms: u64) -> Figures {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    let arrivals: Arrivals = Arc::default();
    {
        let arrivals = arrivals.clone();
        Mock::given(method("POST"))
            .and(path("/desk"))
            .respond_with(move |r: &Request| {
                if let Ok(body) = serde_json::from_slice::<Value>(&r.body)
                    && body["type"] == "user.message"
                    && let Some(text) = body["text"].as_str()
                {
                    arrivals
                        .lock()
                        .unwrap()
                        .entry(text.to_owned())
                        .or_insert_with(Instant::now);
                }
                ResponseTemplate::new(200).set_delay(Duration::from_millis(provider_ms))
            })
            .mount(&srv)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    run(&env, &bot, (drain, round), size, &arrivals).await
}

#[tokio::main]
async fn main() {
    let sessions = env_usize("BENCH_RELAY_SESSIONS", 5);
    let turns = env_usize("BENCH_RELAY_TURNS", 6);
    let provider_ms = env_usize("BENCH_RELAY_PROVIDER_MS", 200) as u64;
    // Interleaved: the previous release's path, then this one's, then each again.
    let mut figures: BTreeMap<bool, Vec<Figures>> = BTreeMap::new();
    for round in 0..2 {
        for drain in [false, true] {
            eprintln!("relay bench: round {round}, drain {drain}");
            let f = one_run(drain, round, (sessions, turns), provider_ms).await;
            figures.entry(drain).or_default().push(f);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Generated by `make bench` (`cargo bench -p handover-tests --bench relay`) on {}, commit {}.\n\n\
         {sessions} sessions with an agent joined, each sending {turns} user turns in pairs (the second \
         100 ms after the first, then 500 ms), all sessions at once; the contact center takes \
         {provider_ms} ms per call. Latency: turn sent → contact center received it. Lease scaled to \
         2 s and the evaluator to every second (30 s and a minute in production).\n\n\
         | delivery | run | turns | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|---|",
        chrono::Utc::now().format("%Y-%m-%d"),
        commit()
    );
    for (drain, runs) in &figures {
        let name = if *drain {
            "drain (this release)"
        } else {
            "one pass (previous release)"
        };
        for (i, f) in runs.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.0} | {:.0} | {:.0} |",
                i + 1,
                f.turns,
                f.p50,
                f.p99,
                f.max
            );
        }
    }
    let p99 = |d: bool| figures[&d].iter().map(|f| f.p99).sum::<f64>() / figures[&d].len() as f64;
    let _ = writeln!(
        out,
        "\np99, previous release ÷ this release (same run): **{:.1}×**.",
        p99(false) / p99(true)
    );
    print!("{out}");
    write_doc(&out);
}

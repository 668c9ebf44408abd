//! One evaluator run over many bots and waiting sessions on the emulator: DynamoDB requests
//! per operation and wall time; and the cost of one availability evaluation. Figures go to
//! docs/performance.md. Sizes: `BENCH_BOTS` (default 10000), `BENCH_SESSIONS` (default 10000),
//! `BENCH_DUE_PERCENT` (share of sessions whose nudge is due this minute, default 10).
//! Writes its tables between the `evaluator-bench` markers of docs/performance.md, with the
//! command, date and commit (`BENCH_NO_WRITE=1` only prints).
//!
//! Then the due-work throughput of one invocation, one-at-a-time against the bulkheads, with
//! latency injected: `BENCH_LATENCY_MS` per DynamoDB request (default 10, through a delaying
//! proxy in front of the emulator) and `BENCH_DELIVERY_MS` per delivery (default 200);
//! `BENCH_TP_SESSIONS` due sessions per concurrent case (default 400), `BENCH_TP_SEQUENTIAL`
//! for the one-at-a-time case (default 40). Its table is written into docs/performance.md
//! between markers. `BENCH_EVALUATOR_STEPS` picks the parts (`scan,throughput`, the default).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Duration;
use handover::app::evaluator;
use handover::config::{Bot, BotConfig, Compile, Document};
use handover::domain::{Handover, Session, State, Trigger};
use handover::store::{SessionKey, shard_of};
use handover_tests::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

async fn write_all(env: &TestEnv, items: Vec<HashMap<String, AttributeValue>>) {
    let mut tasks = Vec::new();
    for chunk in items.chunks(25 * 8) {
        let chunk = chunk.to_vec();
        let client = env.dynamo.clone();
        let table = env.table.clone();
        tasks.push(tokio::spawn(async move {
            for part in chunk.chunks(25) {
                let mut reqs: Vec<WriteRequest> = part
                    .iter()
                    .map(|i| {
                        WriteRequest::builder()
                            .put_request(PutRequest::builder().set_item(Some(i.clone())).build().unwrap())
                            .build()
                    })
                    .collect();
                while !reqs.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, std::mem::take(&mut reqs))
                        .send()
                        .await
                        .unwrap();
                    if let Some(u) = out.unprocessed_items().and_then(|u| u.get(&table)) {
                        reqs = u.clone();
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn config_yaml(bot_id: &str, url: &str, secret: &str) -> String {
    format!(
        "botId: {bot_id}\nplatform: {{ kind: native, outboundUrl: '{url}/bot', secretRef: {secret} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{url}/desk', secretRef: {secret} }}\nrouting:\n  - {{ when: {{ language: nl }}, provider: desk, queue: dutch }}\n  - {{ provider: desk, queue: general }}\nhours:\n  timeZone: Europe/Brussels\n  openingHours: 'Mo-Fr 08:30-12:00,13:00-17:30; Sa 09:00-12:00; PH off'\n  publicHolidays: BE\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 120 }}\n"
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let steps = std::env::var("BENCH_EVALUATOR_STEPS").unwrap_or_else(|_| "scan,throughput".into());
    if steps.split(',').any(|s| s == "scan") {
        scan().await;
    }
    if steps.split(',').any(|s| s == "throughput") {
        throughput::run().await;
    }
}

/// One evaluator run over many bots and waiting sessions.
async fn scan() {
    let bots = env_usize("BENCH_BOTS", 10_000);
    let sessions = env_usize("BENCH_SESSIONS", 10_000);
    let due_percent = env_usize("BENCH_DUE_PERCENT", 10);
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let secret = env.secret("shared", &serde_json::json!({"signingSecret": "x"})).await;
    let now = env.now();

    // Seed: bots (configuration + registry) and waiting sessions, written in batches.
    let t = Instant::now();
    let mut items = Vec::new();
    for i in 0..bots {
        let id = format!("bot-{i:05}");
        let config = BotConfig::parse(&config_yaml(&id, &srv.uri(), &secret)).unwrap();
        items.push(HashMap::from([
            ("pk".into(), s(format!("BOT#{id}"))),
            ("sk".into(), s("CONFIG")),
            ("doc".into(), s(serde_json::to_string(&config).unwrap())),
            ("version".into(), n(1)),
        ]));
        items.push(HashMap::from([
            ("pk".into(), s("BOTS")),
            ("sk".into(), s(format!("BOT#{id}"))),
            ("botId".into(), s(id)),
        ]));
    }
    let due_every = (100 / due_percent.max(1)).max(1);
    for i in 0..sessions {
        let bot_id = format!("bot-{:05}", i % bots);
        let session_id = format!("s-{i}");
        let mut session = Session::new(&bot_id, &session_id, now - Duration::minutes(5));
        session.state = State::Waiting;
        session.handover = Some(Handover {
            id: format!("h-{i}"),
            trigger: Trigger::ExplicitRequest,
            provider: "desk".into(),
            queue: "general".into(),
            language: "en".into(),
            variables: Default::default(),
            tags: vec![],
            summary: None,
            provider_conversation_id: None,
            requested_at: now - Duration::minutes(5),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        });
        // A share of the nudges is due now; the others later in the hour.
        let at = if i % due_every == 0 {
            now - Duration::seconds(10)
        } else {
            now + Duration::minutes(1 + (i % 50) as i64)
        };
        session.timers.still_waiting_at = Some(at);
        session.timers.no_agent_at = Some(now + Duration::minutes(55));
        let key = SessionKey::new(&bot_id, &session_id);
        items.push(HashMap::from([
            ("pk".into(), s(format!("SESSION#{bot_id}#{session_id}"))),
            ("sk".into(), s("STATE")),
            ("botId".into(), s(&bot_id)),
            ("sessionId".into(), s(&session_id)),
            ("state".into(), s("waiting")),
            ("version".into(), n(1)),
            ("doc".into(), s(serde_json::to_string(&session).unwrap())),
            ("duePk".into(), s(format!("DUE#{}", shard_of(&key)))),
            ("dueAt".into(), n(at.timestamp_millis())),
        ]));
    }
    write_all(&env, items).await;
    println!(
        "seeded {bots} bots and {sessions} waiting sessions in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let counter = OpCounter::default();
    let ctx = env.counted_function(&counter).await;
    let ops = |counts: std::collections::BTreeMap<String, usize>| {
        counts
            .iter()
            .map(|(op, n)| format!("{n} `{op}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows =
        String::from("| run | phase | DynamoDB requests | by operation | wall time (s) |\n|---|---|---|---|---|\n");
    let mut reports = String::new();
    for (label, advance) in [
        ("first run (every availability document is new)", 0),
        ("next minute (steady state)", 60),
    ] {
        env.clock.advance(Duration::seconds(advance));
        let now = env.now();
        let mut report = evaluator::Report::default();
        println!("\n## {label}");
        counter.reset();
        let t = Instant::now();
        evaluator::refresh_availability(
            &ctx,
            now,
            Instant::now() + std::time::Duration::from_secs(3600),
            &mut report,
        )
        .await;
        println!(
            "availability refresh: {:.2} s, {} DynamoDB requests {:?}",
            t.elapsed().as_secs_f64(),
            counter.total(),
            counter.counts()
        );
        rows.push_str(&format!(
            "| {label} | availability refresh of {bots} bots | {} | {} | {:.1} |\n",
            counter.total(),
            ops(counter.counts()),
            t.elapsed().as_secs_f64()
        ));
        counter.reset();
        let t = Instant::now();
        evaluator::process_due(
            &ctx,
            now,
            Instant::now() + std::time::Duration::from_secs(3600),
            &mut report,
        )
        .await;
        println!(
            "due timers and outbox: {:.2} s, {} DynamoDB requests {:?}",
            t.elapsed().as_secs_f64(),
            counter.total(),
            counter.counts()
        );
        println!("report: {}", serde_json::to_string(&report).unwrap());
        rows.push_str(&format!(
            "| {label} | due work: {} sessions due | {} | {} | {:.1} |\n",
            report.sessions,
            counter.total(),
            ops(counter.counts()),
            t.elapsed().as_secs_f64()
        ));
        reports.push_str(&format!("- {label}: `{}`\n", serde_json::to_string(&report).unwrap()));
    }

    // The pure part: one availability evaluation (kill switch + opening hours of one queue).
    let bot = Bot::new(BotConfig::parse(&config_yaml("b", "http://x", "s")).unwrap()).unwrap();
    let iterations = 20_000u32;
    let t = Instant::now();
    let mut open = 0;
    for i in 0..iterations {
        let at = now + Duration::minutes(i64::from(i) * 7);
        open += usize::from(handover::domain::availability::scheduled(&bot, "desk", "general", at).open);
    }
    let per = t.elapsed() / iterations;
    println!(
        "\none availability evaluation: {:.1} µs (over {iterations} instants, {open} open)",
        per.as_secs_f64() * 1e6
    );
    let t = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(Bot::new(BotConfig::parse(&config_yaml("b", "http://x", "s")).unwrap()).unwrap());
    }
    let compile = t.elapsed().as_secs_f64() * 1e3;
    println!("parsing and compiling one bot configuration: {compile:.1} µs");

    let profile = if cfg!(debug_assertions) {
        " Built with the dev profile (unoptimised): request counts are exact, the pure-part timings are not release figures."
    } else {
        " Built with the bench profile (optimised)."
    };
    let section = format!(
        "{}{profile} {bots} bots (each with opening hours and public holidays) and {sessions} waiting sessions, {due_percent} % of whose \"still waiting\" nudge is due; two consecutive runs, phase by phase, on the emulator (wall times are the emulator's).\n\n{rows}\nThe evaluator's reports:\n\n{reports}\n| pure operation | cost |\n|---|---|\n| one availability evaluation (kill switch + opening hours of one queue, mean over {iterations} instants) | {:.1} µs |\n| parsing, validating and compiling one bot configuration (mean of 1,000) | {compile:.1} µs |\n",
        doc_block::provenance(&format!(
            "BENCH_BOTS={bots} BENCH_SESSIONS={sessions} BENCH_DUE_PERCENT={due_percent} cargo bench{} -p handover-tests --bench evaluator",
            if cfg!(debug_assertions) { " --profile dev" } else { "" }
        )),
        per.as_secs_f64() * 1e6,
    );
    if std::env::var_os("BENCH_NO_WRITE").is_none() {
        doc_block::write_block(&doc_block::doc_path("performance.md"), "evaluator-bench", &section)
            .expect("docs/performance.md has the evaluator-bench markers");
        eprintln!("wrote the evaluator-bench block of docs/performance.md");
    } else {
        println!("\n{section}");
    }
}

/// Due sessions per minute in one invocation, with DynamoDB and delivery latency injected.
mod throughput {
    use super::*;
    use handover::app::evaluator::Bulkheads;
    use std::time::Duration as StdDuration;
    use wiremock::{Request, Respond};

    /// An HTTP proxy in front of the emulator that waits `delay` before forwarding each
    /// request (as in the Lambda bench): DynamoDB's network time, on a local emulator.
    async fn delay_proxy(upstream: &str, delay: StdDuration) -> String {
        let client = reqwest::Client::new();
        let upstream = upstream.to_owned();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let client = client.clone();
                let upstream = upstream.clone();
                async move {
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
                    let mut out = axum::http::Response::builder().status(resp.status().as_u16());
                    for (k, v) in resp.headers() {
                        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                            out = out.header(k.as_str(), v.as_bytes());
                        }
                    }
                    let bytes = resp.bytes().await.unwrap_or_default();
                    out.body(axum::body::Body::from(bytes)).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }

    /// A receiver that answers after `delay` and notes when each request arrived.
    struct Timed {
        delay: StdDuration,
        arrivals: Arc<Mutex<Vec<Instant>>>,
    }

    impl Respond for Timed {
        fn respond(&self, _: &Request) -> ResponseTemplate {
            self.arrivals.lock().unwrap().push(Instant::now());
            ResponseTemplate::new(200).set_delay(self.delay)
        }
    }

    struct Case {
        label: &'static str,
        bulkheads: Bulkheads,
        healthy: usize,
        hanging: usize,
    }

    struct Outcome {
        per_minute: f64,
        healthy_done: usize,
        requests_per_session: f64,
        backlog: u32,
        wall: f64,
    }

    fn session_item(
        bot_id: &str,
        session_id: &str,
        provider: &str,
        now: chrono::DateTime<chrono::Utc>,
        hang: bool,
    ) -> HashMap<String, AttributeValue> {
        let mut session = Session::new(bot_id, session_id, now - Duration::minutes(5));
        session.state = State::Waiting;
        session.handover = Some(Handover {
            id: format!("h-{session_id}"),
            trigger: Trigger::ExplicitRequest,
            provider: provider.into(),
            queue: "general".into(),
            language: "en".into(),
            variables: Default::default(),
            tags: vec![],
            summary: None,
            provider_conversation_id: None,
            requested_at: now - Duration::minutes(5),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        });
        let at = now - Duration::seconds(10);
        if hang {
            // Ends the handover: a call to the provider, which hangs.
            session.timers.no_agent_at = Some(at);
        } else {
            // A nudge: one delivery to the bot platform.
            session.timers.still_waiting_at = Some(at);
            session.timers.no_agent_at = Some(now + Duration::minutes(55));
        }
        let key = SessionKey::new(bot_id, session_id);
        HashMap::from([
            ("pk".into(), s(format!("SESSION#{bot_id}#{session_id}"))),
            ("sk".into(), s("STATE")),
            ("botId".into(), s(bot_id)),
            ("sessionId".into(), s(session_id)),
            ("state".into(), s("waiting")),
            ("version".into(), n(1)),
            ("doc".into(), s(serde_json::to_string(&session).unwrap())),
            ("duePk".into(), s(format!("DUE#{}", shard_of(&key)))),
            ("dueAt".into(), n(at.timestamp_millis())),
        ])
    }

    /// Healthy sessions are spread over bots with a fast provider (a nudge each); hanging ones
    /// sit at one bot whose provider answers only after the client has given up (their
    /// no-agent timer ends the handover, which calls the provider).
    async fn one(case: &Case, latency: StdDuration, delivery: StdDuration) -> Outcome {
        let env = TestEnv::new().await;
        let healthy_arrivals = Arc::new(Mutex::new(Vec::new()));
        let srv = MockServer::start().await;
        Mock::given(method("POST"))
            .and(wiremock::matchers::path("/bot"))
            .respond_with(Timed {
                delay: delivery,
                arrivals: healthy_arrivals.clone(),
            })
            .mount(&srv)
            .await;
        Mock::given(method("POST"))
            .and(wiremock::matchers::path("/hang/desk"))
            .respond_with(ResponseTemplate::new(200).set_delay(StdDuration::from_secs(60)))
            .mount(&srv)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(delivery))
            .mount(&srv)
            .await;
        let secret = env.secret("shared", &serde_json::json!({"signingSecret": "x"})).await;
        let now = env.now();
        let bots = 50;
        let mut items = Vec::new();
        let bot_items = |id: &str, url: &str, items: &mut Vec<HashMap<String, AttributeValue>>| {
            let config = BotConfig::parse(&config_yaml(id, url, &secret)).unwrap();
            items.push(HashMap::from([
                ("pk".into(), s(format!("BOT#{id}"))),
                ("sk".into(), s("CONFIG")),
                ("doc".into(), s(serde_json::to_string(&config).unwrap())),
                ("version".into(), n(1)),
            ]));
        };
        for b in 0..bots {
            bot_items(&format!("tp-{b:03}"), &srv.uri(), &mut items);
        }
        for i in 0..case.healthy {
            items.push(session_item(
                &format!("tp-{:03}", i % bots),
                &format!("s-{i:05}"),
                "desk",
                now,
                false,
            ));
        }
        if case.hanging > 0 {
            // The hanging bot's platform is its own path, so its messages are not counted.
            let config = config_yaml("tp-hang", &format!("{}/hang", srv.uri()), &secret).replace(
                &format!("'{}/hang/bot'", srv.uri()),
                &format!("'{}/hangbot'", srv.uri()),
            );
            let config = BotConfig::parse(&config).unwrap();
            items.push(HashMap::from([
                ("pk".into(), s("BOT#tp-hang")),
                ("sk".into(), s("CONFIG")),
                ("doc".into(), s(serde_json::to_string(&config).unwrap())),
                ("version".into(), n(1)),
            ]));
            for i in 0..case.hanging {
                items.push(session_item("tp-hang", &format!("h-{i:05}"), "desk", now, true));
            }
        }
        write_all(&env, items).await;

        let proxy = delay_proxy(emulator_endpoint(), latency).await;
        let sdk = emulator_sdk().await;
        let counter = OpCounter::default();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(&proxy)
                .interceptor(counter.clone())
                .build(),
        );
        let ctx = env.context_on(dynamo, aws_sdk_secretsmanager::Client::new(&sdk));
        let mut report = evaluator::Report::default();
        let started = Instant::now();
        evaluator::process_due_with(&ctx, now, started + evaluator::RUN_BUDGET, case.bulkheads, &mut report).await;
        let wall = started.elapsed().as_secs_f64();
        let arrivals = healthy_arrivals.lock().unwrap().clone();
        let healthy_done = arrivals.len();
        // The healthy work is done when its last delivery is answered.
        let healthy_wall = arrivals
            .iter()
            .max()
            .map_or(wall, |t| (t.duration_since(started) + delivery).as_secs_f64());
        Outcome {
            per_minute: healthy_done as f64 / healthy_wall * 60.0,
            healthy_done,
            requests_per_session: counter.total() as f64 / f64::from(report.sessions.max(1)),
            backlog: report.backlog,
            wall,
        }
    }

    pub async fn run() {
        let latency = StdDuration::from_millis(env_usize("BENCH_LATENCY_MS", 10) as u64);
        let delivery = StdDuration::from_millis(env_usize("BENCH_DELIVERY_MS", 200) as u64);
        let sessions = env_usize("BENCH_TP_SESSIONS", 400);
        let sequential = env_usize("BENCH_TP_SEQUENTIAL", 40);
        let cases = [
            Case {
                label: "one at a time (before the bulkheads)",
                bulkheads: Bulkheads::SEQUENTIAL,
                healthy: sequential,
                hanging: 0,
            },
            Case {
                label: "bulkheads (64 in flight, 8 per provider, 16 per platform)",
                bulkheads: Bulkheads::default(),
                healthy: sessions,
                hanging: 0,
            },
            Case {
                label: "bulkheads, 10 % of the sessions at a provider that hangs",
                bulkheads: Bulkheads::default(),
                healthy: sessions,
                hanging: sessions / 9,
            },
        ];
        let mut table = String::from(
            "| case | due sessions | healthy sessions done | due sessions per minute (healthy) | DynamoDB requests per session | left for the next run | run wall time (s) |\n|---|---|---|---|---|---|---|\n",
        );
        let mut base = None;
        for case in &cases {
            let o = one(case, latency, delivery).await;
            println!(
                "{}: {:.0} per minute ({} of {} healthy done, {:.1} requests per session, backlog {}, {:.1} s)",
                case.label, o.per_minute, o.healthy_done, case.healthy, o.requests_per_session, o.backlog, o.wall
            );
            let change = match base {
                Some(b) if case.hanging > 0 => format!(
                    " ({:+.0} % against no hanging provider)",
                    (o.per_minute / b - 1.0) * 100.0
                ),
                _ => String::new(),
            };
            if case.hanging == 0 && case.bulkheads != Bulkheads::SEQUENTIAL {
                base = Some(o.per_minute);
            }
            table.push_str(&format!(
                "| {} | {} | {} | **{:.0}**{change} | {:.1} | {} | {:.1} |\n",
                case.label,
                case.healthy + case.hanging,
                o.healthy_done,
                o.per_minute,
                o.requests_per_session,
                o.backlog,
                o.wall
            ));
        }
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let section = format!(
            "Run of {} at commit {commit}: `BENCH_EVALUATOR_STEPS=throughput cargo bench -p handover-tests \
             --bench evaluator` ({} build), {} ms per DynamoDB request, {} ms per delivery.\n\n{table}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            if cfg!(debug_assertions) { "dev" } else { "release" },
            latency.as_millis(),
            delivery.as_millis()
        );
        println!("\n{section}");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/performance.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (start, end) = (
            "<!-- evaluator-throughput:start -->",
            "<!-- evaluator-throughput:end -->",
        );
        if let (Some(a), Some(b)) = (doc.find(start), doc.find(end)) {
            let doc = format!("{}{start}\n{section}{}", &doc[..a], &doc[b..]);
            std::fs::write(path, doc).unwrap();
        } else {
            println!("(no markers in docs/performance.md: table not written)");
        }
    }
}

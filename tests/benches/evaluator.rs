//! One evaluator run over many bots and waiting sessions on the emulator: DynamoDB requests
//! per operation and wall time; and the cost of one availability evaluation. Figures go to
//! docs/performance.md. Sizes: `BENCH_BOTS` (default 10000), `BENCH_SESSIONS` (default 10000),
//! `BENCH_DUE_PERCENT` (share of sessions whose nudge is due this minute, default 10).
//! Writes its tables between the `evaluator-bench` markers of docs/performance.md, with the
//! command, date and commit (`BENCH_NO_WRITE=1` only prints).

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Duration;
use handover::app::evaluator;
use handover::config::{Bot, BotConfig};
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
            std::time::Instant::now() + std::time::Duration::from_secs(3600),
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
            std::time::Instant::now() + std::time::Duration::from_secs(3600),
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

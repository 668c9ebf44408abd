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
        let client = env.dynamo().clone();
        let table = env.table().to_owned();
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

/// Due sessions per minute in one invocation, with DynamoDB and delivery latency injected: the
/// evaluator's own code over an in-memory store with DynamoDB's semantics (`MemoryStore`)
/// behind a decorator that waits `BENCH_LATENCY_MS` on every store call (each is one DynamoDB
/// request in `DynamoStore`), and receivers that answer after `BENCH_DELIVERY_MS`.
mod throughput {
    use super::*;
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use handover::app::AppContext;
    use handover::app::evaluator::Bulkheads;
    use handover::config::BotConfig;
    use handover::domain::{Session, TranscriptEntry};
    use handover::secrets::{Secret, SecretError, SecretSource};
    use handover::store::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration as StdDuration;

    /// The in-memory store with a network's latency on every call.
    struct Delayed {
        inner: Arc<MemoryStore>,
        delay: StdDuration,
        calls: AtomicUsize,
    }

    impl Delayed {
        async fn wait(&self) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.delay).await;
        }
    }

    #[async_trait]
    impl SessionStore for Delayed {
        async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>> {
            self.wait().await;
            self.inner.load_session(key).await
        }
        async fn commit(&self, commit: Commit<'_>) -> StoreResult<u64> {
            self.wait().await;
            self.inner.commit(commit).await
        }
        async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>> {
            self.wait().await;
            self.inner.seen(key, scope, event_id).await
        }
        async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>> {
            self.wait().await;
            self.inner.transcript(key, through_seq).await
        }
        async fn find_conversation(
            &self,
            bot_id: &str,
            provider_id: &str,
            conversation_id: &str,
        ) -> StoreResult<Option<ConversationLink>> {
            self.wait().await;
            self.inner.find_conversation(bot_id, provider_id, conversation_id).await
        }
        async fn put_start_intent(
            &self,
            key: &SessionKey,
            intent: &StartIntent,
            links: &[(String, String, String)],
            expires_at: DateTime<Utc>,
        ) -> StoreResult<()> {
            self.wait().await;
            self.inner.put_start_intent(key, intent, links, expires_at).await
        }
        async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>> {
            self.wait().await;
            self.inner.start_intents(key).await
        }
        async fn record_start_answer(
            &self,
            key: &SessionKey,
            intent: &StartIntent,
            conversation_id: &str,
        ) -> StoreResult<()> {
            self.wait().await;
            self.inner.record_start_answer(key, intent, conversation_id).await
        }
        async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>> {
            self.wait().await;
            self.inner.cancel_start(key).await
        }
        async fn clear_start(
            &self,
            key: &SessionKey,
            intent: &StartIntent,
            leftover: StartLeftover,
        ) -> StoreResult<()> {
            self.wait().await;
            self.inner.clear_start(key, intent, leftover).await
        }
        async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, expires_at: DateTime<Utc>) -> StoreResult<()> {
            self.wait().await;
            self.inner.hold_early(key, event, expires_at).await
        }
        async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>> {
            self.wait().await;
            self.inner.early_events(key).await
        }
        async fn drop_early(&self, key: &SessionKey, provider_id: &str, event_id: &str) -> StoreResult<()> {
            self.wait().await;
            self.inner.drop_early(key, provider_id, event_id).await
        }
        async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize> {
            self.wait().await;
            self.inner.erase_session(key).await
        }
    }

    #[async_trait]
    impl OutboxStore for Delayed {
        async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>> {
            self.wait().await;
            self.inner.outbox(key).await
        }
        async fn claim_outbox(&self, item: &OutboxItem, lease_until: DateTime<Utc>) -> StoreResult<bool> {
            self.wait().await;
            self.inner.claim_outbox(item, lease_until).await
        }
        async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()> {
            self.wait().await;
            self.inner.outbox_delivered(item).await
        }
        async fn put_outbox(&self, item: &OutboxItem, expires_at: DateTime<Utc>) -> StoreResult<()> {
            self.wait().await;
            self.inner.put_outbox(item, expires_at).await
        }
        async fn outbox_retry(&self, item: &OutboxItem, next_at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
            self.wait().await;
            self.inner.outbox_retry(item, next_at, error).await
        }
        async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<bool> {
            self.wait().await;
            self.inner.outbox_gave_up(item, error).await
        }
        async fn outbox_requeue(&self, key: &SessionKey, seq: u64, at: DateTime<Utc>) -> StoreResult<Requeue> {
            self.wait().await;
            self.inner.outbox_requeue(key, seq, at).await
        }
    }

    #[async_trait]
    impl DueIndex for Delayed {
        fn due_shards_to_read(&self) -> u32 {
            self.inner.due_shards_to_read()
        }
        async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<DueBatch> {
            self.wait().await;
            self.inner.due(shard, now, limit).await
        }
    }

    #[async_trait]
    impl HealthStore for Delayed {
        async fn intake_state(
            &self,
            bot_id: &str,
            providers: &[String],
        ) -> StoreResult<(Vec<ProviderHealth>, Option<StoredAvailability>)> {
            self.wait().await;
            self.inner.intake_state(bot_id, providers).await
        }
        async fn put_availability(&self, items: &[(String, StoredAvailability)]) -> StoreResult<()> {
            self.wait().await;
            self.inner.put_availability(items).await
        }
        async fn record_failure(
            &self,
            bot_id: &str,
            provider_id: &str,
            threshold: u32,
            open_until: DateTime<Utc>,
        ) -> StoreResult<ProviderHealth> {
            self.wait().await;
            self.inner
                .record_failure(bot_id, provider_id, threshold, open_until)
                .await
        }
        async fn record_success(&self, bot_id: &str, provider_id: &str) -> StoreResult<()> {
            self.wait().await;
            self.inner.record_success(bot_id, provider_id).await
        }
    }

    #[async_trait]
    impl BotStore for Delayed {
        async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>> {
            self.wait().await;
            self.inner.get_bot(bot_id).await
        }
        async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64> {
            self.wait().await;
            self.inner.put_bot(config).await
        }
        async fn list_bots(&self) -> StoreResult<Vec<String>> {
            self.wait().await;
            self.inner.list_bots().await
        }
        async fn get_bots(&self, bot_ids: &[String]) -> StoreResult<Vec<(BotConfig, Option<StoredAvailability>)>> {
            self.wait().await;
            self.inner.get_bots(bot_ids).await
        }
    }

    #[async_trait]
    impl StatsStore for Delayed {
        async fn record_wait(
            &self,
            bot_id: &str,
            queue: &str,
            at: DateTime<Utc>,
            waited_seconds: u64,
        ) -> StoreResult<()> {
            self.wait().await;
            self.inner.record_wait(bot_id, queue, at, waited_seconds).await
        }
        async fn typical_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>) -> StoreResult<Option<u64>> {
            self.wait().await;
            self.inner.typical_wait(bot_id, queue, at).await
        }
    }

    /// Every secret the bench's bots name.
    struct Fixed;

    #[async_trait]
    impl SecretSource for Fixed {
        async fn get(&self, _name: &str) -> Result<Secret, SecretError> {
            Secret::from_json(r#"{"signingSecret":"x"}"#)
        }
    }

    /// Receivers: `/bot` (the healthy bots' platform: arrivals noted), `/hang/...` (answers
    /// after the client has given up), anything else after `delivery`.
    async fn receivers(delivery: StdDuration, arrivals: Arc<Mutex<Vec<Instant>>>) -> String {
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let arrivals = arrivals.clone();
            async move {
                let path = uri.path();
                if path.starts_with("/hang/") {
                    tokio::time::sleep(StdDuration::from_secs(60)).await;
                } else {
                    if path == "/bot" {
                        arrivals.lock().unwrap().push(Instant::now());
                    }
                    tokio::time::sleep(delivery).await;
                }
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }

    #[derive(Clone, Copy)]
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
        cpu_ms_per_session: f64,
        peak_rss_mb: f64,
        rss_before_mb: f64,
    }

    fn waiting_session(bot_id: &str, session_id: &str, now: DateTime<Utc>, hang: bool) -> Session {
        let mut session = Session::new(bot_id, session_id, now - Duration::minutes(5));
        session.state = State::Waiting;
        session.handover = Some(Handover {
            id: format!("h-{session_id}"),
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
        let at = now - Duration::seconds(10);
        if hang {
            // Ends the handover: a call to the provider, which hangs.
            session.timers.no_agent_at = Some(at);
        } else {
            // A nudge: one delivery to the bot platform.
            session.timers.still_waiting_at = Some(at);
            session.timers.no_agent_at = Some(now + Duration::minutes(55));
        }
        session
    }

    /// The process's CPU time (user + system), from /proc (100 ticks a second).
    fn cpu_seconds() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// A field of /proc/self/status in MiB.
    fn status_mb(field: &str) -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// Healthy sessions are spread over bots with a fast provider (a nudge each); hanging ones
    /// sit at one bot whose provider answers only after the client has given up (their
    /// no-agent timer ends the handover, which calls the provider).
    async fn one(case: &Case, latency: StdDuration, delivery: StdDuration) -> Outcome {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let url = receivers(delivery, arrivals.clone()).await;
        let inner = Arc::new(MemoryStore::new());
        let now = chrono::Utc::now();
        let bots = 50;
        for b in 0..bots {
            let config = BotConfig::parse(&config_yaml(&format!("tp-{b:03}"), &url, "shared")).unwrap();
            inner.put_bot(&config).await.unwrap();
        }
        let seed = |session: Session| {
            let inner = inner.clone();
            async move {
                inner
                    .commit(Commit {
                        session: &session,
                        expected_version: None,
                        entries: &[],
                        outbox: &[],
                        seen: None,
                        links: &[],
                        expires_at: now + Duration::days(1),
                        intent: None,
                    })
                    .await
                    .unwrap();
            }
        };
        for i in 0..case.healthy {
            seed(waiting_session(
                &format!("tp-{:03}", i % bots),
                &format!("s-{i:05}"),
                now,
                false,
            ))
            .await;
        }
        if case.hanging > 0 {
            // The hanging bot's platform is a path of its own, so its messages are not counted.
            let config = config_yaml("tp-hang", &format!("{url}/hang"), "shared")
                .replace(&format!("'{url}/hang/bot'"), &format!("'{url}/hangbot'"));
            inner.put_bot(&BotConfig::parse(&config).unwrap()).await.unwrap();
            for i in 0..case.hanging {
                seed(waiting_session("tp-hang", &format!("h-{i:05}"), now, true)).await;
            }
        }
        let store = Arc::new(Delayed {
            inner,
            delay: latency,
            calls: AtomicUsize::new(0),
        });
        let ctx = AppContext::new(store.clone(), Arc::new(Fixed), Arc::new(handover::clock::SystemClock));
        let rss_before_mb = status_mb("VmRSS:");
        // Resets the peak (VmHWM) to the current size, so the peak is this run's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let mut report = evaluator::Report::default();
        let cpu = cpu_seconds();
        let started = Instant::now();
        evaluator::process_due_with(&ctx, now, started + evaluator::RUN_BUDGET, case.bulkheads, &mut report).await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        let peak_rss_mb = status_mb("VmHWM:");
        let arrivals = arrivals.lock().unwrap().clone();
        let healthy_done = arrivals.len();
        // The healthy work is done when its last delivery is answered.
        let healthy_wall = arrivals
            .iter()
            .max()
            .map_or(wall, |t| (t.duration_since(started) + delivery).as_secs_f64());
        Outcome {
            per_minute: healthy_done as f64 / healthy_wall * 60.0,
            healthy_done,
            requests_per_session: store.calls.load(Ordering::Relaxed) as f64 / f64::from(report.sessions.max(1)),
            backlog: report.backlog,
            wall,
            cpu_ms_per_session: cpu * 1000.0 / f64::from(report.sessions.max(1)),
            peak_rss_mb,
            rss_before_mb,
        }
    }

    pub async fn run() {
        handover::url_policy::allow_local_urls();
        let latency = StdDuration::from_millis(env_usize("BENCH_LATENCY_MS", 10) as u64);
        let delivery = StdDuration::from_millis(env_usize("BENCH_DELIVERY_MS", 200) as u64);
        let sessions = env_usize("BENCH_TP_SESSIONS", 10_000);
        let sequential = env_usize("BENCH_TP_SEQUENTIAL", 40);
        let now = Bulkheads::default();
        let before = Bulkheads {
            global: 64,
            per_provider: 8,
            per_platform: 16,
        };
        let label_now: &'static str = Box::leak(
            format!(
                "this code ({} in flight, {} per provider, {} per platform)",
                now.global, now.per_provider, now.per_platform
            )
            .into_boxed_str(),
        );
        let cases = [
            Case {
                label: "one at a time (before the bulkheads)",
                bulkheads: Bulkheads::SEQUENTIAL,
                healthy: sequential,
                hanging: 0,
            },
            Case {
                label: "previous bounds (64 in flight, 8 per provider, 16 per platform)",
                bulkheads: before,
                healthy: sessions,
                hanging: 0,
            },
            Case {
                label: "previous bounds, 10 % of the sessions at a provider that hangs",
                bulkheads: before,
                healthy: sessions,
                hanging: sessions / 9,
            },
            Case {
                label: label_now,
                bulkheads: now,
                healthy: sessions,
                hanging: 0,
            },
            Case {
                label: "this code, 10 % of the sessions at a provider that hangs",
                bulkheads: now,
                healthy: sessions,
                hanging: sessions / 9,
            },
        ];
        let mut table = String::from(
            "| case | due sessions | healthy sessions done | due sessions per minute (healthy) | store calls (DynamoDB requests) per session | left for the next run | run wall time (s) | CPU per session (ms) | peak RSS (MiB; before the run) |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let mut base = None;
        for case in &cases {
            let o = one(case, latency, delivery).await;
            println!(
                "{}: {:.0} per minute ({} of {} healthy done, {:.1} requests per session, backlog {}, {:.1} s, {:.2} ms CPU per session, peak RSS {:.0} MiB)",
                case.label,
                o.per_minute,
                o.healthy_done,
                case.healthy,
                o.requests_per_session,
                o.backlog,
                o.wall,
                o.cpu_ms_per_session,
                o.peak_rss_mb
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
                "| {} | {} | {} | **{:.0}**{change} | {:.1} | {} | {:.1} | {:.2} | {:.0} ({:.0}) |\n",
                case.label,
                case.healthy + case.hanging,
                o.healthy_done,
                o.per_minute,
                o.requests_per_session,
                o.backlog,
                o.wall,
                o.cpu_ms_per_session,
                o.peak_rss_mb,
                o.rss_before_mb
            ));
        }
        let section = format!(
            "{} Built with the {} profile; {} ms per store call (one DynamoDB request each in `DynamoStore`), {} ms per delivery, `MemoryStore` behind the delay; one process on this machine's cores (not a 256 MB function's share); peak RSS is the whole process's (store and receivers included).\n\n{table}",
            doc_block::provenance(&format!(
                "BENCH_EVALUATOR_STEPS=throughput BENCH_TP_SESSIONS={sessions} cargo bench{} -p handover-tests --bench evaluator",
                if cfg!(debug_assertions) { " --profile dev" } else { "" }
            )),
            if cfg!(debug_assertions) {
                "dev"
            } else {
                "bench (optimised)"
            },
            latency.as_millis(),
            delivery.as_millis()
        );
        println!("\n{section}");
        if std::env::var_os("BENCH_NO_WRITE").is_none() {
            doc_block::write_block(&doc_block::doc_path("performance.md"), "evaluator-throughput", &section)
                .expect("docs/performance.md has the evaluator-throughput markers");
            eprintln!("wrote the evaluator-throughput block of docs/performance.md");
        }
    }
}

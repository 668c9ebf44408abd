//! One simulated world: the service (an `AppContext` on the faulty in-memory store, with the
//! models as its adapters), a bot platform sending the sessions' events, a contact center whose
//! agents join, write and close, and the evaluator's schedule. Everything runs on one thread
//! and on tokio's paused clock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use handover::app::{AppContext, bot_webhook, evaluator, local, provider_callback};
use handover::clock::Clock;
use handover::config::{BotConfig, Document};
use handover::delivery::RetryPolicy;
use handover::store::{BotStore, MemoryStore};
use serde_json::{Value, json};

use crate::models::{BotSide, Desk, Models};
use crate::store::FaultyStore;
use crate::{Model, Outcome};

/// What a run does: how many sessions, and how often each kind of fault strikes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sessions of one run, running at the same time.
    pub sessions: usize,
    /// Handovers each session asks for, one after the other (at most).
    pub handovers: u64,
    /// Per store call: a failure before it (half as often after it, on writes).
    pub store_fault: f64,
    /// Per store call: the invocation dies there.
    pub crash: f64,
    /// Per provider call: a 5xx before it, or a timeout after it was done.
    pub provider_fault: f64,
    /// Per relayed turn: the desk refuses it for good (a 400).
    pub refuse_turn: f64,
    /// Per start: the desk refuses the conversation (a 4xx).
    pub refuse_start: f64,
    /// Per start: the desk answers late, and its agent joins before the answer.
    pub early: f64,
    /// Per delivery to the bot platform: a 5xx before it, or a timeout after it.
    pub platform_fault: f64,
    /// Per callback or bot event: it is sent twice.
    pub duplicate: f64,
    /// Per handover request: the user cancels while the start is in flight.
    pub cancel_during_start: f64,
    /// Whether deliveries drain their lanes (false: the previous release's single pass).
    pub drain: bool,
    /// Which provider behaviour (by default each seed takes the next).
    pub model: Option<Model>,
    /// Keep the trace of the run.
    pub trace: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sessions: 4,
            handovers: 2,
            store_fault: 0.01,
            crash: 0.002,
            provider_fault: 0.06,
            refuse_turn: 0.04,
            refuse_start: 0.04,
            early: 0.25,
            platform_fault: 0.05,
            duplicate: 0.1,
            cancel_during_start: 0.08,
            drain: true,
            model: None,
            trace: false,
        }
    }
}

/// The bot of every world: native platform, one provider (of the run's model) and timeouts
/// short enough that a lifecycle fits in minutes of virtual time.
fn bot_config(model: Model) -> BotConfig {
    let provider = match model {
        Model::HandoverId => "    kind: webhook\n    url: https://desk.sim.invalid/events\n".to_owned(),
        Model::Embedded => "    kind: zendesk\n    appId: app\n    apiBaseUrl: https://desk.sim.invalid/sc\n    botIntegrationId: chatbot\n".to_owned(),
        Model::Created => "    kind: helpscout\n    mailboxes:\n      general: 85\n".to_owned(),
        Model::Polled => "    kind: genesys\n    region: mypurecloud.ie\n    integrationId: 5d1a3f2c-1111-4a4a-9b9b-0123456789ab\n"
            .to_owned(),
        Model::JoinAtStart => "    kind: sparkcentral\n    region: hootsuite\n    organizationId: \"900002\"\n    handoverMessage: One moment.\n    queueTopics:\n      general: Parcels\n"
            .to_owned(),
    };
    let yaml = format!(
        "botId: sim\nplatform:\n  kind: native\n  outboundUrl: https://bot.sim.invalid/events\n  secretRef: sim/platform\nproviders:\n  - id: desk\n{provider}    secretRef: sim/desk\nrouting:\n  - provider: desk\n    queue: general\ntimeouts: {{ noAgentSeconds: 300, stillWaitingEverySeconds: 120, agentIdleSeconds: 600 }}\n"
    );
    BotConfig::parse(&yaml).unwrap_or_else(|e| panic!("the simulator's bot for {model:?} is valid: {e}"))
}

pub const PLATFORM_SECRET: &[u8] = b"sim-platform-secret";

pub struct World {
    pub options: Options,
    pub model: Model,
    rng: Mutex<fastrand::Rng>,
    settling: AtomicBool,
    start: tokio::time::Instant,
    t0: DateTime<Utc>,
    trace: Mutex<Vec<String>>,
    fingerprint: AtomicU64,
    pub faults: Mutex<BTreeMap<&'static str, u64>>,
    /// When a fault touched each session (promptness is owed only on clean lanes).
    pub fault_times: Mutex<BTreeMap<String, Vec<DateTime<Utc>>>>,
    pub desk: Mutex<Desk>,
    pub bot: Mutex<BotSide>,
    /// The service's context. It holds the world (its clock and models do), so it is taken
    /// out when the run ends: otherwise every run's world, store and trace would stay in
    /// memory for the rest of the process.
    pub ctx: Mutex<Option<Arc<AppContext>>>,
    pub invocations: AtomicU64,
    pub lifecycles: AtomicU64,
    turns: AtomicU64,
    /// Starts of unknown outcome at a provider that names conversations only in its answer:
    /// counted by the service (`StartUnresolved`), never ended under a guessed id.
    pub unresolved: AtomicU64,
}

impl World {
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("rng").f64() < p
    }

    pub fn between(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        self.rng.lock().expect("rng").u64(lo..hi)
    }

    /// Waits a random number of virtual milliseconds in `lo..hi`.
    pub async fn pause_ms(&self, lo: u64, hi: u64) {
        let ms = self.between(lo, hi);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.start;
        self.t0 + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// Faults are injected until the run settles (then only the evaluator's schedule runs).
    pub fn faults_on(&self) -> bool {
        !self.settling.load(Ordering::Relaxed)
    }

    /// Adds a line to the trace (and to the run's fingerprint).
    pub fn note(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        let t = (self.now() - self.t0).num_milliseconds();
        // FNV-1a over every line, so two runs of a seed can be compared without keeping traces.
        let mut h = self.fingerprint.load(Ordering::Relaxed) ^ 0xcbf2_9ce4_8422_2325;
        for b in t.to_le_bytes().iter().chain(line.as_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.fingerprint.store(h, Ordering::Relaxed);
        if self.options.trace {
            self.trace.lock().expect("trace").push(format!("{:>9} ms  {line}", t));
        }
    }

    pub fn fault(&self, kind: &'static str, session: Option<&str>, detail: &str) {
        *self.faults.lock().expect("faults").entry(kind).or_default() += 1;
        if let Some(s) = session {
            self.fault_times
                .lock()
                .expect("fault times")
                .entry(s.to_owned())
                .or_default()
                .push(self.now());
        }
        self.note(format!("FAULT {kind}: {detail} [{}]", session.unwrap_or("-")));
    }

    fn ctx(&self) -> Arc<AppContext> {
        self.ctx
            .lock()
            .expect("ctx")
            .clone()
            .expect("context set before the world runs")
    }
}

struct SimClock(Arc<World>);

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// Counts the service's `StartUnresolved` metric (the only metric a check needs).
struct Metrics(Arc<World>);

impl handover::metrics::Sink for Metrics {
    fn write(&self, line: &str) {
        if line.contains("\"StartUnresolved\"")
            && let Ok(v) = serde_json::from_str::<Value>(line)
        {
            let n = v["StartUnresolved"].as_f64().unwrap_or(0.0);
            self.0.unresolved.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// The secrets every world's bot names: the platform's signing secret, and anything for the
/// desk (the models need none).
struct Secrets;

#[async_trait::async_trait]
impl handover::secrets::SecretSource for Secrets {
    async fn get(&self, _name: &str) -> Result<handover::secrets::Secret, handover::secrets::SecretError> {
        handover::secrets::Secret::from_json(r#"{"signingSecret":"sim-platform-secret"}"#)
    }
}

pub fn run(seed: u64, options: &Options) -> Outcome {
    // The engine's own random draws (retry jitter, the evaluator's starting point) come from
    // this thread's generator: seeded, they repeat too.
    fastrand::seed(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(run_world(seed, options.clone()))
}

async fn run_world(seed: u64, options: Options) -> Outcome {
    let model = options.model.unwrap_or_else(|| Model::of_seed(seed));
    let world = Arc::new(World {
        model,
        rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        settling: AtomicBool::new(false),
        start: tokio::time::Instant::now(),
        t0: DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z")
            .expect("a valid time")
            .to_utc(),
        trace: Mutex::new(Vec::new()),
        fingerprint: AtomicU64::new(0),
        faults: Mutex::new(BTreeMap::new()),
        fault_times: Mutex::new(BTreeMap::new()),
        desk: Mutex::new(Desk::default()),
        bot: Mutex::new(BotSide::default()),
        ctx: Mutex::new(None),
        invocations: AtomicU64::new(0),
        lifecycles: AtomicU64::new(0),
        turns: AtomicU64::new(0),
        unresolved: AtomicU64::new(0),
        options,
    });
    let memory = Arc::new(MemoryStore::new());
    memory
        .put_bot(&bot_config(model))
        .await
        .expect("the in-memory store takes the bot");
    let store = Arc::new(FaultyStore {
        inner: memory.clone(),
        world: world.clone(),
    });
    let ctx = AppContext::new(store, Arc::new(Secrets), Arc::new(SimClock(world.clone())))
        .with_retry(RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(120),
            max_attempts: 12,
            lease: Duration::from_secs(30),
        })
        .with_drain(world.options.drain)
        .with_metrics(Arc::new(Metrics(world.clone())))
        .with_models(Arc::new(Models(world.clone())));
    *world.ctx.lock().expect("ctx") = Some(Arc::new(ctx));
    world.note(format!("world seed={seed} model={model:?}"));

    let evaluator = tokio::spawn(evaluator_schedule(world.clone()));
    let sessions: Vec<_> = (0..world.options.sessions)
        .map(|n| tokio::spawn(session_script(world.clone(), n)))
        .collect();
    for s in sessions {
        let _ = s.await;
    }
    // Settle: no more faults, and an hour of the evaluator's schedule for the timers, retries
    // and left-behind starts to finish what the run began.
    world.settling.store(true, Ordering::Relaxed);
    world.note("settling");
    tokio::time::sleep(Duration::from_secs(60 * 60)).await;
    evaluator.abort();

    let mut transcripts = BTreeMap::new();
    for (session, _) in memory.sessions() {
        let key = handover::store::SessionKey::new(&session.bot_id, &session.session_id);
        let entries = handover::store::SessionStore::transcript(memory.as_ref(), &key, None)
            .await
            .unwrap_or_default();
        transcripts.insert(session.session_id, entries);
    }
    let violations = crate::check::all(&world, &memory, &transcripts);
    let faults = world.faults.lock().expect("faults").clone();
    let latencies_ms = crate::check::latencies(&world);
    // Break the cycle world → context → (clock, models) → world.
    world.ctx.lock().expect("ctx").take();
    Outcome {
        seed,
        model: Some(model),
        lifecycles: world.lifecycles.load(Ordering::Relaxed),
        invocations: world.invocations.load(Ordering::Relaxed),
        faults,
        violations,
        trace: std::mem::take(&mut *world.trace.lock().expect("trace")),
        fingerprint: world.fingerprint.load(Ordering::Relaxed),
        latencies_ms,
    }
}

/// The evaluator's schedule: one run a minute, killed like a Lambda past its timeout.
async fn evaluator_schedule(world: Arc<World>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        world.invocations.fetch_add(1, Ordering::Relaxed);
        let ctx = world.ctx();
        let now = world.now();
        match tokio::time::timeout(Duration::from_secs(60), evaluator::run(&ctx, now)).await {
            Ok(report) => world.note(format!(
                "evaluator: timers {} outbox {} starts {}",
                report.timers_fired, report.delivered, report.starts_settled
            )),
            Err(_) => world.note("evaluator killed"),
        }
    }
}

fn body_json(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes: &[u8] = match resp.body() {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => b"",
    };
    (status, serde_json::from_slice(bytes).unwrap_or(Value::Null))
}

/// One invocation of the bot-events function, as the bot platform makes it; `None` when the
/// invocation was killed before it answered.
async fn invoke_bot(world: &Arc<World>, body: &Value) -> Option<(u16, Value)> {
    world.invocations.fetch_add(1, Ordering::Relaxed);
    let bytes = serde_json::to_vec(body).expect("JSON");
    // The platform's clock is off by up to a minute (inside the five-minute window).
    let skew = world.between(0, 120) as i64 - 60;
    let at = world.now().timestamp() + skew;
    let mut headers: Vec<(String, String)> = handover::signing::headers(PLATFORM_SECRET, at, &bytes)
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("host".into(), "api.sim.invalid".into()));
    let req = local::to_request(&local::apigw_v2_event("POST", "/v1/bots/sim/events", &headers, &bytes))
        .expect("a valid event");
    let ctx = world.ctx();
    let session = body["sessionId"].as_str().unwrap_or("-").to_owned();
    let handled = INVOKED_FOR.scope(
        session,
        tokio::time::timeout(Duration::from_secs(25), bot_webhook::handle(&ctx, req)),
    );
    match handled.await {
        Ok(resp) => Some(body_json(resp)),
        Err(_) => None,
    }
}

tokio::task_local! {
    /// The session an invocation works for, as the caller knows it: a store fault in a call
    /// that names no session (the bot, provider health, a conversation's link) still touches
    /// that session's lanes, and the promptness check must know.
    pub static INVOKED_FOR: String;
}

/// Sends a bot event until it is answered other than 5xx (the platform retries what was not
/// answered), up to six tries; sometimes sends a copy at once.
pub async fn bot_event(world: &Arc<World>, body: Value) -> Option<(u16, Value)> {
    if world.faults_on() && world.chance(world.options.duplicate) {
        let (w, b) = (world.clone(), body.clone());
        world.fault("duplicate bot event", body["sessionId"].as_str(), "sent twice");
        if body["type"] == "handover.request" {
            let id = body["id"].as_str().unwrap_or("?").to_owned();
            world.bot.lock().expect("bot").requests_sent_twice.insert(id);
        }
        tokio::spawn(async move {
            w.pause_ms(0, 400).await;
            invoke_bot(&w, &b).await
        });
    }
    for attempt in 0..6u32 {
        let answer = invoke_bot(world, &body).await;
        if body["type"] == "handover.request" {
            let id = body["id"].as_str().unwrap_or("?").to_owned();
            let at = world.now();
            world
                .bot
                .lock()
                .expect("bot")
                .request_answers
                .entry(id)
                .or_default()
                .push(at);
        }
        world.note(format!(
            "bot event {} {} -> {}",
            body["type"].as_str().unwrap_or("?"),
            body["id"].as_str().unwrap_or("?"),
            answer.as_ref().map_or("killed".to_owned(), |(s, v)| format!("{s} {v}"))
        ));
        match answer {
            Some((s, v)) if s < 500 => return Some((s, v)),
            _ => tokio::time::sleep(Duration::from_secs(2u64 << attempt)).await,
        }
    }
    None
}

/// One invocation of the provider-callback function; `None` when it was killed.
async fn invoke_callback(world: &Arc<World>, body: &Value) -> Option<(u16, Value)> {
    world.invocations.fetch_add(1, Ordering::Relaxed);
    let bytes = serde_json::to_vec(body).expect("JSON");
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("host".to_owned(), "api.sim.invalid".to_owned()),
    ];
    let req = local::to_request(&local::apigw_v2_event(
        "POST",
        "/v1/bots/sim/providers/desk/callback",
        &headers,
        &bytes,
    ))
    .expect("a valid callback");
    let ctx = world.ctx();
    let conversation = body["events"][0]["conversationId"].as_str().unwrap_or("-");
    let session = world
        .desk
        .lock()
        .expect("desk")
        .conversations
        .get(conversation)
        .map_or_else(|| "-".to_owned(), |c| c.session.clone());
    let handled = INVOKED_FOR.scope(
        session,
        tokio::time::timeout(Duration::from_secs(25), provider_callback::handle(&ctx, req)),
    );
    match handled.await {
        Ok(resp) => Some(body_json(resp)),
        Err(_) => None,
    }
}

/// Posts one event of the contact center as its webhooks do: retried on anything but a 2xx or
/// 4xx answer, with backoff, for about a minute; sometimes twice at once.
pub async fn callback(world: Arc<World>, conversation: String, event: Value) {
    let body = json!({ "events": [event] });
    if world.faults_on() && world.chance(world.options.duplicate) {
        let (w, b) = (world.clone(), body.clone());
        world.fault("duplicate callback", None, &conversation);
        tokio::spawn(async move {
            w.pause_ms(0, 1500).await;
            invoke_callback(&w, &b).await
        });
    }
    let sent_at = world.now();
    for attempt in 0..6u32 {
        let answer = invoke_callback(&world, &body).await;
        world.note(format!(
            "callback {} {} -> {}",
            event["kind"].as_str().unwrap_or("?"),
            event["eventId"].as_str().unwrap_or("?"),
            answer.as_ref().map_or("killed".to_owned(), |(s, v)| format!("{s} {v}"))
        ));
        match answer {
            Some((s, v)) if s < 500 => {
                let mut desk = world.desk.lock().expect("desk");
                let ignored = v["ignored"].as_u64().unwrap_or(0) > 0;
                let held = v["held"].as_u64().unwrap_or(0) > 0;
                desk.answered(&conversation, &event, sent_at, world.now(), s, ignored, held);
                return;
            }
            _ => tokio::time::sleep(Duration::from_secs(1u64 << attempt)).await,
        }
    }
}

/// A user's session: a few turns with the bot, then one or more handovers.
async fn session_script(world: Arc<World>, n: usize) {
    let session = format!("s{n}");
    world.pause_ms(0, 20_000).await;
    let handovers = world.between(1, world.options.handovers + 1);
    for h in 0..handovers {
        if world.chance(0.5) {
            user_turn(&world, &session).await;
            world.pause_ms(1_000, 10_000).await;
        }
        lifecycle(&world, &session, h).await;
        world.pause_ms(5_000, 60_000).await;
    }
}

async fn user_turn(world: &Arc<World>, session: &str) {
    let k = world.turns.fetch_add(1, Ordering::Relaxed);
    let text = format!("user {session} turn {k}");
    let sent_at = world.now();
    let starting = world.bot.lock().expect("bot").starting.contains_key(session);
    world
        .bot
        .lock()
        .expect("bot")
        .turns
        .insert(text.clone(), (session.to_owned(), sent_at, starting));
    let body = json!({
        "id": format!("m-{session}-{k}"), "type": "message", "sessionId": session,
        "message": { "actor": "user", "text": text }
    });
    bot_event(world, body).await;
}

async fn lifecycle(world: &Arc<World>, session: &str, h: u64) {
    world.lifecycles.fetch_add(1, Ordering::Relaxed);
    let mut body = json!({
        "id": format!("req-{session}-{h}"), "type": "handover.request", "sessionId": session,
        "handover": { "trigger": "explicit_request" }
    });
    if matches!(world.model, Model::Embedded | Model::JoinAtStart) {
        let id = format!("conv-{session}-{h}");
        world.bot.lock().expect("bot").embedded_ids.insert(id.clone());
        body["handover"]["providerConversationId"] = json!(id);
    }
    world
        .bot
        .lock()
        .expect("bot")
        .starting
        .insert(session.to_owned(), world.now());
    let mut cancelled_during_start = false;
    if world.faults_on() && world.chance(world.options.cancel_during_start) {
        cancelled_during_start = true;
        world.fault("cancel during start", Some(session), session);
        let (w, s) = (world.clone(), session.to_owned());
        tokio::spawn(async move {
            w.pause_ms(0, 1_500).await;
            let sent = w.now();
            let answer = bot_event(
                &w,
                json!({"id": format!("cancel-start-{s}-{h}"), "type": "handover.cancel", "sessionId": s}),
            )
            .await;
            let at = w.now();
            w.bot
                .lock()
                .expect("bot")
                .cancel_answers
                .push(crate::models::CancelAnswer {
                    session: s,
                    lifecycle: h,
                    sent_at: sent,
                    answered_at: at,
                    status: answer.map(|a| a.0),
                });
        });
    }
    let answer = bot_event(world, body).await;
    world.bot.lock().expect("bot").starting.remove(session);
    let Some((200, answer)) = answer else {
        return;
    };
    let Some(handover_id) = answer["handoverId"].as_str().map(str::to_owned) else {
        return;
    };
    if answer["outcome"] != "opened" {
        return;
    }
    world.bot.lock().expect("bot").opened.insert(
        handover_id.clone(),
        crate::models::Opened {
            session: session.to_owned(),
            lifecycle: h,
            at: world.now(),
            cancelled_during_start,
        },
    );
    // The conversation: the user writes now and then (sometimes twice in quick succession)
    // until the handover ends, or cancels.
    let mut turns = 0;
    let until = world.now() + chrono::Duration::minutes(45);
    while world.now() < until {
        if world.bot.lock().expect("bot").ended.contains_key(&handover_id) {
            return;
        }
        world.pause_ms(5_000, 90_000).await;
        if turns >= 6 {
            continue;
        }
        turns += 1;
        if world.chance(0.04) {
            bot_event(
                world,
                json!({"id": format!("cancel-{session}-{h}-{turns}"), "type": "handover.cancel", "sessionId": session}),
            )
            .await;
            continue;
        }
        if world.chance(0.3) {
            let (w, s) = (world.clone(), session.to_owned());
            tokio::spawn(async move {
                w.pause_ms(100, 800).await;
                user_turn(&w, &s).await;
            });
        }
        user_turn(world, session).await;
    }
}

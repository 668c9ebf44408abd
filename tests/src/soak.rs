//! The soak: many concurrent sessions through random lifecycles while faults are injected
//! everywhere a production deployment meets them, then a check of the promises a handover
//! service makes: nothing accepted lost, nothing duplicated, nothing out of order, every
//! handover ended with a reason, no conversation left open at the provider, nobody left waiting.
//!
//! The service runs in-process (the handlers `handover serve` and the Lambda functions run)
//! on the DynamoDB emulator with the manual clock. The bot platform and the contact center
//! (the generic webhook provider) are small HTTP servers of this module, so they can fail the
//! way real ones do: 5xx, 429 with `Retry-After`, a connection reset, a hang past the client
//! timeout (after processing the request, so the retry is a duplicate the receiver must drop).
//! DynamoDB requests fail through an SDK interceptor; a failpoint makes the function "crash"
//! between a commit and its delivery. Callbacks are sent twice (also concurrently), out of
//! order, and late. The kill switch is flipped while sessions run.
//!
//! A seed fixes every random choice of the schedule (lifecycles, which request gets which
//! fault); thread timing still varies from run to run, so two runs with one seed meet the same
//! faults in nearly, not exactly, the same places. Run it with `make soak` (docs/reliability.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use handover::app::{AppContext, bot_webhook, evaluator, provider_callback};
use handover::delivery::RetryPolicy;
use handover::domain::State;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{TestEnv, emulator_sdk, response_json};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub sessions: usize,
    /// Sessions running at the same time.
    pub concurrency: usize,
    /// Chance that a request to the bot platform or the provider, or a DynamoDB request, fails.
    pub fault_rate: f64,
    /// Chance that a failing HTTP request hangs past the client timeout (slow: kept rare).
    pub hang_share: f64,
    /// Chance that a commit is followed by a crash (the failpoint).
    pub crash_rate: f64,
}

impl Config {
    /// The short run inside `cargo test`.
    pub fn short(seed: u64) -> Config {
        Config {
            seed,
            sessions: 24,
            concurrency: 8,
            fault_rate: 0.15,
            hang_share: 0.04,
            crash_rate: 0.05,
        }
    }
}

/// The fault kinds, as counted and printed.
pub const FAULT_KINDS: [&str; 12] = [
    "provider 5xx",
    "provider 429",
    "provider hang",
    "provider reset",
    "bot platform 503",
    "bot platform reset",
    "bot platform hang",
    "dynamodb request failed",
    "crash after commit",
    "duplicate callback",
    "out-of-order callback",
    "late callback",
];

/// What a run did and found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub seed: u64,
    pub duration: Duration,
    pub sessions: usize,
    pub handovers: usize,
    /// Sessions whose handover request never opened one within `OPEN_TRIES` tries (kill switch
    /// on, or the provider unavailable the whole time). Counted, bounded by the minimums, and
    /// each one named in `never_opened_lines`.
    pub never_opened: usize,
    pub never_opened_lines: Vec<String>,
    /// User and bot turns accepted while a handover was open, which the agent must see.
    pub to_agent: usize,
    /// Agent messages accepted, which the bot platform must get.
    pub to_bot: usize,
    pub requests_retried: u64,
    pub kill_switch_flips: u64,
    /// Handover requests answered `disabled` by the kill switch (the session stays with the bot
    /// and asks again).
    pub refused_by_kill_switch: u64,
    /// Handovers opened by a session that had been refused by the kill switch before: the
    /// switch was turned off again and the service saw it.
    pub opened_after_kill_switch: u64,
    /// Cancels the service applied (answered 200 with `user_cancelled`) and cancels it refused
    /// explicitly (422 `no_active_handover`: a timeout ended the handover first).
    pub cancels_applied: u64,
    pub cancels_refused: u64,
    /// Provider closes the service applied (answered 200, `applied: 1`).
    pub closes_applied: u64,
    /// End reasons the bot received, and how many were checked against the session's script.
    pub end_reasons: BTreeMap<String, u64>,
    pub end_reasons_checked: usize,
    /// Handovers whose end reason differs from what the script did.
    pub wrong_end_reason: usize,
    /// What the service itself reported through its metrics: deliveries retried and given up
    /// by direction, and failed provider calls.
    pub service_metrics: BTreeMap<String, u64>,
    pub faults: BTreeMap<&'static str, u64>,
    pub lost: usize,
    pub duplicated: usize,
    pub out_of_order: usize,
    pub unended: usize,
    pub left_open: usize,
    pub still_waiting: usize,
    /// One line per violation (at most a few of each kind are kept).
    pub violations: Vec<String>,
}

/// How a run ended: what the `soak` binary's exit code says (docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every invariant held and every minimum was met: exit 0.
    Passed,
    /// An invariant was violated (lost, duplicated, out of order, unended, left open, still
    /// waiting, a wrong end reason, an unexpected answer): exit 3, whatever the minimums.
    InvariantViolated,
    /// No invariant was violated, but the run did too little to mean anything: exit 4.
    TooLittleTested,
}

impl Verdict {
    /// The `soak` binary's exit code. 1 is left to `anyhow` and the shell, 2 is a bad argument,
    /// 101 a panic.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Passed => 0,
            Verdict::InvariantViolated => EXIT_INVARIANT_VIOLATED,
            Verdict::TooLittleTested => EXIT_TOO_LITTLE_TESTED,
        }
    }
}

/// Exit code of a bad command line.
pub const EXIT_BAD_ARGUMENT: i32 = 2;
/// Exit code of a run that found a violated invariant (what `make soak-broken` expects).
pub const EXIT_INVARIANT_VIOLATED: i32 = 3;
/// Exit code of a run that violated nothing but missed a minimum of what it must exercise.
pub const EXIT_TOO_LITTLE_TESTED: i32 = 4;

/// The service metrics the soak reads back (name and direction, when it has one).
const SERVICE_METRICS: [(&str, &str); 5] = [
    ("OutboxRetried", "bot"),
    ("OutboxRetried", "provider"),
    ("OutboxGaveUp", "bot"),
    ("OutboxGaveUp", "provider"),
    ("ProviderErrors", ""),
];

impl Report {
    /// No invariant was violated.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.unended == 0
            && self.left_open == 0
            && self.still_waiting == 0
            && self.wrong_end_reason == 0
            && self.violations.is_empty()
    }

    /// Each minimum of a meaningful run. A run of `sessions` sessions must open a handover in
    /// nearly all of them (at most one in ten may never open), carry turns both ways, meet
    /// every fault kind at the service, have the kill switch both refuse a request and let a
    /// later one through, have cancels and closes applied, and check every end reason.
    pub fn minimums(&self) -> Vec<Minimum> {
        let n = self.sessions as u64;
        let at_least = |what: &str, got: u64, min: u64| Minimum {
            what: what.to_owned(),
            got,
            bound: Bound::AtLeast(min),
        };
        let mut m = vec![
            at_least("handovers opened", self.handovers as u64, n - n / 10),
            Minimum {
                what: "sessions that never opened one".to_owned(),
                got: self.never_opened as u64,
                bound: Bound::AtMost(n / 10),
            },
            at_least("messages user/bot → agent", self.to_agent as u64, n / 2),
            at_least("messages agent → bot", self.to_bot as u64, n / 4),
            at_least("kill switch flips", self.kill_switch_flips, 2),
            at_least("requests refused by the kill switch", self.refused_by_kill_switch, 1),
            at_least(
                "handovers opened after a kill-switch refusal",
                self.opened_after_kill_switch,
                1,
            ),
            at_least("cancels applied", self.cancels_applied, 1),
            at_least("provider closes applied", self.closes_applied, 1),
            at_least(
                "end reasons checked against the script",
                self.end_reasons_checked as u64,
                self.handovers as u64,
            ),
        ];
        for kind in FAULT_KINDS {
            m.push(at_least(
                &format!("fault met by the service: {kind}"),
                self.faults.get(kind).copied().unwrap_or(0),
                1,
            ));
        }
        for (name, direction) in SERVICE_METRICS.iter().filter(|(n, _)| *n != "OutboxGaveUp") {
            let key = service_key(name, direction);
            m.push(at_least(
                &format!("service metric {key}"),
                self.service_metrics.get(&key).copied().unwrap_or(0),
                1,
            ));
        }
        m
    }

    /// The minimums not met, as lines.
    pub fn shortfalls(&self) -> Vec<String> {
        self.minimums()
            .iter()
            .filter(|m| !m.met())
            .map(|m| format!("{}: {}, {}", m.what, m.got, m.bound))
            .collect()
    }

    /// The minimums as a table: what, got, bound, met.
    pub fn minimums_table(&self) -> String {
        let mut t = String::from("| minimum | got | needed | met |\n|---|---|---|---|\n");
        for m in self.minimums() {
            let met = if m.met() { "yes" } else { "**no**" };
            t.push_str(&format!("| {} | {} | {} | {met} |\n", m.what, m.got, m.bound));
        }
        t
    }

    pub fn verdict(&self) -> Verdict {
        if !self.ok() {
            Verdict::InvariantViolated
        } else if !self.shortfalls().is_empty() {
            Verdict::TooLittleTested
        } else {
            Verdict::Passed
        }
    }

    /// The table `make soak` prints.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("| {k} | {v} |\n"));
        row("seed", self.seed.to_string());
        row("duration", format!("{:.1} s", self.duration.as_secs_f64()));
        row("sessions", self.sessions.to_string());
        row("handovers opened", self.handovers.to_string());
        row("sessions that never opened one", self.never_opened.to_string());
        row("messages user/bot → agent", self.to_agent.to_string());
        row("messages agent → bot", self.to_bot.to_string());
        row("requests retried by the callers", self.requests_retried.to_string());
        row("kill switch flips", self.kill_switch_flips.to_string());
        row(
            "handover requests refused by the kill switch",
            self.refused_by_kill_switch.to_string(),
        );
        row(
            "handovers opened after a kill-switch refusal",
            self.opened_after_kill_switch.to_string(),
        );
        row(
            "cancels applied / refused (no active handover)",
            format!("{} / {}", self.cancels_applied, self.cancels_refused),
        );
        row("provider closes applied", self.closes_applied.to_string());
        for (reason, count) in &self.end_reasons {
            row(&format!("ended: {reason}"), count.to_string());
        }
        for kind in FAULT_KINDS {
            row(
                &format!("fault met by the service: {kind}"),
                self.faults.get(kind).copied().unwrap_or(0).to_string(),
            );
        }
        for (name, direction) in SERVICE_METRICS {
            let key = service_key(name, direction);
            row(
                &format!("service metric {key}"),
                self.service_metrics.get(&key).copied().unwrap_or(0).to_string(),
            );
        }
        row("**lost**", self.lost.to_string());
        row("**duplicated**", self.duplicated.to_string());
        row("**out of order**", self.out_of_order.to_string());
        row("handovers without an end reason", self.unended.to_string());
        row("conversations left open at the provider", self.left_open.to_string());
        row(
            "sessions still waiting after the timeout",
            self.still_waiting.to_string(),
        );
        row(
            "end reasons that differ from the script",
            self.wrong_end_reason.to_string(),
        );
        format!("| | |\n|---|---|\n{t}")
    }

    fn violation(&mut self, line: String) {
        if self.violations.len() < 40 {
            self.violations.push(line);
        }
    }
}

/// One minimum a run must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimum {
    pub what: String,
    pub got: u64,
    pub bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    AtLeast(u64),
    AtMost(u64),
}

impl Minimum {
    pub fn met(&self) -> bool {
        match self.bound {
            Bound::AtLeast(min) => self.got >= min,
            Bound::AtMost(max) => self.got <= max,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::AtLeast(n) => write!(f, "at least {n}"),
            Bound::AtMost(n) => write!(f, "at most {n}"),
        }
    }
}

fn service_key(name: &str, direction: &str) -> String {
    if direction.is_empty() {
        name.to_owned()
    } else {
        format!("{name} ({direction})")
    }
}

// ---- fault plan -----------------------------------------------------------------------------

/// Decides faults from the seed and counts them. Faults stop in the final phases.
struct Faults {
    rng: Mutex<fastrand::Rng>,
    on: AtomicBool,
    rate: f64,
    hang_share: f64,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests seen so far per side: every other one of the first few fails with each kind in
    /// turn, so even a short run meets each of them; the rest fail at random.
    per_side: Mutex<[usize; 2]>,
}

enum HttpFault {
    Status(u16),
    Hang,
    Reset,
}

impl Faults {
    fn chance(&self, p: f64) -> bool {
        self.on.load(Ordering::SeqCst) && self.rng.lock().unwrap().f64() < p
    }

    fn count(&self, kind: &'static str) {
        *self.counts.lock().unwrap().entry(kind).or_default() += 1;
    }

    /// The fault this request gets, and its kind. Not counted here: the peer counts it once
    /// the service has met it.
    fn http(&self, side: Side) -> Option<(HttpFault, &'static str)> {
        if !self.on.load(Ordering::SeqCst) {
            return None;
        }
        let n = {
            let mut per_side = self.per_side.lock().unwrap();
            let slot = &mut per_side[side as usize];
            *slot += 1;
            *slot
        };
        // Every other one of a side's first requests fails, going through each kind once.
        let forced = match (side, n) {
            (Side::Provider, 2 | 4 | 6 | 8) => Some([0.0, 0.3, 0.6, 0.9][n / 2 - 1]),
            (Side::Bot, 2 | 4 | 6) => Some([0.0, 0.5, 0.9][n / 2 - 1]),
            _ => None,
        };
        let pick = match forced {
            Some(pick) => pick,
            None if self.chance(self.rate) => self.rng.lock().unwrap().f64(),
            None => return None,
        };
        let (fault, kind) = match side {
            Side::Provider if pick < self.hang_share => (HttpFault::Hang, "provider hang"),
            Side::Provider if pick < 0.4 => (HttpFault::Status(503), "provider 5xx"),
            Side::Provider if pick < 0.75 => (HttpFault::Status(429), "provider 429"),
            Side::Provider => (HttpFault::Reset, "provider reset"),
            Side::Bot if pick < self.hang_share => (HttpFault::Hang, "bot platform hang"),
            Side::Bot if pick < 0.7 => (HttpFault::Status(503), "bot platform 503"),
            Side::Bot => (HttpFault::Reset, "bot platform reset"),
        };
        Some((fault, kind))
    }
}

#[derive(Clone, Copy)]
enum Side {
    Provider = 0,
    Bot = 1,
}

/// Fails DynamoDB requests of the faulty function at random, before they are sent.
#[derive(Clone)]
struct DynamoFaults(Arc<Faults>);

impl std::fmt::Debug for DynamoFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamoFaults")
    }
}

impl Intercept for DynamoFaults {
    fn name(&self) -> &'static str {
        "DynamoFaults"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self.0.chance(self.0.rate / 3.0) {
            self.0.count("dynamodb request failed");
            return Err("injected: the request was throttled".into());
        }
        Ok(())
    }
}

// ---- the two HTTP peers ---------------------------------------------------------------------

/// A bot platform or a contact center: records what it accepted (by delivery id, so a
/// redelivery is the receiver's duplicate to drop) and fails as the plan says.
struct Peer {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
}

/// How long a hang lasts: longer than the function's client timeout (set in `run`).
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1500);

async fn peer(side: Side, faults: Arc<Faults>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let store = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (faults, store) = (faults.clone(), store.clone());
            tokio::spawn(async move { answer(sock, side, &faults, &store).await });
        }
    });
    Peer { url, accepted }
}

/// Answers one request, or fails it. A fault is counted when the service has met it: a
/// failing status once it was written to the service's connection, a reset once the service's
/// whole request was read and its connection dropped, a hang only if the service's client gave
/// up (closed the connection) before the late answer.
async fn answer(mut sock: TcpStream, side: Side, faults: &Faults, store: &Mutex<Vec<Value>>) {
    let Some(body) = read_request(&mut sock).await else {
        return;
    };
    let fault = faults.http(side);
    let record = || {
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            store.lock().unwrap().push(v);
        }
    };
    let reply = match fault {
        None => {
            record();
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                .to_owned()
        }
        Some((HttpFault::Status(code), kind)) => {
            let reply = format!(
                "HTTP/1.1 {code} Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            if sock.write_all(reply.as_bytes()).await.is_ok() && sock.shutdown().await.is_ok() {
                faults.count(kind);
            }
            return;
        }
        Some((HttpFault::Reset, kind)) => {
            faults.count(kind);
            return;
        }
        Some((HttpFault::Hang, kind)) => {
            // Processed, but the answer never comes in time: the retry is a duplicate.
            record();
            let mut rest = [0u8; 64];
            let gave_up =
                tokio::time::timeout(CLIENT_TIMEOUT + Duration::from_millis(1500), sock.read(&mut rest)).await;
            if matches!(gave_up, Ok(Ok(0) | Err(_))) {
                faults.count(kind);
            }
            return;
        }
    };
    let _ = sock.write_all(reply.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// One HTTP/1.1 request's body (the head is only read for its length).
async fn read_request(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + length].to_vec())
}

// ---- the sessions ---------------------------------------------------------------------------

/// What one session's script expects to see delivered.
#[derive(Debug, Default)]
struct Expected {
    /// handover id → the turns the agent must see, in order.
    to_agent: BTreeMap<String, Vec<String>>,
    /// The agent messages the bot platform must get, in order.
    to_bot: Vec<String>,
    /// Handovers this session opened.
    handovers: BTreeSet<String>,
    /// Conversations the provider itself closed (no end is sent back for those).
    closed_by_provider: BTreeSet<String>,
    /// handover id → the end reason the script's path must produce.
    end_reason: BTreeMap<String, &'static str>,
    /// A handover whose first agent event was a message (sent before the join), and that
    /// message's id: the service must have taken it as the join.
    joined_by_message: Option<(String, String)>,
}

struct World {
    env: TestEnv,
    ctx: Arc<AppContext>,
    bot_id: String,
    platform_secret: Vec<u8>,
    provider_secret: Vec<u8>,
    faults: Arc<Faults>,
    retried: AtomicU64,
    /// Callbacks kept back, sent again after everything else (late duplicates).
    late: Mutex<Vec<Value>>,
    /// Callbacks delivered so far: the first is duplicated and the second kept for late, so
    /// even a short run meets both; later ones are drawn at random.
    callbacks: AtomicU64,
    /// Whether a session has sent an agent message before the join yet (the first joining
    /// session does, so even a short run meets it).
    out_of_order_sent: AtomicBool,
}

impl World {
    /// A native event, retried like a bot platform retries (same id) until it is answered
    /// with anything but a 5xx or 429. Returns the answer.
    async fn event(&self, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/v1/bots/{}/events", self.bot_id);
        for _ in 0..60 {
            let req = self
                .env
                .request("POST", &path, &self.env.signed(&self.platform_secret, &bytes), &bytes);
            let (status, answer) = response_json(bot_webhook::handle(&self.ctx, req).await);
            if status < 500 && status != 429 {
                return (status, answer);
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (599, json!({"error": "gave up retrying"}))
    }

    /// A provider callback, retried like a contact center retries its webhooks.
    async fn callback(&self, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/v1/bots/{}/providers/desk/callback", self.bot_id);
        for _ in 0..60 {
            let req = self
                .env
                .request("POST", &path, &self.env.signed(&self.provider_secret, &bytes), &bytes);
            let (status, answer) = response_json(provider_callback::handle(&self.ctx, req).await);
            if status < 500 && status != 429 {
                return (status, answer);
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (599, json!({"error": "gave up retrying"}))
    }

    /// A callback as providers deliver them: sometimes twice (at once, or one kept for the
    /// end of the run). A duplicate counts as met when the service answered both copies 200.
    async fn deliver_callback(&self, rng: &mut fastrand::Rng, body: Value) -> (u16, Value) {
        let roll = match self.callbacks.fetch_add(1, Ordering::SeqCst) {
            0 => 0.0,
            1 => 0.12,
            _ => rng.f64(),
        };
        if roll < 0.1 {
            let (a, b) = tokio::join!(self.callback(&body), self.callback(&body));
            if a.0 == 200 && b.0 == 200 {
                self.faults.count("duplicate callback");
            }
            return if a.0 == 200 { a } else { b };
        }
        if roll < 0.15 {
            self.late.lock().unwrap().push(body.clone());
        }
        self.callback(&body).await
    }
}

fn cb(id: String, kind: &str, conversation: &str, text: Option<&str>) -> Value {
    let mut v = json!({"id": id, "type": kind, "conversationId": conversation, "agent": {"id": "a-1", "name": "Eva"}});
    if let Some(t) = text {
        v["message"] = json!({"text": t});
    }
    v
}

fn native(id: String, kind: &str, session: &str, actor: Option<(&str, &str)>) -> Value {
    let mut v = json!({"id": id, "type": kind, "sessionId": session});
    if let Some((actor, text)) = actor {
        v["message"] = json!({"actor": actor, "text": text});
    }
    v
}

/// How many times a session asks for a handover before it counts as never opened.
const OPEN_TRIES: usize = 40;

/// One session's random lifecycle. Sequential, as a bot platform sends one session's events.
async fn session(world: Arc<World>, n: usize, seed: u64, report: Arc<Mutex<Report>>) -> Expected {
    let mut rng = fastrand::Rng::with_seed(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let sid = format!("s-{n}");
    let mut exp = Expected::default();
    let mut seq = 0;
    let mut next = |p: &str| {
        seq += 1;
        format!("{sid}-{p}{seq}")
    };
    let fail = |line: String| report.lock().unwrap().violation(line);

    // The bot talks with the user.
    for _ in 0..rng.usize(1..3) {
        for actor in ["user", "bot"] {
            let id = next(&actor[..1]);
            let (status, answer) = world
                .event(&native(id.clone(), "message", &sid, Some((actor, &id))))
                .await;
            if status != 200 || answer["state"] != "bot" {
                fail(format!(
                    "{sid}: a {actor} turn with the bot answered {status}: {answer}"
                ));
            }
        }
    }
    // The user asks for an agent (the kill switch may answer for the contact center).
    let mut handover = None;
    let mut refused_by_kill_switch = false;
    let mut last = Value::Null;
    for _ in 0..OPEN_TRIES {
        let (status, answer) = world.event(&crate::handover_request(&next("h"), &sid)).await;
        if status != 200 {
            fail(format!("{sid}: handover request answered {status}: {answer}"));
            return exp;
        }
        if answer["outcome"] == "opened" {
            handover = answer["handoverId"].as_str().map(str::to_owned);
            break;
        }
        if answer["reason"] == "kill_switch" {
            refused_by_kill_switch = true;
            report.lock().unwrap().refused_by_kill_switch += 1;
        }
        last = answer;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let Some(h) = handover else {
        let mut r = report.lock().unwrap();
        r.never_opened += 1;
        r.never_opened_lines.push(format!(
            "{sid}: no handover opened in {OPEN_TRIES} tries, last answer {last}"
        ));
        return exp;
    };
    if refused_by_kill_switch {
        report.lock().unwrap().opened_after_kill_switch += 1;
    }
    exp.handovers.insert(h.clone());
    let mut to_agent = Vec::new();

    // Waiting: the bot stays active, and the agent sees every turn.
    for _ in 0..rng.usize(0..3) {
        for actor in ["user", "bot"] {
            let id = next(&actor[..1]);
            let (status, answer) = world
                .event(&native(id.clone(), "message", &sid, Some((actor, &id))))
                .await;
            if status == 200 && answer["state"] == "waiting" {
                to_agent.push(id);
            } else {
                fail(format!(
                    "{sid}: a {actor} turn while waiting answered {status}: {answer}"
                ));
            }
        }
    }
    let path = rng.f64();
    let joined = path < 0.55;
    let ending = if joined {
        // An agent joins (sometimes the first message comes before the join).
        let out_of_order = rng.f64() < 0.2 || !world.out_of_order_sent.swap(true, Ordering::SeqCst);
        if out_of_order {
            let id = next("a");
            let (status, answer) = world
                .deliver_callback(&mut rng, cb(id.clone(), "agent.message", &h, Some(&id)))
                .await;
            if status == 200 {
                exp.to_bot.push(id.clone());
                exp.joined_by_message = Some((h.clone(), id));
            } else {
                fail(format!("{sid}: an agent message answered {status}: {answer}"));
            }
        }
        let (status, answer) = world
            .deliver_callback(&mut rng, cb(next("j"), "agent.joined", &h, None))
            .await;
        if status != 200 {
            fail(format!("{sid}: agent.joined answered {status}: {answer}"));
        }
        for _ in 0..rng.usize(1..4) {
            let id = next("a");
            let (status, answer) = world
                .deliver_callback(&mut rng, cb(id.clone(), "agent.message", &h, Some(&id)))
                .await;
            if status == 200 {
                exp.to_bot.push(id);
            } else {
                fail(format!("{sid}: an agent message answered {status}: {answer}"));
            }
            let id = next("u");
            let (status, answer) = world
                .event(&native(id.clone(), "message", &sid, Some(("user", &id))))
                .await;
            if status == 200 && answer["state"] == "agent" {
                to_agent.push(id);
            } else {
                fail(format!("{sid}: a user turn with the agent answered {status}: {answer}"));
            }
        }
        let end = rng.f64();
        if end < 0.6 {
            Ending::ProviderClose
        } else if end < 0.8 {
            Ending::Cancel
        } else {
            // The agent goes idle, and the idle timeout ends it.
            Ending::Timeout
        }
    } else if path < 0.75 {
        Ending::Cancel
    } else if path < 0.85 {
        // The contact center closes it before anyone joined.
        Ending::ProviderClose
    } else {
        // Nobody joins, and the no-agent timeout ends it.
        Ending::Timeout
    };
    let timeout = if joined {
        "agent_idle_timeout"
    } else {
        "no_agent_timeout"
    };
    let reason = match ending {
        Ending::ProviderClose => {
            let (status, answer) = world
                .deliver_callback(&mut rng, cb(next("c"), "conversation.closed", &h, None))
                .await;
            exp.closed_by_provider.insert(h.clone());
            if status == 200 && answer["applied"] == 1 {
                report.lock().unwrap().closes_applied += 1;
            } else {
                fail(format!("{sid}: conversation.closed answered {status}: {answer}"));
            }
            "agent_closed"
        }
        Ending::Cancel => {
            let (status, answer) = world.event(&native(next("x"), "handover.cancel", &sid, None)).await;
            if status == 200 && answer["state"] == "bot" && answer["reason"] == "user_cancelled" {
                report.lock().unwrap().cancels_applied += 1;
                "user_cancelled"
            } else if status == 422 && answer["error"]["code"] == "no_active_handover" {
                // Refused explicitly: a timeout ended the handover first.
                report.lock().unwrap().cancels_refused += 1;
                timeout
            } else {
                fail(format!("{sid}: handover.cancel answered {status}: {answer}"));
                "user_cancelled"
            }
        }
        Ending::Timeout => timeout,
    };
    exp.end_reason.insert(h.clone(), reason);
    exp.to_agent.insert(h, to_agent);
    exp
}

/// How a session's script ends its handover.
#[derive(Debug, Clone, Copy)]
enum Ending {
    ProviderClose,
    Cancel,
    Timeout,
}

// ---- the run --------------------------------------------------------------------------------

const NO_AGENT_SECONDS: i64 = 3600;
const EVALUATOR_PERIOD_SECONDS: i64 = 60;

fn bot_yaml(bot_id: &str, platform: &str, provider: &str, refs: (&str, &str), kill_switch: bool) -> String {
    let disabled = if kill_switch {
        "disabled: { reason: soak }\n"
    } else {
        ""
    };
    format!(
        "botId: {bot_id}\nplatform: {{ kind: native, outboundUrl: '{platform}', secretRef: {} }}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{provider}', secretRef: {} }}\nrouting:\n  - {{ provider: desk, queue: general }}\ntimeouts: {{ noAgentSeconds: {NO_AGENT_SECONDS}, stillWaitingEverySeconds: 0, agentIdleSeconds: {NO_AGENT_SECONDS} }}\n{disabled}",
        refs.0, refs.1
    )
}

/// Runs the soak and checks every invariant.
pub async fn run(cfg: &Config) -> Report {
    let started = Instant::now();
    let env = TestEnv::new().await;
    let faults = Arc::new(Faults {
        rng: Mutex::new(fastrand::Rng::with_seed(cfg.seed)),
        on: AtomicBool::new(true),
        rate: cfg.fault_rate,
        hang_share: cfg.hang_share,
        counts: Mutex::new(BTreeMap::new()),
        per_side: Mutex::new([0, 0]),
    });
    let crashes_before = handover::app::engine::failpoint_crashes();
    let bot_platform = peer(Side::Bot, faults.clone()).await;
    let contact_center = peer(Side::Provider, faults.clone()).await;
    let bot_id = format!("soak-{}", cfg.seed);
    let platform_ref = env.secret("platform", &json!({"signingSecret": "soak-platform"})).await;
    let desk_ref = env.secret("desk", &json!({"signingSecret": "soak-desk"})).await;
    let refs = (platform_ref.as_str(), desk_ref.as_str());
    let yaml = |kill: bool| bot_yaml(&bot_id, &bot_platform.url, &contact_center.url, refs, kill);
    env.put_bot(&yaml(false)).await;

    // The function under test: DynamoDB requests fail at random, the outbound client gives up
    // after CLIENT_TIMEOUT, the bot is re-read on every request (so kill-switch flips apply at
    // once), and deliveries are retried for long enough that the run's faults end before they
    // could run out.
    let sdk = emulator_sdk().await;
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(DynamoFaults(faults.clone()))
            .build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let store = handover::store::DynamoStore::new(dynamo, env.table.clone());
    let cached = handover::secrets::CachedSecrets::new(
        Arc::new(handover::secrets::SecretsManager::new(secrets)),
        Duration::from_secs(300),
    );
    // The service's own metrics: what it reports having met (retries, give-ups, provider errors).
    let metrics = handover::metrics::Captured::default();
    let ctx = AppContext::new(Arc::new(store), Arc::new(cached), env.clock.clone())
        .with_retry(RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            max_attempts: 30,
            lease: Duration::from_secs(30),
        })
        .with_request_budget(Duration::from_secs(6))
        .with_bot_cache_ttl(Duration::ZERO)
        .with_metrics(Arc::new(metrics.clone()));
    ctx.http.set(
        reqwest::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .build()
            .expect("a client"),
    );
    let world = Arc::new(World {
        env,
        ctx: Arc::new(ctx),
        bot_id: bot_id.clone(),
        platform_secret: b"soak-platform".to_vec(),
        provider_secret: b"soak-desk".to_vec(),
        faults: faults.clone(),
        retried: AtomicU64::new(0),
        late: Mutex::new(Vec::new()),
        callbacks: AtomicU64::new(0),
        out_of_order_sent: AtomicBool::new(false),
    });
    fail::cfg(
        "engine-after-commit",
        &format!("{}%return({bot_id})", (cfg.crash_rate * 100.0).round()),
    )
    .expect("the failpoint is configured");

    let report = Arc::new(Mutex::new(Report {
        seed: cfg.seed,
        sessions: cfg.sessions,
        ..Report::default()
    }));

    // The kill switch, once for certain before the sessions start (the random flips below
    // may or may not meet a request): switched on, a request is refused; switched off, the
    // same session gets its handover, which is then cancelled.
    let probe_flips = {
        let sid = "kill-probe";
        let mut r = report.lock().unwrap().clone();
        world.env.put_bot(&yaml(true)).await;
        for n in 0..OPEN_TRIES {
            let (_, answer) = world.event(&crate::handover_request(&format!("kp-on-{n}"), sid)).await;
            if answer["reason"] == "kill_switch" {
                r.refused_by_kill_switch += 1;
                break;
            }
        }
        world.env.put_bot(&yaml(false)).await;
        for n in 0..OPEN_TRIES {
            let (_, answer) = world.event(&crate::handover_request(&format!("kp-off-{n}"), sid)).await;
            if answer["outcome"] == "opened" {
                r.opened_after_kill_switch += 1;
                break;
            }
        }
        for n in 0..OPEN_TRIES {
            let (status, _) = world
                .event(&native(format!("kp-x-{n}"), "handover.cancel", sid, None))
                .await;
            if status == 200 {
                break;
            }
        }
        *report.lock().unwrap() = r;
        2
    };

    // While sessions run: the evaluator every 150 ms, moving the clock 5 s each time (retries
    // and leases come due, timeouts do not), and the kill switch flipped now and then.
    let running = Arc::new(AtomicBool::new(true));
    let background = {
        let (world, running, yaml_on, yaml_off) = (world.clone(), running.clone(), yaml(true), yaml(false));
        let seed = cfg.seed;
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed.rotate_left(17));
            let mut flips = 0u64;
            let mut switched_on = false;
            while running.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(150)).await;
                world.env.clock.advance(chrono::Duration::seconds(5));
                evaluator::run(&world.ctx, world.env.now()).await;
                if rng.f64() < 0.15 {
                    switched_on = !switched_on;
                    let text = if switched_on { &yaml_on } else { &yaml_off };
                    world.env.put_bot(text).await;
                    flips += 1;
                }
            }
            if switched_on {
                world.env.put_bot(&yaml_off).await;
                flips += 1;
            }
            flips
        })
    };

    let gate = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
    let tasks: Vec<_> = (0..cfg.sessions)
        .map(|n| {
            let (world, gate, report) = (world.clone(), gate.clone(), report.clone());
            let seed = cfg.seed;
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("the gate stays open");
                session(world, n, seed, report).await
            })
        })
        .collect();
    let mut expected = Vec::new();
    for t in tasks {
        expected.push(t.await.expect("a session task does not panic"));
    }
    // Late duplicates of earlier callbacks, after everything else.
    let late: Vec<Value> = std::mem::take(&mut *world.late.lock().unwrap());
    // Each counts as met once the service answered it (as the duplicate it is).
    for body in late {
        if world.callback(&body).await.0 == 200 {
            faults.count("late callback");
        }
    }
    running.store(false, Ordering::SeqCst);
    let flips = background.await.expect("the background task does not panic");

    // The outages end. Timeouts come due: one evaluator period after the no-agent timeout
    // nobody may still be waiting. Then what is left in outboxes is delivered.
    faults.on.store(false, Ordering::SeqCst);
    fail::remove("engine-after-commit");
    world
        .env
        .clock
        .advance(chrono::Duration::seconds(NO_AGENT_SECONDS + EVALUATOR_PERIOD_SECONDS));
    evaluator::run(&world.ctx, world.env.now()).await;
    for _ in 0..40 {
        world
            .env
            .clock
            .advance(chrono::Duration::seconds(EVALUATOR_PERIOD_SECONDS));
        let r = evaluator::run(&world.ctx, world.env.now()).await;
        if r.delivered == 0 && r.retried == 0 && r.timers_fired == 0 && r.sessions == 0 {
            break;
        }
    }

    let mut report = std::mem::take(&mut *report.lock().unwrap());
    report.kill_switch_flips = flips + probe_flips;
    report.requests_retried = world.retried.load(Ordering::Relaxed);
    report.faults = faults.counts.lock().unwrap().clone();
    report.faults.insert(
        "crash after commit",
        handover::app::engine::failpoint_crashes() - crashes_before,
    );
    for line in metrics.lines() {
        for p in handover::metrics::parse(&line).unwrap_or_default() {
            if let Some((name, direction)) = SERVICE_METRICS
                .iter()
                .find(|(n, d)| *n == p.name && p.dims.get("direction").map_or("", String::as_str) == *d)
            {
                *report.service_metrics.entry(service_key(name, direction)).or_default() += p.value as u64;
            }
        }
    }
    check(&world, &expected, &bot_platform, &contact_center, &mut report).await;
    report.duration = started.elapsed();
    report
}

/// Compares what the peers accepted with what the sessions expected.
async fn check(world: &World, expected: &[Expected], bot: &Peer, desk: &Peer, report: &mut Report) {
    // Receivers drop redeliveries by their id.
    let dedupe = |items: &[Value]| -> Vec<Value> {
        let mut seen = BTreeSet::new();
        items
            .iter()
            .filter(|v| seen.insert(v["id"].as_str().unwrap_or_default().to_owned()))
            .cloned()
            .collect()
    };
    let at_bot = dedupe(&bot.accepted.lock().unwrap());
    let at_desk = dedupe(&desk.accepted.lock().unwrap());

    // Every conversation the provider saw started is ended by us or closed by the provider.
    let closed_by_provider: BTreeSet<&String> = expected.iter().flat_map(|e| &e.closed_by_provider).collect();
    let ended: BTreeSet<&str> = at_desk
        .iter()
        .filter(|v| v["type"] == "conversation.ended")
        .filter_map(|v| v["conversationId"].as_str())
        .collect();
    for started in at_desk.iter().filter(|v| v["type"] == "conversation.started") {
        let conv = started["conversationId"].as_str().unwrap_or_default();
        if !ended.contains(conv) && !closed_by_provider.contains(&conv.to_owned()) {
            report.left_open += 1;
            let whose = expected
                .iter()
                .position(|e| e.handovers.contains(conv))
                .map_or("a start never committed".to_owned(), |n| {
                    format!("the handover of s-{n}")
                });
            report.violation(format!("conversation {conv} ({whose}) left open at the provider"));
        }
    }

    for (n, exp) in expected.iter().enumerate() {
        let sid = format!("s-{n}");
        report.handovers += exp.handovers.len();
        // Turns to the agent: exactly once and in order, per conversation.
        for (h, want) in &exp.to_agent {
            report.to_agent += want.len();
            let got: Vec<String> = at_desk
                .iter()
                .filter(|v| v["type"] == "user.message" && v["conversationId"] == h.as_str())
                .filter_map(|v| v["text"].as_str().map(str::to_owned))
                .collect();
            compare(report, &format!("{sid} → agent ({h})"), want, &got);
        }
        // Agent messages to the bot: exactly once and in order.
        report.to_bot += exp.to_bot.len();
        let got: Vec<String> = at_bot
            .iter()
            .filter(|v| v["type"] == "agent.message" && v["sessionId"] == sid.as_str())
            .filter_map(|v| v["message"]["text"].as_str().map(str::to_owned))
            .collect();
        compare(report, &format!("agent → {sid}"), &exp.to_bot, &got);
        // Every handover ended, once, with the reason its script's path produces.
        for h in &exp.handovers {
            let ends: Vec<&Value> = at_bot
                .iter()
                .filter(|v| v["type"] == "handover.ended" && v["handoverId"] == h.as_str())
                .collect();
            let reason = ends.first().and_then(|e| e["reason"].as_str()).unwrap_or_default();
            if ends.len() != 1 || reason.is_empty() {
                report.unended += 1;
                report.violation(format!("{sid}: handover {h} ended {} times at the bot", ends.len()));
                continue;
            }
            *report.end_reasons.entry(reason.to_owned()).or_default() += 1;
            match exp.end_reason.get(h) {
                Some(want) if *want == reason => report.end_reasons_checked += 1,
                want => {
                    report.end_reasons_checked += 1;
                    report.wrong_end_reason += 1;
                    report.violation(format!(
                        "{sid}: handover {h} ended {reason}, its script expects {want:?}"
                    ));
                }
            }
        }
        // An agent message before the join: the service took it as the join, so the bot got
        // `agent.joined` for that handover before the message itself.
        if let Some((h, first)) = &exp.joined_by_message {
            let at =
                |pred: &dyn Fn(&Value) -> bool| at_bot.iter().position(|v| v["handoverId"] == h.as_str() && pred(v));
            let joined = at(&|v| v["type"] == "agent.joined");
            let message = at(&|v| v["type"] == "agent.message" && v["message"]["text"] == first.as_str());
            match (joined, message) {
                (Some(j), Some(m)) if j < m => *report.faults.entry("out-of-order callback").or_default() += 1,
                _ => report.violation(format!(
                    "{sid}: agent message {first} sent before the join: agent.joined at {joined:?}, the message at {message:?}"
                )),
            }
        }
        // Nobody left waiting (or with an agent) after the timeouts.
        match world.env.session(&world.bot_id, &sid).await.map(|s| s.state) {
            Some(State::Bot) | None => {}
            Some(other) => {
                report.still_waiting += 1;
                report.violation(format!("{sid} still in {other:?} after the timeouts"));
            }
        }
    }
}

/// Counts lost, duplicated and out-of-order items of one stream.
fn compare(report: &mut Report, stream: &str, want: &[String], got: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for g in got {
        *counts.entry(g.as_str()).or_default() += 1;
    }
    for w in want {
        match counts.get(w.as_str()).copied().unwrap_or(0) {
            0 => {
                report.lost += 1;
                report.violation(format!("{stream}: {w} lost"));
            }
            1 => {}
            k => {
                report.duplicated += k - 1;
                report.violation(format!("{stream}: {w} delivered {k} times"));
            }
        }
    }
    // Order: the wanted items as they arrived (first arrival) must keep the wanted order.
    let mut firsts: Vec<&str> = Vec::new();
    for g in got {
        if want.iter().any(|w| w == g) && !firsts.contains(&g.as_str()) {
            firsts.push(g);
        }
    }
    let order: Vec<&str> = want.iter().map(String::as_str).filter(|w| firsts.contains(w)).collect();
    if firsts != order {
        report.out_of_order += 1;
        report.violation(format!("{stream}: order {firsts:?}, sent {order:?}"));
    }
}

//! The soak: many concurrent sessions through random lifecycles while faults are injected
//! everywhere a production deployment meets them, then a check of the promises a handover
//! service makes: nothing accepted lost, nothing duplicated, nothing out of order, every
//! handover ended with a reason, no conversation left open at the provider, nobody left waiting.
//!
//! The service runs in-process (the handlers `handover serve` and the Lambda functions run)
//! on the DynamoDB emulator with the manual clock. The bot platform and three contact centers
//! are small HTTP servers of this module, so they can fail the way real ones do: 5xx, 429 with
//! `Retry-After`, a connection reset, a hang past the client timeout (after processing the
//! request, so the retry is a duplicate the receiver must drop). The contact centers are three
//! provider *models* driven by the real adapters ([`desk`]): the generic webhook (the
//! conversation filed under our handover id), Zendesk/SunCo (the *embedded* id the request
//! carries) and Help Scout (an id *created* by the provider and named only in its answer).
//! DynamoDB requests fail through an SDK interceptor; failpoints make the function "crash"
//! between a commit and its delivery, and between a start's answer and its commit. Callbacks are
//! sent twice (also concurrently), out of order, and late. The kill switch is flipped while
//! sessions run. The seams of a start are met for certain by the first sessions of each model
//! and at random later: the agent's join posted before the start is answered, a cancel during
//! the start, a start answered after the client timeout on its first try or on every try, and a
//! turn the desk refuses for good (a permanent 400).
//!
//! A seed fixes every random choice of the schedule (lifecycles, which request gets which
//! fault); thread timing still varies from run to run, so two runs with one seed meet the same
//! faults in nearly, not exactly, the same places. Run it with `make soak` (docs/reliability.md).

mod desk;

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
use tokio::net::{TcpListener, TcpStream};

use crate::{TestEnv, emulator_sdk, response_json};
pub use desk::Model;
use desk::{Cb, Desk, Hook};

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
pub const FAULT_KINDS: [&str; 18] = [
    "provider 5xx",
    "provider 429",
    "provider hang",
    "provider reset",
    "provider 4xx on a relayed turn",
    "start of unknown outcome, then retried",
    "start of unknown outcome on every try",
    "callback before the start's answer",
    "cancel during the start",
    "bot platform 503",
    "bot platform reset",
    "bot platform hang",
    "dynamodb request failed",
    "crash before commit",
    "crash after commit",
    "duplicate callback",
    "out-of-order callback",
    "late callback",
];

/// What one provider model saw.
#[derive(Debug, Default, Clone)]
pub struct ModelStats {
    pub sessions: usize,
    pub handovers: usize,
    /// Conversations the provider held at some point (in its own ids).
    pub conversations: usize,
}

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
    /// Per provider model (its name).
    pub per_model: BTreeMap<String, ModelStats>,
    /// User turns sent that the desk refuses for good (a permanent 400).
    pub turns_refused: u64,
    /// Cancels sent while the start was in flight that ended the handover `user_cancelled`.
    pub cancels_during_start: u64,
    /// Starts no try of which was answered in time, released by the service (not opened).
    pub uncertain_released: u64,
    /// Joins posted before the start's answer that reached the bot.
    pub early_joins: usize,
    /// Joins posted before the answer of a try that then did not commit: in a conversation
    /// the service gave back, never applied (the retry's agent joins as any other).
    pub early_given_back: u64,
    /// Start intents settled by the evaluator (left by a crash before the commit, or not
    /// removed because a store call failed).
    pub starts_settled: u64,
    /// Help Scout conversations created by a create whose answer came too late: the service
    /// cannot know them and counts them (StartUnresolved); bounded by that count.
    pub unresolved_left_open: u64,
    /// Turns Help Scout holds twice (it takes no idempotency key): counted, not ours.
    pub duplicated_at_provider: usize,
    /// Invariants of the seams: start intents left after the final evaluator runs; joins
    /// posted before the start's answer that never reached the bot; creates of unknown outcome
    /// made twice; calls under an id the provider does not have; cancels during the start
    /// refused.
    pub intents_left: usize,
    pub early_lost: usize,
    pub created_twice: usize,
    pub wrong_id_calls: usize,
    pub cancel_refused: usize,
    /// Answers the script did not expect (each also a violation line).
    pub unexpected_answers: usize,
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
const SERVICE_METRICS: [(&str, &str); 6] = [
    ("OutboxRetried", "bot"),
    ("OutboxRetried", "provider"),
    ("OutboxGaveUp", "bot"),
    ("OutboxGaveUp", "provider"),
    ("ProviderErrors", ""),
    ("StartUnresolved", ""),
];

impl Report {
    /// No invariant was violated.
    pub fn ok(&self) -> bool {
        self.caught_by().is_empty() && self.violations.is_empty()
    }

    /// Each invariant violated, with its count: what caught a broken build.
    pub fn caught_by(&self) -> Vec<String> {
        [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("out of order", self.out_of_order),
            ("handovers without an end reason", self.unended),
            ("conversations left open at the provider", self.left_open),
            ("sessions still waiting after the timeout", self.still_waiting),
            ("end reasons that differ from the script", self.wrong_end_reason),
            ("start intents left behind", self.intents_left),
            ("early joins that never reached the bot", self.early_lost),
            ("creates of unknown outcome made twice", self.created_twice),
            ("calls under an id the provider does not have", self.wrong_id_calls),
            ("cancels during the start refused", self.cancel_refused),
            ("unexpected answers", self.unexpected_answers),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} ({n})"))
        .collect()
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
            at_least("cancels during the start applied", self.cancels_during_start, 1),
            at_least("starts of unknown outcome released", self.uncertain_released, 1),
            at_least("early joins that reached the bot", self.early_joins as u64, 1),
            at_least("turns refused by the desk sent", self.turns_refused, 1),
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
        for (name, m) in &self.per_model {
            row(
                &format!("model {name}: sessions / handovers / conversations at the provider"),
                format!("{} / {} / {}", m.sessions, m.handovers, m.conversations),
            );
        }
        row(
            "turns refused by the desk (permanent 400)",
            self.turns_refused.to_string(),
        );
        row(
            "cancels during the start applied",
            self.cancels_during_start.to_string(),
        );
        row(
            "starts of unknown outcome released",
            self.uncertain_released.to_string(),
        );
        row("early joins that reached the bot", self.early_joins.to_string());
        row(
            "early joins in a conversation given back (not applied)",
            self.early_given_back.to_string(),
        );
        row(
            "start intents settled by the evaluator",
            self.starts_settled.to_string(),
        );
        row(
            "helpscout conversations of unknown creates left open (counted)",
            self.unresolved_left_open.to_string(),
        );
        row(
            "turns held twice by helpscout (no idempotency key)",
            self.duplicated_at_provider.to_string(),
        );
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
        row("start intents left behind", self.intents_left.to_string());
        row("early joins that never reached the bot", self.early_lost.to_string());
        row("creates of unknown outcome made twice", self.created_twice.to_string());
        row(
            "calls under an id the provider does not have",
            self.wrong_id_calls.to_string(),
        );
        row("cancels during the start refused", self.cancel_refused.to_string());
        row("unexpected answers", self.unexpected_answers.to_string());
        format!("| | |\n|---|---|\n{t}")
    }

    fn unexpected(&mut self, line: String) {
        self.unexpected_answers += 1;
        self.violation(line);
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

// ---- the bot platform -----------------------------------------------------------------------

/// The bot platform: records what it accepted (by delivery id, so a redelivery is the
/// receiver's duplicate to drop) and fails as the plan says. The contact centers are in
/// [`desk`].
struct Peer {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
}

/// How long a hang lasts: longer than the function's client timeout (set in `run`).
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1500);

async fn bot_platform(faults: Arc<Faults>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let store = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (faults, store) = (faults.clone(), store.clone());
            tokio::spawn(async move { answer(sock, &faults, &store).await });
        }
    });
    Peer { url, accepted }
}

/// Answers one request, or fails it. A fault is counted when the service has met it: a
/// failing status once it was written to the service's connection, a reset once the service's
/// whole request was read and its connection dropped, a hang only if the service's client gave
/// up (closed the connection) before the late answer.
async fn answer(mut sock: TcpStream, faults: &Faults, store: &Mutex<Vec<Value>>) {
    let Some(req) = desk::read_request(&mut sock).await else {
        return;
    };
    let record = || {
        if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
            store.lock().unwrap().push(v);
        }
    };
    match faults.http(Side::Bot) {
        None => {
            record();
            desk::reply(sock, (200, Vec::new(), b"{}".to_vec())).await;
        }
        Some((HttpFault::Status(code), kind)) => {
            if desk::reply(sock, (code, vec![("retry-after".into(), "1".into())], Vec::new())).await {
                faults.count(kind);
            }
        }
        Some((HttpFault::Reset, kind)) => faults.count(kind),
        Some((HttpFault::Hang, kind)) => {
            // Processed, but the answer never comes in time: the retry is a duplicate.
            record();
            if desk::hang(sock).await {
                faults.count(kind);
            }
        }
    }
}

// ---- the sessions ---------------------------------------------------------------------------

/// What one session's script expects to see delivered.
#[derive(Debug)]
struct Expected {
    model: Model,
    /// handover id → the turns the agent must see, in order.
    to_agent: BTreeMap<String, Vec<String>>,
    /// handover id → the provider's own id of its conversation.
    conv: BTreeMap<String, String>,
    /// The agent messages the bot platform must get, in order.
    to_bot: Vec<String>,
    /// Handovers this session opened.
    handovers: BTreeSet<String>,
    /// handover id → the end reason the script's path must produce.
    end_reason: BTreeMap<String, &'static str>,
    /// A handover whose first agent event was a message, and that message's id: the service
    /// must have taken it as the join.
    joined_by_message: Option<(String, String)>,
    /// Whether that message was sent before a join callback (the out-of-order fault).
    message_before_join: bool,
    /// A handover whose agent joined before the contact center answered its start, and what
    /// the service answered that callback.
    early_join: Option<String>,
    early_answer: Value,
}

impl Expected {
    fn new(model: Model) -> Self {
        Expected {
            model,
            to_agent: BTreeMap::new(),
            conv: BTreeMap::new(),
            to_bot: Vec::new(),
            handovers: BTreeSet::new(),
            end_reason: BTreeMap::new(),
            joined_by_message: None,
            message_before_join: false,
            early_join: None,
            early_answer: Value::Null,
        }
    }
}

struct World {
    env: TestEnv,
    ctx: Arc<AppContext>,
    /// Each model's bot (one provider each).
    bots: BTreeMap<Model, String>,
    desks: BTreeMap<Model, Arc<Desk>>,
    platform_secret: Vec<u8>,
    faults: Arc<Faults>,
    retried: AtomicU64,
    /// Callbacks kept back, sent again after everything else (late duplicates).
    late: Mutex<Vec<(Model, Value)>>,
    /// Callbacks delivered so far: the first is duplicated and the second kept for late, so
    /// even a short run meets both; later ones are drawn at random.
    callbacks: AtomicU64,
    /// Whether a session has sent an agent message before the join yet (the first joining
    /// session does, so even a short run meets it).
    out_of_order_sent: AtomicBool,
}

impl World {
    fn bot(&self, model: Model) -> &str {
        &self.bots[&model]
    }

    async fn event_once(&self, model: Model, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/v1/bots/{}/events", self.bot(model));
        let req = self
            .env
            .request("POST", &path, &self.env.signed(&self.platform_secret, &bytes), &bytes);
        response_json(bot_webhook::handle(&self.ctx, req).await)
    }

    /// A native event, retried like a bot platform retries (same id) until it is answered
    /// with anything but a 5xx or 429. Returns the answer.
    async fn event(&self, model: Model, body: &Value) -> (u16, Value) {
        for _ in 0..60 {
            let (status, answer) = self.event_once(model, body).await;
            if status < 500 && status != 429 {
                return (status, answer);
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (599, json!({"error": "gave up retrying"}))
    }

    /// A handover request whose session's user may cancel while it is in flight (a desk
    /// hook): retried like [`World::event`], except once the cancel was answered: the bot
    /// platform does not ask again for what the user cancelled.
    async fn event_unless_cancelled(&self, model: Model, body: &Value, desk: &Desk, key: &str) -> (u16, Value) {
        for _ in 0..60 {
            let (status, answer) = self.event_once(model, body).await;
            if status < 500 && status != 429 {
                return (status, answer);
            }
            if desk.state.lock().unwrap().hook_answers.contains_key(key) {
                return (status, answer);
            }
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (599, json!({"error": "gave up retrying"}))
    }

    /// The user's cancel, sent by a desk while the session's start is in flight.
    async fn cancel_during_start(&self, model: Model, sid: &str) -> (u16, Value) {
        self.event(model, &native(format!("{sid}-early-x"), "handover.cancel", sid, None))
            .await
    }

    /// A provider callback, authenticated as the model's provider does and retried like a
    /// contact center retries its webhooks.
    async fn callback(&self, model: Model, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/v1/bots/{}/providers/desk/callback", self.bot(model));
        for _ in 0..60 {
            let headers = match model {
                Model::Webhook => self.env.signed(b"soak-desk", &bytes),
                Model::Zendesk => vec![("x-api-key", desk::ZD_WEBHOOK_SECRET.to_owned())],
                Model::HelpScout => vec![
                    ("x-helpscout-event", desk::helpscout_event(body).to_owned()),
                    (
                        "x-helpscout-signature",
                        handover::providers::helpscout::signature(desk::HS_WEBHOOK_SECRET.as_bytes(), &bytes),
                    ),
                ],
            };
            let req = self.env.request("POST", &path, &headers, &bytes);
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
    async fn deliver_callback(&self, rng: &mut fastrand::Rng, model: Model, body: Value) -> (u16, Value) {
        let roll = match self.callbacks.fetch_add(1, Ordering::SeqCst) {
            0 => 0.0,
            1 => 0.12,
            _ => rng.f64(),
        };
        if roll < 0.1 {
            let (a, b) = tokio::join!(self.callback(model, &body), self.callback(model, &body));
            if a.0 == 200 && b.0 == 200 {
                self.faults.count("duplicate callback");
            }
            return if a.0 == 200 { a } else { b };
        }
        if roll < 0.15 {
            self.late.lock().unwrap().push((model, body.clone()));
        }
        self.callback(model, &body).await
    }
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

/// The seam a session's start or handover meets (besides the random faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    /// The agent's first event is posted before the start is answered (desk hook).
    EarlyJoin,
    /// The user cancels while the start is in flight (desk hook).
    CancelDuringStart,
    /// One user turn is refused by the desk with a permanent 400; the next turns go on.
    RefusedTurn,
    /// The start's first try is processed but answered after the client timeout.
    HangFirst,
    /// Every try of the start is: the user then gives up (zendesk: released under the SunCo id).
    HangEvery,
}

/// Session `n`'s model and role: sessions take the models in turn, and the first ones meet
/// each seam for certain (so even a short run does), later ones at random.
fn cast(n: usize, rng: &mut fastrand::Rng) -> (Model, Role) {
    let model = Model::ALL[n % Model::ALL.len()];
    let role = match n {
        // webhook, zendesk
        0 | 1 => Role::EarlyJoin,
        // helpscout (not retried: counted), zendesk and webhook (retried)
        2 | 7 | 9 => Role::HangFirst,
        3 => Role::CancelDuringStart,
        4 => Role::HangEvery,
        // helpscout, webhook
        5 | 6 => Role::RefusedTurn,
        _ if model.relays_turns() && rng.f64() < 0.1 => Role::RefusedTurn,
        _ => Role::Plain,
    };
    (model, role)
}

/// One session's random lifecycle. Sequential, as a bot platform sends one session's events.
async fn session(world: Arc<World>, n: usize, seed: u64, report: Arc<Mutex<Report>>) -> Expected {
    let mut rng = fastrand::Rng::with_seed(seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (model, role) = cast(n, &mut rng);
    let sid = format!("s-{n}");
    let mut exp = Expected::new(model);
    let mut seq = 0;
    let mut next = |p: &str| {
        seq += 1;
        format!("{sid}-{p}{seq}")
    };
    let fail = |line: String| report.lock().unwrap().unexpected(line);
    let desk = world.desks[&model].clone();
    // zendesk: the user's conversation already lives in SunCo; the handover request names it.
    let sunco = format!("{:024x}", 0x50c0_0000_0000u64 + n as u64);
    if model == Model::Zendesk {
        desk.knows(&sunco);
    }
    let hook_key = if model == Model::Zendesk {
        sunco.clone()
    } else {
        sid.clone()
    };
    let request = |id: &str| {
        let mut r = crate::handover_request(id, &sid);
        // Help Scout's subject: the desk's reference of the create (one per request).
        r["handover"]["variables"]["subject"] = json!(format!("{sid}/{id}"));
        if model == Model::Zendesk {
            r["handover"]["providerConversationId"] = json!(sunco);
        }
        r
    };

    // The bot talks with the user.
    for _ in 0..rng.usize(1..3) {
        for actor in ["user", "bot"] {
            let id = next(&actor[..1]);
            let (status, answer) = world
                .event(model, &native(id.clone(), "message", &sid, Some((actor, &id))))
                .await;
            if status != 200 || answer["state"] != "bot" {
                fail(format!(
                    "{sid}: a {actor} turn with the bot answered {status}: {answer}"
                ));
            }
        }
    }
    match role {
        Role::EarlyJoin => desk.hook(&hook_key, Hook::EarlyJoin),
        Role::CancelDuringStart => desk.hook(&hook_key, Hook::CancelDuringStart),
        Role::HangFirst => desk.hook(&hook_key, Hook::HangFirst),
        Role::HangEvery => desk.hook(&hook_key, Hook::HangEvery),
        Role::Plain | Role::RefusedTurn => {}
    }
    if role == Role::HangEvery {
        // No try of this start is answered in time: the service cannot know whether control
        // passed, releases it under the id the provider knows, and the user gives up.
        // (Asked again only while no start reached the desk: a provider resting after failures.)
        for _ in 0..OPEN_TRIES {
            let (status, answer) = world.event(model, &request(&next("h"))).await;
            if !desk.state.lock().unwrap().hooked.contains_key(&hook_key) {
                tokio::time::sleep(Duration::from_millis(150)).await;
                continue;
            }
            if status == 200 && answer["outcome"] != "opened" {
                report.lock().unwrap().uncertain_released += 1;
            } else {
                fail(format!(
                    "{sid}: a start no try of which was answered in time answered {status}: {answer}"
                ));
            }
            return exp;
        }
        fail(format!("{sid}: no start reached the desk in {OPEN_TRIES} tries"));
        return exp;
    }
    // The user asks for an agent (the kill switch may answer for the contact center).
    let mut handover = None;
    let mut refused_by_kill_switch = false;
    let mut last = Value::Null;
    // A session cast for a seam waits out the kill switch (its tries do not count then), so
    // its seam is met.
    let (mut tries, mut asked) = (0, 0);
    while tries < OPEN_TRIES {
        let body = request(&next("h"));
        let (status, answer) = if role == Role::CancelDuringStart {
            world.event_unless_cancelled(model, &body, &desk, &hook_key).await
        } else {
            world.event(model, &body).await
        };
        asked += 1;
        if role == Role::CancelDuringStart
            && answer["outcome"] != "opened"
            && let Some((200, a)) = desk.state.lock().unwrap().hook_answers.get(&hook_key)
            && a["reason"] == "user_cancelled"
        {
            // The cancel won before anything committed (the start failed or the function
            // died): no handover; what the start opened must still be ended (checked per model).
            report.lock().unwrap().cancels_during_start += 1;
            return exp;
        }
        if role == Role::Plain || answer["reason"] != "kill_switch" || asked > 10 * OPEN_TRIES {
            tries += 1;
        }
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
    // The provider's own id of the conversation.
    let conv = match model {
        Model::Webhook => h.clone(),
        Model::Zendesk => sunco.clone(),
        Model::HelpScout => {
            let stored = world.env.session(world.bot(model), &sid).await;
            match stored
                .and_then(|s| s.handover)
                .filter(|x| x.id == h)
                .and_then(|x| x.provider_conversation_id)
            {
                Some(c) => c,
                None => {
                    fail(format!(
                        "{sid}: handover {h} opened without a Help Scout conversation id"
                    ));
                    return exp;
                }
            }
        }
    };
    exp.handovers.insert(h.clone());
    exp.conv.insert(h.clone(), conv.clone());
    // A hook's call may still be running when the start's retry answered: wait for it.
    let mut hook_answer = None;
    for _ in 0..200 {
        hook_answer = desk.state.lock().unwrap().hook_answers.get(&hook_key).cloned();
        if hook_answer.is_some() || !matches!(role, Role::CancelDuringStart | Role::EarlyJoin) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if role == Role::CancelDuringStart {
        match hook_answer.clone() {
            Some((200, a)) if a["reason"] == "user_cancelled" && a["handoverId"] == h.as_str() => {
                report.lock().unwrap().cancels_during_start += 1;
                exp.end_reason.insert(h.clone(), "user_cancelled");
                exp.to_agent.insert(h, Vec::new());
                return exp;
            }
            // It cancelled a start that did not commit (the request was then sent again and
            // opened): this handover goes on as any other.
            Some((200, a)) if a["reason"] == "user_cancelled" => {}
            other => {
                let mut r = report.lock().unwrap();
                r.cancel_refused += 1;
                r.violation(format!("{sid}: a cancel during the start answered {other:?}"));
            }
        }
    }
    // The early join belongs to the try that met the hook. When that try did not commit (its
    // commit failed, or it outlived the client timeout and the request was asked again), the
    // service ended its conversation at the desk: the join was for a conversation given back,
    // it is never applied, and this handover's agent joins as any other. A retry of the same
    // request has the same handover id, so the desk's record tells: the conversation ended
    // (at once, or through the outbox a little later) while the session waits; otherwise the
    // held join is applied (by the start's function, or by the evaluator).
    let hooked = desk.state.lock().unwrap().hooked.get(&hook_key).cloned();
    let mut early = role == Role::EarlyJoin && hooked.as_deref() == Some(h.as_str());
    if early {
        let given_back = || {
            desk.state
                .lock()
                .unwrap()
                .accepted
                .iter()
                .any(|v| v["type"] == "conversation.ended" && v["conversationId"] == conv.as_str())
        };
        let mut waiting = true;
        for _ in 0..100 {
            let state = world.env.session(world.bot(model), &sid).await.map(|s| s.state);
            waiting = state == Some(handover::domain::State::Waiting);
            if !waiting || given_back() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if given_back() {
            early = false;
            let mut r = report.lock().unwrap();
            r.early_given_back += 1;
            if !waiting {
                r.violation(format!(
                    "{sid}: a join held for a conversation given back was applied to the retry"
                ));
            }
        }
    }
    if early {
        if !matches!(&hook_answer, Some((200, _))) {
            fail(format!(
                "{sid}: a join before the start's answer answered {hook_answer:?}"
            ));
        }
        exp.early_join = Some(h.clone());
        exp.early_answer = hook_answer.as_ref().map_or(Value::Null, |(_, a)| a.clone());
        // The start's function applies the held join after its commit; when it did not (it
        // died after the commit, or the step failed), the evaluator does after the held
        // event's due time (one intent period: a few of the background runs), which the wait
        // above allows for. The agent's contact center goes on once its agent is in, as the
        // script below assumes.
        if model == Model::Zendesk {
            // SunCo's join is the agent's first message: it must reach the bot too.
            let first = format!("{hook_key}-early");
            exp.to_bot.push(first.clone());
            exp.joined_by_message = Some((h.clone(), first));
        }
    }
    let mut to_agent = Vec::new();

    // Waiting: the bot stays active, and the agent sees every turn (one refused by the desk
    // for good: marked failed, and the next turns go on).
    let state = if early { "agent" } else { "waiting" };
    let rounds = if role == Role::RefusedTurn { 2 } else { rng.usize(0..3) };
    let mut refuse = role == Role::RefusedTurn;
    for _ in 0..rounds {
        for actor in ["user", "bot"] {
            let mut id = next(&actor[..1]);
            let refused = refuse && actor == "user";
            if refused {
                id = format!("{id}-{}", desk::REFUSE);
                refuse = false;
                report.lock().unwrap().turns_refused += 1;
            }
            let (status, answer) = world
                .event(model, &native(id.clone(), "message", &sid, Some((actor, &id))))
                .await;
            if status == 200 && answer["state"] == state {
                if model.relays_turns() && !refused {
                    to_agent.push(id);
                }
            } else {
                fail(format!(
                    "{sid}: a {actor} turn while {state} answered {status}: {answer}"
                ));
            }
        }
    }
    let path = rng.f64();
    let joined = early || path < 0.55;
    let ending = if joined {
        if !early {
            if model == Model::Zendesk {
                // SunCo reports no join: the agent's first message is it.
                let id = next("a");
                let (status, answer) = world
                    .deliver_callback(&mut rng, model, desk::callback(model, Cb::Message, &conv, &id))
                    .await;
                if status == 200 {
                    exp.to_bot.push(id.clone());
                    exp.joined_by_message = Some((h.clone(), id));
                } else {
                    fail(format!("{sid}: an agent message answered {status}: {answer}"));
                }
            } else {
                // An agent joins (sometimes the first message comes before the join).
                let out_of_order = rng.f64() < 0.2 || !world.out_of_order_sent.swap(true, Ordering::SeqCst);
                if out_of_order {
                    let id = next("a");
                    let (status, answer) = world
                        .deliver_callback(&mut rng, model, desk::callback(model, Cb::Message, &conv, &id))
                        .await;
                    if status == 200 {
                        exp.to_bot.push(id.clone());
                        exp.joined_by_message = Some((h.clone(), id));
                        exp.message_before_join = true;
                    } else {
                        fail(format!("{sid}: an agent message answered {status}: {answer}"));
                    }
                }
                let (status, answer) = world
                    .deliver_callback(&mut rng, model, desk::callback(model, Cb::Join, &conv, &next("j")))
                    .await;
                if status != 200 {
                    fail(format!("{sid}: agent.joined answered {status}: {answer}"));
                }
            }
        }
        for _ in 0..rng.usize(1..4) {
            let id = next("a");
            let (status, answer) = world
                .deliver_callback(&mut rng, model, desk::callback(model, Cb::Message, &conv, &id))
                .await;
            if status == 200 {
                exp.to_bot.push(id);
            } else {
                fail(format!("{sid}: an agent message answered {status}: {answer}"));
            }
            let id = next("u");
            let (status, answer) = world
                .event(model, &native(id.clone(), "message", &sid, Some(("user", &id))))
                .await;
            if status == 200 && answer["state"] == "agent" {
                if model.relays_turns() {
                    to_agent.push(id);
                }
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
            desk.close_by_agent(&conv);
            let (status, answer) = world
                .deliver_callback(&mut rng, model, desk::callback(model, Cb::Close, &conv, &next("c")))
                .await;
            if status == 200 && answer["applied"] == 1 {
                report.lock().unwrap().closes_applied += 1;
            } else {
                fail(format!("{sid}: the provider's close answered {status}: {answer}"));
            }
            "agent_closed"
        }
        Ending::Cancel => {
            let (status, answer) = world
                .event(model, &native(next("x"), "handover.cancel", &sid, None))
                .await;
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
/// Past a start intent's due time (the request budget, 6 s here, plus a minute's grace).
const INTENT_DUE_SECONDS: i64 = 6 + 60 + 5;

fn bot_yaml(bot_id: &str, platform: &str, provider: &str, platform_ref: &str, kill_switch: bool) -> String {
    let disabled = if kill_switch {
        "disabled: { reason: soak }\n"
    } else {
        ""
    };
    format!(
        "botId: {bot_id}\nplatform: {{ kind: native, outboundUrl: '{platform}', secretRef: {platform_ref} }}\nproviders:\n{provider}routing:\n  - {{ provider: desk, queue: general }}\ntimeouts: {{ noAgentSeconds: {NO_AGENT_SECONDS}, stillWaitingEverySeconds: 0, agentIdleSeconds: {NO_AGENT_SECONDS} }}\n{disabled}"
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
    let before_commit_before = handover::app::engine::failpoint_crashes_before_commit();
    let bot_platform = bot_platform(faults.clone()).await;
    let mut desks = BTreeMap::new();
    for model in Model::ALL {
        desks.insert(model, Desk::start(model, faults.clone()).await);
    }
    // The webhook model's bot keeps the plain name: the failpoints and the kill switch are
    // aimed at it.
    let bot_id = format!("soak-{}", cfg.seed);
    let bots: BTreeMap<Model, String> = Model::ALL
        .into_iter()
        .map(|m| {
            let id = if m == Model::Webhook {
                bot_id.clone()
            } else {
                format!("{bot_id}-{}", m.name())
            };
            (m, id)
        })
        .collect();
    let platform_ref = env.secret("platform", &json!({"signingSecret": "soak-platform"})).await;
    let mut yamls = BTreeMap::new();
    for model in Model::ALL {
        let desk_ref = env.secret(&format!("desk-{}", model.name()), &model.secret()).await;
        let provider = model.provider_yaml(&desks[&model].url, &desk_ref);
        let yaml = |kill| bot_yaml(&bots[&model], &bot_platform.url, &provider, &platform_ref, kill);
        yamls.insert(model, (yaml(false), yaml(true)));
        env.put_bot(&yamls[&model].0).await;
    }
    let (yaml_off, yaml_on) = yamls[&Model::Webhook].clone();

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
    let store = handover::store::DynamoStore::new(dynamo, env.table().to_owned());
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
        bots: bots.clone(),
        desks: desks.clone(),
        platform_secret: b"soak-platform".to_vec(),
        faults: faults.clone(),
        retried: AtomicU64::new(0),
        late: Mutex::new(Vec::new()),
        callbacks: AtomicU64::new(0),
        out_of_order_sent: AtomicBool::new(false),
    });
    for desk in desks.values() {
        let _ = desk.world.set(Arc::downgrade(&world));
    }
    let crash_pct = (cfg.crash_rate * 100.0).round();
    fail::cfg("engine-after-commit", &format!("{crash_pct}%return({bot_id})")).expect("the failpoint is configured");

    let report = Arc::new(Mutex::new(Report {
        seed: cfg.seed,
        sessions: cfg.sessions,
        ..Report::default()
    }));
    let webhook = Model::Webhook;

    // The kill switch, once for certain before the sessions start (the random flips below
    // may or may not meet a request): switched on, a request is refused; switched off, the
    // same session gets its handover, which is then cancelled. Before that, the function dies
    // between the provider's answer and the commit, for certain once: the bot platform gives
    // up on that event, and the user asks again after the evaluator's next run.
    let probe_flips = {
        let sid = "kill-probe";
        let mut r = report.lock().unwrap().clone();
        world.env.put_bot(&yaml_on).await;
        for n in 0..OPEN_TRIES {
            let (_, answer) = world
                .event(webhook, &crate::handover_request(&format!("kp-on-{n}"), sid))
                .await;
            if answer["reason"] == "kill_switch" {
                r.refused_by_kill_switch += 1;
                break;
            }
        }
        world.env.put_bot(&yaml_off).await;
        fail::cfg("soak-before-commit", &format!("return({bot_id})")).expect("the failpoint is configured");
        for n in 0..5 {
            let crashed = handover::app::engine::failpoint_crashes_before_commit();
            world
                .event_once(webhook, &crate::handover_request(&format!("kp-crash-{n}"), sid))
                .await;
            if handover::app::engine::failpoint_crashes_before_commit() > crashed {
                break;
            }
        }
        fail::remove("soak-before-commit");
        world.env.clock.advance(chrono::Duration::seconds(INTENT_DUE_SECONDS));
        r.starts_settled += u64::from(evaluator::run(&world.ctx, world.env.now()).await.starts_settled);
        for n in 0..OPEN_TRIES {
            let (_, answer) = world
                .event(webhook, &crate::handover_request(&format!("kp-off-{n}"), sid))
                .await;
            if answer["outcome"] == "opened" {
                r.opened_after_kill_switch += 1;
                break;
            }
        }
        for n in 0..OPEN_TRIES {
            let (status, _) = world
                .event(webhook, &native(format!("kp-x-{n}"), "handover.cancel", sid, None))
                .await;
            if status == 200 {
                break;
            }
        }
        *report.lock().unwrap() = r;
        2
    };
    fail::cfg("soak-before-commit", &format!("{crash_pct}%return({bot_id})")).expect("the failpoint is configured");

    // While sessions run: the evaluator every 150 ms, moving the clock 5 s each time (retries
    // and leases come due, timeouts do not), and the kill switch flipped now and then.
    let running = Arc::new(AtomicBool::new(true));
    let background = {
        let (world, running, yaml_on, yaml_off) = (world.clone(), running.clone(), yaml_on.clone(), yaml_off.clone());
        let seed = cfg.seed;
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed.rotate_left(17));
            let mut flips = 0u64;
            let mut settled = 0u64;
            let mut switched_on = false;
            while running.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(150)).await;
                world.env.clock.advance(chrono::Duration::seconds(5));
                settled += u64::from(evaluator::run(&world.ctx, world.env.now()).await.starts_settled);
                // Switched on for one evaluator period at a time, so no session waits long.
                if switched_on || rng.f64() < 0.15 {
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
            (flips, settled)
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
    let late: Vec<(Model, Value)> = std::mem::take(&mut *world.late.lock().unwrap());
    // Each counts as met once the service answered it (as the duplicate it is).
    for (model, body) in late {
        if world.callback(model, &body).await.0 == 200 {
            faults.count("late callback");
        }
    }
    running.store(false, Ordering::SeqCst);
    let (flips, settled) = background.await.expect("the background task does not panic");

    // The outages end. Timeouts come due: one evaluator period after the no-agent timeout
    // nobody may still be waiting. Then what is left in outboxes is delivered, and starts
    // left behind are settled.
    faults.on.store(false, Ordering::SeqCst);
    fail::remove("engine-after-commit");
    fail::remove("soak-before-commit");
    world
        .env
        .clock
        .advance(chrono::Duration::seconds(NO_AGENT_SECONDS + EVALUATOR_PERIOD_SECONDS));
    let mut final_settled = u64::from(evaluator::run(&world.ctx, world.env.now()).await.starts_settled);
    for _ in 0..40 {
        world
            .env
            .clock
            .advance(chrono::Duration::seconds(EVALUATOR_PERIOD_SECONDS));
        let r = evaluator::run(&world.ctx, world.env.now()).await;
        final_settled += u64::from(r.starts_settled);
        if r.delivered == 0 && r.retried == 0 && r.timers_fired == 0 && r.sessions == 0 && r.starts_settled == 0 {
            break;
        }
    }

    let mut report = std::mem::take(&mut *report.lock().unwrap());
    report.kill_switch_flips = flips + probe_flips;
    report.starts_settled += settled + final_settled;
    report.requests_retried = world.retried.load(Ordering::Relaxed);
    report.faults.extend(faults.counts.lock().unwrap().clone());
    let before_commit = handover::app::engine::failpoint_crashes_before_commit() - before_commit_before;
    report.faults.insert("crash before commit", before_commit);
    report.faults.insert(
        "crash after commit",
        (handover::app::engine::failpoint_crashes() - crashes_before).saturating_sub(before_commit),
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
    check(&world, &expected, &bot_platform, &mut report).await;
    report.duration = started.elapsed();
    report
}

/// Compares what the peers accepted with what the sessions expected.
async fn check(world: &World, expected: &[Expected], bot: &Peer, report: &mut Report) {
    // Receivers drop redeliveries by their id (a Help Scout thread carries none: every post
    // is a thread).
    let dedupe = |items: &[Value]| -> Vec<Value> {
        let mut seen = BTreeSet::new();
        items
            .iter()
            .filter(|v| v["id"].as_str().is_none_or(|id| seen.insert(id.to_owned())))
            .cloned()
            .collect()
    };
    let at_bot = dedupe(&bot.accepted.lock().unwrap());
    let mut at_desk = BTreeMap::new();

    // Per model: nothing left open at the provider under its own id; nothing called under an
    // id the provider does not have; a create of unknown outcome never made twice.
    for (model, desk) in &world.desks {
        let st = desk.state.lock().unwrap();
        at_desk.insert(*model, dedupe(&st.accepted));
        let stats = report.per_model.entry(model.name().to_owned()).or_default();
        stats.conversations = st.open.len();
        for (conv, _) in st.open.iter().filter(|(_, open)| **open) {
            if *model == Model::HelpScout && st.hung_creates.contains(conv) {
                // Created by a create whose answer never came: Help Scout names it only in
                // that answer, so the service cannot know it; it counts it (StartUnresolved).
                report.unresolved_left_open += 1;
                continue;
            }
            report.left_open += 1;
            let whose = expected
                .iter()
                .position(|e| e.model == *model && e.conv.values().any(|c| c == conv))
                .map_or("no handover of a session".to_owned(), |n| format!("s-{n}"));
            report.violation(format!(
                "{}: conversation {conv} ({whose}) left open at the provider",
                model.name()
            ));
        }
        if st.unknown_calls > 0 {
            report.wrong_id_calls += st.unknown_calls as usize;
            report.violation(format!(
                "{}: {} calls named a conversation the provider does not have (answered 404)",
                model.name(),
                st.unknown_calls
            ));
        }
        for reference in &st.hung_refs {
            let creates = st.creates.get(reference).copied().unwrap_or(0);
            if creates != 1 {
                report.created_twice += 1;
                report.violation(format!(
                    "{}: {creates} conversations created for {reference}, whose first create's outcome was unknown",
                    model.name()
                ));
            }
        }
    }
    let unresolved = report.service_metrics.get("StartUnresolved").copied().unwrap_or(0);
    if report.unresolved_left_open > unresolved {
        report.left_open += (report.unresolved_left_open - unresolved) as usize;
        report.violation(format!(
            "helpscout: {} conversations of unknown creates left open, {unresolved} counted (StartUnresolved)",
            report.unresolved_left_open
        ));
    }

    let mut sessions: Vec<(String, String)> = vec![(world.bot(Model::Webhook).to_owned(), "kill-probe".to_owned())];
    for (n, exp) in expected.iter().enumerate() {
        let sid = format!("s-{n}");
        sessions.push((world.bot(exp.model).to_owned(), sid.clone()));
        let stats = report.per_model.entry(exp.model.name().to_owned()).or_default();
        stats.sessions += 1;
        stats.handovers += exp.handovers.len();
        report.handovers += exp.handovers.len();
        // Turns to the agent: exactly once and in order, per conversation.
        for (h, want) in &exp.to_agent {
            report.to_agent += want.len();
            let conv = exp.conv.get(h).unwrap_or(h);
            let got: Vec<String> = at_desk[&exp.model]
                .iter()
                .filter(|v| v["type"] == "user.message" && v["conversationId"] == conv.as_str())
                .filter_map(|v| v["text"].as_str().map(str::to_owned))
                .collect();
            // Help Scout takes no idempotency key: a thread whose answer was lost (or whose
            // delivery was not marked) is added again at Help Scout itself. Counted, not a
            // violation of ours (docs/providers/helpscout.md).
            let dedupes = exp.model != Model::HelpScout;
            compare(report, &format!("{sid} → agent ({h})"), want, &got, dedupes);
        }
        // Agent messages to the bot: exactly once and in order.
        report.to_bot += exp.to_bot.len();
        let got: Vec<String> = at_bot
            .iter()
            .filter(|v| v["type"] == "agent.message" && v["sessionId"] == sid.as_str())
            .filter_map(|v| v["message"]["text"].as_str().map(str::to_owned))
            .collect();
        compare(report, &format!("agent → {sid}"), &exp.to_bot, &got, true);
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
        // An agent who joined before the contact center answered the start reached the bot
        // (webhook: that very join, by its agent; zendesk: the join its message made, and the
        // message itself is one the bot must get).
        if let Some(h) = &exp.early_join {
            let any_agent = exp.model != Model::Webhook;
            if at_bot.iter().any(|v| {
                v["type"] == "agent.joined"
                    && v["handoverId"] == h.as_str()
                    && (any_agent || v["agent"]["id"] == desk::EARLY_AGENT)
            }) {
                report.early_joins += 1;
            } else {
                report.early_lost += 1;
                report.violation(format!(
                    "{sid}: the agent joined {h} before the start's answer (answered {}); the bot never got agent.joined", exp.early_answer
                ));
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
                (Some(j), Some(m)) if j < m => {
                    if exp.message_before_join {
                        *report.faults.entry("out-of-order callback").or_default() += 1;
                    }
                }
                _ => report.violation(format!(
                    "{sid}: agent message {first} taken as the join: agent.joined at {joined:?}, the message at {message:?}"
                )),
            }
        }
    }
    for (bot_id, sid) in sessions {
        // Nobody left waiting (or with an agent) after the timeouts.
        match world.env.session(&bot_id, &sid).await.map(|s| s.state) {
            Some(State::Bot) | None => {}
            Some(other) => {
                report.still_waiting += 1;
                report.violation(format!("{sid} still in {other:?} after the timeouts"));
            }
        }
        // No start intent left behind once the evaluator has run.
        let key = handover::store::SessionKey::new(&bot_id, &sid);
        match world.ctx.store.start_intents(&key).await {
            Ok(intents) if intents.is_empty() => {}
            Ok(intents) => {
                report.intents_left += intents.len();
                report.violation(format!(
                    "{sid}: {} start intents left after the final evaluator runs",
                    intents.len()
                ));
            }
            Err(e) => report.violation(format!("{sid}: start intents unreadable: {e}")),
        }
    }
}

/// Counts lost, duplicated and out-of-order items of one stream. `dedupes`: whether the
/// receiver drops a redelivery (else a second copy is counted as the provider's own).
fn compare(report: &mut Report, stream: &str, want: &[String], got: &[String], dedupes: bool) {
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
            k if !dedupes => report.duplicated_at_provider += k - 1,
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

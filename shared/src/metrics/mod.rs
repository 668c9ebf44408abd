//! CloudWatch metrics in Embedded Metric Format (EMF): one JSON line per data point, which
//! Lambda's log pipeline turns into metrics without an API call on the hot path.
//!
//! Every metric is declared once, in [`METRICS`]: its name, unit and dimension sets. The code
//! that emits, the dashboard and alarms in `template.yaml` (checked by a test) and
//! `docs/operations.md` all follow that table.
//!
//! Each stack publishes in a namespace of its own ([`namespace`], from `METRICS_NAMESPACE`,
//! which the template sets from the stack name), so two stacks in one account never share a
//! series or an alarm. Dimension sets are few on purpose: a custom metric series is billed
//! by the month, so a bot adds only the [`BOT`] series of two metrics; everything finer (per
//! provider, per queue) stays in the EMF line as a plain property, where Logs Insights reads
//! it at no cost per series (docs/operations.md).
//!
//! Handover metrics are derived by one pure function, [`decided`], from what the core decided
//! (the session before and after, the input, the reply); the shell calls it once, after the
//! decision is final (committed, or with nothing to write). A retry after a conflict, a repeated
//! event answered from its idempotency marker and a rejected event therefore count nothing.
//! Lines go through a [`Sink`] held by the application context: stdout in Lambda, a buffer in
//! tests.

pub mod stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::config::Bot;
use crate::domain::machine::route_for;
use crate::domain::{Actor, Conditions, Decision, Effect, Event, Input, Outcome, Reply, Session, State};

/// The namespace when `METRICS_NAMESPACE` is not set (the local server, the tests).
pub const DEFAULT_NAMESPACE: &str = "Handover";

/// The environment variable naming the namespace; `template.yaml` sets it to
/// `Handover/<stack name>`.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";

/// The namespace for a value of [`NAMESPACE_VAR`]: the value itself, or [`DEFAULT_NAMESPACE`]
/// when it is missing or blank.
pub fn namespace_from(value: Option<&str>) -> String {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => DEFAULT_NAMESPACE.to_owned(),
    }
}

/// The CloudWatch namespace of every application metric of this process, read once.
pub fn namespace() -> &'static str {
    static NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAMESPACE.get_or_init(|| namespace_from(std::env::var(NAMESPACE_VAR).ok().as_deref()))
}

/// CloudWatch units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    Percent,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
        }
    }
}

/// One metric: its name, unit, the dimension sets it is published under, and what it means.
#[derive(Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    /// Each inner list is one dimension set; `[]` is the metric without dimensions, the one
    /// alarms and the dashboard's totals watch.
    pub dimensions: &'static [&'static [&'static str]],
    pub meaning: &'static str,
}

impl Metric {
    /// Every dimension key this metric's records must carry.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self.dimensions.iter().flat_map(|s| s.iter().copied()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Whether the metric is published with exactly this dimension set (order does not matter).
    pub fn has_dimension_set(&self, set: &[&str]) -> bool {
        let mut want: Vec<&str> = set.to_vec();
        want.sort_unstable();
        self.dimensions.iter().any(|d| {
            let mut have: Vec<&str> = d.to_vec();
            have.sort_unstable();
            have == want
        })
    }
}

const TOTAL: &[&str] = &[];
/// The one per-bot dimension set; only [`HANDOVER_REQUESTED`] and [`AGENT_JOINED`] use it.
pub const BOT: &[&str] = &["botId"];
const ONLY_TOTAL: &[&[&str]] = &[TOTAL];
const BY_BOT: &[&[&str]] = &[TOTAL, BOT];
const BY_TRIGGER_AND_BOT: &[&[&str]] = &[TOTAL, &["trigger"], BOT];
const BY_REASON: &[&[&str]] = &[TOTAL, &["reason"]];
const BY_DIRECTION: &[&[&str]] = &[TOTAL, &["direction"]];

/// How many values a dimension key takes, for the cost of the series it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// One per bot (`botId`).
    OnePerBot,
    /// One per provider of a bot.
    PerProvider,
    /// One per routed queue of a bot.
    PerQueue,
    /// A fixed set of values, whatever the bots.
    Fixed(u64),
}

/// The values a dimension key takes. Keys that are not dimensions of any metric (`provider`,
/// `queue`) are listed too, so a cost estimate stays right if one is made a dimension.
pub fn values(key: &str) -> Values {
    match key {
        "botId" => Values::OnePerBot,
        "provider" => Values::PerProvider,
        "queue" => Values::PerQueue,
        // Trigger's four values; `none` included for a request without one.
        "trigger" => Values::Fixed(5),
        // The five end reasons or the five unavailable reasons, plus `none`.
        "reason" => Values::Fixed(6),
        "direction" => Values::Fixed(2),
        // Unknown: counted as one value per queue, the dearest plausible case.
        _ => Values::PerQueue,
    }
}

/// The series one metric can create: `(per stack, per bot)`, for bots with `providers`
/// providers and `queues` queues. A set with a per-bot key counts per bot; the others once
/// per stack.
pub fn series(metric: &Metric, providers: u64, queues: u64) -> (u64, u64) {
    let mut per_stack = 0;
    let mut per_bot = 0;
    for set in metric.dimensions {
        let mut n = 1;
        let mut bot_bound = false;
        for key in set.iter() {
            n *= match values(key) {
                Values::OnePerBot => {
                    bot_bound = true;
                    1
                }
                Values::PerProvider => {
                    bot_bound = true;
                    providers
                }
                Values::PerQueue => {
                    bot_bound = true;
                    queues
                }
                Values::Fixed(k) => k,
            };
        }
        if bot_bound {
            per_bot += n;
        } else {
            per_stack += n;
        }
    }
    (per_stack, per_bot)
}

pub const HANDOVER_REQUESTED: Metric = Metric {
    name: "HandoverRequested",
    unit: Unit::Count,
    dimensions: BY_TRIGGER_AND_BOT,
    meaning: "a handover request decided in a session without an active handover, whatever the outcome",
};
pub const HANDOVER_OPENED: Metric = Metric {
    name: "HandoverOpened",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "a request answered `opened`: the provider accepted the conversation",
};
pub const HANDOVER_CLOSED: Metric = Metric {
    name: "HandoverClosed",
    unit: Unit::Count,
    dimensions: BY_REASON,
    meaning: "a request answered `closed` (outside hours, public holiday, no agents online), by reason",
};
pub const HANDOVER_DISABLED: Metric = Metric {
    name: "HandoverDisabled",
    unit: Unit::Count,
    dimensions: BY_REASON,
    meaning: "a request answered `disabled` (kill switch, provider unavailable), by reason",
};
pub const AGENT_JOINED: Metric = Metric {
    name: "AgentJoined",
    unit: Unit::Count,
    dimensions: BY_BOT,
    meaning: "an agent joined a waiting handover",
};
pub const TIME_TO_AGENT: Metric = Metric {
    name: "TimeToAgent",
    unit: Unit::Seconds,
    dimensions: ONLY_TOTAL,
    meaning: "seconds from the handover request to the agent's join",
};
pub const HANDOVER_ABANDONED: Metric = Metric {
    name: "HandoverAbandoned",
    unit: Unit::Count,
    dimensions: BY_REASON,
    meaning: "a handover that ended before any agent joined, by end reason (user_cancelled, no_agent_timeout, …)",
};
pub const BOT_TURNS_WHILE_WAITING: Metric = Metric {
    name: "BotTurnsWhileWaiting",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "bot turns written while the user waited for an agent",
};
pub const HANDOVER_ENDED: Metric = Metric {
    name: "HandoverEnded",
    unit: Unit::Count,
    dimensions: BY_REASON,
    meaning: "a handover ended and control went back to the bot, by end reason",
};
pub const HANDOVER_DURATION: Metric = Metric {
    name: "HandoverDuration",
    unit: Unit::Seconds,
    dimensions: ONLY_TOTAL,
    meaning: "seconds from the handover request to its end",
};
pub const OUTBOX_DELIVERED: Metric = Metric {
    name: "OutboxDelivered",
    unit: Unit::Count,
    dimensions: BY_DIRECTION,
    meaning: "an outbox item delivered, by direction (bot or provider)",
};
pub const OUTBOX_RETRIED: Metric = Metric {
    name: "OutboxRetried",
    unit: Unit::Count,
    dimensions: BY_DIRECTION,
    meaning: "a failed delivery attempt that will be retried, by direction",
};
pub const OUTBOX_GAVE_UP: Metric = Metric {
    name: "OutboxGaveUp",
    unit: Unit::Count,
    dimensions: BY_DIRECTION,
    meaning: "a delivery given up for good (a permanent error or the last attempt), by direction",
};
pub const PROVIDER_ERRORS: Metric = Metric {
    name: "ProviderErrors",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "a failed call to a provider (start, turn or close), as the circuit breaker counts them",
};
pub const PROVIDER_CIRCUIT_OPEN: Metric = Metric {
    name: "ProviderCircuitOpen",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "a failure that found the provider's circuit breaker open (it is skipped for new handovers)",
};
pub const PROVIDER_FAILOVER: Metric = Metric {
    name: "ProviderFailover",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "a handover opened at a later candidate because an earlier one was unavailable; `provider` is the one that took it",
};
pub const RELAY_LATENCY: Metric = Metric {
    name: "RelayLatency",
    unit: Unit::Milliseconds,
    dimensions: &[TOTAL, &["direction"]],
    meaning: "milliseconds from an outbox item's commit to its delivery (a relayed turn reaching the agent or the bot), by direction; retries included",
};
pub const START_UNRESOLVED: Metric = Metric {
    name: "StartUnresolved",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "a start of unknown outcome (no answer in time) at a provider that names its conversations only in its answer: a conversation may be open there that nothing can end",
};
pub const CALLBACK_EVENTS_UNREADABLE: Metric = Metric {
    name: "CallbackEventsUnreadable",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "events skipped in a provider's delivery because they could not be read (the delivery's other events were applied)",
};
pub const EVALUATOR_DURATION: Metric = Metric {
    name: "EvaluatorDuration",
    unit: Unit::Milliseconds,
    dimensions: ONLY_TOTAL,
    meaning: "wall time of one evaluator run",
};
pub const EVALUATOR_BACKLOG: Metric = Metric {
    name: "EvaluatorBacklog",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "sessions with due work (timers or outbox items) found by one evaluator run",
};
pub const EVALUATOR_BUDGET_USED: Metric = Metric {
    name: "EvaluatorBudgetUsed",
    unit: Unit::Percent,
    dimensions: ONLY_TOTAL,
    meaning: "one run's wall time as a percentage of its time budget (`RUN_BUDGET`); no work starts after 80 %",
};
pub const EVALUATOR_LEFTOVER: Metric = Metric {
    name: "EvaluatorLeftover",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "due sessions and bots one run left for the next because its budget ran out",
};
pub const EVALUATOR_ERRORS: Metric = Metric {
    name: "EvaluatorErrors",
    unit: Unit::Count,
    dimensions: ONLY_TOTAL,
    meaning: "errors one evaluator run reported (unreadable index or bots, failed timers)",
};

/// Every metric the service emits.
pub const METRICS: &[&Metric] = &[
    &HANDOVER_REQUESTED,
    &HANDOVER_OPENED,
    &HANDOVER_CLOSED,
    &HANDOVER_DISABLED,
    &AGENT_JOINED,
    &TIME_TO_AGENT,
    &HANDOVER_ABANDONED,
    &BOT_TURNS_WHILE_WAITING,
    &HANDOVER_ENDED,
    &HANDOVER_DURATION,
    &OUTBOX_DELIVERED,
    &OUTBOX_RETRIED,
    &OUTBOX_GAVE_UP,
    &PROVIDER_ERRORS,
    &PROVIDER_CIRCUIT_OPEN,
    &PROVIDER_FAILOVER,
    &RELAY_LATENCY,
    &START_UNRESOLVED,
    &CALLBACK_EVENTS_UNREADABLE,
    &EVALUATOR_DURATION,
    &EVALUATOR_BACKLOG,
    &EVALUATOR_BUDGET_USED,
    &EVALUATOR_LEFTOVER,
    &EVALUATOR_ERRORS,
];

/// The metric of that name, if the service emits one.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().copied().find(|m| m.name == name)
}

/// One data point with its dimension values.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub metric: &'static Metric,
    pub value: f64,
    pub dims: BTreeMap<&'static str, String>,
}

impl Record {
    pub fn new(metric: &'static Metric, value: f64) -> Self {
        Record {
            metric,
            value,
            dims: BTreeMap::new(),
        }
    }

    pub fn count(metric: &'static Metric) -> Self {
        Record::new(metric, 1.0)
    }

    pub fn dim(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.dims.insert(key, value.into());
        self
    }

    /// The EMF line: the metric under each of its dimension sets, in one JSON object.
    pub fn to_emf(&self, at: DateTime<Utc>) -> String {
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace(),
                    "Dimensions": self.metric.dimensions,
                    "Metrics": [{ "Name": self.metric.name, "Unit": self.metric.unit.as_str() }]
                }]
            }),
        );
        // Every value given is written: those of the dimension sets make series, the others
        // (provider, queue, …) are plain properties for Logs Insights, at no metric cost.
        for (key, v) in &self.dims {
            line.insert((*key).into(), Value::String(v.clone()));
        }
        for key in self.metric.keys() {
            // A dimension without a value would drop the whole data point in CloudWatch.
            line.entry(key).or_insert_with(|| Value::String("none".to_owned()));
        }
        line.insert(self.metric.name.into(), json!(self.value));
        Value::Object(line).to_string()
    }
}

/// Where EMF lines go.
pub trait Sink: Send + Sync {
    fn write(&self, line: &str);
}

/// Lambda: stdout, where the log pipeline picks the lines up.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdout;

impl Sink for Stdout {
    fn write(&self, line: &str) {
        println!("{line}");
    }
}

/// Nowhere (the local server unless asked).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Sink for Discard {
    fn write(&self, _line: &str) {}
}

/// Kept in memory, for tests.
#[derive(Debug, Default, Clone)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("metrics buffer").clone()
    }

    /// Takes the lines written so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("metrics buffer"))
    }
}

impl Sink for Captured {
    fn write(&self, line: &str) {
        self.0.lock().expect("metrics buffer").push(line.to_owned());
    }
}

/// Writes the records at time `at`.
pub fn emit(sink: &dyn Sink, at: DateTime<Utc>, records: &[Record]) {
    for r in records {
        sink.write(&r.to_emf(at));
    }
}

/// An EMF line read back: one metric value with its dimension values.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub dimension_sets: Vec<Vec<String>>,
    pub dims: BTreeMap<String, String>,
    /// Every string field of the line, dimensions included: what Logs Insights can group by.
    pub properties: BTreeMap<String, String>,
}

/// Reads an EMF line back, checking what CloudWatch requires of it: the `_aws` block, every
/// declared dimension present as a string, every metric present as a number.
pub fn parse(line: &str) -> Result<Vec<Parsed>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let aws = v.get("_aws").ok_or("no _aws block")?;
    aws.get("Timestamp").and_then(Value::as_i64).ok_or("no Timestamp")?;
    let properties: BTreeMap<String, String> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, x)| x.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect();
    let mut out = Vec::new();
    for directive in aws["CloudWatchMetrics"].as_array().ok_or("no CloudWatchMetrics")? {
        let namespace = directive["Namespace"].as_str().ok_or("no Namespace")?.to_owned();
        let sets: Vec<Vec<String>> = directive["Dimensions"]
            .as_array()
            .ok_or("no Dimensions")?
            .iter()
            .map(|s| {
                s.as_array()
                    .map(|keys| keys.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                    .ok_or("a dimension set is not a list")
            })
            .collect::<Result<_, _>>()?;
        let mut dims = BTreeMap::new();
        for key in sets.iter().flatten() {
            let value = v[key]
                .as_str()
                .ok_or_else(|| format!("dimension {key} has no string value"))?;
            dims.insert(key.clone(), value.to_owned());
        }
        for m in directive["Metrics"].as_array().ok_or("no Metrics")? {
            let name = m["Name"].as_str().ok_or("a metric has no Name")?.to_owned();
            let value = v[&name]
                .as_f64()
                .ok_or_else(|| format!("metric {name} has no number"))?;
            out.push(Parsed {
                namespace: namespace.clone(),
                unit: m["Unit"].as_str().unwrap_or("None").to_owned(),
                name,
                value,
                dimension_sets: sets.clone(),
                dims: dims.clone(),
                properties: properties.clone(),
            });
        }
    }
    Ok(out)
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// The metrics of one final decision: `before` is the session it was decided on, `conditions`
/// what the shell told the core about the candidates. Pure; call it once per decision that is
/// committed (or that had nothing to write), never for a retry or a repeat.
pub fn decided(
    bot: &Bot,
    before: &Session,
    input: &Input,
    conditions: &Conditions,
    decision: &Decision,
) -> Vec<Record> {
    let bot_id = before.bot_id.as_str();
    let after = &decision.session;
    let mut out = Vec::new();

    // A request in a session without a handover: counted with its outcome. A request during a
    // handover is answered with the current one and is not a new request.
    if let (Event::HandoverRequested(req), None) = (&input.event, &before.handover) {
        out.push(
            Record::count(&HANDOVER_REQUESTED)
                .dim("botId", bot_id)
                .dim("trigger", req.trigger.as_str()),
        );
        if let Reply::Handover { outcome, reason, .. } = &decision.reply {
            let reason = reason.map_or("none", |r| r.as_str());
            match (outcome, &after.handover) {
                (Outcome::Opened, Some(h)) => {
                    out.push(
                        Record::count(&HANDOVER_OPENED)
                            .dim("botId", bot_id)
                            .dim("provider", &h.provider)
                            .dim("queue", &h.queue),
                    );
                    let skipped_earlier = route_for(after, req, bot).is_ok_and(|(route, _)| {
                        route
                            .candidates
                            .iter()
                            .take_while(|c| **c != h.provider)
                            .any(|c| conditions.unavailable_providers.contains(c))
                    });
                    if skipped_earlier {
                        out.push(
                            Record::count(&PROVIDER_FAILOVER)
                                .dim("botId", bot_id)
                                .dim("provider", &h.provider),
                        );
                    }
                }
                (Outcome::Closed, _) => {
                    out.push(
                        Record::count(&HANDOVER_CLOSED)
                            .dim("botId", bot_id)
                            .dim("reason", reason),
                    );
                }
                (Outcome::Disabled, _) => {
                    out.push(
                        Record::count(&HANDOVER_DISABLED)
                            .dim("botId", bot_id)
                            .dim("reason", reason),
                    );
                }
                (Outcome::Opened, None) => {}
            }
        }
    }

    // The join: the current handover gained its `joinedAt` (from waiting, or at the start for
    // providers whose handover puts an agent in charge at once).
    if let Some(h) = &after.handover
        && let Some(joined) = h.joined_at
        && before
            .handover
            .as_ref()
            .is_none_or(|b| b.id != h.id || b.joined_at.is_none())
    {
        out.push(
            Record::count(&AGENT_JOINED)
                .dim("botId", bot_id)
                .dim("provider", &h.provider)
                .dim("queue", &h.queue),
        );
        out.push(
            Record::new(&TIME_TO_AGENT, seconds(h.requested_at, joined))
                .dim("botId", bot_id)
                .dim("provider", &h.provider)
                .dim("queue", &h.queue),
        );
    }

    if let Some(h) = &before.handover {
        // The end: the handover moved to `lastHandover` with its reason.
        if after.handover.is_none()
            && let Some(last) = after.last_handover.as_ref().filter(|l| l.id == h.id)
            && let (Some(reason), Some(ended)) = (last.end_reason, last.ended_at)
        {
            out.push(
                Record::count(&HANDOVER_ENDED)
                    .dim("botId", bot_id)
                    .dim("reason", reason.as_str()),
            );
            out.push(
                Record::new(&HANDOVER_DURATION, seconds(last.requested_at, ended))
                    .dim("botId", bot_id)
                    .dim("provider", &last.provider),
            );
            if last.joined_at.is_none() {
                out.push(
                    Record::count(&HANDOVER_ABANDONED)
                        .dim("botId", bot_id)
                        .dim("reason", reason.as_str())
                        .dim("queue", &last.queue),
                );
            }
        }
    }

    if before.state == State::Waiting {
        let bot_turns = decision.entries.iter().filter(|e| e.actor == Actor::Bot).count();
        if bot_turns > 0 {
            out.push(Record::new(&BOT_TURNS_WHILE_WAITING, bot_turns as f64).dim("botId", bot_id));
        }
    }
    out
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Retried,
    GaveUp,
}

/// The metric of one delivery attempt of an outbox effect.
pub fn delivery(item: &crate::store::OutboxItem, what: Delivery) -> Vec<Record> {
    let metric = match what {
        Delivery::Delivered => &OUTBOX_DELIVERED,
        Delivery::Retried => &OUTBOX_RETRIED,
        Delivery::GaveUp => &OUTBOX_GAVE_UP,
    };
    let direction = match item.effect {
        Effect::Bot { .. } => "bot",
        Effect::Provider { .. } => "provider",
    };
    vec![
        Record::count(metric)
            .dim("botId", &item.key.bot_id)
            .dim("direction", direction),
    ]
}

/// A failed call to a provider (start, turn or close), as the circuit breaker counts it.
pub fn provider_failed(bot_id: &str, provider_id: &str) -> Vec<Record> {
    vec![
        Record::count(&PROVIDER_ERRORS)
            .dim("botId", bot_id)
            .dim("provider", provider_id),
    ]
}

/// How long a delivered item took from its commit.
pub fn relay_latency(item: &crate::store::OutboxItem, took: chrono::TimeDelta) -> Vec<Record> {
    let direction = match item.effect {
        Effect::Bot { .. } => "bot",
        Effect::Provider { .. } => "provider",
    };
    vec![Record::new(&RELAY_LATENCY, took.num_milliseconds().max(0) as f64).dim("direction", direction)]
}

/// A start of unknown outcome whose conversation, if any, cannot be found to end it.
pub fn start_unresolved(bot_id: &str, provider_id: &str) -> Vec<Record> {
    vec![
        Record::count(&START_UNRESOLVED)
            .dim("botId", bot_id)
            .dim("provider", provider_id),
    ]
}

/// Events of a provider's delivery that could not be read and were skipped.
pub fn callback_unreadable(bot_id: &str, provider_id: &str, count: usize) -> Vec<Record> {
    vec![
        Record::new(&CALLBACK_EVENTS_UNREADABLE, count as f64)
            .dim("botId", bot_id)
            .dim("provider", provider_id),
    ]
}

/// A failure that left the provider's circuit breaker open.
pub fn circuit_open(bot_id: &str, provider_id: &str) -> Vec<Record> {
    vec![
        Record::count(&PROVIDER_CIRCUIT_OPEN)
            .dim("botId", bot_id)
            .dim("provider", provider_id),
    ]
}

/// What one evaluator run did, for its metrics.
#[derive(Debug, Clone, Copy)]
pub struct EvaluatorRun {
    /// Sessions with due work it handled.
    pub due_sessions: u32,
    /// Due sessions and bots it left for the next run.
    pub leftover: u32,
    pub errors: u32,
    /// When it began.
    pub started: tokio::time::Instant,
    /// Its time budget (`evaluator::RUN_BUDGET`).
    pub budget: Duration,
}

/// The metrics of one evaluator run: its wall time, the due work it handled and left over,
/// its share of the time budget and its errors.
pub fn evaluator_run(run: EvaluatorRun) -> Vec<Record> {
    let elapsed = run.started.elapsed();
    let budget = run.budget.as_secs_f64().max(f64::EPSILON);
    vec![
        Record::new(&EVALUATOR_DURATION, elapsed.as_secs_f64() * 1000.0),
        Record::new(&EVALUATOR_BACKLOG, f64::from(run.due_sessions)),
        Record::new(&EVALUATOR_BUDGET_USED, elapsed.as_secs_f64() / budget * 100.0),
        Record::new(&EVALUATOR_LEFTOVER, f64::from(run.leftover)),
        Record::new(&EVALUATOR_ERRORS, f64::from(run.errors)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BotConfig, Compile, Document};
    use crate::domain::{Agent, Message, Speaker, TimerKind, Trigger, decide};
    use proptest::prelude::*;

    fn bot() -> Bot {
        let yaml = "botId: acme\nplatform: { kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: p }\nproviders:\n  - { id: desk, kind: webhook, url: 'https://desk.example.com', secretRef: d }\n  - { id: backup, kind: webhook, url: 'https://backup.example.com', secretRef: b }\nrouting:\n  - { provider: desk, queue: general, failover: [backup] }\ntimeouts: { noAgentSeconds: 300, stillWaitingEverySeconds: 60, agentIdleSeconds: 600 }\n";
        Bot::new(BotConfig::parse(yaml).unwrap()).unwrap()
    }

    /// One step of a random conversation: what happens, after how many seconds, and which
    /// providers are down at that moment.
    fn step() -> impl Strategy<Value = (u8, i64, u8)> {
        (0u8..10, 0i64..400, 0u8..4)
    }

    fn event(kind: u8, current: &str) -> Event {
        let current = current.to_owned();
        let agent = Agent {
            id: "a-1".into(),
            name: None,
        };
        match kind {
            0 => Event::HandoverRequested(crate::domain::HandoverRequest {
                trigger: Trigger::ExplicitRequest,
                provider: None,
                queue: None,
                language: None,
                variables: Default::default(),
                tags: Vec::new(),
                summary: None,
                provider_conversation_id: None,
            }),
            1 => Event::UserCancelled,
            2 => Event::AgentJoined {
                handover_id: current,
                agent,
            },
            3 => Event::AgentMessage {
                handover_id: current,
                agent: Some(agent),
                message: Message::text("hello"),
            },
            4 => Event::ConversationClosed { handover_id: current },
            5 => Event::TimerFired {
                handover_id: current,
                timer: TimerKind::NoAgent,
            },
            6 => Event::TimerFired {
                handover_id: current,
                timer: TimerKind::AgentIdle,
            },
            7 => Event::ProviderFailed { handover_id: current },
            8 => Event::Message {
                speaker: Speaker::Bot,
                message: Message::text("bot turn"),
            },
            _ => Event::Message {
                speaker: Speaker::User,
                message: Message::text("user turn"),
            },
        }
    }

    proptest! {
        /// Over any sequence of decisions, the counts tell one consistent story: every request
        /// has one outcome, every opened handover ends once or is still open, a join happens at
        /// most once per handover, and an abandoned handover is one that ended unjoined.
        #[test]
        fn metrics_of_any_conversation_add_up(steps in proptest::collection::vec(step(), 1..60)) {
            let bot = bot();
            let t0 = DateTime::from_timestamp(1_795_600_800, 0).unwrap();
            let mut now = t0;
            let mut session = Session::new("acme", "s-1", t0);
            let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
            let mut joined_handovers = std::collections::BTreeSet::new();
            for (i, (kind, wait, down)) in steps.into_iter().enumerate() {
                now += chrono::Duration::seconds(wait);
                let mut conditions = Conditions::default();
                for (bit, p) in [(1, "desk"), (2, "backup")] {
                    if down & bit != 0 {
                        conditions.unavailable_providers.insert(p.to_owned());
                    }
                }
                let current = session.handover.as_ref().map_or("h-none".to_owned(), |h| h.id.clone());
                let input = Input::new(event(kind, &current));
                let Ok(decision) = decide(&session, &input, &bot, &conditions, now, &format!("h-{i}")) else {
                    continue;
                };
                for r in decided(&bot, &session, &input, &conditions, &decision) {
                    prop_assert!(r.value >= 0.0);
                    for key in r.metric.keys() {
                        prop_assert!(key == "botId" || r.dims.contains_key(key), "{} lacks {}", r.metric.name, key);
                    }
                    *counts.entry(r.metric.name).or_default() += r.value;
                    if r.metric.name == "AgentJoined" {
                        prop_assert!(joined_handovers.insert(current.clone()), "joined twice");
                    }
                }
                session = decision.session;
            }
            let n = |name: &str| counts.get(name).copied().unwrap_or(0.0);
            let open = if session.handover.is_some() { 1.0 } else { 0.0 };
            let joined_now = if session.handover.as_ref().is_some_and(|h| h.joined_at.is_some()) { 1.0 } else { 0.0 };
            prop_assert_eq!(n("HandoverRequested"), n("HandoverOpened") + n("HandoverClosed") + n("HandoverDisabled"));
            prop_assert_eq!(n("HandoverOpened"), n("HandoverEnded") + open);
            prop_assert_eq!(n("HandoverEnded"), n("HandoverAbandoned") + (n("AgentJoined") - joined_now));
            prop_assert!(n("ProviderFailover") <= n("HandoverOpened"));
        }
    }

    #[test]
    fn every_metric_is_declared_once_with_the_total_first() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        for m in METRICS {
            assert_eq!(
                m.dimensions.first(),
                Some(&TOTAL),
                "{} is published without dimensions",
                m.name
            );
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let at = DateTime::from_timestamp(1_795_600_800, 0).unwrap();
        let line = Record::new(&TIME_TO_AGENT, 42.5)
            .dim("botId", "acme")
            .dim("provider", "desk")
            .dim("queue", "general")
            .to_emf(at);
        let parsed = parse(&line).unwrap();
        assert_eq!(parsed.len(), 1);
        let p = &parsed[0];
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str(), p.unit.as_str()),
            ("Handover", "TimeToAgent", "Seconds")
        );
        assert_eq!(p.value, 42.5);
        // Not a dimension of TimeToAgent, but a field of its line for Logs Insights.
        assert_eq!(p.properties["queue"], "general");
        assert!(!p.dims.contains_key("queue"));
        assert_eq!(p.dimension_sets.len(), TIME_TO_AGENT.dimensions.len());
    }

    #[test]
    fn series_count_per_stack_and_per_bot() {
        const M: Metric = Metric {
            name: "M",
            unit: Unit::Count,
            dimensions: &[TOTAL, &["reason"], BOT, &["botId", "provider"], &["botId", "queue"]],
            meaning: "",
        };
        // Stack: the total and 6 reasons; bot: itself, 2 providers, 3 queues.
        assert_eq!(series(&M, 2, 3), (1 + 6, 1 + 2 + 3));
        assert_eq!(series(&EVALUATOR_DURATION, 2, 3), (1, 0));
    }

    #[test]
    fn the_namespace_is_the_variable_or_the_default() {
        assert_eq!(
            namespace_from(Some("Handover/handover-staging")),
            "Handover/handover-staging"
        );
        assert_eq!(namespace_from(Some("  ")), DEFAULT_NAMESPACE);
        assert_eq!(namespace_from(None), DEFAULT_NAMESPACE);
    }

    #[test]
    fn a_missing_dimension_value_still_makes_a_valid_line() {
        let at = DateTime::from_timestamp(0, 0).unwrap();
        let line = Record::count(&HANDOVER_CLOSED).dim("botId", "acme").to_emf(at);
        assert_eq!(parse(&line).unwrap()[0].dims["reason"], "none");
    }
}

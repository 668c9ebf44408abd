//! The scheduled evaluator: every minute, fire due timers and redeliver due outbox items,
//! found through the sparse due index (never a scan), then refresh availability. Safe to run
//! twice at once: timers fire through the version-checked commit, outbox items are claimed
//! before delivery.
//!
//! A run keeps a time budget: due work first, in an order that starts at a random point so no
//! session or shard is starved when runs overrun; availability after, a few bots at a time;
//! nothing is started that could not finish before the deadline. What is left is counted and
//! picked up by the next run. Due sessions are worked on concurrently, within bulkheads: a
//! global bound and one per destination (each provider and each bot platform of a bot), so a
//! hanging destination holds only its own slots ([`Bulkheads`]).
//!
//! **Fan-out.** In AWS the schedule starts a state machine (template.yaml, `EvaluatorRun`),
//! not the function: its first step is the scheduled run ([`run_scheduled`]), which reads the
//! due index and, when more is due than one invocation takes on ([`INLINE_LIMIT`]), works on
//! none of it and answers the shards that hold due work (`handOff`). The state machine's `Map`
//! then invokes the function once per such shard (`{"shard": n}`, [`run_shard`]), each with a
//! budget of its own. Invocations that overlap (a shard still running when the next minute
//! hands it on again) are safe for the reasons above.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Answer, Command, Create, Idempotency};
use super::outbox;
use crate::domain::{Effect, Event, Input, Reply, Session, TimerKind};
use crate::metrics;
use crate::store::{Due, OutboxStatus, SessionKey, Versioned};

/// Work items read per shard and run; the rest waits for the next minute. Above what one
/// invocation drains in its budget at the bulkheads' bound, so the bound, not the read, is what
/// limits a run.
pub const BATCH_LIMIT: usize = 10_000;

/// Due sessions a scheduled run works on itself. When more are due, the run hands every shard
/// with due work to an invocation of its own (the state machine's `Map`) and works on none:
/// far below what one invocation drains (docs/performance.md), so a run that keeps the work is
/// sure to finish it, and a minute with more never waits for one invocation.
pub const INLINE_LIMIT: usize = 1_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Bots whose availability was recomputed.
    pub bots: u32,
    /// Availability documents written (only those that changed).
    pub availability_written: u32,
    pub sessions: u32,
    pub timers_fired: u32,
    pub delivered: u32,
    pub retried: u32,
    pub gave_up: u32,
    pub errors: u32,
    /// Due-index entries that could not be read and were skipped.
    pub unreadable: u32,
    /// Starts left behind by a function that stopped before its commit, ended by this run.
    pub starts_settled: u32,
    /// Due sessions left for the next run because the budget ran out.
    pub backlog: u32,
    /// Bots whose availability was not refreshed because the budget ran out.
    pub bots_skipped: u32,
    /// Due polls not sent because the provider's circuit breaker was open.
    pub polls_skipped: u32,
    /// Due sessions a scheduled run found and handed to the shards' own invocations (at least
    /// this many: it stops reading once it knows it hands them on).
    pub handed_off: u32,
    pub budget_exhausted: bool,
}

/// What a scheduled run answers the state machine: its report, and the shards it hands on,
/// each to an invocation of its own (empty when it kept the due work).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduled {
    #[serde(flatten)]
    pub report: Report,
    pub hand_off: Vec<u32>,
}

/// The evaluator function's budget: its `Timeout: 60` in template.yaml minus a margin.
pub const RUN_BUDGET: Duration = Duration::from_secs(50);

/// The longest one unit of work may take (a session's timers and deliveries: a few HTTP calls
/// of at most 8 s each); none is started with less than this left.
pub const WORK_RESERVE: Duration = Duration::from_secs(10);

/// Bots whose availability is refreshed at once.
pub const AVAILABILITY_CONCURRENCY: usize = 8;

/// The Lambda handler, with the default budget (see [`handle_until`]).
pub async fn handle(ctx: &AppContext, event: serde_json::Value) -> serde_json::Value {
    handle_until(ctx, &event, Instant::now() + RUN_BUDGET).await
}

/// The Lambda handler with the invocation's own deadline (the Lambda context's, minus a
/// margin). `{"shard": n}` is one shard handed on by a scheduled run ([`run_shard`]); any
/// other JSON object, `{}` and the scheduler's payload included, is a scheduled run
/// ([`run_scheduled`]), answered with its report and `handOff`.
pub async fn handle_until(ctx: &AppContext, event: &serde_json::Value, deadline: Instant) -> serde_json::Value {
    let now = ctx.clock.now();
    match event.get("shard").and_then(serde_json::Value::as_u64) {
        Some(shard) => {
            let shard = u32::try_from(shard).unwrap_or(u32::MAX);
            serde_json::to_value(run_shard(ctx, shard, now, deadline).await).unwrap_or_default()
        }
        None => serde_json::to_value(run_scheduled(ctx, now, deadline).await).unwrap_or_default(),
    }
}

/// The run's deadline from the invocation's: 5 s before it (to report and flush logs), and
/// never more than [`RUN_BUDGET`] (also when the runtime gave no deadline).
pub fn deadline_from(lambda_deadline: std::time::SystemTime) -> Instant {
    let by_budget = Instant::now() + RUN_BUDGET;
    if lambda_deadline <= std::time::UNIX_EPOCH {
        return by_budget;
    }
    let left = lambda_deadline
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(Duration::from_secs(5));
    by_budget.min(Instant::now() + left)
}

/// One evaluator run at `now`, with the default budget, all due work in this process (the
/// local `handover serve` and the tests; in AWS see [`run_scheduled`]).
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> Report {
    run_until(ctx, now, Instant::now() + RUN_BUDGET).await
}

/// One evaluator run at `now` that starts no work it could not finish by `deadline`.
pub async fn run_until(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    process_due(ctx, now, deadline, &mut report).await;
    refresh_availability(ctx, now, deadline, &mut report).await;
    finish(ctx, report, started)
}

/// The scheduled run in AWS, with the default bounds: see [`run_scheduled_with`].
pub async fn run_scheduled(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant) -> Scheduled {
    run_scheduled_with(ctx, now, deadline, Bulkheads::default(), INLINE_LIMIT).await
}

/// The scheduled run: reads every shard of the due index; when at most `inline_limit` sessions
/// are due, works on them here, as [`run_until`]; otherwise hands every shard with due work on
/// (`hand_off`, one invocation each: [`run_shard`]) and works on none. Then refreshes
/// availability, which only the scheduled run does.
pub async fn run_scheduled_with(
    ctx: &AppContext,
    now: DateTime<Utc>,
    deadline: Instant,
    bulkheads: Bulkheads,
    inline_limit: usize,
) -> Scheduled {
    let started = Instant::now();
    let mut report = Report::default();
    let shards: Vec<u32> = (0..ctx.store.due_shards_to_read()).collect();
    // Enough to know whether the work stays here; the shards' invocations read their own.
    let found = read_due(ctx, &shards, now, inline_limit.saturating_add(1), &mut report).await;
    let due: usize = found.iter().map(|(_, work)| work.len()).sum();
    let mut hand_off = Vec::new();
    if due > inline_limit {
        hand_off = found
            .iter()
            .filter(|(_, work)| !work.is_empty())
            .map(|(shard, _)| *shard)
            .collect();
        report.handed_off = u32::try_from(due).unwrap_or(u32::MAX);
        tracing::info!(due, shards = ?hand_off, "more due than one invocation takes on; shards handed on");
    } else {
        let work = found.into_iter().flat_map(|(_, work)| work).collect();
        work_through(ctx, work, now, deadline, bulkheads, &mut report).await;
    }
    refresh_availability(ctx, now, deadline, &mut report).await;
    Scheduled {
        report: finish(ctx, report, started),
        hand_off,
    }
}

/// One shard's due work, handed on by a scheduled run: read (up to [`BATCH_LIMIT`]) and worked
/// through within the default bounds. No availability: the scheduled run does that.
pub async fn run_shard(ctx: &AppContext, shard: u32, now: DateTime<Utc>, deadline: Instant) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    let found = read_due(ctx, &[shard], now, BATCH_LIMIT, &mut report).await;
    let work = found.into_iter().flat_map(|(_, work)| work).collect();
    work_through(ctx, work, now, deadline, Bulkheads::default(), &mut report).await;
    finish(ctx, report, started)
}

/// The run's metrics and log line.
fn finish(ctx: &AppContext, mut report: Report, started: Instant) -> Report {
    report.budget_exhausted = report.backlog + report.bots_skipped > 0;
    ctx.record(&metrics::evaluator_run(metrics::EvaluatorRun {
        due_sessions: report.sessions,
        leftover: report.backlog.saturating_add(report.bots_skipped),
        errors: report.errors,
        started,
        budget: RUN_BUDGET,
    }));
    if report.budget_exhausted {
        tracing::warn!(?report, "evaluator budget exhausted; the rest waits for the next run");
    } else {
        tracing::info!(?report, "evaluator run");
    }
    report
}

/// Whether a unit of work may still start.
fn time_left(deadline: Instant) -> bool {
    Instant::now() + WORK_RESERVE <= deadline
}

/// Due sessions in flight at once. A unit waits on the network almost all the time (4–6
/// DynamoDB requests and a delivery or two), so the bound is what sets a run's throughput: at
/// 10 ms a request and 200 ms a delivery, 256 in flight work through about 47,000 due sessions a
/// minute (64: about 14,000; docs/performance.md, `make bench`). Memory: units that wait keep
/// their heavy parts boxed (see `unit`), and a run of 10,000 added at most 77 MiB to the bench's
/// whole process, store and receivers included. CPU is the limit of a 256 MB function (about a
/// seventh of a vCPU): the bench measured 0.4 ms of CPU per unit without the AWS SDK's share, so
/// the full rate needs more memory (more CPU) or the fan-out over shards.
pub const DUE_CONCURRENCY: usize = 256;

/// Units in flight per provider of one bot: a provider that hangs holds at most these.
pub const PER_PROVIDER: usize = 8;

/// Units in flight per bot platform. Larger than [`PER_PROVIDER`]: units of a hanging provider
/// hold a platform slot too (they may send the user a message), and must leave the bot's other
/// providers room.
pub const PER_PLATFORM: usize = 16;

/// The bounds of one run's due work: in flight at once, and per destination (bulkheads), so
/// a slow or hanging destination takes only its own slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulkheads {
    pub global: usize,
    pub per_provider: usize,
    pub per_platform: usize,
}

impl Default for Bulkheads {
    fn default() -> Self {
        Bulkheads {
            global: DUE_CONCURRENCY,
            per_provider: PER_PROVIDER,
            per_platform: PER_PLATFORM,
        }
    }
}

impl Bulkheads {
    /// One session at a time, in order (the evaluator before the bulkheads; kept for the
    /// benchmark's side-by-side figures).
    pub const SEQUENTIAL: Bulkheads = Bulkheads {
        global: 1,
        per_provider: 1,
        per_platform: 1,
    };
}

/// Where a unit of due work delivers. Ordered so that permits are always taken providers
/// first, platform last: no two units wait on each other's permits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Destination {
    Provider { bot_id: String, provider_id: String },
    Platform { bot_id: String },
}

/// The run's semaphores: one global, one per destination (made on first use).
struct Gates {
    bulkheads: Bulkheads,
    global: Arc<Semaphore>,
    destinations: std::sync::Mutex<HashMap<Destination, Arc<Semaphore>>>,
    /// Circuit breakers read in this run, per bot and provider (one read each).
    breakers: tokio::sync::Mutex<HashMap<(String, String), bool>>,
    deadline: Instant,
}

/// A unit that could not start before the deadline: left for the next run.
struct NoTime;

impl Gates {
    fn new(bulkheads: Bulkheads, deadline: Instant) -> Self {
        Gates {
            bulkheads,
            global: Arc::new(Semaphore::new(bulkheads.global.max(1))),
            destinations: std::sync::Mutex::default(),
            breakers: tokio::sync::Mutex::default(),
            deadline,
        }
    }

    /// Waits for a permit, but never past the last moment a unit may start; and then only
    /// if the unit can still finish.
    async fn permit(&self, semaphore: Arc<Semaphore>) -> Result<OwnedSemaphorePermit, NoTime> {
        let last_start = self.deadline.checked_sub(WORK_RESERVE).unwrap_or(self.deadline);
        match tokio::time::timeout_at(last_start, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) if time_left(self.deadline) => Ok(permit),
            _ => Err(NoTime),
        }
    }

    /// One of the run's global slots.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, NoTime> {
        self.permit(self.global.clone()).await
    }

    /// The permits of every destination of a unit, in [`Destination`] order.
    async fn destinations(&self, wanted: BTreeSet<Destination>) -> Result<Vec<OwnedSemaphorePermit>, NoTime> {
        let mut permits = Vec::with_capacity(wanted.len());
        for destination in wanted {
            let semaphore = {
                let mut map = self
                    .destinations
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let size = match destination {
                    Destination::Provider { .. } => self.bulkheads.per_provider,
                    Destination::Platform { .. } => self.bulkheads.per_platform,
                };
                map.entry(destination)
                    .or_insert_with(|| Arc::new(Semaphore::new(size.max(1))))
                    .clone()
            };
            permits.push(self.permit(semaphore).await?);
        }
        Ok(permits)
    }

    /// Whether the provider's circuit breaker is open, read once per run and provider.
    async fn breaker_open(&self, ctx: &AppContext, bot_id: &str, provider_id: &str, now: DateTime<Utc>) -> bool {
        let key = (bot_id.to_owned(), provider_id.to_owned());
        let mut breakers = self.breakers.lock().await;
        if let Some(open) = breakers.get(&key) {
            return *open;
        }
        let open = match ctx.store.intake_state(bot_id, &[provider_id.to_owned()]).await {
            Ok((health, _)) => health.iter().any(|h| h.is_open(now)),
            Err(e) => {
                tracing::warn!(error = %e, "provider health unreadable; assuming healthy");
                false
            }
        };
        breakers.insert(key, open);
        open
    }
}

/// Fires due timers and redelivers due outbox items, found through the sparse due index, with
/// the default [`Bulkheads`].
pub async fn process_due(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant, report: &mut Report) {
    process_due_with(ctx, now, deadline, Bulkheads::default(), report).await;
}

/// [`process_due`] within the given bounds. Each due session is a unit: it is read (in a
/// global slot), then waits for its destinations' permits holding no global slot, then does
/// its work in a global slot again. A unit whose permits do not come before the last start
/// time is left for the next run, like one that finds too little time left.
pub async fn process_due_with(
    ctx: &AppContext,
    now: DateTime<Utc>,
    deadline: Instant,
    bulkheads: Bulkheads,
    report: &mut Report,
) {
    let shards: Vec<u32> = (0..ctx.store.due_shards_to_read()).collect();
    let found = read_due(ctx, &shards, now, BATCH_LIMIT, report).await;
    let work = found.into_iter().flat_map(|(_, work)| work).collect();
    work_through(ctx, work, now, deadline, bulkheads, report).await;
}

/// The due work of each of `shards`, up to `limit` entries a shard.
async fn read_due(
    ctx: &AppContext,
    shards: &[u32],
    now: DateTime<Utc>,
    limit: usize,
    report: &mut Report,
) -> Vec<(u32, Vec<Due>)> {
    let mut found = Vec::with_capacity(shards.len());
    for &shard in shards {
        match ctx.store.due(shard, now, limit).await {
            Ok(batch) => {
                found.push((shard, batch.due));
                report.unreadable += batch.unreadable;
            }
            Err(e) => {
                tracing::error!(shard, error = %e, "due index unreadable");
                report.errors += 1;
            }
        }
    }
    found
}

/// Works through `work` within `bulkheads`, starting nothing that could not finish by
/// `deadline`.
async fn work_through(
    ctx: &AppContext,
    work: Vec<Due>,
    now: DateTime<Utc>,
    deadline: Instant,
    bulkheads: Bulkheads,
    report: &mut Report,
) {
    // A session's entry may sit in two shards while their count changes: once is enough.
    let work: BTreeSet<Due> = work.into_iter().collect();
    // Start at a random point: when a run cannot finish, the next one does not begin with the
    // same sessions again, so none is starved (the semaphores are fair: units start in order).
    let mut work: Vec<Due> = work.into_iter().collect();
    if !work.is_empty() {
        let start = fastrand::usize(0..work.len());
        work.rotate_left(start);
    }
    let gates = Gates::new(bulkheads, deadline);
    let outcomes: Vec<Report> = if bulkheads.global <= 1 {
        let mut outcomes = Vec::with_capacity(work.len());
        for due in work {
            outcomes.push(unit(ctx, &gates, due, now).await);
        }
        outcomes
    } else {
        // At most one batch per shard: every unit is a future here, but only `global` of them
        // read or work at once.
        work.into_iter()
            .map(|due| unit(ctx, &gates, due, now))
            .collect::<FuturesUnordered<_>>()
            .collect()
            .await
    };
    for o in outcomes {
        report.sessions += o.sessions;
        report.timers_fired += o.timers_fired;
        report.delivered += o.delivered;
        report.retried += o.retried;
        report.gave_up += o.gave_up;
        report.errors += o.errors;
        report.backlog += o.backlog;
        report.polls_skipped += o.polls_skipped;
        report.starts_settled += o.starts_settled;
    }
}

/// One due session: what it did, as a report of its own. Every unit of a run is a future from
/// the start, so each keeps its heavy parts (the bot's loading, the engine, the deliveries)
/// boxed until it reaches them: a unit that waits is a few hundred bytes, not the tens of kB
/// of a unit at work, and a run of 10,000 due sessions fits a 256 MB function.
async fn unit(ctx: &AppContext, gates: &Gates, due: Due, now: DateTime<Utc>) -> Report {
    let mut report = Report::default();
    let done = match due {
        Due::Timer(key) => timer_unit(ctx, gates, &key, now, &mut report).await,
        Due::Outbox(key) => outbox_unit(ctx, gates, &key, &mut report).await,
        Due::Start(key) => start_unit(ctx, gates, &key, now, &mut report).await,
    };
    match done {
        Ok(()) => report.sessions = 1,
        Err(NoTime) => {
            report = Report {
                backlog: 1,
                ..Report::default()
            }
        }
    }
    report
}

/// A session with a start left behind by a function that stopped: what the start may have
/// opened is ended (`start::settle_left_behind`). Rare, and a call or two: a global slot only.
async fn start_unit(
    ctx: &AppContext,
    gates: &Gates,
    key: &SessionKey,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), NoTime> {
    let _slot = gates.slot().await?;
    match Box::pin(ctx.bot(&key.bot_id)).await {
        Ok(bot) => match Box::pin(super::start::settle_left_behind(ctx, &bot, key, now)).await {
            Ok(n) => {
                report.starts_settled += n;
                if let Err(e) = Box::pin(settle_held(ctx, &bot, key)).await {
                    tracing::error!(bot_id = %key.bot_id, session = %key.log_ref(), error = %e, "held events unreadable");
                    report.errors += 1;
                }
            }
            Err(e) => {
                tracing::error!(bot_id = %key.bot_id, session = %key.log_ref(), error = %e, "start intents unreadable");
                report.errors += 1;
            }
        },
        Err(e) => {
            tracing::error!(bot_id = %key.bot_id, error = %e, "bot unavailable to settle a start left behind");
            report.errors += 1;
        }
    }
    Ok(())
}

/// Events held for the session's starts (in the due index, found with the starts left behind;
/// here rather than in `start`, which the engine imports): the start's own
/// function applies them after its commit, but a failed read, a failed step or a crash after
/// the commit leaves them to nobody else. One whose start committed (its handover is the
/// session's, current or last) is applied here, under the provider's event id (a repeat if
/// the start's function applied it after all), then dropped; one whose start is still in
/// flight is left to that start; one whose start ended without a commit is dropped.
pub(super) async fn settle_held(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
) -> Result<(), crate::store::StoreError> {
    let held = ctx.store.early_events(key).await?;
    if held.is_empty() {
        return Ok(());
    }
    // The intents before the session: a start that commits between the two reads is then seen
    // committed, never as ended (the commit removes its intent and records its handover at once).
    let in_flight = ctx.store.start_intents(key).await?;
    let session = ctx.store.load_session(key).await?.map(|v| v.value);
    for event in held {
        let committed = session.as_ref().is_some_and(|s| {
            [&s.handover, &s.last_handover]
                .into_iter()
                .flatten()
                .any(|h| h.id == event.handover_id && h.provider == event.provider)
        });
        if !committed
            && in_flight
                .iter()
                .any(|i| i.handover_id == event.handover_id && i.provider == event.provider)
        {
            continue;
        }
        if committed {
            let f = super::provider_events::early_follow_up(key, event.clone());
            let command = engine::Command {
                idempotency: f.idempotency,
                ..engine::Command::internal(f.key, f.input)
            };
            match Box::pin(engine::apply(ctx, bot, command)).await {
                // Applied, a repeat, or no longer applicable (the handover moved on): done.
                Ok(_) | Err(engine::EngineError::Rejected(_) | engine::EngineError::UnknownSession(_)) => {}
                Err(e) => {
                    // Kept (still due): the next run tries again.
                    tracing::warn!(bot_id = %key.bot_id, handover_id = %event.handover_id, error = %e, "an event held for a committed start not applied; the evaluator tries again");
                    continue;
                }
            }
        }
        if let Err(e) = ctx.store.drop_early(key, &event.provider, &event.event_id).await {
            // Still due: the next run finds it again, and a repeat changes nothing.
            tracing::warn!(bot_id = %key.bot_id, handover_id = %event.handover_id, error = %e, "a held event not dropped; the evaluator tries again");
        }
    }
    Ok(())
}

async fn timer_unit(
    ctx: &AppContext,
    gates: &Gates,
    key: &SessionKey,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), NoTime> {
    let read = {
        let _slot = gates.slot().await?;
        match Box::pin(ctx.bot(&key.bot_id)).await {
            Ok(bot) => ctx.store.load_session(key).await.map(|s| (bot, s)).map_err(Into::into),
            Err(e) => Err(e),
        }
    };
    let result = match read {
        Ok((_, None)) => Ok(0),
        Ok((bot, Some(loaded))) => {
            let mut wanted = BTreeSet::from([Destination::Platform {
                bot_id: key.bot_id.clone(),
            }]);
            let provider = loaded.value.handover.as_ref().map(|h| h.provider.clone());
            if let Some(provider_id) = &provider {
                wanted.insert(Destination::Provider {
                    bot_id: key.bot_id.clone(),
                    provider_id: provider_id.clone(),
                });
            }
            let _permits = gates.destinations(wanted).await?;
            let _slot = gates.slot().await?;
            // Polling a provider whose breaker is open only adds to its trouble: the poll
            // timer still fires (and re-arms), so it is asked again next time.
            let poll_due = loaded.value.timers.poll_at.is_some_and(|at| at <= now);
            let may_poll = match &provider {
                Some(provider_id) if poll_due => {
                    !Box::pin(gates.breaker_open(ctx, &key.bot_id, provider_id, now)).await
                }
                _ => true,
            };
            if poll_due && !may_poll {
                report.polls_skipped += 1;
                tracing::info!(bot_id = %key.bot_id, session = %key.log_ref(), "provider circuit open; poll skipped");
            }
            Box::pin(fire_timers(ctx, &bot, key, loaded, now, may_poll)).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => report.timers_fired += n,
        Err(e) => {
            tracing::error!(bot_id = %key.bot_id, session = %key.log_ref(), error = %e, "timer failed");
            report.errors += 1;
        }
    }
    Ok(())
}

/// A session's due outbox items. Its destinations are read from the outbox first, so the
/// unit waits only for the lanes it will deliver to. Retries are not held back by an open
/// breaker: their backoff and give-up must keep counting, so a user whose provider is gone is
/// told in time.
async fn outbox_unit(ctx: &AppContext, gates: &Gates, key: &SessionKey, report: &mut Report) -> Result<(), NoTime> {
    let read = {
        let _slot = gates.slot().await?;
        match Box::pin(ctx.bot(&key.bot_id)).await {
            Ok(bot) => ctx
                .store
                .outbox(key)
                .await
                .map(|items| (bot, items))
                .map_err(Into::into),
            Err(e) => Err(e),
        }
    };
    let (bot, items) = match read {
        Ok(read) => read,
        Err(e) => {
            tracing::error!(bot_id = %key.bot_id, error = %e, "outbox unavailable for redelivery");
            report.errors += 1;
            return Ok(());
        }
    };
    let wanted: BTreeSet<Destination> = items
        .iter()
        .filter(|i| i.status == OutboxStatus::Pending)
        .map(|i| match &i.effect {
            Effect::Bot { .. } => Destination::Platform {
                bot_id: key.bot_id.clone(),
            },
            Effect::Provider { provider, .. } => Destination::Provider {
                bot_id: key.bot_id.clone(),
                provider_id: provider.clone(),
            },
        })
        .collect();
    let _permits = gates.destinations(wanted).await?;
    let _slot = gates.slot().await?;
    let pass = Box::pin(outbox::deliver_due(ctx, &bot, key)).await;
    report.delivered += pass.delivered;
    report.retried += pass.retried;
    report.gave_up += pass.gave_up;
    Box::pin(engine::drive(ctx, &bot, pass.follow_ups)).await;
    Ok(())
}

async fn fire_timers(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    loaded: Versioned<Session>,
    now: DateTime<Utc>,
    may_poll: bool,
) -> Result<u32, super::ApiError> {
    // The first timer is decided on this very read; after a commit or a poll the copy is stale.
    let mut copy = Some(loaded.clone());
    let session = loaded.value;
    let Some(handover) = &session.handover else {
        return Ok(0);
    };
    let t = &session.timers;
    let due = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
    let mut fired = 0;
    // What the provider says (polling) goes before our own timeouts.
    let timers = [
        (TimerKind::Poll, t.poll_at),
        (TimerKind::NoAgent, t.no_agent_at),
        (TimerKind::AgentIdle, t.agent_idle_at),
        (TimerKind::StillWaiting, t.still_waiting_at),
    ];
    // The index held an earlier time than every timer (the agent-idle deadline moved later
    // since, `Timers::hold_index`): nothing is due, and the event for the timer that moved lets
    // the held time go, which moves the index to the earliest timer (the core checks the
    // timer's own time, so nothing fires).
    let release = t.index_passed(now).then_some((TimerKind::AgentIdle, Some(now)));
    for (timer, at) in timers.into_iter().chain(release) {
        if !due(at) {
            continue;
        }
        if timer == TimerKind::Poll && may_poll {
            poll(ctx, bot, key, handover).await;
            copy = None;
        }
        let input = Input::new(Event::TimerFired {
            handover_id: handover.id.clone(),
            timer,
        });
        let mut command = Command::internal(key.clone(), input);
        if let Some(copy) = copy.take() {
            command = command.on_copy(copy);
        }
        let applied = engine::apply(ctx, bot, command).await?;
        if matches!(applied.reply, Some(Reply::Accepted { applied: true })) {
            fired += 1;
            // An ending timer makes the others moot.
            if matches!(timer, TimerKind::NoAgent | TimerKind::AgentIdle) {
                break;
            }
        }
    }
    Ok(fired)
}

/// Bots read per batch while refreshing availability.
const BOT_BATCH: usize = 500;

/// Recomputes every bot's `AVAILABILITY`: the schedule of each queue, and agent presence for
/// providers that can tell. Reads and writes are batched; unchanged documents are not written.
pub async fn refresh_availability(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant, report: &mut Report) {
    let bots = match ctx.store.list_bots().await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "bot registry unreadable");
            report.errors += 1;
            return;
        }
    };
    for chunk in bots.chunks(BOT_BATCH) {
        let loaded = match ctx.store.get_bots(chunk).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "bot configurations unreadable");
                report.errors += 1;
                continue;
            }
        };
        let mut writes = Vec::new();
        let mut loaded = loaded.into_iter();
        loop {
            let group: Vec<_> = loaded.by_ref().take(AVAILABILITY_CONCURRENCY).collect();
            if group.is_empty() {
                break;
            }
            if !time_left(deadline) {
                report.bots_skipped += u32::try_from(group.len() + loaded.len()).unwrap_or(u32::MAX);
                break;
            }
            // A provider that hangs holds only its own bot, and never past the deadline.
            let refreshed = futures_util::future::join_all(group.into_iter().map(|(config, stored)| async move {
                let bot = ctx.adopt_bot(config).await.ok()?;
                let stored = stored.unwrap_or_default();
                let mut next = crate::store::StoredAvailability {
                    queues: crate::domain::availability::snapshot(&bot, now),
                    agents: stored.agents.clone(),
                };
                let presence = refresh_presence(ctx, &bot, &mut next, now);
                if tokio::time::timeout_at(deadline, presence).await.is_err() {
                    tracing::warn!(bot_id = %bot.config.bot_id, "agent presence not refreshed before the deadline");
                }
                Some((bot.config.bot_id.clone(), next != stored, next))
            }))
            .await;
            for r in refreshed {
                match r {
                    Some((bot_id, changed, next)) => {
                        report.bots += 1;
                        if changed {
                            writes.push((bot_id, next));
                        }
                    }
                    None => report.errors += 1,
                }
            }
        }
        report.availability_written += u32::try_from(writes.len()).unwrap_or(u32::MAX);
        if let Err(e) = ctx.store.put_availability(&writes).await {
            tracing::error!(error = %e, "availability not written");
            report.errors += 1;
        }
    }
}

/// Agent presence, for every provider that can tell, about once a minute per queue.
async fn refresh_presence(
    ctx: &AppContext,
    bot: &LoadedBot,
    next: &mut crate::store::StoredAvailability,
    now: DateTime<Utc>,
) {
    for (queue, provider_id) in crate::domain::availability::queues(bot) {
        let key = crate::domain::Conditions::no_agents_key(&provider_id, &queue);
        if next
            .agents
            .get(&key)
            .is_some_and(|a| now - a.checked_at < chrono::Duration::seconds(50))
        {
            continue;
        }
        let reports = match bot.provider(&provider_id).await {
            Ok(p) => p.capabilities().agent_availability,
            Err(e) => {
                tracing::warn!(provider_id, error = %e, "provider unavailable for presence");
                false
            }
        };
        if !reports {
            continue;
        }
        let online = super::health::presence(ctx.health.agents(bot, &provider_id, &queue).await);
        next.agents.insert(
            key,
            crate::store::AgentPresence {
                online,
                checked_at: now,
            },
        );
    }
}

/// Asks a provider that does not push joins and closes what happened, and applies what it
/// reports like a callback (idempotent on the event ids). The poll timer itself is re-armed by
/// the core when it fires.
async fn poll(ctx: &AppContext, bot: &LoadedBot, key: &SessionKey, handover: &crate::domain::Handover) {
    let provider = match bot.provider(&handover.provider).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "provider unavailable for polling");
            return;
        }
    };
    let conversation = crate::providers::ProviderConversation {
        handover_id: handover.id.clone(),
        conversation_id: handover
            .provider_conversation_id
            .clone()
            .unwrap_or_else(|| handover.id.clone()),
    };
    match provider.poll(&conversation).await {
        Ok(events) => {
            for event in events {
                let command = Command {
                    key: key.clone(),
                    idempotency: Some(Idempotency {
                        scope: format!("provider:{}:{}", key.bot_id, handover.provider),
                        event_id: event.event_id.clone(),
                    }),
                    input: Input {
                        event_id: Some(event.event_id.clone()),
                        ..Input::new(super::provider_events::to_event(event, handover.id.clone()))
                    },
                    create: Create::Forbidden,
                    answer: Answer::Ack,
                    deadline: None,
                    known: None,
                };
                if let Err(e) = engine::apply(ctx, bot, command).await {
                    tracing::warn!(error = %e, "polled event not applied");
                }
            }
        }
        Err(e) => tracing::warn!(provider = %handover.provider, error = %e, "provider poll failed; asking again later"),
    }
}

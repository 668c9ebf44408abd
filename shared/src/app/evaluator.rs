//! The scheduled evaluator: every minute, fire due timers and redeliver due outbox items,
//! found through the sparse due index (never a scan), then refresh availability. Safe to run
//! twice at once: timers fire through the version-checked commit, outbox items are claimed
//! before delivery.
//!
//! A run keeps a time budget: due work first, in an order that starts at a random point so no
//! session or shard is starved when runs overrun; availability after, a few bots at a time;
//! nothing is started that could not finish before the deadline. What is left is counted and
//! picked up by the next run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Answer, Command, Create, Idempotency};
use super::outbox;
use crate::domain::{Event, Input, Reply, TimerKind};
use crate::metrics;
use crate::store::{DUE_SHARDS, Due, SessionKey};

/// Work items read per shard and run; the rest waits for the next minute.
pub const BATCH_LIMIT: usize = 1000;

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
    pub budget_exhausted: bool,
}

/// The evaluator function's budget: its `Timeout: 60` in template.yaml minus a margin.
pub const RUN_BUDGET: Duration = Duration::from_secs(50);

/// The longest one unit of work may take (a session's timers and deliveries: a few HTTP calls
/// of at most 8 s each); none is started with less than this left.
pub const WORK_RESERVE: Duration = Duration::from_secs(10);

/// Bots whose availability is refreshed at once.
pub const AVAILABILITY_CONCURRENCY: usize = 8;

/// The Lambda handler. The scheduler's payload carries nothing we need (the run is defined
/// by the clock), so any JSON object is accepted, `{}` included.
pub async fn handle(ctx: &AppContext, _event: serde_json::Value) -> serde_json::Value {
    handle_until(ctx, Instant::now() + RUN_BUDGET).await
}

/// [`handle`] with the invocation's own deadline (the Lambda context's, minus a margin).
pub async fn handle_until(ctx: &AppContext, deadline: Instant) -> serde_json::Value {
    let report = run_until(ctx, ctx.clock.now(), deadline).await;
    serde_json::to_value(report).unwrap_or_default()
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

/// One evaluator run at `now`, with the default budget.
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> Report {
    run_until(ctx, now, Instant::now() + RUN_BUDGET).await
}

/// One evaluator run at `now` that starts no work it could not finish by `deadline`.
pub async fn run_until(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant) -> Report {
    let started = Instant::now();
    let mut report = Report::default();
    process_due(ctx, now, deadline, &mut report).await;
    refresh_availability(ctx, now, deadline, &mut report).await;
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

/// Fires due timers and redelivers due outbox items, found through the sparse due index.
pub async fn process_due(ctx: &AppContext, now: DateTime<Utc>, deadline: Instant, report: &mut Report) {
    let mut work: BTreeSet<Due> = BTreeSet::new();
    for shard in 0..DUE_SHARDS {
        match ctx.store.due(shard, now, BATCH_LIMIT).await {
            Ok(batch) => {
                work.extend(batch.due);
                report.unreadable += batch.unreadable;
            }
            Err(e) => {
                tracing::error!(shard, error = %e, "due index unreadable");
                report.errors += 1;
            }
        }
    }
    // Start at a random point: when a run cannot finish, the next one does not begin with the
    // same sessions again, so none is starved.
    let mut work: Vec<Due> = work.into_iter().collect();
    if !work.is_empty() {
        let start = fastrand::usize(0..work.len());
        work.rotate_left(start);
    }
    let total = work.len();
    for (done, due) in work.into_iter().enumerate() {
        if !time_left(deadline) {
            report.backlog = u32::try_from(total - done).unwrap_or(u32::MAX);
            break;
        }
        report.sessions += 1;
        match due {
            Due::Timer(key) => match fire_timers(ctx, &key, now).await {
                Ok(n) => report.timers_fired += n,
                Err(e) => {
                    tracing::error!(bot_id = %key.bot_id, session = %key.log_ref(), error = %e, "timer failed");
                    report.errors += 1;
                }
            },
            Due::Start(key) => match ctx.bot(&key.bot_id).await {
                Ok(bot) => match super::start::settle_left_behind(ctx, &bot, &key, now).await {
                    Ok(n) => report.starts_settled += n,
                    Err(e) => {
                        tracing::error!(bot_id = %key.bot_id, session = %key.log_ref(), error = %e, "start intents unreadable");
                        report.errors += 1;
                    }
                },
                Err(e) => {
                    tracing::error!(bot_id = %key.bot_id, error = %e, "bot unavailable to settle a start left behind");
                    report.errors += 1;
                }
            },
            Due::Outbox(key) => match ctx.bot(&key.bot_id).await {
                Ok(bot) => {
                    let pass = outbox::deliver_due(ctx, &bot, &key).await;
                    report.delivered += pass.delivered;
                    report.retried += pass.retried;
                    report.gave_up += pass.gave_up;
                    engine::drive(ctx, &bot, pass.follow_ups).await;
                }
                Err(e) => {
                    tracing::error!(bot_id = %key.bot_id, error = %e, "bot unavailable for redelivery");
                    report.errors += 1;
                }
            },
        }
    }
}

async fn fire_timers(ctx: &AppContext, key: &SessionKey, now: DateTime<Utc>) -> Result<u32, super::ApiError> {
    let bot = ctx.bot(&key.bot_id).await?;
    let Some(loaded) = ctx.store.load_session(key).await? else {
        return Ok(0);
    };
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
    for (timer, at) in [
        (TimerKind::Poll, t.poll_at),
        (TimerKind::NoAgent, t.no_agent_at),
        (TimerKind::AgentIdle, t.agent_idle_at),
        (TimerKind::StillWaiting, t.still_waiting_at),
    ] {
        if !due(at) {
            continue;
        }
        if timer == TimerKind::Poll {
            poll(ctx, &bot, key, handover).await;
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
        let applied = engine::apply(ctx, &bot, command).await?;
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
                if tokio::time::timeout_at(deadline.into(), presence).await.is_err() {
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

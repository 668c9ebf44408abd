//! The scheduled evaluator: every minute, fire due timers and redeliver due outbox items,
//! found through the sparse due index (never a scan). Safe to run twice at once: timers fire
//! through the version-checked commit, outbox items are claimed before delivery.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::context::AppContext;
use super::engine::{self, Create};
use super::outbox;
use crate::domain::{Event, Input, Reply, TimerKind};
use crate::store::{DUE_SHARDS, Due, SessionKey};

/// Work items read per shard and run; the rest waits for the next minute.
pub const BATCH_LIMIT: usize = 1000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub sessions: u32,
    pub timers_fired: u32,
    pub delivered: u32,
    pub retried: u32,
    pub gave_up: u32,
    pub errors: u32,
}

/// The Lambda handler. The scheduler's payload carries nothing we need (the run is defined
/// by the clock), so any JSON object is accepted, `{}` included.
pub async fn handle(ctx: &AppContext, _event: serde_json::Value) -> serde_json::Value {
    serde_json::to_value(run(ctx, ctx.clock.now()).await).expect("report serializes")
}

/// One evaluator run at `now`.
pub async fn run(ctx: &AppContext, now: DateTime<Utc>) -> Report {
    let mut report = Report::default();
    let mut work: BTreeSet<Due> = BTreeSet::new();
    for shard in 0..DUE_SHARDS {
        match ctx.store.due(shard, now, BATCH_LIMIT).await {
            Ok(items) => work.extend(items),
            Err(e) => {
                tracing::error!(shard, error = %e, "due index unreadable");
                report.errors += 1;
            }
        }
    }
    for due in work {
        report.sessions += 1;
        match due {
            Due::Timer(key) => match fire_timers(ctx, &key, now).await {
                Ok(n) => report.timers_fired += n,
                Err(e) => {
                    tracing::error!(bot_id = %key.bot_id, session_id = %key.session_id, error = %e, "timer failed");
                    report.errors += 1;
                }
            },
            Due::Outbox(key) => match ctx.bot(&key.bot_id).await {
                Ok(bot) => {
                    let pass = outbox::deliver_due(ctx, &bot, &key).await;
                    report.delivered += pass.delivered;
                    report.retried += pass.retried;
                    report.gave_up += pass.gave_up;
                }
                Err(e) => {
                    tracing::error!(bot_id = %key.bot_id, error = %e, "bot unavailable for redelivery");
                    report.errors += 1;
                }
            },
        }
    }
    tracing::info!(?report, "evaluator run");
    report
}

async fn fire_timers(
    ctx: &AppContext,
    key: &SessionKey,
    now: DateTime<Utc>,
) -> Result<u32, super::ApiError> {
    let bot = ctx.bot(&key.bot_id).await?;
    let Some(session) = ctx.store.load_session(key).await? else {
        return Ok(0);
    };
    let session = session.value;
    let Some(handover) = &session.handover else {
        return Ok(0);
    };
    let t = &session.timers;
    let due = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
    let mut fired = 0;
    for (timer, at) in [
        (TimerKind::NoAgent, t.no_agent_at),
        (TimerKind::AgentIdle, t.agent_idle_at),
        (TimerKind::StillWaiting, t.still_waiting_at),
    ] {
        if !due(at) {
            continue;
        }
        let input = Input::new(Event::TimerFired {
            handover_id: handover.id.clone(),
            timer,
        });
        let render = |_: &Reply| (200, serde_json::json!({}));
        let applied =
            engine::apply(ctx, &bot, key, &input, None, Create::Forbidden, &render).await?;
        if matches!(applied.reply, Some(Reply::Accepted { applied: true })) {
            fired += 1;
            // An ending timer makes the others moot.
            if timer != TimerKind::StillWaiting {
                break;
            }
        }
    }
    Ok(fired)
}

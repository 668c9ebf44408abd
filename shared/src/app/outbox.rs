//! Delivery of stored effects, in order per session, at least once.
//!
//! New items are delivered inline right after their commit; anything that fails is retried by
//! the evaluator from the sparse due index with backoff, until delivered or given up. Giving up
//! is never silent: it is logged, counted, kept visible on the item, and a provider give-up
//! returns a follow-up input that ends the handover with `provider_error`, so the user is told.
//! Delivery never applies events itself: the engine's driver applies the follow-ups.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::bots::LoadedBot;
use super::context::AppContext;
use crate::delivery::DeliveryError;
use crate::domain::{Effect, Event, Input, ProviderOp, Session};
use crate::metrics;
use crate::providers::ProviderConversation;
use crate::store::{OutboxItem, OutboxStatus, SessionKey};

pub use super::command::FollowUp;

/// What one delivery pass did.
#[derive(Debug, Default, Clone)]
pub struct Pass {
    pub delivered: u32,
    pub retried: u32,
    pub gave_up: u32,
    pub follow_ups: Vec<FollowUp>,
}

/// Rounds of one drain (each round reads the outbox once): enough for a burst of turns at
/// chat cadence, bounded so one invocation never drains forever.
const MAX_DRAIN_ROUNDS: u32 = 16;

/// Delivers the items just committed with `session`, and keeps draining their lanes: items
/// that others commit while this delivery runs are delivered too, in order, until the lanes
/// are empty. A lane whose next item another deliverer holds is handed over to it (see
/// [`drain`]). The committed session names the provider's conversation, so a provider
/// delivery of this session's own handover needs no read of it.
pub async fn deliver_new(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    fresh: &[OutboxItem],
    session: &Session,
) -> Pass {
    let held = fresh.iter().map(|f| (f.seq, f.due_at)).collect();
    drain(ctx, bot, key, held, Some(session)).await
}

/// Delivers a session's due items (the evaluator's path): each is claimed first, so two
/// deliverers never deliver the same item at the same time; then drains like an inline
/// delivery.
pub async fn deliver_due(ctx: &AppContext, bot: &LoadedBot, key: &SessionKey) -> Pass {
    drain(ctx, bot, key, BTreeMap::new(), None).await
}

/// Deliveries to the bot platform and to each provider conversation are independent lanes:
/// each keeps its own order, and an outage or a backoff on one never holds another (a
/// failover handover's turns never wait behind the previous provider's pending end).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Bot,
    /// One lane per handover: its provider conversation.
    Provider(String),
    /// A handover's read-back of its created conversation: it orders nothing, and a provider
    /// that fails to answer it must not hold the turns to the agent.
    ReadBack(String),
}

impl Lane {
    pub fn of(effect: &Effect) -> Lane {
        match effect {
            Effect::Bot { .. } => Lane::Bot,
            Effect::Provider {
                handover_id,
                op: ProviderOp::ReadBack { .. },
                ..
            } => Lane::ReadBack(handover_id.clone()),
            Effect::Provider { handover_id, .. } => Lane::Provider(handover_id.clone()),
        }
    }
}

/// The drain. Items this deliverer holds are keyed by sequence number, with the lease
/// (`dueAt`) it holds them under.
///
/// Each round reads the session's outbox and walks every lane in order: an item held here is
/// delivered; a due item is claimed (conditionally: one deliverer wins) and delivered; an item
/// that is neither (another deliverer's lease, or a retry time not yet reached) stops its lane.
/// Rounds repeat while they deliver something, so items committed by others meanwhile are
/// delivered too.
///
/// The hand-over when a lane is busy: items held here behind another deliverer's item are
/// released (made due at once) and the lane is read again in the next round. If the other
/// deliverer has finished by then, they are claimed back and delivered here; if not, it will
/// find them due when it reads the outbox after its last delivery. Either the release comes
/// before the other's last read (it sees them due), or the other's last delete comes before
/// our next read (we see the lane free): with strongly consistent reads there is no order of
/// events in which both leave the item to the other.
async fn drain(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    mut held: BTreeMap<u64, DateTime<Utc>>,
    known: Option<&Session>,
) -> Pass {
    let mut pass = Pass::default();
    let rounds = if ctx.drain { MAX_DRAIN_ROUNDS } else { 1 };
    for round in 0..rounds {
        let items = match ctx.store.outbox(key).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "outbox unreadable; the evaluator will deliver");
                return pass;
            }
        };
        let before = (pass.delivered, pass.gave_up);
        let released = run(ctx, bot, items, known, &mut held, &mut pass).await;
        let progressed = (pass.delivered, pass.gave_up) != before;
        if !progressed && !released {
            return pass;
        }
        if ctx.drain && round + 1 == MAX_DRAIN_ROUNDS {
            tracing::info!(bot_id = %key.bot_id, session = %key.log_ref(), "drain stopped after its last round; the evaluator delivers the rest");
        }
    }
    pass
}

/// One round over the outbox as read. Returns whether items held here were released to
/// another deliverer's lane (the caller reads the lane again).
async fn run(
    ctx: &AppContext,
    bot: &LoadedBot,
    items: Vec<OutboxItem>,
    known: Option<&Session>,
    held: &mut BTreeMap<u64, DateTime<Utc>>,
    pass: &mut Pass,
) -> bool {
    // Stopped lanes, and whether items held here behind the stop are handed over: yes when
    // another deliverer holds the lane, no when our own delivery failed and is rescheduled
    // (the items keep their lease and follow the retry).
    let mut stopped: BTreeMap<Lane, bool> = BTreeMap::new();
    let mut released = false;
    for mut item in items.into_iter().filter(|i| i.status == OutboxStatus::Pending) {
        let lane = Lane::of(&item.effect);
        let now = ctx.clock.now();
        // Stored times have millisecond precision: compare leases at that precision.
        let mine = held.get(&item.seq).map(DateTime::timestamp_millis) == Some(item.due_at.timestamp_millis());
        if let Some(&hand_over) = stopped.get(&lane) {
            if mine && hand_over && ctx.drain {
                // Behind another deliverer's item: hand it over (made due at once), or order
                // would be broken. Conditional on our lease, so nothing else is overwritten.
                match ctx.store.claim_outbox(&item, now).await {
                    Ok(true) => released = true,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox release failed; the item waits for its lease"),
                }
                held.remove(&item.seq);
            }
            continue;
        }
        if !mine {
            if item.due_at > now {
                stopped.insert(lane, true);
                continue;
            }
            let lease = ctx.retry.lease_until(now);
            match ctx.store.claim_outbox(&item, lease).await {
                // From here on the item is ours while `dueAt` holds our lease.
                Ok(true) => item.due_at = lease,
                Ok(false) => {
                    stopped.insert(lane, true);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox claim failed");
                    stopped.insert(lane, false);
                    continue;
                }
            }
        }
        held.remove(&item.seq);
        let result = attempt(ctx, bot, &item, known).await;
        if let Effect::Provider { provider, .. } = &item.effect {
            ctx.health.record(&item.key.bot_id, provider, result.is_ok(), now).await;
        }
        match result {
            Ok(follow_ups) => {
                pass.follow_ups.extend(follow_ups);
                if let Err(e) = ctx.store.outbox_delivered(&item).await {
                    // Delivered but not marked: it will be sent again; receivers dedupe on id.
                    tracing::warn!(error = %e, item = %item.id, "delivered item not removed");
                }
                ctx.record(&metrics::delivery(&item, metrics::Delivery::Delivered));
                // A read-back relays nothing: it is not a relay's latency.
                if let Some(committed) = item.committed_at.filter(|_| !matches!(lane, Lane::ReadBack(_))) {
                    ctx.record(&metrics::relay_latency(&item, ctx.clock.now() - committed));
                }
                pass.delivered += 1;
            }
            Err(err) => {
                let attempts = item.attempts + 1;
                let give_up = matches!(err, DeliveryError::Permanent { .. }) || attempts >= ctx.retry.max_attempts;
                if give_up {
                    pass.follow_ups.extend(gave_up(ctx, &item, &err).await);
                    pass.gave_up += 1;
                    // The item is out of the way: later items may proceed.
                    continue;
                }
                let retry_after = match &err {
                    DeliveryError::Retryable { retry_after, .. } => *retry_after,
                    DeliveryError::Permanent { .. } => None,
                };
                let next = ctx.retry.next_attempt(attempts, now, retry_after);
                tracing::info!(bot_id = %item.key.bot_id, session = %item.key.log_ref(), item = %item.id, attempts, error = %err, next = %next, "delivery failed; will retry");
                match ctx.store.outbox_retry(&item, next, &err.to_string()).await {
                    Ok(true) => {}
                    // Deleted meanwhile (delivered by another, or the session erased) or no
                    // longer ours: nothing to reschedule, and nothing is recreated.
                    Ok(false) => tracing::info!(item = %item.id, "outbox item gone or taken over; not rescheduled"),
                    Err(e) => tracing::warn!(error = %e, "could not reschedule outbox item"),
                }
                ctx.record(&metrics::delivery(&item, metrics::Delivery::Retried));
                pass.retried += 1;
                stopped.insert(lane, false);
            }
        }
    }
    released
}

/// Records a give-up. Returns the input that ends the handover when the item was a turn for
/// a provider that can no longer serve the conversation ([`ends_handover`]): a handover whose
/// provider cannot be reached must not leave the user waiting.
async fn gave_up(ctx: &AppContext, item: &OutboxItem, err: &DeliveryError) -> Option<FollowUp> {
    tracing::error!(
        bot_id = %item.key.bot_id,
        session = %item.key.log_ref(),
        item = %item.id,
        attempts = item.attempts + 1,
        error = %err,
        "outbox delivery gave up"
    );
    ctx.record(&metrics::delivery(item, metrics::Delivery::GaveUp));
    match ctx.store.outbox_gave_up(item, &err.to_string()).await {
        Ok(true) => {}
        // Deleted meanwhile or taken over: whoever holds it decides; nothing is recreated.
        Ok(false) => return None,
        Err(e) => tracing::error!(error = %e, "could not record the give-up"),
    }
    match &item.effect {
        Effect::Provider { handover_id, op, .. }
            if matches!(op, ProviderOp::Mirror { .. } | ProviderOp::CatchUp { .. }) && ends_handover(err) =>
        {
            Some(FollowUp {
                key: item.key.clone(),
                input: Input::new(Event::ProviderFailed {
                    handover_id: handover_id.clone(),
                }),
                idempotency: None,
            })
        }
        _ => None,
    }
}

/// Whether a turn the provider would not take means the handover is over. A provider that
/// stays unreachable through every retry, or answers that the conversation is gone (404, 410),
/// cannot serve the user: the handover ends. A provider that refuses one message (400, 413,
/// 422: too long, a content it does not take) still has the agent: that turn is marked failed
/// (the item stays `gave_up`, visible in `session show`, counted) and the next turns go on.
fn ends_handover(err: &DeliveryError) -> bool {
    // `broken-4xx-one-sided` (test-only, shared/Cargo.toml) reverts the fix: any permanent
    // refusal of one turn ends the handover (and, see `attempt`, on the bot's side only).
    if cfg!(feature = "broken-4xx-one-sided") && matches!(err, DeliveryError::Permanent { .. }) {
        return true;
    }
    match err {
        DeliveryError::Retryable { .. } => true,
        DeliveryError::Permanent { status, .. } => status.is_none_or(|s| matches!(s, 404 | 410)),
    }
}

/// The provider's id for a handover's conversation: its own when it assigned one. Carried by
/// the effect when the decision knew it; for an item written before effects carried it, taken
/// from the session just committed when that session knows the handover, else read.
async fn conversation(
    ctx: &AppContext,
    key: &SessionKey,
    handover_id: &str,
    carried: Option<&String>,
    known: Option<&Session>,
) -> Result<ProviderConversation, DeliveryError> {
    if let Some(id) = carried {
        return Ok(ProviderConversation {
            handover_id: handover_id.to_owned(),
            conversation_id: id.clone(),
        });
    }
    let handover_in = |s: &Session| {
        [s.handover.as_ref(), s.last_handover.as_ref()]
            .into_iter()
            .flatten()
            .find(|h| h.id == handover_id)
            .cloned()
    };
    let handover = match known.and_then(handover_in) {
        Some(h) => Some(h),
        None => ctx
            .store
            .load_session(key)
            .await
            .map_err(|e| DeliveryError::retryable(e.to_string()))?
            .and_then(|v| handover_in(&v.value)),
    };
    let conv_id = handover.and_then(|h| h.provider_conversation_id);
    Ok(ProviderConversation {
        handover_id: handover_id.to_owned(),
        conversation_id: conv_id.unwrap_or_else(|| handover_id.to_owned()),
    })
}

/// Delivers one item. Returns the inputs its answer brings (a read-back's events).
async fn attempt(
    ctx: &AppContext,
    bot: &LoadedBot,
    item: &OutboxItem,
    known: Option<&Session>,
) -> Result<Vec<FollowUp>, DeliveryError> {
    let setup = |e: super::ApiError| DeliveryError::retryable(e.message);
    match &item.effect {
        Effect::Bot {
            handover_id,
            event,
            context,
        } => {
            let platform = bot.platform().await.map_err(setup)?;
            platform
                .deliver(&item.id, &item.key, handover_id, event, context)
                .await
                .map(|()| Vec::new())
        }

        Effect::Provider {
            provider,
            handover_id,
            conversation_id,
            op,
        } => {
            let p = bot.provider(provider).await.map_err(setup)?;
            let done = match op {
                ProviderOp::ReadBack { conversation_id } => {
                    let events: Vec<_> = p
                        .fetch_events(conversation_id)
                        .await?
                        .into_iter()
                        .filter(|e| e.conversation_id == *conversation_id)
                        .collect();
                    // Held before the item counts as delivered, as a callback for a start in
                    // flight is: should the follow-ups die with this function, the evaluator
                    // applies the held events at their due time (found by the simulator: a
                    // crash between this delivery and its follow-ups lost the join).
                    let now = ctx.clock.now();
                    let expires = now + chrono::Duration::days(i64::from(bot.config.retention_days));
                    for e in &events {
                        let held =
                            super::provider_events::early(e, provider, handover_id, super::start::due_after(ctx, now));
                        ctx.store
                            .hold_early(&item.key, &held, expires)
                            .await
                            .map_err(|e| DeliveryError::retryable(e.to_string()))?;
                    }
                    return Ok(events
                        .into_iter()
                        .map(|e| super::provider_events::follow_up(&item.key, provider, handover_id, e))
                        .collect());
                }
                ProviderOp::Mirror { entry } => {
                    let conv = conversation(ctx, &item.key, handover_id, conversation_id.as_ref(), known).await?;
                    p.send_message(&item.id, &conv, entry).await
                }
                ProviderOp::Abandon { conversation_id } => {
                    let conv = ProviderConversation {
                        handover_id: handover_id.clone(),
                        conversation_id: conversation_id.clone(),
                    };
                    p.end(&item.id, &conv, crate::domain::EndReason::ProviderError).await
                }
                ProviderOp::CatchUp { after_seq, through_seq } => {
                    let conv = conversation(ctx, &item.key, handover_id, conversation_id.as_ref(), known).await?;
                    let entries = ctx
                        .store
                        .transcript(&item.key, Some(*through_seq))
                        .await
                        .map_err(|e| DeliveryError::retryable(e.to_string()))?;
                    // Each turn keeps its own delivery id across retries, so a receiver that
                    // saw some of them before drops only those.
                    for entry in entries.iter().filter(|e| e.seq > *after_seq) {
                        p.send_message(&format!("{}-{}", item.id, entry.seq), &conv, entry)
                            .await?;
                    }
                    Ok(())
                }
                ProviderOp::End { reason, keep_as_ticket } => {
                    // `broken-4xx-one-sided`: before the fix a provider failure ended the
                    // handover for the bot only; the provider's conversation was not ended.
                    if cfg!(feature = "broken-4xx-one-sided") && *reason == crate::domain::EndReason::ProviderError {
                        return Ok(Vec::new());
                    }
                    let conv = conversation(ctx, &item.key, handover_id, conversation_id.as_ref(), known).await?;
                    if *keep_as_ticket {
                        p.keep_as_ticket(&item.id, &conv, *reason).await
                    } else {
                        p.end(&item.id, &conv, *reason).await
                    }
                }
            };
            done.map(|()| Vec::new())
        }
    }
}

//! Delivery of stored effects, in order per session, at least once.
//!
//! New items are delivered inline right after their commit; anything that fails is retried by
//! the evaluator from the sparse due index with backoff, until delivered or given up. Giving up
//! is never silent: it is logged, counted, kept visible on the item, and a provider give-up
//! returns a follow-up input that ends the handover with `provider_error`, so the user is told.
//! Delivery never applies events itself: the engine's driver applies the follow-ups.

use chrono::{DateTime, Utc};

use super::bots::LoadedBot;
use super::context::AppContext;
use crate::delivery::DeliveryError;
use crate::domain::{Effect, Event, Input, ProviderOp, Session};
use crate::metrics;
use crate::providers::ProviderConversation;
use crate::store::{OutboxItem, OutboxStatus, SessionKey};

/// An input that a delivery outcome calls for (a provider give-up ends its handover), for the
/// engine's driver to apply.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub key: SessionKey,
    pub input: Input,
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone)]
pub struct Pass {
    pub delivered: u32,
    pub retried: u32,
    pub gave_up: u32,
    pub follow_ups: Vec<FollowUp>,
}

/// Delivers the items just committed with `session`. Older pending items of the session go
/// first; in each lane, an item held by another deliverer or waiting for its retry time stops
/// that lane, so order holds. The committed session names the provider's conversation, so a
/// provider delivery needs no read of it.
pub async fn deliver_new(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    fresh: &[OutboxItem],
    session: &Session,
) -> Pass {
    let mine = |item: &OutboxItem| fresh.iter().any(|f| f.seq == item.seq);
    let items = match ctx.store.outbox(key).await {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(error = %e, "outbox unreadable; the evaluator will deliver");
            return Pass::default();
        }
    };
    run(ctx, bot, items, Some(session), |item, now| {
        if mine(item) {
            Claim::Owned
        } else if item.due_at <= now {
            Claim::Take
        } else {
            Claim::Stop
        }
    })
    .await
}

/// Delivers a session's due items (the evaluator's path): each is claimed first, so two
/// evaluators never deliver the same item at the same time.
pub async fn deliver_due(ctx: &AppContext, bot: &LoadedBot, key: &SessionKey) -> Pass {
    let items = match ctx.store.outbox(key).await {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(error = %e, "outbox unreadable");
            return Pass::default();
        }
    };
    run(ctx, bot, items, None, |item, now| {
        if item.due_at <= now { Claim::Take } else { Claim::Stop }
    })
    .await
}

enum Claim {
    /// Written by this caller with a lease: deliver without claiming.
    Owned,
    /// Due: claim, then deliver.
    Take,
    /// Not ours and not due: stop this lane here to keep order.
    Stop,
}

/// Deliveries to the bot platform and to providers are independent lanes: each keeps its own
/// order, and an outage on one side never holds the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Bot,
    Provider,
}

impl Lane {
    pub fn of(effect: &Effect) -> Lane {
        match effect {
            Effect::Bot { .. } => Lane::Bot,
            Effect::Provider { .. } => Lane::Provider,
        }
    }
}

async fn run(
    ctx: &AppContext,
    bot: &LoadedBot,
    items: Vec<OutboxItem>,
    known: Option<&Session>,
    decide: impl Fn(&OutboxItem, DateTime<Utc>) -> Claim,
) -> Pass {
    let mut pass = Pass::default();
    let mut stopped: Vec<Lane> = Vec::new();
    for mut item in items.into_iter().filter(|i| i.status == OutboxStatus::Pending) {
        let lane = Lane::of(&item.effect);
        if stopped.contains(&lane) {
            continue;
        }
        let now = ctx.clock.now();
        match decide(&item, now) {
            Claim::Stop => {
                stopped.push(lane);
                continue;
            }
            Claim::Owned => {}
            Claim::Take => {
                let lease = ctx.retry.lease_until(now);
                match ctx.store.claim_outbox(&item, lease).await {
                    // From here on the item is ours while `dueAt` holds our lease.
                    Ok(true) => item.due_at = lease,
                    Ok(false) => {
                        stopped.push(lane);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox claim failed");
                        stopped.push(lane);
                        continue;
                    }
                }
            }
        }
        let result = attempt(ctx, bot, &item, known).await;
        if let Effect::Provider { provider, .. } = &item.effect {
            ctx.health.record(&item.key.bot_id, provider, result.is_ok(), now).await;
        }
        match result {
            Ok(()) => {
                if let Err(e) = ctx.store.outbox_delivered(&item).await {
                    // Delivered but not marked: it will be sent again; receivers dedupe on id.
                    tracing::warn!(error = %e, item = %item.id, "delivered item not removed");
                }
                ctx.record(&metrics::delivery(&item, metrics::Delivery::Delivered));
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
                stopped.push(lane);
            }
        }
    }
    pass
}

/// Records a give-up. Returns the input that ends the handover when the item was a turn for
/// the provider: a handover whose provider cannot be reached must not leave the user waiting.
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
            if !matches!(op, ProviderOp::End { .. } | ProviderOp::Abandon { .. }) =>
        {
            Some(FollowUp {
                key: item.key.clone(),
                input: Input::new(Event::ProviderFailed {
                    handover_id: handover_id.clone(),
                }),
            })
        }
        _ => None,
    }
}

/// The provider's id for a handover's conversation: its own when it assigned one. Taken from
/// the session just committed when that session knows the handover, else read.
async fn conversation(
    ctx: &AppContext,
    key: &SessionKey,
    handover_id: &str,
    known: Option<&Session>,
) -> Result<ProviderConversation, DeliveryError> {
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

async fn attempt(
    ctx: &AppContext,
    bot: &LoadedBot,
    item: &OutboxItem,
    known: Option<&Session>,
) -> Result<(), DeliveryError> {
    let setup = |e: super::ApiError| DeliveryError::retryable(e.message);
    match &item.effect {
        Effect::Bot {
            handover_id,
            event,
            context,
        } => {
            let platform = bot.platform().await.map_err(setup)?;
            platform.deliver(&item.id, &item.key, handover_id, event, context).await
        }
        Effect::Provider {
            provider,
            handover_id,
            op,
        } => {
            let p = bot.provider(provider).await.map_err(setup)?;
            match op {
                ProviderOp::Mirror { entry } => {
                    let conv = conversation(ctx, &item.key, handover_id, known).await?;
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
                    let conv = conversation(ctx, &item.key, handover_id, known).await?;
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
                    let conv = conversation(ctx, &item.key, handover_id, known).await?;
                    if *keep_as_ticket {
                        p.keep_as_ticket(&item.id, &conv, *reason).await
                    } else {
                        p.end(&item.id, &conv, *reason).await
                    }
                }
            }
        }
    }
}

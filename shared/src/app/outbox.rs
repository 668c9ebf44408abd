//! Delivery of stored effects, in order per session, at least once.
//!
//! New items are delivered inline right after their commit; anything that fails is retried by
//! the evaluator from the sparse due index with backoff, until delivered or given up. Giving up
//! is never silent: it is logged, counted, kept visible on the item, and a provider give-up
//! ends the handover with `provider_error` so the user is told.

use chrono::{DateTime, Utc};

use super::context::AppContext;
use super::engine::{self, Create};
use crate::config::Bot;
use crate::delivery::DeliveryError;
use crate::domain::{Effect, Event, Input, ProviderOp, Session};
use crate::metrics;
use crate::providers::ProviderConversation;
use crate::store::{OutboxItem, OutboxStatus, SessionKey};

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub delivered: u32,
    pub retried: u32,
    pub gave_up: u32,
}

impl std::ops::AddAssign for Pass {
    fn add_assign(&mut self, o: Pass) {
        self.delivered += o.delivered;
        self.retried += o.retried;
        self.gave_up += o.gave_up;
    }
}

/// Delivers the items just committed. Older pending items of the session go first; if one of
/// them is held by another deliverer or waiting for its retry time, we stop so order holds.
pub async fn deliver_new(ctx: &AppContext, bot: &Bot, key: &SessionKey, fresh: &[OutboxItem]) -> Pass {
    let mine = |item: &OutboxItem| fresh.iter().any(|f| f.seq == item.seq);
    let items = match ctx.store.outbox(key).await {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(error = %e, "outbox unreadable; the evaluator will deliver");
            return Pass::default();
        }
    };
    run(ctx, bot, items, |item, now| {
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
pub async fn deliver_due(ctx: &AppContext, bot: &Bot, key: &SessionKey) -> Pass {
    let items = match ctx.store.outbox(key).await {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(error = %e, "outbox unreadable");
            return Pass::default();
        }
    };
    run(ctx, bot, items, |item, now| {
        if item.due_at <= now { Claim::Take } else { Claim::Stop }
    })
    .await
}

enum Claim {
    /// Written by this caller with a lease: deliver without claiming.
    Owned,
    /// Due: claim, then deliver.
    Take,
    /// Not ours and not due: stop here to keep order.
    Stop,
}

async fn run(
    ctx: &AppContext,
    bot: &Bot,
    items: Vec<OutboxItem>,
    decide: impl Fn(&OutboxItem, DateTime<Utc>) -> Claim,
) -> Pass {
    let mut pass = Pass::default();
    for item in items.into_iter().filter(|i| i.status == OutboxStatus::Pending) {
        let now = ctx.clock.now();
        match decide(&item, now) {
            Claim::Stop => break,
            Claim::Owned => {}
            Claim::Take => match ctx.store.claim_outbox(&item, ctx.retry.lease_until(now)).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox claim failed");
                    break;
                }
            },
        }
        let result = attempt(ctx, bot, &item).await;
        if let Effect::Provider { provider, .. } = &item.effect {
            super::health::record(ctx, &item.key.bot_id, provider, result.is_ok(), now).await;
        }
        match result {
            Ok(()) => {
                if let Err(e) = ctx.store.outbox_delivered(&item).await {
                    // Delivered but not marked: it will be sent again; receivers dedupe on id.
                    tracing::warn!(error = %e, item = %item.id, "delivered item not removed");
                }
                pass.delivered += 1;
            }
            Err(err) => {
                let attempts = item.attempts + 1;
                let give_up = matches!(err, DeliveryError::Permanent { .. }) || attempts >= ctx.retry.max_attempts;
                if give_up {
                    gave_up(ctx, bot, &item, &err).await;
                    pass.gave_up += 1;
                    // The item is out of the way: later items may proceed.
                    continue;
                }
                let retry_after = match &err {
                    DeliveryError::Retryable { retry_after, .. } => *retry_after,
                    DeliveryError::Permanent { .. } => None,
                };
                let next = ctx.retry.next_attempt(attempts, now, retry_after);
                tracing::info!(bot_id = %item.key.bot_id, session_id = %item.key.session_id, item = %item.id, attempts, error = %err, next = %next, "delivery failed; will retry");
                if let Err(e) = ctx.store.outbox_retry(&item, next, &err.to_string()).await {
                    tracing::warn!(error = %e, "could not reschedule outbox item");
                }
                pass.retried += 1;
                break;
            }
        }
    }
    pass
}

async fn gave_up(ctx: &AppContext, bot: &Bot, item: &OutboxItem, err: &DeliveryError) {
    tracing::error!(
        bot_id = %item.key.bot_id,
        session_id = %item.key.session_id,
        item = %item.id,
        attempts = item.attempts + 1,
        error = %err,
        "outbox delivery gave up"
    );
    metrics::count("OutboxGaveUp", 1, &item.key.bot_id);
    if let Err(e) = ctx.store.outbox_gave_up(item, &err.to_string()).await {
        tracing::error!(error = %e, "could not record the give-up");
    }
    // A handover whose provider cannot be reached must not leave the user waiting.
    if let Effect::Provider { handover_id, op, .. } = &item.effect
        && !matches!(op, ProviderOp::End { .. })
    {
        let input = Input::new(Event::ProviderFailed {
            handover_id: handover_id.clone(),
        });
        let render = |_: &crate::domain::Reply| (200, serde_json::json!({}));
        if let Err(e) = Box::pin(engine::apply(
            ctx,
            bot,
            &item.key,
            &input,
            None,
            Create::Forbidden,
            &render,
        ))
        .await
        {
            tracing::error!(error = %e, "could not end the handover after a provider give-up");
        }
    }
}

/// The provider's id for a handover's conversation: its own when it assigned one.
async fn conversation(
    ctx: &AppContext,
    key: &SessionKey,
    handover_id: &str,
) -> Result<ProviderConversation, DeliveryError> {
    let session: Option<Session> = ctx
        .store
        .load_session(key)
        .await
        .map_err(|e| DeliveryError::retryable(e.to_string()))?
        .map(|v| v.value);
    let conv_id = session
        .as_ref()
        .and_then(|s| {
            [s.handover.as_ref(), s.last_handover.as_ref()]
                .into_iter()
                .flatten()
                .find(|h| h.id == handover_id)
                .cloned()
        })
        .and_then(|h| h.provider_conversation_id);
    Ok(ProviderConversation {
        handover_id: handover_id.to_owned(),
        conversation_id: conv_id.unwrap_or_else(|| handover_id.to_owned()),
    })
}

async fn attempt(ctx: &AppContext, bot: &Bot, item: &OutboxItem) -> Result<(), DeliveryError> {
    let setup = |e: super::ApiError| DeliveryError::retryable(e.message);
    match &item.effect {
        Effect::Bot {
            handover_id,
            event,
            context,
        } => {
            let platform = ctx.platform(bot).await.map_err(setup)?;
            platform.deliver(&item.id, &item.key, handover_id, event, context).await
        }
        Effect::Provider {
            provider,
            handover_id,
            op,
        } => {
            let p = ctx.provider(bot, provider).await.map_err(setup)?;
            match op {
                // The engine opens conversations inline, before its commit: a start is never queued.
                ProviderOp::Start { .. } => Err(DeliveryError::permanent("a provider start is never queued")),
                ProviderOp::Mirror { entry } => {
                    let conv = conversation(ctx, &item.key, handover_id).await?;
                    p.send_message(&item.id, &conv, entry).await
                }
                ProviderOp::End { reason, keep_as_ticket } => {
                    let conv = conversation(ctx, &item.key, handover_id).await?;
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

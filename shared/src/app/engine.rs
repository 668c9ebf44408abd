//! Applies one event to one session: load, decide, commit atomically, retrying on a
//! concurrent writer; then hands the new outbox items to delivery.

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use serde_json::Value;

use super::context::AppContext;
use super::error::ApiError;
use super::health;
use super::outbox;
use crate::config::Bot;
use crate::delivery::DeliveryError;
use crate::domain::{
    Conditions, Decision, Effect, EndReason, Event, Input, ProviderOp, Rejection, Reply, Session, decide,
};
use crate::providers::{ProviderConversation, StartRequest};
use crate::store::{Commit, OutboxItem, OutboxStatus, SeenMarker, SessionKey, StoreError, StoredAnswer};

/// Attempts before a hot session is reported as busy. Each retry re-reads and re-decides.
const MAX_ATTEMPTS: u32 = 60;

/// Idempotency: the scope and id an event is recorded under.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub scope: String,
    pub event_id: String,
}

/// The outcome of applying an event.
#[derive(Debug, Clone)]
pub struct Applied {
    pub status: u16,
    pub body: Value,
    /// The decision's reply (`None` when this was a repeat answered from the marker).
    pub reply: Option<Reply>,
    pub session: Option<Session>,
}

/// What a new session may be created for: the bot platform's events create sessions,
/// provider and timer events never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Allowed,
    Forbidden,
}

/// Loads, decides and commits, then delivers. `render` turns the reply into the HTTP answer
/// that is stored with the idempotency marker.
pub async fn apply(
    ctx: &AppContext,
    bot: &Bot,
    key: &SessionKey,
    input: &Input,
    idem: Option<&Idempotency>,
    create: Create,
    render: &(dyn Fn(&Reply) -> (u16, Value) + Sync),
) -> Result<Applied, ApiError> {
    apply_with(ctx, bot, key, input, idem, create, render, None).await
}

/// [`apply`] with facts the caller already gathered (the evaluator's wait statistics).
#[allow(clippy::too_many_arguments)]
pub async fn apply_with(
    ctx: &AppContext,
    bot: &Bot,
    key: &SessionKey,
    input: &Input,
    idem: Option<&Idempotency>,
    create: Create,
    render: &(dyn Fn(&Reply) -> (u16, Value) + Sync),
    given: Option<Conditions>,
) -> Result<Applied, ApiError> {
    let handover_id = ctx.new_handover_id();
    let mut conditions: Option<Conditions> = given;
    let mut started: Option<Started> = None;
    for attempt in 0..MAX_ATTEMPTS {
        let loaded = ctx.store.load_session(key).await?;
        let now = ctx.clock.now();
        let (before, version) = match loaded {
            Some(v) => (v.value, Some(v.version)),
            None if create == Create::Allowed => (Session::new(&key.bot_id, &key.session_id, now), None),
            None => {
                return Err(ApiError::not_found(
                    "unknown_session",
                    format!("no session {:?}", key.session_id),
                ));
            }
        };
        if conditions.is_none()
            && let Event::HandoverRequested(req) = &input.event
            && before.handover.is_none()
        {
            conditions = Some(health::conditions(ctx, bot, &before, req, now).await);
        }
        let cond = conditions.clone().unwrap_or_default();
        let mut decision = match decide(&before, input, bot, &cond, now, &handover_id) {
            Ok(d) => d,
            Err(rejection) => {
                abandon(ctx, bot, started.take()).await;
                return rejected(ctx, idem, rejection).await;
            }
        };
        // "Opened" promises that the provider has the conversation: the start runs now, before
        // the commit, and a failing provider is skipped for the next candidate.
        match take_start(&mut decision) {
            Some(start) => match &started {
                Some(s) if s.provider == start.provider && s.handover_id == start.handover_id => {
                    catch_up(ctx, key, s, &start, &mut decision).await?;
                    set_conversation(&mut decision, &s.conversation_id);
                    schedule_polling(ctx, bot, &start.provider, &mut decision, now).await;
                }
                _ => {
                    abandon(ctx, bot, started.take()).await;
                    // A repeated request must not open a second conversation before the
                    // commit would have told us it is a repeat.
                    if let Some(i) = idem
                        && let Some(answer) = ctx.store.seen(&i.scope, &i.event_id).await?
                    {
                        return Ok(Applied {
                            status: answer.status,
                            body: answer.body,
                            reply: None,
                            session: None,
                        });
                    }
                    match start_now(ctx, bot, key, &start).await {
                        Ok(conversation_id) => {
                            health::record(ctx, &key.bot_id, &start.provider, true, now).await;
                            set_conversation(&mut decision, &conversation_id);
                            schedule_polling(ctx, bot, &start.provider, &mut decision, now).await;
                            started = Some(Started {
                                conversation_id,
                                ..start
                            });
                        }
                        Err(e) => {
                            tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, error = %e, "provider start failed; trying the next candidate");
                            health::record(ctx, &key.bot_id, &start.provider, false, now).await;
                            let mut c = cond;
                            c.unavailable_providers.insert(start.provider.clone());
                            conditions = Some(c);
                            continue;
                        }
                    }
                }
            },
            None => abandon(ctx, bot, started.take()).await,
        }
        let (status, body) = render(&decision.reply);
        if !decision.changes(&before) {
            return Ok(Applied {
                status,
                body,
                reply: Some(decision.reply),
                session: Some(before),
            });
        }
        let outbox = outbox_items(ctx, key, &mut decision, now);
        let links = new_links(&before, &decision.session);
        let seen = idem.map(|i| SeenMarker {
            scope: i.scope.clone(),
            event_id: i.event_id.clone(),
            answer: StoredAnswer {
                status,
                body: body.clone(),
            },
        });
        let commit = Commit {
            session: &decision.session,
            expected_version: version,
            entries: &decision.entries,
            outbox: &outbox,
            seen: seen.as_ref(),
            links: &links,
            expires_at: now + ChronoDuration::days(i64::from(bot.config.retention_days)),
        };
        match ctx.store.commit(commit).await {
            Ok(_) => {
                record_join(ctx, key, &before, &decision.session).await;
                if !outbox.is_empty() {
                    outbox::deliver_new(ctx, bot, key, &outbox).await;
                }
                if let Some(s) = &started {
                    join_at_start(ctx, bot, key, s).await;
                }
                return Ok(Applied {
                    status,
                    body,
                    reply: Some(decision.reply),
                    session: Some(decision.session),
                });
            }
            Err(StoreError::Duplicate) => {
                abandon(ctx, bot, started.take()).await;
                return repeated(ctx, idem).await;
            }
            Err(StoreError::Conflict) => {
                // Another writer got there first: back off a little (jittered) and re-decide.
                let ms = 2 + fastrand::u64(0..(4 + 4 * u64::from(attempt.min(10))));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => {
                abandon(ctx, bot, started.take()).await;
                return Err(e.into());
            }
        }
    }
    abandon(ctx, bot, started.take()).await;
    tracing::warn!(bot_id = %key.bot_id, session_id = %key.session_id, "session too busy");
    Err(ApiError::unavailable("the session is too busy, retry"))
}

/// A rejected event may still be a repeat of one applied earlier (the state moved on since):
/// the first answer wins.
async fn rejected(ctx: &AppContext, idem: Option<&Idempotency>, rejection: Rejection) -> Result<Applied, ApiError> {
    if let Some(i) = idem
        && let Some(answer) = ctx.store.seen(&i.scope, &i.event_id).await?
    {
        return Ok(Applied {
            status: answer.status,
            body: answer.body,
            reply: None,
            session: None,
        });
    }
    Err(ApiError::unprocessable(rejection.code(), rejection.to_string()))
}

async fn repeated(ctx: &AppContext, idem: Option<&Idempotency>) -> Result<Applied, ApiError> {
    let i = idem.ok_or_else(|| ApiError::unavailable("duplicate without idempotency key"))?;
    let answer = ctx
        .store
        .seen(&i.scope, &i.event_id)
        .await?
        .ok_or_else(|| ApiError::unavailable("idempotency marker vanished"))?;
    Ok(Applied {
        status: answer.status,
        body: answer.body,
        reply: None,
        session: None,
    })
}

/// Numbers the decision's effects into outbox items, leased to the inline delivery.
fn outbox_items(
    ctx: &AppContext,
    key: &SessionKey,
    decision: &mut Decision,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<OutboxItem> {
    let lease = ctx.retry.lease_until(now);
    decision
        .effects
        .iter()
        .map(|effect: &Effect| {
            decision.session.outbox_seq += 1;
            OutboxItem {
                key: key.clone(),
                seq: decision.session.outbox_seq,
                id: format!("ev-{}", uuid::Uuid::new_v4().simple()),
                effect: effect.clone(),
                attempts: 0,
                status: OutboxStatus::Pending,
                due_at: lease,
                last_error: None,
            }
        })
        .collect()
}

/// Provider-conversation index entries for a handover that opened, or learnt its provider id.
fn new_links(before: &Session, after: &Session) -> Vec<(String, String, String)> {
    let Some(h) = &after.handover else {
        return Vec::new();
    };
    let prev = before.handover.as_ref().filter(|p| p.id == h.id);
    let mut links = Vec::new();
    if prev.is_none() {
        links.push((h.provider.clone(), h.id.clone(), h.id.clone()));
    }
    if let Some(conv) = &h.provider_conversation_id
        && prev.and_then(|p| p.provider_conversation_id.as_ref()) != Some(conv)
    {
        links.push((h.provider.clone(), conv.clone(), h.id.clone()));
    }
    links
}

/// A provider conversation opened during this request.
#[derive(Debug, Clone)]
struct Started {
    provider: String,
    handover_id: String,
    op: ProviderOp,
    through_seq: u64,
    conversation_id: String,
}

/// Removes the decision's start effect, if any: it is carried out inline, not queued.
fn take_start(decision: &mut Decision) -> Option<Started> {
    let i = decision.effects.iter().position(|e| {
        matches!(
            e,
            Effect::Provider {
                op: ProviderOp::Start { .. },
                ..
            }
        )
    })?;
    let Effect::Provider {
        provider,
        handover_id,
        op,
    } = decision.effects.remove(i)
    else {
        unreachable!("matched above")
    };
    let through_seq = match &op {
        ProviderOp::Start { through_seq, .. } => *through_seq,
        _ => 0,
    };
    Some(Started {
        provider,
        handover_id,
        op,
        through_seq,
        conversation_id: String::new(),
    })
}

fn set_conversation(decision: &mut Decision, conversation_id: &str) {
    // What the provider answered wins over what the request said: later deliveries and the
    // callback index use the provider's own id.
    if let Some(h) = decision.session.handover.as_mut() {
        h.provider_conversation_id = (h.id != conversation_id).then(|| conversation_id.to_owned());
    }
}

/// Opens the conversation at the provider; one quick second try for a transient failure.
/// Returns the provider's conversation id.
async fn start_now(
    ctx: &AppContext,
    bot: &Bot,
    key: &crate::store::SessionKey,
    start: &Started,
) -> Result<String, DeliveryError> {
    let op = &start.op;
    let provider = ctx
        .provider(bot, &start.provider)
        .await
        .map_err(|e| DeliveryError::permanent(e.message))?;
    let ProviderOp::Start {
        handover,
        user,
        channel,
        session_id,
        through_seq,
    } = op
    else {
        return Err(DeliveryError::permanent("not a start"));
    };
    let transcript = ctx
        .store
        .transcript(key, Some(*through_seq))
        .await
        .map_err(|e| DeliveryError::retryable(e.to_string()))?;
    let delivery_id = format!("{}-start", handover.id);
    let request = StartRequest {
        delivery_id: &delivery_id,
        bot_id: &key.bot_id,
        session_id,
        handover,
        user: user.as_ref(),
        channel: channel.as_deref(),
        transcript: &transcript,
    };
    match provider.start(&request).await {
        Ok(conv) => Ok(conv.conversation_id),
        Err(DeliveryError::Retryable { retry_after, .. })
            if retry_after.is_none_or(|d| d <= Duration::from_secs(1)) =>
        {
            tokio::time::sleep(retry_after.unwrap_or(Duration::from_millis(200))).await;
            provider.start(&request).await.map(|c| c.conversation_id)
        }
        Err(e) => Err(e),
    }
}

/// After a conflict, the re-decided start may include turns that arrived meanwhile: they are
/// mirrored so the agent misses nothing.
async fn catch_up(
    ctx: &AppContext,
    key: &crate::store::SessionKey,
    s: &Started,
    start: &Started,
    decision: &mut Decision,
) -> Result<(), ApiError> {
    if start.through_seq <= s.through_seq {
        return Ok(());
    }
    let entries = ctx.store.transcript(key, Some(start.through_seq)).await?;
    let mirrors = entries
        .into_iter()
        .filter(|e| e.seq > s.through_seq)
        .map(|entry| Effect::Provider {
            provider: s.provider.clone(),
            handover_id: s.handover_id.clone(),
            op: ProviderOp::Mirror { entry },
        });
    let rest = std::mem::take(&mut decision.effects);
    decision.effects = mirrors.chain(rest).collect();
    Ok(())
}

/// Ends, best effort, a provider conversation this request opened but could not keep (the
/// session changed under it): nothing is left orphaned at the provider if we can help it.
async fn abandon(ctx: &AppContext, bot: &Bot, started: Option<Started>) {
    let Some(s) = started else { return };
    tracing::warn!(bot_id = %bot.config.bot_id, handover_id = %s.handover_id, "abandoning a provider conversation opened by a superseded decision");
    let Ok(provider) = ctx.provider(bot, &s.provider).await else {
        return;
    };
    let conv = ProviderConversation {
        handover_id: s.handover_id.clone(),
        conversation_id: s.conversation_id.clone(),
    };
    if let Err(e) = provider
        .end(&format!("{}-abandon", s.handover_id), &conv, EndReason::ProviderError)
        .await
    {
        tracing::error!(handover_id = %s.handover_id, error = %e, "could not end an abandoned provider conversation");
    }
}

/// Feeds our own time-to-join statistics when an agent has just joined (best effort: the
/// statistics only shape the "still waiting" estimate).
async fn record_join(ctx: &AppContext, key: &crate::store::SessionKey, before: &Session, after: &Session) {
    let Some(h) = after
        .handover
        .as_ref()
        .filter(|_| before.state == crate::domain::State::Waiting)
    else {
        return;
    };
    let Some(joined) = h.joined_at.filter(|_| after.state == crate::domain::State::Agent) else {
        return;
    };
    let waited = u64::try_from((joined - h.requested_at).num_seconds()).unwrap_or(0);
    if let Err(e) = ctx.store.record_wait(&key.bot_id, &h.queue, joined, waited).await {
        tracing::warn!(error = %e, "time-to-join statistics not recorded");
    }
}

/// Providers that do not push joins and closes are asked by the evaluator on a timer.
async fn schedule_polling(
    ctx: &AppContext,
    bot: &Bot,
    provider_id: &str,
    decision: &mut Decision,
    now: chrono::DateTime<chrono::Utc>,
) {
    let Ok(provider) = ctx.provider(bot, provider_id).await else {
        return;
    };
    if let Some(every) = provider.poll_every() {
        decision.session.timers.poll_at = Some(now + ChronoDuration::from_std(every).unwrap_or_default());
    }
}

/// Providers that never report an agent's join (the handover itself puts an agent in charge)
/// count the start as the join, so the bot is told to stay silent and the no-agent timer stops.
async fn join_at_start(ctx: &AppContext, bot: &Bot, key: &crate::store::SessionKey, started: &Started) {
    let Ok(provider) = ctx.provider(bot, &started.provider).await else {
        return;
    };
    if !provider.agent_joins_at_start() {
        return;
    }
    let agent = crate::domain::Agent {
        id: started.provider.clone(),
        name: None,
    };
    let input = Input::new(Event::AgentJoined {
        handover_id: started.handover_id.clone(),
        agent,
    });
    let render = |_: &Reply| (200, serde_json::json!({}));
    if let Err(e) = Box::pin(apply(ctx, bot, key, &input, None, Create::Forbidden, &render)).await {
        tracing::warn!(error = %e, "could not record the join at start");
    }
}

//! Applies one event to one session: load, decide, commit atomically, retrying on a
//! concurrent writer; then hands the new outbox items to delivery.

use std::time::Duration;

use chrono::Duration as ChronoDuration;
use serde_json::Value;

use super::context::AppContext;
use super::error::ApiError;
use super::outbox;
use crate::config::Bot;
use crate::domain::{Conditions, Decision, Effect, Input, Rejection, Reply, Session, decide};
use crate::store::{
    Commit, OutboxItem, OutboxStatus, SeenMarker, SessionKey, StoreError, StoredAnswer,
};

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
    let handover_id = ctx.new_handover_id();
    for attempt in 0..MAX_ATTEMPTS {
        let loaded = ctx.store.load_session(key).await?;
        let now = ctx.clock.now();
        let (before, version) = match loaded {
            Some(v) => (v.value, Some(v.version)),
            None if create == Create::Allowed => {
                (Session::new(&key.bot_id, &key.session_id, now), None)
            }
            None => {
                return Err(ApiError::not_found(
                    "unknown_session",
                    format!("no session {:?}", key.session_id),
                ));
            }
        };
        let conditions = Conditions::default();
        let mut decision = match decide(&before, input, bot, &conditions, now, &handover_id) {
            Ok(d) => d,
            Err(rejection) => return rejected(ctx, idem, rejection).await,
        };
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
                if !outbox.is_empty() {
                    outbox::deliver_new(ctx, bot, key, &outbox).await;
                }
                return Ok(Applied {
                    status,
                    body,
                    reply: Some(decision.reply),
                    session: Some(decision.session),
                });
            }
            Err(StoreError::Duplicate) => return repeated(ctx, idem).await,
            Err(StoreError::Conflict) => {
                // Another writer got there first: back off a little (jittered) and re-decide.
                let ms = 2 + fastrand::u64(0..(4 + 4 * u64::from(attempt.min(10))));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::warn!(bot_id = %key.bot_id, session_id = %key.session_id, "session too busy");
    Err(ApiError::unavailable("the session is too busy, retry"))
}

/// A rejected event may still be a repeat of one applied earlier (the state moved on since):
/// the first answer wins.
async fn rejected(
    ctx: &AppContext,
    idem: Option<&Idempotency>,
    rejection: Rejection,
) -> Result<Applied, ApiError> {
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
    Err(ApiError::unprocessable(
        rejection.code(),
        rejection.to_string(),
    ))
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

//! The driver: applies one command to one session — load, gather conditions, decide, open the
//! provider conversation a decision asks for, record it with `domain::started`, commit
//! atomically (re-deciding on a concurrent writer), deliver the new outbox items — and then
//! applies the follow-up inputs deliveries return (a give-up that ends a handover) in the same
//! loop. The driver never edits a decision and never calls itself.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use super::bots::LoadedBot;
use super::context::AppContext;
use super::error::ApiError;
use super::outbox::{self, FollowUp};
use crate::config::PauseAt;
use crate::delivery::DeliveryError;
use crate::domain::{
    Conditions, Decision, EndReason, Event, Input, Opened, Rejection, Reply, Session, Start, TimerKind, decide, started,
};
use crate::metrics;
use crate::platform::native;
use crate::providers::{ProviderConversation, StartRequest};
use crate::store::{Commit, OutboxItem, OutboxStatus, SeenMarker, SessionKey, StoreError, StoredAnswer};

/// Attempts before a hot session is reported as busy. Each retry re-reads and re-decides.
const MAX_ATTEMPTS: u32 = 60;

/// Follow-up rounds one command may cause (each give-up ends at most one handover, so a real
/// chain is one or two long; the bound only guards against a bug looping forever).
const MAX_FOLLOW_UPS: usize = 32;

/// Idempotency: the scope and id an event is recorded under.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub scope: String,
    pub event_id: String,
}

/// What a new session may be created for: the bot platform's events create sessions,
/// provider and timer events never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Allowed,
    Forbidden,
}

/// How the caller's answer is written (and stored with the idempotency marker, so a repeat
/// gets the same body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The native contract's reply body.
    Native,
    /// Chatlayer's offload answer, with our details alongside.
    ChatlayerOffload(PauseAt),
    /// A provider callback: `{"status":"ok"}`.
    Ack,
    /// An event of our own (timers, follow-ups): nobody reads the answer.
    Internal,
}

impl Answer {
    pub fn render(self, reply: &Reply) -> Value {
        match self {
            Answer::Native => native::reply_body(reply),
            Answer::ChatlayerOffload(pause_at) => crate::platform::chatlayer::offload_answer(reply, pause_at),
            Answer::Ack => json!({ "status": "ok" }),
            Answer::Internal => json!({}),
        }
    }
}

/// One event for one session.
#[derive(Debug, Clone)]
pub struct Command {
    pub key: SessionKey,
    pub input: Input,
    pub idempotency: Option<Idempotency>,
    pub create: Create,
    pub answer: Answer,
    /// When the caller must have its answer (`request::request_deadline`); `None` for our own
    /// events, which get the context's request budget.
    pub deadline: Option<Instant>,
    /// The session as the caller has just read it (the evaluator reads it to see which timers
    /// are due): the first attempt decides on this copy instead of reading it again. A copy
    /// that went stale fails the commit's version condition, and the session is read then.
    pub known: Option<crate::store::Versioned<Session>>,
}

impl Command {
    /// An event of our own (a timer, a follow-up) for an existing session, without a marker.
    pub fn internal(key: SessionKey, input: Input) -> Self {
        Command {
            key,
            input,
            idempotency: None,
            create: Create::Forbidden,
            answer: Answer::Internal,
            deadline: None,
            known: None,
        }
    }

    /// The same command, decided first on a copy of the session the caller has just read.
    pub fn on_copy(mut self, known: crate::store::Versioned<Session>) -> Self {
        self.known = Some(known);
        self
    }
}

/// The outcome of applying a command.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The answer's body (the first answer, for a repeat).
    pub body: Value,
    /// The decision's reply (`None` when this was a repeat answered from the marker).
    pub reply: Option<Reply>,
    pub session: Option<Session>,
}

/// Why a command was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no session {0:?}")]
    UnknownSession(String),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the session is too busy, retry")]
    Busy,
    #[error("the idempotency marker of a repeated event vanished")]
    MarkerVanished,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownSession(id) => ApiError::not_found("unknown_session", format!("no session {id:?}")),
            EngineError::Rejected(r) => ApiError::unprocessable(r.code(), r.to_string()),
            EngineError::Busy => ApiError::unavailable("the session is too busy, retry"),
            EngineError::MarkerVanished => ApiError::unavailable("the event's first answer is unreadable, retry"),
            EngineError::Store(e) => e.into(),
        }
    }
}

/// Applies a command, then every follow-up input it causes, in one loop.
pub async fn apply(ctx: &AppContext, bot: &LoadedBot, command: Command) -> Result<Applied, EngineError> {
    let (applied, follow_ups) = step(ctx, bot, &command).await?;
    drive(ctx, bot, follow_ups).await;
    Ok(applied)
}

/// Applies follow-up inputs (and the follow-ups they cause) until none remain. Failures are
/// logged: the outbox items behind them stay visible, and an alarm watches give-ups.
pub async fn drive(ctx: &AppContext, bot: &LoadedBot, follow_ups: Vec<FollowUp>) {
    let mut pending: VecDeque<FollowUp> = follow_ups.into();
    let mut rounds = 0;
    while let Some(f) = pending.pop_front() {
        rounds += 1;
        if rounds > MAX_FOLLOW_UPS {
            tracing::error!(bot_id = %bot.config.bot_id, left = pending.len() + 1, "follow-up chain too long; left to the evaluator");
            return;
        }
        match step(ctx, bot, &Command::internal(f.key, f.input)).await {
            Ok((_, more)) => pending.extend(more),
            Err(e) => tracing::error!(bot_id = %bot.config.bot_id, error = %e, "follow-up not applied"),
        }
    }
}

/// A conversation opened at a provider during this command.
struct OpenConversation {
    provider: String,
    handover_id: String,
    opened: Opened,
}

/// One command: load → decide → (open) → commit → deliver. Returns the follow-ups.
async fn step(ctx: &AppContext, bot: &LoadedBot, cmd: &Command) -> Result<(Applied, Vec<FollowUp>), EngineError> {
    let key = &cmd.key;
    let idem = cmd.idempotency.as_ref();
    let deadline = cmd.deadline.unwrap_or_else(|| Instant::now() + ctx.request_budget);
    let handover_id = ctx.new_handover_id();
    let mut conditions: Option<Conditions> = None;
    // Providers that failed to open the conversation during this command: the next decision
    // fails over past them.
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut open: Option<OpenConversation> = None;
    let recent_key = format!("{}#{}", key.bot_id, key.session_id);
    for attempt in 0..MAX_ATTEMPTS {
        // A turn (the most common event) is first decided on this instance's copy of the
        // session, if it has one: one round trip instead of two. A stale copy fails the
        // version condition, and the session is then read.
        let copy = if attempt > 0 {
            None
        } else if let Some(known) = &cmd.known {
            Some(known.clone())
        } else if is_turn(&cmd.input) {
            ctx.recent
                .get(&recent_key)
                .map(|(value, version)| crate::store::Versioned { value, version })
        } else {
            None
        };
        let loaded = match copy {
            Some(copy) => Some(copy),
            None => match ctx.store.load_session(key).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    // After a conflict this read may follow a conversation we opened: it must
                    // not be left open (found by the soak under injected DynamoDB failures).
                    abandon(ctx, bot, key, open.take(), deadline).await;
                    return Err(e.into());
                }
            },
        };
        let now = ctx.clock.now();
        let (before, version) = match loaded {
            Some(v) => (v.value, Some(v.version)),
            None if cmd.create == Create::Allowed => (Session::new(&key.bot_id, &key.session_id, now), None),
            None => {
                abandon(ctx, bot, key, open.take(), deadline).await;
                return Err(EngineError::UnknownSession(key.session_id.clone()));
            }
        };
        if conditions.is_none() {
            conditions = Some(gather(ctx, bot, &before, &cmd.input, now).await);
        }
        let mut cond = conditions.clone().unwrap_or_default();
        cond.unavailable_providers.extend(failed.iter().cloned());
        let decision = match decide(&before, &cmd.input, bot, &cond, now, &handover_id) {
            Ok(d) => d,
            Err(rejection) => {
                abandon(ctx, bot, key, open.take(), deadline).await;
                return rejected(ctx, key, idem, rejection).await.map(|a| (a, Vec::new()));
            }
        };
        // The same handover at the same provider, re-decided after a conflict: the conversation
        // we opened is kept.
        let kept = decision
            .start
            .as_ref()
            .and_then(|s| {
                open.as_ref()
                    .filter(|o| o.provider == s.provider && o.handover_id == s.handover.id)
            })
            .map(|o| o.opened.clone());
        let decision = match (decision.start.clone(), kept) {
            (None, _) => {
                abandon(ctx, bot, key, open.take(), deadline).await;
                decision
            }
            (Some(_), Some(opened)) => started(decision, bot, &opened, now),
            (Some(start), None) => {
                abandon(ctx, bot, key, open.take(), deadline).await;
                // A repeated request must not open a second conversation before the commit
                // would have told us it is a repeat.
                if let Some(answer) = first_answer(ctx, key, idem).await? {
                    return Ok((answer, Vec::new()));
                }
                match open_conversation(ctx, bot, key, &start, deadline).await {
                    Ok(conversation_id) => {
                        ctx.health.record(&key.bot_id, &start.provider, true, now).await;
                        let opened = Opened {
                            conversation_id,
                            through_seq: start.through_seq,
                        };
                        let d = started(decision, bot, &opened, now);
                        open = Some(OpenConversation {
                            provider: start.provider,
                            handover_id: start.handover.id.clone(),
                            opened,
                        });
                        d
                    }
                    Err(e) => {
                        tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, error = %e, "provider start failed; trying the next candidate");
                        ctx.health.record(&key.bot_id, &start.provider, false, now).await;
                        if e.outcome_unknown() {
                            // The provider may have opened it before we stopped waiting.
                            let maybe = OpenConversation {
                                opened: Opened {
                                    conversation_id: start.handover.id.clone(),
                                    through_seq: start.through_seq,
                                },
                                provider: start.provider.clone(),
                                handover_id: start.handover.id.clone(),
                            };
                            abandon(ctx, bot, key, Some(maybe), deadline).await;
                        }
                        failed.insert(start.provider);
                        continue;
                    }
                }
            }
        };
        let body = cmd.answer.render(&decision.reply);
        if !decision.changes(&before) {
            ctx.record(&metrics::decided(bot, &before, &cmd.input, &cond, &decision));
            let applied = Applied {
                body,
                reply: Some(decision.reply),
                session: Some(before),
            };
            return Ok((applied, Vec::new()));
        }
        let outbox = outbox_items(ctx, key, &decision, now);
        let links = new_links(&before, &decision.session);
        let seen = idem.map(|i| SeenMarker {
            scope: i.scope.clone(),
            event_id: i.event_id.clone(),
            answer: StoredAnswer {
                status: 200,
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
            Ok(new_version) => {
                ctx.recent
                    .insert(recent_key.clone(), (decision.session.clone(), new_version));
                #[cfg(feature = "failpoints")]
                if crashes_after_commit(&key.bot_id) {
                    // As if the function died here: committed, nothing delivered, no answer.
                    ctx.recent.take(&recent_key);
                    return Err(EngineError::Store(StoreError::Backend(
                        "failpoint: the function crashed after the commit".into(),
                    )));
                }
                ctx.record(&metrics::decided(bot, &before, &cmd.input, &cond, &decision));
                record_join(ctx, key, &before, &decision.session).await;
                let pass = if outbox.is_empty() {
                    outbox::Pass::default()
                } else {
                    outbox::deliver_new(ctx, bot, key, &outbox, &decision.session).await
                };
                let applied = Applied {
                    body,
                    reply: Some(decision.reply),
                    session: Some(decision.session),
                };
                return Ok((applied, pass.follow_ups));
            }
            Err(StoreError::Duplicate) => {
                ctx.recent.take(&recent_key);
                abandon(ctx, bot, key, open.take(), deadline).await;
                return repeated(ctx, key, idem).await.map(|a| (a, Vec::new()));
            }
            Err(StoreError::Conflict) => {
                ctx.recent.take(&recent_key);
                // Another writer got there first: back off a little (jittered) and re-decide.
                let ms = 2 + fastrand::u64(0..(4 + 4 * u64::from(attempt.min(10))));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => {
                abandon(ctx, bot, key, open.take(), deadline).await;
                return Err(e.into());
            }
        }
    }
    abandon(ctx, bot, key, open.take(), deadline).await;
    tracing::warn!(bot_id = %key.bot_id, session = %key.log_ref(), "session too busy");
    Err(EngineError::Busy)
}

/// Test-only (`failpoints`): whether the function "crashes" between a commit and its delivery,
/// for the soak (`engine-after-commit`, configured with the bot id it applies to, so parallel
/// tests of other bots are untouched).
#[cfg(feature = "failpoints")]
fn crashes_after_commit(bot_id: &str) -> bool {
    let crash = fail::eval("engine-after-commit", |arg| arg.as_deref() == Some(bot_id)).unwrap_or(false);
    if crash {
        CRASHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    crash
}

#[cfg(feature = "failpoints")]
static CRASHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test-only (`failpoints`): how many crashes the failpoint caused in this process.
#[cfg(feature = "failpoints")]
pub fn failpoint_crashes() -> u64 {
    CRASHES.load(std::sync::atomic::Ordering::SeqCst)
}

/// User and bot turns: they always write (so a decision on a stale copy of the session can
/// never be answered without the commit that checks it).
fn is_turn(input: &Input) -> bool {
    matches!(input.event, Event::Message { .. } | Event::Messages(_))
}

/// Facts about the outside world the core needs for this input: provider health, agent
/// presence and our wait statistics (for the `opened` dialog) for a handover request; for a
/// "still waiting" nudge, the provider's own wait estimate where it publishes one, and our
/// statistics.
async fn gather(ctx: &AppContext, bot: &LoadedBot, session: &Session, input: &Input, now: DateTime<Utc>) -> Conditions {
    match &input.event {
        Event::HandoverRequested(req) if session.handover.is_none() => {
            let mut conditions = ctx.health.conditions(bot, session, req, now).await;
            let queues: BTreeSet<&str> = bot.config.routing.iter().map(|r| r.queue.as_str()).collect();
            for queue in queues {
                if let Some(typical) = typical_wait(ctx, &session.bot_id, queue, now).await {
                    conditions.typical_waits.insert(queue.to_owned(), typical);
                }
            }
            conditions
        }
        Event::TimerFired {
            timer: TimerKind::StillWaiting,
            ..
        } => {
            let queue = session.handover.as_ref().map(|h| h.queue.as_str()).unwrap_or_default();
            let told = match &session.handover {
                Some(h) => provider_wait(bot, h).await,
                None => Default::default(),
            };
            Conditions {
                typical_wait_seconds: typical_wait(ctx, &session.bot_id, queue, now).await,
                provider_wait_seconds: told.seconds,
                provider_position: told.position,
                ..Conditions::default()
            }
        }
        _ => Conditions::default(),
    }
}

/// How long users of `queue` waited lately, from our own time-to-join statistics (memoized).
async fn typical_wait(ctx: &AppContext, bot_id: &str, queue: &str, now: DateTime<Utc>) -> Option<u64> {
    let memo_key = format!("{bot_id}#{queue}");
    match ctx.typical_waits.get(&memo_key) {
        Some((read_at, typical)) if now - read_at < super::context::TYPICAL_WAIT_TTL => typical,
        _ => match ctx.store.typical_wait(bot_id, queue, now).await {
            Ok(typical) => {
                ctx.typical_waits.insert(memo_key, (now, typical));
                typical
            }
            Err(e) => {
                tracing::warn!(error = %e, "time-to-join statistics unreadable");
                None
            }
        },
    }
}

/// The provider's own estimate for a waiting handover; empty when it publishes none or the
/// question fails (the nudge then uses our statistics).
async fn provider_wait(bot: &LoadedBot, h: &crate::domain::Handover) -> crate::providers::WaitEstimate {
    let Ok(provider) = bot.provider(&h.provider).await else {
        return Default::default();
    };
    let conversation = ProviderConversation {
        handover_id: h.id.clone(),
        conversation_id: h.provider_conversation_id.clone().unwrap_or_else(|| h.id.clone()),
    };
    match provider.wait_estimate(&conversation).await {
        Ok(estimate) => estimate,
        Err(e) => {
            tracing::warn!(provider = %h.provider, error = %e, "provider wait estimate unavailable");
            Default::default()
        }
    }
}

/// The first answer to an event already applied, if it was.
async fn first_answer(
    ctx: &AppContext,
    key: &SessionKey,
    idem: Option<&Idempotency>,
) -> Result<Option<Applied>, EngineError> {
    let Some(i) = idem else { return Ok(None) };
    Ok(ctx.store.seen(key, &i.scope, &i.event_id).await?.map(|answer| Applied {
        body: answer.body,
        reply: None,
        session: None,
    }))
}

/// A rejected event may still be a repeat of one applied earlier (the state moved on since):
/// the first answer wins.
async fn rejected(
    ctx: &AppContext,
    key: &SessionKey,
    idem: Option<&Idempotency>,
    rejection: Rejection,
) -> Result<Applied, EngineError> {
    match first_answer(ctx, key, idem).await? {
        Some(answer) => Ok(answer),
        None => Err(rejection.into()),
    }
}

async fn repeated(ctx: &AppContext, key: &SessionKey, idem: Option<&Idempotency>) -> Result<Applied, EngineError> {
    first_answer(ctx, key, idem).await?.ok_or(EngineError::MarkerVanished)
}

/// The decision's effects as outbox items, numbered as the core counted them and leased to
/// the inline delivery.
fn outbox_items(ctx: &AppContext, key: &SessionKey, decision: &Decision, now: DateTime<Utc>) -> Vec<OutboxItem> {
    let lease = ctx.retry.lease_until(now);
    let first = decision.session.outbox_seq + 1 - decision.effects.len() as u64;
    decision
        .effects
        .iter()
        .zip(first..)
        .map(|(effect, seq)| OutboxItem {
            key: key.clone(),
            seq,
            id: format!("ev-{}", uuid::Uuid::new_v4().simple()),
            effect: effect.clone(),
            attempts: 0,
            status: OutboxStatus::Pending,
            due_at: lease,
            last_error: None,
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

/// Why a conversation was not opened.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Failed(#[from] DeliveryError),
    /// The request's deadline came first: the provider may or may not have opened it.
    #[error("no answer before the request's deadline")]
    TimedOut,
    /// Failed before anything was sent to the provider (our own read of the transcript).
    #[error("not sent: {0}")]
    NotSent(DeliveryError),
    /// The second try was refused, but the first one's outcome is unknown: the provider may
    /// have opened the conversation on the first.
    #[error("{0}, after a first try whose outcome is unknown")]
    AfterUnknown(DeliveryError),
}

impl StartError {
    /// Whether the provider may have opened the conversation anyway: no answer in time, or a
    /// failure without an HTTP status (the client's timeout, a connection lost after the
    /// request went out). Only an answer from the provider says for sure that nothing opened.
    /// Found by the soak: a start that hung past the client timeout had been processed, and the
    /// conversation was left open; and again when such a first try was followed by a refused
    /// second one ([`StartError::AfterUnknown`]).
    fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            StartError::TimedOut
                | StartError::AfterUnknown(_)
                | StartError::Failed(DeliveryError::Retryable { status: None, .. })
        )
    }
}

/// Opens the conversation at the provider, within the request's deadline; one quick second
/// try for a transient failure when time allows. Returns the provider's conversation id.
async fn open_conversation(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    start: &Start,
    deadline: Instant,
) -> Result<String, StartError> {
    let provider = bot
        .provider(&start.provider)
        .await
        .map_err(|e| DeliveryError::permanent(e.message))?;
    let transcript = ctx
        .store
        .transcript(key, Some(start.through_seq))
        .await
        .map_err(|e| StartError::NotSent(DeliveryError::retryable(e.to_string())))?;
    // The delivery id doubles as the idempotency key of the creation where a provider takes one.
    let delivery_id = format!("{}-start", start.handover.id);
    let request = StartRequest {
        delivery_id: &delivery_id,
        bot_id: &key.bot_id,
        session_id: &start.session_id,
        handover: &start.handover,
        user: start.user.as_ref(),
        channel: start.channel.as_deref(),
        transcript: &transcript,
    };
    let attempt = || async {
        tokio::time::timeout_at(deadline.into(), provider.start(&request))
            .await
            .map_err(|_| StartError::TimedOut)?
            .map(|c| c.conversation_id)
            .map_err(StartError::Failed)
    };
    match attempt().await {
        Err(first @ StartError::Failed(DeliveryError::Retryable { retry_after, .. }))
            if retry_after.is_none_or(|d| d <= Duration::from_secs(1)) =>
        {
            let pause = retry_after.unwrap_or(Duration::from_millis(200));
            if Instant::now() + pause >= deadline {
                return Err(StartError::TimedOut);
            }
            tokio::time::sleep(pause).await;
            match attempt().await {
                // What the first try may have opened must still be ended.
                Err(StartError::Failed(refused)) if first.outcome_unknown() => Err(StartError::AfterUnknown(refused)),
                second => second,
            }
        }
        other => other,
    }
}

/// How long an inline end of an abandoned conversation may take before it is left to the
/// outbox.
const ABANDON_INLINE: Duration = Duration::from_secs(2);

/// Writes of the outbox item that ends an abandoned provider conversation, before giving up
/// (with the error logged): 6 attempts over about a second.
const ABANDON_WRITE_ATTEMPTS: u32 = 6;

/// Ends a provider conversation this command opened but could not keep (the session changed
/// under it, the commit failed, the event was a repeat, the start timed out): at once when the
/// provider answers in time, else through a durable outbox item of its own that the evaluator
/// delivers with retries. Nothing opened is left orphaned.
async fn abandon(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    open: Option<OpenConversation>,
    deadline: Instant,
) {
    let Some(o) = open else { return };
    tracing::warn!(bot_id = %bot.config.bot_id, handover_id = %o.handover_id, "abandoning a provider conversation that was not committed");
    let conv = ProviderConversation {
        handover_id: o.handover_id.clone(),
        conversation_id: o.opened.conversation_id.clone(),
    };
    let delivery_id = format!("{}-abandon", o.handover_id);
    let left = deadline.saturating_duration_since(Instant::now()).min(ABANDON_INLINE);
    if !left.is_zero()
        && let Ok(provider) = bot.provider(&o.provider).await
        && let Ok(Ok(())) =
            tokio::time::timeout(left, provider.end(&delivery_id, &conv, EndReason::ProviderError)).await
    {
        return;
    }
    let now = ctx.clock.now();
    let item = OutboxItem {
        // A lane of its own (`#` never occurs in a session id), so the session's numbering
        // and order are untouched.
        key: SessionKey::new(&key.bot_id, &format!("{}#abandoned", key.session_id)),
        seq: u64::try_from(now.timestamp_millis()).unwrap_or(0),
        id: delivery_id,
        effect: crate::domain::Effect::Provider {
            provider: o.provider.clone(),
            handover_id: o.handover_id.clone(),
            op: crate::domain::ProviderOp::Abandon {
                conversation_id: o.opened.conversation_id.clone(),
            },
        },
        attempts: 0,
        status: OutboxStatus::Pending,
        due_at: now,
        last_error: None,
    };
    let expires = now + ChronoDuration::days(i64::from(bot.config.retention_days));
    // The only record that this conversation must be ended: a throttled or failed write is
    // tried again (found by the soak: one failed write orphaned a conversation).
    for attempt in 1..=ABANDON_WRITE_ATTEMPTS {
        match ctx.store.put_outbox(&item, expires).await {
            Ok(()) => return,
            Err(e) if attempt == ABANDON_WRITE_ATTEMPTS => {
                tracing::error!(handover_id = %o.handover_id, error = %e, "could not schedule the end of an abandoned provider conversation");
            }
            Err(e) => {
                tracing::warn!(handover_id = %o.handover_id, attempt, error = %e, "scheduling the end of an abandoned provider conversation failed; trying again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
        }
    }
}

/// Feeds our own time-to-join statistics when an agent has just joined (best effort: the
/// statistics only shape the "still waiting" estimate).
async fn record_join(ctx: &AppContext, key: &SessionKey, before: &Session, after: &Session) {
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

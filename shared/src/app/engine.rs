//! The driver: applies one command to one session — load, gather conditions, decide, open the
//! provider conversation a decision asks for, record it with `domain::started`, commit
//! atomically (re-deciding on a concurrent writer), deliver the new outbox items — and then
//! applies the follow-up inputs deliveries return (a give-up that ends a handover) in the same
//! loop. The driver never edits a decision and never calls itself.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use super::bots::LoadedBot;
use super::command::FollowUp;
use super::context::AppContext;
use super::error::ApiError;
use super::outbox;
use super::start::{self, StartFailure, Starts};
use crate::domain::{
    Conditions, Decision, EndReason, Event, Input, Opened, Rejection, Reply, Session, Start, TimerKind, decide,
    started, started_then_cancelled,
};
use crate::metrics;
use crate::platform::Rendering;
use crate::providers::ProviderConversation;
use crate::store::{Commit, OutboxItem, OutboxStatus, SeenMarker, SessionKey, StoreError, StoredAnswer};

/// Attempts before a hot session is reported as busy. Each retry re-reads and re-decides.
const MAX_ATTEMPTS: u32 = 60;

/// Follow-up rounds one command may cause (each give-up ends at most one handover, so a real
/// chain is one or two long; the bound only guards against a bug looping forever).
const MAX_FOLLOW_UPS: usize = 32;

pub use super::command::Idempotency;

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
    /// The bot platform's answer, rendered by its adapter.
    Platform(Rendering),
    /// A provider callback: `{"status":"ok"}`.
    Ack,
    /// An event of our own (timers, follow-ups): nobody reads the answer.
    Internal,
}

impl Answer {
    pub fn render(self, reply: &Reply) -> Value {
        match self {
            Answer::Platform(rendering) => rendering.render(reply),
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
    /// Holds the id for the caller's answer only: the text, which logs print, never shows it.
    #[error("unknown session")]
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

/// How often a follow-up with an idempotency marker is tried again after a store failure, and
/// the pause before each: such a follow-up (a provider event read back or held for a start) has
/// no other carrier once this invocation is done, and its marker makes a second try safe even
/// when the first one's outcome is unknown.
const FOLLOW_UP_RETRIES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

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
        let command = Command {
            idempotency: f.idempotency,
            ..Command::internal(f.key, f.input)
        };
        let mut pauses = FOLLOW_UP_RETRIES.iter();
        loop {
            match step(ctx, bot, &command).await {
                Ok((_, more)) => pending.extend(more),
                Err(EngineError::Store(StoreError::Backend(_))) if command.idempotency.is_some() => {
                    if let Some(pause) = pauses.next() {
                        tokio::time::sleep(*pause).await;
                        continue;
                    }
                    tracing::error!(bot_id = %bot.config.bot_id, "follow-up not applied: the store kept failing");
                }
                Err(e) => tracing::error!(bot_id = %bot.config.bot_id, error = %e, "follow-up not applied"),
            }
            break;
        }
    }
}

/// One command: load → decide → (open) → commit → deliver. Returns the follow-ups. Every
/// conversation a start opened and this command did not commit is settled on the way out,
/// whichever way that is ([`Starts::settle`], the start protocol's one exit).
async fn step(ctx: &AppContext, bot: &LoadedBot, cmd: &Command) -> Result<(Applied, Vec<FollowUp>), EngineError> {
    let deadline = cmd.deadline.unwrap_or_else(|| Instant::now() + ctx.request_budget);
    let mut starts = Starts::new(ctx, bot, &cmd.key, cmd.idempotency.as_ref(), deadline);
    let result = decide_and_commit(ctx, bot, cmd, &mut starts).await;
    starts.settle().await;
    result
}

async fn decide_and_commit(
    ctx: &AppContext,
    bot: &LoadedBot,
    cmd: &Command,
    starts: &mut Starts<'_>,
) -> Result<(Applied, Vec<FollowUp>), EngineError> {
    let key = &cmd.key;
    let idem = cmd.idempotency.as_ref();
    let handover_id = ctx.handover_id_for(key, idem.map(|i| i.event_id.as_str()));
    let mut conditions: Option<Conditions> = None;
    // Providers that failed to open the conversation during this command: the next decision
    // fails over past them.
    let mut failed: BTreeSet<String> = BTreeSet::new();
    // A cancel that found no handover looks for a start in flight once, and the session once
    // more if that start has committed meanwhile.
    let mut cancel_rechecked = false;
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
            None => ctx.store.load_session(key).await?,
        };
        let now = ctx.clock.now();
        let (before, version) = match loaded {
            Some(v) => (v.value, Some(v.version)),
            None if cmd.create == Create::Allowed => (Session::new(&key.bot_id, &key.session_id, now), None),
            None => return Err(EngineError::UnknownSession(key.session_id.clone())),
        };
        if conditions.is_none() {
            conditions = Some(gather(ctx, bot, &before, &cmd.input, now).await);
        }
        let mut cond = conditions.clone().unwrap_or_default();
        cond.unavailable_providers.extend(failed.iter().cloned());
        let decision = match decide(&before, &cmd.input, bot, &cond, now, &handover_id) {
            Ok(d) => d,
            // `broken-cancel-refused` (test-only, shared/Cargo.toml) reverts the fix: a cancel
            // during the start is refused `no_active_handover`, as before the start protocol.
            Err(Rejection::NoActiveHandover)
                if matches!(cmd.input.event, Event::UserCancelled)
                    && !cancel_rechecked
                    && !cfg!(feature = "broken-cancel-refused") =>
            {
                cancel_rechecked = true;
                // The handover may still be starting: the cancel wins over it.
                if let Some(cancelled) = start::cancel_in_flight(ctx, key).await? {
                    let reply = Reply::Cancelled {
                        state: crate::domain::State::Bot,
                        handover_id: cancelled,
                        reason: EndReason::UserCancelled,
                    };
                    let applied = Applied {
                        body: cmd.answer.render(&reply),
                        reply: Some(reply),
                        session: Some(before),
                    };
                    return Ok((applied, Vec::new()));
                }
                // No start in flight: it may have just committed. Read the session again.
                continue;
            }
            Err(rejection) => return rejected(ctx, key, idem, rejection).await.map(|a| (a, Vec::new())),
        };
        // The start this decision records (kept across a conflict, or opened just now).
        let recorded = decision.start.clone();
        let decision = match decision.start.clone() {
            None => decision,
            // The same handover at the same provider, decided again after a conflict: the
            // conversation this command opened is kept.
            Some(start) => match starts.kept(&start) {
                Some(opened) => started_as(starts, decision, bot, &opened, now),
                None => {
                    // A repeated request must not open a second conversation before the commit
                    // would have told us it is a repeat.
                    if let Some(answer) = first_answer(ctx, key, idem).await? {
                        return Ok((answer, Vec::new()));
                    }
                    match starts.open(&start, now).await {
                        Ok(opened) => started_as(starts, decision, bot, &opened, now),
                        Err(StartFailure::Store(e)) => return Err(e.into()),
                        Err(StartFailure::Repeat) => {
                            return repeated(ctx, key, idem).await.map(|a| (a, Vec::new()));
                        }
                        Err(StartFailure::Provider) => {
                            failed.insert(start.provider);
                            continue;
                        }
                    }
                }
            },
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
        #[cfg(feature = "failpoints")]
        if recorded.is_some() && crashes_before_commit(&key.bot_id) {
            // As if the function died between the provider's answer and the commit: nothing
            // committed, nothing settled, no answer. The start's intent is all that is left.
            starts.crashed();
            return Err(EngineError::Store(StoreError::Backend(
                "failpoint: the function crashed before the commit".into(),
            )));
        }
        let commit = Commit {
            session: &decision.session,
            expected_version: version,
            entries: &decision.entries,
            outbox: &outbox,
            seen: seen.as_ref(),
            links: &links,
            expires_at: now + ChronoDuration::days(i64::from(bot.config.retention_days)),
            intent: recorded.as_ref().and_then(|s| starts.intent_for(s)),
        };
        let outcome = match ctx.store.commit(commit).await {
            // A commit whose answer was lost (a timeout after the write) may have landed, and
            // what follows a commit — the inline deliveries, a start's held events and the
            // read-back of a created conversation — happens only here: a command with an
            // idempotency marker reads it back and carries on as committed when it holds this
            // answer. Found by the simulator (an agent's join at a created-id provider, posted
            // before the start's answer, was lost when the commit's answer was).
            Err(StoreError::Backend(e)) if idem.is_some() => match first_answer(ctx, key, idem).await {
                Ok(Some(stored)) if stored.body == body => Ok(None),
                _ => Err(StoreError::Backend(e)),
            },
            other => other.map(Some),
        };
        match outcome {
            Ok(new_version) => {
                match new_version {
                    Some(v) => ctx.recent.insert(recent_key.clone(), (decision.session.clone(), v)),
                    // Landed, but its version is not known: the next turn reads the session.
                    None => drop(ctx.recent.take(&recent_key)),
                }
                if let Some(s) = &recorded {
                    starts.committed(s);
                }
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
                let mut follow_ups = pass.follow_ups;
                if let Some(s) = &recorded {
                    follow_ups.extend(after_start(ctx, key, s, starts.cancelled()).await);
                }
                let applied = Applied {
                    body,
                    reply: Some(decision.reply),
                    session: Some(decision.session),
                };
                return Ok((applied, follow_ups));
            }
            Err(StoreError::Duplicate) => {
                ctx.recent.take(&recent_key);
                return repeated(ctx, key, idem).await.map(|a| (a, Vec::new()));
            }
            Err(StoreError::Conflict) => {
                ctx.recent.take(&recent_key);
                // Another writer got there first: back off a little (jittered) and re-decide.
                let ms = 2 + fastrand::u64(0..(4 + 4 * u64::from(attempt.min(10))));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            // A cancel marked the start while it was in flight: committed on the next round,
            // then ended at once.
            Err(StoreError::StartCancelled) => starts.cancel_seen(),
            Err(e) => return Err(e.into()),
        }
    }
    tracing::warn!(bot_id = %key.bot_id, session = %key.log_ref(), "session too busy");
    Err(EngineError::Busy)
}

/// The decision to commit once the provider opened the conversation: with a cancel seen on
/// the start's intent (the commit was refused `StartCancelled`), the opening and the cancel
/// are committed together.
fn started_as(
    starts: &Starts<'_>,
    decision: Decision,
    bot: &LoadedBot,
    opened: &Opened,
    now: DateTime<Utc>,
) -> Decision {
    if starts.cancelled() {
        started_then_cancelled(decision, bot, opened, now)
    } else {
        started(decision, bot, opened, now)
    }
}

/// What follows a committed start: provider events that arrived before the commit (an agent
/// who joined before the contact center answered) are applied now, each under its own id. A
/// start committed with its cancel has ended: what was held for it is left to the evaluator,
/// which drops events of an ended handover.
async fn after_start(ctx: &AppContext, key: &SessionKey, start: &Start, cancelled: bool) -> Vec<FollowUp> {
    if cancelled {
        return Vec::new();
    }
    match ctx.store.early_events(key).await {
        Ok(events) => events
            .into_iter()
            .filter(|e| e.handover_id == start.handover.id && e.provider == start.provider)
            .map(|e| super::provider_events::early_follow_up(key, e))
            .collect(),
        Err(e) => {
            tracing::warn!(bot_id = %key.bot_id, error = %e, "events held for the start unreadable; the provider's next event applies");
            Vec::new()
        }
    }
}

/// Test-only (`failpoints`): whether the function "crashes" between a commit and its delivery,
/// for the soak (`engine-after-commit`, configured with the bot id it applies to, so parallel
/// tests of other bots are untouched). Seam tests configure their own copy,
/// `seam-after-commit`, so they and the soak running in one test binary never overwrite each
/// other's configuration.
#[cfg(feature = "failpoints")]
fn crashes_after_commit(bot_id: &str) -> bool {
    let crash = ["engine-after-commit", "seam-after-commit"]
        .into_iter()
        .any(|name| fail::eval(name, |arg| arg.as_deref() == Some(bot_id)).unwrap_or(false));
    if crash {
        CRASHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    crash
}

/// Test-only (`failpoints`): whether the function "crashes" between a start's answer and its
/// commit (`engine-before-commit`, configured with the bot id it applies to). The soak
/// configures its own copy, `soak-before-commit`, so a seam test and the soak running in one
/// test binary never overwrite each other's configuration.
#[cfg(feature = "failpoints")]
fn crashes_before_commit(bot_id: &str) -> bool {
    let crash = ["engine-before-commit", "soak-before-commit"]
        .into_iter()
        .any(|name| fail::eval(name, |arg| arg.as_deref() == Some(bot_id)).unwrap_or(false));
    if crash {
        CRASHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        CRASHES_BEFORE_COMMIT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    crash
}

#[cfg(feature = "failpoints")]
static CRASHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(feature = "failpoints")]
static CRASHES_BEFORE_COMMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test-only (`failpoints`): how many of [`failpoint_crashes`] were before a commit.
#[cfg(feature = "failpoints")]
pub fn failpoint_crashes_before_commit() -> u64 {
    CRASHES_BEFORE_COMMIT.load(std::sync::atomic::Ordering::SeqCst)
}

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
            committed_at: Some(now),
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

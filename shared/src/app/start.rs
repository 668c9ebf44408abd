//! The start protocol: opening a conversation at a provider, with one owner and one exit.
//!
//! A start opens something outside our transaction, so it can outlive everything that goes
//! wrong around it. Each provider a command tries goes through these states:
//!
//! ```text
//! intent written ──► provider called ──► answered: opened ──► committed (the commit removes the intent)
//!  (durable, with        │                                 └─► not committed ─┐
//!   the id the           ├──► refused: nothing opened ─────────────────────────┤
//!   provider will        └──► no answer: maybe opened ─────────────────────────┤
//!   know, if known)                                                            ▼
//!                                          settled: ended at the provider under ITS id, intent removed
//! ```
//!
//! - The **intent** (`START#{providerId}` in the session's partition) is written before the
//!   provider is called, with a pending link for each conversation id known before the call,
//!   so an early callback finds the session (it is held and applied after the commit).
//! - The **commit** removes the intent in the same transaction as the handover, on the
//!   condition that it is still there: a start finished as abandoned by the evaluator can never
//!   be committed afterwards. A cancel that arrived meanwhile marks the intent; the commit then
//!   fails once, commits anyway, and ends the handover `user_cancelled` straight after.
//! - Every other way out — a refusal, no answer in time, a conflict that re-decided elsewhere,
//!   a repeat, a failed commit — ends in [`Starts::settle`], the one exit: whatever may have been
//!   opened is ended under the id the provider knows it by, never under a guess.
//! - A function that dies between the provider's answer and the commit leaves the intent
//!   behind: its `dueAt` puts it in the sparse due index, and the evaluator settles it
//!   ([`settle_left_behind`]).

use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::bots::LoadedBot;
use super::command::Idempotency;
use super::context::AppContext;
use crate::delivery::DeliveryError;
use crate::domain::{EndReason, Opened, Start};
use crate::metrics;
use crate::providers::{ProviderConversation, StartRequest};
use crate::store::{IntentCheck, OutboxItem, OutboxStatus, SessionKey, StartIntent, StartLeftover, StoreError};

/// How long after its start an intent is left alone: the request's budget plus this. A start
/// that has not committed or settled by then belongs to a function that stopped.
const INTENT_GRACE: Duration = Duration::from_secs(60);

/// When something of a start begun (or an event held for it) at `now` is left to the
/// evaluator: the request's budget and [`INTENT_GRACE`] later.
pub(super) fn due_after(ctx: &AppContext, now: DateTime<Utc>) -> DateTime<Utc> {
    now + ChronoDuration::from_std(ctx.request_budget + INTENT_GRACE).unwrap_or_default()
}

/// How long an inline end of an abandoned conversation may take before it is left to the
/// outbox.
const ABANDON_INLINE: Duration = Duration::from_secs(2);

/// Tries at dropping the events held for a start given back ([`drop_held`]).
const DROP_HELD_ATTEMPTS: u32 = 3;

/// Writes of the outbox item that ends an abandoned provider conversation, before giving up
/// (with the error logged): 6 attempts over about a second.
const ABANDON_WRITE_ATTEMPTS: u32 = 6;

/// What became of one try at one provider.
#[derive(Debug, Clone)]
enum Outcome {
    Opened(Opened),
    /// The provider answered with a refusal: nothing was opened.
    Refused,
    /// No answer in time: the provider may have opened it.
    Unknown,
    /// An earlier settle found it unknowable and counted it; its intent was kept as a guard
    /// against a second create ([`StartLeftover::Unresolved`]). Nothing to end.
    Counted,
}

#[derive(Debug, Clone)]
struct Tried {
    intent: StartIntent,
    outcome: Outcome,
    committed: bool,
}

/// Why a start did not open a conversation.
#[derive(Debug)]
pub(super) enum StartFailure {
    /// The intent could not be written: nothing was sent; the command fails.
    Store(StoreError),
    /// The provider did not open it (or may have, without telling): fail over.
    Provider,
    /// Another copy of this request committed its answer meanwhile: nothing was sent, and
    /// the stored answer is this copy's.
    Repeat,
}

/// The starts of one command. Dropping it without [`Starts::settle`] is what a crash does;
/// every path of the engine that returns goes through `settle`.
pub(super) struct Starts<'a> {
    ctx: &'a AppContext,
    bot: &'a LoadedBot,
    key: &'a SessionKey,
    /// The command's idempotency marker, read again once the intent is written.
    idem: Option<&'a Idempotency>,
    deadline: Instant,
    tried: Vec<Tried>,
    cancel_seen: bool,
    /// Test-only failpoint: the "function" died; nothing is settled.
    crashed: bool,
}

impl<'a> Starts<'a> {
    pub(super) fn new(
        ctx: &'a AppContext,
        bot: &'a LoadedBot,
        key: &'a SessionKey,
        idem: Option<&'a Idempotency>,
        deadline: Instant,
    ) -> Self {
        Starts {
            ctx,
            bot,
            key,
            idem,
            deadline,
            tried: Vec::new(),
            cancel_seen: false,
            crashed: false,
        }
    }

    /// Test-only (`failpoints`): the function dies here, leaving its intents behind.
    #[cfg(feature = "failpoints")]
    pub(super) fn crashed(&mut self) {
        self.crashed = true;
    }

    /// The latest try of this handover at this provider.
    fn position(&self, start: &Start) -> Option<usize> {
        self.tried
            .iter()
            .rposition(|t| t.intent.provider == start.provider && t.intent.handover_id == start.handover.id)
    }

    fn find(&self, start: &Start) -> Option<&Tried> {
        self.position(start).map(|i| &self.tried[i])
    }

    /// The conversation this command already opened for the same handover at the same provider
    /// (a decision made again after a conflict keeps it).
    pub(super) fn kept(&self, start: &Start) -> Option<Opened> {
        match self.find(start) {
            Some(Tried {
                outcome: Outcome::Opened(o),
                committed: false,
                ..
            }) => Some(o.clone()),
            _ => None,
        }
    }

    /// What the commit of `start` does with its intent.
    pub(super) fn intent_for(&self, start: &Start) -> Option<(&str, &str, IntentCheck)> {
        if cfg!(feature = "broken-no-intent") {
            // No intent was written (see `open`): the commit has none to consume.
            return None;
        }
        let t = self.find(start)?;
        let check = if self.cancel_seen {
            IntentCheck::ConsumeCancelled
        } else {
            IntentCheck::Consume
        };
        Some((t.intent.provider.as_str(), t.intent.handover_id.as_str(), check))
    }

    /// The commit of `start` went through: its conversation is the handover's now.
    pub(super) fn committed(&mut self, start: &Start) {
        if let Some(i) = self.position(start) {
            self.tried[i].committed = true;
        }
    }

    /// A cancel marked the intent while the start was in flight: the next commit consumes it
    /// anyway, and [`Starts::cancelled`] tells the engine to end the handover at once.
    pub(super) fn cancel_seen(&mut self) {
        self.cancel_seen = true;
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel_seen
    }

    /// Writes the intent, then asks the provider to open the conversation.
    pub(super) async fn open(&mut self, start: &Start, now: DateTime<Utc>) -> Result<Opened, StartFailure> {
        let (ctx, key) = (self.ctx, self.key);
        let provider = match self.bot.provider(&start.provider).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, error = %e.message, "provider unusable; trying the next candidate");
                return Err(StartFailure::Provider);
            }
        };
        let known_id = provider.uncertain_start_id(&start.handover);
        let handover_id = start.handover.id.clone();
        // An earlier try of this very handover (a request retried after its function failed
        // or died before the commit) may have opened the conversation. Found by the simulator.
        let intents = ctx.store.start_intents(key).await.map_err(StartFailure::Store)?;
        let earlier = intents
            .iter()
            .find(|i| i.provider == start.provider && i.handover_id == handover_id)
            .cloned();
        // An intent of another handover at this provider belongs to a start that can no longer
        // commit (this one was decided on a session without it) and whose function stopped:
        // its slot is about to be taken, so it is settled now, not overwritten unsettled (found
        // by the simulator: a created conversation whose id was never recorded went uncounted
        // when the session's next handover replaced the intent before the evaluator saw it).
        for other in intents
            .iter()
            .filter(|i| i.provider == start.provider && i.handover_id != handover_id)
        {
            settle_one(
                ctx,
                self.bot,
                key,
                other,
                &left_behind(other),
                self.deadline,
                Settler::Later,
            )
            .await;
        }
        if known_id.is_none()
            && let Some(earlier) = &earlier
        {
            // Where only the provider's answer names the conversation, a second create would
            // open a second one: the recorded conversation is this handover's, and without a
            // record the earlier try's outcome is unknown, so nothing is created again.
            let Some(conversation_id) = earlier.conversation_id.clone() else {
                tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, "an earlier try of this handover has no recorded conversation: not created twice");
                return Err(StartFailure::Provider);
            };
            let opened = Opened {
                conversation_id,
                through_seq: earlier.through_seq,
                named_by_answer: true,
            };
            self.tried.push(Tried {
                intent: earlier.clone(),
                outcome: Outcome::Opened(opened.clone()),
                committed: false,
            });
            return Ok(opened);
        }
        let intent = StartIntent {
            handover_id: handover_id.clone(),
            provider: start.provider.clone(),
            try_id: uuid::Uuid::new_v4().simple().to_string(),
            conversation_id: known_id.clone(),
            through_seq: start.through_seq,
            started_at: now,
            due_at: due_after(ctx, now),
            cancelled: false,
            unresolved: false,
        };
        let mut links = vec![(start.provider.clone(), handover_id.clone(), handover_id.clone())];
        if let Some(id) = known_id.as_ref().filter(|id| **id != handover_id) {
            links.push((start.provider.clone(), id.clone(), handover_id.clone()));
        }
        let expires = now + ChronoDuration::days(i64::from(self.bot.config.retention_days));
        // `broken-no-intent` (test-only, shared/Cargo.toml) reverts the fix: nothing durable
        // records the start before the provider is called (no intent, no pending links), so a
        // crash before the commit leaves an orphan. `intent_for` then names none to the commit.
        if !cfg!(feature = "broken-no-intent") {
            match ctx.store.put_start_intent(key, &intent, &links, expires).await {
                Ok(()) => {}
                // A copy of this request sent at the same time got there first, at a provider
                // where a second create would open a second conversation (found by the
                // simulator, seed 7592): this copy does not create.
                Err(StoreError::Duplicate) => {
                    tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, "another copy of this request is opening the conversation: not created twice");
                    return Err(StartFailure::Provider);
                }
                Err(e) => return Err(StartFailure::Store(e)),
            }
            // Where a second create would open a second conversation: a copy of this request
            // that committed after this one's check for a stored answer, and so before this
            // intent was written, has its answer stored now (its commit consumed its intent
            // with it, which is why this put went through). Found by the simulator (seeds
            // 24692, 110332, 122352, 148902, 157167 of a full run).
            if known_id.is_none()
                && let Some(i) = self.idem
                && ctx
                    .store
                    .seen(key, &i.scope, &i.event_id)
                    .await
                    .map_err(StartFailure::Store)?
                    .is_some()
            {
                if let Err(e) = ctx.store.clear_start(key, &intent, StartLeftover::Nothing).await {
                    tracing::warn!(bot_id = %key.bot_id, error = %e, "start intent of a repeat not removed; the evaluator removes it");
                }
                return Err(StartFailure::Repeat);
            }
        }
        let result = open_conversation(ctx, provider.as_ref(), key, start, known_id.is_some(), self.deadline).await;
        let outcome = match &result {
            Ok(conversation_id) => {
                ctx.health.record(&key.bot_id, &start.provider, true, now).await;
                if known_id.is_none()
                    && let Err(e) = ctx.store.record_start_answer(key, &intent, conversation_id).await
                {
                    // Only a crash before the commit would need it: logged, not fatal.
                    tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, error = %e, "the provider's conversation id was not recorded on the start intent");
                }
                Outcome::Opened(Opened {
                    conversation_id: conversation_id.clone(),
                    through_seq: start.through_seq,
                    named_by_answer: known_id.is_none(),
                })
            }
            Err(e) => {
                tracing::warn!(bot_id = %key.bot_id, provider = %start.provider, error = %e, "provider start failed; trying the next candidate");
                ctx.health.record(&key.bot_id, &start.provider, false, now).await;
                // A refusal of this try says nothing of what an earlier try opened under the
                // same id: that is settled like an unknown outcome (ended under the id).
                if e.outcome_unknown() || earlier.is_some() {
                    Outcome::Unknown
                } else {
                    Outcome::Refused
                }
            }
        };
        self.tried.push(Tried {
            intent,
            outcome: outcome.clone(),
            committed: false,
        });
        match outcome {
            Outcome::Opened(o) => Ok(o),
            _ => Err(StartFailure::Provider),
        }
    }

    /// The one exit: every try that did not commit is ended at its provider under the id the
    /// provider knows (at once when it answers in time, else through a durable outbox item the
    /// evaluator delivers), and its intent removed.
    pub(super) async fn settle(self) {
        let Starts {
            ctx,
            bot,
            key,
            deadline,
            tried,
            crashed,
            ..
        } = self;
        if crashed {
            return;
        }
        for t in tried.into_iter().filter(|t| !t.committed) {
            settle_one(ctx, bot, key, &t.intent, &t.outcome, deadline, Settler::Command).await;
        }
    }
}

/// Who settles a start: the command that tried it, or someone after its function stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settler {
    /// The command that tried it, before answering: the request may still be retried.
    Command,
    /// The evaluator past the intent's due time, or a later start taking its slot.
    Later,
}

async fn settle_one(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    intent: &StartIntent,
    outcome: &Outcome,
    deadline: Instant,
    settler: Settler,
) {
    let end_under = match outcome {
        Outcome::Opened(o) => Some(o.conversation_id.clone()),
        // `broken-wrong-id-abandon` (test-only, shared/Cargo.toml) reverts the fix: a start of
        // unknown outcome is ended under our handover id, a guess the provider may answer 404.
        Outcome::Unknown if cfg!(feature = "broken-wrong-id-abandon") => Some(intent.handover_id.clone()),
        Outcome::Unknown => intent.conversation_id.clone(),
        Outcome::Refused | Outcome::Counted => None,
    };
    // What of the intent stays: a command keeps a cancel for a retried request to inherit.
    let mut leftover = match settler {
        Settler::Command => StartLeftover::IfCancelled,
        Settler::Later => StartLeftover::Nothing,
    };
    let done = match (outcome, end_under) {
        (Outcome::Refused | Outcome::Counted, _) => true,
        (_, Some(conversation_id)) => abandon(ctx, bot, key, intent, &conversation_id, deadline).await,
        (_, None) => {
            tracing::error!(bot_id = %key.bot_id, provider = %intent.provider, handover_id = %intent.handover_id, "a start of unknown outcome at a provider that names its conversations only in its answer: nothing is known to end; counted");
            ctx.record(&metrics::start_unresolved(&key.bot_id, &intent.provider));
            // The caller may retry the request (its answer changes nothing in the session,
            // so it is not stored): the intent is the only record that this handover's create
            // may have happened, and it stays until its due time so the retry does not create
            // a second conversation. Found by the soak (docs/reliability.md).
            if settler == Settler::Command {
                leftover = StartLeftover::Unresolved;
            }
            true
        }
    };
    // The intent stays while its end is neither done nor scheduled: the evaluator tries again.
    if !done {
        return;
    }
    if settler == Settler::Command {
        drop_held(ctx, key, intent).await;
    }
    // Tried again on a store failure: until its due time, an intent left over looks like a
    // start in flight, and a cancel meant for the session's next start would mark it instead
    // (found by the simulator, seed 42121: the cancel was answered for the refused start, and
    // the next one opened).
    let cleared = with_retries(CLEAR_ATTEMPTS, "removing a settled start's intent", || {
        ctx.store.clear_start(key, intent, leftover)
    })
    .await;
    if let Err(e) = cleared {
        // The evaluator finds it after its due time and ends it again (ends are idempotent).
        tracing::warn!(bot_id = %key.bot_id, handover_id = %intent.handover_id, error = %e, "start intent not removed; the evaluator finishes it");
    }
}

/// Tries at removing a settled start's intent ([`settle_one`]).
const CLEAR_ATTEMPTS: u32 = 3;

/// Runs a store step of the start protocol up to `attempts` times, pausing 50 ms, 100 ms, …
/// between tries: these steps have no later moment that would do them (the evaluator only
/// cleans up after a due time), so a throttled or failed call is tried again at once. Each
/// failure but the last is logged as `what`; the last error is returned.
async fn with_retries<T, F, Fut>(attempts: u32, what: &str, mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if attempt < attempts => {
                tracing::warn!(attempt, error = %e, "{what} failed; trying again");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Drops the provider events held for a try that ends without its commit: they happened in a
/// conversation given back (ended at the provider, the agent dismissed), so a retry of the
/// request, which opens the conversation anew, must not apply them. Done before the intent
/// goes, so a later retry's own held events are never among these (a copy of the request
/// running at the same time shares this handover's intent, which this settle removes: it
/// cannot commit either). A store failure is tried again, as a retry that found the event
/// would apply it; what is still left, the evaluator drops after its due time, as it drops
/// the held events of any start that ended uncommitted. Found by the soak: the stale join was
/// applied to a retry that came before the evaluator, and not to one that came after.
async fn drop_held(ctx: &AppContext, key: &SessionKey, intent: &StartIntent) {
    let dropped = with_retries(
        DROP_HELD_ATTEMPTS,
        "dropping the events held for a start given back",
        || async {
            let held = ctx.store.early_events(key).await?;
            let mut failed = Ok(());
            for event in held
                .iter()
                .filter(|e| e.handover_id == intent.handover_id && e.provider == intent.provider)
            {
                if let Err(e) = ctx.store.drop_early(key, &event.provider, &event.event_id).await {
                    failed = Err(e);
                }
            }
            failed
        },
    )
    .await;
    if let Err(e) = dropped {
        tracing::warn!(bot_id = %key.bot_id, handover_id = %intent.handover_id, error = %e, "events held for a start given back not dropped; the evaluator drops them");
    }
}

/// Settles the starts of a session that were left behind past their due time by a function
/// that stopped between calling the provider and its commit. Returns how many it settled.
pub async fn settle_left_behind(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut settled = 0;
    for intent in ctx.store.start_intents(key).await? {
        if intent.due_at > now {
            continue;
        }
        if intent.unresolved {
            tracing::info!(bot_id = %key.bot_id, handover_id = %intent.handover_id, provider = %intent.provider, "the guard of an unresolved start is removed after its due time");
        } else {
            tracing::warn!(bot_id = %key.bot_id, handover_id = %intent.handover_id, provider = %intent.provider, "a start left behind by a function that stopped is ended");
        }
        settle_one(
            ctx,
            bot,
            key,
            &intent,
            &left_behind(&intent),
            Instant::now() + ABANDON_INLINE,
            Settler::Later,
        )
        .await;
        settled += 1;
    }
    Ok(settled)
}

/// What is known of a start found past its time: counted already (kept as a guard), opened
/// under the recorded id, else unknown (its function stopped).
fn left_behind(intent: &StartIntent) -> Outcome {
    match &intent.conversation_id {
        _ if intent.unresolved => Outcome::Counted,
        Some(id) => Outcome::Opened(Opened {
            conversation_id: id.clone(),
            through_seq: intent.through_seq,
            // Only its id matters to a settle.
            named_by_answer: false,
        }),
        None => Outcome::Unknown,
    }
}

/// A cancel for a session with no committed handover: marks the start in flight, if any, so
/// it ends `user_cancelled` as soon as it commits. Returns its handover id.
pub(super) async fn cancel_in_flight(ctx: &AppContext, key: &SessionKey) -> Result<Option<String>, StoreError> {
    ctx.store.cancel_start(key).await
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
/// try for a transient failure when time allows. `id_known_before` is whether the provider's
/// id of the conversation is known before it answers (`Provider::uncertain_start_id`): only
/// then may a try of unknown outcome be followed by another. Returns the provider's
/// conversation id.
async fn open_conversation(
    ctx: &AppContext,
    provider: &dyn crate::providers::Provider,
    key: &SessionKey,
    start: &Start,
    id_known_before: bool,
    deadline: Instant,
) -> Result<String, StartError> {
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
        tokio::time::timeout_at(deadline, provider.start(&request))
            .await
            .map_err(|_| StartError::TimedOut)?
            .map(|c| c.conversation_id)
            .map_err(StartError::Failed)
    };
    // A provider that creates the conversation and names it only in its answer is not tried a
    // second time after a first try of unknown outcome: the second could only open another.
    let retry_safe = |first: &StartError| !first.outcome_unknown() || id_known_before;
    match attempt().await {
        Err(first @ StartError::Failed(DeliveryError::Retryable { retry_after, .. }))
            if retry_after.is_none_or(|d| d <= Duration::from_secs(1)) && retry_safe(&first) =>
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

/// Ends a provider conversation a start opened (or may have opened) that was not committed:
/// at once when the provider answers in time, else through a durable outbox item of its own
/// that the evaluator delivers with retries. Nothing opened is left orphaned. Returns whether
/// the end was done or durably scheduled.
async fn abandon(
    ctx: &AppContext,
    bot: &LoadedBot,
    key: &SessionKey,
    intent: &StartIntent,
    conversation_id: &str,
    deadline: Instant,
) -> bool {
    tracing::warn!(bot_id = %bot.config.bot_id, handover_id = %intent.handover_id, "abandoning a provider conversation that was not committed");
    let conv = ProviderConversation {
        handover_id: intent.handover_id.clone(),
        conversation_id: conversation_id.to_owned(),
    };
    let delivery_id = format!("{}-abandon", intent.handover_id);
    let left = deadline.saturating_duration_since(Instant::now()).min(ABANDON_INLINE);
    if !left.is_zero()
        && let Ok(provider) = bot.provider(&intent.provider).await
        && let Ok(Ok(())) =
            tokio::time::timeout(left, provider.end(&delivery_id, &conv, EndReason::ProviderError)).await
    {
        return true;
    }
    let now = ctx.clock.now();
    let item = OutboxItem {
        // A lane of its own (`#` never occurs in a session id), so the session's numbering
        // and order are untouched. Microseconds: a failover may abandon two in one millisecond.
        key: SessionKey::new(&key.bot_id, &format!("{}#abandoned", key.session_id)),
        seq: u64::try_from(now.timestamp_micros()).unwrap_or(0),
        id: delivery_id,
        effect: crate::domain::Effect::Provider {
            provider: intent.provider.clone(),
            handover_id: intent.handover_id.clone(),
            conversation_id: Some(conversation_id.to_owned()),
            op: crate::domain::ProviderOp::Abandon {
                conversation_id: conversation_id.to_owned(),
            },
        },
        attempts: 0,
        status: OutboxStatus::Pending,
        due_at: now,
        last_error: None,
        committed_at: Some(now),
    };
    let expires = now + ChronoDuration::days(i64::from(bot.config.retention_days));
    // The only record that this conversation must be ended: a throttled or failed write is
    // tried again (found by the soak: one failed write orphaned a conversation).
    let scheduled = with_retries(
        ABANDON_WRITE_ATTEMPTS,
        "scheduling the end of an abandoned provider conversation",
        || ctx.store.put_outbox(&item, expires),
    )
    .await;
    if let Err(e) = &scheduled {
        tracing::error!(handover_id = %intent.handover_id, error = %e, "could not schedule the end of an abandoned provider conversation");
    }
    scheduled.is_ok()
}

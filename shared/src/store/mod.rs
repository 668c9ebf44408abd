//! Persistence port, by role: [`SessionStore`], [`OutboxStore`], [`DueIndex`], [`HealthStore`],
//! [`BotStore`], [`StatsStore`], together [`Store`]. Two implementations: [`DynamoStore`] on a
//! single DynamoDB table (what runs), and [`MemoryStore`], which keeps DynamoDB's semantics
//! where the engine depends on them (conditional writes, all-or-nothing transactions with
//! their cancellation reasons, the idempotency marker, the sparse due index) for the
//! simulator and the engine tests that need no emulator. One conformance suite
//! (tests/tests/it/store_conformance.rs) runs against both, so they cannot drift.

mod dynamo;
mod memory;
pub mod schema;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::bot::BotConfig;
use crate::domain::{Availability, Effect, Session, TranscriptEntry};

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

/// Identifies a session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub bot_id: String,
    pub session_id: String,
}

impl SessionKey {
    pub fn new(bot_id: &str, session_id: &str) -> Self {
        SessionKey {
            bot_id: bot_id.to_owned(),
            session_id: session_id.to_owned(),
        }
    }

    /// How logs name the session: a keyed hash (HMAC-SHA256 under [`log_ref_key`]), never the
    /// session id itself (it may be a phone number or an e-mail address on some channels). An
    /// unkeyed hash of a phone number is reversed by hashing every phone number; without the
    /// key it cannot be. `handover session show` prints it, so an operator with the same key
    /// can find a session's log lines.
    pub fn log_ref(&self) -> String {
        log_ref_under(log_ref_key(), &self.bot_id, &self.session_id)
    }
}

/// The environment variable holding the key of log references (any text of 16 bytes or
/// more). Without it each process draws its own key: references stay stable within one
/// container but differ between containers and from `handover session show`.
pub const LOG_KEY_ENV: &str = "HANDOVER_LOG_KEY";

/// This process's log-reference key: [`LOG_KEY_ENV`] when set to 16 bytes or more, else 32
/// random bytes drawn once.
pub fn log_ref_key() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| match std::env::var(LOG_KEY_ENV) {
        Ok(k) if k.trim().len() >= 16 => k.trim().as_bytes().to_vec(),
        _ => [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.as_bytes().to_vec())
            .collect(),
    })
}

fn log_ref_under(key: &[u8], bot_id: &str, session_id: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(bot_id.as_bytes());
    mac.update(b"#");
    mac.update(session_id.as_bytes());
    format!("s:{}", hex::encode(&mac.finalize().into_bytes()[..8]))
}

#[cfg(test)]
mod log_ref_tests {
    use super::*;

    #[test]
    fn log_refs_are_keyed() {
        use sha2::{Digest, Sha256};
        let (bot, session) = ("acme", "+32470123456");
        let a = log_ref_under(b"key-one-key-one-key-one", bot, session);
        assert_eq!(
            a,
            log_ref_under(b"key-one-key-one-key-one", bot, session),
            "stable under a key"
        );
        assert_ne!(
            a,
            log_ref_under(b"key-two-key-two-key-two", bot, session),
            "another key, another ref"
        );
        // Whoever guesses the session id cannot recompute the reference without the key.
        let unkeyed = Sha256::digest(format!("{bot}#{session}").as_bytes());
        assert!(!a.contains(&hex::encode(&unkeyed[..6])));
        let process = SessionKey::new(bot, session).log_ref();
        assert!(!process.contains(&hex::encode(&unkeyed[..6])), "{process}");
        assert_eq!(process, log_ref_under(log_ref_key(), bot, session));
    }
}

/// A value and the version it was read at (optimistic locking).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// The answer given the first time an event was applied; repeats get it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}

/// Marks an event as applied, within a scope (`bot:{botId}` or `provider:{botId}:{providerId}`).
#[derive(Debug, Clone)]
pub struct SeenMarker {
    pub scope: String,
    pub event_id: String,
    pub answer: StoredAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    GaveUp,
}

/// An effect waiting for delivery. `id` is what receivers deduplicate on.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub key: SessionKey,
    pub seq: u64,
    pub id: String,
    pub effect: Effect,
    pub attempts: u32,
    pub status: OutboxStatus,
    /// When the next attempt may start. New items carry a short lease so the evaluator
    /// leaves them to the inline delivery that follows the commit.
    pub due_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// When the item was committed (relay latency is measured from here); `None` for items
    /// written before this was recorded.
    pub committed_at: Option<DateTime<Utc>>,
}

/// What [`Store::outbox_requeue`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// The item had given up and is pending again.
    Requeued,
    /// The item is already pending (requeued before, or never given up): nothing changed.
    AlreadyPending,
    /// No such item (a wrong number, delivered since, or its session erased).
    Missing,
}

/// A provider conversation resolved to its session and handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationLink {
    pub key: SessionKey,
    pub handover_id: String,
    /// Written by a start still in flight (its intent, before the provider was called), not
    /// yet by its commit: events for it are held until the commit.
    pub pending: bool,
}

/// The durable record of a start in flight (`SESSION#…` / `START#{providerId}`), written before the
/// provider is called and removed by the commit that records the handover. Whoever finds it
/// left behind (the evaluator, after `due_at`) ends what the start may have opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartIntent {
    pub handover_id: String,
    pub provider: String,
    /// This try's own id (random). Two copies of one request share the handover id and the
    /// intent's slot; a settle removes or marks only the intent its own try wrote, never the
    /// other copy's (found by the simulator, seed 58995: a refused copy removed the intent of a
    /// copy that had opened the conversation and then died, which left it open). Empty on
    /// intents written before it existed: those match any try.
    #[serde(default)]
    pub try_id: String,
    /// The id the provider knows the conversation by: known before the call
    /// (`Provider::uncertain_start_id`), or recorded from the provider's answer before the
    /// commit. `None` while only the provider knows it.
    pub conversation_id: Option<String>,
    pub through_seq: u64,
    pub started_at: DateTime<Utc>,
    /// When the start must have committed or ended; after it the evaluator ends it.
    pub due_at: DateTime<Utc>,
    /// A cancel arrived while the start was in flight: the handover ends as soon as it commits.
    #[serde(default)]
    pub cancelled: bool,
    /// The start is over, its outcome unknown at a provider that names its conversations only
    /// in its answer, and already counted (`StartUnresolved`). The intent stays until its due
    /// time only as the record that this handover's create may have happened, so a retried
    /// request does not create a second conversation ([`StartLeftover::Unresolved`]).
    #[serde(default)]
    pub unresolved: bool,
}

/// Whether `stored` is another try of `mine`'s handover at the same provider (a copy of the
/// request sent at the same time): [`SessionStore::clear_start`] leaves it alone.
pub(crate) fn another_copy(stored: &StartIntent, mine: &StartIntent) -> bool {
    stored.provider == mine.provider
        && stored.handover_id == mine.handover_id
        && !stored.try_id.is_empty()
        && stored.try_id != mine.try_id
}

/// What [`SessionStore::clear_start`] leaves of a start that ended without its commit. The
/// pending links always go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLeftover {
    /// Nothing: the intent goes.
    Nothing,
    /// The intent stays if a cancel marked it: a retried request for the same handover then
    /// inherits the cancel instead of opening a handover the user cancelled.
    IfCancelled,
    /// The intent stays, marked [`StartIntent::unresolved`]: a retried request for the same
    /// handover finds it and does not create again.
    Unresolved,
}

/// A provider event that arrived for a start still in flight (`SESSION#…` / `EARLY#…`), held
/// until the start commits and then applied under its own id. Its `due_at` puts it in the
/// sparse due index: if the function that committed the start never applied it (a failed read
/// or step, a crash after the commit), the evaluator does, then drops it. Expires by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EarlyEvent {
    pub provider: String,
    pub event_id: String,
    pub handover_id: String,
    pub kind: EarlyKind,
    #[serde(default)]
    pub agent: Option<crate::domain::Agent>,
    #[serde(default)]
    pub message: Option<crate::domain::Message>,
    /// When the evaluator applies or drops it, if the start's own function has not (held
    /// before this was recorded: the epoch, at once).
    #[serde(default)]
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyKind {
    Joined,
    Message,
    /// A message of the provider's own automation (a bot flow in its queue): not a join.
    Automated,
    Typing,
    Closed,
}

/// What a commit does with the start intent of the handover it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentCheck {
    /// Removed, on the condition that it is still there and not cancelled.
    Consume,
    /// Removed, on the condition that it is still there (a cancel was seen: the handover is
    /// committed and then ended at once).
    ConsumeCancelled,
}

/// One state change, written atomically.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub session: &'a Session,
    /// `None` creates the session; `Some(v)` requires the stored version to be `v`.
    pub expected_version: Option<u64>,
    pub entries: &'a [TranscriptEntry],
    pub outbox: &'a [OutboxItem],
    pub seen: Option<&'a SeenMarker>,
    /// `(providerId, providerConversationId, handoverId)` links to create.
    pub links: &'a [(String, String, String)],
    pub expires_at: DateTime<Utc>,
    /// The start intent this commit records: provider, handover id, condition.
    pub intent: Option<(&'a str, &'a str, IntentCheck)>,
}

/// Something the evaluator must look at.
/// DynamoDB's limit on the items of one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// What one shard of the due index holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueBatch {
    pub due: Vec<Due>,
    /// Index entries that could not be read (a missing or mistyped attribute): skipped and
    /// counted, so one bad item never blocks the other sessions of its shard.
    pub unreadable: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Due {
    /// A session with a timer at or before now.
    Timer(SessionKey),
    /// A session with an outbox item to (re)deliver.
    Outbox(SessionKey),
    /// A session with a start intent past its time (the start never committed), or an event
    /// held for a start past its time (the start's function may never have applied it).
    Start(SessionKey),
}

/// Circuit-breaker state of one provider of one bot, shared by every function instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderHealth {
    pub provider_id: String,
    /// Consecutive failed deliveries.
    pub failures: u32,
    /// While in the future, the breaker is open: the provider is skipped.
    pub open_until: Option<DateTime<Utc>>,
}

impl ProviderHealth {
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.open_until.is_some_and(|t| t > now)
    }
}

/// A bot's availability as the evaluator last computed it (`BOT#{botId}` / `AVAILABILITY`):
/// the schedule per queue, for operators and bots, and agent presence per `provider/queue`,
/// so intake does not have to ask the provider on every request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAvailability {
    #[serde(default)]
    pub queues: BTreeMap<String, Availability>,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentPresence>,
}

/// Whether agents were online at `checked_at` (`None`: the provider could not tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPresence {
    pub online: Option<bool>,
    pub checked_at: DateTime<Utc>,
}

/// One day of a queue's time-to-join statistics (`BOT#{botId}` / `WAIT#{queue}#{day}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStat {
    pub queue: String,
    pub day: chrono::NaiveDate,
    pub joins: u64,
    pub wait_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the session changed since it was read")]
    Conflict,
    #[error("the event was already applied")]
    Duplicate,
    #[error("stored item is unreadable: {0}")]
    Corrupt(String),
    #[error("the change is too large for one transaction ({0} items)")]
    TooLarge(usize),
    #[error("the start was cancelled while it was in flight")]
    StartCancelled,
    #[error("the start's intent is gone (it was finished as abandoned)")]
    StartGone,
    #[error("dynamodb: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Sessions: a session's state and transcript, committed together with its outbox items, idempotency marker, links and start intent; the provider-conversation links; the start protocol's intents and held events.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>>;
    /// Writes one state change in a single transaction; returns the new version.
    async fn commit(&self, commit: Commit<'_>) -> StoreResult<u64>;
    async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>>;
    /// Transcript entries in order, up to and including `through_seq` when given.
    async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>>;
    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>>;
    /// Records a start before the provider is called: its intent, and a pending link for each
    /// `(providerId, conversationId, handoverId)` known before the call, so early callbacks
    /// find the session. One transaction. A try of a handover whose earlier try was cancelled
    /// stays cancelled. An intent without a conversation id (only the provider's answer will
    /// name it) is refused with [`StoreError::Duplicate`] when an intent of the same handover
    /// is there: another copy of the request is creating the conversation, or did.
    async fn put_start_intent(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        links: &[(String, String, String)],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The session's start intents: starts in flight, or left behind by a function that died.
    async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>>;
    /// Records the provider's own conversation id on `intent` (a provider that names its
    /// conversations only in its answer), before the commit.
    async fn record_start_answer(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        conversation_id: &str,
    ) -> StoreResult<()>;
    /// Marks every start in flight as cancelled (an unresolved one is over, not in flight).
    /// Returns a cancelled start's handover id, or `None` when no start is in flight.
    async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>>;
    /// Removes `intent` (a start that ended without its commit) and its pending links, if it is
    /// still that start's, but for what `leftover` keeps; the evaluator removes a kept intent
    /// after its due time.
    async fn clear_start(&self, key: &SessionKey, intent: &StartIntent, leftover: StartLeftover) -> StoreResult<()>;
    /// Holds a provider event that arrived before its start committed.
    async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// The events held for the session's starts, oldest first.
    async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>>;
    /// Deletes a held event (applied, or its start ended without a commit); nothing if gone.
    async fn drop_early(&self, key: &SessionKey, provider_id: &str, event_id: &str) -> StoreResult<()>;
    /// Deletes every item of a session (on request, or by retention). Returns the count.
    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize>;
}

/// The outbox: effects waiting for delivery, leased by their deliverer.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The session's outbox in order, gave-up items included.
    async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>>;
    /// Takes a lease on an item if it is still as read; false when someone else took it.
    async fn claim_outbox(&self, item: &OutboxItem, lease_until: DateTime<Utc>) -> StoreResult<bool>;
    async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()>;
    /// Stores one outbox item on its own, outside a commit (an abandoned conversation's end,
    /// kept in a lane of its own so it never collides with the session's numbering).
    async fn put_outbox(&self, item: &OutboxItem, expires_at: DateTime<Utc>) -> StoreResult<()>;
    async fn outbox_retry(&self, item: &OutboxItem, next_at: DateTime<Utc>, error: &str) -> StoreResult<bool>;
    async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<bool>;
    /// Puts a given-up item back in the queue (`handover outbox retry`): pending, due at `at`,
    /// with a fresh count of attempts. Changes nothing unless the item exists and has given up,
    /// so repeating it is harmless.
    async fn outbox_requeue(&self, key: &SessionKey, seq: u64, at: DateTime<Utc>) -> StoreResult<Requeue>;
}

/// The sparse due index the evaluator reads: sessions with a timer, outbox items to (re)deliver, start intents past their time.
#[async_trait]
pub trait DueIndex: Send + Sync {
    /// How many shards of the due index the evaluator reads.
    fn due_shards_to_read(&self) -> u32 {
        DUE_SHARDS
    }
    /// Due work in one shard of the sparse index, oldest first.
    async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<DueBatch>;
}

/// Per bot: the providers' circuit breakers and the availability the evaluator computed.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Health of the given providers (missing ones are healthy) and the stored availability,
    /// in one round trip.
    async fn intake_state(
        &self,
        bot_id: &str,
        providers: &[String],
    ) -> StoreResult<(Vec<ProviderHealth>, Option<StoredAvailability>)>;
    /// Writes availability documents, batched.
    async fn put_availability(&self, items: &[(String, StoredAvailability)]) -> StoreResult<()>;
    /// Counts a failed delivery; opens the breaker until `open_until` once `threshold` is reached.
    async fn record_failure(
        &self,
        bot_id: &str,
        provider_id: &str,
        threshold: u32,
        open_until: DateTime<Utc>,
    ) -> StoreResult<ProviderHealth>;
    /// Closes the breaker after a successful delivery.
    async fn record_success(&self, bot_id: &str, provider_id: &str) -> StoreResult<()>;
}

/// Bot configurations and the registry of bot ids.
#[async_trait]
pub trait BotStore: Send + Sync {
    async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>>;
    async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64>;
    /// Every bot id, from the registry `put_bot` maintains.
    async fn list_bots(&self) -> StoreResult<Vec<String>>;
    /// Configurations and stored availability of many bots, batched.
    async fn get_bots(&self, bot_ids: &[String]) -> StoreResult<Vec<(BotConfig, Option<StoredAvailability>)>>;
}

/// Time-to-join statistics per queue and day.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Adds one agent join to the day's time-to-join statistics of a queue.
    async fn record_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>, waited_seconds: u64) -> StoreResult<()>;
    /// Mean time to join of a queue over the day of `at` and the day before.
    async fn typical_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>) -> StoreResult<Option<u64>>;
}

/// The whole persistence port: every role, as one object handlers share. Code that needs
/// only some roles names those traits (`use crate::store::{SessionStore, OutboxStore}`), which
/// says what it touches.
pub trait Store: SessionStore + OutboxStore + DueIndex + HealthStore + BotStore + StatsStore {}

impl<T> Store for T where T: SessionStore + OutboxStore + DueIndex + HealthStore + BotStore + StatsStore {}

/// Every role in scope, for code that calls a concrete store (`DynamoStore`, `MemoryStore`)
/// in many roles: tools and tests.
pub mod prelude {
    pub use super::{BotStore, DueIndex, HealthStore, OutboxStore, SessionStore, StatsStore};
}

/// Shards of the due index by default: enough to spread a busy minute over partitions, few
/// enough that the evaluator's per-minute query count stays small. A stack sets its own count
/// with [`DueShards`] (docs/performance.md, "Raising the due shards").
pub const DUE_SHARDS: u32 = 4;

/// The most shards a stack may use (one evaluator query each per run).
pub const MAX_DUE_SHARDS: u32 = 64;

/// How many due-index shards items are written to, and how many the evaluator reads.
///
/// The shard of a session is a stable hash modulo `write`. Raising `write` moves sessions to
/// other shards as their items are next written, while items written before keep their old
/// shard until then: the evaluator therefore reads `max(write, read)` shards, which covers both
/// counts during the change and after it. Lowering the count needs `read` kept at the old count
/// until the high shards are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueShards {
    pub write: u32,
    pub read: u32,
}

impl Default for DueShards {
    fn default() -> Self {
        DueShards {
            write: DUE_SHARDS,
            read: DUE_SHARDS,
        }
    }
}

impl DueShards {
    /// From `HANDOVER_DUE_SHARDS` (written) and `HANDOVER_DUE_SHARDS_READ` (read; default and
    /// minimum: the written count), each 1 to [`MAX_DUE_SHARDS`]; anything else is the default.
    pub fn from_env() -> Self {
        let read_var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| (1..=MAX_DUE_SHARDS).contains(n))
        };
        let write = read_var("HANDOVER_DUE_SHARDS").unwrap_or(DUE_SHARDS);
        let read = read_var("HANDOVER_DUE_SHARDS_READ").unwrap_or(write).max(write);
        DueShards { write, read }
    }

    /// The shards the evaluator queries.
    pub fn to_read(self) -> u32 {
        self.read.max(self.write)
    }
}

/// Stable shard of a session among [`DUE_SHARDS`] (FNV-1a; must never change between
/// releases).
pub fn shard_of(key: &SessionKey) -> u32 {
    shard_among(key, DUE_SHARDS)
}

/// Stable shard of a session among `shards`.
pub fn shard_among(key: &SessionKey, shards: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bot_id.bytes().chain([b'#']).chain(key.session_id.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % shards.max(1)
}

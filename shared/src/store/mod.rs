//! Persistence port. One implementation, [`DynamoStore`], on a single DynamoDB table; the
//! trait keeps handlers independent of the SDK and lets the core's shell be read in one place.

mod dynamo;
pub mod schema;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::BotConfig;
use crate::domain::{Effect, Session, TranscriptEntry};

pub use dynamo::DynamoStore;

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
}

/// A provider conversation resolved to its session and handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationLink {
    pub key: SessionKey,
    pub handover_id: String,
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
}

/// Something the evaluator must look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Due {
    /// A session with a timer at or before now.
    Timer(SessionKey),
    /// A session with an outbox item to (re)deliver.
    Outbox(SessionKey),
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
    #[error("dynamodb: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync {
    async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>>;
    async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64>;
    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>>;
    /// Writes one state change in a single transaction; returns the new version.
    async fn commit(&self, commit: Commit<'_>) -> StoreResult<u64>;
    async fn seen(&self, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>>;
    /// Transcript entries in order, up to and including `through_seq` when given.
    async fn transcript(
        &self,
        key: &SessionKey,
        through_seq: Option<u64>,
    ) -> StoreResult<Vec<TranscriptEntry>>;
    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>>;
    /// The session's outbox in order, gave-up items included.
    async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>>;
    /// Takes a lease on an item if it is still as read; false when someone else took it.
    async fn claim_outbox(
        &self,
        item: &OutboxItem,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()>;
    async fn outbox_retry(
        &self,
        item: &OutboxItem,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;
    async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<()>;
    /// Due work in one shard of the sparse index, oldest first.
    async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Due>>;
    /// Deletes every item of a session (on request, or by retention). Returns the count.
    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize>;
}

/// Shards of the due index: enough to spread a busy minute over partitions, few enough that
/// the evaluator's per-minute query count stays small.
pub const DUE_SHARDS: u32 = 4;

/// Stable shard of a session (FNV-1a; must never change between releases).
pub fn shard_of(key: &SessionKey) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key
        .bot_id
        .bytes()
        .chain([b'#'])
        .chain(key.session_id.bytes())
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % DUE_SHARDS
}

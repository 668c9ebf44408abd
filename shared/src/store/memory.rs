//! The store in memory, with DynamoDB's semantics where the engine depends on them.
//!
//! What it keeps of DynamoDB, item for item with [`super::DynamoStore`] (the conformance suite
//! in tests/tests/it/store_conformance.rs runs the same cases against both):
//! - conditional writes: the session's version, the idempotency marker, the start intent's
//!   handover and cancel flag, the outbox lease (`dueAt` as read, in milliseconds, and pending);
//! - transactions all or nothing, refused with the same [`StoreError`] the cancellation
//!   reasons map to (`Duplicate` before the intent's `StartCancelled`/`StartGone` before
//!   `Conflict`), and `TooLarge` past [`super::MAX_TRANSACTION_ITEMS`] items;
//! - the sparse due index: only sessions with a timer, pending outbox items and start intents
//!   are in it, by shard, oldest first;
//! - times stored as DynamoDB stores them (due times and leases in milliseconds, a given-up
//!   item's due time gone), so a value read back compares as it would from the table.
//!
//! What it does not model: TTL deletion (DynamoDB's own sweep is lazy, up to days late, and the
//! code never relies on it) and the due index's eventual consistency (the evaluator only ever
//! reads it a minute or more after a write). Every call takes one lock, so every call is atomic
//! and a call's effects are seen by the next: the strongly consistent reads the code asks for.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{
    BotStore, Commit, ConversationLink, Due, DueBatch, DueIndex, DueShards, EarlyEvent, HealthStore, IntentCheck,
    OutboxItem, OutboxStatus, OutboxStore, ProviderHealth, Requeue, SessionKey, SessionStore, StartIntent,
    StartLeftover, StatsStore, StoreError, StoreResult, StoredAnswer, StoredAvailability, Versioned, WaitStat,
};
use crate::bot::BotConfig;
use crate::domain::{Session, TranscriptEntry};

/// Everything of one session's partition (`SESSION#…`).
#[derive(Debug, Clone, Default)]
struct Partition {
    state: Option<(Session, u64)>,
    entries: BTreeMap<u64, TranscriptEntry>,
    /// Idempotency markers by `(scope, event id)`.
    seen: BTreeMap<(String, String), StoredAnswer>,
    /// Back-references to provider-conversation links: `(provider, conversation)`.
    links: BTreeMap<(String, String), ()>,
    /// Start intents by provider.
    starts: BTreeMap<String, StartIntent>,
    /// Held events by `EARLY#{provider}#{event}`, the sort key order DynamoDB returns them in.
    early: BTreeMap<String, EarlyEvent>,
}

impl Partition {
    /// The items DynamoDB would hold in this partition besides `STATE`.
    fn items_besides_state(&self) -> usize {
        self.entries.len() + self.seen.len() + self.links.len() + self.starts.len() + self.early.len()
    }
}

#[derive(Debug, Default)]
struct Tables {
    sessions: BTreeMap<SessionKey, Partition>,
    /// Outbox items by session key and sequence number (`OUTBOX#…`).
    outbox: BTreeMap<SessionKey, BTreeMap<u64, OutboxItem>>,
    /// Provider-conversation links by `(bot, provider, conversation)` (`CONV#…`).
    links: BTreeMap<(String, String, String), ConversationLink>,
    bots: BTreeMap<String, (BotConfig, u64)>,
    availability: BTreeMap<String, StoredAvailability>,
    health: BTreeMap<(String, String), ProviderHealth>,
    /// `(bot, queue, day)` → (joins, seconds waited).
    waits: BTreeMap<(String, String, NaiveDate), (u64, u64)>,
}

/// The in-memory store. Cheap to create: a simulator makes one per run.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    shards: DueShards,
}

/// What DynamoDB keeps of a time stored as a number of milliseconds.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or_default()
}

/// An outbox item as it reads back from the table: due time and commit time in milliseconds,
/// no due time once it gave up.
fn stored(item: &OutboxItem) -> OutboxItem {
    let mut item = item.clone();
    item.due_at = match item.status {
        OutboxStatus::Pending => millis(item.due_at),
        OutboxStatus::GaveUp => DateTime::default(),
    };
    item.committed_at = item.committed_at.map(millis);
    item
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// The same store with `shards` of the due index.
    pub fn with_due_shards(mut self, shards: DueShards) -> Self {
        self.shards = shards;
        self
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while the lock was held leaves the maps as they were between two calls:
        // every call checks before it writes, so the data is still whole.
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many items the table would hold (sessions' partitions, outbox, links, bots):
    /// what a simulator checks to see that nothing is left behind.
    pub fn item_count(&self) -> usize {
        let t = self.tables();
        t.sessions
            .values()
            .map(|p| usize::from(p.state.is_some()) + p.items_besides_state())
            .sum::<usize>()
            + t.outbox.values().map(BTreeMap::len).sum::<usize>()
            + t.links.len()
    }

    /// Every session stored, with its version (reporting and the simulator's final checks).
    pub fn sessions(&self) -> Vec<(Session, u64)> {
        self.tables()
            .sessions
            .values()
            .filter_map(|p| p.state.clone())
            .collect()
    }

    /// Every start intent still stored, by session.
    pub fn all_start_intents(&self) -> Vec<(SessionKey, StartIntent)> {
        let t = self.tables();
        t.sessions
            .iter()
            .flat_map(|(k, p)| p.starts.values().map(move |i| (k.clone(), i.clone())))
            .collect()
    }

    /// Every outbox item still stored (pending or given up).
    pub fn all_outbox(&self) -> Vec<OutboxItem> {
        self.tables()
            .outbox
            .values()
            .flat_map(|o| o.values().cloned())
            .collect()
    }

    /// Every item, one line each, sorted: what a test compares before and after a request
    /// that must change nothing (the emulator's table scan, for this store).
    pub fn dump(&self) -> Vec<String> {
        let t = self.tables();
        let mut lines = Vec::new();
        for (key, p) in &t.sessions {
            if let Some(state) = &p.state {
                lines.push(format!("session {key:?} {state:?}"));
            }
            lines.extend(p.entries.iter().map(|(n, e)| format!("entry {key:?} {n} {e:?}")));
            lines.extend(p.seen.iter().map(|(k, a)| format!("seen {key:?} {k:?} {a:?}")));
            lines.extend(p.links.keys().map(|k| format!("backlink {key:?} {k:?}")));
            lines.extend(p.starts.iter().map(|(k, i)| format!("start {key:?} {k} {i:?}")));
            lines.extend(p.early.iter().map(|(k, e)| format!("early {key:?} {k} {e:?}")));
        }
        for (key, items) in &t.outbox {
            lines.extend(items.iter().map(|(n, i)| format!("outbox {key:?} {n} {i:?}")));
        }
        lines.extend(t.links.iter().map(|(k, l)| format!("link {k:?} {l:?}")));
        lines.extend(t.bots.iter().map(|(k, b)| format!("bot {k} {b:?}")));
        lines.extend(t.availability.iter().map(|(k, a)| format!("availability {k} {a:?}")));
        lines.extend(t.health.iter().map(|(k, h)| format!("health {k:?} {h:?}")));
        lines.extend(t.waits.iter().map(|(k, w)| format!("waits {k:?} {w:?}")));
        lines.sort();
        lines
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>> {
        Ok(self
            .tables()
            .sessions
            .get(key)
            .and_then(|p| p.state.clone())
            .map(|(value, version)| Versioned { value, version }))
    }

    async fn commit(&self, c: Commit<'_>) -> StoreResult<u64> {
        let key = SessionKey::new(&c.session.bot_id, &c.session.session_id);
        let items = 1
            + usize::from(c.seen.is_some())
            + c.entries.len()
            + c.outbox.len()
            + usize::from(c.intent.is_some())
            + 2 * c.links.len();
        if items > super::MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooLarge(items));
        }
        let mut t = self.tables();
        let partition = t.sessions.get(&key);
        // Every condition is checked before anything is written (all or nothing); a refusal
        // names the first failed condition in the order DynamoStore reads its cancellation
        // reasons.
        let stored_version = partition.and_then(|p| p.state.as_ref()).map(|(_, v)| *v);
        let version_ok = match c.expected_version {
            None => stored_version.is_none(),
            Some(v) => stored_version == Some(v),
        };
        if let Some(seen) = c.seen
            && partition.is_some_and(|p| p.seen.contains_key(&(seen.scope.clone(), seen.event_id.clone())))
        {
            return Err(StoreError::Duplicate);
        }
        if let Some((provider, handover_id, check)) = c.intent {
            let intent = partition.and_then(|p| p.starts.get(provider));
            match intent {
                Some(i) if i.handover_id == handover_id => {
                    if check == IntentCheck::Consume && i.cancelled {
                        return Err(StoreError::StartCancelled);
                    }
                }
                _ => return Err(StoreError::StartGone),
            }
        }
        if !version_ok {
            return Err(StoreError::Conflict);
        }
        let new_version = c.expected_version.map_or(1, |v| v + 1);
        let p = t.sessions.entry(key.clone()).or_default();
        p.state = Some((c.session.clone(), new_version));
        if let Some(seen) = c.seen {
            p.seen
                .insert((seen.scope.clone(), seen.event_id.clone()), seen.answer.clone());
        }
        for e in c.entries {
            p.entries.insert(e.seq, e.clone());
        }
        if let Some((provider, _, _)) = c.intent {
            p.starts.remove(provider);
        }
        for (provider, conversation, _) in c.links {
            p.links.insert((provider.clone(), conversation.clone()), ());
        }
        for (provider, conversation, handover) in c.links {
            t.links.insert(
                (key.bot_id.clone(), provider.clone(), conversation.clone()),
                ConversationLink {
                    key: key.clone(),
                    handover_id: handover.clone(),
                    pending: false,
                },
            );
        }
        let lane = t.outbox.entry(key).or_default();
        for o in c.outbox {
            lane.insert(o.seq, stored(o));
        }
        Ok(new_version)
    }

    async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>> {
        Ok(self
            .tables()
            .sessions
            .get(key)
            .and_then(|p| p.seen.get(&(scope.to_owned(), event_id.to_owned())).cloned()))
    }

    async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>> {
        let t = self.tables();
        let Some(p) = t.sessions.get(key) else {
            return Ok(Vec::new());
        };
        Ok(p.entries
            .range(..=through_seq.unwrap_or(9_999_999_999))
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>> {
        Ok(self
            .tables()
            .links
            .get(&(bot_id.to_owned(), provider_id.to_owned(), conversation_id.to_owned()))
            .cloned())
    }

    async fn put_start_intent(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        links: &[(String, String, String)],
        _expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut t = self.tables();
        let p = t.sessions.entry(key.clone()).or_default();
        // A put replaces the item whole, but a try of a handover whose earlier try was
        // cancelled stays cancelled (DynamoStore's conditioned put).
        let mut intent = intent.clone();
        let same = p
            .starts
            .get(&intent.provider)
            .filter(|old| old.handover_id == intent.handover_id);
        // An intent whose conversation only the provider's answer names is put once (DynamoStore).
        if intent.conversation_id.is_none() && same.is_some() {
            return Err(StoreError::Duplicate);
        }
        intent.cancelled = same.is_some_and(|old| old.cancelled);
        p.starts.insert(intent.provider.clone(), intent);
        for (provider, conversation, _) in links {
            p.links.insert((provider.clone(), conversation.clone()), ());
        }
        for (provider, conversation, handover) in links {
            t.links.insert(
                (key.bot_id.clone(), provider.clone(), conversation.clone()),
                ConversationLink {
                    key: key.clone(),
                    handover_id: handover.clone(),
                    pending: true,
                },
            );
        }
        Ok(())
    }

    async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>> {
        Ok(self
            .tables()
            .sessions
            .get(key)
            .map(|p| p.starts.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn record_start_answer(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        conversation_id: &str,
    ) -> StoreResult<()> {
        let mut t = self.tables();
        if let Some(i) = t
            .sessions
            .get_mut(key)
            .and_then(|p| p.starts.get_mut(&intent.provider))
            .filter(|i| i.handover_id == intent.handover_id)
        {
            i.conversation_id = Some(conversation_id.to_owned());
        }
        Ok(())
    }

    async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>> {
        let mut t = self.tables();
        let mut cancelled = None;
        if let Some(p) = t.sessions.get_mut(key) {
            for intent in p.starts.values_mut().filter(|i| !i.unresolved) {
                intent.cancelled = true;
                cancelled = Some(intent.handover_id.clone());
            }
        }
        Ok(cancelled)
    }

    async fn clear_start(&self, key: &SessionKey, intent: &StartIntent, leftover: StartLeftover) -> StoreResult<()> {
        let mut t = self.tables();
        if t.sessions
            .get(key)
            .and_then(|p| p.starts.get(&intent.provider))
            .is_some_and(|kept| super::another_copy(kept, intent))
        {
            return Ok(());
        }
        let mut ids = vec![intent.handover_id.clone()];
        ids.extend(
            intent
                .conversation_id
                .iter()
                .filter(|c| **c != intent.handover_id)
                .cloned(),
        );
        for conversation in ids {
            let link_key = (key.bot_id.clone(), intent.provider.clone(), conversation.clone());
            let ours = t
                .links
                .get(&link_key)
                .is_some_and(|l| l.pending && l.handover_id == intent.handover_id);
            if ours {
                t.links.remove(&link_key);
                if let Some(p) = t.sessions.get_mut(key) {
                    p.links.remove(&(intent.provider.clone(), conversation));
                }
            }
        }
        if let Some(p) = t.sessions.get_mut(key)
            && let Some(kept) = p.starts.get_mut(&intent.provider)
            && kept.handover_id == intent.handover_id
        {
            match leftover {
                StartLeftover::Nothing => drop(p.starts.remove(&intent.provider)),
                StartLeftover::IfCancelled if kept.cancelled => {}
                StartLeftover::IfCancelled => drop(p.starts.remove(&intent.provider)),
                StartLeftover::Unresolved => kept.unresolved = true,
            }
        }
        Ok(())
    }

    async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, _expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.tables()
            .sessions
            .entry(key.clone())
            .or_default()
            .early
            .insert(format!("EARLY#{}#{}", event.provider, event.event_id), event.clone());
        Ok(())
    }

    async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>> {
        Ok(self
            .tables()
            .sessions
            .get(key)
            .map(|p| p.early.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn drop_early(&self, key: &SessionKey, provider_id: &str, event_id: &str) -> StoreResult<()> {
        if let Some(p) = self.tables().sessions.get_mut(key) {
            p.early.remove(&format!("EARLY#{provider_id}#{event_id}"));
        }
        Ok(())
    }

    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize> {
        let mut t = self.tables();
        // Counted as DynamoStore counts the keys it deletes: the state (whether or not it
        // exists), every other item of the partition, each link a back-reference names, and
        // both outbox lanes.
        let mut count = 1;
        if let Some(p) = t.sessions.remove(key) {
            count += p.items_besides_state();
            for (provider, conversation) in p.links.keys() {
                t.links
                    .remove(&(key.bot_id.clone(), provider.clone(), conversation.clone()));
                count += 1;
            }
        }
        let abandoned = SessionKey::new(&key.bot_id, &format!("{}#abandoned", key.session_id));
        for lane in [key, &abandoned] {
            count += t.outbox.remove(lane).map_or(0, |o| o.len());
        }
        Ok(count)
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>> {
        Ok(self
            .tables()
            .outbox
            .get(key)
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn claim_outbox(&self, item: &OutboxItem, lease_until: DateTime<Utc>) -> StoreResult<bool> {
        Ok(self.update_held(item, |held| held.due_at = millis(lease_until)))
    }

    async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()> {
        if let Some(lane) = self.tables().outbox.get_mut(&item.key) {
            lane.remove(&item.seq);
        }
        Ok(())
    }

    async fn put_outbox(&self, item: &OutboxItem, _expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.tables()
            .outbox
            .entry(item.key.clone())
            .or_default()
            .insert(item.seq, stored(item));
        Ok(())
    }

    async fn outbox_retry(&self, item: &OutboxItem, next_at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
        Ok(self.update_held(item, |held| {
            held.due_at = millis(next_at);
            held.attempts = item.attempts + 1;
            held.last_error = Some(error.to_owned());
        }))
    }

    async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<bool> {
        Ok(self.update_held(item, |held| {
            held.status = OutboxStatus::GaveUp;
            held.due_at = DateTime::default();
            held.attempts = item.attempts + 1;
            held.last_error = Some(error.to_owned());
        }))
    }

    async fn outbox_requeue(&self, key: &SessionKey, seq: u64, at: DateTime<Utc>) -> StoreResult<Requeue> {
        let mut t = self.tables();
        let Some(found) = t.outbox.get_mut(key).and_then(|o| o.get_mut(&seq)) else {
            return Ok(Requeue::Missing);
        };
        if found.status != OutboxStatus::GaveUp {
            return Ok(Requeue::AlreadyPending);
        }
        found.status = OutboxStatus::Pending;
        found.attempts = 0;
        found.due_at = millis(at);
        Ok(Requeue::Requeued)
    }
}

impl MemoryStore {
    /// An update by the holder of an item's lease: applied only while the item exists, is
    /// pending and still carries the due time it was read with (DynamoStore's `HELD`).
    fn update_held(&self, item: &OutboxItem, change: impl FnOnce(&mut OutboxItem)) -> bool {
        let mut t = self.tables();
        match t.outbox.get_mut(&item.key).and_then(|o| o.get_mut(&item.seq)) {
            Some(held) if held.status == OutboxStatus::Pending && held.due_at == millis(item.due_at) => {
                change(held);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl DueIndex for MemoryStore {
    fn due_shards_to_read(&self) -> u32 {
        self.shards.to_read()
    }

    async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<DueBatch> {
        let t = self.tables();
        let now = now.timestamp_millis();
        let in_shard = |k: &SessionKey| super::shard_among(k, self.shards.write) == shard;
        // (due time, kind order, key): the index's order, made total so runs repeat exactly.
        let mut found: Vec<(i64, Due)> = Vec::new();
        for (key, p) in t.sessions.iter().filter(|(k, _)| in_shard(k)) {
            if let Some(at) = p.state.as_ref().and_then(|(s, _)| s.timers.index_at()) {
                found.push((at.timestamp_millis(), Due::Timer(key.clone())));
            }
            for intent in p.starts.values() {
                found.push((intent.due_at.timestamp_millis(), Due::Start(key.clone())));
            }
            for held in p.early.values() {
                found.push((held.due_at.timestamp_millis(), Due::Start(key.clone())));
            }
        }
        for (key, lane) in t.outbox.iter().filter(|(k, _)| in_shard(k)) {
            for item in lane.values().filter(|i| i.status == OutboxStatus::Pending) {
                found.push((item.due_at.timestamp_millis(), Due::Outbox(key.clone())));
            }
        }
        found.retain(|(at, _)| *at <= now);
        found.sort();
        let mut due: Vec<Due> = Vec::new();
        for (_, d) in found {
            if due.len() >= limit.max(1) {
                break;
            }
            if !due.contains(&d) {
                due.push(d);
            }
        }
        Ok(DueBatch { due, unreadable: 0 })
    }
}

#[async_trait]
impl HealthStore for MemoryStore {
    async fn intake_state(
        &self,
        bot_id: &str,
        providers: &[String],
    ) -> StoreResult<(Vec<ProviderHealth>, Option<StoredAvailability>)> {
        let t = self.tables();
        let health = providers
            .iter()
            .map(|p| {
                t.health
                    .get(&(bot_id.to_owned(), p.clone()))
                    .cloned()
                    .unwrap_or_else(|| ProviderHealth {
                        provider_id: p.clone(),
                        ..ProviderHealth::default()
                    })
            })
            .collect();
        Ok((health, t.availability.get(bot_id).cloned()))
    }

    async fn put_availability(&self, items: &[(String, StoredAvailability)]) -> StoreResult<()> {
        let mut t = self.tables();
        for (bot, a) in items {
            t.availability.insert(bot.clone(), a.clone());
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        bot_id: &str,
        provider_id: &str,
        threshold: u32,
        open_until: DateTime<Utc>,
    ) -> StoreResult<ProviderHealth> {
        let mut t = self.tables();
        let health = t
            .health
            .entry((bot_id.to_owned(), provider_id.to_owned()))
            .or_insert_with(|| ProviderHealth {
                provider_id: provider_id.to_owned(),
                ..ProviderHealth::default()
            });
        health.failures += 1;
        let open_until = millis(open_until);
        if health.failures >= threshold && health.open_until.is_none_or(|t| t < open_until) {
            health.open_until = Some(open_until);
        }
        Ok(health.clone())
    }

    async fn record_success(&self, bot_id: &str, provider_id: &str) -> StoreResult<()> {
        if let Some(h) = self
            .tables()
            .health
            .get_mut(&(bot_id.to_owned(), provider_id.to_owned()))
            .filter(|h| h.failures > 0)
        {
            h.failures = 0;
            h.open_until = None;
        }
        Ok(())
    }
}

#[async_trait]
impl BotStore for MemoryStore {
    async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>> {
        Ok(self.tables().bots.get(bot_id).map(|(value, version)| Versioned {
            value: value.clone(),
            version: *version,
        }))
    }

    async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64> {
        let mut t = self.tables();
        let version = t.bots.get(&config.bot_id).map_or(1, |(_, v)| v + 1);
        t.bots.insert(config.bot_id.clone(), (config.clone(), version));
        Ok(version)
    }

    async fn list_bots(&self) -> StoreResult<Vec<String>> {
        Ok(self.tables().bots.keys().cloned().collect())
    }

    async fn get_bots(&self, bot_ids: &[String]) -> StoreResult<Vec<(BotConfig, Option<StoredAvailability>)>> {
        let t = self.tables();
        Ok(bot_ids
            .iter()
            .filter_map(|b| t.bots.get(b).map(|(c, _)| (c.clone(), t.availability.get(b).cloned())))
            .collect())
    }
}

#[async_trait]
impl StatsStore for MemoryStore {
    async fn record_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>, waited_seconds: u64) -> StoreResult<()> {
        let mut t = self.tables();
        let day = t
            .waits
            .entry((bot_id.to_owned(), queue.to_owned(), at.date_naive()))
            .or_default();
        day.0 += 1;
        day.1 += waited_seconds;
        Ok(())
    }

    async fn typical_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>) -> StoreResult<Option<u64>> {
        let t = self.tables();
        let (mut joins, mut waited) = (0u64, 0u64);
        for day in [at, at - Duration::days(1)] {
            if let Some((j, w)) = t.waits.get(&(bot_id.to_owned(), queue.to_owned(), day.date_naive())) {
                joins += j;
                waited += w;
            }
        }
        Ok((joins > 0).then(|| waited / joins))
    }
}

impl MemoryStore {
    /// The per-queue, per-day time-to-join statistics of a bot (as `DynamoStore::wait_stats`).
    pub fn wait_stats(&self, bot_id: &str) -> Vec<WaitStat> {
        self.tables()
            .waits
            .iter()
            .filter(|((b, _, _), _)| b == bot_id)
            .map(|((_, queue, day), (joins, wait_seconds))| WaitStat {
                queue: queue.clone(),
                day: *day,
                joins: *joins,
                wait_seconds: *wait_seconds,
            })
            .collect()
    }
}

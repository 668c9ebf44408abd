//! The store the engine sees in a simulation: the in-memory store behind a layer that adds
//! latency and injects, at every call, a failure before it (nothing written), a failure after
//! it (written, but the caller cannot know: an unknown outcome), or a crash (the call never
//! returns and the invocation is killed at its deadline, between any two steps).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handover::config::BotConfig;
use handover::domain::{Session, TranscriptEntry};
use handover::store::{
    BotStore, Commit, ConversationLink, DueBatch, DueIndex, EarlyEvent, HealthStore, MemoryStore, OutboxItem,
    OutboxStore, ProviderHealth, Requeue, SessionKey, SessionStore, StartIntent, StartLeftover, StatsStore, StoreError,
    StoreResult, StoredAnswer, StoredAvailability, Versioned,
};

use crate::world::World;

pub struct FaultyStore {
    pub inner: Arc<MemoryStore>,
    pub world: Arc<World>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Before,
    After,
    Crash,
}

impl FaultyStore {
    fn draw(&self, op: &'static str, write: bool, session: Option<&str>) -> Fault {
        let w = &self.world;
        if !w.faults_on() {
            return Fault::None;
        }
        let o = &w.options;
        let fault = if w.chance(o.store_fault) {
            Fault::Before
        } else if write && w.chance(o.store_fault / 2.0) {
            Fault::After
        } else if w.chance(o.crash) {
            Fault::Crash
        } else {
            Fault::None
        };
        let kind = match fault {
            Fault::None => return Fault::None,
            Fault::Before => "store error",
            Fault::After => "store unknown outcome",
            Fault::Crash => "crash (invocation killed)",
        };
        w.fault(kind, session, op);
        fault
    }

    async fn call<T>(
        &self,
        op: &'static str,
        write: bool,
        session: Option<&str>,
        f: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let invoked_for = crate::world::INVOKED_FOR.try_with(Clone::clone).ok();
        let session = session.or(invoked_for.as_deref().filter(|s| *s != "-"));
        let fault = self.draw(op, write, session);
        self.world.pause_ms(1, 12).await;
        match fault {
            Fault::Before => return Err(StoreError::Backend(format!("simulated failure of {op}"))),
            Fault::Crash => std::future::pending::<()>().await,
            _ => {}
        }
        let r = f.await;
        if fault == Fault::After && r.is_ok() {
            return Err(StoreError::Backend(format!("simulated timeout after {op}")));
        }
        r
    }
}

fn sid(k: &SessionKey) -> Option<&str> {
    Some(k.session_id.split('#').next().unwrap_or(&k.session_id))
}

#[async_trait]
impl SessionStore for FaultyStore {
    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>> {
        self.call("load_session", false, sid(key), self.inner.load_session(key))
            .await
    }
    async fn commit(&self, commit: Commit<'_>) -> StoreResult<u64> {
        let s = commit.session.session_id.clone();
        self.call("commit", true, Some(&s), self.inner.commit(commit)).await
    }
    async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>> {
        self.call("seen", false, sid(key), self.inner.seen(key, scope, event_id))
            .await
    }
    async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>> {
        self.call("transcript", false, sid(key), self.inner.transcript(key, through_seq))
            .await
    }
    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>> {
        // A fault here touches the lane of the session the conversation belongs to: looked up
        // in the store underneath (no fault, no time), so the promptness check knows the lane
        // was not clean.
        let owner = self
            .inner
            .find_conversation(bot_id, provider_id, conversation_id)
            .await
            .ok()
            .flatten()
            .map(|link| link.key);
        self.call(
            "find_conversation",
            false,
            owner.as_ref().and_then(sid),
            self.inner.find_conversation(bot_id, provider_id, conversation_id),
        )
        .await
    }
    async fn put_start_intent(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        links: &[(String, String, String)],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.call(
            "put_start_intent",
            true,
            sid(key),
            self.inner.put_start_intent(key, intent, links, expires_at),
        )
        .await
    }
    async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>> {
        self.call("start_intents", false, sid(key), self.inner.start_intents(key))
            .await
    }
    async fn record_start_answer(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        conversation_id: &str,
    ) -> StoreResult<()> {
        self.call(
            "record_start_answer",
            true,
            sid(key),
            self.inner.record_start_answer(key, intent, conversation_id),
        )
        .await
    }
    async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>> {
        self.call("cancel_start", true, sid(key), self.inner.cancel_start(key))
            .await
    }
    async fn clear_start(&self, key: &SessionKey, intent: &StartIntent, leftover: StartLeftover) -> StoreResult<()> {
        self.call(
            "clear_start",
            true,
            sid(key),
            self.inner.clear_start(key, intent, leftover),
        )
        .await
    }
    async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.call(
            "hold_early",
            true,
            sid(key),
            self.inner.hold_early(key, event, expires_at),
        )
        .await
    }
    async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>> {
        self.call("early_events", false, sid(key), self.inner.early_events(key))
            .await
    }
    async fn drop_early(&self, key: &SessionKey, provider_id: &str, event_id: &str) -> StoreResult<()> {
        self.call(
            "drop_early",
            true,
            sid(key),
            self.inner.drop_early(key, provider_id, event_id),
        )
        .await
    }
    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize> {
        self.call("erase_session", true, sid(key), self.inner.erase_session(key))
            .await
    }
}

#[async_trait]
impl OutboxStore for FaultyStore {
    async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>> {
        self.call("outbox", false, sid(key), self.inner.outbox(key)).await
    }
    async fn claim_outbox(&self, item: &OutboxItem, lease_until: DateTime<Utc>) -> StoreResult<bool> {
        self.call(
            "claim_outbox",
            true,
            sid(&item.key),
            self.inner.claim_outbox(item, lease_until),
        )
        .await
    }
    async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()> {
        self.call(
            "outbox_delivered",
            true,
            sid(&item.key),
            self.inner.outbox_delivered(item),
        )
        .await
    }
    async fn put_outbox(&self, item: &OutboxItem, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.call(
            "put_outbox",
            true,
            sid(&item.key),
            self.inner.put_outbox(item, expires_at),
        )
        .await
    }
    async fn outbox_retry(&self, item: &OutboxItem, next_at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
        self.call(
            "outbox_retry",
            true,
            sid(&item.key),
            self.inner.outbox_retry(item, next_at, error),
        )
        .await
    }
    async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<bool> {
        self.call(
            "outbox_gave_up",
            true,
            sid(&item.key),
            self.inner.outbox_gave_up(item, error),
        )
        .await
    }
    async fn outbox_requeue(&self, key: &SessionKey, seq: u64, at: DateTime<Utc>) -> StoreResult<Requeue> {
        self.call(
            "outbox_requeue",
            true,
            sid(key),
            self.inner.outbox_requeue(key, seq, at),
        )
        .await
    }
}

#[async_trait]
impl DueIndex for FaultyStore {
    fn due_shards_to_read(&self) -> u32 {
        self.inner.due_shards_to_read()
    }
    async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<DueBatch> {
        self.call("due", false, None, self.inner.due(shard, now, limit)).await
    }
}

#[async_trait]
impl HealthStore for FaultyStore {
    async fn intake_state(
        &self,
        bot_id: &str,
        providers: &[String],
    ) -> StoreResult<(Vec<ProviderHealth>, Option<StoredAvailability>)> {
        self.call("intake_state", false, None, self.inner.intake_state(bot_id, providers))
            .await
    }
    async fn put_availability(&self, items: &[(String, StoredAvailability)]) -> StoreResult<()> {
        self.call("put_availability", true, None, self.inner.put_availability(items))
            .await
    }
    async fn record_failure(
        &self,
        bot_id: &str,
        provider_id: &str,
        threshold: u32,
        open_until: DateTime<Utc>,
    ) -> StoreResult<ProviderHealth> {
        self.call(
            "record_failure",
            true,
            None,
            self.inner.record_failure(bot_id, provider_id, threshold, open_until),
        )
        .await
    }
    async fn record_success(&self, bot_id: &str, provider_id: &str) -> StoreResult<()> {
        self.call(
            "record_success",
            true,
            None,
            self.inner.record_success(bot_id, provider_id),
        )
        .await
    }
}

#[async_trait]
impl BotStore for FaultyStore {
    async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>> {
        self.call("get_bot", false, None, self.inner.get_bot(bot_id)).await
    }
    async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64> {
        self.inner.put_bot(config).await
    }
    async fn list_bots(&self) -> StoreResult<Vec<String>> {
        self.call("list_bots", false, None, self.inner.list_bots()).await
    }
    async fn get_bots(&self, bot_ids: &[String]) -> StoreResult<Vec<(BotConfig, Option<StoredAvailability>)>> {
        self.call("get_bots", false, None, self.inner.get_bots(bot_ids)).await
    }
}

#[async_trait]
impl StatsStore for FaultyStore {
    async fn record_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>, waited_seconds: u64) -> StoreResult<()> {
        self.call(
            "record_wait",
            true,
            None,
            self.inner.record_wait(bot_id, queue, at, waited_seconds),
        )
        .await
    }
    async fn typical_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>) -> StoreResult<Option<u64>> {
        self.call("typical_wait", false, None, self.inner.typical_wait(bot_id, queue, at))
            .await
    }
}

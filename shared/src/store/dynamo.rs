//! The single-table DynamoDB implementation (item layout in `docs/architecture.md`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};

use super::schema::DUE_INDEX;
use super::{
    Commit, ConversationLink, Due, DueBatch, EarlyEvent, IntentCheck, OutboxItem, OutboxStatus, ProviderHealth,
    Requeue, SessionKey, StartIntent, StoreError, StoreResult, StoredAnswer, StoredAvailability, Versioned, WaitStat,
};
use crate::config::BotConfig;
use crate::domain::{Session, TranscriptEntry};

type Item = HashMap<String, AttributeValue>;

/// How long an idempotency marker is kept: longer than any provider's retry schedule.
const SEEN_TTL_DAYS: i64 = 7;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    shards: super::DueShards,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            shards: super::DueShards::default(),
        }
    }

    /// The same store writing and reading `shards` of the due index.
    pub fn with_due_shards(mut self, shards: super::DueShards) -> Self {
        self.shards = shards;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn backend(e: impl std::error::Error) -> StoreError {
    StoreError::Backend(DisplayErrorContext(e).to_string())
}

fn session_pk(k: &SessionKey) -> String {
    format!("SESSION#{}#{}", k.bot_id, k.session_id)
}

fn outbox_pk(k: &SessionKey) -> String {
    format!("OUTBOX#{}#{}", k.bot_id, k.session_id)
}

fn bot_pk(bot_id: &str) -> String {
    format!("BOT#{bot_id}")
}

/// Idempotency markers live in their session's partition, so erasing a session finds them.
fn seen_sk(scope: &str, event_id: &str) -> String {
    format!("SEEN#{scope}#{event_id}")
}

/// The back-reference, in the session's partition, to a provider-conversation link.
fn link_sk(provider_id: &str, conversation_id: &str) -> String {
    format!("LINK#{provider_id}#{conversation_id}")
}

/// A start intent, one per provider a start is in flight at (a failover tries several).
fn start_sk(provider_id: &str) -> String {
    format!("START#{provider_id}")
}

/// Events held for a start in flight: a day is far longer than any start.
const EARLY_TTL_HOURS: i64 = 24;

fn early_sk(provider_id: &str, event_id: &str) -> String {
    format!("EARLY#{provider_id}#{event_id}")
}

fn conv_pk(bot_id: &str, provider_id: &str, conversation_id: &str) -> String {
    format!("CONV#{bot_id}#{provider_id}#{conversation_id}")
}

/// Days of time-to-join statistics kept (the estimate uses today and yesterday).
const WAIT_STATS_DAYS: i64 = 3;

fn wait_sk(queue: &str, day: DateTime<Utc>) -> String {
    format!("WAIT#{queue}#{}", day.format("%Y-%m-%d"))
}

/// The partition listing every bot.
const REGISTRY_PK: &str = "BOTS";

fn health_sk(provider_id: &str) -> String {
    format!("HEALTH#{provider_id}")
}

fn parse_health(provider_id: &str, item: &Item) -> ProviderHealth {
    let failures = get_n(item, "failures")
        .ok()
        .and_then(|f| u32::try_from(f).ok())
        .unwrap_or(0);
    let open_until = get_n(item, "openUntil").ok().map(from_millis);
    ProviderHealth {
        provider_id: provider_id.to_owned(),
        failures,
        open_until,
    }
}

fn due_pk(k: &SessionKey, shards: super::DueShards) -> String {
    format!("DUE#{}", super::shard_among(k, shards.write))
}

fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

fn get_n(item: &Item, name: &str) -> StoreResult<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a number")))
}

fn from_doc<T: serde::de::DeserializeOwned>(item: &Item) -> StoreResult<T> {
    serde_json::from_str(get_s(item, "doc")?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn to_doc<T: serde::Serialize>(value: &T) -> AttributeValue {
    s(serde_json::to_string(value).expect("domain types serialize"))
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn put(table: &str, item: Item, condition: Option<&str>, values: Option<Item>) -> TransactWriteItem {
    let p = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_values(values)
        .build()
        .expect("table name and item are set");
    TransactWriteItem::builder().put(p).build()
}

fn outbox_item(item: &OutboxItem, expires_at: DateTime<Utc>, shards: super::DueShards) -> Item {
    let mut m: Item = HashMap::from([
        ("pk".into(), s(outbox_pk(&item.key))),
        ("sk".into(), s(format!("{:010}", item.seq))),
        ("botId".into(), s(&item.key.bot_id)),
        ("sessionId".into(), s(&item.key.session_id)),
        ("id".into(), s(&item.id)),
        ("doc".into(), to_doc(&item.effect)),
        ("attempts".into(), n(item.attempts)),
        ("status".into(), s(status_str(item.status))),
        ("expiresAt".into(), n(expires_at.timestamp())),
    ]);
    if item.status == OutboxStatus::Pending {
        m.insert("duePk".into(), s(due_pk(&item.key, shards)));
        m.insert("dueAt".into(), n(millis(item.due_at)));
    }
    if let Some(e) = &item.last_error {
        m.insert("lastError".into(), s(e));
    }
    if let Some(at) = item.committed_at {
        m.insert("committedAt".into(), n(millis(at)));
    }
    m
}

fn status_str(s: OutboxStatus) -> &'static str {
    match s {
        OutboxStatus::Pending => "pending",
        OutboxStatus::GaveUp => "gave_up",
    }
}

fn parse_outbox(item: &Item) -> StoreResult<OutboxItem> {
    let key = SessionKey::new(get_s(item, "botId")?, get_s(item, "sessionId")?);
    let seq = get_s(item, "sk")?
        .parse()
        .map_err(|_| StoreError::Corrupt("outbox sk".into()))?;
    let status = match get_s(item, "status")? {
        "gave_up" => OutboxStatus::GaveUp,
        _ => OutboxStatus::Pending,
    };
    let due_at = item
        .get("dueAt")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .map(from_millis)
        .unwrap_or_default();
    Ok(OutboxItem {
        key,
        seq,
        id: get_s(item, "id")?.to_owned(),
        effect: from_doc(item)?,
        attempts: u32::try_from(get_n(item, "attempts")?).unwrap_or(u32::MAX),
        status,
        due_at,
        last_error: item.get("lastError").and_then(|v| v.as_s().ok()).cloned(),
        committed_at: item
            .get("committedAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .map(from_millis),
    })
}

impl DynamoStore {
    fn session_item(&self, session: &Session, version: u64, expires_at: DateTime<Utc>) -> Item {
        let key = SessionKey::new(&session.bot_id, &session.session_id);
        let mut m: Item = HashMap::from([
            ("pk".into(), s(session_pk(&key))),
            ("sk".into(), s("STATE")),
            ("botId".into(), s(&session.bot_id)),
            ("sessionId".into(), s(&session.session_id)),
            ("state".into(), s(session.state.as_str())),
            ("version".into(), n(version)),
            ("doc".into(), to_doc(session)),
            ("expiresAt".into(), n(expires_at.timestamp())),
        ]);
        // Only sessions with a pending timer are in the sparse index.
        if let Some(at) = session.timers.earliest() {
            m.insert("duePk".into(), s(due_pk(&key, self.shards)));
            m.insert("dueAt".into(), n(millis(at)));
        }
        m
    }

    async fn query_all(&self, pk: String, upto_sk: Option<String>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(&pk))
                .set_exclusive_start_key(start);
            q = match &upto_sk {
                Some(sk) => q
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":lo", s("MSG#"))
                    .expression_attribute_values(":hi", s(sk)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let out = q.send().await.map_err(backend)?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }
}

impl DynamoStore {
    /// A provider-conversation link and its back-reference in the session's partition (so an
    /// erase finds it); `pending` while the start that wrote it has not committed.
    fn link_items(
        &self,
        key: &SessionKey,
        (provider, conversation, handover): (&str, &str, &str),
        expires_at: DateTime<Utc>,
        pending: bool,
    ) -> [TransactWriteItem; 2] {
        let mut link: Item = HashMap::from([
            ("pk".into(), s(conv_pk(&key.bot_id, provider, conversation))),
            ("sk".into(), s("SESSION")),
            ("botId".into(), s(&key.bot_id)),
            ("sessionId".into(), s(&key.session_id)),
            ("handoverId".into(), s(handover)),
            ("expiresAt".into(), n(expires_at.timestamp())),
        ]);
        if pending {
            link.insert("pending".into(), AttributeValue::Bool(true));
        }
        let back: Item = HashMap::from([
            ("pk".into(), s(session_pk(key))),
            ("sk".into(), s(link_sk(provider, conversation))),
            ("target".into(), s(conv_pk(&key.bot_id, provider, conversation))),
            ("expiresAt".into(), n(expires_at.timestamp())),
        ]);
        [put(&self.table, link, None, None), put(&self.table, back, None, None)]
    }

    /// The items of a partition whose sort key starts with `prefix`, strongly consistent (a
    /// session's start intents or held events: a handful, one page).
    async fn with_prefix(&self, pk: String, prefix: &str) -> StoreResult<Vec<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .send()
            .await
            .map_err(backend)?;
        Ok(out.items().to_vec())
    }

    /// One strongly consistent item read.
    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// A JSON document stored with its `version`.
    async fn get_versioned<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> StoreResult<Option<Versioned<T>>> {
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let version = u64::try_from(get_n(&item, "version")?).unwrap_or(0);
        Ok(Some(Versioned {
            value: from_doc(&item)?,
            version,
        }))
    }
}

/// Reporting reads for `handover stats` (operators only; no function calls them).
impl DynamoStore {
    /// The state of every session of a bot. Sessions have no index by bot, so this is a
    /// filtered scan of the whole table: its cost grows with the table, not with the bot.
    pub async fn bot_sessions(&self, bot_id: &str) -> StoreResult<Vec<Session>> {
        let mut sessions = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :state AND #bot = :bot")
                .projection_expression("#doc")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#bot", "botId")
                .expression_attribute_names("#doc", "doc")
                .expression_attribute_values(":state", s("STATE"))
                .expression_attribute_values(":bot", s(bot_id))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items() {
                sessions.push(from_doc(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(sessions),
            }
        }
    }

    /// The per-queue, per-day time-to-join statistics still kept for a bot (3 days).
    pub async fn wait_stats(&self, bot_id: &str) -> StoreResult<Vec<WaitStat>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :wait)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", s(bot_pk(bot_id)))
            .expression_attribute_values(":wait", s("WAIT#"))
            .send()
            .await
            .map_err(backend)?;
        let mut stats = Vec::new();
        for item in out.items() {
            let sk = get_s(item, "sk")?;
            let (queue, day) = sk
                .strip_prefix("WAIT#")
                .and_then(|rest| rest.rsplit_once('#'))
                .ok_or_else(|| StoreError::Corrupt(format!("wait statistics key {sk:?}")))?;
            stats.push(WaitStat {
                queue: queue.to_owned(),
                day: chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                    .map_err(|e| StoreError::Corrupt(format!("wait statistics day {day:?}: {e}")))?,
                joins: u64::try_from(get_n(item, "joins").unwrap_or(0)).unwrap_or(0),
                wait_seconds: u64::try_from(get_n(item, "waitSeconds").unwrap_or(0)).unwrap_or(0),
            });
        }
        Ok(stats)
    }
}

#[async_trait]
impl super::Store for DynamoStore {
    async fn get_bot(&self, bot_id: &str) -> StoreResult<Option<Versioned<BotConfig>>> {
        self.get_versioned(bot_pk(bot_id), "CONFIG").await
    }

    async fn put_bot(&self, config: &BotConfig) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(bot_pk(&config.bot_id)))
            .key("sk", s("CONFIG"))
            .update_expression("SET #doc = :doc, #bot = :bot ADD #v :one")
            .expression_attribute_names("#doc", "doc")
            .expression_attribute_names("#bot", "botId")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":doc", to_doc(config))
            .expression_attribute_values(":bot", s(&config.bot_id))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        let version = out.attributes().map(|a| get_n(a, "version")).transpose()?.unwrap_or(1);
        // The registry lets the evaluator list bots with a query instead of a scan.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(REGISTRY_PK))
            .item("sk", s(bot_pk(&config.bot_id)))
            .item("botId", s(&config.bot_id))
            .send()
            .await
            .map_err(backend)?;
        Ok(u64::try_from(version).unwrap_or(1))
    }

    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>> {
        self.get_versioned(session_pk(key), "STATE").await
    }

    async fn commit(&self, c: Commit<'_>) -> StoreResult<u64> {
        let key = SessionKey::new(&c.session.bot_id, &c.session.session_id);
        let new_version = c.expected_version.map_or(1, |v| v + 1);
        let mut items = Vec::new();
        // Index 0: the session, guarded by its version. Index 1: the idempotency marker.
        // Cancellation reasons are read by these positions below.
        let session = self.session_item(c.session, new_version, c.expires_at);
        items.push(match c.expected_version {
            None => put(&self.table, session, Some("attribute_not_exists(pk)"), None),
            Some(v) => put(
                &self.table,
                session,
                Some("version = :v"),
                Some(HashMap::from([(":v".into(), n(v))])),
            ),
        });
        if let Some(seen) = c.seen {
            let expires = (Utc::now() + Duration::days(SEEN_TTL_DAYS)).timestamp();
            let item: Item = HashMap::from([
                ("pk".into(), s(session_pk(&key))),
                ("sk".into(), s(seen_sk(&seen.scope, &seen.event_id))),
                ("status".into(), n(seen.answer.status)),
                ("doc".into(), to_doc(&seen.answer.body)),
                ("expiresAt".into(), n(expires)),
            ]);
            items.push(put(&self.table, item, Some("attribute_not_exists(pk)"), None));
        }
        // Entries and outbox items need no condition of their own: their numbers come from the
        // session, and the session's version condition already makes this commit exclusive. A
        // leftover of an expired session (TTL removes items in any order) is overwritten.
        for e in c.entries {
            let item: Item = HashMap::from([
                ("pk".into(), s(session_pk(&key))),
                ("sk".into(), s(format!("MSG#{:010}", e.seq))),
                ("doc".into(), to_doc(e)),
                ("expiresAt".into(), n(c.expires_at.timestamp())),
            ]);
            items.push(put(&self.table, item, None, None));
        }
        for o in c.outbox {
            items.push(put(&self.table, outbox_item(o, c.expires_at, self.shards), None, None));
        }
        // The start intent this commit records: removed with it, and only if it is still
        // there (the evaluator did not finish it as abandoned) and, unless a cancel was already
        // seen, not cancelled meanwhile. Its position is read from the cancellation reasons.
        let intent_at = c.intent.map(|(provider, handover_id, check)| {
            let condition = match check {
                IntentCheck::Consume => "#h = :h AND attribute_not_exists(#c)",
                IntentCheck::ConsumeCancelled => "#h = :h",
            };
            let mut names = HashMap::from([("#h".to_owned(), "handoverId".to_owned())]);
            if check == IntentCheck::Consume {
                names.insert("#c".into(), "cancelled".into());
            }
            let d = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(session_pk(&key)))
                .key("sk", s(start_sk(provider)))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .expression_attribute_values(":h", s(handover_id))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .expect("table name and key are set");
            items.push(TransactWriteItem::builder().delete(d).build());
            items.len() - 1
        });
        for (provider, conversation, handover) in c.links {
            items.extend(self.link_items(&key, (provider, conversation, handover), c.expires_at, false));
        }
        if items.len() > super::MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooLarge(items.len()));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(new_version),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) =
                    e.as_service_error()
                {
                    let failed = |i: usize| {
                        t.cancellation_reasons().get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                    };
                    if c.seen.is_some() && failed(1) {
                        return Err(StoreError::Duplicate);
                    }
                    if let Some(i) = intent_at
                        && failed(i)
                    {
                        let old = t.cancellation_reasons().get(i).and_then(|r| r.item());
                        let cancelled = old.is_some_and(|o| o.contains_key("cancelled"));
                        return Err(if cancelled {
                            StoreError::StartCancelled
                        } else {
                            StoreError::StartGone
                        });
                    }
                    if failed(0) {
                        return Err(StoreError::Conflict);
                    }
                    if t.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict")) {
                        return Err(StoreError::Conflict);
                    }
                }
                Err(backend(e))
            }
        }
    }

    async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>> {
        let Some(item) = self.get(session_pk(key), &seen_sk(scope, event_id)).await? else {
            return Ok(None);
        };
        let item = &item;
        Ok(Some(StoredAnswer {
            status: u16::try_from(get_n(item, "status")?).unwrap_or(200),
            body: from_doc(item)?,
        }))
    }

    async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>> {
        let upto = format!("MSG#{:010}", through_seq.unwrap_or(9_999_999_999));
        self.query_all(session_pk(key), Some(upto))
            .await?
            .iter()
            .map(from_doc)
            .collect()
    }

    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>> {
        let Some(item) = self
            .get(conv_pk(bot_id, provider_id, conversation_id), "SESSION")
            .await?
        else {
            return Ok(None);
        };
        let item = &item;
        Ok(Some(ConversationLink {
            key: SessionKey::new(get_s(item, "botId")?, get_s(item, "sessionId")?),
            handover_id: get_s(item, "handoverId")?.to_owned(),
            pending: matches!(item.get("pending"), Some(AttributeValue::Bool(true))),
        }))
    }

    async fn outbox(&self, key: &SessionKey) -> StoreResult<Vec<OutboxItem>> {
        self.query_all(outbox_pk(key), None)
            .await?
            .iter()
            .map(parse_outbox)
            .collect()
    }

    /// The item still exists, is pending, and carries the lease we hold: an update on any
    /// other item would recreate a deleted one as a ghost or overwrite another deliverer's.
    async fn claim_outbox(&self, item: &OutboxItem, lease_until: DateTime<Utc>) -> StoreResult<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(&item.key)))
            .key("sk", s(format!("{:010}", item.seq)))
            .update_expression("SET #due = :lease")
            .condition_expression("#due = :seen AND #st = :pending")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":lease", n(millis(lease_until)))
            .expression_attribute_values(":seen", n(millis(item.due_at)))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn outbox_delivered(&self, item: &OutboxItem) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(&item.key)))
            .key("sk", s(format!("{:010}", item.seq)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_outbox(&self, item: &OutboxItem, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outbox_item(item, expires_at, self.shards)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn outbox_retry(&self, item: &OutboxItem, next_at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(&item.key)))
            .key("sk", s(format!("{:010}", item.seq)))
            .update_expression("SET #due = :next, #att = :att, #err = :err, #dp = :dp")
            .condition_expression(HELD)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#err", "lastError")
            .expression_attribute_names("#dp", "duePk")
            .expression_attribute_values(":next", n(millis(next_at)))
            .expression_attribute_values(":held", n(millis(item.due_at)))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":att", n(item.attempts + 1))
            .expression_attribute_values(":err", s(error))
            .expression_attribute_values(":dp", s(due_pk(&item.key, self.shards)))
            .send()
            .await;
        held(r)
    }

    async fn outbox_gave_up(&self, item: &OutboxItem, error: &str) -> StoreResult<bool> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(&item.key)))
            .key("sk", s(format!("{:010}", item.seq)))
            .update_expression("SET #st = :gave, #att = :att, #err = :err REMOVE #dp, #due")
            .condition_expression(HELD)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#err", "lastError")
            .expression_attribute_names("#dp", "duePk")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_values(":held", n(millis(item.due_at)))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":gave", s("gave_up"))
            .expression_attribute_values(":att", n(item.attempts + 1))
            .expression_attribute_values(":err", s(error))
            .send()
            .await;
        held(r)
    }

    /// Conditional on the item existing with status `gave_up`: a pending item is never touched,
    /// so a lease held by a deliverer stays intact and a repeat changes nothing.
    async fn outbox_requeue(&self, key: &SessionKey, seq: u64, at: DateTime<Utc>) -> StoreResult<Requeue> {
        let sk = format!("{seq:010}");
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(outbox_pk(key)))
            .key("sk", s(&sk))
            .update_expression("SET #st = :pending, #att = :zero, #due = :at, #dp = :dp")
            .condition_expression("attribute_exists(#pk) AND #st = :gave")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#att", "attempts")
            .expression_attribute_names("#due", "dueAt")
            .expression_attribute_names("#dp", "duePk")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":gave", s("gave_up"))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", n(millis(at)))
            .expression_attribute_values(":dp", s(due_pk(key, self.shards)))
            .send()
            .await;
        match r {
            Ok(_) => Ok(Requeue::Requeued),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let found = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(outbox_pk(key)))
                    .key("sk", s(sk))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(backend)?;
                Ok(if found.item().is_some() {
                    Requeue::AlreadyPending
                } else {
                    Requeue::Missing
                })
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn due_shards_to_read(&self) -> u32 {
        self.shards.to_read()
    }

    async fn due(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> StoreResult<DueBatch> {
        let mut found = Vec::new();
        let mut unreadable = 0;
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#p = :p AND #d <= :now")
                .expression_attribute_names("#p", "duePk")
                .expression_attribute_names("#d", "dueAt")
                .expression_attribute_values(":p", s(format!("DUE#{shard}")))
                .expression_attribute_values(":now", n(millis(now)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in out.items() {
                let read = || -> StoreResult<Due> {
                    let key = SessionKey::new(get_s(item, "botId")?, get_s(item, "sessionId")?);
                    Ok(if get_s(item, "pk")?.starts_with("OUTBOX#") {
                        Due::Outbox(key)
                    } else if get_s(item, "sk")?.starts_with("START#") {
                        Due::Start(key)
                    } else {
                        Due::Timer(key)
                    })
                };
                match read() {
                    Ok(due) if !found.contains(&due) => found.push(due),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(shard, error = %e, "unreadable item in the due index; skipped");
                        unreadable += 1;
                    }
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && found.len() < limit => start = Some(k.clone()),
                _ => {
                    return Ok(DueBatch { due: found, unreadable });
                }
            }
        }
    }

    async fn intake_state(
        &self,
        bot_id: &str,
        providers: &[String],
    ) -> StoreResult<(Vec<ProviderHealth>, Option<StoredAvailability>)> {
        let mut keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder().consistent_read(true);
        for sk in providers
            .iter()
            .map(|p| health_sk(p))
            .chain(["AVAILABILITY".to_owned()])
        {
            keys = keys.keys(HashMap::from([
                ("pk".to_owned(), s(bot_pk(bot_id))),
                ("sk".to_owned(), s(sk)),
            ]));
        }
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys.build().map_err(backend)?)
            .send()
            .await
            .map_err(backend)?;
        let found = out
            .responses()
            .and_then(|r| r.get(&self.table))
            .cloned()
            .unwrap_or_default();
        let health = providers
            .iter()
            .map(|p| {
                found
                    .iter()
                    .find(|i| get_s(i, "sk").ok() == Some(health_sk(p).as_str()))
                    .map(|i| parse_health(p, i))
                    .unwrap_or_else(|| ProviderHealth {
                        provider_id: p.clone(),
                        ..ProviderHealth::default()
                    })
            })
            .collect();
        let availability = found
            .iter()
            .find(|i| get_s(i, "sk").ok() == Some("AVAILABILITY"))
            .map(from_doc)
            .transpose()?;
        Ok((health, availability))
    }

    async fn list_bots(&self) -> StoreResult<Vec<String>> {
        let items = self.query_all(REGISTRY_PK.to_owned(), None).await?;
        items.iter().map(|i| get_s(i, "botId").map(str::to_owned)).collect()
    }

    async fn get_bots(&self, bot_ids: &[String]) -> StoreResult<Vec<(BotConfig, Option<StoredAvailability>)>> {
        let mut configs: HashMap<String, BotConfig> = HashMap::new();
        let mut stored: HashMap<String, StoredAvailability> = HashMap::new();
        // 100 keys per request: the configuration and the availability of 50 bots.
        for chunk in bot_ids.chunks(50) {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .flat_map(|b| {
                    ["CONFIG", "AVAILABILITY"]
                        .map(|sk| HashMap::from([("pk".to_owned(), s(bot_pk(b))), ("sk".to_owned(), s(sk))]))
                })
                .collect();
            while !pending.is_empty() {
                let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .build()
                    .map_err(backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(backend)?;
                for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    let Some(bot) = get_s(item, "pk")?.strip_prefix("BOT#").map(str::to_owned) else {
                        continue;
                    };
                    match get_s(item, "sk")? {
                        "CONFIG" => {
                            configs.insert(bot, from_doc(item)?);
                        }
                        _ => {
                            stored.insert(bot, from_doc(item)?);
                        }
                    }
                }
                if let Some(u) = out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    pending = u.keys().to_vec();
                }
            }
        }
        Ok(bot_ids
            .iter()
            .filter_map(|b| configs.remove(b).map(|c| (c, stored.remove(b))))
            .collect())
    }

    async fn put_availability(&self, items: &[(String, StoredAvailability)]) -> StoreResult<()> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|(bot, a)| {
                    let item: Item = HashMap::from([
                        ("pk".to_owned(), s(bot_pk(bot))),
                        ("sk".to_owned(), s("AVAILABILITY")),
                        ("doc".to_owned(), to_doc(a)),
                    ]);
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                })
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(backend)?;
                if let Some(u) = out.unprocessed_items().and_then(|u| u.get(&self.table)) {
                    requests = u.clone();
                }
            }
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
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(bot_pk(bot_id)))
            .key("sk", s(health_sk(provider_id)))
            .update_expression("ADD #f :one")
            .expression_attribute_names("#f", "failures")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(backend)?;
        let mut health = out
            .attributes()
            .map(|a| parse_health(provider_id, a))
            .unwrap_or_default();
        if health.failures >= threshold && health.open_until.is_none_or(|t| t < open_until) {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(bot_pk(bot_id)))
                .key("sk", s(health_sk(provider_id)))
                .update_expression("SET #o = :o")
                .expression_attribute_names("#o", "openUntil")
                .expression_attribute_values(":o", n(millis(open_until)))
                .send()
                .await
                .map_err(backend)?;
            health.open_until = Some(open_until);
        }
        Ok(health)
    }

    async fn record_success(&self, bot_id: &str, provider_id: &str) -> StoreResult<()> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(bot_pk(bot_id)))
            .key("sk", s(health_sk(provider_id)))
            .update_expression("SET #f = :zero REMOVE #o")
            .condition_expression("#f > :zero")
            .expression_attribute_names("#f", "failures")
            .expression_attribute_names("#o", "openUntil")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn record_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>, waited_seconds: u64) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(bot_pk(bot_id)))
            .key("sk", s(wait_sk(queue, at)))
            .update_expression("ADD #j :one, #w :w SET #e = :e")
            .expression_attribute_names("#j", "joins")
            .expression_attribute_names("#w", "waitSeconds")
            .expression_attribute_names("#e", "expiresAt")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":w", n(waited_seconds))
            .expression_attribute_values(":e", n((at + Duration::days(WAIT_STATS_DAYS)).timestamp()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn typical_wait(&self, bot_id: &str, queue: &str, at: DateTime<Utc>) -> StoreResult<Option<u64>> {
        let keys = [at, at - Duration::days(1)].map(|day| {
            HashMap::from([
                ("pk".to_owned(), s(bot_pk(bot_id))),
                ("sk".to_owned(), s(wait_sk(queue, day))),
            ])
        });
        let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys.to_vec()))
            .build()
            .map_err(backend)?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(backend)?;
        let (mut joins, mut waited) = (0i64, 0i64);
        for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
            joins += get_n(item, "joins").unwrap_or(0);
            waited += get_n(item, "waitSeconds").unwrap_or(0);
        }
        Ok((joins > 0).then(|| u64::try_from(waited / joins).unwrap_or(0)))
    }

    async fn put_start_intent(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        links: &[(String, String, String)],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut record: Item = HashMap::from([
            ("pk".into(), s(session_pk(key))),
            ("sk".into(), s(start_sk(&intent.provider))),
            ("botId".into(), s(&key.bot_id)),
            ("sessionId".into(), s(&key.session_id)),
            ("handoverId".into(), s(&intent.handover_id)),
            ("doc".into(), to_doc(intent)),
            ("duePk".into(), s(due_pk(key, self.shards))),
            ("dueAt".into(), n(millis(intent.due_at))),
            ("expiresAt".into(), n(expires_at.timestamp())),
        ]);
        if let Some(conv) = &intent.conversation_id {
            record.insert("conversationId".into(), s(conv));
        }
        let mut items = vec![put(&self.table, record, None, None)];
        for (provider, conversation, handover) in links {
            items.extend(self.link_items(key, (provider, conversation, handover), expires_at, true));
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>> {
        self.with_prefix(session_pk(key), "START#")
            .await?
            .iter()
            .map(|item| {
                let mut intent: StartIntent = from_doc(item)?;
                if let Ok(conv) = get_s(item, "conversationId") {
                    intent.conversation_id = Some(conv.to_owned());
                }
                intent.cancelled = item.contains_key("cancelled");
                Ok(intent)
            })
            .collect()
    }

    async fn record_start_answer(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        conversation_id: &str,
    ) -> StoreResult<()> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(key)))
            .key("sk", s(start_sk(&intent.provider)))
            .update_expression("SET #conv = :conv")
            .condition_expression("#h = :h")
            .expression_attribute_names("#conv", "conversationId")
            .expression_attribute_names("#h", "handoverId")
            .expression_attribute_values(":conv", s(conversation_id))
            .expression_attribute_values(":h", s(&intent.handover_id))
            .send()
            .await;
        // Gone or another start's: nothing of ours to record on.
        conditional(r.map(drop)).map(drop)
    }

    async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>> {
        let mut cancelled = None;
        for intent in self.start_intents(key).await? {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(session_pk(key)))
                .key("sk", s(start_sk(&intent.provider)))
                .update_expression("SET #c = :t")
                .condition_expression("#h = :h")
                .expression_attribute_names("#c", "cancelled")
                .expression_attribute_names("#h", "handoverId")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":h", s(&intent.handover_id))
                .send()
                .await;
            if conditional(r.map(drop))? {
                cancelled = Some(intent.handover_id);
            }
        }
        Ok(cancelled)
    }

    async fn clear_start(&self, key: &SessionKey, intent: &StartIntent) -> StoreResult<()> {
        // The pending links first: once the intent is gone nothing else names them. Only a
        // link still pending for this very handover goes (a commit made it final otherwise).
        let mut ids = vec![intent.handover_id.clone()];
        ids.extend(
            intent
                .conversation_id
                .iter()
                .filter(|c| **c != intent.handover_id)
                .cloned(),
        );
        for conversation in ids {
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(conv_pk(&key.bot_id, &intent.provider, &conversation)))
                .key("sk", s("SESSION"))
                .condition_expression("#p = :t AND #h = :h")
                .expression_attribute_names("#p", "pending")
                .expression_attribute_names("#h", "handoverId")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":h", s(&intent.handover_id))
                .send()
                .await;
            if conditional(r.map(drop))? {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(session_pk(key)))
                    .key("sk", s(link_sk(&intent.provider, &conversation)))
                    .send()
                    .await
                    .map_err(backend)?;
            }
        }
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(key)))
            .key("sk", s(start_sk(&intent.provider)))
            .condition_expression("#h = :h")
            .expression_attribute_names("#h", "handoverId")
            .expression_attribute_values(":h", s(&intent.handover_id))
            .send()
            .await;
        conditional(r.map(drop)).map(drop)
    }

    async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let expires = expires_at.min(Utc::now() + Duration::hours(EARLY_TTL_HOURS));
        let item: Item = HashMap::from([
            ("pk".into(), s(session_pk(key))),
            ("sk".into(), s(early_sk(&event.provider, &event.event_id))),
            ("doc".into(), to_doc(event)),
            ("expiresAt".into(), n(expires.timestamp())),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>> {
        self.with_prefix(session_pk(key), "EARLY#")
            .await?
            .iter()
            .map(from_doc)
            .collect()
    }

    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize> {
        // Everything of the session is in two partitions: its state, transcript, idempotency
        // markers and link back-references; and its outbox. Each back-reference names a
        // provider-conversation link of one of its handovers, which goes too (later callbacks
        // for it are then acknowledged as unknown instead of pointing at nothing). The state
        // goes first: a commit racing the erase fails its version condition instead of
        // writing the old session back.
        let mut keys: Vec<(String, String)> = vec![(session_pk(key), "STATE".to_owned())];
        for item in self.query_all(session_pk(key), None).await? {
            let sk = get_s(&item, "sk")?.to_owned();
            if sk.starts_with("LINK#")
                && let Ok(target) = get_s(&item, "target")
            {
                keys.push((target.to_owned(), "SESSION".to_owned()));
            }
            if sk != "STATE" {
                keys.push((session_pk(key), sk));
            }
        }
        // The outbox, and the lane of conversations abandoned for this session.
        let abandoned = SessionKey::new(&key.bot_id, &format!("{}#abandoned", key.session_id));
        for pk in [outbox_pk(key), outbox_pk(&abandoned)] {
            for item in self.query_all(pk.clone(), None).await? {
                keys.push((pk.clone(), get_s(&item, "sk")?.to_owned()));
            }
        }
        for (pk, sk) in &keys {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .send()
                .await
                .map_err(backend)?;
        }
        Ok(keys.len())
    }
}

/// `true` when a conditional write applied, `false` when its condition failed (the item is gone
/// or is another's).
fn conditional<E>(
    r: Result<(), aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> StoreResult<bool>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// Condition of updates by the holder of an outbox item's lease.
const HELD: &str = "attribute_exists(#pk) AND #due = :held AND #st = :pending";

/// `true` when a [`HELD`]-conditioned update applied, `false` when the item was gone or not ours.
fn held(
    r: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
    >,
) -> StoreResult<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(backend(e)),
    }
}

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
    Requeue, SessionKey, StartIntent, StartLeftover, StoreError, StoreResult, StoredAnswer, StoredAvailability,
    Versioned, WaitStat,
};
use crate::bot::BotConfig;
use crate::domain::{Session, TranscriptEntry};

mod bots;
mod due;
mod health;
mod outbox;
mod sessions;
mod stats;

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
        if let Some(at) = session.timers.index_at() {
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

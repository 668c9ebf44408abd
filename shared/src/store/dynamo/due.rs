//! The sparse due index: timers, outbox items, start intents and held events, sharded.

use super::*;

#[async_trait]
impl crate::store::DueIndex for DynamoStore {
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
                    } else if ["START#", "EARLY#"]
                        .iter()
                        .any(|p| get_s(item, "sk").is_ok_and(|sk| sk.starts_with(p)))
                    {
                        // A start left behind, or an event held for a start: both settled by
                        // the evaluator's start path.
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
}

//! Time-to-join statistics per queue and day.

use super::*;

#[async_trait]
impl crate::store::StatsStore for DynamoStore {
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
}

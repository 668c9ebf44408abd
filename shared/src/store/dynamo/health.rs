//! Provider health (the circuit breaker) and stored availability, per bot.

use super::*;

#[async_trait]
impl crate::store::HealthStore for DynamoStore {
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
}

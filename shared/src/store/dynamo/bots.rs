//! Bot configurations and the registry of bot ids.

use super::*;

#[async_trait]
impl crate::store::BotStore for DynamoStore {
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
}

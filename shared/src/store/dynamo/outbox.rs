//! The outbox: a partition per session, items in sequence order, leased by their deliverer.

use super::*;

#[async_trait]
impl crate::store::OutboxStore for DynamoStore {
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
}

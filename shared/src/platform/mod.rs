//! Bot-platform adapters: how events reach the bot platform, and how its requests are read.

pub mod chatlayer;
pub mod native;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::delivery::DeliveryError;
use crate::domain::BotEvent;
use crate::store::SessionKey;

/// The bot platform's side of the outbox.
#[async_trait]
pub trait BotPlatform: Send + Sync {
    async fn deliver(
        &self,
        delivery_id: &str,
        key: &SessionKey,
        handover_id: &str,
        event: &BotEvent,
        context: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError>;
}

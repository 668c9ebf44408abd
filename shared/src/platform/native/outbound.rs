//! Our events posted to the bot's `outboundUrl`, signed like the bot's own requests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::bot::PlatformConfig;
use crate::delivery::{self, DeliveryError};
use crate::domain::BotEvent;
use crate::platform::{BotPlatform, SetupError};
use crate::secrets::Secret;
use crate::signing;
use crate::store::SessionKey;

/// Sends outbound events to the bot's `outboundUrl`, signed like inbound requests.
pub struct NativePlatform {
    pub outbound_url: String,
    pub signing_secret: Vec<u8>,
    pub http: reqwest::Client,
}

impl NativePlatform {
    /// The bot's `outboundUrl` and its signing secret (the key it verifies our posts with).
    pub fn new(config: &PlatformConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, SetupError> {
        let outbound_url = config
            .outbound_url
            .clone()
            .ok_or_else(|| SetupError("the bot has no outboundUrl".into()))?;
        let signing_secret = secret
            .field(super::SIGNING_SECRET_FIELD)
            .map_err(|e| SetupError(format!("the bot's platform secret is unusable: {e}")))?;
        Ok(NativePlatform {
            outbound_url,
            signing_secret: signing_secret.as_bytes().to_vec(),
            http,
        })
    }
}

/// The body of an outbound event.
pub fn outbound_body(
    delivery_id: &str,
    key: &SessionKey,
    handover_id: &str,
    event: &BotEvent,
    at: DateTime<Utc>,
) -> Value {
    let mut v = json!({
        "id": delivery_id,
        "type": event.wire_type(),
        "botId": key.bot_id,
        "sessionId": key.session_id,
        "handoverId": handover_id,
        "timestamp": at,
    });
    let extra: BTreeMap<&str, Value> = match event {
        BotEvent::AgentJoined { agent, dialog } => BTreeMap::from([("agent", json!(agent)), ("dialog", json!(dialog))]),
        BotEvent::AgentMessage { agent, message } => {
            BTreeMap::from([("agent", json!(agent)), ("message", json!(message))])
        }
        BotEvent::AgentTyping { agent } => BTreeMap::from([("agent", json!(agent))]),
        BotEvent::Waiting {
            position,
            estimated_wait_seconds,
            dialog,
        } => BTreeMap::from([
            ("position", json!(position)),
            ("estimatedWaitSeconds", json!(estimated_wait_seconds)),
            ("dialog", json!(dialog)),
        ]),
        BotEvent::Ended { reason, dialog } => BTreeMap::from([("reason", json!(reason)), ("dialog", json!(dialog))]),
        BotEvent::Dialog { dialog } => BTreeMap::from([("dialog", json!(dialog))]),
    };
    for (k, val) in extra {
        if !val.is_null() {
            v[k] = val;
        }
    }
    v
}

#[async_trait]
impl BotPlatform for NativePlatform {
    async fn deliver(
        &self,
        delivery_id: &str,
        key: &SessionKey,
        handover_id: &str,
        event: &BotEvent,
        _context: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError> {
        let now = Utc::now();
        let body =
            serde_json::to_vec(&outbound_body(delivery_id, key, handover_id, event, now)).expect("JSON serializes");
        let mut req = self
            .http
            .post(&self.outbound_url)
            .header("content-type", "application/json");
        for (name, value) in signing::headers(&self.signing_secret, now.timestamp(), &body) {
            req = req.header(name, value);
        }
        let resp = req.body(body).send().await.map_err(delivery::transport)?;
        delivery::check(resp, now).await.map(drop)
    }
}

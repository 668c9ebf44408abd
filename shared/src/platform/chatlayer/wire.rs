//! What Chatlayer posts, as typed structs, and the ids derived from it (Chatlayer's events
//! carry none of their own).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::settings::{CTX_BOT_ID, CTX_EMBEDDED, CTX_VERSION};

/// An event Chatlayer posts. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatlayerEvent {
    pub event: String,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    pub session_id: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub messages: Vec<Item>,
    #[serde(default)]
    pub transcript: Vec<Item>,
    #[serde(default)]
    pub payload: Option<Value>,
}

/// One exchanged message: `{actor, message, timestamp}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub actor: String,
    #[serde(default)]
    pub message: Value,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

impl ChatlayerEvent {
    /// What to remember on the session to address it through Chatlayer's API later.
    pub fn context(&self) -> BTreeMap<String, String> {
        let mut c = BTreeMap::new();
        if let Some(b) = &self.bot_id {
            c.insert(CTX_BOT_ID.to_owned(), b.clone());
        }
        if let Some(v) = &self.version {
            c.insert(CTX_VERSION.to_owned(), v.clone());
        }
        if self.event == "offload" {
            // Every offload sets it, so one handover's embedded conversation never outlives it.
            let embedded = self
                .payload
                .as_ref()
                .and_then(|p| p.get("providerConversationId"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            c.insert(CTX_EMBEDDED.to_owned(), embedded.to_owned());
        }
        c
    }
}

/// A stable id for an item, so the offload transcript can skip what `messages` already
/// brought: Chatlayer gives bot messages no id, so content and time identify a turn.
pub fn fingerprint(item: &Item) -> String {
    let mut h = Sha256::new();
    h.update(item.actor.as_bytes());
    h.update(b"|");
    // serde_json's map is ordered, so this is canonical whatever the key order on the wire.
    h.update(item.message.to_string().as_bytes());
    h.update(b"|");
    h.update(
        item.timestamp
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
            .to_string()
            .as_bytes(),
    );
    format!("cl-{}", &hex::encode(h.finalize())[..32])
}

/// A request's idempotency id: Chatlayer events carry none, so the body identifies them.
pub fn body_id(body: &[u8]) -> String {
    format!("clb-{}", &hex::encode(Sha256::digest(body))[..32])
}

//! Our own signed JSON contract for bot platforms (docs/api.md, docs/openapi.yaml).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::BotPlatform;
use crate::delivery::{self, DeliveryError};
use crate::domain::{BotEvent, Event, HandoverRequest, Input, Message, Reply, Session, Speaker, UserInfo};
use crate::signing;
use crate::store::SessionKey;

/// Per-field limits, so one field cannot carry the whole 256 KiB.
pub const MAX_ID_LEN: usize = 128;
pub use crate::domain::limits::MAX_TEXT_LEN;

/// A request body as sent by the bot platform. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub session_id: String,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub user: Option<UserInfo>,
    #[serde(default)]
    pub message: Option<NativeMessage>,
    #[serde(default)]
    pub handover: Option<HandoverRequest>,
}

#[derive(Debug, Deserialize)]
pub struct NativeMessage {
    pub actor: Speaker,
    #[serde(flatten)]
    pub content: Message,
}

/// A request that is well-formed JSON but not a valid event; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    /// The field is over its size limit (answered 422 `too_large`, not 400).
    pub oversize: bool,
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        message: message.into(),
        oversize: false,
    }
}

impl From<crate::domain::limits::Oversize> for FieldProblem {
    fn from(o: crate::domain::limits::Oversize) -> Self {
        FieldProblem {
            message: format!("longer than {}", o.limit),
            field: o.field,
            oversize: true,
        }
    }
}

/// The three event types of the contract.
pub const EVENT_TYPES: [&str; 3] = ["message", "handover.request", "handover.cancel"];

impl NativeEvent {
    /// Checks limits and required parts, and turns the event into the core's input.
    pub fn into_input(self) -> Result<(String, Input), FieldProblem> {
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN {
            return Err(problem("id", format!("must be 1-{MAX_ID_LEN} characters")));
        }
        if self.session_id.is_empty() || self.session_id.len() > MAX_ID_LEN || self.session_id.contains('#') {
            return Err(problem(
                "sessionId",
                format!("must be 1-{MAX_ID_LEN} characters without '#'"),
            ));
        }
        let event = match self.kind.as_str() {
            "message" => {
                let m = self
                    .message
                    .ok_or_else(|| problem("message", "is required for type \"message\""))?;
                crate::domain::limits::check_message("message", &m.content)?;
                if m.content.is_empty() {
                    return Err(problem("message", "has no content"));
                }
                Event::Message {
                    speaker: m.actor,
                    message: m.content,
                }
            }
            "handover.request" => {
                let req = self
                    .handover
                    .ok_or_else(|| problem("handover", "is required for type \"handover.request\""))?;
                crate::domain::limits::check_request("handover", &req)?;
                Event::HandoverRequested(req)
            }
            "handover.cancel" => Event::UserCancelled,
            other => {
                return Err(problem(
                    "type",
                    format!(
                        "unknown event type {other:?}; expected one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        };
        if let Some(user) = &self.user {
            crate::domain::limits::check_user("user", user)?;
        }
        crate::domain::limits::check_channel("channel", self.channel.as_deref())?;
        let input = Input {
            event,
            event_id: Some(self.id.clone()),
            user: self.user,
            channel: self.channel,
            context: Default::default(),
        };
        Ok((self.session_id, input))
    }
}

/// The JSON answer of the contract for a reply.
pub fn reply_body(reply: &Reply) -> Value {
    match reply {
        Reply::Message { control, state } => json!({ "control": control, "state": state }),
        Reply::Handover {
            outcome,
            state,
            handover_id,
            dialog,
            next_opening,
            reason,
        } => {
            let mut v = json!({ "outcome": outcome, "state": state, "dialog": dialog });
            if let Some(id) = handover_id {
                v["handoverId"] = json!(id);
            }
            if let Some(at) = next_opening {
                v["nextOpening"] = json!(at);
            }
            if let Some(r) = reason {
                v["reason"] = json!(r);
            }
            v
        }
        Reply::Cancelled {
            state,
            handover_id,
            reason,
        } => {
            json!({ "state": state, "handoverId": handover_id, "reason": reason })
        }
        Reply::Accepted { .. } => json!({ "status": "ok" }),
    }
}

/// The session as `GET /v1/bots/{botId}/sessions/{sessionId}` shows it.
pub fn session_body(session: &Session) -> Value {
    let mut v = json!({
        "botId": session.bot_id,
        "sessionId": session.session_id,
        "state": session.state,
        "control": session.state.control(),
        "messages": session.seq,
        "updatedAt": session.updated_at,
    });
    if let Some(h) = &session.handover {
        v["handover"] = json!(h);
    }
    if let Some(h) = &session.last_handover {
        v["lastHandover"] = json!(h);
        if let Some(r) = h.end_reason {
            v["endReason"] = json!(r);
        }
    }
    v
}

/// Sends outbound events to the bot's `outboundUrl`, signed like inbound requests.
pub struct NativePlatform {
    pub outbound_url: String,
    pub signing_secret: Vec<u8>,
    pub http: reqwest::Client,
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

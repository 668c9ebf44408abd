//! #Interact's wire formats under the ASSUMED contract (no public API documentation exists;
//! see the module header and `docs/providers/interact.md`). What we send is our proposal,
//! shaped like the generic webhook's envelopes (`id`, `type`, `conversationId`, `timestamp`);
//! change it here, and only here, once Proximus has confirmed its format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::{Actor, UserInfo};

/// The start request: the handover's context and the bot's transcript as plain text. `id` is
/// the delivery id, the same on every retry, for #Interact to deduplicate on.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartBody<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) conversation_id: &'a str,
    pub(super) handover_id: &'a str,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) bot_id: &'a str,
    pub(super) session_id: &'a str,
    pub(super) queue: &'a str,
    pub(super) language: &'a str,
    pub(super) trigger: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user: Option<&'a UserInfo>,
    pub(super) variables: &'a BTreeMap<String, Value>,
    pub(super) tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) summary: Option<&'a str>,
    pub(super) transcript_text: String,
}

/// A user or bot turn, as text (`type` is `user.message` or `bot.message`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageBody<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) conversation_id: &'a str,
    pub(super) handover_id: &'a str,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) actor: Actor,
    pub(super) text: String,
}

/// The close request when the handover ends on our side.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EndBody<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) conversation_id: &'a str,
    pub(super) handover_id: &'a str,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) reason: &'static str,
}

/// ASSUMPTION: a start answer may carry #Interact's own id for the conversation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StartAnswer {
    #[serde(default)]
    pub(super) conversation_id: Option<Id>,
}

/// Ids come as a string or a number.
pub(super) use crate::providers::kit::wire::Scalar as Id;

// ASSUMED CALLBACK CONTRACT (the documented default; confirm with Proximus):
//
//   {"type": "agent.joined" | "agent.message" | "conversation.closed",
//    "id": "<unique event or message id>", "conversationId": "<ours or #Interact's>",
//    "agent": {"id": "…", "name": "…"},            (optional)
//    "message": {"text": "…"}}                      (agent.message only)
//
// Ids may be strings or numbers. Other `type`s are acknowledged and ignored.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CallbackBody {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) id: Option<Id>,
    #[serde(default)]
    pub(super) conversation_id: Option<Id>,
    #[serde(default)]
    pub(super) agent: Option<CallbackAgent>,
    #[serde(default)]
    pub(super) message: Option<CallbackMessage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackAgent {
    #[serde(default)]
    pub(super) id: Option<Id>,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CallbackMessage {
    #[serde(default)]
    pub(super) text: Option<String>,
}

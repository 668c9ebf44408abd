//! The Virtual Agent API's wire formats, typed: the webhook events we read (leniently: only
//! what we use, every field optional so that a missing one is reported by name), the
//! `ConversationManipulation` we send, and Hootsuite Inbox's list of online agents.

use serde::{Deserialize, Serialize};

use crate::providers::AgentAvailability;

/// The fields of a webhook event this adapter reads (`version` is 1 for every event so far;
/// `data` differs per type, and only its `conversationId` matters here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) idempotency_key: Option<String>,
    #[serde(default)]
    pub(super) data: Option<EventData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EventData {
    #[serde(default)]
    pub(super) conversation_id: Option<String>,
}

/// When the event was sent: the replay check reads this before the event is parsed.
#[derive(Debug, Deserialize)]
pub(super) struct Stamp {
    #[serde(default)]
    pub(super) timestamp: Option<String>,
}

/// `ConversationManipulation`: what the virtual agent does to the conversation in one call.
/// Applied in the order the fields are written here, `complete` last.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConversationManipulation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) send_message: Option<Text>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) apply_conversation_notes: Vec<Text>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) apply_topics: Vec<String>,
    pub(super) complete: &'static str,
}

/// A message or a note: text only.
#[derive(Debug, Serialize)]
pub(super) struct Text {
    pub(super) text: String,
}

/// `GET /inbox/v1/user-presence/online-agents`.
#[derive(Debug, Deserialize)]
pub(super) struct OnlineAgents {
    #[serde(default)]
    agents: Option<Vec<OnlineAgent>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnlineAgent {
    /// `AVAILABLE` or `AWAY`.
    #[serde(default)]
    user_presence: Option<String>,
}

impl OnlineAgents {
    /// `Online` when at least one agent is `AVAILABLE`, `NoneOnline` when every online agent is
    /// away or nobody is online; `Unknown` when the answer carries no list.
    pub(super) fn availability(&self) -> AgentAvailability {
        match &self.agents {
            None => AgentAvailability::Unknown,
            Some(agents) if agents.iter().any(|a| a.user_presence.as_deref() == Some("AVAILABLE")) => {
                AgentAvailability::Online
            }
            Some(_) => AgentAvailability::NoneOnline,
        }
    }
}

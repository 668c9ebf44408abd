//! One attempt to put a human agent in the conversation, from request to end.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::message::Agent;

/// Why the conversation is being handed over. Recorded on every handover for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An intent such as "I want to speak to a real agent".
    ExplicitRequest,
    /// The not-understood dialog offered a human and the user accepted.
    NotUnderstood,
    /// A flow that needs manual work in a back office reached its end.
    UnsupportedFlow,
    /// The "Request live agent" item of the widget's or Messenger's menu.
    MenuRequest,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::ExplicitRequest => "explicit_request",
            Trigger::NotUnderstood => "not_understood",
            Trigger::UnsupportedFlow => "unsupported_flow",
            Trigger::MenuRequest => "menu_request",
        }
    }
}

/// Why control went back to the bot. Every handover that started ends with exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    AgentClosed,
    UserCancelled,
    NoAgentTimeout,
    AgentIdleTimeout,
    ProviderError,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::AgentClosed => "agent_closed",
            EndReason::UserCancelled => "user_cancelled",
            EndReason::NoAgentTimeout => "no_agent_timeout",
            EndReason::AgentIdleTimeout => "agent_idle_timeout",
            EndReason::ProviderError => "provider_error",
        }
    }
}

/// A handover, current or finished. Its `id` doubles as the generic webhook provider's
/// `conversationId`, so callbacks can always be traced back to exactly one handover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    pub id: String,
    pub trigger: Trigger,
    pub provider: String,
    pub queue: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The provider's own id for the conversation, when it differs from ours (embedded providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_conversation_id: Option<String>,
    pub requested_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// Queue position reported by the provider, when it tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Estimated wait in seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_seconds: Option<u64>,
}

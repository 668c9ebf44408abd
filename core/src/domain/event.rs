//! Everything that can happen to a session, from any side, as plain data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::handover::Trigger;
use super::message::{Agent, Message};
use super::session::{TimerKind, UserInfo};

/// A handover request from the bot platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverRequest {
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_conversation_id: Option<String>,
}

/// Who wrote a message that arrived through the bot platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    User,
    Bot,
}

/// One turn of a batch (bot platforms such as Chatlayer report several at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub speaker: Speaker,
    pub message: Message,
    /// The sender's id or fingerprint of the turn, kept on the transcript entry so a later
    /// import of the same conversation can skip it.
    pub event_id: Option<String>,
    /// When it was said, if the platform tells.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An inbound event. Provider events name the handover they belong to, so a late callback for
/// a finished handover can never touch the next one.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message {
        speaker: Speaker,
        message: Message,
    },
    /// Several turns at once, in order (bot platforms such as Chatlayer report batches).
    Messages(Vec<Turn>),
    /// Show the user a dialog through the bot platform (platforms that cannot take it in the
    /// answer, such as Chatlayer after a refused offload).
    ShowDialog(super::dialog::Dialog),
    HandoverRequested(HandoverRequest),
    UserCancelled,
    AgentJoined {
        handover_id: String,
        agent: Agent,
    },
    AgentMessage {
        handover_id: String,
        agent: Option<Agent>,
        message: Message,
    },
    /// A message from the provider's own automation (a bot flow inside the contact center, such
    /// as a Genesys in-queue flow), not from an agent: shown to the user like an agent message,
    /// but never counted as the join and never restarting the agent-idle timer.
    AutomatedMessage {
        handover_id: String,
        agent: Option<Agent>,
        message: Message,
    },
    AgentTyping {
        handover_id: String,
        agent: Option<Agent>,
    },
    ConversationClosed {
        handover_id: String,
    },
    TimerFired {
        handover_id: String,
        timer: TimerKind,
    },
    /// Delivery to the provider failed for good: the handover cannot continue.
    ProviderFailed {
        handover_id: String,
    },
}

/// An event with what came along with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub event: Event,
    /// The sender's event id, recorded on transcript entries.
    pub event_id: Option<String>,
    pub user: Option<UserInfo>,
    pub channel: Option<String>,
    /// Platform-specific references to remember on the session (e.g. Chatlayer's bot id).
    pub context: BTreeMap<String, String>,
}

impl Input {
    pub fn new(event: Event) -> Self {
        Input {
            event,
            event_id: None,
            user: None,
            channel: None,
            context: BTreeMap::new(),
        }
    }
}

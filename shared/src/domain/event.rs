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

/// An inbound event. Provider events name the handover they belong to, so a late callback for
/// a finished handover can never touch the next one.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message {
        speaker: Speaker,
        message: Message,
    },
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
    /// The provider assigned its own id to the conversation we started.
    ConversationOpened {
        handover_id: String,
        conversation_id: String,
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
}

impl Input {
    pub fn new(event: Event) -> Self {
        Input {
            event,
            event_id: None,
            user: None,
            channel: None,
        }
    }
}

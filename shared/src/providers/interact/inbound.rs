//! What #Interact sends our callback, under the assumed contract, read into domain events.

use serde_json::Value;

use super::wire::{CallbackAgent, CallbackBody};
use super::{DEFAULT_AGENT_ID, EVENT_AGENT_JOINED, EVENT_AGENT_MESSAGE, EVENT_CONVERSATION_CLOSED};
use crate::domain::{Agent, Message};
use crate::providers::{Callback, CallbackError, ProviderEvent, ProviderEventKind};

/// `agent.joined`, `agent.message` and `conversation.closed` become events; any other type is
/// acknowledged and ignored (forward compatible).
pub(super) fn parse(body: &[u8], agent_name: Option<&str>) -> Result<Callback, CallbackError> {
    // Only an object is an event (serde would also read a struct from an array).
    let value: Value = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(CallbackError::Malformed("the body must be a JSON object".into()));
    }
    let body: CallbackBody = serde_json::from_value(value).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    let kind = body
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| CallbackError::Malformed("missing field `type`".into()))?;
    if ![EVENT_AGENT_JOINED, EVENT_AGENT_MESSAGE, EVENT_CONVERSATION_CLOSED].contains(&kind) {
        return Ok(Callback::Events(Vec::new()));
    }
    let event_id = body
        .id
        .as_ref()
        .and_then(|id| id.text())
        .ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
    let conversation_id = body
        .conversation_id
        .as_ref()
        .and_then(|id| id.text())
        .ok_or_else(|| CallbackError::Malformed("missing field `conversationId`".into()))?;
    let event_kind = if kind == EVENT_AGENT_JOINED {
        ProviderEventKind::AgentJoined {
            agent: agent(body.agent.as_ref(), agent_name),
        }
    } else if kind == EVENT_AGENT_MESSAGE {
        let text = body
            .message
            .and_then(|m| m.text)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing or empty field `message.text`".into()))?;
        ProviderEventKind::AgentMessage {
            agent: Some(agent(body.agent.as_ref(), agent_name)),
            message: Message::text(text),
        }
    } else {
        ProviderEventKind::ConversationClosed
    };
    Ok(Callback::Events(vec![ProviderEvent {
        event_id,
        conversation_id,
        kind: event_kind,
    }]))
}

/// The agent a callback names; the configured name wins over the one #Interact sends.
fn agent(given: Option<&CallbackAgent>, agent_name: Option<&str>) -> Agent {
    let id = given
        .and_then(|a| a.id.as_ref())
        .and_then(|id| id.text())
        .unwrap_or_else(|| DEFAULT_AGENT_ID.to_owned());
    let name = agent_name.map(str::to_owned).or_else(|| {
        given
            .and_then(|a| a.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    });
    Agent { id, name }
}

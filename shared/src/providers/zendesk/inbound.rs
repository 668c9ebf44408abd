//! SunCo webhook events read into domain events: agents' messages and typing, and control
//! leaving the Agent Workspace as the close.

use serde::Deserialize;
use serde_json::Value;

use super::content::to_message;
use super::wire::{Author, Event, EventType, Source, SwitchboardIntegration};
use super::{META_END_REASON, META_HANDOVER_ID, ZendeskProvider};
use crate::domain::Agent;
use crate::providers::kit::settings::non_empty;
use crate::providers::{CallbackError, ProviderEvent, ProviderEventKind};

/// The event types that can matter to a handover; any other (reads, postbacks, deliveries,
/// offers, user and client events…) is acknowledged and ignored.
const READ_TYPES: &[&str] = &[
    "conversation:message",
    "conversation:typing",
    "switchboard:passControl",
    "switchboard:releaseControl",
    "switchboard:passControl:failure",
];

/// An event's type as it may be logged (one of the types we read, else "other"): never the
/// event's content.
pub(super) fn kind_of(raw: &Value) -> String {
    let kind = EventType::deserialize(raw)
        .ok()
        .and_then(|t| t.kind)
        .unwrap_or_default();
    if READ_TYPES.contains(&kind.as_str()) {
        kind
    } else {
        "other".to_owned()
    }
}

impl ZendeskProvider {
    /// Whether the switchboard integration in a webhook is the Agent Workspace we pass control
    /// to: the configured value may be its id, name, integration id or integration type.
    fn is_agent_workspace(&self, si: &SwitchboardIntegration) -> bool {
        [&si.id, &si.name, &si.integration_id, &si.integration_type]
            .into_iter()
            .flatten()
            .any(|v| *v == self.agent_workspace)
    }

    /// THE assumption of this adapter: which business-authored message is a human agent's.
    ///
    /// Documented: `author.type` is `business` for everything not written by the end user, and
    /// the author `subtypes` value `agent` marks human agents (the spec says "available in
    /// responses only", so it may be missing from webhooks). Not documented: a webhook example
    /// of an agent's message. Public integrations recognise Agent Workspace replies by
    /// `message.source.type == "zd:agentWorkspace"`, which is the default of the
    /// `agentSourceTypes` setting. Bot replies (`api:conversations` and the like), AI-agent and
    /// system activity messages are never taken for an agent's, so a bot that keeps talking
    /// while the user waits does not count as the agent joining.
    fn agent_of(&self, author: &Author, source: Option<&Source>) -> Option<Agent> {
        if author.kind != "business" {
            return None;
        }
        if author
            .subtypes
            .iter()
            .any(|s| matches!(s.as_str(), "AI" | "bot" | "activity"))
        {
            return None;
        }
        let by_subtype = author.subtypes.iter().any(|s| s == "agent");
        let by_source = source
            .and_then(|s| s.kind.as_deref())
            .is_some_and(|t| self.agent_source_types.iter().any(|a| a == t));
        if !(by_subtype || by_source) {
            return None;
        }
        let name = non_empty(author.display_name.clone());
        Some(Agent {
            // SunCo does not identify the agent in webhooks; the display name is what we have.
            id: name.clone().unwrap_or_else(|| "zendesk-agent".to_owned()),
            name,
        })
    }

    /// One webhook event, normalized; `None` when it means nothing for a handover.
    pub(super) fn normalize(&self, raw: &Value) -> Result<Option<ProviderEvent>, CallbackError> {
        let kind = EventType::deserialize(raw)
            .ok()
            .and_then(|t| t.kind)
            .unwrap_or_default();
        if !READ_TYPES.contains(&kind.as_str()) {
            return Ok(None);
        }
        let event = Event::deserialize(raw).map_err(|e| CallbackError::Malformed(format!("{kind} event: {e}")))?;
        let conversation = event
            .payload
            .conversation
            .ok_or_else(|| CallbackError::Malformed(format!("{kind} event without payload.conversation")))?;
        let meta = event.payload.metadata.unwrap_or_default();
        let ours = meta.contains_key(META_HANDOVER_ID);
        let ours_at_end = ours && meta.contains_key(META_END_REASON);
        let event_kind = match kind.as_str() {
            "conversation:message" => {
                let Some(msg) = event.payload.message else {
                    return Ok(None);
                };
                if msg.deleted == Some(true) || msg.activity.is_some() {
                    return Ok(None);
                }
                let Some(agent) = self.agent_of(&msg.author, msg.source.as_ref()) else {
                    return Ok(None);
                };
                let message = msg.content.as_ref().map(to_message).unwrap_or_default();
                if message.is_empty() {
                    return Ok(None);
                }
                ProviderEventKind::AgentMessage {
                    agent: Some(agent),
                    message,
                }
            }
            "conversation:typing" => {
                let Some(activity) = event.payload.activity else {
                    return Ok(None);
                };
                let agent = activity
                    .author
                    .as_ref()
                    .and_then(|a| self.agent_of(a, activity.source.as_ref()));
                match (activity.kind.as_deref(), agent) {
                    (Some("typing:start"), Some(agent)) => ProviderEventKind::AgentTyping { agent: Some(agent) },
                    _ => return Ok(None),
                }
            }
            "switchboard:passControl" => {
                let to_agents = conversation
                    .active_switchboard_integration
                    .as_ref()
                    .is_some_and(|si| self.is_agent_workspace(si));
                // Our own hand-over (echoed with our metadata) or any other pass to the Agent
                // Workspace is not an end; a pass anywhere else takes the agent away (Zendesk
                // passes control on when the ticket is closed, `reason: ticketClosed`).
                if to_agents || (ours && !ours_at_end) {
                    return Ok(None);
                }
                ProviderEventKind::ConversationClosed
            }
            // Nobody is in control any more: the agent side is over.
            "switchboard:releaseControl" => ProviderEventKind::ConversationClosed,
            // Our pass to the Agent Workspace failed after being accepted: nobody will join, so
            // control goes back to the bot rather than leaving the user waiting.
            "switchboard:passControl:failure" if ours && !ours_at_end => ProviderEventKind::ConversationClosed,
            _ => return Ok(None),
        };
        let event_id =
            non_empty(event.id).ok_or_else(|| CallbackError::Malformed(format!("{kind} event without id")))?;
        Ok(Some(ProviderEvent {
            event_id,
            conversation_id: conversation.id,
            kind: event_kind,
        }))
    }
}

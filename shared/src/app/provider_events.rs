//! Provider events as the engine applies them: the one conversion from what an adapter read
//! into a core event, the idempotency scope of a provider's events, and the events held for a
//! start still in flight. Used by the callback entry point, the evaluator's polls and the
//! engine, so none of them imports another.

use chrono::{DateTime, Utc};

use super::command::{FollowUp, Idempotency};
use crate::domain::{Event, Input};
use crate::providers::{ProviderEvent, ProviderEventKind};
use crate::store::{EarlyEvent, EarlyKind, SessionKey};

/// The core event for a provider's event about `handover_id`.
pub fn to_event(e: ProviderEvent, handover_id: String) -> Event {
    match e.kind {
        ProviderEventKind::AgentJoined { agent } => Event::AgentJoined { handover_id, agent },
        ProviderEventKind::AgentMessage { agent, message } => Event::AgentMessage {
            handover_id,
            agent,
            // Cut to the limits every caller's message keeps (domain::limits).
            message: crate::domain::limits::clipped(message),
        },
        ProviderEventKind::AutomatedMessage { agent, message } => Event::AutomatedMessage {
            handover_id,
            agent,
            message: crate::domain::limits::clipped(message),
        },
        ProviderEventKind::AgentTyping { agent } => Event::AgentTyping { handover_id, agent },
        ProviderEventKind::ConversationClosed => Event::ConversationClosed { handover_id },
    }
}

/// A provider's events are recorded under its own ids, per bot and provider.
pub fn idempotency(bot_id: &str, provider_id: &str, event_id: &str) -> Idempotency {
    Idempotency {
        scope: format!("provider:{bot_id}:{provider_id}"),
        event_id: event_id.to_owned(),
    }
}

/// A provider event applied after the commit that made its conversation known, under the
/// provider's own event id (like the callback that would have carried it).
pub fn follow_up(key: &SessionKey, provider_id: &str, handover_id: &str, e: ProviderEvent) -> FollowUp {
    let idempotency = idempotency(&key.bot_id, provider_id, &e.event_id);
    let event_id = e.event_id.clone();
    FollowUp {
        key: key.clone(),
        input: Input {
            event_id: Some(event_id),
            ..Input::new(to_event(e, handover_id.to_owned()))
        },
        idempotency: Some(idempotency),
    }
}

/// A provider event for a start in flight, as it is held until the commit (or, failing that,
/// until the evaluator takes it up at `due_at`).
pub fn early(e: &ProviderEvent, provider_id: &str, handover_id: &str, due_at: DateTime<Utc>) -> EarlyEvent {
    let (kind, agent, message) = match &e.kind {
        ProviderEventKind::AgentJoined { agent } => (EarlyKind::Joined, Some(agent.clone()), None),
        ProviderEventKind::AgentMessage { agent, message } => {
            (EarlyKind::Message, agent.clone(), Some(message.clone()))
        }
        ProviderEventKind::AutomatedMessage { agent, message } => (
            EarlyKind::Automated,
            agent.clone(),
            Some(crate::domain::limits::clipped(message.clone())),
        ),
        ProviderEventKind::AgentTyping { agent } => (EarlyKind::Typing, agent.clone(), None),
        ProviderEventKind::ConversationClosed => (EarlyKind::Closed, None, None),
    };
    EarlyEvent {
        provider: provider_id.to_owned(),
        event_id: e.event_id.clone(),
        handover_id: handover_id.to_owned(),
        kind,
        agent,
        message,
        due_at,
    }
}

/// A held event, applied after its start committed, once (under the provider's event id).
pub fn early_follow_up(key: &SessionKey, e: EarlyEvent) -> FollowUp {
    let handover_id = e.handover_id.clone();
    let event = match e.kind {
        EarlyKind::Joined => Event::AgentJoined {
            handover_id,
            agent: e.agent.unwrap_or_else(|| crate::domain::Agent {
                id: "agent".into(),
                name: None,
            }),
        },
        EarlyKind::Message => Event::AgentMessage {
            handover_id,
            agent: e.agent,
            message: e.message.unwrap_or_default(),
        },
        EarlyKind::Automated => Event::AutomatedMessage {
            handover_id,
            agent: e.agent,
            message: e.message.unwrap_or_default(),
        },
        EarlyKind::Typing => Event::AgentTyping {
            handover_id,
            agent: e.agent,
        },
        EarlyKind::Closed => Event::ConversationClosed { handover_id },
    };
    FollowUp {
        key: key.clone(),
        input: Input {
            event_id: Some(e.event_id.clone()),
            ..Input::new(event)
        },
        idempotency: Some(idempotency(&key.bot_id, &e.provider, &e.event_id)),
    }
}

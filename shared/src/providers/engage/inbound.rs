//! What Engage's webhook sends: the validation handshake and notifications, each event read
//! into a domain event or dropped.

use super::EngageProvider;
use super::assumed;
use super::wire::{Metadata, Scalar, WebhookEvent, read, text};
use crate::providers::{Callback, CallbackError, ProviderEvent, ProviderEventKind};

/// The longest `hub.challenge` echoed back (Engage sends a short random string).
const MAX_CHALLENGE_LEN: usize = 1024;

pub(super) fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The validation request: `hub.mode=subscribe` and a challenge, echoed as the whole body
/// (the verify token was checked in `verify_callback`).
pub(super) fn handshake(query: &[(String, String)]) -> Result<Callback, CallbackError> {
    if query_value(query, "hub.mode") != Some("subscribe") {
        return Err(CallbackError::Malformed(
            "hub.mode must be \"subscribe\" on a validation request".into(),
        ));
    }
    let challenge = query_value(query, "hub.challenge")
        .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN)
        .ok_or_else(|| CallbackError::Malformed("missing or oversized hub.challenge".into()))?;
    Ok(Callback::Challenge {
        status: 200,
        content_type: "text/plain",
        body: challenge.to_owned(),
    })
}

impl EngageProvider {
    /// One webhook event, normalized; `None` for what does not concern a handover.
    pub(super) fn event(&self, e: &WebhookEvent) -> Option<ProviderEvent> {
        let resource = e.resource.as_ref()?;
        let no_metadata = Metadata::default();
        let meta = resource.metadata.as_ref().unwrap_or(&no_metadata);
        if let Some(expected) = &self.source_id
            && let Some(actual) = text(&meta.source_id)
            && actual != *expected
        {
            return None;
        }
        let kind = self.kind_of(read(&e.kind).map_or("", String::as_str), &e.user_id, meta)?;
        Some(ProviderEvent {
            event_id: text(&e.id)?,
            conversation_id: assumed::thread_of(resource)?,
            kind,
        })
    }

    fn kind_of(&self, event_type: &str, event_user: &Option<Scalar>, meta: &Metadata) -> Option<ProviderEventKind> {
        match event_type {
            // Fired for every reply written in Engage, the bot's included; a reply that needs
            // approval is relayed when approved, not when written.
            "content.replied" | "content.approved" => {
                let approved = event_type == "content.approved";
                if !approved && assumed::awaits_approval(meta) {
                    return None;
                }
                let author = if approved {
                    assumed::approved_author(event_user, meta)?
                } else {
                    assumed::reply_author(event_user, meta)?
                };
                if self.is_bot_user(&author) {
                    return None;
                }
                let message = assumed::reply_message(meta)?;
                Some(ProviderEventKind::AgentMessage {
                    agent: Some(self.agent(author)),
                    message,
                })
            }
            // The intervention's `user_id` is its agent (documented metadata); the bot's own
            // interventions (opened for statistics) are not a join.
            "intervention.opened" | "intervention.assigned" | "intervention.user_updated" => {
                let agent = text(&meta.user_id).or_else(|| text(event_user))?;
                if self.is_bot_user(&agent) {
                    return None;
                }
                Some(ProviderEventKind::AgentJoined {
                    agent: self.agent(agent),
                })
            }
            // Closed, or canceled ("an agent cancels an intervention": dropped without an
            // answer): the agent side is done with the customer either way. Our own end cancels
            // interventions too; that event arrives for a finished handover and changes nothing.
            "intervention.closed" | "intervention.canceled" => {
                if text(&meta.user_id).is_some_and(|o| self.is_bot_user(&o)) {
                    return None;
                }
                Some(ProviderEventKind::ConversationClosed)
            }
            // Deferred: the agent put the conversation aside, to be reactivated later; it is
            // still theirs (Engage's own advice is to defer mid-conversation and close when
            // done), so the handover goes on and the agent-idle timeout bounds the wait.
            "intervention.deferred" => None,
            t if assumed::THREAD_LOCK_EVENTS.contains(&t) => Some(ProviderEventKind::ConversationClosed),
            _ => None,
        }
    }
}

//! What the virtual agent's webhook sends, forwarded by the bot platform: authenticated, dated
//! and read into domain events.

use chrono::{DateTime, Duration, Utc};

use super::wire::{Envelope, Stamp};
use super::{
    CALLBACK_AUTH, EVENT_CONVERSATION_DELEGATED, EVENT_CONVERSATION_STARTED, HOOTSUITE_SIGNATURE_HEADER,
    SPARKCENTRAL_SIGNATURE_HEADER,
};
use crate::providers::kit::settings::non_empty;
use crate::providers::{Callback, CallbackError, CallbackRequest, ProviderEvent, ProviderEventKind};

/// The signature in either header (Sparkcentral's or Hootsuite Inbox's) must match the body.
pub(super) fn verify(shared_secret: &[u8], r: &CallbackRequest<'_>) -> Result<(), CallbackError> {
    let given: Vec<&str> = [HOOTSUITE_SIGNATURE_HEADER, SPARKCENTRAL_SIGNATURE_HEADER]
        .into_iter()
        .filter_map(|name| r.header(name))
        .collect();
    if given.is_empty() {
        return Err(CallbackError::Unauthenticated(
            "missing X-Sparkcentral-Signature or X-Hootsuite-Signature header".into(),
        ));
    }
    if given.iter().any(|g| CALLBACK_AUTH.matches(shared_secret, g, r.body)) {
        Ok(())
    } else {
        Err(CallbackError::Unauthenticated(
            "the signature does not match the body".into(),
        ))
    }
}

/// Replay protection, as Sparkcentral recommends: the signed body's `timestamp` (when the
/// event was sent) must be recent, and not ahead of our clock by more than the same window.
pub(super) fn check_fresh(body: &[u8], now: DateTime<Utc>, max_age: Duration) -> Result<(), CallbackError> {
    let stamp: Stamp = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    let text = stamp.timestamp.ok_or_else(|| {
        CallbackError::Unauthenticated("the event has no `timestamp`: a replay cannot be ruled out".into())
    })?;
    let sent = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| CallbackError::Unauthenticated(format!("`timestamp` {text:?} is not an RFC 3339 time")))?
        .to_utc();
    if now - sent > max_age {
        return Err(CallbackError::Unauthenticated(format!(
            "the event was sent at {text}, more than {} s ago (replay window)",
            max_age.num_seconds()
        )));
    }
    if sent - now > max_age {
        return Err(CallbackError::Unauthenticated(format!(
            "the event's timestamp {text} is more than {} s ahead of our clock",
            max_age.num_seconds()
        )));
    }
    Ok(())
}

/// `CONVERSATION_STARTED` and `CONVERSATION_DELEGATED` for a handed-over conversation mean it
/// is the virtual agent's again: the agents are done with it.
pub(super) fn parse(body: &[u8]) -> Result<Callback, CallbackError> {
    let e: Envelope = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    let kind = e
        .kind
        .ok_or_else(|| CallbackError::Malformed("missing field `type`".into()))?;
    if kind != EVENT_CONVERSATION_STARTED && kind != EVENT_CONVERSATION_DELEGATED {
        // `INBOUND_MESSAGE_RECEIVED`: the contact talking to the virtual agent, which is the
        // bot's business (and may race with our own handover). Types Sparkcentral adds later
        // are ignored, as it asks.
        return Ok(Callback::Events(Vec::new()));
    }
    let event_id = non_empty(e.idempotency_key)
        .ok_or_else(|| CallbackError::Malformed("missing field `idempotencyKey`".into()))?;
    let conversation_id = non_empty(e.data.and_then(|d| d.conversation_id))
        .ok_or_else(|| CallbackError::Malformed("missing field `data.conversationId`".into()))?;
    Ok(Callback::Events(vec![ProviderEvent {
        event_id,
        conversation_id,
        kind: ProviderEventKind::ConversationClosed,
    }]))
}

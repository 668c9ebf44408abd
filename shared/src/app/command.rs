//! What commands and their follow-ups carry, below the engine and the outbox so that neither
//! imports the other for it.

use crate::domain::Input;
use crate::store::SessionKey;

/// Idempotency: the scope and id an event is recorded under.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub scope: String,
    pub event_id: String,
}

/// An input that a delivery outcome or a committed start calls for (a provider give-up ends
/// its handover; an event held for a start is applied), for the engine's driver to apply.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub key: SessionKey,
    pub input: Input,
    /// Recorded like the provider's own event when the follow-up is one (an event held for a
    /// start in flight), so it is applied once whoever applies it.
    pub idempotency: Option<Idempotency>,
}

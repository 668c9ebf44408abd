//! The provider port: every live-chat provider implements [`Provider`]; the rest of the
//! service only ever sees normalized [`ProviderEvent`]s.

pub mod engage;
pub mod genesys;
pub mod helpscout;
pub mod interact;
pub mod intercom;
#[cfg(test)]
pub mod testing;

/// The adapter kit (`crate::kit`), under the path the adapters use (`providers::kit::…`), with
/// the provider test helpers (`kit::testing`) that need the provider port.
pub mod kit {
    #[cfg(test)]
    pub use super::testing;
    pub use crate::kit::*;
}
pub use crate::kit::callback_auth::{CallbackError, CallbackRequest};
pub use crate::kit::settings::ProviderSetupError;
pub use crate::kit::{memo, oauth};
pub mod sparkcentral;
pub mod webhook;
pub mod zendesk;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bot::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::DeliveryError;
use crate::domain::{Agent, EndReason, Handover, Message, TranscriptEntry, UserInfo};
use crate::secrets::Secret;

/// What a provider's desk can show and tell; drives text degradation and the docs' table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Buttons, quick replies and carousels of the bot and the user are shown natively to the
    /// agent.
    pub rich_content: bool,
    /// Buttons, quick replies and cards the provider sends (an agent, or the provider's own bot
    /// flows) reach the user structured, not as text.
    pub rich_content_to_user: bool,
    pub attachments: bool,
    /// Agent typing indicators are reported.
    pub typing: bool,
    /// The bot's history is visible to the agent when the conversation opens.
    pub bot_history_visible: bool,
    /// The agent conversation is written back to the bot's history: every agent turn the
    /// provider reports is recorded in the session transcript (false where the provider reports
    /// none, as Sparkcentral's virtual-agent API).
    pub history_written_back: bool,
    /// Agent presence can be queried before offering a handover.
    pub agent_availability: bool,
    /// The provider publishes its own estimate of a waiting conversation's wait
    /// ([`Provider::wait_estimate`]); elsewhere the estimate is our time-to-join statistics.
    pub provider_wait_estimate: bool,
}

/// Agents online for a queue, when the provider tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAvailability {
    Online,
    NoneOnline,
    Unknown,
}

/// What a provider tells about a waiting conversation's place in its queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitEstimate {
    /// Place in the queue (1 = next), when the provider tells.
    pub position: Option<u32>,
    /// Seconds until an agent is expected, when the provider tells.
    pub seconds: Option<u64>,
}

/// The provider's side of one handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConversation {
    pub handover_id: String,
    pub conversation_id: String,
}

/// Everything needed to open a conversation at the provider.
#[derive(Debug, Clone)]
pub struct StartRequest<'a> {
    /// Unique per delivery attempt group; receivers deduplicate on it.
    pub delivery_id: &'a str,
    pub bot_id: &'a str,
    pub session_id: &'a str,
    pub handover: &'a Handover,
    pub user: Option<&'a UserInfo>,
    pub channel: Option<&'a str>,
    pub transcript: &'a [TranscriptEntry],
}

/// A provider event, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The provider's event or message id: callbacks are idempotent on it.
    pub event_id: String,
    pub conversation_id: String,
    pub kind: ProviderEventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEventKind {
    AgentJoined {
        agent: Agent,
    },
    AgentMessage {
        agent: Option<Agent>,
        message: Message,
    },
    /// A message from the provider's own automation (a bot flow inside the contact center), not
    /// from an agent: relayed to the user, never counted as the join.
    AutomatedMessage {
        agent: Option<Agent>,
        message: Message,
    },
    AgentTyping {
        agent: Option<Agent>,
    },
    ConversationClosed,
}

/// What a parsed callback asks of us.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// Events to apply (possibly none: unknown types are acknowledged and ignored).
    Events(Vec<ProviderEvent>),
    /// A delivery of several events of which some could not be read: the readable ones are
    /// applied and the answer is a success (providers such as SunCo do not resend a delivery
    /// answered 4xx, so refusing the whole delivery would lose its good events); the unreadable
    /// ones are counted and logged by kind, never by content.
    Partial {
        events: Vec<ProviderEvent>,
        /// What each unreadable event was (its type), for the log.
        unreadable: Vec<String>,
    },
    /// Something happened in this conversation but the callback does not say what (a Help
    /// Scout webhook without its threads): the events are read from the provider with
    /// [`Provider::fetch_events`], for a conversation of ours only.
    Fetch { conversation_id: String },
    /// A URL-verification handshake answered directly.
    Challenge {
        status: u16,
        content_type: &'static str,
        body: String,
    },
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// What this adapter can do: its kind's declared row, unless a setting changes it.
    fn capabilities(&self) -> Capabilities {
        declared(self.kind())
    }
    /// Whether agents are there for `queue`. `Unknown` unless the provider has a presence API
    /// the adapter asks; the core then offers the handover and the provider's routing decides.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        Ok(AgentAvailability::Unknown)
    }
    /// The provider's own estimate of how long this waiting conversation still waits (and its
    /// place in the queue), asked before each "still waiting" nudge. Empty unless the provider
    /// publishes one; the core then falls back on our own time-to-join statistics.
    async fn wait_estimate(&self, _conversation: &ProviderConversation) -> Result<WaitEstimate, DeliveryError> {
        Ok(WaitEstimate::default())
    }
    async fn start(&self, request: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError>;
    /// The id under which [`Provider::end`] reaches a conversation that a start of `handover`
    /// may have opened when the provider did not answer (a timeout, a lost connection): known
    /// before the call for an embedded conversation (the request's `providerConversationId`,
    /// the default) and for providers that file the conversation under our handover id or
    /// find it by it. `None` when only the provider's answer names it (a conversation the
    /// provider creates): such a start is never tried twice (a second try could only open a
    /// second conversation) and is counted, never ended under a guessed id, since a 404 to a
    /// wrong id would pass for a successful end.
    fn uncertain_start_id(&self, handover: &Handover) -> Option<String> {
        kit::settings::non_empty(handover.provider_conversation_id.clone())
    }
    /// Adds a user or bot turn to the agent's conversation.
    async fn send_message(
        &self,
        delivery_id: &str,
        conversation: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError>;
    async fn end(
        &self,
        delivery_id: &str,
        conversation: &ProviderConversation,
        reason: EndReason,
    ) -> Result<(), DeliveryError>;
    /// Leaves the conversation open at the provider as a ticket an agent answers later (the
    /// no-agent fallback `ticket`). By default nothing is sent: the conversation simply stays
    /// where it is in the provider's queue; adapters that can mark it say so.
    async fn keep_as_ticket(
        &self,
        _delivery_id: &str,
        _conversation: &ProviderConversation,
        _reason: EndReason,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }
    /// Asks the provider what happened to a conversation (an agent joined, it was closed). The
    /// events are applied like callbacks, idempotent on their ids.
    async fn poll(&self, _conversation: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        Ok(Vec::new())
    }
    /// The events of a conversation read from the provider's API, when a callback only said
    /// that something happened ([`Callback::Fetch`]). Event ids are the provider's own, so
    /// events seen before are applied once.
    async fn fetch_events(&self, _conversation_id: &str) -> Result<Vec<ProviderEvent>, DeliveryError> {
        Ok(Vec::new())
    }
    /// Checks the provider's signature or token on the raw request, before any parsing.
    fn verify_callback(&self, request: &CallbackRequest<'_>, now: DateTime<Utc>) -> Result<(), CallbackError>;
    fn parse_callback(&self, request: &CallbackRequest<'_>) -> Result<Callback, CallbackError>;
}

impl ProviderSetupError {
    pub fn setting(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ProviderSetupError::Setting(kit::settings::SettingError::new(path, message))
    }
}

/// The first wrong provider-specific setting of a `providers[]` entry, without its secret:
/// the adapter is built exactly as at run time, with an empty secret. Every adapter checks its
/// settings before it reads its secret, so a secret error here means the settings are good.
pub fn check_settings(config: &ProviderConfig) -> Result<(), kit::settings::SettingError> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = CLIENT.get_or_init(reqwest::Client::new).clone();
    let no_secret = Secret::from_json("{}").expect("an empty object is a secret");
    match build(config, &no_secret, http) {
        Err(ProviderSetupError::Setting(e)) => Err(e),
        Ok(_) | Err(ProviderSetupError::Config(_)) => Ok(()),
    }
}

/// The one path-segment encoding, shared with the bot platforms (`delivery::path_segment`);
/// adapters keep calling it by this name.
pub use crate::delivery::path_segment;

/// How a provider kind is registered: what the service needs of a kind before, and in order
/// to, build its adapter. Each provider module defines its own (`REGISTRATION`, next to its
/// capabilities and traits), and [`registration`] names it under its kind: the one place a
/// provider is registered.
pub struct Registration {
    /// What the kind can do at best (its row of the capability table in docs/providers.md).
    pub capabilities: Capabilities,
    /// How the kind's model differs from the common one ([`COMMON_TRAITS`] where it does not).
    pub traits: ProviderTraits,
    /// The traits of one entry, where a setting changes the model (Sparkcentral's
    /// `joinFromLock`); `None`: the kind's `traits`.
    pub entry_traits: Option<fn(&ProviderConfig) -> ProviderTraits>,
    /// Builds the adapter for one configured entry; every adapter checks its settings before it
    /// reads its secret ([`check_settings`] relies on it).
    pub build: BuildAdapter,
}

/// How a provider kind's adapter is built from its entry, its secret and the shared client.
pub type BuildAdapter = fn(&ProviderConfig, &Secret, reqwest::Client) -> Result<Arc<dyn Provider>, ProviderSetupError>;

/// The common model: joins and closes are reported by callback, the start is not a join, and a
/// close at the provider ends the handover there (`ProviderTraits::default()`, as a constant).
pub const COMMON_TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: false,
    hands_back_after_agent_close: false,
};

/// The registration of a provider kind. The match is exhaustive, so a new [`ProviderKind`]
/// does not compile until its module is named here.
pub fn registration(kind: ProviderKind) -> &'static Registration {
    match kind {
        ProviderKind::Webhook => &webhook::REGISTRATION,
        ProviderKind::Zendesk => &zendesk::REGISTRATION,
        ProviderKind::Intercom => &intercom::REGISTRATION,
        ProviderKind::Genesys => &genesys::REGISTRATION,
        ProviderKind::Interact => &interact::REGISTRATION,
        ProviderKind::Engage => &engage::REGISTRATION,
        ProviderKind::Helpscout => &helpscout::REGISTRATION,
        ProviderKind::Sparkcentral => &sparkcentral::REGISTRATION,
    }
}

/// What each provider kind can do at best (its row of the capability table in
/// docs/providers.md).
pub fn declared(kind: ProviderKind) -> Capabilities {
    registration(kind).capabilities
}

/// How each provider kind's model differs from the common one (see [`ProviderTraits`]).
pub fn traits(kind: ProviderKind) -> ProviderTraits {
    registration(kind).traits
}

/// The traits of one provider entry: its kind's, unless a setting changes the model
/// (Sparkcentral's `joinFromLock`).
pub fn entry_traits(config: &ProviderConfig) -> ProviderTraits {
    let registration = registration(config.kind);
    registration.entry_traits.map_or(registration.traits, |of| of(config))
}

/// Builds the adapter for one configured provider.
pub fn build(
    config: &ProviderConfig,
    secret: &Secret,
    http: reqwest::Client,
) -> Result<Arc<dyn Provider>, ProviderSetupError> {
    (registration(config.kind).build)(config, secret, http)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn the_common_traits_are_the_default() {
        assert_eq!(COMMON_TRAITS, ProviderTraits::default());
    }
}

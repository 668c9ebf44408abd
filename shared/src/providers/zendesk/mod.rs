//! Zendesk messaging through Sunshine Conversations (SunCo), the **embedded** shape: the
//! user's conversation already lives in SunCo and the bot platform is one switchboard
//! integration of the app, so a handover is a change of who is in control. The start passes
//! switchboard control to the Agent Workspace with the agent's context as metadata; user and
//! bot turns are already SunCo messages (nothing is relayed); the end passes control back to
//! the bot's integration (or releases it). Callbacks are SunCo webhooks authenticated by the
//! webhook's secret in `X-API-Key`; agents' messages are recognised by their source type, an
//! assumption made a setting (`agentSourceTypes`). Sources, what is verified against the
//! published OpenAPI description and what is assumed: `docs/providers/zendesk.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads webhook events, `content` maps message
//! content, `outbound` builds the agent's context, `settings` reads the provider entry.

mod availability;
mod content;
mod inbound;
mod outbound;
mod settings;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Map, Value};

use super::kit::callback_auth::CallbackAuth;
use super::kit::http::{ApiClient, Auth};
use super::kit::settings::{self as kit_settings, non_empty};
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderSetupError, StartRequest, path_segment,
};
use crate::bot::{ProviderConfig, ProviderKind};
use crate::delivery::DeliveryError;
use crate::domain::{EndReason, TranscriptEntry};
use crate::secrets::Secret;
use settings::{DEFAULT_AGENT_SOURCE_TYPES, Settings};
use wire::{Envelope, SwitchboardAction};

/// The header SunCo puts the webhook's shared secret in (OpenAPI spec, tag Webhooks, section
/// "Securing Sunshine Conversations Webhooks"). HTTP header names are case-insensitive.
pub const API_KEY_HEADER: &str = "x-api-key";
/// SunCo sends the webhook's secret verbatim; it covers neither the body nor a timestamp
/// (SunCo offers nothing more), so replays are absorbed by idempotency on event ids.
pub const CALLBACK_AUTH: CallbackAuth = CallbackAuth::token_in(API_KEY_HEADER);

/// The integration type of the Agent Workspace switchboard integration Zendesk creates in every
/// account (Zendesk's own pass-control example targets it; its name is usually
/// `zd-agentWorkspace`). `passControl` accepts an id, a name or an integration type.
pub const DEFAULT_AGENT_WORKSPACE: &str = "zd:agentWorkspace";

/// Our own keys in switchboard metadata. SunCo echoes the metadata in the resulting
/// `switchboard:*` webhooks, which is how we recognise our own actions there.
const META_HANDOVER_ID: &str = "handover_id";
const META_END_REASON: &str = "handover_end_reason";

/// What the Zendesk adapter can do (the `zendesk` row of the capability table).
pub const CAPABILITIES: Capabilities = Capabilities {
    // The bot's rich messages are native SunCo messages in the conversation the agent works in;
    // agents' carousels, buttons and files come back structured.
    rich_content: true,
    attachments: true,
    // SunCo documents `conversation:typing` for users; that agent typing reaches a webhook is
    // not documented. It is passed on when it arrives.
    typing: false,
    // The conversation already holds it (the Agent Workspace shows the last 10 messages, or
    // from `first_message_id`).
    bot_history_visible: true,
    history_written_back: true,
    // Zendesk's Agent Availability API (a Support API): agents online on messaging, asked
    // when the secret has Support API credentials (`availability.rs`).
    agent_availability: true,
    rich_content_to_user: true,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: super::COMMON_TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(ZendeskProvider::new(config, secret, http)?)),
};

/// The SunCo switchboard adapter. Secret: `{"keyId": "…", "keySecret": "…", "webhookSecret": "…"}`
/// — an app-scoped Conversations API key (id and secret, sent as HTTP Basic credentials) and the
/// shared secret of the webhook that calls our callback URL.
pub struct ZendeskProvider {
    api: ApiClient,
    app_id: String,
    webhook_secret: Vec<u8>,
    agent_workspace: String,
    bot_integration: Option<String>,
    agent_source_types: Vec<String>,
    ticket_fields: BTreeMap<String, String>,
    /// Agents online on messaging, when the secret has Support API credentials.
    presence: Option<availability::Presence>,
}

impl ZendeskProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = kit_settings::parse(&config.settings)?;
        let app_id = non_empty(s.app_id)
            .ok_or_else(|| ProviderSetupError::setting("appId", "is required for a zendesk provider"))?;
        let subdomain = non_empty(s.subdomain.clone());
        let base = match (non_empty(s.api_base_url.clone()), subdomain.clone()) {
            (Some(url), _) => kit_settings::base_url("apiBaseUrl", &url)?,
            (None, Some(sub)) if sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                format!("https://{sub}.zendesk.com/sc")
            }
            (None, Some(sub)) => {
                return Err(ProviderSetupError::setting(
                    "subdomain",
                    format!("{sub:?} is not a Zendesk subdomain"),
                ));
            }
            (None, None) => {
                return Err(ProviderSetupError::setting(
                    "subdomain",
                    "set subdomain (or apiBaseUrl) for a zendesk provider",
                ));
            }
        };
        let agent_source_types = s
            .agent_source_types
            .unwrap_or_else(|| DEFAULT_AGENT_SOURCE_TYPES.iter().map(|t| (*t).to_owned()).collect());
        if agent_source_types.iter().any(|t| t.trim().is_empty()) {
            return Err(ProviderSetupError::setting(
                "agentSourceTypes",
                "entries must not be empty",
            ));
        }
        let ticket_fields: BTreeMap<String, String> = s
            .ticket_fields
            .into_iter()
            .map(|(what, id)| (what, id.into_string()))
            .collect();
        if let Some((what, _)) = ticket_fields.iter().find(|(_, id)| id.is_empty()) {
            return Err(ProviderSetupError::setting(
                format!("ticketFields.{what}"),
                "needs a ticket field id",
            ));
        }
        let webhook_secret = kit_settings::secret_field(secret, "webhookSecret")?;
        if webhook_secret.is_empty() {
            return Err(ProviderSetupError::Config(format!(
                "secret of provider {:?}: webhookSecret is empty",
                config.id
            )));
        }
        let presence = availability::Presence::new(
            secret,
            subdomain.as_deref(),
            non_empty(s.support_base_url),
            http.clone(),
        )?;
        let auth = Auth::Basic {
            user: kit_settings::secret_field(secret, "keyId")?,
            password: kit_settings::secret_field(secret, "keySecret")?,
        };
        Ok(ZendeskProvider {
            api: ApiClient::new(http, base, auth),
            app_id,
            webhook_secret: webhook_secret.into_bytes(),
            agent_workspace: non_empty(s.agent_workspace_integration_id)
                .unwrap_or_else(|| DEFAULT_AGENT_WORKSPACE.to_owned()),
            bot_integration: non_empty(s.bot_integration_id),
            agent_source_types,
            ticket_fields,
            presence,
        })
    }

    /// `/v2/apps/{appId}/conversations/{conversationId}/{action}`, each id percent-encoded as
    /// one path segment.
    fn action_path(&self, conversation_id: &str, action: &str) -> String {
        format!(
            "/v2/apps/{}/conversations/{}/{action}",
            path_segment(&self.app_id),
            path_segment(conversation_id)
        )
    }

    async fn switchboard(
        &self,
        conversation_id: &str,
        action: &str,
        to: Option<&str>,
        metadata: Map<String, Value>,
    ) -> Result<(), DeliveryError> {
        let body = SwitchboardAction {
            switchboard_integration: to,
            metadata,
        };
        let path = self.action_path(conversation_id, action);
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }
}

#[async_trait]
impl Provider for ZendeskProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Zendesk
    }

    /// Presence is known only with Support API credentials.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.presence.is_some(),
            ..CAPABILITIES
        }
    }

    /// Agents online on messaging (account-wide), or unknown without Support API credentials.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        match &self.presence {
            Some(p) => p.messaging().await,
            None => Ok(AgentAvailability::Unknown),
        }
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let conversation_id = non_empty(h.provider_conversation_id.clone()).ok_or_else(|| {
            DeliveryError::permanent(
                "zendesk: the handover request carries no providerConversationId (the Sunshine Conversations conversation id)",
            )
        })?;
        // passControl to a target named by id or name is idempotent (switchboard guide), so a
        // retried start does not disturb a conversation already with the agents.
        self.switchboard(
            &conversation_id,
            "passControl",
            Some(&self.agent_workspace),
            self.handover_metadata(r),
        )
        .await?;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id,
        })
    }

    /// Nothing to send: in the embedded shape every user and bot turn is already a message of
    /// the SunCo conversation the agent works in.
    async fn send_message(
        &self,
        _delivery_id: &str,
        _conversation: &ProviderConversation,
        _entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }

    /// Control back to the bot's integration (`passControl`), or to nobody (`releaseControl`:
    /// the next user message goes to the switchboard's default integration).
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        if reason == EndReason::AgentClosed {
            // We only learn of a close when control has left the Agent Workspace already.
            return Ok(());
        }
        let mut metadata = Map::new();
        metadata.insert(META_HANDOVER_ID.into(), Value::String(c.handover_id.clone()));
        metadata.insert(META_END_REASON.into(), Value::String(reason.as_str().to_owned()));
        let action = if self.bot_integration.is_some() {
            "passControl"
        } else {
            "releaseControl"
        };
        match self
            .switchboard(&c.conversation_id, action, self.bot_integration.as_deref(), metadata)
            .await
        {
            // The conversation no longer exists: nothing is left in anyone's control.
            Err(DeliveryError::Permanent { status: Some(404), .. }) => Ok(()),
            other => other,
        }
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        CALLBACK_AUTH.verify(&self.webhook_secret, r)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let envelope: Envelope = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        if let Some(app) = envelope.app.as_ref().and_then(|a| a.id.as_deref())
            && app != self.app_id
        {
            // Another app's webhook pointed at this URL: none of its conversations are ours.
            return Ok(Callback::Events(Vec::new()));
        }
        // Event by event: one unreadable event in a batch must not lose the others.
        let mut events = Vec::new();
        let mut unreadable = Vec::new();
        let mut first_error = None;
        for raw in &envelope.events {
            match self.normalize(raw) {
                Ok(Some(event)) => events.push(event),
                Ok(None) => {}
                Err(e) => {
                    unreadable.push(inbound::kind_of(raw));
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(Callback::Events(events)),
            // Nothing in the delivery could be read: the whole delivery is refused.
            Some(e) if unreadable.len() == envelope.events.len() => Err(e),
            Some(_) => Ok(Callback::Partial { events, unreadable }),
        }
    }
}

//! Proximus #Interact: the Belgian contact-center and social customer-care product.
//!
//! **No public API documentation exists for #Interact.** The only public source is Chatlayer's
//! set-up page, which says tokens are exchanged both ways and the bot is paused while an agent
//! has the conversation; everything else (host, paths, token headers, the JSON both ways, the
//! event names) is an ASSUMPTION, each either a setting of the provider entry ([`defaults`]) or
//! kept in one marked place (`wire.rs`). The relay shape: a start with the transcript, the
//! user's and bot's turns relayed, #Interact's callbacks carrying our token, a close when the
//! handover ends on our side. What to confirm with Proximus: `docs/providers/interact.md`.

mod inbound;
mod outbound;
#[cfg(test)]
mod tests;
mod wire;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::kit::callback_auth::CallbackAuth;
use super::kit::http::{ApiClient, Auth};
use super::kit::settings::{self, non_empty};
use super::{
    Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation, ProviderSetupError,
    StartRequest, path_segment,
};
use crate::bot::{ProviderConfig, ProviderKind};
use crate::delivery::DeliveryError;
use crate::domain::{Actor, EndReason, Handover, TranscriptEntry};
use crate::secrets::Secret;
use inbound::parse;
use outbound::*;

/// ASSUMPTIONS, all of them: nothing here is published by Proximus. Each value is the default
/// of the setting named in its comment, and must be confirmed with Proximus before going live.
pub mod defaults {
    /// `startPath`: where a handover is announced.
    pub const START_PATH: &str = "/conversations";
    /// `messagePath`: where a user or bot turn is added to the conversation.
    pub const MESSAGE_PATH: &str = "/conversations/{conversationId}/messages";
    /// `endPath`: where we close the conversation when the handover ends on our side.
    pub const END_PATH: &str = "/conversations/{conversationId}/close";
    /// `tokenHeader`: the header our calls carry the #Interact token in.
    pub const TOKEN_HEADER: &str = "authorization";
    /// `tokenScheme`: the word before the token in that header (empty: the token alone).
    pub const TOKEN_SCHEME: &str = "Bearer";
}

/// ASSUMED event names of the default callback contract (see `CallbackBody`).
pub const EVENT_AGENT_JOINED: &str = "agent.joined";
pub const EVENT_AGENT_MESSAGE: &str = "agent.message";
pub const EVENT_CONVERSATION_CLOSED: &str = "conversation.closed";

/// The agent id used when a callback names no agent.
const DEFAULT_AGENT_ID: &str = "interact";

/// The placeholders a path setting may contain.
const CONVERSATION_PLACEHOLDER: &str = "{conversationId}";
const HANDOVER_PLACEHOLDER: &str = "{handoverId}";

/// What the adapter can promise. Where the public sources say nothing about #Interact's API the
/// answer is "no", even when Chatlayer's own integration has the feature.
pub const CAPABILITIES: Capabilities = Capabilities {
    // Chatlayer lists rich templates for #Interact, but their format is not public: buttons,
    // quick replies and carousels are sent as readable text.
    rich_content: false,
    // No public attachment format in either direction.
    attachments: false,
    // No public typing event.
    typing: false,
    // The transcript travels in the start request (`transcriptText`), but whether #Interact
    // shows a field of that name to the agent is not known.
    bot_history_visible: false,
    history_written_back: true,
    // No public presence API: #Interact's own routing decides what happens without agents.
    agent_availability: false,
    rich_content_to_user: false,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: super::COMMON_TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(InteractProvider::new(config, secret, http)?)),
};

/// The provider entry's #Interact fields. Unknown fields are refused so that a misspelt
/// endpoint or header setting cannot silently fall back to an assumed default.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InteractSettings {
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    start_path: Option<String>,
    #[serde(default)]
    message_path: Option<String>,
    #[serde(default)]
    end_path: Option<String>,
    #[serde(default)]
    token_header: Option<String>,
    #[serde(default)]
    token_scheme: Option<String>,
    #[serde(default)]
    callback_token_header: Option<String>,
    #[serde(default)]
    callback_token_scheme: Option<String>,
    #[serde(default)]
    relay_messages: Option<bool>,
    #[serde(default)]
    agent_name: Option<String>,
}

pub struct InteractProvider {
    api: ApiClient,
    start_path: String,
    message_path: String,
    end_path: String,
    /// Where #Interact's calls carry our token, and after which scheme word.
    callback_auth: CallbackAuth,
    callback_token: Vec<u8>,
    relay_messages: bool,
    agent_name: Option<String>,
}

impl InteractProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let settings: InteractSettings = settings::parse(&config.settings)?;
        let api_base = api_base(settings.api_base_url)?;
        let start_path = path_setting("startPath", settings.start_path, defaults::START_PATH)?;
        let message_path = path_setting("messagePath", settings.message_path, defaults::MESSAGE_PATH)?;
        let end_path = path_setting("endPath", settings.end_path, defaults::END_PATH)?;

        let token_header = header_setting("tokenHeader", settings.token_header.as_deref(), defaults::TOKEN_HEADER)?;
        let token_scheme = scheme_setting(settings.token_scheme.as_deref(), defaults::TOKEN_SCHEME);
        let callback_header = header_setting(
            "callbackTokenHeader",
            settings.callback_token_header.as_deref(),
            token_header.as_str(),
        )?;
        let callback_scheme = scheme_setting(settings.callback_token_scheme.as_deref(), &token_scheme);

        let field = |name: &str| -> Result<String, ProviderSetupError> {
            let value = settings::secret_field(secret, name)?.trim().to_owned();
            if value.is_empty() {
                return Err(ProviderSetupError::Config(format!("secret field {name:?} is empty")));
            }
            Ok(value)
        };
        let api_token = field("apiToken")?;
        let callback_token = field("callbackToken")?.into_bytes();
        let mut token_value = HeaderValue::from_str(&with_scheme(&token_scheme, &api_token))
            .map_err(|_| ProviderSetupError::Config("secret field \"apiToken\" is not a valid header value".into()))?;
        token_value.set_sensitive(true);

        Ok(InteractProvider {
            api: ApiClient::new(
                http,
                api_base,
                Auth::Header {
                    name: token_header,
                    value: token_value,
                },
            ),
            start_path,
            message_path,
            end_path,
            callback_auth: CallbackAuth::SharedToken {
                header: callback_header.as_str().to_owned().into(),
                scheme: callback_scheme.into(),
            },
            callback_token,
            relay_messages: settings.relay_messages.unwrap_or(true),
            agent_name: non_empty(settings.agent_name),
        })
    }
}

fn api_base(given: Option<String>) -> Result<String, ProviderSetupError> {
    let url = non_empty(given).ok_or_else(|| {
        ProviderSetupError::setting(
            "apiBaseUrl",
            "is required for an interact provider (no public #Interact API host is known; ask Proximus)",
        )
    })?;
    Ok(settings::base_url("apiBaseUrl", &url)?)
}

/// A path setting: starts with `/`, and uses no placeholder other than ours.
fn path_setting(field: &str, given: Option<String>, default: &str) -> Result<String, ProviderSetupError> {
    let path = non_empty(given).unwrap_or_else(|| default.to_owned());
    if !path.starts_with('/') {
        return Err(ProviderSetupError::setting(
            field,
            format!("{path:?} must start with '/'"),
        ));
    }
    let rest = path
        .replace(CONVERSATION_PLACEHOLDER, "")
        .replace(HANDOVER_PLACEHOLDER, "");
    if rest.contains(['{', '}']) || rest.contains(char::is_whitespace) {
        return Err(ProviderSetupError::setting(
            field,
            format!(
                "{path:?} may only use the placeholders {CONVERSATION_PLACEHOLDER} and {HANDOVER_PLACEHOLDER}, and no spaces"
            ),
        ));
    }
    Ok(path)
}

fn header_setting(field: &str, given: Option<&str>, default: &str) -> Result<HeaderName, ProviderSetupError> {
    let name = given
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
        .to_ascii_lowercase();
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ProviderSetupError::setting(field, format!("{name:?} is not a valid header name")))
}

/// A scheme setting; an explicit empty string means "the token alone".
fn scheme_setting(given: Option<&str>, default: &str) -> String {
    given.unwrap_or(default).trim().to_owned()
}

/// A header value: the scheme word, a space and the token, or the token alone.
fn with_scheme(scheme: &str, token: &str) -> String {
    if scheme.is_empty() {
        token.to_owned()
    } else {
        format!("{scheme} {token}")
    }
}

/// A path setting with its placeholders filled in.
fn fill(template: &str, conversation_id: &str, handover_id: &str) -> String {
    template
        .replace(CONVERSATION_PLACEHOLDER, &path_segment(conversation_id))
        .replace(HANDOVER_PLACEHOLDER, &path_segment(handover_id))
}

#[async_trait]
impl Provider for InteractProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Interact
    }

    /// The conversation is opened under the id we send: the requested one, else our handover id.
    fn uncertain_start_id(&self, handover: &Handover) -> Option<String> {
        let requested = handover.provider_conversation_id.as_deref().map(str::trim);
        Some(requested.filter(|id| !id.is_empty()).unwrap_or(&handover.id).to_owned())
    }

    /// One call, atomic: if it fails nothing exists at #Interact and the shell fails over.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let requested = h
            .provider_conversation_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let conversation_id = requested.unwrap_or(&h.id);
        let path = fill(&self.start_path, conversation_id, &h.id);
        let resp = self
            .api
            .json(Method::POST, &path, &[], &start_body(r, conversation_id))
            .await?;
        let answered = answered_conversation_id(resp).await;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id: indexed_conversation_id(&h.id, requested, answered),
        })
    }

    /// Relays a user or bot turn (never an agent's own turn back to the agent).
    async fn send_message(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        if !self.relay_messages || entry.actor == Actor::Agent || entry.message.render_text().trim().is_empty() {
            return Ok(());
        }
        let path = fill(&self.message_path, &c.conversation_id, &c.handover_id);
        let body = message_body(delivery_id, &c.conversation_id, &c.handover_id, entry);
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// Closes the #Interact conversation so no agent is left with a user who is gone.
    async fn end(&self, delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        let path = fill(&self.end_path, &c.conversation_id, &c.handover_id);
        let body = end_body(delivery_id, &c.conversation_id, &c.handover_id, reason);
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// The token we gave #Interact must come back in the configured header. It authenticates
    /// the caller, not the body (the public sources describe a token, not a signature), and
    /// carries no timestamp: a replayed call is absorbed by the shell's idempotency on `id`.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        self.callback_auth.verify(&self.callback_token, r)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        parse(r.body, self.agent_name.as_deref())
    }
}

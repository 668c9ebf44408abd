//! RingCentral Engage Digital (formerly Dimelo, now RingCX Digital), the **embedded** shape,
//! following Engage's own bot model: the customer talks on an Engage source whose new threads
//! carry a bot category no agent has as a skill; handing over is **recategorising the thread**
//! to an agent category (routing then offers it to agents), and handing back puts the bot
//! category back and releases the interventions agents still hold. The agent side comes from
//! Engage's webhook (interventions opened/closed, replies), authenticated by the webhook's
//! secret sent verbatim in `X-Dimelo-Secret`. Why not a relay, what is verified against the
//! published OpenAPI description and what is assumed (all of it in `assumed.rs`):
//! `docs/providers/engage.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads the webhook, `outbound` calls the REST API,
//! `settings` reads the provider entry.

mod assumed;
mod inbound;
mod outbound;
mod settings;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::kit::callback_auth::{CallbackAuth, same_secret};
use super::kit::http::{ApiClient, Auth};
use super::kit::settings::{non_empty, parse, secret_field};
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderSetupError, StartRequest,
};
use crate::bot::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::DeliveryError;
use crate::domain::{Agent, EndReason, TranscriptEntry};
use crate::secrets::Secret;
use outbound::{availability_of, recategorised};
use settings::{EngageSettings, OneOrMany, api_base};
use wire::{AgentStatus, Envelope};

/// The header Engage puts the webhook's secret in (header lookups are lower case).
pub const SECRET_HEADER: &str = "x-dimelo-secret";
/// Engage sends the webhook's secret itself on every request: it covers neither the body nor a
/// time (Engage offers nothing more), so replays are absorbed by idempotency on event ids.
pub const CALLBACK_AUTH: CallbackAuth = CallbackAuth::token_in(SECRET_HEADER);
/// The API host of historical (non-North-American) accounts: `{account}.api.engagement.dimelo.com`.
/// North-American accounts use `{account}.api.digital.ringcentral.com` (give it as `domain` or
/// `apiBaseUrl`).
pub const DEFAULT_API_HOST_SUFFIX: &str = "api.engagement.dimelo.com";
/// Every REST path starts with the API version.
const API_PREFIX: &str = "/1.0";

/// What Engage Digital can do for a handover (the `engage` row of the capability table).
pub const CAPABILITIES: Capabilities = Capabilities {
    // The chatbot guide: bot integrations are plain text only; an agent's reply reaches us as
    // its text body.
    rich_content: false,
    // Webhooks only say that a reply has attachments (`has_attachment`), not where they are.
    attachments: false,
    // No typing event exists among Engage's webhook events.
    typing: false,
    // The agent opens the thread itself, with the customer's and the bot's messages in it.
    bot_history_visible: true,
    history_written_back: true,
    // `GET /1.0/status`, filtered on the queue's agent category.
    agent_availability: true,
    rich_content_to_user: false,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(EngageProvider::new(config, secret, http)?)),
};

/// A closed intervention leaves the thread in the agent category: it must be put back in the
/// bot's category, or the customer's next message goes to agents again.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: false,
    hands_back_after_agent_close: true,
};

pub struct EngageProvider {
    /// The API with its access token as a bearer token (Engage also accepts an `access_token`
    /// parameter; the header keeps the token out of URLs and logs), base ending in `/1.0`.
    api: ApiClient,
    webhook_secret: Vec<u8>,
    verify_token: Vec<u8>,
    agent_category: String,
    bot_category: String,
    queue_categories: BTreeMap<String, String>,
    bot_users: Vec<String>,
    source_id: Option<String>,
    channel: Option<String>,
    agent_name: Option<String>,
}

impl EngageProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let settings: EngageSettings = parse(&config.settings)?;
        let required = |value: Option<String>, field: &str| {
            non_empty(value).ok_or_else(|| ProviderSetupError::setting(field, "is required for an engage provider"))
        };
        let agent_category = required(settings.agent_category_id, "agentCategoryId")?;
        let bot_category = required(settings.bot_category_id, "botCategoryId")?;
        if agent_category == bot_category {
            return Err(ProviderSetupError::setting(
                "agentCategoryId",
                "must differ from botCategoryId",
            ));
        }
        let mut queue_categories = BTreeMap::new();
        for (queue, category) in settings.queue_categories {
            let category = category.trim().to_owned();
            if category.is_empty() || category == bot_category {
                return Err(ProviderSetupError::setting(
                    format!("queueCategories.{queue}"),
                    "must be an agent category id other than botCategoryId",
                ));
            }
            queue_categories.insert(queue, category);
        }
        let bot_users = OneOrMany::ids(settings.bot_user_id);
        if bot_users.is_empty() {
            return Err(ProviderSetupError::setting(
                "botUserId",
                "is required for an engage provider (the Engage user the bot answers as)",
            ));
        }
        // The URL policy (crate::url_policy) applies to the base however it was given.
        let base_field = if settings.api_base_url.is_some() {
            "apiBaseUrl"
        } else {
            "domain"
        };
        let api_base =
            api_base(settings.api_base_url, settings.domain).map_err(|m| ProviderSetupError::setting("domain", m))?;
        let api_base = crate::providers::kit::settings::base_url(base_field, &api_base)?;
        let access_token = secret_field(secret, "accessToken")?;
        let webhook_secret = secret_field(secret, "webhookSecret")?.into_bytes();
        let verify_token = secret_field(secret, "verifyToken")?.into_bytes();
        if webhook_secret.is_empty() || verify_token.is_empty() {
            return Err(ProviderSetupError::Config(
                "the engage secret's webhookSecret and verifyToken must not be empty".into(),
            ));
        }
        Ok(EngageProvider {
            api: ApiClient::new(http, format!("{api_base}{API_PREFIX}"), Auth::Bearer(access_token)),
            webhook_secret,
            verify_token,
            agent_category,
            bot_category,
            queue_categories,
            bot_users,
            source_id: non_empty(settings.source_id),
            channel: non_empty(settings.channel),
            agent_name: non_empty(settings.agent_name),
        })
    }

    /// The agent category a queue routes to.
    fn agent_category_for(&self, queue: &str) -> &str {
        self.queue_categories
            .get(queue)
            .map(String::as_str)
            .unwrap_or(self.agent_category.as_str())
    }

    /// Every agent category this provider may have put on a thread.
    fn agent_categories(&self) -> Vec<&str> {
        let mut all: Vec<&str> = vec![self.agent_category.as_str()];
        all.extend(self.queue_categories.values().map(String::as_str));
        all
    }

    fn is_bot_user(&self, user_id: &str) -> bool {
        self.bot_users.iter().any(|b| b == user_id)
    }

    fn agent(&self, id: String) -> Agent {
        Agent {
            id,
            name: self.agent_name.clone(),
        }
    }
}

#[async_trait]
impl Provider for EngageProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Engage
    }

    /// `GET /1.0/status` for the agents having the queue's agent category (and reply permission
    /// on `sourceId`, when set): online when one of them, other than the bot, is available and
    /// not at full capacity on a channel (`channel`, when set).
    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        let mut query: Vec<(&str, &str)> = vec![("category_ids[]", self.agent_category_for(queue))];
        if let Some(source) = &self.source_id {
            query.push(("source_ids[]", source.as_str()));
        }
        let resp = self.api.get("/status", &query).await?;
        let agents: Vec<AgentStatus> = resp
            .json()
            .await
            .map_err(|e| DeliveryError::permanent(format!("Engage status: {e}")))?;
        Ok(availability_of(&agents, &self.bot_users, self.channel.as_deref()))
    }

    /// Moves the bot platform's thread from the bot category to the queue's agent category.
    /// Nothing is posted in the thread: everything said so far is already there, and a content
    /// written through the API would reach the customer.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let thread_id = non_empty(h.provider_conversation_id.clone()).ok_or_else(|| {
            DeliveryError::permanent("an Engage handover needs the thread id in handover.providerConversationId")
        })?;
        let thread = self.thread(&thread_id).await?;
        if let Some(expected) = &self.source_id
            && let Some(actual) = thread.source_id.as_deref()
            && actual != expected
        {
            return Err(DeliveryError::permanent(format!(
                "Engage thread {thread_id} belongs to source {actual}, not to the configured sourceId"
            )));
        }
        if thread.closed == Some(true) {
            return Err(DeliveryError::permanent(format!(
                "Engage thread {thread_id} is closed: agents cannot reply in it"
            )));
        }
        let current = thread.thread_category_ids.unwrap_or_default();
        let mut remove = self.agent_categories();
        remove.push(self.bot_category.as_str());
        let target = recategorised(&current, &remove, self.agent_category_for(&h.queue));
        self.set_thread_categories(&thread_id, &current, &target).await?;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id: thread_id,
        })
    }

    /// Nothing to relay: the user's and the bot's turns are already contents of the thread.
    async fn send_message(
        &self,
        _delivery_id: &str,
        _conversation: &ProviderConversation,
        _entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }

    /// The thread goes back to the bot category (every agent category off, the bot category
    /// on); then, unless the agent closed the conversation, the interventions agents still hold
    /// on it are closed or cancelled. Each step is idempotent, so a retried end repeats safely.
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        let thread_id = c.conversation_id.as_str();
        if thread_id == c.handover_id {
            // Never recategorised: no thread id was recorded for this handover.
            return Ok(());
        }
        let thread = match self.thread(thread_id).await {
            Ok(thread) => thread,
            // Gone, or no longer readable with this token: nothing left to hand back.
            Err(DeliveryError::Permanent { status: Some(404), .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let current = thread.thread_category_ids.unwrap_or_default();
        let target = recategorised(&current, &self.agent_categories(), self.bot_category.as_str());
        self.set_thread_categories(thread_id, &current, &target).await?;
        if reason != EndReason::AgentClosed {
            self.release_interventions(thread_id).await?;
        }
        Ok(())
    }

    /// The webhook's secret on every request; the validation GET must also carry the
    /// verification token.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        CALLBACK_AUTH.verify(&self.webhook_secret, r)?;
        if r.method.eq_ignore_ascii_case("GET") {
            let token = inbound::query_value(r.query, "hub.verify_token")
                .ok_or_else(|| CallbackError::Unauthenticated("missing hub.verify_token".into()))?;
            if !same_secret(&self.verify_token, token) {
                return Err(CallbackError::Unauthenticated(
                    "hub.verify_token does not match the verification token".into(),
                ));
            }
        }
        Ok(())
    }

    /// GET is the validation handshake; a POST carries one or more events, each normalized on
    /// its own (events for other threads, the bot's own replies and unknown types are dropped
    /// here or ignored by the shell). Engage retries anything but a 200, so only an unreadable
    /// envelope is refused.
    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        if r.method.eq_ignore_ascii_case("GET") {
            return inbound::handshake(r.query);
        }
        if !r.method.eq_ignore_ascii_case("POST") {
            return Ok(Callback::Events(Vec::new()));
        }
        let envelope: Envelope = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        Ok(Callback::Events(
            envelope.events.iter().filter_map(|e| self.event(e)).collect(),
        ))
    }
}

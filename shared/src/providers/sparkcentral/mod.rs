//! Sparkcentral by Hootsuite (now Hootsuite Inbox 2.0) through its Virtual Agent API, the
//! **embedded** shape: the contact's conversation lives in Sparkcentral, the bot platform is a
//! custom virtual agent (VA) in it, and a handover is the VA completing its part with
//! `complete: HANDOVER` (plus a note, topics and an optional last message). Sparkcentral tells a
//! VA nothing about agents, so the start counts as the join and the only callback that matters
//! is the conversation coming back to the VA (forwarded by the bot platform, signed with the
//! VA's hex-decoded shared secret). Two API generations, chosen by `region` ([`Api`]). How and
//! why, what is verified against Hootsuite's published description and what is assumed:
//! `docs/providers/sparkcentral.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads the VA's webhook events, `outbound` writes
//! the handover call.

mod inbound;
mod inbox;
mod outbound;
mod settings;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};

use super::kit::callback_auth::{Algorithm, CallbackAuth, Encoding};
use super::kit::http::{ApiClient, Auth, ClientCredentials};
use super::kit::settings::{self as kit_settings, non_empty};
use super::kit::wire::IdSetting;
use super::memo::Memo;
use super::oauth::ClientAuth;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderSetupError, StartRequest, WaitEstimate, path_segment,
};
use crate::bot::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::DeliveryError;
use crate::domain::{EndReason, TranscriptEntry};
use crate::secrets::Secret;
use outbound::{handover_body, is_ambiguous, is_not_assigned, token_grant};
use settings::Settings;
use wire::OnlineAgents;

/// Signature header of Sparkcentral's own platform (header names are stored lowercase).
pub const SPARKCENTRAL_SIGNATURE_HEADER: &str = "x-sparkcentral-signature";
/// Signature header of Hootsuite Inbox 2.0.
pub const HOOTSUITE_SIGNATURE_HEADER: &str = "x-hootsuite-signature";

/// How the VA's webhook events are signed: lowercase hex HMAC-SHA256 of the raw body, keyed
/// with the shared secret's bytes (see [`decode_shared_secret`]), in either header.
pub const CALLBACK_AUTH: CallbackAuth =
    CallbackAuth::hmac(HOOTSUITE_SIGNATURE_HEADER, Algorithm::Sha256, Encoding::Hex, "");

/// Sparkcentral's US and EU clusters, as Sparkcentral's virtual-agent sample names them.
pub const US_API: &str = "https://public-api.sparkcentral.com";
pub const EU_API: &str = "https://public-api-eu.sparkcentral.com";
/// Hootsuite Inbox 2.0, the only server of its OpenAPI description.
pub const HOOTSUITE_API: &str = "https://platform.hootsuite.com";

/// The virtual agent's webhook event types. Others (Sparkcentral may add some) are ignored.
pub const EVENT_CONVERSATION_STARTED: &str = "CONVERSATION_STARTED";
pub const EVENT_CONVERSATION_DELEGATED: &str = "CONVERSATION_DELEGATED";
pub const EVENT_INBOUND_MESSAGE_RECEIVED: &str = "INBOUND_MESSAGE_RECEIVED";

/// How old (or how far ahead of our clock) a callback's `timestamp` may be; Sparkcentral
/// recommends refusing events older than 5 minutes. `maxEventAgeSeconds` overrides it, for a
/// bot platform that forwards deliveries through a queue.
const DEFAULT_MAX_EVENT_AGE_SECS: u64 = 300;
const MAX_EVENT_AGE_CEILING_SECS: u64 = 86_400;

/// Bound of the in-process memory of handovers whose outcome was unknown.
const AMBIGUOUS_MAX: usize = 10_000;

/// Hootsuite Inbox's list of online agents.
const ONLINE_AGENTS_PATH: &str = "/inbox/v1/user-presence/online-agents";

/// What the Sparkcentral adapter can do at best (agent availability only with
/// `checkOnlineAgents` on Hootsuite Inbox).
pub const CAPABILITIES: Capabilities = Capabilities {
    // The VA API sends text and uploaded files only; no buttons or carousels.
    rich_content: false,
    // The bot's files (uploaded through the VA API) and the contact's are native attachments
    // of the conversation the agent works in.
    attachments: true,
    // Sparkcentral tells a virtual agent nothing about agents typing.
    typing: false,
    // The agent opens the very conversation the bot had with the contact.
    bot_history_visible: true,
    // Agents' messages are never reported to a virtual agent: nothing to write back.
    history_written_back: false,
    // Hootsuite Inbox lists online agents (`GET /inbox/v1/user-presence/online-agents`).
    agent_availability: true,
    rich_content_to_user: false,
    // Hootsuite Inbox's queue metrics, with `joinFromLock` (only then does a handover wait).
    provider_wait_estimate: true,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: TRAITS,
    entry_traits: Some(traits_of),
    build: |config, secret, http| Ok(std::sync::Arc::new(SparkcentralProvider::new(config, secret, http)?)),
};

/// Sparkcentral reports no agent events to a virtual agent: completing with HANDOVER is what
/// puts the agents in charge, so the start counts as the join.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: true,
    hands_back_after_agent_close: false,
};

/// With `joinFromLock` (Hootsuite Inbox): the handover waits until an agent locks the
/// conversation, which the evaluator reads every minute from the queue's locks.
pub const LOCK_TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: Some(60),
    joins_at_start: false,
    hands_back_after_agent_close: false,
};

/// The traits of one provider entry: [`LOCK_TRAITS`] with `joinFromLock: true` (checked with
/// the other settings when the bot is stored), else [`TRAITS`].
pub fn traits_of(config: &ProviderConfig) -> ProviderTraits {
    if config.settings.get("joinFromLock") == Some(&serde_json::Value::Bool(true)) {
        LOCK_TRAITS
    } else {
        TRAITS
    }
}

/// Which generation of the API a provider entry talks to.
///
/// | `region` | host | token | VA calls |
/// |---|---|---|---|
/// | `us`, `eu` | `public-api(-eu).sparkcentral.com` | `POST /virtual-agent/oauth2/token` | `/virtual-agent/conversations/{id}` |
/// | `hootsuite` | `platform.hootsuite.com` | `POST /oauth2/token` (`organization_app`) | `/inbox/v1/virtual-agent/conversations/{id}` |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// Sparkcentral's own public API (`region: us` or `eu`).
    Sparkcentral,
    /// Hootsuite Inbox 2.0 (`region: hootsuite`).
    Inbox,
}

impl Api {
    fn token_path(self) -> &'static str {
        match self {
            Api::Sparkcentral => "/virtual-agent/oauth2/token",
            Api::Inbox => "/oauth2/token",
        }
    }

    fn virtual_agent_prefix(self) -> &'static str {
        match self {
            Api::Sparkcentral => "/virtual-agent",
            Api::Inbox => "/inbox/v1/virtual-agent",
        }
    }
}

pub struct SparkcentralProvider {
    api: Api,
    /// The shared secret's bytes (hex-decoded), the HMAC key of callbacks.
    shared_secret: Vec<u8>,
    queue_topics: BTreeMap<String, Vec<String>>,
    handover_message: Option<String>,
    check_online_agents: bool,
    /// Queue → Hootsuite Inbox team ids whose availability counts for it.
    queue_teams: BTreeMap<String, Vec<String>>,
    join_from_lock: bool,
    max_event_age: Duration,
    /// Handover attempts whose outcome is unknown (transport error, timeout, 5xx): Sparkcentral
    /// may have applied them. If the next attempt of the same handover is answered 404 (the
    /// conversation is no longer the virtual agent's), the earlier one went through.
    ambiguous: Memo<()>,
    client: ApiClient,
}

/// The virtual agent's shared secret as HMAC key bytes. Sparkcentral shows the secret as a
/// hexadecimal string and signs with the bytes it encodes (not with the text); `None` when the
/// text is not hexadecimal.
pub fn decode_shared_secret(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    hex::decode(t).ok()
}

/// The signature Sparkcentral puts in `X-Sparkcentral-Signature` / `X-Hootsuite-Signature`
/// for `body`. Used by tests to sign callbacks; `None` when the secret is not hexadecimal.
pub fn signature(shared_secret_hex: &str, body: &[u8]) -> Option<String> {
    decode_shared_secret(shared_secret_hex).map(|key| CALLBACK_AUTH.sign(&key, body))
}

impl SparkcentralProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = kit_settings::parse(&config.settings)?;
        let region = non_empty(s.region).ok_or_else(|| {
            ProviderSetupError::setting(
                "region",
                "is required for a sparkcentral provider: us or eu (Sparkcentral), hootsuite (Hootsuite Inbox)",
            )
        })?;
        let (api, default_base) = match region.to_ascii_lowercase().as_str() {
            "us" => (Api::Sparkcentral, US_API),
            "eu" => (Api::Sparkcentral, EU_API),
            "hootsuite" => (Api::Inbox, HOOTSUITE_API),
            _ => {
                return Err(ProviderSetupError::setting(
                    "region",
                    format!("{region:?} is not one of us, eu, hootsuite"),
                ));
            }
        };
        let base_url = match non_empty(s.api_base_url) {
            Some(url) => kit_settings::base_url("apiBaseUrl", &url)?,
            None => default_base.to_owned(),
        };
        let organization_id = s.organization_id.map(IdSetting::into_string).filter(|v| !v.is_empty());
        if api == Api::Inbox && organization_id.is_none() {
            return Err(ProviderSetupError::setting(
                "organizationId",
                "is required with region hootsuite: the Hootsuite organization linked to the app",
            ));
        }
        if s.check_online_agents && api != Api::Inbox {
            return Err(ProviderSetupError::setting(
                "checkOnlineAgents",
                "needs region hootsuite (the online-agents list is a Hootsuite Inbox API)",
            ));
        }
        if (s.join_from_lock || !s.queue_teams.is_empty()) && api != Api::Inbox {
            let field = if s.join_from_lock { "joinFromLock" } else { "queueTeams" };
            return Err(ProviderSetupError::setting(
                field,
                "needs region hootsuite (queue locks and team metrics are Hootsuite Inbox APIs)",
            ));
        }
        let mut queue_teams = BTreeMap::new();
        for (queue, teams) in s.queue_teams {
            let list: Vec<String> = teams.into_vec().into_iter().map(|t| t.trim().to_owned()).collect();
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(ProviderSetupError::setting(
                    format!("queueTeams.{queue}"),
                    "needs one or more team ids",
                ));
            }
            queue_teams.insert(queue, list);
        }
        let mut queue_topics = BTreeMap::new();
        for (queue, topics) in s.queue_topics {
            let list: Vec<String> = topics.into_vec().into_iter().map(|t| t.trim().to_owned()).collect();
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(ProviderSetupError::setting(
                    format!("queueTopics.{queue}"),
                    "needs one or more topic names",
                ));
            }
            queue_topics.insert(queue, list);
        }
        let max_age_secs = match s.max_event_age_seconds {
            Some(0) => return Err(ProviderSetupError::setting("maxEventAgeSeconds", "must be at least 1")),
            Some(n) => n.min(MAX_EVENT_AGE_CEILING_SECS),
            None => DEFAULT_MAX_EVENT_AGE_SECS,
        };
        let shared_secret =
            decode_shared_secret(&kit_settings::secret_field(secret, "sharedSecret")?).ok_or_else(|| {
                ProviderSetupError::Config(format!(
                    "secret of provider {:?}: sharedSecret must be the virtual agent's shared secret exactly as \
                     Sparkcentral shows it (hexadecimal)",
                    config.id
                ))
            })?;
        let credentials = ClientCredentials {
            token_url: format!("{base_url}{}", api.token_path()),
            client_id: kit_settings::secret_field(secret, "clientId")?,
            client_secret: kit_settings::secret_field(secret, "clientSecret")?,
            // Both generations take the client id and secret as HTTP Basic credentials.
            client_auth: ClientAuth::Basic,
            grant: Some(token_grant(api, organization_id.as_deref())),
        };
        let client = ApiClient::new(http, base_url, Auth::ClientCredentials(credentials))
            .with_header(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(SparkcentralProvider {
            api,
            shared_secret,
            queue_topics,
            handover_message: non_empty(s.handover_message),
            check_online_agents: s.check_online_agents,
            queue_teams,
            join_from_lock: s.join_from_lock,
            max_event_age: Duration::seconds(i64::try_from(max_age_secs).unwrap_or(300)),
            ambiguous: Memo::new(AMBIGUOUS_MAX),
            client,
        })
    }

    /// `…/virtual-agent/conversations/{conversationId}`, the id encoded as one path segment.
    fn conversation_path(&self, conversation_id: &str) -> String {
        format!(
            "{}/conversations/{}",
            self.api.virtual_agent_prefix(),
            path_segment(conversation_id)
        )
    }
}

#[async_trait]
impl Provider for SparkcentralProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sparkcentral
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.check_online_agents,
            provider_wait_estimate: self.join_from_lock,
            ..CAPABILITIES
        }
    }

    /// Hootsuite Inbox's online agents (`checkOnlineAgents`): for a queue with `queueTeams`, the
    /// number of `AVAILABLE` agents of those teams (the agent-availability metric filters by
    /// team); otherwise the organization's online-agents list: `Online` when at least one agent
    /// is `AVAILABLE`, `NoneOnline` when every online agent is `AWAY` or nobody is online.
    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        if !self.check_online_agents {
            return Ok(AgentAvailability::Unknown);
        }
        if let Some(teams) = self.queue_teams.get(queue) {
            return self.teams_available(teams).await;
        }
        let resp = self.client.get(ONLINE_AGENTS_PATH, &[]).await?;
        let online: OnlineAgents = resp
            .json()
            .await
            .map_err(|e| DeliveryError::permanent(format!("unreadable online-agents answer: {e}")))?;
        Ok(online.availability())
    }

    /// Hootsuite Inbox's queue metrics for conversations not yet answered (`joinFromLock`
    /// only: otherwise a handover never waits): contacts waiting and the longest wait, read as
    /// `inbox::estimate` says. Organization-wide: the adapter is not told the handover's queue.
    async fn wait_estimate(&self, _c: &ProviderConversation) -> Result<WaitEstimate, DeliveryError> {
        if !self.join_from_lock {
            return Ok(WaitEstimate::default());
        }
        self.queue_estimate().await
    }

    /// With `joinFromLock`: the agent who locked the conversation joined (`GET
    /// /inbox/v1/queue/lock`). Sparkcentral's own API has no such list.
    async fn poll(&self, c: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        if !self.join_from_lock {
            return Ok(Vec::new());
        }
        self.lock_join(c).await
    }

    /// Completes the virtual agent's part with `HANDOVER` (plus note, topics and the optional
    /// last message) in one call.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let conversation_id = h
            .provider_conversation_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DeliveryError::permanent(
                    "a Sparkcentral handover needs handover.providerConversationId: the conversation the \
                     virtual agent is in",
                )
            })?
            .to_owned();
        let body = handover_body(h, self.handover_message.as_deref(), &self.queue_topics);
        let path = self.conversation_path(&conversation_id);
        let attempt_key = format!("{}|{}", self.client.base(), r.delivery_id);
        // A token failure must not count as a handover whose outcome is unknown.
        self.client.authenticate().await?;
        match self.client.json(Method::POST, &path, &[], &body).await {
            Ok(_) => {
                self.ambiguous.take(&attempt_key);
            }
            Err(e) if is_not_assigned(&e) && self.ambiguous.take(&attempt_key).is_some() => {
                tracing::info!(
                    handover_id = %h.id,
                    conversation_id = %conversation_id,
                    "an earlier attempt of this handover reached Sparkcentral: the conversation is with the agents"
                );
            }
            Err(e) => {
                if is_ambiguous(&e) {
                    self.ambiguous.insert(attempt_key.clone(), ());
                }
                return Err(e);
            }
        }
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id,
        })
    }

    /// Nothing to relay: the contact's and the bot's turns are already messages of the
    /// Sparkcentral conversation the agent works in.
    async fn send_message(
        &self,
        _delivery_id: &str,
        _conversation: &ProviderConversation,
        _entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        Ok(())
    }

    /// Nothing can be released: after the handover the conversation belongs to Sparkcentral's
    /// agents, the virtual agent API answers 404 for it, and no documented call takes it back
    /// or resolves it. It stays where the hand-off rule put it.
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        tracing::info!(
            reason = reason.as_str(),
            conversation_id = %c.conversation_id,
            "the Sparkcentral conversation stays with the agents: the virtual agent API cannot take it back"
        );
        Ok(())
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, now: DateTime<Utc>) -> Result<(), CallbackError> {
        inbound::verify(&self.shared_secret, r)?;
        inbound::check_fresh(r.body, now, self.max_event_age)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        inbound::parse(r.body)
    }
}

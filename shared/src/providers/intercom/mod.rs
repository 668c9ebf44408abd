//! Intercom, the embedded shape: the user's conversation lives in Intercom and the bot
//! platform takes part in it as a bot teammate (an Intercom admin). A handover is an
//! assignment made by that bot teammate to the team routed for the queue; Intercom's webhooks
//! tell us when a person takes it, writes, hands it back or closes it. When the conversation
//! did not start in Intercom (no `providerConversationId`), we create the contact and the
//! conversation, add the transcript as the bot teammate's note (with a marker that tells later
//! Lambda instances the conversation is ours, see `note`), relay later turns, and close it at
//! the end; a conversation that lived in Intercom goes back to the bot teammate, the way
//! Intercom's own bot hand-over works. Webhooks are signed `X-Hub-Signature: sha1=<hex
//! HMAC-SHA1(client secret, raw body)>`. Sources and assumptions: `docs/providers/intercom.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads notifications, `outbound` acts in Intercom,
//! `note` writes the bot teammate's note, `settings` reads the provider entry.

mod inbound;
mod note;
mod outbound;
mod settings;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

use super::kit::callback_auth::{Algorithm, CallbackAuth, Encoding};
use super::kit::http::{ApiClient, Auth};
use super::kit::settings::{self as kit_settings, base_url, non_empty};
use super::kit::text::text_to_html;
use super::kit::wire::IdSetting;
use super::memo::Memo;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderSetupError, StartRequest,
};
use crate::bot::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::DeliveryError;
use crate::domain::{Actor, EndReason, TranscriptEntry, render_transcript};
use crate::secrets::Secret;
use settings::{Settings, region_base};
use wire::text;

/// The webhook signature header (header names are case-insensitive; stored lowercase).
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
/// `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body, keyed with the app's client secret>`.
pub const CALLBACK_AUTH: CallbackAuth = CallbackAuth::hmac(SIGNATURE_HEADER, Algorithm::Sha1, Encoding::Hex, "sha1=");
/// The API version sent in `Intercom-Version` unless `apiVersion` says otherwise. Every
/// request and field used here is identical in the 2.11 to 2.16 descriptions.
pub const DEFAULT_API_VERSION: &str = "2.14";
/// Regional API hosts, from the `servers` list of the OpenAPI description.
pub const US_API: &str = "https://api.intercom.io";
pub const EU_API: &str = "https://api.eu.intercom.io";
pub const AU_API: &str = "https://api.au.intercom.io";

/// `assignee_id` meaning "nobody" in an assignment.
const UNASSIGNED: &str = "0";

/// Webhook topics this adapter acts on; every other topic (`ping` included) is acknowledged
/// and ignored.
pub const TOPIC_ADMIN_REPLIED: &str = "conversation.admin.replied";
pub const TOPIC_ADMIN_ASSIGNED: &str = "conversation.admin.assigned";
pub const TOPIC_ADMIN_CLOSED: &str = "conversation.admin.closed";

/// Bound of the in-process memory of which conversations we created.
const ORIGIN_CACHE_MAX: usize = 10_000;

/// What Intercom can do (agent availability from away mode, unless `checkAwayMode: false`).
pub const CAPABILITIES: Capabilities = Capabilities {
    // Intercom conversations show text, HTML and files; no buttons or carousels.
    rich_content: false,
    // Agent files arrive as URLs; user files are passed on as links in the text.
    attachments: true,
    // No webhook reports an agent typing.
    typing: false,
    // Already in Intercom, or added as the bot teammate's note.
    bot_history_visible: true,
    history_written_back: true,
    agent_availability: true,
    rich_content_to_user: false,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(IntercomProvider::new(config, secret, http)?)),
};

/// A conversation closed by its agent stays assigned to the agent's team: a user reply would
/// reopen it in the humans' inbox while the bot is answering again. The end of the handover is
/// therefore also delivered after an agent close, and hands the conversation back to the bot
/// teammate (see `end`).
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: false,
    hands_back_after_agent_close: true,
};

/// Where a conversation came from, which decides relaying and ending.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// It lived in Intercom before the handover: the bot platform talks to the user there.
    Intercom,
    /// We created it; user turns are posted as this contact.
    Created { contact_id: String },
}

pub struct IntercomProvider {
    /// The access token as bearer, `Intercom-Version` pinned.
    api: ApiClient,
    client_secret: Vec<u8>,
    bot_admin_id: String,
    teams: BTreeMap<String, String>,
    default_team_id: Option<String>,
    external_id_prefix: String,
    check_away_mode: bool,
    workspace_id: Option<String>,
    /// Where each conversation came from (see [`Origin`]).
    origins: Memo<Origin>,
}

impl IntercomProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = kit_settings::parse(&config.settings)?;
        let base = match (&s.api_base_url, &config.url) {
            (Some(u), _) | (None, Some(u)) => base_url("apiBaseUrl", u)?,
            (None, None) => region_base(s.region.as_deref())
                .ok_or_else(|| {
                    ProviderSetupError::setting(
                        "region",
                        format!("{:?} is not one of us, eu, au", s.region.clone().unwrap_or_default()),
                    )
                })?
                .to_owned(),
        };
        let bot_admin_id = s
            .bot_admin_id
            .map(IdSetting::into_string)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ProviderSetupError::setting(
                    "botAdminId",
                    "required: the id of the Intercom teammate the bot acts as",
                )
            })?;
        let mut teams = BTreeMap::new();
        for (queue, id) in s.teams {
            let id = id.into_string();
            if id.is_empty() {
                return Err(ProviderSetupError::setting(
                    "teams",
                    format!("queue {queue:?} has an empty team id"),
                ));
            }
            teams.insert(queue, id);
        }
        let default_team_id = s.default_team_id.map(IdSetting::into_string).filter(|v| !v.is_empty());
        if teams.is_empty() && default_team_id.is_none() {
            return Err(ProviderSetupError::setting(
                "teams",
                "map at least one queue to an Intercom team id, or set defaultTeamId",
            ));
        }
        let api_version = non_empty(s.api_version).unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
        let version = HeaderValue::from_str(&api_version)
            .map_err(|_| ProviderSetupError::setting("apiVersion", format!("{api_version:?} is not a header value")))?;
        let access_token = kit_settings::secret_field(secret, "accessToken")?;
        let client_secret = kit_settings::secret_field(secret, "clientSecret")?.into_bytes();
        let api = ApiClient::new(http, base, Auth::Bearer(access_token))
            .with_header(HeaderName::from_static("intercom-version"), version)
            .with_header(ACCEPT, HeaderValue::from_static("application/json"));
        Ok(IntercomProvider {
            api,
            client_secret,
            bot_admin_id,
            teams,
            default_team_id,
            external_id_prefix: s.external_id_prefix.unwrap_or_default(),
            check_away_mode: s.check_away_mode,
            workspace_id: s.workspace_id.map(IdSetting::into_string).filter(|v| !v.is_empty()),
            origins: Memo::new(ORIGIN_CACHE_MAX),
        })
    }

    fn team_for(&self, queue: &str) -> Option<&str> {
        self.teams
            .get(queue)
            .or(self.default_team_id.as_ref())
            .map(String::as_str)
    }
}

/// `sha1=<hex HMAC-SHA1(client secret, raw body)>`, the value Intercom sends in
/// `X-Hub-Signature` (also used by tests to sign callbacks).
pub fn signature(client_secret: &[u8], body: &[u8]) -> String {
    CALLBACK_AUTH.sign(client_secret, body)
}

#[async_trait]
impl Provider for IntercomProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Intercom
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.check_away_mode,
            ..CAPABILITIES
        }
    }

    /// Away mode of the team's teammates (`GET /admins`: `team_ids`, `away_mode_enabled`,
    /// `has_inbox_seat`). Intercom has no presence API: a teammate not in away mode counts as
    /// available, so this reports `NoneOnline` only when every teammate of the team is away.
    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        if !self.check_away_mode {
            return Ok(AgentAvailability::Unknown);
        }
        let Some(team) = self.team_for(queue) else {
            return Ok(AgentAvailability::Unknown);
        };
        let list = self.admins().await?;
        let members: Vec<_> = list
            .admins
            .iter()
            .filter(|a| text(&a.id).is_some_and(|id| id != self.bot_admin_id))
            .filter(|a| a.team_ids.iter().any(|t| t.text().as_deref() == Some(team)))
            .collect();
        if members.is_empty() {
            return Ok(AgentAvailability::Unknown);
        }
        let someone = members
            .iter()
            .any(|a| a.away_mode_enabled != Some(true) && a.has_inbox_seat != Some(false));
        Ok(if someone {
            AgentAvailability::Online
        } else {
            AgentAvailability::NoneOnline
        })
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let team = self.team_for(&h.queue).ok_or_else(|| {
            DeliveryError::permanent(format!("no Intercom team is configured for queue {:?}", h.queue))
        })?;
        let conversation_id = match non_empty(h.provider_conversation_id.clone()) {
            Some(id) => {
                self.hand_to_team(&id, r, team).await?;
                id
            }
            None => self.open_new(r, team).await?,
        };
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id,
        })
    }

    /// In a conversation that lived in Intercom the user's and the bot's turns are already
    /// there: nothing to do. In one we created, a user turn becomes a reply of the contact
    /// and a bot turn a note (the user saw it in their own channel already).
    async fn send_message(
        &self,
        _delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        let Some(origin) = self.origin(c).await? else {
            return Err(DeliveryError::permanent(format!(
                "Intercom conversation {} no longer exists",
                c.conversation_id
            )));
        };
        let Origin::Created { contact_id } = origin else {
            return Ok(());
        };
        let text = entry.message.render_text();
        if text.trim().is_empty() {
            return Ok(());
        }
        match entry.actor {
            Actor::User => self.reply_as_contact(&c.conversation_id, &contact_id, &text).await,
            Actor::Bot => {
                let line = render_transcript(std::slice::from_ref(entry));
                self.note(&c.conversation_id, &format!("<p>{}</p>", text_to_html(&line)))
                    .await
            }
            Actor::Agent => Ok(()),
        }
    }

    /// User cancel and timeouts: a conversation we created is closed; one that lived in
    /// Intercom goes back to the bot teammate (team unassigned first).
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        tracing::debug!(reason = reason.as_str(), conversation_id = %c.conversation_id, "ending the Intercom side");
        match self.origin(c).await? {
            None => Ok(()),
            // The agent closed it, and the user's later turns are not relayed to it: it stays
            // as the agent left it.
            Some(Origin::Created { .. }) if reason == EndReason::AgentClosed => Ok(()),
            Some(Origin::Created { .. }) => self.close(&c.conversation_id).await,
            // Intercom's own bot hand-over: the conversation goes back to the bot teammate, so
            // the user's next reply (which reopens a closed conversation) reaches the bot that
            // is answering again, not the team's inbox. After an agent close too (see TRAITS).
            Some(Origin::Intercom) => {
                self.assign(&c.conversation_id, "team", UNASSIGNED).await?;
                self.assign(&c.conversation_id, "admin", &self.bot_admin_id).await
            }
        }
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        if inbound::is_probe(r) {
            // The endpoint check when the URL is saved carries no body and changes nothing.
            return Ok(());
        }
        CALLBACK_AUTH.verify(&self.client_secret, r)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        if inbound::is_probe(r) {
            return Ok(Callback::Challenge {
                status: 200,
                content_type: "text/plain",
                body: String::new(),
            });
        }
        self.events(r.body)
    }
}

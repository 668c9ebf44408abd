//! Genesys Cloud through Open Messaging, as a relay: handover plays the integration's
//! "external messaging service". A start is one inbound Open Message carrying the transcript,
//! whose sender id is the handover id; the agent's messages come back to our callback on the
//! integration's outbound webhook; joins and closes are polled from the conversation's
//! participants, or pushed through EventBridge (`pushed`); the end disconnects the conversation. How and why, with what is verified
//! against Genesys' published description and what is assumed: `docs/providers/genesys.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads what Genesys sends, `outbound` writes what we
//! send.

mod choice;
mod inbound;
mod outbound;
mod pushed;
#[cfg(test)]
mod tests;
mod wire;

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::kit::callback_auth::{Algorithm, CallbackAuth, Encoding};
use super::kit::http::{ApiClient, Auth, ClientCredentials};
use super::kit::settings::{self, non_empty};
use super::oauth::ClientAuth;
use super::{
    Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation, ProviderEvent,
    ProviderSetupError, StartRequest, WaitEstimate, path_segment,
};
use crate::bot::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::DeliveryError;
use crate::domain::{EndReason, Handover, TranscriptEntry};
use crate::secrets::Secret;
use inbound::*;
use outbound::*;
use wire::*;

/// How Genesys signs its outbound webhook: `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256 of
/// the body, keyed with the secret token as text>`. Genesys' reference code signs
/// `JSON.stringify` of the parsed body, which is the raw body whenever Genesys sends compact
/// JSON; a body with insignificant whitespace is also checked in its compact form.
pub const CALLBACK_AUTH: CallbackAuth = CallbackAuth::BodyHmac {
    header: Cow::Borrowed(SIGNATURE_HEADER),
    algorithm: Algorithm::Sha256,
    encoding: Encoding::Base64,
    prefix: "sha256=",
    compact_json_too: true,
};
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Our sender ids are handover ids: opaque to Genesys.
const ID_TYPE: &str = "Opaque";
/// Shown as the customer's name when the bot platform did not tell us one.
const DEFAULT_NICKNAME: &str = "Customer";
/// Prefix of mirrored bot turns: every inbound message appears as the customer's in Genesys,
/// so the agent needs to see which ones the bot said (the transcript uses the same label).
const BOT_PREFIX: &str = "Bot: ";

/// ASSUMPTION (not published by Genesys): the longest `text` an inbound Open Message may carry.
/// 4,000 characters stays under the common messaging-channel limits; longer transcripts keep
/// their newest lines, longer turns are sent as several messages.
const MAX_TEXT_CHARS: usize = 4000;
/// ASSUMPTION (not published by Genesys): the longest value we put in one custom attribute.
const MAX_ATTRIBUTE_CHARS: usize = 1000;

/// Genesys Cloud regions, as the official SDKs name them, and their domains.
const REGION_DOMAINS: &[(&str, &str)] = &[
    ("us_east_1", "mypurecloud.com"),
    ("eu_west_1", "mypurecloud.ie"),
    ("ap_southeast_2", "mypurecloud.com.au"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("eu_central_1", "mypurecloud.de"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
    ("eu_central_2", "euc2.pure.cloud"),
    ("mx_central_1", "mxc1.pure.cloud"),
    ("ap_southeast_1", "apse1.pure.cloud"),
];

/// The provider entry's Genesys fields. All optional here so that a missing one is reported
/// with its name rather than as a serde message.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GenesysSettings {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    integration_id: Option<String>,
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    login_base_url: Option<String>,
    #[serde(default)]
    agent_name: Option<String>,
    /// Joins and closes arrive through EventBridge (the template's optional Genesys rule), so
    /// the conversation is not polled.
    #[serde(default)]
    pushed_events: bool,
}

/// What Genesys Cloud Open Messaging can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    // The public APIs send text only; buttons and carousels become text.
    rich_content: false,
    // User attachments reach the agent as links in the text; agent attachments do come back to
    // the bot, but the desk does not show the user's natively.
    attachments: false,
    typing: true,
    // The first message carries the transcript.
    bot_history_visible: true,
    history_written_back: true,
    // Not asked: presence would need the queue's id and a routing or analytics query; the
    // Architect flow decides what happens when nobody is on the queue.
    agent_availability: false,
    // Bot flows' quick replies, cards and carousels (agents cannot send them) reach the user
    // structured.
    rich_content_to_user: true,
    // `GET /api/v2/routing/queues/{queueId}/estimatedwaittime?conversationId=…`.
    provider_wait_estimate: true,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(GenesysProvider::new(config, secret, http)?)),
};

pub use pushed::PUSH_TOKEN_HEADER;

/// How the EventBridge API destination authenticates: the secret's `pushToken` in
/// [`PUSH_TOKEN_HEADER`].
const PUSH_AUTH: CallbackAuth = CallbackAuth::token_in(PUSH_TOKEN_HEADER);

pub struct GenesysProvider {
    integration_id: String,
    webhook_secret: Vec<u8>,
    /// The secret's optional `pushToken`: pushed events are refused without it.
    push_token: Option<Vec<u8>>,
    pushed_events: bool,
    agent_name: Option<String>,
    api: ApiClient,
}

impl GenesysProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let settings: GenesysSettings = settings::parse(&config.settings)?;
        let integration_id = non_empty(settings.integration_id)
            .ok_or_else(|| ProviderSetupError::setting("integrationId", "is required for a genesys provider"))?;
        let domain = match non_empty(settings.region) {
            Some(region) => Some(region_domain(&region).map_err(|m| ProviderSetupError::setting("region", m))?),
            None => None,
        };
        let base = |given: Option<String>, host: &str, field: &str| -> Result<String, ProviderSetupError> {
            match (non_empty(given), &domain) {
                (Some(url), _) => Ok(settings::base_url(field, &url)?),
                (None, Some(d)) => Ok(format!("https://{host}.{d}")),
                (None, None) => Err(ProviderSetupError::setting(
                    "region",
                    format!("is required for a genesys provider (or set {field})"),
                )),
            }
        };
        let api_base = base(settings.api_base_url, "api", "apiBaseUrl")?;
        let login_base = base(settings.login_base_url, "login", "loginBaseUrl")?;
        let credentials = ClientCredentials {
            token_url: format!("{login_base}/oauth/token"),
            client_id: settings::secret_field(secret, "clientId")?,
            client_secret: settings::secret_field(secret, "clientSecret")?,
            // HTTP Basic client authentication, `grant_type=client_credentials` as the body.
            client_auth: ClientAuth::Basic,
            grant: None,
        };
        let webhook_secret = settings::secret_field(secret, "webhookSecret")?.into_bytes();
        let push_token = secret
            .field("pushToken")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| t.as_bytes().to_vec());
        Ok(GenesysProvider {
            integration_id,
            webhook_secret,
            push_token,
            pushed_events: settings.pushed_events,
            agent_name: non_empty(settings.agent_name),
            api: ApiClient::new(http, api_base, Auth::ClientCredentials(credentials)),
        })
    }

    /// A GET whose JSON answer is read as `T`.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, DeliveryError> {
        let resp = self.api.get(path, query).await?;
        resp.json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Genesys answer to {path}: {e}")))
    }

    /// Sends one inbound Open Message; `prefetch` asks Genesys to answer with the
    /// conversation id.
    async fn post_inbound(&self, body: &InboundMessage, prefetch: bool) -> Result<reqwest::Response, DeliveryError> {
        let path = format!(
            "/api/v2/conversations/messages/{}/inbound/open/message",
            path_segment(&self.integration_id)
        );
        let query: &[(&str, &str)] = if prefetch {
            &[("prefetchConversationId", "true")]
        } else {
            &[]
        };
        self.api.json(Method::POST, &path, query, body).await
    }
}

/// How often an open Genesys conversation is checked for a connected or departed agent (the
/// evaluator runs every minute, so this is effectively once a run).
/// Open Messaging webhooks never say that an agent was connected or that the conversation
/// ended (only messages, receipts and typing), so the evaluator asks every minute: the
/// conversation's participants tell both. Where the optional EventBridge set-up pushes them
/// (`pushedEvents`, `pushed.rs`), the poll timer still runs but `poll` asks Genesys nothing.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: Some(60),
    joins_at_start: false,
    hands_back_after_agent_close: false,
};

/// The Genesys domain for a region setting: a domain as is (`mypurecloud.ie`, also with an
/// `https://`, `api.` or `login.` prefix), or an SDK/AWS region name (`eu-west-1`, `eu_west_1`).
fn region_domain(region: &str) -> Result<String, String> {
    let r = region.trim().trim_end_matches('/').to_ascii_lowercase();
    let r = r.strip_prefix("https://").unwrap_or(&r);
    let r = r.strip_prefix("api.").or_else(|| r.strip_prefix("login.")).unwrap_or(r);
    if r.contains('.') {
        return Ok(r.to_owned());
    }
    let key = r.replace('-', "_");
    REGION_DOMAINS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, domain)| (*domain).to_owned())
        .ok_or_else(|| format!("unknown Genesys Cloud region {region:?}; give its domain, e.g. mypurecloud.ie"))
}
#[async_trait]
impl Provider for GenesysProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Genesys
    }

    /// The inbound message is sent under our handover id as its sender, and [`Provider::end`]
    /// finds the Genesys conversation from it when only the handover id is known.
    fn uncertain_start_id(&self, handover: &Handover) -> Option<String> {
        Some(handover.id.clone())
    }

    /// One inbound message with the transcript: atomic (nothing to clean up if it fails, so the
    /// shell can fail over), one API call while the handover request waits, and the agent reads
    /// the history as one block instead of bot turns that all look like the customer's.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let body = inbound_message(
            sender(&h.id, r.user, true),
            r.delivery_id,
            h.requested_at,
            &opening_text(r),
            Some(custom_attributes(r)),
        );
        let resp = self.post_inbound(&body, true).await?;
        let genesys_conversation_id = conversation_id_of(resp).await;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id: indexed_conversation_id(&h.id, genesys_conversation_id),
        })
    }

    /// Each piece's message id derives from the delivery id, so a retried delivery sends the
    /// same ids again. A user's answer to a structured message Genesys sent goes back as a
    /// `ButtonResponse` instead (`choice.rs`).
    async fn send_message(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        if let Some(answer) = self.chosen(c, entry).await {
            return self.send_choice(delivery_id, c, entry, answer).await;
        }
        let text = turn_text(entry);
        if text.trim().is_empty() {
            return Ok(());
        }
        let parts = pieces(&text, MAX_TEXT_CHARS);
        let single = parts.len() == 1;
        for (i, part) in parts.iter().enumerate() {
            let message_id = if single {
                delivery_id.to_owned()
            } else {
                format!("{delivery_id}-{i}")
            };
            let body = inbound_message(
                sender(&c.handover_id, None, false),
                &message_id,
                entry.timestamp,
                part,
                None,
            );
            self.post_inbound(&body, false).await?;
        }
        Ok(())
    }

    /// Disconnects every participant of the Genesys conversation. When only the handover id is
    /// known, a short notice is posted first with `prefetchConversationId=true` to learn the
    /// conversation id (and to tell the agent why the conversation goes away).
    async fn end(&self, delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        let conversation_id = if c.conversation_id != c.handover_id {
            c.conversation_id.clone()
        } else {
            let body = inbound_message(
                sender(&c.handover_id, None, false),
                delivery_id,
                Utc::now(),
                &end_notice(reason),
                None,
            );
            let resp = self.post_inbound(&body, true).await?;
            conversation_id_of(resp).await.ok_or_else(|| {
                DeliveryError::permanent("Genesys returned no conversationId; the conversation cannot be disconnected")
            })?
        };
        let path = format!("/api/v2/conversations/messages/{}", path_segment(&conversation_id));
        self.api
            .json(Method::PATCH, &path, &[], &json!({ "state": "disconnected" }))
            .await
            .map(drop)
    }

    /// Genesys' own estimate: the queue the conversation waits in is its `acd` participant's,
    /// read from the conversation; then `GET /api/v2/routing/queues/{queueId}/estimatedwaittime`
    /// for this conversation. Genesys publishes no queue position for messages.
    async fn wait_estimate(&self, c: &ProviderConversation) -> Result<WaitEstimate, DeliveryError> {
        if c.conversation_id == c.handover_id {
            return Ok(WaitEstimate::default());
        }
        let conversation: PolledConversation = self
            .read_json(
                &format!("/api/v2/conversations/messages/{}", path_segment(&c.conversation_id)),
                &[],
            )
            .await?;
        let Some(queue) = waiting_queue(&conversation) else {
            return Ok(WaitEstimate::default());
        };
        let path = format!("/api/v2/routing/queues/{}/estimatedwaittime", path_segment(&queue));
        let predictions: WaitPredictions = self
            .read_json(&path, &[("conversationId", c.conversation_id.as_str())])
            .await?;
        Ok(WaitEstimate {
            position: None,
            seconds: wait_seconds(&predictions),
        })
    }

    async fn poll(&self, c: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        // Without Genesys' own conversation id there is nothing to ask about yet; with
        // `pushedEvents`, EventBridge reports joins and closes and nothing is asked.
        if c.conversation_id == c.handover_id || self.pushed_events {
            return Ok(Vec::new());
        }
        let path = format!("/api/v2/conversations/messages/{}", path_segment(&c.conversation_id));
        let resp = self.api.get(&path, &[]).await?;
        let conversation: PolledConversation = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("conversation body: {e}")))?;
        Ok(polled_events(c, &conversation, self.agent_name.as_deref()))
    }

    /// Genesys signs the body only (no timestamp, so no replay window): a replayed message is
    /// absorbed by the shell's idempotency on the event id.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        // EventBridge cannot sign a body; its API destination sends the push token instead.
        if r.header(PUSH_TOKEN_HEADER).is_some() {
            let token = self
                .push_token
                .as_deref()
                .ok_or_else(|| CallbackError::Unauthenticated("no pushToken in the provider's secret".into()))?;
            return PUSH_AUTH.verify(token, r);
        }
        CALLBACK_AUTH.verify(&self.webhook_secret, r)
    }

    /// Text (and structured) messages become agent messages, typing events agent typing.
    /// Receipts, inbound echoes, bot-originated messages and anything unknown are acknowledged
    /// and ignored: Genesys retries only 429 and 5xx, and a refusal helps nobody.
    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        // Only a request that proved the push token may speak for EventBridge.
        if r.header(PUSH_TOKEN_HEADER).is_some() && pushed::is_pushed(r.body) {
            return pushed::parse(r.body, self.agent_name.as_deref());
        }
        parse(r.body, self.agent_name.as_deref())
    }
}

/// The `X-Hub-Signature-256` value Genesys sends with `body` ([`CALLBACK_AUTH`]), for tests
/// and local tooling that play Genesys.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    CALLBACK_AUTH.sign(secret, body)
}

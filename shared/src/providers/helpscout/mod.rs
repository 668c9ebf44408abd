//! Help Scout (Inbox API 2.0): a relay. The bot platform keeps the user's channel; every
//! handover opens a **new** Help Scout conversation in the mailbox routed for the queue, with
//! the bot transcript imported as threads (user turns as customer threads, bot turns as notes)
//! and a context note; later user turns become customer threads, bot turns notes. The agent
//! side comes from Help Scout's webhooks (signed `X-HelpScout-Signature: base64(HMAC-SHA1)`):
//! users' published replies, assignments, the close; a reply webhook without its threads makes
//! us read them (`fetch_events`). The end posts a note saying why with `status: closed`. Auth
//! is OAuth 2 client credentials. How and why, what is verified and what is assumed:
//! `docs/providers/helpscout.md`.
//!
//! `wire` holds the typed bodies, `inbound` reads webhooks, `outbound` builds the
//! conversation we create, `settings` reads the provider entry.

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

use super::kit::callback_auth::{Algorithm, CallbackAuth, Encoding};
use super::kit::http::{ApiClient, Auth, ClientCredentials};
use super::kit::settings::{self as kit_settings, non_empty};
use super::kit::text::{message_html, text_to_html};
use super::memo::Memo;
use super::oauth::ClientAuth;
use super::{
    Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation, ProviderEvent,
    ProviderSetupError, StartRequest, path_segment,
};
use crate::bot::{ProviderConfig, ProviderKind};
use crate::delivery::DeliveryError;
use crate::domain::{Actor, EndReason, Handover, TranscriptEntry};
use crate::secrets::Secret;
use outbound::{end_note, note_label};
use settings::Settings;
use wire::{ConversationBody, CustomerId, CustomerThread, Note, read, text};

/// The header Help Scout signs webhooks with (lower case: header lookups are).
pub const SIGNATURE_HEADER: &str = "x-helpscout-signature";
/// `X-HelpScout-Signature`: the base64 (standard alphabet, padded) HMAC-SHA1 of the raw body,
/// keyed with the webhook's secret key as text. No timestamp, so no replay window: a replayed
/// webhook is absorbed by the shell's idempotency on event ids.
pub const CALLBACK_AUTH: CallbackAuth = CallbackAuth::hmac(SIGNATURE_HEADER, Algorithm::Sha1, Encoding::Base64, "");
/// The header naming the webhook's event.
pub const EVENT_HEADER: &str = "x-helpscout-event";

/// The API host; the token endpoint is `{api}/v2/oauth2/token`.
pub const DEFAULT_API_BASE: &str = "https://api.helpscout.net";
const TOKEN_PATH: &str = "/v2/oauth2/token";

/// Webhook events acted on; every other event is acknowledged and ignored.
pub const EVENT_AGENT_REPLY: &str = "convo.agent.reply.created";
pub const EVENT_ASSIGNED: &str = "convo.assigned";
pub const EVENT_STATUS: &str = "convo.status";
pub const EVENT_DELETED: &str = "convo.deleted";
/// Another conversation was merged into the one the body names (the survivor).
pub const EVENT_MERGED: &str = "convo.merged";
/// The conversation the body names was moved to another mailbox (`mailboxId`).
pub const EVENT_MOVED: &str = "convo.moved";
/// Sent by the "Test" button of the webhook settings.
pub const EVENT_TEST: &str = "helpscout.test";

const DEFAULT_SUBJECT: &str = "Chat handed over by the bot";
/// ASSUMPTION (see `outbound::customer_email`): the domain of placeholder customer addresses.
/// `.invalid` is reserved (RFC 2606), so nothing is ever delivered to it; set
/// `placeholderEmailDomain` to a domain you control if your Help Scout account refuses it.
const DEFAULT_PLACEHOLDER_DOMAIN: &str = "handover.invalid";
/// Prefix of mirrored bot turns: they are notes, and the agent must see they are the bot's.
const BOT_PREFIX: &str = "Bot: ";
/// Conversation → customer id entries kept in-process before the map is emptied.
const CUSTOMER_CACHE_MAX: usize = 10_000;

/// What Help Scout can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    // Threads are HTML text: buttons, quick replies and carousels become text.
    rich_content: false,
    // The API takes attachments as base64 data and handover only has URLs: user attachments
    // reach the agent as links in the text (agent attachments are relayed as links).
    attachments: false,
    // Help Scout sends no typing events.
    typing: false,
    // The transcript is imported as threads.
    bot_history_visible: true,
    history_written_back: true,
    // Not asked: the API has no presence endpoint for a mailbox.
    agent_availability: false,
    rich_content_to_user: false,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: super::COMMON_TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(HelpScoutProvider::new(config, secret, http)?)),
};

pub struct HelpScoutProvider {
    api: ApiClient,
    webhook_secret: Vec<u8>,
    mailboxes: BTreeMap<String, u64>,
    default_mailbox: Option<u64>,
    conversation_type: String,
    subject: String,
    use_user_email: bool,
    placeholder_domain: String,
    assignment_is_join: bool,
    agent_name: Option<String>,
    /// Customer ids of conversations, which the customer-thread endpoint needs.
    customers: Memo<u64>,
}

impl HelpScoutProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = kit_settings::parse(&config.settings)?;
        let mut mailboxes = BTreeMap::new();
        for (queue, mailbox) in &s.mailboxes {
            let id = mailbox.id().ok_or_else(|| {
                ProviderSetupError::setting(
                    format!("mailboxes.{queue}"),
                    "must be a Help Scout mailbox id (a number)",
                )
            })?;
            mailboxes.insert(queue.clone(), id);
        }
        let default_mailbox = match &s.mailbox_id {
            Some(m) => Some(m.id().ok_or_else(|| {
                ProviderSetupError::setting("mailboxId", "must be a Help Scout mailbox id (a number)")
            })?),
            None => None,
        };
        if mailboxes.is_empty() && default_mailbox.is_none() {
            return Err(ProviderSetupError::setting(
                "mailboxes",
                "is required for a helpscout provider (queue: mailbox id), or set providers.mailboxId",
            ));
        }
        let conversation_type = non_empty(s.conversation_type)
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "chat".to_owned());
        if !matches!(conversation_type.as_str(), "chat" | "email" | "phone") {
            return Err(ProviderSetupError::setting(
                "conversationType",
                "must be chat, email or phone",
            ));
        }
        let placeholder_domain = non_empty(s.placeholder_email_domain)
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .unwrap_or_else(|| DEFAULT_PLACEHOLDER_DOMAIN.to_owned());
        if placeholder_domain.is_empty()
            || !placeholder_domain.contains('.')
            || placeholder_domain.contains(|c: char| c == '@' || c.is_whitespace())
        {
            return Err(ProviderSetupError::setting(
                "placeholderEmailDomain",
                "must be a domain name such as chat.example.com",
            ));
        }
        let api_base = match non_empty(s.api_base_url) {
            Some(url) => kit_settings::base_url("apiBaseUrl", &url)?,
            None => DEFAULT_API_BASE.to_owned(),
        };
        let token_url = match non_empty(s.token_url) {
            Some(url) => kit_settings::base_url("tokenUrl", &url)?,
            None => format!("{api_base}{TOKEN_PATH}"),
        };
        let credentials = ClientCredentials {
            token_url,
            client_id: kit_settings::secret_field(secret, "clientId")?,
            client_secret: kit_settings::secret_field(secret, "clientSecret")?,
            // `grant_type`, `client_id`, `client_secret` as form fields.
            client_auth: ClientAuth::Form,
            grant: None,
        };
        Ok(HelpScoutProvider {
            webhook_secret: kit_settings::secret_field(secret, "webhookSecret")?.into_bytes(),
            api: ApiClient::new(http, api_base, Auth::ClientCredentials(credentials)),
            mailboxes,
            default_mailbox,
            conversation_type,
            subject: non_empty(s.subject).unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            use_user_email: s.use_user_email.unwrap_or(true),
            placeholder_domain,
            assignment_is_join: s.assignment_is_join.unwrap_or(true),
            agent_name: non_empty(s.agent_name),
            customers: Memo::new(CUSTOMER_CACHE_MAX),
        })
    }

    /// Whether a mailbox is one this provider hands conversations to (a `mailboxes` value or
    /// `mailboxId`): the ones its webhook is set up to hear.
    fn is_our_mailbox(&self, mailbox: u64) -> bool {
        self.default_mailbox == Some(mailbox) || self.mailboxes.values().any(|m| *m == mailbox)
    }

    /// The mailbox of a queue: its own entry (exact, then ignoring case), else `mailboxId`.
    fn mailbox_for(&self, queue: &str) -> Option<u64> {
        self.mailboxes
            .get(queue)
            .or_else(|| {
                self.mailboxes
                    .iter()
                    .find(|(q, _)| q.eq_ignore_ascii_case(queue))
                    .map(|(_, id)| id)
            })
            .copied()
            .or(self.default_mailbox)
    }

    /// A conversation or its thread list, read; an unreadable answer is retried.
    async fn read_conversation(&self, path: &str) -> Result<ConversationBody, DeliveryError> {
        self.api
            .get(path, &[])
            .await?
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Help Scout answer to GET {path}: {e}")))
    }

    /// The conversation's customer id, which the customer-thread endpoint needs: remembered
    /// in-process, else read once from the conversation (`primaryCustomer.id`, or its creator
    /// when that is a customer).
    async fn customer_id(&self, conversation_id: &str) -> Result<u64, DeliveryError> {
        let key = format!("{}|{conversation_id}", self.api.base());
        if let Some(id) = self.customers.get(&key) {
            return Ok(id);
        }
        let path = format!("/v2/conversations/{}", path_segment(conversation_id));
        let body = self.read_conversation(&path).await?;
        let as_id = |p: &wire::Person| text(&p.id).and_then(|s| s.parse::<u64>().ok());
        let id = read(&body.primary_customer)
            .and_then(as_id)
            .or_else(|| read(&body.created_by).filter(|c| c.is("customer")).and_then(as_id))
            .ok_or_else(|| {
                DeliveryError::permanent(format!(
                    "Help Scout conversation {conversation_id} names no primaryCustomer.id"
                ))
            })?;
        self.customers.insert(key, id);
        Ok(id)
    }
}

/// Help Scout answers a call on a conversation that was merged into another with a redirect
/// (301) to the survivor, and later with 404 (Get Conversation). The merged conversation no
/// longer exists on its own and our client follows no redirect, so the answer is reported as
/// the conversation being gone: the shell ends the handover (`provider_error`) instead of
/// marking each of the user's turns failed while the handover waits for nobody.
fn merged_is_gone(e: DeliveryError) -> DeliveryError {
    match e {
        DeliveryError::Permanent {
            status: Some(301 | 308),
            ..
        } => DeliveryError::Permanent {
            status: Some(410),
            message: "the Help Scout conversation was merged into another (HTTP 301)".into(),
        },
        other => other,
    }
}

/// The `X-HelpScout-Signature` value Help Scout sends with `body`. Public for tests and local
/// tooling that play Help Scout.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    CALLBACK_AUTH.sign(secret, body)
}

/// Help Scout's create responses carry the new resource's id in `Resource-ID` (and its URL in
/// `Location`).
fn created_id(resp: &reqwest::Response) -> Option<String> {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    header("resource-id").or_else(|| {
        header("location").and_then(|l| {
            l.trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned)
        })
    })
}

#[async_trait]
impl Provider for HelpScoutProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Helpscout
    }

    /// Help Scout creates the conversation and names it only in its answer; it takes no
    /// idempotency key and offers no lookup by our reference (an assumption: none is
    /// published), so a start of unknown outcome can be neither ended nor tried again.
    fn uncertain_start_id(&self, _handover: &Handover) -> Option<String> {
        None
    }

    /// One create call: atomic (if it fails nothing exists in Help Scout, and the shell fails
    /// over to the next provider), and the agent gets the whole history at once.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let queue = &r.handover.queue;
        let mailbox = self.mailbox_for(queue).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "no Help Scout mailbox for queue {queue:?}: add it to providers.mailboxes or set providers.mailboxId"
            ))
        })?;
        let body = self.new_conversation(r, mailbox);
        let resp = self.api.json(Method::POST, "/v2/conversations", &[], &body).await?;
        let conversation_id = created_id(&resp).ok_or_else(|| {
            DeliveryError::permanent("Help Scout created the conversation but sent no Resource-ID header")
        })?;
        Ok(ProviderConversation {
            handover_id: r.handover.id.clone(),
            conversation_id,
        })
    }

    /// User turns become customer threads (the agent is notified as for any customer reply);
    /// bot turns become notes. Help Scout has no idempotency key: a retried delivery whose
    /// first attempt did succeed adds the thread twice.
    async fn send_message(
        &self,
        _delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        if c.conversation_id == c.handover_id {
            return Err(DeliveryError::permanent(
                "no Help Scout conversation id is recorded for this handover",
            ));
        }
        let text = entry.message.render_text();
        if text.trim().is_empty() {
            return Ok(());
        }
        let conversation = path_segment(&c.conversation_id);
        let sent: Result<(), DeliveryError> = async {
            match entry.actor {
                Actor::User => {
                    let customer = self.customer_id(&c.conversation_id).await?;
                    let body = CustomerThread {
                        customer: CustomerId { id: customer },
                        text: text_to_html(&text),
                    };
                    let path = format!("/v2/conversations/{conversation}/customer");
                    self.api.json(Method::POST, &path, &[], &body).await.map(drop)
                }
                Actor::Bot | Actor::Agent => {
                    // Notes are HTML: buttons, cards and images are shown as links, lists and images.
                    let body = Note {
                        text: message_html(&note_label(entry), &entry.message),
                        status: None,
                    };
                    let path = format!("/v2/conversations/{conversation}/notes");
                    self.api.json(Method::POST, &path, &[], &body).await.map(drop)
                }
            }
        }
        .await;
        sent.map_err(merged_is_gone)
    }

    /// Closes the conversation with a note that tells the agent why. A conversation Help Scout
    /// no longer has (deleted, or merged long ago) is already gone.
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        if c.conversation_id == c.handover_id {
            // Nothing was created at Help Scout for this handover.
            return Ok(());
        }
        let body = Note {
            text: text_to_html(&end_note(reason)),
            status: Some("closed"),
        };
        let path = format!("/v2/conversations/{}/notes", path_segment(&c.conversation_id));
        match self.api.json(Method::POST, &path, &[], &body).await {
            Ok(_) => Ok(()),
            Err(DeliveryError::Permanent {
                status: Some(404 | 410),
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/conversations/{id}/threads`: its first page holds the newest threads, so the
    /// reply a webhook announced is there; replies seen before keep their event ids
    /// (`thread:<id>`) and are applied once.
    async fn fetch_events(&self, conversation_id: &str) -> Result<Vec<ProviderEvent>, DeliveryError> {
        let path = format!("/v2/conversations/{}/threads", path_segment(conversation_id));
        let body = self.read_conversation(&path).await?;
        Ok(self.agent_replies(conversation_id, &body))
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        CALLBACK_AUTH.verify(&self.webhook_secret, r)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let event = r.header(EVENT_HEADER).map(str::trim).unwrap_or_default();
        if event.is_empty() {
            return Err(CallbackError::Malformed("missing X-HelpScout-Event header".into()));
        }
        if ![
            EVENT_AGENT_REPLY,
            EVENT_ASSIGNED,
            EVENT_STATUS,
            EVENT_DELETED,
            EVENT_MERGED,
            EVENT_MOVED,
        ]
        .contains(&event)
        {
            // `helpscout.test`, customer replies (our own relays), notes, tags, customers …
            return Ok(Callback::Events(Vec::new()));
        }
        self.events(event, r.body)
    }
}

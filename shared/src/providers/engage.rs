//! RingCentral Engage Digital (formerly Dimelo, now sold as RingCX Digital), the **embedded**
//! shape, through its REST API and webhooks.
//!
//! Engage's own bot model is the one this adapter follows (developer guide, "Chatbots"): the
//! customer talks on an Engage source (Engage Messaging chat, WhatsApp, Messenger, a Channel SDK
//! source, …); a bot "proxy" receives the customer's messages through a webhook and answers with
//! `POST /1.0/contents` under the identity of an Engage user that stands for the bot. The source
//! gives new threads a **bot category** that no human agent has as a skill, so nobody else is
//! offered them. Handing over means **recategorising the thread**: the bot category is swapped
//! for an **agent category**, and Engage's routing then offers the conversation to the agents who
//! have that skill. The thread goes back to the bot category when the agents are done.
//!
//! handover does the hand-over part of that proxy's job:
//!
//! - [`Provider::start`] takes the thread named by the bot platform in
//!   `handover.providerConversationId`, reads its categories (`GET /1.0/content_threads/{id}`)
//!   and sets them to the existing ones minus the bot and agent categories, plus the agent
//!   category of the handover's queue (`PUT /1.0/content_threads/{id}/update_categories`).
//!   The thread id is the conversation id: every webhook event names it in
//!   `resource.metadata.thread_id`.
//! - [`Provider::send_message`] does nothing: the customer's messages and the bot's replies are
//!   already contents of that thread, which is what the agent opens.
//! - Agent side, from the webhook (`{id, domain_id, events[]}`): `intervention.opened`,
//!   `intervention.assigned` and `intervention.user_updated` name the agent who engaged;
//!   `content.replied` by a user who is not the bot is the agent's message; `intervention.closed`
//!   (and a locked thread) ends the handover. Engage has no typing event.
//! - [`Provider::end`] puts the thread back in the bot category and, unless the agent closed it,
//!   closes (or, without agent replies, cancels) the interventions agents still hold on the
//!   thread, so nobody is left with a conversation the bot has taken back.
//! - Webhook authentication is the webhook's secret sent **verbatim** in `X-Dimelo-Secret` on
//!   every request (not a signature of the body), and the one-off validation
//!   `GET ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`, answered with the challenge.
//!
//! Why not a relay (handover creating the conversation in Engage and posting the user's turns):
//! `POST /1.0/contents` always writes as the access token's user, an agent identity, so it cannot
//! stand for the customer, and routing offers agents the customer's imported contents, not
//! contents written through the API. Customer contents only enter Engage through a source. The
//! source type built for that (the Channel SDK) needs an endpoint that signs its own responses
//! and answers Engage's polling actions, which the callback contract cannot do.
//!
//! Settings (the provider entry): `domain` (the Engage account name, or the full API host) or
//! `apiBaseUrl`; `agentCategoryId`, `botCategoryId`, `botUserId` (one id or a list); optional
//! `queueCategories` (queue name → agent category id), `sourceId`, `channel`, `agentName`.
//!
//! Secret (JSON): `{"accessToken": "<API access token>", "webhookSecret": "<the webhook's
//! Secret>", "verifyToken": "<the webhook's Verification Token>"}`.
//!
//! What is verified and what is assumed: `docs/providers/engage.md`. Every assumption of this
//! module sits in the `assumed` module below.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::kit::settings;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, path_segment,
};
use crate::config::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::{self, DeliveryError};
use crate::domain::{Agent, EndReason, TranscriptEntry};
use crate::secrets::Secret;

/// The header Engage puts the webhook's secret in (header lookups are lower case).
pub const SECRET_HEADER: &str = "x-dimelo-secret";
/// The API host of historical (non-North-American) accounts: `{account}.api.engagement.dimelo.com`.
/// North-American accounts use `{account}.api.digital.ringcentral.com` (give it as `domain` or
/// `apiBaseUrl`).
pub const DEFAULT_API_HOST_SUFFIX: &str = "api.engagement.dimelo.com";
/// Every REST path starts with the API version.
const API_PREFIX: &str = "/1.0";
/// The repeated parameter of `update_categories` (Rails array syntax; reqwest percent-encodes
/// the brackets, which Rails decodes).
const THREAD_CATEGORY_PARAM: &str = "thread_category_ids[]";
/// The largest page Engage lists (`limit`, default 30, max 150).
const MAX_PAGE: &str = "150";
/// The longest `hub.challenge` echoed back (Engage sends a short random string).
const MAX_CHALLENGE_LEN: usize = 1024;

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
};

/// One id or several (`botUserId: abc` or `botUserId: [abc, def]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The provider entry's Engage fields. Optional here so that a missing one is reported with its
/// name; unknown keys are refused so that a misspelt optional setting is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EngageSettings {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    agent_category_id: Option<String>,
    #[serde(default)]
    bot_category_id: Option<String>,
    #[serde(default)]
    queue_categories: BTreeMap<String, String>,
    #[serde(default)]
    bot_user_id: Option<OneOrMany>,
    #[serde(default)]
    source_id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    agent_name: Option<String>,
}

pub struct EngageProvider {
    /// Scheme and host, without `/1.0`.
    api_base: String,
    access_token: String,
    webhook_secret: Vec<u8>,
    verify_token: Vec<u8>,
    agent_category: String,
    bot_category: String,
    queue_categories: BTreeMap<String, String>,
    bot_users: Vec<String>,
    source_id: Option<String>,
    channel: Option<String>,
    agent_name: Option<String>,
    http: reqwest::Client,
}

impl EngageProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let settings: EngageSettings = settings::parse(&config.settings)?;
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
        let bot_users: Vec<String> = match settings.bot_user_id {
            None => Vec::new(),
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
        }
        .into_iter()
        .filter_map(|id| non_empty(Some(id)))
        .collect();
        if bot_users.is_empty() {
            return Err(ProviderSetupError::setting(
                "botUserId",
                "is required for an engage provider (the Engage user the bot answers as)",
            ));
        }
        let api_base =
            api_base(settings.api_base_url, settings.domain).map_err(|m| ProviderSetupError::setting("domain", m))?;
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(e.to_string()))
        };
        let access_token = field("accessToken")?;
        let webhook_secret = field("webhookSecret")?.into_bytes();
        let verify_token = field("verifyToken")?.into_bytes();
        if webhook_secret.is_empty() || verify_token.is_empty() {
            return Err(ProviderSetupError::Config(
                "the engage secret's webhookSecret and verifyToken must not be empty".into(),
            ));
        }
        Ok(EngageProvider {
            api_base,
            access_token,
            webhook_secret,
            verify_token,
            agent_category,
            bot_category,
            queue_categories,
            bot_users,
            source_id: non_empty(settings.source_id),
            channel: non_empty(settings.channel),
            agent_name: non_empty(settings.agent_name),
            http,
        })
    }

    /// One API call with the access token as a bearer token (Engage also accepts an
    /// `access_token` parameter; the header keeps the token out of URLs and logs). Parameters
    /// travel in the query string, as the OpenAPI description declares them.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, DeliveryError> {
        let now = Utc::now();
        let mut req = self
            .http
            .request(method, format!("{}{API_PREFIX}{path}", self.api_base))
            .bearer_auth(&self.access_token);
        if !query.is_empty() {
            req = req.query(query);
        }
        let resp = req.send().await.map_err(delivery::transport)?;
        delivery::check(resp, now).await
    }

    async fn thread(&self, thread_id: &str) -> Result<Thread, DeliveryError> {
        let path = format!("/content_threads/{}", path_segment(thread_id));
        let resp = self.call(Method::GET, &path, &[]).await?;
        resp.json::<Thread>()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Engage thread {thread_id}: {e}")))
    }

    /// Sets the thread's categories to `target`, unless they already are.
    async fn set_thread_categories(
        &self,
        thread_id: &str,
        current: &[String],
        target: &[String],
    ) -> Result<(), DeliveryError> {
        let before: BTreeSet<&str> = current.iter().map(String::as_str).collect();
        let after: BTreeSet<&str> = target.iter().map(String::as_str).collect();
        if before == after {
            return Ok(());
        }
        let path = format!("/content_threads/{}/update_categories", path_segment(thread_id));
        let query: Vec<(&str, &str)> = target.iter().map(|c| (THREAD_CATEGORY_PARAM, c.as_str())).collect();
        match self.call(Method::PUT, &path, &query).await {
            Err(DeliveryError::Permanent {
                status: Some(status),
                message,
            }) if assumed::is_transient_conflict(status) => Err(DeliveryError::Retryable {
                status: Some(status),
                retry_after: None,
                message,
            }),
            other => other.map(drop),
        }
    }

    /// Closes, or cancels when it has no agent reply, every intervention an agent still holds on
    /// the thread. Refusals (no permission, already closed or closing) are logged, not retried:
    /// the thread is back with the bot either way.
    async fn release_interventions(&self, thread_id: &str) -> Result<(), DeliveryError> {
        let listed = self
            .call(
                Method::GET,
                "/interventions",
                &[("thread_id", thread_id), ("limit", MAX_PAGE)],
            )
            .await;
        let resp = match listed {
            Ok(resp) => resp,
            Err(e @ DeliveryError::Retryable { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "Engage interventions of the thread could not be listed; none closed");
                return Ok(());
            }
        };
        let list: InterventionList = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Engage interventions: {e}")))?;
        for intervention in list.records.unwrap_or_default() {
            if intervention.closed == Some(true) {
                continue;
            }
            let Some(id) = intervention.id.as_deref().filter(|id| !id.is_empty()) else {
                continue;
            };
            if intervention.user_id.as_deref().is_some_and(|u| self.is_bot_user(u)) {
                continue;
            }
            let segment = path_segment(id);
            let result = if assumed::has_agent_replies(intervention.user_replies_count) {
                self.call(Method::PUT, &format!("/interventions/{segment}/close"), &[])
                    .await
            } else {
                self.call(Method::DELETE, &format!("/interventions/{segment}/cancel"), &[])
                    .await
            };
            match result {
                Ok(_) => {}
                Err(e @ DeliveryError::Retryable { .. }) => return Err(e),
                Err(e) => tracing::warn!(intervention_id = id, error = %e, "Engage intervention left open"),
            }
        }
        Ok(())
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

    /// One webhook event, normalized; `None` for what does not concern a handover.
    fn event(&self, e: &WebhookEvent) -> Option<ProviderEvent> {
        let resource = e.resource.as_ref()?;
        let meta = resource.metadata.as_ref();
        if let Some(expected) = &self.source_id
            && let Some(actual) = meta_str(meta, "source_id")
            && actual != *expected
        {
            return None;
        }
        let kind = self.kind_of(e.kind.as_deref().unwrap_or_default(), e.user_id.as_ref(), meta)?;
        Some(ProviderEvent {
            event_id: id_of(e.id.as_ref())?,
            conversation_id: assumed::thread_of(resource)?,
            kind,
        })
    }

    fn kind_of(
        &self,
        event_type: &str,
        event_user: Option<&Value>,
        meta: Option<&Map<String, Value>>,
    ) -> Option<ProviderEventKind> {
        match event_type {
            // Fired for every reply written in Engage, the bot's included.
            "content.replied" => {
                let author = assumed::reply_author(event_user, meta)?;
                if self.is_bot_user(&author) {
                    return None;
                }
                let message = assumed::reply_message(meta)?;
                Some(ProviderEventKind::AgentMessage {
                    agent: Some(self.agent(author)),
                    message,
                })
            }
            // The intervention's `user_id` is its agent (documented metadata); the bot's own
            // interventions (opened for statistics) are not a join.
            "intervention.opened" | "intervention.assigned" | "intervention.user_updated" => {
                let agent = meta_str(meta, "user_id").or_else(|| id_of(event_user))?;
                if self.is_bot_user(&agent) {
                    return None;
                }
                Some(ProviderEventKind::AgentJoined {
                    agent: self.agent(agent),
                })
            }
            "intervention.closed" => {
                let owner = meta_str(meta, "user_id");
                if owner.as_deref().is_some_and(|o| self.is_bot_user(o)) {
                    return None;
                }
                Some(ProviderEventKind::ConversationClosed)
            }
            t if assumed::THREAD_LOCK_EVENTS.contains(&t) => Some(ProviderEventKind::ConversationClosed),
            _ => None,
        }
    }
}

/// Everything this adapter relies on that RingCentral's documentation does not state outright.
/// Each item is listed, with what is known, in `docs/providers/engage.md` ("Assumed").
mod assumed {
    use serde_json::{Map, Value};

    use super::{Resource, id_of, meta_str};
    use crate::domain::Message;

    /// Events that lock a thread. The events page lists them, without a payload: the thread is
    /// taken from `metadata.thread_id`, else from the resource when the resource is the thread.
    pub(super) const THREAD_LOCK_EVENTS: &[&str] = &["content.thread_closed", "content.thread_auto_closed"];

    /// Shown in the bot's copy of an agent reply that had attachments: the webhook only says
    /// `has_attachment: true` (the customer receives the files in Engage's own channel).
    pub(super) const ATTACHMENT_NOTE: &str = "[attachment]";

    /// The thread an event is about.
    pub(super) fn thread_of(resource: &Resource) -> Option<String> {
        let meta = resource.metadata.as_ref();
        meta_str(meta, "thread_id").or_else(|| {
            resource
                .kind
                .as_deref()
                .is_some_and(|t| t.contains("thread"))
                .then(|| id_of(resource.id.as_ref()))
                .flatten()
        })
    }

    /// Who wrote a reply: the event's `user_id` (documented as present for events an agent
    /// triggered), else the content's `creator_id` (documented as "the creator of the content").
    /// That the bot's own API replies carry the bot user's id there, so that `botUserId` filters
    /// them out, is assumed. A reply without either is not attributed to an agent.
    pub(super) fn reply_author(event_user: Option<&Value>, meta: Option<&Map<String, Value>>) -> Option<String> {
        id_of(event_user).or_else(|| meta_str(meta, "creator_id"))
    }

    /// The text of a reply: `metadata.body`, turned into text when `body_input_format` is
    /// `html`, with a note when it had attachments. `None` when there is nothing to show.
    pub(super) fn reply_message(meta: Option<&Map<String, Value>>) -> Option<Message> {
        let html = meta_str(meta, "body_input_format").is_some_and(|f| f.eq_ignore_ascii_case("html"));
        let text = meta_str(meta, "body")
            .map(|b| {
                if html {
                    crate::providers::kit::text::html_to_text(&b).text
                } else {
                    b
                }
            })
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let has_attachment = meta
            .and_then(|m| m.get("has_attachment"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let text = match (text, has_attachment) {
            (Some(t), true) => format!("{t}\n{ATTACHMENT_NOTE}"),
            (Some(t), false) => t,
            (None, true) => ATTACHMENT_NOTE.to_owned(),
            (None, false) => return None,
        };
        Some(Message::text(text))
    }

    /// A 409 from `update_categories` means "already being categorised": another change is under
    /// way, so trying again shortly is expected to succeed.
    pub(super) fn is_transient_conflict(status: u16) -> bool {
        status == 409
    }

    /// An intervention can only be closed with agent replies, and only cancelled without; the
    /// intervention's `user_replies_count` is read as that count.
    pub(super) fn has_agent_replies(user_replies_count: Option<u64>) -> bool {
        user_replies_count.unwrap_or(0) > 0
    }

    /// `GET /status?category_ids[]=…` is read as "agents having that category as a skill", and an
    /// agent counts as free on a channel when `status == "available"` and `busyness != "full"`
    /// (the transfer guide's rule).
    pub(super) fn free(status: Option<&str>, busyness: Option<&str>) -> bool {
        status == Some("available") && busyness != Some("full")
    }
}

/// The thread fields used here (`Thread` in the OpenAPI description).
#[derive(Debug, Deserialize)]
struct Thread {
    #[serde(default)]
    source_id: Option<String>,
    #[serde(default)]
    closed: Option<bool>,
    #[serde(default)]
    thread_category_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct InterventionList {
    #[serde(default)]
    records: Option<Vec<InterventionRecord>>,
}

#[derive(Debug, Deserialize)]
struct InterventionRecord {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    closed: Option<bool>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_replies_count: Option<u64>,
}

/// One entry of `GET /status` (`AgentStatus`).
#[derive(Debug, Deserialize)]
struct AgentStatus {
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    channels: Option<Vec<AgentChannel>>,
}

#[derive(Debug, Deserialize)]
struct AgentChannel {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    busyness: Option<String>,
}

/// The webhook envelope: `{id, domain_id, events[]}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    events: Vec<WebhookEvent>,
}

#[derive(Debug, Deserialize)]
struct WebhookEvent {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    resource: Option<Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// An id given as a string or a number (the events page types resource ids as integers, its
/// examples show strings).
fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn meta_str(meta: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    id_of(meta?.get(key))
}

/// The API base URL: `apiBaseUrl` as given (a trailing `/1.0` is dropped), else from `domain`:
/// an account name (`acme` → `https://acme.api.engagement.dimelo.com`) or a full API host
/// (`acme.api.digital.ringcentral.com`).
fn api_base(api_base_url: Option<String>, domain: Option<String>) -> Result<String, String> {
    if let Some(url) = non_empty(api_base_url) {
        let url = url.trim_end_matches('/');
        let url = url.strip_suffix(API_PREFIX).unwrap_or(url).trim_end_matches('/');
        return Ok(url.to_owned());
    }
    let Some(domain) = non_empty(domain) else {
        return Err("is required for an engage provider (or set apiBaseUrl)".into());
    };
    let d = domain.to_ascii_lowercase();
    let d = d.strip_prefix("https://").unwrap_or(&d).trim_end_matches('/');
    if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(format!("{domain:?} is not an Engage account name or API host"));
    }
    if d.contains('.') {
        Ok(format!("https://{d}"))
    } else {
        Ok(format!("https://{d}.{DEFAULT_API_HOST_SUFFIX}"))
    }
}

/// `current` without the categories in `remove`, plus `add` (order kept, no duplicates): the
/// categorisation of a hand-over or a hand-back, leaving the thread's other categories alone.
fn recategorised(current: &[String], remove: &[&str], add: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(current.len() + 1);
    for c in current {
        if c != add && !remove.contains(&c.as_str()) && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out.push(add.to_owned());
    out
}

/// Whether any agent other than the bot is free on a channel (the configured one, when set).
fn availability_of(agents: &[AgentStatus], bot_users: &[String], channel: Option<&str>) -> AgentAvailability {
    let online = agents
        .iter()
        .filter(|a| !a.agent_id.as_ref().is_some_and(|id| bot_users.contains(id)))
        .flat_map(|a| a.channels.as_deref().unwrap_or_default())
        .filter(|c| channel.is_none_or(|want| c.id.as_deref() == Some(want) || c.name.as_deref() == Some(want)))
        .any(|c| assumed::free(c.status.as_deref(), c.busyness.as_deref()));
    if online {
        AgentAvailability::Online
    } else {
        AgentAvailability::NoneOnline
    }
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The validation request: `hub.mode=subscribe` and a challenge, echoed as the whole body
/// (the verify token was checked in `verify_callback`).
fn handshake(query: &[(String, String)]) -> Result<Callback, CallbackError> {
    if query_value(query, "hub.mode") != Some("subscribe") {
        return Err(CallbackError::Malformed(
            "hub.mode must be \"subscribe\" on a validation request".into(),
        ));
    }
    let challenge = query_value(query, "hub.challenge")
        .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN)
        .ok_or_else(|| CallbackError::Malformed("missing or oversized hub.challenge".into()))?;
    Ok(Callback::Challenge {
        status: 200,
        content_type: "text/plain",
        body: challenge.to_owned(),
    })
}

/// A closed intervention leaves the thread in the agent category: it must be put back in the
/// bot's category, or the customer's next message goes to agents again.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: false,
    hands_back_after_agent_close: true,
};

#[async_trait]
impl Provider for EngageProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Engage
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// `GET /1.0/status` for the agents having the queue's agent category (and reply permission
    /// on `sourceId`, when set): online when one of them, other than the bot, is available and
    /// not at full capacity on a channel (`channel`, when set).
    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        let mut query: Vec<(&str, &str)> = vec![("category_ids[]", self.agent_category_for(queue))];
        if let Some(source) = &self.source_id {
            query.push(("source_ids[]", source.as_str()));
        }
        let resp = self.call(Method::GET, "/status", &query).await?;
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

    /// Engage sends the webhook's secret verbatim in `X-Dimelo-Secret` on every request,
    /// compared in constant time; it covers neither the body nor a time (Engage offers nothing
    /// more), so replays are absorbed by idempotency on the event ids. The validation GET must
    /// also carry the verification token.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        let given = r
            .header(SECRET_HEADER)
            .ok_or_else(|| CallbackError::Unauthenticated("missing X-Dimelo-Secret header".into()))?;
        if !bool::from(given.as_bytes().ct_eq(&self.webhook_secret)) {
            return Err(CallbackError::Unauthenticated(
                "X-Dimelo-Secret does not match the webhook secret".into(),
            ));
        }
        if r.method.eq_ignore_ascii_case("GET") {
            let token = query_value(r.query, "hub.verify_token")
                .ok_or_else(|| CallbackError::Unauthenticated("missing hub.verify_token".into()))?;
            if !bool::from(token.as_bytes().ct_eq(&self.verify_token)) {
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
            return handshake(r.query);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Message;
    use lambda_http::http::{HeaderMap, HeaderValue};
    use serde_json::json;

    const SECRET: &str = "whsec-engage";
    const VERIFY: &str = "verify-me";
    const BOT_USER: &str = "4f4f3a08a90ffb27ee000583";
    const AGENT: &str = "52fcf5157aa58dd768000006";
    const THREAD: &str = "565739986b65795289000029";

    /// The `intervention.assigned` notification of Engage's "Event Types" page, as published.
    const ASSIGNED: &str = r#"{"id":"bd13a9d9baa8c20cf93046cd","domain_id":"48cc6703bdae1462ce06a555","events":[{"type":"intervention.assigned","id":"70d340997b8cd2c6f4dfee22","user_id":"4f4f3a08a90ffb27ee000583","resource":{"type":"intervention","id":"5464b5c04d61639684110000","metadata":{"custom_field_values":{"sample_field":null},"category_ids":["4f3951557aa58d1462017a8f","50895dbea90ffb3c35001ace"],"closed_at":null,"deferred_at":null,"identity_id":"557f003c7765620fdc0002cc","source_id":"56178fd27765625e06000a66","thread_id":"565739986b65795289000029","user_id":"52fcf5157aa58dd768000006"}},"issued_at":"2014-02-10T18:35:35.251Z"}]}"#;

    /// The `content.imported` notification of Engage's chatbot implementation guide.
    const IMPORTED: &str = r#"{"id":"50df05692c64ac7799f09a98","domain_id":"48cc6703bdae1462ce06a555","events":[{"type":"content.imported","id":"5950328914bf8a22305f446a","issued_at":"2017-06-25T22:00:41.339Z","resource":{"type":"answers/private_message","id":"5950328814bf8abf7f79e3cb","metadata":{"approval_required":false,"author_id":"536cbd9e7aa58d58f3000050","body":"This is just one more test email, sent automatically","body_input_format":"text","creator_id":null,"date":"2017-06-26","first_in_thread":false,"foreign_categories":[],"foreign_id":"1056855","has_attachment":false,"intervention_id":"541014eea90ffb3f600000ac","in_reply_to_author_id":"4dcceb1f2f1a692a2a000057","in_reply_to_id":"541015010f4ca111df0000b0","source_id":"4f97fbea7aa58d073900344f","status":"assigned","thread_id":"541014e17aa58d8ccf000024","thread_title":"This is a nagios check thread, please don't delete!","created_from":"synchronizer","private":true}}}]}"#;

    fn config(settings: Value) -> ProviderConfig {
        let Value::Object(settings) = settings else {
            panic!("settings are an object")
        };
        ProviderConfig {
            id: "engage".into(),
            kind: ProviderKind::Engage,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/engage".into(),
            settings,
        }
    }

    fn secret() -> Secret {
        Secret::from_json(r#"{"accessToken":"tok","webhookSecret":"whsec-engage","verifyToken":"verify-me"}"#).unwrap()
    }

    fn provider_with(settings: Value) -> Result<EngageProvider, ProviderSetupError> {
        EngageProvider::new(&config(settings), &secret(), reqwest::Client::new())
    }

    fn base_settings() -> Value {
        json!({
            "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
            "botUserId": BOT_USER
        })
    }

    fn provider() -> EngageProvider {
        provider_with(base_settings()).unwrap()
    }

    fn headers(secret: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = secret {
            h.insert(SECRET_HEADER, HeaderValue::from_str(s).unwrap());
        }
        h
    }

    fn verify(
        p: &EngageProvider,
        method: &str,
        secret: Option<&str>,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<(), CallbackError> {
        let h = headers(secret);
        let req = CallbackRequest {
            method,
            headers: &h,
            query,
            body,
        };
        p.verify_callback(&req, Utc::now())
    }

    fn parse_raw(
        p: &EngageProvider,
        method: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Callback, CallbackError> {
        let h = headers(Some(SECRET));
        let req = CallbackRequest {
            method,
            headers: &h,
            query,
            body,
        };
        p.parse_callback(&req)
    }

    fn events(p: &EngageProvider, body: &Value) -> Vec<ProviderEvent> {
        let bytes = serde_json::to_vec(body).unwrap();
        match parse_raw(p, "POST", &[], &bytes).unwrap() {
            Callback::Events(e) => e,
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn envelope(events: Vec<Value>) -> Value {
        json!({ "id": "req-1", "domain_id": "48cc6703bdae1462ce06a555", "events": events })
    }

    fn reply(event_id: &str, user: Option<&str>, body: &str) -> Value {
        let mut e = json!({
            "type": "content.replied", "id": event_id, "issued_at": "2026-11-25T09:05:00.000Z",
            "resource": { "type": "chat/message", "id": format!("c-{event_id}"), "metadata": {
                "approval_required": false, "author_id": "536cbd9e7aa58d58f3000099", "body": body,
                "body_input_format": "text", "creator_id": user, "first_in_thread": false,
                "has_attachment": false, "intervention_id": "541014eea90ffb3f600000ac",
                "in_reply_to_id": "541015010f4ca111df0000b0", "source_id": "56178fd27765625e06000a66",
                "status": "replied", "thread_id": THREAD, "private": true
            } }
        });
        if let Some(u) = user {
            e["user_id"] = json!(u);
        }
        e
    }

    fn intervention(kind: &str, event_id: &str, owner: Option<&str>) -> Value {
        json!({
            "type": kind, "id": event_id, "issued_at": "2026-11-25T09:04:00.000Z", "user_id": owner,
            "resource": { "type": "intervention", "id": "5464b5c04d61639684110000", "metadata": {
                "category_ids": ["cat-agent"], "closed_at": null, "deferred_at": null,
                "identity_id": "557f003c7765620fdc0002cc", "source_id": "56178fd27765625e06000a66",
                "thread_id": THREAD, "user_id": owner
            } }
        })
    }

    #[test]
    fn only_the_configured_secret_is_accepted() {
        let p = provider();
        let body = ASSIGNED.as_bytes();
        assert!(verify(&p, "POST", Some(SECRET), &[], body).is_ok());
        assert!(matches!(
            verify(&p, "POST", Some("another-secret"), &[], body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(
            verify(&p, "POST", Some("whsec-engag"), &[], body).is_err(),
            "a prefix is not the secret"
        );
        assert!(matches!(
            verify(&p, "POST", None, &[], body),
            Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
        ));
    }

    #[test]
    fn the_secret_does_not_cover_the_body() {
        // Engage sends the secret itself, not a signature of the body: a changed body with the
        // right secret passes verification (duplicates are absorbed by event-id idempotency).
        let p = provider();
        let tampered = ASSIGNED.replace("52fcf5157aa58dd768000006", "000000000000000000000000");
        assert!(verify(&p, "POST", Some(SECRET), &[], tampered.as_bytes()).is_ok());
    }

    #[test]
    fn the_validation_request_needs_the_secret_and_the_verify_token() {
        let p = provider();
        let good = q(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "abc123"),
            ("hub.verify_token", VERIFY),
        ]);
        assert!(verify(&p, "GET", Some(SECRET), &good, b"").is_ok());
        assert!(verify(&p, "GET", None, &good, b"").is_err());
        let wrong = q(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "abc123"),
            ("hub.verify_token", "nope"),
        ]);
        assert!(matches!(
            verify(&p, "GET", Some(SECRET), &wrong, b""),
            Err(CallbackError::Unauthenticated(_))
        ));
        let missing = q(&[("hub.mode", "subscribe"), ("hub.challenge", "abc123")]);
        assert!(verify(&p, "GET", Some(SECRET), &missing, b"").is_err());
    }

    #[test]
    fn the_challenge_is_echoed_as_the_whole_body() {
        let p = provider();
        let good = q(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "abc123"),
            ("hub.verify_token", VERIFY),
        ]);
        assert_eq!(
            parse_raw(&p, "GET", &good, b"").unwrap(),
            Callback::Challenge {
                status: 200,
                content_type: "text/plain",
                body: "abc123".into()
            }
        );
        let bad_mode = q(&[("hub.mode", "unsubscribe"), ("hub.challenge", "abc123")]);
        assert!(matches!(
            parse_raw(&p, "GET", &bad_mode, b""),
            Err(CallbackError::Malformed(_))
        ));
        let no_challenge = q(&[("hub.mode", "subscribe")]);
        assert!(matches!(
            parse_raw(&p, "GET", &no_challenge, b""),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn the_documented_assignment_is_an_agent_joining_the_thread() {
        let p = provider();
        let e = events(&p, &serde_json::from_str(ASSIGNED).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "70d340997b8cd2c6f4dfee22");
        assert_eq!(e[0].conversation_id, THREAD);
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: AGENT.into(),
                    name: None
                }
            },
            "the intervention's agent (metadata.user_id), not the user who assigned it"
        );
    }

    #[test]
    fn opened_and_reassigned_interventions_are_joins_unless_they_are_the_bots() {
        let p = provider();
        for kind in ["intervention.opened", "intervention.user_updated"] {
            let e = events(&p, &envelope(vec![intervention(kind, "ev-1", Some(AGENT))]));
            assert!(
                matches!(&e[0].kind, ProviderEventKind::AgentJoined { agent } if agent.id == AGENT),
                "{kind}"
            );
        }
        let e = events(
            &p,
            &envelope(vec![intervention("intervention.opened", "ev-2", Some(BOT_USER))]),
        );
        assert!(e.is_empty(), "the bot's own intervention");
        let e = events(&p, &envelope(vec![intervention("intervention.opened", "ev-3", None)]));
        assert!(e.is_empty(), "no agent named");
    }

    #[test]
    fn an_agent_reply_is_an_agent_message_and_the_bots_reply_is_not() {
        let p = provider_with(json!({
            "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
            "botUserId": [BOT_USER, "bot-2"], "agentName": "Support"
        }))
        .unwrap();
        let e = events(&p, &envelope(vec![reply("ev-1", Some(AGENT), "Hello, I'm Eva.")]));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "ev-1");
        assert_eq!(e[0].conversation_id, THREAD);
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentMessage {
                agent: Some(Agent {
                    id: AGENT.into(),
                    name: Some("Support".into())
                }),
                message: Message::text("Hello, I'm Eva.")
            }
        );
        assert!(events(&p, &envelope(vec![reply("ev-2", Some(BOT_USER), "Bot here")])).is_empty());
        assert!(events(&p, &envelope(vec![reply("ev-3", Some("bot-2"), "Bot here")])).is_empty());
        assert!(
            events(&p, &envelope(vec![reply("ev-4", None, "Nobody")])).is_empty(),
            "a reply without a user is not an agent's"
        );
        assert!(events(&p, &envelope(vec![reply("ev-5", Some(AGENT), "   ")])).is_empty());
    }

    #[test]
    fn the_author_falls_back_to_the_creator() {
        let p = provider();
        let mut r = reply("ev-1", None, "Hi");
        r["resource"]["metadata"]["creator_id"] = json!(AGENT);
        let e = events(&p, &envelope(vec![r]));
        assert!(matches!(&e[0].kind, ProviderEventKind::AgentMessage { agent: Some(a), .. } if a.id == AGENT));
    }

    #[test]
    fn html_replies_become_text_and_attachments_are_noted() {
        let p = provider();
        let mut r = reply(
            "ev-1",
            Some(AGENT),
            "<p>Hello &amp; welcome</p><p>Line&nbsp;2<br>Line 3 &#233;</p>",
        );
        r["resource"]["metadata"]["body_input_format"] = json!("html");
        let e = events(&p, &envelope(vec![r]));
        let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(message.text.as_deref(), Some("Hello & welcome\nLine 2\nLine 3 é"));

        let mut r = reply("ev-2", Some(AGENT), "");
        r["resource"]["metadata"]["has_attachment"] = json!(true);
        r["resource"]["metadata"]["body"] = Value::Null;
        let e = events(&p, &envelope(vec![r]));
        let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(message.text.as_deref(), Some("[attachment]"));
        assert_eq!(
            crate::providers::kit::text::html_to_text("a < b &unknown; c").text,
            "a < b &unknown; c"
        );
    }

    #[test]
    fn a_closed_intervention_or_locked_thread_ends_the_handover() {
        let p = provider();
        let e = events(
            &p,
            &envelope(vec![intervention("intervention.closed", "ev-1", Some(AGENT))]),
        );
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
        assert_eq!(e[0].conversation_id, THREAD);
        assert!(
            events(
                &p,
                &envelope(vec![intervention("intervention.closed", "ev-2", Some(BOT_USER))])
            )
            .is_empty(),
            "the bot closing its own intervention"
        );
        let locked = json!({
            "type": "content.thread_auto_closed", "id": "ev-3", "issued_at": "2026-11-25T10:00:00Z",
            "resource": { "type": "content_thread", "id": THREAD, "metadata": {} }
        });
        let e = events(&p, &envelope(vec![locked]));
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
        assert_eq!(e[0].conversation_id, THREAD, "the thread taken from the resource");
    }

    #[test]
    fn customer_contents_and_unknown_events_are_ignored() {
        let p = provider();
        assert!(events(&p, &serde_json::from_str(IMPORTED).unwrap()).is_empty());
        let other = envelope(vec![
            intervention("intervention.deferred", "ev-1", Some(AGENT)),
            intervention("task.completed", "ev-2", Some(AGENT)),
            json!({"type": "push_agent.connected", "id": "ev-3", "resource": {"type": "push_agent", "id": AGENT}}),
        ]);
        assert!(events(&p, &other).is_empty());
    }

    #[test]
    fn every_event_of_a_notification_is_read() {
        let p = provider();
        let e = events(
            &p,
            &envelope(vec![
                intervention("intervention.opened", "ev-1", Some(AGENT)),
                reply("ev-2", Some(AGENT), "Hi"),
                reply("ev-3", Some(BOT_USER), "ignored"),
            ]),
        );
        let ids: Vec<&str> = e.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["ev-1", "ev-2"]);
    }

    #[test]
    fn events_of_another_source_are_dropped_when_a_source_is_configured() {
        let p = provider_with(json!({
            "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
            "botUserId": BOT_USER, "sourceId": "src-mine"
        }))
        .unwrap();
        assert!(events(&p, &envelope(vec![reply("ev-1", Some(AGENT), "Hi")])).is_empty());
        let mut r = reply("ev-2", Some(AGENT), "Hi");
        r["resource"]["metadata"]["source_id"] = json!("src-mine");
        assert_eq!(events(&p, &envelope(vec![r])).len(), 1);
    }

    #[test]
    fn an_unreadable_notification_is_malformed() {
        let p = provider();
        assert!(matches!(
            parse_raw(&p, "POST", &[], b"not json"),
            Err(CallbackError::Malformed(_))
        ));
        assert!(matches!(
            parse_raw(&p, "POST", &[], br#"{"id":"x"}"#),
            Err(CallbackError::Malformed(_))
        ));
        // An event without an id or a thread cannot be traced: skipped, not refused.
        let mut r = reply("ev-1", Some(AGENT), "Hi");
        r["id"] = Value::Null;
        let mut t = reply("ev-2", Some(AGENT), "Hi");
        t["resource"]["metadata"]["thread_id"] = Value::Null;
        assert!(events(&p, &envelope(vec![r, t])).is_empty());
    }

    #[test]
    fn recategorising_swaps_only_the_handover_categories() {
        let current = vec!["other".to_owned(), "cat-bot".to_owned()];
        assert_eq!(
            recategorised(&current, &["cat-agent", "cat-bot"], "cat-agent"),
            ["other", "cat-agent"]
        );
        let back = vec!["other".to_owned(), "cat-agent".to_owned(), "cat-agent-nl".to_owned()];
        assert_eq!(
            recategorised(&back, &["cat-agent", "cat-agent-nl"], "cat-bot"),
            ["other", "cat-bot"]
        );
        assert_eq!(recategorised(&[], &["a"], "b"), ["b"]);
        let dup = vec!["x".to_owned(), "x".to_owned(), "b".to_owned()];
        assert_eq!(recategorised(&dup, &[], "b"), ["x", "b"]);
    }

    #[test]
    fn queues_map_to_their_agent_category() {
        let p = provider_with(json!({
            "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
            "botUserId": BOT_USER, "queueCategories": {"dutch": "cat-agent-nl"}
        }))
        .unwrap();
        assert_eq!(p.agent_category_for("dutch"), "cat-agent-nl");
        assert_eq!(p.agent_category_for("general"), "cat-agent");
        assert_eq!(p.agent_categories(), ["cat-agent", "cat-agent-nl"]);
    }

    #[test]
    fn the_documented_status_answer_means_agents_are_online() {
        let documented: Vec<AgentStatus> = serde_json::from_value(json!([{
            "agent_id": "4f4f3a08a90ffb27ee000583",
            "channels": [
                {"id": "55794bd9416472d4e8050000", "name": "Async", "status": "available", "busyness": "busy"},
                {"id": "55794bda416472d4e8060000", "name": "Realtime", "status": "available", "busyness": "unoccupied"}
            ],
            "custom_status": null
        }]))
        .unwrap();
        assert_eq!(availability_of(&documented, &[], None), AgentAvailability::Online);
        assert_eq!(
            availability_of(&documented, &[], Some("Realtime")),
            AgentAvailability::Online
        );
        assert_eq!(
            availability_of(&documented, &[BOT_USER.to_owned()], None),
            AgentAvailability::NoneOnline,
            "the bot user does not count"
        );
        let busy: Vec<AgentStatus> = serde_json::from_value(json!([
            {"agent_id": "a1", "channels": [{"id": "ch1", "name": "Async", "status": "available", "busyness": "full"}]},
            {"agent_id": "a2", "channels": [{"id": "ch1", "name": "Async", "status": "away", "busyness": "ok"}]},
            {"agent_id": "a3", "channels": [{"id": "ch1", "name": "Async", "status": null, "busyness": null}]},
            {"agent_id": "a4", "channels": [{"id": "ch2", "name": "Realtime", "status": "available", "busyness": "ok"}]}
        ]))
        .unwrap();
        assert_eq!(
            availability_of(&busy, &[], Some("Async")),
            AgentAvailability::NoneOnline
        );
        assert_eq!(availability_of(&busy, &[], Some("ch2")), AgentAvailability::Online);
        assert_eq!(availability_of(&[], &[], None), AgentAvailability::NoneOnline);
    }

    #[test]
    fn the_api_host_comes_from_the_domain_or_the_override() {
        assert_eq!(provider().api_base, "https://acme.api.engagement.dimelo.com");
        assert_eq!(
            api_base(None, Some("acme.api.digital.ringcentral.com".into())).unwrap(),
            "https://acme.api.digital.ringcentral.com"
        );
        assert_eq!(
            api_base(Some("http://127.0.0.1:9/1.0/".into()), Some("ignored".into())).unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            api_base(Some("http://127.0.0.1:9".into()), None).unwrap(),
            "http://127.0.0.1:9"
        );
        assert!(api_base(None, None).unwrap_err().contains("is required"));
        assert!(api_base(None, Some("acme/evil".into())).is_err());
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn missing_or_wrong_settings_are_named() {
        let err = |settings: Value| provider_with(settings).err().unwrap().to_string();
        assert!(
            err(json!({"domain": "acme", "botCategoryId": "b", "botUserId": "u"}))
                .contains("providers.agentCategoryId")
        );
        assert!(
            err(json!({"domain": "acme", "agentCategoryId": "a", "botUserId": "u"}))
                .contains("providers.botCategoryId")
        );
        assert!(
            err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b"}))
                .contains("providers.botUserId")
        );
        assert!(
            err(json!({"agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u"})).contains("providers.domain")
        );
        assert!(
            err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "a", "botUserId": "u"}))
                .contains("must differ")
        );
        assert!(
            err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u", "sourceID": "x"}))
                .contains("sourceID"),
            "a misspelt setting is refused"
        );
        assert!(
            err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u", "queueCategories": {"q": "b"}}))
                .contains("providers.queueCategories.q")
        );
    }

    #[test]
    fn a_missing_secret_field_is_a_setup_error() {
        let secret = Secret::from_json(r#"{"accessToken":"tok","webhookSecret":"s"}"#).unwrap();
        let err = EngageProvider::new(&config(base_settings()), &secret, reqwest::Client::new())
            .err()
            .unwrap();
        assert!(err.to_string().contains("verifyToken"), "{err}");
    }

    #[test]
    fn the_declared_capabilities_are_the_adapters() {
        assert_eq!(provider().capabilities(), CAPABILITIES);
    }
}

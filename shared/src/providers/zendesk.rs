//! Zendesk messaging through Sunshine Conversations (SunCo), the **embedded** shape.
//!
//! The user's conversation already lives in SunCo: the channel (Web Widget, WhatsApp, …) runs
//! through it, and the bot platform is one switchboard integration of the app. A handover is
//! therefore not a new conversation but a change of who is in control:
//!
//! - [`Provider::start`] passes switchboard control of the user's SunCo conversation (named by the
//!   bot platform in `handover.providerConversationId`) to the Zendesk Agent Workspace
//!   (`POST /v2/apps/{appId}/conversations/{id}/passControl`). Context for the agent travels in the
//!   pass-control `metadata`, which the Agent Workspace reads into the ticket (tags, ticket fields,
//!   `first_message_id`). No message is posted: SunCo has no agent-only note, so a summary message
//!   would also appear in the user's own chat, and the bot's history is already in the
//!   conversation.
//! - [`Provider::send_message`] does nothing: user and bot turns are already SunCo messages of
//!   that conversation (the user typed them in the SunCo channel, the bot posted them through its
//!   own integration). Posting them again would show every turn twice, to the agent and to the
//!   user.
//! - [`Provider::end`] hands control back: `passControl` to the bot's switchboard integration
//!   when one is configured, else `releaseControl` (the next user message then goes to the
//!   switchboard's default integration). When the agent closed the ticket, Zendesk has already
//!   moved control away from the Agent Workspace (that is how we learnt of the close), so nothing
//!   is sent.
//! - Callbacks are SunCo webhooks (`{app, webhook, events[]}`), authenticated by the webhook's
//!   shared secret sent verbatim in the `X-API-Key` header (no body signature, no timestamp).
//!   Agent messages are business-authored `conversation:message` events; the close is a
//!   `switchboard:passControl` / `switchboard:releaseControl` that takes control away from the
//!   Agent Workspace (Zendesk does this when the ticket is closed, with `reason: ticketClosed`).
//!   SunCo sends no "agent assigned" event, so the first agent message is the join.
//!
//! Sources and the assumptions this adapter makes are listed in `docs/providers/zendesk.md`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::kit::settings;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest,
};
use crate::config::{ProviderConfig, ProviderKind};
use crate::delivery::{self, DeliveryError};
use crate::domain::message::{Attachment, Button, Card, Location};
use crate::domain::{Agent, EndReason, Message, TranscriptEntry, render_transcript};
use crate::secrets::Secret;

/// The header SunCo puts the webhook's shared secret in (OpenAPI spec, tag Webhooks, section
/// "Securing Sunshine Conversations Webhooks"). HTTP header names are case-insensitive.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The integration type of the Agent Workspace switchboard integration Zendesk creates in every
/// account (Zendesk's own pass-control example targets it; its name is usually
/// `zd-agentWorkspace`). `passControl` accepts an id, a name or an integration type.
pub const DEFAULT_AGENT_WORKSPACE: &str = "zd:agentWorkspace";

/// Metadata of switchboard actions is limited to 4 KB (spec, `passControlBody.metadata`); we
/// stay a little below so key overhead and rounding never push a request over.
const METADATA_BUDGET: usize = 4000;

/// Our own keys in switchboard metadata. SunCo echoes the metadata in the resulting
/// `switchboard:*` webhooks, which is how we recognise our own actions there.
const META_HANDOVER_ID: &str = "handover_id";
const META_END_REASON: &str = "handover_end_reason";

/// The handover variable whose value, when present, becomes the Agent Workspace's
/// `first_message_id` (the first SunCo message the ticket shows; by default it shows the last
/// 10). Only the bot platform knows SunCo message ids, so it is the one to send it.
const FIRST_MESSAGE_ID_VARIABLE: &str = "firstMessageId";

/// `message.source.type` values that mark a message as written by a human agent, unless
/// configured otherwise (`agentSourceTypes`). See [`ZendeskProvider::agent_of`].
fn default_agent_source_types() -> Vec<String> {
    vec!["zd:agentWorkspace".to_owned()]
}

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
    // The Conversations API has no agent-presence endpoint.
    agent_availability: false,
};

/// Provider entry fields of a `kind: zendesk` provider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    app_id: Option<String>,
    /// Zendesk subdomain: the API host becomes `https://{subdomain}.zendesk.com/sc`.
    #[serde(default)]
    subdomain: Option<String>,
    /// Overrides the host derived from `subdomain` (legacy SunCo hosts `https://api.smooch.io`,
    /// `https://api.eu-1.smooch.io`, or a test server).
    #[serde(default)]
    api_base_url: Option<String>,
    /// Switchboard integration that receives control at the handover: id, name or type.
    #[serde(default)]
    agent_workspace_integration_id: Option<String>,
    /// Switchboard integration that gets control back at the end; none → `releaseControl`.
    #[serde(default)]
    bot_integration_id: Option<String>,
    #[serde(default)]
    agent_source_types: Option<Vec<String>>,
    /// What to write into which Zendesk ticket field: `{ "<what>": "<ticket field id>" }`.
    #[serde(default)]
    ticket_fields: BTreeMap<String, String>,
}

/// The SunCo switchboard adapter. Secret: `{"keyId": "…", "keySecret": "…", "webhookSecret": "…"}`
/// — an app-scoped Conversations API key (id and secret, sent as HTTP Basic credentials) and the
/// shared secret of the webhook that calls our callback URL.
pub struct ZendeskProvider {
    base: reqwest::Url,
    app_id: String,
    key_id: String,
    key_secret: String,
    webhook_secret: Vec<u8>,
    agent_workspace: String,
    bot_integration: Option<String>,
    agent_source_types: Vec<String>,
    ticket_fields: BTreeMap<String, String>,
    http: reqwest::Client,
}

fn setup(field: &str, message: impl std::fmt::Display) -> ProviderSetupError {
    ProviderSetupError::setting(field, message)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl ZendeskProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = settings::parse(&config.settings)?;
        let app_id = non_empty(s.app_id).ok_or_else(|| setup("appId", "is required for a zendesk provider"))?;
        let base_text = match (non_empty(s.api_base_url), non_empty(s.subdomain)) {
            (Some(url), _) => url,
            (None, Some(sub)) => {
                if !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(setup("subdomain", format!("{sub:?} is not a Zendesk subdomain")));
                }
                format!("https://{sub}.zendesk.com/sc")
            }
            (None, None) => {
                return Err(setup(
                    "subdomain",
                    "set subdomain (or apiBaseUrl) for a zendesk provider",
                ));
            }
        };
        let base = reqwest::Url::parse(&base_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host() && !u.cannot_be_a_base())
            .ok_or_else(|| {
                setup(
                    "apiBaseUrl",
                    format!("{base_text:?} must be an http(s) URL with a host"),
                )
            })?;
        let agent_source_types = s.agent_source_types.unwrap_or_else(default_agent_source_types);
        if agent_source_types.iter().any(|t| t.trim().is_empty()) {
            return Err(setup("agentSourceTypes", "entries must not be empty"));
        }
        if let Some((what, _)) = s.ticket_fields.iter().find(|(_, id)| id.trim().is_empty()) {
            return Err(setup(&format!("ticketFields.{what}"), "needs a ticket field id"));
        }
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(format!("secret of provider {:?}: {e}", config.id)))
        };
        let webhook_secret = field("webhookSecret")?;
        if webhook_secret.is_empty() {
            return Err(ProviderSetupError::Config(format!(
                "secret of provider {:?}: webhookSecret is empty",
                config.id
            )));
        }
        Ok(ZendeskProvider {
            base,
            app_id,
            key_id: field("keyId")?,
            key_secret: field("keySecret")?,
            webhook_secret: webhook_secret.into_bytes(),
            agent_workspace: non_empty(s.agent_workspace_integration_id)
                .unwrap_or_else(|| DEFAULT_AGENT_WORKSPACE.to_owned()),
            bot_integration: non_empty(s.bot_integration_id),
            agent_source_types,
            ticket_fields: s.ticket_fields,
            http,
        })
    }

    /// `{base}/v2/apps/{appId}/conversations/{conversationId}/{action}`, each id percent-encoded
    /// as one path segment.
    fn action_url(&self, conversation_id: &str, action: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked at construction: the base URL can be a base")
            .pop_if_empty()
            .extend([
                "v2",
                "apps",
                self.app_id.as_str(),
                "conversations",
                conversation_id,
                action,
            ]);
        url
    }

    async fn post(&self, url: reqwest::Url, body: &Value) -> Result<reqwest::Response, DeliveryError> {
        let now = Utc::now();
        let resp = self
            .http
            .post(url)
            .basic_auth(&self.key_id, Some(&self.key_secret))
            .json(body)
            .send()
            .await
            .map_err(delivery::transport)?;
        delivery::check(resp, now).await
    }

    /// The pass-control metadata that gives the agent context. Flat strings only, within the
    /// 4 KB limit; long texts (the rendered transcript last) are shortened to fit.
    fn handover_metadata(&self, r: &StartRequest<'_>) -> Map<String, Value> {
        let h = r.handover;
        let mut m = Map::new();
        m.insert(META_HANDOVER_ID.into(), json!(h.id));
        m.insert("handover_trigger".into(), json!(h.trigger.as_str()));
        m.insert("handover_queue".into(), json!(h.queue));
        if !h.tags.is_empty() {
            m.insert(ticket_tags_key().into(), json!(ticket_tags_value(&h.tags)));
        }
        if let Some(first) = h.variables.get(FIRST_MESSAGE_ID_VARIABLE).and_then(scalar) {
            m.insert("first_message_id".into(), json!(first));
        }
        // The transcript goes last: it is the longest and the first to be shortened.
        let (transcript, others): (Vec<_>, Vec<_>) =
            self.ticket_fields.iter().partition(|(what, _)| *what == "transcript");
        for (what, field_id) in others.into_iter().chain(transcript) {
            if let Some(value) = field_value(what, r) {
                insert_within_budget(&mut m, ticket_field_key(field_id), value);
            }
        }
        m
    }

    /// Whether the switchboard integration in a webhook is the Agent Workspace we pass control
    /// to: the configured value may be its id, name, integration id or integration type.
    fn is_agent_workspace(&self, si: &SwitchboardIntegration) -> bool {
        [&si.id, &si.name, &si.integration_id, &si.integration_type]
            .into_iter()
            .flatten()
            .any(|v| *v == self.agent_workspace)
    }

    /// THE assumption of this adapter: which business-authored message is a human agent's.
    ///
    /// Documented: `author.type` is `business` for everything not written by the end user, and
    /// the author `subtypes` value `agent` marks human agents (the spec says "available in
    /// responses only", so it may be missing from webhooks). Not documented: a webhook example
    /// of an agent's message. Public integrations recognise Agent Workspace replies by
    /// `message.source.type == "zd:agentWorkspace"`, which is the default of
    /// `agentSourceTypes`. Bot replies (`api:conversations` and the like), AI-agent and system
    /// activity messages are never taken for an agent's, so a bot that keeps talking while the
    /// user waits does not count as the agent joining.
    fn agent_of(&self, author: &Author, source: Option<&Source>) -> Option<Agent> {
        if author.kind != "business" {
            return None;
        }
        if author
            .subtypes
            .iter()
            .any(|s| matches!(s.as_str(), "AI" | "bot" | "activity"))
        {
            return None;
        }
        let by_subtype = author.subtypes.iter().any(|s| s == "agent");
        let by_source = source
            .and_then(|s| s.kind.as_deref())
            .is_some_and(|t| self.agent_source_types.iter().any(|a| a == t));
        let is_agent = by_subtype || by_source;
        if !is_agent {
            return None;
        }
        let name = non_empty(author.display_name.clone());
        Some(Agent {
            // SunCo does not identify the agent in webhooks; the display name is what we have.
            id: name.clone().unwrap_or_else(|| "zendesk-agent".to_owned()),
            name,
        })
    }

    /// One webhook event, normalized; `None` when it means nothing for a handover.
    fn normalize(&self, raw: &Value) -> Result<Option<ProviderEvent>, CallbackError> {
        let kind = raw.get("type").and_then(Value::as_str).unwrap_or_default();
        if !matches!(
            kind,
            "conversation:message"
                | "conversation:typing"
                | "switchboard:passControl"
                | "switchboard:releaseControl"
                | "switchboard:passControl:failure"
        ) {
            // conversation:read, postbacks, deliveries, offer/accept, user and client events…
            return Ok(None);
        }
        let event: RawEvent =
            serde_json::from_value(raw.clone()).map_err(|e| CallbackError::Malformed(format!("{kind} event: {e}")))?;
        let conversation = event
            .payload
            .conversation
            .ok_or_else(|| CallbackError::Malformed(format!("{kind} event without payload.conversation")))?;
        let p = event.payload.metadata.unwrap_or_default();
        let ours = p.contains_key(META_HANDOVER_ID);
        let ours_at_end = ours && p.contains_key(META_END_REASON);
        let kind = match kind {
            "conversation:message" => {
                let Some(msg) = event.payload.message else {
                    return Ok(None);
                };
                if msg.deleted == Some(true) || msg.activity.is_some() {
                    return Ok(None);
                }
                let Some(agent) = self.agent_of(&msg.author, msg.source.as_ref()) else {
                    return Ok(None);
                };
                let message = msg.content.as_ref().map(to_message).unwrap_or_default();
                if message.is_empty() {
                    return Ok(None);
                }
                ProviderEventKind::AgentMessage {
                    agent: Some(agent),
                    message,
                }
            }
            "conversation:typing" => {
                let Some(activity) = event.payload.activity else {
                    return Ok(None);
                };
                let agent = activity
                    .author
                    .as_ref()
                    .and_then(|a| self.agent_of(a, activity.source.as_ref()));
                match (activity.kind.as_deref(), agent) {
                    (Some("typing:start"), Some(agent)) => ProviderEventKind::AgentTyping { agent: Some(agent) },
                    _ => return Ok(None),
                }
            }
            "switchboard:passControl" => {
                let to_agents = conversation
                    .active_switchboard_integration
                    .as_ref()
                    .is_some_and(|si| self.is_agent_workspace(si));
                // Our own hand-over (echoed with our metadata) or any other pass to the Agent
                // Workspace is not an end; a pass anywhere else takes the agent away (Zendesk
                // passes control on when the ticket is closed, `reason: ticketClosed`).
                if to_agents || (ours && !ours_at_end) {
                    return Ok(None);
                }
                ProviderEventKind::ConversationClosed
            }
            // Nobody is in control any more: the agent side is over.
            "switchboard:releaseControl" => ProviderEventKind::ConversationClosed,
            // Our pass to the Agent Workspace failed after being accepted: nobody will join, so
            // control goes back to the bot rather than leaving the user waiting.
            "switchboard:passControl:failure" if ours && !ours_at_end => ProviderEventKind::ConversationClosed,
            _ => return Ok(None),
        };
        let event_id =
            non_empty(event.id).ok_or_else(|| CallbackError::Malformed(format!("{} event without id", raw["type"])))?;
        Ok(Some(ProviderEvent {
            event_id,
            conversation_id: conversation.id,
            kind,
        }))
    }
}

/// The metadata key the Agent Workspace reads ticket tags from. Assumed (see the docs page):
/// Zendesk documents that pass-control metadata can set ticket fields and tags, and public
/// integrations use this key.
fn ticket_tags_key() -> &'static str {
    "dataCapture.systemField.tags"
}

/// Tags as one string: Zendesk tags contain no spaces, so a space separates them.
fn ticket_tags_value(tags: &[String]) -> String {
    tags.iter()
        .map(|t| t.trim().replace(' ', "_"))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The metadata key for one ticket field (assumed like [`ticket_tags_key`]).
fn ticket_field_key(field_id: &str) -> String {
    format!("dataCapture.ticketField.{}", field_id.trim())
}

/// What `ticketFields` can name: a handover attribute, else a handover variable.
fn field_value(what: &str, r: &StartRequest<'_>) -> Option<String> {
    let h = r.handover;
    let value = match what {
        "summary" => h.summary.clone(),
        "queue" => Some(h.queue.clone()),
        "trigger" => Some(h.trigger.as_str().to_owned()),
        "language" => Some(h.language.clone()),
        "handoverId" => Some(h.id.clone()),
        "sessionId" => Some(r.session_id.to_owned()),
        "botId" => Some(r.bot_id.to_owned()),
        "channel" => r.channel.map(str::to_owned),
        "userName" => r.user.and_then(|u| u.name.clone()),
        "userEmail" => r.user.and_then(|u| u.email.clone()),
        "tags" => Some(h.tags.join(", ")),
        "transcript" => Some(render_transcript(r.transcript)),
        variable => h.variables.get(variable).and_then(scalar),
    };
    value.filter(|v| !v.trim().is_empty())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn json_len(m: &Map<String, Value>) -> usize {
    serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX)
}

fn truncate_chars(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(chars).collect();
    s.push('…');
    s
}

/// Inserts `key: value`, shortening the value until the whole metadata fits the budget;
/// leaves the key out when not even an empty value fits.
fn insert_within_budget(m: &mut Map<String, Value>, key: String, value: String) {
    let mut take = value.chars().count();
    loop {
        m.insert(key.clone(), Value::String(truncate_chars(&value, take)));
        let len = json_len(m);
        if len <= METADATA_BUDGET {
            return;
        }
        if take == 0 {
            m.remove(&key);
            return;
        }
        take = take.saturating_sub((len - METADATA_BUDGET).max(1));
    }
}

/// SunCo message content → our message. Text, images, files, locations, carousels and lists
/// map onto the domain type; forms become their labels; anything else is named, not dropped.
fn to_message(c: &Value) -> Message {
    let text = |k: &str| {
        c.get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
    };
    let kind = c.get("type").and_then(Value::as_str).unwrap_or("text");
    let mut m = Message::default();
    match kind {
        "text" | "image" | "file" => {
            m.text = text("text");
            if kind != "text"
                && let Some(url) = text("mediaUrl")
            {
                m.attachments.push(Attachment {
                    kind: kind.to_owned(),
                    url,
                    name: text("altText"),
                });
            }
        }
        "location" => {
            let coord = |k: &str| c.get("coordinates").and_then(|p| p.get(k)).and_then(Value::as_f64);
            if let (Some(latitude), Some(longitude)) = (coord("lat"), coord("long")) {
                m.location = Some(Location { latitude, longitude });
            }
            let place = c.get("location");
            let part = |k: &str| {
                place
                    .and_then(|p| p.get(k))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            let described: Vec<&str> = [part("name"), part("address")].into_iter().flatten().collect();
            if !described.is_empty() {
                m.text = Some(described.join(", "));
            }
        }
        "carousel" | "list" => {
            for item in c.get("items").and_then(Value::as_array).into_iter().flatten() {
                let s = |k: &str| {
                    item.get(k)
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                };
                let mut buttons = Vec::new();
                let mut replies = Vec::new();
                actions_into(item.get("actions"), &mut buttons, &mut replies);
                m.cards.push(Card {
                    title: s("title").unwrap_or_default(),
                    subtitle: s("description"),
                    image_url: s("mediaUrl"),
                    buttons,
                });
            }
        }
        "form" => {
            let labels: Vec<&str> = c
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("label").and_then(Value::as_str))
                .collect();
            let mut parts: Vec<String> = text("text").into_iter().collect();
            if !labels.is_empty() {
                parts.push(format!("[Form: {}]", labels.join(" | ")));
            }
            m.text = Some(parts.join("\n")).filter(|t| !t.is_empty());
        }
        "formResponse" => m.text = text("textFallback"),
        _ => {}
    }
    let mut buttons = Vec::new();
    let mut replies = Vec::new();
    actions_into(c.get("actions"), &mut buttons, &mut replies);
    m.buttons.extend(buttons);
    m.quick_replies.extend(replies);
    if m.is_empty() {
        m.text = text("text").or_else(|| Some(format!("[{kind} message]")));
    }
    m
}

/// SunCo actions: `reply` (quick reply), `link` / `webview` (URL), `postback` (payload),
/// `buy` / `locationRequest` (a titled button).
fn actions_into(actions: Option<&Value>, buttons: &mut Vec<Button>, replies: &mut Vec<String>) {
    for a in actions.and_then(Value::as_array).into_iter().flatten() {
        let s = |k: &str| {
            a.get(k)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        let Some(title) = s("text") else { continue };
        match a.get("type").and_then(Value::as_str).unwrap_or_default() {
            "reply" => replies.push(title),
            "link" | "webview" => buttons.push(Button {
                title,
                payload: None,
                url: s("uri"),
            }),
            "postback" => buttons.push(Button {
                title,
                payload: s("payload"),
                url: None,
            }),
            _ => buttons.push(Button {
                title,
                payload: None,
                url: None,
            }),
        }
    }
}

// --- Webhook payload (OpenAPI spec: `x-webhooks."Webhook Event"`), only what we read. ---

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    app: Option<AppRef>,
    events: Vec<Value>,
}

#[derive(Deserialize)]
struct AppRef {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Payload,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    conversation: Option<Conversation>,
    #[serde(default)]
    message: Option<WebhookMessage>,
    #[serde(default)]
    activity: Option<Activity>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conversation {
    id: String,
    #[serde(default)]
    active_switchboard_integration: Option<SwitchboardIntegration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SwitchboardIntegration {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    integration_id: Option<String>,
    #[serde(default)]
    integration_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage {
    author: Author,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    deleted: Option<bool>,
    /// Set on system messages such as "ticket closed".
    #[serde(default)]
    activity: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Author {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    subtypes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Source {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    author: Option<Author>,
    #[serde(default)]
    source: Option<Source>,
}

#[async_trait]
impl Provider for ZendeskProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Zendesk
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        Ok(AgentAvailability::Unknown)
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let conversation_id = h
            .provider_conversation_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DeliveryError::permanent(
                    "zendesk: the handover request carries no providerConversationId (the Sunshine Conversations conversation id)",
                )
            })?;
        let body = json!({
            "switchboardIntegration": self.agent_workspace,
            "metadata": self.handover_metadata(r),
        });
        // passControl to a target named by id or name is idempotent (switchboard guide), so a
        // retried start does not disturb a conversation already with the agents.
        self.post(self.action_url(conversation_id, "passControl"), &body)
            .await?;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id: conversation_id.to_owned(),
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

    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        if reason == EndReason::AgentClosed {
            // We only learn of a close when control has left the Agent Workspace already.
            return Ok(());
        }
        let metadata = json!({ META_HANDOVER_ID: c.handover_id, META_END_REASON: reason.as_str() });
        let (action, body) = match &self.bot_integration {
            Some(bot) => (
                "passControl",
                json!({ "switchboardIntegration": bot, "metadata": metadata }),
            ),
            None => ("releaseControl", json!({ "metadata": metadata })),
        };
        match self.post(self.action_url(&c.conversation_id, action), &body).await {
            // The conversation no longer exists: nothing is left in anyone's control.
            Err(DeliveryError::Permanent { status: Some(404), .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// SunCo sends the webhook's secret verbatim in `X-API-Key`; compared in constant time. The
    /// scheme covers neither the body nor a timestamp (SunCo offers nothing more).
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        let given = r
            .header(API_KEY_HEADER)
            .ok_or_else(|| CallbackError::Unauthenticated("missing X-API-Key header".into()))?;
        if bool::from(given.as_bytes().ct_eq(&self.webhook_secret)) {
            Ok(())
        } else {
            Err(CallbackError::Unauthenticated(
                "X-API-Key does not match the webhook secret".into(),
            ))
        }
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let envelope: Envelope = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        if let Some(app) = envelope.app.as_ref().and_then(|a| a.id.as_deref())
            && app != self.app_id
        {
            // Another app's webhook pointed at this URL: none of its conversations are ours.
            return Ok(Callback::Events(Vec::new()));
        }
        let mut events = Vec::new();
        for raw in &envelope.events {
            if let Some(event) = self.normalize(raw)? {
                events.push(event);
            }
        }
        Ok(Callback::Events(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Handover, Trigger, UserInfo};
    use lambda_http::http::{HeaderMap, HeaderValue};

    const SECRET: &str = "8564b3e6a8b20a4bdb68b05ce9bc5936";
    const APP: &str = "5ebee0975ac5304b664a12fa";

    fn provider_with(settings: Value) -> Result<ZendeskProvider, ProviderSetupError> {
        let Value::Object(settings) = settings else {
            panic!("object")
        };
        let config = ProviderConfig {
            id: "zd".into(),
            kind: ProviderKind::Zendesk,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/zd".into(),
            settings,
        };
        let secret =
            Secret::from_json(&json!({"keyId": "app_1", "keySecret": "shh", "webhookSecret": SECRET}).to_string())
                .unwrap();
        ZendeskProvider::new(&config, &secret, reqwest::Client::new())
    }

    fn provider() -> ZendeskProvider {
        provider_with(json!({"appId": APP, "subdomain": "acme", "botIntegrationId": "bot"})).unwrap()
    }

    fn headers(key: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(k) = key {
            // API Gateway hands header names over in lower case.
            h.insert("x-api-key", HeaderValue::from_str(k).unwrap());
        }
        h
    }

    fn verify(p: &ZendeskProvider, key: Option<&str>, body: &[u8]) -> Result<(), CallbackError> {
        let h = headers(key);
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body,
        };
        p.verify_callback(&req, Utc::now())
    }

    /// The message of the single agent message a webhook must produce.
    fn agent_message_of(p: &ZendeskProvider, body: &Value) -> Message {
        match parse(p, body).unwrap().into_iter().next().map(|e| e.kind) {
            Some(ProviderEventKind::AgentMessage { message, .. }) => message,
            other => panic!("expected an agent message, got {other:?}"),
        }
    }

    fn parse(p: &ZendeskProvider, body: &Value) -> Result<Vec<ProviderEvent>, CallbackError> {
        let h = headers(Some(SECRET));
        let bytes = serde_json::to_vec(body).unwrap();
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body: &bytes,
        };
        match p.parse_callback(&req)? {
            Callback::Events(e) => Ok(e),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn envelope(event: Value) -> Value {
        json!({
            "app": {"id": APP},
            "webhook": {"id": "5f4eaef81e3dcc117c7ba48a", "version": "v2"},
            "events": [event]
        })
    }

    fn conversation(active: Value) -> Value {
        json!({"id": "f52b01137aa6c250bc7251fa", "type": "personal", "activeSwitchboardIntegration": active})
    }

    fn agent_workspace() -> Value {
        json!({"id": "69b431db701f816b35d0929e", "name": "zd-agentWorkspace", "integrationId": "69b431da02e3021a49370df2", "integrationType": "zd:agentWorkspace"})
    }

    fn bot_integration() -> Value {
        json!({"id": "5eecde2dcdbffb08f5c3ed37", "name": "bot", "integrationId": "5f11a650e4e987667c2051d1", "integrationType": "custom"})
    }

    /// The spec's `conversationMessageEvent` example (a user's message).
    fn user_message_example() -> Value {
        envelope(json!({
            "id": "5f74a0d52b5315fc007e798a", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:message",
            "payload": {
                "conversation": conversation(bot_integration()),
                "message": {
                    "id": "5f74c7d84a146f3abd72af1d", "received": "2020-09-30T18:00:56.820Z",
                    "author": {"userId": "26508c10541a4b0ff472e5e2", "avatarUrl": "https://s3.amazonaws.com/avatar.jpg",
                               "displayName": "Steve Rogers", "type": "user",
                               "user": {"id": "26508c10541a4b0ff472e5e2", "externalId": "912382197", "authenticated": true}},
                    "content": {"type": "text", "text": "hello"},
                    "source": {"integrationId": "5ec69c6e12dda33be985cb1a", "originalMessageId": "374",
                               "originalMessageTimestamp": "2020-09-30T18:00:56.000Z", "type": "telegram"}
                }
            }
        }))
    }

    fn business_message(id: &str, source_type: &str, content: Value) -> Value {
        envelope(json!({
            "id": id, "createdAt": "2026-11-25T09:05:00.000Z", "type": "conversation:message",
            "payload": {
                "conversation": conversation(agent_workspace()),
                "message": {
                    "id": format!("msg-{id}"), "received": "2026-11-25T09:05:00.000Z",
                    "author": {"type": "business", "displayName": "Eva", "avatarUrl": "https://example.com/eva.png"},
                    "content": content,
                    "source": {"type": source_type}
                }
            }
        }))
    }

    fn switchboard(kind: &str, active: Option<Value>, extra: Value) -> Value {
        let mut conv = json!({"id": "f52b01137aa6c250bc7251fa", "type": "personal"});
        if let Some(a) = active {
            conv["activeSwitchboardIntegration"] = a;
        }
        let mut payload = json!({"conversation": conv});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        envelope(json!({"id": "sw-1", "createdAt": "2026-11-25T09:09:00.000Z", "type": kind, "payload": payload}))
    }

    // --- verification ---

    #[test]
    fn only_the_webhook_secret_in_x_api_key_is_accepted() {
        let p = provider();
        let body = serde_json::to_vec(&user_message_example()).unwrap();
        assert!(verify(&p, Some(SECRET), &body).is_ok(), "valid");
        assert!(matches!(
            verify(&p, Some("8564b3e6a8b20a4bdb68b05ce9bc5937"), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&p, Some(""), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&p, Some(format!("{SECRET}0").as_str()), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&p, None, &body),
            Err(CallbackError::Unauthenticated(_))
        ));
    }

    #[test]
    fn the_key_does_not_cover_the_body() {
        // SunCo's scheme is a shared key, not a signature: a changed body with the right key is
        // still accepted. Documented here so nobody believes otherwise.
        let p = provider();
        let mut tampered = user_message_example();
        tampered["events"][0]["payload"]["message"]["content"]["text"] = json!("tampered");
        assert!(verify(&p, Some(SECRET), &serde_json::to_vec(&tampered).unwrap()).is_ok());
        assert!(verify(&p, Some("wrong"), &serde_json::to_vec(&tampered).unwrap()).is_err());
    }

    // --- settings ---

    #[test]
    fn settings_are_checked_and_name_the_field() {
        let err = |v: Value| match provider_with(v) {
            Err(e @ ProviderSetupError::Setting(_)) => e.to_string(),
            Err(ProviderSetupError::Config(m)) => panic!("a setting error was reported as {m:?}"),
            Ok(_) => panic!("accepted"),
        };
        assert!(err(json!({"subdomain": "acme"})).contains("providers.appId"));
        assert!(err(json!({"appId": APP})).contains("providers.subdomain"));
        assert!(err(json!({"appId": APP, "subdomain": "acme.evil.com/x"})).contains("providers.subdomain"));
        assert!(err(json!({"appId": APP, "apiBaseUrl": "ftp://x"})).contains("providers.apiBaseUrl"));
        assert!(
            err(json!({"appId": APP, "subdomain": "acme", "ticketFields": {"summary": " "}}))
                .contains("providers.ticketFields.summary")
        );
    }

    #[test]
    fn urls_follow_the_zendesk_host_and_encode_ids() {
        let p = provider();
        assert_eq!(
            p.action_url("f52b01137aa6c250bc7251fa", "passControl").as_str(),
            "https://acme.zendesk.com/sc/v2/apps/5ebee0975ac5304b664a12fa/conversations/f52b01137aa6c250bc7251fa/passControl"
        );
        let legacy = provider_with(json!({"appId": APP, "apiBaseUrl": "https://api.eu-1.smooch.io/"})).unwrap();
        assert_eq!(
            legacy.action_url("a/b", "releaseControl").as_str(),
            "https://api.eu-1.smooch.io/v2/apps/5ebee0975ac5304b664a12fa/conversations/a%2Fb/releaseControl"
        );
        assert_eq!(p.agent_workspace, DEFAULT_AGENT_WORKSPACE);
    }

    // --- parsing ---

    #[test]
    fn user_messages_and_read_receipts_mean_nothing() {
        let p = provider();
        assert_eq!(parse(&p, &user_message_example()).unwrap(), vec![]);
        // The spec's conversationReadEvent example.
        let read = envelope(json!({
            "id": "5f74a0d52b5315fc007e798a", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:read",
            "payload": {"conversation": conversation(bot_integration()),
                        "activity": {"type": "conversation:read",
                                     "author": {"type": "user", "userId": "b5a0f8de1fd4198a96faa0af",
                                                "user": {"id": "b5a0f8de1fd4198a96faa0af", "authenticated": false}},
                                     "source": {"type": "web", "integrationId": "5ecff63ffc3ab25f4561c8a0"}}}
        }));
        assert_eq!(parse(&p, &read).unwrap(), vec![]);
        let merge = envelope(json!({"id": "x", "type": "user:merge", "payload": {"mergedUsers": {}}}));
        assert_eq!(parse(&p, &merge).unwrap(), vec![]);
    }

    #[test]
    fn an_agent_workspace_message_is_an_agent_message() {
        let p = provider();
        let events = parse(
            &p,
            &business_message(
                "ev-1",
                "zd:agentWorkspace",
                json!({"type": "text", "text": "Hi Ann, let me check."}),
            ),
        )
        .unwrap();
        assert_eq!(
            events,
            vec![ProviderEvent {
                event_id: "ev-1".into(),
                conversation_id: "f52b01137aa6c250bc7251fa".into(),
                kind: ProviderEventKind::AgentMessage {
                    agent: Some(Agent {
                        id: "Eva".into(),
                        name: Some("Eva".into())
                    }),
                    message: Message::text("Hi Ann, let me check."),
                },
            }]
        );
    }

    #[test]
    fn bot_ai_and_system_messages_are_not_the_agent() {
        let p = provider();
        let text = json!({"type": "text", "text": "I am the bot"});
        assert_eq!(
            parse(&p, &business_message("b1", "api:conversations", text.clone())).unwrap(),
            vec![]
        );
        let mut ai = business_message("b2", "zd:agentWorkspace", text.clone());
        ai["events"][0]["payload"]["message"]["author"]["subtypes"] = json!(["AI"]);
        assert_eq!(parse(&p, &ai).unwrap(), vec![]);
        let mut closed = business_message("b3", "zd:agentWorkspace", text.clone());
        closed["events"][0]["payload"]["message"]["activity"] = json!({"type": "ticket:closed"});
        assert_eq!(parse(&p, &closed).unwrap(), vec![]);
        // The documented author subtype marks an agent even without the source type.
        let mut by_subtype = business_message("b4", "api", text);
        by_subtype["events"][0]["payload"]["message"]["author"]["subtypes"] = json!(["agent"]);
        assert_eq!(parse(&p, &by_subtype).unwrap().len(), 1);
    }

    #[test]
    fn the_agent_source_types_setting_replaces_the_assumed_default() {
        let p = provider_with(json!({
            "appId": APP, "subdomain": "acme", "botIntegrationId": "bot",
            "agentSourceTypes": ["zd:customDesk"]
        }))
        .unwrap();
        let text = json!({"type": "text", "text": "Hello, Eva here"});
        let from_desk = parse(&p, &business_message("c1", "zd:customDesk", text.clone())).unwrap();
        assert_eq!(from_desk.len(), 1, "the configured source type marks the agent");
        assert!(matches!(from_desk[0].kind, ProviderEventKind::AgentMessage { .. }));
        assert_eq!(
            parse(&p, &business_message("c2", "zd:agentWorkspace", text)).unwrap(),
            vec![],
            "once configured, the default source type no longer marks the agent"
        );
        assert!(
            provider_with(json!({
                "appId": APP, "subdomain": "acme", "botIntegrationId": "bot", "agentSourceTypes": [" "]
            }))
            .is_err()
        );
    }

    #[test]
    fn agent_rich_content_is_kept() {
        let p = provider();
        let image = business_message(
            "r1",
            "zd:agentWorkspace",
            json!({"type": "image", "mediaUrl": "https://example.com/label.png", "altText": "label.png"}),
        );
        let message = agent_message_of(&p, &image);
        assert_eq!(message.attachments[0].url, "https://example.com/label.png");
        assert_eq!(message.attachments[0].kind, "image");
        let carousel = business_message(
            "r2",
            "zd:agentWorkspace",
            json!({"type": "carousel", "items": [
                {"title": "Red shoe", "description": "€ 40", "actions": [{"type": "link", "text": "Buy", "uri": "https://shop/red"}]},
                {"title": "Blue shoe", "actions": [{"type": "postback", "text": "Pick", "payload": "BLUE"}]}
            ]}),
        );
        let message = agent_message_of(&p, &carousel);
        assert_eq!(message.cards.len(), 2);
        assert_eq!(message.cards[0].buttons[0].url.as_deref(), Some("https://shop/red"));
        assert_eq!(message.cards[1].buttons[0].payload.as_deref(), Some("BLUE"));
        let replies = business_message(
            "r3",
            "zd:agentWorkspace",
            json!({"type": "text", "text": "Solved?", "actions": [{"type": "reply", "text": "Yes", "payload": "y"}]}),
        );
        let message = agent_message_of(&p, &replies);
        assert_eq!(message.quick_replies, vec!["Yes".to_owned()]);
        let location = business_message(
            "r4",
            "zd:agentWorkspace",
            json!({"type": "location", "coordinates": {"lat": 50.85, "long": 4.35}, "location": {"name": "Shop"}}),
        );
        let message = agent_message_of(&p, &location);
        assert_eq!(
            message.location,
            Some(Location {
                latitude: 50.85,
                longitude: 4.35
            })
        );
        let template = business_message("r5", "zd:agentWorkspace", json!({"type": "template", "template": {}}));
        let message = agent_message_of(&p, &template);
        assert_eq!(
            message.text.as_deref(),
            Some("[template message]"),
            "named, not dropped"
        );
    }

    #[test]
    fn agent_typing_is_passed_on_and_user_typing_is_not() {
        let p = provider();
        // The spec's conversationTypingEvent example is a user typing.
        let user = envelope(json!({
            "id": "5f74a0d52b5315fc007e798a", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:typing",
            "payload": {"conversation": conversation(bot_integration()),
                        "activity": {"type": "typing:start",
                                     "author": {"type": "user", "userId": "7283cdd6f586679a5fc43cfb",
                                                "user": {"id": "7283cdd6f586679a5fc43cfb", "authenticated": false}},
                                     "source": {"type": "web", "integrationId": "5ecff63ffc3ab25f4561c8a0"}}}
        }));
        assert_eq!(parse(&p, &user).unwrap(), vec![]);
        let mut agent = user.clone();
        agent["events"][0]["payload"]["activity"]["author"] = json!({"type": "business", "displayName": "Eva"});
        agent["events"][0]["payload"]["activity"]["source"] = json!({"type": "zd:agentWorkspace"});
        let events = parse(&p, &agent).unwrap();
        assert!(matches!(events[0].kind, ProviderEventKind::AgentTyping { .. }));
        agent["events"][0]["payload"]["activity"]["type"] = json!("typing:stop");
        assert_eq!(parse(&p, &agent).unwrap(), vec![]);
    }

    #[test]
    fn control_leaving_the_agent_workspace_is_the_close() {
        let p = provider();
        // The spec's switchboardPassControlEvent example: control now with the bot.
        let to_bot = switchboard(
            "switchboard:passControl",
            Some(bot_integration()),
            json!({"reason": "ticketClosed"}),
        );
        let events = parse(&p, &to_bot).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, ProviderEventKind::ConversationClosed);
        assert_eq!(events[0].event_id, "sw-1");
        assert_eq!(events[0].conversation_id, "f52b01137aa6c250bc7251fa");
        // The spec's switchboardReleaseControlEvent example: nobody in control.
        let released = switchboard("switchboard:releaseControl", None, json!({}));
        assert_eq!(
            parse(&p, &released).unwrap()[0].kind,
            ProviderEventKind::ConversationClosed
        );
    }

    #[test]
    fn our_own_pass_to_the_agents_is_not_an_event() {
        let p = provider();
        let echo = switchboard(
            "switchboard:passControl",
            Some(agent_workspace()),
            json!({"metadata": {"handover_id": "h-1", "handover_trigger": "explicit_request"}}),
        );
        assert_eq!(parse(&p, &echo).unwrap(), vec![]);
        // Even if the active integration were missing from the echo, our metadata tells.
        let bare = switchboard(
            "switchboard:passControl",
            None,
            json!({"metadata": {"handover_id": "h-1"}}),
        );
        assert_eq!(parse(&p, &bare).unwrap(), vec![]);
        // The echo of our own return to the bot is a close (the shell ignores it: already ended).
        let back = switchboard(
            "switchboard:passControl",
            Some(bot_integration()),
            json!({"metadata": {"handover_id": "h-1", "handover_end_reason": "user_cancelled"}}),
        );
        assert_eq!(parse(&p, &back).unwrap().len(), 1);
    }

    #[test]
    fn a_failed_pass_of_ours_ends_the_wait() {
        let p = provider();
        let ours = switchboard(
            "switchboard:passControl:failure",
            Some(bot_integration()),
            json!({"metadata": {"handover_id": "h-1"}, "error": {"code": "switchboard_invalid_target", "message": "Switchboard invalid target"}}),
        );
        assert_eq!(parse(&p, &ours).unwrap()[0].kind, ProviderEventKind::ConversationClosed);
        // The spec's example carries no metadata of ours: somebody else's failure.
        let theirs = switchboard(
            "switchboard:passControl:failure",
            Some(bot_integration()),
            json!({"error": {"code": "switchboard_invalid_target", "message": "Switchboard invalid target"}}),
        );
        assert_eq!(parse(&p, &theirs).unwrap(), vec![]);
    }

    #[test]
    fn every_event_of_a_batch_is_read_and_other_apps_are_ignored() {
        let p = provider();
        let mut batch = business_message("ev-1", "zd:agentWorkspace", json!({"type": "text", "text": "one"}));
        let second = business_message("ev-2", "zd:agentWorkspace", json!({"type": "text", "text": "two"}));
        let user = user_message_example();
        let events = batch["events"].as_array_mut().unwrap();
        events.push(user["events"][0].clone());
        events.push(second["events"][0].clone());
        let ids: Vec<String> = parse(&p, &batch).unwrap().into_iter().map(|e| e.event_id).collect();
        assert_eq!(ids, ["ev-1", "ev-2"]);
        batch["app"]["id"] = json!("another-app");
        assert_eq!(parse(&p, &batch).unwrap(), vec![]);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let p = provider();
        let h = headers(Some(SECRET));
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body: b"not json",
        };
        assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
        assert!(matches!(
            parse(&p, &json!({"app": {"id": APP}})),
            Err(CallbackError::Malformed(_))
        ));
        let no_conversation = envelope(json!({"id": "x", "type": "switchboard:releaseControl", "payload": {}}));
        assert!(matches!(parse(&p, &no_conversation), Err(CallbackError::Malformed(_))));
    }

    // --- the agent's context ---

    fn handover(variables: Value, tags: Vec<&str>) -> Handover {
        Handover {
            id: "h-9".into(),
            trigger: Trigger::ExplicitRequest,
            provider: "zd".into(),
            queue: "general".into(),
            language: "en".into(),
            variables: serde_json::from_value(variables).unwrap(),
            tags: tags.into_iter().map(str::to_owned).collect(),
            summary: Some("Parcel A-1 is late".into()),
            provider_conversation_id: Some("f52b01137aa6c250bc7251fa".into()),
            requested_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        }
    }

    fn entry(seq: u64, text: &str) -> TranscriptEntry {
        TranscriptEntry {
            seq,
            actor: crate::domain::Actor::User,
            timestamp: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            message: Message::text(text),
            agent: None,
            event_id: None,
        }
    }

    #[test]
    fn metadata_carries_tags_fields_and_fits_four_kilobytes() {
        let p = provider_with(json!({
            "appId": APP, "subdomain": "acme",
            "ticketFields": {"summary": "360001", "transcript": "360002", "orderId": "360003", "userEmail": "360004"}
        }))
        .unwrap();
        let h = handover(
            json!({"orderId": "A-1", "firstMessageId": "603012d7e0a3f9000c879b67"}),
            vec!["vip", "late parcel"],
        );
        let user = UserInfo {
            id: "u-7".into(),
            name: Some("Ann".into()),
            email: Some("ann@example.com".into()),
            locale: None,
        };
        let long: Vec<TranscriptEntry> = (1..=200).map(|i| entry(i, &"Where is my parcel? ".repeat(5))).collect();
        let r = StartRequest {
            delivery_id: "h-9-start",
            bot_id: "acme",
            session_id: "s-42",
            handover: &h,
            user: Some(&user),
            channel: Some("web"),
            transcript: &long,
        };
        let m = p.handover_metadata(&r);
        assert_eq!(m["handover_id"], "h-9");
        assert_eq!(m["dataCapture.systemField.tags"], "vip late_parcel");
        assert_eq!(m["first_message_id"], "603012d7e0a3f9000c879b67");
        assert_eq!(m["dataCapture.ticketField.360001"], "Parcel A-1 is late");
        assert_eq!(m["dataCapture.ticketField.360003"], "A-1");
        assert_eq!(m["dataCapture.ticketField.360004"], "ann@example.com");
        let transcript = m["dataCapture.ticketField.360002"].as_str().unwrap();
        assert!(transcript.starts_with("User: Where is my parcel?"));
        assert!(transcript.ends_with('…'), "shortened to fit");
        assert!(json_len(&m) <= METADATA_BUDGET);
        assert!(m.values().all(|v| v.is_string()), "flat");
    }
}

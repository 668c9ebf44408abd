//! Sparkcentral by Hootsuite (now Hootsuite Inbox 2.0) through its Virtual Agent API, the
//! **embedded** shape.
//!
//! The contact's conversation lives in Sparkcentral and the bot platform takes part in it as a
//! custom *virtual agent* (VA): Sparkcentral posts the VA's events (`CONVERSATION_STARTED`,
//! `CONVERSATION_DELEGATED`, `INBOUND_MESSAGE_RECEIVED`) to the VA's webhook, and the VA acts
//! through one REST call, `POST …/virtual-agent/conversations/{conversationId}` (send a message,
//! apply topics, add notes, complete). A handover is the VA completing its part:
//!
//! - [`Provider::start`] sends `complete: HANDOVER` for the conversation the bot platform names
//!   in `handover.providerConversationId`. The same call adds the handover's context as a
//!   conversation note (agents see notes, the contact does not), applies the queue's topics and
//!   the handover's tags as topics, and, when `handoverMessage` is set, sends the contact a last
//!   message from the VA: after the handover the VA can no longer write into the conversation.
//!   Where the conversation goes is the VA's hand-off rule in Sparkcentral (New queue, or the
//!   previous agent for delegation VAs); Sparkcentral has no queue parameter.
//! - [`Provider::send_message`] does nothing: the contact's and the bot's turns are already
//!   messages of that Sparkcentral conversation, which is what the agent opens.
//! - [`Provider::end`] does nothing: once handed over, the conversation belongs to Sparkcentral's
//!   agents. The VA API answers 404 for a conversation that is no longer the VA's, and no
//!   documented call takes a conversation back or resolves it on the agents' behalf.
//! - Callbacks are the VA's own webhook events. Sparkcentral posts them to the single webhook URL
//!   of the VA (the bot platform's), so the bot platform forwards each delivery unchanged (raw
//!   body and signature header) to our callback URL. `CONVERSATION_DELEGATED` (an agent gave the
//!   conversation to the VA) and `CONVERSATION_STARTED` (Sparkcentral assigned it to the inception
//!   VA) for a handed-over conversation mean control is back with the bot: the handover ends as
//!   closed by the agent. Contact messages are the bot's business and change nothing here.
//!
//! What Sparkcentral does **not** tell a virtual agent: that an agent picked the conversation up,
//! what agents write, when they type, or when they resolve it. So no `AgentJoined`,
//! `AgentMessage` or `AgentTyping` ever comes from this adapter, and the agent's turns cannot be
//! written back to the bot's history.
//!
//! Callbacks are signed `X-Sparkcentral-Signature` (Sparkcentral) or `X-Hootsuite-Signature`
//! (Hootsuite Inbox): lowercase hex HMAC-SHA256 of the raw body, keyed with the VA's shared
//! secret **hex-decoded** (the secret is shown as hex; the key is the bytes it encodes, not the
//! text). The body's `timestamp` must be recent (Sparkcentral recommends 5 minutes); retried
//! deliveries keep their `idempotencyKey`, which is the event id.
//!
//! Two generations of the same API, chosen by `region`:
//!
//! | `region` | host | token | VA calls |
//! |---|---|---|---|
//! | `us`, `eu` | `public-api.sparkcentral.com`, `public-api-eu.sparkcentral.com` | `POST /virtual-agent/oauth2/token` (client credentials, scope `client-read`) | `/virtual-agent/conversations/{id}` |
//! | `hootsuite` | `platform.hootsuite.com` | `POST /oauth2/token` (`grant_type=organization_app`, `organization_id`) | `/inbox/v1/virtual-agent/conversations/{id}` |
//!
//! Both take the client id and secret as HTTP Basic credentials and return a bearer token of
//! about an hour, cached per process and renewed a minute before it expires (or at once after
//! a 401, replaying the refused call once).
//!
//! Secret (Secrets Manager JSON): `{"clientId": "…", "clientSecret": "…", "sharedSecret":
//! "<the virtual agent's shared secret, hexadecimal>"}`.
//!
//! Sources and assumptions: `docs/providers/sparkcentral.md`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::kit::settings;
use super::memo::Memo;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, oauth, path_segment, sig,
};
use crate::config::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::{self, DeliveryError};
use crate::domain::{EndReason, Handover, TranscriptEntry};
use crate::secrets::Secret;

/// Signature header of Sparkcentral's own platform (header names are stored lowercase).
pub const SPARKCENTRAL_SIGNATURE_HEADER: &str = "x-sparkcentral-signature";
/// Signature header of Hootsuite Inbox 2.0.
pub const HOOTSUITE_SIGNATURE_HEADER: &str = "x-hootsuite-signature";

/// Sparkcentral's US and EU clusters, as Sparkcentral's virtual-agent sample names them.
pub const US_API: &str = "https://public-api.sparkcentral.com";
pub const EU_API: &str = "https://public-api-eu.sparkcentral.com";
/// Hootsuite Inbox 2.0, the only server of its OpenAPI description.
pub const HOOTSUITE_API: &str = "https://platform.hootsuite.com";

/// The virtual agent's webhook event types. Others (Sparkcentral may add some) are ignored.
pub const EVENT_CONVERSATION_STARTED: &str = "CONVERSATION_STARTED";
pub const EVENT_CONVERSATION_DELEGATED: &str = "CONVERSATION_DELEGATED";
pub const EVENT_INBOUND_MESSAGE_RECEIVED: &str = "INBOUND_MESSAGE_RECEIVED";

/// The `complete` value that gives the conversation to human agents (the other is `RESOLVED`).
const COMPLETE_HANDOVER: &str = "HANDOVER";

/// How old (or how far ahead of our clock) a callback's `timestamp` may be; Sparkcentral
/// recommends refusing events older than 5 minutes. `maxEventAgeSeconds` overrides it, for a
/// bot platform that forwards deliveries through a queue.
const DEFAULT_MAX_EVENT_AGE_SECS: u64 = 300;
const MAX_EVENT_AGE_CEILING_SECS: u64 = 86_400;

/// ASSUMPTION (no limit is documented for conversation notes): the handover note is cut to
/// this many characters, so that a very long summary cannot make the handover fail.
const MAX_NOTE_CHARS: usize = 4000;

/// Bound of the in-process memory of handovers whose outcome was unknown.
const AMBIGUOUS_MAX: usize = 10_000;

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
};

/// Which generation of the API a provider entry talks to.
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

/// Hootsuite Inbox's list of online agents.
const ONLINE_AGENTS_PATH: &str = "/inbox/v1/user-presence/online-agents";

/// The form body of the token request.
///
/// Hootsuite Inbox: documented (`grant_type=organization_app` and the `organization_id` linked
/// to the app; client credentials in HTTP Basic only, never in the body).
///
/// Sparkcentral (`us`, `eu`): ASSUMPTION, kept to this one place. No page we could read
/// documents the request; Sparkcentral's own virtual-agent sample fetches the token from
/// `{base}/virtual-agent/oauth2/token` with a standard OAuth2 client-credentials request for
/// scope `client-read`, and the OAuth library version it pins sends the client id and secret as
/// HTTP Basic credentials, which is what this adapter does.
fn token_grant(api: Api, organization_id: Option<&str>) -> Vec<(&'static str, &str)> {
    match api {
        Api::Sparkcentral => vec![("grant_type", "client_credentials"), ("scope", "client-read")],
        Api::Inbox => vec![
            ("grant_type", "organization_app"),
            ("organization_id", organization_id.unwrap_or_default()),
        ],
    }
}

/// Provider entry fields of a `kind: sparkcentral` provider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    /// `us` or `eu` (Sparkcentral), `hootsuite` (Hootsuite Inbox 2.0).
    #[serde(default)]
    region: Option<String>,
    /// Overrides the region's host (tests, proxies); the region still decides the API paths.
    #[serde(default)]
    api_base_url: Option<String>,
    /// The Hootsuite organization linked to the app (required with `region: hootsuite`).
    #[serde(default)]
    organization_id: Option<Id>,
    /// Queue name → Sparkcentral topic name(s) applied at the handover.
    #[serde(default)]
    queue_topics: BTreeMap<String, Topics>,
    /// Text the virtual agent sends the contact together with the handover.
    #[serde(default)]
    handover_message: Option<String>,
    /// Ask Hootsuite Inbox whether any agent is available before offering a handover.
    #[serde(default)]
    check_online_agents: bool,
    #[serde(default)]
    max_event_age_seconds: Option<u64>,
}

/// An id an operator may write quoted or not.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(s) => s.trim().to_owned(),
            Id::Number(n) => n.to_string(),
        }
    }
}

/// One topic name or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Topics {
    One(String),
    Many(Vec<String>),
}

impl Topics {
    fn into_vec(self) -> Vec<String> {
        match self {
            Topics::One(t) => vec![t],
            Topics::Many(ts) => ts,
        }
    }
}

pub struct SparkcentralProvider {
    api: Api,
    base_url: String,
    organization_id: Option<String>,
    client_id: String,
    client_secret: String,
    /// The shared secret's bytes (hex-decoded), the HMAC key of callbacks.
    shared_secret: Vec<u8>,
    queue_topics: BTreeMap<String, Vec<String>>,
    handover_message: Option<String>,
    check_online_agents: bool,
    max_event_age: Duration,
    /// Handover attempts whose outcome is unknown (transport error, timeout, 5xx): Sparkcentral
    /// may have applied them. If the next attempt of the same handover is answered 404 (the
    /// conversation is no longer the virtual agent's), the earlier one went through.
    ambiguous: Memo<()>,
    tokens: oauth::TokenCache,
    http: reqwest::Client,
}

fn setup(field: &str, message: impl std::fmt::Display) -> ProviderSetupError {
    ProviderSetupError::setting(field, message)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
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
/// for `body`: lowercase hex HMAC-SHA256 keyed with the hex-decoded shared secret. Used by
/// tests to sign callbacks; `None` when the secret is not hexadecimal.
pub fn signature(shared_secret_hex: &str, body: &[u8]) -> Option<String> {
    decode_shared_secret(shared_secret_hex).map(|key| hex::encode(sig::hmac_sha256(&key, body)))
}

impl SparkcentralProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = settings::parse(&config.settings)?;
        let region = non_empty(s.region).ok_or_else(|| {
            setup(
                "region",
                "is required for a sparkcentral provider: us or eu (Sparkcentral), hootsuite (Hootsuite Inbox)",
            )
        })?;
        let (api, default_base) = match region.to_ascii_lowercase().as_str() {
            "us" => (Api::Sparkcentral, US_API),
            "eu" => (Api::Sparkcentral, EU_API),
            "hootsuite" => (Api::Inbox, HOOTSUITE_API),
            _ => return Err(setup("region", format!("{region:?} is not one of us, eu, hootsuite"))),
        };
        let base_url = non_empty(s.api_base_url)
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| default_base.to_owned());
        let valid = reqwest::Url::parse(&base_url)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !valid {
            return Err(setup(
                "apiBaseUrl",
                format!("{base_url:?} is not an http(s) URL with a host"),
            ));
        }
        let organization_id = s.organization_id.map(Id::into_string).filter(|v| !v.is_empty());
        if api == Api::Inbox && organization_id.is_none() {
            return Err(setup(
                "organizationId",
                "is required with region hootsuite: the Hootsuite organization linked to the app",
            ));
        }
        if s.check_online_agents && api != Api::Inbox {
            return Err(setup(
                "checkOnlineAgents",
                "needs region hootsuite (the online-agents list is a Hootsuite Inbox API)",
            ));
        }
        let mut queue_topics = BTreeMap::new();
        for (queue, topics) in s.queue_topics {
            let list: Vec<String> = topics.into_vec().into_iter().map(|t| t.trim().to_owned()).collect();
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(setup(&format!("queueTopics.{queue}"), "needs one or more topic names"));
            }
            queue_topics.insert(queue, list);
        }
        let max_age_secs = match s.max_event_age_seconds {
            Some(0) => return Err(setup("maxEventAgeSeconds", "must be at least 1")),
            Some(n) => n.min(MAX_EVENT_AGE_CEILING_SECS),
            None => DEFAULT_MAX_EVENT_AGE_SECS,
        };
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(format!("secret of provider {:?}: {e}", config.id)))
        };
        let client_id = field("clientId")?;
        let client_secret = field("clientSecret")?;
        let shared_secret = decode_shared_secret(&field("sharedSecret")?).ok_or_else(|| {
            ProviderSetupError::Config(format!(
                "secret of provider {:?}: sharedSecret must be the virtual agent's shared secret exactly as \
                 Sparkcentral shows it (hexadecimal)",
                config.id
            ))
        })?;
        Ok(SparkcentralProvider {
            api,
            base_url,
            organization_id,
            client_id,
            client_secret,
            shared_secret,
            queue_topics,
            handover_message: non_empty(s.handover_message),
            check_online_agents: s.check_online_agents,
            max_event_age: Duration::seconds(i64::try_from(max_age_secs).unwrap_or(300)),
            http,
            ambiguous: Memo::new(AMBIGUOUS_MAX),
            tokens: oauth::TokenCache::default(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `…/virtual-agent/conversations/{conversationId}`, the id encoded as one path segment.
    fn conversation_path(&self, conversation_id: &str) -> String {
        format!(
            "{}/conversations/{}",
            self.api.virtual_agent_prefix(),
            path_segment(conversation_id)
        )
    }

    // ---- Auth ------------------------------------------------------------------------------

    /// A bearer token from the adapter's token cache (`oauth`), HTTP Basic client
    /// authentication with this generation's grant.
    async fn access_token(&self) -> Result<String, DeliveryError> {
        let grant = token_grant(self.api, self.organization_id.as_deref());
        oauth::basic_grant(
            &self.tokens,
            &self.http,
            &self.url(self.api.token_path()),
            &self.client_id,
            &self.client_secret,
            &grant,
        )
        .await
    }

    /// Drops a token the API refused, unless another call already replaced it.
    async fn forget_token(&self, refused: &str) {
        self.tokens.invalidate(refused).await;
    }

    /// One API call with the bearer token. A 401 means the token expired or was revoked: a new
    /// token is fetched and the call replayed once, as Hootsuite's authentication guide says.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, DeliveryError> {
        let url = self.url(path);
        let send = |token: String| {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            req.send()
        };
        let token = self.access_token().await?;
        let now = Utc::now();
        let resp = send(token.clone()).await.map_err(delivery::transport)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return delivery::check(resp, now).await;
        }
        self.forget_token(&token).await;
        let token = self.access_token().await?;
        let now = Utc::now();
        let resp = send(token).await.map_err(delivery::transport)?;
        delivery::check(resp, now).await
    }

    // ---- The handover ----------------------------------------------------------------------

    /// The `ConversationManipulation` that hands the conversation to human agents.
    fn handover_body(&self, h: &Handover) -> Value {
        let mut body = Map::new();
        if let Some(text) = &self.handover_message {
            body.insert("sendMessage".into(), json!({ "text": text }));
        }
        if let Some(note) = handover_note(h) {
            body.insert("applyConversationNotes".into(), json!([{ "text": note }]));
        }
        let topics = self.topics(h);
        if !topics.is_empty() {
            body.insert("applyTopics".into(), json!(topics));
        }
        body.insert("complete".into(), json!(COMPLETE_HANDOVER));
        Value::Object(body)
    }

    /// The queue's configured topics, then the handover's tags, each once. Sparkcentral applies
    /// only names that match an existing topic (case-insensitively) and ignores the rest.
    fn topics(&self, h: &Handover) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let from_queue = self.queue_topics.get(&h.queue).into_iter().flatten();
        for t in from_queue.chain(h.tags.iter()) {
            let t = t.trim();
            if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                out.push(t.to_owned());
            }
        }
        out
    }

    /// Replay protection, as Sparkcentral recommends: the signed body's `timestamp` (when the
    /// event was sent) must be recent, and not ahead of our clock by more than the same window.
    fn check_fresh(&self, body: &[u8], now: DateTime<Utc>) -> Result<(), CallbackError> {
        #[derive(Deserialize)]
        struct Stamp {
            #[serde(default)]
            timestamp: Option<String>,
        }
        let stamp: Stamp = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let text = stamp.timestamp.ok_or_else(|| {
            CallbackError::Unauthenticated("the event has no `timestamp`: a replay cannot be ruled out".into())
        })?;
        let sent = DateTime::parse_from_rfc3339(text.trim())
            .map_err(|_| CallbackError::Unauthenticated(format!("`timestamp` {text:?} is not an RFC 3339 time")))?
            .to_utc();
        if now - sent > self.max_event_age {
            return Err(CallbackError::Unauthenticated(format!(
                "the event was sent at {text}, more than {} s ago (replay window)",
                self.max_event_age.num_seconds()
            )));
        }
        if sent - now > self.max_event_age {
            return Err(CallbackError::Unauthenticated(format!(
                "the event's timestamp {text} is more than {} s ahead of our clock",
                self.max_event_age.num_seconds()
            )));
        }
        Ok(())
    }
}

/// Whether a failed call was refused because the conversation is unknown or no longer the
/// virtual agent's (documented 404).
fn is_not_assigned(e: &DeliveryError) -> bool {
    matches!(e, DeliveryError::Permanent { status: Some(404), .. })
}

/// Whether Sparkcentral may have applied a call that failed: no answer, a timeout or a server
/// error. A 429 was certainly refused.
fn is_ambiguous(e: &DeliveryError) -> bool {
    matches!(e, DeliveryError::Retryable { status, .. } if *status != Some(429))
}

/// The conversation note agents see: why the bot handed over and what it learnt. Only written
/// when there is something to say beyond the queue: a summary, variables or tags.
fn handover_note(h: &Handover) -> Option<String> {
    let summary = h.summary.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if summary.is_none() && h.variables.is_empty() && h.tags.is_empty() {
        return None;
    }
    let mut lines = vec![format!(
        "Handed over by the bot ({}, queue {})",
        h.trigger.as_str(),
        h.queue
    )];
    if let Some(s) = summary {
        lines.push(format!("Summary: {s}"));
    }
    for (name, value) in &h.variables {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        lines.push(format!("{name}: {text}"));
    }
    if !h.tags.is_empty() {
        lines.push(format!("Tags: {}", h.tags.join(", ")));
    }
    Some(shorten(&lines.join("\n"), MAX_NOTE_CHARS))
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The fields of a webhook event this adapter reads (`version` is 1 for every event so far;
/// `data` differs per type).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

/// Sparkcentral reports no agent events to a virtual agent: completing with HANDOVER is what
/// puts the agents in charge, so the start counts as the join.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: true,
    hands_back_after_agent_close: false,
};

#[async_trait]
impl Provider for SparkcentralProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sparkcentral
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.check_online_agents,
            ..CAPABILITIES
        }
    }

    /// Hootsuite Inbox's online agents (`checkOnlineAgents`): `Online` when at least one agent
    /// is `AVAILABLE`, `NoneOnline` when every online agent is `AWAY` or nobody is online. The
    /// list is the whole organization's (the API has no team filter), so the queue does not
    /// narrow it.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        if !self.check_online_agents {
            return Ok(AgentAvailability::Unknown);
        }
        let resp = self.call(reqwest::Method::GET, ONLINE_AGENTS_PATH, None).await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| DeliveryError::permanent(format!("unreadable online-agents answer: {e}")))?;
        let Some(agents) = v.get("agents").and_then(Value::as_array) else {
            return Ok(AgentAvailability::Unknown);
        };
        let available = agents
            .iter()
            .any(|a| a.get("userPresence").and_then(Value::as_str) == Some("AVAILABLE"));
        Ok(if available {
            AgentAvailability::Online
        } else {
            AgentAvailability::NoneOnline
        })
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
        let body = self.handover_body(h);
        let path = self.conversation_path(&conversation_id);
        let attempt_key = format!("{}|{}", self.base_url, r.delivery_id);
        // A token failure must not count as a handover whose outcome is unknown.
        self.access_token().await?;
        match self.call(reqwest::Method::POST, &path, Some(&body)).await {
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
        let given: Vec<&str> = [HOOTSUITE_SIGNATURE_HEADER, SPARKCENTRAL_SIGNATURE_HEADER]
            .into_iter()
            .filter_map(|name| r.header(name))
            .collect();
        if given.is_empty() {
            return Err(CallbackError::Unauthenticated(
                "missing X-Sparkcentral-Signature or X-Hootsuite-Signature header".into(),
            ));
        }
        let expected = sig::hmac_sha256(&self.shared_secret, r.body);
        if !given.iter().any(|g| sig::matches_hex(&expected, g)) {
            return Err(CallbackError::Unauthenticated(
                "the signature does not match the body".into(),
            ));
        }
        self.check_fresh(r.body, now)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let e: Envelope = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let kind = e
            .kind
            .ok_or_else(|| CallbackError::Malformed("missing field `type`".into()))?;
        if kind != EVENT_CONVERSATION_STARTED && kind != EVENT_CONVERSATION_DELEGATED {
            // `INBOUND_MESSAGE_RECEIVED`: the contact talking to the virtual agent, which is the
            // bot's business (and may race with our own handover). Types Sparkcentral adds later
            // are ignored, as it asks.
            return Ok(Callback::Events(Vec::new()));
        }
        let event_id = non_empty(e.idempotency_key)
            .ok_or_else(|| CallbackError::Malformed("missing field `idempotencyKey`".into()))?;
        let conversation_id = e
            .data
            .as_ref()
            .and_then(|d| d.get("conversationId"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing field `data.conversationId`".into()))?
            .to_owned();
        // The conversation is the virtual agent's again: the agents are done with it.
        Ok(Callback::Events(vec![ProviderEvent {
            event_id,
            conversation_id,
            kind: ProviderEventKind::ConversationClosed,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::handover::Trigger;
    use lambda_http::http::{HeaderMap, HeaderValue};

    /// A shared secret as Sparkcentral shows it: 32 bytes, hexadecimal.
    const SHARED: &str = "5e1f3c9a7b2d4e6f8091a2b3c4d5e6f70123456789abcdef0fedcba987654321";

    /// Sparkcentral's sample `CONVERSATION_STARTED` event (virtual-agent-api-example,
    /// `test/test_main.py`, picture URL left out), as compact JSON.
    const STARTED: &str = r#"{"timestamp":"2019-02-20T10:28:57.229144Z","idempotencyKey":"36bce710-87d1-4b4c-9299-c873c34fac64","version":1,"type":"CONVERSATION_STARTED","data":{"conversationId":"0-01e67a8c216-000-8c9ea98e","contactProfile":{"id":"0-01e639d0a57-000-516b9710","mediumContactProfileId":"2853168558034488","primaryIdentifier":"Johan","secondaryIdentifier":"","vip":false},"contactAttributes":[{"attribute":"smooch-rtm-browser-language","value":"en-GB","source":"MEDIUM"}],"medium":{"id":"smooch-rtm"},"channel":{"id":"0-01c6421333d-000-4a29abb0","name":"Demo Channel"}}}"#;
    /// HMAC-SHA256(hex-decoded SHARED, STARTED), computed independently (Python `hmac`).
    const STARTED_SIGNATURE: &str = "b932b688231c21c558991f4ccad4be0de26588c56e31cd96353ea0023fc522b0";
    /// The same HMAC keyed with the secret's *text*: what a receiver that forgets to decode the
    /// secret would compute. It must not be accepted.
    const STARTED_SIGNED_WITH_TEXT: &str = "dbd5a09dda7e834b24d1415f3a4ba3a6d34e6b828351844f0eb86b0f569bb6ba";

    fn sent_at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2019-02-20T10:28:57.229144Z")
            .unwrap()
            .to_utc()
    }

    fn config(settings: Value) -> ProviderConfig {
        ProviderConfig {
            id: "sc".into(),
            kind: ProviderKind::Sparkcentral,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/sc".into(),
            settings: settings.as_object().cloned().unwrap_or_default(),
        }
    }

    fn secret() -> Secret {
        Secret::from_json(
            &json!({ "clientId": "va-client", "clientSecret": "va-secret", "sharedSecret": SHARED }).to_string(),
        )
        .unwrap()
    }

    fn build(settings: Value) -> Result<SparkcentralProvider, ProviderSetupError> {
        SparkcentralProvider::new(&config(settings), &secret(), reqwest::Client::new())
    }

    fn provider() -> SparkcentralProvider {
        build(json!({ "region": "us" })).unwrap()
    }

    fn setup_error(settings: Value) -> String {
        match build(settings) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("the settings were accepted"),
        }
    }

    fn verify_at(
        p: &SparkcentralProvider,
        header: Option<(&'static str, &str)>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), CallbackError> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = header {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body,
        };
        p.verify_callback(&req, now)
    }

    fn parse(p: &SparkcentralProvider, body: &Value) -> Result<Vec<ProviderEvent>, CallbackError> {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = HeaderMap::new();
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: &bytes,
        };
        match p.parse_callback(&req)? {
            Callback::Events(e) => Ok(e),
            other => panic!("expected events, got {other:?}"),
        }
    }

    // --- signatures ---

    #[test]
    fn the_signature_is_hex_hmac_sha256_keyed_with_the_decoded_secret() {
        assert_eq!(
            signature(SHARED, STARTED.as_bytes()).as_deref(),
            Some(STARTED_SIGNATURE)
        );
        assert_eq!(signature("not hex", b"{}"), None);
        assert_eq!(
            decode_shared_secret(&format!(" {} ", SHARED.to_uppercase()))
                .unwrap()
                .len(),
            32
        );
        assert_eq!(decode_shared_secret(""), None);
        assert_eq!(decode_shared_secret("abc"), None, "odd length");
    }

    #[test]
    fn only_a_correct_signature_of_the_exact_body_is_accepted() {
        let p = provider();
        let body = STARTED.as_bytes();
        let now = sent_at() + Duration::seconds(1);
        for header in [SPARKCENTRAL_SIGNATURE_HEADER, HOOTSUITE_SIGNATURE_HEADER] {
            assert_eq!(
                verify_at(&p, Some((header, STARTED_SIGNATURE)), body, now),
                Ok(()),
                "{header}"
            );
        }
        let upper = STARTED_SIGNATURE.to_uppercase();
        assert_eq!(
            verify_at(&p, Some((SPARKCENTRAL_SIGNATURE_HEADER, upper.as_str())), body, now),
            Ok(())
        );

        let unauthenticated = |r: Result<(), CallbackError>| matches!(r, Err(CallbackError::Unauthenticated(_)));
        // Tampered body: one byte of the conversation id changed.
        let tampered = STARTED.replace("8c9ea98e", "8c9ea98f");
        assert!(unauthenticated(verify_at(
            &p,
            Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE)),
            tampered.as_bytes(),
            now
        )));
        // Re-serialised JSON is not the body that was signed.
        let reserialised = serde_json::to_vec_pretty(&serde_json::from_str::<Value>(STARTED).unwrap()).unwrap();
        assert_ne!(reserialised, body);
        assert!(unauthenticated(verify_at(
            &p,
            Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE)),
            &reserialised,
            now
        )));
        // The secret's text used as the key, and another secret altogether.
        assert!(unauthenticated(verify_at(
            &p,
            Some((HOOTSUITE_SIGNATURE_HEADER, STARTED_SIGNED_WITH_TEXT)),
            body,
            now
        )));
        let other = signature("00112233445566778899aabbccddeeff", body).unwrap();
        assert!(unauthenticated(verify_at(
            &p,
            Some((HOOTSUITE_SIGNATURE_HEADER, other.as_str())),
            body,
            now
        )));
        // No header, or garbage in it.
        assert!(unauthenticated(verify_at(&p, None, body, now)));
        assert!(unauthenticated(verify_at(
            &p,
            Some((SPARKCENTRAL_SIGNATURE_HEADER, "Wrong")),
            body,
            now
        )));
    }

    #[test]
    fn old_future_and_undated_events_are_refused() {
        let p = provider();
        let body = STARTED.as_bytes();
        let header = Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE));
        assert_eq!(verify_at(&p, header, body, sent_at() + Duration::seconds(299)), Ok(()));
        assert!(matches!(
            verify_at(&p, header, body, sent_at() + Duration::seconds(301)),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify_at(&p, header, body, sent_at() - Duration::seconds(301)),
            Err(CallbackError::Unauthenticated(_))
        ));
        let undated =
            br#"{"idempotencyKey":"k","version":1,"type":"CONVERSATION_STARTED","data":{"conversationId":"c"}}"#;
        let signed = signature(SHARED, undated).unwrap();
        assert!(matches!(
            verify_at(
                &p,
                Some((HOOTSUITE_SIGNATURE_HEADER, signed.as_str())),
                undated,
                sent_at()
            ),
            Err(CallbackError::Unauthenticated(_))
        ));
        // A forwarder with a queue may widen the window.
        let patient = build(json!({ "region": "us", "maxEventAgeSeconds": 900 })).unwrap();
        assert_eq!(
            verify_at(&patient, header, body, sent_at() + Duration::seconds(800)),
            Ok(())
        );
    }

    // --- parsing ---

    #[test]
    fn the_conversation_coming_back_to_the_virtual_agent_is_the_close() {
        let p = provider();
        let started: Value = serde_json::from_str(STARTED).unwrap();
        assert_eq!(
            parse(&p, &started).unwrap(),
            vec![ProviderEvent {
                event_id: "36bce710-87d1-4b4c-9299-c873c34fac64".into(),
                conversation_id: "0-01e67a8c216-000-8c9ea98e".into(),
                kind: ProviderEventKind::ConversationClosed,
            }]
        );
        // Hootsuite Inbox's `ConversationDelegatedEvent`, with the spec's example values.
        let delegated = json!({
            "timestamp": "2022-04-28T09:43:26.635984618Z", "idempotencyKey": "6ebc6a78-d9e9-48be-b172-51eda40b7af8",
            "version": 1, "type": "CONVERSATION_DELEGATED",
            "data": {
                "conversationId": "0ad42eef-a806-11eb-9642-f1ceb2f21def", "medium": { "id": "fb" },
                "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
                "language": "en",
                "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "mediumContactProfileId": "bb7b0f8f00cc989b97f0725b",
                                    "primaryIdentifier": "John Smith", "secondaryIdentifier": "+32439487192",
                                    "pictureUrl": "https://example.com/my-picture.png" },
                "contactAttributes": [ { "attribute": "company", "value": "My company", "source": "AGENT" } ]
            }
        });
        let events = parse(&p, &delegated).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "6ebc6a78-d9e9-48be-b172-51eda40b7af8");
        assert_eq!(events[0].conversation_id, "0ad42eef-a806-11eb-9642-f1ceb2f21def");
        assert_eq!(events[0].kind, ProviderEventKind::ConversationClosed);
    }

    #[test]
    fn contact_messages_and_unknown_types_mean_nothing() {
        let p = provider();
        // Hootsuite Inbox's `InboundMessageReceivedEvent`, with the spec's example values.
        let inbound = json!({
            "timestamp": "2022-04-28T09:43:26.635984618Z", "idempotencyKey": "a5e0c8d2-2d8c-4f57-9d39-0c1f1b2a3c4d",
            "version": 1, "type": EVENT_INBOUND_MESSAGE_RECEIVED,
            "data": {
                "conversationId": "0-01d90bc1b13-000-9a9ca0d8",
                "message": { "messageId": "cc75552a-1a78-11e9-855e-6d1e71016abf", "text": "Hello", "payload": "<DEVELOPER_DEFINED_PAYLOAD>" },
                "trigger": null, "conversationTopics": ["Topic 1", "Topic 2"],
                "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
                "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "primaryIdentifier": "John Smith" },
                "medium": { "id": "facebook" }
            }
        });
        assert_eq!(parse(&p, &inbound).unwrap(), vec![]);
        // Sparkcentral's minimal legacy form of the same event.
        let legacy = json!({ "timestamp": "2019-02-20T10:29:10.238188Z", "idempotencyKey": "5b784e97-34fa-11e9-bf33-f1b7c89708ca",
                             "version": 1, "type": "INBOUND_MESSAGE_RECEIVED",
                             "data": { "conversationId": "0-01e67a8c216-000-8c9ea98e", "message": { "text": "Hello" } } });
        assert_eq!(parse(&p, &legacy).unwrap(), vec![]);
        let future = json!({ "timestamp": "2026-11-25T09:00:00Z", "idempotencyKey": "k", "version": 2,
                             "type": "CONVERSATION_RESOLVED", "data": { "conversationId": "c" } });
        assert_eq!(parse(&p, &future).unwrap(), vec![]);
    }

    #[test]
    fn malformed_events_are_refused() {
        let p = provider();
        let headers = HeaderMap::new();
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: b"not json",
        };
        assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
        for body in [
            json!({ "idempotencyKey": "k", "data": { "conversationId": "c" } }),
            json!({ "type": "CONVERSATION_DELEGATED", "data": { "conversationId": "c" } }),
            json!({ "type": "CONVERSATION_DELEGATED", "idempotencyKey": " ", "data": { "conversationId": "c" } }),
            json!({ "type": "CONVERSATION_STARTED", "idempotencyKey": "k", "data": {} }),
            json!({ "type": "CONVERSATION_STARTED", "idempotencyKey": "k" }),
        ] {
            assert!(matches!(parse(&p, &body), Err(CallbackError::Malformed(_))), "{body}");
        }
    }

    // --- set-up ---

    #[test]
    fn setup_needs_a_known_region_and_a_hex_shared_secret() {
        assert!(setup_error(json!({})).contains("providers.region"));
        assert!(setup_error(json!({ "region": "apac" })).contains("providers.region"));
        assert!(setup_error(json!({ "region": "hootsuite" })).contains("providers.organizationId"));
        assert!(
            setup_error(json!({ "region": "eu", "checkOnlineAgents": true })).contains("providers.checkOnlineAgents")
        );
        assert!(setup_error(json!({ "region": "us", "apiBaseUrl": "ftp://x" })).contains("providers.apiBaseUrl"));
        assert!(
            setup_error(json!({ "region": "us", "queueTopics": { "general": [] } }))
                .contains("providers.queueTopics.general")
        );
        assert!(
            setup_error(json!({ "region": "us", "maxEventAgeSeconds": 0 })).contains("providers.maxEventAgeSeconds")
        );

        let text_secret =
            Secret::from_json(r#"{"clientId":"a","clientSecret":"b","sharedSecret":"my shared secret"}"#).unwrap();
        match SparkcentralProvider::new(&config(json!({ "region": "us" })), &text_secret, reqwest::Client::new()) {
            Err(e) => assert!(e.to_string().contains("hexadecimal"), "{e}"),
            Ok(_) => panic!("a non-hex shared secret was accepted"),
        }
        let no_client = Secret::from_json(&json!({ "sharedSecret": SHARED }).to_string()).unwrap();
        match SparkcentralProvider::new(&config(json!({ "region": "us" })), &no_client, reqwest::Client::new()) {
            Err(e) => assert!(e.to_string().contains("clientId"), "{e}"),
            Ok(_) => panic!("a secret without clientId was accepted"),
        }
    }

    #[test]
    fn the_region_picks_host_and_api_generation() {
        let us = provider();
        assert_eq!((us.api, us.base_url.as_str()), (Api::Sparkcentral, US_API));
        assert_eq!(
            us.conversation_path("0-01e67a8c216-000-8c9ea98e"),
            "/virtual-agent/conversations/0-01e67a8c216-000-8c9ea98e"
        );
        let eu = build(json!({ "region": "EU" })).unwrap();
        assert_eq!(eu.base_url, EU_API);
        let hs = build(json!({ "region": "hootsuite", "organizationId": 900002 })).unwrap();
        assert_eq!((hs.api, hs.base_url.as_str()), (Api::Inbox, HOOTSUITE_API));
        assert_eq!(hs.organization_id.as_deref(), Some("900002"));
        assert_eq!(
            hs.conversation_path("0ad42eef-a806-11eb-9642-f1ceb2f21def"),
            "/inbox/v1/virtual-agent/conversations/0ad42eef-a806-11eb-9642-f1ceb2f21def"
        );
        let local = build(json!({ "region": "us", "apiBaseUrl": "http://127.0.0.1:9999/" })).unwrap();
        assert_eq!(local.url("/x"), "http://127.0.0.1:9999/x");
        assert_eq!(path_segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert!(!us.capabilities().agent_availability);
        let checking =
            build(json!({ "region": "hootsuite", "organizationId": "9", "checkOnlineAgents": true })).unwrap();
        assert!(checking.capabilities().agent_availability);
    }

    #[test]
    fn token_requests_follow_each_generation() {
        assert_eq!(
            oauth::form(&token_grant(Api::Sparkcentral, None)),
            "grant_type=client_credentials&scope=client-read"
        );
        assert_eq!(
            oauth::form(&token_grant(Api::Inbox, Some("900002"))),
            "grant_type=organization_app&organization_id=900002"
        );
    }

    // --- the handover call ---

    fn handover(variables: Value, tags: Vec<&str>, summary: Option<&str>) -> Handover {
        Handover {
            id: "h-9".into(),
            trigger: Trigger::ExplicitRequest,
            provider: "sc".into(),
            queue: "general".into(),
            language: "en".into(),
            variables: serde_json::from_value(variables).unwrap(),
            tags: tags.into_iter().map(str::to_owned).collect(),
            summary: summary.map(str::to_owned),
            provider_conversation_id: Some("0-01e67a8c216-000-8c9ea98e".into()),
            requested_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        }
    }

    #[test]
    fn the_handover_carries_note_topics_and_the_last_message() {
        let p = build(json!({
            "region": "us", "handoverMessage": "One moment, a colleague takes over.",
            "queueTopics": { "general": "Parcels", "billing": ["Billing", "Invoices"] }
        }))
        .unwrap();
        let h = handover(
            json!({ "orderId": "A-1", "attempts": 2 }),
            vec!["vip", "parcels"],
            Some("Parcel A-1 is late"),
        );
        assert_eq!(
            p.handover_body(&h),
            json!({
                "sendMessage": { "text": "One moment, a colleague takes over." },
                "applyConversationNotes": [ { "text": "Handed over by the bot (explicit_request, queue general)\nSummary: Parcel A-1 is late\nattempts: 2\norderId: A-1\nTags: vip, parcels" } ],
                "applyTopics": ["Parcels", "vip"],
                "complete": "HANDOVER"
            })
        );
        // Without context, configuration or tags: only the completion.
        let bare = handover(json!({}), vec![], None);
        assert_eq!(provider().handover_body(&bare), json!({ "complete": "HANDOVER" }));
    }

    #[test]
    fn a_long_note_is_shortened() {
        let h = handover(json!({}), vec![], Some(&"late ".repeat(2000)));
        let note = handover_note(&h).unwrap();
        assert_eq!(note.chars().count(), MAX_NOTE_CHARS);
        assert!(note.ends_with('…'));
    }

    #[test]
    fn only_unanswered_failures_are_ambiguous() {
        let retry = |status| DeliveryError::Retryable {
            status,
            retry_after: None,
            message: String::new(),
        };
        assert!(is_ambiguous(&retry(None)));
        assert!(is_ambiguous(&retry(Some(503))));
        assert!(!is_ambiguous(&retry(Some(429))));
        assert!(!is_ambiguous(&DeliveryError::permanent("400")));
        assert!(is_not_assigned(&DeliveryError::Permanent {
            status: Some(404),
            message: String::new()
        }));
    }
}

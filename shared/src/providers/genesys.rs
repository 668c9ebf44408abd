//! Genesys Cloud through Open Messaging: a relay. handover plays the "external messaging
//! service" of an Open Messaging integration.
//!
//! - **Start**: one inbound Open Message (`POST /api/v2/conversations/messages/{integrationId}/
//!   inbound/open/message?prefetchConversationId=true`) whose sender id (`channel.from.id`) is the
//!   handover id. It creates the Genesys conversation, runs the integration's Architect Inbound
//!   Message flow (which picks the queue: the API has no queue parameter) and carries the bot's
//!   transcript as its text. Queue, variables and context travel as
//!   `channel.metadata.customAttributes`, which the flow reads with "Get Participant Data".
//! - **User and bot turns** afterwards: further inbound messages from the same sender id.
//! - **Agent side**: Genesys POSTs every agent message and typing event to the integration's
//!   outbound webhook (our callback URL) as an "Outbound Open NormalizedMessage", signed with
//!   `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256(secret token, body)>`. The message is
//!   addressed to `channel.to.id`, which is the sender id we chose: the handover id.
//! - **Join and close**: the webhook never says that an agent joined or left. The first agent
//!   message counts as the join (the shell does this); an ended Genesys conversation is not
//!   reported at all (see `docs/providers/genesys.md` for the options and what is still to do),
//!   so the handover ends through our own timeouts or the user.
//! - **End**: `PATCH /api/v2/conversations/messages/{conversationId}` with
//!   `{"state":"disconnected"}` disconnects every participant, so nothing is left in a queue.
//! - **Auth**: OAuth client credentials at `https://login.{region}/oauth/token` (HTTP Basic
//!   client authentication); the token is cached per login host and client for the whole
//!   process by [`super::oauth`] (adapters are rebuilt per call) and renewed shortly before it
//!   expires, or at once after a 401.
//!
//! Settings (the provider entry): `region` (a Genesys domain such as `mypurecloud.ie`, or an
//! AWS-style region such as `eu-west-1`), `integrationId`, and optional `apiBaseUrl` /
//! `loginBaseUrl` overriding the hosts derived from the region (tests, proxies), and optional
//! `agentName` shown to the user instead of the name Genesys sends.
//!
//! Secret (JSON): `{"clientId": "…", "clientSecret": "…", "webhookSecret": "…"}`, where
//! `webhookSecret` is the integration's "Outbound Notification Webhook Signature Secret Token".

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::kit::settings;
use super::oauth::{self, ClientAuth};
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, path_segment,
};
use crate::config::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::{self, DeliveryError};
use crate::domain::message::{Attachment, Button, Card};
use crate::domain::{Actor, Agent, EndReason, Message, TranscriptEntry, UserInfo, render_transcript};
use crate::secrets::Secret;

/// The header Genesys signs outbound webhook requests with (lower case: header lookups are).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const SIGNATURE_PREFIX: &str = "sha256=";

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
    agent_availability: false,
};

pub struct GenesysProvider {
    integration_id: String,
    api_base: String,
    login_base: String,
    client_id: String,
    client_secret: String,
    webhook_secret: Vec<u8>,
    agent_name: Option<String>,
    tokens: oauth::TokenCache,
    http: reqwest::Client,
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
                (Some(url), _) => Ok(url.trim_end_matches('/').to_owned()),
                (None, Some(d)) => Ok(format!("https://{host}.{d}")),
                (None, None) => Err(ProviderSetupError::setting(
                    "region",
                    format!("is required for a genesys provider (or set {field})"),
                )),
            }
        };
        let api_base = base(settings.api_base_url, "api", "apiBaseUrl")?;
        let login_base = base(settings.login_base_url, "login", "loginBaseUrl")?;
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(e.to_string()))
        };
        let client_id = field("clientId")?;
        let client_secret = field("clientSecret")?;
        let webhook_secret = field("webhookSecret")?.into_bytes();
        Ok(GenesysProvider {
            integration_id,
            api_base,
            login_base,
            client_id,
            client_secret,
            webhook_secret,
            agent_name: non_empty(settings.agent_name),
            http,
            tokens: oauth::TokenCache::default(),
        })
    }

    /// The client-credentials token endpoint of the login host.
    fn token_url(&self) -> String {
        format!("{}/oauth/token", self.login_base)
    }

    /// A bearer token: the adapter's cached one while it is fresh, else a new one. Genesys
    /// authenticates the client with HTTP Basic and a `grant_type=client_credentials` body.
    async fn access_token(&self) -> Result<String, DeliveryError> {
        oauth::client_credentials(
            &self.tokens,
            &self.http,
            &self.token_url(),
            &self.client_id,
            &self.client_secret,
            ClientAuth::Basic,
        )
        .await
    }

    /// Drops a token Genesys refused, unless another call already replaced it.
    async fn forget_token(&self, refused: &str) {
        self.tokens.invalidate(refused).await;
    }

    /// One API call with the bearer token; a 401 (revoked or expired token) is retried once
    /// with a new token before it counts as a failure.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response, DeliveryError> {
        let url = format!("{}{path}", self.api_base);
        let send = |token: String| {
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
            if let Some(body) = body {
                req = req.json(body);
            }
            if !query.is_empty() {
                req = req.query(query);
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

    /// Sends one inbound Open Message; `prefetch` asks Genesys to answer with the
    /// conversation id.
    async fn post_inbound(&self, body: &Value, prefetch: bool) -> Result<reqwest::Response, DeliveryError> {
        let path = format!(
            "/api/v2/conversations/messages/{}/inbound/open/message",
            path_segment(&self.integration_id)
        );
        let query: &[(&str, &str)] = if prefetch {
            &[("prefetchConversationId", "true")]
        } else {
            &[]
        };
        self.call(reqwest::Method::POST, &path, query, Some(body)).await
    }

    fn agent(&self, from: Option<&Recipient>) -> Agent {
        let id = from
            .and_then(|f| f.id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "genesys".to_owned());
        let name = self
            .agent_name
            .clone()
            .or_else(|| from.and_then(Recipient::display_name));
        Agent { id, name }
    }
}

/// How often an open Genesys conversation is checked for a connected or departed agent (the
/// evaluator runs every minute, so this is effectively once a run).
/// Open Messaging webhooks never say that an agent was connected or that the conversation
/// ended (only messages, receipts and typing), so the evaluator asks every minute: the
/// conversation's participants tell both. Genesys also offers notification topics and an
/// EventBridge integration for this, but each needs a long-lived subscription or extra AWS
/// wiring per organisation; a GET per open handover and minute fits the scheduled evaluator.
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: Some(60),
    joins_at_start: false,
    hands_back_after_agent_close: false,
};

/// The parts of `GET /api/v2/conversations/messages/{id}` (a `MessageConversation`) we read.
#[derive(Debug, Deserialize)]
struct PolledConversation {
    #[serde(default)]
    participants: Vec<PolledParticipant>,
}

/// A `MessageMediaParticipant`: `purpose` is agent, customer, acd, …; `state` is alerting,
/// connected, disconnected, terminated, ….
#[derive(Debug, Deserialize)]
struct PolledParticipant {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    user: Option<PolledUser>,
}

#[derive(Debug, Deserialize)]
struct PolledUser {
    #[serde(default)]
    id: Option<String>,
}

/// Joins and closes read off the participants. An agent participant that is connected means
/// an agent took the conversation; the conversation counts as closed when the customer left,
/// or when agents were there and none is connected or being offered it any more (a transfer
/// shows a new agent or queue participant alerting, so it does not count). Event ids are stable
/// per participant, so repeated polls are applied once.
fn polled_events(c: &ProviderConversation, conv: &PolledConversation, agent_name: Option<&str>) -> Vec<ProviderEvent> {
    fn is(p: &PolledParticipant, purpose: &str) -> bool {
        p.purpose.as_deref() == Some(purpose)
    }
    fn state(p: &PolledParticipant) -> &str {
        p.state.as_deref().unwrap_or("")
    }
    fn gone(p: &PolledParticipant) -> bool {
        matches!(state(p), "disconnected" | "terminated")
    }
    let mut events = Vec::new();
    if let Some(p) = conv
        .participants
        .iter()
        .find(|p| is(p, "agent") && state(p) == "connected")
    {
        let id = p
            .user
            .as_ref()
            .and_then(|u| u.id.clone())
            .or_else(|| p.id.clone())
            .unwrap_or_else(|| "genesys".into());
        events.push(ProviderEvent {
            event_id: format!("poll-joined-{}", p.id.as_deref().unwrap_or(&id)),
            conversation_id: c.handover_id.clone(),
            kind: ProviderEventKind::AgentJoined {
                agent: Agent {
                    id,
                    name: agent_name.map(str::to_owned).or_else(|| p.name.clone()),
                },
            },
        });
    }
    let customer_left = conv.participants.iter().any(|p| is(p, "customer") && gone(p));
    let agents: Vec<&PolledParticipant> = conv.participants.iter().filter(|p| is(p, "agent")).collect();
    let someone_pending = conv.participants.iter().any(|p| {
        (is(p, "agent") || is(p, "acd")) && matches!(state(p), "alerting" | "connected" | "offering" | "contacting")
    });
    if customer_left || (!agents.is_empty() && agents.iter().all(|p| gone(p)) && !someone_pending) {
        events.push(ProviderEvent {
            event_id: format!("poll-closed-{}", c.conversation_id),
            conversation_id: c.handover_id.clone(),
            kind: ProviderEventKind::ConversationClosed,
        });
    }
    events
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

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

fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// At most `max` characters, the cut marked with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Splits text into pieces of at most `max` characters (never an empty list).
fn pieces(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(max.max(1)).map(|c| c.iter().collect()).collect()
}

/// The sender of our inbound messages. The id is the handover id: Genesys threads messages by
/// it, and addresses the agent's replies to it, which is how callbacks find the handover.
fn sender(handover_id: &str, user: Option<&UserInfo>, introduce: bool) -> Value {
    let mut from = Map::new();
    from.insert("id".into(), json!(handover_id));
    from.insert("idType".into(), json!(ID_TYPE));
    if introduce {
        let name = user
            .and_then(|u| u.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty());
        from.insert("nickname".into(), json!(name.unwrap_or(DEFAULT_NICKNAME)));
        if let Some(name) = name {
            let mut parts = name.splitn(2, char::is_whitespace);
            if let Some(first) = parts.next() {
                from.insert("firstName".into(), json!(first));
            }
            if let Some(last) = parts.next().map(str::trim).filter(|l| !l.is_empty()) {
                from.insert("lastName".into(), json!(last));
            }
        }
        if let Some(email) = user.and_then(|u| u.email.as_deref()).filter(|e| !e.is_empty()) {
            from.insert("email".into(), json!(email));
        }
    }
    Value::Object(from)
}

/// An inbound Open Message body, shaped as the SDK's `OpenInboundNormalizedMessage`:
/// `{channel: {messageId, from, time, metadata?}, text}`.
fn inbound_message(
    from: Value,
    message_id: &str,
    time: DateTime<Utc>,
    text: &str,
    attributes: Option<Map<String, Value>>,
) -> Value {
    let mut channel = Map::new();
    channel.insert("messageId".into(), json!(message_id));
    channel.insert("from".into(), from);
    channel.insert("time".into(), json!(iso_millis(time)));
    if let Some(attrs) = attributes {
        channel.insert("metadata".into(), json!({ "customAttributes": attrs }));
    }
    json!({ "channel": channel, "text": text })
}

/// Context for the Architect flow and the agent's script, as string custom attributes: the
/// handover's variables first, then our own keys (which win over a variable of the same name).
fn custom_attributes(r: &StartRequest<'_>) -> Map<String, Value> {
    let h = r.handover;
    let mut m = Map::new();
    for (k, v) in &h.variables {
        let s = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(k.clone(), json!(clip(&s, MAX_ATTRIBUTE_CHARS)));
    }
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), json!(clip(v, MAX_ATTRIBUTE_CHARS)));
    };
    put("handoverId", &h.id);
    put("botId", r.bot_id);
    put("sessionId", r.session_id);
    put("queue", &h.queue);
    put("language", &h.language);
    put("trigger", h.trigger.as_str());
    if !h.tags.is_empty() {
        put("tags", &h.tags.join(","));
    }
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        put("summary", summary);
    }
    if let Some(channel) = r.channel {
        put("channel", channel);
    }
    m
}

/// The first message the agent reads: why and where the conversation was handed over, the
/// summary, and the bot's transcript.
fn opening_text(r: &StartRequest<'_>) -> String {
    let h = r.handover;
    let mut head = format!(
        "Conversation handed over by the bot (queue: {}, reason: {}).",
        h.queue,
        h.trigger.as_str()
    );
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        head.push_str("\nSummary: ");
        head.push_str(summary.trim());
    }
    if r.transcript.is_empty() {
        head.push_str("\nThe customer asked to talk to an agent.");
        return clip(&head, MAX_TEXT_CHARS);
    }
    fit_transcript(&head, &render_transcript(r.transcript), MAX_TEXT_CHARS)
}

/// The header and as much of the transcript as fits in `max` characters, newest lines first
/// kept: the whole history stays in handover's store, the agent needs the end of it.
fn fit_transcript(head: &str, transcript: &str, max: usize) -> String {
    let full = format!("{head}\n\n{transcript}");
    if full.chars().count() <= max {
        return full;
    }
    let lines: Vec<&str> = transcript.lines().collect();
    // Room for the header, the blank line and the "omitted" note.
    let mut used = head.chars().count() + 2 + 40;
    let mut kept: Vec<&str> = Vec::new();
    for &line in lines.iter().rev() {
        let n = line.chars().count() + 1;
        if used + n > max {
            break;
        }
        used += n;
        kept.push(line);
    }
    if kept.is_empty()
        && let Some(&last) = lines.last()
    {
        kept.push(last);
    }
    kept.reverse();
    let mut out = format!("{head}\n\n[{} earlier lines omitted]", lines.len() - kept.len());
    for line in kept {
        out.push('\n');
        out.push_str(line);
    }
    clip(&out, max)
}

/// The inbound text for a mirrored turn. Only user and bot turns are mirrored.
fn turn_text(entry: &TranscriptEntry) -> String {
    let text = entry.message.render_text();
    match entry.actor {
        Actor::Bot => format!("{BOT_PREFIX}{text}"),
        Actor::User | Actor::Agent => text,
    }
}

/// What the agent reads when we have to post a message to learn the conversation id (see `end`).
fn end_notice(reason: EndReason) -> String {
    format!(
        "[The customer's conversation was ended by the bot service: {}]",
        reason.as_str()
    )
}

/// The conversation id from an inbound-message response (present with `prefetchConversationId`).
async fn conversation_id_of(resp: reqwest::Response) -> Option<String> {
    let v: Value = resp.json().await.ok()?;
    v.get("conversationId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// THE ONE PLACE that decides which id the shell indexes for a Genesys handover.
///
/// Callbacks are addressed to the sender id, the handover id, and the shell always indexes
/// the handover id. When Genesys tells us its conversation id (it does with
/// `prefetchConversationId=true`) we return that one too: the shell then indexes it as well and
/// hands it back to `end`, which can disconnect the conversation directly. Without it we return
/// the handover id, and `end` learns the conversation id by asking Genesys.
fn indexed_conversation_id(handover_id: &str, genesys_conversation_id: Option<String>) -> String {
    genesys_conversation_id.unwrap_or_else(|| handover_id.to_owned())
}

fn mac_of(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(body);
    m
}

/// The `X-Hub-Signature-256` value Genesys sends with `body`: `sha256=` and the base64
/// (standard alphabet, padded) HMAC-SHA256 of the body, keyed with the secret token as text.
/// Public for tests and local tooling that play Genesys.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    format!(
        "{SIGNATURE_PREFIX}{}",
        BASE64.encode(mac_of(secret, body).finalize().into_bytes())
    )
}

/// Checks a signature header in constant time. Genesys' reference code signs
/// `JSON.stringify` of the parsed body, which is the raw body whenever Genesys sends compact
/// JSON; a body with insignificant whitespace is also checked in its compact form.
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(encoded) = header.trim().strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Ok(expected) = BASE64.decode(encoded.trim()) else {
        return false;
    };
    if mac_of(secret, body).verify_slice(&expected).is_ok() {
        return true;
    }
    let compact = compact_json(body);
    compact.as_slice() != body && mac_of(secret, &compact).verify_slice(&expected).is_ok()
}

/// Removes whitespace outside JSON strings (what `JSON.stringify(JSON.parse(body))` does to
/// layout; escapes and number forms are left as they are).
fn compact_json(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(b);
        }
    }
    out
}

/// An "Outbound Open NormalizedMessage" (SDK model `OpenNormalizedMessage`), read leniently:
/// only `channel.to.id` and an id are required of every message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outbound {
    #[serde(default)]
    id: Option<String>,
    channel: OutboundChannel,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    content: Option<Vec<Content>>,
    #[serde(default)]
    events: Option<Vec<OutboundEvent>>,
    #[serde(default)]
    direction: Option<String>,
    /// `Human` or `Bot` in Genesys' webhooks; not in the SDK model.
    #[serde(default)]
    originating_entity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboundChannel {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    to: Option<Recipient>,
    #[serde(default)]
    from: Option<Recipient>,
    #[serde(default)]
    time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

impl Recipient {
    fn display_name(&self) -> Option<String> {
        let full = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !full.is_empty() {
            return Some(full);
        }
        self.nickname
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    attachment: Option<ContentAttachment>,
    /// `contentType: QuickReply`: one quick reply per content element.
    #[serde(default)]
    quick_reply: Option<ContentQuickReply>,
    /// `contentType: Card`.
    #[serde(default)]
    card: Option<ContentCard>,
    /// `contentType: Carousel`.
    #[serde(default)]
    carousel: Option<ContentCarousel>,
}

/// SDK model `ConversationContentQuickReply`: the text is also what the user answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentQuickReply {
    #[serde(default)]
    text: String,
}

/// SDK model `ConversationContentCard`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentCard {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    actions: Vec<CardAction>,
}

/// SDK model `ConversationContentCardAction`: `type` is `Link` (with `url`) or `Postback`
/// (with `payload`, answered as a `ButtonResponse`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CardAction {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// SDK model `ConversationContentCarousel`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentCarousel {
    #[serde(default)]
    cards: Vec<ContentCard>,
}

impl ContentCard {
    fn to_card(&self) -> Option<Card> {
        let title = self.title.trim();
        if title.is_empty() {
            return None;
        }
        let non_empty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        Some(Card {
            title: title.to_owned(),
            subtitle: non_empty(&self.description),
            image_url: non_empty(&self.image),
            buttons: self
                .actions
                .iter()
                .filter(|a| !a.text.trim().is_empty())
                .map(|a| {
                    let link = a.kind.eq_ignore_ascii_case("link");
                    Button {
                        title: a.text.trim().to_owned(),
                        payload: if link { None } else { non_empty(&a.payload) },
                        url: if link { non_empty(&a.url) } else { None },
                    }
                })
                .collect(),
        })
    }
}

/// The structured parts of an agent's message: quick replies, and cards (a card alone or the
/// cards of a carousel), in the order Genesys lists them.
fn structured_of(content: &[Content]) -> (Vec<String>, Vec<Card>) {
    let mut quick_replies = Vec::new();
    let mut cards = Vec::new();
    for c in content {
        match c.content_type.to_ascii_lowercase().as_str() {
            "quickreply" => {
                if let Some(q) = c.quick_reply.as_ref().map(|q| q.text.trim()).filter(|t| !t.is_empty()) {
                    quick_replies.push(q.to_owned());
                }
            }
            "card" => cards.extend(c.card.as_ref().and_then(ContentCard::to_card)),
            "carousel" => {
                if let Some(carousel) = &c.carousel {
                    cards.extend(carousel.cards.iter().filter_map(ContentCard::to_card));
                }
            }
            _ => {}
        }
    }
    (quick_replies, cards)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentAttachment {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboundEvent {
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    typing: Option<Typing>,
}

#[derive(Deserialize)]
struct Typing {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// ASSUMPTION: messages Genesys marks `originatingEntity: "Bot"` come from an Architect flow or a
/// Genesys bot (queue notices, bot replies), not from an agent. They are not relayed: relaying
/// them would count as the agent's join while the user is still waiting.
fn from_an_agent(m: &Outbound) -> bool {
    !m.originating_entity
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("bot"))
}

fn attachments_of(content: &[Content]) -> Vec<Attachment> {
    content
        .iter()
        .filter(|c| c.content_type.eq_ignore_ascii_case("attachment"))
        .filter_map(|c| c.attachment.as_ref())
        .filter_map(|a| {
            let url = a.url.clone().filter(|u| !u.is_empty())?;
            Some(Attachment {
                kind: a
                    .media_type
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_else(|| "file".to_owned()),
                url,
                name: a.filename.clone().filter(|n| !n.is_empty()),
            })
        })
        .collect()
}

#[async_trait]
impl Provider for GenesysProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Genesys
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// Not asked: presence would need the queue's id and a routing or analytics query; the
    /// Architect flow decides what happens when nobody is on the queue.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        Ok(AgentAvailability::Unknown)
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
    /// same ids again.
    async fn send_message(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
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
        self.call(
            reqwest::Method::PATCH,
            &path,
            &[],
            Some(&json!({ "state": "disconnected" })),
        )
        .await
        .map(drop)
    }

    async fn poll(&self, c: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        // Without Genesys' own conversation id there is nothing to ask about yet.
        if c.conversation_id == c.handover_id {
            return Ok(Vec::new());
        }
        let path = format!("/api/v2/conversations/messages/{}", path_segment(&c.conversation_id));
        let resp = self.call(reqwest::Method::GET, &path, &[], None).await?;
        let conversation: PolledConversation = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("conversation body: {e}")))?;
        Ok(polled_events(c, &conversation, self.agent_name.as_deref()))
    }

    /// Genesys signs the body only (no timestamp, so no replay window): a replayed message is
    /// absorbed by the shell's idempotency on the event id.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        let header = r
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| CallbackError::Unauthenticated("missing X-Hub-Signature-256 header".into()))?;
        if verify_signature(&self.webhook_secret, header, r.body) {
            Ok(())
        } else {
            Err(CallbackError::Unauthenticated(
                "X-Hub-Signature-256 does not match the body".into(),
            ))
        }
    }

    /// Text (and structured) messages become agent messages, typing events agent typing.
    /// Receipts, inbound echoes, bot-originated messages and anything unknown are acknowledged
    /// and ignored: Genesys retries only 429 and 5xx, and a refusal helps nobody.
    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let m: Outbound = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        if m.direction
            .as_deref()
            .is_some_and(|d| !d.eq_ignore_ascii_case("outbound"))
        {
            return Ok(Callback::Events(Vec::new()));
        }
        let conversation_id = m
            .channel
            .to
            .as_ref()
            .and_then(|t| t.id.clone())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing field `channel.to.id`".into()))?;
        let id =
            m.id.clone()
                .or_else(|| m.channel.message_id.clone())
                .filter(|id| !id.is_empty())
                .ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
        // Genesys: "each message must have a unique combination of id and time".
        let event_id = match m.channel.time.as_deref().filter(|t| !t.is_empty()) {
            Some(time) => format!("{id}@{time}"),
            None => id,
        };
        let kind = match m.kind.as_str() {
            "Text" | "Structured" => {
                if !from_an_agent(&m) {
                    return Ok(Callback::Events(Vec::new()));
                }
                let content = m.content.as_deref().unwrap_or_default();
                let (quick_replies, cards) = structured_of(content);
                let message = Message {
                    text: m.text.clone().filter(|t| !t.trim().is_empty()),
                    quick_replies,
                    cards,
                    attachments: attachments_of(content),
                    ..Message::default()
                };
                if message.is_empty() {
                    return Ok(Callback::Events(Vec::new()));
                }
                ProviderEventKind::AgentMessage {
                    agent: Some(self.agent(m.channel.from.as_ref())),
                    message,
                }
            }
            "Event" => {
                let typing = m.events.as_deref().unwrap_or_default().iter().any(|e| {
                    e.event_type.eq_ignore_ascii_case("typing")
                        && !e
                            .typing
                            .as_ref()
                            .and_then(|t| t.kind.as_deref())
                            .is_some_and(|k| k.eq_ignore_ascii_case("off"))
                });
                if !typing || !from_an_agent(&m) {
                    return Ok(Callback::Events(Vec::new()));
                }
                // The typing event's sender is the integration, not the agent.
                ProviderEventKind::AgentTyping { agent: None }
            }
            _ => return Ok(Callback::Events(Vec::new())),
        };
        Ok(Callback::Events(vec![ProviderEvent {
            event_id,
            conversation_id,
            kind,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polled_with(participants: &[(&str, &str)]) -> PolledConversation {
        PolledConversation {
            participants: participants
                .iter()
                .enumerate()
                .map(|(i, (purpose, state))| PolledParticipant {
                    id: Some(format!("p-{i}")),
                    name: Some(format!("n-{i}")),
                    purpose: Some((*purpose).to_owned()),
                    state: Some((*state).to_owned()),
                    user: None,
                })
                .collect(),
        }
    }

    fn kinds(participants: &[(&str, &str)]) -> Vec<ProviderEventKind> {
        let c = ProviderConversation {
            handover_id: "h-1".into(),
            conversation_id: "g-1".into(),
        };
        polled_events(&c, &polled_with(participants), None)
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    #[test]
    fn polling_reads_joins_closes_and_transfers_from_participants() {
        assert!(
            kinds(&[("customer", "connected"), ("acd", "connected")]).is_empty(),
            "still queued"
        );
        assert!(matches!(
            kinds(&[("customer", "connected"), ("agent", "connected")])[..],
            [ProviderEventKind::AgentJoined { .. }]
        ));
        assert_eq!(
            kinds(&[("customer", "connected"), ("agent", "disconnected")]),
            vec![ProviderEventKind::ConversationClosed]
        );
        assert!(
            kinds(&[
                ("customer", "connected"),
                ("agent", "disconnected"),
                ("agent", "alerting")
            ])
            .is_empty(),
            "a transfer to another agent is not a close"
        );
        assert!(
            kinds(&[
                ("customer", "connected"),
                ("agent", "disconnected"),
                ("acd", "connected")
            ])
            .is_empty(),
            "back in the queue is not a close"
        );
        assert_eq!(
            kinds(&[("customer", "disconnected"), ("acd", "disconnected")]),
            vec![ProviderEventKind::ConversationClosed]
        );
    }
    use crate::domain::{Handover, Trigger};
    use lambda_http::http::{HeaderMap, HeaderValue};

    const SECRET: &[u8] = b"s3cr3t-token";
    /// The typing event of Genesys' outbound-messages documentation, addressed to `h-1`.
    const TYPING: &str = r#"{"id":"m-typing-1","channel":{"id":"int-1","platform":"Open","type":"Private","to":{"id":"h-1"},"from":{"nickname":"Acme Open Messaging","id":"int-1","idType":"Opaque"},"time":"2023-09-25T13:41:24.276Z","messageId":"m-typing-1"},"type":"Event","events":[{"eventType":"Typing","typing":{"type":"On","duration":5000}}],"direction":"Outbound"}"#;
    /// HMAC-SHA256("s3cr3t-token", TYPING), base64, computed independently (Python hmac).
    const TYPING_SIGNATURE: &str = "sha256=KvWBDsFyEXGVvQ5Mf5y4bQDpOnYTaa7VrKQB1wYNuFI=";

    fn provider_with(settings: Value) -> Result<GenesysProvider, ProviderSetupError> {
        let Value::Object(settings) = settings else {
            panic!("settings are an object")
        };
        let config = ProviderConfig {
            id: "genesys".into(),
            kind: ProviderKind::Genesys,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/genesys".into(),
            settings,
        };
        let secret =
            Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"s3cr3t-token"}"#).unwrap();
        GenesysProvider::new(&config, &secret, reqwest::Client::new())
    }

    fn provider() -> GenesysProvider {
        provider_with(json!({"region": "mypurecloud.ie", "integrationId": "int-1"})).unwrap()
    }

    fn headers(signature: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = signature {
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(s).unwrap());
        }
        h
    }

    fn verify(p: &GenesysProvider, signature: Option<&str>, body: &[u8]) -> Result<(), CallbackError> {
        let h = headers(signature);
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body,
        };
        p.verify_callback(&req, Utc::now())
    }

    fn parse(p: &GenesysProvider, body: &Value) -> Result<Callback, CallbackError> {
        let bytes = serde_json::to_vec(body).unwrap();
        let h = headers(None);
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body: &bytes,
        };
        p.parse_callback(&req)
    }

    fn events(cb: Callback) -> Vec<ProviderEvent> {
        match cb {
            Callback::Events(e) => e,
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn agent_text(text: &str) -> Value {
        json!({
            "id": "m-1",
            "channel": {
                "id": "int-1", "platform": "Open", "type": "Private",
                "to": {"id": "h-1"},
                "from": {"nickname": "Eva", "id": "int-1", "idType": "Opaque"},
                "time": "2026-11-25T09:01:00.000Z", "messageId": "m-1"
            },
            "type": "Text", "text": text, "direction": "Outbound", "originatingEntity": "Human"
        })
    }

    #[test]
    fn an_agents_quick_replies_cards_and_carousel_become_rich_parts() {
        let mut m = agent_text("Which one?");
        m["type"] = json!("Structured");
        m["content"] = json!([
            {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "yes", "action": "Message"}},
            {"contentType": "QuickReply", "quickReply": {"text": "No", "payload": "no", "action": "Message"}},
            {"contentType": "Card", "card": {
                "title": "Parcel A-1", "description": "Late by a day", "image": "https://cdn.example.com/a1.png",
                "actions": [
                    {"type": "Link", "text": "Track", "url": "https://track.example.com/A-1"},
                    {"type": "Postback", "text": "Refund", "payload": "refund-A-1"}
                ]}},
            {"contentType": "Carousel", "carousel": {"cards": [
                {"title": "Option 1", "actions": [{"type": "Postback", "text": "Pick", "payload": "o1"}]},
                {"title": "  ", "description": "a card without a title is not shown"},
                {"title": "Option 2"}
            ]}}
        ]);
        let e = events(parse(&provider(), &m).unwrap());
        let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
            panic!("{e:?}")
        };
        assert_eq!(message.text.as_deref(), Some("Which one?"));
        assert_eq!(message.quick_replies, ["Yes", "No"]);
        let titles: Vec<&str> = message.cards.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["Parcel A-1", "Option 1", "Option 2"]);
        let card = &message.cards[0];
        assert_eq!(card.subtitle.as_deref(), Some("Late by a day"));
        assert_eq!(card.image_url.as_deref(), Some("https://cdn.example.com/a1.png"));
        assert_eq!(
            card.buttons,
            [
                Button {
                    title: "Track".into(),
                    payload: None,
                    url: Some("https://track.example.com/A-1".into())
                },
                Button {
                    title: "Refund".into(),
                    payload: Some("refund-A-1".into()),
                    url: None
                },
            ]
        );
        assert_eq!(message.cards[1].buttons[0].payload.as_deref(), Some("o1"));
    }

    #[test]
    fn the_documented_scheme_matches_an_independent_computation() {
        assert_eq!(signature(SECRET, TYPING.as_bytes()), TYPING_SIGNATURE);
    }

    #[test]
    fn only_a_valid_signature_is_accepted() {
        let p = provider();
        assert!(verify(&p, Some(TYPING_SIGNATURE), TYPING.as_bytes()).is_ok());

        let tampered = TYPING.replace("\"On\"", "\"Off\"");
        assert!(matches!(
            verify(&p, Some(TYPING_SIGNATURE), tampered.as_bytes()),
            Err(CallbackError::Unauthenticated(_))
        ));

        let wrong_secret = signature(b"another-token", TYPING.as_bytes());
        assert!(verify(&p, Some(wrong_secret.as_str()), TYPING.as_bytes()).is_err());

        assert!(matches!(
            verify(&p, None, TYPING.as_bytes()),
            Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
        ));
    }

    #[test]
    fn hex_or_unprefixed_signatures_are_not_the_documented_format() {
        let p = provider();
        let hex_sig = "sha256=2af5810ec172117195bd0e4c7f9cb86d00e93a761369aed5aca401d7060db852";
        assert!(verify(&p, Some(hex_sig), TYPING.as_bytes()).is_err());
        let bare = TYPING_SIGNATURE.trim_start_matches("sha256=");
        assert!(verify(&p, Some(bare), TYPING.as_bytes()).is_err());
        assert!(verify(&p, Some("sha256=not base64!"), TYPING.as_bytes()).is_err());
    }

    #[test]
    fn a_pretty_printed_body_verifies_against_its_compact_form() {
        let p = provider();
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(TYPING).unwrap()).unwrap();
        // serde_json sorts keys, so sign the compact form of exactly this document.
        let compact = compact_json(pretty.as_bytes());
        assert_eq!(
            serde_json::from_slice::<Value>(&compact).unwrap(),
            serde_json::from_str::<Value>(TYPING).unwrap()
        );
        let sig = signature(SECRET, &compact);
        assert!(verify(&p, Some(sig.as_str()), pretty.as_bytes()).is_ok());
        // Whitespace inside strings is content, not layout.
        assert_eq!(compact_json(br#"{ "a" : "x y" }"#), br#"{"a":"x y"}"#.to_vec());
        assert_eq!(compact_json(br#"{"a":"q\" b"}"#), br#"{"a":"q\" b"}"#.to_vec());
    }

    #[test]
    fn an_agent_text_message_becomes_an_agent_message_for_the_handover() {
        let p = provider();
        let e = events(parse(&p, &agent_text("Hello, how can I help?")).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].conversation_id, "h-1");
        assert_eq!(e[0].event_id, "m-1@2026-11-25T09:01:00.000Z");
        match &e[0].kind {
            ProviderEventKind::AgentMessage { agent, message } => {
                assert_eq!(message.text.as_deref(), Some("Hello, how can I help?"));
                let agent = agent.as_ref().unwrap();
                assert_eq!(agent.name.as_deref(), Some("Eva"));
                assert_eq!(agent.id, "int-1");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn the_configured_agent_name_wins() {
        let p = provider_with(json!({"region": "mypurecloud.ie", "integrationId": "int-1", "agentName": "Support"}))
            .unwrap();
        let e = events(parse(&p, &agent_text("Hi")).unwrap());
        let ProviderEventKind::AgentMessage { agent, .. } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Support"));
    }

    #[test]
    fn an_agent_attachment_is_relayed() {
        let p = provider();
        let mut m = agent_text("Your label");
        m["content"] = json!([{
            "contentType": "Attachment",
            "attachment": {"mediaType": "Image", "url": "https://files.example/label.png", "mime": "image/png", "filename": "label.png"}
        }]);
        let e = events(parse(&p, &m).unwrap());
        let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(message.attachments.len(), 1);
        assert_eq!(message.attachments[0].kind, "image");
        assert_eq!(message.attachments[0].url, "https://files.example/label.png");
        assert_eq!(message.attachments[0].name.as_deref(), Some("label.png"));
        // An attachment alone is a message too.
        m["text"] = Value::Null;
        assert_eq!(events(parse(&p, &m).unwrap()).len(), 1);
    }

    #[test]
    fn the_documented_typing_event_becomes_agent_typing() {
        let p = provider();
        let e = events(parse(&p, &serde_json::from_str(TYPING).unwrap()).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].conversation_id, "h-1");
        assert_eq!(e[0].event_id, "m-typing-1@2023-09-25T13:41:24.276Z");
        assert_eq!(e[0].kind, ProviderEventKind::AgentTyping { agent: None });
        let off = TYPING.replace("\"On\"", "\"Off\"");
        assert!(events(parse(&p, &serde_json::from_str(&off).unwrap()).unwrap()).is_empty());
    }

    #[test]
    fn receipts_inbound_echoes_bot_messages_and_unknown_types_are_ignored() {
        let p = provider();
        let receipt = json!({
            "id": "m-1", "channel": {"id": "int-1", "to": {"id": "h-1"}, "time": "2026-11-25T09:01:00.000Z"},
            "type": "Receipt", "status": "Delivered", "isFinalReceipt": true, "direction": "Outbound"
        });
        assert!(events(parse(&p, &receipt).unwrap()).is_empty());
        let mut echo = agent_text("hi");
        echo["direction"] = json!("Inbound");
        assert!(events(parse(&p, &echo).unwrap()).is_empty());
        let mut flow = agent_text("You are number 3 in the queue.");
        flow["originatingEntity"] = json!("Bot");
        assert!(events(parse(&p, &flow).unwrap()).is_empty());
        let mut future = agent_text("hi");
        future["type"] = json!("Something");
        assert!(events(parse(&p, &future).unwrap()).is_empty());
        assert!(events(parse(&p, &agent_text("   ")).unwrap()).is_empty());
    }

    #[test]
    fn a_message_without_recipient_or_id_is_malformed() {
        let p = provider();
        let mut m = agent_text("hi");
        m["channel"]["to"] = Value::Null;
        assert!(matches!(parse(&p, &m), Err(CallbackError::Malformed(_))));
        let mut m = agent_text("hi");
        m["id"] = Value::Null;
        m["channel"]["messageId"] = Value::Null;
        assert!(matches!(parse(&p, &m), Err(CallbackError::Malformed(_))));
        let h = headers(None);
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body: b"not json",
        };
        assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
    }

    #[test]
    fn hosts_come_from_the_region_or_the_overrides() {
        let p = provider();
        assert_eq!(p.api_base, "https://api.mypurecloud.ie");
        assert_eq!(p.login_base, "https://login.mypurecloud.ie");
        let p = provider_with(json!({"region": "eu-west-2", "integrationId": "int-1"})).unwrap();
        assert_eq!(p.api_base, "https://api.euw2.pure.cloud");
        let p = provider_with(json!({
            "integrationId": "int-1", "apiBaseUrl": "http://127.0.0.1:9/", "loginBaseUrl": "http://127.0.0.1:9"
        }))
        .unwrap();
        assert_eq!(p.api_base, "http://127.0.0.1:9");
        assert_eq!(p.login_base, "http://127.0.0.1:9");
        assert_eq!(region_domain("https://api.mypurecloud.de/").unwrap(), "mypurecloud.de");
    }

    #[test]
    fn missing_settings_are_named() {
        let err = provider_with(json!({"region": "mypurecloud.ie"})).err().unwrap();
        assert!(err.to_string().contains("providers.integrationId"), "{err}");
        let err = provider_with(json!({"integrationId": "int-1"})).err().unwrap();
        assert!(err.to_string().contains("providers.region"), "{err}");
        let err = provider_with(json!({"region": "atlantis-1", "integrationId": "int-1"}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("providers.region"), "{err}");
    }

    #[test]
    fn a_missing_secret_field_is_a_setup_error() {
        let Value::Object(settings) = json!({"region": "mypurecloud.ie", "integrationId": "int-1"}) else {
            unreachable!()
        };
        let config = ProviderConfig {
            id: "genesys".into(),
            kind: ProviderKind::Genesys,
            url: None,
            availability_url: None,
            secret_ref: "x".into(),
            settings,
        };
        let secret = Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret"}"#).unwrap();
        let err = GenesysProvider::new(&config, &secret, reqwest::Client::new())
            .err()
            .unwrap();
        assert!(err.to_string().contains("webhookSecret"), "{err}");
    }

    fn handover() -> Handover {
        Handover {
            id: "h-1".into(),
            trigger: Trigger::ExplicitRequest,
            provider: "genesys".into(),
            queue: "Support_NL".into(),
            language: "nl".into(),
            variables: [
                ("orderId".to_owned(), json!("A-1")),
                ("items".to_owned(), json!(3)),
                ("queue".to_owned(), json!("not this one")),
            ]
            .into_iter()
            .collect(),
            tags: vec!["vip".into(), "late".into()],
            summary: Some("Parcel is late".into()),
            provider_conversation_id: None,
            requested_at: DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc(),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        }
    }

    fn entry(seq: u64, actor: Actor, text: &str) -> TranscriptEntry {
        TranscriptEntry {
            seq,
            actor,
            timestamp: DateTime::parse_from_rfc3339("2026-11-25T08:59:00Z").unwrap().to_utc(),
            message: Message::text(text),
            agent: None,
            event_id: None,
        }
    }

    #[test]
    fn the_opening_message_carries_context_and_transcript() {
        let h = handover();
        let user = UserInfo {
            id: "u-7".into(),
            name: Some("Ann Peeters".into()),
            email: Some("ann@example.com".into()),
            locale: None,
        };
        let transcript = [
            entry(1, Actor::User, "Where is my parcel?"),
            entry(2, Actor::Bot, "Let me check."),
        ];
        let r = StartRequest {
            delivery_id: "h-1-start",
            bot_id: "acme",
            session_id: "s-42",
            handover: &h,
            user: Some(&user),
            channel: Some("web"),
            transcript: &transcript,
        };
        let body = inbound_message(
            sender(&h.id, r.user, true),
            r.delivery_id,
            h.requested_at,
            &opening_text(&r),
            Some(custom_attributes(&r)),
        );
        assert_eq!(body["channel"]["messageId"], "h-1-start");
        assert_eq!(body["channel"]["time"], "2026-11-25T09:00:00.000Z");
        assert_eq!(
            body["channel"]["from"],
            json!({"id": "h-1", "idType": "Opaque", "nickname": "Ann Peeters", "firstName": "Ann", "lastName": "Peeters", "email": "ann@example.com"})
        );
        let attrs = &body["channel"]["metadata"]["customAttributes"];
        assert_eq!(attrs["queue"], "Support_NL", "our keys win over variables");
        assert_eq!(attrs["orderId"], "A-1");
        assert_eq!(attrs["items"], "3");
        assert_eq!(attrs["tags"], "vip,late");
        assert_eq!(attrs["handoverId"], "h-1");
        assert_eq!(attrs["sessionId"], "s-42");
        assert_eq!(attrs["channel"], "web");
        assert!(attrs.as_object().unwrap().values().all(Value::is_string));
        assert_eq!(
            body["text"],
            "Conversation handed over by the bot (queue: Support_NL, reason: explicit_request).\nSummary: Parcel is late\n\nUser: Where is my parcel?\nBot: Let me check."
        );
    }

    #[test]
    fn a_long_transcript_keeps_its_newest_lines_within_the_limit() {
        let transcript: String = (1..=500).map(|i| format!("User: line {i}\n")).collect();
        let text = fit_transcript("Head", transcript.trim_end(), 200);
        assert!(text.chars().count() <= 200, "{}", text.chars().count());
        assert!(text.starts_with("Head\n\n["), "{text}");
        assert!(text.contains("earlier lines omitted]"));
        assert!(text.ends_with("User: line 500"), "{text}");
        assert_eq!(fit_transcript("Head", "User: hi", 200), "Head\n\nUser: hi");
    }

    #[test]
    fn mirrored_bot_turns_are_labelled_and_long_turns_split() {
        assert_eq!(turn_text(&entry(3, Actor::Bot, "On its way")), "Bot: On its way");
        assert_eq!(turn_text(&entry(4, Actor::User, "Thanks")), "Thanks");
        let long = "x".repeat(MAX_TEXT_CHARS * 2 + 1);
        let parts = pieces(&long, MAX_TEXT_CHARS);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), long);
        assert_eq!(sender("h-1", None, false), json!({"id": "h-1", "idType": "Opaque"}));
    }

    #[test]
    fn the_indexed_id_is_genesys_conversation_id_when_known() {
        assert_eq!(indexed_conversation_id("h-1", Some("c-9".into())), "c-9");
        assert_eq!(indexed_conversation_id("h-1", None), "h-1");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}

//! Proximus #Interact: the Belgian contact-center and social customer-care product.
//!
//! **No public API documentation exists for #Interact.** The only public description of how a
//! bot platform works with it is Chatlayer's set-up page
//! (`chatlayerai/chatlayer-documentation`, `integrations/human-offloading-live-chat/interact.md`),
//! which says, and this adapter relies on nothing more:
//!
//! - tokens are exchanged **both ways**: #Interact creates an access token (Settings > Tokens)
//!   that the bot side uses to call #Interact, and the bot side creates a token that is pasted
//!   into #Interact (Settings > Chatbot) so that #Interact can call the bot side;
//! - the bot is **paused** when the user is handed over and **resumed when the agent closes**
//!   the conversation.
//!
//! Everything else (the API host, the endpoint paths, the header carrying each token, the JSON
//! of our requests and of #Interact's calls, the event names) is an **assumption**, and each one
//! is either a setting of the provider entry or kept in one marked place of this file:
//!
//! - endpoints and token headers: the settings below, defaults in [`defaults`];
//! - the JSON we send: `start_body`, `message_body`, `end_body`, and the conversation id
//!   read back from the start answer in `answered_conversation_id`;
//! - the JSON #Interact sends to our callback: `CallbackBody` and the `EVENT_*` names.
//!
//! The defaults describe a contract an operator must confirm with Proximus (see
//! `docs/providers/interact.md`); they were never exercised against the real service.
//!
//! How a handover runs, under that contract (the relay shape):
//!
//! - **Start**: `POST {apiBaseUrl}{startPath}` with the handover's context and the bot's
//!   transcript as text. The conversation id is #Interact's answer `conversationId` when it
//!   gives one, else the bot platform's `providerConversationId` (when the user already talks
//!   to #Interact's own widget), else the handover id.
//! - **User and bot turns**: `POST {apiBaseUrl}{messagePath}`, unless `relayMessages: false`
//!   (the user's channel already runs through #Interact).
//! - **Agent side**: #Interact calls our callback URL with the token we gave it; the token is
//!   compared in constant time. `agent.joined`, `agent.message` and `conversation.closed` are
//!   understood; the close resumes the bot. Anything else is acknowledged and ignored.
//! - **End from our side** (user cancel, timeouts): `POST {apiBaseUrl}{endPath}`, so the
//!   conversation is not left waiting in #Interact.
//!
//! Settings (the provider entry): `apiBaseUrl` (required: no public host is known), optional
//! `startPath`, `messagePath`, `endPath` (may contain `{conversationId}` and `{handoverId}`),
//! `tokenHeader` / `tokenScheme` (how our calls carry the #Interact token), `callbackTokenHeader`
//! / `callbackTokenScheme` (where #Interact's calls carry our token), `relayMessages`
//! (default true) and `agentName` (shown to the user instead of the name #Interact sends).
//!
//! Secret (JSON): `{"apiToken": "<token created in #Interact, Settings > Tokens>",
//! "callbackToken": "<a long random token, pasted into #Interact, Settings > Chatbot>"}`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::kit::settings;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, path_segment,
};
use crate::config::{ProviderConfig, ProviderKind};
use crate::delivery::{self, DeliveryError};
use crate::domain::{Actor, Agent, EndReason, Message, TranscriptEntry, render_transcript};
use crate::secrets::Secret;

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
    // No public presence API.
    agent_availability: false,
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
    api_base: String,
    start_path: String,
    message_path: String,
    end_path: String,
    token_header: HeaderName,
    token_value: HeaderValue,
    callback_header: HeaderName,
    callback_scheme: String,
    callback_token: Vec<u8>,
    relay_messages: bool,
    agent_name: Option<String>,
    http: reqwest::Client,
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
            let value = secret
                .field(name)
                .map_err(|e| ProviderSetupError::Config(e.to_string()))?
                .trim()
                .to_owned();
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
            api_base,
            start_path,
            message_path,
            end_path,
            token_header,
            token_value,
            callback_header,
            callback_scheme,
            callback_token,
            relay_messages: settings.relay_messages.unwrap_or(true),
            agent_name: non_empty(settings.agent_name),
            http,
        })
    }

    /// One call to #Interact with the token, classified for the outbox's retries.
    async fn post(&self, path: &str, body: &Value) -> Result<reqwest::Response, DeliveryError> {
        let now = Utc::now();
        let resp = self
            .http
            .post(format!("{}{path}", self.api_base))
            .header(self.token_header.clone(), self.token_value.clone())
            .json(body)
            .send()
            .await
            .map_err(delivery::transport)?;
        delivery::check(resp, now).await
    }

    fn agent(&self, given: Option<&CallbackAgent>) -> Agent {
        let id = given
            .and_then(|a| id_text(a.id.as_ref()))
            .unwrap_or_else(|| DEFAULT_AGENT_ID.to_owned());
        let name = self.agent_name.clone().or_else(|| {
            given
                .and_then(|a| a.name.as_deref())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        });
        Agent { id, name }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn api_base(given: Option<String>) -> Result<String, ProviderSetupError> {
    let url = non_empty(given).ok_or_else(|| {
        ProviderSetupError::setting(
            "apiBaseUrl",
            "is required for an interact provider (no public #Interact API host is known; ask Proximus)",
        )
    })?;
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(ProviderSetupError::setting(
            "apiBaseUrl",
            format!("{url:?} must be an http(s) URL with a host"),
        )),
    }
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

fn with_scheme(scheme: &str, token: &str) -> String {
    if scheme.is_empty() {
        token.to_owned()
    } else {
        format!("{scheme} {token}")
    }
}

/// The token in a header value: after the scheme word when it is there (any case), else the
/// whole value.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> &'a str {
    let v = value.trim();
    if scheme.is_empty() {
        return v;
    }
    match (v.get(..scheme.len()), v.get(scheme.len()..)) {
        (Some(head), Some(rest)) if head.eq_ignore_ascii_case(scheme) && rest.starts_with(char::is_whitespace) => {
            rest.trim()
        }
        _ => v,
    }
}

/// Constant-time comparison of a presented token with ours. Both sides are hashed first, so
/// neither the content nor the length of our token shows in the timing.
fn token_matches(given: &str, expected: &[u8]) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected);
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

/// A path setting with its placeholders filled in.
fn fill(template: &str, conversation_id: &str, handover_id: &str) -> String {
    template
        .replace(CONVERSATION_PLACEHOLDER, &path_segment(conversation_id))
        .replace(HANDOVER_PLACEHOLDER, &path_segment(handover_id))
}

/// An id given as a string or a number.
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// ASSUMED OUTBOUND CONTRACT. The bodies below are our proposal, shaped like handover's generic
// webhook envelopes (`id`, `type`, `conversationId`, `timestamp`); #Interact's real API is not
// public. Change them here, and only here, once Proximus has confirmed its format.
// ---------------------------------------------------------------------------------------------

/// The start request: the handover's context and the bot's transcript as plain text.
/// `id` is the delivery id, the same on every retry, for #Interact to deduplicate on.
fn start_body(r: &StartRequest<'_>, conversation_id: &str) -> Value {
    let h = r.handover;
    let mut m = Map::new();
    m.insert("id".into(), json!(r.delivery_id));
    m.insert("type".into(), json!("conversation.started"));
    m.insert("conversationId".into(), json!(conversation_id));
    m.insert("handoverId".into(), json!(h.id));
    m.insert("timestamp".into(), json!(h.requested_at));
    m.insert("botId".into(), json!(r.bot_id));
    m.insert("sessionId".into(), json!(r.session_id));
    m.insert("queue".into(), json!(h.queue));
    m.insert("language".into(), json!(h.language));
    m.insert("trigger".into(), json!(h.trigger.as_str()));
    if let Some(channel) = r.channel {
        m.insert("channel".into(), json!(channel));
    }
    if let Some(user) = r.user {
        m.insert("user".into(), json!(user));
    }
    m.insert("variables".into(), json!(h.variables));
    m.insert("tags".into(), json!(h.tags));
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        m.insert("summary".into(), json!(summary));
    }
    m.insert("transcriptText".into(), json!(render_transcript(r.transcript)));
    Value::Object(m)
}

/// A user or bot turn, as text: rich content is rendered readable, never dropped.
fn message_body(delivery_id: &str, conversation_id: &str, handover_id: &str, entry: &TranscriptEntry) -> Value {
    let kind = match entry.actor {
        Actor::Bot => "bot.message",
        Actor::User | Actor::Agent => "user.message",
    };
    json!({
        "id": delivery_id,
        "type": kind,
        "conversationId": conversation_id,
        "handoverId": handover_id,
        "timestamp": entry.timestamp,
        "actor": entry.actor,
        "text": entry.message.render_text(),
    })
}

/// The close request when the handover ends on our side.
fn end_body(delivery_id: &str, conversation_id: &str, handover_id: &str, reason: EndReason) -> Value {
    json!({
        "id": delivery_id,
        "type": "conversation.ended",
        "conversationId": conversation_id,
        "handoverId": handover_id,
        "timestamp": Utc::now(),
        "reason": reason.as_str(),
    })
}

/// ASSUMPTION: a start answer may carry #Interact's own id for the conversation as
/// `conversationId`. Any other answer (empty, not JSON, no such field) is fine too.
async fn answered_conversation_id(resp: reqwest::Response) -> Option<String> {
    let v: Value = resp.json().await.ok()?;
    id_text(v.get("conversationId"))
}

/// The id the shell indexes for this handover (callbacks must name it, or the handover id,
/// which is always indexed too): #Interact's answer wins, then the bot platform's
/// `providerConversationId`, then the handover id.
fn indexed_conversation_id(handover_id: &str, requested: Option<&str>, answered: Option<String>) -> String {
    answered
        .or_else(|| requested.map(str::to_owned))
        .unwrap_or_else(|| handover_id.to_owned())
}

// ---------------------------------------------------------------------------------------------
// ASSUMED CALLBACK CONTRACT (the documented default; confirm with Proximus):
//
//   {"type": "agent.joined" | "agent.message" | "conversation.closed",
//    "id": "<unique event or message id>", "conversationId": "<ours or #Interact's>",
//    "agent": {"id": "…", "name": "…"},            (optional)
//    "message": {"text": "…"}}                      (agent.message only)
//
// Ids may be strings or numbers. Other `type`s are acknowledged and ignored.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    conversation_id: Option<Value>,
    #[serde(default)]
    agent: Option<CallbackAgent>,
    #[serde(default)]
    message: Option<CallbackMessage>,
}

#[derive(Deserialize)]
struct CallbackAgent {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct CallbackMessage {
    #[serde(default)]
    text: Option<String>,
}

#[async_trait]
impl Provider for InteractProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Interact
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// No public presence API: #Interact's own routing decides what happens without agents.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        Ok(AgentAvailability::Unknown)
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
        let resp = self.post(&path, &start_body(r, conversation_id)).await?;
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
        self.post(&path, &body).await.map(drop)
    }

    /// Closes the #Interact conversation so no agent is left with a user who is gone.
    async fn end(&self, delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        let path = fill(&self.end_path, &c.conversation_id, &c.handover_id);
        let body = end_body(delivery_id, &c.conversation_id, &c.handover_id, reason);
        self.post(&path, &body).await.map(drop)
    }

    /// The token we gave #Interact must come back in the configured header. It authenticates
    /// the caller, not the body (the public sources describe a token, not a signature), and
    /// carries no timestamp: a replayed call is absorbed by the shell's idempotency on `id`.
    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        let value = r.header(self.callback_header.as_str()).ok_or_else(|| {
            CallbackError::Unauthenticated(format!("missing {} header", self.callback_header.as_str()))
        })?;
        let token = strip_scheme(value, &self.callback_scheme);
        if token.is_empty() {
            return Err(CallbackError::Unauthenticated(format!(
                "empty token in the {} header",
                self.callback_header.as_str()
            )));
        }
        if token_matches(token, &self.callback_token) {
            Ok(())
        } else {
            Err(CallbackError::Unauthenticated(
                "the #Interact token does not match".into(),
            ))
        }
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        // Only an object is an event (serde would also read a struct from an array).
        let value: Value = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        if !value.is_object() {
            return Err(CallbackError::Malformed("the body must be a JSON object".into()));
        }
        let body: CallbackBody = serde_json::from_value(value).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let kind = body
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing field `type`".into()))?;
        if ![EVENT_AGENT_JOINED, EVENT_AGENT_MESSAGE, EVENT_CONVERSATION_CLOSED].contains(&kind) {
            // Forward compatible: events we do not use are acknowledged and ignored.
            return Ok(Callback::Events(Vec::new()));
        }
        let event_id =
            id_text(body.id.as_ref()).ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
        let conversation_id = id_text(body.conversation_id.as_ref())
            .ok_or_else(|| CallbackError::Malformed("missing field `conversationId`".into()))?;
        let event_kind = if kind == EVENT_AGENT_JOINED {
            ProviderEventKind::AgentJoined {
                agent: self.agent(body.agent.as_ref()),
            }
        } else if kind == EVENT_AGENT_MESSAGE {
            let text = body
                .message
                .and_then(|m| m.text)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| CallbackError::Malformed("missing or empty field `message.text`".into()))?;
            ProviderEventKind::AgentMessage {
                agent: Some(self.agent(body.agent.as_ref())),
                message: Message::text(text),
            }
        } else {
            ProviderEventKind::ConversationClosed
        };
        Ok(Callback::Events(vec![ProviderEvent {
            event_id,
            conversation_id,
            kind: event_kind,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Handover, Trigger, UserInfo};
    use lambda_http::http::{HeaderMap, HeaderValue as HttpHeaderValue};

    const CALLBACK_TOKEN: &str = "cb-token-0123456789";

    fn provider_with(settings: Value) -> Result<InteractProvider, ProviderSetupError> {
        provider_with_secret(
            settings,
            r#"{"apiToken":"api-token-1","callbackToken":"cb-token-0123456789"}"#,
        )
    }

    fn provider_with_secret(settings: Value, secret: &str) -> Result<InteractProvider, ProviderSetupError> {
        let Value::Object(settings) = settings else {
            panic!("settings are an object")
        };
        let config = ProviderConfig {
            id: "interact".into(),
            kind: ProviderKind::Interact,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/interact".into(),
            settings,
        };
        let secret = Secret::from_json(secret).unwrap();
        InteractProvider::new(&config, &secret, reqwest::Client::new())
    }

    fn provider() -> InteractProvider {
        provider_with(json!({"apiBaseUrl": "https://interact.example.com/api/"})).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HttpHeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    fn verify(p: &InteractProvider, pairs: &[(&str, &str)], body: &[u8]) -> Result<(), CallbackError> {
        let h = headers(pairs);
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body,
        };
        p.verify_callback(&req, Utc::now())
    }

    fn parse(p: &InteractProvider, body: &Value) -> Result<Callback, CallbackError> {
        let bytes = serde_json::to_vec(body).unwrap();
        let h = HeaderMap::new();
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

    /// A callback in the documented default shape.
    fn agent_message(text: &str) -> Value {
        json!({
            "type": "agent.message", "id": "ev-2", "conversationId": "ic-1",
            "agent": {"id": "a-3", "name": "Eva"}, "message": {"text": text}
        })
    }

    const BODY: &[u8] = br#"{"type":"agent.message","id":"ev-2","conversationId":"ic-1","message":{"text":"Hi"}}"#;

    #[test]
    fn only_the_configured_token_is_accepted() {
        let p = provider();
        let bearer = format!("Bearer {CALLBACK_TOKEN}");
        assert!(verify(&p, &[("authorization", bearer.as_str())], BODY).is_ok());
        // The scheme word in any case, or the token alone, is the same token.
        assert!(
            verify(
                &p,
                &[("authorization", format!("bearer  {CALLBACK_TOKEN}").as_str())],
                BODY
            )
            .is_ok()
        );
        assert!(verify(&p, &[("authorization", CALLBACK_TOKEN)], BODY).is_ok());

        // Wrong token, a prefix of it, a longer one, an empty one.
        assert!(matches!(
            verify(&p, &[("authorization", "Bearer another-token")], BODY),
            Err(CallbackError::Unauthenticated(_))
        ));
        let short = format!("Bearer {}", &CALLBACK_TOKEN[..CALLBACK_TOKEN.len() - 1]);
        assert!(verify(&p, &[("authorization", short.as_str())], BODY).is_err());
        assert!(verify(&p, &[("authorization", format!("{bearer}x").as_str())], BODY).is_err());
        assert!(verify(&p, &[("authorization", "Bearer ")], BODY).is_err());
        // The token from our outbound side is not the callback token.
        assert!(verify(&p, &[("authorization", "Bearer api-token-1")], BODY).is_err());

        // Missing header, or the right token in another header.
        assert!(matches!(
            verify(&p, &[], BODY),
            Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
        ));
        assert!(verify(&p, &[("x-interact-token", bearer.as_str())], BODY).is_err());
    }

    #[test]
    fn the_token_authenticates_the_caller_not_the_body() {
        // Documented limitation: a token scheme does not sign the body, so a changed body with
        // the right token is still accepted (TLS protects it in transit).
        let p = provider();
        let bearer = format!("Bearer {CALLBACK_TOKEN}");
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("Hi", "Bye");
        assert!(verify(&p, &[("authorization", bearer.as_str())], tampered.as_bytes()).is_ok());
    }

    #[test]
    fn the_callback_header_and_scheme_are_settings() {
        let p = provider_with(json!({
            "apiBaseUrl": "https://interact.example.com",
            "callbackTokenHeader": "X-Interact-Token",
            "callbackTokenScheme": ""
        }))
        .unwrap();
        assert!(verify(&p, &[("x-interact-token", CALLBACK_TOKEN)], BODY).is_ok());
        assert!(
            verify(
                &p,
                &[("authorization", format!("Bearer {CALLBACK_TOKEN}").as_str())],
                BODY
            )
            .is_err()
        );
        // With no scheme, a value with a word in front is not the token.
        assert!(
            verify(
                &p,
                &[("x-interact-token", format!("Bearer {CALLBACK_TOKEN}").as_str())],
                BODY
            )
            .is_err()
        );

        // The callback side follows the outbound side unless told otherwise.
        let p = provider_with(json!({
            "apiBaseUrl": "https://interact.example.com",
            "tokenHeader": "X-Api-Key",
            "tokenScheme": ""
        }))
        .unwrap();
        assert_eq!(p.token_header.as_str(), "x-api-key");
        assert_eq!(p.token_value.to_str().unwrap(), "api-token-1");
        assert!(p.token_value.is_sensitive());
        assert!(verify(&p, &[("x-api-key", CALLBACK_TOKEN)], BODY).is_ok());
    }

    #[test]
    fn the_default_outbound_token_is_a_bearer_authorization() {
        let p = provider();
        assert_eq!(p.token_header.as_str(), "authorization");
        assert_eq!(p.token_value.to_str().unwrap(), "Bearer api-token-1");
        assert_eq!(p.api_base, "https://interact.example.com/api");
    }

    #[test]
    fn agent_joined_becomes_agent_joined() {
        let p = provider();
        let body = json!({"type": "agent.joined", "id": "ev-1", "conversationId": "ic-1", "agent": {"id": "a-3", "name": "Eva"}});
        let e = events(parse(&p, &body).unwrap());
        assert_eq!(
            e,
            vec![ProviderEvent {
                event_id: "ev-1".into(),
                conversation_id: "ic-1".into(),
                kind: ProviderEventKind::AgentJoined {
                    agent: Agent {
                        id: "a-3".into(),
                        name: Some("Eva".into())
                    }
                },
            }]
        );
        // Without an agent, and with numeric ids.
        let body = json!({"type": "agent.joined", "id": 17, "conversationId": 4242});
        let e = events(parse(&p, &body).unwrap());
        assert_eq!(e[0].event_id, "17");
        assert_eq!(e[0].conversation_id, "4242");
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: "interact".into(),
                    name: None
                }
            }
        );
    }

    #[test]
    fn agent_message_becomes_agent_message() {
        let p = provider();
        let e = events(parse(&p, &agent_message("Hello, how can I help?")).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "ev-2");
        assert_eq!(e[0].conversation_id, "ic-1");
        match &e[0].kind {
            ProviderEventKind::AgentMessage { agent, message } => {
                assert_eq!(message, &Message::text("Hello, how can I help?"));
                assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Eva"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn conversation_closed_becomes_conversation_closed() {
        let p = provider();
        let body = json!({"type": "conversation.closed", "id": "ev-3", "conversationId": "ic-1"});
        let e = events(parse(&p, &body).unwrap());
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
        assert_eq!(e[0].event_id, "ev-3");
    }

    #[test]
    fn the_configured_agent_name_wins() {
        let p =
            provider_with(json!({"apiBaseUrl": "https://interact.example.com", "agentName": "Acme support"})).unwrap();
        let e = events(parse(&p, &agent_message("Hi")).unwrap());
        let ProviderEventKind::AgentMessage { agent, .. } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Acme support"));
        assert_eq!(agent.as_ref().unwrap().id, "a-3");
    }

    #[test]
    fn unknown_types_are_ignored_and_incomplete_events_are_malformed() {
        let p = provider();
        let future = json!({"type": "agent.typing", "id": "ev-9", "conversationId": "ic-1"});
        assert!(events(parse(&p, &future).unwrap()).is_empty());
        assert!(events(parse(&p, &json!({"type": "ping"})).unwrap()).is_empty());

        let malformed = |body: Value| matches!(parse(&p, &body), Err(CallbackError::Malformed(_)));
        assert!(malformed(json!({"id": "ev-1", "conversationId": "ic-1"})), "no type");
        assert!(
            malformed(json!({"type": "agent.joined", "conversationId": "ic-1"})),
            "no id"
        );
        assert!(
            malformed(json!({"type": "conversation.closed", "id": "ev-1"})),
            "no conversation"
        );
        assert!(malformed(
            json!({"type": "agent.joined", "id": " ", "conversationId": "ic-1"})
        ));
        assert!(malformed(agent_message("   ")), "empty text");
        assert!(malformed(
            json!({"type": "agent.message", "id": "ev-1", "conversationId": "ic-1"})
        ));
        assert!(malformed(json!(["not", "an", "object"])));
        let h = HeaderMap::new();
        let req = CallbackRequest {
            method: "POST",
            headers: &h,
            query: &[],
            body: b"not json",
        };
        assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
    }

    #[test]
    fn settings_are_checked_and_named() {
        let err = |settings: Value| provider_with(settings).err().unwrap().to_string();
        assert!(err(json!({})).contains("providers.apiBaseUrl"));
        assert!(err(json!({"apiBaseUrl": "interact.example.com"})).contains("providers.apiBaseUrl"));
        assert!(err(json!({"apiBaseUrl": "ftp://interact.example.com"})).contains("providers.apiBaseUrl"));
        let e = err(json!({"apiBaseUrl": "https://i.example", "startPath": "conversations"}));
        assert!(e.contains("providers.startPath"), "{e}");
        let e = err(json!({"apiBaseUrl": "https://i.example", "endPath": "/c/{id}/close"}));
        assert!(e.contains("providers.endPath"), "{e}");
        let e = err(json!({"apiBaseUrl": "https://i.example", "tokenHeader": "bad header"}));
        assert!(e.contains("providers.tokenHeader"), "{e}");
        // A misspelt setting is refused rather than silently replaced by a default.
        let e = err(json!({"apiBaseUrl": "https://i.example", "messagepath": "/m"}));
        assert!(e.contains("messagepath"), "{e}");
    }

    #[test]
    fn both_tokens_are_required() {
        let settings = json!({"apiBaseUrl": "https://interact.example.com"});
        let e = provider_with_secret(settings.clone(), r#"{"apiToken":"a"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("callbackToken"), "{e}");
        let e = provider_with_secret(settings.clone(), r#"{"apiToken":" ","callbackToken":"c"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("apiToken"), "{e}");
        let e = provider_with_secret(settings, r#"{"apiToken":"a\nb","callbackToken":"c"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("apiToken"), "{e}");
    }

    #[test]
    fn paths_are_filled_and_encoded() {
        assert_eq!(
            fill(defaults::MESSAGE_PATH, "ic 1/x", "h-1"),
            "/conversations/ic%201%2Fx/messages"
        );
        assert_eq!(
            fill("/h/{handoverId}/c/{conversationId}", "ic-1", "h-1"),
            "/h/h-1/c/ic-1"
        );
        assert_eq!(fill(defaults::START_PATH, "ic-1", "h-1"), "/conversations");
        let p = provider_with(json!({
            "apiBaseUrl": "https://i.example",
            "startPath": "/v2/handovers/{handoverId}",
            "messagePath": "/v2/chats/{conversationId}/messages",
            "endPath": "/v2/chats/{conversationId}",
            "relayMessages": false
        }))
        .unwrap();
        assert_eq!(p.start_path, "/v2/handovers/{handoverId}");
        assert!(!p.relay_messages);
    }

    #[test]
    fn the_indexed_id_prefers_interacts_answer() {
        assert_eq!(
            indexed_conversation_id("h-1", Some("ic-0"), Some("ic-1".into())),
            "ic-1"
        );
        assert_eq!(indexed_conversation_id("h-1", Some("ic-0"), None), "ic-0");
        assert_eq!(indexed_conversation_id("h-1", None, None), "h-1");
    }

    fn handover() -> Handover {
        Handover {
            id: "h-1".into(),
            trigger: Trigger::ExplicitRequest,
            provider: "interact".into(),
            queue: "Support_NL".into(),
            language: "nl".into(),
            variables: [("orderId".to_owned(), json!("A-1"))].into_iter().collect(),
            tags: vec!["vip".into()],
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

    fn entry(seq: u64, actor: Actor, message: Message) -> TranscriptEntry {
        TranscriptEntry {
            seq,
            actor,
            timestamp: DateTime::parse_from_rfc3339("2026-11-25T08:59:00Z").unwrap().to_utc(),
            message,
            agent: None,
            event_id: None,
        }
    }

    #[test]
    fn the_start_body_carries_context_and_the_transcript_as_text() {
        let h = handover();
        let user = UserInfo {
            id: "u-7".into(),
            name: Some("Ann".into()),
            email: None,
            locale: None,
        };
        let transcript = [
            entry(1, Actor::User, Message::text("Where is my parcel?")),
            entry(
                2,
                Actor::Bot,
                Message {
                    text: Some("Do you have a tracking number?".into()),
                    quick_replies: vec!["Yes".into(), "No".into()],
                    ..Message::default()
                },
            ),
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
        let body = start_body(&r, "h-1");
        assert_eq!(body["id"], "h-1-start");
        assert_eq!(body["type"], "conversation.started");
        assert_eq!(body["conversationId"], "h-1");
        assert_eq!(body["handoverId"], "h-1");
        assert_eq!(body["queue"], "Support_NL");
        assert_eq!(body["trigger"], "explicit_request");
        assert_eq!(body["user"], json!({"id": "u-7", "name": "Ann"}));
        assert_eq!(body["variables"], json!({"orderId": "A-1"}));
        assert_eq!(body["tags"], json!(["vip"]));
        assert_eq!(body["summary"], "Parcel is late");
        assert_eq!(body["channel"], "web");
        assert_eq!(
            body["transcriptText"],
            "User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"
        );
    }

    #[test]
    fn relayed_turns_are_text_and_the_end_names_the_reason() {
        let bot_turn = entry(
            3,
            Actor::Bot,
            Message {
                text: Some("Pick one".into()),
                quick_replies: vec!["A".into(), "B".into()],
                ..Message::default()
            },
        );
        let body = message_body("d-3", "ic-1", "h-1", &bot_turn);
        assert_eq!(body["type"], "bot.message");
        assert_eq!(body["actor"], "bot");
        assert_eq!(body["text"], "Pick one\n[Quick replies: A | B]");
        assert_eq!(body["conversationId"], "ic-1");
        let user_turn = entry(4, Actor::User, Message::text("A"));
        assert_eq!(message_body("d-4", "ic-1", "h-1", &user_turn)["type"], "user.message");

        let end = end_body("d-5", "ic-1", "h-1", EndReason::UserCancelled);
        assert_eq!(end["type"], "conversation.ended");
        assert_eq!(end["reason"], "user_cancelled");
        assert_eq!(end["id"], "d-5");
    }

    #[test]
    fn tokens_compare_by_content() {
        assert!(token_matches("abc", b"abc"));
        assert!(!token_matches("abd", b"abc"));
        assert!(!token_matches("ab", b"abc"));
        assert!(!token_matches("", b"abc"));
        assert_eq!(strip_scheme("Bearer  x ", "Bearer"), "x");
        assert_eq!(strip_scheme("Bearerx", "Bearer"), "Bearerx");
        assert_eq!(strip_scheme("x", "Bearer"), "x");
        assert_eq!(strip_scheme(" x ", ""), "x");
    }
}

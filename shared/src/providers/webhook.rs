//! The generic webhook provider: for a contact center without a dedicated adapter. We POST
//! signed JSON envelopes to its URL; it calls our callback URL with signed envelopes back. The
//! signature scheme is the native contract's (see [`crate::signing`]) with the provider's own
//! secret.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::kit::http::checked;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest,
};
use crate::bot::{ProviderConfig, ProviderKind};
use crate::delivery::{self, DeliveryError};
use crate::domain::{Agent, EndReason, Handover, Message, TranscriptEntry, render_transcript};
use crate::secrets::Secret;
use crate::signing;

/// What the generic webhook can do (agent availability once `availabilityUrl` is set).
pub const CAPABILITIES: Capabilities = Capabilities {
    rich_content: true,
    attachments: true,
    typing: true,
    bot_history_visible: true,
    history_written_back: true,
    agent_availability: true,
    rich_content_to_user: true,
    provider_wait_estimate: false,
};

/// This provider's entry in the registry (`providers::registration`).
pub const REGISTRATION: super::Registration = super::Registration {
    capabilities: CAPABILITIES,
    traits: super::COMMON_TRAITS,
    entry_traits: None,
    build: |config, secret, http| Ok(std::sync::Arc::new(WebhookProvider::new(config, secret, http)?)),
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

pub struct WebhookProvider {
    url: String,
    availability_url: Option<String>,
    signing_secret: Vec<u8>,
    http: reqwest::Client,
}

impl WebhookProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        // Everything the generic webhook needs is a core field of the entry (`url`,
        // `availabilityUrl`): any other field is a mistake.
        let NoSettings {} = super::kit::settings::parse(&config.settings)?;
        let url = config
            .url
            .clone()
            .ok_or_else(|| ProviderSetupError::Config(format!("provider {:?} has no url", config.id)))?;
        let signing_secret = secret
            .field("signingSecret")
            .map_err(|e| ProviderSetupError::Config(e.to_string()))?
            .as_bytes()
            .to_vec();
        Ok(WebhookProvider {
            url,
            availability_url: config.availability_url.clone(),
            signing_secret,
            http,
        })
    }

    async fn post(&self, envelope: Value) -> Result<reqwest::Response, DeliveryError> {
        let body = serde_json::to_vec(&envelope).expect("JSON values serialize");
        let now = Utc::now();
        let mut req = self.http.post(&self.url).header("content-type", "application/json");
        for (name, value) in signing::headers(&self.signing_secret, now.timestamp(), &body) {
            req = req.header(name, value);
        }
        let resp = req.body(body).send().await.map_err(delivery::transport)?;
        checked(resp, now).await
    }
}

fn envelope(id: &str, kind: &str, conversation_id: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(id));
    m.insert("type".into(), json!(kind));
    m.insert("conversationId".into(), json!(conversation_id));
    m.insert("timestamp".into(), json!(Utc::now()));
    m
}

/// The callback envelope. Only `id`, `type` and `conversationId` are required of every event.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackEnvelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    conversation_id: String,
    #[serde(default)]
    agent: Option<Agent>,
    #[serde(default)]
    message: Option<Message>,
}

#[async_trait]
impl Provider for WebhookProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Webhook
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.availability_url.is_some(),
            ..CAPABILITIES
        }
    }

    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        let Some(url) = &self.availability_url else {
            return Ok(AgentAvailability::Unknown);
        };
        let now = Utc::now();
        let mut req = self.http.get(url).query(&[("queue", queue)]);
        for (name, value) in signing::headers(&self.signing_secret, now.timestamp(), b"") {
            req = req.header(name, value);
        }
        let resp = checked(req.send().await.map_err(delivery::transport)?, now).await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| DeliveryError::permanent(format!("availability body: {e}")))?;
        Ok(match v.get("agentsOnline").and_then(Value::as_u64) {
            Some(0) => AgentAvailability::NoneOnline,
            Some(_) => AgentAvailability::Online,
            None => AgentAvailability::Unknown,
        })
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let mut m = envelope(r.delivery_id, "conversation.started", &h.id);
        m.insert("botId".into(), json!(r.bot_id));
        m.insert("sessionId".into(), json!(r.session_id));
        m.insert("queue".into(), json!(h.queue));
        m.insert("trigger".into(), json!(h.trigger));
        m.insert("language".into(), json!(h.language));
        if let Some(channel) = r.channel {
            m.insert("channel".into(), json!(channel));
        }
        if let Some(user) = r.user {
            m.insert("user".into(), json!(user));
        }
        m.insert("variables".into(), json!(h.variables));
        m.insert("tags".into(), json!(h.tags));
        if let Some(summary) = &h.summary {
            m.insert("summary".into(), json!(summary));
        }
        m.insert("transcriptText".into(), json!(render_transcript(r.transcript)));
        m.insert("transcript".into(), json!(r.transcript));
        self.post(Value::Object(m)).await?;
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id: h.id.clone(),
        })
    }

    /// The contact center files the conversation under our handover id.
    fn uncertain_start_id(&self, handover: &Handover) -> Option<String> {
        Some(handover.id.clone())
    }

    async fn send_message(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        let mut m = envelope(delivery_id, "user.message", &c.conversation_id);
        m.insert("actor".into(), json!(entry.actor));
        m.insert("seq".into(), json!(entry.seq));
        m.insert("message".into(), json!(entry.message));
        m.insert("text".into(), json!(entry.message.render_text()));
        self.post(Value::Object(m)).await.map(drop)
    }

    /// `conversation.ended` with `"ticket": true`: the contact center keeps the conversation and
    /// answers the user outside the chat.
    async fn keep_as_ticket(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        reason: EndReason,
    ) -> Result<(), DeliveryError> {
        let mut m = envelope(delivery_id, "conversation.ended", &c.conversation_id);
        m.insert("reason".into(), json!(reason));
        m.insert("ticket".into(), json!(true));
        self.post(Value::Object(m)).await.map(drop)
    }

    async fn end(&self, delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        let mut m = envelope(delivery_id, "conversation.ended", &c.conversation_id);
        m.insert("reason".into(), json!(reason));
        self.post(Value::Object(m)).await.map(drop)
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, now: DateTime<Utc>) -> Result<(), CallbackError> {
        signing::verify(
            &self.signing_secret,
            r.header(signing::TIMESTAMP_HEADER),
            r.header(signing::SIGNATURE_HEADER),
            r.body,
            now.timestamp(),
        )
        .map_err(|e| CallbackError::Unauthenticated(e.to_string()))
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let env: CallbackEnvelope =
            serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let kind = match env.kind.as_str() {
            "agent.joined" => ProviderEventKind::AgentJoined {
                agent: env
                    .agent
                    .ok_or_else(|| CallbackError::Malformed("missing field `agent`".into()))?,
            },
            "agent.message" => {
                let message = env
                    .message
                    .ok_or_else(|| CallbackError::Malformed("missing field `message`".into()))?;
                if message.is_empty() {
                    return Err(CallbackError::Malformed("field `message` is empty".into()));
                }
                ProviderEventKind::AgentMessage {
                    agent: env.agent,
                    message,
                }
            }
            "agent.typing" => ProviderEventKind::AgentTyping { agent: env.agent },
            "conversation.closed" => ProviderEventKind::ConversationClosed,
            // Forward compatible: events we do not use are acknowledged and ignored.
            _ => return Ok(Callback::Events(Vec::new())),
        };
        Ok(Callback::Events(vec![ProviderEvent {
            event_id: env.id,
            conversation_id: env.conversation_id,
            kind,
        }]))
    }
}

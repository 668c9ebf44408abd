//! The bot's signed events (`POST /v1/bots/{botId}/events`) read into the core's input.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::outbound::NativePlatform;
use crate::bot::{PlatformConfig, PlatformKind};
use crate::domain::{Event, HandoverRequest, Input, Message, Speaker, UserInfo};
use crate::kit::settings::SettingError;
use crate::platform::{
    BotPlatform, Events, Inbound, PlatformPort, PlatformRequest, PlatformRoute, Refusal, Rendering, SetupError, Step,
    parse_json,
};
use crate::secrets::Secret;
use crate::signing;

/// Per-field limits, so one field cannot carry the whole 256 KiB.
pub const MAX_ID_LEN: usize = 128;
pub use crate::domain::limits::MAX_TEXT_LEN;

/// A request body as sent by the bot platform. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NativeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub session_id: String,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub user: Option<UserInfo>,
    #[serde(default)]
    pub message: Option<NativeMessage>,
    #[serde(default)]
    pub handover: Option<HandoverRequest>,
}

#[derive(Debug, Deserialize)]
pub struct NativeMessage {
    pub actor: Speaker,
    #[serde(flatten)]
    pub content: Message,
}

/// A request that is well-formed JSON but not a valid event; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
    /// The field is over its size limit (answered 422 `too_large`, not 400).
    pub oversize: bool,
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        message: message.into(),
        oversize: false,
    }
}

impl From<crate::domain::limits::Oversize> for FieldProblem {
    fn from(o: crate::domain::limits::Oversize) -> Self {
        FieldProblem {
            message: format!("longer than {}", o.limit),
            field: o.field,
            oversize: true,
        }
    }
}

/// The three event types of the contract.
pub const EVENT_TYPES: [&str; 3] = ["message", "handover.request", "handover.cancel"];

impl NativeEvent {
    /// Checks limits and required parts, and turns the event into the core's input.
    pub fn into_input(self) -> Result<(String, Input), FieldProblem> {
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN {
            return Err(problem("id", format!("must be 1-{MAX_ID_LEN} characters")));
        }
        if self.session_id.is_empty() || self.session_id.len() > MAX_ID_LEN || self.session_id.contains('#') {
            return Err(problem(
                "sessionId",
                format!("must be 1-{MAX_ID_LEN} characters without '#'"),
            ));
        }
        let event = match self.kind.as_str() {
            "message" => {
                let m = self
                    .message
                    .ok_or_else(|| problem("message", "is required for type \"message\""))?;
                crate::domain::limits::check_message("message", &m.content)?;
                if m.content.is_empty() {
                    return Err(problem("message", "has no content"));
                }
                Event::Message {
                    speaker: m.actor,
                    message: m.content,
                }
            }
            "handover.request" => {
                let req = self
                    .handover
                    .ok_or_else(|| problem("handover", "is required for type \"handover.request\""))?;
                crate::domain::limits::check_request("handover", &req)?;
                Event::HandoverRequested(req)
            }
            "handover.cancel" => Event::UserCancelled,
            other => {
                return Err(problem(
                    "type",
                    format!(
                        "unknown event type {other:?}; expected one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        };
        if let Some(user) = &self.user {
            crate::domain::limits::check_user("user", user)?;
        }
        crate::domain::limits::check_channel("channel", self.channel.as_deref())?;
        let input = Input {
            event,
            event_id: Some(self.id.clone()),
            user: self.user,
            channel: self.channel,
            context: Default::default(),
        };
        Ok((self.session_id, input))
    }
}

/// The native contract's inbound side: requests signed with the bot's signing secret.
pub struct NativePort;

/// What a session read signs instead of a body: its method and path (`GET /v1/bots/…`,
/// without any stage prefix), so a signature for one session cannot read another.
pub fn session_read_signed_bytes(path: &str) -> Vec<u8> {
    format!("GET {path}").into_bytes()
}

impl PlatformPort for NativePort {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Native
    }

    fn routes(&self) -> &'static [PlatformRoute] {
        super::ROUTES
    }

    fn verify_secret_field(&self) -> &'static str {
        super::SIGNING_SECRET_FIELD
    }

    /// Our events are posted to the bot's `outboundUrl`: without it, a bot cannot be stored.
    fn check_settings(&self, config: &PlatformConfig) -> Result<(), SettingError> {
        match config.outbound_url {
            Some(_) => Ok(()),
            None => Err(SettingError::new(
                "outboundUrl",
                "is required for a native bot platform",
            )),
        }
    }

    fn build(
        &self,
        config: &PlatformConfig,
        secret: &Secret,
        http: reqwest::Client,
    ) -> Result<Arc<dyn BotPlatform>, SetupError> {
        Ok(Arc::new(NativePlatform::new(config, secret, http)?))
    }

    /// The signature over the raw body of an event, or over the method and path of a session
    /// read (which has no body).
    fn verify(&self, request: &PlatformRequest<'_>, secret: &[u8], now: i64) -> Result<(), Refusal> {
        let signed = match request.method {
            "GET" => session_read_signed_bytes(request.path),
            _ => request.body.to_vec(),
        };
        signing::verify(
            secret,
            request.header(signing::TIMESTAMP_HEADER),
            request.header(signing::SIGNATURE_HEADER),
            &signed,
            now,
        )
        .map_err(|e| Refusal::Unauthenticated(e.to_string()))
    }

    fn parse(
        &self,
        bot_id: &str,
        _platform: &PlatformConfig,
        request: &PlatformRequest<'_>,
    ) -> Result<Inbound, Refusal> {
        let event: NativeEvent = parse_json(request.body)?;
        let (session_id, input) = event.into_input().map_err(|p| match p.oversize {
            true => Refusal::TooLarge(p.to_string()),
            false => Refusal::invalid("invalid_request", p.to_string()),
        })?;
        let event_id = input.event_id.clone().unwrap_or_default();
        Ok(Inbound::Events(Events {
            scope: format!("bot:{bot_id}:{session_id}"),
            session_id,
            steps: vec![Step::Event {
                input: Box::new(input),
                event_id,
                rendering: Rendering::Native,
                show_refusal_dialog: false,
            }],
        }))
    }
}

//! Sunshine Conversations' wire formats, typed: the webhook payload (OpenAPI description:
//! `x-webhooks."Webhook Event"`, only what we read, every optional field defaulted), the
//! message content agents send, and the switchboard bodies we send.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The webhook body: `{app, webhook, events[]}`. Events stay raw until their type is known,
/// so that an event type we do not read can never make the whole delivery malformed.
#[derive(Deserialize)]
pub(super) struct Envelope {
    #[serde(default)]
    pub(super) app: Option<AppRef>,
    pub(super) events: Vec<Value>,
}

#[derive(Deserialize)]
pub(super) struct AppRef {
    #[serde(default)]
    pub(super) id: Option<String>,
}

/// Only an event's type, read first.
#[derive(Deserialize)]
pub(super) struct EventType {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Event {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) payload: Payload,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Payload {
    #[serde(default)]
    pub(super) conversation: Option<Conversation>,
    #[serde(default)]
    pub(super) message: Option<WebhookMessage>,
    #[serde(default)]
    pub(super) activity: Option<Activity>,
    /// Free-form by definition: the metadata of the switchboard action, echoed.
    #[serde(default)]
    pub(super) metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Conversation {
    pub(super) id: String,
    #[serde(default)]
    pub(super) active_switchboard_integration: Option<SwitchboardIntegration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SwitchboardIntegration {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) integration_id: Option<String>,
    #[serde(default)]
    pub(super) integration_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WebhookMessage {
    pub(super) author: Author,
    /// Read into [`Content`] on its own: content we cannot read is named, not refused.
    #[serde(default)]
    pub(super) content: Option<Value>,
    #[serde(default)]
    pub(super) source: Option<Source>,
    #[serde(default)]
    pub(super) deleted: Option<bool>,
    /// Set on system messages such as "ticket closed"; only its presence matters.
    #[serde(default)]
    pub(super) activity: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Author {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) subtypes: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct Source {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Activity {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) author: Option<Author>,
    #[serde(default)]
    pub(super) source: Option<Source>,
}

/// A message's `content`, all types in one struct (`type` says which fields are set).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Content {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) media_url: Option<String>,
    #[serde(default)]
    pub(super) alt_text: Option<String>,
    #[serde(default)]
    pub(super) coordinates: Option<Coordinates>,
    #[serde(default)]
    pub(super) location: Option<Place>,
    /// Carousel and list items.
    #[serde(default)]
    pub(super) items: Vec<Item>,
    /// Form fields.
    #[serde(default)]
    pub(super) fields: Vec<FormField>,
    #[serde(default)]
    pub(super) text_fallback: Option<String>,
    #[serde(default)]
    pub(super) actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Coordinates {
    #[serde(default)]
    pub(super) lat: Option<f64>,
    #[serde(default)]
    pub(super) long: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Place {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Item {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) media_url: Option<String>,
    #[serde(default)]
    pub(super) actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FormField {
    #[serde(default)]
    pub(super) label: Option<String>,
}

/// `reply`, `link`, `webview`, `postback`, `buy`, `locationRequest`.
#[derive(Debug, Deserialize)]
pub(super) struct Action {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) uri: Option<String>,
    #[serde(default)]
    pub(super) payload: Option<String>,
}

/// The body of `passControl` and `releaseControl` (`switchboardIntegration` only for a pass).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SwitchboardAction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) switchboard_integration: Option<&'a str>,
    pub(super) metadata: Map<String, Value>,
}

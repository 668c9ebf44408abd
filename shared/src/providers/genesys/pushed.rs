//! Genesys conversation events pushed through Amazon EventBridge: Genesys' "Amazon EventBridge
//! Source" integration publishes the detail-event topics on a partner event source; a rule on
//! that bus (template.yaml, off by default) sends them to our callback URL through an API
//! destination, with the provider's push token in [`PUSH_TOKEN_HEADER`]. They arrive in the
//! EventBridge envelope: `detail-type` is the topic pattern, `detail.eventBody` the
//! `…DetailEventTopic…Event` model of the Platform API.

use serde::Deserialize;

use crate::domain::Agent;
use crate::providers::{Callback, CallbackError, ProviderEvent, ProviderEventKind};

/// The header the API destination's connection sets (`ApiKeyName` in template.yaml).
pub const PUSH_TOKEN_HEADER: &str = "x-handover-push-token";

const TOPIC_PREFIX: &str = "v2.detail.events.conversation.";

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "detail-type", default)]
    detail_type: Option<String>,
    #[serde(default)]
    detail: Option<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(default)]
    topic_name: Option<String>,
    #[serde(default)]
    event_body: Option<EventBody>,
}

/// The fields of `AcdEndDetailEventTopicAcdEndEvent`, `UserEndDetailEventTopicUserEndEvent` and
/// `CustomerEndDetailEventTopicCustomerEndEvent` we read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventBody {
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    acd_outcome: Option<String>,
    #[serde(default)]
    answered_user_id: Option<String>,
    #[serde(default)]
    disconnect_type: Option<String>,
}

/// Whether a body is an EventBridge envelope of a Genesys conversation detail event rather
/// than an Open Messaging webhook.
pub(super) fn is_pushed(body: &[u8]) -> bool {
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.detail_type)
        .is_some_and(|t| t.starts_with(TOPIC_PREFIX))
}

/// One pushed event, read into what it means for a handover; its `conversation_id` is
/// Genesys' conversation id (which the shell indexes when the start returned it). Events of
/// other media, and the queue events that change nothing here, are acknowledged.
pub(super) fn parse(body: &[u8], agent_name: Option<&str>) -> Result<Callback, CallbackError> {
    let e: Envelope = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    let none = || Ok(Callback::Events(Vec::new()));
    let topic = e
        .detail
        .as_ref()
        .and_then(|d| d.topic_name.clone())
        .or(e.detail_type)
        .unwrap_or_default();
    let Some(body) = e.detail.and_then(|d| d.event_body) else {
        return Err(CallbackError::Malformed("missing `detail.eventBody`".into()));
    };
    let conversation_id = body
        .conversation_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CallbackError::Malformed("missing `detail.eventBody.conversationId`".into()))?;
    let event_id =
        e.id.filter(|i| !i.is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing EventBridge `id`".into()))?;
    if body
        .media_type
        .as_deref()
        .is_some_and(|m| !m.eq_ignore_ascii_case("message"))
    {
        return none();
    }
    let upper = |s: &Option<String>| s.as_deref().unwrap_or_default().to_ascii_uppercase();
    let kind = if topic.ends_with(".acd.end") {
        // The queue's part ended: answered by a person (the join), or abandoned / flowed out.
        match (
            upper(&body.acd_outcome).as_str(),
            body.answered_user_id.filter(|u| !u.is_empty()),
        ) {
            ("ANSWERED", Some(user)) => ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: user,
                    name: agent_name.map(str::to_owned),
                },
            },
            _ => return none(),
        }
    } else if topic.ends_with(".customer.end") {
        ProviderEventKind::ConversationClosed
    } else if topic.ends_with(".user.end") {
        // An agent's part ended; a transfer hands the customer to someone else.
        if upper(&body.disconnect_type).contains("TRANSFER") {
            return none();
        }
        ProviderEventKind::ConversationClosed
    } else {
        // `acd.start` (the conversation entered a queue) and anything else: nothing to apply;
        // the handover already waits.
        return none();
    };
    Ok(Callback::Events(vec![ProviderEvent {
        event_id: format!("eventbridge-{event_id}"),
        conversation_id,
        kind,
    }]))
}

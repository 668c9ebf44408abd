//! The customer's answer to a structured message (a bot flow's quick replies or a card's
//! postback buttons) goes back to Genesys as a `ButtonResponse` on the structured-response
//! endpoint, so a flow that branches on the payload sees the choice as it offered it.
//!
//! A user turn reaches the adapter as text only (the bot platforms' contracts carry what the
//! user tapped, not the payload or the id of the message it answers), so the choice is found
//! at Genesys: the conversation's latest message, when it is a structured one Genesys sent,
//! is read back and the user's text compared with its choices. Anything else, and any failure
//! to read, leaves the turn as ordinary text, which Genesys also accepts as an answer.

use chrono::{DateTime, Utc};
use reqwest::Method;

use super::GenesysProvider;
use super::outbound::{inbound_message, sender};
use super::wire::{ButtonResponse, Content, MessageData, PolledConversation, StructuredResponse};
use crate::delivery::DeliveryError;
use crate::domain::{Actor, TranscriptEntry};
use crate::providers::{ProviderConversation, path_segment};

impl GenesysProvider {
    /// The structured message a user turn answers, and the choice it makes (`choice.rs`):
    /// asked of Genesys only for a user's text in a conversation whose id we know; `None` on
    /// any failure, since the text itself is still a valid answer.
    pub(super) async fn chosen(
        &self,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Option<(ButtonResponse, String)> {
        let text = entry.message.text.as_deref()?;
        if entry.actor != Actor::User || c.conversation_id == c.handover_id || text.trim().is_empty() {
            return None;
        }
        let conversation_path = format!("/api/v2/conversations/messages/{}", path_segment(&c.conversation_id));
        let conversation: PolledConversation = self.read_json(&conversation_path, &[]).await.ok()?;
        let message_id = latest_structured(&conversation)?;
        let path = format!("{conversation_path}/messages/{}", path_segment(&message_id));
        let data: MessageData = self.read_json(&path, &[]).await.ok()?;
        answer(&data, text)
    }

    /// Sends the user's choice as a `ButtonResponse` answering `originating_message_id`.
    pub(super) async fn send_choice(
        &self,
        delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
        (button_response, originating_message_id): (ButtonResponse, String),
    ) -> Result<(), DeliveryError> {
        let path = format!(
            "/api/v2/conversations/messages/{}/inbound/open/structured/response",
            path_segment(&self.integration_id)
        );
        let from = sender(&c.handover_id, None, false);
        let body = StructuredResponse {
            channel: inbound_message(from, delivery_id, entry.timestamp, "", None).channel,
            button_response,
            originating_message_id,
        };
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }
}

/// The id of the conversation's latest message when it is a structured message Genesys sent
/// (not one of ours, which are all on the `customer` participant), read from the
/// participants' `MessageDetails`.
pub(super) fn latest_structured(conversation: &PolledConversation) -> Option<String> {
    let mut latest: Option<(DateTime<Utc>, bool, &str, bool)> = None;
    for p in &conversation.participants {
        let ours = p.purpose.as_deref().is_some_and(|x| x.eq_ignore_ascii_case("customer"));
        for m in &p.messages {
            let (Some(id), Some(time)) = (m.message_id.as_deref(), m.message_time.as_deref()) else {
                continue;
            };
            let Ok(time) = DateTime::parse_from_rfc3339(time).map(|t| t.with_timezone(&Utc)) else {
                continue;
            };
            let structured = m
                .message_metadata
                .as_ref()
                .and_then(|md| md.kind.as_deref())
                .is_some_and(|k| k.eq_ignore_ascii_case("structured"));
            if latest.is_none_or(|(t, ..)| time > t) {
                latest = Some((time, ours, id, structured));
            }
        }
    }
    match latest {
        Some((_, false, id, true)) => Some(id.to_owned()),
        _ => None,
    }
}

/// The choices a structured message offers: quick replies (both versions) and the postback
/// buttons of cards and carousels, each with the text the customer sees.
pub(super) fn choices(content: &[Content]) -> Vec<ButtonResponse> {
    let mut out = Vec::new();
    let mut quick = |text: &str, payload: Option<&str>| {
        out.push(ButtonResponse {
            kind: "QuickReply",
            text: text.to_owned(),
            payload: payload.unwrap_or(text).to_owned(),
        })
    };
    for c in content {
        if let Some(q) = &c.quick_reply {
            quick(&q.text, q.payload.as_deref());
        }
        if let Some(q) = &c.quick_reply_v2 {
            for a in &q.actions {
                quick(&a.text, a.payload.as_deref());
            }
        }
    }
    let cards = content
        .iter()
        .flat_map(|c| c.card.iter().chain(c.carousel.iter().flat_map(|k| k.cards.iter())));
    for card in cards {
        for a in card.actions.iter().filter(|a| a.kind.eq_ignore_ascii_case("postback")) {
            out.push(ButtonResponse {
                kind: "Button",
                text: a.text.clone(),
                payload: a.payload.clone().unwrap_or_else(|| a.text.clone()),
            });
        }
    }
    out
}

/// The answer the user's text gives to an outbound structured message, with the id of that
/// message: the choice whose text it is (case and surrounding spaces aside).
pub(super) fn answer(data: &MessageData, user_text: &str) -> Option<(ButtonResponse, String)> {
    if !data
        .direction
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("outbound"))
    {
        return None;
    }
    let message = data.normalized_message.as_ref()?;
    let id = message.id.clone().filter(|id| !id.is_empty())?;
    let said = user_text.trim();
    choices(&message.content)
        .into_iter()
        .find(|c| !c.text.trim().is_empty() && c.text.trim().eq_ignore_ascii_case(said))
        .map(|c| (c, id))
}

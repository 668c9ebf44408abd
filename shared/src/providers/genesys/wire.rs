//! Genesys Cloud's wire formats, typed: the Open Messaging webhook's "Outbound Open
//! NormalizedMessage" and the conversation we poll (read leniently: only what we use, every
//! field optional where Genesys may leave it out), and the inbound Open Message we send.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The parts of `GET /api/v2/conversations/messages/{id}` (a `MessageConversation`) we read.
#[derive(Debug, Deserialize)]
pub(super) struct PolledConversation {
    #[serde(default)]
    pub(super) participants: Vec<PolledParticipant>,
}

/// A `MessageMediaParticipant`: `purpose` is agent, customer, acd, …; `state` is alerting,
/// connected, disconnected, terminated, ….
#[derive(Debug, Deserialize)]
pub(super) struct PolledParticipant {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) purpose: Option<String>,
    #[serde(default)]
    pub(super) state: Option<String>,
    #[serde(default)]
    pub(super) user: Option<PolledUser>,
    /// The queue of an `acd` participant: where the conversation waits.
    #[serde(default)]
    pub(super) queue: Option<PolledUser>,
    /// The participant's messages (`MessageDetails`), without their content.
    #[serde(default)]
    pub(super) messages: Vec<PolledMessage>,
}

/// SDK model `MessageDetails`: a message's id, time and what kind of content it has.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PolledMessage {
    #[serde(default)]
    pub(super) message_id: Option<String>,
    #[serde(default)]
    pub(super) message_time: Option<String>,
    #[serde(default)]
    pub(super) message_metadata: Option<MessageMetadata>,
}

/// SDK model `ConversationMessageMetadata`: `type` is `Text`, `Structured`, ….
#[derive(Debug, Deserialize)]
pub(super) struct MessageMetadata {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
}

/// `GET /api/v2/conversations/messages/{conversationId}/messages/{messageId}` (SDK model
/// `MessageData`): the message in its normalized form.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageData {
    #[serde(default)]
    pub(super) direction: Option<String>,
    #[serde(default)]
    pub(super) normalized_message: Option<NormalizedMessage>,
}

/// SDK model `ConversationNormalizedMessage`, the parts a choice is read from.
#[derive(Deserialize)]
pub(super) struct NormalizedMessage {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) content: Vec<Content>,
}

/// `POST /api/v2/conversations/messages/{integrationId}/inbound/open/structured/response`
/// (SDK model `OpenInboundStructuredResponseMessage`): the customer's answer to a structured
/// message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StructuredResponse {
    pub(super) channel: InboundChannel,
    pub(super) button_response: ButtonResponse,
    pub(super) originating_message_id: String,
}

/// SDK model `ContentButtonResponse`: `type` is `QuickReply` or `Button` here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct ButtonResponse {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) text: String,
    pub(super) payload: String,
}

/// `GET /api/v2/routing/queues/{queueId}/estimatedwaittime` (SDK model
/// `EstimatedWaitTimePredictions`): one prediction per media type scope.
#[derive(Debug, Deserialize)]
pub(super) struct WaitPredictions {
    #[serde(default)]
    pub(super) results: Vec<WaitPrediction>,
}

/// SDK model `PredictionResults`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WaitPrediction {
    #[serde(default)]
    pub(super) intent: Option<String>,
    #[serde(default)]
    pub(super) estimated_wait_time_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PolledUser {
    #[serde(default)]
    pub(super) id: Option<String>,
}

/// An "Outbound Open NormalizedMessage" (SDK model `OpenNormalizedMessage`), read leniently:
/// only `channel.to.id` and an id are required of every message.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Outbound {
    #[serde(default)]
    pub(super) id: Option<String>,
    pub(super) channel: OutboundChannel,
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) content: Option<Vec<Content>>,
    #[serde(default)]
    pub(super) events: Option<Vec<OutboundEvent>>,
    #[serde(default)]
    pub(super) direction: Option<String>,
    /// `Human` or `Bot` in Genesys' webhooks; not in the SDK model.
    #[serde(default)]
    pub(super) originating_entity: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutboundChannel {
    #[serde(default)]
    pub(super) message_id: Option<String>,
    #[serde(default)]
    pub(super) to: Option<Recipient>,
    #[serde(default)]
    pub(super) from: Option<Recipient>,
    #[serde(default)]
    pub(super) time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Recipient {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) nickname: Option<String>,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
}

impl Recipient {
    pub(super) fn display_name(&self) -> Option<String> {
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
pub(super) struct Content {
    #[serde(default)]
    pub(super) content_type: String,
    #[serde(default)]
    pub(super) attachment: Option<ContentAttachment>,
    /// `contentType: QuickReply`: one quick reply per content element.
    #[serde(default)]
    pub(super) quick_reply: Option<ContentQuickReply>,
    /// `contentType: Card`.
    #[serde(default)]
    pub(super) card: Option<ContentCard>,
    /// `contentType: Carousel`.
    #[serde(default)]
    pub(super) carousel: Option<ContentCarousel>,
    /// `contentType: QuickReplyV2`: a title and its quick replies in one element.
    #[serde(default)]
    pub(super) quick_reply_v2: Option<ContentQuickReplyV2>,
    /// `contentType: Text`.
    #[serde(default)]
    pub(super) text: Option<ContentText>,
    /// `contentType: DatePicker`.
    #[serde(default)]
    pub(super) date_picker: Option<ContentDatePicker>,
    /// `contentType: Notification`: a message template.
    #[serde(default)]
    pub(super) template: Option<ContentTemplate>,
    /// `contentType: Location`.
    #[serde(default)]
    pub(super) location: Option<ContentLocation>,
}

/// SDK model `ConversationContentQuickReplyV2`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentQuickReplyV2 {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) actions: Vec<ContentQuickReply>,
}

/// SDK model `ConversationContentText`.
#[derive(Deserialize)]
pub(super) struct ContentText {
    #[serde(default)]
    pub(super) body: Option<String>,
}

/// SDK model `ConversationContentDatePicker` (the parts a text fallback can show).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentDatePicker {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) subtitle: Option<String>,
}

/// SDK model `ConversationContentNotificationTemplate`: the body's text, with its
/// `{{1}}`-style placeholders filled from the parameters in order.
#[derive(Deserialize)]
pub(super) struct ContentTemplate {
    #[serde(default)]
    pub(super) header: Option<TemplateText>,
    #[serde(default)]
    pub(super) body: Option<TemplateBody>,
    #[serde(default)]
    pub(super) footer: Option<TemplateText>,
}

#[derive(Deserialize)]
pub(super) struct TemplateText {
    #[serde(default)]
    pub(super) text: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct TemplateBody {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) parameters: Vec<TemplateParameter>,
}

#[derive(Deserialize)]
pub(super) struct TemplateParameter {
    #[serde(default)]
    pub(super) text: Option<String>,
}

/// SDK model `ConversationContentLocation`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentLocation {
    #[serde(default)]
    pub(super) latitude: Option<f64>,
    #[serde(default)]
    pub(super) longitude: Option<f64>,
    #[serde(default)]
    pub(super) address: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
}

/// SDK model `ConversationContentQuickReply`: the text is also what the user answers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentQuickReply {
    #[serde(default)]
    pub(super) text: String,
    /// What a `ButtonResponse` to this reply carries back.
    #[serde(default)]
    pub(super) payload: Option<String>,
}

/// SDK model `ConversationContentCard`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentCard {
    #[serde(default)]
    pub(super) title: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) image: Option<String>,
    #[serde(default)]
    pub(super) actions: Vec<CardAction>,
}

/// SDK model `ConversationContentCardAction`: `type` is `Link` (with `url`) or `Postback`
/// (with `payload`, answered as a `ButtonResponse`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CardAction {
    #[serde(rename = "type", default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: String,
    #[serde(default)]
    pub(super) payload: Option<String>,
    #[serde(default)]
    pub(super) url: Option<String>,
}

/// SDK model `ConversationContentCarousel`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentCarousel {
    #[serde(default)]
    pub(super) cards: Vec<ContentCard>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContentAttachment {
    #[serde(default)]
    pub(super) media_type: Option<String>,
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) filename: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutboundEvent {
    #[serde(default)]
    pub(super) event_type: String,
    #[serde(default)]
    pub(super) typing: Option<Typing>,
}

#[derive(Deserialize)]
pub(super) struct Typing {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
}

/// An inbound Open Message we send (SDK model `OpenInboundNormalizedMessage`).
#[derive(Debug, Serialize)]
pub(super) struct InboundMessage {
    pub(super) channel: InboundChannel,
    pub(super) text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InboundChannel {
    pub(super) message_id: String,
    pub(super) from: Sender,
    pub(super) time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) metadata: Option<Metadata>,
}

/// Read by the Architect flow with "Get Participant Data".
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Metadata {
    pub(super) custom_attributes: BTreeMap<String, String>,
}

/// SDK model `OpenMessagingFromRecipient`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Sender {
    pub(super) id: String,
    pub(super) id_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<String>,
}

/// The answer to an inbound message: the conversation id with `prefetchConversationId=true`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InboundAnswer {
    #[serde(default)]
    pub(super) conversation_id: Option<String>,
}

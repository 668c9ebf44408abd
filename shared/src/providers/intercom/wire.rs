//! Intercom's wire formats, typed after its OpenAPI description (`intercom/Intercom-OpenAPI`,
//! `descriptions/2.14`): the webhook notification and the conversation it carries, the answers
//! we read (admins, contacts, a created conversation, an error list) and the bodies we send.
//! Ids are strings in some objects and numbers in others (`admin_assignee_id`), so they are
//! read as kit [`Scalar`]s.

use serde::{Deserialize, Serialize};

pub(super) use crate::providers::kit::wire::{Scalar, text};

/// A webhook notification (`notification_event`).
#[derive(Debug, Deserialize)]
pub(super) struct Notification {
    #[serde(default)]
    pub(super) topic: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    /// The workspace the notification is about.
    #[serde(default)]
    pub(super) app_id: Option<Scalar>,
    #[serde(default)]
    pub(super) data: Option<NotificationData>,
}

#[derive(Debug, Deserialize)]
pub(super) struct NotificationData {
    #[serde(default)]
    pub(super) item: Option<Conversation>,
}

/// The parts of a `conversation` object we read (webhook item and `GET /conversations/{id}`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Conversation {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) admin_assignee_id: Option<Scalar>,
    #[serde(default)]
    pub(super) conversation_parts: Option<PartList>,
    #[serde(default)]
    pub(super) contacts: Option<ContactList>,
}

impl Conversation {
    pub(super) fn parts(&self) -> &[Part] {
        self.conversation_parts
            .as_ref()
            .map(|l| l.conversation_parts.as_slice())
            .unwrap_or_default()
    }

    /// The conversation's first contact.
    pub(super) fn first_contact_id(&self) -> Option<String> {
        self.contacts
            .as_ref()
            .and_then(|l| l.contacts.first())
            .and_then(|c| text(&c.id))
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PartList {
    #[serde(default)]
    pub(super) conversation_parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ContactList {
    #[serde(default)]
    pub(super) contacts: Vec<ContactRef>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ContactRef {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
}

/// A `conversation_part`.
#[derive(Debug, Deserialize)]
pub(super) struct Part {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) part_type: Option<String>,
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) author: Option<Author>,
    #[serde(default)]
    pub(super) attachments: Vec<PartAttachment>,
    /// Set (an object) on assignment parts; only its presence matters.
    #[serde(default)]
    pub(super) assigned_to: Option<serde::de::IgnoredAny>,
}

impl Part {
    pub(super) fn is(&self, part_type: &str) -> bool {
        self.part_type.as_deref() == Some(part_type)
    }

    pub(super) fn is_assignment(&self) -> bool {
        self.assigned_to.is_some() || self.part_type.as_deref().is_some_and(|t| t.contains("assign"))
    }

    pub(super) fn author_id(&self) -> Option<String> {
        self.author.as_ref().and_then(|a| text(&a.id))
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Author {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) name: Option<String>,
    /// Set on the parts Intercom's AI agent (Fin) writes.
    #[serde(default)]
    pub(super) from_ai_agent: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PartAttachment {
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) content_type: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
}

/// `GET /admins`.
#[derive(Debug, Deserialize)]
pub(super) struct AdminList {
    #[serde(default)]
    pub(super) admins: Vec<Admin>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Admin {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) team_ids: Vec<Scalar>,
    #[serde(default)]
    pub(super) away_mode_enabled: Option<bool>,
    #[serde(default)]
    pub(super) has_inbox_seat: Option<bool>,
}

/// A `contact` as created, fetched or found.
#[derive(Debug, Deserialize)]
pub(super) struct ContactAnswer {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    /// `user` or `lead`.
    #[serde(default)]
    pub(super) role: Option<String>,
}

/// `POST /contacts/search`.
#[derive(Debug, Deserialize)]
pub(super) struct ContactSearch {
    #[serde(default)]
    pub(super) data: Vec<ContactAnswer>,
}

/// `POST /conversations`.
#[derive(Debug, Deserialize)]
pub(super) struct CreatedConversation {
    #[serde(default)]
    pub(super) conversation_id: Option<Scalar>,
}

/// An `error.list` answer.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorList {
    #[serde(default)]
    pub(super) errors: Vec<ErrorItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorItem {
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// `POST /conversations/{id}/parts`: an assignment or a close, made as the bot teammate.
#[derive(Debug, Serialize)]
pub(super) struct PartBody<'a> {
    pub(super) message_type: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    pub(super) admin_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) assignee_id: Option<&'a str>,
}

/// `POST /conversations/{id}/reply`: a note of the bot teammate or a reply of the contact.
#[derive(Debug, Serialize)]
pub(super) struct ReplyBody<'a> {
    pub(super) message_type: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) admin_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) intercom_user_id: Option<&'a str>,
    pub(super) body: &'a str,
}

/// `POST /contacts`.
#[derive(Debug, Serialize)]
pub(super) struct NewContact<'a> {
    pub(super) role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<&'a str>,
}

/// `POST /contacts/search` for one exact field value.
#[derive(Debug, Serialize)]
pub(super) struct ContactQuery<'a> {
    pub(super) query: FieldQuery<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct FieldQuery<'a> {
    pub(super) field: &'a str,
    pub(super) operator: &'a str,
    pub(super) value: &'a str,
}

/// `POST /conversations`: a conversation started by the contact.
#[derive(Debug, Serialize)]
pub(super) struct NewConversation<'a> {
    pub(super) from: Sender<'a>,
    pub(super) body: &'a str,
}

#[derive(Debug, Serialize)]
pub(super) struct Sender<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    pub(super) id: &'a str,
}

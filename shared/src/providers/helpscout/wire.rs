//! Help Scout's wire formats, typed: the conversation object webhooks carry (the 2.0 object
//! with `_embedded.threads`, and the older one with a `threads` list, where 2.0 has a count),
//! the thread list `GET …/threads` answers, and the bodies we send. Read leniently: a part of
//! another shape than expected is ignored rather than refusing the webhook.

use serde::{Deserialize, Serialize};

pub(super) use crate::providers::kit::wire::{Lenient, Scalar, read, text};

/// A conversation as a webhook carries it (or as `GET /v2/conversations/{id}` answers).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConversationBody {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) status: Option<Scalar>,
    /// The mailbox the conversation is in (after a `convo.moved`, the new one).
    #[serde(default)]
    pub(super) mailbox_id: Option<Scalar>,
    #[serde(default, rename = "_embedded")]
    pub(super) embedded: Option<Lenient<Embedded>>,
    /// The older object format's thread list; a count in the 2.0 object.
    #[serde(default)]
    pub(super) threads: Option<Lenient<Vec<Lenient<Thread>>>>,
    #[serde(default)]
    pub(super) assignee: Option<Lenient<Person>>,
    /// The older format's assignee.
    #[serde(default)]
    pub(super) owner: Option<Lenient<Person>>,
    #[serde(default)]
    pub(super) primary_customer: Option<Lenient<Person>>,
    #[serde(default)]
    pub(super) created_by: Option<Lenient<Person>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Embedded {
    #[serde(default)]
    pub(super) threads: Option<Lenient<Vec<Lenient<Thread>>>>,
}

impl ConversationBody {
    /// The embedded thread list (2.0), else the older format's list; `None` when the body
    /// carries no list at all (an empty list is an answer, a missing one is not).
    pub(super) fn thread_list(&self) -> Option<&[Lenient<Thread>]> {
        read(&self.embedded)
            .and_then(|e| read(&e.threads))
            .or_else(|| read(&self.threads))
            .map(Vec::as_slice)
    }
}

/// A person: a user (agent), a customer or a team.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Person {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) first: Option<String>,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
}

/// The short field (2.0), else the long one (older format), when not blank.
fn either<'a>(short: &'a Option<String>, long: &'a Option<String>) -> Option<&'a str> {
    short
        .as_deref()
        .or(long.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Person {
    pub(super) fn is(&self, kind: &str) -> bool {
        self.kind.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(kind))
    }

    /// "First Last", from either format's fields.
    pub(super) fn name(&self) -> Option<String> {
        let full = [
            either(&self.first, &self.first_name),
            either(&self.last, &self.last_name),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        (!full.is_empty()).then_some(full)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Thread {
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    /// `message`/`reply`/`chat` (a user's reply), `customer`, `note`, …
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    /// `published`, `draft`, `hidden`, …
    #[serde(default)]
    pub(super) state: Option<String>,
    #[serde(default)]
    pub(super) created_by: Option<Lenient<Person>>,
    /// HTML (2.0: `body`; older: `text`).
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) created_at: Option<String>,
    #[serde(default, rename = "_embedded")]
    pub(super) embedded: Option<Lenient<ThreadEmbedded>>,
    /// The older format's attachments.
    #[serde(default)]
    pub(super) attachments: Option<Lenient<Vec<Lenient<AttachmentWire>>>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ThreadEmbedded {
    #[serde(default)]
    pub(super) attachments: Option<Lenient<Vec<Lenient<AttachmentWire>>>>,
}

/// An attachment: `_links.web.href` (2.0) or `url` (older), its type and file name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttachmentWire {
    #[serde(default, rename = "_links")]
    pub(super) links: Option<Lenient<Links>>,
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) mime_type: Option<String>,
    #[serde(default)]
    pub(super) filename: Option<String>,
    #[serde(default)]
    pub(super) file_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Links {
    #[serde(default)]
    pub(super) web: Option<Lenient<Href>>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Href {
    #[serde(default)]
    pub(super) href: Option<String>,
}

/// `POST /v2/conversations`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewConversation {
    pub(super) subject: String,
    pub(super) customer: NewCustomer,
    pub(super) mailbox_id: u64,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) status: &'static str,
    pub(super) imported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) created_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tags: Vec<String>,
    pub(super) threads: Vec<NewThread>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewCustomer {
    pub(super) email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) last_name: Option<String>,
}

/// One imported thread: a `customer` thread (with the customer's email) or a `note`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NewThread {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) customer: Option<CustomerEmail>,
    pub(super) text: String,
    pub(super) created_at: String,
}

#[derive(Debug, Serialize)]
pub(super) struct CustomerEmail {
    pub(super) email: String,
}

/// `POST /v2/conversations/{id}/customer`.
#[derive(Debug, Serialize)]
pub(super) struct CustomerThread {
    pub(super) customer: CustomerId,
    pub(super) text: String,
}

#[derive(Debug, Serialize)]
pub(super) struct CustomerId {
    pub(super) id: u64,
}

/// `POST /v2/conversations/{id}/notes`, optionally changing the conversation's status.
#[derive(Debug, Serialize)]
pub(super) struct Note {
    pub(super) text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) status: Option<&'static str>,
}

//! Everything the Engage adapter relies on that RingCentral's documentation does not state
//! outright. Each item is listed, with what is known, in `docs/providers/engage.md`
//! ("Assumed").

use super::wire::{Metadata, Resource, Scalar, read, text};
use crate::domain::Message;

/// Events that lock a thread. The events page lists them, without a payload: the thread is
/// taken from `metadata.thread_id`, else from the resource when the resource is the thread.
pub(super) const THREAD_LOCK_EVENTS: &[&str] = &["content.thread_closed", "content.thread_auto_closed"];

/// Shown in the bot's copy of an agent reply that had attachments: the webhook only says
/// `has_attachment: true` (the customer receives the files in Engage's own channel).
pub(super) const ATTACHMENT_NOTE: &str = "[attachment]";

/// The thread an event is about.
pub(super) fn thread_of(resource: &Resource) -> Option<String> {
    resource.metadata.as_ref().and_then(|m| text(&m.thread_id)).or_else(|| {
        read(&resource.kind)
            .is_some_and(|t| t.contains("thread"))
            .then(|| text(&resource.id))
            .flatten()
    })
}

/// Who wrote a reply: the event's `user_id` (documented as present for events an agent
/// triggered), else the content's `creator_id` (documented as "the creator of the content").
/// That the bot's own API replies carry the bot user's id there, so that `botUserId` filters
/// them out, is assumed. A reply without either is not attributed to an agent.
pub(super) fn reply_author(event_user: &Option<Scalar>, meta: &Metadata) -> Option<String> {
    text(event_user).or_else(|| text(&meta.creator_id))
}

/// The text of a reply: `metadata.body`, turned into text when `body_input_format` is
/// `html`, with a note when it had attachments. `None` when there is nothing to show.
pub(super) fn reply_message(meta: &Metadata) -> Option<Message> {
    let html = text(&meta.body_input_format).is_some_and(|f| f.eq_ignore_ascii_case("html"));
    let body = text(&meta.body)
        .map(|b| {
            if html {
                crate::providers::kit::text::html_to_text(&b).text
            } else {
                b
            }
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let text = match (body, read(&meta.has_attachment).copied().unwrap_or(false)) {
        (Some(t), true) => format!("{t}\n{ATTACHMENT_NOTE}"),
        (Some(t), false) => t,
        (None, true) => ATTACHMENT_NOTE.to_owned(),
        (None, false) => return None,
    };
    Some(Message::text(text))
}

/// Whether a reply still waits for approval. `content.replied` fires when an agent writes the
/// reply, before approval and publication; a reply with `approval_required: true` reaches the
/// customer only once approved, so it is relayed at `content.approved` instead. ASSUMPTION:
/// `approval_required` on the content's metadata (shown in Engage's chatbot guide) is what the
/// approval workflow sets, and `content.approved` carries the same content metadata.
pub(super) fn awaits_approval(meta: &Metadata) -> bool {
    read(&meta.approval_required).copied().unwrap_or(false)
}

/// Who wrote an approved reply: the content's creator (the event's `user_id` is the approver).
pub(super) fn approved_author(event_user: &Option<Scalar>, meta: &Metadata) -> Option<String> {
    text(&meta.creator_id).or_else(|| text(event_user))
}

/// A 409 from `update_categories` means "already being categorised": another change is under
/// way, so trying again shortly is expected to succeed.
pub(super) fn is_transient_conflict(status: u16) -> bool {
    status == 409
}

/// An intervention can only be closed with agent replies, and only cancelled without; the
/// intervention's `user_replies_count` is read as that count.
pub(super) fn has_agent_replies(user_replies_count: Option<u64>) -> bool {
    user_replies_count.unwrap_or(0) > 0
}

/// `GET /status?category_ids[]=…` is read as "agents having that category as a skill", and an
/// agent counts as free on a channel when `status == "available"` and `busyness != "full"`
/// (the transfer guide's rule).
pub(super) fn free(status: Option<&str>, busyness: Option<&str>) -> bool {
    status == Some("available") && busyness != Some("full")
}

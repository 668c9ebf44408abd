//! The handover call we send: one `ConversationManipulation`, plus the token grant of each API
//! generation and how a failed call is read.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Api;
use super::wire::{ConversationManipulation, Text};
use crate::delivery::DeliveryError;
use crate::domain::Handover;
use crate::providers::kit::text::clip;

/// The `complete` value that gives the conversation to human agents (the other is `RESOLVED`).
const COMPLETE_HANDOVER: &str = "HANDOVER";

/// ASSUMPTION (no limit is documented for conversation notes): the handover note is cut to
/// this many characters, so that a very long summary cannot make the handover fail.
pub(super) const MAX_NOTE_CHARS: usize = 4000;

/// The form fields of the token request.
///
/// Hootsuite Inbox: documented (`grant_type=organization_app` and the `organization_id` linked
/// to the app; client credentials in HTTP Basic only, never in the body).
///
/// Sparkcentral (`us`, `eu`): ASSUMPTION, kept to this one place. No page we could read
/// documents the request; Sparkcentral's own virtual-agent sample fetches the token from
/// `{base}/virtual-agent/oauth2/token` with a standard OAuth2 client-credentials request for
/// scope `client-read`, and the OAuth library version it pins sends the client id and secret as
/// HTTP Basic credentials, which is what this adapter does.
pub(super) fn token_grant(api: Api, organization_id: Option<&str>) -> Vec<(String, String)> {
    let pairs: [(&str, &str); 2] = match api {
        Api::Sparkcentral => [("grant_type", "client_credentials"), ("scope", "client-read")],
        Api::Inbox => [
            ("grant_type", "organization_app"),
            ("organization_id", organization_id.unwrap_or_default()),
        ],
    };
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The `ConversationManipulation` that hands the conversation to human agents: the optional
/// last message from the virtual agent (it can no longer write afterwards), the note, the
/// topics, and the completion.
pub(super) fn handover_body(
    h: &Handover,
    handover_message: Option<&str>,
    queue_topics: &BTreeMap<String, Vec<String>>,
) -> ConversationManipulation {
    ConversationManipulation {
        send_message: handover_message.map(|text| Text { text: text.to_owned() }),
        apply_conversation_notes: handover_note(h).map(|text| Text { text }).into_iter().collect(),
        apply_topics: topics(h, queue_topics),
        complete: COMPLETE_HANDOVER,
    }
}

/// The queue's configured topics, then the handover's tags, each once. Sparkcentral applies
/// only names that match an existing topic (case-insensitively) and ignores the rest.
fn topics(h: &Handover, queue_topics: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_queue = queue_topics.get(&h.queue).into_iter().flatten();
    for t in from_queue.chain(h.tags.iter()) {
        let t = t.trim();
        if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    out
}

/// The conversation note agents see: why the bot handed over and what it learnt. Only written
/// when there is something to say beyond the queue: a summary, variables or tags.
pub(super) fn handover_note(h: &Handover) -> Option<String> {
    let summary = h.summary.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if summary.is_none() && h.variables.is_empty() && h.tags.is_empty() {
        return None;
    }
    let mut lines = vec![format!(
        "Handed over by the bot ({}, queue {})",
        h.trigger.as_str(),
        h.queue
    )];
    if let Some(s) = summary {
        lines.push(format!("Summary: {s}"));
    }
    for (name, value) in &h.variables {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        lines.push(format!("{name}: {text}"));
    }
    if !h.tags.is_empty() {
        lines.push(format!("Tags: {}", h.tags.join(", ")));
    }
    Some(clip(&lines.join("\n"), MAX_NOTE_CHARS))
}

/// Whether a failed call was refused because the conversation is unknown or no longer the
/// virtual agent's (documented 404).
pub(super) fn is_not_assigned(e: &DeliveryError) -> bool {
    matches!(e, DeliveryError::Permanent { status: Some(404), .. })
}

/// Whether Sparkcentral may have applied a call that failed: no answer, a timeout or a server
/// error. A 429 was certainly refused.
pub(super) fn is_ambiguous(e: &DeliveryError) -> bool {
    matches!(e, DeliveryError::Retryable { status, .. } if *status != Some(429))
}

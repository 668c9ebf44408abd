//! The bot teammate's note: why and where the conversation was handed over and, for a
//! conversation we created, a marker and the transcript. The marker is how a later Lambda
//! instance recognises a conversation as ours.

use serde_json::Value;

use super::wire::{Conversation, text};
use crate::domain::{Actor, Handover, render_transcript};
use crate::providers::StartRequest;
use crate::providers::kit::text::{escape_html, text_to_html};

/// The conversation body when the transcript holds no user turn at all.
const FALLBACK_FIRST_MESSAGE: &str = "The user asked to talk to an agent.";

/// ASSUMPTION (Intercom documents no maximum note length): the transcript put into a note is
/// cut to its most recent characters so that a very long bot conversation cannot make the
/// note, and with it the handover, fail.
const MAX_NOTE_TRANSCRIPT_CHARS: usize = 30_000;

/// The marker that identifies the transcript note of a conversation we created.
pub(super) fn marker(handover_id: &str) -> String {
    format!("[handover:{handover_id}]")
}

/// Whether the conversation holds the bot teammate's note with this handover's marker.
pub(super) fn created_by_us(conversation: &Conversation, bot_admin_id: &str, handover_id: &str) -> bool {
    let marker = escape_html(&marker(handover_id));
    conversation.parts().iter().any(|p| {
        p.is("note")
            && p.author.as_ref().and_then(|a| text(&a.id)).as_deref() == Some(bot_admin_id)
            && p.body.as_deref().is_some_and(|b| b.contains(&marker))
    })
}

pub(super) fn has_context(h: &Handover) -> bool {
    h.summary.is_some() || !h.variables.is_empty() || !h.tags.is_empty()
}

/// The first user turn, which becomes the message the conversation starts with.
pub(super) fn first_user_text(r: &StartRequest<'_>) -> String {
    r.transcript
        .iter()
        .filter(|e| e.actor == Actor::User)
        .map(|e| e.message.render_text())
        .find(|t| !t.trim().is_empty())
        .or_else(|| r.handover.summary.clone().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| FALLBACK_FIRST_MESSAGE.to_owned())
}

/// The note, as HTML.
pub(super) fn handover_note(r: &StartRequest<'_>, created: bool) -> String {
    let h = r.handover;
    let mut html = String::from("<p><b>Handed over by the bot</b>");
    if created {
        html.push(' ');
        html.push_str(&escape_html(&marker(&h.id)));
    }
    html.push_str("</p>");
    let mut facts = vec![
        format!("Reason: {}", h.trigger.as_str()),
        format!("Queue: {}", h.queue),
        format!("Language: {}", h.language),
    ];
    if let Some(channel) = r.channel {
        facts.push(format!("Channel: {channel}"));
    }
    if let Some(u) = r.user {
        let mut who = u.name.clone().unwrap_or_default();
        if let Some(email) = &u.email {
            who = if who.is_empty() {
                email.clone()
            } else {
                format!("{who} <{email}>")
            };
        }
        facts.push(if who.is_empty() {
            format!("User: {}", u.id)
        } else {
            format!("User: {who} ({})", u.id)
        });
    }
    html.push_str(&paragraph(None, &facts.join("\n")));
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        html.push_str(&paragraph(Some("Summary"), summary));
    }
    if !h.variables.is_empty() {
        let lines: Vec<String> = h
            .variables
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect();
        html.push_str(&paragraph(Some("Variables"), &lines.join("\n")));
    }
    if !h.tags.is_empty() {
        html.push_str(&paragraph(Some("Tags"), &h.tags.join(", ")));
    }
    if created && !r.transcript.is_empty() {
        let text = render_transcript(r.transcript);
        let count = text.chars().count();
        let text = if count > MAX_NOTE_TRANSCRIPT_CHARS {
            let tail: String = text.chars().skip(count - MAX_NOTE_TRANSCRIPT_CHARS).collect();
            format!("… (earlier turns omitted)\n{tail}")
        } else {
            text
        };
        html.push_str(&paragraph(Some("Conversation with the bot"), &text));
    }
    html
}

fn paragraph(title: Option<&str>, text: &str) -> String {
    match title {
        Some(t) => format!("<p><b>{}</b><br>{}</p>", escape_html(t), text_to_html(text)),
        None => format!("<p>{}</p>", text_to_html(text)),
    }
}

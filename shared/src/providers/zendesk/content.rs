//! SunCo message content → the domain's message, so an agent's carousels, lists, buttons,
//! quick replies, files and locations reach the bot structured.

use serde::Deserialize;
use serde_json::Value;

use super::wire::{Action, Content};
use crate::domain::Message;
use crate::domain::message::{Attachment, Button, Card, Location};

/// A present, non-empty text.
fn some_text(t: &Option<String>) -> Option<String> {
    t.as_ref().filter(|t| !t.trim().is_empty()).cloned()
}

/// Content we cannot read at all is named rather than refused (SunCo would retry the whole
/// delivery).
pub(super) fn to_message(raw: &Value) -> Message {
    let content = Content::deserialize(raw).unwrap_or_else(|_| Content {
        kind: Some("unreadable".into()),
        ..Content::default()
    });
    message_of(&content)
}

/// Text, images, files, locations, carousels and lists map onto the domain type; forms become
/// their labels; anything else is named, not dropped.
fn message_of(c: &Content) -> Message {
    let kind = c.kind.as_deref().unwrap_or("text");
    let mut m = Message::default();
    match kind {
        "text" | "image" | "file" => {
            m.text = some_text(&c.text);
            if kind != "text"
                && let Some(url) = some_text(&c.media_url)
            {
                m.attachments.push(Attachment {
                    kind: kind.to_owned(),
                    url,
                    name: some_text(&c.alt_text),
                });
            }
        }
        "location" => {
            if let Some(p) = &c.coordinates
                && let (Some(latitude), Some(longitude)) = (p.lat, p.long)
            {
                m.location = Some(Location { latitude, longitude });
            }
            let described: Vec<&str> = c
                .location
                .iter()
                .flat_map(|p| [p.name.as_deref(), p.address.as_deref()])
                .flatten()
                .filter(|s| !s.is_empty())
                .collect();
            if !described.is_empty() {
                m.text = Some(described.join(", "));
            }
        }
        "carousel" | "list" => {
            for item in &c.items {
                let (buttons, _) = actions(&item.actions);
                let s = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
                m.cards.push(Card {
                    title: s(&item.title).unwrap_or_default(),
                    subtitle: s(&item.description),
                    image_url: s(&item.media_url),
                    buttons,
                });
            }
        }
        "form" => {
            let labels: Vec<&str> = c.fields.iter().filter_map(|f| f.label.as_deref()).collect();
            let mut parts: Vec<String> = some_text(&c.text).into_iter().collect();
            if !labels.is_empty() {
                parts.push(format!("[Form: {}]", labels.join(" | ")));
            }
            m.text = Some(parts.join("\n")).filter(|t| !t.is_empty());
        }
        "formResponse" => m.text = some_text(&c.text_fallback),
        _ => {}
    }
    let (buttons, replies) = actions(&c.actions);
    m.buttons.extend(buttons);
    m.quick_replies.extend(replies);
    if m.is_empty() {
        m.text = some_text(&c.text).or_else(|| Some(format!("[{kind} message]")));
    }
    m
}

/// SunCo actions as buttons and quick replies: `reply` (quick reply), `link` / `webview`
/// (URL), `postback` (payload), `buy` / `locationRequest` (a titled button).
fn actions(actions: &[Action]) -> (Vec<Button>, Vec<String>) {
    let mut buttons = Vec::new();
    let mut replies = Vec::new();
    for a in actions {
        let s = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        let Some(title) = s(&a.text) else { continue };
        match a.kind.as_deref().unwrap_or_default() {
            "reply" => replies.push(title),
            "link" | "webview" => buttons.push(Button {
                title,
                payload: None,
                url: s(&a.uri),
            }),
            "postback" => buttons.push(Button {
                title,
                payload: s(&a.payload),
                url: None,
            }),
            _ => buttons.push(Button {
                title,
                payload: None,
                url: None,
            }),
        }
    }
    (buttons, replies)
}

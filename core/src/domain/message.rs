//! Messages as the domain sees them: whatever a bot platform or provider sends is parsed into
//! [`Message`], and whatever cannot be shown natively is rendered as readable text, never dropped.

use serde::{Deserialize, Serialize};

/// Who said something in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Bot,
    Agent,
}

impl Actor {
    /// The label used in the agent-readable transcript.
    pub fn label(self) -> &'static str {
        match self {
            Actor::User => "User",
            Actor::Bot => "Bot",
            Actor::Agent => "Agent",
        }
    }
}

/// A human agent at a live-chat provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A button on a bot message or a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Button {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One element of a carousel (generic template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

/// A file, image, video or audio clip, always by URL (handover never stores the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "type", default = "default_attachment_kind")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn default_attachment_kind() -> String {
    "file".to_owned()
}

/// A user location shared in the chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

/// The content of one turn. Every part is optional so that rich bot messages and plain user
/// text share one type; [`Message::is_empty`] tells when nothing at all was sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<Card>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl Message {
    pub fn text(text: impl Into<String>) -> Self {
        Message {
            text: Some(text.into()),
            ..Message::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.as_deref().is_none_or(|t| t.trim().is_empty())
            && self.quick_replies.is_empty()
            && self.buttons.is_empty()
            && self.cards.is_empty()
            && self.attachments.is_empty()
            && self.location.is_none()
    }

    /// Plain-text rendering for agents whose desk cannot show rich content: nothing is dropped,
    /// buttons and carousels become bracketed lists an agent can read at a glance.
    pub fn render_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(text) = self.text.as_deref().filter(|t| !t.is_empty()) {
            parts.push(text.to_owned());
        }
        if !self.buttons.is_empty() {
            parts.push(format!("[Buttons: {}]", titles(&self.buttons)));
        }
        for (i, card) in self.cards.iter().enumerate() {
            let mut line = format!("{}. {}", i + 1, card.title);
            if let Some(sub) = card.subtitle.as_deref().filter(|s| !s.is_empty()) {
                line.push_str(" — ");
                line.push_str(sub);
            }
            if !card.buttons.is_empty() {
                line.push_str(&format!(" [Buttons: {}]", titles(&card.buttons)));
            }
            parts.push(line);
        }
        if !self.quick_replies.is_empty() {
            parts.push(format!("[Quick replies: {}]", self.quick_replies.join(" | ")));
        }
        for a in &self.attachments {
            let kind = capitalise(&a.kind);
            match &a.name {
                Some(name) => parts.push(format!("[{kind}: {name} {}]", a.url)),
                None => parts.push(format!("[{kind}: {}]", a.url)),
            }
        }
        if let Some(loc) = &self.location {
            parts.push(format!("[Location: {}, {}]", loc.latitude, loc.longitude));
        }
        parts.join("\n")
    }
}

fn titles(buttons: &[Button]) -> String {
    buttons.iter().map(|b| b.title.as_str()).collect::<Vec<_>>().join(" | ")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => "File".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_render_as_a_bracketed_list() {
        let m = Message {
            text: Some("What can I do for you?".into()),
            buttons: vec![
                Button {
                    title: "Track my parcel".into(),
                    payload: None,
                    url: None,
                },
                Button {
                    title: "Talk to an agent".into(),
                    payload: None,
                    url: None,
                },
            ],
            ..Message::default()
        };
        assert_eq!(
            m.render_text(),
            "What can I do for you?\n[Buttons: Track my parcel | Talk to an agent]"
        );
    }

    #[test]
    fn carousel_renders_as_numbered_titles_and_subtitles() {
        let card = |t: &str, s: &str| Card {
            title: t.into(),
            subtitle: Some(s.into()),
            image_url: None,
            buttons: vec![],
        };
        let m = Message {
            cards: vec![card("Red shoe", "€ 40"), card("Blue shoe", "€ 45")],
            ..Message::default()
        };
        assert_eq!(m.render_text(), "1. Red shoe — € 40\n2. Blue shoe — € 45");
    }

    #[test]
    fn attachment_and_quick_replies_are_not_dropped() {
        let m = Message {
            quick_replies: vec!["Yes".into(), "No".into()],
            attachments: vec![Attachment {
                kind: "image".into(),
                url: "https://x/y.png".into(),
                name: None,
            }],
            ..Message::default()
        };
        assert_eq!(m.render_text(), "[Quick replies: Yes | No]\n[Image: https://x/y.png]");
    }

    #[test]
    fn whitespace_only_text_is_empty() {
        assert!(Message::text("  ").is_empty());
        assert!(!Message::text("hi").is_empty());
    }
}

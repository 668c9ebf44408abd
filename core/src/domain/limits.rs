//! Size limits for everything a caller supplies, checked before anything is sent or stored.
//!
//! They keep a session item far below DynamoDB's 400 KB (the session holds the current and the
//! last handover, the user and the platform context; transcript entries are items of their
//! own) and every provider request within what providers accept. A refusal names the field.

use serde_json::Value;

use super::event::HandoverRequest;
use super::message::{Button, Message};
use super::session::UserInfo;

/// `handover.variables`, as a whole, serialised.
pub const MAX_VARIABLES_BYTES: usize = 8 * 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_SUMMARY_LEN: usize = 4 * 1024;
/// `queue`, `provider`, `language`, `providerConversationId`.
pub const MAX_NAME_LEN: usize = 128;
/// Each of `user.id`, `user.name`, `user.email`, `user.locale`.
pub const MAX_USER_FIELD_LEN: usize = 256;
/// A message's text.
pub const MAX_TEXT_LEN: usize = 16 * 1024;
/// `channel` (native and Chatlayer): a name such as `whatsapp`, kept on the session.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Quick replies of one message.
pub const MAX_QUICK_REPLIES: usize = 20;
/// Buttons of one message, and of one card.
pub const MAX_BUTTONS: usize = 10;
/// Cards of one carousel.
pub const MAX_CARDS: usize = 10;
/// Attachments of one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// A quick reply, a button's title or payload, a card's title or subtitle, an attachment's name.
pub const MAX_LABEL_LEN: usize = 1024;
/// A button's, card image's or attachment's URL.
pub const MAX_URL_LEN: usize = 2048;
/// One message as a whole, serialised: what reaches the transcript and the provider.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// A field over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: longer than {limit}")]
pub struct Oversize {
    pub field: String,
    pub limit: String,
}

fn over(field: &str, limit: impl Into<String>) -> Oversize {
    Oversize {
        field: field.to_owned(),
        limit: limit.into(),
    }
}

fn text(field: &str, value: Option<&str>, max: usize) -> Result<(), Oversize> {
    match value {
        Some(v) if v.len() > max => Err(over(field, format!("{max} bytes"))),
        _ => Ok(()),
    }
}

/// The caller-supplied parts of a handover request (`prefix` is where it sits in the body).
pub fn check_request(prefix: &str, req: &HandoverRequest) -> Result<(), Oversize> {
    let f = |name: &str| format!("{prefix}.{name}");
    let variables = serde_json::to_vec(&req.variables).map_or(usize::MAX, |v| v.len());
    if variables > MAX_VARIABLES_BYTES {
        return Err(over(&f("variables"), format!("{MAX_VARIABLES_BYTES} bytes as JSON")));
    }
    if req.tags.len() > MAX_TAGS {
        return Err(over(&f("tags"), format!("{MAX_TAGS} tags")));
    }
    for (i, tag) in req.tags.iter().enumerate() {
        text(&f(&format!("tags[{i}]")), Some(tag), MAX_TAG_LEN)?;
    }
    text(&f("summary"), req.summary.as_deref(), MAX_SUMMARY_LEN)?;
    text(&f("queue"), req.queue.as_deref(), MAX_NAME_LEN)?;
    text(&f("provider"), req.provider.as_deref(), MAX_NAME_LEN)?;
    text(&f("language"), req.language.as_deref(), MAX_NAME_LEN)?;
    text(
        &f("providerConversationId"),
        req.provider_conversation_id.as_deref(),
        MAX_NAME_LEN,
    )
}

/// The user's details.
pub fn check_user(prefix: &str, user: &UserInfo) -> Result<(), Oversize> {
    let f = |name: &str| format!("{prefix}.{name}");
    text(&f("id"), Some(&user.id), MAX_USER_FIELD_LEN)?;
    text(&f("name"), user.name.as_deref(), MAX_USER_FIELD_LEN)?;
    text(&f("email"), user.email.as_deref(), MAX_USER_FIELD_LEN)?;
    text(&f("locale"), user.locale.as_deref(), MAX_USER_FIELD_LEN)
}

fn count(field: &str, len: usize, max: usize, what: &str) -> Result<(), Oversize> {
    if len > max {
        Err(over(field, format!("{max} {what}")))
    } else {
        Ok(())
    }
}

/// A name (`queue`, a platform's bot id or version, …).
pub fn check_name(field: &str, value: Option<&str>) -> Result<(), Oversize> {
    text(field, value, MAX_NAME_LEN)
}

/// `channel`.
pub fn check_channel(field: &str, channel: Option<&str>) -> Result<(), Oversize> {
    text(field, channel, MAX_CHANNEL_LEN)
}

/// One message from a caller: its text, the number and size of its rich parts, and the whole.
pub fn check_message(prefix: &str, m: &Message) -> Result<(), Oversize> {
    let f = |name: &str| format!("{prefix}.{name}");
    text(&f("text"), m.text.as_deref(), MAX_TEXT_LEN)?;
    count(
        &f("quickReplies"),
        m.quick_replies.len(),
        MAX_QUICK_REPLIES,
        "quick replies",
    )?;
    for (i, q) in m.quick_replies.iter().enumerate() {
        text(&f(&format!("quickReplies[{i}]")), Some(q), MAX_LABEL_LEN)?;
    }
    check_buttons(&f("buttons"), &m.buttons)?;
    count(&f("cards"), m.cards.len(), MAX_CARDS, "cards")?;
    for (i, c) in m.cards.iter().enumerate() {
        let card = f(&format!("cards[{i}]"));
        text(&format!("{card}.title"), Some(&c.title), MAX_LABEL_LEN)?;
        text(&format!("{card}.subtitle"), c.subtitle.as_deref(), MAX_LABEL_LEN)?;
        text(&format!("{card}.imageUrl"), c.image_url.as_deref(), MAX_URL_LEN)?;
        check_buttons(&format!("{card}.buttons"), &c.buttons)?;
    }
    count(&f("attachments"), m.attachments.len(), MAX_ATTACHMENTS, "attachments")?;
    for (i, a) in m.attachments.iter().enumerate() {
        let at = f(&format!("attachments[{i}]"));
        text(&format!("{at}.type"), Some(&a.kind), MAX_LABEL_LEN)?;
        text(&format!("{at}.url"), Some(&a.url), MAX_URL_LEN)?;
        text(&format!("{at}.name"), a.name.as_deref(), MAX_LABEL_LEN)?;
    }
    let whole = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
    if whole > MAX_MESSAGE_BYTES {
        return Err(over(prefix, format!("{MAX_MESSAGE_BYTES} bytes as JSON")));
    }
    Ok(())
}

fn check_buttons(field: &str, buttons: &[Button]) -> Result<(), Oversize> {
    count(field, buttons.len(), MAX_BUTTONS, "buttons")?;
    for (i, b) in buttons.iter().enumerate() {
        let at = format!("{field}[{i}]");
        text(&format!("{at}.title"), Some(&b.title), MAX_LABEL_LEN)?;
        text(&format!("{at}.payload"), b.payload.as_deref(), MAX_LABEL_LEN)?;
        text(&format!("{at}.url"), b.url.as_deref(), MAX_URL_LEN)?;
    }
    Ok(())
}

/// A message from a provider brought within the limits of [`check_message`]: an agent's words
/// are not refused (the provider could not send them again), they are cut, and rich parts
/// beyond the counts are dropped.
pub fn clipped(mut m: Message) -> Message {
    fn cut(s: &mut String, max: usize) {
        if s.len() > max {
            let end = (0..=max).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            s.truncate(end);
        }
    }
    fn cut_buttons(buttons: &mut Vec<Button>) {
        buttons.truncate(MAX_BUTTONS);
        for b in buttons {
            cut(&mut b.title, MAX_LABEL_LEN);
            if let Some(p) = b.payload.as_mut() {
                cut(p, MAX_LABEL_LEN);
            }
            if b.url.as_ref().is_some_and(|u| u.len() > MAX_URL_LEN) {
                b.url = None;
            }
        }
    }
    if let Some(t) = m.text.as_mut() {
        cut(t, MAX_TEXT_LEN);
    }
    m.quick_replies.truncate(MAX_QUICK_REPLIES);
    m.quick_replies.iter_mut().for_each(|q| cut(q, MAX_LABEL_LEN));
    cut_buttons(&mut m.buttons);
    m.cards.truncate(MAX_CARDS);
    for c in &mut m.cards {
        cut(&mut c.title, MAX_LABEL_LEN);
        if let Some(sub) = c.subtitle.as_mut() {
            cut(sub, MAX_LABEL_LEN);
        }
        if c.image_url.as_ref().is_some_and(|u| u.len() > MAX_URL_LEN) {
            c.image_url = None;
        }
        cut_buttons(&mut c.buttons);
    }
    m.attachments.truncate(MAX_ATTACHMENTS);
    m.attachments.retain(|a| a.url.len() <= MAX_URL_LEN);
    for a in &mut m.attachments {
        cut(&mut a.kind, MAX_LABEL_LEN);
        if let Some(n) = a.name.as_mut() {
            cut(n, MAX_LABEL_LEN);
        }
    }
    // Within every count and length, a message can still be over the whole: the rich parts
    // go first, the text stays.
    if serde_json::to_vec(&m).map_or(usize::MAX, |v| v.len()) > MAX_MESSAGE_BYTES {
        m.quick_replies.clear();
        m.buttons.clear();
        m.cards.clear();
        m.attachments.clear();
    }
    m
}

/// A JSON value's serialised size (for variables built from a platform's payload).
pub fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Trigger;

    fn request() -> HandoverRequest {
        HandoverRequest {
            trigger: Trigger::ExplicitRequest,
            provider: None,
            queue: None,
            language: None,
            variables: Default::default(),
            tags: vec![],
            summary: None,
            provider_conversation_id: None,
        }
    }

    #[test]
    fn each_oversized_field_is_named() {
        let mut r = request();
        r.variables
            .insert("blob".into(), Value::String("x".repeat(MAX_VARIABLES_BYTES)));
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.variables");
        let mut r = request();
        r.tags = vec!["t".into(); MAX_TAGS + 1];
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.tags");
        let mut r = request();
        r.tags = vec!["ok".into(), "x".repeat(MAX_TAG_LEN + 1)];
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.tags[1]");
        let mut r = request();
        r.queue = Some("q".repeat(MAX_NAME_LEN + 1));
        assert_eq!(check_request("payload", &r).unwrap_err().field, "payload.queue");
        let mut r = request();
        r.summary = Some("s".repeat(MAX_SUMMARY_LEN));
        assert!(check_request("handover", &r).is_ok(), "at the limit is fine");
        let user = UserInfo {
            id: "u".into(),
            name: None,
            email: Some("e".repeat(MAX_USER_FIELD_LEN + 1)),
            locale: None,
        };
        assert_eq!(check_user("user", &user).unwrap_err().field, "user.email");
    }

    fn button(title: &str) -> Button {
        Button {
            title: title.into(),
            payload: None,
            url: None,
        }
    }

    #[test]
    fn each_oversized_part_of_a_message_is_named() {
        let field = |m: &Message| check_message("message", m).unwrap_err().field;
        let mut m = Message::text("hi");
        m.quick_replies = vec!["q".into(); MAX_QUICK_REPLIES + 1];
        assert_eq!(field(&m), "message.quickReplies");
        let mut m = Message::text("hi");
        m.buttons = vec![button("b"); MAX_BUTTONS + 1];
        assert_eq!(field(&m), "message.buttons");
        let mut m = Message::text("hi");
        m.cards = vec![
            crate::domain::message::Card {
                title: "c".into(),
                subtitle: None,
                image_url: None,
                buttons: vec![button("b"); MAX_BUTTONS + 1],
            };
            1
        ];
        assert_eq!(field(&m), "message.cards[0].buttons");
        let mut m = Message::text("hi");
        m.attachments = vec![
            crate::domain::message::Attachment {
                kind: "file".into(),
                url: "https://x.example/a".into(),
                name: None,
            };
            MAX_ATTACHMENTS + 1
        ];
        assert_eq!(field(&m), "message.attachments");
        // Each part within its own limit, the whole over its bound.
        let mut m = Message::text("t".repeat(MAX_TEXT_LEN));
        m.quick_replies = vec!["q".repeat(MAX_LABEL_LEN); MAX_QUICK_REPLIES];
        assert_eq!(field(&m), "message");
        assert!(check_message("message", &Message::text("t".repeat(MAX_TEXT_LEN))).is_ok());
        assert_eq!(
            check_channel("channel", Some(&"c".repeat(MAX_CHANNEL_LEN + 1)))
                .unwrap_err()
                .field,
            "channel"
        );
    }

    #[test]
    fn a_providers_message_is_cut_to_the_limits() {
        let mut m = Message::text("é".repeat(MAX_TEXT_LEN));
        m.buttons = vec![button(&"b".repeat(MAX_LABEL_LEN * 2)); MAX_BUTTONS * 3];
        let m = clipped(m);
        assert!(check_message("message", &m).is_ok());
        assert!(m.text.as_ref().unwrap().len() <= MAX_TEXT_LEN);
        let mut m = Message::text("t".repeat(MAX_TEXT_LEN));
        m.quick_replies = vec!["q".repeat(MAX_LABEL_LEN); MAX_QUICK_REPLIES];
        let m = clipped(m);
        assert!(check_message("message", &m).is_ok());
        assert_eq!(m.text.as_ref().unwrap().len(), MAX_TEXT_LEN, "the text stays");
    }
}

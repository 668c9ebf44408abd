//! Chatlayer (by Sinch) as a bot platform, through its Offloading Webhook contract: handover is
//! the bot's "Webhook" offloading provider and relays to whichever live-chat provider the
//! bot's routing picks.
//!
//! Verified against Chatlayer's public documentation (docs/chatlayer.md lists the sources):
//! the health check, the `messages` and `offload` events, the `offloadSuccess`/`pauseBot`
//! answer, the message formats and the conversation-actions call that sends messages. Not
//! documented by Chatlayer, and therefore isolated here behind configuration: the pause and
//! resume requests (`platform.pauseAction` / `platform.resumeAction`), and whether the verify
//! token accompanies `offload` posts (the `token` URL parameter covers both cases).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::BotPlatform;
use super::native;
use crate::bot::PauseAt;
use crate::delivery::{self, DeliveryError};
use crate::domain::message::{Attachment, Button, Card, Location};
use crate::domain::{BotEvent, HandoverRequest, Message, Outcome, Reply, Speaker, Trigger, Turn, UserInfo};
use crate::store::SessionKey;

/// Chatlayer's EU API host; US and Asia hosts are set with `platform.apiBaseUrl`.
pub const DEFAULT_API_BASE: &str = "https://api.chatlayer.ai";
/// The query parameter Chatlayer documents for the verify token.
pub const VERIFY_TOKEN_PARAM: &str = "challenge.verifyToken";
/// A parameter the operator adds to the configured URL, so that every request carries the
/// token even where Chatlayer does not document adding it (the `offload` event).
pub const URL_TOKEN_PARAM: &str = "token";
/// Keys of the session's platform context.
pub const CTX_BOT_ID: &str = "chatlayerBotId";
pub const CTX_VERSION: &str = "chatlayerVersion";

/// An event Chatlayer posts. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatlayerEvent {
    pub event: String,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    pub session_id: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub messages: Vec<Item>,
    #[serde(default)]
    pub transcript: Vec<Item>,
    #[serde(default)]
    pub payload: Option<Value>,
}

/// One exchanged message: `{actor, message, timestamp}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub actor: String,
    #[serde(default)]
    pub message: Value,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

impl ChatlayerEvent {
    /// What to remember on the session to address it through Chatlayer's API later.
    pub fn context(&self) -> BTreeMap<String, String> {
        let mut c = BTreeMap::new();
        if let Some(b) = &self.bot_id {
            c.insert(CTX_BOT_ID.to_owned(), b.clone());
        }
        if let Some(v) = &self.version {
            c.insert(CTX_VERSION.to_owned(), v.clone());
        }
        c
    }
}

/// A stable id for an item, so the offload transcript can skip what `messages` already
/// brought: Chatlayer gives bot messages no id, so content and time identify a turn.
pub fn fingerprint(item: &Item) -> String {
    let mut h = Sha256::new();
    h.update(item.actor.as_bytes());
    h.update(b"|");
    // serde_json's map is ordered, so this is canonical whatever the key order on the wire.
    h.update(item.message.to_string().as_bytes());
    h.update(b"|");
    h.update(
        item.timestamp
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
            .to_string()
            .as_bytes(),
    );
    format!("cl-{}", &hex::encode(h.finalize())[..32])
}

/// A request's idempotency id: Chatlayer events carry none, so the body identifies them.
pub fn body_id(body: &[u8]) -> String {
    format!("clb-{}", &hex::encode(Sha256::digest(body))[..32])
}

/// Turns an item into a transcript turn; `None` for items without content (the `intro` a
/// widget sends when it opens).
pub fn turn_of(item: &Item) -> Option<Turn> {
    let (speaker, message) = match item.actor.as_str() {
        "user" => (Speaker::User, user_message(&item.message)?),
        "bot" => (Speaker::Bot, bot_message(&item.message)?),
        _ => return None,
    };
    (!message.is_empty()).then(|| Turn {
        speaker,
        message,
        event_id: Some(fingerprint(item)),
        at: item.timestamp,
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// User messages by `messageType`: text, postback, file upload result, location; intro has
/// no content.
pub fn user_message(v: &Value) -> Option<Message> {
    let kind = str_of(v, "messageType").unwrap_or("text");
    let m = match kind {
        "intro" => return None,
        "postback" => Message::text(str_of(v, "title").or(str_of(v, "text"))?),
        "fileUploadInputResult" => {
            let mut urls: Vec<String> = v
                .get("urls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect();
            if urls.is_empty()
                && let Some(u) = v.pointer("/data/fileUrl").and_then(Value::as_str)
            {
                urls.push(u.to_owned());
            }
            Message {
                attachments: urls
                    .into_iter()
                    .map(|url| Attachment {
                        kind: "file".into(),
                        url,
                        name: None,
                    })
                    .collect(),
                ..Message::default()
            }
        }
        "location" => {
            let c = v.get("coordinates")?;
            Message {
                location: Some(Location {
                    latitude: c.get("lat")?.as_f64()?,
                    longitude: c.get("long")?.as_f64()?,
                }),
                ..Message::default()
            }
        }
        _ => Message::text(str_of(v, "text")?),
    };
    Some(m)
}

fn button(b: &Value) -> Option<Button> {
    Some(Button {
        title: str_of(b, "title")?.to_owned(),
        // Chatlayer's postback payloads are opaque: kept, never interpreted.
        payload: str_of(b, "payload").map(str::to_owned),
        url: str_of(b, "url").map(str::to_owned),
    })
}

fn buttons(v: Option<&Value>) -> Vec<Button> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(button)
        .collect()
}

/// Bot messages, Messenger-style: text, quick replies, button / generic / list templates,
/// media attachments.
pub fn bot_message(v: &Value) -> Option<Message> {
    let mut m = Message {
        text: str_of(v, "text").map(str::to_owned),
        ..Message::default()
    };
    m.quick_replies = v
        .get("quick_replies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|q| str_of(q, "title").map(str::to_owned))
        .collect();
    if let Some(att) = v.get("attachment") {
        let payload = att.get("payload").unwrap_or(&Value::Null);
        match str_of(att, "type") {
            Some("template") => match str_of(payload, "template_type") {
                Some("button") => {
                    m.text = m.text.or_else(|| str_of(payload, "text").map(str::to_owned));
                    m.buttons = buttons(payload.get("buttons"));
                }
                Some("generic" | "list") => {
                    m.cards = payload
                        .get("elements")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| {
                            Some(Card {
                                title: str_of(e, "title")?.to_owned(),
                                subtitle: str_of(e, "subtitle").map(str::to_owned),
                                image_url: str_of(e, "image_url").map(str::to_owned),
                                buttons: buttons(e.get("buttons")),
                            })
                        })
                        .collect();
                    m.buttons = buttons(payload.get("buttons"));
                }
                _ => {}
            },
            Some(kind) => {
                if let Some(url) = str_of(payload, "url") {
                    m.attachments.push(Attachment {
                        kind: kind.to_owned(),
                        url: url.to_owned(),
                        name: None,
                    });
                }
            }
            None => {}
        }
    }
    Some(m)
}

/// The user's identity from the `sender` of their messages.
pub fn user_info(items: &[Item]) -> Option<UserInfo> {
    let sender = items
        .iter()
        .filter(|i| i.actor == "user")
        .find_map(|i| i.message.get("sender"))?;
    let name = [str_of(sender, "firstname"), str_of(sender, "lastname")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    // Chatlayer's values are cut to our limits rather than refused: the user cannot change them.
    let cut = |s: &str| {
        let max = crate::domain::limits::MAX_USER_FIELD_LEN;
        let end = (0..=max.min(s.len()))
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s[..end].to_owned()
    };
    Some(UserInfo {
        id: cut(str_of(sender, "id")?),
        name: (!name.is_empty()).then(|| cut(&name)),
        email: str_of(sender, "email").map(cut),
        locale: str_of(sender, "preferredLanguage")
            .or(str_of(sender, "locale"))
            .map(cut),
    })
}

/// The handover request an `offload` event makes. The "Send to offload provider" action's
/// `payload` may name `provider`, `queue`, `trigger`, `language`, `variables`, `tags`,
/// `summary`; anything else in it is passed to the agent as a variable.
pub fn handover_request(payload: Option<&Value>) -> Result<HandoverRequest, String> {
    let empty = serde_json::Map::new();
    let p = match payload {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err("payload: must be a JSON object".into()),
    };
    let trigger = match p.get("trigger") {
        None => Trigger::ExplicitRequest,
        Some(t) => serde_json::from_value(t.clone()).map_err(|_| {
            "payload.trigger: expected explicit_request, not_understood, unsupported_flow or menu_request".to_owned()
        })?,
    };
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut variables: BTreeMap<String, Value> = match p.get("variables") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(_) => return Err("payload.variables: must be an object".into()),
        None => BTreeMap::new(),
    };
    const KNOWN: [&str; 7] = [
        "provider",
        "queue",
        "trigger",
        "language",
        "variables",
        "tags",
        "summary",
    ];
    for (k, v) in p.iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())) {
        variables.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let tags = p
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    Ok(HandoverRequest {
        trigger,
        provider: text("provider"),
        queue: text("queue"),
        language: text("language"),
        variables,
        tags,
        summary: text("summary"),
        provider_conversation_id: None,
    })
}

/// The `sendMessages` entries for an agent's message, in Chatlayer's own templates so the user
/// sees what the agent sent: buttons as a `buttonTemplate`, cards (a card or a carousel) as a
/// `carouselTemplate`, quick replies as a `quickReplyTemplate` carrying the text, images and
/// videos as `attachmentTemplate`s. Only what has no template (other files, a location) is
/// rendered into the text.
pub fn send_messages(message: &Message) -> Vec<Value> {
    let is_media = |a: &Attachment| matches!(a.kind.as_str(), "image" | "video");
    let rest = Message {
        text: message.text.clone(),
        attachments: message.attachments.iter().filter(|a| !is_media(a)).cloned().collect(),
        location: message.location.clone(),
        ..Message::default()
    };
    let text = rest.render_text();
    let text_messages = |t: &str| {
        if t.is_empty() {
            json!([])
        } else {
            json!([{ "text": t }])
        }
    };
    let mut out = Vec::new();
    // The text travels with the buttons, else with the quick replies, else alone.
    let mut text_sent = false;
    if !message.buttons.is_empty() {
        out.push(json!({ "buttonTemplate": {
            "textMessages": text_messages(&text),
            "buttons": message.buttons.iter().map(chatlayer_button).collect::<Vec<_>>(),
        }}));
        text_sent = true;
    } else if message.quick_replies.is_empty() && !text.is_empty() {
        out.push(json!({ "textMessageTemplate": { "textMessages": text_messages(&text) } }));
        text_sent = true;
    }
    if !message.cards.is_empty() {
        let elements: Vec<Value> = message
            .cards
            .iter()
            .map(|c| {
                let mut e =
                    json!({ "title": c.title, "buttons": c.buttons.iter().map(chatlayer_button).collect::<Vec<_>>() });
                if let Some(sub) = &c.subtitle {
                    e["subTitle"] = json!(sub);
                }
                if let Some(img) = &c.image_url {
                    e["imageUrl"] = json!(img);
                }
                e
            })
            .collect();
        out.push(json!({ "carouselTemplate": { "elements": elements } }));
    }
    for a in message.attachments.iter().filter(|a| is_media(a)) {
        out.push(json!({ "attachmentTemplate": { "media": { "url": a.url, "type": a.kind } } }));
    }
    if !message.quick_replies.is_empty() {
        let replies: Vec<Value> = message
            .quick_replies
            .iter()
            .map(|q| json!({ "title": q, "payload": choice_payload(q) }))
            .collect();
        let t = if text_sent { "" } else { text.as_str() };
        out.push(json!({ "quickReplyTemplate": { "textMessages": text_messages(t), "quickReplies": replies } }));
    }
    out
}

/// A button of an agent's message: a link opens its URL; any other button answers with its
/// payload (or title).
fn chatlayer_button(b: &Button) -> Value {
    match &b.url {
        Some(url) => json!({ "urlButton": { "title": b.title, "url": url } }),
        None => json!({ "postBackButton": {
            "title": b.title,
            "payload": choice_payload(b.payload.as_deref().unwrap_or(&b.title)),
        }}),
    }
}

/// ASSUMPTION (the one place it is made): Chatlayer's postback payload is
/// `{nextDialogstateId, sessionDataToSet}` and names a dialog of the bot, which an agent's
/// choice has none of. We send no `nextDialogstateId` and record the choice in the session
/// variable `handoverChoice`; the user's click then reaches handover as the user's answer in the
/// offloaded conversation (a postback, relayed to the agent as text). Not run against Chatlayer.
fn choice_payload(value: &str) -> Value {
    json!({ "sessionDataToSet": [ { "key": "handoverChoice", "value": value } ] })
}

/// Delivers events into Chatlayer conversations through its conversation-actions API.
pub struct ChatlayerPlatform {
    pub base_url: String,
    pub api_token: String,
    pub pause_at: PauseAt,
    pub pause_action: Option<Value>,
    pub resume_action: Option<Value>,
    pub http: reqwest::Client,
}

/// The conversation-actions URL. Both ids come from Chatlayer's events (outside input): each is
/// one encoded path segment, so a `/`, `?` or `..` in one cannot reach another resource.
fn action_url(base_url: &str, bot: &str, session_id: &str) -> String {
    use crate::providers::path_segment;
    format!(
        "{}/v1/bots/{}/conversations/{}/actions",
        base_url.trim_end_matches('/'),
        path_segment(bot),
        path_segment(session_id)
    )
}

impl ChatlayerPlatform {
    async fn action(
        &self,
        key: &SessionKey,
        context: &BTreeMap<String, String>,
        body: &Value,
    ) -> Result<(), DeliveryError> {
        let bot = context.get(CTX_BOT_ID).ok_or_else(|| {
            DeliveryError::permanent("the session has no Chatlayer bot id (no event from Chatlayer yet)")
        })?;
        let version = context.get(CTX_VERSION).map(String::as_str).unwrap_or("LIVE");
        let url = action_url(&self.base_url, bot, &key.session_id);
        let now = Utc::now();
        let resp = self
            .http
            .post(url)
            .query(&[("version", version)])
            .bearer_auth(&self.api_token)
            .json(body)
            .send()
            .await
            .map_err(delivery::transport)?;
        delivery::check(resp, now).await.map(drop)
    }

    async fn say(
        &self,
        key: &SessionKey,
        context: &BTreeMap<String, String>,
        message: &Message,
    ) -> Result<(), DeliveryError> {
        let messages = send_messages(message);
        if messages.is_empty() {
            return Ok(());
        }
        self.action(key, context, &json!({ "sendMessages": messages })).await
    }
}

#[async_trait]
impl BotPlatform for ChatlayerPlatform {
    async fn deliver(
        &self,
        _delivery_id: &str,
        key: &SessionKey,
        _handover_id: &str,
        event: &BotEvent,
        context: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError> {
        match event {
            BotEvent::AgentMessage { message, .. } => self.say(key, context, message).await,
            BotEvent::AgentJoined { dialog, .. } => {
                if self.pause_at == PauseAt::AtAgentJoin
                    && let Some(pause) = &self.pause_action
                {
                    self.action(key, context, pause).await?;
                }
                self.say(key, context, &Message::text(&dialog.text)).await
            }
            BotEvent::Ended { dialog, .. } => {
                if let Some(resume) = &self.resume_action {
                    self.action(key, context, resume).await?;
                }
                self.say(key, context, &Message::text(&dialog.text)).await
            }
            BotEvent::Waiting { dialog, .. } | BotEvent::Dialog { dialog } => {
                self.say(key, context, &Message::text(&dialog.text)).await
            }
            // Chatlayer offers no typing indicator for agents.
            BotEvent::AgentTyping { .. } => Ok(()),
        }
    }
}

/// Transcript items not yet stored, judged by their fingerprints.
pub fn new_turns(items: &[Item], stored_ids: &BTreeSet<String>) -> Vec<Turn> {
    items
        .iter()
        .filter_map(turn_of)
        .filter(|t| t.event_id.as_ref().is_none_or(|id| !stored_ids.contains(id)))
        .collect()
}

/// Chatlayer's answer to `offload`, with our details alongside (ignored by Chatlayer).
pub fn offload_answer(reply: &Reply, pause_at: PauseAt) -> Value {
    let mut body = native::reply_body(reply);
    let opened = matches!(
        reply,
        Reply::Handover {
            outcome: Outcome::Opened,
            ..
        }
    );
    body["offloadSuccess"] = json!(opened);
    body["pauseBot"] = json!(opened && pause_at == PauseAt::AtOffload);
    body
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn button(title: &str, payload: Option<&str>, url: Option<&str>) -> Button {
        Button {
            title: title.into(),
            payload: payload.map(Into::into),
            url: url.map(Into::into),
        }
    }

    #[test]
    fn plain_text_is_a_text_template() {
        assert_eq!(
            send_messages(&Message::text("Hello")),
            [json!({ "textMessageTemplate": { "textMessages": [ { "text": "Hello" } ] } })]
        );
    }

    #[test]
    fn quick_replies_carry_the_text_in_a_quick_reply_template() {
        let m = Message {
            text: Some("Shall I refund?".into()),
            quick_replies: vec!["Yes".into(), "No".into()],
            ..Message::default()
        };
        let out = send_messages(&m);
        assert_eq!(out.len(), 1, "{out:?}");
        let t = &out[0]["quickReplyTemplate"];
        assert_eq!(t["textMessages"], json!([{ "text": "Shall I refund?" }]));
        assert_eq!(t["quickReplies"][1]["title"], "No");
        assert_eq!(
            t["quickReplies"][1]["payload"],
            json!({ "sessionDataToSet": [ { "key": "handoverChoice", "value": "No" } ] })
        );
    }

    #[test]
    fn buttons_cards_and_media_use_their_own_templates() {
        let m = Message {
            text: Some("Your parcels".into()),
            buttons: vec![
                button("Track", None, Some("https://t.example.com/1")),
                button("Refund", Some("refund"), None),
            ],
            cards: vec![Card {
                title: "Parcel A-1".into(),
                subtitle: Some("Late".into()),
                image_url: Some("https://cdn.example.com/a1.png".into()),
                buttons: vec![button("Pick", Some("a1"), None)],
            }],
            attachments: vec![
                Attachment {
                    kind: "image".into(),
                    url: "https://cdn.example.com/p.png".into(),
                    name: None,
                },
                Attachment {
                    kind: "file".into(),
                    url: "https://cdn.example.com/label.pdf".into(),
                    name: Some("label.pdf".into()),
                },
            ],
            quick_replies: vec!["Thanks".into()],
            ..Message::default()
        };
        let out = send_messages(&m);
        let kinds: Vec<&str> = out
            .iter()
            .map(|v| v.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "buttonTemplate",
                "carouselTemplate",
                "attachmentTemplate",
                "quickReplyTemplate"
            ]
        );
        assert_eq!(
            out[0]["buttonTemplate"]["textMessages"][0]["text"],
            "Your parcels\n[File: label.pdf https://cdn.example.com/label.pdf]",
            "a file has no template: its link goes with the text"
        );
        assert_eq!(
            out[0]["buttonTemplate"]["buttons"][0],
            json!({ "urlButton": { "title": "Track", "url": "https://t.example.com/1" } })
        );
        assert_eq!(
            out[0]["buttonTemplate"]["buttons"][1]["postBackButton"]["payload"]["sessionDataToSet"][0]["value"],
            "refund"
        );
        let card = &out[1]["carouselTemplate"]["elements"][0];
        assert_eq!(
            (card["title"].as_str(), card["subTitle"].as_str()),
            (Some("Parcel A-1"), Some("Late"))
        );
        assert_eq!(card["imageUrl"], "https://cdn.example.com/a1.png");
        assert_eq!(
            out[2],
            json!({ "attachmentTemplate": { "media": { "url": "https://cdn.example.com/p.png", "type": "image" } } })
        );
        assert_eq!(
            out[3]["quickReplyTemplate"]["textMessages"],
            json!([]),
            "the text went with the buttons"
        );
    }
}

#[cfg(test)]
mod url_tests {
    use super::action_url;

    #[test]
    fn action_urls_encode_the_ids() {
        assert_eq!(
            action_url("https://api.chatlayer.ai/", "b/../x", "s?1#2"),
            "https://api.chatlayer.ai/v1/bots/b%2F..%2Fx/conversations/s%3F1%232/actions"
        );
        assert_eq!(
            action_url("https://api.chatlayer.ai", "cl-bot", "s-9"),
            "https://api.chatlayer.ai/v1/bots/cl-bot/conversations/s-9/actions"
        );
    }
}

//! What we send Chatlayer: the answer to `offload`, and the conversation-actions calls that
//! deliver the bot events of the outbox.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};

use super::settings::{API_TOKEN_FIELD, CTX_BOT_ID, CTX_EMBEDDED, CTX_VERSION, DEFAULT_API_BASE};
use crate::bot::{PauseAt, PlatformConfig};
use crate::delivery::{self, DeliveryError};
use crate::domain::message::{Attachment, Button};
use crate::domain::{BotEvent, Message, Outcome, Reply};
use crate::platform::{BotPlatform, SetupError, native};
use crate::secrets::Secret;
use crate::store::SessionKey;

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

impl ChatlayerPlatform {
    /// The API host (Chatlayer's EU host unless `apiBaseUrl` names another), the API token from
    /// the bot's platform secret, and the configured pause and resume calls.
    pub fn new(config: &PlatformConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, SetupError> {
        let api_token = secret
            .field(API_TOKEN_FIELD)
            .map_err(|e| SetupError(format!("the bot's Chatlayer API token is missing: {e}")))?;
        Ok(ChatlayerPlatform {
            base_url: config
                .api_base_url
                .clone()
                .unwrap_or_else(|| DEFAULT_API_BASE.to_owned()),
            api_token: api_token.to_owned(),
            pause_at: config.pause_at(),
            pause_action: config.pause_action.clone(),
            resume_action: config.resume_action.clone(),
            http,
        })
    }
}

/// The conversation-actions URL. Both ids come from Chatlayer's events (outside input): each is
/// one encoded path segment, so a `/`, `?` or `..` in one cannot reach another resource.
fn action_url(base_url: &str, bot: &str, session_id: &str) -> String {
    use crate::delivery::path_segment;
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
            // In an embedded provider's conversation (Zendesk, Sparkcentral, Engage) the agent
            // writes in the user's own channel, which Chatlayer's bot is also connected to:
            // sending the message again would show it to the user twice.
            BotEvent::AgentMessage { .. } if context.get(CTX_EMBEDDED).is_some_and(|c| !c.is_empty()) => Ok(()),
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
    use crate::domain::message::Card;

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

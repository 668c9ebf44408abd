//! Chatlayer's events read into the core's inputs: turns, the user, the handover request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use subtle::ConstantTimeEq;

use super::outbound::ChatlayerPlatform;
use super::settings::{ROUTES, URL_TOKEN_PARAM, VERIFY_TOKEN_FIELD, VERIFY_TOKEN_PARAM};
use super::wire::{ChatlayerEvent, Item, body_id, fingerprint};
use crate::bot::{PlatformConfig, PlatformKind};
use crate::domain::limits;
use crate::domain::message::{Attachment, Button, Card, Location};
use crate::domain::{Event, HandoverRequest, Input, Message, Speaker, Trigger, Turn, UserInfo};
use crate::platform::native::MAX_ID_LEN;
use crate::platform::{
    BotPlatform, Events, Inbound, PlatformPort, PlatformRequest, PlatformRoute, Refusal, Rendering, SetupError, Step,
    parse_json,
};
use crate::secrets::Secret;

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
    const KNOWN: [&str; 8] = [
        "provider",
        "providerConversationId",
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
        provider_conversation_id: text("providerConversationId"),
    })
}

/// Transcript items not yet stored, judged by their fingerprints.
pub fn new_turns(items: &[Item], stored_ids: &BTreeSet<String>) -> Vec<Turn> {
    items
        .iter()
        .filter_map(turn_of)
        .filter(|t| t.event_id.as_ref().is_none_or(|id| !stored_ids.contains(id)))
        .collect()
}

/// Chatlayer's inbound side: the Offloading Webhook's health check, `messages` and `offload`.
pub struct ChatlayerPort;

/// Idempotency scope: per session, so equal bodies of different sessions never collide.
fn scope(bot_id: &str, session_id: &str) -> String {
    format!("chatlayer:{bot_id}:{session_id}")
}

impl PlatformPort for ChatlayerPort {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Chatlayer
    }

    fn routes(&self) -> &'static [PlatformRoute] {
        ROUTES
    }

    fn verify_secret_field(&self) -> &'static str {
        VERIFY_TOKEN_FIELD
    }

    fn build(
        &self,
        config: &PlatformConfig,
        secret: &Secret,
        http: reqwest::Client,
    ) -> Result<Arc<dyn BotPlatform>, SetupError> {
        Ok(Arc::new(ChatlayerPlatform::new(config, secret, http)?))
    }

    /// The verify token, from Chatlayer's documented query parameter or the `token` parameter
    /// the operator put in the configured URL, compared in constant time.
    fn verify(&self, request: &PlatformRequest<'_>, secret: &[u8], _now: i64) -> Result<(), Refusal> {
        let ok = [VERIFY_TOKEN_PARAM, URL_TOKEN_PARAM]
            .iter()
            .filter_map(|p| request.query(p))
            .any(|given| bool::from(given.as_bytes().ct_eq(secret)));
        if ok {
            Ok(())
        } else {
            Err(Refusal::Unauthenticated("missing or wrong verify token".into()))
        }
    }

    fn parse(
        &self,
        bot_id: &str,
        platform: &PlatformConfig,
        request: &PlatformRequest<'_>,
    ) -> Result<Inbound, Refusal> {
        if request.method == "GET" {
            return Ok(Inbound::Probe);
        }
        let ev: ChatlayerEvent = parse_json(request.body)?;
        if ev.session_id.is_empty() || ev.session_id.len() > MAX_ID_LEN || ev.session_id.contains('#') {
            return Err(Refusal::invalid(
                "invalid_request",
                "sessionId: must be 1-128 characters without '#'",
            ));
        }
        check_sizes(&ev)?;
        let id = body_id(request.body);
        let turns = |items: &[Item], only_new: bool| Step::Turns {
            turns: items.iter().filter_map(turn_of).collect(),
            user: user_info(items),
            channel: ev.channel.clone(),
            context: ev.context(),
            event_id: id.clone(),
            only_new,
        };
        let steps = match ev.event.as_str() {
            "messages" => vec![turns(&ev.messages, false)],
            "offload" => {
                let request =
                    handover_request(ev.payload.as_ref()).map_err(|m| Refusal::invalid("invalid_request", m))?;
                limits::check_request("payload", &request).map_err(|o| Refusal::TooLarge(o.to_string()))?;
                let input = Input {
                    user: user_info(&ev.transcript),
                    channel: ev.channel.clone(),
                    context: ev.context(),
                    ..Input::new(Event::HandoverRequested(request))
                };
                // The transcript repeats what `messages` already brought: only the rest is added.
                vec![
                    turns(&ev.transcript, true),
                    Step::Event {
                        input: Box::new(input),
                        event_id: id.clone(),
                        rendering: Rendering::ChatlayerOffload(platform.pause_at()),
                        // Closed or disabled: Chatlayer is told it did not succeed, and the user
                        // gets our dialog through the API, so they always see the matching text.
                        show_refusal_dialog: true,
                    },
                ]
            }
            other => {
                return Err(Refusal::invalid(
                    "unknown_event",
                    format!("event: unknown event {other:?}; expected \"messages\" or \"offload\""),
                ));
            }
        };
        Ok(Inbound::Events(Events {
            scope: scope(bot_id, &ev.session_id),
            session_id: ev.session_id,
            steps,
        }))
    }
}

/// Chatlayer's fields within the limits every caller keeps (`domain::limits`): refused with
/// 422 `too_large` naming the field, before anything is stored.
fn check_sizes(ev: &ChatlayerEvent) -> Result<(), Refusal> {
    let too_large = |o: limits::Oversize| Refusal::TooLarge(o.to_string());
    limits::check_channel("channel", ev.channel.as_deref()).map_err(too_large)?;
    limits::check_name("botId", ev.bot_id.as_deref()).map_err(too_large)?;
    limits::check_name("version", ev.version.as_deref()).map_err(too_large)?;
    for (list, items) in [("messages", &ev.messages), ("transcript", &ev.transcript)] {
        for (i, item) in items.iter().enumerate() {
            if let Some(turn) = turn_of(item) {
                limits::check_message(&format!("{list}[{i}].message"), &turn.message).map_err(too_large)?;
            }
        }
    }
    Ok(())
}

//! What Genesys sends us: agent messages on the outbound webhook, and the participants of a
//! polled conversation, read into domain events.

use super::wire::*;
use crate::domain::message::{Attachment, Button, Card, Location};
use crate::domain::{Agent, Message};
use crate::providers::{Callback, CallbackError, ProviderConversation, ProviderEvent, ProviderEventKind};

/// Text (and structured) messages become agent messages, or automated messages when a bot flow
/// sent them; agent typing events become agent typing. Receipts, inbound echoes and anything
/// unknown are acknowledged and ignored: Genesys retries only 429 and 5xx, and a refusal helps nobody.
pub(super) fn parse(body: &[u8], agent_name: Option<&str>) -> Result<Callback, CallbackError> {
    let m: Outbound = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
    if m.direction
        .as_deref()
        .is_some_and(|d| !d.eq_ignore_ascii_case("outbound"))
    {
        return Ok(Callback::Events(Vec::new()));
    }
    let conversation_id = m
        .channel
        .to
        .as_ref()
        .and_then(|t| t.id.clone())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| CallbackError::Malformed("missing field `channel.to.id`".into()))?;
    let id =
        m.id.clone()
            .or_else(|| m.channel.message_id.clone())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
    // Genesys: "each message must have a unique combination of id and time".
    let event_id = match m.channel.time.as_deref().filter(|t| !t.is_empty()) {
        Some(time) => format!("{id}@{time}"),
        None => id,
    };
    let kind = match m.kind.as_str() {
        "Text" | "Structured" => {
            let message = message_of(&m);
            if message.is_empty() {
                return Ok(Callback::Events(Vec::new()));
            }
            if from_an_agent(&m) {
                ProviderEventKind::AgentMessage {
                    agent: Some(agent(m.channel.from.as_ref(), agent_name)),
                    message,
                }
            } else {
                ProviderEventKind::AutomatedMessage {
                    agent: Some(flow(m.channel.from.as_ref())),
                    message,
                }
            }
        }
        "Event" => {
            let typing = m.events.as_deref().unwrap_or_default().iter().any(|e| {
                e.event_type.eq_ignore_ascii_case("typing")
                    && !e
                        .typing
                        .as_ref()
                        .and_then(|t| t.kind.as_deref())
                        .is_some_and(|k| k.eq_ignore_ascii_case("off"))
            });
            if !typing || !from_an_agent(&m) {
                return Ok(Callback::Events(Vec::new()));
            }
            // The typing event's sender is the integration, not the agent.
            ProviderEventKind::AgentTyping { agent: None }
        }
        _ => return Ok(Callback::Events(Vec::new())),
    };
    Ok(Callback::Events(vec![ProviderEvent {
        event_id,
        conversation_id,
        kind,
    }]))
}

/// The agent of a message: the configured name wins over the one Genesys sends.
pub(super) fn agent(from: Option<&Recipient>, agent_name: Option<&str>) -> Agent {
    let id = from
        .and_then(|f| f.id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "genesys".to_owned());
    let name = agent_name
        .map(str::to_owned)
        .or_else(|| from.and_then(Recipient::display_name));
    Agent { id, name }
}

/// Who speaks for a bot flow: the sender Genesys names (the integration), never the configured
/// agent name, which belongs to people.
pub(super) fn flow(from: Option<&Recipient>) -> Agent {
    Agent {
        id: from
            .and_then(|f| f.id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "genesys-flow".to_owned()),
        name: from.and_then(Recipient::display_name),
    }
}

/// Messages Genesys marks `originatingEntity: "Bot"` come from an Architect flow or a Genesys
/// bot (queue notices, in-queue menus with quick replies or cards), not from an agent. They are
/// relayed to the user as automated messages, which never count as the agent's join.
pub(super) fn from_an_agent(m: &Outbound) -> bool {
    !m.originating_entity
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("bot"))
}

fn trimmed(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Adds a piece of text once (Genesys may repeat `text` in a `Text` element).
fn add_text(texts: &mut Vec<String>, t: Option<&str>) {
    if let Some(t) = trimmed(t)
        && !texts.iter().any(|seen| seen == t)
    {
        texts.push(t.to_owned());
    }
}

/// Everything one Genesys message shows: its `text`, then each content element of the Platform
/// API model `ConversationMessageContent` in the order Genesys lists them. Quick replies (both
/// versions), cards and carousels stay structured; `Text`, `DatePicker` and `Notification`
/// elements become text; a location stays a location. An element of a type we do not render
/// is named in a short notice when the message would otherwise be empty, so the user learns
/// that something was sent rather than nothing arriving at all.
pub(super) fn message_of(m: &Outbound) -> Message {
    let content = m.content.as_deref().unwrap_or_default();
    let mut texts: Vec<String> = Vec::new();
    add_text(&mut texts, m.text.as_deref());
    let mut message = Message::default();
    let mut unknown: Vec<&str> = Vec::new();
    for c in content {
        match c.content_type.to_ascii_lowercase().as_str() {
            "attachment" => message
                .attachments
                .extend(c.attachment.as_ref().and_then(attachment_of)),
            "quickreply" => message.quick_replies.extend(
                c.quick_reply
                    .as_ref()
                    .and_then(|q| trimmed(Some(&q.text)))
                    .map(str::to_owned),
            ),
            "quickreplyv2" => {
                if let Some(q) = &c.quick_reply_v2 {
                    add_text(&mut texts, q.title.as_deref());
                    message.quick_replies.extend(
                        q.actions
                            .iter()
                            .filter_map(|a| trimmed(Some(&a.text)))
                            .map(str::to_owned),
                    );
                }
            }
            "card" => message.cards.extend(c.card.as_ref().and_then(ContentCard::to_card)),
            "carousel" => {
                if let Some(carousel) = &c.carousel {
                    message
                        .cards
                        .extend(carousel.cards.iter().filter_map(ContentCard::to_card));
                }
            }
            "text" => add_text(&mut texts, c.text.as_ref().and_then(|t| t.body.as_deref())),
            "datepicker" => {
                if let Some(d) = &c.date_picker {
                    add_text(&mut texts, d.title.as_deref());
                    add_text(&mut texts, d.subtitle.as_deref());
                }
            }
            "notification" => {
                if let Some(t) = &c.template {
                    add_text(&mut texts, t.header.as_ref().and_then(|h| h.text.as_deref()));
                    add_text(&mut texts, t.body.as_ref().map(template_body).as_deref());
                    add_text(&mut texts, t.footer.as_ref().and_then(|f| f.text.as_deref()));
                }
            }
            "location" => {
                if let Some(l) = &c.location {
                    match (l.latitude, l.longitude) {
                        (Some(latitude), Some(longitude)) => message.location = Some(Location { latitude, longitude }),
                        _ => add_text(&mut texts, l.address.as_deref().or(l.text.as_deref())),
                    }
                }
            }
            // The customer's own answers and reactions: nothing to show the customer.
            "buttonresponse" | "reactions" => {}
            _ => unknown.push(c.content_type.as_str()),
        }
    }
    message.text = (!texts.is_empty()).then(|| texts.join("\n"));
    if message.is_empty() && !unknown.is_empty() {
        message.text = Some(format!(
            "[Genesys sent content this chat cannot show: {}]",
            unknown.join(", ")
        ));
    }
    message
}

/// A notification template's body text with its placeholders (`{{1}}`, `{{2}}`, …) filled from
/// the parameters in order.
fn template_body(b: &TemplateBody) -> String {
    let mut text = b.text.clone().unwrap_or_default();
    for (i, p) in b.parameters.iter().enumerate() {
        if let Some(value) = p.text.as_deref() {
            text = text.replace(&format!("{{{{{}}}}}", i + 1), value);
        }
    }
    text
}

fn attachment_of(a: &ContentAttachment) -> Option<Attachment> {
    let url = a.url.clone().filter(|u| !u.is_empty())?;
    Some(Attachment {
        kind: a
            .media_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| "file".to_owned()),
        url,
        name: a.filename.clone().filter(|n| !n.is_empty()),
    })
}

impl ContentCard {
    pub(super) fn to_card(&self) -> Option<Card> {
        let title = self.title.trim();
        if title.is_empty() {
            return None;
        }
        let non_empty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        Some(Card {
            title: title.to_owned(),
            subtitle: non_empty(&self.description),
            image_url: non_empty(&self.image),
            buttons: self
                .actions
                .iter()
                .filter(|a| !a.text.trim().is_empty())
                .map(|a| {
                    let link = a.kind.eq_ignore_ascii_case("link");
                    Button {
                        title: a.text.trim().to_owned(),
                        payload: if link { None } else { non_empty(&a.payload) },
                        url: if link { non_empty(&a.url) } else { None },
                    }
                })
                .collect(),
        })
    }
}

/// The queue a conversation still waits in: its `acd` participant's, while no agent is
/// connected.
pub(super) fn waiting_queue(conv: &PolledConversation) -> Option<String> {
    let p = |purpose: &str, state: &str| {
        conv.participants
            .iter()
            .find(|p| p.purpose.as_deref() == Some(purpose) && p.state.as_deref() == Some(state))
    };
    if p("agent", "connected").is_some() {
        return None;
    }
    conv.participants
        .iter()
        .filter(|p| p.purpose.as_deref() == Some("acd") && p.state.as_deref() != Some("disconnected"))
        .find_map(|p| p.queue.as_ref().and_then(|q| q.id.clone()).filter(|id| !id.is_empty()))
}

/// The estimate for messaging: the `MESSAGE` prediction, else one for all media (`ALL` or
/// unscoped), else the first; negative values (none) are no estimate.
pub(super) fn wait_seconds(predictions: &WaitPredictions) -> Option<u64> {
    let by = |intent: Option<&str>| {
        predictions
            .results
            .iter()
            .find(|r| r.intent.as_deref().map(str::to_ascii_uppercase).as_deref() == intent)
    };
    let chosen = by(Some("MESSAGE"))
        .or_else(|| by(Some("ALL")))
        .or_else(|| by(None))
        .or_else(|| predictions.results.first())?;
    u64::try_from(chosen.estimated_wait_time_seconds?).ok()
}

/// Joins and closes read off the participants. An agent participant that is connected means
/// an agent took the conversation; the conversation counts as closed when the customer left,
/// or when agents were there and none is connected or being offered it any more (a transfer
/// shows a new agent or queue participant alerting, so it does not count). Event ids are stable
/// per participant, so repeated polls are applied once.
pub(super) fn polled_events(
    c: &ProviderConversation,
    conv: &PolledConversation,
    agent_name: Option<&str>,
) -> Vec<ProviderEvent> {
    fn is(p: &PolledParticipant, purpose: &str) -> bool {
        p.purpose.as_deref() == Some(purpose)
    }
    fn state(p: &PolledParticipant) -> &str {
        p.state.as_deref().unwrap_or("")
    }
    fn gone(p: &PolledParticipant) -> bool {
        matches!(state(p), "disconnected" | "terminated")
    }
    let mut events = Vec::new();
    if let Some(p) = conv
        .participants
        .iter()
        .find(|p| is(p, "agent") && state(p) == "connected")
    {
        let id = p
            .user
            .as_ref()
            .and_then(|u| u.id.clone())
            .or_else(|| p.id.clone())
            .unwrap_or_else(|| "genesys".into());
        events.push(ProviderEvent {
            event_id: format!("poll-joined-{}", p.id.as_deref().unwrap_or(&id)),
            conversation_id: c.handover_id.clone(),
            kind: ProviderEventKind::AgentJoined {
                agent: Agent {
                    id,
                    name: agent_name.map(str::to_owned).or_else(|| p.name.clone()),
                },
            },
        });
    }
    let customer_left = conv.participants.iter().any(|p| is(p, "customer") && gone(p));
    let agents: Vec<&PolledParticipant> = conv.participants.iter().filter(|p| is(p, "agent")).collect();
    let someone_pending = conv.participants.iter().any(|p| {
        (is(p, "agent") || is(p, "acd")) && matches!(state(p), "alerting" | "connected" | "offering" | "contacting")
    });
    if customer_left || (!agents.is_empty() && agents.iter().all(|p| gone(p)) && !someone_pending) {
        events.push(ProviderEvent {
            event_id: format!("poll-closed-{}", c.conversation_id),
            conversation_id: c.handover_id.clone(),
            kind: ProviderEventKind::ConversationClosed,
        });
    }
    events
}

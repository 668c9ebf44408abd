//! What Genesys sends us: agent messages on the outbound webhook, and the participants of a
//! polled conversation, read into domain events.

use super::wire::*;
use crate::domain::message::{Attachment, Button, Card};
use crate::domain::{Agent, Message};
use crate::providers::{Callback, CallbackError, ProviderConversation, ProviderEvent, ProviderEventKind};

/// Text (and structured) messages become agent messages, typing events agent typing.
/// Receipts, inbound echoes, bot-originated messages and anything unknown are acknowledged
/// and ignored: Genesys retries only 429 and 5xx, and a refusal helps nobody.
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
            if !from_an_agent(&m) {
                return Ok(Callback::Events(Vec::new()));
            }
            let content = m.content.as_deref().unwrap_or_default();
            let (quick_replies, cards) = structured_of(content);
            let message = Message {
                text: m.text.clone().filter(|t| !t.trim().is_empty()),
                quick_replies,
                cards,
                attachments: attachments_of(content),
                ..Message::default()
            };
            if message.is_empty() {
                return Ok(Callback::Events(Vec::new()));
            }
            ProviderEventKind::AgentMessage {
                agent: Some(agent(m.channel.from.as_ref(), agent_name)),
                message,
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

/// ASSUMPTION: messages Genesys marks `originatingEntity: "Bot"` come from an Architect flow or a
/// Genesys bot (queue notices, bot replies), not from an agent. They are not relayed: relaying
/// them would count as the agent's join while the user is still waiting.
pub(super) fn from_an_agent(m: &Outbound) -> bool {
    !m.originating_entity
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("bot"))
}

pub(super) fn attachments_of(content: &[Content]) -> Vec<Attachment> {
    content
        .iter()
        .filter(|c| c.content_type.eq_ignore_ascii_case("attachment"))
        .filter_map(|c| c.attachment.as_ref())
        .filter_map(|a| {
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
        })
        .collect()
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

/// The structured parts of an agent's message: quick replies, and cards (a card alone or the
/// cards of a carousel), in the order Genesys lists them.
pub(super) fn structured_of(content: &[Content]) -> (Vec<String>, Vec<Card>) {
    let mut quick_replies = Vec::new();
    let mut cards = Vec::new();
    for c in content {
        match c.content_type.to_ascii_lowercase().as_str() {
            "quickreply" => {
                if let Some(q) = c.quick_reply.as_ref().map(|q| q.text.trim()).filter(|t| !t.is_empty()) {
                    quick_replies.push(q.to_owned());
                }
            }
            "card" => cards.extend(c.card.as_ref().and_then(ContentCard::to_card)),
            "carousel" => {
                if let Some(carousel) = &c.carousel {
                    cards.extend(carousel.cards.iter().filter_map(ContentCard::to_card));
                }
            }
            _ => {}
        }
    }
    (quick_replies, cards)
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

//! Intercom's webhook notifications read into domain events: a person's reply, a person
//! taking the conversation or giving it back to the bot teammate, and the close.

use super::wire::{Author, Conversation, Notification, Part, text};
use super::{IntercomProvider, TOPIC_ADMIN_ASSIGNED, TOPIC_ADMIN_CLOSED, TOPIC_ADMIN_REPLIED, UNASSIGNED};
use crate::domain::message::Attachment;
use crate::domain::{Agent, Message};
use crate::providers::kit::settings::non_empty;
use crate::providers::kit::text::{HtmlText, html_to_text};
use crate::providers::{Callback, CallbackError, CallbackRequest, ProviderEvent, ProviderEventKind};

/// The endpoint check when the webhook URL is saved: a `HEAD` without a body, nothing to
/// verify or change (`provider_callback` answers it for every path before this adapter is
/// reached). A `GET` is not one: unsigned, it is refused like any request.
pub(super) fn is_probe(r: &CallbackRequest<'_>) -> bool {
    r.method == "HEAD" && r.body.is_empty()
}

impl IntercomProvider {
    /// A notification's events: at most one, for the topics we act on.
    pub(super) fn events(&self, body: &[u8]) -> Result<Callback, CallbackError> {
        let n: Notification = serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let topic = n
            .topic
            .ok_or_else(|| CallbackError::Malformed("missing field `topic`".into()))?;
        if ![TOPIC_ADMIN_REPLIED, TOPIC_ADMIN_ASSIGNED, TOPIC_ADMIN_CLOSED].contains(&topic.as_str()) {
            return Ok(Callback::Events(Vec::new()));
        }
        // Subscriptions belong to the app: another workspace's notifications are not ours.
        if let Some(workspace) = &self.workspace_id
            && text(&n.app_id).is_some_and(|a| a != *workspace)
        {
            return Ok(Callback::Events(Vec::new()));
        }
        let notification_id = non_empty(n.id).ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
        let item = n.data.and_then(|d| d.item).unwrap_or_default();
        let conversation_id =
            text(&item.id).ok_or_else(|| CallbackError::Malformed("missing field `data.item.id`".into()))?;
        let event = match topic.as_str() {
            TOPIC_ADMIN_REPLIED => self.reply_event(&item).map(|(part, kind)| {
                let id = part.map_or_else(|| notification_id.clone(), |p| format!("part-{p}"));
                (id, kind)
            }),
            TOPIC_ADMIN_ASSIGNED => self.assignment_event(&item).map(|k| (notification_id.clone(), k)),
            _ => self.close_event(&item).map(|k| (notification_id.clone(), k)),
        };
        Ok(Callback::Events(
            event
                .into_iter()
                .map(|(event_id, kind)| ProviderEvent {
                    event_id,
                    conversation_id: conversation_id.clone(),
                    kind,
                })
                .collect(),
        ))
    }

    /// A person, not the bot teammate and not Intercom's AI agent.
    fn is_human_admin(&self, author: Option<&Author>) -> bool {
        author.is_some_and(|a| {
            a.kind.as_deref() == Some("admin")
                && text(&a.id).is_some_and(|id| id != self.bot_admin_id)
                && a.from_ai_agent != Some(true)
        })
    }

    /// `conversation.admin.replied`: the newest reply of a person. Webhook payloads carry the
    /// part that caused them; taking only the newest one also keeps older parts from being
    /// replayed should a payload ever carry more.
    fn reply_event(&self, item: &Conversation) -> Option<(Option<String>, ProviderEventKind)> {
        item.parts().iter().rev().find_map(|p| {
            if !self.is_human_admin(p.author.as_ref()) || p.is("note") {
                return None;
            }
            let message = part_message(p);
            if message.is_empty() {
                return None;
            }
            let agent = p.author.as_ref().and_then(|a| {
                text(&a.id).map(|id| Agent {
                    id,
                    name: non_empty(a.name.clone()),
                })
            });
            Some((text(&p.id), ProviderEventKind::AgentMessage { agent, message }))
        })
    }

    /// `conversation.admin.closed`: the agent closed the conversation, but only when the close
    /// part's author is a person. Intercom sends this topic whoever closed it: Fin (`from_ai_agent`),
    /// a workflow or rule (author `bot`), or our own bot teammate ending the handover; none of
    /// those is an agent closing, and the handover keeps its own timers. A payload without a
    /// close part does not say who closed; it is taken as the agent's close, as before.
    fn close_event(&self, item: &Conversation) -> Option<ProviderEventKind> {
        match item.parts().iter().rev().find(|p| p.is("close")) {
            Some(close) if !self.is_human_admin(close.author.as_ref()) => None,
            _ => Some(ProviderEventKind::ConversationClosed),
        }
    }

    /// `conversation.admin.assigned`: a person now owns the conversation (the agent joined),
    /// or a person gave it back to the bot teammate (control returns to the bot). Our own
    /// assignments, made as the bot teammate, mean neither.
    fn assignment_event(&self, item: &Conversation) -> Option<ProviderEventKind> {
        let assignee = text(&item.admin_assignee_id).filter(|a| a.as_str() != UNASSIGNED)?;
        let part = item.parts().iter().rev().find(|p| p.is_assignment());
        if assignee == self.bot_admin_id {
            let by_person = part.is_some_and(|p| self.is_human_admin(p.author.as_ref()));
            return by_person.then_some(ProviderEventKind::ConversationClosed);
        }
        let name = part
            .filter(|p| p.author_id().as_deref() == Some(assignee.as_str()))
            .and_then(|p| p.author.as_ref())
            .and_then(|a| non_empty(a.name.clone()));
        Some(ProviderEventKind::AgentJoined {
            agent: Agent { id: assignee, name },
        })
    }
}

/// An agent's reply as a message: the HTML body as plain text, files and inline images as
/// attachments.
fn part_message(part: &Part) -> Message {
    let HtmlText { text, images } = html_to_text(part.body.as_deref().unwrap_or(""));
    let mut attachments: Vec<Attachment> = Vec::new();
    for a in &part.attachments {
        let Some(url) = non_empty(a.url.clone()) else {
            continue;
        };
        attachments.push(Attachment {
            kind: attachment_kind(a.content_type.as_deref()),
            url,
            name: non_empty(a.name.clone()),
        });
    }
    for src in images {
        if !attachments.iter().any(|a| a.url == src) {
            attachments.push(Attachment {
                kind: "image".into(),
                url: src,
                name: None,
            });
        }
    }
    Message {
        text: (!text.is_empty()).then_some(text),
        attachments,
        ..Message::default()
    }
}

fn attachment_kind(content_type: Option<&str>) -> String {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    for kind in ["image", "video", "audio"] {
        if ct.starts_with(kind) {
            return kind.to_owned();
        }
    }
    "file".to_owned()
}

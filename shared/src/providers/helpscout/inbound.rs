//! Help Scout's webhooks (and the thread list fetched when a webhook carries none) read into
//! domain events: users' published replies, an assignment to a user, the close.

use super::wire::{AttachmentWire, ConversationBody, Person, Thread, read, text};
use super::{
    EVENT_AGENT_REPLY, EVENT_ASSIGNED, EVENT_DELETED, EVENT_MERGED, EVENT_MOVED, EVENT_STATUS, HelpScoutProvider,
};
use crate::domain::message::Attachment;
use crate::domain::{Agent, Message};
use crate::providers::kit::text::html_to_text;
use crate::providers::{Callback, CallbackError, ProviderEvent, ProviderEventKind};

impl HelpScoutProvider {
    /// The events of a webhook `event` acted on (the caller filtered the others).
    pub(super) fn events(&self, event: &str, body: &[u8]) -> Result<Callback, CallbackError> {
        if let Some(conversation_id) = notification_conversation(body) {
            return Ok(match event {
                // The URI is all there is; a deletion needs nothing more.
                EVENT_DELETED => Callback::Events(vec![deleted(conversation_id)]),
                // Nothing in a URI says where the conversation went, and a merge changes
                // nothing for the survivor it names.
                EVENT_MERGED | EVENT_MOVED => Callback::Events(Vec::new()),
                // Anything else: read the conversation's threads (its replies) from the API.
                _ => Callback::Fetch { conversation_id },
            });
        }
        let body: ConversationBody =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let conversation_id =
            text(&body.id).ok_or_else(|| CallbackError::Malformed("missing conversation `id`".into()))?;
        let events = match event {
            EVENT_AGENT_REPLY => {
                if body.thread_list().is_none() {
                    // A body without its threads says a reply was made but not which: read them.
                    return Ok(Callback::Fetch { conversation_id });
                }
                self.agent_replies(&conversation_id, &body)
            }
            EVENT_ASSIGNED => self.assignment(&conversation_id, &body).into_iter().collect(),
            EVENT_STATUS => closed_status(&conversation_id, &body).into_iter().collect(),
            // The body is the surviving conversation, which keeps its id, threads and
            // assignee: a handover on it goes on. One merged away is never named here; Help
            // Scout answers our next call on it with 301, which ends that handover
            // (`merged_is_gone`).
            EVENT_MERGED => Vec::new(),
            EVENT_MOVED => self.moved_away(&conversation_id, &body).into_iter().collect(),
            _ => vec![deleted(conversation_id)],
        };
        Ok(Callback::Events(events))
    }

    fn agent_of(&self, person: Option<&Person>) -> Agent {
        let id = person
            .and_then(|p| text(&p.id))
            .unwrap_or_else(|| "helpscout".to_owned());
        let name = self.agent_name.clone().or_else(|| person.and_then(Person::name));
        Agent { id, name }
    }

    /// Every published reply written by a user in the conversation's threads, oldest first.
    /// Each reply's event id is its thread id, so a reply present in several webhooks is
    /// applied once.
    pub(super) fn agent_replies(&self, conversation_id: &str, body: &ConversationBody) -> Vec<ProviderEvent> {
        let threads = body.thread_list().unwrap_or_default();
        let mut replies: Vec<(String, u64, ProviderEvent)> = threads
            .iter()
            .filter_map(|t| t.get())
            .filter_map(|t| {
                let (thread_id, message) = reply_of(t)?;
                let order = thread_id.parse::<u64>().unwrap_or(0);
                Some((
                    t.created_at.clone().unwrap_or_default(),
                    order,
                    ProviderEvent {
                        event_id: format!("thread:{thread_id}"),
                        conversation_id: conversation_id.to_owned(),
                        kind: ProviderEventKind::AgentMessage {
                            agent: Some(self.agent_of(read(&t.created_by))),
                            message,
                        },
                    },
                ))
            })
            .collect();
        replies.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        replies.into_iter().map(|(_, _, e)| e).collect()
    }

    /// `convo.moved` to a mailbox this provider does not hand conversations to: the agent side
    /// took the conversation out of the bot's inboxes (and out of what the webhook, subscribed
    /// to those mailboxes, hears), so the handover ends as closed by the agent side. A move
    /// between the bot's own mailboxes keeps the conversation's id and agent, and changes
    /// nothing.
    fn moved_away(&self, conversation_id: &str, body: &ConversationBody) -> Option<ProviderEvent> {
        let mailbox = text(&body.mailbox_id)?.parse::<u64>().ok()?;
        if self.is_our_mailbox(mailbox) {
            return None;
        }
        Some(ProviderEvent {
            event_id: format!("{conversation_id}:moved:{mailbox}"),
            conversation_id: conversation_id.to_owned(),
            kind: ProviderEventKind::ConversationClosed,
        })
    }

    /// `convo.assigned` to a user: that user joined.
    fn assignment(&self, conversation_id: &str, body: &ConversationBody) -> Option<ProviderEvent> {
        if !self.assignment_is_join {
            return None;
        }
        let assignee = read(&body.assignee).or_else(|| read(&body.owner))?;
        // A team (or anything that is not a person) is not an agent taking the conversation.
        if assignee.kind.is_some() && !assignee.is("user") {
            return None;
        }
        let assignee_id = text(&assignee.id)?;
        Some(ProviderEvent {
            event_id: format!("{conversation_id}:assigned:{assignee_id}"),
            conversation_id: conversation_id.to_owned(),
            kind: ProviderEventKind::AgentJoined {
                agent: self.agent_of(Some(assignee)),
            },
        })
    }
}

/// A thread that is a user's published reply: its id and its message (text from the HTML,
/// images in the HTML and attachments as attachments). `None` for anything else.
fn reply_of(t: &Thread) -> Option<(String, Message)> {
    let kind = t.kind.as_deref().unwrap_or_default().to_ascii_lowercase();
    if !matches!(kind.as_str(), "message" | "reply" | "chat") {
        return None;
    }
    if !read(&t.created_by).is_some_and(|by| by.is("user")) {
        return None;
    }
    // Only what the customer can see: not a draft, a hidden thread, or a reply held
    // `underreview` by collision detection (relayed once a later webhook or read shows it
    // `published`, under the same thread id).
    if t.state.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case("published")) {
        return None;
    }
    let thread_id = text(&t.id)?;
    let html = html_to_text(t.body.as_deref().or(t.text.as_deref()).unwrap_or_default());
    // Images in the reply's HTML reach the user as images, beside its attachments.
    let mut attachments = attachments_of(t);
    attachments.extend(html.images.into_iter().map(|url| Attachment {
        kind: "image".to_owned(),
        url,
        name: None,
    }));
    let message = Message {
        text: (!html.text.trim().is_empty()).then_some(html.text),
        attachments,
        ..Message::default()
    };
    (!message.is_empty()).then_some((thread_id, message))
}

/// A thread's attachments as links.
fn attachments_of(thread: &Thread) -> Vec<Attachment> {
    let list = read(&thread.embedded)
        .and_then(|e| read(&e.attachments))
        .or_else(|| read(&thread.attachments))
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().filter_map(|a| a.get()).filter_map(attachment).collect()
}

fn attachment(a: &AttachmentWire) -> Option<Attachment> {
    let web = read(&a.links).and_then(|l| read(&l.web)).and_then(|w| w.href.clone());
    let url = web.or_else(|| a.url.clone()).filter(|u| u.starts_with("http"))?;
    let kind = match a.mime_type.as_deref().unwrap_or_default().split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "file",
    };
    let name = a
        .filename
        .as_ref()
        .or(a.file_name.as_ref())
        .filter(|n| !n.is_empty())
        .cloned();
    Some(Attachment {
        kind: kind.to_owned(),
        url,
        name,
    })
}

/// `convo.status` to `closed` (or `spam`): the agent is done with the conversation.
fn closed_status(conversation_id: &str, body: &ConversationBody) -> Option<ProviderEvent> {
    let status = text(&body.status)?.to_ascii_lowercase();
    if !matches!(status.as_str(), "closed" | "spam") {
        return None;
    }
    Some(ProviderEvent {
        event_id: format!("{conversation_id}:status:{status}"),
        conversation_id: conversation_id.to_owned(),
        kind: ProviderEventKind::ConversationClosed,
    })
}

fn deleted(conversation_id: String) -> ProviderEvent {
    ProviderEvent {
        event_id: format!("{conversation_id}:deleted"),
        conversation_id,
        kind: ProviderEventKind::ConversationClosed,
    }
}

/// The conversation a *notification* webhook names. A webhook created with `notification: true`
/// carries "just a resource URI that can be used to fetch the entity" instead of the
/// conversation (Help Scout, Create Webhook). ASSUMPTION (the body's exact shape is not
/// published): the URI is the body itself as a JSON string, or a `url`, `uri`, `href` or
/// `_links.self.href` field, and its path holds `/conversations/{id}`. `None` for a body that
/// carries a conversation `id` (a full payload).
pub(super) fn notification_conversation(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("id").is_some() {
        return None;
    }
    let uri = match &v {
        serde_json::Value::String(s) => Some(s.as_str()),
        serde_json::Value::Object(o) => ["url", "uri", "href"]
            .iter()
            .find_map(|k| o.get(*k).and_then(serde_json::Value::as_str))
            .or_else(|| v.pointer("/_links/self/href").and_then(serde_json::Value::as_str)),
        _ => None,
    }?;
    let rest = uri.split("/conversations/").nth(1)?;
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

//! Help Scout (Inbox API 2.0, formerly "Mailbox API"): a relay. The bot platform keeps the
//! user's channel; every handover opens a **new** Help Scout conversation in the mailbox routed
//! for the queue, and handover relays the conversation both ways.
//!
//! - **Start**: `POST /v2/conversations` with `imported: true`, the customer (the user's email,
//!   or a placeholder address, see `customer_email`), the bot transcript as threads (user turns
//!   as `customer` threads, bot turns as `note` threads starting with `Bot: `) and, as the
//!   newest thread, a note with the handover's context (queue, reason, summary, tags,
//!   variables). Help Scout answers `201 Created` without a body; the new conversation's id is
//!   in the `Resource-ID` header, and that id is what the shell indexes. `imported` is what
//!   keeps Help Scout from emailing anyone about the history; why bot turns are notes and not
//!   `reply` threads: a reply is something the mailbox says to the customer (and is emailed
//!   unless imported), and replies by users are what we relay back as agent messages.
//! - **User turns** afterwards: `POST /v2/conversations/{id}/customer` (not imported: it
//!   re-opens the conversation and notifies the mailbox like any customer reply). The endpoint
//!   needs the customer's id, learnt once per conversation from `GET /v2/conversations/{id}`
//!   (`primaryCustomer.id`) and remembered in-process. **Bot turns** while waiting: notes.
//! - **Agent side**: Help Scout webhooks, signed `X-HelpScout-Signature: base64(HMAC-SHA1(secret,
//!   raw body))`, the event named in `X-HelpScout-Event`, the body a conversation object:
//!   `convo.agent.reply.created` → agent messages (every published reply thread written by a
//!   user, idempotent on the thread id), `convo.assigned` → agent joined (unless
//!   `assignmentIsJoin: false`), `convo.status` with `closed` (or `spam`) and `convo.deleted` →
//!   conversation closed, which returns the user to the bot. Everything else (`helpscout.test`,
//!   customer replies, which are our own relays, notes, tags …) is acknowledged and ignored.
//!   Help Scout has no typing events.
//! - **End** from our side (user cancel, no agent in time, agent idle): one note saying why,
//!   posted with `status: "closed"`, so the conversation is closed and the agent reads the
//!   reason in the same step. A conversation that no longer exists counts as ended.
//! - **Auth**: OAuth 2 client credentials (`POST /v2/oauth2/token` with `grant_type`,
//!   `client_id`, `client_secret` as form fields), cached process-wide by [`super::oauth`],
//!   renewed before it expires and at once after a 401.
//!
//! Settings (the provider entry): `mailboxes` (queue → mailbox id) and/or `mailboxId` (the
//! mailbox for every other queue); optional `conversationType` (`chat`, the default, `email` or
//! `phone`), `subject`, `useUserEmail` (default true), `placeholderEmailDomain`,
//! `assignmentIsJoin` (default true), `agentName`, and `apiBaseUrl` / `tokenUrl` (tests,
//! proxies).
//!
//! Secret (JSON): `{"clientId": "<App ID>", "clientSecret": "<App Secret>", "webhookSecret":
//! "<the webhook's secret key>"}`.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::kit::settings;
use super::kit::text::{html_to_text, message_html, text_to_html};
use super::memo::Memo;
use super::oauth::{self, ClientAuth};
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, path_segment, sig,
};
use crate::config::{ProviderConfig, ProviderKind};
use crate::delivery::{self, DeliveryError};
use crate::domain::message::Attachment;
use crate::domain::{Actor, Agent, EndReason, Message, TranscriptEntry};
use crate::secrets::Secret;

/// The header Help Scout signs webhooks with (lower case: header lookups are).
pub const SIGNATURE_HEADER: &str = "x-helpscout-signature";
/// The header naming the webhook's event.
pub const EVENT_HEADER: &str = "x-helpscout-event";
/// Help Scout's rate-limit header: seconds to wait once the limit is reached.
const RATE_LIMIT_RETRY_AFTER: &str = "x-ratelimit-retry-after";

/// The API host; the token endpoint is `{api}/v2/oauth2/token`.
pub const DEFAULT_API_BASE: &str = "https://api.helpscout.net";
const TOKEN_PATH: &str = "/v2/oauth2/token";

/// Webhook events acted on; every other event is acknowledged and ignored.
pub const EVENT_AGENT_REPLY: &str = "convo.agent.reply.created";
pub const EVENT_ASSIGNED: &str = "convo.assigned";
pub const EVENT_STATUS: &str = "convo.status";
pub const EVENT_DELETED: &str = "convo.deleted";
/// Sent by the "Test" button of the webhook settings.
pub const EVENT_TEST: &str = "helpscout.test";

const DEFAULT_SUBJECT: &str = "Chat handed over by the bot";
/// ASSUMPTION (see `customer_email`): the domain of placeholder customer addresses. `.invalid`
/// is reserved (RFC 2606), so nothing is ever delivered to it; set `placeholderEmailDomain` to
/// a domain you control if your Help Scout account refuses it.
const DEFAULT_PLACEHOLDER_DOMAIN: &str = "handover.invalid";
/// Variables the bot platform may use to tell the user's email, and the subject.
const EMAIL_VARIABLES: &[&str] = &["email", "customerEmail", "helpScout.customer.email"];
const FIRST_NAME_VARIABLES: &[&str] = &["firstName", "helpScout.customer.firstName"];
const LAST_NAME_VARIABLES: &[&str] = &["lastName", "helpScout.customer.lastName"];
const SUBJECT_VARIABLES: &[&str] = &["subject", "helpScout.conversation.subject"];
/// Prefix of mirrored bot turns: they are notes, and the agent must see they are the bot's.
const BOT_PREFIX: &str = "Bot: ";
/// The customer thread of a conversation whose transcript has no user turn.
const FALLBACK_CUSTOMER_TEXT: &str = "(The customer asked to talk to an agent.)";

/// ASSUMPTION: the v1 API refused conversations with more than 100 threads (HTTP 412); the 2.0
/// documentation states no limit, so the same one is kept: at most 98 transcript threads, a
/// possible fallback customer thread and the context note. Older turns stay in handover.
const MAX_TRANSCRIPT_THREADS: usize = 98;
/// ASSUMPTION (no published limit for the 2.0 API; v1 allowed 256 kB per create request): each
/// thread's text is cut to this many characters and the oldest threads are dropped while the
/// transcript's text exceeds the budget.
const MAX_THREAD_CHARS: usize = 4000;
const TRANSCRIPT_BUDGET_CHARS: usize = 150_000;
/// ASSUMPTION (no published limit): subjects are cut to this length.
const MAX_SUBJECT_CHARS: usize = 200;
/// Conversation → customer id entries kept in-process before the map is emptied.
const CUSTOMER_CACHE_MAX: usize = 10_000;

/// What Help Scout can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    // Threads are HTML text: buttons, quick replies and carousels become text.
    rich_content: false,
    // The API takes attachments as base64 data and handover only has URLs: user attachments
    // reach the agent as links in the text (agent attachments are relayed as links).
    attachments: false,
    // Help Scout sends no typing events.
    typing: false,
    // The transcript is imported as threads.
    bot_history_visible: true,
    history_written_back: true,
    agent_availability: false,
};

/// The provider entry's Help Scout fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    mailboxes: BTreeMap<String, MailboxRef>,
    #[serde(default)]
    mailbox_id: Option<MailboxRef>,
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    conversation_type: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    use_user_email: Option<bool>,
    #[serde(default)]
    placeholder_email_domain: Option<String>,
    #[serde(default)]
    assignment_is_join: Option<bool>,
    #[serde(default)]
    agent_name: Option<String>,
}

/// A mailbox id as written in YAML: a number, or a numeric string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum MailboxRef {
    Number(u64),
    Text(String),
}

impl MailboxRef {
    fn id(&self) -> Option<u64> {
        let id: Option<u64> = match self {
            MailboxRef::Number(n) => Some(*n),
            MailboxRef::Text(s) => s.trim().parse().ok(),
        };
        id.filter(|n| *n > 0)
    }
}

pub struct HelpScoutProvider {
    api_base: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    webhook_secret: Vec<u8>,
    mailboxes: BTreeMap<String, u64>,
    default_mailbox: Option<u64>,
    conversation_type: String,
    subject: String,
    use_user_email: bool,
    placeholder_domain: String,
    assignment_is_join: bool,
    agent_name: Option<String>,
    /// Customer ids of conversations, which the customer-thread endpoint needs.
    customers: Memo<u64>,
    tokens: oauth::TokenCache,
    http: reqwest::Client,
}

fn setup(field: &str, message: impl std::fmt::Display) -> ProviderSetupError {
    ProviderSetupError::setting(field, message)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl HelpScoutProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let s: Settings = settings::parse(&config.settings)?;
        let mut mailboxes = BTreeMap::new();
        for (queue, mailbox) in &s.mailboxes {
            let id = mailbox.id().ok_or_else(|| {
                setup(
                    &format!("mailboxes.{queue}"),
                    "must be a Help Scout mailbox id (a number)",
                )
            })?;
            mailboxes.insert(queue.clone(), id);
        }
        let default_mailbox = match &s.mailbox_id {
            Some(m) => Some(
                m.id()
                    .ok_or_else(|| setup("mailboxId", "must be a Help Scout mailbox id (a number)"))?,
            ),
            None => None,
        };
        if mailboxes.is_empty() && default_mailbox.is_none() {
            return Err(setup(
                "mailboxes",
                "is required for a helpscout provider (queue: mailbox id), or set providers.mailboxId",
            ));
        }
        let conversation_type = non_empty(s.conversation_type)
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "chat".to_owned());
        if !matches!(conversation_type.as_str(), "chat" | "email" | "phone") {
            return Err(setup("conversationType", "must be chat, email or phone"));
        }
        let placeholder_domain = non_empty(s.placeholder_email_domain)
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .unwrap_or_else(|| DEFAULT_PLACEHOLDER_DOMAIN.to_owned());
        if placeholder_domain.is_empty()
            || !placeholder_domain.contains('.')
            || placeholder_domain.contains(|c: char| c == '@' || c.is_whitespace())
        {
            return Err(setup(
                "placeholderEmailDomain",
                "must be a domain name such as chat.example.com",
            ));
        }
        let api_base = non_empty(s.api_base_url)
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let token_url = non_empty(s.token_url).unwrap_or_else(|| format!("{api_base}{TOKEN_PATH}"));
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(e.to_string()))
        };
        Ok(HelpScoutProvider {
            client_id: field("clientId")?,
            client_secret: field("clientSecret")?,
            webhook_secret: field("webhookSecret")?.into_bytes(),
            api_base,
            token_url,
            mailboxes,
            default_mailbox,
            conversation_type,
            subject: non_empty(s.subject).unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            use_user_email: s.use_user_email.unwrap_or(true),
            placeholder_domain,
            assignment_is_join: s.assignment_is_join.unwrap_or(true),
            agent_name: non_empty(s.agent_name),
            http,
            customers: Memo::new(CUSTOMER_CACHE_MAX),
            tokens: oauth::TokenCache::default(),
        })
    }

    /// The mailbox of a queue: its own entry (exact, then ignoring case), else `mailboxId`.
    fn mailbox_for(&self, queue: &str) -> Option<u64> {
        self.mailboxes
            .get(queue)
            .or_else(|| {
                self.mailboxes
                    .iter()
                    .find(|(q, _)| q.eq_ignore_ascii_case(queue))
                    .map(|(_, id)| id)
            })
            .copied()
            .or(self.default_mailbox)
    }

    async fn access_token(&self) -> Result<String, DeliveryError> {
        oauth::client_credentials(
            &self.tokens,
            &self.http,
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            ClientAuth::Form,
        )
        .await
    }

    /// One API call with the bearer token; a 401 (revoked or expired token) is retried once
    /// with a new token before it counts as a failure.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, DeliveryError> {
        let url = format!("{}{path}", self.api_base);
        let send = |token: String| {
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(b);
            }
            req.send()
        };
        let token = self.access_token().await?;
        let now = Utc::now();
        let resp = send(token.clone()).await.map_err(delivery::transport)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return checked(resp, now).await;
        }
        self.tokens.invalidate(&token).await;
        let token = self.access_token().await?;
        let now = Utc::now();
        let resp = send(token).await.map_err(delivery::transport)?;
        checked(resp, now).await
    }

    fn cache_key(&self, conversation_id: &str) -> String {
        format!("{}|{conversation_id}", self.api_base)
    }

    /// The conversation's customer id, which the customer-thread endpoint needs: remembered
    /// in-process, else read once from the conversation.
    async fn customer_id(&self, conversation_id: &str) -> Result<u64, DeliveryError> {
        let key = self.cache_key(conversation_id);
        if let Some(id) = self.customers.get(&key) {
            return Ok(id);
        }
        let path = format!("/v2/conversations/{}", path_segment(conversation_id));
        let resp = self.call(reqwest::Method::GET, &path, None).await?;
        let v: Value = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Help Scout conversation {conversation_id}: {e}")))?;
        let id = customer_of(&v).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "Help Scout conversation {conversation_id} names no primaryCustomer.id"
            ))
        })?;
        self.customers.insert(key, id);
        Ok(id)
    }

    /// The create-conversation body.
    fn new_conversation(&self, r: &StartRequest<'_>, mailbox: u64) -> Value {
        let h = r.handover;
        let email = customer_email(r, self.use_user_email, &self.placeholder_domain);
        let mut customer = Map::new();
        customer.insert("email".into(), json!(email));
        let (first, last) = customer_names(r);
        if let Some(first) = first {
            customer.insert("firstName".into(), json!(first));
        }
        if let Some(last) = last {
            customer.insert("lastName".into(), json!(last));
        }

        let (entries, omitted) = kept_entries(r.transcript);
        // (type, text, time) in chronological order; the context note is the newest thread.
        let mut items: Vec<(&str, String, DateTime<Utc>)> = Vec::new();
        if !entries.iter().any(|e| e.actor == Actor::User) {
            let at = entries.first().map_or(h.requested_at, |e| e.timestamp);
            items.push(("customer", FALLBACK_CUSTOMER_TEXT.to_owned(), at));
        }
        for e in entries {
            let text = clip(&e.message.render_text(), MAX_THREAD_CHARS);
            match e.actor {
                Actor::User => items.push(("customer", text, e.timestamp)),
                Actor::Bot | Actor::Agent => items.push(("note", format!("{}{text}", note_label(e)), e.timestamp)),
            }
        }
        let newest = items.iter().map(|(_, _, t)| *t).max().unwrap_or(h.requested_at);
        items.push(("note", context_note(r, omitted), newest.max(h.requested_at)));

        let stamps: Vec<DateTime<Utc>> = items.iter().map(|(_, _, t)| *t).collect();
        let times = thread_times(&stamps);
        let threads: Vec<Value> = items
            .iter()
            .zip(&times)
            .map(|((kind, text, _), at)| {
                let mut t = Map::new();
                t.insert("type".into(), json!(kind));
                if *kind == "customer" {
                    t.insert("customer".into(), json!({ "email": email }));
                }
                t.insert("text".into(), json!(text_to_html(text)));
                t.insert("createdAt".into(), json!(iso_seconds(*at)));
                Value::Object(t)
            })
            .collect();

        let mut body = Map::new();
        body.insert("subject".into(), json!(self.subject_of(r)));
        body.insert("customer".into(), Value::Object(customer));
        body.insert("mailboxId".into(), json!(mailbox));
        body.insert("type".into(), json!(self.conversation_type));
        body.insert("status".into(), json!("active"));
        body.insert("imported".into(), json!(true));
        if let Some(first) = times.first() {
            body.insert("createdAt".into(), json!(iso_seconds(*first)));
        }
        let tags: Vec<&str> = h.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
        if !tags.is_empty() {
            body.insert("tags".into(), json!(tags));
        }
        body.insert("threads".into(), Value::Array(threads));
        Value::Object(body)
    }

    /// A variable naming the subject, else the bot's summary, else the configured subject.
    fn subject_of(&self, r: &StartRequest<'_>) -> String {
        let subject = string_variable(r, SUBJECT_VARIABLES)
            .or_else(|| {
                r.handover
                    .summary
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.lines().next().unwrap_or(s).to_owned())
            })
            .unwrap_or_else(|| self.subject.clone());
        clip(&subject, MAX_SUBJECT_CHARS)
    }

    fn agent_of(&self, person: Option<&Value>) -> Agent {
        let id = person
            .and_then(|p| id_string(p.get("id")))
            .unwrap_or_else(|| "helpscout".to_owned());
        let name = self.agent_name.clone().or_else(|| person.and_then(person_name));
        Agent { id, name }
    }

    /// Every published reply written by a user in the webhook's conversation, oldest first.
    /// The body carries the conversation's threads (`_embedded.threads`; `threads` in the older
    /// object format); each reply's event id is its thread id, so a reply present in several
    /// webhooks is applied once.
    fn agent_replies(&self, conversation_id: &str, body: &Value) -> Vec<ProviderEvent> {
        let mut replies: Vec<(String, u64, ProviderEvent)> = threads_of(body)
            .iter()
            .filter_map(|t| {
                let kind = t.get("type").and_then(Value::as_str).unwrap_or_default();
                if !matches!(kind.to_ascii_lowercase().as_str(), "message" | "reply" | "chat") {
                    return None;
                }
                let by = t.get("createdBy");
                if !by
                    .and_then(|b| b.get("type"))
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case("user"))
                {
                    return None;
                }
                if t.get("state")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("draft") || s.eq_ignore_ascii_case("hidden"))
                {
                    return None;
                }
                let thread_id = id_string(t.get("id"))?;
                let html = t
                    .get("body")
                    .or_else(|| t.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let html = html_to_text(html);
                let text = html.text;
                // Images in the reply's HTML reach the user as images, beside its attachments.
                let mut attachments = attachments_of(t);
                attachments.extend(html.images.into_iter().map(|url| Attachment {
                    kind: "image".to_owned(),
                    url,
                    name: None,
                }));
                let message = Message {
                    text: (!text.trim().is_empty()).then_some(text),
                    attachments,
                    ..Message::default()
                };
                if message.is_empty() {
                    return None;
                }
                let created = t
                    .get("createdAt")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let order = thread_id.parse::<u64>().unwrap_or(0);
                Some((
                    created,
                    order,
                    ProviderEvent {
                        event_id: format!("thread:{thread_id}"),
                        conversation_id: conversation_id.to_owned(),
                        kind: ProviderEventKind::AgentMessage {
                            agent: Some(self.agent_of(by)),
                            message,
                        },
                    },
                ))
            })
            .collect();
        replies.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        replies.into_iter().map(|(_, _, e)| e).collect()
    }

    /// `convo.assigned` to a user: that user joined.
    fn assignment(&self, conversation_id: &str, body: &Value) -> Option<ProviderEvent> {
        if !self.assignment_is_join {
            return None;
        }
        let assignee = body
            .get("assignee")
            .filter(|a| a.is_object())
            .or_else(|| body.get("owner").filter(|o| o.is_object()))?;
        // A team (or anything that is not a person) is not an agent taking the conversation.
        if assignee
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.eq_ignore_ascii_case("user"))
        {
            return None;
        }
        let assignee_id = id_string(assignee.get("id"))?;
        Some(ProviderEvent {
            event_id: format!("{conversation_id}:assigned:{assignee_id}"),
            conversation_id: conversation_id.to_owned(),
            kind: ProviderEventKind::AgentJoined {
                agent: self.agent_of(Some(assignee)),
            },
        })
    }
}

/// Help Scout's create responses carry the new resource's id in `Resource-ID` (and its URL in
/// `Location`).
fn created_id(resp: &reqwest::Response) -> Option<String> {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    header("resource-id").or_else(|| {
        header("location").and_then(|l| {
            l.trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned)
        })
    })
}

/// [`delivery::check`], also honouring Help Scout's `X-RateLimit-Retry-After` when a 429 has
/// no standard `Retry-After`.
async fn checked(resp: reqwest::Response, now: DateTime<Utc>) -> Result<reqwest::Response, DeliveryError> {
    let help_scout_wait = resp
        .headers()
        .get(RATE_LIMIT_RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(StdDuration::from_secs);
    match delivery::check(resp, now).await {
        Err(DeliveryError::Retryable {
            status,
            retry_after: None,
            message,
        }) if help_scout_wait.is_some() => Err(DeliveryError::Retryable {
            status,
            retry_after: help_scout_wait,
            message,
        }),
        other => other,
    }
}

/// `primaryCustomer.id` of a conversation (or its creator, when that is a customer).
fn customer_of(conversation: &Value) -> Option<u64> {
    let as_id = |v: Option<&Value>| id_string(v).and_then(|s| s.parse::<u64>().ok());
    as_id(conversation.pointer("/primaryCustomer/id")).or_else(|| {
        conversation
            .get("createdBy")
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("customer"))
            .and_then(|c| as_id(c.get("id")))
    })
}

/// An id that Help Scout sends as a number (or, leniently, a string).
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn person_name(p: &Value) -> Option<String> {
    let part = |short: &str, long: &str| {
        p.get(short)
            .or_else(|| p.get(long))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let full = [part("first", "firstName"), part("last", "lastName")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!full.is_empty()).then_some(full)
}

/// Whether a webhook body holds the conversation's threads at all (an empty list is an answer;
/// a missing one is not).
fn carries_threads(body: &Value) -> bool {
    body.pointer("/_embedded/threads").is_some_and(Value::is_array) || body.get("threads").is_some_and(Value::is_array)
}

/// The conversation's threads in a webhook body: `_embedded.threads` (the 2.0 conversation
/// object) or a `threads` array (the older object format; in 2.0 `threads` is a count).
fn threads_of(body: &Value) -> &[Value] {
    body.pointer("/_embedded/threads")
        .and_then(Value::as_array)
        .or_else(|| body.get("threads").and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A thread's attachments as links: `_embedded.attachments[]` with `_links.web.href` (2.0), or
/// `attachments[]` with `url` (older format).
fn attachments_of(thread: &Value) -> Vec<Attachment> {
    let list = thread
        .pointer("/_embedded/attachments")
        .and_then(Value::as_array)
        .or_else(|| thread.get("attachments").and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter()
        .filter_map(|a| {
            let url = a
                .pointer("/_links/web/href")
                .or_else(|| a.get("url"))
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("http"))?
                .to_owned();
            let mime = a.get("mimeType").and_then(Value::as_str).unwrap_or_default();
            let kind = match mime.split('/').next().unwrap_or_default() {
                "image" => "image",
                "video" => "video",
                "audio" => "audio",
                _ => "file",
            };
            let name = a
                .get("filename")
                .or_else(|| a.get("fileName"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            Some(Attachment {
                kind: kind.to_owned(),
                url,
                name,
            })
        })
        .collect()
}

/// `convo.status` to `closed` (or `spam`): the agent is done with the conversation.
fn closed_status(conversation_id: &str, body: &Value) -> Option<ProviderEvent> {
    let status = body.get("status").and_then(Value::as_str)?.to_ascii_lowercase();
    if !matches!(status.as_str(), "closed" | "spam") {
        return None;
    }
    Some(ProviderEvent {
        event_id: format!("{conversation_id}:status:{status}"),
        conversation_id: conversation_id.to_owned(),
        kind: ProviderEventKind::ConversationClosed,
    })
}

fn string_variable(r: &StartRequest<'_>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        r.handover
            .variables
            .get(*n)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
}

/// THE ONE PLACE that decides the Help Scout customer's email address.
///
/// Help Scout identifies a new customer by email: a conversation needs a customer with an id or
/// an email. We use the user's email when the bot platform knows it (the session's user, then
/// the variables `email`, `customerEmail`, `helpScout.customer.email`), unless
/// `useUserEmail: false`. Otherwise a placeholder that is stable per bot and user, so the same
/// user is the same Help Scout customer across handovers: `{botId}.{userId}@{domain}` (the
/// session id when no user id is known), lower case, other characters replaced by `-`.
/// ASSUMPTION: Help Scout accepts such an address; the domain is configurable.
/// Consequence worth knowing: Help Scout may email agents' replies to a real address, so a user
/// with a known email can receive them by email as well as in the chat.
fn customer_email(r: &StartRequest<'_>, use_user_email: bool, placeholder_domain: &str) -> String {
    if use_user_email {
        let known = r
            .user
            .and_then(|u| u.email.as_deref())
            .map(str::trim)
            .filter(|e| looks_like_email(e))
            .map(str::to_owned)
            .or_else(|| string_variable(r, EMAIL_VARIABLES).filter(|e| looks_like_email(e)));
        if let Some(email) = known {
            return email;
        }
    }
    let who = r
        .user
        .map(|u| u.id.as_str())
        .filter(|id| !id.trim().is_empty())
        .unwrap_or(r.session_id);
    let local: String = format!("{}.{}", r.bot_id, who)
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local: String = local
        .trim_matches(|c: char| c == '.' || c == '-')
        .chars()
        .take(64)
        .collect();
    format!("{local}@{placeholder_domain}")
}

/// First and last name: the user's name split at the first space, else the variables.
fn customer_names(r: &StartRequest<'_>) -> (Option<String>, Option<String>) {
    if let Some(name) = r
        .user
        .and_then(|u| u.name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let mut parts = name.splitn(2, char::is_whitespace);
        let first = parts.next().map(str::to_owned);
        let last = parts.next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned);
        return (first, last);
    }
    (
        string_variable(r, FIRST_NAME_VARIABLES),
        string_variable(r, LAST_NAME_VARIABLES),
    )
}

/// The transcript entries that become threads (the newest ones, within the thread and size
/// limits) and how many older ones were left out.
fn kept_entries(transcript: &[TranscriptEntry]) -> (&[TranscriptEntry], usize) {
    let len = transcript.len();
    let mut start = len.saturating_sub(MAX_TRANSCRIPT_THREADS);
    let size = |e: &TranscriptEntry| e.message.render_text().chars().count().min(MAX_THREAD_CHARS) + 16;
    let mut total: usize = transcript[start..].iter().map(size).sum();
    while total > TRANSCRIPT_BUDGET_CHARS && start < len {
        total -= size(&transcript[start]);
        start += 1;
    }
    (&transcript[start..], start)
}

fn note_label(e: &TranscriptEntry) -> String {
    match (e.actor, &e.agent) {
        (Actor::Agent, Some(Agent { name: Some(name), .. })) => format!("Agent {name}: "),
        (Actor::Agent, _) => "Agent: ".to_owned(),
        _ => BOT_PREFIX.to_owned(),
    }
}

/// The note the agent reads first: why and where the conversation was handed over, the
/// summary, tags and variables.
fn context_note(r: &StartRequest<'_>, omitted: usize) -> String {
    let h = r.handover;
    let mut lines = vec![format!(
        "Handed over by the bot (queue: {}, reason: {}, language: {}).",
        h.queue,
        h.trigger.as_str(),
        h.language
    )];
    if let Some(summary) = h.summary.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        lines.push(format!("Summary: {summary}"));
    }
    if !h.tags.is_empty() {
        lines.push(format!("Tags: {}", h.tags.join(", ")));
    }
    let variables: Vec<String> = h
        .variables
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect();
    if !variables.is_empty() {
        lines.push("Variables:".to_owned());
        lines.extend(variables);
    }
    let mut ids = format!("Handover {}, bot {}, session {}", h.id, r.bot_id, r.session_id);
    if let Some(channel) = r.channel {
        ids.push_str(&format!(", channel {channel}"));
    }
    ids.push('.');
    lines.push(ids);
    if omitted > 0 {
        lines.push(format!(
            "[{omitted} earlier turns are not shown here; handover keeps the full history.]"
        ));
    }
    clip(&lines.join("\n"), MAX_THREAD_CHARS)
}

/// The note posted when handover ends the conversation.
fn end_note(reason: EndReason) -> String {
    let why = match reason {
        EndReason::UserCancelled => "the customer stopped waiting",
        EndReason::NoAgentTimeout => "no agent answered in time",
        EndReason::AgentIdleTimeout => "the conversation was idle too long",
        EndReason::AgentClosed => "the agent closed the conversation",
        EndReason::ProviderError => "messages could not be delivered",
    };
    format!(
        "The customer was returned to the bot ({why}; reason: {}). Replies in this conversation no longer reach the customer's chat.",
        reason.as_str()
    )
}

/// Thread times: whole seconds, strictly increasing, so Help Scout shows the threads in
/// transcript order even when turns share a second. Ties are resolved by moving older threads
/// back, never by moving any into the future.
fn thread_times(stamps: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = stamps
        .iter()
        .map(|t| DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(*t))
        .collect();
    for i in (0..out.len().saturating_sub(1)).rev() {
        let limit = out[i + 1] - Duration::seconds(1);
        if out[i] > limit {
            out[i] = limit;
        }
    }
    out
}

fn iso_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// At most `max` characters, the cut marked with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The `X-HelpScout-Signature` value Help Scout sends with `body`: the base64 (standard
/// alphabet, padded) HMAC-SHA1 of the raw body, keyed with the webhook's secret key as text.
/// Public for tests and local tooling that play Help Scout.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    BASE64.encode(sig::hmac_sha1(secret, body))
}

/// Checks a signature header in constant time.
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8]) -> bool {
    sig::matches_base64(&sig::hmac_sha1(secret, body), header)
}

#[async_trait]
impl Provider for HelpScoutProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Helpscout
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// Not asked: the API has no presence endpoint for a mailbox.
    async fn availability(&self, _queue: &str) -> Result<AgentAvailability, DeliveryError> {
        Ok(AgentAvailability::Unknown)
    }

    /// One create call: atomic (if it fails nothing exists in Help Scout, and the shell fails
    /// over to the next provider), and the agent gets the whole history at once.
    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let queue = &r.handover.queue;
        let mailbox = self.mailbox_for(queue).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "no Help Scout mailbox for queue {queue:?}: add it to providers.mailboxes or set providers.mailboxId"
            ))
        })?;
        let body = self.new_conversation(r, mailbox);
        let resp = self
            .call(reqwest::Method::POST, "/v2/conversations", Some(&body))
            .await?;
        let conversation_id = created_id(&resp).ok_or_else(|| {
            DeliveryError::permanent("Help Scout created the conversation but sent no Resource-ID header")
        })?;
        Ok(ProviderConversation {
            handover_id: r.handover.id.clone(),
            conversation_id,
        })
    }

    /// User turns become customer threads (the agent is notified as for any customer reply);
    /// bot turns become notes. Help Scout has no idempotency key: a retried delivery whose
    /// first attempt did succeed adds the thread twice.
    async fn send_message(
        &self,
        _delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        if c.conversation_id == c.handover_id {
            return Err(DeliveryError::permanent(
                "no Help Scout conversation id is recorded for this handover",
            ));
        }
        let text = entry.message.render_text();
        if text.trim().is_empty() {
            return Ok(());
        }
        let conversation = path_segment(&c.conversation_id);
        match entry.actor {
            Actor::User => {
                let customer = self.customer_id(&c.conversation_id).await?;
                let body = json!({ "customer": { "id": customer }, "text": text_to_html(&text) });
                let path = format!("/v2/conversations/{conversation}/customer");
                self.call(reqwest::Method::POST, &path, Some(&body)).await.map(drop)
            }
            Actor::Bot | Actor::Agent => {
                // Notes are HTML: buttons, cards and images are shown as links, lists and images.
                let body = json!({ "text": message_html(&note_label(entry), &entry.message) });
                let path = format!("/v2/conversations/{conversation}/notes");
                self.call(reqwest::Method::POST, &path, Some(&body)).await.map(drop)
            }
        }
    }

    /// Closes the conversation with a note that tells the agent why. A conversation Help Scout
    /// no longer has (deleted, or merged long ago) is already gone.
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        if c.conversation_id == c.handover_id {
            // Nothing was created at Help Scout for this handover.
            return Ok(());
        }
        let body = json!({ "text": text_to_html(&end_note(reason)), "status": "closed" });
        let path = format!("/v2/conversations/{}/notes", path_segment(&c.conversation_id));
        match self.call(reqwest::Method::POST, &path, Some(&body)).await {
            Ok(_) => Ok(()),
            Err(DeliveryError::Permanent {
                status: Some(404 | 410),
                ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Help Scout signs the raw body only (no timestamp, so no replay window): a replayed
    /// webhook is absorbed by the shell's idempotency on the event id.
    /// `GET /v2/conversations/{id}/threads`: its first page holds the newest threads, so the
    /// reply a webhook announced is there; replies seen before keep their event ids
    /// (`thread:<id>`) and are applied once.
    async fn fetch_events(&self, conversation_id: &str) -> Result<Vec<ProviderEvent>, DeliveryError> {
        let path = format!("/v2/conversations/{}/threads", path_segment(conversation_id));
        let resp = self.call(reqwest::Method::GET, &path, None).await?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Help Scout threads of {conversation_id}: {e}")))?;
        Ok(self.agent_replies(conversation_id, &body))
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        let header = r
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| CallbackError::Unauthenticated("missing X-HelpScout-Signature header".into()))?;
        if verify_signature(&self.webhook_secret, header, r.body) {
            Ok(())
        } else {
            Err(CallbackError::Unauthenticated(
                "X-HelpScout-Signature does not match the body".into(),
            ))
        }
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let event = r.header(EVENT_HEADER).map(str::trim).unwrap_or_default();
        if event.is_empty() {
            return Err(CallbackError::Malformed("missing X-HelpScout-Event header".into()));
        }
        let acted_on = [EVENT_AGENT_REPLY, EVENT_ASSIGNED, EVENT_STATUS, EVENT_DELETED];
        if !acted_on.contains(&event) {
            // `helpscout.test`, customer replies (our own relays), notes, tags, customers …
            return Ok(Callback::Events(Vec::new()));
        }
        let body: Value = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let conversation_id =
            id_string(body.get("id")).ok_or_else(|| CallbackError::Malformed("missing conversation `id`".into()))?;
        let events = if event == EVENT_AGENT_REPLY {
            if !carries_threads(&body) {
                // A body without its threads says a reply was made but not which: read them.
                return Ok(Callback::Fetch { conversation_id });
            }
            self.agent_replies(&conversation_id, &body)
        } else if event == EVENT_ASSIGNED {
            self.assignment(&conversation_id, &body).into_iter().collect()
        } else if event == EVENT_STATUS {
            closed_status(&conversation_id, &body).into_iter().collect()
        } else {
            vec![ProviderEvent {
                event_id: format!("{conversation_id}:deleted"),
                conversation_id,
                kind: ProviderEventKind::ConversationClosed,
            }]
        };
        Ok(Callback::Events(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Handover, Trigger, UserInfo};
    use lambda_http::http::{HeaderMap, HeaderValue};

    const SECRET: &[u8] = b"whsec-hs-test";
    /// A `convo.status` body (trimmed 2.0 conversation object).
    const STATUS_BODY: &str = r#"{"id":4321,"number":12,"status":"closed","mailboxId":85}"#;
    /// base64(HMAC-SHA1("whsec-hs-test", STATUS_BODY)), computed independently (Python hmac).
    const STATUS_SIGNATURE: &str = "ZX1dFPCqpqjmkdM7Rp3KSYGPoB0=";
    /// The same with the key "other".
    const OTHER_SIGNATURE: &str = "ooNiJRI9Z6F4V9GxK6L8QVPjm/g=";

    fn config(settings: Value) -> ProviderConfig {
        let Value::Object(settings) = settings else {
            panic!("settings are an object")
        };
        ProviderConfig {
            id: "helpscout".into(),
            kind: ProviderKind::Helpscout,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/helpscout".into(),
            settings,
        }
    }

    fn provider_with(settings: Value) -> Result<HelpScoutProvider, ProviderSetupError> {
        let secret =
            Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"whsec-hs-test"}"#)
                .unwrap();
        HelpScoutProvider::new(&config(settings), &secret, reqwest::Client::new())
    }

    fn provider() -> HelpScoutProvider {
        provider_with(json!({"mailboxes": {"Support_NL": 85, "Billing": "86"}})).unwrap()
    }

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> CallbackRequest<'a> {
        CallbackRequest {
            method: "POST",
            headers,
            query: &[],
            body,
        }
    }

    fn verify(p: &HelpScoutProvider, signature: Option<&str>, body: &[u8]) -> Result<(), CallbackError> {
        let mut h = HeaderMap::new();
        if let Some(s) = signature {
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(s).unwrap());
        }
        p.verify_callback(&request(&h, body), Utc::now())
    }

    fn parse(p: &HelpScoutProvider, event: &str, body: &Value) -> Result<Callback, CallbackError> {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut h = HeaderMap::new();
        h.insert(EVENT_HEADER, HeaderValue::from_str(event).unwrap());
        p.parse_callback(&request(&h, &bytes))
    }

    fn events(cb: Callback) -> Vec<ProviderEvent> {
        match cb {
            Callback::Events(e) => e,
            other => panic!("expected events, got {other:?}"),
        }
    }

    /// A 2.0 conversation object as a webhook carries it, with embedded threads (newest first,
    /// as Help Scout lists them): an agent reply, the imported customer thread, a note.
    fn agent_reply_body() -> Value {
        json!({
            "id": 4321, "number": 12, "threads": 3, "type": "chat", "folderId": 11,
            "status": "active", "state": "published", "subject": "Where is my parcel?",
            "mailboxId": 85,
            "assignee": {"id": 99, "type": "user", "first": "Eva", "last": "Peeters", "email": "eva@acme.example"},
            "primaryCustomer": {"id": 777, "type": "customer", "email": "acme.u-7@handover.invalid"},
            "_embedded": {"threads": [
                {
                    "id": 9003, "type": "message", "status": "active", "state": "published",
                    "body": "<div>Hi Ann, I&#39;m Eva.</div><div>Let me check&nbsp;that.</div>",
                    "source": {"type": "web", "via": "user"},
                    "createdBy": {"id": 99, "type": "user", "first": "Eva", "last": "Peeters", "email": "eva@acme.example"},
                    "createdAt": "2026-11-25T09:02:00Z",
                    "_embedded": {"attachments": [{
                        "id": 5, "filename": "label.png", "mimeType": "image/png",
                        "_links": {"web": {"href": "https://secure.helpscout.net/file/5/label.png"}}
                    }]}
                },
                {
                    "id": 9002, "type": "note", "state": "published", "body": "internal",
                    "createdBy": {"id": 99, "type": "user", "first": "Eva"},
                    "createdAt": "2026-11-25T09:01:30Z"
                },
                {
                    "id": 9001, "type": "customer", "state": "published", "body": "Where is my parcel?",
                    "createdBy": {"id": 777, "type": "customer"},
                    "createdAt": "2026-11-25T09:00:00Z"
                }
            ]}
        })
    }

    #[test]
    fn the_documented_scheme_matches_an_independent_computation() {
        assert_eq!(signature(SECRET, STATUS_BODY.as_bytes()), STATUS_SIGNATURE);
        assert_eq!(signature(b"other", STATUS_BODY.as_bytes()), OTHER_SIGNATURE);
    }

    #[test]
    fn only_a_valid_signature_is_accepted() {
        let p = provider();
        assert!(verify(&p, Some(STATUS_SIGNATURE), STATUS_BODY.as_bytes()).is_ok());
        let tampered = STATUS_BODY.replace("closed", "active");
        assert!(matches!(
            verify(&p, Some(STATUS_SIGNATURE), tampered.as_bytes()),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(verify(&p, Some(OTHER_SIGNATURE), STATUS_BODY.as_bytes()).is_err());
        assert!(matches!(
            verify(&p, None, STATUS_BODY.as_bytes()),
            Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
        ));
        assert!(verify(&p, Some("not base64!"), STATUS_BODY.as_bytes()).is_err());
        let hex_style = "657d5d14f0aaa6a8e691d33b469dca49818fa01d";
        assert!(verify(&p, Some(hex_style), STATUS_BODY.as_bytes()).is_err());
    }

    #[test]
    fn agent_replies_become_agent_messages() {
        let p = provider();
        let e = events(parse(&p, EVENT_AGENT_REPLY, &agent_reply_body()).unwrap());
        assert_eq!(e.len(), 1, "notes and customer threads are not relayed: {e:?}");
        assert_eq!(e[0].conversation_id, "4321");
        assert_eq!(e[0].event_id, "thread:9003");
        let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(message.text.as_deref(), Some("Hi Ann, I'm Eva.\nLet me check that."));
        assert_eq!(message.attachments.len(), 1);
        assert_eq!(message.attachments[0].kind, "image");
        assert_eq!(
            message.attachments[0].url,
            "https://secure.helpscout.net/file/5/label.png"
        );
        assert_eq!(message.attachments[0].name.as_deref(), Some("label.png"));
        let agent = agent.as_ref().unwrap();
        assert_eq!(agent.id, "99");
        assert_eq!(agent.name.as_deref(), Some("Eva Peeters"));
    }

    #[test]
    fn every_reply_in_the_body_is_reported_oldest_first_and_drafts_are_not() {
        let p = provider();
        let mut body = agent_reply_body();
        let threads = body["_embedded"]["threads"].as_array_mut().unwrap();
        threads.insert(
            0,
            json!({"id": 9004, "type": "reply", "state": "draft", "body": "draft",
                   "createdBy": {"id": 99, "type": "user"}, "createdAt": "2026-11-25T09:03:00Z"}),
        );
        threads.push(json!({"id": 8999, "type": "message", "state": "published", "body": "<p>Earlier</p>",
                            "createdBy": {"id": 98, "type": "user", "first": "Tom"}, "createdAt": "2026-11-25T08:59:00Z"}));
        let e = events(parse(&p, EVENT_AGENT_REPLY, &body).unwrap());
        let ids: Vec<&str> = e.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["thread:8999", "thread:9003"]);
    }

    #[test]
    fn the_older_object_format_is_read_too() {
        let p = provider_with(json!({"mailboxId": 85, "agentName": "Support"})).unwrap();
        let body = json!({
            "id": 291938, "type": "email", "status": "active",
            "owner": {"id": 1234, "firstName": "Jack", "lastName": "Sprout", "type": "user"},
            "threads": [{
                "id": 88171881, "type": "message", "state": "published",
                "createdBy": {"id": 1234, "firstName": "Jack", "lastName": "Sprout", "type": "user"},
                "body": "This is what I have to say. Thank you.",
                "attachments": [{"id": 12391, "mimeType": "image/jpeg", "filename": "logo.jpg",
                                 "url": "https://secure.helpscout.net/some-url/logo.jpg"}]
            }]
        });
        let e = events(parse(&p, EVENT_AGENT_REPLY, &body).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].conversation_id, "291938");
        let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
            panic!("an agent message")
        };
        assert_eq!(message.text.as_deref(), Some("This is what I have to say. Thank you."));
        assert_eq!(
            message.attachments[0].url,
            "https://secure.helpscout.net/some-url/logo.jpg"
        );
        assert_eq!(
            agent.as_ref().unwrap().name.as_deref(),
            Some("Support"),
            "agentName wins"
        );
        let joined = events(parse(&p, EVENT_ASSIGNED, &body).unwrap());
        assert_eq!(joined[0].event_id, "291938:assigned:1234");
    }

    #[test]
    fn an_assignment_to_a_user_is_the_join() {
        let p = provider();
        let e = events(parse(&p, EVENT_ASSIGNED, &agent_reply_body()).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "4321:assigned:99");
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: "99".into(),
                    name: Some("Eva Peeters".into())
                }
            }
        );
        let mut team = agent_reply_body();
        team["assignee"]["type"] = json!("team");
        assert!(events(parse(&p, EVENT_ASSIGNED, &team).unwrap()).is_empty());
        let mut unassigned = agent_reply_body();
        unassigned["assignee"] = Value::Null;
        assert!(events(parse(&p, EVENT_ASSIGNED, &unassigned).unwrap()).is_empty());
        let off = provider_with(json!({"mailboxId": 85, "assignmentIsJoin": false})).unwrap();
        assert!(events(parse(&off, EVENT_ASSIGNED, &agent_reply_body()).unwrap()).is_empty());
    }

    #[test]
    fn closing_spam_and_deleting_close_the_conversation() {
        let p = provider();
        let closed: Value = serde_json::from_str(STATUS_BODY).unwrap();
        let e = events(parse(&p, EVENT_STATUS, &closed).unwrap());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "4321:status:closed");
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
        let spam = json!({"id": 4321, "status": "spam"});
        assert_eq!(events(parse(&p, EVENT_STATUS, &spam).unwrap()).len(), 1);
        for status in ["active", "pending"] {
            let body = json!({"id": 4321, "status": status});
            assert!(events(parse(&p, EVENT_STATUS, &body).unwrap()).is_empty(), "{status}");
        }
        let deleted = events(parse(&p, EVENT_DELETED, &json!({"id": 4321})).unwrap());
        assert_eq!(deleted[0].event_id, "4321:deleted");
        assert_eq!(deleted[0].kind, ProviderEventKind::ConversationClosed);
    }

    #[test]
    fn other_events_are_acknowledged_and_ignored() {
        let p = provider();
        for event in [
            EVENT_TEST,
            "convo.customer.reply.created",
            "convo.created",
            "convo.note.created",
            "convo.tags",
            "customer.created",
        ] {
            assert!(
                events(parse(&p, event, &agent_reply_body()).unwrap()).is_empty(),
                "{event}"
            );
        }
        // A test delivery is acknowledged whatever its body.
        let mut h = HeaderMap::new();
        h.insert(EVENT_HEADER, HeaderValue::from_static(EVENT_TEST));
        assert!(events(p.parse_callback(&request(&h, b"not json")).unwrap()).is_empty());
    }

    #[test]
    fn malformed_callbacks_are_refused() {
        let p = provider();
        let h = HeaderMap::new();
        assert!(matches!(
            p.parse_callback(&request(&h, STATUS_BODY.as_bytes())),
            Err(CallbackError::Malformed(m)) if m.contains("X-HelpScout-Event")
        ));
        let mut h = HeaderMap::new();
        h.insert(EVENT_HEADER, HeaderValue::from_static(EVENT_STATUS));
        assert!(matches!(
            p.parse_callback(&request(&h, b"not json")),
            Err(CallbackError::Malformed(_))
        ));
        assert!(matches!(
            parse(&p, EVENT_STATUS, &json!({"status": "closed"})),
            Err(CallbackError::Malformed(_))
        ));
    }

    fn handover() -> Handover {
        Handover {
            id: "h-1".into(),
            trigger: Trigger::ExplicitRequest,
            provider: "helpscout".into(),
            queue: "Support_NL".into(),
            language: "nl".into(),
            variables: [("orderId".to_owned(), json!("A-1")), ("items".to_owned(), json!(3))]
                .into_iter()
                .collect(),
            tags: vec!["vip".into()],
            summary: Some("Parcel is late".into()),
            provider_conversation_id: None,
            requested_at: DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc(),
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        }
    }

    fn entry(seq: u64, actor: Actor, text: &str) -> TranscriptEntry {
        TranscriptEntry {
            seq,
            actor,
            timestamp: DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc(),
            message: Message::text(text),
            agent: None,
            event_id: None,
        }
    }

    fn start_request<'a>(
        h: &'a Handover,
        user: Option<&'a UserInfo>,
        transcript: &'a [TranscriptEntry],
    ) -> StartRequest<'a> {
        StartRequest {
            delivery_id: "h-1-start",
            bot_id: "acme",
            session_id: "s-42",
            handover: h,
            user,
            channel: Some("web"),
            transcript,
        }
    }

    #[test]
    fn the_new_conversation_carries_customer_transcript_and_context() {
        let p = provider();
        let h = handover();
        let user = UserInfo {
            id: "u-7".into(),
            name: Some("Ann Peeters".into()),
            email: Some("ann@example.com".into()),
            locale: None,
        };
        let transcript = [
            entry(1, Actor::User, "Where is my parcel?"),
            entry(2, Actor::Bot, "Let me check."),
        ];
        let body = p.new_conversation(&start_request(&h, Some(&user), &transcript), 85);
        assert_eq!(body["mailboxId"], 85);
        assert_eq!(body["type"], "chat");
        assert_eq!(body["status"], "active");
        assert_eq!(body["imported"], true);
        assert_eq!(body["subject"], "Parcel is late");
        assert_eq!(body["tags"], json!(["vip"]));
        assert_eq!(
            body["customer"],
            json!({"email": "ann@example.com", "firstName": "Ann", "lastName": "Peeters"})
        );
        let threads = body["threads"].as_array().unwrap();
        assert_eq!(threads.len(), 3);
        assert_eq!(
            threads[0],
            json!({"type": "customer", "customer": {"email": "ann@example.com"},
                   "text": "Where is my parcel?", "createdAt": "2026-11-25T08:59:58Z"})
        );
        assert_eq!(
            threads[1],
            json!({"type": "note", "text": "Bot: Let me check.", "createdAt": "2026-11-25T08:59:59Z"})
        );
        assert_eq!(threads[2]["type"], "note");
        assert_eq!(threads[2]["createdAt"], "2026-11-25T09:00:00Z");
        assert_eq!(body["createdAt"], "2026-11-25T08:59:58Z");
        let note = threads[2]["text"].as_str().unwrap();
        assert!(
            note.starts_with("Handed over by the bot (queue: Support_NL, reason: explicit_request, language: nl).<br>Summary: Parcel is late<br>Tags: vip<br>Variables:<br>items: 3<br>orderId: A-1<br>"),
            "{note}"
        );
        assert!(
            note.ends_with("Handover h-1, bot acme, session s-42, channel web."),
            "{note}"
        );
    }

    #[test]
    fn the_customer_email_falls_back_to_variables_then_a_placeholder() {
        let mut h = handover();
        let user = UserInfo {
            id: "U 7/x".into(),
            name: None,
            email: None,
            locale: None,
        };
        let r = start_request(&h, Some(&user), &[]);
        assert_eq!(
            customer_email(&r, true, "handover.invalid"),
            "acme.u-7-x@handover.invalid"
        );
        assert_eq!(
            customer_email(&start_request(&h, None, &[]), true, "chat.example.com"),
            "acme.s-42@chat.example.com"
        );
        h.variables.insert("email".into(), json!("ann@example.com"));
        h.variables.insert("firstName".into(), json!("Ann"));
        let r = start_request(&h, Some(&user), &[]);
        assert_eq!(customer_email(&r, true, "handover.invalid"), "ann@example.com");
        assert_eq!(customer_names(&r), (Some("Ann".into()), None));
        assert_eq!(
            customer_email(&r, false, "handover.invalid"),
            "acme.u-7-x@handover.invalid"
        );
        h.variables.insert("email".into(), json!("not an email"));
        let r = start_request(&h, Some(&user), &[]);
        assert_eq!(
            customer_email(&r, true, "handover.invalid"),
            "acme.u-7-x@handover.invalid"
        );
    }

    #[test]
    fn a_conversation_without_user_turns_gets_a_customer_thread() {
        let p =
            provider_with(json!({"mailboxId": 85, "subject": "From the bot", "conversationType": "email"})).unwrap();
        let mut h = handover();
        h.summary = None;
        h.tags.clear();
        let body = p.new_conversation(&start_request(&h, None, &[]), 85);
        assert_eq!(body["subject"], "From the bot");
        assert_eq!(body["type"], "email");
        assert!(body.get("tags").is_none());
        let threads = body["threads"].as_array().unwrap();
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[0]["type"], "customer");
        assert_eq!(threads[0]["customer"]["email"], "acme.s-42@handover.invalid");
        assert_eq!(threads[1]["type"], "note");
    }

    #[test]
    fn thread_times_are_strictly_increasing_and_never_later_than_given() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let times = thread_times(&[
            t("2026-11-25T09:00:00.700Z"),
            t("2026-11-25T09:00:00.200Z"),
            t("2026-11-25T08:00:00Z"),
            t("2026-11-25T09:00:01Z"),
        ]);
        let shown: Vec<String> = times.into_iter().map(iso_seconds).collect();
        assert_eq!(
            shown,
            [
                "2026-11-25T07:59:58Z",
                "2026-11-25T07:59:59Z",
                "2026-11-25T08:00:00Z",
                "2026-11-25T09:00:01Z"
            ]
        );
    }

    #[test]
    fn long_transcripts_keep_their_newest_turns() {
        let transcript: Vec<TranscriptEntry> = (1..=150).map(|i| entry(i, Actor::User, &format!("turn {i}"))).collect();
        let (kept, omitted) = kept_entries(&transcript);
        assert_eq!(kept.len(), MAX_TRANSCRIPT_THREADS);
        assert_eq!(omitted, 150 - MAX_TRANSCRIPT_THREADS);
        assert_eq!(kept.last().unwrap().seq, 150);
        let big = "x".repeat(10_000);
        let transcript: Vec<TranscriptEntry> = (1..=60).map(|i| entry(i, Actor::User, &big)).collect();
        let (kept, omitted) = kept_entries(&transcript);
        assert!(kept.len() * (MAX_THREAD_CHARS + 16) <= TRANSCRIPT_BUDGET_CHARS);
        assert_eq!(kept.len() + omitted, 60);
    }

    #[test]
    fn mailboxes_come_from_the_queue_map_or_the_default() {
        let p = provider();
        assert_eq!(p.mailbox_for("Support_NL"), Some(85));
        assert_eq!(p.mailbox_for("billing"), Some(86));
        assert_eq!(p.mailbox_for("Other"), None);
        let p = provider_with(json!({"mailboxes": {"Billing": 86}, "mailboxId": 85})).unwrap();
        assert_eq!(p.mailbox_for("Other"), Some(85));
        assert_eq!(p.api_base, DEFAULT_API_BASE);
        assert_eq!(p.token_url, "https://api.helpscout.net/v2/oauth2/token");
        let p = provider_with(json!({"mailboxId": 85, "apiBaseUrl": "http://127.0.0.1:9/"})).unwrap();
        assert_eq!(p.token_url, "http://127.0.0.1:9/v2/oauth2/token");
    }

    #[test]
    fn configuration_errors_name_the_field() {
        let err = |v: Value| provider_with(v).err().unwrap().to_string();
        assert!(err(json!({})).contains("providers.mailboxes"));
        assert!(err(json!({"mailboxes": {"Support": "abc"}})).contains("providers.mailboxes.Support"));
        assert!(err(json!({"mailboxId": 0})).contains("providers.mailboxId"));
        assert!(err(json!({"mailboxId": 85, "conversationType": "sms"})).contains("providers.conversationType"));
        assert!(err(json!({"mailboxId": 85, "placeholderEmailDomain": "nodot"})).contains("placeholderEmailDomain"));
        assert!(
            err(json!({"mailboxId": 85, "mailboxID": 85})).contains("mailboxID"),
            "typos are reported"
        );
        let secret = Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret"}"#).unwrap();
        let e = HelpScoutProvider::new(&config(json!({"mailboxId": 85})), &secret, reqwest::Client::new())
            .err()
            .unwrap();
        assert!(e.to_string().contains("webhookSecret"), "{e}");
    }

    #[test]
    fn the_end_note_tells_why() {
        assert!(end_note(EndReason::UserCancelled).contains("user_cancelled"));
        assert!(end_note(EndReason::NoAgentTimeout).contains("no_agent_timeout"));
    }

    #[test]
    fn ids_and_customers_are_read_leniently() {
        assert_eq!(id_string(Some(&json!(12))), Some("12".into()));
        assert_eq!(id_string(Some(&json!(" 12 "))), Some("12".into()));
        assert_eq!(id_string(Some(&json!(""))), None);
        assert_eq!(customer_of(&json!({"primaryCustomer": {"id": 238604}})), Some(238604));
        assert_eq!(
            customer_of(&json!({"createdBy": {"id": 12, "type": "customer"}})),
            Some(12)
        );
        assert_eq!(customer_of(&json!({"createdBy": {"id": 12, "type": "user"}})), None);
        assert_eq!(path_segment("12/3"), "12%2F3");
    }
}

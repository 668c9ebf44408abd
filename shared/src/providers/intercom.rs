//! Intercom, the embedded shape: the user's conversation lives in Intercom and the bot platform
//! takes part in it as a bot teammate (an Intercom admin). A handover is an assignment made by
//! that bot teammate: the conversation goes to the Intercom team routed for the queue, and
//! Intercom's webhooks tell us when a person takes it, writes, hands it back or closes it.
//!
//! Two starts exist, decided by the handover request:
//!
//! - **The conversation already lives in Intercom** (`handover.providerConversationId` is set):
//!   the bot teammate takes itself off the conversation and assigns it to the team. The user's
//!   and the bot's turns are already in Intercom, so nothing is relayed (`send_message` is a
//!   no-op) and no transcript is added; a short note carries the summary, variables and tags
//!   when the bot platform sent any.
//! - **The conversation did not start in Intercom** (no id): we find or create the contact
//!   (`POST /contacts`, a 409 names the existing one), create a contact-initiated conversation
//!   with the user's first message (`POST /conversations`), add the whole transcript as an
//!   internal note of the bot teammate, and assign the team. Later user turns are posted as
//!   replies of that contact and bot turns as notes, so the agent sees everything and the
//!   contact is never messaged by the bot twice.
//!
//! Which of the two a conversation is must survive Lambda instances (`send_message` and `end`
//! run later, through the outbox, maybe elsewhere): the transcript note of a conversation we
//! created carries a marker with the handover id, and a conversation is recognised as ours by
//! that note (one `GET /conversations/{id}`, then remembered in-process).
//!
//! The end of a handover never leaves anything behind: a conversation we created is closed; a
//! conversation that lived in Intercom is handed back to the bot teammate (team unassigned,
//! bot teammate assigned), since the user keeps talking to the bot in it.
//!
//! Endpoints, payloads and the webhook envelope follow Intercom's OpenAPI description
//! (`intercom/Intercom-OpenAPI`, `descriptions/2.14`); the `Intercom-Version` header pins it.
//! Webhooks are signed `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>`.
//!
//! Secret (Secrets Manager JSON): `{"accessToken": "<Developer Hub access token>",
//! "clientSecret": "<the app's client secret, which signs webhooks>"}`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::kit::settings;
use super::kit::text::{escape_html, html_to_text, text_to_html};
use super::memo::Memo;
use super::{
    AgentAvailability, Callback, CallbackError, CallbackRequest, Capabilities, Provider, ProviderConversation,
    ProviderEvent, ProviderEventKind, ProviderSetupError, StartRequest, path_segment, sig,
};
use crate::config::{ProviderConfig, ProviderKind, ProviderTraits};
use crate::delivery::{self, DeliveryError};
use crate::domain::message::Attachment;
use crate::domain::{Actor, Agent, EndReason, Handover, Message, TranscriptEntry, UserInfo, render_transcript};
use crate::secrets::Secret;

/// The webhook signature header (header names are case-insensitive; stored lowercase).
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
/// The API version sent in `Intercom-Version` unless `apiVersion` says otherwise. Every
/// request and field used here is identical in the 2.11 to 2.16 descriptions.
pub const DEFAULT_API_VERSION: &str = "2.14";
/// Regional API hosts, from the `servers` list of the OpenAPI description.
pub const US_API: &str = "https://api.intercom.io";
pub const EU_API: &str = "https://api.eu.intercom.io";
pub const AU_API: &str = "https://api.au.intercom.io";

/// `assignee_id` meaning "nobody" in an assignment.
const UNASSIGNED: &str = "0";

/// Webhook topics this adapter acts on; every other topic (`ping` included) is acknowledged
/// and ignored.
pub const TOPIC_ADMIN_REPLIED: &str = "conversation.admin.replied";
pub const TOPIC_ADMIN_ASSIGNED: &str = "conversation.admin.assigned";
pub const TOPIC_ADMIN_CLOSED: &str = "conversation.admin.closed";

/// The conversation body when the transcript holds no user turn at all.
const FALLBACK_FIRST_MESSAGE: &str = "The user asked to talk to an agent.";

/// ASSUMPTION (Intercom documents no maximum note length): the transcript put into a note is
/// cut to its most recent characters so that a very long bot conversation cannot make the
/// note, and with it the handover, fail.
const MAX_NOTE_TRANSCRIPT_CHARS: usize = 30_000;

/// Bound of the in-process memory of which conversations we created.
const ORIGIN_CACHE_MAX: usize = 10_000;

/// The provider entry's settings (`providers[]` fields besides id, kind and secretRef).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    /// `us` (default), `eu` or `au`.
    #[serde(default)]
    region: Option<String>,
    /// Overrides the regional host (tests, proxies).
    #[serde(default)]
    api_base_url: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    /// The Intercom admin (teammate) id the bot acts as.
    #[serde(default)]
    bot_admin_id: Option<Id>,
    /// Queue name → Intercom team id.
    #[serde(default)]
    teams: BTreeMap<String, Id>,
    /// Team for queues not listed in `teams`.
    #[serde(default)]
    default_team_id: Option<Id>,
    /// Prepended to the bot platform's user id to form the Intercom `external_id`.
    #[serde(default)]
    external_id_prefix: Option<String>,
    /// Report "no agent online" when every teammate of the team is in away mode.
    #[serde(default = "default_true")]
    check_away_mode: bool,
    /// The workspace (`app_id` of notifications) to listen to, when the app is installed in
    /// several; notifications of other workspaces are ignored.
    #[serde(default)]
    workspace_id: Option<Id>,
}

fn default_true() -> bool {
    true
}

/// An Intercom id as an operator writes it in YAML: quoted or not.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(s) => s.trim().to_owned(),
            Id::Number(n) => n.to_string(),
        }
    }
}

/// Where a conversation came from, which decides relaying and ending.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// It lived in Intercom before the handover: the bot platform talks to the user there.
    Intercom,
    /// We created it; user turns are posted as this contact.
    Created { contact_id: String },
}

/// An Intercom contact and its role (`user` or `lead`), as `from.type` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contact {
    id: String,
    role: String,
}

/// What Intercom can do (agent availability from away mode, unless `checkAwayMode: false`).
pub const CAPABILITIES: Capabilities = Capabilities {
    // Intercom conversations show text, HTML and files; no buttons or carousels.
    rich_content: false,
    // Agent files arrive as URLs; user files are passed on as links in the text.
    attachments: true,
    // No webhook reports an agent typing.
    typing: false,
    // Already in Intercom, or added as the bot teammate's note.
    bot_history_visible: true,
    history_written_back: true,
    agent_availability: true,
};

/// A conversation closed by its agent stays assigned to the agent's team: a user reply would
/// reopen it in the humans' inbox while the bot is answering again. The end of the handover is
/// therefore also delivered after an agent close, and hands the conversation back to the bot
/// teammate (see `end`).
pub const TRAITS: ProviderTraits = ProviderTraits {
    poll_every_seconds: None,
    joins_at_start: false,
    hands_back_after_agent_close: true,
};

pub struct IntercomProvider {
    base_url: String,
    api_version: String,
    access_token: String,
    client_secret: Vec<u8>,
    bot_admin_id: String,
    teams: BTreeMap<String, String>,
    default_team_id: Option<String>,
    external_id_prefix: String,
    check_away_mode: bool,
    workspace_id: Option<String>,
    /// Where each conversation came from (see [`Origin`]).
    origins: Memo<Origin>,
    http: reqwest::Client,
}

impl IntercomProvider {
    pub fn new(config: &ProviderConfig, secret: &Secret, http: reqwest::Client) -> Result<Self, ProviderSetupError> {
        let err = |field: &str, msg: String| ProviderSetupError::setting(field, msg);
        let s: Settings = settings::parse(&config.settings)?;
        let base_url = match (&s.api_base_url, &config.url) {
            (Some(u), _) | (None, Some(u)) => u.trim().trim_end_matches('/').to_owned(),
            (None, None) => region_base(s.region.as_deref())
                .ok_or_else(|| {
                    err(
                        "region",
                        format!("{:?} is not one of us, eu, au", s.region.clone().unwrap_or_default()),
                    )
                })?
                .to_owned(),
        };
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(err("apiBaseUrl", format!("{base_url:?} is not an http(s) URL")));
        }
        let bot_admin_id = s
            .bot_admin_id
            .map(Id::into_string)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                err(
                    "botAdminId",
                    "required: the id of the Intercom teammate the bot acts as".into(),
                )
            })?;
        let mut teams = BTreeMap::new();
        for (queue, id) in s.teams {
            let id = id.into_string();
            if id.is_empty() {
                return Err(err("teams", format!("queue {queue:?} has an empty team id")));
            }
            teams.insert(queue, id);
        }
        let default_team_id = s.default_team_id.map(Id::into_string).filter(|v| !v.is_empty());
        if teams.is_empty() && default_team_id.is_none() {
            return Err(err(
                "teams",
                "map at least one queue to an Intercom team id, or set defaultTeamId".into(),
            ));
        }
        let field = |name: &str| {
            secret
                .field(name)
                .map(str::to_owned)
                .map_err(|e| ProviderSetupError::Config(format!("{e} (provider {:?})", config.id)))
        };
        let access_token = field("accessToken")?;
        let client_secret = field("clientSecret")?.into_bytes();
        Ok(IntercomProvider {
            base_url,
            api_version: s
                .api_version
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
            access_token,
            client_secret,
            bot_admin_id,
            teams,
            default_team_id,
            external_id_prefix: s.external_id_prefix.unwrap_or_default(),
            check_away_mode: s.check_away_mode,
            workspace_id: s.workspace_id.map(Id::into_string).filter(|v| !v.is_empty()),
            http,
            origins: Memo::new(ORIGIN_CACHE_MAX),
        })
    }

    fn team_for(&self, queue: &str) -> Option<&str> {
        self.teams
            .get(queue)
            .or(self.default_team_id.as_ref())
            .map(String::as_str)
    }

    // ---- HTTP ----------------------------------------------------------------------------

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn with_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.bearer_auth(&self.access_token)
            .header("Intercom-Version", self.api_version.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, DeliveryError> {
        let now = Utc::now();
        let resp = self.with_auth(req).send().await.map_err(delivery::transport)?;
        delivery::check(resp, now).await
    }

    async fn get_json(&self, path: &str) -> Result<Value, DeliveryError> {
        read_json(self.send(self.http.get(self.url(path))).await?).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value, DeliveryError> {
        read_json(self.send(self.http.post(self.url(path)).json(body)).await?).await
    }

    /// A write whose answer we do not need.
    async fn post_ok(&self, path: &str, body: &Value) -> Result<(), DeliveryError> {
        self.send(self.http.post(self.url(path)).json(body)).await.map(drop)
    }

    // ---- Conversation operations ---------------------------------------------------------

    /// `POST /conversations/{id}/parts`, `message_type: assignment`, performed by the bot.
    async fn assign(&self, conversation_id: &str, kind: &str, assignee_id: &str) -> Result<(), DeliveryError> {
        let body = json!({
            "message_type": "assignment",
            "type": kind,
            "admin_id": self.bot_admin_id,
            "assignee_id": assignee_id,
        });
        self.post_ok(
            &format!("/conversations/{}/parts", path_segment(conversation_id)),
            &body,
        )
        .await
    }

    /// `POST /conversations/{id}/parts`, `message_type: close`, performed by the bot.
    async fn close(&self, conversation_id: &str) -> Result<(), DeliveryError> {
        let body = json!({ "message_type": "close", "type": "admin", "admin_id": self.bot_admin_id });
        self.post_ok(
            &format!("/conversations/{}/parts", path_segment(conversation_id)),
            &body,
        )
        .await
    }

    /// An internal note of the bot teammate: seen by agents, never sent to the contact.
    async fn note(&self, conversation_id: &str, html: &str) -> Result<(), DeliveryError> {
        let body = json!({
            "message_type": "note",
            "type": "admin",
            "admin_id": self.bot_admin_id,
            "body": html,
        });
        self.post_ok(
            &format!("/conversations/{}/reply", path_segment(conversation_id)),
            &body,
        )
        .await
    }

    /// A reply on behalf of the contact (a user turn of a conversation we created).
    async fn reply_as_contact(&self, conversation_id: &str, contact_id: &str, text: &str) -> Result<(), DeliveryError> {
        let body = json!({
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": contact_id,
            "body": text,
        });
        self.post_ok(
            &format!("/conversations/{}/reply", path_segment(conversation_id)),
            &body,
        )
        .await
    }

    /// Finds or creates the Intercom contact of the bot platform's user: a `user` keyed by
    /// `external_id`, or a `lead` when the platform sent no user at all.
    async fn contact_for(&self, user: Option<&UserInfo>, session_id: &str) -> Result<Contact, DeliveryError> {
        let mut body = serde_json::Map::new();
        let external_id = user.map(|u| format!("{}{}", self.external_id_prefix, u.id));
        match user {
            Some(u) => {
                body.insert("role".into(), json!("user"));
                body.insert("external_id".into(), json!(external_id));
                if let Some(email) = u.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                    body.insert("email".into(), json!(email));
                }
                if let Some(name) = u.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                    body.insert("name".into(), json!(name));
                }
            }
            None => {
                body.insert("role".into(), json!("lead"));
                body.insert("name".into(), json!(format!("Chat visitor {session_id}")));
            }
        }
        let now = Utc::now();
        let resp = self
            .with_auth(self.http.post(self.url("/contacts")).json(&Value::Object(body)))
            .send()
            .await
            .map_err(delivery::transport)?;
        if resp.status() == reqwest::StatusCode::CONFLICT {
            // The contact exists already; Intercom names it in the error message.
            let text = resp.text().await.unwrap_or_default();
            if let Some(id) = conflicting_contact_id(&text) {
                let v = self.get_json(&format!("/contacts/{}", path_segment(&id))).await?;
                return contact_from(&v).ok_or_else(|| DeliveryError::permanent("Intercom contact without an id"));
            }
            if let Some(external_id) = external_id {
                let query = json!({ "query": { "field": "external_id", "operator": "=", "value": external_id } });
                let found = self.post_json("/contacts/search", &query).await?;
                if let Some(c) = found["data"].as_array().and_then(|d| d.first()).and_then(contact_from) {
                    return Ok(c);
                }
            }
            // Search lags behind creation by a few minutes: a later attempt will find it.
            return Err(DeliveryError::retryable(
                "Intercom reports the contact exists but it cannot be found yet",
            ));
        }
        let v = read_json(delivery::check(resp, now).await?).await?;
        contact_from(&v).ok_or_else(|| DeliveryError::permanent("Intercom created a contact without an id"))
    }

    /// The conversation did not start in Intercom: create it, add the transcript, route it.
    async fn open_new(&self, r: &StartRequest<'_>, team: &str) -> Result<String, DeliveryError> {
        let contact = self.contact_for(r.user, r.session_id).await?;
        let from_type = match contact.role.as_str() {
            "lead" => "lead",
            "user" => "user",
            _ => "contact",
        };
        let created = self
            .post_json(
                "/conversations",
                &json!({
                    "from": { "type": from_type, "id": contact.id },
                    "body": first_user_text(r),
                }),
            )
            .await?;
        let conversation_id = id_of(&created["conversation_id"])
            .ok_or_else(|| DeliveryError::permanent("Intercom did not return a conversation_id"))?;
        let rest = match self.note(&conversation_id, &handover_note(r, true)).await {
            Ok(()) => self.assign(&conversation_id, "team", team).await,
            Err(e) => Err(e),
        };
        if let Err(e) = rest {
            // Nothing left orphaned: the start fails (and may fail over), so close what we made.
            if let Err(close) = self.close(&conversation_id).await {
                tracing::warn!(error = %close, "could not close the half-opened Intercom conversation");
            }
            return Err(e);
        }
        self.remember(&conversation_id, Origin::Created { contact_id: contact.id });
        Ok(conversation_id)
    }

    /// The conversation lives in Intercom: the bot teammate lets go and the team gets it.
    async fn hand_to_team(&self, conversation_id: &str, r: &StartRequest<'_>, team: &str) -> Result<(), DeliveryError> {
        if has_context(r.handover) {
            self.note(conversation_id, &handover_note(r, false)).await?;
        }
        self.assign(conversation_id, "admin", UNASSIGNED).await?;
        self.assign(conversation_id, "team", team).await?;
        self.remember(conversation_id, Origin::Intercom);
        Ok(())
    }

    // ---- Origin memory -------------------------------------------------------------------

    fn cache_key(&self, conversation_id: &str) -> String {
        format!("{}|{conversation_id}", self.base_url)
    }

    fn remember(&self, conversation_id: &str, origin: Origin) {
        self.origins.insert(self.cache_key(conversation_id), origin);
    }

    fn recall(&self, conversation_id: &str) -> Option<Origin> {
        self.origins.get(&self.cache_key(conversation_id))
    }

    /// Where the conversation came from; `None` when Intercom no longer has it.
    async fn origin(&self, c: &ProviderConversation) -> Result<Option<Origin>, DeliveryError> {
        if let Some(o) = self.recall(&c.conversation_id) {
            return Ok(Some(o));
        }
        let now = Utc::now();
        let resp = self
            .with_auth(
                self.http
                    .get(self.url(&format!("/conversations/{}", path_segment(&c.conversation_id)))),
            )
            .send()
            .await
            .map_err(delivery::transport)?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = read_json(delivery::check(resp, now).await?).await?;
        let origin = if created_by_us(&v, &self.bot_admin_id, &c.handover_id) {
            let contact_id = v["contacts"]["contacts"]
                .as_array()
                .and_then(|cs| cs.first())
                .and_then(|c| id_of(&c["id"]))
                .ok_or_else(|| DeliveryError::permanent("the Intercom conversation has no contact"))?;
            Origin::Created { contact_id }
        } else {
            Origin::Intercom
        };
        self.remember(&c.conversation_id, origin.clone());
        Ok(Some(origin))
    }

    // ---- Webhook parsing -----------------------------------------------------------------

    /// A person, not the bot teammate and not Intercom's AI agent.
    fn is_human_admin(&self, author: &Value) -> bool {
        author["type"] == "admin"
            && id_of(&author["id"]).is_some_and(|id| id != self.bot_admin_id)
            && author["from_ai_agent"].as_bool() != Some(true)
    }

    /// `conversation.admin.replied`: the newest reply of a person. Webhook payloads carry the
    /// part that caused them; taking only the newest one also keeps older parts from being
    /// replayed should a payload ever carry more.
    fn reply_event(&self, item: &Value) -> Option<(Option<String>, ProviderEventKind)> {
        parts(item).iter().rev().find_map(|p| {
            if !self.is_human_admin(&p["author"]) || p["part_type"] == "note" {
                return None;
            }
            let message = part_message(p);
            if message.is_empty() {
                return None;
            }
            let author = &p["author"];
            let agent = id_of(&author["id"]).map(|id| Agent {
                id,
                name: non_empty(author["name"].as_str()),
            });
            Some((id_of(&p["id"]), ProviderEventKind::AgentMessage { agent, message }))
        })
    }

    /// `conversation.admin.assigned`: a person now owns the conversation (the agent joined),
    /// or a person gave it back to the bot teammate (control returns to the bot). Our own
    /// assignments, made as the bot teammate, mean neither.
    fn assignment_event(&self, item: &Value) -> Option<ProviderEventKind> {
        let assignee = id_of(&item["admin_assignee_id"]).filter(|a| a.as_str() != UNASSIGNED)?;
        let part = parts(item).iter().rev().find(|p| is_assignment(p));
        let author_id = part.and_then(|p| id_of(&p["author"]["id"]));
        if assignee == self.bot_admin_id {
            let by_person = part.is_some_and(|p| self.is_human_admin(&p["author"]));
            return by_person.then_some(ProviderEventKind::ConversationClosed);
        }
        let name = part
            .filter(|_| author_id.as_deref() == Some(assignee.as_str()))
            .and_then(|p| non_empty(p["author"]["name"].as_str()));
        Some(ProviderEventKind::AgentJoined {
            agent: Agent { id: assignee, name },
        })
    }
}

#[async_trait]
impl Provider for IntercomProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Intercom
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            agent_availability: self.check_away_mode,
            ..CAPABILITIES
        }
    }

    /// Away mode of the team's teammates (`GET /admins`: `team_ids`, `away_mode_enabled`,
    /// `has_inbox_seat`). Intercom has no presence API: a teammate not in away mode counts as
    /// available, so this reports `NoneOnline` only when every teammate of the team is away.
    async fn availability(&self, queue: &str) -> Result<AgentAvailability, DeliveryError> {
        if !self.check_away_mode {
            return Ok(AgentAvailability::Unknown);
        }
        let Some(team) = self.team_for(queue) else {
            return Ok(AgentAvailability::Unknown);
        };
        let v = self.get_json("/admins").await?;
        let admins = v["admins"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let members: Vec<&Value> = admins
            .iter()
            .filter(|a| id_of(&a["id"]).is_some_and(|id| id != self.bot_admin_id))
            .filter(|a| {
                a["team_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|t| id_of(t).as_deref() == Some(team)))
            })
            .collect();
        if members.is_empty() {
            return Ok(AgentAvailability::Unknown);
        }
        let someone = members
            .iter()
            .any(|a| a["away_mode_enabled"].as_bool() != Some(true) && a["has_inbox_seat"].as_bool() != Some(false));
        Ok(if someone {
            AgentAvailability::Online
        } else {
            AgentAvailability::NoneOnline
        })
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let h = r.handover;
        let team = self.team_for(&h.queue).ok_or_else(|| {
            DeliveryError::permanent(format!("no Intercom team is configured for queue {:?}", h.queue))
        })?;
        let conversation_id = match h.provider_conversation_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                self.hand_to_team(id, r, team).await?;
                id.to_owned()
            }
            _ => self.open_new(r, team).await?,
        };
        Ok(ProviderConversation {
            handover_id: h.id.clone(),
            conversation_id,
        })
    }

    /// In a conversation that lived in Intercom the user's and the bot's turns are already
    /// there: nothing to do. In one we created, a user turn becomes a reply of the contact
    /// and a bot turn a note (the user saw it in their own channel already).
    async fn send_message(
        &self,
        _delivery_id: &str,
        c: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        let Some(origin) = self.origin(c).await? else {
            return Err(DeliveryError::permanent(format!(
                "Intercom conversation {} no longer exists",
                c.conversation_id
            )));
        };
        let Origin::Created { contact_id } = origin else {
            return Ok(());
        };
        let text = entry.message.render_text();
        if text.trim().is_empty() {
            return Ok(());
        }
        match entry.actor {
            Actor::User => self.reply_as_contact(&c.conversation_id, &contact_id, &text).await,
            Actor::Bot => {
                let line = render_transcript(std::slice::from_ref(entry));
                self.note(&c.conversation_id, &format!("<p>{}</p>", text_to_html(&line)))
                    .await
            }
            Actor::Agent => Ok(()),
        }
    }

    /// User cancel and timeouts: a conversation we created is closed; one that lived in
    /// Intercom goes back to the bot teammate (team unassigned first).
    async fn end(&self, _delivery_id: &str, c: &ProviderConversation, reason: EndReason) -> Result<(), DeliveryError> {
        tracing::debug!(reason = reason.as_str(), conversation_id = %c.conversation_id, "ending the Intercom side");
        match self.origin(c).await? {
            None => Ok(()),
            // The agent closed it, and the user's later turns are not relayed to it: it stays
            // as the agent left it.
            Some(Origin::Created { .. }) if reason == EndReason::AgentClosed => Ok(()),
            Some(Origin::Created { .. }) => self.close(&c.conversation_id).await,
            // Intercom's own bot hand-over: the conversation goes back to the bot teammate, so
            // the user's next reply (which reopens a closed conversation) reaches the bot that
            // is answering again, not the team's inbox. After an agent close too (see TRAITS).
            Some(Origin::Intercom) => {
                self.assign(&c.conversation_id, "team", UNASSIGNED).await?;
                self.assign(&c.conversation_id, "admin", &self.bot_admin_id).await
            }
        }
    }

    fn verify_callback(&self, r: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        if is_probe(r) {
            // The endpoint check when the URL is saved carries no body and changes nothing.
            return Ok(());
        }
        let header = r
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| CallbackError::Unauthenticated("missing X-Hub-Signature header".into()))?;
        verify_signature(&self.client_secret, header, r.body).map_err(CallbackError::Unauthenticated)
    }

    fn parse_callback(&self, r: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        if is_probe(r) {
            return Ok(Callback::Challenge {
                status: 200,
                content_type: "text/plain",
                body: String::new(),
            });
        }
        let v: Value = serde_json::from_slice(r.body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let Some(topic) = v.get("topic").and_then(Value::as_str) else {
            return Err(CallbackError::Malformed("missing field `topic`".into()));
        };
        if ![TOPIC_ADMIN_REPLIED, TOPIC_ADMIN_ASSIGNED, TOPIC_ADMIN_CLOSED].contains(&topic) {
            return Ok(Callback::Events(Vec::new()));
        }
        // Subscriptions belong to the app: another workspace's notifications are not ours.
        if let Some(workspace) = &self.workspace_id
            && v.get("app_id")
                .and_then(Value::as_str)
                .is_some_and(|a| a != workspace.as_str())
        {
            return Ok(Callback::Events(Vec::new()));
        }
        let notification_id = v
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| CallbackError::Malformed("missing field `id`".into()))?;
        let item = &v["data"]["item"];
        let conversation_id =
            id_of(&item["id"]).ok_or_else(|| CallbackError::Malformed("missing field `data.item.id`".into()))?;
        let event = match topic {
            TOPIC_ADMIN_REPLIED => self.reply_event(item).map(|(part, kind)| {
                let id = part.map_or_else(|| notification_id.clone(), |p| format!("part-{p}"));
                (id, kind)
            }),
            TOPIC_ADMIN_ASSIGNED => self.assignment_event(item).map(|k| (notification_id.clone(), k)),
            _ => Some((notification_id.clone(), ProviderEventKind::ConversationClosed)),
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
}

// ---- Signatures ----------------------------------------------------------------------------

/// `sha1=<hex HMAC-SHA1(client secret, raw body)>`, the value Intercom sends in
/// `X-Hub-Signature` (also used by tests to sign callbacks).
pub fn signature(client_secret: &[u8], body: &[u8]) -> String {
    format!("sha1={}", hex::encode(sig::hmac_sha1(client_secret, body)))
}

/// Checks the header against the body in constant time.
fn verify_signature(client_secret: &[u8], header: &str, body: &[u8]) -> Result<(), String> {
    let header = header.trim();
    let hexsig = header
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("sha1="))
        .map(|_| &header[5..])
        .ok_or_else(|| "X-Hub-Signature is not of the form sha1=<hex>".to_owned())?;
    if sig::matches_hex(&sig::hmac_sha1(client_secret, body), hexsig) {
        Ok(())
    } else {
        Err("X-Hub-Signature does not match the body".to_owned())
    }
}

fn is_probe(r: &CallbackRequest<'_>) -> bool {
    matches!(r.method, "GET" | "HEAD") && r.body.is_empty()
}

// ---- Payload helpers -----------------------------------------------------------------------

async fn read_json(resp: reqwest::Response) -> Result<Value, DeliveryError> {
    resp.json::<Value>()
        .await
        .map_err(|e| DeliveryError::permanent(format!("unreadable Intercom answer: {e}")))
}

/// Ids appear as strings or numbers depending on the object (`admin_assignee_id` is an
/// integer, conversation ids are strings): both become strings.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn parts(conversation: &Value) -> &[Value] {
    conversation["conversation_parts"]["conversation_parts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_assignment(part: &Value) -> bool {
    part["assigned_to"].is_object() || part["part_type"].as_str().is_some_and(|t| t.contains("assign"))
}

fn contact_from(v: &Value) -> Option<Contact> {
    Some(Contact {
        id: id_of(&v["id"])?,
        role: v["role"].as_str().unwrap_or("user").to_owned(),
    })
}

/// The id in "A contact matching those details already exists with id=…".
fn conflicting_contact_id(body: &str) -> Option<String> {
    let messages: Vec<String> = match serde_json::from_str::<Value>(body) {
        Ok(v) => v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect(),
        Err(_) => vec![body.to_owned()],
    };
    messages.iter().find_map(|m| {
        let at = m.find("id=")? + 3;
        let id: String = m[at..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        (!id.is_empty()).then_some(id)
    })
}

/// The marker that identifies the transcript note of a conversation we created.
fn marker(handover_id: &str) -> String {
    format!("[handover:{handover_id}]")
}

fn created_by_us(conversation: &Value, bot_admin_id: &str, handover_id: &str) -> bool {
    let marker = escape_html(&marker(handover_id));
    parts(conversation).iter().any(|p| {
        p["part_type"] == "note"
            && id_of(&p["author"]["id"]).as_deref() == Some(bot_admin_id)
            && p["body"].as_str().is_some_and(|b| b.contains(&marker))
    })
}

fn has_context(h: &Handover) -> bool {
    h.summary.is_some() || !h.variables.is_empty() || !h.tags.is_empty()
}

/// The first user turn, which becomes the message the conversation starts with.
fn first_user_text(r: &StartRequest<'_>) -> String {
    r.transcript
        .iter()
        .filter(|e| e.actor == Actor::User)
        .map(|e| e.message.render_text())
        .find(|t| !t.trim().is_empty())
        .or_else(|| r.handover.summary.clone().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| FALLBACK_FIRST_MESSAGE.to_owned())
}

/// The bot teammate's note: why and where the conversation was handed over, and, for a
/// conversation we created, the marker and the transcript.
fn handover_note(r: &StartRequest<'_>, created: bool) -> String {
    let h = r.handover;
    let mut html = String::from("<p><b>Handed over by the bot</b>");
    if created {
        html.push(' ');
        html.push_str(&escape_html(&marker(&h.id)));
    }
    html.push_str("</p>");
    let mut facts = vec![
        format!("Reason: {}", h.trigger.as_str()),
        format!("Queue: {}", h.queue),
        format!("Language: {}", h.language),
    ];
    if let Some(channel) = r.channel {
        facts.push(format!("Channel: {channel}"));
    }
    if let Some(u) = r.user {
        let mut who = u.name.clone().unwrap_or_default();
        if let Some(email) = &u.email {
            who = if who.is_empty() {
                email.clone()
            } else {
                format!("{who} <{email}>")
            };
        }
        facts.push(if who.is_empty() {
            format!("User: {}", u.id)
        } else {
            format!("User: {who} ({})", u.id)
        });
    }
    html.push_str(&paragraph(None, &facts.join("\n")));
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        html.push_str(&paragraph(Some("Summary"), summary));
    }
    if !h.variables.is_empty() {
        let lines: Vec<String> = h
            .variables
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect();
        html.push_str(&paragraph(Some("Variables"), &lines.join("\n")));
    }
    if !h.tags.is_empty() {
        html.push_str(&paragraph(Some("Tags"), &h.tags.join(", ")));
    }
    if created && !r.transcript.is_empty() {
        let text = render_transcript(r.transcript);
        let count = text.chars().count();
        let text = if count > MAX_NOTE_TRANSCRIPT_CHARS {
            let tail: String = text.chars().skip(count - MAX_NOTE_TRANSCRIPT_CHARS).collect();
            format!("… (earlier turns omitted)\n{tail}")
        } else {
            text
        };
        html.push_str(&paragraph(Some("Conversation with the bot"), &text));
    }
    html
}

fn paragraph(title: Option<&str>, text: &str) -> String {
    match title {
        Some(t) => format!("<p><b>{}</b><br>{}</p>", escape_html(t), text_to_html(text)),
        None => format!("<p>{}</p>", text_to_html(text)),
    }
}

fn region_base(region: Option<&str>) -> Option<&'static str> {
    match region.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "us") => Some(US_API),
        Some("eu") => Some(EU_API),
        Some("au") => Some(AU_API),
        Some(_) => None,
    }
}

/// An agent's reply as a message: the HTML body as plain text, files and inline images as
/// attachments.
fn part_message(part: &Value) -> Message {
    let super::kit::text::HtmlText { text, images } = html_to_text(part["body"].as_str().unwrap_or(""));
    let mut attachments: Vec<Attachment> = Vec::new();
    for a in part["attachments"].as_array().into_iter().flatten() {
        let Some(url) = non_empty(a["url"].as_str()) else {
            continue;
        };
        attachments.push(Attachment {
            kind: attachment_kind(a["content_type"].as_str()),
            url,
            name: non_empty(a["name"].as_str()),
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

#[cfg(test)]
mod tests {
    use lambda_http::http::{HeaderMap, HeaderValue};

    use super::*;

    const BOT: &str = "991267000";
    const EVA: &str = "991267001";
    const SECRET: &[u8] = b"cs-456";

    fn config(settings: Value) -> ProviderConfig {
        ProviderConfig {
            id: "intercom".into(),
            kind: ProviderKind::Intercom,
            url: None,
            availability_url: None,
            secret_ref: "handover/acme/intercom".into(),
            settings: settings.as_object().cloned().unwrap_or_default(),
        }
    }

    fn build(settings: Value) -> Result<IntercomProvider, ProviderSetupError> {
        let secret = Secret::from_json(r#"{"accessToken":"tok-123","clientSecret":"cs-456"}"#).unwrap();
        IntercomProvider::new(&config(settings), &secret, reqwest::Client::new())
    }

    fn provider() -> IntercomProvider {
        build(json!({ "botAdminId": BOT, "teams": { "general": 5017691 } })).unwrap()
    }

    /// The notification envelope as Intercom documents it.
    fn notification(topic: &str, item: Value) -> Value {
        json!({
            "type": "notification_event",
            "app_id": "abc123",
            "data": { "type": "notification_event_data", "item": item },
            "links": {},
            "id": "notif_6a3b1c2d-0e4f-4a5b-9c8d-7e6f5a4b3c2d",
            "topic": topic,
            "delivery_status": "pending",
            "delivery_attempts": 1,
            "delivered_at": 0,
            "first_sent_at": 1764061200,
            "created_at": 1764061200,
            "self": null
        })
    }

    fn conversation(admin_assignee_id: Value, parts: Value) -> Value {
        json!({
            "type": "conversation",
            "id": "4711",
            "created_at": 1764061000,
            "updated_at": 1764061200,
            "source": {
                "type": "conversation", "id": "403918320", "delivered_as": "customer_initiated",
                "subject": "", "body": "<p>Where is my parcel?</p>",
                "author": { "type": "user", "id": "6762f0dd1bb69f9f2193bb83", "name": "Ann", "email": "" },
                "attachments": [], "url": null, "redacted": false
            },
            "contacts": { "type": "contact.list", "contacts": [
                { "type": "contact", "id": "6762f0dd1bb69f9f2193bb83", "external_id": "u-7" }
            ] },
            "admin_assignee_id": admin_assignee_id,
            "team_assignee_id": 5017691,
            "open": true,
            "state": "open",
            "read": false,
            "conversation_parts": { "type": "conversation_part.list", "conversation_parts": parts, "total_count": 6 }
        })
    }

    fn part(id: u64, part_type: &str, body: Value, author: Value) -> Value {
        json!({
            "type": "conversation_part", "id": id.to_string(), "part_type": part_type, "body": body,
            "created_at": 1764061200, "updated_at": 1764061200, "notified_at": 1764061200,
            "assigned_to": null, "author": author, "attachments": [], "external_id": null, "redacted": false
        })
    }

    fn admin(id: &str, name: &str) -> Value {
        json!({ "type": "admin", "id": id, "name": name, "email": format!("{name}@example.com") })
    }

    fn events(p: &IntercomProvider, body: &Value) -> Vec<ProviderEvent> {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = HeaderMap::new();
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: &bytes,
        };
        match p.parse_callback(&req).unwrap() {
            Callback::Events(e) => e,
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn verify(p: &IntercomProvider, header: Option<String>, body: &[u8]) -> Result<(), CallbackError> {
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&h).unwrap());
        }
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body,
        };
        p.verify_callback(&req, Utc::now())
    }

    #[test]
    fn only_a_correct_signature_of_the_exact_body_is_accepted() {
        let p = provider();
        let body = serde_json::to_vec(&notification(
            "ping",
            json!({ "type": "ping", "message": "something is pinging" }),
        ))
        .unwrap();
        let good = signature(SECRET, &body);
        assert!(good.starts_with("sha1=") && good.len() == 45, "{good}");
        assert_eq!(verify(&p, Some(good.clone()), &body), Ok(()));
        assert_eq!(
            verify(&p, Some(good.to_uppercase().replacen("SHA1=", "sha1=", 1)), &body),
            Ok(())
        );

        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert!(matches!(
            verify(&p, Some(good.clone()), &tampered),
            Err(CallbackError::Unauthenticated(_))
        ));
        let wrong = signature(b"another-secret", &body);
        assert!(matches!(
            verify(&p, Some(wrong), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&p, None, &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        assert!(matches!(
            verify(&p, Some("sha1=not-hex".into()), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
        let bare = good.trim_start_matches("sha1=").to_owned();
        assert!(matches!(
            verify(&p, Some(bare), &body),
            Err(CallbackError::Unauthenticated(_))
        ));
    }

    #[test]
    fn the_url_check_is_answered_without_a_signature() {
        let p = provider();
        let headers = HeaderMap::new();
        for method in ["HEAD", "GET"] {
            let req = CallbackRequest {
                method,
                headers: &headers,
                query: &[],
                body: b"",
            };
            assert_eq!(p.verify_callback(&req, Utc::now()), Ok(()));
            assert!(matches!(
                p.parse_callback(&req),
                Ok(Callback::Challenge { status: 200, .. })
            ));
        }
    }

    #[test]
    fn an_agent_reply_becomes_an_agent_message() {
        let p = provider();
        let item = conversation(
            json!(EVA),
            json!([part(
                88,
                "comment",
                json!(
                    "<p>Hi Ann, <b>let me check</b> &amp; see.</p><p>Track it <a href=\"https://t.example/1\">here</a></p>"
                ),
                admin(EVA, "Eva")
            )]),
        );
        let e = events(&p, &notification(TOPIC_ADMIN_REPLIED, item));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "part-88");
        assert_eq!(e[0].conversation_id, "4711");
        let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
            panic!("{:?}", e[0].kind)
        };
        assert_eq!(
            agent,
            &Some(Agent {
                id: EVA.into(),
                name: Some("Eva".into())
            })
        );
        assert_eq!(
            message.text.as_deref(),
            Some("Hi Ann, let me check & see.\nTrack it here (https://t.example/1)")
        );
    }

    #[test]
    fn agent_files_and_inline_images_become_attachments() {
        let p = provider();
        let mut reply = part(
            89,
            "comment",
            json!(
                "<div class=\"intercom-container\"><img src=\"https://downloads.intercomcdn.com/i/o/1/label.png\"></div>"
            ),
            admin(EVA, "Eva"),
        );
        reply["attachments"] = json!([{
            "type": "upload", "name": "invoice.pdf", "url": "https://downloads.intercomcdn.com/i/o/2/invoice.pdf",
            "content_type": "application/pdf", "filesize": 1024
        }]);
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_REPLIED, conversation(json!(EVA), json!([reply]))),
        );
        let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
            panic!()
        };
        assert_eq!(message.text, None);
        let kinds: Vec<(&str, &str)> = message
            .attachments
            .iter()
            .map(|a| (a.kind.as_str(), a.url.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("file", "https://downloads.intercomcdn.com/i/o/2/invoice.pdf"),
                ("image", "https://downloads.intercomcdn.com/i/o/1/label.png")
            ]
        );
    }

    #[test]
    fn replies_of_the_bot_teammate_and_of_the_ai_agent_are_not_agent_messages() {
        let p = provider();
        let bot = part(90, "comment", json!("<p>I am the bot</p>"), admin(BOT, "Acme Bot"));
        let fin = part(
            91,
            "comment",
            json!("<p>Fin here</p>"),
            json!({ "type": "bot", "id": "278", "name": "Fin" }),
        );
        let mut ai = part(92, "comment", json!("<p>AI answer</p>"), admin("274", "Operator"));
        ai["author"]["from_ai_agent"] = json!(true);
        for p_ in [bot, fin, ai] {
            let e = events(
                &p,
                &notification(TOPIC_ADMIN_REPLIED, conversation(json!(BOT), json!([p_]))),
            );
            assert!(e.is_empty(), "{e:?}");
        }
    }

    #[test]
    fn assignment_to_a_person_is_the_join() {
        let p = provider();
        let mut a = part(93, "assignment", Value::Null, admin(EVA, "Eva"));
        a["assigned_to"] = json!({ "type": "admin", "id": EVA });
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(991267001u64), json!([a]))),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_id, "notif_6a3b1c2d-0e4f-4a5b-9c8d-7e6f5a4b3c2d");
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: EVA.into(),
                    name: Some("Eva".into())
                }
            }
        );

        // Assigned by a team lead: the agent is known by id only.
        let mut by_lead = part(94, "assignment", Value::Null, admin("991267009", "Lead"));
        by_lead["assigned_to"] = json!({ "type": "admin", "id": EVA });
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(EVA), json!([by_lead]))),
        );
        assert_eq!(
            e[0].kind,
            ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: EVA.into(),
                    name: None
                }
            }
        );
    }

    #[test]
    fn our_own_assignments_mean_nothing_and_a_hand_back_to_the_bot_ends_the_handover() {
        let p = provider();
        // The bot teammate routes the conversation to the team: no admin assignee.
        let to_team = part(95, "assignment", Value::Null, admin(BOT, "Acme Bot"));
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_ASSIGNED, conversation(Value::Null, json!([to_team]))),
        );
        assert!(e.is_empty());
        // The bot teammate assigns to itself (our end of a handover): nothing.
        let mut to_bot = part(96, "assignment", Value::Null, admin(BOT, "Acme Bot"));
        to_bot["assigned_to"] = json!({ "type": "admin", "id": BOT });
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(BOT), json!([to_bot]))),
        );
        assert!(e.is_empty());
        // A person hands it back to the bot teammate: control returns to the bot.
        let mut back = part(97, "assignment", Value::Null, admin(EVA, "Eva"));
        back["assigned_to"] = json!({ "type": "admin", "id": BOT });
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(BOT), json!([back]))),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    }

    #[test]
    fn a_close_ends_and_other_topics_are_ignored() {
        let p = provider();
        let close = part(98, "close", Value::Null, admin(EVA, "Eva"));
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_CLOSED, conversation(json!(EVA), json!([close]))),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
        assert_eq!(e[0].conversation_id, "4711");

        for topic in [
            "ping",
            "conversation.user.replied",
            "conversation.admin.noted",
            "conversation.admin.snoozed",
            "contact.user.created",
        ] {
            let e = events(&p, &notification(topic, conversation(json!(EVA), json!([]))));
            assert!(e.is_empty(), "{topic}");
        }
    }

    #[test]
    fn notifications_of_another_workspace_are_ignored() {
        let p = build(json!({ "botAdminId": BOT, "defaultTeamId": "7", "workspaceId": "abc123" })).unwrap();
        let close = part(98, "close", Value::Null, admin(EVA, "Eva"));
        let mut n = notification(TOPIC_ADMIN_CLOSED, conversation(json!(EVA), json!([close])));
        assert_eq!(events(&p, &n).len(), 1);
        n["app_id"] = json!("other-workspace");
        assert!(events(&p, &n).is_empty());
    }

    #[test]
    fn malformed_notifications_are_refused() {
        let p = provider();
        let headers = HeaderMap::new();
        for body in [
            b"not json".to_vec(),
            serde_json::to_vec(&json!({ "type": "notification_event", "id": "n1" })).unwrap(),
            serde_json::to_vec(&json!({ "topic": TOPIC_ADMIN_CLOSED, "id": "n1", "data": { "item": {} } })).unwrap(),
            serde_json::to_vec(&json!({ "topic": TOPIC_ADMIN_CLOSED, "data": { "item": { "id": "1" } } })).unwrap(),
        ] {
            let req = CallbackRequest {
                method: "POST",
                headers: &headers,
                query: &[],
                body: &body,
            };
            assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
        }
    }

    #[test]
    fn our_transcript_note_marks_a_conversation_we_created() {
        let ours = part(
            1,
            "note",
            json!(format!(
                "<p><b>Handed over by the bot</b> {}</p>",
                escape_html(&marker("h-1"))
            )),
            admin(BOT, "Acme Bot"),
        );
        let conv = conversation(Value::Null, json!([ours]));
        assert!(created_by_us(&conv, BOT, "h-1"));
        assert!(!created_by_us(&conv, BOT, "h-2"), "another handover's note");
        assert!(!created_by_us(&conv, "1", "h-1"), "a note by someone else");
        let plain = conversation(
            Value::Null,
            json!([part(2, "comment", json!("<p>[handover:h-1]</p>"), admin(BOT, "B"))]),
        );
        assert!(!created_by_us(&plain, BOT, "h-1"), "only notes count");
    }

    fn setup_error(settings: Value) -> String {
        match build(settings) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("the settings were accepted"),
        }
    }

    #[test]
    fn setup_needs_the_bot_teammate_a_team_and_a_known_region() {
        let e = setup_error(json!({ "teams": { "general": "1" } }));
        assert!(e.contains("providers.botAdminId"), "{e}");
        let e = setup_error(json!({ "botAdminId": BOT }));
        assert!(e.contains("providers.teams"), "{e}");
        let e = setup_error(json!({ "botAdminId": BOT, "defaultTeamId": "7", "region": "mars" }));
        assert!(e.contains("providers.region"), "{e}");

        let p = build(json!({ "botAdminId": 991267000u64, "defaultTeamId": 7, "region": "EU" })).unwrap();
        assert_eq!(p.base_url, EU_API);
        assert_eq!(p.bot_admin_id, BOT);
        assert_eq!(p.team_for("anything"), Some("7"));
        assert_eq!(p.api_version, DEFAULT_API_VERSION);
        let p = build(json!({ "botAdminId": BOT, "teams": { "general": "5" }, "region": "au" })).unwrap();
        assert_eq!(p.base_url, AU_API);
        assert_eq!(p.team_for("other"), None);
        let p = build(json!({
            "botAdminId": BOT, "teams": { "general": "5" },
            "apiBaseUrl": "http://127.0.0.1:9999/", "apiVersion": "2.11"
        }))
        .unwrap();
        assert_eq!(p.base_url, "http://127.0.0.1:9999");
        assert_eq!(p.api_version, "2.11");
        assert_eq!(provider().base_url, US_API);

        let secret = Secret::from_json(r#"{"accessToken":"tok"}"#).unwrap();
        let missing = IntercomProvider::new(
            &config(json!({ "botAdminId": BOT, "defaultTeamId": "7" })),
            &secret,
            reqwest::Client::new(),
        );
        match missing {
            Err(e) => assert!(e.to_string().contains("clientSecret"), "{e}"),
            Ok(_) => panic!("a secret without clientSecret was accepted"),
        }
    }

    #[test]
    fn a_conflict_names_the_existing_contact() {
        let body = r#"{"type":"error.list","request_id":"r","errors":[{"code":"conflict","message":"A contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83"}]}"#;
        assert_eq!(
            conflicting_contact_id(body).as_deref(),
            Some("6762f0dd1bb69f9f2193bb83")
        );
        assert_eq!(conflicting_contact_id(r#"{"errors":[{"message":"Conflict"}]}"#), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("4711"), "4711");
        assert_eq!(path_segment("../admins?x=1"), "..%2Fadmins%3Fx%3D1");
    }
}

//! The soak's contact centers: one small HTTP server per provider *model*, each driven by the
//! real adapter of its kind and answering as that provider's published API does (the shapes
//! follow the conformance backends in tests/tests/it/conformance/):
//!
//! - **webhook** (the generic webhook): the conversation is filed under our handover id;
//! - **zendesk** (Sunshine Conversations switchboard, *embedded id*): the conversation is the
//!   user's own SunCo conversation, named in the handover request (`providerConversationId`);
//!   a start passes control to the Agent Workspace, an end passes it back; an action on a
//!   conversation SunCo does not have is answered 404;
//! - **helpscout** (Inbox API 2.0, *created id*): every start creates a new conversation, named
//!   only in the answer (`Resource-ID`); turns are customer threads and notes; a note with
//!   `status: closed` ends it; an unknown conversation is answered 404.
//!
//! Each desk keeps what it holds open, so the check can ask, per model, whether anything was
//! left open *under the provider's own id*. Hooks make a chosen start meet a seam: the agent's
//! first event posted before the start is answered, the user's cancel sent while the start is
//! in flight, or the answer withheld past the client timeout (processed: the outcome is unknown
//! to the service) on the first try or on every try.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{CLIENT_TIMEOUT, Faults, HttpFault, Side, World};

/// The SunCo app of the zendesk model.
pub const ZD_APP: &str = "5ebee0975ac5304b664a12fa";
/// The zendesk model's webhook secret (sent verbatim in `X-API-Key`).
pub const ZD_WEBHOOK_SECRET: &str = "soak-sunco-webhook-secret";
/// The Help Scout model's webhook secret (HMAC-SHA1 key of `X-HelpScout-Signature`).
pub const HS_WEBHOOK_SECRET: &str = "soak-helpscout-webhook-secret";
/// The agent of a webhook join posted before the start's answer.
pub const EARLY_AGENT: &str = "a-early";
/// A turn whose text holds this word is refused by the desk with a permanent 400, every time.
pub const REFUSE: &str = "refuse";

/// A provider model: how the provider names the conversation a start opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Model {
    Webhook,
    Zendesk,
    HelpScout,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Webhook, Model::Zendesk, Model::HelpScout];

    pub fn name(self) -> &'static str {
        match self {
            Model::Webhook => "webhook",
            Model::Zendesk => "zendesk",
            Model::HelpScout => "helpscout",
        }
    }

    /// How the model's conversation is named.
    pub fn id_kind(self) -> &'static str {
        match self {
            Model::Webhook => "handover id",
            Model::Zendesk => "embedded id",
            Model::HelpScout => "created id",
        }
    }

    /// Whether user and bot turns are sent to the provider (SunCo already holds them).
    pub fn relays_turns(self) -> bool {
        self != Model::Zendesk
    }

    /// The provider entry of the model's bot, for a desk at `url` and a secret at `secret_ref`.
    pub(super) fn provider_yaml(self, url: &str, secret_ref: &str) -> String {
        match self {
            Model::Webhook => format!("  - {{ id: desk, kind: webhook, url: '{url}/in', secretRef: {secret_ref} }}\n"),
            Model::Zendesk => format!(
                "  - {{ id: desk, kind: zendesk, secretRef: {secret_ref}, appId: '{ZD_APP}', apiBaseUrl: '{url}/sc', botIntegrationId: chatbot }}\n"
            ),
            Model::HelpScout => format!(
                "  - {{ id: desk, kind: helpscout, secretRef: {secret_ref}, apiBaseUrl: '{url}', mailboxes: {{ general: 85 }} }}\n"
            ),
        }
    }

    /// The provider's secret.
    pub(super) fn secret(self) -> Value {
        match self {
            Model::Webhook => json!({"signingSecret": "soak-desk"}),
            Model::Zendesk => json!({"keyId": "app_soak", "keySecret": "soak", "webhookSecret": ZD_WEBHOOK_SECRET}),
            Model::HelpScout => {
                json!({"clientId": "soak", "clientSecret": "soak", "webhookSecret": HS_WEBHOOK_SECRET})
            }
        }
    }
}

/// What a chosen start meets (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    EarlyJoin,
    CancelDuringStart,
    HangFirst,
    HangEvery,
}

/// What a desk holds and saw.
#[derive(Debug, Default)]
pub struct DeskState {
    /// What it accepted, as `{type, conversationId, text?, id?}` (`id`: the delivery id where
    /// the provider receives one, so a redelivery is the receiver's duplicate to drop).
    pub accepted: Vec<Value>,
    /// Conversation → open (with the agents) or not, in the provider's own ids.
    pub open: BTreeMap<String, bool>,
    /// zendesk: the users' SunCo conversations (anything else is answered 404).
    pub known: BTreeSet<String>,
    /// helpscout: conversations created by a create whose answer never came in time.
    pub hung_creates: BTreeSet<String>,
    /// helpscout: creates per reference (one reference per handover request).
    pub creates: BTreeMap<String, u32>,
    /// helpscout: references whose create was answered too late.
    pub hung_refs: BTreeSet<String>,
    /// Calls naming a conversation the provider does not have (answered 404).
    pub unknown_calls: u64,
    next_id: u64,
    hooks: BTreeMap<String, Hook>,
    /// What the service answered a hook's callback or cancel, by hook key.
    pub hook_answers: BTreeMap<String, (u16, Value)>,
    /// The handover whose start met the hook, by hook key.
    pub hooked: BTreeMap<String, String>,
}

pub struct Desk {
    pub model: Model,
    pub url: String,
    pub state: Arc<Mutex<DeskState>>,
    /// The service's entry points, for hooks (set once the world exists).
    pub world: Arc<OnceLock<Weak<World>>>,
}

impl Desk {
    pub(super) async fn start(model: Model, faults: Arc<Faults>) -> Arc<Desk> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let desk = Arc::new(Desk {
            model,
            url: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::new(Mutex::new(DeskState::default())),
            world: Arc::new(OnceLock::new()),
        });
        let serving = desk.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (desk, faults) = (serving.clone(), faults.clone());
                tokio::spawn(async move { desk.serve(sock, &faults).await });
            }
        });
        desk
    }

    /// Makes the next start under `key` (a session id; for zendesk the SunCo conversation) meet
    /// `hook`.
    pub fn hook(&self, key: &str, hook: Hook) {
        self.state.lock().unwrap().hooks.insert(key.to_owned(), hook);
    }

    /// zendesk: the user's SunCo conversation exists.
    pub fn knows(&self, conversation: &str) {
        self.state.lock().unwrap().known.insert(conversation.to_owned());
    }

    /// The agent closes the conversation at the provider (the callback follows).
    pub fn close_by_agent(&self, conversation: &str) {
        self.state.lock().unwrap().open.insert(conversation.to_owned(), false);
    }

    fn world(&self) -> Option<Arc<World>> {
        self.world.get().and_then(Weak::upgrade)
    }

    async fn serve(&self, mut sock: TcpStream, faults: &Faults) {
        let Some(req) = read_request(&mut sock).await else {
            return;
        };
        match self.classify(&req) {
            Call::Exempt => {
                reply(sock, self.process(&req, false)).await;
                return;
            }
            Call::Turn { refused: true } => {
                // A permanent refusal of this one turn (too long, a content the desk does not
                // take), every time it is sent.
                let answer = (400, Vec::new(), br#"{"error":"message refused"}"#.to_vec());
                if reply(sock, answer).await {
                    faults.count("provider 4xx on a relayed turn");
                }
                return;
            }
            Call::Start { key } => {
                let hook = {
                    let mut st = self.state.lock().unwrap();
                    match st.hooks.get(&key).copied() {
                        Some(Hook::HangEvery) => Some(Hook::HangEvery),
                        _ => st.hooks.remove(&key),
                    }
                };
                if hook.is_some() {
                    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                    let handover = match self.model {
                        Model::Webhook => &body["conversationId"],
                        Model::Zendesk => &body["metadata"]["handover_id"],
                        Model::HelpScout => &Value::Null,
                    };
                    if let Some(h) = handover.as_str() {
                        self.state.lock().unwrap().hooked.insert(key.clone(), h.to_owned());
                    }
                }
                match hook {
                    Some(Hook::EarlyJoin) => {
                        self.early_join(&req, &key).await;
                        faults.count("callback before the start's answer");
                        reply(sock, self.process(&req, false)).await;
                        return;
                    }
                    Some(Hook::CancelDuringStart) => {
                        if let Some(world) = self.world() {
                            let answer = world.cancel_during_start(self.model, &key).await;
                            self.state.lock().unwrap().hook_answers.insert(key, answer);
                        }
                        faults.count("cancel during the start");
                        reply(sock, self.process(&req, false)).await;
                        return;
                    }
                    Some(Hook::HangFirst | Hook::HangEvery) => {
                        self.process(&req, true);
                        if hang(sock).await {
                            let kind = if hook == Some(Hook::HangEvery) {
                                "start of unknown outcome on every try"
                            } else {
                                "start of unknown outcome, then retried"
                            };
                            faults.count(kind);
                        }
                        return;
                    }
                    None => {}
                }
            }
            Call::Turn { refused: false } | Call::Other => {}
        }
        let fault = faults.http(Side::Provider).map(|(fault, kind)| match fault {
            // Help Scout takes no idempotency key: an answer lost after a thread was added
            // makes a second thread at Help Scout itself (docs/providers/helpscout.md). The
            // model meets that fault on its creates only; elsewhere it fails before.
            HttpFault::Hang if self.model == Model::HelpScout && !req.path.ends_with("/conversations") => {
                (HttpFault::Status(503), "provider 5xx")
            }
            other => (other, kind),
        });
        match fault {
            None => {
                reply(sock, self.process(&req, false)).await;
            }
            Some((HttpFault::Status(code), kind)) => {
                let answer = (code, vec![("retry-after".to_owned(), "1".to_owned())], Vec::new());
                if reply(sock, answer).await {
                    faults.count(kind);
                }
            }
            Some((HttpFault::Reset, kind)) => faults.count(kind),
            Some((HttpFault::Hang, kind)) => {
                // Processed, but the answer never comes in time: the retry is a duplicate.
                self.process(&req, true);
                if hang(sock).await {
                    faults.count(kind);
                }
            }
        }
    }

    fn classify(&self, req: &Request) -> Call {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match self.model {
            Model::Webhook => match body["type"].as_str() {
                Some("conversation.started") => Call::Start {
                    key: body["sessionId"].as_str().unwrap_or_default().to_owned(),
                },
                Some("user.message") => Call::Turn {
                    refused: body["text"].as_str().is_some_and(|t| t.contains(REFUSE)),
                },
                _ => Call::Other,
            },
            Model::Zendesk => match sunco_action(&req.path) {
                Some((conv, "passControl")) if body["switchboardIntegration"] == "zd:agentWorkspace" => {
                    Call::Start { key: conv.to_owned() }
                }
                _ => Call::Other,
            },
            Model::HelpScout => match (req.method.as_str(), req.path.as_str()) {
                ("POST", "/v2/oauth2/token") => Call::Exempt,
                ("POST", "/v2/conversations") => Call::Start {
                    // The reference is `{session}/{event}`: hooks are by session.
                    key: body["subject"]
                        .as_str()
                        .and_then(|s| s.split('/').next())
                        .unwrap_or_default()
                        .to_owned(),
                },
                ("POST", p) if p.ends_with("/customer") => Call::Turn {
                    refused: body["text"].as_str().is_some_and(|t| t.contains(REFUSE)),
                },
                _ => Call::Other,
            },
        }
    }

    /// Applies a request the desk accepts and returns its answer. `hung`: the answer will not
    /// reach the caller in time.
    fn process(&self, req: &Request, hung: bool) -> Answer {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut st = self.state.lock().unwrap();
        let ok = |body: &[u8]| {
            (
                200,
                vec![("content-type".to_owned(), "application/json".to_owned())],
                body.to_vec(),
            )
        };
        let not_found = (
            404,
            vec![("content-type".to_owned(), "application/json".to_owned())],
            br#"{"errors":[{"code":"not_found","title":"Conversation not found"}]}"#.to_vec(),
        );
        match self.model {
            Model::Webhook => {
                let conv = body["conversationId"].as_str().unwrap_or_default().to_owned();
                match body["type"].as_str() {
                    Some("conversation.started") => {
                        st.open.insert(conv, true);
                    }
                    Some("conversation.ended") => {
                        st.open.insert(conv, false);
                    }
                    _ => {}
                }
                st.accepted.push(body);
                ok(b"{}")
            }
            Model::Zendesk => {
                let Some((conv, action)) = sunco_action(&req.path) else {
                    return not_found;
                };
                if !st.known.contains(conv) {
                    st.unknown_calls += 1;
                    return not_found;
                }
                let to_agents = action == "passControl" && body["switchboardIntegration"] == "zd:agentWorkspace";
                st.open.insert(conv.to_owned(), to_agents);
                let kind = if to_agents {
                    "conversation.started"
                } else {
                    "conversation.ended"
                };
                st.accepted.push(json!({"type": kind, "conversationId": conv}));
                ok(b"{}")
            }
            Model::HelpScout => {
                let path = req.path.as_str();
                if req.method == "POST" && path == "/v2/oauth2/token" {
                    return ok(br#"{"token_type":"bearer","access_token":"soak-token","expires_in":172800}"#);
                }
                if req.method == "POST" && path == "/v2/conversations" {
                    st.next_id += 1;
                    let id = (7000 + st.next_id).to_string();
                    let reference = body["subject"].as_str().unwrap_or_default().to_owned();
                    *st.creates.entry(reference.clone()).or_default() += 1;
                    if hung {
                        st.hung_creates.insert(id.clone());
                        st.hung_refs.insert(reference);
                    }
                    st.open.insert(id.clone(), true);
                    st.accepted
                        .push(json!({"type": "conversation.started", "conversationId": id}));
                    return (
                        201,
                        vec![
                            ("resource-id".to_owned(), id.clone()),
                            ("location".to_owned(), format!("{}/v2/conversations/{id}", self.url)),
                        ],
                        Vec::new(),
                    );
                }
                let Some(rest) = path.strip_prefix("/v2/conversations/") else {
                    return not_found;
                };
                let (id, sub) = rest.split_once('/').unwrap_or((rest, ""));
                if !st.open.contains_key(id) {
                    st.unknown_calls += 1;
                    return not_found;
                }
                let status = if st.open[id] { "active" } else { "closed" };
                match (req.method.as_str(), sub) {
                    ("GET", "") => {
                        let customer = json!({"id": 900_000 + id.parse::<u64>().unwrap_or(0), "type": "customer"});
                        let conv = json!({"id": id.parse::<u64>().unwrap_or(0), "status": status, "type": "chat",
                                          "mailboxId": 85, "primaryCustomer": customer, "createdBy": customer});
                        ok(conv.to_string().as_bytes())
                    }
                    ("POST", "customer") => {
                        let text = html_text(body["text"].as_str().unwrap_or_default());
                        st.accepted
                            .push(json!({"type": "user.message", "conversationId": id, "text": text}));
                        (201, vec![("resource-id".to_owned(), "1".to_owned())], Vec::new())
                    }
                    ("POST", "notes") if body["status"] == "closed" => {
                        st.open.insert(id.to_owned(), false);
                        st.accepted
                            .push(json!({"type": "conversation.ended", "conversationId": id}));
                        (201, vec![("resource-id".to_owned(), "1".to_owned())], Vec::new())
                    }
                    ("POST", "notes") => {
                        // A bot turn, labelled for the agent.
                        let text = html_text(body["text"].as_str().unwrap_or_default());
                        let text = text.strip_prefix("Bot:").unwrap_or(&text).trim().to_owned();
                        st.accepted
                            .push(json!({"type": "user.message", "conversationId": id, "text": text}));
                        (201, vec![("resource-id".to_owned(), "1".to_owned())], Vec::new())
                    }
                    _ => not_found,
                }
            }
        }
    }

    /// Posts the agent's first event to the service before the start is answered.
    async fn early_join(&self, req: &Request, key: &str) {
        let Some(world) = self.world() else { return };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let (conv, cb) = match self.model {
            Model::Webhook => (body["conversationId"].as_str().unwrap_or_default().to_owned(), Cb::Join),
            Model::Zendesk => (key.to_owned(), Cb::Message),
            // Help Scout names the conversation only in its answer: nothing can come before it.
            Model::HelpScout => return,
        };
        let event_id = format!("{key}-early");
        let mut body = callback(self.model, cb, &conv, &event_id);
        if self.model == Model::Webhook {
            // An agent of its own, so the check tells this join from one a later message makes.
            body["agent"] = json!({"id": EARLY_AGENT, "name": "Ann"});
        }
        let answer = world.callback(self.model, &body).await;
        self.state.lock().unwrap().hook_answers.insert(key.to_owned(), answer);
    }
}

/// What a request to a desk is, for its faults and hooks.
enum Call {
    /// Opens a conversation (or passes control for one); `key` finds its hook.
    Start {
        key: String,
    },
    /// A relayed turn; `refused`: the desk refuses it for good.
    Turn {
        refused: bool,
    },
    /// Never fails (Help Scout's token endpoint: not what the soak exercises).
    Exempt,
    Other,
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// `/sc/v2/apps/{app}/conversations/{conversation}/{action}`.
fn sunco_action(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(&format!("/sc/v2/apps/{ZD_APP}/conversations/"))?;
    rest.split_once('/')
}

/// An HTML thread as the agent reads it.
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&").replace("&nbsp;", " ").trim().to_owned()
}

/// The agent-side events the sessions send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cb {
    /// An agent takes the conversation (zendesk: none; the first message is the join).
    Join,
    /// An agent's message whose text is its event id.
    Message,
    /// The agent closes the conversation.
    Close,
}

/// A provider's callback body for `cb` on `conv`, unique by `event_id`.
pub fn callback(model: Model, cb: Cb, conv: &str, event_id: &str) -> Value {
    match model {
        Model::Webhook => {
            let kind = match cb {
                Cb::Join => "agent.joined",
                Cb::Message => "agent.message",
                Cb::Close => "conversation.closed",
            };
            let mut v =
                json!({"id": event_id, "type": kind, "conversationId": conv, "agent": {"id": "a-1", "name": "Eva"}});
            if cb == Cb::Message {
                v["message"] = json!({"text": event_id});
            }
            v
        }
        Model::Zendesk => {
            let event = match cb {
                Cb::Join | Cb::Message => json!({
                    "id": event_id, "createdAt": "2026-11-25T09:05:00.000Z", "type": "conversation:message",
                    "payload": {
                        "conversation": { "id": conv, "type": "personal" },
                        "message": {
                            "id": format!("msg-{event_id}"), "received": "2026-11-25T09:05:00.000Z",
                            "author": { "type": "business", "displayName": "Eva" },
                            "content": { "type": "text", "text": event_id },
                            "source": { "type": "zd:agentWorkspace" }
                        }
                    }
                }),
                Cb::Close => json!({
                    "id": event_id, "createdAt": "2026-11-25T09:10:00.000Z", "type": "switchboard:passControl",
                    "payload": { "conversation": { "id": conv, "type": "personal",
                                                   "activeSwitchboardIntegration": { "id": "5eecde2dcdbffb08f5c3ed37", "name": "chatbot", "integrationType": "custom" } },
                                 "reason": "ticketClosed" }
                }),
            };
            json!({ "app": { "id": ZD_APP }, "webhook": { "id": "5f4eaef81e3dcc117c7ba48a", "version": "v2" }, "events": [event] })
        }
        Model::HelpScout => {
            let eva = json!({ "id": 99, "type": "user", "first": "Eva", "last": "", "email": "eva@acme.example" });
            let mut v = json!({
                "id": conv.parse::<u64>().unwrap_or(0), "number": 12, "type": "chat", "mailboxId": 85,
                "status": if cb == Cb::Close { "closed" } else { "active" }, "state": "published",
                "assignee": eva, "createdAt": "2026-11-25T08:59:58Z"
            });
            if cb == Cb::Message {
                v["_embedded"] = json!({ "threads": [{
                    "id": thread_id(event_id), "type": "message", "status": "active", "state": "published",
                    "body": format!("<p>{event_id}</p>"), "createdBy": eva, "createdAt": "2026-11-25T09:01:00Z"
                }]});
            }
            v
        }
    }
}

/// The header naming a Help Scout webhook's event.
pub fn helpscout_event(body: &Value) -> &'static str {
    if body["status"] == "closed" {
        "convo.status"
    } else if body.get("_embedded").is_some() {
        "convo.agent.reply.created"
    } else {
        "convo.assigned"
    }
}

/// A thread id derived from the event id, so a repeated delivery repeats the thread.
fn thread_id(event_id: &str) -> u64 {
    event_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) % 1_000_000_000_000
}

/// One HTTP/1.1 request.
pub(super) struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (the head only for its line and length).
pub(super) async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut line = head.lines().next().unwrap_or_default().split(' ');
    let method = line.next().unwrap_or_default().to_owned();
    let target = line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let length: usize = head
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(str::to_owned))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        body: buf[head_end..head_end + length].to_vec(),
    })
}

/// Writes an answer; whether the caller got it.
pub(super) async fn reply(mut sock: TcpStream, (status, headers, body): Answer) -> bool {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    sock.write_all(&bytes).await.is_ok() && sock.shutdown().await.is_ok()
}

/// Holds the answer past the client timeout; whether the caller gave up (closed first).
pub(super) async fn hang(mut sock: TcpStream) -> bool {
    let mut rest = [0u8; 64];
    let gave_up = tokio::time::timeout(CLIENT_TIMEOUT + Duration::from_millis(1500), sock.read(&mut rest)).await;
    matches!(gave_up, Ok(Ok(0) | Err(_)))
}

//! The playground `handover serve` shows at `/`: a user chat with a scripted demo bot, the agent
//! desk of the generic webhook provider, each session's timeline and the operator controls.
//!
//! Local only: it lives in the CLI, never in the Lambda binaries or `template.yaml`. The demo bot
//! and the desk are real participants. handover sends them its signed outbound events over HTTP
//! (the bot's `outboundUrl` and the provider's `url` point at the hooks below), and they answer
//! through the same signed contracts a bot platform and a contact center use (`crate::agent`).
//! This backend holds the signing secrets; the browser only sees what the participants saw,
//! pushed as server-sent events.

mod bot;
mod model;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use handover::config::{Bot as CompiledBot, BotConfig, KillSwitch, ProviderKind};
use handover::domain::effect::Effect;
use handover::hours::{HoursConfig, Schedule, describe_opening};
use handover::store::{BotStore, DynamoStore, OutboxStore, SessionKey, SessionStore};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::agent;
use model::{ChatLine, Inner, Line};

/// Where handover reaches the demo bot (the bot platform's `outboundUrl`).
pub const BOT_HOOK: &str = "/playground/bot";
/// Where handover reaches the desk (the generic webhook provider's `url`).
pub const DESK_HOOK: &str = "/playground/agent";
/// The desk's agent availability (the provider's `availabilityUrl`).
pub const AVAILABILITY_HOOK: &str = "/playground/agent/availability";

const AGENT_NAME: &str = "Eva";
const MAX_TEXT_CHARS: usize = 2000;

/// The signing secrets of the two participants, read from Secrets Manager through the bot
/// configuration. Never sent to the browser.
#[derive(Clone)]
struct Secrets {
    platform: Vec<u8>,
    desk: Vec<u8>,
    desk_id: String,
}

pub struct Playground {
    base_url: String,
    bot_id: String,
    config_ttl: Duration,
    http: reqwest::Client,
    store: DynamoStore,
    secrets: tokio::sync::Mutex<Option<Secrets>>,
    inner: Mutex<Inner>,
    hub: broadcast::Sender<()>,
}

type Pg = Arc<Playground>;

/// The playground's routes, for `handover serve` to merge in front of its fallback.
/// `addr` is where serve listens (the participants call handover there); `config_ttl` is how
/// long handover caches a bot configuration, so an operator change is known to apply after it.
pub async fn router(addr: &str, bot_id: &str, config_ttl: Duration) -> Router {
    let base_url = format!(
        "http://{}",
        addr.replacen("0.0.0.0", "127.0.0.1", 1).replacen("[::]", "[::1]", 1)
    );
    let (hub, _) = broadcast::channel(64);
    let pg = Arc::new(Playground {
        base_url,
        bot_id: bot_id.to_owned(),
        config_ttl,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default(),
        store: crate::ops::store().await,
        secrets: tokio::sync::Mutex::new(None),
        inner: Mutex::new(Inner::new(bot_id)),
        hub,
    });
    pg.new_session();
    pg.load_config().await;
    tokio::spawn(refresher(pg.clone()));
    // The page's own requests: JSON only, so that another site open in the same browser cannot
    // post a plain form or a no-CORS fetch to them.
    let api = Router::new()
        .route("/playground/api/sessions", post(new_session))
        .route("/playground/api/sessions/{id}/say", post(say))
        .route("/playground/api/desk/{conversation}/{action}", post(desk_action))
        .route("/playground/api/operator/{control}", post(operator))
        .route_layer(axum::middleware::from_fn(json_only));
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route(
            "/playground/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/playground/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/playground/events", get(events))
        .merge(api)
        .route(BOT_HOOK, post(bot_hook))
        .route(DESK_HOOK, post(desk_hook))
        .route(AVAILABILITY_HOOK, get(availability_hook))
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .with_state(pg)
}

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message.to_string() } }),
    )
}

async fn json_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        );
    }
    next.run(req).await
}

/// A request refused with 400 and a JSON error.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, "invalid_body", self.0)
    }
}

fn parse_body(body: &[u8]) -> Result<Value, BadRequest> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(BadRequest("the body must be a JSON object".into())),
    }
}

fn text_field(v: &Value, name: &str) -> Result<String, BadRequest> {
    let text = v[name].as_str().unwrap_or("").trim().to_owned();
    if text.is_empty() {
        return Err(BadRequest(format!("{name} must be a non-empty string")));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(BadRequest(format!("{name} is longer than {MAX_TEXT_CHARS} characters")));
    }
    Ok(text)
}

impl Playground {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every open page that the state changed.
    fn changed(&self) {
        let _ = self.hub.send(());
    }

    fn snapshot(&self) -> String {
        serde_json::to_string(&*self.lock()).unwrap_or_default()
    }

    fn new_session(&self) -> String {
        let id = self.lock().add_session();
        self.changed();
        id
    }

    async fn secrets(&self) -> Result<Secrets, String> {
        let mut cached = self.secrets.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let config = self.config().await?;
        let desk = config
            .providers
            .iter()
            .find(|p| p.kind == ProviderKind::Webhook)
            .ok_or_else(|| format!("bot {:?} has no generic webhook provider for the desk", self.bot_id))?;
        let platform = crate::ops::signing_secret(&config.platform.secret_ref)
            .await
            .map_err(|e| format!("the bot platform's secret: {e}"))?;
        let desk_secret = crate::ops::signing_secret(&desk.secret_ref)
            .await
            .map_err(|e| format!("the desk's secret: {e}"))?;
        let s = Secrets {
            platform,
            desk: desk_secret,
            desk_id: desk.id.clone(),
        };
        *cached = Some(s.clone());
        Ok(s)
    }

    async fn config(&self) -> Result<BotConfig, String> {
        match self.store.get_bot(&self.bot_id).await {
            Ok(Some(v)) => Ok(v.value),
            Ok(None) => Err(format!(
                "no bot {:?} is stored: run `handover bot put examples/demo-bot.yaml`",
                self.bot_id
            )),
            Err(e) => Err(format!("reading bot {:?}: {e}", self.bot_id)),
        }
    }

    /// Reads the operator's view (kill switch, hours, where the hooks point) from the stored
    /// configuration.
    async fn load_config(&self) {
        let config = self.config().await;
        let mut inner = self.lock();
        match config {
            Ok(c) => {
                inner.error = None;
                inner.operator.set_from(&c, &self.base_url);
            }
            Err(e) => inner.error = Some(e),
        }
        drop(inner);
        self.changed();
    }

    /// Sends one native event for session `sid` as the bot platform, records it on the
    /// timeline and returns handover's answer (`Null` when there is none).
    async fn bot_event(&self, secrets: &Secrets, sid: &str, kind: &str, fields: Value) -> Value {
        let language = self.lock().operator.language.clone();
        let mut body = json!({
            "id": agent::event_id("pg"),
            "type": kind,
            "sessionId": sid,
            "timestamp": Utc::now(),
            "channel": "web",
            "user": { "id": format!("u-{sid}"), "name": "Ann", "locale": language },
        });
        if let (Some(b), Some(f)) = (body.as_object_mut(), fields.as_object()) {
            b.extend(f.clone());
        }
        let label = match (kind, body["message"]["actor"].as_str()) {
            ("message", Some(actor)) => format!("message ({actor})"),
            _ => kind.to_owned(),
        };
        let sent = agent::send_bot_event(&self.http, &self.base_url, &self.bot_id, &secrets.platform, &body).await;
        let (ok, detail, answer) = match sent {
            Ok((status, text)) => {
                let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                (
                    status.is_success(),
                    format!("{} {}", status.as_u16(), summarize_answer(&answer)),
                    answer,
                )
            }
            Err(e) => (false, format!("not sent: {e}"), Value::Null),
        };
        self.lock()
            .session(sid)
            .push(Line::inbound("bot platform", &label, detail, ok));
        self.changed();
        if ok { answer } else { Value::Null }
    }

    /// Re-reads a session's state, timers and outbox from the store; tells the pages when
    /// something changed.
    async fn refresh(&self, sid: &str) {
        let key = SessionKey::new(&self.bot_id, sid);
        let (Ok(Some(session)), Ok(outbox)) = (self.store.load_session(&key).await, self.store.outbox(&key).await)
        else {
            return;
        };
        let s = &session.value;
        let outbox: Vec<Value> = outbox
            .iter()
            .map(|o| {
                json!({
                    "seq": o.seq, "id": o.id, "what": effect_label(&o.effect),
                    "status": format!("{:?}", o.status), "attempts": o.attempts,
                    "nextAttempt": o.due_at, "lastError": o.last_error,
                })
            })
            .collect();
        let snapshot = json!({
            "state": s.state,
            "control": if s.state == handover::domain::session::State::Agent { "agent" } else { "bot" },
            "handover": s.handover,
            "lastHandover": s.last_handover,
            "timers": s.timers,
            "messages": s.seq,
            "updatedAt": s.updated_at,
            "outbox": outbox,
        });
        let mut inner = self.lock();
        let view = inner.session(sid);
        if view.store != snapshot {
            view.store = snapshot;
            drop(inner);
            self.changed();
        }
    }

    /// Stores a changed configuration, then tells the page once handover's configuration
    /// cache has expired, so the change is known to be in force.
    async fn update_config(self: &Arc<Self>, what: &str, change: impl FnOnce(&mut BotConfig)) -> Response {
        let mut config = match self.config().await {
            Ok(c) => c,
            Err(e) => return error(StatusCode::CONFLICT, "no_bot", e),
        };
        change(&mut config);
        if let Err(e) = CompiledBot::new(config.clone()) {
            return error(StatusCode::BAD_REQUEST, "invalid_config", e);
        }
        if let Err(e) = self.store.put_bot(&config).await {
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e);
        }
        {
            let mut inner = self.lock();
            inner.operator.set_from(&config, &self.base_url);
            inner.operator.status = format!("{what}: saved, applies in {} s", self.config_ttl.as_secs());
        }
        self.changed();
        let pg = self.clone();
        let what = what.to_owned();
        let wait = self.config_ttl + Duration::from_millis(300);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            pg.lock().operator.status = format!("{what}: applied");
            pg.changed();
        });
        json_response(
            StatusCode::OK,
            &json!({ "saved": true, "appliesInMs": wait.as_millis() as u64 }),
        )
    }
}

/// One line for an answer of handover to the bot platform.
fn summarize_answer(a: &Value) -> String {
    let mut parts = Vec::new();
    for k in ["outcome", "state", "control", "reason", "nextOpening", "handoverId"] {
        if let Some(v) = a.get(k).and_then(Value::as_str) {
            parts.push(format!("{k}={v}"));
        }
    }
    if let Some(e) = a["error"]["code"].as_str() {
        parts.push(format!("error={e}"));
    }
    parts.join(" ")
}

fn effect_label(e: &Effect) -> String {
    match e {
        Effect::Provider { provider, op, .. } => {
            let op = serde_json::to_value(op).ok();
            let name = op.as_ref().and_then(|v| v["op"].as_str()).unwrap_or("?").to_owned();
            format!("to {provider}: {name}")
        }
        Effect::Bot { event, .. } => format!("to bot: {}", event.wire_type()),
    }
}

/// Keeps the store view of recently active sessions current (timers fire and outbox items
/// are retried by the evaluator, not by the playground). Server side only: the browser waits
/// for pushes.
async fn refresher(pg: Pg) {
    let mut tick = tokio::time::interval(Duration::from_millis(1500));
    loop {
        tick.tick().await;
        if pg.lock().error.is_some() {
            // The bot may have been stored since (`handover bot put`).
            pg.load_config().await;
        }
        let ids = pg.lock().sessions_to_refresh();
        for id in ids {
            pg.refresh(&id).await;
        }
    }
}

async fn events(State(pg): State<Pg>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = pg.hub.subscribe();
    let stream = futures_util::stream::unfold((rx, true, pg), |(mut rx, first, pg)| async move {
        if !first {
            // Lagging only means several changes arrive as one state.
            if let Err(broadcast::error::RecvError::Closed) = rx.recv().await {
                return None;
            }
        }
        let event = Event::default().event("state").data(pg.snapshot());
        Some((Ok(event), (rx, false, pg)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn new_session(State(pg): State<Pg>) -> Response {
    let id = pg.new_session();
    json_response(StatusCode::CREATED, &json!({ "id": id }))
}

/// The user writes in the chat of session `sid`: the bot platform passes the turn to handover
/// and, unless an agent has the conversation, the demo bot answers.
async fn say(State(pg): State<Pg>, Path(sid): Path<String>, body: Bytes) -> Response {
    let text = match parse_body(&body).and_then(|v| text_field(&v, "text")) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    if !pg.lock().has_session(&sid) {
        return error(StatusCode::NOT_FOUND, "unknown_session", format!("no chat {sid:?}"));
    }
    let secrets = match pg.secrets().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::CONFLICT, "not_ready", e),
    };
    pg.lock().session(&sid).say(ChatLine::new("user", &text));
    pg.changed();
    let answer = pg
        .bot_event(
            &secrets,
            &sid,
            "message",
            json!({ "message": { "actor": "user", "text": text } }),
        )
        .await;
    if answer.is_null() {
        pg.lock().session(&sid).say(ChatLine::new(
            "error",
            "handover did not accept the message (see the timeline)",
        ));
        pg.changed();
        return json_response(
            StatusCode::BAD_GATEWAY,
            &json!({ "error": { "code": "handover_refused", "message": "handover did not accept the message" } }),
        );
    }
    if answer["control"] == "agent" {
        // The agent has the conversation: the bot stays silent.
        pg.refresh(&sid).await;
        return json_response(StatusCode::OK, &json!({ "control": "agent" }));
    }
    let waiting = answer["state"] == "waiting";
    let reply = {
        let mut inner = pg.lock();
        let view = inner.session(&sid);
        let reply = bot::answer(&text, waiting, &mut view.memory);
        view.say(ChatLine::new("bot", &reply.text).with_buttons(&reply.buttons));
        reply
    };
    pg.changed();
    let mut message = json!({ "actor": "bot", "text": reply.text });
    if !reply.buttons.is_empty() {
        message["buttons"] = reply
            .buttons
            .iter()
            .map(|b| json!({ "title": b, "payload": b }))
            .collect();
    }
    pg.bot_event(&secrets, &sid, "message", json!({ "message": message }))
        .await;
    match reply.action {
        bot::Action::None => {}
        bot::Action::Cancel => {
            pg.bot_event(&secrets, &sid, "handover.cancel", json!({})).await;
        }
        bot::Action::Handover(trigger) => {
            let language = pg.lock().operator.language.clone();
            let a = pg
                .bot_event(
                    &secrets,
                    &sid,
                    "handover.request",
                    json!({ "handover": {
                        "trigger": trigger, "language": language,
                        "variables": { "orderId": "A-1", "channel": "playground" },
                        "summary": format!("Demo bot: {trigger}"),
                    } }),
                )
                .await;
            if let Some(text) = a["dialog"]["text"].as_str() {
                let mut line = ChatLine::new("dialog", text).named(a["dialog"]["name"].as_str().unwrap_or(""));
                let outcome = a["outcome"].as_str().unwrap_or("");
                line.note = Some(match a["reason"].as_str() {
                    Some(reason) => format!("{outcome}: {reason}"),
                    None => outcome.to_owned(),
                });
                pg.lock().session(&sid).say(line);
                pg.changed();
            }
        }
    }
    pg.refresh(&sid).await;
    json_response(StatusCode::OK, &json!({ "control": "bot" }))
}

/// handover's outbound events to the bot platform (`outboundUrl`).
async fn bot_hook(State(pg): State<Pg>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets = match pg.secrets().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e),
    };
    if let Err(e) = agent::verify(&secrets.platform, &headers, &body) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", e);
    }
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    eprintln!("{}", agent::describe("bot <-", &v));
    let Some(sid) = v["sessionId"].as_str().map(str::to_owned) else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "sessionId is missing");
    };
    {
        let mut inner = pg.lock();
        let attempt = inner.attempt(v["id"].as_str().unwrap_or(""));
        let view = inner.session(&sid);
        view.on_bot_event(&v, attempt);
    }
    pg.changed();
    let refresh = pg.clone();
    tokio::spawn(async move { refresh.refresh(&sid).await });
    json_response(StatusCode::OK, &json!({ "ok": true }))
}

/// handover's events to the contact center (the generic webhook provider's `url`).
async fn desk_hook(State(pg): State<Pg>, headers: HeaderMap, body: Bytes) -> Response {
    let secrets = match pg.secrets().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e),
    };
    if let Err(e) = agent::verify(&secrets.desk, &headers, &body) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", e);
    }
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    eprintln!("{}", agent::describe("agent desk <-", &v));
    let failing = {
        let mut inner = pg.lock();
        let failing = inner.operator.desk_fails;
        let attempt = inner.attempt(v["id"].as_str().unwrap_or(""));
        inner.on_desk_event(&v, attempt, failing);
        failing
    };
    pg.changed();
    if failing {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "desk_down",
            "the playground desk is set to fail",
        );
    }
    json_response(StatusCode::OK, &json!({ "ok": true }))
}

/// The desk's answer to handover's availability question follows the "agents online" switch.
async fn availability_hook(State(pg): State<Pg>, uri: Uri, headers: HeaderMap) -> Response {
    let secrets = match pg.secrets().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e),
    };
    if let Err(e) = agent::verify(&secrets.desk, &headers, b"") {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", e);
    }
    let queue = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("queue="))
        .unwrap_or("")
        .to_owned();
    let (online, changed) = {
        let mut inner = pg.lock();
        let online = u32::from(inner.operator.agents_online);
        let changed = inner.operator.availability_asked(&queue, online);
        (online, changed)
    };
    if changed {
        pg.changed();
    }
    json_response(StatusCode::OK, &json!({ "agentsOnline": online }))
}

/// The agent at the desk: join, typing, message, close.
async fn desk_action(
    State(pg): State<Pg>,
    Path((conversation, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let kind = match action.as_str() {
        "join" => "agent.joined",
        "typing" => "agent.typing",
        "message" => "agent.message",
        "close" => "conversation.closed",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!("no desk action {action:?}"),
            );
        }
    };
    let text = if kind == "agent.message" {
        match parse_body(&body).and_then(|v| text_field(&v, "text")) {
            Ok(t) => Some(t),
            Err(r) => return r.into_response(),
        }
    } else {
        None
    };
    let Some(sid) = pg.lock().conversation(&conversation).map(|c| c.session_id.clone()) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_conversation",
            format!("no conversation {conversation:?} at the desk"),
        );
    };
    let secrets = match pg.secrets().await {
        Ok(s) => s,
        Err(e) => return error(StatusCode::CONFLICT, "not_ready", e),
    };
    let body = match agent::callback_body(kind, &conversation, text.as_deref(), AGENT_NAME) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_body", e),
    };
    if let Some(t) = &text
        && let Some(c) = pg.lock().conversation(&conversation)
    {
        c.messages.push(model::DeskMessage::new("agent", t));
    }
    let sent = agent::send_callback(
        &pg.http,
        &pg.base_url,
        &pg.bot_id,
        &secrets.desk_id,
        &secrets.desk,
        &body,
    )
    .await;
    let (ok, detail) = match sent {
        Ok((status, answer)) => (status.is_success(), format!("{} {answer}", status.as_u16())),
        Err(e) => (false, format!("not sent: {e}")),
    };
    {
        let mut inner = pg.lock();
        if ok && let Some(c) = inner.conversation(&conversation) {
            match kind {
                "agent.joined" | "agent.message" if c.status == "waiting" => c.status = "joined".into(),
                "conversation.closed" => {
                    c.status = "closed".into();
                    c.end_reason = Some("agent_closed".into());
                }
                _ => {}
            }
        }
        inner
            .session(&sid)
            .push(Line::inbound("desk", kind, detail.clone(), ok));
    }
    pg.changed();
    pg.refresh(&sid).await;
    if ok {
        json_response(StatusCode::OK, &json!({ "sent": kind }))
    } else {
        error(StatusCode::BAD_GATEWAY, "handover_refused", detail)
    }
}

/// Operator controls: kill switch, opening hours (and their preview), language, the desk's
/// "agents online" switch and a switch that makes the desk fail deliveries (to watch retries).
async fn operator(State(pg): State<Pg>, Path(control): Path<String>, body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let flag = |name: &str| v[name].as_bool();
    match control.as_str() {
        "kill-switch" => {
            let Some(on) = flag("on") else {
                return error(StatusCode::BAD_REQUEST, "invalid_body", "on must be true or false");
            };
            if on {
                let reason = match text_field(&v, "reason") {
                    Ok(r) => r,
                    Err(r) => return r.into_response(),
                };
                pg.update_config("kill switch on", move |c| {
                    c.disabled = Some(KillSwitch {
                        reason,
                        until: None,
                        providers: Vec::new(),
                        queues: Vec::new(),
                    })
                })
                .await
            } else {
                pg.update_config("kill switch off", |c| c.disabled = None).await
            }
        }
        "hours" => {
            let hours = match hours_from(&v) {
                Ok(h) => h,
                Err(r) => return r.into_response(),
            };
            let what = if hours.is_some() {
                "opening hours"
            } else {
                "opening hours removed"
            };
            pg.update_config(what, move |c| {
                c.hours = hours.map(|mut h| {
                    if let Some(old) = &c.hours {
                        h.queues = old.queues.clone();
                    }
                    h
                })
            })
            .await
        }
        "hours-preview" => {
            let language = pg.lock().operator.language.clone();
            match hours_from(&v) {
                Ok(Some(h)) => match preview(&h, &language, Utc::now()) {
                    Ok(p) => json_response(StatusCode::OK, &p),
                    Err(e) => error(StatusCode::BAD_REQUEST, "invalid_hours", e),
                },
                Ok(None) => json_response(StatusCode::OK, &json!({ "open": true, "always": true })),
                Err(r) => r.into_response(),
            }
        }
        "language" => {
            let language = match text_field(&v, "language") {
                Ok(l) if l.len() <= 16 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => l,
                Ok(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_body",
                        "language must be a tag such as en or nl-BE",
                    );
                }
                Err(r) => return r.into_response(),
            };
            pg.lock().operator.language = language;
            pg.changed();
            json_response(StatusCode::OK, &json!({ "saved": true }))
        }
        "agents-online" | "desk-fails" => {
            let Some(on) = flag("on") else {
                return error(StatusCode::BAD_REQUEST, "invalid_body", "on must be true or false");
            };
            {
                let mut inner = pg.lock();
                if control == "agents-online" {
                    inner.operator.agents_online = on;
                } else {
                    inner.operator.desk_fails = on;
                }
            }
            pg.changed();
            json_response(StatusCode::OK, &json!({ "saved": true }))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "unknown_control",
            format!("no operator control {control:?}"),
        ),
    }
}

/// Opening hours from the operator form; an empty expression means "no hours" (always open).
fn hours_from(v: &Value) -> Result<Option<HoursConfig>, BadRequest> {
    let expression = v["openingHours"].as_str().unwrap_or("").trim();
    if expression.is_empty() {
        return Ok(None);
    }
    let time_zone = v["timeZone"].as_str().unwrap_or("").trim();
    if time_zone.is_empty() {
        return Err(BadRequest("timeZone is required with opening hours".into()));
    }
    let holidays = v["publicHolidays"].as_str().map(str::trim).filter(|s| !s.is_empty());
    Ok(Some(HoursConfig {
        time_zone: time_zone.to_owned(),
        opening_hours: Some(expression.to_owned()),
        public_holidays: holidays.map(str::to_owned),
        queues: Default::default(),
    }))
}

/// Open or closed at `now`, and the next opening as the bot would word it, in the hours'
/// time zone.
fn preview(h: &HoursConfig, language: &str, now: chrono::DateTime<Utc>) -> Result<Value, String> {
    let schedule = Schedule::compile(h).map_err(|e| e.to_string())?;
    let tz = schedule.time_zone();
    let state = schedule.evaluate(None, now);
    let next = if state.open {
        None
    } else {
        schedule.next_opening(None, now)
    };
    Ok(json!({
        "open": state.open,
        "reason": state.closed_reason,
        "localNow": now.with_timezone(&tz).format("%a %d %b %H:%M").to_string(),
        "timeZone": tz.name(),
        "nextOpening": next,
        "nextOpeningLocal": next.map(|n| n.with_timezone(&tz).format("%a %d %b %H:%M").to_string()),
        "nextOpeningText": next.map(|n| describe_opening(n, now, tz, language)),
        "nextChange": state.next_change,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(expr: &str) -> HoursConfig {
        hours_from(&json!({ "timeZone": "Europe/Brussels", "openingHours": expr }))
            .ok()
            .flatten()
            .unwrap()
    }

    #[test]
    fn the_preview_says_closed_and_when_the_queue_opens_in_the_bots_time_zone() {
        // Wednesday 25 November 2026, 20:00 in Brussels (UTC+1).
        let now = "2026-11-25T19:00:00Z".parse().unwrap();
        let p = preview(&hours("Mo-Fr 08:30-17:30"), "en", now).unwrap();
        assert_eq!(p["open"], false);
        assert_eq!(p["reason"], "outside_hours");
        assert_eq!(p["nextOpening"], "2026-11-26T07:30:00Z");
        assert_eq!(p["nextOpeningLocal"], "Thu 26 Nov 08:30");
        assert_eq!(p["nextOpeningText"], "tomorrow at 08:30");
        let open = preview(
            &hours("Mo-Fr 08:30-17:30"),
            "en",
            "2026-11-25T10:00:00Z".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(open["open"], true);
        assert!(open["nextOpening"].is_null());
    }

    #[test]
    fn the_preview_refuses_a_bad_expression_or_time_zone() {
        let now = Utc::now();
        assert!(preview(&hours("Mo-Fr 25:99"), "en", now).is_err());
        let mut h = hours("24/7");
        h.time_zone = "Mars/Olympus".into();
        assert!(preview(&h, "en", now).unwrap_err().contains("time zone"));
        assert!(hours_from(&json!({ "openingHours": "24/7" })).is_err());
        assert!(matches!(hours_from(&json!({ "openingHours": " " })), Ok(None)));
    }
}

//! What the playground page shows, kept in memory and pushed to the browser as one JSON state:
//! the chats, each session's timeline and store view, the desk's conversations and the
//! operator's settings. Nothing here is a secret.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use handover::config::BotConfig;
use serde::Serialize;
use serde_json::Value;

use super::bot::Memory;

/// Lines kept per chat, timeline and desk conversation (the oldest go first).
const KEEP: usize = 300;

fn push_bounded<T>(v: &mut Vec<T>, item: T) {
    if v.len() >= KEEP {
        v.remove(0);
    }
    v.push(item);
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inner {
    pub bot_id: String,
    pub error: Option<String>,
    pub sessions: Vec<SessionView>,
    pub desk: Vec<Conversation>,
    pub operator: Operator,
    #[serde(skip)]
    prefix: String,
    #[serde(skip)]
    next: u32,
    /// Deliveries seen per event id: a second one is a retry.
    #[serde(skip)]
    attempts: HashMap<String, u32>,
    /// Events the desk accepted (answered 2xx): a later delivery of one changes nothing.
    #[serde(skip)]
    accepted: HashSet<String>,
}

impl Inner {
    pub fn new(bot_id: &str) -> Self {
        // Session ids differ between runs of `serve`, so a new page never meets a session
        // that an earlier run left in the table.
        let prefix = format!("web-{:x}", Utc::now().timestamp() % 0x10000);
        Inner {
            bot_id: bot_id.to_owned(),
            error: None,
            sessions: Vec::new(),
            desk: Vec::new(),
            operator: Operator::default(),
            prefix,
            next: 0,
            attempts: HashMap::new(),
            accepted: HashSet::new(),
        }
    }

    pub fn add_session(&mut self) -> String {
        self.next += 1;
        let id = format!("{}-{}", self.prefix, self.next);
        self.sessions.push(SessionView::new(&id, true));
        id
    }

    pub fn has_session(&self, id: &str) -> bool {
        self.sessions.iter().any(|s| s.id == id && s.chat_here)
    }

    /// The view of session `id`, created for sessions that other clients (scripts/demo.sh)
    /// started: their timeline and desk side show, their chat is not ours.
    pub fn session(&mut self, id: &str) -> &mut SessionView {
        let i = match self.sessions.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.sessions.push(SessionView::new(id, false));
                self.sessions.len() - 1
            }
        };
        &mut self.sessions[i]
    }

    pub fn conversation(&mut self, id: &str) -> Option<&mut Conversation> {
        self.desk.iter_mut().find(|c| c.id == id)
    }

    /// Counts a delivery of event `id` and returns its number (1 for the first).
    pub fn attempt(&mut self, id: &str) -> u32 {
        let n = self.attempts.entry(id.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    /// Sessions whose store view may still change without the playground being told:
    /// recently active ones, and any with a handover or undelivered outbox items.
    pub fn sessions_to_refresh(&self) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|s| {
                s.last_activity.elapsed().as_secs() < 90
                    || s.store["state"].as_str().is_some_and(|st| st != "bot")
                    || s.store["outbox"].as_array().is_some_and(|o| !o.is_empty())
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// An event handover sent to the desk. `failing` means the desk answers it with an error.
    pub fn on_desk_event(&mut self, v: &Value, attempt: u32, failing: bool) {
        let kind = v["type"].as_str().unwrap_or("?");
        let conv_id = v["conversationId"].as_str().unwrap_or("").to_owned();
        let sid = match kind {
            "conversation.started" => v["sessionId"].as_str().map(str::to_owned),
            _ => self.conversation(&conv_id).map(|c| c.session_id.clone()),
        };
        let mut detail = describe_event(v);
        if attempt > 1 {
            detail = format!("delivery {attempt} (retry) · {detail}");
        }
        if failing {
            detail = format!("desk answered 503 · {detail}");
        }
        if let Some(sid) = &sid {
            self.session(sid).push(Line::outbound("desk", kind, detail, !failing));
        }
        if failing || !self.accepted.insert(v["id"].as_str().unwrap_or("").to_owned()) {
            return;
        }
        match kind {
            "conversation.started" => {
                let conv = Conversation::started(v);
                if self.conversation(&conv.id).is_none() {
                    self.desk.push(conv);
                }
            }
            "user.message" => {
                if let Some(c) = self.conversation(&conv_id) {
                    let actor = v["actor"].as_str().unwrap_or("user");
                    push_bounded(
                        &mut c.messages,
                        DeskMessage::new(actor, v["text"].as_str().unwrap_or("")),
                    );
                }
            }
            "conversation.ended" => {
                if let Some(c) = self.conversation(&conv_id) {
                    c.status = "ended".into();
                    c.end_reason = v["reason"].as_str().map(str::to_owned);
                }
            }
            _ => {}
        }
    }
}

/// One chat (a session of the demo bot), its timeline and what the store holds for it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    /// Whether the chat was started on this page (sessions of other clients only show their
    /// timeline).
    pub chat_here: bool,
    pub chat: Vec<ChatLine>,
    /// The agent who is typing, until their next message.
    pub typing: Option<String>,
    pub timeline: Vec<Line>,
    /// State, handover, timers and outbox, read from the table.
    pub store: Value,
    #[serde(skip)]
    pub memory: Memory,
    #[serde(skip)]
    last_activity: Instant,
}

impl SessionView {
    fn new(id: &str, chat_here: bool) -> Self {
        SessionView {
            id: id.to_owned(),
            chat_here,
            chat: Vec::new(),
            typing: None,
            timeline: Vec::new(),
            store: Value::Null,
            memory: Memory::default(),
            last_activity: Instant::now(),
        }
    }

    pub fn say(&mut self, line: ChatLine) {
        self.last_activity = Instant::now();
        push_bounded(&mut self.chat, line);
    }

    pub fn push(&mut self, line: Line) {
        self.last_activity = Instant::now();
        push_bounded(&mut self.timeline, line);
    }

    /// An outbound event handover sent to the bot platform, shown as the bot's widget would.
    pub fn on_bot_event(&mut self, v: &Value, attempt: u32) {
        let kind = v["type"].as_str().unwrap_or("?");
        let mut detail = describe_event(v);
        if attempt > 1 {
            detail = format!("delivery {attempt} (retry) · {detail}");
        }
        self.push(Line::outbound("bot platform", kind, detail, true));
        if attempt > 1 {
            return;
        }
        let dialog = |v: &Value| {
            ChatLine::new("dialog", v["dialog"]["text"].as_str().unwrap_or(""))
                .named(v["dialog"]["name"].as_str().unwrap_or(""))
        };
        match kind {
            "agent.joined" => {
                self.typing = None;
                self.say(dialog(v));
            }
            "agent.message" => {
                self.typing = None;
                let name = v["agent"]["name"].as_str().unwrap_or("Agent");
                let text = v["message"]["text"].as_str().unwrap_or("(rich message)");
                self.say(ChatLine::new("agent", text).named(name));
            }
            "agent.typing" => {
                self.last_activity = Instant::now();
                self.typing = Some(v["agent"]["name"].as_str().unwrap_or("The agent").to_owned());
            }
            "handover.waiting" => self.say(dialog(v)),
            "handover.ended" => {
                self.typing = None;
                let mut line = dialog(v);
                line.note = Some(format!("handover ended: {}", v["reason"].as_str().unwrap_or("unknown")));
                self.say(line);
            }
            _ => {}
        }
    }
}

/// A line of a chat as the user sees it.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ChatLine {
    pub at: DateTime<Utc>,
    /// user, bot, agent, dialog (a dialog of handover) or error.
    pub from: String,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<String>,
    /// The agent's name or the dialog's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The outcome of a handover request, or the end reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ChatLine {
    pub fn new(from: &str, text: &str) -> Self {
        ChatLine {
            at: Utc::now(),
            from: from.to_owned(),
            text: text.to_owned(),
            buttons: Vec::new(),
            name: None,
            note: None,
        }
    }

    pub fn with_buttons(mut self, buttons: &[String]) -> Self {
        self.buttons = buttons.to_vec();
        self
    }

    pub fn named(mut self, name: &str) -> Self {
        if !name.is_empty() {
            self.name = Some(name.to_owned());
        }
        self
    }
}

/// A line of a session's timeline: a request to handover or an event from it.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub at: DateTime<Utc>,
    /// `in`: a participant called handover; `out`: handover called a participant.
    pub dir: &'static str,
    /// bot platform or desk.
    pub party: String,
    pub kind: String,
    pub detail: String,
    pub ok: bool,
}

impl Line {
    pub fn inbound(party: &str, kind: &str, detail: String, ok: bool) -> Self {
        Line {
            at: Utc::now(),
            dir: "in",
            party: party.to_owned(),
            kind: kind.to_owned(),
            detail,
            ok,
        }
    }

    pub fn outbound(party: &str, kind: &str, detail: String, ok: bool) -> Self {
        Line {
            dir: "out",
            ..Line::inbound(party, kind, detail, ok)
        }
    }
}

/// The short detail of an outbound event on a timeline.
fn describe_event(v: &Value) -> String {
    let mut parts = vec![v["id"].as_str().unwrap_or("").to_owned()];
    for k in ["reason", "queue", "trigger", "actor"] {
        if let Some(x) = v[k].as_str() {
            parts.push(format!("{k}={x}"));
        }
    }
    if let Some(text) = v["text"].as_str().or(v["message"]["text"].as_str()) {
        parts.push(format!("\"{}\"", text.chars().take(60).collect::<String>()));
    }
    parts.join(" ")
}

/// A conversation at the desk of the generic webhook provider.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub session_id: String,
    pub queue: String,
    pub trigger: String,
    pub language: String,
    pub variables: Value,
    pub user: Value,
    pub summary: Option<String>,
    /// The transcript handed over with `conversation.started`.
    pub transcript: Vec<DeskMessage>,
    /// Later turns of the user and the bot, and the agent's own messages.
    pub messages: Vec<DeskMessage>,
    /// waiting, joined, closed (by the agent) or ended (by handover).
    pub status: String,
    pub end_reason: Option<String>,
    pub started_at: DateTime<Utc>,
}

impl Conversation {
    fn started(v: &Value) -> Self {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        let transcript = v["transcript"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        let text = e["message"]["text"].as_str().unwrap_or("(rich content)");
                        DeskMessage::new(e["actor"].as_str().unwrap_or("?"), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Conversation {
            id: s("conversationId"),
            session_id: s("sessionId"),
            queue: s("queue"),
            trigger: s("trigger"),
            language: s("language"),
            variables: v["variables"].clone(),
            user: v["user"].clone(),
            summary: v["summary"].as_str().map(str::to_owned),
            transcript,
            messages: Vec::new(),
            status: "waiting".into(),
            end_reason: None,
            started_at: Utc::now(),
        }
    }
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct DeskMessage {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub text: String,
}

impl DeskMessage {
    pub fn new(actor: &str, text: &str) -> Self {
        DeskMessage {
            at: Utc::now(),
            actor: actor.to_owned(),
            text: text.to_owned(),
        }
    }
}

/// The operator's settings: the kill switch and hours come from the stored configuration,
/// the rest belongs to the playground.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    pub kill_switch: Option<String>,
    pub hours: Option<handover::hours::HoursConfig>,
    /// The user's language (locale of the native events and language of handover requests).
    pub language: String,
    pub languages: Vec<String>,
    pub agents_online: bool,
    pub desk_fails: bool,
    /// The last availability question of handover and the desk's answer.
    pub availability: Option<Value>,
    /// What the last change did ("…: saved, applies in 2 s", "…: applied").
    pub status: String,
    /// Configuration that does not point at the playground's hooks.
    pub warnings: Vec<String>,
}

impl Default for Operator {
    fn default() -> Self {
        Operator {
            kill_switch: None,
            hours: None,
            language: "en".into(),
            languages: vec!["en".into()],
            agents_online: true,
            desk_fails: false,
            availability: None,
            status: String::new(),
            warnings: Vec::new(),
        }
    }
}

impl Operator {
    pub fn set_from(&mut self, c: &BotConfig, base_url: &str) {
        self.kill_switch = c.disabled.as_ref().map(|k| k.reason.clone());
        self.hours = c.hours.clone();
        let mut languages: Vec<String> = c.dialogs.keys().cloned().collect();
        if !languages.contains(&c.default_language) {
            languages.insert(0, c.default_language.clone());
        }
        self.languages = languages;
        self.warnings.clear();
        let bot_hook = format!("{base_url}{}", super::BOT_HOOK);
        if c.platform.outbound_url.as_deref() != Some(bot_hook.as_str()) {
            self.warnings.push(format!(
                "platform.outboundUrl is not {bot_hook}: the demo bot will not hear from handover"
            ));
        }
        let desk_hook = format!("{base_url}{}", super::DESK_HOOK);
        if !c.providers.iter().any(|p| p.url.as_deref() == Some(desk_hook.as_str())) {
            self.warnings.push(format!(
                "no provider has url {desk_hook}: the desk will not hear from handover"
            ));
        }
    }

    /// Records an availability question; true when the answer differs from the last one.
    pub fn availability_asked(&mut self, queue: &str, online: u32) -> bool {
        let changed = self
            .availability
            .as_ref()
            .is_none_or(|a| a["agentsOnline"] != online || a["queue"] != queue);
        self.availability = Some(serde_json::json!({
            "at": Utc::now(), "queue": queue, "agentsOnline": online,
        }));
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_redelivered_event_shows_as_a_retry_and_is_shown_to_the_user_once() {
        let mut inner = Inner::new("demo");
        let sid = inner.add_session();
        let event = json!({ "id": "ev-1", "type": "agent.message", "sessionId": sid,
                            "agent": { "name": "Eva" }, "message": { "text": "Hi Ann!" } });
        for _ in 0..2 {
            let attempt = inner.attempt("ev-1");
            inner.session(&sid).on_bot_event(&event, attempt);
        }
        let view = inner.session(&sid);
        assert_eq!(view.chat.len(), 1);
        assert_eq!(view.chat[0].text, "Hi Ann!");
        assert_eq!(view.chat[0].name.as_deref(), Some("Eva"));
        assert_eq!(view.timeline.len(), 2);
        assert!(view.timeline[1].detail.starts_with("delivery 2 (retry)"));
    }

    #[test]
    fn the_desk_follows_a_conversation_from_start_to_end() {
        let mut inner = Inner::new("demo");
        let sid = inner.add_session();
        let started = json!({ "id": "h-1-start", "type": "conversation.started", "conversationId": "h-1",
            "sessionId": sid, "queue": "general", "trigger": "explicit_request",
            "variables": { "orderId": "A-1" },
            "transcript": [ { "seq": 1, "actor": "user", "message": { "text": "Where is my parcel?" } } ] });
        inner.on_desk_event(&started, 1, false);
        let msg = json!({ "id": "ev-2", "type": "user.message", "conversationId": "h-1", "actor": "bot", "text": "Parcel A-1 is late" });
        inner.on_desk_event(&msg, 1, false);
        let c = inner.conversation("h-1").unwrap();
        assert_eq!((c.queue.as_str(), c.trigger.as_str()), ("general", "explicit_request"));
        assert_eq!(c.variables["orderId"], "A-1");
        assert_eq!(c.transcript[0].text, "Where is my parcel?");
        assert_eq!(c.messages[0].actor, "bot");
        let ended =
            json!({ "id": "ev-3", "type": "conversation.ended", "conversationId": "h-1", "reason": "user_cancelled" });
        inner.on_desk_event(&ended, 1, false);
        let c = inner.conversation("h-1").unwrap();
        assert_eq!(c.status, "ended");
        assert_eq!(c.end_reason.as_deref(), Some("user_cancelled"));
        assert_eq!(inner.session(&sid).timeline.len(), 3);
    }

    #[test]
    fn a_failing_desk_records_the_failure_but_not_the_conversation() {
        let mut inner = Inner::new("demo");
        let sid = inner.add_session();
        let started =
            json!({ "id": "h-2-start", "type": "conversation.started", "conversationId": "h-2", "sessionId": sid });
        inner.on_desk_event(&started, 1, true);
        assert!(inner.desk.is_empty());
        let line = &inner.session(&sid).timeline[0];
        assert!(!line.ok);
        assert!(line.detail.starts_with("desk answered 503"));
        // The retry that gets through opens the conversation, once.
        for attempt in [2, 3] {
            inner.on_desk_event(&started, attempt, false);
        }
        assert_eq!(inner.desk.len(), 1);
        assert!(inner.session(&sid).timeline[1].detail.starts_with("delivery 2 (retry)"));
    }
}

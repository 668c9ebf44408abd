//! Models of the outside world behind the service's own ports: a contact center (one
//! [`Provider`] model per behaviour, with agents who join, write and close) and a bot platform
//! ([`BotPlatform`]). They answer the way the real ones are documented to (a refused turn is a
//! 400, a timeout may come after the work was done, an end for an unknown id looks like a
//! success to a lenient adapter) and record what they saw, for the checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handover::config::{BotConfig, ProviderConfig, ProviderKind};
use handover::delivery::DeliveryError;
use handover::domain::{Agent, BotEvent, EndReason, Handover, Message, TranscriptEntry};
use handover::platform::BotPlatform;
use handover::providers::{
    Callback, CallbackError, CallbackRequest, Provider, ProviderConversation, ProviderEvent, ProviderEventKind,
    StartRequest,
};
use handover::store::SessionKey;
use serde_json::{Value, json};

use crate::Model;
use crate::world::{World, callback};

/// One conversation at the contact center.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub handover_id: String,
    pub session: String,
    pub open: bool,
    /// When the service first called `start` for it.
    pub started_at: DateTime<Utc>,
    /// Whether a start returned its id to the service (otherwise only the desk knows it).
    pub named: bool,
    /// When and how it closed.
    pub closed: Option<(DateTime<Utc>, String)>,
    /// Relayed turns by text: first receipt, transcript number.
    pub turns: BTreeMap<String, (DateTime<Utc>, u64)>,
    /// Transcript numbers in the order they first arrived.
    pub order: Vec<u64>,
    /// Texts that arrived under more than one delivery id.
    pub duplicated: Vec<String>,
    pub delivery_ids: BTreeSet<String>,
    /// The agent joined already (early, or at start).
    pub joined: bool,
    agent_started: bool,
    events: u64,
}

/// A callback's answer as the desk saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub conversation: String,
    pub kind: String,
    pub event_id: String,
    pub sent_at: DateTime<Utc>,
    pub status: u16,
    pub ignored: bool,
    pub held: bool,
}

/// What the contact center saw.
#[derive(Debug, Default)]
pub struct Desk {
    pub conversations: BTreeMap<String, Conversation>,
    next: u64,
    /// Ends for ids the desk does not know: a lenient adapter passes the 404 as a success, and
    /// the real conversation stays with the agents.
    pub unknown_ends: Vec<String>,
    /// Turns for ids the desk does not know.
    pub unknown_turns: Vec<String>,
    /// Delivery ids refused for good: only these may be given up.
    pub refused: BTreeSet<String>,
    /// Events waiting for a poll (the polled model).
    pub polled: BTreeMap<String, Vec<ProviderEvent>>,
    pub answers: Vec<Answer>,
    /// When each agent message was posted (by text), for the promptness check.
    pub agent_sent: BTreeMap<String, DateTime<Utc>>,
    /// Every event of each conversation so far, as the provider's API reads them back.
    pub history: BTreeMap<String, Vec<ProviderEvent>>,
    /// Every time the service asked the desk to open a conversation, by handover id.
    pub asks: BTreeMap<String, Vec<DateTime<Utc>>>,
    /// Every handover id a start request named, whatever its answer.
    pub requested: BTreeSet<String>,
}

impl Desk {
    #[allow(clippy::too_many_arguments)]
    pub fn answered(
        &mut self,
        conversation: &str,
        event: &Value,
        sent_at: DateTime<Utc>,
        _at: DateTime<Utc>,
        status: u16,
        ignored: bool,
        held: bool,
    ) {
        self.answers.push(Answer {
            conversation: conversation.to_owned(),
            kind: event["kind"].as_str().unwrap_or_default().to_owned(),
            event_id: event["eventId"].as_str().unwrap_or_default().to_owned(),
            sent_at,
            status,
            ignored,
            held,
        });
    }
}

/// A handover the bot platform was told was opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub session: String,
    /// Which of the session's handover requests it answered.
    pub lifecycle: u64,
    pub at: DateTime<Utc>,
    pub cancelled_during_start: bool,
}

/// One event as the bot platform first received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery_id: String,
    pub session: String,
    pub handover_id: String,
    pub kind: &'static str,
    pub text: Option<String>,
    pub at: DateTime<Utc>,
}

/// A cancel sent during a start, and its answer.
#[derive(Debug, Clone)]
pub struct CancelAnswer {
    pub session: String,
    pub lifecycle: u64,
    pub sent_at: DateTime<Utc>,
    pub answered_at: DateTime<Utc>,
    /// The final status; `None`: never answered.
    pub status: Option<u16>,
}

/// What the bot platform sent and saw.
#[derive(Debug, Default)]
pub struct BotSide {
    /// Sessions whose handover request is in flight, since when.
    pub starting: BTreeMap<String, DateTime<Utc>>,
    /// User turns by text: session, when sent, whether a start was in flight.
    pub turns: BTreeMap<String, (String, DateTime<Utc>, bool)>,
    pub opened: BTreeMap<String, Opened>,
    /// First `handover.ended` per handover, with its reason.
    pub ended: BTreeMap<String, (DateTime<Utc>, EndReason)>,
    /// Distinct deliveries of `handover.ended` per handover.
    pub ended_deliveries: BTreeMap<String, u32>,
    pub delivery_ids: BTreeSet<String>,
    pub received: Vec<Received>,
    /// The embedded conversation ids the bot named in its handover requests.
    pub embedded_ids: BTreeSet<String>,
    /// Cancels sent during a start.
    pub cancel_answers: Vec<CancelAnswer>,
    /// When each try of a handover request got its answer (a kill included), by event id.
    pub request_answers: BTreeMap<String, Vec<DateTime<Utc>>>,
    /// Handover requests the platform also sent a copy of at once (by event id).
    pub requests_sent_twice: BTreeSet<String>,
}

/// The simulator's adapters.
pub struct Models(pub Arc<World>);

impl handover::app::bots::AdapterSource for Models {
    fn provider(&self, _bot: &BotConfig, provider: &ProviderConfig) -> Arc<dyn Provider> {
        Arc::new(DeskModel {
            world: self.0.clone(),
            kind: provider.kind,
        })
    }

    fn platform(&self, _bot: &BotConfig) -> Arc<dyn BotPlatform> {
        Arc::new(PlatformModel(self.0.clone()))
    }
}

pub struct DeskModel {
    world: Arc<World>,
    kind: ProviderKind,
}

fn retryable(status: Option<u16>, message: &str) -> DeliveryError {
    DeliveryError::Retryable {
        status,
        retry_after: None,
        message: message.to_owned(),
    }
}

fn permanent(status: u16, message: &str) -> DeliveryError {
    DeliveryError::Permanent {
        status: Some(status),
        message: message.to_owned(),
    }
}

impl DeskModel {
    /// A 5xx before the call did anything.
    fn fails_before(&self, what: &str, session: Option<&str>) -> bool {
        let w = &self.world;
        if w.faults_on() && w.chance(w.options.provider_fault) {
            w.fault("provider 5xx", session, what);
            return true;
        }
        false
    }

    /// A timeout after the call did its work: the service cannot know it was done.
    fn times_out_after(&self, what: &str, session: Option<&str>) -> bool {
        let w = &self.world;
        if w.faults_on() && w.chance(w.options.provider_fault / 2.0) {
            w.fault("provider timeout after the work", session, what);
            return true;
        }
        false
    }

    fn session_of(&self, conversation: &str) -> Option<String> {
        self.world
            .desk
            .lock()
            .expect("desk")
            .conversations
            .get(conversation)
            .map(|c| c.session.clone())
    }
}

/// An agent at the contact center: joins after a while (sometimes too late), writes a few
/// messages, and most often closes the conversation.
async fn agent(world: Arc<World>, conversation: String) {
    let open = |w: &World| {
        w.desk
            .lock()
            .expect("desk")
            .conversations
            .get(&conversation)
            .is_some_and(|c| c.open)
    };
    let late = world.chance(0.15);
    let wait = if late {
        world.between(330, 420)
    } else {
        world.between(3, 120)
    };
    tokio::time::sleep(Duration::from_secs(wait)).await;
    if !open(&world) {
        return;
    }
    let joined = world
        .desk
        .lock()
        .expect("desk")
        .conversations
        .get(&conversation)
        .is_some_and(|c| c.joined);
    if !joined {
        emit(&world, &conversation, "joined", None);
    }
    for i in 0..world.between(1, 4) {
        world.pause_ms(3_000, 60_000).await;
        if !open(&world) {
            return;
        }
        emit(
            &world,
            &conversation,
            "message",
            Some(format!("agent {conversation} says {i}")),
        );
    }
    if world.chance(0.75) {
        world.pause_ms(3_000, 60_000).await;
        if !open(&world) {
            return;
        }
        if let Some(c) = world.desk.lock().expect("desk").conversations.get_mut(&conversation) {
            c.open = false;
            c.closed = Some((world.now(), "closed by the agent".into()));
        }
        emit(&world, &conversation, "closed", None);
    }
}

/// One event of the contact center: pushed as a callback (a little late now and then, so
/// callbacks overtake each other), or queued for the next poll.
fn emit(world: &Arc<World>, conversation: &str, kind: &str, text: Option<String>) {
    let event_id = {
        let mut desk = world.desk.lock().expect("desk");
        let Some(c) = desk.conversations.get_mut(conversation) else {
            return;
        };
        c.events += 1;
        if kind == "joined" {
            c.joined = true;
        }
        format!("{conversation}-ev{}", c.events)
    };
    let event = json!({ "eventId": event_id, "conversationId": conversation, "kind": kind, "text": text });
    world.note(format!("desk emits {kind} {event_id}"));
    if let Some(e) = parse_event(&event) {
        world
            .desk
            .lock()
            .expect("desk")
            .history
            .entry(conversation.to_owned())
            .or_default()
            .push(e);
    }
    if world.model == Model::Polled {
        if let Some(e) = parse_event(&event) {
            if let Some(t) = &text {
                world
                    .desk
                    .lock()
                    .expect("desk")
                    .agent_sent
                    .insert(t.clone(), world.now());
            }
            world
                .desk
                .lock()
                .expect("desk")
                .polled
                .entry(conversation.to_owned())
                .or_default()
                .push(e);
        }
        return;
    }
    let (w, c) = (world.clone(), conversation.to_owned());
    tokio::spawn(async move {
        if w.faults_on() && w.chance(0.2) {
            w.pause_ms(0, 2_000).await;
        }
        if let Some(t) = &text {
            w.desk.lock().expect("desk").agent_sent.insert(t.clone(), w.now());
        }
        callback(w, c, event).await;
    });
}

fn parse_event(v: &Value) -> Option<ProviderEvent> {
    let agent = Agent {
        id: "agent-7".into(),
        name: Some("Sam".into()),
    };
    let kind = match v["kind"].as_str()? {
        "joined" => ProviderEventKind::AgentJoined { agent },
        "message" => ProviderEventKind::AgentMessage {
            agent: Some(agent),
            message: Message::text(v["text"].as_str()?),
        },
        "closed" => ProviderEventKind::ConversationClosed,
        _ => return None,
    };
    Some(ProviderEvent {
        event_id: v["eventId"].as_str()?.to_owned(),
        conversation_id: v["conversationId"].as_str()?.to_owned(),
        kind,
    })
}

#[async_trait]
impl Provider for DeskModel {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn uncertain_start_id(&self, handover: &Handover) -> Option<String> {
        match self.world.model {
            Model::HandoverId | Model::Polled => Some(handover.id.clone()),
            Model::Embedded | Model::JoinAtStart => handover.provider_conversation_id.clone(),
            Model::Created => None,
        }
    }

    async fn start(&self, r: &StartRequest<'_>) -> Result<ProviderConversation, DeliveryError> {
        let w = self.world.clone();
        let session = r.session_id.to_owned();
        w.desk.lock().expect("desk").requested.insert(r.handover.id.clone());
        w.pause_ms(20, 300).await;
        if w.faults_on() && w.chance(w.options.refuse_start) {
            w.fault("start refused (4xx)", Some(&session), &r.handover.id);
            return Err(permanent(422, "the desk refuses the conversation"));
        }
        if self.fails_before("start", Some(&session)) {
            return Err(retryable(Some(503), "desk unavailable"));
        }
        let id = match w.model {
            Model::HandoverId | Model::Polled => r.handover.id.clone(),
            Model::Embedded | Model::JoinAtStart => r
                .handover
                .provider_conversation_id
                .clone()
                .unwrap_or_else(|| "missing-embedded-id".into()),
            Model::Created => {
                let mut desk = w.desk.lock().expect("desk");
                desk.next += 1;
                format!("hs-{}", desk.next)
            }
        };
        let now = w.now();
        let first = {
            let mut desk = w.desk.lock().expect("desk");
            let c = desk.conversations.entry(id.clone()).or_insert_with(|| Conversation {
                id: id.clone(),
                handover_id: r.handover.id.clone(),
                session: session.clone(),
                open: true,
                started_at: now,
                named: false,
                closed: None,
                turns: BTreeMap::new(),
                order: Vec::new(),
                duplicated: Vec::new(),
                delivery_ids: BTreeSet::new(),
                joined: w.model == Model::JoinAtStart,
                agent_started: false,
                events: 0,
            });
            if c.closed.is_none() {
                c.open = true;
            }
            let first = !c.agent_started;
            c.agent_started = true;
            first
        };
        w.desk
            .lock()
            .expect("desk")
            .asks
            .entry(r.handover.id.clone())
            .or_default()
            .push(now);
        w.note(format!("desk opens {id} for {}", r.handover.id));
        if first {
            tokio::spawn(agent(w.clone(), id.clone()));
        }
        if w.model != Model::Polled && w.faults_on() && w.chance(w.options.early) {
            // The agent is quicker than the desk's answer.
            w.fault("callback before the start's answer", Some(&session), &id);
            emit(&w, &id, "joined", None);
            w.pause_ms(500, 3_000).await;
        }
        if self.times_out_after("start", Some(&session)) {
            return Err(retryable(None, "timed out"));
        }
        if let Some(c) = w.desk.lock().expect("desk").conversations.get_mut(&id) {
            c.named = true;
        }
        Ok(ProviderConversation {
            handover_id: r.handover.id.clone(),
            conversation_id: id,
        })
    }

    async fn send_message(
        &self,
        delivery_id: &str,
        conversation: &ProviderConversation,
        entry: &TranscriptEntry,
    ) -> Result<(), DeliveryError> {
        let w = &self.world;
        let session = self.session_of(&conversation.conversation_id);
        w.pause_ms(10, 200).await;
        if w.faults_on() && w.chance(w.options.refuse_turn) {
            w.desk.lock().expect("desk").refused.insert(delivery_id.to_owned());
            w.fault("turn refused (400)", session.as_deref(), &format!("turn {}", entry.seq));
            return Err(permanent(400, "the desk refuses this message"));
        }
        if w.desk.lock().expect("desk").refused.contains(delivery_id) {
            return Err(permanent(400, "the desk refuses this message"));
        }
        if self.fails_before("send_message", session.as_deref()) {
            return Err(retryable(Some(503), "desk unavailable"));
        }
        let text = entry.message.text.clone().unwrap_or_default();
        let now = w.now();
        {
            let mut desk = w.desk.lock().expect("desk");
            match desk.conversations.get_mut(&conversation.conversation_id) {
                None => desk.unknown_turns.push(conversation.conversation_id.clone()),
                Some(c) => {
                    if c.delivery_ids.insert(delivery_id.to_owned()) {
                        if c.turns.contains_key(&text) {
                            c.duplicated.push(text.clone());
                        } else {
                            c.turns.insert(text.clone(), (now, entry.seq));
                            c.order.push(entry.seq);
                        }
                    }
                }
            }
        }
        if self.times_out_after("send_message", session.as_deref()) {
            return Err(retryable(None, "timed out"));
        }
        Ok(())
    }

    async fn end(
        &self,
        _delivery_id: &str,
        conversation: &ProviderConversation,
        reason: EndReason,
    ) -> Result<(), DeliveryError> {
        let w = &self.world;
        let session = self.session_of(&conversation.conversation_id);
        w.pause_ms(10, 200).await;
        if self.fails_before("end", session.as_deref()) {
            return Err(retryable(Some(503), "desk unavailable"));
        }
        {
            let now = w.now();
            let mut desk = w.desk.lock().expect("desk");
            match desk.conversations.get_mut(&conversation.conversation_id) {
                None => desk.unknown_ends.push(conversation.conversation_id.clone()),
                Some(c) => {
                    if c.open {
                        c.open = false;
                        c.closed = Some((now, format!("ended by the service ({})", reason.as_str())));
                    }
                }
            }
        }
        if self.times_out_after("end", session.as_deref()) {
            return Err(retryable(None, "timed out"));
        }
        Ok(())
    }

    async fn keep_as_ticket(
        &self,
        delivery_id: &str,
        conversation: &ProviderConversation,
        reason: EndReason,
    ) -> Result<(), DeliveryError> {
        self.end(delivery_id, conversation, reason).await
    }

    async fn poll(&self, conversation: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        let w = &self.world;
        w.pause_ms(10, 200).await;
        if self.fails_before("poll", None) {
            return Err(retryable(Some(503), "desk unavailable"));
        }
        // Polling reads state: what was queued stays readable (a repeat is deduplicated by id).
        Ok(w.desk
            .lock()
            .expect("desk")
            .polled
            .get(&conversation.conversation_id)
            .cloned()
            .unwrap_or_default())
    }

    /// The created-id desk reads a conversation back (Help Scout: its threads and assignee).
    async fn fetch_events(&self, conversation_id: &str) -> Result<Vec<ProviderEvent>, DeliveryError> {
        let w = &self.world;
        w.pause_ms(10, 200).await;
        if w.model != Model::Created {
            return Ok(Vec::new());
        }
        if self.fails_before("fetch_events", None) {
            return Err(retryable(Some(503), "desk unavailable"));
        }
        Ok(w.desk
            .lock()
            .expect("desk")
            .history
            .get(conversation_id)
            .cloned()
            .unwrap_or_default())
    }

    fn verify_callback(&self, _request: &CallbackRequest<'_>, _now: DateTime<Utc>) -> Result<(), CallbackError> {
        // Signatures are the HTTP adapters' business, checked by their own conformance suite.
        Ok(())
    }

    fn parse_callback(&self, request: &CallbackRequest<'_>) -> Result<Callback, CallbackError> {
        let v: Value =
            serde_json::from_slice(request.body).map_err(|e| CallbackError::Malformed(format!("not JSON: {e}")))?;
        let events = v["events"]
            .as_array()
            .ok_or_else(|| CallbackError::Malformed("no events".into()))?
            .iter()
            .filter_map(parse_event)
            .collect();
        Ok(Callback::Events(events))
    }
}

pub struct PlatformModel(Arc<World>);

#[async_trait]
impl BotPlatform for PlatformModel {
    async fn deliver(
        &self,
        delivery_id: &str,
        key: &SessionKey,
        handover_id: &str,
        event: &BotEvent,
        _context: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError> {
        let w = &self.0;
        w.pause_ms(10, 150).await;
        if w.faults_on() && w.chance(w.options.platform_fault) {
            w.fault("bot platform 5xx", Some(&key.session_id), event.wire_type());
            return Err(retryable(Some(503), "bot platform unavailable"));
        }
        {
            let now = w.now();
            let mut bot = w.bot.lock().expect("bot");
            if bot.delivery_ids.insert(delivery_id.to_owned()) {
                let text = match event {
                    BotEvent::AgentMessage { message, .. } => message.text.clone(),
                    _ => None,
                };
                if let BotEvent::Ended { reason, .. } = event {
                    bot.ended.entry(handover_id.to_owned()).or_insert((now, *reason));
                    *bot.ended_deliveries.entry(handover_id.to_owned()).or_default() += 1;
                }
                bot.received.push(Received {
                    delivery_id: delivery_id.to_owned(),
                    session: key.session_id.clone(),
                    handover_id: handover_id.to_owned(),
                    kind: event.wire_type(),
                    text,
                    at: now,
                });
            }
        }
        if w.faults_on() && w.chance(w.options.platform_fault / 2.0) {
            w.fault(
                "bot platform timeout after the work",
                Some(&key.session_id),
                event.wire_type(),
            );
            return Err(retryable(None, "timed out"));
        }
        Ok(())
    }
}

//! The handover state machine: `decide(session, input, bot, conditions, now)` returns the next
//! session, the transcript entries to append, the effects to run and the answer to give. No I/O,
//! no clock, no randomness: ids and time come in as arguments, so every path is testable.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::bot::{Bot, NoAgentFallback};

use super::availability::{self, Availability, Conditions, UnavailableReason};
use super::dialog::{self, Dialog, DialogName, DialogVars};
use super::effect::{BotEvent, Effect, Opened, ProviderOp, Start};
use super::event::{Event, HandoverRequest, Input, Speaker};
use super::handover::{EndReason, Handover};
use super::message::{Actor, Agent, Message};
use super::routing::{self, RouteQuery};
use super::session::{Control, Session, State, TimerKind, Timers};
use super::transcript::TranscriptEntry;

/// The three answers to a handover request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Opened,
    Closed,
    Disabled,
}

/// The synchronous answer to the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Message {
        control: Control,
        state: State,
    },
    Handover {
        outcome: Outcome,
        state: State,
        handover_id: Option<String>,
        dialog: Dialog,
        next_opening: Option<DateTime<Utc>>,
        reason: Option<UnavailableReason>,
    },
    Cancelled {
        state: State,
        handover_id: String,
        reason: EndReason,
    },
    /// A provider or timer event was applied (or was stale and safely ignored).
    Accepted {
        applied: bool,
    },
}

/// A valid request that cannot be carried out in the current state (HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no handover is active in this session")]
    NoActiveHandover,
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    #[error("no routing rule matches this handover request")]
    NoRoute,
    #[error("the message is empty")]
    EmptyMessage,
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::NoActiveHandover => "no_active_handover",
            Rejection::UnknownProvider(_) => "unknown_provider",
            Rejection::NoRoute => "no_route",
            Rejection::EmptyMessage => "empty_message",
        }
    }
}

/// Everything one event produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub session: Session,
    pub entries: Vec<TranscriptEntry>,
    pub effects: Vec<Effect>,
    pub reply: Reply,
    /// A conversation to open at the provider before this decision may be committed. The shell
    /// opens it and records the answer with [`started`]; a decision with a start is never
    /// committed as it is.
    pub start: Option<Start>,
}

impl Decision {
    /// Whether anything must be written.
    pub fn changes(&self, before: &Session) -> bool {
        !self.entries.is_empty() || !self.effects.is_empty() || self.session != *before
    }
}

/// Records that the provider opened the decision's conversation: the provider's own
/// conversation id (it wins over one the request named, so later deliveries and the callback
/// index use it), a catch-up of the turns the conversation was not opened with, and, for
/// providers whose handover puts an agent in charge at once, the join. Returns the decision
/// to commit, without its start.
pub fn started(decision: Decision, bot: &Bot, opened: &Opened, now: DateTime<Utc>) -> Decision {
    let (d, reply) = opening(decision, bot, opened, now);
    d.into_decision(reply)
}

/// [`started`], then the user's cancel that arrived while the provider was being asked: the
/// opening and its end `user_cancelled` (the provider's conversation ended, the bot told) are
/// one decision, committed together, so a cancel the platform was told it won cannot be lost
/// between two commits (found by the simulator: a join-at-start handover went on after its
/// cancel's follow-up failed). The reply stays the request's own.
pub fn started_then_cancelled(decision: Decision, bot: &Bot, opened: &Opened, now: DateTime<Utc>) -> Decision {
    let (mut d, reply) = opening(decision, bot, opened, now);
    if d.session.handover.is_some() {
        // With a handover there is always something to cancel: the result is its reply,
        // which the platform already had from the cancel itself.
        let _ = d.cancel();
    }
    d.into_decision(reply)
}

fn opening<'b>(decision: Decision, bot: &'b Bot, opened: &Opened, now: DateTime<Utc>) -> (Step<'b>, Reply) {
    let Decision {
        session,
        entries,
        effects,
        reply,
        start,
    } = decision;
    let mut d = Step {
        bot,
        now,
        outbox_base: session.outbox_seq.saturating_sub(effects.len() as u64),
        session,
        entries,
        effects,
        start: None,
    };
    let Some(start) = start else {
        return (d, reply);
    };
    if let Some(h) = d.session.handover.as_mut() {
        h.provider_conversation_id = (h.id != opened.conversation_id).then(|| opened.conversation_id.clone());
    }
    if opened.through_seq < start.through_seq {
        d.effects.insert(
            0,
            Effect::Provider {
                provider: start.provider.clone(),
                handover_id: start.handover.id.clone(),
                conversation_id: (opened.conversation_id != start.handover.id).then(|| opened.conversation_id.clone()),
                op: ProviderOp::CatchUp {
                    after_seq: opened.through_seq,
                    through_seq: start.through_seq,
                },
            },
        );
    }
    if opened.named_by_answer && d.session.handover.as_ref().is_some_and(|h| h.id == start.handover.id) {
        d.send_provider(ProviderOp::ReadBack {
            conversation_id: opened.conversation_id.clone(),
        });
    }
    if bot.traits(&start.provider).joins_at_start {
        d.join(Agent {
            id: start.provider.clone(),
            name: None,
        });
    }
    (d, reply)
}

/// Where a handover request would go, and in which language. Pure; the shell calls it too, to
/// learn which providers to check before deciding.
pub fn route_for(session: &Session, req: &HandoverRequest, bot: &Bot) -> Result<(routing::Route, String), Rejection> {
    if let Some(p) = &req.provider
        && bot.config.provider(p).is_none()
    {
        return Err(Rejection::UnknownProvider(p.clone()));
    }
    let language = req
        .language
        .clone()
        .unwrap_or_else(|| session.language(&bot.config.default_language).to_owned());
    let route = routing::resolve(
        &bot.config,
        &RouteQuery {
            trigger: req.trigger,
            language: &language,
            channel: session.channel.as_deref(),
            provider: req.provider.as_deref(),
            queue: req.queue.as_deref(),
        },
    )
    .ok_or(Rejection::NoRoute)?;
    Ok((route, language))
}

/// Decides what an event does to a session.
///
/// `new_handover_id` is used only when a handover opens; the shell generates it so the core
/// stays deterministic.
pub fn decide(
    session: &Session,
    input: &Input,
    bot: &Bot,
    conditions: &Conditions,
    now: DateTime<Utc>,
    new_handover_id: &str,
) -> Result<Decision, Rejection> {
    let mut s = session.clone();
    if let Some(user) = &input.user {
        s.user = Some(user.clone());
    }
    if let Some(channel) = &input.channel {
        s.channel = Some(channel.clone());
    }
    s.platform_context.extend(input.context.clone());
    let mut d = Step {
        bot,
        now,
        outbox_base: s.outbox_seq,
        session: s,
        entries: Vec::new(),
        effects: Vec::new(),
        start: None,
    };
    let reply = match &input.event {
        Event::Message { speaker, message } => {
            if message.is_empty() {
                return Err(Rejection::EmptyMessage);
            }
            d.message(*speaker, message, input.event_id.as_deref())
        }
        Event::Messages(turns) => {
            if turns.iter().any(|t| t.message.is_empty()) {
                return Err(Rejection::EmptyMessage);
            }
            let mut reply = Reply::Message {
                control: d.session.state.control(),
                state: d.session.state,
            };
            for t in turns {
                reply = d.turn(t.speaker, &t.message, t.event_id.as_deref(), t.at);
            }
            reply
        }
        Event::ShowDialog(dialog) => {
            let context = d.session.platform_context.clone();
            d.effects.push(Effect::Bot {
                handover_id: String::new(),
                event: BotEvent::Dialog { dialog: dialog.clone() },
                context,
            });
            Reply::Accepted { applied: true }
        }
        Event::HandoverRequested(req) => d.request(req, conditions, new_handover_id)?,
        Event::UserCancelled => d.cancel()?,
        Event::AgentJoined { handover_id, agent } => {
            let applied = d.is_current(handover_id) && d.join(agent.clone());
            Reply::Accepted { applied }
        }
        Event::AgentMessage {
            handover_id,
            agent,
            message,
        } => {
            let applied = d.is_current(handover_id) && !message.is_empty();
            if applied {
                d.agent_message(agent.clone(), message.clone(), input.event_id.as_deref());
            }
            Reply::Accepted { applied }
        }
        Event::AutomatedMessage {
            handover_id,
            agent,
            message,
        } => {
            let applied = d.is_current(handover_id) && !message.is_empty();
            if applied {
                d.automated_message(agent.clone(), message.clone(), input.event_id.as_deref());
            }
            Reply::Accepted { applied }
        }
        Event::AgentTyping { handover_id, agent } => {
            let applied = d.is_current(handover_id);
            if applied {
                d.notify_bot(BotEvent::AgentTyping { agent: agent.clone() });
            }
            Reply::Accepted { applied }
        }
        Event::ConversationClosed { handover_id } => {
            let applied = d.is_current(handover_id);
            if applied {
                let provider = d
                    .session
                    .handover
                    .as_ref()
                    .map(|h| h.provider.clone())
                    .unwrap_or_default();
                d.end(
                    EndReason::AgentClosed,
                    bot.traits(&provider).hands_back_after_agent_close,
                );
            }
            Reply::Accepted { applied }
        }
        Event::TimerFired { handover_id, timer } => {
            let applied = d.is_current(handover_id) && d.timer(*timer, conditions);
            // The evaluator came: a held index time that has passed moves to the earliest timer.
            d.session.timers.release_index(now);
            Reply::Accepted { applied }
        }
        Event::ProviderFailed { handover_id } => {
            let applied = d.is_current(handover_id);
            if applied {
                // The provider side is ended too (best effort, retried by the outbox): an agent
                // who can still reach the conversation must not keep writing into it.
                d.end(EndReason::ProviderError, true);
            }
            Reply::Accepted { applied }
        }
    };
    // Only a real change moves `updatedAt`, so an ignored event (a stale callback, a repeated
    // join) costs no write.
    if d.session != *session || !d.entries.is_empty() || !d.effects.is_empty() {
        d.session.updated_at = now;
    }
    Ok(d.into_decision(reply))
}

/// The decision under construction.
struct Step<'a> {
    bot: &'a Bot,
    now: DateTime<Utc>,
    session: Session,
    entries: Vec<TranscriptEntry>,
    effects: Vec<Effect>,
    start: Option<Start>,
    /// The session's outbox sequence before this decision's effects: each effect takes the
    /// next number, so the shell stores them in the order the core made them.
    outbox_base: u64,
}

impl Step<'_> {
    fn into_decision(mut self, reply: Reply) -> Decision {
        self.session.outbox_seq = self.outbox_base + self.effects.len() as u64;
        Decision {
            session: self.session,
            entries: self.entries,
            effects: self.effects,
            reply,
            start: self.start,
        }
    }

    fn language(&self) -> String {
        self.session
            .handover
            .as_ref()
            .map(|h| h.language.clone())
            .unwrap_or_else(|| self.session.language(&self.bot.config.default_language).to_owned())
    }

    fn dialog(&self, name: DialogName, vars: DialogVars) -> Dialog {
        dialog::render(
            self.bot,
            name,
            &self.language(),
            &DialogVars {
                now: Some(self.now),
                ..vars
            },
        )
    }

    fn is_current(&self, handover_id: &str) -> bool {
        self.session.handover.as_ref().is_some_and(|h| h.id == handover_id)
    }

    fn append(
        &mut self,
        actor: Actor,
        message: Message,
        agent: Option<Agent>,
        event_id: Option<&str>,
    ) -> TranscriptEntry {
        self.session.seq += 1;
        let entry = TranscriptEntry {
            seq: self.session.seq,
            actor,
            timestamp: self.now,
            message,
            agent,
            event_id: event_id.map(str::to_owned),
        };
        self.entries.push(entry.clone());
        entry
    }

    fn send_provider(&mut self, op: ProviderOp) {
        if let Some(h) = &self.session.handover {
            self.effects.push(Effect::Provider {
                provider: h.provider.clone(),
                handover_id: h.id.clone(),
                conversation_id: h.provider_conversation_id.clone(),
                op,
            });
        }
    }

    fn notify_bot(&mut self, event: BotEvent) {
        if let Some(h) = &self.session.handover {
            let context = self.session.platform_context.clone();
            self.effects.push(Effect::Bot {
                handover_id: h.id.clone(),
                event,
                context,
            });
        }
    }

    fn message(&mut self, speaker: Speaker, message: &Message, event_id: Option<&str>) -> Reply {
        self.turn(speaker, message, event_id, None)
    }

    fn turn(
        &mut self,
        speaker: Speaker,
        message: &Message,
        event_id: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> Reply {
        let actor = match speaker {
            Speaker::User => Actor::User,
            Speaker::Bot => Actor::Bot,
        };
        let mut entry = self.append(actor, message.clone(), None, event_id);
        if let Some(at) = at {
            entry.timestamp = at;
            if let Some(last) = self.entries.last_mut() {
                last.timestamp = at;
            }
        }
        // While waiting, every turn is mirrored so the agent sees everything; once an agent
        // has joined, user turns go to the agent only.
        if self.session.state != State::Bot {
            self.send_provider(ProviderOp::Mirror { entry });
        }
        Reply::Message {
            control: self.session.state.control(),
            state: self.session.state,
        }
    }

    fn request(&mut self, req: &HandoverRequest, conditions: &Conditions, new_id: &str) -> Result<Reply, Rejection> {
        if let Some(h) = &self.session.handover {
            // Already handed over: answer as the first time, never start a second handover.
            return Ok(Reply::Handover {
                outcome: Outcome::Opened,
                state: self.session.state,
                handover_id: Some(h.id.clone()),
                dialog: self.dialog(DialogName::Opened, DialogVars::default()),
                next_opening: None,
                reason: None,
            });
        }
        let (route, language) = route_for(&self.session, req, self.bot)?;

        // The first candidate that is scheduled open and healthy wins. If none is, the most
        // telling reason is reported: a schedule closure outranks provider trouble.
        let mut first_closed: Option<Availability> = None;
        let mut chosen = None;
        for provider in &route.candidates {
            let mut a = availability::scheduled(self.bot, provider, &route.queue, self.now);
            if a.open && conditions.unavailable_providers.contains(provider) {
                a = Availability::closed(UnavailableReason::ProviderUnavailable, None);
            } else if a.open
                && conditions
                    .no_agents
                    .contains(&Conditions::no_agents_key(provider, &route.queue))
            {
                a = Availability::closed(UnavailableReason::NoAgentsOnline, None);
            }
            if a.open {
                chosen = Some(provider.clone());
                break;
            }
            let better = match (&first_closed, a.reason) {
                (None, _) => true,
                (Some(prev), Some(r)) => {
                    prev.reason == Some(UnavailableReason::ProviderUnavailable)
                        && r != UnavailableReason::ProviderUnavailable
                }
                _ => false,
            };
            if better {
                first_closed = Some(a);
            }
        }

        let Some(provider) = chosen else {
            let a = first_closed.unwrap_or_else(|| Availability::closed(UnavailableReason::ProviderUnavailable, None));
            let reason = a.reason.unwrap_or(UnavailableReason::ProviderUnavailable);
            let vars = DialogVars {
                next_opening: a.next_change,
                // The operator's words only when the kill switch is what refused the handover.
                reason: (reason == UnavailableReason::KillSwitch)
                    .then(|| self.bot.config.disabled.as_ref().map(|k| k.reason.clone()))
                    .flatten(),
                ..DialogVars::default()
            };
            let outcome = match reason.dialog() {
                DialogName::Disabled => Outcome::Disabled,
                _ => Outcome::Closed,
            };
            let next_opening = if outcome == Outcome::Closed {
                a.next_change
            } else {
                None
            };
            let mut dialog = dialog::render(
                self.bot,
                reason.dialog(),
                &language,
                &DialogVars {
                    now: Some(self.now),
                    ..vars
                },
            );
            dialog.name = reason.dialog();
            return Ok(Reply::Handover {
                outcome,
                state: self.session.state,
                handover_id: None,
                dialog,
                next_opening,
                reason: Some(reason),
            });
        };

        let handover = Handover {
            id: new_id.to_owned(),
            trigger: req.trigger,
            provider,
            queue: route.queue,
            language,
            variables: req.variables.clone(),
            tags: req.tags.clone(),
            summary: req.summary.clone(),
            provider_conversation_id: req.provider_conversation_id.clone(),
            requested_at: self.now,
            joined_at: None,
            ended_at: None,
            end_reason: None,
            agent: None,
            position: None,
            estimated_wait_seconds: None,
        };
        self.session.handover = Some(handover.clone());
        self.session.state = State::Waiting;
        let t = self.bot.config.timeouts;
        self.session.timers = Timers {
            no_agent_at: Some(self.now + secs(t.no_agent_seconds)),
            still_waiting_at: (t.still_waiting_every_seconds > 0)
                .then(|| self.now + secs(t.still_waiting_every_seconds)),
            agent_idle_at: None,
            poll_at: self.poll_at(&handover.provider),
            index_held: None,
        };
        self.start = Some(Start {
            provider: handover.provider.clone(),
            handover: Box::new(handover.clone()),
            user: self.session.user.clone(),
            channel: self.session.channel.clone(),
            session_id: self.session.session_id.clone(),
            through_seq: self.session.seq,
        });
        let wait_seconds = conditions.typical_waits.get(&handover.queue).copied();
        Ok(Reply::Handover {
            outcome: Outcome::Opened,
            state: State::Waiting,
            handover_id: Some(handover.id),
            dialog: self.dialog(
                DialogName::Opened,
                DialogVars {
                    wait_seconds,
                    ..DialogVars::default()
                },
            ),
            next_opening: None,
            reason: None,
        })
    }

    fn cancel(&mut self) -> Result<Reply, Rejection> {
        let Some(h) = &self.session.handover else {
            return Err(Rejection::NoActiveHandover);
        };
        let handover_id = h.id.clone();
        self.end(EndReason::UserCancelled, true);
        Ok(Reply::Cancelled {
            state: State::Bot,
            handover_id,
            reason: EndReason::UserCancelled,
        })
    }

    /// Returns whether the join changed anything (a repeated join does not).
    fn join(&mut self, agent: Agent) -> bool {
        if self.session.state != State::Waiting {
            return false;
        }
        let name = agent.name.clone();
        if let Some(h) = self.session.handover.as_mut() {
            h.joined_at = Some(self.now);
            h.agent = Some(agent.clone());
            h.position = None;
        }
        self.session.state = State::Agent;
        self.session.timers = Timers {
            agent_idle_at: Some(self.now + secs(self.bot.config.timeouts.agent_idle_seconds)),
            poll_at: self.session.timers.poll_at,
            ..Timers::default()
        };
        let dialog = self.dialog(
            DialogName::AgentJoined,
            DialogVars {
                agent_name: name,
                ..DialogVars::default()
            },
        );
        self.notify_bot(BotEvent::AgentJoined { agent, dialog });
        true
    }

    fn agent_message(&mut self, agent: Option<Agent>, message: Message, event_id: Option<&str>) {
        // Some desks never announce the join: the first agent message is the join.
        if self.session.state == State::Waiting {
            let joined = agent.clone().unwrap_or_else(|| Agent {
                id: "agent".into(),
                name: None,
            });
            self.join(joined);
        }
        let agent = agent.or_else(|| self.session.handover.as_ref().and_then(|h| h.agent.clone()));
        self.append(Actor::Agent, message.clone(), agent.clone(), event_id);
        // The deadline only moves later: the index keeps its time and the evaluator moves it
        // when that time comes, once for all the messages in between.
        self.session.timers.hold_index();
        self.session.timers.agent_idle_at = Some(self.now + secs(self.bot.config.timeouts.agent_idle_seconds));
        self.notify_bot(BotEvent::AgentMessage { agent, message });
    }

    /// The provider's automation speaks while the user waits (or between agent turns): the user
    /// sees it, the agent's transcript keeps it, and nothing about the join or the agent-idle
    /// timer changes, because no person said it.
    fn automated_message(&mut self, agent: Option<Agent>, message: Message, event_id: Option<&str>) {
        self.append(Actor::Agent, message.clone(), agent.clone(), event_id);
        self.notify_bot(BotEvent::AgentMessage { agent, message });
    }

    /// Returns whether the timer was due and acted on.
    fn timer(&mut self, timer: TimerKind, conditions: &Conditions) -> bool {
        let due = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= self.now);
        match timer {
            TimerKind::NoAgent if self.session.state == State::Waiting && due(self.session.timers.no_agent_at) => {
                match self.bot.config.timeouts.no_agent_fallback {
                    NoAgentFallback::ReturnToBot => self.end(EndReason::NoAgentTimeout, true),
                    NoAgentFallback::Ticket => self.end_as_ticket(),
                }
                true
            }
            TimerKind::StillWaiting
                if self.session.state == State::Waiting && due(self.session.timers.still_waiting_at) =>
            {
                let every = self.bot.config.timeouts.still_waiting_every_seconds;
                self.session.timers.still_waiting_at = (every > 0).then(|| self.now + secs(every));
                let (stored_position, stored_told, waited) = self
                    .session
                    .handover
                    .as_ref()
                    .map(|h| {
                        (
                            h.position,
                            h.estimated_wait_seconds,
                            (self.now - h.requested_at).num_seconds(),
                        )
                    })
                    .unwrap_or_default();
                let position = conditions.provider_position.or(stored_position);
                let told = conditions.provider_wait_seconds.or(stored_told);
                // The provider's estimate first; else what users of this queue waited lately,
                // minus what this user already waited (nothing once that is exceeded).
                let estimated_wait_seconds = told.or_else(|| {
                    let typical = i64::try_from(conditions.typical_wait_seconds?).ok()?;
                    u64::try_from(typical - waited).ok().filter(|s| *s > 0)
                });
                let dialog = self.dialog(
                    DialogName::StillWaiting,
                    DialogVars {
                        position,
                        wait_seconds: estimated_wait_seconds,
                        ..DialogVars::default()
                    },
                );
                self.notify_bot(BotEvent::Waiting {
                    position,
                    estimated_wait_seconds,
                    dialog,
                });
                true
            }
            TimerKind::AgentIdle if self.session.state == State::Agent && due(self.session.timers.agent_idle_at) => {
                self.end(EndReason::AgentIdleTimeout, true);
                true
            }
            // The shell asked the provider; the core only plans the next time.
            TimerKind::Poll if self.session.state != State::Bot && due(self.session.timers.poll_at) => {
                let provider = self
                    .session
                    .handover
                    .as_ref()
                    .map(|h| h.provider.clone())
                    .unwrap_or_default();
                self.session.timers.poll_at = self.poll_at(&provider);
                true
            }
            _ => false,
        }
    }

    /// When to ask a provider that does not push joins and closes.
    fn poll_at(&self, provider: &str) -> Option<DateTime<Utc>> {
        self.bot.traits(provider).poll_every_seconds.map(|s| self.now + secs(s))
    }

    /// Every way out of a handover: control returns to the bot with exactly one end reason.
    /// `close_provider` is false when the provider itself ended the conversation.
    fn end(&mut self, reason: EndReason, close_provider: bool) {
        if close_provider {
            self.send_provider(ProviderOp::End {
                reason,
                keep_as_ticket: false,
            });
        }
        let name = match reason {
            EndReason::NoAgentTimeout | EndReason::ProviderError => DialogName::NoAgent,
            _ => DialogName::ReturnedToBot,
        };
        self.finish(reason, name);
    }

    /// Nobody picked up and the bot is configured to leave a ticket: the provider keeps the
    /// conversation for an agent to answer later, the user is told so, the bot takes over.
    fn end_as_ticket(&mut self) {
        let reason = EndReason::NoAgentTimeout;
        self.send_provider(ProviderOp::End {
            reason,
            keep_as_ticket: true,
        });
        self.finish(reason, DialogName::NoAgentTicket);
    }

    fn finish(&mut self, reason: EndReason, name: DialogName) {
        let dialog = self.dialog(name, DialogVars::default());
        self.notify_bot(BotEvent::Ended { reason, dialog });
        if let Some(mut h) = self.session.handover.take() {
            h.ended_at = Some(self.now);
            h.end_reason = Some(reason);
            self.session.last_handover = Some(h);
        }
        self.session.state = State::Bot;
        self.session.timers = Timers::default();
    }
}

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

//! Behaviour of the core, without I/O: named scenarios, then properties over random event
//! sequences.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use crate::config::{Bot, BotConfig, Compile};
use crate::domain::*;

fn bot(extra: &str) -> Bot {
    bot_of_kind("webhook", extra)
}

/// The same bot with its main provider `desk` of another kind (its traits differ).
fn bot_of_kind(kind: &str, extra: &str) -> Bot {
    let yaml = format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: p }}\nproviders:\n  - {{ id: desk, kind: {kind}, url: 'https://desk.example.com', secretRef: d }}\n  - {{ id: backup, kind: webhook, url: 'https://backup.example.com', secretRef: b }}\nrouting:\n  - {{ when: {{ language: nl }}, provider: desk, queue: dutch }}\n  - {{ provider: desk, queue: general, failover: [backup] }}\n{extra}"
    );
    // The core's rules only: the desk's provider-specific settings are the adapter's concern
    // (checked when a document is stored), and these tests need none.
    Bot::new(serde_yaml_ng::from_str::<BotConfig>(&yaml).unwrap()).unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc()
}

struct World {
    bot: Bot,
    session: Session,
    now: DateTime<Utc>,
    conditions: Conditions,
    next_id: u32,
}

impl World {
    fn new(bot: Bot) -> Self {
        World {
            bot,
            session: Session::new("acme", "s-1", t0()),
            now: t0(),
            conditions: Conditions::default(),
            next_id: 0,
        }
    }

    /// Decides, and commits like the shell: a decision with a start is committed once the
    /// provider opened the conversation (`conv-{handoverId}`), through [`started`]. Returns the
    /// decision as `decide` made it, start included.
    fn apply(&mut self, event: Event) -> Result<Decision, Rejection> {
        self.next_id += 1;
        let id = format!("h-{}", self.next_id);
        let d = decide(
            &self.session,
            &Input::new(event),
            &self.bot,
            &self.conditions,
            self.now,
            &id,
        )?;
        self.session = match &d.start {
            Some(start) => {
                let opened = Opened {
                    conversation_id: format!("conv-{}", start.handover.id),
                    through_seq: start.through_seq,
                    named_by_answer: false,
                };
                started(d.clone(), &self.bot, &opened, self.now).session
            }
            None => d.session.clone(),
        };
        Ok(d)
    }

    fn user(&mut self, text: &str) -> Decision {
        self.apply(Event::Message {
            speaker: Speaker::User,
            message: Message::text(text),
        })
        .unwrap()
    }

    fn request(&mut self) -> Decision {
        self.apply(Event::HandoverRequested(request())).unwrap()
    }

    fn handover_id(&self) -> String {
        self.session.handover.as_ref().map(|h| h.id.clone()).unwrap_or_default()
    }
}

fn request() -> HandoverRequest {
    HandoverRequest {
        trigger: Trigger::ExplicitRequest,
        provider: None,
        queue: None,
        language: None,
        variables: Default::default(),
        tags: vec![],
        summary: None,
        provider_conversation_id: None,
    }
}

fn eva() -> Agent {
    Agent {
        id: "a-3".into(),
        name: Some("Eva".into()),
    }
}

fn provider_ops(d: &Decision) -> Vec<&ProviderOp> {
    d.effects
        .iter()
        .filter_map(|e| {
            if let Effect::Provider { op, .. } = e {
                Some(op)
            } else {
                None
            }
        })
        .collect()
}

fn bot_events(d: &Decision) -> Vec<&BotEvent> {
    d.effects
        .iter()
        .filter_map(|e| {
            if let Effect::Bot { event, .. } = e {
                Some(event)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn message_while_bot_in_control_is_only_recorded() {
    let mut w = World::new(bot(""));
    let d = w.user("Where is my parcel?");
    assert_eq!(
        d.reply,
        Reply::Message {
            control: Control::Bot,
            state: State::Bot
        }
    );
    assert_eq!(d.entries.len(), 1);
    assert!(d.effects.is_empty());
}

#[test]
fn handover_opens_with_the_transcript_so_far() {
    let mut w = World::new(bot(""));
    w.user("one");
    w.user("two");
    let d = w.request();
    let Reply::Handover {
        outcome,
        state,
        handover_id,
        dialog,
        ..
    } = &d.reply
    else {
        panic!("{:?}", d.reply)
    };
    assert_eq!((*outcome, *state), (Outcome::Opened, State::Waiting));
    assert_eq!(handover_id.as_deref(), Some("h-3"));
    assert_eq!(dialog.name, DialogName::Opened);
    assert!(provider_ops(&d).is_empty(), "the start is not an effect");
    let start = d.start.as_ref().expect("a conversation to open");
    assert_eq!((start.provider.as_str(), start.through_seq), ("desk", 2));
    assert_eq!(w.session.handover.as_ref().unwrap().queue, "general");
    assert_eq!(w.session.timers.no_agent_at, Some(t0() + Duration::seconds(600)));
}

#[test]
fn bot_stays_active_while_waiting_and_turns_are_mirrored() {
    let mut w = World::new(bot(""));
    w.request();
    let d = w.user("still there?");
    assert_eq!(
        d.reply,
        Reply::Message {
            control: Control::Bot,
            state: State::Waiting
        }
    );
    assert!(matches!(provider_ops(&d)[..], [ProviderOp::Mirror { .. }]));
    let d = w
        .apply(Event::Message {
            speaker: Speaker::Bot,
            message: Message::text("yes!"),
        })
        .unwrap();
    assert!(matches!(provider_ops(&d)[..], [ProviderOp::Mirror { .. }]));
}

#[test]
fn agent_join_pauses_bot() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    let d = w
        .apply(Event::AgentJoined {
            handover_id: id,
            agent: eva(),
        })
        .unwrap();
    assert!(matches!(bot_events(&d)[..], [BotEvent::AgentJoined { .. }]));
    assert_eq!(w.session.state, State::Agent);
    let d = w.user("hi Eva");
    assert_eq!(
        d.reply,
        Reply::Message {
            control: Control::Agent,
            state: State::Agent
        }
    );
    assert!(matches!(provider_ops(&d)[..], [ProviderOp::Mirror { .. }]));
    assert!(
        w.session.timers.no_agent_at.is_none(),
        "the no-agent timer stops at the join"
    );
    assert!(w.session.timers.agent_idle_at.is_some());
}

#[test]
fn a_providers_automated_message_reaches_the_user_without_counting_as_the_join() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    let no_agent_at = w.session.timers.no_agent_at;
    let d = w
        .apply(Event::AutomatedMessage {
            handover_id: id,
            agent: None,
            message: Message::text("All agents are busy; you are next."),
        })
        .unwrap();
    assert!(matches!(bot_events(&d)[..], [BotEvent::AgentMessage { .. }]));
    assert_eq!(w.session.state, State::Waiting, "no person joined");
    assert_eq!(
        w.session.timers.no_agent_at, no_agent_at,
        "the no-agent timer keeps running"
    );
    assert!(w.session.handover.as_ref().unwrap().joined_at.is_none());
    assert_eq!(d.entries.len(), 1, "the transcript keeps what the flow said");
}

#[test]
fn agent_close_returns_control_to_the_bot() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    w.apply(Event::AgentJoined {
        handover_id: id.clone(),
        agent: eva(),
    })
    .unwrap();
    let d = w.apply(Event::ConversationClosed { handover_id: id }).unwrap();
    assert!(matches!(
        bot_events(&d)[..],
        [BotEvent::Ended {
            reason: EndReason::AgentClosed,
            ..
        }]
    ));
    assert!(provider_ops(&d).is_empty(), "the provider closed it itself");
    assert_eq!(w.session.state, State::Bot);
    assert_eq!(
        w.session.last_handover.as_ref().unwrap().end_reason,
        Some(EndReason::AgentClosed)
    );
}

#[test]
fn a_provider_that_cannot_be_reached_ends_the_handover_on_both_sides() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    let d = w.apply(Event::ProviderFailed { handover_id: id }).unwrap();
    assert!(
        matches!(
            provider_ops(&d)[..],
            [ProviderOp::End {
                reason: EndReason::ProviderError,
                keep_as_ticket: false
            }]
        ),
        "an agent who can still reach the conversation sees it end"
    );
    assert!(matches!(
        bot_events(&d)[..],
        [BotEvent::Ended {
            reason: EndReason::ProviderError,
            ..
        }]
    ));
    assert_eq!(w.session.state, State::Bot);
}

#[test]
fn no_agent_timeout_ends_the_provider_conversation() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    w.now += Duration::seconds(599);
    let early = w
        .apply(Event::TimerFired {
            handover_id: id.clone(),
            timer: TimerKind::NoAgent,
        })
        .unwrap();
    assert_eq!(early.reply, Reply::Accepted { applied: false }, "not due yet");
    w.now += Duration::seconds(1);
    let d = w
        .apply(Event::TimerFired {
            handover_id: id,
            timer: TimerKind::NoAgent,
        })
        .unwrap();
    assert!(matches!(
        provider_ops(&d)[..],
        [ProviderOp::End {
            reason: EndReason::NoAgentTimeout,
            keep_as_ticket: false
        }]
    ));
    assert!(matches!(
        bot_events(&d)[..],
        [BotEvent::Ended {
            reason: EndReason::NoAgentTimeout,
            ..
        }]
    ));
}

#[test]
fn no_agent_fallback_ticket_leaves_the_conversation_at_the_provider() {
    let mut w = World::new(bot("timeouts: { noAgentSeconds: 60, noAgentFallback: ticket }"));
    w.request();
    let id = w.handover_id();
    w.now += Duration::seconds(60);
    let d = w
        .apply(Event::TimerFired {
            handover_id: id,
            timer: TimerKind::NoAgent,
        })
        .unwrap();
    assert!(matches!(
        provider_ops(&d)[..],
        [ProviderOp::End {
            reason: EndReason::NoAgentTimeout,
            keep_as_ticket: true
        }]
    ));
    let [BotEvent::Ended { reason, dialog }] = bot_events(&d)[..] else {
        panic!("{:?}", d.effects)
    };
    assert_eq!(
        (*reason, dialog.name),
        (EndReason::NoAgentTimeout, DialogName::NoAgentTicket)
    );
    assert_eq!(w.session.state, State::Bot);
}

#[test]
fn still_waiting_nudges_repeat() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    w.now += Duration::seconds(120);
    let d = w
        .apply(Event::TimerFired {
            handover_id: id,
            timer: TimerKind::StillWaiting,
        })
        .unwrap();
    assert!(matches!(bot_events(&d)[..], [BotEvent::Waiting { .. }]));
    assert_eq!(w.session.timers.still_waiting_at, Some(w.now + Duration::seconds(120)));
}

#[test]
fn polling_is_rescheduled_survives_the_join_and_stops_at_the_end() {
    let mut w = World::new(bot_of_kind("genesys", ""));
    w.request();
    let id = w.handover_id();
    assert_eq!(
        w.session.timers.poll_at,
        Some(w.now + Duration::seconds(60)),
        "armed when the handover opens, from the provider's traits"
    );
    w.now += Duration::seconds(60);
    let d = w
        .apply(Event::TimerFired {
            handover_id: id.clone(),
            timer: TimerKind::Poll,
        })
        .unwrap();
    assert_eq!(d.reply, Reply::Accepted { applied: true });
    assert!(d.effects.is_empty(), "the core only plans the next poll");
    assert_eq!(w.session.timers.poll_at, Some(w.now + Duration::seconds(60)));
    w.apply(Event::AgentJoined {
        handover_id: id.clone(),
        agent: eva(),
    })
    .unwrap();
    assert!(
        w.session.timers.poll_at.is_some(),
        "still polled while the agent is there"
    );
    w.apply(Event::ConversationClosed { handover_id: id }).unwrap();
    assert_eq!(w.session.timers.poll_at, None);
}

#[test]
fn stale_callback_for_an_old_handover_is_ignored() {
    let mut w = World::new(bot(""));
    w.request();
    let old = w.handover_id();
    w.apply(Event::UserCancelled).unwrap();
    w.request();
    let d = w
        .apply(Event::AgentJoined {
            handover_id: old,
            agent: eva(),
        })
        .unwrap();
    assert_eq!(d.reply, Reply::Accepted { applied: false });
    assert_eq!(w.session.state, State::Waiting);
}

#[test]
fn second_request_does_not_start_a_second_handover() {
    let mut w = World::new(bot(""));
    w.request();
    let first = w.handover_id();
    let d = w.request();
    assert!(d.effects.is_empty());
    assert_eq!(w.handover_id(), first);
}

#[test]
fn disabled_by_kill_switch_keeps_the_bot_in_control() {
    let mut w = World::new(bot("disabled: { reason: 'Incident', until: '2026-11-25T18:00:00Z' }"));
    let d = w.request();
    let Reply::Handover {
        outcome,
        state,
        reason,
        dialog,
        ..
    } = &d.reply
    else {
        panic!()
    };
    assert_eq!(
        (*outcome, *state, *reason),
        (Outcome::Disabled, State::Bot, Some(UnavailableReason::KillSwitch))
    );
    assert_eq!(dialog.name, DialogName::Disabled);
    assert!(d.effects.is_empty());
    // The switch expires by itself.
    w.now = DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z").unwrap().to_utc();
    let Reply::Handover { outcome, .. } = w.request().reply else {
        panic!()
    };
    assert_eq!(outcome, Outcome::Opened);
}

#[test]
fn closed_outside_opening_hours_states_the_next_opening() {
    let hours = "hours: { timeZone: Europe/Brussels, openingHours: 'Mo-Fr 08:30-17:30; PH off', publicHolidays: BE }\ndialogs: { en: { closed: 'We are back {nextOpening}.' } }";
    let mut w = World::new(bot(hours));
    w.now = DateTime::parse_from_rfc3339("2026-11-27T17:00:00Z").unwrap().to_utc(); // Friday 18:00 in Brussels
    let d = w.request();
    let Reply::Handover {
        outcome,
        reason,
        next_opening,
        dialog,
        ..
    } = &d.reply
    else {
        panic!()
    };
    assert_eq!(
        (*outcome, *reason),
        (Outcome::Closed, Some(UnavailableReason::OutsideHours))
    );
    assert_eq!(
        *next_opening,
        Some(DateTime::parse_from_rfc3339("2026-11-30T07:30:00Z").unwrap().to_utc())
    );
    assert_eq!(dialog.text, "We are back on Monday at 08:30.");
}

#[test]
fn closed_on_public_holiday() {
    let hours = "hours: { timeZone: Europe/Brussels, openingHours: 'Mo-Fr 08:30-17:30; PH off', publicHolidays: BE }";
    let mut w = World::new(bot(hours));
    w.now = DateTime::parse_from_rfc3339("2026-12-25T10:00:00Z").unwrap().to_utc();
    let Reply::Handover { outcome, reason, .. } = w.request().reply else {
        panic!()
    };
    assert_eq!(
        (outcome, reason),
        (Outcome::Closed, Some(UnavailableReason::PublicHoliday))
    );
}

#[test]
fn failover_to_the_next_provider_when_the_first_is_down() {
    let mut w = World::new(bot(""));
    w.conditions.unavailable_providers.insert("desk".into());
    w.request();
    assert_eq!(w.session.handover.as_ref().unwrap().provider, "backup");
    let mut w = World::new(bot(""));
    w.conditions
        .unavailable_providers
        .extend(["desk".to_owned(), "backup".to_owned()]);
    let Reply::Handover { outcome, reason, .. } = w.request().reply else {
        panic!()
    };
    assert_eq!(
        (outcome, reason),
        (Outcome::Disabled, Some(UnavailableReason::ProviderUnavailable))
    );
}

#[test]
fn language_routes_to_its_queue_and_dialog_falls_back_to_default_language() {
    let mut w = World::new(bot("dialogs: { nl: { opened: 'Even geduld.' } }"));
    let mut req = request();
    req.language = Some("nl-BE".into());
    let d = w.apply(Event::HandoverRequested(req)).unwrap();
    assert_eq!(w.session.handover.as_ref().unwrap().queue, "dutch");
    let Reply::Handover { dialog, .. } = d.reply else {
        panic!()
    };
    assert_eq!(dialog.text, "Even geduld.");
    let mut w = World::new(bot(""));
    let mut req = request();
    req.language = Some("fr".into());
    let Reply::Handover { dialog, .. } = w.apply(Event::HandoverRequested(req)).unwrap().reply else {
        panic!()
    };
    assert_eq!(
        dialog.text,
        "Please wait a couple of minutes while an agent joins this chat."
    );
}

#[test]
fn cancel_without_handover_is_rejected() {
    let mut w = World::new(bot(""));
    assert_eq!(w.apply(Event::UserCancelled), Err(Rejection::NoActiveHandover));
}

// ---- properties over random event sequences ----

#[derive(Debug, Clone)]
enum Step {
    User,
    BotTurn,
    Request,
    Cancel,
    Join,
    AgentSays,
    Typing,
    Close,
    Timer(TimerKind),
    Wait(i64),
    StaleJoin,
    ProviderFailed,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::User),
        2 => Just(Step::BotTurn),
        2 => Just(Step::Request),
        1 => Just(Step::Cancel),
        2 => Just(Step::Join),
        2 => Just(Step::AgentSays),
        1 => Just(Step::Typing),
        1 => Just(Step::Close),
        1 => prop_oneof![Just(TimerKind::NoAgent), Just(TimerKind::StillWaiting), Just(TimerKind::AgentIdle)].prop_map(Step::Timer),
        2 => (1i64..2000).prop_map(Step::Wait),
        1 => Just(Step::StaleJoin),
        1 => Just(Step::ProviderFailed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_sequences_keep_the_invariants(steps in proptest::collection::vec(step(), 1..60)) {
        let mut w = World::new(bot(""));
        let mut started_ids: Vec<String> = Vec::new();
        let mut ended: Vec<(String, EndReason)> = Vec::new();
        let mut last_seq = 0;
        for s in steps {
            let before = w.session.clone();
            let id = w.handover_id();
            let event = match s {
                Step::User => Event::Message { speaker: Speaker::User, message: Message::text("u") },
                Step::BotTurn => Event::Message { speaker: Speaker::Bot, message: Message::text("b") },
                Step::Request => Event::HandoverRequested(request()),
                Step::Cancel => Event::UserCancelled,
                Step::Join => Event::AgentJoined { handover_id: id, agent: eva() },
                Step::AgentSays => Event::AgentMessage { handover_id: id, agent: None, message: Message::text("a") },
                Step::Typing => Event::AgentTyping { handover_id: id, agent: None },
                Step::Close => Event::ConversationClosed { handover_id: id },
                Step::Timer(timer) => Event::TimerFired { handover_id: id, timer },
                Step::Wait(secs) => { w.now += Duration::seconds(secs); continue; }
                Step::StaleJoin => Event::AgentJoined { handover_id: "h-old".into(), agent: eva() },
                Step::ProviderFailed => Event::ProviderFailed { handover_id: id },
            };
            let is_user = matches!(s, Step::User);
            let Ok(d) = w.apply(event) else {
                // Only a cancel without a handover is refused, and it changes nothing.
                prop_assert!(matches!(s, Step::Cancel) && before.handover.is_none());
                prop_assert_eq!(&w.session, &before);
                continue;
            };
            // At most one active handover, and it exists exactly when the state is not bot.
            prop_assert_eq!(w.session.handover.is_some(), w.session.state != State::Bot);
            // In state agent, every user message is relayed and answered `control: agent`.
            if is_user && before.state == State::Agent {
                prop_assert_eq!(&d.reply, &Reply::Message { control: Control::Agent, state: State::Agent });
                let relayed = matches!(provider_ops(&d)[..], [ProviderOp::Mirror { .. }]);
                prop_assert!(relayed, "a user message in state agent is relayed");
            }
            if is_user && before.state == State::Bot {
                prop_assert!(d.effects.is_empty(), "nothing leaves while the bot is in control");
            }
            // Transcript seq strictly increasing, without gaps.
            for e in &d.entries {
                prop_assert_eq!(e.seq, last_seq + 1);
                last_seq = e.seq;
            }
            prop_assert_eq!(w.session.seq, last_seq);
            if let Some(start) = &d.start {
                // A start opens the handover the session now holds, with the transcript so far;
                // once recorded, the provider's conversation id is the session's.
                prop_assert_eq!(Some(&start.handover.id), w.session.handover.as_ref().map(|h| &h.id));
                prop_assert_eq!(start.through_seq, before.seq);
                let conv = w.session.handover.as_ref().and_then(|h| h.provider_conversation_id.clone());
                prop_assert_eq!(conv, Some(format!("conv-{}", start.handover.id)));
                let catch_up = provider_ops(&d).iter().any(|op| matches!(op, ProviderOp::CatchUp { .. }));
                prop_assert!(!catch_up, "a start in one step needs no catch-up");
                started_ids.push(start.handover.id.clone());
            }
            for e in &d.effects {
                if let Effect::Bot { handover_id, event: BotEvent::Ended { reason, .. }, .. } = e {
                    ended.push((handover_id.clone(), *reason));
                }
            }
        }
        // Every started handover ends at most once; all but the active one have ended, once.
        let active = w.session.handover.as_ref().map(|h| h.id.clone());
        for id in &started_ids {
            let ends = ended.iter().filter(|(h, _)| h == id).count();
            if Some(id) == active.as_ref() {
                prop_assert_eq!(ends, 0);
            } else {
                prop_assert_eq!(ends, 1, "handover {} ended {} times", id, ends);
            }
        }
        prop_assert!(ended.iter().all(|(h, _)| started_ids.contains(h)));
    }
}

#[test]
fn a_conversation_opened_for_an_earlier_decision_catches_up_on_the_turns_in_between() {
    let mut w = World::new(bot(""));
    w.user("one");
    let d = decide(
        &w.session,
        &Input::new(Event::HandoverRequested(request())),
        &w.bot,
        &w.conditions,
        w.now,
        "h-9",
    )
    .unwrap();
    assert_eq!(d.start.as_ref().unwrap().through_seq, 1);
    // The conversation was opened with the transcript through entry 0 (a decision that lost a
    // race with the turn "one"): that turn follows first.
    let opened = Opened {
        conversation_id: "h-9".into(),
        through_seq: 0,
        named_by_answer: false,
    };
    let committed = started(d, &w.bot, &opened, w.now);
    assert!(committed.start.is_none());
    assert_eq!(
        provider_ops(&committed)[..],
        [&ProviderOp::CatchUp {
            after_seq: 0,
            through_seq: 1
        }]
    );
    assert_eq!(
        committed.session.handover.as_ref().unwrap().provider_conversation_id,
        None,
        "the provider kept our id"
    );
}

#[test]
fn a_conversation_named_only_by_the_providers_answer_is_read_back_through_the_outbox() {
    let w = World::new(bot(""));
    let d = decide(
        &w.session,
        &Input::new(Event::HandoverRequested(request())),
        &w.bot,
        &w.conditions,
        w.now,
        "h-9",
    )
    .unwrap();
    let start = d.start.clone().unwrap();
    let opened = |named_by_answer| Opened {
        conversation_id: "4321".into(),
        through_seq: start.through_seq,
        named_by_answer,
    };
    let created = started(d.clone(), &w.bot, &opened(true), w.now);
    assert_eq!(
        provider_ops(&created)[..],
        [&ProviderOp::ReadBack {
            conversation_id: "4321".into()
        }],
        "what happened before the answer is read back, durably, with the commit"
    );
    assert_eq!(created.session.outbox_seq, created.effects.len() as u64);
    let known = started(d, &w.bot, &opened(false), w.now);
    assert!(
        provider_ops(&known).is_empty(),
        "an id known before the call needs no read-back"
    );
}

#[test]
fn a_provider_whose_handover_puts_an_agent_in_charge_joins_at_the_start() {
    let mut w = World::new(bot_of_kind("sparkcentral", ""));
    let d = w.request();
    assert!(bot_events(&d).is_empty(), "decide alone opens nothing");
    assert_eq!(w.session.state, State::Agent, "started records the join");
    assert_eq!(w.session.timers.no_agent_at, None);
    assert!(w.session.timers.agent_idle_at.is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For every provider kind, a recorded start leaves one handover, with the provider's
    /// conversation id, in the state its traits say, and never an effect twice.
    #[test]
    fn started_records_the_opening_for_every_provider_kind(
        kind in prop_oneof![Just("webhook"), Just("genesys"), Just("sparkcentral"), Just("engage"), Just("zendesk")],
        turns in 0u64..5,
        behind in 0u64..5,
    ) {
        let mut w = World::new(bot_of_kind(kind, ""));
        for _ in 0..turns {
            w.user("hi");
        }
        let d = decide(&w.session, &Input::new(Event::HandoverRequested(request())), &w.bot, &w.conditions, w.now, "h-1").unwrap();
        let start = d.start.clone().unwrap();
        prop_assert_eq!(start.through_seq, turns);
        let opened = Opened { conversation_id: "c-1".into(), through_seq: turns.saturating_sub(behind), named_by_answer: false };
        let committed = started(d.clone(), &w.bot, &opened, w.now);
        let traits = crate::providers::traits(w.bot.config.providers[0].kind);
        prop_assert!(committed.start.is_none());
        let h = committed.session.handover.as_ref().unwrap();
        prop_assert_eq!(h.provider_conversation_id.as_deref(), Some("c-1"));
        let expected_state = if traits.joins_at_start { State::Agent } else { State::Waiting };
        prop_assert_eq!(committed.session.state, expected_state);
        prop_assert_eq!(committed.session.timers.poll_at.is_some(), traits.poll_every_seconds.is_some());
        let is_catch_up = |op: &&&ProviderOp| matches!(op, ProviderOp::CatchUp { .. });
        let catch_ups = provider_ops(&committed).iter().filter(is_catch_up).count();
        prop_assert_eq!(catch_ups, usize::from(opened.through_seq < turns));
        // Everything decide produced is still there, in order, after what started added first.
        prop_assert_eq!(&committed.effects[catch_ups..catch_ups + d.effects.len()], &d.effects[..]);
        let is_join = |e: &&&BotEvent| matches!(e, BotEvent::AgentJoined { .. });
        let joined_events = bot_events(&committed).iter().filter(is_join).count();
        prop_assert_eq!(joined_events, usize::from(traits.joins_at_start));
        prop_assert_eq!(&committed.entries, &d.entries);
    }
}

#[test]
fn the_opened_dialog_states_the_queues_typical_wait() {
    let mut w = World::new(bot(
        "dialogs:\n  en:\n    opened: \"An agent joins in about {waitMinutes} minutes.\"\n",
    ));
    w.conditions.typical_waits.insert("general".into(), 130);
    w.conditions.typical_waits.insert("dutch".into(), 600);
    let d = w.request();
    let Reply::Handover { dialog, .. } = &d.reply else {
        panic!("{:?}", d.reply)
    };
    assert_eq!(
        dialog.text, "An agent joins in about 3 minutes.",
        "the routed queue's, rounded up"
    );
}

#[test]
fn the_providers_estimate_wins_over_our_statistics_when_still_waiting() {
    let mut w = World::new(bot(""));
    w.request();
    let id = w.handover_id();
    w.now += Duration::seconds(120);
    w.conditions.typical_wait_seconds = Some(900);
    w.conditions.provider_wait_seconds = Some(45);
    w.conditions.provider_position = Some(2);
    let d = w
        .apply(Event::TimerFired {
            handover_id: id,
            timer: TimerKind::StillWaiting,
        })
        .unwrap();
    assert!(matches!(
        bot_events(&d)[..],
        [BotEvent::Waiting {
            position: Some(2),
            estimated_wait_seconds: Some(45),
            ..
        }]
    ));
}

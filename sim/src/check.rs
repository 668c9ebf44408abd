//! The promises checked after every run, once the world has settled (an hour of the
//! evaluator's schedule without faults):
//!
//! 1. no conversation is left open at the provider under the provider's own id (a created
//!    conversation whose id the provider never gave us may stay open only if the service
//!    counted it as unresolved), nothing is ended or relayed under an id it does not know, and
//!    no create follows one of unknown outcome for the same handover;
//! 2. nobody is left waiting: every session is back with the bot, and no start intent is left;
//! 3. nothing accepted is lost: the outbox is empty but for turns the desk refused for good;
//! 4. every handover the bot was told of ends once, with a reason;
//! 5. every agent message of a transcript reaches the bot once and in order, every relayed turn
//!    reaches the desk once and in order;
//! 6. no agent event posted for a live handover is ignored (early joins are held, not dropped);
//! 7. a cancel sent while the start was in flight ends the handover as cancelled;
//! 8. prompt: on a lane no fault touched, a turn reaches the other side within
//!    [`PROMPT_BOUND_MS`] of being sent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use handover::domain::{Actor, EndReason, State};
use handover::store::{MemoryStore, OutboxStatus};

use crate::Model;
use crate::world::World;

/// How long a relayed turn may take at chat cadence, sent to received, in virtual time: the
/// handbook's "about a second" plus the models' network latencies.
pub const PROMPT_BOUND_MS: i64 = 2_000;

/// How far back a fault makes a lane "not clean" for the promptness check.
const FAULT_SHADOW_SECS: i64 = 120;

/// Every broken promise of a settled run; `transcripts` are the sessions' transcripts.
pub fn all(
    world: &World,
    store: &MemoryStore,
    transcripts: &BTreeMap<String, Vec<handover::domain::TranscriptEntry>>,
) -> Vec<String> {
    let mut v = Vec::new();
    let desk = world.desk.lock().expect("desk");
    let bot = world.bot.lock().expect("bot");
    let unresolved = world.unresolved.load(std::sync::atomic::Ordering::Relaxed);

    // 1. Nothing left open at the provider, under its own id. A conversation the provider
    //    names only in its answer may stay open when that answer was lost (a timeout after the
    //    create, or a crash before the id was recorded): the service counts each such start
    //    as unresolved and never ends anything under a guess, so those may not exceed the count.
    let mut open_created = Vec::new();
    for c in desk.conversations.values().filter(|c| c.open) {
        if world.model == Model::Created {
            open_created.push(format!("{} (handover {})", c.id, c.handover_id));
            continue;
        }
        v.push(format!(
            "conversation {} (handover {}, session {}) left open at the provider",
            c.id, c.handover_id, c.session
        ));
    }
    if open_created.len() as u64 > unresolved {
        v.push(format!(
            "{} conversations are left open at the provider, {unresolved} counted as unresolved: {}",
            open_created.len(),
            open_created.join(", ")
        ));
    }
    // An embedded conversation exists before any handover (the user's own channel): ending one
    // the desk never handed to agents is harmless. Where the desk names conversations by our
    // handover id, a start whose outcome was unknown (a 5xx, a timeout, a function that died
    // after writing its intent, whether or not it had called the desk) is ended under that id:
    // the right id either way, and a no-op when nothing was created. Our handover ids are
    // `h-` and 32 hex digits (`AppContext::handover_id_for`), which no desk conversation of another
    // model has. Any other unknown id is a wrong one.
    let own_id = matches!(world.model, Model::HandoverId | Model::Polled);
    let ours = |id: &str| id.strip_prefix("h-").is_some_and(|hex| hex.len() == 32);
    for id in desk
        .unknown_ends
        .iter()
        .filter(|id| !bot.embedded_ids.contains(*id))
        .filter(|id| !(own_id && (desk.requested.contains(*id) || ours(id))))
    {
        v.push(format!(
            "a conversation was ended under {id:?}, an id the provider does not know"
        ));
    }
    // A provider that names its conversations only in its answer is never asked to create
    //    again for a handover after a create of unknown outcome (its answer never reached the
    //    service): the second create, from a retried request or a retry within the command,
    //    would open a second conversation while the first may be with an agent. (A create
    //    whose answer came, then abandoned because the commit failed, is ended under its id;
    //    a retried request may create anew.)
    if world.model == Model::Created {
        for unknown in desk.conversations.values().filter(|c| !c.named) {
            for again in desk
                .conversations
                .values()
                .filter(|c| c.handover_id == unknown.handover_id && c.started_at > unknown.started_at)
            {
                v.push(format!(
                    "handover {} created {} after {}, a create whose answer never came",
                    unknown.handover_id, again.id, unknown.id
                ));
            }
        }
    }

    // 2. Nobody left waiting, no start left behind.
    for (s, _) in store.sessions() {
        if s.state != State::Bot {
            v.push(format!(
                "session {} is still {:?} after the run settled",
                s.session_id, s.state
            ));
        }
    }
    for (k, intent) in store.all_start_intents() {
        v.push(format!(
            "start intent of {} (handover {}) left behind",
            k.session_id, intent.handover_id
        ));
    }

    // 3. Nothing accepted lost.
    for item in store.all_outbox() {
        match item.status {
            OutboxStatus::Pending => v.push(format!(
                "outbox item {} of {} still pending after the run settled",
                item.seq, item.key.session_id
            )),
            OutboxStatus::GaveUp if !desk.refused.contains(&item.id) => v.push(format!(
                "outbox item {} of {} given up although nobody refused it: {:?}",
                item.seq, item.key.session_id, item.last_error
            )),
            OutboxStatus::GaveUp => {}
        }
    }

    // 4. Each handover ends once, with a reason.
    let mut told: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &bot.received {
        told.insert(&r.handover_id, &r.session);
    }
    for (h, o) in &bot.opened {
        told.insert(h, &o.session);
    }
    for (h, session) in told {
        match bot.ended_deliveries.get(h).copied().unwrap_or(0) {
            1 => {}
            0 => v.push(format!("handover {h} of {session} never ended for the bot")),
            n => v.push(format!("handover {h} of {session} ended {n} times for the bot")),
        }
    }

    // 5. Once and in order, both ways.
    for (s, _) in store.sessions() {
        let transcript = transcripts.get(&s.session_id).cloned().unwrap_or_default();
        let agent_texts: Vec<&str> = transcript
            .iter()
            .filter(|e| e.actor == Actor::Agent)
            .filter_map(|e| e.message.text.as_deref())
            .collect();
        let received: Vec<&str> = bot
            .received
            .iter()
            .filter(|r| r.session == s.session_id && r.kind == "agent.message")
            .filter_map(|r| r.text.as_deref())
            .collect();
        for t in &agent_texts {
            match received.iter().filter(|r| *r == t).count() {
                1 => {}
                0 => v.push(format!("agent message {t:?} of {} never reached the bot", s.session_id)),
                n => v.push(format!(
                    "agent message {t:?} of {} reached the bot {n} times",
                    s.session_id
                )),
            }
        }
        let order: Vec<&str> = received.iter().copied().filter(|r| agent_texts.contains(r)).collect();
        let expected: Vec<&str> = agent_texts.iter().copied().filter(|t| order.contains(t)).collect();
        if order != expected {
            v.push(format!(
                "agent messages of {} reached the bot out of order: {order:?}",
                s.session_id
            ));
        }
    }
    for c in desk.conversations.values() {
        for t in &c.duplicated {
            v.push(format!("turn {t:?} reached conversation {} twice", c.id));
        }
        if c.order.windows(2).any(|w| w[0] > w[1]) {
            v.push(format!(
                "turns reached conversation {} out of order: {:?}",
                c.id, c.order
            ));
        }
    }

    // 6. No agent event for a live handover lost: an event answered "ignored" while its
    //    handover was starting must have reached the bot another way (held, or read back).
    for a in desk.answers.iter().filter(|a| a.ignored) {
        let Some(c) = desk.conversations.get(&a.conversation) else {
            continue;
        };
        let Some(opened) = bot.opened.get(&c.handover_id) else {
            continue;
        };
        let closed = c.closed.as_ref().map(|(t, _)| *t);
        let ended = bot.ended.get(&c.handover_id).map(|(t, _)| *t);
        let gone = [closed, ended].into_iter().flatten().min();
        let cancelled = matches!(bot.ended.get(&c.handover_id), Some((_, EndReason::UserCancelled)));
        // A try whose commit failed is ended by the service before its request is answered,
        // and the retry opens another conversation: what happened in the ended one is not the
        // handover's (the agent saw it closed).
        let settled_try = c
            .closed
            .as_ref()
            .is_some_and(|(t, by)| *t <= opened.at && by.starts_with("ended by the service"));
        if a.sent_at > opened.at || gone.is_some_and(|g| a.sent_at >= g) || cancelled || settled_try {
            continue;
        }
        let reached = match a.kind.as_str() {
            "joined" => bot
                .received
                .iter()
                .any(|r| r.handover_id == c.handover_id && r.kind == "agent.joined"),
            "closed" => bot.ended.contains_key(&c.handover_id),
            _ => true,
        };
        if !reached {
            v.push(format!(
                "{} event {} of conversation {} was ignored while its handover {} was starting, and never reached the bot (lost)",
                a.kind, a.event_id, a.conversation, c.handover_id
            ));
        }
    }

    // 7. A cancel during the start wins. A cancel refused `no_active_handover` broke that
    //    promise only if a try of the request had asked the provider before the cancel was
    //    sent and was still unanswered when the cancel was answered: a cancel that crossed the
    //    request, or came between a failed try and its retry, found no start to cancel, and
    //    its refusal is the truth (the platform then retried a request it had not withdrawn).
    for (h, o) in bot.opened.iter().filter(|(_, o)| o.cancelled_during_start) {
        let Some(crate::models::CancelAnswer {
            sent_at,
            answered_at,
            status: answer,
            ..
        }) = bot
            .cancel_answers
            .iter()
            .find(|c| c.session == o.session && c.lifecycle == o.lifecycle)
        else {
            continue;
        };
        let request = format!("req-{}-{}", o.session, o.lifecycle);
        let tries_answered = bot.request_answers.get(&request).cloned().unwrap_or_default();
        // Two copies of a request at once share one handover and one intent: the copy that
        // fails settles the start for both, so a cancel between them can truthfully find no
        // start (the other copy then cannot commit), and the copy's own answer is not timed.
        let sent_twice = bot.requests_sent_twice.contains(&request);
        let in_flight_throughout = desk.asks.get(h).into_iter().flatten().any(|asked| {
            asked <= sent_at
                && tries_answered
                    .iter()
                    .filter(|r| *r >= asked)
                    .min()
                    .is_none_or(|r| r >= answered_at)
        });
        let promised = match answer {
            Some(200..=299) => true,
            Some(422) => in_flight_throughout && !sent_twice,
            _ => false,
        };
        if !promised {
            continue;
        }
        match bot.ended.get(h) {
            Some((_, EndReason::UserCancelled)) | None => {}
            Some((_, other)) => v.push(format!(
                "handover {h} of {} was cancelled during its start (answer {answer:?}) but ended as {}",
                o.session,
                other.as_str()
            )),
        }
    }

    // 8. Prompt on clean lanes.
    let clean = |session: &str, from: DateTime<Utc>, to: DateTime<Utc>| {
        world
            .fault_times
            .lock()
            .expect("fault times")
            .get(session)
            .is_none_or(|ts| {
                !ts.iter()
                    .any(|t| *t >= from - chrono::Duration::seconds(FAULT_SHADOW_SECS) && *t <= to)
            })
    };
    for c in desk.conversations.values() {
        for (text, (received, _)) in &c.turns {
            let Some((session, sent, during_start)) = bot.turns.get(text) else {
                continue;
            };
            let late = (*received - *sent).num_milliseconds();
            if !during_start && late > PROMPT_BOUND_MS && clean(session, *sent, *received) {
                v.push(format!(
                    "turn {text:?} of {session} reached the desk {late} ms after it was sent, on a clean lane"
                ));
            }
        }
    }
    if world.model != Model::Polled {
        for r in bot.received.iter().filter(|r| r.kind == "agent.message") {
            let Some(sent) = r.text.as_ref().and_then(|t| desk.agent_sent.get(t)) else {
                continue;
            };
            let late = (r.at - *sent).num_milliseconds();
            let held = desk.answers.iter().any(|a| a.held);
            if !held && late > PROMPT_BOUND_MS && clean(&r.session, *sent, r.at) {
                v.push(format!(
                    "agent message {:?} reached the bot of {} {late} ms after it was posted, on a clean lane",
                    r.text, r.session
                ));
            }
        }
    }
    v
}

/// Relay latencies (sent to first received) of turns on clean lanes, in milliseconds.
pub fn latencies(world: &World) -> Vec<u64> {
    let desk = world.desk.lock().expect("desk");
    let bot = world.bot.lock().expect("bot");
    let mut out = Vec::new();
    for c in desk.conversations.values() {
        for (text, (received, _)) in &c.turns {
            if let Some((_, sent, false)) = bot.turns.get(text) {
                out.push(u64::try_from((*received - *sent).num_milliseconds()).unwrap_or(0));
            }
        }
    }
    out
}

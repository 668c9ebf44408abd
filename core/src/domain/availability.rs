//! Whether a handover can be offered right now, and why not. Pure: the kill switch and opening
//! hours come from the bot's configuration, provider health and agent presence from
//! [`Conditions`] the shell gathered beforehand.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bot::Bot;
use crate::hours::ClosedReason;

use super::dialog::DialogName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    KillSwitch,
    OutsideHours,
    PublicHoliday,
    NoAgentsOnline,
    ProviderUnavailable,
}

impl UnavailableReason {
    /// Which of the three dialogs the user sees: an incident (ours or the provider's) reads
    /// as "disabled", anything about the agents' schedule or presence as "closed".
    pub fn dialog(self) -> DialogName {
        match self {
            UnavailableReason::KillSwitch | UnavailableReason::ProviderUnavailable => DialogName::Disabled,
            _ => DialogName::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnavailableReason::KillSwitch => "kill_switch",
            UnavailableReason::OutsideHours => "outside_hours",
            UnavailableReason::PublicHoliday => "public_holiday",
            UnavailableReason::NoAgentsOnline => "no_agents_online",
            UnavailableReason::ProviderUnavailable => "provider_unavailable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<UnavailableReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_change: Option<DateTime<Utc>>,
}

impl Availability {
    pub fn open(next_change: Option<DateTime<Utc>>) -> Self {
        Availability {
            open: true,
            reason: None,
            next_change,
        }
    }

    pub fn closed(reason: UnavailableReason, next_change: Option<DateTime<Utc>>) -> Self {
        Availability {
            open: false,
            reason: Some(reason),
            next_change,
        }
    }
}

/// Facts about the outside world the shell measured before calling the core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Providers whose circuit breaker is open.
    pub unavailable_providers: BTreeSet<String>,
    /// `provider/queue` pairs the provider reported as having no agent online.
    pub no_agents: BTreeSet<String>,
    /// How long users of this queue waited for an agent lately (mean, seconds), from our own
    /// time-to-join statistics; used for the "still waiting" estimate when the provider tells
    /// nothing.
    pub typical_wait_seconds: Option<u64>,
    /// The same statistics per queue, for a handover request (its queue is chosen by the
    /// core's routing): fills the `opened` dialog's `{waitMinutes}`.
    pub typical_waits: BTreeMap<String, u64>,
    /// The provider's own estimate for a waiting conversation, when it publishes one (asked
    /// before a "still waiting" nudge); wins over our statistics.
    pub provider_wait_seconds: Option<u64>,
    /// The conversation's place in the provider's queue, when the provider tells.
    pub provider_position: Option<u32>,
}

impl Conditions {
    pub fn no_agents_key(provider: &str, queue: &str) -> String {
        format!("{provider}/{queue}")
    }
}

/// The schedule and kill switch for one provider and queue, ignoring provider health.
pub fn scheduled(bot: &Bot, provider: &str, queue: &str, now: DateTime<Utc>) -> Availability {
    if let Some(ks) = &bot.config.disabled
        && ks.applies(provider, queue, now)
    {
        return Availability::closed(UnavailableReason::KillSwitch, ks.until);
    }
    match &bot.schedule {
        None => Availability::open(None),
        Some(schedule) => {
            let state = schedule.evaluate(Some(queue), now);
            if state.open {
                Availability::open(state.next_change)
            } else {
                let reason = match state.closed_reason {
                    Some(ClosedReason::PublicHoliday) => UnavailableReason::PublicHoliday,
                    _ => UnavailableReason::OutsideHours,
                };
                Availability::closed(reason, schedule.next_opening(Some(queue), now).or(state.next_change))
            }
        }
    }
}

/// Every queue a bot routes to or has hours for.
pub fn queues(bot: &Bot) -> std::collections::BTreeMap<String, String> {
    let c = &bot.config;
    let mut out = std::collections::BTreeMap::new();
    for r in &c.routing {
        out.entry(r.queue.clone()).or_insert_with(|| r.provider.clone());
    }
    if let (Some(hours), Some(first)) = (&c.hours, c.routing.first()) {
        for q in hours.queues.keys() {
            out.entry(q.clone()).or_insert_with(|| first.provider.clone());
        }
    }
    out
}

/// The schedule-and-kill-switch availability of every queue, with each queue's primary
/// provider. What the evaluator stores every minute.
pub fn snapshot(bot: &Bot, now: DateTime<Utc>) -> std::collections::BTreeMap<String, Availability> {
    queues(bot)
        .into_iter()
        .map(|(q, p)| {
            let a = scheduled(bot, &p, &q, now);
            (q, a)
        })
        .collect()
}

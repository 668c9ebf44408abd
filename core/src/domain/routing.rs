//! Which provider and queue a handover goes to: the first matching rule wins, the request may
//! name a queue or provider explicitly, and a rule's failover list gives the fall-backs.

use crate::bot::{BotConfig, RoutingRule};

use super::dialog::primary_language;
use super::handover::Trigger;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub queue: String,
    /// The primary provider first, then the failover providers, in order.
    pub candidates: Vec<String>,
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    pub trigger: Trigger,
    pub language: &'a str,
    pub channel: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub queue: Option<&'a str>,
}

fn matches(rule: &RoutingRule, q: &RouteQuery<'_>) -> bool {
    let Some(when) = &rule.when else { return true };
    when.language
        .as_deref()
        .is_none_or(|l| l.eq_ignore_ascii_case(q.language) || l.eq_ignore_ascii_case(primary_language(q.language)))
        && when.trigger.is_none_or(|t| t == q.trigger)
        && when.channel.as_deref().is_none_or(|c| Some(c) == q.channel)
        && when.queue.as_deref().is_none_or(|c| Some(c) == q.queue)
}

/// Resolves a route. An explicitly requested provider replaces the rule's candidates; an
/// explicitly requested queue replaces the rule's queue.
pub fn resolve(config: &BotConfig, q: &RouteQuery<'_>) -> Option<Route> {
    let rule = config.routing.iter().find(|r| matches(r, q))?;
    let queue = q.queue.unwrap_or(&rule.queue).to_owned();
    let candidates = match q.provider {
        Some(p) => vec![p.to_owned()],
        None => std::iter::once(rule.provider.clone())
            .chain(rule.failover.iter().cloned())
            .collect(),
    };
    Some(Route { queue, candidates })
}

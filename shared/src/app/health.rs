//! Provider health: a circuit breaker per bot and provider, kept in the table so every
//! function instance sees the same state, fed by every delivery to the provider; and agent
//! presence, asked of providers that can tell and cached briefly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::bots::LoadedBot;
use crate::domain::machine::route_for;
use crate::domain::{Conditions, HandoverRequest, Session};
use crate::providers::AgentAvailability;
use crate::store::Store;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub threshold: u32,
    /// How long an open breaker skips the provider before it is tried again.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            open_for: Duration::from_secs(60),
        }
    }
}

/// How long an agent-presence answer is reused.
pub const AGENTS_CACHE_TTL: Duration = Duration::from_secs(30);

/// Stored agent presence older than this is asked again inline.
pub const STORED_PRESENCE_MAX_AGE: chrono::Duration = chrono::Duration::minutes(2);

/// Bot, provider and queue.
type PresenceKey = (String, String, String);

/// Provider health as one function instance sees it: the breaker in the table, plus
/// in-process memory that spares writes and calls (which providers we last saw healthy, and
/// recent agent-presence answers).
pub struct Health {
    store: Arc<dyn Store>,
    pub policy: BreakerPolicy,
    healthy: Mutex<HashSet<(String, String)>>,
    agents: Mutex<HashMap<PresenceKey, (Instant, AgentAvailability)>>,
    /// Where provider errors and breaker openings are counted (the context's metric sink).
    pub metrics: Arc<dyn crate::metrics::Sink>,
}

impl Health {
    pub fn new(store: Arc<dyn Store>, policy: BreakerPolicy) -> Self {
        Health {
            store,
            policy,
            healthy: Mutex::default(),
            agents: Mutex::default(),
            metrics: Arc::new(crate::metrics::Stdout),
        }
    }

    /// Records the outcome of a call to a provider.
    pub async fn record(&self, bot_id: &str, provider_id: &str, ok: bool, now: DateTime<Utc>) {
        let key = (bot_id.to_owned(), provider_id.to_owned());
        if ok {
            // Only a provider that failed before needs its counter reset.
            if self.healthy.lock().await.contains(&key) {
                return;
            }
            if let Err(e) = self.store.record_success(bot_id, provider_id).await {
                tracing::warn!(error = %e, "could not reset provider health");
                return;
            }
            self.healthy.lock().await.insert(key);
        } else {
            self.healthy.lock().await.remove(&key);
            crate::metrics::emit(
                self.metrics.as_ref(),
                now,
                &crate::metrics::provider_failed(bot_id, provider_id),
            );
            let until = now + chrono::Duration::from_std(self.policy.open_for).unwrap_or_default();
            match self
                .store
                .record_failure(bot_id, provider_id, self.policy.threshold, until)
                .await
            {
                Ok(h) if h.is_open(now) => {
                    tracing::warn!(bot_id, provider_id, failures = h.failures, "provider circuit open");
                    crate::metrics::emit(
                        self.metrics.as_ref(),
                        now,
                        &crate::metrics::circuit_open(bot_id, provider_id),
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not record provider failure"),
            }
        }
    }

    /// What the core needs to know about the candidates of a handover request: open breakers
    /// and queues without agents. One batched read; a provider call only when the stored
    /// presence is older than two minutes.
    pub async fn conditions(
        &self,
        bot: &LoadedBot,
        session: &Session,
        req: &HandoverRequest,
        now: DateTime<Utc>,
    ) -> Conditions {
        let mut c = Conditions::default();
        let Ok((route, _)) = route_for(session, req, bot) else {
            return c;
        };
        let stored = match self.store.intake_state(&bot.config.bot_id, &route.candidates).await {
            Ok((health, stored)) => {
                c.unavailable_providers
                    .extend(health.into_iter().filter(|h| h.is_open(now)).map(|h| h.provider_id));
                stored.unwrap_or_default()
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider health unreadable; assuming healthy");
                Default::default()
            }
        };
        for provider_id in &route.candidates {
            if c.unavailable_providers.contains(provider_id) {
                continue;
            }
            let key = Conditions::no_agents_key(provider_id, &route.queue);
            let online = match stored.agents.get(&key) {
                Some(p) if now - p.checked_at <= STORED_PRESENCE_MAX_AGE => p.online,
                _ => presence(self.agents(bot, provider_id, &route.queue).await),
            };
            if online == Some(false) {
                c.no_agents.insert(key);
            }
        }
        c
    }

    /// Asks the provider whether agents are online (cached briefly in-process). `Unknown` for
    /// providers that cannot tell.
    pub async fn agents(&self, bot: &LoadedBot, provider_id: &str, queue: &str) -> AgentAvailability {
        let key = (bot.config.bot_id.clone(), provider_id.to_owned(), queue.to_owned());
        if let Some((at, a)) = self.agents.lock().await.get(&key)
            && at.elapsed() < AGENTS_CACHE_TTL
        {
            return *a;
        }
        let Ok(provider) = bot.provider(provider_id).await else {
            return AgentAvailability::Unknown;
        };
        if !provider.capabilities().agent_availability {
            return AgentAvailability::Unknown;
        }
        // Presence is advice: if the provider cannot answer, the handover is still offered.
        let a = provider.availability(queue).await.unwrap_or_else(|e| {
            tracing::warn!(provider_id, error = %e, "agent availability unknown");
            AgentAvailability::Unknown
        });
        self.agents.lock().await.insert(key, (Instant::now(), a));
        a
    }
}

/// Agent presence as stored: online, none online, or unknown.
pub fn presence(a: AgentAvailability) -> Option<bool> {
    match a {
        AgentAvailability::Online => Some(true),
        AgentAvailability::NoneOnline => Some(false),
        AgentAvailability::Unknown => None,
    }
}

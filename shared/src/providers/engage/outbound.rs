//! What we ask of Engage's REST API: read a thread, recategorise it, release the
//! interventions agents still hold, and the rules that decide the categories and whether an
//! agent is free.

use std::collections::BTreeSet;

use reqwest::Method;

use super::EngageProvider;
use super::assumed;
use super::wire::{AgentStatus, InterventionList, Thread};
use crate::delivery::DeliveryError;
use crate::providers::{AgentAvailability, path_segment};

/// The repeated parameter of `update_categories` (Rails array syntax; reqwest percent-encodes
/// the brackets, which Rails decodes).
const THREAD_CATEGORY_PARAM: &str = "thread_category_ids[]";
/// The largest page Engage lists (`limit`, default 30, max 150).
const MAX_PAGE: &str = "150";

impl EngageProvider {
    pub(super) async fn thread(&self, thread_id: &str) -> Result<Thread, DeliveryError> {
        let path = format!("/content_threads/{}", path_segment(thread_id));
        let resp = self.api.get(&path, &[]).await?;
        resp.json::<Thread>()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Engage thread {thread_id}: {e}")))
    }

    /// Sets the thread's categories to `target`, unless they already are. Parameters travel in
    /// the query string, as the OpenAPI description declares them.
    pub(super) async fn set_thread_categories(
        &self,
        thread_id: &str,
        current: &[String],
        target: &[String],
    ) -> Result<(), DeliveryError> {
        let before: BTreeSet<&str> = current.iter().map(String::as_str).collect();
        let after: BTreeSet<&str> = target.iter().map(String::as_str).collect();
        if before == after {
            return Ok(());
        }
        let path = format!("/content_threads/{}/update_categories", path_segment(thread_id));
        let query: Vec<(&str, &str)> = target.iter().map(|c| (THREAD_CATEGORY_PARAM, c.as_str())).collect();
        match self.api.call(Method::PUT, &path, &query).await {
            Err(DeliveryError::Permanent {
                status: Some(status),
                message,
            }) if assumed::is_transient_conflict(status) => Err(DeliveryError::Retryable {
                status: Some(status),
                retry_after: None,
                message,
            }),
            other => other.map(drop),
        }
    }

    /// Closes, or cancels when it has no agent reply, every intervention an agent still holds on
    /// the thread. Refusals (no permission, already closed or closing) are logged, not retried:
    /// the thread is back with the bot either way.
    pub(super) async fn release_interventions(&self, thread_id: &str) -> Result<(), DeliveryError> {
        let listed = self
            .api
            .get("/interventions", &[("thread_id", thread_id), ("limit", MAX_PAGE)])
            .await;
        let resp = match listed {
            Ok(resp) => resp,
            Err(e @ DeliveryError::Retryable { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "Engage interventions of the thread could not be listed; none closed");
                return Ok(());
            }
        };
        let list: InterventionList = resp
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("Engage interventions: {e}")))?;
        for intervention in list.records.unwrap_or_default() {
            if intervention.closed == Some(true) {
                continue;
            }
            let Some(id) = intervention.id.as_deref().filter(|id| !id.is_empty()) else {
                continue;
            };
            if intervention.user_id.as_deref().is_some_and(|u| self.is_bot_user(u)) {
                continue;
            }
            let segment = path_segment(id);
            let result = if assumed::has_agent_replies(intervention.user_replies_count) {
                self.api
                    .call(Method::PUT, &format!("/interventions/{segment}/close"), &[])
                    .await
            } else {
                self.api
                    .call(Method::DELETE, &format!("/interventions/{segment}/cancel"), &[])
                    .await
            };
            match result {
                Ok(_) => {}
                Err(e @ DeliveryError::Retryable { .. }) => return Err(e),
                Err(e) => tracing::warn!(intervention_id = id, error = %e, "Engage intervention left open"),
            }
        }
        Ok(())
    }
}

/// `current` without the categories in `remove`, plus `add` (order kept, no duplicates): the
/// categorisation of a hand-over or a hand-back, leaving the thread's other categories alone.
pub(super) fn recategorised(current: &[String], remove: &[&str], add: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(current.len() + 1);
    for c in current {
        if c != add && !remove.contains(&c.as_str()) && !out.contains(c) {
            out.push(c.clone());
        }
    }
    out.push(add.to_owned());
    out
}

/// Whether any agent other than the bot is free on a channel (the configured one, when set).
pub(super) fn availability_of(
    agents: &[AgentStatus],
    bot_users: &[String],
    channel: Option<&str>,
) -> AgentAvailability {
    let online = agents
        .iter()
        .filter(|a| !a.agent_id.as_ref().is_some_and(|id| bot_users.contains(id)))
        .flat_map(|a| a.channels.as_deref().unwrap_or_default())
        .filter(|c| channel.is_none_or(|want| c.id.as_deref() == Some(want) || c.name.as_deref() == Some(want)))
        .any(|c| assumed::free(c.status.as_deref(), c.busyness.as_deref()));
    if online {
        AgentAvailability::Online
    } else {
        AgentAvailability::NoneOnline
    }
}

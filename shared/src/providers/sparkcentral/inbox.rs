//! What Hootsuite Inbox 2.0 tells beyond the virtual-agent calls (`region: hootsuite`): agents
//! available in a queue's teams, the queue's waiting metrics, and which agent locked (took) a
//! conversation. Operations and bodies as Hootsuite's Inbox OpenAPI description gives them:
//! `POST /inbox/v1/user-presence/metrics/agent-availability` (`AgentAvailabilityRequest`:
//! `teamIds`, `userPresenceStatus`), `POST /inbox/v1/queue/metrics/contacts-waiting` and
//! `…/longest-wait-time` (`MetricRequest`: `status` required, `teamIds`), each answering
//! `NumberMetricResponse` `{value}`, and `GET /inbox/v1/queue/lock` (`LockResponse`: `locks[]`
//! of `{conversationId, userId, lockedAt}`).

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::SparkcentralProvider;
use crate::delivery::DeliveryError;
use crate::domain::Agent;
use crate::providers::{AgentAvailability, ProviderConversation, ProviderEvent, ProviderEventKind, WaitEstimate};

pub(super) const AGENT_AVAILABILITY_PATH: &str = "/inbox/v1/user-presence/metrics/agent-availability";
pub(super) const CONTACTS_WAITING_PATH: &str = "/inbox/v1/queue/metrics/contacts-waiting";
pub(super) const LONGEST_WAIT_PATH: &str = "/inbox/v1/queue/metrics/longest-wait-time";
pub(super) const LOCK_PATH: &str = "/inbox/v1/queue/lock";

/// `AgentAvailabilityRequest`: how many agents of these teams are `AVAILABLE`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AgentAvailabilityRequest<'a> {
    pub(super) team_ids: &'a [String],
    pub(super) user_presence_status: &'static str,
}

/// `MetricRequest` for conversations not yet answered (`status: NEW`), in the queue's teams
/// when it has some.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MetricRequest<'a> {
    pub(super) status: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub(super) team_ids: &'a [String],
}

/// `NumberMetricResponse`.
#[derive(Debug, Deserialize)]
pub(super) struct NumberMetric {
    #[serde(default)]
    pub(super) value: Option<i64>,
}

/// `LockResponse`.
#[derive(Debug, Deserialize)]
pub(super) struct Locks {
    #[serde(default)]
    locks: Vec<Lock>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Lock {
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

/// Online when at least one agent of the teams is available.
pub(super) fn team_availability(available: &NumberMetric) -> AgentAvailability {
    match available.value {
        Some(n) if n > 0 => AgentAvailability::Online,
        Some(_) => AgentAvailability::NoneOnline,
        None => AgentAvailability::Unknown,
    }
}

/// ASSUMPTION (the one place it is made; Hootsuite publishes no per-conversation estimate):
/// the queue's longest current wait is how long a newly handed-over contact can expect to
/// wait, and the contacts waiting are its place in the queue (it is the newest of them).
pub(super) fn estimate(waiting: &NumberMetric, longest: &NumberMetric) -> WaitEstimate {
    let positive = |m: &NumberMetric| m.value.filter(|v| *v > 0);
    WaitEstimate {
        position: positive(waiting).and_then(|v| u32::try_from(v).ok()),
        seconds: positive(longest).and_then(|v| u64::try_from(v).ok()),
    }
}

/// The join, when an agent has locked the conversation: its `userId` is the agent. One event
/// per agent, so a conversation taken over by another agent is still one join.
pub(super) fn locked_by(c: &ProviderConversation, locks: &Locks) -> Option<ProviderEvent> {
    let lock = locks
        .locks
        .iter()
        .find(|l| l.conversation_id.as_deref() == Some(c.conversation_id.as_str()))?;
    let agent = lock.user_id.clone().filter(|u| !u.is_empty())?;
    Some(ProviderEvent {
        event_id: format!("{}:lock:{agent}", c.conversation_id),
        conversation_id: c.conversation_id.clone(),
        kind: ProviderEventKind::AgentJoined {
            agent: Agent { id: agent, name: None },
        },
    })
}

impl SparkcentralProvider {
    /// A POST of a metric request whose JSON answer is read as `T`.
    async fn metric<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, DeliveryError> {
        self.client
            .json(Method::POST, path, &[], body)
            .await?
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("unreadable answer to {path}: {e}")))
    }

    /// Whether any agent of these teams is `AVAILABLE`.
    pub(super) async fn teams_available(&self, teams: &[String]) -> Result<AgentAvailability, DeliveryError> {
        let body = AgentAvailabilityRequest {
            team_ids: teams,
            user_presence_status: "AVAILABLE",
        };
        let available: NumberMetric = self.metric(AGENT_AVAILABILITY_PATH, &body).await?;
        Ok(team_availability(&available))
    }

    /// The queue metrics of conversations not yet answered, read as [`estimate`] says.
    pub(super) async fn queue_estimate(&self) -> Result<WaitEstimate, DeliveryError> {
        let body = MetricRequest {
            status: "NEW",
            team_ids: &[],
        };
        let waiting: NumberMetric = self.metric(CONTACTS_WAITING_PATH, &body).await?;
        let longest: NumberMetric = self.metric(LONGEST_WAIT_PATH, &body).await?;
        Ok(estimate(&waiting, &longest))
    }

    /// The join, once an agent holds the conversation's lock.
    pub(super) async fn lock_join(&self, c: &ProviderConversation) -> Result<Vec<ProviderEvent>, DeliveryError> {
        let locks: Locks = self
            .client
            .get(LOCK_PATH, &[])
            .await?
            .json()
            .await
            .map_err(|e| DeliveryError::retryable(format!("unreadable queue-lock answer: {e}")))?;
        Ok(locked_by(c, &locks).into_iter().collect())
    }
}

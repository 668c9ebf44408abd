//! Engage Digital's wire formats, typed and read leniently: the webhook notification
//! (`{id, domain_id, events[]}`), and the REST answers we read (`Thread`, the interventions
//! list, `AgentStatus`). Engage's events page types ids as integers while its examples show
//! strings, and metadata differs per resource type, so every scalar we read is a kit [`Scalar`]
//! and a field of an unexpected type reads as absent instead of failing the notification.

use serde::Deserialize;

pub(super) use crate::providers::kit::wire::{Lenient, Scalar, read, text};

/// The webhook notification: `{id, domain_id, events[]}`; only the events are read.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope {
    pub(super) events: Vec<WebhookEvent>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WebhookEvent {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<Lenient<String>>,
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    /// The user who triggered the event, when an agent did.
    #[serde(default)]
    pub(super) user_id: Option<Scalar>,
    #[serde(default)]
    pub(super) resource: Option<Resource>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Resource {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<Lenient<String>>,
    #[serde(default)]
    pub(super) id: Option<Scalar>,
    #[serde(default)]
    pub(super) metadata: Option<Metadata>,
}

/// The metadata fields of contents and interventions this adapter reads.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub(super) source_id: Option<Scalar>,
    #[serde(default)]
    pub(super) thread_id: Option<Scalar>,
    /// A content's creator.
    #[serde(default)]
    pub(super) creator_id: Option<Scalar>,
    /// An intervention's agent.
    #[serde(default)]
    pub(super) user_id: Option<Scalar>,
    #[serde(default)]
    pub(super) body: Option<Scalar>,
    /// `text` or `html`.
    #[serde(default)]
    pub(super) body_input_format: Option<Scalar>,
    #[serde(default)]
    pub(super) has_attachment: Option<Lenient<bool>>,
    /// A content's `approval_required`: the reply waits for a supervisor's approval before
    /// Engage publishes it.
    #[serde(default)]
    pub(super) approval_required: Option<Lenient<bool>>,
}

/// The thread fields used here (`Thread` in the OpenAPI description).
#[derive(Debug, Deserialize)]
pub(super) struct Thread {
    #[serde(default)]
    pub(super) source_id: Option<String>,
    #[serde(default)]
    pub(super) closed: Option<bool>,
    #[serde(default)]
    pub(super) thread_category_ids: Option<Vec<String>>,
}

/// `GET /1.0/interventions`: one page of records.
#[derive(Debug, Deserialize)]
pub(super) struct InterventionList {
    #[serde(default)]
    pub(super) records: Option<Vec<InterventionRecord>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct InterventionRecord {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) closed: Option<bool>,
    #[serde(default)]
    pub(super) user_id: Option<String>,
    #[serde(default)]
    pub(super) user_replies_count: Option<u64>,
}

/// One entry of `GET /1.0/status` (`AgentStatus`).
#[derive(Debug, Deserialize)]
pub(super) struct AgentStatus {
    #[serde(default)]
    pub(super) agent_id: Option<String>,
    #[serde(default)]
    pub(super) channels: Option<Vec<AgentChannel>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AgentChannel {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) busyness: Option<String>,
}

//! The provider entry's fields of a `kind: zendesk` provider.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::providers::kit::wire::IdSetting;

/// Provider entry fields of a `kind: zendesk` provider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Settings {
    #[serde(default)]
    pub(super) app_id: Option<String>,
    /// Zendesk subdomain: the API host becomes `https://{subdomain}.zendesk.com/sc`.
    #[serde(default)]
    pub(super) subdomain: Option<String>,
    /// Overrides the host derived from `subdomain` (legacy SunCo hosts `https://api.smooch.io`,
    /// `https://api.eu-1.smooch.io`, or a test server).
    #[serde(default)]
    pub(super) api_base_url: Option<String>,
    /// The Support API host for agent availability (`https://{subdomain}.zendesk.com` by
    /// default); only used when the secret has Support API credentials.
    #[serde(default)]
    pub(super) support_base_url: Option<String>,
    /// Switchboard integration that receives control at the handover: id, name or type.
    #[serde(default)]
    pub(super) agent_workspace_integration_id: Option<String>,
    /// Switchboard integration that gets control back at the end; none → `releaseControl`.
    #[serde(default)]
    pub(super) bot_integration_id: Option<String>,
    /// `message.source.type` values that mark a message as a human agent's (see
    /// `ZendeskProvider::agent_of`); default [`DEFAULT_AGENT_SOURCE_TYPES`].
    #[serde(default)]
    pub(super) agent_source_types: Option<Vec<String>>,
    /// What to write into which Zendesk ticket field: `{ "<what>": <ticket field id> }`. Zendesk
    /// field ids are numbers; written quoted or not.
    #[serde(default)]
    pub(super) ticket_fields: BTreeMap<String, IdSetting>,
}

/// The source type of Agent Workspace replies, as public integrations recognise them: the
/// assumption `agentSourceTypes` replaces.
pub(super) const DEFAULT_AGENT_SOURCE_TYPES: &[&str] = &["zd:agentWorkspace"];

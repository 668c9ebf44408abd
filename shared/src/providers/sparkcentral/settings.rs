//! The provider entry's fields of a `kind: sparkcentral` provider, as the bot document
//! writes them; `SparkcentralProvider::new` checks them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::providers::kit::wire::IdSetting;

/// Provider entry fields of a `kind: sparkcentral` provider.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Settings {
    /// `us` or `eu` (Sparkcentral), `hootsuite` (Hootsuite Inbox 2.0).
    #[serde(default)]
    pub(super) region: Option<String>,
    /// Overrides the region's host (tests, proxies); the region still decides the API paths.
    #[serde(default)]
    pub(super) api_base_url: Option<String>,
    /// The Hootsuite organization linked to the app (required with `region: hootsuite`).
    #[serde(default)]
    pub(super) organization_id: Option<IdSetting>,
    /// Queue name → Sparkcentral topic name(s) applied at the handover.
    #[serde(default)]
    pub(super) queue_topics: BTreeMap<String, Topics>,
    /// Text the virtual agent sends the contact together with the handover.
    #[serde(default)]
    pub(super) handover_message: Option<String>,
    /// Ask Hootsuite Inbox whether any agent is available before offering a handover.
    #[serde(default)]
    pub(super) check_online_agents: bool,
    #[serde(default)]
    pub(super) max_event_age_seconds: Option<u64>,
    /// Queue name → Hootsuite Inbox team id(s) whose agents serve it: availability is asked
    /// for those teams only.
    #[serde(default)]
    pub(super) queue_teams: BTreeMap<String, Topics>,
    /// Hootsuite Inbox: the join is the agent locking the conversation (`GET /inbox/v1/queue/lock`,
    /// polled), not the handover call itself.
    #[serde(default)]
    pub(super) join_from_lock: bool,
}

/// One name (a topic, a team id) or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Topics {
    One(String),
    Many(Vec<String>),
}

impl Topics {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Topics::One(t) => vec![t],
            Topics::Many(ts) => ts,
        }
    }
}

//! The provider entry's fields of a `kind: intercom` provider, and the regional API hosts.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{AU_API, EU_API, US_API};
use crate::providers::kit::wire::IdSetting;

/// The provider entry's settings (`providers[]` fields besides id, kind and secretRef).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Settings {
    /// `us` (default), `eu` or `au`.
    #[serde(default)]
    pub(super) region: Option<String>,
    /// Overrides the regional host (tests, proxies).
    #[serde(default)]
    pub(super) api_base_url: Option<String>,
    #[serde(default)]
    pub(super) api_version: Option<String>,
    /// The Intercom admin (teammate) id the bot acts as.
    #[serde(default)]
    pub(super) bot_admin_id: Option<IdSetting>,
    /// Queue name → Intercom team id.
    #[serde(default)]
    pub(super) teams: BTreeMap<String, IdSetting>,
    /// Team for queues not listed in `teams`.
    #[serde(default)]
    pub(super) default_team_id: Option<IdSetting>,
    /// Prepended to the bot platform's user id to form the Intercom `external_id`.
    #[serde(default)]
    pub(super) external_id_prefix: Option<String>,
    /// Report "no agent online" when every teammate of the team is in away mode.
    #[serde(default = "default_true")]
    pub(super) check_away_mode: bool,
    /// The workspace (`app_id` of notifications) to listen to, when the app is installed in
    /// several; notifications of other workspaces are ignored.
    #[serde(default)]
    pub(super) workspace_id: Option<IdSetting>,
}

fn default_true() -> bool {
    true
}

/// The API host of a region (`us` when none is set).
pub(super) fn region_base(region: Option<&str>) -> Option<&'static str> {
    match region.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "us") => Some(US_API),
        Some("eu") => Some(EU_API),
        Some("au") => Some(AU_API),
        Some(_) => None,
    }
}

//! The provider entry's fields of a `kind: engage` provider, and where its API is.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{API_PREFIX, DEFAULT_API_HOST_SUFFIX};
use crate::providers::kit::settings::non_empty;

/// One id or several (`botUserId: abc` or `botUserId: [abc, def]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The ids, blanks dropped.
    pub(super) fn ids(this: Option<Self>) -> Vec<String> {
        match this {
            None => Vec::new(),
            Some(OneOrMany::One(id)) => vec![id],
            Some(OneOrMany::Many(ids)) => ids,
        }
        .into_iter()
        .filter_map(|id| non_empty(Some(id)))
        .collect()
    }
}

/// The provider entry's Engage fields. Optional here so that a missing one is reported with its
/// name; unknown keys are refused so that a misspelt optional setting is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct EngageSettings {
    #[serde(default)]
    pub(super) domain: Option<String>,
    #[serde(default)]
    pub(super) api_base_url: Option<String>,
    #[serde(default)]
    pub(super) agent_category_id: Option<String>,
    #[serde(default)]
    pub(super) bot_category_id: Option<String>,
    #[serde(default)]
    pub(super) queue_categories: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) bot_user_id: Option<OneOrMany>,
    #[serde(default)]
    pub(super) source_id: Option<String>,
    #[serde(default)]
    pub(super) channel: Option<String>,
    #[serde(default)]
    pub(super) agent_name: Option<String>,
}

/// The API base URL: `apiBaseUrl` as given (a trailing `/1.0` is dropped), else from `domain`:
/// an account name (`acme` → `https://acme.api.engagement.dimelo.com`) or a full API host
/// (`acme.api.digital.ringcentral.com`).
pub(super) fn api_base(api_base_url: Option<String>, domain: Option<String>) -> Result<String, String> {
    if let Some(url) = non_empty(api_base_url) {
        let url = url.trim_end_matches('/');
        let url = url.strip_suffix(API_PREFIX).unwrap_or(url).trim_end_matches('/');
        return Ok(url.to_owned());
    }
    let Some(domain) = non_empty(domain) else {
        return Err("is required for an engage provider (or set apiBaseUrl)".into());
    };
    let d = domain.to_ascii_lowercase();
    let d = d.strip_prefix("https://").unwrap_or(&d).trim_end_matches('/');
    if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err(format!("{domain:?} is not an Engage account name or API host"));
    }
    if d.contains('.') {
        Ok(format!("https://{d}"))
    } else {
        Ok(format!("https://{d}.{DEFAULT_API_HOST_SUFFIX}"))
    }
}

//! The bot document's shape (what an operator writes, as plain data) and the compiled [`Bot`]
//! the core decides on. Reading and validating a document is the shell's (`handover::config`):
//! it checks URLs under the process's policy and asks each provider's adapter about its
//! settings, which the core must not know.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::handover::Trigger;
use crate::hours::{HoursConfig, Schedule};

/// Largest document accepted, a guard against accidental uploads of the wrong file.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BotConfig {
    pub bot_id: String,
    #[serde(default = "default_language")]
    pub default_language: String,
    pub platform: PlatformConfig,
    pub providers: Vec<ProviderConfig>,
    pub routing: Vec<RoutingRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HoursConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<KillSwitch>,
    #[serde(default)]
    pub dialogs: BTreeMap<String, DialogTexts>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
}

impl BotConfig {
    /// The provider entry with this id.
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

fn default_language() -> String {
    "en".to_owned()
}

fn default_retention_days() -> u32 {
    30
}

/// The bot platforms. `PlatformKind::iter()` (strum) lists every kind, so the platform registry
/// (`platform::port`) and its tests reach each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    Native,
    Chatlayer,
}

/// When a Chatlayer bot is paused: the seed wants the bot active until an agent joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseAt {
    AtAgentJoin,
    AtOffload,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformConfig {
    pub kind: PlatformKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_url: Option<String>,
    /// Secrets Manager name or ARN; the document never holds secret values.
    pub secret_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_at: Option<PauseAt>,
    /// Chatlayer only: the body of the conversation-actions call that pauses the bot. Chatlayer
    /// does not publish this request, so it is configuration, not code (docs/chatlayer.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_action: Option<serde_json::Value>,
    /// Chatlayer only: the body of the conversation-actions call that resumes the bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_action: Option<serde_json::Value>,
}

impl PlatformConfig {
    /// When the bot is paused: at the agent's join once a pause call is configured (what the
    /// seed asks: the bot stays active while the user waits), else at the offload, which is
    /// Chatlayer's documented behaviour.
    pub fn pause_at(&self) -> PauseAt {
        self.pause_at.unwrap_or(if self.pause_action.is_some() {
            PauseAt::AtAgentJoin
        } else {
            PauseAt::AtOffload
        })
    }
}

/// The live-chat providers. `ProviderKind::iter()` (strum) lists every kind, so tests can check
/// that each has its adapter's registration and a conformance backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Webhook,
    Zendesk,
    Intercom,
    Genesys,
    Helpscout,
    Engage,
    Sparkcentral,
    Interact,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Webhook => "webhook",
            ProviderKind::Zendesk => "zendesk",
            ProviderKind::Intercom => "intercom",
            ProviderKind::Genesys => "genesys",
            ProviderKind::Helpscout => "helpscout",
            ProviderKind::Engage => "engage",
            ProviderKind::Sparkcentral => "sparkcentral",
            ProviderKind::Interact => "interact",
        }
    }
}

/// One live-chat provider of the bot. Settings specific to a provider kind stay in `settings`
/// and are parsed by that provider's adapter, so adding a provider never changes this type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    pub id: String,
    pub kind: ProviderKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Optional endpoint answering whether agents are online (generic webhook provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_url: Option<String>,
    pub secret_ref: String,
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Conditions of a routing rule; every condition given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteWhen {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<RouteWhen>,
    pub provider: String,
    pub queue: String,
    /// Providers tried in order when the first is unavailable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<String>,
}

impl RoutingRule {
    /// A rule without conditions (no `when`, or an empty one) matches every request.
    pub fn is_default(&self) -> bool {
        self.when.as_ref().is_none_or(|w| *w == RouteWhen::default())
    }
}

/// The kill switch. Empty `providers`/`queues` mean everything is disabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KillSwitch {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
}

impl KillSwitch {
    /// Whether it is in force for this provider and queue at `now` (it expires by itself).
    pub fn applies(&self, provider: &str, queue: &str, now: DateTime<Utc>) -> bool {
        let current = self.until.is_none_or(|until| now < until);
        let provider_ok = self.providers.is_empty() || self.providers.iter().any(|p| p == provider);
        let queue_ok = self.queues.is_empty() || self.queues.iter().any(|q| q == queue);
        current && provider_ok && queue_ok
    }
}

/// Dialog texts of one language; missing texts fall back to the default language, then to
/// built-in English.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogTexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_waiting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_joined: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_to_bot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_agent_ticket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// Give up waiting for an agent after this long.
    #[serde(default = "default_no_agent")]
    pub no_agent_seconds: u64,
    /// Send `handover.waiting` this often while waiting; 0 turns it off.
    #[serde(default = "default_still_waiting")]
    pub still_waiting_every_seconds: u64,
    /// End the handover when the agent has been silent this long.
    #[serde(default = "default_agent_idle")]
    pub agent_idle_seconds: u64,
    /// What happens when nobody picked up in time.
    #[serde(default)]
    pub no_agent_fallback: NoAgentFallback,
}

/// The no-agent timeout's fallback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAgentFallback {
    /// End the provider conversation and give the user back to the bot.
    #[default]
    ReturnToBot,
    /// Leave the conversation at the provider as a ticket an agent answers later, tell the user
    /// so (dialog `noAgentTicket`), and give the user back to the bot.
    Ticket,
}

fn default_no_agent() -> u64 {
    600
}
fn default_still_waiting() -> u64 {
    120
}
fn default_agent_idle() -> u64 {
    1800
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            no_agent_seconds: default_no_agent(),
            still_waiting_every_seconds: default_still_waiting(),
            agent_idle_seconds: default_agent_idle(),
            no_agent_fallback: NoAgentFallback::default(),
        }
    }
}

/// One problem in a configuration document, with the path of the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("configuration is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge,
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
}

/// Identifiers end up in DynamoDB keys and URLs, so they are kept to a safe alphabet.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A URL as it may be shown: everything from `?` or `#` on removed.
pub fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A validated configuration with its opening hours compiled, ready for the core.
#[derive(Clone)]
pub struct Bot {
    pub config: BotConfig,
    pub schedule: Option<Schedule>,
    /// What the core must know about each provider's model, by provider id.
    traits: BTreeMap<String, ProviderTraits>,
}

/// The longest any timeout may be: 30 days.
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

/// How a provider's model differs from the common one, where the core must adapt its
/// decisions. A value per provider kind (the shell's `providers::traits`), read by `domain::decide` from
/// the bot, so the shell never edits a decision to account for a provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderTraits {
    /// The provider's webhooks do not report joins and closes: the evaluator asks it on a poll
    /// timer armed when the handover opens and re-armed after each poll (Genesys).
    pub poll_every_seconds: Option<u64>,
    /// The handover itself puts an agent in charge and no join is ever reported
    /// (Sparkcentral): the start counts as the join.
    pub joins_at_start: bool,
    /// Closing at the provider leaves the conversation routed to agents (Engage Digital's
    /// categories): after an agent close the provider is still told to hand back.
    pub hands_back_after_agent_close: bool,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// Compiles a document the shell has validated (`handover::config::Compile::new` is the
    /// one caller outside tests): its opening hours parsed, each provider's traits taken from
    /// `traits_of`, which the shell answers from the provider adapters.
    pub fn compile(
        config: BotConfig,
        traits_of: impl Fn(&ProviderConfig) -> ProviderTraits,
    ) -> Result<Bot, ConfigError> {
        let schedule = match &config.hours {
            Some(h) => Some(Schedule::compile(h).map_err(|e| {
                ConfigError::Invalid(vec![FieldError {
                    path: "hours".into(),
                    message: e.to_string(),
                }])
            })?),
            None => None,
        };
        let traits = config.providers.iter().map(|p| (p.id.clone(), traits_of(p))).collect();
        Ok(Bot {
            config,
            schedule,
            traits,
        })
    }

    /// The traits of one of the bot's providers (the common model for an unknown id).
    pub fn traits(&self, provider_id: &str) -> ProviderTraits {
        self.traits.get(provider_id).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_switch_can_target_a_provider_or_a_queue() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z").unwrap().to_utc();
        let ks = |providers: &[&str], queues: &[&str]| KillSwitch {
            reason: "incident".into(),
            until: None,
            providers: providers.iter().map(|s| s.to_string()).collect(),
            queues: queues.iter().map(|s| s.to_string()).collect(),
        };
        assert!(ks(&[], &[]).applies("desk", "general", now), "everything when unscoped");
        assert!(ks(&["desk"], &[]).applies("desk", "general", now));
        assert!(!ks(&["desk"], &[]).applies("backup", "general", now));
        assert!(ks(&[], &["dutch"]).applies("desk", "dutch", now));
        assert!(!ks(&[], &["dutch"]).applies("desk", "general", now));
    }

    #[test]
    fn kill_switch_expires_by_itself() {
        let until = DateTime::parse_from_rfc3339("2026-11-25T18:00:00Z").unwrap().to_utc();
        let ks = KillSwitch {
            reason: "incident".into(),
            until: Some(until),
            providers: vec![],
            queues: vec![],
        };
        assert!(ks.applies("desk", "general", until - chrono::Duration::seconds(1)));
        assert!(!ks.applies("desk", "general", until));
    }
}

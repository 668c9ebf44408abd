//! The bot configuration document: what an operator writes (YAML or JSON), validated with errors
//! that name the offending field, and compiled once into a [`Bot`] the core can use directly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::handover::Trigger;
use crate::hours::{HoursConfig, Schedule};
use crate::url_policy::UrlPolicy;

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

fn default_language() -> String {
    "en".to_owned()
}

fn default_retention_days() -> u32 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

impl BotConfig {
    /// Parses YAML or JSON (JSON is YAML) and validates it under this process's URL policy.
    pub fn parse(text: &str) -> Result<BotConfig, ConfigError> {
        Self::parse_under(text, UrlPolicy::current())
    }

    /// [`BotConfig::parse`] with the core URLs checked under `policy` (provider settings are
    /// checked by their adapters under this process's policy).
    pub fn parse_under(text: &str, policy: UrlPolicy) -> Result<BotConfig, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge);
        }
        let config: BotConfig = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut errors = match config.validate_under(policy) {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid(errors)) => errors,
            Err(other) => return Err(other),
        };
        errors.extend(config.provider_setting_errors());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    /// Each provider entry's provider-specific settings, checked by its adapter as it would be
    /// built at run time (without the secret). Only a document being stored pays for this; a
    /// stored bot is loaded with [`BotConfig::validate`] alone.
    pub fn provider_setting_errors(&self) -> Vec<FieldError> {
        self.providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                crate::providers::check_settings(p).err().map(|e| FieldError {
                    path: if e.path.is_empty() {
                        format!("providers[{i}]")
                    } else {
                        format!("providers[{i}].{}", e.path)
                    },
                    message: e.message,
                })
            })
            .collect()
    }

    /// Checks everything serde cannot: references between sections, URLs, identifiers, ranges.
    /// URLs follow this process's policy ([`crate::url_policy`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_under(UrlPolicy::current())
    }

    /// [`BotConfig::validate`] with the URLs checked under `policy`.
    pub fn validate_under(&self, policy: UrlPolicy) -> Result<(), ConfigError> {
        let check_url = |url: &str| check_url(url, policy);
        let mut errors = Vec::new();
        let mut err = |path: String, message: String| errors.push(FieldError { path, message });

        if !is_identifier(&self.bot_id) {
            err(
                "botId".into(),
                format!(
                    "{:?} must be 1-64 characters of letters, digits, '-', '_' or '.'",
                    self.bot_id
                ),
            );
        }
        if self.default_language.trim().is_empty() {
            err("defaultLanguage".into(), "must not be empty".into());
        }
        if self.platform.secret_ref.trim().is_empty() {
            err("platform.secretRef".into(), "must name a Secrets Manager secret".into());
        }
        match (&self.platform.kind, &self.platform.outbound_url) {
            (PlatformKind::Native, None) => err(
                "platform.outboundUrl".into(),
                "is required for a native bot platform".into(),
            ),
            (_, Some(url)) => {
                if let Err(m) = check_url(url) {
                    err("platform.outboundUrl".into(), m);
                }
            }
            _ => {}
        }
        if let Some(url) = &self.platform.api_base_url
            && let Err(m) = check_url(url)
        {
            err("platform.apiBaseUrl".into(), m);
        }
        if self.platform.pause_at == Some(PauseAt::AtAgentJoin) && self.platform.pause_action.is_none() {
            err(
                "platform.pauseAction".into(),
                "is required when pauseAt is at_agent_join".into(),
            );
        }
        // A bot paused at a handover must be resumed when it ends, or it stays silent for good.
        if self.platform.pause_action.is_some() && self.platform.resume_action.is_none() {
            err(
                "platform.resumeAction".into(),
                "is required when pauseAction is set (the bot would stay paused after every handover)".into(),
            );
        }
        for (field, value) in [
            ("pauseAction", &self.platform.pause_action),
            ("resumeAction", &self.platform.resume_action),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                err(
                    format!("platform.{field}"),
                    "must be a JSON object (the body of the actions call)".into(),
                );
            }
        }

        let mut ids = BTreeSet::new();
        if self.providers.is_empty() {
            err("providers".into(), "at least one provider is required".into());
        }
        for (i, p) in self.providers.iter().enumerate() {
            if !is_identifier(&p.id) {
                err(
                    format!("providers[{i}].id"),
                    format!("{:?} must be 1-64 characters of letters, digits, '-', '_' or '.'", p.id),
                );
            }
            if !ids.insert(p.id.as_str()) {
                err(
                    format!("providers[{i}].id"),
                    format!("duplicate provider id {:?}", p.id),
                );
            }
            if p.secret_ref.trim().is_empty() {
                err(
                    format!("providers[{i}].secretRef"),
                    "must name a Secrets Manager secret".into(),
                );
            }
            if p.kind == ProviderKind::Webhook && p.url.is_none() {
                err(
                    format!("providers[{i}].url"),
                    "is required for a webhook provider".into(),
                );
            }
            for (field, value) in [("url", &p.url), ("availabilityUrl", &p.availability_url)] {
                if let Some(url) = value
                    && let Err(m) = check_url(url)
                {
                    err(format!("providers[{i}].{field}"), m);
                }
            }
        }

        if self.routing.is_empty() {
            err("routing".into(), "at least one rule is required".into());
        } else if !self.routing.iter().any(RoutingRule::is_default) {
            err("routing".into(), "no default rule (a rule without `when`)".into());
        }
        for (i, r) in self.routing.iter().enumerate() {
            if !ids.contains(r.provider.as_str()) {
                err(
                    format!("routing[{i}].provider"),
                    format!("unknown provider {:?}", r.provider),
                );
            }
            for (j, f) in r.failover.iter().enumerate() {
                if !ids.contains(f.as_str()) {
                    err(
                        format!("routing[{i}].failover[{j}]"),
                        format!("unknown provider {:?}", f),
                    );
                }
            }
            if r.queue.trim().is_empty() {
                err(format!("routing[{i}].queue"), "must not be empty".into());
            }
        }

        if let Some(hours) = &self.hours
            && let Err(e) = Schedule::compile(hours)
        {
            err("hours".into(), e.to_string());
        }
        if let Some(ks) = &self.disabled {
            for (j, p) in ks.providers.iter().enumerate() {
                if !ids.contains(p.as_str()) {
                    err(format!("disabled.providers[{j}]"), format!("unknown provider {:?}", p));
                }
            }
        }
        // Timers are added to the clock: bounded here, the arithmetic can never overflow.
        for (field, value, min) in [
            ("timeouts.noAgentSeconds", self.timeouts.no_agent_seconds, 1),
            ("timeouts.agentIdleSeconds", self.timeouts.agent_idle_seconds, 1),
            (
                "timeouts.stillWaitingEverySeconds",
                self.timeouts.still_waiting_every_seconds,
                0,
            ),
        ] {
            if !(min..=MAX_TIMEOUT_SECONDS).contains(&value) {
                err(
                    field.into(),
                    format!("must be between {min} and {MAX_TIMEOUT_SECONDS} (30 days)"),
                );
            }
        }
        if !(1..=3650).contains(&self.retention_days) {
            err("retentionDays".into(), "must be between 1 and 3650".into());
        } else {
            // A waiting session must outlive its timers: expired, it takes them with it.
            let longest = self.timeouts.no_agent_seconds.max(self.timeouts.agent_idle_seconds);
            if u64::from(self.retention_days) * 86_400 < longest {
                err(
                    "retentionDays".into(),
                    format!(
                        "{} days is shorter than the longest timeout ({longest} s); raise it to at least {}",
                        self.retention_days,
                        longest.div_ceil(86_400)
                    ),
                );
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }
}

/// Identifiers end up in DynamoDB keys and URLs, so they are kept to a safe alphabet.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A configured URL under the one URL policy; the message names the URL without its query
/// (a `?key=` must not reach the output).
fn check_url(url: &str, policy: UrlPolicy) -> Result<(), String> {
    crate::url_policy::check(url, policy)
        .map(|_| ())
        .map_err(|why| format!("{:?} {why}", without_query(url)))
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
    traits: std::collections::BTreeMap<String, ProviderTraits>,
}

/// The longest any timeout may be: 30 days.
pub const MAX_TIMEOUT_SECONDS: u64 = 30 * 24 * 3600;

/// How a provider's model differs from the common one, where the core must adapt its
/// decisions. A value per provider kind (`providers::traits`), read by `domain::decide` from
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
    pub fn new(config: BotConfig) -> Result<Bot, ConfigError> {
        config.validate()?;
        let schedule = match &config.hours {
            Some(h) => Some(Schedule::compile(h).map_err(|e| {
                ConfigError::Invalid(vec![FieldError {
                    path: "hours".into(),
                    message: e.to_string(),
                }])
            })?),
            None => None,
        };
        let traits = config
            .providers
            .iter()
            .map(|p| (p.id.clone(), crate::providers::entry_traits(p)))
            .collect();
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

/// The secret references of a bot document whose secret has a blank field, each named by the
/// reference's path (`platform.secretRef`, `providers[1].secretRef`). A secret that cannot be
/// read is not reported here: it may be created after the bot; the bot answers 503 until then.
pub async fn blank_secret_errors(config: &BotConfig, source: &dyn crate::secrets::SecretSource) -> Vec<FieldError> {
    let refs = std::iter::once(("platform.secretRef".to_owned(), &config.platform.secret_ref)).chain(
        config
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("providers[{i}].secretRef"), &p.secret_ref)),
    );
    let mut errors = Vec::new();
    for (path, name) in refs {
        if let Ok(secret) = source.get(name).await {
            for field in secret.blank_fields() {
                errors.push(FieldError {
                    path: path.clone(),
                    message: format!("secret {name:?} has an empty field {field:?}"),
                });
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
botId: acme-support
defaultLanguage: en
platform:
  kind: native
  outboundUrl: https://bot.example.com/handover-events
  secretRef: handover/acme-support/platform
providers:
  - id: desk
    kind: webhook
    url: https://contact-center.example.com/handover
    secretRef: handover/acme-support/desk
routing:
  - when: { language: nl }
    provider: desk
    queue: dutch
  - provider: desk
    queue: general
hours:
  timeZone: Europe/Brussels
  openingHours: "Mo-Fr 08:30-12:00,13:00-17:30; Sa 09:00-12:00; PH off"
  publicHolidays: BE
dialogs:
  en:
    closed: "We are back {nextOpening}."
timeouts: { noAgentSeconds: 600, stillWaitingEverySeconds: 120, agentIdleSeconds: 1800 }
retentionDays: 30
"#;

    #[test]
    fn design_example_is_valid() {
        let c = BotConfig::parse(EXAMPLE).unwrap();
        assert_eq!(c.bot_id, "acme-support");
        assert_eq!(c.routing[0].when.as_ref().unwrap().language.as_deref(), Some("nl"));
        assert!(Bot::new(c).unwrap().schedule.is_some());
    }

    #[test]
    fn unknown_routing_provider_is_named_with_its_path() {
        let text = EXAMPLE.replace(
            "  - provider: desk\n    queue: general",
            "  - provider: desk2\n    queue: general",
        );
        let err = BotConfig::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains(r#"routing[1].provider: unknown provider "desk2""#),
            "{err}"
        );
    }

    #[test]
    fn missing_field_is_named() {
        let text = EXAMPLE.replace("    secretRef: handover/acme-support/desk\n", "");
        let err = BotConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("providers[0]") && err.contains("secretRef"), "{err}");
    }

    #[test]
    fn bad_time_zone_is_reported_under_hours() {
        let text = EXAMPLE.replace("Europe/Brussels", "Europe/Brusels");
        let err = BotConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("hours:") && err.contains("Europe/Brusels"), "{err}");
    }

    #[test]
    fn a_misspelt_top_level_field_is_an_error() {
        let text = EXAMPLE.replace("retentionDays: 30", "retentionDay: 30");
        let err = BotConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("retentionDay"), "{err}");
    }

    #[test]
    fn an_empty_when_is_a_default_rule() {
        let text = EXAMPLE.replace(
            "  - provider: desk\n    queue: general",
            "  - when: {}\n    provider: desk\n    queue: general",
        );
        assert!(BotConfig::parse(&text).is_ok());
    }

    fn errors_of(text: &str, policy: UrlPolicy) -> Vec<FieldError> {
        match BotConfig::parse_under(text, policy) {
            Err(ConfigError::Invalid(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn every_configured_url_follows_the_url_policy() {
        assert!(BotConfig::parse_under(EXAMPLE, UrlPolicy::Deployed).is_ok());
        let text = EXAMPLE.replace(
            "https://bot.example.com/handover-events",
            "http://169.254.169.254/latest/meta-data/iam?key=k9",
        );
        for policy in [UrlPolicy::Deployed, UrlPolicy::Local] {
            let errors = errors_of(&text, policy);
            assert_eq!(errors[0].path, "platform.outboundUrl", "{errors:?}");
            assert!(errors[0].message.contains("link-local"), "{errors:?}");
            assert!(
                !errors[0].message.contains("k9"),
                "the query is not repeated: {errors:?}"
            );
        }
        let text = EXAMPLE.replace(
            "https://contact-center.example.com/handover",
            "http://contact-center.example.com/handover",
        );
        let errors = errors_of(&text, UrlPolicy::Deployed);
        assert_eq!(errors[0].path, "providers[0].url", "{errors:?}");
        assert!(errors[0].message.contains("https"), "{errors:?}");
        assert!(
            BotConfig::parse_under(&text, UrlPolicy::Local).is_ok(),
            "http for the local server"
        );
        let text = EXAMPLE.replace(
            "https://contact-center.example.com/handover",
            "https://127.0.0.1:8443/handover",
        );
        assert_eq!(errors_of(&text, UrlPolicy::Deployed)[0].path, "providers[0].url");
    }

    #[test]
    fn a_pause_without_a_resume_is_refused() {
        let text = EXAMPLE.replace(
            "  kind: native\n  outboundUrl: https://bot.example.com/handover-events\n",
            "  kind: chatlayer\n  pauseAction: { action: pause }\n",
        );
        let errors = errors_of(&text, UrlPolicy::Local);
        assert!(errors.iter().any(|e| e.path == "platform.resumeAction"), "{errors:?}");
        let text = text.replace(
            "pauseAction: { action: pause }",
            "pauseAction: { action: pause }\n  resumeAction: { action: resume }",
        );
        assert!(BotConfig::parse(&text).is_ok());
    }

    #[test]
    fn retention_shorter_than_a_timeout_is_refused() {
        let text = EXAMPLE
            .replace("agentIdleSeconds: 1800", "agentIdleSeconds: 259200")
            .replace("retentionDays: 30", "retentionDays: 2");
        let errors = errors_of(&text, UrlPolicy::Local);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "retentionDays");
        assert!(errors[0].message.contains("at least 3"), "{errors:?}");
        assert!(BotConfig::parse(&text.replace("retentionDays: 2", "retentionDays: 3")).is_ok());
    }

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

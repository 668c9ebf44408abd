//! The bot configuration document: what an operator writes (YAML or JSON), read and validated
//! with errors that name the offending field, and compiled once into a [`Bot`] the core can use
//! directly.
//!
//! The document's shape and the compiled bot are the core's ([`handover_core::bot`], re-exported
//! here); this module adds what needs the shell: the URL policy of this process and each
//! provider adapter's check of its settings and its traits. It depends on the core and the
//! adapters; neither depends on it.

use std::collections::BTreeSet;

pub use handover_core::bot::*;

use crate::hours::Schedule;
use crate::url_policy::UrlPolicy;

/// Reading and validating a bot document (`BotConfig::parse`, `config.validate()`): the
/// shell's side of the document, so the core's types need no URL policy and no adapter.
pub trait Document: Sized {
    /// Parses YAML or JSON (JSON is YAML) and validates it under this process's URL policy.
    fn parse(text: &str) -> Result<Self, ConfigError>;
    /// [`Document::parse`] with the core URLs checked under `policy` (provider settings are
    /// checked by their adapters under this process's policy).
    fn parse_under(text: &str, policy: UrlPolicy) -> Result<Self, ConfigError>;
    /// Each provider entry's provider-specific settings, checked by its adapter as it would be
    /// built at run time (without the secret). Only a document being stored pays for this; a
    /// stored bot is loaded with [`Document::validate`] alone.
    fn provider_setting_errors(&self) -> Vec<FieldError>;
    /// Checks everything serde cannot: references between sections, URLs, identifiers, ranges.
    /// URLs follow this process's policy ([`crate::url_policy`]).
    fn validate(&self) -> Result<(), ConfigError>;
    /// [`Document::validate`] with the URLs checked under `policy`.
    fn validate_under(&self, policy: UrlPolicy) -> Result<(), ConfigError>;
}

/// Compiling a validated document into the [`Bot`] the core decides on (`Bot::new`).
pub trait Compile: Sized {
    /// Validates `config` under this process's URL policy and compiles it, with each
    /// provider's traits from its adapter ([`crate::providers::entry_traits`]).
    fn new(config: BotConfig) -> Result<Self, ConfigError>;
}

impl Compile for Bot {
    fn new(config: BotConfig) -> Result<Bot, ConfigError> {
        config.validate()?;
        Bot::compile(config, crate::providers::entry_traits)
    }
}

impl Document for BotConfig {
    fn parse(text: &str) -> Result<BotConfig, ConfigError> {
        Self::parse_under(text, UrlPolicy::current())
    }

    fn parse_under(text: &str, policy: UrlPolicy) -> Result<BotConfig, ConfigError> {
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

    fn provider_setting_errors(&self) -> Vec<FieldError> {
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

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_under(UrlPolicy::current())
    }

    fn validate_under(&self, policy: UrlPolicy) -> Result<(), ConfigError> {
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
        // What the bot's platform itself requires (the native platform's `outboundUrl`).
        if let Err(e) = crate::platform::port(self.platform.kind).check_settings(&self.platform) {
            err(format!("platform.{}", e.path), e.message);
        }
        if let Some(url) = &self.platform.outbound_url
            && let Err(m) = check_url(url)
        {
            err("platform.outboundUrl".into(), m);
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
}

/// A configured URL under the one URL policy; the message names the URL without its query
/// (a `?key=` must not reach the output).
fn check_url(url: &str, policy: UrlPolicy) -> Result<(), String> {
    crate::url_policy::check(url, policy)
        .map(|_| ())
        .map_err(|why| format!("{:?} {why}", without_query(url)))
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

    /// The platform's own check (`PlatformPort::check_settings`): a native bot needs the URL
    /// our events go to; a Chatlayer bot does not have one.
    #[test]
    fn a_native_bot_without_outbound_url_is_refused_and_a_chatlayer_bot_is_not() {
        let text = EXAMPLE.replace("  outboundUrl: https://bot.example.com/handover-events\n", "");
        let errors = errors_of(&text, UrlPolicy::Deployed);
        assert_eq!(
            (errors[0].path.as_str(), errors[0].message.as_str()),
            ("platform.outboundUrl", "is required for a native bot platform"),
            "{errors:?}"
        );
        let chatlayer = text.replace("  kind: native\n", "  kind: chatlayer\n");
        assert!(BotConfig::parse_under(&chatlayer, UrlPolicy::Deployed).is_ok());
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
}

//! One parser for the provider-specific fields of a `providers[]` entry.
//!
//! Every adapter reads its settings through [`parse`]: unknown fields are refused (the
//! adapter's struct says `deny_unknown_fields`), and an error names the field's path inside
//! the entry (`mailboxes.Support_NL`, `agentSourceTypes[1]`), so `handover bot validate`
//! reports it like any core field: `providers[2].mailboxes.Support_NL: …`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One wrong setting: its path inside the provider entry (empty for the entry itself) and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct SettingError {
    pub path: String,
    pub message: String,
}

impl SettingError {
    pub fn new(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        SettingError {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// The entry's settings as the adapter's typed struct, or the first wrong field with its path.
pub fn parse<T: DeserializeOwned>(settings: &Map<String, Value>) -> Result<T, SettingError> {
    serde_path_to_error::deserialize(Value::Object(settings.clone())).map_err(|e| {
        let path = e.path().to_string();
        SettingError {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// A text setting with surrounding blanks removed; blank counts as absent.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A base URL setting (`apiBaseUrl`, `tokenUrl`, …) under the one URL policy of
/// [`crate::url_policy`] for this process, without its trailing slash.
pub fn base_url(field: &str, value: &str) -> Result<String, SettingError> {
    base_url_under(field, value, crate::url_policy::UrlPolicy::current())
}

/// [`base_url`] under an explicit policy.
pub fn base_url_under(field: &str, value: &str, policy: crate::url_policy::UrlPolicy) -> Result<String, SettingError> {
    let trimmed = value.trim().trim_end_matches('/');
    match crate::url_policy::check(trimmed, policy) {
        Ok(_) => Ok(trimmed.to_owned()),
        Err(why) => Err(SettingError::new(
            field,
            format!("{:?} {why}", crate::bot::without_query(value)),
        )),
    }
}

/// A field of the provider's secret (a JSON object in Secrets Manager). Known only at run
/// time, so its error is not a setting error.
pub fn secret_field(secret: &crate::secrets::Secret, name: &str) -> Result<String, ProviderSetupError> {
    secret
        .field(name)
        .map(str::to_owned)
        .map_err(|e| ProviderSetupError::Config(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderSetupError {
    /// A provider-specific field of the `providers[]` entry is wrong; known when the bot is
    /// stored (`handover bot put`/`validate`), see `providers::check_settings`.
    #[error("{}", setting_text(.0))]
    Setting(#[from] SettingError),
    /// Anything else, such as a field missing from the provider's secret: known only at run
    /// time, when the secret is read.
    #[error("provider configuration: {0}")]
    Config(String),
}

/// A setting error as the bot document names it: `providers.mailboxes.NL: …`.
fn setting_text(e: &SettingError) -> String {
    if e.path.is_empty() {
        format!("providers: {}", e.message)
    } else {
        format!("providers.{}: {}", e.path, e.message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        region: Option<String>,
        #[serde(default)]
        mailboxes: BTreeMap<String, u64>,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn parse_json(v: Value) -> Result<Example, SettingError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn good_settings_parse() {
        let e = parse_json(json!({"region": "eu", "mailboxes": {"NL": 85}})).unwrap();
        assert_eq!(e.mailboxes["NL"], 85);
    }

    #[test]
    fn a_wrong_value_is_named_by_its_path() {
        let err = parse_json(json!({"mailboxes": {"NL": "eighty-five"}})).unwrap_err();
        assert_eq!(err.path, "mailboxes.NL");
        assert!(err.message.contains("invalid type"), "{err}");
        let err = parse_json(json!({"tags": ["a", 7]})).unwrap_err();
        assert_eq!(err.path, "tags[1]");
        assert_eq!(err.to_string(), format!("tags[1]: {}", err.message));
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_name() {
        let err = parse_json(json!({"region": "eu", "mailboxs": {}})).unwrap_err();
        assert_eq!(err.path, "mailboxs");
        assert!(err.message.contains("unknown field `mailboxs`"), "{err}");
        assert!(err.message.contains("mailboxes"), "the known fields are listed: {err}");
    }

    #[test]
    fn base_urls_are_http_with_a_host_and_lose_their_trailing_slash() {
        assert_eq!(
            base_url("apiBaseUrl", "https://api.example/v2/").unwrap(),
            "https://api.example/v2"
        );
        assert_eq!(
            base_url("apiBaseUrl", " http://127.0.0.1:9 ").unwrap(),
            "http://127.0.0.1:9"
        );
        for bad in ["ftp://x.example", "api.example", "https://", "mailto:a@b.example", ""] {
            let e = base_url("apiBaseUrl", bad).unwrap_err();
            assert_eq!(e.path, "apiBaseUrl", "{bad}");
        }
    }

    #[test]
    fn base_urls_follow_the_url_policy() {
        use crate::url_policy::UrlPolicy;
        let e = base_url_under("tokenUrl", "http://169.254.169.254/latest", UrlPolicy::Local).unwrap_err();
        assert_eq!(e.path, "tokenUrl");
        assert!(e.message.contains("link-local"), "{e}");
        let e = base_url_under("apiBaseUrl", "http://api.example/v2?key=k1", UrlPolicy::Deployed).unwrap_err();
        assert!(e.message.contains("https") && !e.message.contains("k1"), "{e}");
        assert!(base_url_under("apiBaseUrl", "http://127.0.0.1:9", UrlPolicy::Deployed).is_err());
        assert!(base_url_under("apiBaseUrl", "https://api.example/v2", UrlPolicy::Deployed).is_ok());
    }

    #[test]
    fn blank_text_is_absent() {
        assert_eq!(non_empty(Some("  x ".into())).as_deref(), Some("x"));
        assert_eq!(non_empty(Some(" \t".into())), None);
        assert_eq!(non_empty(None), None);
    }
}

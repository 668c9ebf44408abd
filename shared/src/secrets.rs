//! Secrets Manager reads behind a short-lived cache: a rotated secret is picked up within the
//! TTL without a deploy, and a warm Lambda does not pay a network call per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::RwLock;

use crate::clock::{Clock, SystemClock};

/// A secret's JSON document. `Debug` never prints the values.
#[derive(Clone)]
pub struct Secret(Arc<serde_json::Map<String, serde_json::Value>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({:?})", self.0.keys().collect::<Vec<_>>())
    }
}

impl Secret {
    pub fn from_json(text: &str) -> Result<Secret, SecretError> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Ok(Secret(Arc::new(map))),
            _ => Err(SecretError::NotJson),
        }
    }

    /// A string field, for example `signingSecret`. A blank value is refused like a missing
    /// one: an empty verify token would accept an empty `?token=`, an empty HMAC key a MAC
    /// anyone can compute.
    pub fn field(&self, name: &str) -> Result<&str, SecretError> {
        let value = self
            .0
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| SecretError::MissingField(name.to_owned()))?;
        if value.trim().is_empty() {
            return Err(SecretError::EmptyField(name.to_owned()));
        }
        Ok(value)
    }

    /// The names of the string fields that are blank: a secret with one is refused when stored
    /// (`handover secret-put`) and when a bot naming it is stored (`handover bot put`).
    pub fn blank_fields(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|s| s.trim().is_empty()))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0:?} not found")]
    NotFound(String),
    #[error("secret is not a JSON object")]
    NotJson,
    #[error("secret has no string field {0:?}")]
    MissingField(String),
    #[error("secret field {0:?} is empty")]
    EmptyField(String),
    #[error("secrets manager: {0}")]
    Backend(String),
}

#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn get(&self, name: &str) -> Result<Secret, SecretError>;
}

/// Reads from AWS Secrets Manager.
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        SecretsManager { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManager {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_resource_not_found_exception() {
                    SecretError::NotFound(name.to_owned())
                } else {
                    SecretError::Backend(e.to_string())
                }
            })?;
        Secret::from_json(out.secret_string().unwrap_or_default())
    }
}

/// Secrets held in memory, by name: the source of the in-memory test worlds and the simulator,
/// where no Secrets Manager runs. Answers like Secrets Manager: an unknown name is `NotFound`,
/// a value that is not a JSON object is `NotJson` when read.
#[derive(Default)]
pub struct MemorySecrets {
    values: std::sync::Mutex<HashMap<String, String>>,
}

impl MemorySecrets {
    pub fn new() -> Self {
        MemorySecrets::default()
    }

    /// Stores (or replaces) a secret's text, as `PutSecretValue` would.
    pub fn put(&self, name: &str, text: &str) {
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), text.to_owned());
    }
}

#[async_trait]
impl SecretSource for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        let text = self
            .values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))?;
        Secret::from_json(&text)
    }
}

/// A TTL cache in front of any source. Its age is read from a [`Clock`] (the system clock
/// unless [`CachedSecrets::with_clock`] says otherwise), so tests move time by hand.
pub struct CachedSecrets {
    inner: Arc<dyn SecretSource>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<String, (DateTime<Utc>, Secret)>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn SecretSource>, ttl: Duration) -> Self {
        CachedSecrets {
            inner,
            ttl,
            clock: Arc::new(SystemClock),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The same cache timed by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

#[async_trait]
impl SecretSource for CachedSecrets {
    async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        let now = self.clock.now();
        if let Some((at, s)) = self.entries.read().await.get(name)
            && (now - *at).to_std().is_ok_and(|age| age < self.ttl)
        {
            return Ok(s.clone());
        }
        let secret = self.inner.get(name).await?;
        self.entries
            .write()
            .await
            .insert(name.to_owned(), (now, secret.clone()));
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Document;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    #[async_trait]
    impl SecretSource for Counting {
        async fn get(&self, _name: &str) -> Result<Secret, SecretError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Secret::from_json(&format!(r#"{{"signingSecret":"v{n}"}}"#))
        }
    }

    /// Served from the cache up to the last instant of the TTL, read again at the TTL, on the
    /// manual clock (no real sleep, no timing flake).
    #[tokio::test]
    async fn cache_serves_within_ttl_and_refreshes_after() {
        use crate::clock::ManualClock;
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let t0 = DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc();
        let clock = Arc::new(ManualClock::new(t0));
        let cache = CachedSecrets::new(source.clone(), Duration::from_secs(300)).with_clock(clock.clone());
        let get = || async { cache.get("a").await.unwrap().field("signingSecret").unwrap().to_owned() };
        assert_eq!(get().await, "v0");
        clock.advance(chrono::Duration::seconds(299));
        assert_eq!(get().await, "v0", "still inside the TTL");
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(get().await, "v1", "read again at the TTL");
        assert_eq!(get().await, "v1");
        assert_eq!(source.0.load(Ordering::SeqCst), 2, "two reads of the source in all");
    }

    #[test]
    fn a_blank_field_is_refused_when_read() {
        let s = Secret::from_json(r#"{"verifyToken":"","signingSecret":"  ","apiToken":"t"}"#).unwrap();
        assert_eq!(
            s.field("verifyToken"),
            Err(SecretError::EmptyField("verifyToken".into()))
        );
        assert_eq!(
            s.field("signingSecret"),
            Err(SecretError::EmptyField("signingSecret".into()))
        );
        assert_eq!(s.field("apiToken"), Ok("t"));
        let mut blank = s.blank_fields();
        blank.sort();
        assert_eq!(blank, ["signingSecret", "verifyToken"]);
    }

    #[tokio::test]
    async fn a_bot_naming_a_secret_with_a_blank_field_is_refused_by_path() {
        struct Fixed;
        #[async_trait]
        impl SecretSource for Fixed {
            async fn get(&self, name: &str) -> Result<Secret, SecretError> {
                match name {
                    "good" => Secret::from_json(r#"{"signingSecret":"s"}"#),
                    "blank" => Secret::from_json(r#"{"verifyToken":""}"#),
                    other => Err(SecretError::NotFound(other.into())),
                }
            }
        }
        let yaml = "botId: acme\nplatform: { kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: good }\nproviders:\n  - { id: desk, kind: webhook, url: 'https://desk.example.com', secretRef: blank }\n  - { id: later, kind: webhook, url: 'https://desk.example.com', secretRef: missing }\nrouting:\n  - { provider: desk, queue: general }\n";
        let config = crate::config::BotConfig::parse(yaml).unwrap();
        let errors = crate::config::blank_secret_errors(&config, &Fixed).await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "providers[0].secretRef");
        assert!(errors[0].message.contains("verifyToken"), "{}", errors[0]);
    }

    #[test]
    fn debug_does_not_print_values() {
        let s = Secret::from_json(r#"{"signingSecret":"hunter2"}"#).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

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

    /// A string field, for example `signingSecret`.
    pub fn field(&self, name: &str) -> Result<&str, SecretError> {
        self.0
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| SecretError::MissingField(name.to_owned()))
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
    fn debug_does_not_print_values() {
        let s = Secret::from_json(r#"{"signingSecret":"hunter2"}"#).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}

//! OAuth 2.0 client-credentials tokens, cached by the adapter that uses them ([`TokenCache`]).
//!
//! Adapters are built once per bot load and kept while the bot is, so a token is reused for
//! as long as it is valid or the bot stays loaded. Each token sits in a slot keyed by token
//! URL, client id, a hash of the client secret and of the grant, so one adapter's two grants
//! (Sparkcentral's two APIs) never mix. A token is renewed shortly before it expires, and
//! dropped when the provider answers 401 to it ([`TokenCache::invalidate`]); the next call then
//! fetches a new one.
//!
//! Providers differ in how the client authenticates to the token endpoint ([`ClientAuth`]):
//! Genesys Cloud takes HTTP Basic with `grant_type=client_credentials` as the form body, Help
//! Scout takes `client_id` and `client_secret` as form fields.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::delivery::{self, DeliveryError};

/// A token is renewed this long before the provider says it expires (or halfway through its
/// life when that is shorter than twice this margin).
pub const REFRESH_MARGIN: StdDuration = StdDuration::from_secs(300);
/// Used when a token response has no `expires_in`.
pub const DEFAULT_LIFETIME: StdDuration = StdDuration::from_secs(3600);
/// The longest a token is kept, whatever the provider says (`expires_in` is outside input: a
/// huge value must neither overflow the clock arithmetic nor pin a token forever).
pub const MAX_LIFETIME: StdDuration = StdDuration::from_secs(24 * 3600);

/// How the client proves itself to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`, body
    /// `grant_type=client_credentials` (RFC 6749 §2.3.1, the preferred form).
    Basic,
    /// No Authorization header; body
    /// `grant_type=client_credentials&client_id=…&client_secret=…`.
    Form,
}

/// A cached access token and the instant to stop using it.
type Slot = Arc<tokio::sync::Mutex<Option<(String, Instant)>>>;

/// One adapter's tokens.
pub struct TokenCache {
    slots: super::memo::Memo<Slot>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            slots: super::memo::Memo::new(64),
        }
    }
}

impl TokenCache {
    /// The slot of one (token URL, client, secret, grant) combination, created on first use.
    fn slot(&self, token_url: &str, client_id: &str, client_secret: &str, grant: &str) -> Slot {
        self.slots
            .get_or_insert_with(slot_key(token_url, client_id, client_secret, grant), Slot::default)
    }

    /// Drops a token the provider refused (a 401 on an API call), unless another call already
    /// replaced it with a newer one.
    pub async fn invalidate(&self, refused: &str) {
        for slot in self.slots.values() {
            let mut cached = slot.lock().await;
            if cached.as_ref().is_some_and(|(token, _)| token == refused) {
                *cached = None;
            }
        }
    }
}

fn slot_key(token_url: &str, client_id: &str, client_secret: &str, grant: &str) -> String {
    let secret_hash = hex::encode(Sha256::digest(client_secret.as_bytes()));
    let grant_hash = hex::encode(Sha256::digest(grant.as_bytes()));
    format!(
        "{}|{client_id}|{secret_hash}|{grant_hash}",
        token_url.trim_end_matches('/')
    )
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; some providers send a fractional number.
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
}

/// A bearer token for the client: the cached one while it is fresh, otherwise a new one from
/// `token_url`. Concurrent callers for the same client wait for one request instead of each
/// making their own.
///
/// Failures are classified like every outbound call: a refused client (400/401/403) is
/// permanent, a rate limit or server error is worth retrying.
pub async fn client_credentials(
    tokens: &TokenCache,
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    auth: ClientAuth,
) -> Result<String, DeliveryError> {
    match auth {
        ClientAuth::Basic => {
            basic_grant(
                tokens,
                http,
                token_url,
                client_id,
                client_secret,
                &[("grant_type", "client_credentials")],
            )
            .await
        }
        ClientAuth::Form => {
            let body = form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ]);
            fetch(tokens, http, token_url, client_id, client_secret, false, body).await
        }
    }
}

/// Like [`client_credentials`] with HTTP Basic client authentication, for a provider-specific
/// grant body (a scope, or Hootsuite's `organization_app` grant).
pub async fn basic_grant(
    tokens: &TokenCache,
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    grant: &[(&str, &str)],
) -> Result<String, DeliveryError> {
    fetch(tokens, http, token_url, client_id, client_secret, true, form(grant)).await
}

async fn fetch(
    tokens: &TokenCache,
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    basic: bool,
    body: String,
) -> Result<String, DeliveryError> {
    let slot = tokens.slot(token_url, client_id, client_secret, &body);
    let mut cached = slot.lock().await;
    if let Some((token, until)) = cached.as_ref()
        && Instant::now() < *until
    {
        return Ok(token.clone());
    }
    let mut req = http
        .post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body);
    if basic {
        req = req.basic_auth(client_id, Some(client_secret));
    }
    let now = Utc::now();
    let resp = req.send().await.map_err(delivery::transport)?;
    let resp = delivery::check(resp, now).await?;
    let token: TokenResponse = resp.json().await.map_err(|e| {
        DeliveryError::retryable(format!(
            "token response from {}: {e}",
            crate::bot::without_query(token_url)
        ))
    })?;
    if token.access_token.is_empty() {
        return Err(DeliveryError::retryable(format!(
            "token response from {token_url}: empty access_token"
        )));
    }
    let lifetime = token
        .expires_in
        .and_then(|n| n.as_u64().or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64)))
        .map(StdDuration::from_secs)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_LIFETIME);
    let now = Instant::now();
    *cached = Some((
        token.access_token.clone(),
        now.checked_add(use_for(lifetime)).unwrap_or(now),
    ));
    Ok(token.access_token)
}

/// How long a token with this lifetime is used before it is renewed.
fn use_for(lifetime: StdDuration) -> StdDuration {
    if lifetime > REFRESH_MARGIN * 2 {
        lifetime - REFRESH_MARGIN
    } else {
        lifetime / 2
    }
}

/// An `application/x-www-form-urlencoded` body (reqwest's `form` feature is not enabled).
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes one form key or value: unreserved characters stay, a space becomes `+`,
/// every other byte of the UTF-8 text becomes `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_encoded() {
        assert_eq!(
            form(&[("grant_type", "client_credentials")]),
            "grant_type=client_credentials"
        );
        assert_eq!(
            form(&[("client_id", "a b"), ("client_secret", "x&y=z/é+")]),
            "client_id=a+b&client_secret=x%26y%3Dz%2F%C3%A9%2B"
        );
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            use_for(StdDuration::from_secs(172_800)),
            StdDuration::from_secs(172_500)
        );
        assert_eq!(use_for(StdDuration::from_secs(600)), StdDuration::from_secs(300));
        assert_eq!(use_for(StdDuration::from_secs(60)), StdDuration::from_secs(30));
    }

    #[test]
    fn slots_are_per_url_client_secret_and_grant() {
        let g = "grant_type=client_credentials";
        let a = slot_key("https://login.example/oauth/token", "cid", "s1", g);
        assert_eq!(a, slot_key("https://login.example/oauth/token/", "cid", "s1", g));
        assert_ne!(a, slot_key("https://login.example/oauth/token", "cid", "s2", g));
        assert_ne!(a, slot_key("https://login.example/oauth/token", "other", "s1", g));
        assert_ne!(a, slot_key("https://other.example/oauth/token", "cid", "s1", g));
        assert_ne!(
            a,
            slot_key(
                "https://login.example/oauth/token",
                "cid",
                "s1",
                "grant_type=organization_app"
            )
        );
        assert!(!a.contains("s1"), "the secret itself is never part of the key");
        let tokens = TokenCache::default();
        let (x, y) = (
            tokens.slot("https://t.example/token", "c", "s", g),
            tokens.slot("https://t.example/token", "c", "s", g),
        );
        assert!(Arc::ptr_eq(&x, &y));
    }

    #[tokio::test]
    async fn a_refused_token_is_dropped_unless_already_replaced() {
        let tokens = TokenCache::default();
        let s = tokens.slot("https://invalidate.example/token", "cid", "sec", "g");
        let later = Instant::now() + StdDuration::from_secs(3600);
        *s.lock().await = Some(("new-token-1".into(), later));
        tokens.invalidate("old-token-1").await;
        assert_eq!(
            s.lock().await.as_ref().map(|(t, _)| t.clone()).as_deref(),
            Some("new-token-1")
        );
        tokens.invalidate("new-token-1").await;
        assert!(s.lock().await.is_none());
    }

    #[tokio::test]
    async fn a_fresh_cached_token_is_served_without_a_request() {
        // The URL is never contacted: a request would fail (nothing listens on port 9).
        let url = "http://127.0.0.1:9/cached-token";
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "cid"),
            ("client_secret", "sec"),
        ]);
        let tokens = TokenCache::default();
        let s = tokens.slot(url, "cid", "sec", &body);
        *s.lock().await = Some(("tok".into(), Instant::now() + StdDuration::from_secs(3600)));
        let token = client_credentials(&tokens, &reqwest::Client::new(), url, "cid", "sec", ClientAuth::Form)
            .await
            .unwrap();
        assert_eq!(token, "tok");
    }

    #[tokio::test]
    async fn a_token_that_claims_to_live_forever_is_kept_a_day_at_most() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let srv = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"access_token":"t","expires_in":18446744073709551615}"#,
                "application/json",
            ))
            .mount(&srv)
            .await;
        let tokens = TokenCache::default();
        let url = format!("{}/token", srv.uri());
        let token = client_credentials(&tokens, &reqwest::Client::new(), &url, "c", "s", ClientAuth::Form)
            .await
            .unwrap();
        assert_eq!(token, "t");
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ]);
        let until = tokens
            .slot(&url, "c", "s", &body)
            .lock()
            .await
            .as_ref()
            .map(|(_, u)| *u)
            .unwrap();
        assert!(until <= Instant::now() + MAX_LIFETIME);
    }
}

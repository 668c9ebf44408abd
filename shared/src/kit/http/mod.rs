//! One authenticated HTTP client for every provider's API ([`ApiClient`]).
//!
//! Adapters say how they authenticate ([`Auth`]) and which fixed headers their API wants;
//! this module sends, and classifies the answer for the outbox's retries the same way for all
//! of them: a 401 to an OAuth token is retried once with a fresh token (the token expired or
//! was revoked), a rate-limited answer carries the wait the provider asked for, whichever
//! header it used ([`rate_limit_wait`]), and transport failures and 5xx are retryable.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;

use crate::delivery::{self, DeliveryError};
use crate::kit::oauth::{self, ClientAuth, TokenCache};

/// How requests prove who sends them.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Nothing but the fixed headers (the generic webhook puts its own there).
    None,
    /// `Authorization: Bearer <token>` with a long-lived token from the provider's secret.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// One header with a key in it (`X-Api-Key: …`, `Authorization: Token …`).
    Header { name: HeaderName, value: HeaderValue },
    /// A bearer token from an OAuth 2.0 client-credentials grant, cached per adapter.
    ClientCredentials(ClientCredentials),
}

/// An OAuth 2.0 client-credentials grant (RFC 6749 §4.4).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// How the client authenticates to the token endpoint.
    pub client_auth: ClientAuth,
    /// The grant's form fields when they are not plain `grant_type=client_credentials`
    /// (Hootsuite's `organization_app` grant); only with [`ClientAuth::Basic`].
    pub grant: Option<Vec<(String, String)>>,
}

/// A provider's API: base URL, authentication, fixed headers.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    headers: HeaderMap,
    tokens: TokenCache,
}

impl ApiClient {
    /// `base` is joined with each call's path as is (no trailing slash expected; an empty
    /// base makes every path a full URL).
    pub fn new(http: reqwest::Client, base: impl Into<String>, auth: Auth) -> Self {
        ApiClient {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            auth,
            headers: HeaderMap::new(),
            tokens: TokenCache::default(),
        }
    }

    /// Adds a header sent with every call (an API version, `Accept`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// How calls authenticate.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The OAuth token endpoint, with client-credentials authentication.
    pub fn token_url(&self) -> Option<&str> {
        match &self.auth {
            Auth::ClientCredentials(g) => Some(&g.token_url),
            _ => None,
        }
    }

    /// Fetches a token now when calls use client credentials (nothing to do otherwise), so
    /// that a caller can tell a token failure apart from a failure of the call that follows:
    /// Sparkcentral's handover call may have been applied when it fails, a token request not.
    pub async fn authenticate(&self) -> Result<(), DeliveryError> {
        match &self.auth {
            Auth::ClientCredentials(grant) => self.token(grant).await.map(drop),
            _ => Ok(()),
        }
    }

    /// A GET, its answer classified ([`delivery::check`] plus [`rate_limit_wait`]).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Response, DeliveryError> {
        let (resp, now) = self.send(Method::GET, path, query, None).await?;
        checked(resp, now).await
    }

    /// A call with a JSON body, its answer classified.
    pub async fn json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<Response, DeliveryError> {
        let (resp, now) = self.send_json(method, path, query, body).await?;
        checked(resp, now).await
    }

    /// A call without a body (a DELETE, a bodiless POST), its answer classified.
    pub async fn call(&self, method: Method, path: &str, query: &[(&str, &str)]) -> Result<Response, DeliveryError> {
        let (resp, now) = self.send(method, path, query, None).await?;
        checked(resp, now).await
    }

    /// A call with a JSON body whose answer the adapter reads itself (a 409 that names the
    /// existing resource); a 401 to an OAuth token is still retried. Returns the answer and
    /// when the request went out, for [`checked`].
    pub async fn send_json<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &B,
    ) -> Result<(Response, DateTime<Utc>), DeliveryError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DeliveryError::permanent(format!("request body not serialisable: {e}")))?;
        self.send(method, path, query, Some(bytes)).await
    }

    /// A call with a body already serialised as JSON (the generic webhook signs the exact
    /// bytes it sends), its answer classified.
    pub async fn json_bytes(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Response, DeliveryError> {
        let (resp, now) = self.send(method, path, &[], Some(body)).await?;
        checked(resp, now).await
    }

    /// Sends once; with an OAuth token, a 401 drops the token and the call is replayed once
    /// with a new one before the 401 counts.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        json: Option<Vec<u8>>,
    ) -> Result<(Response, DateTime<Utc>), DeliveryError> {
        let url = format!("{}{path}", self.base);
        let build = |token: Option<&str>| {
            let mut req = self.http.request(method.clone(), &url).headers(self.headers.clone());
            req = match (&self.auth, token) {
                (_, Some(token)) => req.bearer_auth(token),
                (Auth::Bearer(token), None) => req.bearer_auth(token),
                (Auth::Basic { user, password }, None) => req.basic_auth(user, Some(password)),
                (Auth::Header { name, value }, None) => req.header(name.clone(), value.clone()),
                (Auth::None | Auth::ClientCredentials(_), None) => req,
            };
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(bytes) = &json {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
            }
            req
        };
        let Auth::ClientCredentials(grant) = &self.auth else {
            let now = Utc::now();
            let resp = build(None).send().await.map_err(delivery::transport)?;
            return Ok((resp, now));
        };
        let token = self.token(grant).await?;
        let now = Utc::now();
        let resp = build(Some(&token)).send().await.map_err(delivery::transport)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok((resp, now));
        }
        self.tokens.invalidate(&token).await;
        let token = self.token(grant).await?;
        let now = Utc::now();
        let resp = build(Some(&token)).send().await.map_err(delivery::transport)?;
        Ok((resp, now))
    }

    async fn token(&self, g: &ClientCredentials) -> Result<String, DeliveryError> {
        match (&g.grant, g.client_auth) {
            (Some(grant), ClientAuth::Basic) => {
                let pairs: Vec<(&str, &str)> = grant.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                oauth::basic_grant(
                    &self.tokens,
                    &self.http,
                    &g.token_url,
                    &g.client_id,
                    &g.client_secret,
                    &pairs,
                )
                .await
            }
            _ => {
                oauth::client_credentials(
                    &self.tokens,
                    &self.http,
                    &g.token_url,
                    &g.client_id,
                    &g.client_secret,
                    g.client_auth,
                )
                .await
            }
        }
    }
}

/// [`delivery::check`], with the wait of a rate-limited answer taken from whichever header
/// the provider uses when it sends no standard `Retry-After`.
pub async fn checked(resp: Response, now: DateTime<Utc>) -> Result<Response, DeliveryError> {
    let wait = rate_limit_wait(resp.headers(), now);
    match delivery::check(resp, now).await {
        Err(DeliveryError::Retryable {
            status,
            retry_after: None,
            message,
        }) if wait.is_some() => Err(DeliveryError::Retryable {
            status,
            retry_after: wait,
            message,
        }),
        other => other,
    }
}

/// The wait a provider asks for in its own rate-limit headers (`Retry-After` itself is read
/// by [`delivery::check`]):
/// - `X-RateLimit-Retry-After: <seconds>` (Help Scout);
/// - `RateLimit-Reset: <seconds>` (the IETF draft's delta);
/// - `X-RateLimit-Reset: <Unix time>` (Intercom), or seconds when the number is too small to
///   be a date.
pub fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<StdDuration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = number("x-ratelimit-retry-after").or_else(|| number("ratelimit-reset")) {
        return Some(StdDuration::from_secs(secs));
    }
    let reset = number("x-ratelimit-reset")?;
    const A_DATE: u64 = 1_000_000_000;
    if reset < A_DATE {
        return Some(StdDuration::from_secs(reset));
    }
    let now = u64::try_from(now.timestamp()).unwrap_or(0);
    Some(StdDuration::from_secs(reset.saturating_sub(now)))
}

#[cfg(test)]
mod tests;

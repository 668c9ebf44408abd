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
use crate::providers::oauth::{self, ClientAuth, TokenCache};

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
mod tests {
    use super::*;
    use wiremock::matchers::{body_string, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn rate_limit_headers_become_the_wait() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let secs = |s| Some(StdDuration::from_secs(s));
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-retry-after", "7")]), now),
            secs(7)
        );
        assert_eq!(rate_limit_wait(&headers(&[("ratelimit-reset", "12")]), now), secs(12));
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-reset", "1800000030")]), now),
            secs(30),
            "a Unix time"
        );
        assert_eq!(rate_limit_wait(&headers(&[("x-ratelimit-reset", "45")]), now), secs(45));
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-reset", "1700000000")]), now),
            secs(0),
            "a reset in the past means now"
        );
        assert_eq!(rate_limit_wait(&headers(&[("x-ratelimit-reset", "soon")]), now), None);
        assert_eq!(rate_limit_wait(&HeaderMap::new(), now), None);
    }

    #[tokio::test]
    async fn a_429_without_retry_after_waits_as_the_rate_limit_header_says() {
        let srv = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("X-RateLimit-Retry-After", "9"))
            .mount(&srv)
            .await;
        let api = ApiClient::new(reqwest::Client::new(), srv.uri(), Auth::None);
        match api.get("/x", &[]).await {
            Err(DeliveryError::Retryable {
                status: Some(429),
                retry_after,
                ..
            }) => assert_eq!(retry_after, Some(StdDuration::from_secs(9))),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn each_auth_is_sent_as_its_header_with_the_fixed_headers_query_and_body() {
        let srv = MockServer::start().await;
        for (auth_header, reply) in [
            ("Bearer tok", 201),
            ("Basic dTpw", 202), // base64("u:p")
            ("Token k", 203),
        ] {
            Mock::given(method("POST"))
                .and(path("/v1/things"))
                .and(header("authorization", auth_header))
                .and(header("x-version", "2"))
                .and(header("content-type", "application/json"))
                .and(query_param("a", "b"))
                .and(body_string(r#"{"n":1}"#))
                .respond_with(ResponseTemplate::new(reply))
                .mount(&srv)
                .await;
        }
        for (auth, want) in [
            (Auth::Bearer("tok".into()), 201),
            (
                Auth::Basic {
                    user: "u".into(),
                    password: "p".into(),
                },
                202,
            ),
            (
                Auth::Header {
                    name: HeaderName::from_static("authorization"),
                    value: HeaderValue::from_static("Token k"),
                },
                203,
            ),
        ] {
            let api = ApiClient::new(reqwest::Client::new(), format!("{}/v1/", srv.uri()), auth)
                .with_header(HeaderName::from_static("x-version"), HeaderValue::from_static("2"));
            let resp = api
                .json(Method::POST, "/things", &[("a", "b")], &serde_json::json!({"n": 1}))
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), want);
        }
    }

    #[tokio::test]
    async fn a_refused_oauth_token_is_replaced_once_and_the_call_replayed() {
        let srv = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"access_token":"old"}"#, "application/json"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&srv)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"access_token":"new"}"#, "application/json"))
            .with_priority(2)
            .mount(&srv)
            .await;
        Mock::given(method("GET"))
            .and(header("authorization", "Bearer old"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&srv)
            .await;
        Mock::given(method("GET"))
            .and(header("authorization", "Bearer new"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&srv)
            .await;
        let api = ApiClient::new(
            reqwest::Client::new(),
            srv.uri(),
            Auth::ClientCredentials(ClientCredentials {
                token_url: format!("{}/token", srv.uri()),
                client_id: "c".into(),
                client_secret: "s".into(),
                client_auth: ClientAuth::Form,
                grant: None,
            }),
        );
        api.get("/me", &[]).await.unwrap();
        // The new token is cached: the next call asks for no token.
        api.get("/me", &[]).await.unwrap();
        let requests = srv.received_requests().await.unwrap();
        let tokens = requests.iter().filter(|r| r.url.path() == "/token").count();
        let calls = requests.iter().filter(|r| r.url.path() == "/me").count();
        assert_eq!((tokens, calls), (2, 3));
    }

    #[tokio::test]
    async fn a_second_401_counts_as_a_permanent_failure() {
        let srv = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"access_token":"t"}"#, "application/json"))
            .mount(&srv)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&srv)
            .await;
        let api = ApiClient::new(
            reqwest::Client::new(),
            srv.uri(),
            Auth::ClientCredentials(ClientCredentials {
                token_url: format!("{}/token", srv.uri()),
                client_id: "c".into(),
                client_secret: "s".into(),
                client_auth: ClientAuth::Basic,
                grant: Some(vec![("grant_type".into(), "organization_app".into())]),
            }),
        );
        match api.get("/me", &[]).await {
            Err(DeliveryError::Permanent { status: Some(401), .. }) => {}
            other => panic!("{other:?}"),
        }
        let requests = srv.received_requests().await.unwrap();
        let grant = requests.iter().find(|r| r.url.path() == "/token").unwrap();
        assert_eq!(String::from_utf8_lossy(&grant.body), "grant_type=organization_app");
        assert_eq!(requests.iter().filter(|r| r.url.path() == "/me").count(), 2);
    }
}

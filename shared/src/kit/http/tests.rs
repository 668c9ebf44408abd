//! Unit tests of the kit's API client: authentication, the 401 replay, rate-limit waits.

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
async fn a_second_401_is_a_credentials_failure_retried_later_not_a_refusal() {
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
        Err(DeliveryError::Retryable { status: Some(401), .. }) => {}
        other => panic!("{other:?}"),
    }
    let requests = srv.received_requests().await.unwrap();
    let grant = requests.iter().find(|r| r.url.path() == "/token").unwrap();
    assert_eq!(String::from_utf8_lossy(&grant.body), "grant_type=organization_app");
    assert_eq!(requests.iter().filter(|r| r.url.path() == "/me").count(), 2);
}

#[tokio::test]
async fn authenticating_fetches_a_token_once_and_only_for_client_credentials() {
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"access_token":"t"}"#, "application/json"))
        .mount(&srv)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer t"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let plain = ApiClient::new(reqwest::Client::new(), srv.uri(), Auth::Bearer("t".into()));
    plain.authenticate().await.unwrap();
    assert!(srv.received_requests().await.unwrap().is_empty(), "nothing to fetch");

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
    api.authenticate().await.unwrap();
    api.get("/me", &[]).await.unwrap();
    let requests = srv.received_requests().await.unwrap();
    let paths: Vec<&str> = requests.iter().map(|r| r.url.path()).collect();
    assert_eq!(paths, ["/token", "/me"], "the call uses the token fetched before it");
}

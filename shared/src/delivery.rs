//! Outbound HTTP: one shared client, a classification of failures into "try again" and "give
//! up", and the retry schedule (exponential backoff with jitter, `Retry-After` honoured).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

/// Why an outbound call failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("retryable failure: {message}")]
    Retryable {
        status: Option<u16>,
        retry_after: Option<StdDuration>,
        message: String,
    },
    #[error("permanent failure: {message}")]
    Permanent { status: Option<u16>, message: String },
}

impl DeliveryError {
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            status: None,
            message: message.into(),
        }
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError::Retryable {
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }
}

/// Builds the one client a process uses: rustls, connect and total timeouts well below the
/// Lambda timeout so a slow receiver cannot eat the whole invocation. Redirects are not
/// followed: a redirect would carry the credential headers (a provider's token header) to a
/// host the URL policy never checked; a 3xx is a permanent failure like any other 4xx-class
/// answer. Names are resolved through [`crate::url_policy::GuardedResolver`], so a configured
/// name that resolves to a link-local address is not reached either. TLS is the process's one
/// configuration ([`crate::tls::client_config`]), shared with the AWS SDK clients, so the
/// trust roots are not read a second time.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured((*crate::tls::client_config()).clone())
        .connect_timeout(StdDuration::from_secs(3))
        .timeout(StdDuration::from_secs(8))
        .user_agent(concat!("handover/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(crate::url_policy::GuardedResolver))
        .build()
        .expect("the TLS backend initialises")
}

/// Parses `Retry-After` as delta-seconds or an HTTP date.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<StdDuration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(StdDuration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.to_utc();
    (at - now).to_std().ok()
}

/// A provider's error body as it may be logged and stored on an outbox item: cut to 200
/// characters, and withheld entirely when it looks like it carries a credential (a token
/// endpoint's answer, an echoed header).
pub fn excerpt(body: &str) -> String {
    const CREDENTIAL_WORDS: [&str; 7] = [
        "token",
        "secret",
        "password",
        "authorization",
        "bearer",
        "api_key",
        "apikey",
    ];
    let lower = body.to_ascii_lowercase();
    if CREDENTIAL_WORDS.iter().any(|w| lower.contains(w)) {
        return "[body withheld: it may carry a credential]".to_owned();
    }
    body.chars().take(200).collect()
}

/// Turns a response into success or a classified failure. 401, 403, 408, 425, 429 and 5xx
/// are worth retrying; other 4xx mean the request itself is wrong and will not improve.
pub async fn check(resp: reqwest::Response, now: DateTime<Utc>) -> Result<reqwest::Response, DeliveryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = status.as_u16();
    let ra = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, now));
    let body = excerpt(&resp.text().await.unwrap_or_default());
    let message = format!("HTTP {code}: {body}");
    // 401 and 403 are a credentials problem on our side (a rotated secret, an expired grant):
    // retried, by which time the secret cache has read the new value; never the end of a
    // handover at the first refusal.
    if matches!(code, 401 | 403 | 408 | 425 | 429) || status.is_server_error() {
        Err(DeliveryError::Retryable {
            status: Some(code),
            retry_after: ra,
            message,
        })
    } else {
        Err(DeliveryError::Permanent {
            status: Some(code),
            message,
        })
    }
}

/// A transport error (DNS, connect, timeout) is always worth retrying. Its text leaves the URL
/// out: a `?key=` in a configured URL must reach neither the logs nor a session's `lastError`.
pub fn transport(e: reqwest::Error) -> DeliveryError {
    DeliveryError::retryable(format!("transport: {}", redacted(e)))
}

/// A reqwest error as it may be shown: without the URL it concerns, and with the causes that
/// say what went wrong (connection refused, timed out, …).
pub fn redacted(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // A cause can quote the URL again (hyper's connect errors do not; be sure anyway).
        if !cause_text.contains("://") {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: StdDuration,
    pub max_delay: StdDuration,
    /// Attempts before giving up, the first included.
    pub max_attempts: u32,
    /// How long a fresh or claimed item is reserved for the deliverer holding it.
    pub lease: StdDuration,
}

impl Default for RetryPolicy {
    /// Ceilings of 2 s, 4 s, 8 s … capped at 15 min; the 11 waits between 12 attempts add up to
    /// 24–47 minutes (each wait is 50–100 % of its ceiling).
    fn default() -> Self {
        RetryPolicy {
            base: StdDuration::from_secs(2),
            max_delay: StdDuration::from_secs(15 * 60),
            max_attempts: 12,
            lease: StdDuration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The next attempt after `attempts` failures: "equal jitter" (50–100 % of an exponential
    /// ceiling, so retries of many items spread out but never collapse to zero), never earlier
    /// than the receiver's `Retry-After`, which is itself capped at `max_delay` so one absurd
    /// value cannot hold a session's deliveries for days.
    pub fn next_attempt(&self, attempts: u32, now: DateTime<Utc>, retry_after: Option<StdDuration>) -> DateTime<Utc> {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(20)))
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(0.5 + fastrand::f64() * 0.5);
        let delay = retry_after.map_or(jittered, |ra| ra.min(self.max_delay).max(jittered));
        now + Duration::from_std(delay).unwrap_or(Duration::MAX)
    }

    pub fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::from_std(self.lease).unwrap_or_default()
    }
}

/// One URL path segment, percent-encoded: ids from providers and bot platforms are opaque
/// strings, and a stray `/` or `?` in one must not change which resource a call reaches.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn transport_errors_do_not_quote_the_url() {
        // A closed port: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = http_client()
            .get(format!("http://127.0.0.1:{port}/hook?key=hunter2"))
            .send()
            .await
            .unwrap_err();
        let text = transport(err).to_string();
        assert!(!text.contains("hunter2") && !text.contains("/hook"), "{text}");
        assert!(text.contains("transport"), "{text}");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&elsewhere)
            .await;
        let first = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/stolen", elsewhere.uri())))
            .mount(&first)
            .await;
        let resp = http_client()
            .post(first.uri())
            .header("x-api-token", "t0ken")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 307);
        assert!(
            elsewhere.received_requests().await.unwrap().is_empty(),
            "the redirect was followed"
        );
        assert!(check(resp, Utc::now()).await.is_err(), "a 3xx is a failure");
    }

    #[test]
    fn error_bodies_are_cut_and_credentials_withheld() {
        assert_eq!(excerpt(&"x".repeat(500)).len(), 200);
        assert_eq!(excerpt("queue full"), "queue full");
        for leaky in [
            r#"{"access_token":"abc"}"#,
            "Authorization: Bearer abc",
            r#"{"client_secret":"s"}"#,
        ] {
            assert!(
                !excerpt(leaky).contains("abc") && !excerpt(leaky).contains("\"s\""),
                "{leaky}"
            );
        }
    }

    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let now = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let d = |a| (p.next_attempt(a, now, None) - now).num_milliseconds();
        assert!((1000..=2000).contains(&d(1)));
        assert!((2000..=4000).contains(&d(2)));
        assert!((450_000..=900_000).contains(&d(30)));
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = RetryPolicy::default();
        let now = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let at = p.next_attempt(1, now, Some(StdDuration::from_secs(120)));
        assert_eq!((at - now).num_seconds(), 120);
    }

    #[test]
    fn an_absurd_retry_after_is_capped() {
        let p = RetryPolicy::default();
        let now = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let at = p.next_attempt(1, now, Some(StdDuration::from_secs(30 * 86_400)));
        assert_eq!((at - now).to_std().unwrap(), p.max_delay);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z").unwrap().to_utc();
        assert_eq!(retry_after("30", now), Some(StdDuration::from_secs(30)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(StdDuration::from_secs(60))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}

//! The one policy every configured URL obeys (`outboundUrl`, `apiBaseUrl`, a provider's `url`,
//! `availabilityUrl`, `apiBaseUrl`, `tokenUrl`, `loginBaseUrl`, …), and the guard that keeps
//! the outbound client to it at connection time.
//!
//! Whoever can write a bot configuration chooses where the service sends requests, with
//! credentials. So, in a deployed stack, a URL must be `https` and must not name this machine
//! (loopback, the unspecified address); in every stack it must never name a link-local address
//! (169.254.0.0/16, where the instance metadata service answers, and fe80::/10), the IPv6
//! metadata address `fd00:ec2::254`, or the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`).
//! Plain `http` and loopback are for the local server only: `handover --allow-local-urls …`
//! (the flag of `handover serve`, `bot put` and `bot validate`) or the environment variable
//! [`LOCAL_URLS_ENV`] set to `1`, which the test harness sets and `template.yaml` never does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that allows local URLs in a process (`1`).
pub const LOCAL_URLS_ENV: &str = "HANDOVER_ALLOW_LOCAL_URLS";

/// Which URLs a process accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    /// A deployed stack: `https` to a public or private host, never this machine.
    Deployed,
    /// The local server: `http` and loopback allowed as well.
    Local,
}

const UNSET: u8 = 0;
const DEPLOYED: u8 = 1;
const LOCAL: u8 = 2;
static POLICY: AtomicU8 = AtomicU8::new(UNSET);

/// Allows local URLs in this process: the local server's flag and the test harness.
pub fn allow_local_urls() {
    POLICY.store(LOCAL, Ordering::Relaxed);
}

impl UrlPolicy {
    /// This process's policy: local when [`allow_local_urls`] was called or [`LOCAL_URLS_ENV`]
    /// is `1`, deployed otherwise. The library's own unit tests run as the local server does
    /// (their mock servers listen on 127.0.0.1); the tests of the policy pass it explicitly.
    pub fn current() -> UrlPolicy {
        match POLICY.load(Ordering::Relaxed) {
            LOCAL => UrlPolicy::Local,
            DEPLOYED => UrlPolicy::Deployed,
            _ => {
                let local = cfg!(test) || std::env::var(LOCAL_URLS_ENV).is_ok_and(|v| v.trim() == "1");
                let value = if local { LOCAL } else { DEPLOYED };
                // Only the first reader decides; a later `allow_local_urls` still wins.
                let _ = POLICY.compare_exchange(UNSET, value, Ordering::Relaxed, Ordering::Relaxed);
                if POLICY.load(Ordering::Relaxed) == LOCAL {
                    UrlPolicy::Local
                } else {
                    UrlPolicy::Deployed
                }
            }
        }
    }
}

/// Checks `url` under `policy`; the error says why, without repeating the URL's query.
pub fn check(url: &str, policy: UrlPolicy) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    let local = policy == UrlPolicy::Local;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err("must be an https URL".into());
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() && !parsed.cannot_be_a_base() => h,
        _ => return Err("must have a host".into()),
    };
    let port = parsed.port_or_known_default();
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => check_ip(ip, port, local)?,
        Err(_) => check_name(host, port, local)?,
    }
    if parsed.scheme() == "http" && !local {
        return Err("must be https (plain http only with the local server's --allow-local-urls)".into());
    }
    Ok(parsed)
}

/// [`check`] under this process's policy.
pub fn check_current(url: &str) -> Result<reqwest::Url, String> {
    check(url, UrlPolicy::current())
}

fn check_name(name: &str, port: Option<u16>, local: bool) -> Result<(), String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !local && (name == "localhost" || name.ends_with(".localhost")) {
        return Err("must not name this machine (localhost)".into());
    }
    if is_runtime_api(&name, port) {
        return Err("must not name the Lambda Runtime API".into());
    }
    Ok(())
}

fn check_ip(ip: IpAddr, port: Option<u16>, local: bool) -> Result<(), String> {
    refused_address(ip, local).map_or(Ok(()), |why| Err(format!("must not name {why}")))?;
    if is_runtime_api(&ip.to_string(), port) {
        return Err("must not name the Lambda Runtime API".into());
    }
    Ok(())
}

/// Why an address is never a destination (`None`: it may be one). Shared by [`check`] and the
/// connection-time guard, so a name that resolves to such an address fails the same way.
pub fn refused_address(ip: IpAddr, local: bool) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address (169.254.0.0/16)"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address (fe80::/10)"),
        IpAddr::V6(v6) if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => {
            Some("the instance metadata address")
        }
        IpAddr::V4(v4) if !local && (v4.is_loopback() || v4 == Ipv4Addr::UNSPECIFIED) => {
            Some("this machine (loopback)")
        }
        IpAddr::V6(v6) if !local && (v6.is_loopback() || v6.is_unspecified()) => Some("this machine (loopback)"),
        _ => None,
    }
}

/// Whether `host:port` is the Lambda Runtime API this process was given.
fn is_runtime_api(host: &str, port: Option<u16>) -> bool {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return false;
    };
    runtime_api_matches(&api, host, port)
}

fn runtime_api_matches(api: &str, host: &str, port: Option<u16>) -> bool {
    let api = api.trim();
    let (api_host, api_port) = match api.parse::<SocketAddr>() {
        Ok(addr) => (addr.ip().to_string(), Some(addr.port())),
        Err(_) => match api.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), p.parse().ok()),
            None => (api.to_ascii_lowercase(), Some(80)),
        },
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let same_host = api_host == host
        || (api_host == "localhost" && host == "127.0.0.1")
        || (api_host == "127.0.0.1" && host == "localhost");
    same_host && api_port == port
}

/// The outbound client's resolver: a name is resolved as usual, then every address the policy
/// refuses is dropped, so a configured name that resolves to the metadata service (or, in a
/// deployed stack, to this machine) cannot be reached. Addresses given as literals in a URL are
/// refused by [`check`] before any request.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let local = UrlPolicy::current() == UrlPolicy::Local;
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| refused_address(a.ip(), local).is_none())
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to addresses the URL policy refuses").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, policy: UrlPolicy) -> String {
        check(url, policy).expect_err(url)
    }

    #[test]
    fn a_deployed_stack_takes_https_only_and_never_this_machine() {
        for url in [
            "https://bot.example.com/events?key=1",
            "https://10.0.0.8/desk",
            "https://[2001:db8::1]/x",
        ] {
            assert!(check(url, UrlPolicy::Deployed).is_ok(), "{url}");
        }
        assert!(refused("http://bot.example.com/events", UrlPolicy::Deployed).contains("https"));
        for url in [
            "https://127.0.0.1/x",
            "https://127.9.9.9:8443/x",
            "https://localhost/x",
            "https://api.localhost./x",
            "https://[::1]/x",
            "https://0.0.0.0/x",
        ] {
            assert!(refused(url, UrlPolicy::Deployed).contains("this machine"), "{url}");
        }
        for url in [
            "ftp://x.example",
            "mailto:a@b.example",
            "bot.example.com",
            "https://",
            "",
        ] {
            assert!(check(url, UrlPolicy::Deployed).is_err(), "{url}");
        }
    }

    #[test]
    fn the_local_server_also_takes_http_and_loopback() {
        for url in [
            "http://127.0.0.1:3000/playground",
            "http://localhost:9/x",
            "https://[::1]:9/x",
        ] {
            assert!(check(url, UrlPolicy::Local).is_ok(), "{url}");
        }
    }

    #[test]
    fn link_local_and_metadata_addresses_are_never_accepted() {
        for policy in [UrlPolicy::Deployed, UrlPolicy::Local] {
            for url in [
                "http://169.254.169.254/latest/meta-data/",
                "https://169.254.0.1/",
                "https://[fe80::1]/",
                "https://[febf::1]/",
                "https://[::ffff:169.254.169.254]/",
                "https://[fd00:ec2::254]/",
            ] {
                let why = refused(url, policy);
                assert!(why.contains("link-local") || why.contains("metadata"), "{url}: {why}");
            }
        }
    }

    #[test]
    fn the_runtime_api_is_recognised_by_host_and_port() {
        assert!(runtime_api_matches("127.0.0.1:9001", "127.0.0.1", Some(9001)));
        assert!(runtime_api_matches("127.0.0.1:9001", "localhost", Some(9001)));
        assert!(runtime_api_matches("localhost:9001", "localhost", Some(9001)));
        assert!(!runtime_api_matches("127.0.0.1:9001", "127.0.0.1", Some(9002)));
        assert!(!runtime_api_matches("127.0.0.1:9001", "bot.example.com", Some(9001)));
    }

    #[test]
    fn refusals_do_not_repeat_the_url() {
        let why = refused("http://bot.example.com/e?key=hunter2", UrlPolicy::Deployed);
        assert!(!why.contains("hunter2"), "{why}");
    }

    #[test]
    fn the_resolver_guard_refuses_what_check_refuses() {
        assert!(refused_address("127.0.0.1".parse().unwrap(), false).is_some());
        assert!(refused_address("127.0.0.1".parse().unwrap(), true).is_none());
        assert!(refused_address("169.254.169.254".parse().unwrap(), true).is_some());
        assert!(refused_address("93.184.216.34".parse().unwrap(), false).is_none());
    }
}

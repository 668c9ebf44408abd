//! Every HTTP route, in one table: the handlers dispatch on it, `handover serve` mounts it, and
//! a test compares it with `template.yaml`. The bot platforms' routes come from their ports
//! (`platform::PlatformPort::routes`), so adding a platform does not touch this file; the
//! provider callback's routes are listed here.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::bot::PlatformKind;
use crate::platform;

/// The Lambda function serving a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    BotWebhook,
    ProviderCallback,
}

impl Function {
    /// The binary name, as in `BuildProperties.Binary` of the template.
    pub fn binary(self) -> &'static str {
        match self {
            Function::BotWebhook => "bot-webhook",
            Function::ProviderCallback => "provider-callback",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
    /// The bot platform whose port serves the route (`platform::port`); none for provider
    /// callbacks.
    pub platform: Option<PlatformKind>,
}

/// The provider callback's routes: one path for every provider.
const CALLBACK_ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/v1/bots/{botId}/providers/{providerId}/callback",
        function: Function::ProviderCallback,
        platform: None,
    },
    Route {
        method: "GET",
        path: "/v1/bots/{botId}/providers/{providerId}/callback",
        function: Function::ProviderCallback,
        platform: None,
    },
    // Intercom checks a webhook URL with HEAD when it is saved.
    Route {
        method: "HEAD",
        path: "/v1/bots/{botId}/providers/{providerId}/callback",
        function: Function::ProviderCallback,
        platform: None,
    },
];

/// The template's one API Gateway route for every bot platform's requests (`ANY` method, a
/// greedy path): API Gateway picks it for any request under a bot that no provider-callback
/// route matches exactly, so the template does not change when a platform is added.
pub const PLATFORM_GATEWAY_METHOD: &str = "ANY";
pub const PLATFORM_GATEWAY_PATH: &str = "/v1/bots/{botId}/{proxy+}";

/// Every route: each bot platform's, in the order of its kind, then the provider callback's.
pub static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    platform::ports()
        .flat_map(|port| {
            port.routes().iter().map(move |r| Route {
                method: r.method,
                path: r.path,
                function: Function::BotWebhook,
                platform: Some(port.kind()),
            })
        })
        .chain(CALLBACK_ROUTES.iter().copied())
        .collect()
});

/// Finds the route for a method and path, with its path parameters.
pub fn find(method: &str, path: &str) -> Option<(Route, HashMap<String, String>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.method.eq_ignore_ascii_case(method))
        .find_map(|r| {
            let pattern: Vec<&str> = r.path.split('/').collect();
            if pattern.len() != segments.len() {
                return None;
            }
            let mut params = HashMap::new();
            for (p, s) in pattern.iter().zip(&segments) {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if s.is_empty() {
                        return None;
                    }
                    params.insert(name.to_owned(), (*s).to_owned());
                } else if p != s {
                    return None;
                }
            }
            Some((*r, params))
        })
}

/// Whether any route has this path (to answer 405 rather than 404).
pub fn path_exists(path: &str) -> bool {
    ROUTES
        .iter()
        .any(|r| find(r.method, path).is_some_and(|(found, _)| found.path == r.path))
}

/// The answer for a request no route takes: 405 when the path exists with another method,
/// else 404 `unknown_route`.
pub(crate) fn not_routed(path: &str) -> super::error::ApiError {
    if path_exists(path) {
        super::error::ApiError::new(405, "method_not_allowed", "method not allowed on this route")
    } else {
        super::error::ApiError::not_found("unknown_route", format!("no route {path:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_with_parameters() {
        let (r, p) = find("POST", "/v1/bots/demo/providers/desk/callback").unwrap();
        assert_eq!(r.function, Function::ProviderCallback);
        assert_eq!(p["botId"], "demo");
        assert_eq!(p["providerId"], "desk");
        assert!(find("DELETE", "/v1/bots/demo/events").is_none());
        assert!(path_exists("/v1/bots/demo/events"));
        assert!(find("POST", "/v1/bots//events").is_none());
    }
}

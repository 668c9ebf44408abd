//! The bot-platform port, the mirror of the provider port (`providers::Provider`): every bot
//! platform is an adapter in a folder of its own that
//!
//! - **verifies** a request on its raw bytes before anything is parsed
//!   ([`PlatformPort::verify`]);
//! - **parses** it into what the core is asked to do: the inputs to apply, in order, with the
//!   idempotency scope and ids ([`PlatformPort::parse`] → [`Inbound`]);
//! - **renders** the core's reply as the platform's answer ([`Rendering::render`]);
//! - **delivers** our events to the bot ([`BotPlatform::deliver`], built per loaded bot by
//!   [`build`]).
//!
//! The one entry point for platform events (`app::bot_webhook`) drives any port the same way,
//! and the engine renders answers only through [`Rendering`]. Each port also declares its own
//! routes ([`PlatformPort::routes`], collected into `app::routes`), the secret field it verifies
//! with and how its outbound side is built, so a platform is registered here only: its arm in
//! [`port`] and, if it answers differently, a [`Rendering`] variant.

pub mod chatlayer;
pub mod native;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use strum::IntoEnumIterator;

use crate::bot::{PauseAt, PlatformConfig, PlatformKind};
use crate::delivery::DeliveryError;
use crate::domain::{BotEvent, Input, Reply, Turn, UserInfo};
use crate::kit::settings::SettingError;
use crate::secrets::Secret;
use crate::store::SessionKey;

/// The bot platform's side of the outbox.
#[async_trait]
pub trait BotPlatform: Send + Sync {
    async fn deliver(
        &self,
        delivery_id: &str,
        key: &SessionKey,
        handover_id: &str,
        event: &BotEvent,
        context: &BTreeMap<String, String>,
    ) -> Result<(), DeliveryError>;
}

/// A request to one of a platform's routes, as it arrived: nothing in it is parsed yet.
#[derive(Debug, Clone)]
pub struct PlatformRequest<'a> {
    pub method: &'a str,
    /// The route's path without a stage prefix (`/v1/bots/…`).
    pub path: &'a str,
    pub headers: &'a lambda_http::http::HeaderMap,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl PlatformRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why a platform's request is refused. Every refusal comes before anything is stored; the
/// entry point answers it with the same status and code as any API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not authenticated; the reason is logged, never answered (401).
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// Not a valid request (400), with a stable code.
    #[error("{code}: {message}")]
    Invalid { code: &'static str, message: String },
    /// A field over its size limit (422 `too_large`).
    #[error("too large: {0}")]
    TooLarge(String),
}

impl Refusal {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Refusal::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// What a verified request asks of the core.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// A check that the route is set up: answered `{"status":"ok"}`, nothing stored.
    Probe,
    /// Events of one session, applied in order.
    Events(Events),
}

/// The events of one request, all for one session.
#[derive(Debug, Clone)]
pub struct Events {
    pub session_id: String,
    /// The idempotency scope of the session on this platform (`bot:…`, `chatlayer:…`).
    pub scope: String,
    pub steps: Vec<Step>,
}

/// One step of a request. The request's answer is the body of the last step applied, or
/// `{"status":"ok"}` when none was (a batch of content-free turns).
#[derive(Debug, Clone)]
pub enum Step {
    /// A batch of turns, committed a bounded number at a time, the `i`-th commit under the id
    /// `{event_id}-{i}`, each answered with the native reply.
    Turns {
        turns: Vec<Turn>,
        user: Option<UserInfo>,
        channel: Option<String>,
        context: BTreeMap<String, String>,
        event_id: String,
        /// Only the turns whose id the session's transcript does not hold yet (a transcript
        /// that repeats turns an earlier request brought).
        only_new: bool,
    },
    /// One input, answered with `rendering`.
    Event {
        input: Box<Input>,
        event_id: String,
        rendering: Rendering,
        /// A handover answered `closed` or `disabled` also shows its dialog to the user through
        /// the platform (the event `{event_id}-dialog`): the platform's answer cannot.
        show_refusal_dialog: bool,
    },
}

/// How a platform answers the core's reply, as a value the engine carries without knowing the
/// platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// The native contract's reply body.
    Native,
    /// Chatlayer's answer to `offload`, with our details alongside.
    ChatlayerOffload(PauseAt),
}

impl Rendering {
    pub fn render(self, reply: &Reply) -> Value {
        match self {
            Rendering::Native => native::reply_body(reply),
            Rendering::ChatlayerOffload(pause_at) => chatlayer::offload_answer(reply, pause_at),
        }
    }
}

/// The inbound side of a bot platform. Stateless: the bot's configuration and its platform
/// secret are handed in.
pub trait PlatformPort: Send + Sync {
    /// The platform kind a bot must be configured with to use this port.
    fn kind(&self) -> PlatformKind;

    /// The HTTP routes this platform's requests arrive on, all served by the bot-webhook
    /// function. Each path starts with `/v1/bots/{botId}/`, which the template routes to that
    /// function as a whole, so a platform's routes are declared here and nowhere else.
    fn routes(&self) -> &'static [PlatformRoute];

    /// The field of the bot's platform secret that holds the request-verification key handed
    /// to [`PlatformPort::verify`] (the native signing key, Chatlayer's verify token).
    fn verify_secret_field(&self) -> &'static str;

    /// The first setting of the bot document's `platform:` block that this platform requires
    /// and does not find, with its path below `platform.`; checked when a bot document is
    /// validated (`config`), so such a bot is refused when it is stored. By default none: every
    /// setting optional.
    fn check_settings(&self, _config: &PlatformConfig) -> Result<(), SettingError> {
        Ok(())
    }

    /// Builds the outbound side of a bot on this platform from its configuration and secret.
    fn build(
        &self,
        config: &PlatformConfig,
        secret: &Secret,
        http: reqwest::Client,
    ) -> Result<Arc<dyn BotPlatform>, SetupError>;

    /// Authenticates the request on its raw bytes, before anything is parsed. `secret` is the
    /// bot's platform signing secret (the native signing key, Chatlayer's verify token);
    /// `now` the server's clock in Unix seconds.
    fn verify(&self, request: &PlatformRequest<'_>, secret: &[u8], now: i64) -> Result<(), Refusal>;

    /// Reads a verified request into what the core is asked to do. Every limit is checked
    /// here, so a refused request changes nothing.
    fn parse(&self, bot_id: &str, platform: &PlatformConfig, request: &PlatformRequest<'_>)
    -> Result<Inbound, Refusal>;
}

/// One HTTP route of a bot platform (see [`PlatformPort::routes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformRoute {
    pub method: &'static str,
    /// The path pattern, `{name}` for a parameter; starts with `/v1/bots/{botId}/`.
    pub path: &'static str,
}

/// The port of a platform kind: the one registry of bot platforms. The match is exhaustive, so
/// a new [`PlatformKind`] does not compile until its port is named here.
pub fn port(kind: PlatformKind) -> &'static dyn PlatformPort {
    match kind {
        PlatformKind::Native => &native::NativePort,
        PlatformKind::Chatlayer => &chatlayer::ChatlayerPort,
    }
}

/// Every platform's port, in the order of [`PlatformKind`].
pub fn ports() -> impl Iterator<Item = &'static dyn PlatformPort> {
    PlatformKind::iter().map(port)
}

/// The secret field that holds a platform's request-verification key: the native signing key,
/// Chatlayer's verify token.
pub fn verify_secret_field(kind: PlatformKind) -> &'static str {
    port(kind).verify_secret_field()
}

/// A bot platform that cannot be built from its configuration and secret (the bot answers 503
/// until it is fixed); the text names what is missing, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Builds the outbound side of a bot's platform from its configuration and its secret.
pub fn build(
    config: &PlatformConfig,
    secret: &Secret,
    http: reqwest::Client,
) -> Result<Arc<dyn BotPlatform>, SetupError> {
    port(config.kind).build(config, secret, http)
}

/// Parses a JSON body. Syntax errors are `malformed_json`; a well-formed body that does not fit
/// is `invalid_request`, with the path of the offending field (`message.actor: unknown variant…`).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = inner.to_string();
            let message = match message.find(" at line ") {
                Some(i) => message[..i].to_owned(),
                None => message,
            };
            if path == "." || path.is_empty() {
                Refusal::invalid("invalid_request", message)
            } else {
                Refusal::invalid("invalid_request", format!("{path}: {message}"))
            }
        } else {
            Refusal::invalid("malformed_json", format!("body is not valid JSON: {inner}"))
        }
    })?;
    // Trailing characters after the document are a syntax error too.
    de.end()
        .map_err(|e| Refusal::invalid("malformed_json", format!("body is not valid JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the registry promises and the compiler cannot check: each port is registered under
    /// its own kind, and every platform route lies under `/v1/bots/{botId}/` (the template's one
    /// route for all platforms) with a method and path no other route has.
    #[test]
    fn every_port_is_registered_under_its_kind_with_routes_under_a_bot() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in PlatformKind::iter() {
            let port = port(kind);
            assert_eq!(port.kind(), kind);
            assert!(!port.routes().is_empty(), "{kind:?} has routes");
            assert!(!port.verify_secret_field().is_empty(), "{kind:?}");
            for r in port.routes() {
                let rest = r.path.strip_prefix("/v1/bots/{botId}/");
                assert!(rest.is_some_and(|rest| !rest.is_empty()), "{kind:?}: {}", r.path);
                assert!(
                    seen.insert((r.method, r.path)),
                    "{kind:?}: {} {} twice",
                    r.method,
                    r.path
                );
            }
        }
    }
}

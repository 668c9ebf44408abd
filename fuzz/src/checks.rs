//! The properties every fuzz target checks, on raw bytes, with no I/O.
//!
//! Used twice: by the libFuzzer targets in `fuzz/fuzz_targets/` (`make fuzz`, coverage-guided)
//! and by the integration tests (`tests/tests/it/fuzz.rs`), which replay the committed seeds
//! and regression cases and run a structure-aware random pass on every `make test`. A panic
//! anywhere below is a finding; so is a failed assertion.
//!
//! Properties, per target:
//! - `native_event`: a body the native contract refuses is a 400 JSON error with a code
//!   (`malformed_json` or `invalid_request`); an accepted event goes through the core's
//!   `decide` on a fresh session and on a session with a handover open without panicking.
//! - `chatlayer_webhook`: the same for Chatlayer's webhook body; the turns taken from the
//!   `messages` are recognised again by `new_turns` (an offload never repeats them).
//! - `provider_callback`: every provider adapter's `verify_callback` and `parse_callback`
//!   on any method, headers, query and body: no panic; a refusal is unauthenticated or
//!   malformed (401/400 at the handler), a URL-verification answer is a 200.
//! - `signatures`: the native `X-Handover-Signature` scheme and the provider MAC helpers: a
//!   signature made with the secret verifies, any other header value never does unless it
//!   carries that very MAC, and malformed headers are refused, never a panic.
//! - `bot_config`: a configuration accepted by `BotConfig::parse` (YAML or JSON) compiles into a
//!   `Bot`, its opening hours answer for any instant, and it survives a JSON round trip.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use handover::app::ApiError;
use handover::app::request::parse_json;
use handover::config::{Bot, BotConfig, Compile, Document};
use handover::domain::{Conditions, Event, HandoverRequest, Input, Session, Trigger, decide};
use handover::platform::chatlayer::{self, ChatlayerEvent};
use handover::platform::native::NativeEvent;
use handover::providers::kit::callback_auth::{Algorithm, CallbackAuth, Encoding};
use handover::providers::{self, Callback, CallbackError, CallbackRequest, Provider};
use handover::secrets::Secret;
use handover::signing::{self, SignatureError};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};

/// The instant every check treats as "now" (a Wednesday morning in Brussels).
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
}

/// A bot with every provider kind and opening hours, as the handler would load it; the
/// provider settings are those of the provider integration tests (see [`provider_secret`]).
pub const BOT_YAML: &str = r#"
botId: fuzz
platform:
  kind: native
  outboundUrl: https://bot.example.com/events
  secretRef: handover/fuzz/platform
providers:
  - id: desk
    kind: webhook
    url: https://desk.example.com/handover
    secretRef: handover/fuzz/desk
  - id: zd
    kind: zendesk
    secretRef: handover/fuzz/zd
    appId: "5ebee0975ac5304b664a12fa"
    apiBaseUrl: https://zendesk.example.com/sc
  - id: intercom
    kind: intercom
    secretRef: handover/fuzz/intercom
    apiBaseUrl: https://intercom.example.com
    botAdminId: "991267000"
    teams:
      general: 5017691
  - id: genesys
    kind: genesys
    region: mypurecloud.ie
    integrationId: int-1
    apiBaseUrl: https://genesys.example.com
    loginBaseUrl: https://genesys.example.com
    secretRef: handover/fuzz/genesys
  - id: helpscout
    kind: helpscout
    mailboxes:
      general: 85
    apiBaseUrl: https://helpscout.example.com
    secretRef: handover/fuzz/helpscout
  - id: engage
    kind: engage
    secretRef: handover/fuzz/engage
    domain: acme
    apiBaseUrl: https://engage.example.com
    agentCategoryId: "5be59e1f13047d026b6ca8af"
    botCategoryId: "5be59e0a13047d01f46caa62"
    botUserId: "5b8eaf1813047d298f940001"
    sourceId: "5b3b6562d6cb00f93fe59c9f"
  - id: sc
    kind: sparkcentral
    secretRef: handover/fuzz/sc
    region: us
    apiBaseUrl: https://sparkcentral.example.com
    queueTopics:
      general: Parcels
  - id: hootsuite
    kind: sparkcentral
    secretRef: handover/fuzz/sc
    region: hootsuite
    organizationId: "900002"
    apiBaseUrl: https://hootsuite.example.com
    queueTopics:
      general: Parcels
  - id: interact
    kind: interact
    apiBaseUrl: https://interact.example.com/api
    secretRef: handover/fuzz/interact
routing:
  - provider: desk
    queue: general
hours:
  timeZone: Europe/Brussels
  openingHours: "Mo-Fr 08:00-18:00; PH off"
  publicHolidays: BE
"#;

/// The secret each provider id of [`BOT_YAML`] is built with: the values the provider
/// integration tests use, so the seeds captured from those tests authenticate.
pub fn provider_secret(id: &str) -> &'static str {
    match id {
        "desk" => r#"{"signingSecret":"desk-secret"}"#,
        "zd" => r#"{"keyId":"app_key_1","keySecret":"s3cr3t","webhookSecret":"8564b3e6a8b20a4bdb68b05ce9bc5936"}"#,
        "intercom" => r#"{"accessToken":"tok-123","clientSecret":"cs-456"}"#,
        "genesys" => r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"whsec-test"}"#,
        "helpscout" => r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"whsec-hs-test"}"#,
        "engage" => r#"{"accessToken":"tok-engage","webhookSecret":"whsec-engage","verifyToken":"verify-engage"}"#,
        "sc" | "hootsuite" => {
            r#"{"clientId":"va-client","clientSecret":"va-secret","sharedSecret":"5e1f3c9a7b2d4e6f8091a2b3c4d5e6f70123456789abcdef0fedcba987654321"}"#
        }
        "interact" => r#"{"apiToken":"itok-1","callbackToken":"cbtok-0123456789abcdef"}"#,
        other => panic!("no fuzz secret for provider {other:?}"),
    }
}

pub struct World {
    pub bot: Bot,
    /// Every provider of the bot, by id, built as the handler builds them.
    pub providers: Vec<(String, std::sync::Arc<dyn Provider>)>,
}

/// Built once per process: parsing the configuration and building adapters is not what is
/// being fuzzed here.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let config = BotConfig::parse(BOT_YAML).expect("the fuzz bot configuration is valid");
        let http = reqwest_client();
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let secret = Secret::from_json(provider_secret(&p.id)).expect("secret JSON");
                let adapter = providers::build(p, &secret, http.clone())
                    .unwrap_or_else(|e| panic!("provider {} builds: {e}", p.id));
                (p.id.clone(), adapter)
            })
            .collect();
        World {
            bot: Bot::new(config).expect("the fuzz bot compiles"),
            providers,
        }
    })
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A refusal as the handler renders it: 4xx, JSON, `{"error":{"code","message"}}`.
fn assert_client_error(e: &ApiError, codes: &[&str]) {
    assert!((400..500).contains(&e.status), "refusal must be 4xx, got {e}");
    assert!(codes.contains(&e.code), "unexpected error code {:?} ({e})", e.code);
    let body = e.body();
    assert_eq!(body["error"]["code"], e.code);
    assert!(body["error"]["message"].is_string());
}

// ---- native events ------------------------------------------------------------------------

pub fn native_event(data: &[u8]) {
    let event: NativeEvent = match parse_json(data) {
        Ok(e) => e,
        Err(e) => return assert_client_error(&e, &["malformed_json", "invalid_request"]),
    };
    let Ok((session_id, input)) = event.into_input() else {
        return; // answered 400 invalid_request by the handler
    };
    assert!(!session_id.is_empty() && !session_id.contains('#'));
    let world = world();
    let conditions = Conditions::default();
    let fresh = Session::new("fuzz", &session_id, now());
    let _ = decide(&fresh, &input, &world.bot, &conditions, now(), "h-fuzz-1");
    // The same event against a session whose handover is open.
    let request = Input::new(Event::HandoverRequested(HandoverRequest {
        trigger: Trigger::ExplicitRequest,
        provider: None,
        queue: None,
        language: None,
        variables: Default::default(),
        tags: Vec::new(),
        summary: None,
        provider_conversation_id: None,
    }));
    if let Ok(opened) = decide(&fresh, &request, &world.bot, &conditions, now(), "h-fuzz-1") {
        let _ = decide(&opened.session, &input, &world.bot, &conditions, now(), "h-fuzz-2");
    }
}

// ---- Chatlayer webhook --------------------------------------------------------------------

pub fn chatlayer_webhook(data: &[u8]) {
    let event: ChatlayerEvent = match parse_json(data) {
        Ok(e) => e,
        Err(e) => return assert_client_error(&e, &["malformed_json", "invalid_request"]),
    };
    let _ = chatlayer::body_id(data);
    let _ = event.context();
    let turns: Vec<_> = event.messages.iter().filter_map(chatlayer::turn_of).collect();
    for t in &turns {
        assert!(!t.message.is_empty(), "a turn always has content");
    }
    let stored: BTreeSet<String> = turns.iter().filter_map(|t| t.event_id.clone()).collect();
    assert!(
        chatlayer::new_turns(&event.messages, &stored).is_empty(),
        "turns already stored are not taken again"
    );
    let _ = chatlayer::new_turns(&event.transcript, &stored);
    let _ = chatlayer::user_info(&event.messages);
    let _ = chatlayer::user_info(&event.transcript);
    let _ = chatlayer::handover_request(event.payload.as_ref());
}

// ---- provider callbacks -------------------------------------------------------------------

/// A callback as raw as the handler hands it to an adapter.
pub struct RawCallback {
    pub provider: usize,
    pub method: String,
    pub headers: HeaderMap,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads the text framing of the seeds:
///
/// ```text
/// <provider id>            (or anything: then the first byte picks the provider)
/// <METHOD>
/// <header-name>: <value>   (any number of lines)
/// ?<key>=<value>           (query parameters, any number of lines)
///                          (an empty line)
/// <body bytes>
/// ```
pub fn read_callback(data: &[u8]) -> RawCallback {
    let world = world();
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let first = lines.next().unwrap_or_default();
    let provider = world
        .providers
        .iter()
        .position(|(id, _)| id == first)
        .unwrap_or_else(|| usize::from(data.first().copied().unwrap_or(0)) % world.providers.len());
    let method = match lines.next().unwrap_or("POST").trim() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH") => m.to_owned(),
        _ => "POST".to_owned(),
    };
    let mut headers = HeaderMap::new();
    let mut query = Vec::new();
    for line in lines {
        if let Some(q) = line.strip_prefix('?') {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            query.push((k.to_owned(), v.to_owned()));
        } else if let Some((k, v)) = line.split_once(':') {
            // Only what HTTP can carry reaches the handler.
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.trim()), HeaderValue::try_from(v.trim())) {
                headers.append(k, v);
            }
        }
    }
    RawCallback {
        provider,
        method,
        headers,
        query,
        body: body.to_vec(),
    }
}

pub fn provider_callback(data: &[u8]) {
    let raw = read_callback(data);
    let (id, provider) = &world().providers[raw.provider];
    let request = CallbackRequest {
        method: &raw.method,
        headers: &raw.headers,
        query: &raw.query,
        body: &raw.body,
    };
    let check_error = |e: &CallbackError| match e {
        CallbackError::Unauthenticated(m) | CallbackError::Malformed(m) => {
            assert!(!m.is_empty(), "{id}: a refusal says why")
        }
    };
    if let Err(e) = provider.verify_callback(&request, now()) {
        check_error(&e);
    }
    match provider.parse_callback(&request) {
        Ok(Callback::Challenge { status, body, .. }) => {
            assert_eq!(status, 200, "{id}: a URL verification is answered 200");
            assert!(
                body.len()
                    <= raw.body.len() + raw.query.iter().map(|(k, v)| k.len() + v.len() + 64).sum::<usize>() + 256
            );
        }
        Ok(Callback::Fetch { conversation_id }) => {
            // The handler checks it before any call: it must be there to check.
            let _ = format!("{conversation_id:?}");
        }
        Ok(Callback::Partial { events, unreadable }) => {
            assert!(!unreadable.is_empty(), "{id}: a partial delivery names what it skipped");
            for e in &events {
                let _ = format!("{e:?}");
            }
        }
        Ok(Callback::Events(events)) => {
            for e in &events {
                // Echoed into logs and keys by the handler: plain data, never a panic to format.
                let _ = format!("{e:?}");
            }
        }
        Err(e) => check_error(&e),
    }
}

// ---- signature headers --------------------------------------------------------------------

/// Splits `data` into a secret, a timestamp offset, a signature header and a body.
pub fn signatures(data: &[u8]) {
    let (secret, rest) = split_len(data);
    let (offset, rest) = match rest.split_first() {
        Some((o, r)) => (i64::from(*o as i8) * 5, r),
        None => (0, rest),
    };
    let (header, body) = split_len(rest);
    let header = String::from_utf8_lossy(header);
    let t = now().timestamp();
    let ts = t + offset;
    let ts_text = ts.to_string();

    // Made with the secret: verifies inside the window, is stale outside it.
    let good = signing::sign(secret, ts, body);
    let expected = if offset.abs() > signing::REPLAY_WINDOW_SECS {
        Err(SignatureError::Stale)
    } else {
        Ok(())
    };
    assert_eq!(signing::verify(secret, Some(&ts_text), Some(&good), body, t), expected);
    // Listed among other values (rotation): still verifies.
    let listed = format!("{header},{good}");
    assert_eq!(
        signing::verify(secret, Some(&ts_text), Some(&listed), body, t),
        expected
    );

    // Anything the fuzzer made up verifies only if it carries that very MAC.
    let verdict = signing::verify(secret, Some(&ts_text), Some(&header), body, t);
    if verdict.is_ok() {
        let mac = &good["v1=".len()..];
        assert!(
            header.split(',').any(|p| p
                .trim()
                .strip_prefix("v1=")
                .is_some_and(|h| h.eq_ignore_ascii_case(mac))),
            "accepted a signature header without the MAC: {header:?}"
        );
    }
    // The fuzzer's header as the timestamp, with a good MAC for `ts`: refused as malformed
    // unless it is a number; a number outside the window is stale; inside it, only `ts` itself
    // verifies (the MAC covers the timestamp).
    let as_timestamp = signing::verify(secret, Some(&header), Some(&good), body, t);
    let want = match header.trim().parse::<i64>() {
        Err(_) => Err(SignatureError::Malformed),
        Ok(v) if t.abs_diff(v) > signing::REPLAY_WINDOW_SECS.unsigned_abs() => Err(SignatureError::Stale),
        Ok(v) if v == ts => Ok(()),
        Ok(_) => Err(SignatureError::Mismatch),
    };
    assert_eq!(as_timestamp, want, "timestamp header {header:?}");
    assert_eq!(
        signing::verify(secret, Some("not a time"), Some(&good), body, t),
        Err(SignatureError::Malformed),
        "a malformed timestamp header is refused, whatever the signature"
    );
    assert_eq!(
        signing::verify(secret, None, Some(&good), body, t),
        Err(SignatureError::Missing)
    );

    // Provider callback authentication (`providers::kit::callback_auth`): a body HMAC signed
    // in hex (either case) or base64 verifies; the fuzzer's header verifies only if it decodes
    // to that very MAC; a shared token only if it is the secret.
    for algorithm in [Algorithm::Sha256, Algorithm::Sha1] {
        let hex_auth = CallbackAuth::hmac("x-sig", algorithm, Encoding::Hex, "");
        let b64_auth = CallbackAuth::hmac("x-sig", algorithm, Encoding::Base64, "");
        let hex = hex_auth.sign(secret, body);
        let b64 = b64_auth.sign(secret, body);
        assert!(hex_auth.matches(secret, &hex, body));
        assert!(hex_auth.matches(secret, &hex.to_uppercase(), body));
        assert!(b64_auth.matches(secret, &b64, body));
        assert_eq!(b64, base64(&hex_bytes(&hex)), "hex and base64 carry the same MAC");
        if hex_auth.matches(secret, &header, body) {
            assert!(
                header.trim().eq_ignore_ascii_case(&hex),
                "hex match without the MAC: {header:?}"
            );
        }
        if b64_auth.matches(secret, &header, body) {
            assert_eq!(header.trim(), b64, "base64 match without the MAC: {header:?}");
        }
    }
    if CallbackAuth::token_in("x-token").matches(secret, &header, body) {
        assert_eq!(
            header.trim().as_bytes(),
            secret,
            "token match without the secret: {header:?}"
        );
    }
}

/// Bytes of a hex string (of even length, as `sign` writes it).
fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The first byte says how many of the following bytes form the first part.
fn split_len(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((n, rest)) => rest.split_at(usize::from(*n).min(rest.len())),
        None => (&[], &[]),
    }
}

/// Standard padded base64, written out here so the check does not trust the decoder it tests.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---- bot configuration --------------------------------------------------------------------

pub fn bot_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the CLI reads UTF-8 text; invalid bytes never reach the parser
    };
    let Ok(config) = BotConfig::parse(text) else {
        return;
    };
    let json = serde_json::to_string(&config).expect("a parsed configuration serialises");
    let again = BotConfig::parse(&json)
        .unwrap_or_else(|e| panic!("the JSON form of an accepted configuration is refused: {e}\n{json}"));
    assert_eq!(again, config, "JSON round trip changes the configuration");
    let bot = Bot::new(config).unwrap_or_else(|e| panic!("an accepted configuration does not compile: {e}"));
    if let Some(schedule) = &bot.schedule {
        // Opening hours answer for instants around "now" and far away, for every queue.
        let seed = data
            .iter()
            .fold(0i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(*b)));
        let instants = [now(), now() + chrono::Duration::seconds(seed % (400 * 86_400))];
        let queues: Vec<Option<&str>> = std::iter::once(None)
            .chain(
                bot.config
                    .hours
                    .iter()
                    .flat_map(|h| h.queues.keys().map(|q| Some(q.as_str()))),
            )
            .collect();
        for at in instants {
            for q in &queues {
                let _ = schedule.evaluate(*q, at);
                let _ = schedule.next_opening(*q, at);
            }
        }
    }
}

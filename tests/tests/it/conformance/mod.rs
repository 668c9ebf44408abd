//! The provider conformance suite: the same test bodies run against every provider adapter,
//! so a behaviour the service promises for "a provider" is checked for each of the eight
//! kinds, not only for the one a hand-written test happened to use.
//!
//! A [`Backend`] holds only what differs between providers: its `providers:` entry and
//! secret, the mocks standing in for its API, how its callbacks look and are authenticated,
//! and where a relayed user message or an end request shows up at the mock. The cases in this
//! file drive the real handlers against the emulator; [`conformance_cases!`] instantiates each
//! case for a backend as `conformance::<provider>::<case>`.
//!
//! Provider-specific behaviour (URL verification, polling, parsing quirks) stays in the
//! `provider_*.rs` modules.

use chrono::{DateTime, Duration, Utc};
use handover::app::evaluator;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use strum::IntoEnumIterator;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// How a test callback is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Signed (or carrying the token) exactly as the provider would.
    Valid,
    /// Signed with, or carrying, a secret that is not the configured one.
    WrongSecret,
    /// Without the signature or token header.
    Missing,
}

/// The provider callbacks the cases need.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    AgentJoined,
    AgentMessage(&'a str),
    AgentClosed,
    /// An event type the adapter does not act on.
    Unknown,
}

/// Which provider call the retry case makes fail: the relay of a user message where the
/// adapter relays them, else the end of the conversation at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    UserMessage,
    End,
    /// The handover call itself, retried inline within the request: a 429 whose Retry-After
    /// is too long to wait for fails the handover over (the bot keeps control, nothing is
    /// queued), and the next request after it is sent again.
    Start,
}

/// How the agent's close reaches the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseBy {
    /// A callback ([`Event::AgentClosed`]).
    Callback,
    /// Only polling sees it: [`Backend::mount_closed`] makes the provider's conversation
    /// look closed, and the evaluator's next poll (a minute on) learns it.
    Polling,
}

/// The provider-specific parts of the conformance cases.
#[allow(async_fn_in_trait)]
pub trait Backend: Sync {
    /// The provider id in the bot's configuration (also in the callback path).
    const ID: &'static str;

    /// The secret stored for the provider.
    fn secret(&self) -> Value;

    /// The provider's entry under `providers:` after `- id: <ID>`, each line indented by four
    /// spaces, for an API mocked at `api` and the secret stored as `secret_ref`.
    fn settings(&self, api: &str, secret_ref: &str) -> String;

    /// Mounts the provider API's mocks: start, message, end (and whatever else the adapter
    /// calls on the way, such as a token endpoint).
    async fn mount(&self, api: &MockServer);

    /// The bot's handover request (some providers need the conversation that already exists
    /// at the provider).
    fn handover_request(&self, id: &str, session: &str) -> Value {
        handover_request(id, session)
    }

    /// How many times the mock saw the provider's "open a conversation" call.
    async fn starts(&self, api: &MockServer) -> usize;

    /// The provider's conversation id callbacks name, once the handover `handover_id` opened.
    fn conversation_id(&self, handover_id: &str) -> String;

    /// The callback body for `event` on conversation `conv`, unique by `event_id`.
    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value;

    /// Headers authenticating `body` (plus any the provider always sends, such as an event
    /// name header derived from `event`).
    fn headers(&self, event: Event<'_>, body: &[u8], auth: Auth, now: DateTime<Utc>) -> Vec<(&'static str, String)>;

    /// `Ok` when the authentication covers the body (a tampered body is refused); otherwise
    /// why not, in one line (a shared token in a header cannot see the body).
    fn body_signed(&self) -> Result<(), &'static str>;

    /// `Ok` when the provider reports the agent joining by callback; otherwise why not (the
    /// join is then recorded when the handover opens).
    fn joins_by_callback(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// `Ok` when the provider reports agent messages; otherwise why not (the signature and
    /// duplicate cases then use the close callback).
    fn reports_agent_messages(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// `Ok` when a user cancel sends an end request to the provider; otherwise why not.
    fn ends_on_cancel(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// `Ok` when user messages are relayed to the provider; otherwise why not.
    fn relays_user_messages(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// The user texts relayed to the provider, in order (one per request).
    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String>;

    /// How many end/close requests the mock received.
    async fn ends(&self, api: &MockServer) -> usize;

    /// The call the retry case refuses: it mounts, at a higher priority than [`Backend::mount`],
    /// one 429 with `Retry-After: 45`, then one 503, for that call.
    fn retried(&self) -> Retried {
        Retried::UserMessage
    }

    /// Mounts the refusals for the retried call (see [`Backend::retried`]).
    async fn mount_refusals(&self, api: &MockServer);

    fn close_by(&self) -> CloseBy {
        CloseBy::Callback
    }

    /// Makes the provider report the conversation closed when polled (see [`CloseBy::Polling`]).
    async fn mount_closed(&self, _api: &MockServer) {}

    /// What a bot turn with quick replies ("Yes", "No") looks like in the request bodies the
    /// provider receives (the text degradation by default); `Err(why)` when bot turns are not
    /// sent to the provider at all.
    fn quick_replies_form(&self) -> Result<&'static str, &'static str> {
        Ok("[Quick replies: Yes | No]")
    }
}

/// One 429 (Retry-After 45 s), then one 503, for requests matching `verb`, `p` and whose
/// JSON body contains `body`.
pub async fn refuse_twice(api: &MockServer, verb: &str, p: &str, body: Value) {
    refuse_twice_with(api, verb, p, body, "retry-after").await
}

/// [`refuse_twice`] with the delay in the provider's own header (`retry_after_header`).
pub async fn refuse_twice_with(api: &MockServer, verb: &str, p: &str, body: Value, retry_after_header: &str) {
    Mock::given(method(verb))
        .and(path(p))
        .and(body_partial_json(&body))
        .respond_with(ResponseTemplate::new(429).insert_header(retry_after_header, "45"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(api)
        .await;
    Mock::given(method(verb))
        .and(path(p))
        .and(body_partial_json(&body))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(api)
        .await;
}

const BOT_SECRET: &[u8] = b"bot-secret";

/// One case's world: its own table, a bot platform mock and the provider API mock.
pub struct World<'b, B: Backend> {
    pub backend: &'b B,
    pub env: TestEnv,
    pub bot_srv: MockServer,
    pub api: MockServer,
}

impl<'b, B: Backend> World<'b, B> {
    pub async fn new(backend: &'b B) -> Self {
        let env = TestEnv::in_memory().await;
        let bot_srv = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/bot"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&bot_srv)
            .await;
        let api = MockServer::start().await;
        backend.mount(&api).await;
        let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
        let provider_ref = env.secret(B::ID, &backend.secret()).await;
        let yaml = format!(
            "botId: acme\nplatform:\n  kind: native\n  outboundUrl: {bot}/bot\n  secretRef: {platform_ref}\nproviders:\n  - id: {id}\n{settings}routing:\n  - provider: {id}\n    queue: general\ntimeouts: {{ noAgentSeconds: 3600, stillWaitingEverySeconds: 0, agentIdleSeconds: 3600 }}\n",
            bot = bot_srv.uri(),
            id = B::ID,
            settings = backend.settings(&api.uri(), &provider_ref),
        );
        env.put_bot(&yaml).await;
        World {
            backend,
            env,
            bot_srv,
            api,
        }
    }

    pub async fn send(&self, body: &Value) -> (u16, Value) {
        self.env.send_event("acme", BOT_SECRET, body).await
    }

    /// Opens a handover for `session` and returns the provider conversation id.
    pub async fn open(&self, session: &str) -> String {
        let (status, answer) = self.send(&self.backend.handover_request("e-open", session)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
        let handover_id = answer["handoverId"].as_str().expect("a handover id");
        self.backend.conversation_id(handover_id)
    }

    /// Delivers a callback with the given authentication; `tamper` changes the body after
    /// the headers were computed.
    pub async fn deliver(
        &self,
        event: Event<'_>,
        conv: &str,
        event_id: &str,
        auth: Auth,
        tamper: bool,
    ) -> (u16, Value) {
        let body = self.backend.callback(event, conv, event_id);
        let bytes = serde_json::to_vec(&body).unwrap();
        let headers = self.backend.headers(event, &bytes, auth, self.env.now());
        let sent = if tamper {
            // Still valid JSON, but not what was signed: the agent's words changed, or (for
            // a callback without text) one more field. Not whitespace: a provider may sign
            // the compact form of the JSON.
            let text = String::from_utf8(bytes).unwrap();
            if text.contains("Hello from Eva") {
                text.replacen("Hello from Eva", "Hullo from Eve", 1).into_bytes()
            } else {
                let mut v: Value = serde_json::from_str(&text).unwrap();
                v["tampered"] = json!(true);
                serde_json::to_vec(&v).unwrap()
            }
        } else {
            bytes
        };
        let p = format!("/v1/bots/acme/providers/{}/callback", B::ID);
        let req = self.env.request("POST", &p, &headers, &sent);
        self.env.call_provider(req).await
    }

    pub async fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> (u16, Value) {
        self.deliver(event, conv, event_id, Auth::Valid, false).await
    }

    /// How many `handover.ended` the bot platform got.
    pub async fn ended(&self) -> usize {
        self.to_bot()
            .await
            .iter()
            .filter(|b| b["type"] == "handover.ended")
            .count()
    }

    pub async fn to_bot(&self) -> Vec<Value> {
        received(&self.bot_srv).await
    }

    /// The agent messages the bot platform got with this text.
    pub async fn agent_messages(&self, text: &str) -> usize {
        self.to_bot()
            .await
            .iter()
            .filter(|b| b["type"] == "agent.message" && b["message"]["text"] == text)
            .count()
    }

    async fn after(&self, seconds: i64) {
        self.env.clock.advance(Duration::seconds(seconds));
        evaluator::run(&self.env.ctx, self.env.now()).await;
    }
}

fn success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Case 1: only a correctly authenticated callback is applied; a refused one writes nothing.
pub async fn callback_signature<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    let conv = w.open("s-1").await;
    let before = w.env.dump().await;
    let to_bot = w.to_bot().await;
    // The probe is an agent message, or the close where the provider reports no messages.
    let msg = match backend.reports_agent_messages() {
        Ok(()) => Event::AgentMessage("Hello from Eva"),
        Err(_why) => Event::AgentClosed,
    };

    let (status, answer) = w.deliver(msg, &conv, "ev-wrong", Auth::WrongSecret, false).await;
    assert_eq!(status, 401, "wrong secret: {answer}");
    let (status, answer) = w.deliver(msg, &conv, "ev-missing", Auth::Missing, false).await;
    assert_eq!(status, 401, "no signature: {answer}");
    match backend.body_signed() {
        Ok(()) => {
            let (status, answer) = w.deliver(msg, &conv, "ev-tampered", Auth::Valid, true).await;
            assert_eq!(status, 401, "tampered body: {answer}");
        }
        // The authentication does not cover the body: there is nothing to tamper with.
        Err(_why) => {}
    }
    assert_eq!(w.env.dump().await, before, "a refused callback writes nothing");
    assert_eq!(w.to_bot().await, to_bot, "a refused callback relays nothing");

    let (status, answer) = w.deliver(msg, &conv, "ev-good", Auth::Valid, false).await;
    assert!(success(status), "correctly signed: {status} {answer}");
    match msg {
        Event::AgentClosed => assert_eq!(w.ended().await, 1),
        _ => assert_eq!(w.agent_messages("Hello from Eva").await, 1),
    }
}

/// Case 2: the same agent message delivered twice reaches the bot once.
pub async fn duplicate_callback<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    let conv = w.open("s-1").await;
    if backend.reports_agent_messages().is_err() {
        // The close is the one event such a provider reports: it ends the handover once.
        let first = w.callback(Event::AgentClosed, &conv, "ev-dup").await;
        let second = w.callback(Event::AgentClosed, &conv, "ev-dup").await;
        assert!(success(first.0), "{first:?}");
        assert_eq!(first, second, "a repeated callback gets the first answer");
        assert_eq!(w.ended().await, 1, "ended once");
        return;
    }
    // No join first: the agent's first message is the join.
    let msg = Event::AgentMessage("Hello twice");
    let first = w.callback(msg, &conv, "ev-dup").await;
    let second = w.callback(msg, &conv, "ev-dup").await;
    assert!(success(first.0), "{first:?}");
    assert_eq!(first, second, "a repeated callback gets the first answer");
    assert_eq!(w.agent_messages("Hello twice").await, 1, "relayed once");
    let joined = w.to_bot().await.iter().filter(|b| b["type"] == "agent.joined").count();
    assert_eq!(joined, 1, "the first agent message is the join, once");
    let transcript = w
        .env
        .store
        .transcript(&SessionKey::new("acme", "s-1"), None)
        .await
        .unwrap();
    let turns = transcript
        .iter()
        .filter(|e| e.message.text.as_deref() == Some("Hello twice"))
        .count();
    assert_eq!(turns, 1, "recorded once");
    let state = w.env.session("acme", "s-1").await.map(|s| s.state);
    assert_eq!(state, Some(handover::domain::State::Agent));
}

/// Case 3: an event type the adapter does not know is acknowledged and ignored.
pub async fn unknown_event<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    let conv = w.open("s-1").await;
    let session = w.env.session("acme", "s-1").await;
    let to_bot = w.to_bot().await;
    let (status, answer) = w.callback(Event::Unknown, &conv, "ev-unknown").await;
    assert!(success(status), "acknowledged: {status} {answer}");
    assert_eq!(w.to_bot().await, to_bot, "nothing relayed");
    assert_eq!(w.env.session("acme", "s-1").await, session, "session unchanged");
}

/// Case 4: request → start at the provider → agent joins → user and agent messages relayed
/// → the agent closes → `handover.ended` and the bot is in control again.
pub async fn full_lifecycle<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    w.send(&user_message("e1", "s-42", "Where is my parcel?")).await;
    w.send(&bot_message("e2", "s-42", "Do you have a tracking number?"))
        .await;
    assert_eq!(
        backend.starts(&w.api).await,
        0,
        "nothing reaches the provider before a handover"
    );

    let conv = w.open("s-42").await;
    assert_eq!(backend.starts(&w.api).await, 1, "one start call");

    if backend.joins_by_callback().is_ok() {
        let (status, answer) = w.callback(Event::AgentJoined, &conv, "ev-join").await;
        assert!(success(status), "{answer}");
    }
    let joined = w.to_bot().await.iter().filter(|b| b["type"] == "agent.joined").count();
    assert_eq!(joined, 1, "the bot platform hears of the agent");

    let (status, answer) = w.send(&user_message("e3", "s-42", "Hi Eva, my parcel is late")).await;
    assert_eq!((status, answer), (200, json!({"control": "agent", "state": "agent"})));
    let relayed = backend.relayed_user_texts(&w.api).await;
    let late = relayed
        .iter()
        .filter(|t| t.contains("Hi Eva, my parcel is late"))
        .count();
    match backend.relays_user_messages() {
        Ok(()) => assert_eq!(late, 1, "relayed once: {relayed:?}"),
        Err(_why) => assert_eq!(late, 0, "nothing relayed: {relayed:?}"),
    }

    if backend.reports_agent_messages().is_ok() {
        let (status, answer) = w
            .callback(Event::AgentMessage("Hi Ann, let me check."), &conv, "ev-msg")
            .await;
        assert!(success(status), "{answer}");
        assert_eq!(w.agent_messages("Hi Ann, let me check.").await, 1);
    }

    match backend.close_by() {
        CloseBy::Callback => {
            let (status, answer) = w.callback(Event::AgentClosed, &conv, "ev-close").await;
            assert!(success(status), "{answer}");
        }
        CloseBy::Polling => {
            backend.mount_closed(&w.api).await;
            w.after(60).await;
        }
    }
    let to_bot = w.to_bot().await;
    let ended = to_bot.last().unwrap();
    assert_eq!(ended["type"], "handover.ended", "{to_bot:?}");
    assert_eq!(ended["reason"], "agent_closed");
    assert_eq!(
        w.send(&user_message("e4", "s-42", "Thanks!")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );
}

/// Case 5: a user cancel before any agent joined ends the provider side and tells the bot.
pub async fn user_cancel_while_waiting<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    w.send(&user_message("e1", "s-1", "Agent please")).await;
    w.open("s-1").await;
    assert_eq!(backend.ends(&w.api).await, 0);
    let (status, answer) = w
        .send(&json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "bot");
    assert_eq!(answer["reason"], "user_cancelled");
    match backend.ends_on_cancel() {
        Ok(()) => assert_eq!(backend.ends(&w.api).await, 1, "the provider side is ended once"),
        Err(_why) => assert_eq!(backend.ends(&w.api).await, 0, "no end request exists"),
    }
    let left = w.env.store.outbox(&SessionKey::new("acme", "s-1")).await.unwrap();
    assert!(left.is_empty(), "nothing left to deliver: {left:?}");
    let to_bot = w.to_bot().await;
    let last = to_bot.last().unwrap();
    assert_eq!(last["type"], "handover.ended");
    assert_eq!(last["reason"], "user_cancelled");
}

/// Case 6: a provider call refused with 429 (Retry-After) and then 503 is retried through
/// the outbox, not before Retry-After, and delivered exactly once.
pub async fn retried_after_429_and_5xx<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    if backend.retried() == Retried::Start {
        return start_retried_inline(&w).await;
    }
    let conv = w.open("s-1").await;
    if backend.retried() == Retried::UserMessage {
        let (status, _) = w.callback(Event::AgentJoined, &conv, "ev-join").await;
        assert!(success(status));
    }
    backend.mount_refusals(&w.api).await;
    let attempts = || async {
        match backend.retried() {
            Retried::UserMessage => backend
                .relayed_user_texts(&w.api)
                .await
                .iter()
                .filter(|t| t.contains("anyone?"))
                .count(),
            Retried::End => backend.ends(&w.api).await,
            Retried::Start => unreachable!("handled above"),
        }
    };
    let (status, answer) = match backend.retried() {
        Retried::UserMessage => w.send(&user_message("e2", "s-1", "anyone?")).await,
        Retried::End => {
            w.send(&json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"}))
                .await
        }
        Retried::Start => unreachable!("handled above"),
    };
    assert_eq!(status, 200, "accepted although the provider refused: {answer}");
    assert_eq!(attempts().await, 1, "refused once with 429");
    w.after(40).await;
    assert_eq!(attempts().await, 1, "not before Retry-After (45 s)");
    w.after(10).await;
    assert_eq!(attempts().await, 2, "second attempt, refused with 503");
    w.after(60).await;
    assert_eq!(attempts().await, 3, "third attempt, accepted");
    w.after(600).await;
    assert_eq!(attempts().await, 3, "never again once delivered");
    let left = w.env.store.outbox(&SessionKey::new("acme", "s-1")).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Case 6 where the handover call is the only one (see [`Retried::Start`]).
async fn start_retried_inline<B: Backend>(w: &World<'_, B>) {
    w.backend.mount_refusals(&w.api).await;
    let (status, answer) = w.send(&w.backend.handover_request("e1", "s-1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(
        answer["outcome"], "opened",
        "a 45 s Retry-After is not waited for: {answer}"
    );
    assert_eq!(w.backend.starts(&w.api).await, 1, "not tried again inline");
    let left = w.env.store.outbox(&SessionKey::new("acme", "s-1")).await.unwrap();
    assert!(left.is_empty(), "nothing queued: {left:?}");
    let state = w.env.session("acme", "s-1").await.map(|s| s.state);
    assert!(state.is_none_or(|s| s == handover::domain::State::Bot), "{state:?}");
    w.after(46).await;
    assert_eq!(w.backend.starts(&w.api).await, 1, "nothing sent by the evaluator");
    // After Retry-After a new request is sent; its 503 is tried again inline, once.
    w.open("s-1").await;
    assert_eq!(w.backend.starts(&w.api).await, 3, "503, then accepted");
    w.after(600).await;
    assert_eq!(w.backend.starts(&w.api).await, 3, "never again");
}

/// Case 7: a bot turn with quick replies reaches the provider in a form its desk shows.
pub async fn rich_content<B: Backend>(backend: &B) {
    let w = World::new(backend).await;
    w.send(&user_message("e1", "s-1", "Where is my parcel?")).await;
    w.send(&bot_message("e2", "s-1", "Do you have a tracking number?"))
        .await;
    w.open("s-1").await;
    // Compared on decoded JSON text so escaping (`\n`, `\u003c`) does not matter.
    let bodies = all_texts(&w.api).await;
    let form = match backend.quick_replies_form() {
        Ok(form) => form,
        Err(_why) => {
            let sent: Vec<&String> = bodies.iter().filter(|b| b.contains("tracking number")).collect();
            assert!(sent.is_empty(), "bot turns are not sent to this provider: {sent:#?}");
            return;
        }
    };
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("Do you have a tracking number?") && b.contains(form)),
        "the bot turn and its quick replies ({form}) reach the provider: {bodies:#?}"
    );
}

/// The text of every request body the provider mock received (JSON strings decoded).
pub async fn all_texts(api: &MockServer) -> Vec<String> {
    recorded(api)
        .await
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body)
                .map(|v| text_of(&v))
                .unwrap_or_else(|_| String::from_utf8_lossy(&r.body).into_owned())
        })
        .collect()
}

/// Every string in a JSON value, joined by newlines.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        Value::Object(o) => o.values().map(text_of).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

/// Instantiates every case for one backend value, as `#[tokio::test]`s named after the case.
macro_rules! conformance_cases {
    ($backend:expr) => {
        #[tokio::test]
        async fn callback_signature() {
            crate::conformance::callback_signature(&$backend).await
        }
        #[tokio::test]
        async fn duplicate_callback() {
            crate::conformance::duplicate_callback(&$backend).await
        }
        #[tokio::test]
        async fn unknown_event() {
            crate::conformance::unknown_event(&$backend).await
        }
        #[tokio::test]
        async fn full_lifecycle() {
            crate::conformance::full_lifecycle(&$backend).await
        }
        #[tokio::test]
        async fn user_cancel_while_waiting() {
            crate::conformance::user_cancel_while_waiting(&$backend).await
        }
        #[tokio::test]
        async fn retried_after_429_and_5xx() {
            crate::conformance::retried_after_429_and_5xx(&$backend).await
        }
        #[tokio::test]
        async fn rich_content() {
            crate::conformance::rich_content(&$backend).await
        }
    };
}

/// Every provider kind has its backend here, named after the kind (`ProviderKind::as_str`), and
/// instantiates every case with [`conformance_cases!`]: the files are found by `automod`, so
/// this is what fails when one is missing (the compiler cannot tell).
#[test]
fn every_provider_has_a_backend_running_every_case() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/conformance");
    let backends = crate::platform_conformance::backend_files(dir);
    let kinds: std::collections::BTreeSet<String> = handover::config::ProviderKind::iter()
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(backends, kinds, "one backend file per provider kind in {dir}");
    for name in &backends {
        let text = std::fs::read_to_string(format!("{dir}/{name}.rs")).unwrap();
        assert!(text.contains("\nconformance_cases!("), "{name}.rs runs every case");
    }
}

// One module per backend file, found by automod (after the macro, so that they see it).
automod::dir!("tests/it/conformance");

//! One suite of cases run against every bot platform through the real entry point
//! (`bot_webhook::handle`): each platform is a [`Backend`] that only says how its requests are
//! written; the assertions are the same for all. [`platform_cases!`] instantiates every case for
//! a backend as `platform_conformance::<platform>::<case>`.
//!
//! A new bot platform adds one file here, named after its kind (`<kind>.rs`, ending with
//! `platform_cases!(…)`); `automod` finds it, so nothing else in the suite changes, and
//! [`every_platform_has_a_backend_running_every_case`] fails while a platform has none.

use std::collections::BTreeSet;

use handover::bot::PlatformKind;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use strum::IntoEnumIterator;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The secret that authenticates a backend's requests.
pub const SECRET: &str = "platform-secret";

/// What differs between bot platforms: how the bot is configured and how its requests look.
#[allow(async_fn_in_trait)]
pub trait Backend: std::fmt::Debug + Sync {
    /// The bot document's `platform:` block, each line indented by two spaces, with the
    /// platform's secret stored (its verification key set to [`SECRET`]) and its outbound side
    /// at `bot`.
    async fn platform(&self, env: &TestEnv, bot: &MockServer) -> String;

    /// A request carrying `body`, authenticated with `secret`.
    fn request(&self, env: &TestEnv, secret: &str, body: &[u8]) -> lambda_http::Request;

    /// The body of one user turn in session `s`, event `n`.
    fn user_turn(&self, s: &str, n: u32, text: &str) -> Vec<u8>;

    /// The body of a handover request in session `s`.
    fn handover(&self, s: &str) -> Vec<u8>;
}

/// The bot `acme` on `b`'s platform, with the generic webhook provider at `desk` and the
/// platform's outbound side at `bot`.
async fn put_bot<B: Backend>(b: &B, env: &TestEnv, bot: &MockServer, desk: &MockServer) {
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let platform = b.platform(env, bot).await;
    let yaml = format!(
        "botId: acme\nplatform:\n{platform}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{}/desk', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n",
        desk.uri()
    );
    env.put_bot(&yaml).await;
}

async fn servers() -> (MockServer, MockServer) {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&bot)
        .await;
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&desk)
        .await;
    (bot, desk)
}

async fn transcript_len(env: &TestEnv, s: &str) -> usize {
    env.store
        .transcript(&SessionKey::new("acme", s), None)
        .await
        .unwrap()
        .len()
}

pub async fn a_wrong_secret_is_refused_before_anything_is_stored<B: Backend>(b: &B) {
    let env = TestEnv::in_memory().await;
    let (bot, desk) = servers().await;
    put_bot(b, &env, &bot, &desk).await;
    let (status, body) = env
        .call_bot(b.request(&env, "wrong", &b.user_turn("s-1", 1, "hi")))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("unauthorized")),
        "{b:?}"
    );
    assert!(env.session("acme", "s-1").await.is_none(), "{b:?}");
}

pub async fn a_body_that_is_not_json_is_a_400_that_changes_nothing<B: Backend>(b: &B) {
    let env = TestEnv::in_memory().await;
    let (bot, desk) = servers().await;
    put_bot(b, &env, &bot, &desk).await;
    let (status, body) = env.call_bot(b.request(&env, SECRET, b"{not json")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("malformed_json")),
        "{b:?}"
    );
    assert!(env.session("acme", "s-1").await.is_none(), "{b:?}");
}

pub async fn a_user_turn_is_stored_and_answered_in_bot_control<B: Backend>(b: &B) {
    let env = TestEnv::in_memory().await;
    let (bot, desk) = servers().await;
    put_bot(b, &env, &bot, &desk).await;
    let (status, body) = env
        .call_bot(b.request(&env, SECRET, &b.user_turn("s-1", 1, "hi")))
        .await;
    assert_eq!(status, 200, "{b:?}: {body}");
    assert_eq!(body["control"], "bot", "{b:?}: {body}");
    assert_eq!(transcript_len(&env, "s-1").await, 1, "{b:?}");
}

pub async fn a_repeated_request_gets_the_first_answer_and_stores_nothing_more<B: Backend>(b: &B) {
    let env = TestEnv::in_memory().await;
    let (bot, desk) = servers().await;
    put_bot(b, &env, &bot, &desk).await;
    let turn = b.user_turn("s-1", 1, "hi");
    let first = env.call_bot(b.request(&env, SECRET, &turn)).await;
    let again = env.call_bot(b.request(&env, SECRET, &turn)).await;
    assert_eq!(first.0, 200, "{b:?}: {}", first.1);
    assert_eq!(first, again, "{b:?}");
    assert_eq!(transcript_len(&env, "s-1").await, 1, "{b:?}");
}

pub async fn a_handover_request_opens_a_conversation_at_the_provider<B: Backend>(b: &B) {
    let env = TestEnv::in_memory().await;
    let (bot, desk) = servers().await;
    put_bot(b, &env, &bot, &desk).await;
    let (status, _) = env
        .call_bot(b.request(&env, SECRET, &b.user_turn("s-1", 1, "hi")))
        .await;
    assert_eq!(status, 200, "{b:?}");
    let (status, body) = env.call_bot(b.request(&env, SECRET, &b.handover("s-1"))).await;
    assert_eq!(status, 200, "{b:?}: {body}");
    assert_eq!(body["outcome"], "opened", "{b:?}: {body}");
    let session = env.session("acme", "s-1").await.unwrap();
    assert_eq!(
        session.handover.as_ref().map(|h| h.id.as_str()),
        body["handoverId"].as_str(),
        "{b:?}"
    );
    let started: Vec<Value> = received(&desk).await;
    assert_eq!(of_type(&started, "conversation.started").len(), 1, "{b:?}: {started:?}");
}

/// Every platform kind has its backend here, named after the kind, and instantiates every case
/// with [`platform_cases!`]: the files are found by `automod`, so this is what fails when one
/// is missing (the compiler cannot tell). Every platform declares routes, too.
#[test]
fn every_platform_has_a_backend_running_every_case() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/platform_conformance");
    let backends = backend_files(dir);
    let kinds: BTreeSet<String> = PlatformKind::iter()
        .map(|k| serde_json::to_value(k).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backends, kinds, "one backend file per platform kind in {dir}");
    for name in &backends {
        let text = std::fs::read_to_string(format!("{dir}/{name}.rs")).unwrap();
        assert!(text.contains("\nplatform_cases!("), "{name}.rs runs every case");
    }
    for kind in PlatformKind::iter() {
        assert!(
            !handover::platform::port(kind).routes().is_empty(),
            "{kind:?} declares its routes"
        );
    }
}

/// The names of a suite's backend files (every `.rs` but `mod.rs`), as automod finds them.
pub fn backend_files(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "mod.rs")
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_owned))
        .collect()
}

/// Instantiates every case of the suite for one backend (`platform_cases!(Native);` at the end
/// of its file).
macro_rules! platform_cases {
    ($backend:expr) => {
        #[tokio::test]
        async fn a_wrong_secret_is_refused_before_anything_is_stored() {
            crate::platform_conformance::a_wrong_secret_is_refused_before_anything_is_stored(&$backend).await
        }
        #[tokio::test]
        async fn a_body_that_is_not_json_is_a_400_that_changes_nothing() {
            crate::platform_conformance::a_body_that_is_not_json_is_a_400_that_changes_nothing(&$backend).await
        }
        #[tokio::test]
        async fn a_user_turn_is_stored_and_answered_in_bot_control() {
            crate::platform_conformance::a_user_turn_is_stored_and_answered_in_bot_control(&$backend).await
        }
        #[tokio::test]
        async fn a_repeated_request_gets_the_first_answer_and_stores_nothing_more() {
            crate::platform_conformance::a_repeated_request_gets_the_first_answer_and_stores_nothing_more(&$backend)
                .await
        }
        #[tokio::test]
        async fn a_handover_request_opens_a_conversation_at_the_provider() {
            crate::platform_conformance::a_handover_request_opens_a_conversation_at_the_provider(&$backend).await
        }
    };
}

// After the macro, so that the backends see it.
automod::dir!("tests/it/platform_conformance");

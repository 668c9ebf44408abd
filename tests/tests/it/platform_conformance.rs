//! One suite of cases run against every bot platform through the real entry point
//! (`bot_webhook::handle`): each platform is a `Backend` that only says how its requests are
//! written; the assertions are the same for all. A new bot platform adds a backend here.

use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Native,
    Chatlayer,
}

const BACKENDS: [Backend; 2] = [Backend::Native, Backend::Chatlayer];
const SECRET: &str = "platform-secret";

impl Backend {
    /// The bot `acme` on this platform, with the generic webhook provider at `desk` and the
    /// platform's outbound side at `bot`.
    async fn bot(self, env: &TestEnv, bot: &MockServer, desk: &MockServer) {
        let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
        let platform = match self {
            Backend::Native => {
                let p = env.secret("platform", &json!({"signingSecret": SECRET})).await;
                format!("  kind: native\n  outboundUrl: '{}/out'\n  secretRef: {p}", bot.uri())
            }
            Backend::Chatlayer => {
                let p = env
                    .secret("platform", &json!({"verifyToken": SECRET, "apiToken": "api"}))
                    .await;
                format!("  kind: chatlayer\n  apiBaseUrl: '{}'\n  secretRef: {p}", bot.uri())
            }
        };
        let yaml = format!(
            "botId: acme\nplatform:\n{platform}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{}/desk', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n",
            desk.uri()
        );
        env.put_bot(&yaml).await;
    }

    /// A request carrying `body`, authenticated with `secret`.
    fn request(self, env: &TestEnv, secret: &str, body: &[u8]) -> lambda_http::Request {
        match self {
            Backend::Native => env.request(
                "POST",
                "/v1/bots/acme/events",
                &env.signed(secret.as_bytes(), body),
                body,
            ),
            Backend::Chatlayer => env.request(
                "POST",
                &format!("/v1/bots/acme/chatlayer?challenge.verifyToken={secret}"),
                &[],
                body,
            ),
        }
    }

    /// The body of one user turn in session `s`, event `n`.
    fn user_turn(self, s: &str, n: u32, text: &str) -> Vec<u8> {
        let body = match self {
            Backend::Native => user_message(&format!("e-{n}"), s, text),
            Backend::Chatlayer => json!({"botId": "cl-bot", "version": "LIVE", "sessionId": s, "event": "messages",
                "messages": [{"actor": "user", "timestamp": format!("2026-11-25T09:00:0{n}.000Z"),
                    "message": {"messageType": "text", "text": text, "sender": {"id": s}}}]}),
        };
        serde_json::to_vec(&body).unwrap()
    }

    /// The body of a handover request in session `s`.
    fn handover(self, s: &str) -> Vec<u8> {
        let body = match self {
            Backend::Native => handover_request("e-h", s),
            Backend::Chatlayer => json!({"botId": "cl-bot", "version": "LIVE", "sessionId": s, "event": "offload",
                "transcript": [], "payload": {"trigger": "explicit_request"}}),
        };
        serde_json::to_vec(&body).unwrap()
    }
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

#[tokio::test]
async fn a_wrong_secret_is_refused_before_anything_is_stored() {
    for b in BACKENDS {
        let env = TestEnv::in_memory().await;
        let (bot, desk) = servers().await;
        b.bot(&env, &bot, &desk).await;
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
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_that_changes_nothing() {
    for b in BACKENDS {
        let env = TestEnv::in_memory().await;
        let (bot, desk) = servers().await;
        b.bot(&env, &bot, &desk).await;
        let (status, body) = env.call_bot(b.request(&env, SECRET, b"{not json")).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!("malformed_json")),
            "{b:?}"
        );
        assert!(env.session("acme", "s-1").await.is_none(), "{b:?}");
    }
}

#[tokio::test]
async fn a_user_turn_is_stored_and_answered_in_bot_control() {
    for b in BACKENDS {
        let env = TestEnv::in_memory().await;
        let (bot, desk) = servers().await;
        b.bot(&env, &bot, &desk).await;
        let (status, body) = env
            .call_bot(b.request(&env, SECRET, &b.user_turn("s-1", 1, "hi")))
            .await;
        assert_eq!(status, 200, "{b:?}: {body}");
        assert_eq!(body["control"], "bot", "{b:?}: {body}");
        assert_eq!(transcript_len(&env, "s-1").await, 1, "{b:?}");
    }
}

#[tokio::test]
async fn a_repeated_request_gets_the_first_answer_and_stores_nothing_more() {
    for b in BACKENDS {
        let env = TestEnv::in_memory().await;
        let (bot, desk) = servers().await;
        b.bot(&env, &bot, &desk).await;
        let turn = b.user_turn("s-1", 1, "hi");
        let first = env.call_bot(b.request(&env, SECRET, &turn)).await;
        let again = env.call_bot(b.request(&env, SECRET, &turn)).await;
        assert_eq!(first.0, 200, "{b:?}: {}", first.1);
        assert_eq!(first, again, "{b:?}");
        assert_eq!(transcript_len(&env, "s-1").await, 1, "{b:?}");
    }
}

#[tokio::test]
async fn a_handover_request_opens_a_conversation_at_the_provider() {
    for b in BACKENDS {
        let env = TestEnv::in_memory().await;
        let (bot, desk) = servers().await;
        b.bot(&env, &bot, &desk).await;
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
}

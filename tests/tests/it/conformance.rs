//! One conformance suite for every provider adapter: the same test bodies, run against each
//! provider through the real callback handler, the emulator and the provider's mock API.
//!
//! A [`Backend`] gives only what differs between providers: how to open a live handover, how
//! the provider authenticates its callbacks (a signature over the body, or a shared token), a
//! callback that changes something (an agent message; for Sparkcentral, which reports no agent
//! messages, the delegation back to the bot) and one the adapter does not act on. The cases:
//!
//! - a callback is accepted with the right credential, and refused (401, nothing written) with a
//!   wrong one, without one, and, where the provider signs the body, with a tampered body;
//! - a callback delivered twice is applied once: the second delivery changes nothing;
//! - an event the adapter does not act on is acknowledged and changes nothing.
//!
//! The lifecycle, user cancel, retries and rich content are checked per provider in
//! `provider_*.rs` and `webhook_flow.rs`, whose helpers these backends reuse.

use handover_tests::*;
use serde_json::{Value, json};
use wiremock::MockServer;

/// Which credential a callback carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Credential {
    Right,
    WrongSecret,
    Missing,
}

/// One callback as the provider sends it: extra headers (Help Scout names the event in one)
/// and the body.
pub struct Callback {
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl From<Value> for Callback {
    fn from(body: Value) -> Self {
        Callback {
            headers: Vec::new(),
            body,
        }
    }
}

pub trait Backend: Sized {
    /// A test world with one live handover (session `s-1`).
    async fn open() -> Self;
    fn env(&self) -> &TestEnv;
    fn bot_platform(&self) -> &MockServer;
    fn callback_path(&self) -> String;
    /// Whether the credential covers the body (a signature) or not (a shared token).
    fn signs_the_body(&self) -> bool;
    /// The authentication headers for these bytes.
    fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)>;
    /// A callback that changes the session, with this event id.
    fn significant(&self, event_id: &str) -> Callback;
    /// A well-formed callback of a kind the adapter does not act on.
    fn unknown(&self) -> Callback;
    /// Whether the provider was told to end or hand back its side of the conversation; `None`
    /// where the provider has nothing to end (the case says why).
    async fn provider_side_ended(&self) -> Option<bool>;
}

async fn post<B: Backend>(b: &B, cb: &Callback, bytes: &[u8], which: Credential) -> (u16, Value) {
    let mut headers = cb.headers.clone();
    headers.extend(b.credential(bytes, which));
    let req = b.env().request("POST", &b.callback_path(), &headers, bytes);
    b.env().call_provider(req).await
}

async fn send<B: Backend>(b: &B, cb: &Callback) -> (u16, Value) {
    let bytes = serde_json::to_vec(&cb.body).unwrap();
    post(b, cb, &bytes, Credential::Right).await
}

pub async fn credentials_are_checked_before_anything_is_written<B: Backend>() {
    let b = B::open().await;
    let cb = b.significant("conf-1");
    let bytes = serde_json::to_vec(&cb.body).unwrap();
    let before = b.env().dump().await;
    let to_bot = received(b.bot_platform()).await.len();
    for which in [Credential::WrongSecret, Credential::Missing] {
        let (status, answer) = post(&b, &cb, &bytes, which).await;
        assert_eq!(status, 401, "{which:?}: {answer}");
        assert!(answer["error"]["code"].is_string(), "a JSON error: {answer}");
    }
    if b.signs_the_body() {
        // The credential of the original body on a changed one.
        let headers = b.credential(&bytes, Credential::Right);
        let mut tampered = bytes.clone();
        let at = tampered.len() / 2;
        tampered.insert(at, b' ');
        tampered.insert(at, b' ');
        let mut all = cb.headers.clone();
        all.extend(headers);
        let req = b.env().request("POST", &b.callback_path(), &all, &tampered);
        let (status, answer) = b.env().call_provider(req).await;
        assert_eq!(status, 401, "a tampered body: {answer}");
    }
    assert_eq!(b.env().dump().await, before, "a refused callback writes nothing");
    assert_eq!(received(b.bot_platform()).await.len(), to_bot);

    let (status, answer) = post(&b, &cb, &bytes, Credential::Right).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(b.env().dump().await, before, "the accepted callback was applied");
}

pub async fn a_callback_delivered_twice_is_applied_once<B: Backend>() {
    let b = B::open().await;
    let cb = b.significant("conf-2");
    let before = b.env().dump().await;
    let (status, answer) = send(&b, &cb).await;
    assert_eq!(status, 200, "{answer}");
    let after_first = b.env().dump().await;
    assert_ne!(after_first, before, "the first delivery was applied");
    let to_bot = received(b.bot_platform()).await;
    let (status, again) = send(&b, &cb).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(b.env().dump().await, after_first, "the repeat changed the table");
    assert_eq!(received(b.bot_platform()).await, to_bot, "the repeat reached the bot");
}

pub async fn an_event_the_adapter_does_not_act_on_is_acknowledged_and_ignored<B: Backend>() {
    let b = B::open().await;
    let before = b.env().dump().await;
    let to_bot = received(b.bot_platform()).await.len();
    let (status, answer) = send(&b, &b.unknown()).await;
    assert!((200..300).contains(&status), "{status} {answer}");
    assert_eq!(b.env().dump().await, before);
    assert_eq!(received(b.bot_platform()).await.len(), to_bot);
}

pub async fn a_user_cancel_while_waiting_ends_the_provider_side<B: Backend>() {
    let b = B::open().await;
    assert!(!b.provider_side_ended().await.unwrap_or(false), "nothing ended yet");
    let cancel = json!({"id": "conf-cancel", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = b.env().send_event("acme", b"bot-secret", &cancel).await;
    assert_eq!(status, 200, "{answer}");
    let ended = of_type(&received(b.bot_platform()).await, "handover.ended")
        .iter()
        .map(|e| e["reason"].clone())
        .collect::<Vec<_>>();
    assert_eq!(
        ended,
        [json!("user_cancelled")],
        "the bot is told once, with the reason"
    );
    let session = b.env().session("acme", "s-1").await.unwrap();
    assert_eq!(session.state, handover::domain::State::Bot);
    if let Some(ended) = b.provider_side_ended().await {
        assert!(ended, "the provider was not told");
    }
}

macro_rules! conformance {
    ($($provider:ident => $backend:ty),* $(,)?) => {$(
        mod $provider {
            #[tokio::test]
            async fn credentials_are_checked_before_anything_is_written() {
                super::credentials_are_checked_before_anything_is_written::<$backend>().await
            }
            #[tokio::test]
            async fn a_callback_delivered_twice_is_applied_once() {
                super::a_callback_delivered_twice_is_applied_once::<$backend>().await
            }
            #[tokio::test]
            async fn a_user_cancel_while_waiting_ends_the_provider_side() {
                super::a_user_cancel_while_waiting_ends_the_provider_side::<$backend>().await
            }
            #[tokio::test]
            async fn an_event_the_adapter_does_not_act_on_is_acknowledged_and_ignored() {
                super::an_event_the_adapter_does_not_act_on_is_acknowledged_and_ignored::<$backend>().await
            }
        }
    )*};
}

conformance! {
    webhook => crate::conformance::backends::Webhook,
    zendesk => crate::conformance::backends::Zendesk,
    intercom => crate::conformance::backends::Intercom,
    genesys => crate::conformance::backends::Genesys,
    helpscout => crate::conformance::backends::HelpScout,
    engage => crate::conformance::backends::Engage,
    sparkcentral => crate::conformance::backends::Sparkcentral,
    interact => crate::conformance::backends::Interact,
}

/// The eight providers. Each reuses its own module's world and callback builders.
mod backends {
    use super::*;
    use crate::{provider_engage as en, provider_genesys as ge, provider_helpscout as hs, provider_intercom as ic};
    use crate::{provider_interact as ia, provider_sparkcentral as sc, provider_zendesk as zd, webhook_flow as wf};
    use handover::providers::{genesys, helpscout, intercom, sparkcentral};

    fn shared_token(name: &'static str, right: &str, which: Credential) -> Vec<(&'static str, String)> {
        match which {
            Credential::Right => vec![(name, right.to_owned())],
            Credential::WrongSecret => vec![(name, "not-the-secret".to_owned())],
            Credential::Missing => Vec::new(),
        }
    }

    fn signed(
        name: &'static str,
        sign: impl Fn(&[u8]) -> String,
        wrong: impl Fn(&[u8]) -> String,
        bytes: &[u8],
        which: Credential,
    ) -> Vec<(&'static str, String)> {
        match which {
            Credential::Right => vec![(name, sign(bytes))],
            Credential::WrongSecret => vec![(name, wrong(bytes))],
            Credential::Missing => Vec::new(),
        }
    }

    // -- the generic webhook: our own signed contract ---------------------------------------

    pub struct Webhook {
        env: TestEnv,
        bot: MockServer,
        desk: MockServer,
        conversation: String,
    }

    impl Backend for Webhook {
        async fn provider_side_ended(&self) -> Option<bool> {
            Some(!of_type(&received(&self.desk).await, "conversation.ended").is_empty())
        }
        async fn open() -> Self {
            let env = TestEnv::new().await;
            let (bot, desk) = wf::servers().await;
            let sb = env
                .standard_bot(&format!("{}/bot", bot.uri()), &format!("{}/desk", desk.uri()), "")
                .await;
            let (_, opened) = env
                .send_event("acme", &sb.platform_secret, &handover_request("e1", "s-1"))
                .await;
            let conversation = opened["handoverId"].as_str().unwrap().to_owned();
            Webhook {
                env,
                bot,
                desk,
                conversation,
            }
        }
        fn env(&self) -> &TestEnv {
            &self.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.bot
        }
        fn callback_path(&self) -> String {
            "/v1/bots/acme/providers/desk/callback".into()
        }
        fn signs_the_body(&self) -> bool {
            true
        }
        fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            match which {
                Credential::Right => self.env.signed(b"desk-secret", bytes),
                Credential::WrongSecret => self.env.signed(b"another-secret", bytes),
                Credential::Missing => Vec::new(),
            }
        }
        fn significant(&self, id: &str) -> Callback {
            json!({"id": id, "type": "agent.message", "conversationId": self.conversation,
                   "agent": {"id": "a-1", "name": "Eva"}, "message": {"text": "Hello"}})
            .into()
        }
        fn unknown(&self) -> Callback {
            json!({"id": "u-1", "type": "agent.dancing", "conversationId": self.conversation}).into()
        }
    }

    // -- Zendesk (Sunshine Conversations): a shared key in X-API-Key -------------------------

    pub struct Zendesk(zd::World);

    impl Backend for Zendesk {
        async fn provider_side_ended(&self) -> Option<bool> {
            // Control passed back to the bot's switchboard integration.
            Some(
                self.0
                    .zd_calls()
                    .await
                    .iter()
                    .any(|(p, b)| *p == zd::pass_control_path() && b["switchboardIntegration"] == "chatbot"),
            )
        }
        async fn open() -> Self {
            let w = zd::world(Some("chatbot")).await;
            w.opened("e1", "s-1").await;
            Zendesk(w)
        }
        fn env(&self) -> &TestEnv {
            &self.0.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.0.bot_srv
        }
        fn callback_path(&self) -> String {
            "/v1/bots/acme/providers/zd/callback".into()
        }
        fn signs_the_body(&self) -> bool {
            false
        }
        fn credential(&self, _bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            shared_token("x-api-key", zd::WEBHOOK_SECRET, which)
        }
        fn significant(&self, id: &str) -> Callback {
            zd::envelope(vec![zd::business_message(id, "zd:agentWorkspace", "Eva", "Hello")]).into()
        }
        fn unknown(&self) -> Callback {
            zd::envelope(vec![
                json!({"id": "u-1", "createdAt": "2026-11-25T09:05:00.000Z", "type": "conversation:read",
                "payload": {"conversation": {"id": zd::CONV, "type": "personal"}}}),
            ])
            .into()
        }
    }

    // -- Intercom: X-Hub-Signature, HMAC-SHA1 of the body -----------------------------------

    pub struct Intercom(ic::World);

    impl Backend for Intercom {
        async fn provider_side_ended(&self) -> Option<bool> {
            // Assigned back to the bot teammate.
            Some(self.0.writes().await.iter().any(|(_, b)| {
                b["message_type"] == "assignment" && b["type"] == "admin" && b["assignee_id"] == ic::BOT_ADMIN
            }))
        }
        async fn open() -> Self {
            let w = ic::world().await;
            let (status, answer) = w.send(&ic::embedded_request("e1", "s-1")).await;
            assert_eq!((status, answer["outcome"].clone()), (200, json!("opened")), "{answer}");
            Intercom(w)
        }
        fn env(&self) -> &TestEnv {
            &self.0.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.0.bot_srv
        }
        fn callback_path(&self) -> String {
            ic::CALLBACK.into()
        }
        fn signs_the_body(&self) -> bool {
            true
        }
        fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            signed(
                "X-Hub-Signature",
                |b| intercom::signature(ic::CLIENT_SECRET, b),
                |b| intercom::signature(b"another-secret", b),
                bytes,
                which,
            )
        }
        fn significant(&self, id: &str) -> Callback {
            ic::eva_says(id, ic::EMBEDDED, &format!("part-{id}"), "<p>Hello</p>").into()
        }
        fn unknown(&self) -> Callback {
            ic::notification(
                "u-1",
                "contact.user.created",
                json!({"type": "contact", "id": ic::CONTACT}),
            )
            .into()
        }
    }

    // -- Genesys Cloud Open Messaging: X-Hub-Signature-256 ----------------------------------

    pub struct Genesys {
        env: TestEnv,
        bot: MockServer,
        genesys_srv: MockServer,
        handover: String,
    }

    impl Backend for Genesys {
        async fn provider_side_ended(&self) -> Option<bool> {
            // The Genesys conversation's participants disconnected.
            Some(
                !requests_to(&self.genesys_srv, "PATCH", ge::DISCONNECT_PATH)
                    .await
                    .is_empty(),
            )
        }
        async fn open() -> Self {
            let env = TestEnv::new().await;
            let (bot, g) = ge::servers().await;
            ge::genesys_bot(&env, &bot, &g).await;
            let handover = ge::open(&env, "s-1").await;
            Genesys {
                env,
                bot,
                genesys_srv: g,
                handover,
            }
        }
        fn env(&self) -> &TestEnv {
            &self.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.bot
        }
        fn callback_path(&self) -> String {
            ge::CALLBACK_PATH.into()
        }
        fn signs_the_body(&self) -> bool {
            true
        }
        fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            signed(
                "x-hub-signature-256",
                |b| genesys::signature(ge::WEBHOOK_SECRET, b),
                |b| genesys::signature(b"another-secret", b),
                bytes,
                which,
            )
        }
        fn significant(&self, id: &str) -> Callback {
            ge::agent_text(id, &self.handover, "Hello").into()
        }
        fn unknown(&self) -> Callback {
            let mut receipt = ge::agent_text("u-1", &self.handover, "");
            receipt["type"] = json!("Receipt");
            receipt.as_object_mut().unwrap().remove("text");
            receipt["status"] = json!("Delivered");
            receipt.into()
        }
    }

    // -- Help Scout: X-HelpScout-Signature, the event in X-HelpScout-Event ------------------

    pub struct HelpScout {
        env: TestEnv,
        bot: MockServer,
        hs_srv: MockServer,
    }

    impl Backend for HelpScout {
        async fn provider_side_ended(&self) -> Option<bool> {
            // A note posted with `status: closed`.
            Some(
                requests_to(&self.hs_srv, "POST", hs::NOTES_PATH)
                    .await
                    .iter()
                    .any(|r| json_of(r)["status"] == "closed"),
            )
        }
        async fn open() -> Self {
            let env = TestEnv::new().await;
            let (bot, h) = hs::servers().await;
            hs::helpscout_bot(&env, &bot, &h).await;
            hs::open(&env, "s-1").await;
            HelpScout { env, bot, hs_srv: h }
        }
        fn env(&self) -> &TestEnv {
            &self.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.bot
        }
        fn callback_path(&self) -> String {
            hs::CALLBACK_PATH.into()
        }
        fn signs_the_body(&self) -> bool {
            true
        }
        fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            signed(
                "x-helpscout-signature",
                |b| helpscout::signature(hs::WEBHOOK_SECRET, b),
                |b| helpscout::signature(b"another-secret", b),
                bytes,
                which,
            )
        }
        fn significant(&self, id: &str) -> Callback {
            let thread: u64 = 9000 + id.bytes().map(u64::from).sum::<u64>();
            Callback {
                headers: vec![("x-helpscout-event", "convo.agent.reply.created".into())],
                body: hs::conversation(
                    4321,
                    "active",
                    vec![hs::agent_reply(thread, "<p>Hello</p>", "2026-11-25T09:01:00Z")],
                ),
            }
        }
        fn unknown(&self) -> Callback {
            Callback {
                headers: vec![("x-helpscout-event", "convo.tags".into())],
                body: hs::conversation(4321, "active", Vec::new()),
            }
        }
    }

    // -- RingCentral Engage Digital: the webhook secret in X-Dimelo-Secret ------------------

    pub struct Engage(en::World);

    impl Backend for Engage {
        async fn provider_side_ended(&self) -> Option<bool> {
            // The thread put back in the bot's category.
            Some(self.0.thread_categories().contains(&en::BOT_CATEGORY.to_owned()))
        }
        async fn open() -> Self {
            let w = en::world().await;
            w.opened("e1", "s-1").await;
            Engage(w)
        }
        fn env(&self) -> &TestEnv {
            &self.0.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.0.bot_srv
        }
        fn callback_path(&self) -> String {
            en::CALLBACK_PATH.into()
        }
        fn signs_the_body(&self) -> bool {
            false
        }
        fn credential(&self, _bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            shared_token("x-dimelo-secret", en::WEBHOOK_SECRET, which)
        }
        fn significant(&self, id: &str) -> Callback {
            en::notification(&format!("req-{id}"), vec![en::reply_event(id, en::AGENT, "Hello")]).into()
        }
        fn unknown(&self) -> Callback {
            let mut event = en::reply_event("u-1", en::AGENT, "Hello");
            event["type"] = json!("content.imported");
            en::notification("req-u-1", vec![event]).into()
        }
    }

    // -- Sparkcentral / Hootsuite Inbox: X-Hootsuite-Signature ------------------------------

    pub struct Sparkcentral(sc::World);

    impl Backend for Sparkcentral {
        /// Nothing to end: Sparkcentral hands the conversation to agents only when the virtual
        /// agent delegates it, which a waiting handover has not done yet; the user's cancel
        /// leaves Sparkcentral alone (`provider_sparkcentral::a_user_cancel_ends_the_handover_and_leaves_sparkcentral_alone`).
        async fn provider_side_ended(&self) -> Option<bool> {
            None
        }
        async fn open() -> Self {
            let w = sc::world(sc::INBOX, "").await;
            w.opened("e1", "s-1").await;
            Sparkcentral(w)
        }
        fn env(&self) -> &TestEnv {
            &self.0.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.0.bot_srv
        }
        fn callback_path(&self) -> String {
            sc::CALLBACK.into()
        }
        fn signs_the_body(&self) -> bool {
            true
        }
        fn credential(&self, bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            signed(
                self.0.api.signature_header,
                |b| sparkcentral::signature(sc::SHARED, b).unwrap(),
                |b| sparkcentral::signature(&"ab".repeat(32), b).unwrap(),
                bytes,
                which,
            )
        }
        /// Sparkcentral reports no agent messages: its significant event is the conversation
        /// delegated back to the virtual agent, which ends the handover.
        fn significant(&self, id: &str) -> Callback {
            self.0.assignment("CONVERSATION_DELEGATED", id).into()
        }
        fn unknown(&self) -> Callback {
            self.0
                .event(
                    "CONVERSATION_TOPICS_CHANGED",
                    "u-1",
                    json!({"conversationId": sc::CONV}),
                )
                .into()
        }
    }

    // -- #Interact: the callback token we gave it, as a bearer token ------------------------

    pub struct Interact {
        env: TestEnv,
        bot: MockServer,
        interact_srv: MockServer,
    }

    impl Backend for Interact {
        async fn provider_side_ended(&self) -> Option<bool> {
            Some(!ia::posts_to(&self.interact_srv, ia::CLOSE_PATH).await.is_empty())
        }
        async fn open() -> Self {
            let env = TestEnv::new().await;
            let (bot, i) = ia::servers().await;
            ia::interact_bot(&env, &bot, &i, "").await;
            ia::open(&env, "s-1").await;
            Interact {
                env,
                bot,
                interact_srv: i,
            }
        }
        fn env(&self) -> &TestEnv {
            &self.env
        }
        fn bot_platform(&self) -> &MockServer {
            &self.bot
        }
        fn callback_path(&self) -> String {
            ia::CALLBACK_PATH.into()
        }
        fn signs_the_body(&self) -> bool {
            false
        }
        fn credential(&self, _bytes: &[u8], which: Credential) -> Vec<(&'static str, String)> {
            shared_token("authorization", &format!("Bearer {}", ia::CALLBACK_TOKEN), which)
        }
        fn significant(&self, id: &str) -> Callback {
            ia::agent_text(id, ia::INTERACT_CONVERSATION, "Hello").into()
        }
        fn unknown(&self) -> Callback {
            json!({"type": "agent.dancing", "id": "u-1", "conversationId": ia::INTERACT_CONVERSATION}).into()
        }
    }
}

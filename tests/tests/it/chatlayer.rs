//! Chatlayer's Offloading Webhook contract through the real handler: the documentation's own
//! examples byte for byte, a full handover with the generic webhook provider and a mock
//! Chatlayer API, refused offloads, and bad input.

use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "verify-me";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/chatlayer/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A Chatlayer bot whose Chatlayer API and provider are mock servers.
async fn chatlayer_bot(env: &TestEnv, chatlayer: &MockServer, desk: &MockServer, extra: &str) {
    let p = env
        .secret("chatlayer", &json!({"verifyToken": TOKEN, "apiToken": "cl-api-token"}))
        .await;
    let d = env.secret("desk", &json!({"signingSecret": "desk-secret"})).await;
    let yaml = format!(
        "botId: acme\nplatform:\n  kind: chatlayer\n  secretRef: {p}\n  apiBaseUrl: '{}'\n{extra}\nproviders:\n  - {{ id: desk, kind: webhook, url: '{}/desk', secretRef: {d} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n",
        chatlayer.uri(),
        desk.uri()
    );
    env.put_bot(&yaml).await;
}

const PAUSE: &str = "  pauseAction: { pauseBot: true }\n  resumeAction: { pauseBot: false }";

async fn post(env: &TestEnv, query: &str, body: &[u8]) -> (u16, Value) {
    let req = env.request("POST", &format!("/v1/bots/acme/chatlayer?{query}"), &[], body);
    env.call_bot(req).await
}

async fn ok_servers() -> (MockServer, MockServer) {
    let cl = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&cl)
        .await;
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&desk)
        .await;
    (cl, desk)
}

#[tokio::test]
async fn documented_examples_go_through_the_handler_as_published() {
    let env = TestEnv::in_memory().await;
    let (cl, desk) = ok_servers().await;
    chatlayer_bot(&env, &cl, &desk, "").await;
    let q = format!("challenge.verifyToken={TOKEN}");

    // Health check: GET with the verify token; the documented answer.
    let req = env.request("GET", &format!("/v1/bots/acme/chatlayer?{q}"), &[], b"");
    let (status, body) = env.call_bot(req).await;
    let documented: Value = serde_json::from_slice(&fixture("health-check-response.json")).unwrap();
    assert_eq!((status, body), (200, documented));

    let session_of = |name: &str| -> String {
        serde_json::from_slice::<Value>(&fixture(name)).unwrap()["sessionId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let texts = |key: SessionKey| {
        let env = &env;
        async move {
            env.store
                .transcript(&key, None)
                .await
                .unwrap()
                .iter()
                .map(|e| e.message.render_text())
                .collect::<Vec<_>>()
        }
    };

    for (name, expected) in [
        ("messages-event-bot-text.json", vec!["Hi Welcome"]),
        (
            "messages-event-bot-quick-replies.json",
            vec![
                "Hi Welcome",
                "Choose what you want to do?\n[Quick replies: Do API FROM CODE | Api Plugin | SendMessageFromCode]",
            ],
        ),
        ("messages-event-user-text.json", vec!["hi there"]),
        ("messages-event-user-postback.json", vec!["Set Variables"]),
    ] {
        let (status, body) = post(&env, &q, &fixture(name)).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            texts(SessionKey::new("acme", &session_of(name))).await,
            expected,
            "{name}"
        );
    }
    // The generic template becomes a carousel the agent can read.
    let name = "messages-event-bot-generic-template.json";
    assert_eq!(post(&env, &q, &fixture(name)).await.0, 200);
    let carousel = texts(SessionKey::new("acme", &session_of(name))).await;
    assert!(carousel[0].starts_with("1. Item 1"), "{carousel:?}");
    // The intro carries no content: acknowledged, nothing stored.
    let name = "messages-event-user-intro.json";
    assert_eq!(post(&env, &q, &fixture(name)).await, (200, json!({"status": "ok"})));
    assert!(env.session("acme", &session_of(name)).await.is_none());

    // Two published examples are not valid JSON: refused clearly, nothing stored; with the
    // typo fixed they are accepted.
    for (name, fix) in [
        ("messages-event-user-file-upload.json", ("}}", "}")),
        ("messages-event-user-location.json", ("} \n", "},\n")),
    ] {
        let raw = fixture(name);
        let (status, body) = post(&env, &q, &raw).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("malformed_json")),
            "{name}"
        );
        let text = String::from_utf8(raw).unwrap();
        let fixed = match text.rfind(fix.0) {
            Some(i) if name.contains("file-upload") => format!("{}{}", &text[..i], fix.1),
            _ => text.replacen(fix.0, fix.1, 1),
        };
        let (status, body) = post(&env, &q, fixed.as_bytes()).await;
        assert_eq!(status, 200, "{name} fixed: {body}");
    }
    let file = texts(SessionKey::new("acme", "1636964964162")).await;
    assert!(
        file[0].starts_with("[File: https://minio.dev.chatlayer.ai/"),
        "{file:?}"
    );
    let location = texts(SessionKey::new("acme", &session_of("messages-event-user-text.json"))).await;
    assert_eq!(location.last().unwrap(), "[Location: 0, 0]");

    // The offload example: a handover opens with the whole transcript.
    let (status, answer) = post(&env, &q, &fixture("offload-event.json")).await;
    assert_eq!(status, 200, "{answer}");
    let documented: Value = serde_json::from_slice(&fixture("offload-response.json")).unwrap();
    assert_eq!(answer["offloadSuccess"], documented["offloadSuccess"]);
    assert_eq!(
        answer["pauseBot"], true,
        "without a pause call configured, Chatlayer's documented behaviour"
    );
    let started = received(&desk)
        .await
        .into_iter()
        .find(|b| b["type"] == "conversation.started")
        .unwrap();
    let transcript = started["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 4);
    assert_eq!(transcript[2]["message"]["text"], "first options");
    assert_eq!(
        transcript[3]["message"]["buttons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Set Variables", "offload"]
    );
    assert!(
        started["transcriptText"]
            .as_str()
            .unwrap()
            .contains("[Buttons: Set Variables | offload]")
    );
}

/// Requests the mock Chatlayer API received on the conversation-actions endpoint.
async fn actions(cl: &MockServer) -> Vec<Value> {
    cl.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/actions"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn messages_event(session: &str, items: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"botId": "cl-bot", "version": "LIVE", "sessionId": session, "event": "messages", "messages": items, "timestamp": "2026-11-25T09:00:00.000Z"})).unwrap()
}

#[tokio::test]
async fn full_handover_pauses_at_the_join_and_resumes_at_the_close() {
    let env = TestEnv::in_memory().await;
    let cl = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/bots/cl-bot/conversations/s-9/actions$"))
        .and(query_param("version", "LIVE"))
        .and(header("authorization", "Bearer cl-api-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&cl)
        .await;
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&desk)
        .await;
    chatlayer_bot(&env, &cl, &desk, PAUSE).await;
    let q = format!("token={TOKEN}&challenge.verifyToken={TOKEN}");

    let user = json!({"actor": "user", "timestamp": "2026-11-25T09:00:01.000Z", "message": {"messageType": "text", "text": "Where is my parcel?", "sender": {"id": "s-9", "firstname": "Ann", "preferredLanguage": "en"}}});
    let bot = json!({"actor": "bot", "timestamp": "2026-11-25T09:00:02.000Z", "message": {"text": "Do you want an agent?", "quick_replies": [{"title": "Yes", "payload": "{}", "content_type": "text"}]}});
    assert_eq!(post(&env, &q, &messages_event("s-9", json!([user, bot]))).await.0, 200);

    // The offload repeats both turns and adds the user's answer.
    let answer_yes = json!({"actor": "user", "timestamp": "2026-11-25T09:00:03.000Z", "message": {"messageType": "postback", "title": "Yes", "sender": {"id": "s-9"}}});
    let offload = json!({"botId": "cl-bot", "version": "LIVE", "sessionId": "s-9", "timestamp": "2026-11-25T09:00:04.000Z", "event": "offload",
        "transcript": [user, bot, answer_yes], "payload": {"queue": "general", "trigger": "not_understood", "orderId": "A-1", "tags": ["vip"]}});
    let (status, answer) = post(&env, &q, &serde_json::to_vec(&offload).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (answer["offloadSuccess"].as_bool(), answer["pauseBot"].as_bool()),
        (Some(true), Some(false)),
        "the bot stays active while waiting"
    );
    let started = received(&desk)
        .await
        .into_iter()
        .find(|b| b["type"] == "conversation.started")
        .unwrap();
    let texts: Vec<&str> = started["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"]["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        texts,
        ["Where is my parcel?", "Do you want an agent?", "Yes"],
        "each turn once"
    );
    assert_eq!(started["trigger"], "not_understood");
    assert_eq!(started["variables"]["orderId"], "A-1");
    assert_eq!(started["user"]["name"], "Ann");
    assert!(actions(&cl).await.is_empty(), "no pause while waiting");

    // While waiting, messages still come from Chatlayer and are mirrored.
    let waiting = json!({"actor": "user", "timestamp": "2026-11-25T09:00:05.000Z", "message": {"messageType": "text", "text": "Hello?", "sender": {"id": "s-9"}}});
    let (_, a) = post(&env, &q, &messages_event("s-9", json!([waiting]))).await;
    assert_eq!(a["control"], "bot");

    // The agent joins: pause, then the joined dialog.
    let conv = answer["handoverId"].as_str().unwrap().to_owned();
    let cb = |id: &str, t: &str, extra: Value| {
        let mut v = json!({"id": id, "type": t, "conversationId": conv, "agent": {"id": "a-3", "name": "Eva"}});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    env.send_callback("acme", "desk", b"desk-secret", &cb("c1", "agent.joined", json!({})))
        .await;
    let acts = actions(&cl).await;
    assert_eq!(acts[0], json!({"pauseBot": true}), "pause at the join");
    assert_eq!(
        acts[1]["sendMessages"][0]["textMessageTemplate"]["textMessages"][0]["text"],
        "Eva joined the chat."
    );

    // A user message now goes to the agent; the agent's answer reaches Chatlayer.
    let to_agent = json!({"actor": "user", "timestamp": "2026-11-25T09:01:00.000Z", "message": {"messageType": "text", "text": "Hi Eva", "sender": {"id": "s-9"}}});
    let (_, a) = post(&env, &q, &messages_event("s-9", json!([to_agent]))).await;
    assert_eq!(a["control"], "agent");
    assert_eq!(
        received(&desk)
            .await
            .into_iter()
            .rfind(|b| b["type"] == "user.message")
            .unwrap()["text"],
        "Hi Eva"
    );
    env.send_callback(
        "acme",
        "desk",
        b"desk-secret",
        &cb(
            "c2",
            "agent.message",
            json!({"message": {"text": "Your parcel left today."}}),
        ),
    )
    .await;
    let acts = actions(&cl).await;
    assert_eq!(
        acts[2]["sendMessages"][0]["textMessageTemplate"]["textMessages"][0]["text"],
        "Your parcel left today."
    );

    // Closing resumes the bot and records agent_closed.
    env.send_callback(
        "acme",
        "desk",
        b"desk-secret",
        &cb("c3", "conversation.closed", json!({})),
    )
    .await;
    let acts = actions(&cl).await;
    assert_eq!(acts[3], json!({"pauseBot": false}), "resume at the close");
    assert!(acts[4]["sendMessages"].is_array());
    let s = env.session("acme", "s-9").await.unwrap();
    assert_eq!(
        s.last_handover.unwrap().end_reason,
        Some(handover::domain::EndReason::AgentClosed)
    );
}

#[tokio::test]
async fn refused_offloads_say_why_and_create_nothing_at_the_provider() {
    for (extra, reason) in [
        ("disabled: { reason: 'Incident' }", "kill_switch"),
        (
            "hours: { timeZone: Europe/Brussels, openingHours: 'Mo-Fr 13:00-14:00' }",
            "outside_hours",
        ),
    ] {
        let env = TestEnv::in_memory().await;
        let (cl, desk) = ok_servers().await;
        chatlayer_bot(&env, &cl, &desk, "").await;
        let text = std::fs::read_to_string(format!(
            "{}/../tests/fixtures/chatlayer/offload-event.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        // Same bot with the restriction added.
        let mut config = env.store.get_bot("acme").await.unwrap().unwrap().value;
        let extra: handover::config::BotConfig = serde_yaml_ng::from_str(&format!(
            "botId: x\nplatform: {{ kind: native, outboundUrl: 'http://x', secretRef: x }}\nproviders: []\nrouting: []\n{extra}"
        ))
        .unwrap();
        config.disabled = extra.disabled;
        config.hours = extra.hours;
        env.store.put_bot(&config).await.unwrap();

        let (status, answer) = post(&env, &format!("token={TOKEN}"), text.as_bytes()).await;
        assert_eq!(status, 200);
        assert_eq!(answer["offloadSuccess"], false, "{answer}");
        assert_eq!(answer["pauseBot"], false);
        assert_eq!(answer["reason"], reason);
        assert!(received(&desk).await.is_empty(), "no provider conversation");
        let acts = actions(&cl).await;
        assert_eq!(acts.len(), 1, "the dialog is sent to the user");
        let shown = acts[0]["sendMessages"][0]["textMessageTemplate"]["textMessages"][0]["text"]
            .as_str()
            .unwrap();
        assert_eq!(shown, answer["dialog"]["text"].as_str().unwrap());
    }
}

#[tokio::test]
async fn bad_chatlayer_requests_are_refused_and_change_nothing() {
    let env = TestEnv::in_memory().await;
    let (cl, desk) = ok_servers().await;
    chatlayer_bot(&env, &cl, &desk, "").await;
    let before = env.dump().await;
    let good = fixture("messages-event-user-text.json");
    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "wrong token",
            "challenge.verifyToken=nope".into(),
            good.clone(),
            401,
            "unauthorized",
        ),
        ("missing token", String::new(), good.clone(), 401, "unauthorized"),
        (
            "malformed JSON",
            format!("token={TOKEN}"),
            b"{\"event\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "unknown event",
            format!("token={TOKEN}"),
            br#"{"event":"typing","sessionId":"s-1"}"#.to_vec(),
            400,
            "unknown_event",
        ),
        (
            "missing session",
            format!("token={TOKEN}"),
            br#"{"event":"messages","messages":[]}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "empty session",
            format!("token={TOKEN}"),
            br#"{"event":"messages","sessionId":"","messages":[]}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "oversized body",
            format!("token={TOKEN}"),
            vec![b' '; 256 * 1024 + 1],
            413,
            "payload_too_large",
        ),
        (
            "bad payload",
            format!("token={TOKEN}"),
            br#"{"event":"offload","sessionId":"s-1","transcript":[],"payload":{"trigger":"whenever"}}"#.to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (name, query, body, status, code) in cases {
        let (s, b) = post(&env, &query, &body).await;
        assert_eq!((s, b["error"]["code"].as_str()), (status, Some(code)), "{name}: {b}");
        assert_eq!(env.dump().await, before, "{name}: nothing stored");
    }
    let req = env.request("GET", "/v1/bots/acme/chatlayer?challenge.verifyToken=nope", &[], b"");
    assert_eq!(env.call_bot(req).await.0, 401, "health check with a wrong token");
    assert!(received(&desk).await.is_empty());
}

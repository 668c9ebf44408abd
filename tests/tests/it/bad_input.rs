//! Bad input gets a clear 4xx JSON error, never a 500 or a panic, and changes nothing.

use handover_tests::*;
use serde_json::{Value, json};
use wiremock::MockServer;

struct Case {
    name: &'static str,
    status: u16,
    code: &'static str,
    /// A part of the message that must be there (the field name, for example).
    mentions: &'static str,
}

async fn setup() -> (TestEnv, StandardBot, MockServer) {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    // Some state to protect: a session with a message.
    let (s, _) = env
        .send_event("acme", &bot.platform_secret, &user_message("seed", "s-1", "hi"))
        .await;
    assert_eq!(s, 200);
    (env, bot, srv)
}

async fn check(env: &TestEnv, case: Case, resp: (u16, Value), before: &[String]) {
    let (status, body) = resp;
    assert_eq!(status, case.status, "{}: {body}", case.name);
    assert_eq!(body["error"]["code"], case.code, "{}: {body}", case.name);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(case.mentions),
        "{}: message {message:?} should mention {:?}",
        case.name,
        case.mentions
    );
    assert_eq!(env.dump().await, before, "{}: the table changed", case.name);
}

#[tokio::test]
async fn bad_native_requests_are_refused_and_change_nothing() {
    let (env, bot, _srv) = setup().await;
    let before = env.dump().await;
    let post =
        |path: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>| env.request("POST", path, &headers, &body);
    let events = "/v1/bots/acme/events";
    let signed = |body: &[u8]| env.signed(&bot.platform_secret, body);

    let body = b"{\"id\": \"x\", \"type\": ".to_vec();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "malformed JSON",
            status: 400,
            code: "malformed_json",
            mentions: "JSON",
        },
        r,
        &before,
    )
    .await;

    let body =
        serde_json::to_vec(&json!({"id": "x", "type": "message", "message": {"actor": "user", "text": "hi"}})).unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "missing sessionId",
            status: 400,
            code: "invalid_request",
            mentions: "sessionId",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "x", "type": "message", "sessionId": "s-1"})).unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "missing message",
            status: 400,
            code: "invalid_request",
            mentions: "message",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "x", "type": "handover.request", "sessionId": "s-1", "handover": {}}))
        .unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "missing trigger",
            status: 400,
            code: "invalid_request",
            mentions: "trigger",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&user_message("x", "s-1", "hi")).unwrap();
    let r = env
        .call_bot(post(events, env.signed(b"wrong-secret", &body), body.clone()))
        .await;
    check(
        &env,
        Case {
            name: "wrong signature",
            status: 401,
            code: "unauthorized",
            mentions: "signature",
        },
        r,
        &before,
    )
    .await;

    let r = env.call_bot(post(events, vec![], body.clone())).await;
    check(
        &env,
        Case {
            name: "unsigned",
            status: 401,
            code: "unauthorized",
            mentions: "missing",
        },
        r,
        &before,
    )
    .await;

    let stale = handover::signing::headers(&bot.platform_secret, env.now().timestamp() - 301, &body).to_vec();
    let r = env.call_bot(post(events, stale, body.clone())).await;
    check(
        &env,
        Case {
            name: "stale timestamp",
            status: 401,
            code: "unauthorized",
            mentions: "window",
        },
        r,
        &before,
    )
    .await;

    let future = handover::signing::headers(&bot.platform_secret, env.now().timestamp() + 301, &body).to_vec();
    let r = env.call_bot(post(events, future, body.clone())).await;
    check(
        &env,
        Case {
            name: "future timestamp",
            status: 401,
            code: "unauthorized",
            mentions: "window",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_bot(post("/v1/bots/nobody/events", signed(&body), body.clone()))
        .await;
    check(
        &env,
        Case {
            name: "unknown bot: answered as any failed authentication",
            status: 401,
            code: "unauthorized",
            mentions: "unknown",
        },
        r,
        &before,
    )
    .await;

    let big = serde_json::to_vec(&user_message("x", "s-1", &"a".repeat(256 * 1024))).unwrap();
    let r = env.call_bot(post(events, signed(&big), big)).await;
    check(
        &env,
        Case {
            name: "body over 256 KiB",
            status: 413,
            code: "payload_too_large",
            mentions: "bytes",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(
        &json!({"id": "x", "type": "message", "sessionId": "s-1", "message": {"actor": "agent", "text": "x"}}),
    )
    .unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "unknown actor",
            status: 400,
            code: "invalid_request",
            mentions: "message.actor",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "x", "type": "handover.transfer", "sessionId": "s-1"})).unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "unknown event type",
            status: 400,
            code: "invalid_request",
            mentions: "handover.transfer",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(
        &json!({"id": "x", "type": "message", "sessionId": "s-1", "message": {"actor": "user", "text": "  "}}),
    )
    .unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "empty message",
            status: 400,
            code: "invalid_request",
            mentions: "message",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "x", "type": "handover.cancel", "sessionId": "s-1"})).unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "cancel without handover",
            status: 422,
            code: "no_active_handover",
            mentions: "no handover",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "x", "type": "handover.request", "sessionId": "s-1", "handover": {"trigger": "explicit_request", "provider": "nope"}})).unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "unknown provider in request",
            status: 422,
            code: "unknown_provider",
            mentions: "nope",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(
        &json!({"id": "x", "type": "message", "sessionId": "s#1", "message": {"actor": "user", "text": "x"}}),
    )
    .unwrap();
    let r = env.call_bot(post(events, signed(&body), body)).await;
    check(
        &env,
        Case {
            name: "bad session id",
            status: 400,
            code: "invalid_request",
            mentions: "sessionId",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_bot(env.request(
            "GET",
            "/v1/bots/acme/sessions/none",
            &signed(b"GET /v1/bots/acme/sessions/none"),
            b"",
        ))
        .await;
    check(
        &env,
        Case {
            name: "unknown session",
            status: 404,
            code: "unknown_session",
            mentions: "none",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_bot(env.request("GET", "/v1/bots/acme/sessions/s-1", &[], b""))
        .await;
    check(
        &env,
        Case {
            name: "unsigned session read",
            status: 401,
            code: "unauthorized",
            mentions: "missing",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_bot(env.request("DELETE", "/v1/bots/acme/events", &[], b""))
        .await;
    check(
        &env,
        Case {
            name: "wrong method",
            status: 405,
            code: "method_not_allowed",
            mentions: "method",
        },
        r,
        &before,
    )
    .await;
}

#[tokio::test]
async fn bad_provider_callbacks_are_refused_and_change_nothing() {
    let (env, bot, _srv) = setup().await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("h", "s-1"))
        .await;
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    let before = env.dump().await;
    let cb_path = "/v1/bots/acme/providers/desk/callback";
    let signed = |body: &[u8]| env.signed(&bot.desk_secret, body);
    let joined =
        serde_json::to_vec(&json!({"id": "c1", "type": "agent.joined", "conversationId": conv, "agent": {"id": "a"}}))
            .unwrap();

    let r = env
        .call_provider(env.request("POST", cb_path, &env.signed(&bot.platform_secret, &joined), &joined))
        .await;
    check(
        &env,
        Case {
            name: "callback signed with the wrong secret",
            status: 401,
            code: "unauthorized",
            mentions: "signature",
        },
        r,
        &before,
    )
    .await;

    let mut tampered = joined.clone();
    let sig = signed(&joined);
    tampered.extend_from_slice(b" ");
    let r = env.call_provider(env.request("POST", cb_path, &sig, &tampered)).await;
    check(
        &env,
        Case {
            name: "tampered callback",
            status: 401,
            code: "unauthorized",
            mentions: "signature",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_provider(env.request(
            "POST",
            "/v1/bots/acme/providers/nope/callback",
            &signed(&joined),
            &joined,
        ))
        .await;
    check(
        &env,
        Case {
            name: "unknown provider: answered as any failed authentication",
            status: 401,
            code: "unauthorized",
            mentions: "unknown",
        },
        r,
        &before,
    )
    .await;

    let r = env
        .call_provider(env.request(
            "POST",
            "/v1/bots/ghost/providers/desk/callback",
            &signed(&joined),
            &joined,
        ))
        .await;
    check(
        &env,
        Case {
            name: "unknown bot: answered as any failed authentication",
            status: 401,
            code: "unauthorized",
            mentions: "unknown",
        },
        r,
        &before,
    )
    .await;

    let body = b"not json".to_vec();
    let r = env
        .call_provider(env.request("POST", cb_path, &signed(&body), &body))
        .await;
    check(
        &env,
        Case {
            name: "malformed callback",
            status: 400,
            code: "invalid_callback",
            mentions: "expected",
        },
        r,
        &before,
    )
    .await;

    let body = serde_json::to_vec(&json!({"id": "c2", "type": "agent.message", "conversationId": conv})).unwrap();
    let r = env
        .call_provider(env.request("POST", cb_path, &signed(&body), &body))
        .await;
    check(
        &env,
        Case {
            name: "agent.message without message",
            status: 400,
            code: "invalid_callback",
            mentions: "message",
        },
        r,
        &before,
    )
    .await;

    let big = vec![b' '; 256 * 1024 + 1];
    let r = env
        .call_provider(env.request("POST", cb_path, &signed(&big), &big))
        .await;
    check(
        &env,
        Case {
            name: "oversized callback",
            status: 413,
            code: "payload_too_large",
            mentions: "bytes",
        },
        r,
        &before,
    )
    .await;

    // Unknown types and unknown conversations are acknowledged (the provider must not retry)
    // and change nothing.
    let body = serde_json::to_vec(&json!({"id": "c3", "type": "agent.transferred", "conversationId": conv})).unwrap();
    let (status, _) = env
        .call_provider(env.request("POST", cb_path, &signed(&body), &body))
        .await;
    assert_eq!(status, 200);
    let body = serde_json::to_vec(
        &json!({"id": "c4", "type": "agent.joined", "conversationId": "h-unknown", "agent": {"id": "a"}}),
    )
    .unwrap();
    let (status, answer) = env
        .call_provider(env.request("POST", cb_path, &signed(&body), &body))
        .await;
    assert_eq!((status, answer["ignored"].clone()), (200, json!(1)));
    assert_eq!(env.dump().await, before);
}

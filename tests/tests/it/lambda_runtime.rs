//! The three function binaries, as Lambda runs them: each is started with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a local Runtime API and answers events through it. Each
//! answer must equal what the in-process handler gives for the same event on a twin table.
//!
//! The binaries are built by `make test` before `cargo test`; see `runtime_api::TEST_BUILD`.

use std::sync::{Arc, Mutex};

use handover::app::{AppContext, bot_webhook, evaluator, local, provider_callback};
use handover::clock::SystemClock;
use handover_tests::runtime_api::{FUNCTIONS, FunctionProcess, Outcome, TEST_BUILD, function_binary, lambda_env};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One side of the comparison: a table, the mock servers its bot talks to.
struct Side {
    env: TestEnv,
    srv: MockServer,
}

impl Side {
    async fn new() -> Side {
        let env = TestEnv::new().await;
        let srv = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&srv)
            .await;
        Side { env, srv }
    }
}

/// The binaries on one table and the in-process handlers on another, fed the same events.
struct Twins {
    bin: Side,
    reference: Side,
    bot_webhook: FunctionProcess,
    provider_callback: FunctionProcess,
    hours_evaluator: FunctionProcess,
    ctx: Arc<AppContext>,
    /// The handover id the binary chose last; the in-process handlers reuse it.
    handover_id: Arc<Mutex<String>>,
}

impl Twins {
    async fn start(bin: Side, reference: Side) -> Twins {
        let start = |name: &'static str| {
            let env = lambda_env(name, emulator_endpoint(), bin.env.table());
            async move {
                let mut p = FunctionProcess::start(&function_binary(name, TEST_BUILD), &env).await;
                p.ready().await;
                p
            }
        };
        let (bot_webhook, provider_callback, hours_evaluator) = (
            start(FUNCTIONS[0]).await,
            start(FUNCTIONS[1]).await,
            start(FUNCTIONS[2]).await,
        );
        let handover_id = Arc::new(Mutex::new(String::new()));
        let ids = handover_id.clone();
        // The functions run on the system clock with the default retry policy: so does the twin.
        let ctx = Arc::new(
            AppContext::new(
                reference.env.ctx.store.clone(),
                reference.env.ctx.secrets.clone(),
                Arc::new(SystemClock),
            )
            .with_handover_ids(Arc::new(move || ids.lock().unwrap().clone())),
        );
        Twins {
            bin,
            reference,
            bot_webhook,
            provider_callback,
            hours_evaluator,
            ctx,
            handover_id,
        }
    }

    /// Sends an API Gateway event to its binary and to the in-process handler; both answers
    /// must be equal (up to the times they contain). Returns the binary's answer.
    async fn http(&mut self, event: &Value) -> (u16, Value) {
        let to_provider = event["routeKey"].as_str().unwrap_or("").contains("/providers/");
        let process = if to_provider {
            &mut self.provider_callback
        } else {
            &mut self.bot_webhook
        };
        let from_binary = process.invoke_http(event).await;
        if let Some(id) = from_binary.1["handoverId"].as_str() {
            *self.handover_id.lock().unwrap() = id.to_owned();
        }
        let req = local::to_request(event).expect("the event parses as lambda_http parses it");
        let resp = if to_provider {
            provider_callback::handle(&self.ctx, req).await
        } else {
            bot_webhook::handle(&self.ctx, req).await
        };
        let in_process = response_json(resp);
        assert_eq!(
            masked(&from_binary),
            masked(&in_process),
            "{} answered (left) unlike its handler (right) for {}",
            process.name,
            event["routeKey"]
        );
        from_binary
    }

    /// Runs the scheduled evaluator both ways; the reports must be equal.
    async fn schedule(&mut self, event: &Value) -> Value {
        let from_binary = self.hours_evaluator.invoke_json(event).await;
        let in_process = evaluator::handle(&self.ctx, event.clone()).await;
        assert_eq!(
            from_binary, in_process,
            "hours-evaluator (left) unlike its handler (right)"
        );
        from_binary
    }

    /// The events (JSON bodies) each side's mock servers received must be the same, in the
    /// same order. Availability questions (GETs without a body) are left out: how many are
    /// asked depends on when each side's availability cache expires.
    async fn assert_same_outbound(&self) -> Vec<Value> {
        let events = |v: Vec<Value>| v.into_iter().filter(|b| !b.is_null()).collect::<Vec<_>>();
        let sent = events(received(&self.bin.srv).await);
        let expected = events(received(&self.reference.srv).await);
        assert_eq!(
            sent.iter().map(masked).collect::<Vec<_>>(),
            expected.iter().map(masked).collect::<Vec<_>>(),
            "the binaries sent (left) unlike the handlers (right)"
        );
        sent
    }
}

/// A copy with every RFC 3339 time and every random outbound event id (`ev-` and a UUID)
/// replaced by a placeholder: both sides run on the system clock, a few milliseconds apart, and
/// draw their own ids.
fn masked<T: serde::Serialize>(v: &T) -> Value {
    fn random_id(s: &str) -> bool {
        s.strip_prefix("ev-")
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => *s = "<time>".into(),
            Value::String(s) if random_id(s) => *s = "<event id>".into(),
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(v).unwrap();
    walk(&mut v);
    v
}

fn load_event(name: &str) -> Value {
    let p = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A sample event signed again now (the files are signed at a fixed past time), with the
/// sample conversation id replaced by the one the binary opened.
fn resigned(mut event: Value, secret: &[u8], handover_id: &str) -> Value {
    let body = event["body"].as_str().unwrap_or("").replace("h-demo-1", handover_id);
    if event.get("body").is_some() {
        event["body"] = json!(body);
        event["headers"]["content-length"] = json!(body.len().to_string());
    }
    // A request without a body (GET) is signed over its method and path from `/v1/` on.
    let signed = if event["requestContext"]["http"]["method"] == "GET" {
        let path = event["rawPath"].as_str().unwrap_or("");
        format!("GET {}", &path[path.find("/v1/").unwrap_or(0)..])
    } else {
        body
    };
    for (name, value) in handover::signing::headers(secret, chrono::Utc::now().timestamp(), signed.as_bytes()) {
        event["headers"][name] = json!(value);
    }
    event
}

/// Stores the demo bot of `examples/` on a side, with its secrets and mock URLs.
async fn demo_bot(side: &Side) {
    let env = &side.env;
    let platform = env
        .secret("demo-platform", &json!({"signingSecret": "demo-signing-secret"}))
        .await;
    let desk = env
        .secret("demo-desk", &json!({"signingSecret": "demo-desk-secret"}))
        .await;
    let yaml = std::fs::read_to_string(format!("{}/../examples/demo-bot.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("http://127.0.0.1:3000/playground", &side.srv.uri())
        .replace("handover/demo/platform", &platform)
        .replace("handover/demo/desk", &desk);
    env.put_bot(&yaml).await;
}

#[tokio::test]
async fn every_sample_event_gets_the_same_answer_from_its_binary() {
    let (bin, reference) = (Side::new().await, Side::new().await);
    demo_bot(&bin).await;
    demo_bot(&reference).await;
    let mut twins = Twins::start(bin, reference).await;
    let platform = b"demo-signing-secret";
    let desk = b"demo-desk-secret";
    let event = |twins: &Twins, name: &str| {
        let secret: &[u8] = if name.starts_with("provider-") { desk } else { platform };
        resigned(load_event(name), secret, &twins.handover_id.lock().unwrap())
    };

    let first = twins.http(&event(&twins, "bot-message.json")).await;
    assert_eq!(first, (200, json!({"control": "bot", "state": "bot"})));
    assert_eq!(twins.http(&event(&twins, "bot-message-live-stage.json")).await, first);
    let (status, opened) = twins.http(&event(&twins, "bot-handover-request.json")).await;
    assert_eq!((status, &opened["outcome"]), (200, &json!("opened")), "{opened}");
    assert_eq!(
        twins.http(&event(&twins, "provider-agent-joined.json")).await,
        (200, json!({"status": "ok", "applied": 1, "ignored": 0}))
    );
    assert_eq!(twins.http(&event(&twins, "provider-agent-message.json")).await.0, 200);
    let (status, session) = twins.http(&event(&twins, "bot-session-get.json")).await;
    assert_eq!((status, &session["state"]), (200, &json!("agent")), "{session}");
    assert_eq!(session["handover"]["agent"]["name"], "Eva");
    assert_eq!(
        twins.http(&event(&twins, "provider-conversation-closed.json")).await.0,
        200
    );
    let (status, err) = twins.http(&event(&twins, "bot-handover-cancel.json")).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("no_active_handover"))
    );
    let report = twins.schedule(&load_event("schedule.json")).await;
    assert_eq!(report["errors"], 0, "{report}");

    // Events only: the demo bot's availability question is a GET without a body.
    let types: Vec<Value> = twins
        .assert_same_outbound()
        .await
        .iter()
        .filter(|b| !b.is_null())
        .map(|b| b["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            "conversation.started",
            "agent.joined",
            "agent.message",
            "handover.ended"
        ]
    );
}

#[tokio::test]
async fn a_full_handover_through_the_binaries_matches_the_handlers() {
    let (bin, reference) = (Side::new().await, Side::new().await);
    let url = |s: &Side, p: &str| format!("{}{p}", s.srv.uri());
    let bot = bin.env.standard_bot(&url(&bin, "/bot"), &url(&bin, "/agent"), "").await;
    reference
        .env
        .standard_bot(&url(&reference, "/bot"), &url(&reference, "/agent"), "")
        .await;
    let mut twins = Twins::start(bin, reference).await;
    let signed_event = |method: &str, path: &str, secret: &[u8], body: &Value| {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut headers: Vec<(String, String)> =
            handover::signing::headers(secret, chrono::Utc::now().timestamp(), &bytes)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        headers.push(("content-type".into(), "application/json".into()));
        local::apigw_v2_event(method, path, &headers, &bytes)
    };
    let events = format!("/v1/bots/{}/events", bot.bot_id);
    let callback = format!("/v1/bots/{}/providers/desk/callback", bot.bot_id);
    let user =
        |id: &str, text: &str| signed_event("POST", &events, &bot.platform_secret, &user_message(id, "s-1", text));
    let agent = |id: &str, kind: &str, conv: &str| {
        let body = json!({"id": id, "type": kind, "conversationId": conv, "agent": {"id": "a-1", "name": "Eva"}, "message": {"text": "Hello, I am Eva."}});
        signed_event("POST", &callback, &bot.desk_secret, &body)
    };

    assert_eq!(
        twins.http(&user("e1", "Where is my parcel?")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );
    let bot_reply = signed_event(
        "POST",
        &events,
        &bot.platform_secret,
        &bot_message("e2", "s-1", "Let me find someone."),
    );
    assert_eq!(twins.http(&bot_reply).await.0, 200);
    let request = signed_event("POST", &events, &bot.platform_secret, &handover_request("e3", "s-1"));
    let (status, opened) = twins.http(&request).await;
    assert_eq!((status, &opened["outcome"]), (200, &json!("opened")), "{opened}");
    let conv = opened["handoverId"].as_str().unwrap().to_owned();
    assert_eq!(twins.http(&agent("c1", "agent.joined", &conv)).await.0, 200);
    let (status, to_agent) = twins.http(&user("e4", "It is order A-1.")).await;
    assert_eq!((status, &to_agent["control"]), (200, &json!("agent")), "{to_agent}");
    assert_eq!(twins.http(&agent("c2", "agent.message", &conv)).await.0, 200);
    assert_eq!(twins.http(&agent("c3", "conversation.closed", &conv)).await.0, 200);
    assert_eq!(
        twins.http(&user("e5", "Thanks!")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );

    let sent = twins.assert_same_outbound().await;
    let kinds: Vec<&str> = sent.iter().map(|b| b["type"].as_str().unwrap_or("?")).collect();
    assert_eq!(
        kinds,
        [
            "conversation.started",
            "agent.joined",
            "user.message",
            "agent.message",
            "handover.ended"
        ]
    );
    let started = &sent[0];
    let transcript = serde_json::to_string(started).unwrap();
    assert!(
        transcript.contains("Where is my parcel?") && transcript.contains("Let me find someone."),
        "the agent gets the transcript so far: {started}"
    );
    assert!(serde_json::to_string(&sent[2]).unwrap().contains("It is order A-1."));
    assert!(serde_json::to_string(&sent[3]).unwrap().contains("Hello, I am Eva."));
}

#[tokio::test]
async fn an_event_of_the_wrong_shape_is_a_function_error_and_the_function_carries_on() {
    let side = Side::new().await;
    let env = lambda_env("bot-webhook", emulator_endpoint(), side.env.table());
    let mut p = FunctionProcess::start(&function_binary("bot-webhook", TEST_BUILD), &env).await;
    p.ready().await;
    match p.invoke(&json!({"not": "an API Gateway event"})).await {
        Outcome::Error { body, .. } => {
            let err: Value = serde_json::from_slice(&body).expect("a JSON error");
            assert!(err["errorType"].is_string(), "{err}");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    // The same process still answers the next event: an unknown bot is a 401, like any
    // request that is not authenticated.
    let ev = local::apigw_v2_event("POST", "/v1/bots/nobody/events", &[], b"{}");
    let (status, body) = p.invoke_http(&ev).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn at_trace_a_function_logs_none_of_the_secrets_its_request_carried() {
    // The runtime's own logging is what this checks: at `trace`, lambda_runtime would print
    // the raw event, query string and headers included, before any handler code runs.
    let env = TestEnv::new().await;
    let mut vars = lambda_env("bot-webhook", emulator_endpoint(), env.table());
    for (name, value) in vars.iter_mut() {
        if name == "RUST_LOG" {
            *value = "trace".into();
        }
    }
    let mut p = FunctionProcess::start(&function_binary("bot-webhook", TEST_BUILD), &vars).await;
    p.ready().await;
    let (token, signature, header_key, text) = (
        "tok7Qx2cHatlayer",
        "v1=5f1d0c9e8b7a6f5e4d3c2b1a",
        "hdrK3yV4lue",
        "my card is 4111 0000 1111 2222",
    );
    let body = serde_json::to_vec(&json!({"message": {"text": text}})).unwrap();
    let headers = [
        ("x-handover-signature".to_owned(), signature.to_owned()),
        ("authorization".to_owned(), format!("Bearer {header_key}")),
    ];
    for path in [
        format!("/v1/bots/nobody/chatlayer?token={token}"),
        "/v1/bots/nobody/events".to_owned(),
    ] {
        let ev = local::apigw_v2_event("POST", &path, &headers, &body);
        assert_eq!(p.invoke_http(&ev).await.0, 401);
    }
    let out = p.output();
    for secret in [token, signature, header_key, text] {
        assert!(!out.contains(secret), "{secret:?} reached the log:\n{out}");
    }
}

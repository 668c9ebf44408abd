//! The whole vertical slice through the real handlers, the emulator and mock HTTP servers:
//! a native bot platform and the generic webhook provider.

use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn servers() -> (MockServer, MockServer) {
    let bot = MockServer::start().await;
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot)
        .await;
    Mock::given(method("POST"))
        .and(path("/desk"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&desk)
        .await;
    (bot, desk)
}

#[tokio::test]
async fn handover_from_request_to_agent_close_and_back_to_bot() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, desk_srv) = servers().await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", bot_srv.uri()),
            &format!("{}/desk", desk_srv.uri()),
            "",
        )
        .await;
    let send = |body: Value| {
        let env = &env;
        let secret = bot.platform_secret.clone();
        async move { env.send_event("acme", &secret, &body).await }
    };

    // The bot is in control: user and bot turns are stored, nothing goes to the provider.
    assert_eq!(
        send(user_message("e1", "s-42", "Where is my parcel?")).await,
        (200, json!({"control": "bot", "state": "bot"}))
    );
    assert_eq!(
        send(bot_message("e2", "s-42", "Do you have a tracking number?"))
            .await
            .0,
        200
    );
    assert!(received(&desk_srv).await.is_empty());

    // Handover request → opened; the provider gets the full transcript.
    let (status, answer) = send(handover_request("e3", "s-42")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "opened");
    assert_eq!(answer["state"], "waiting");
    assert_eq!(answer["dialog"]["name"], "opened");
    let handover_id = answer["handoverId"].as_str().unwrap().to_owned();
    let desk = received(&desk_srv).await;
    assert_eq!(desk.len(), 1);
    let started = &desk[0];
    assert_eq!(started["type"], "conversation.started");
    assert_eq!(started["conversationId"], handover_id.as_str());
    assert_eq!(started["queue"], "general");
    assert_eq!(started["trigger"], "explicit_request");
    assert_eq!(started["variables"], json!({"orderId": "A-1"}));
    assert_eq!(started["tags"], json!(["vip"]));
    assert_eq!(started["user"]["name"], "Ann");
    let transcript = started["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 2);
    assert_eq!(transcript[0]["seq"], 1);
    assert_eq!(transcript[0]["actor"], "user");
    assert_eq!(transcript[1]["actor"], "bot");
    assert_eq!(
        started["transcriptText"],
        "User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"
    );
    for r in desk_srv.received_requests().await.unwrap() {
        assert_signed(&r, &bot.desk_secret);
    }

    // While waiting the bot stays in control, and both sides of the exchange are mirrored.
    assert_eq!(
        send(user_message("e4", "s-42", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    assert_eq!(
        send(bot_message("e5", "s-42", "An agent is on the way.")).await.1["control"],
        "bot"
    );
    let desk = received(&desk_srv).await;
    let mirrored = of_type(&desk, "user.message");
    assert_eq!(mirrored.len(), 2);
    assert_eq!(mirrored[0]["text"], "Are you still there?");
    assert_eq!(mirrored[0]["actor"], "user");
    assert_eq!(mirrored[1]["actor"], "bot");
    assert_eq!(mirrored[0]["seq"], 3);

    // The agent joins: the bot platform is told, and user messages now go to the agent only.
    let cb = |id: &str, t: &str, extra: Value| {
        let mut v = json!({"id": id, "type": t, "conversationId": handover_id, "timestamp": "2026-11-25T09:01:00Z"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let (status, _) = env
        .send_callback(
            "acme",
            "desk",
            &bot.desk_secret,
            &cb("c1", "agent.joined", json!({"agent": {"id": "a-3", "name": "Eva"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = send(user_message("e6", "s-42", "Hi Eva, my parcel is late")).await;
    assert_eq!((status, answer), (200, json!({"control": "agent", "state": "agent"})));
    let desk = received(&desk_srv).await;
    assert_eq!(
        of_type(&desk, "user.message").last().unwrap()["text"],
        "Hi Eva, my parcel is late"
    );

    // Agent messages and typing reach the bot's outboundUrl, signed.
    env.send_callback("acme", "desk", &bot.desk_secret, &cb("c2", "agent.typing", json!({})))
        .await;
    let (status, _) = env
        .send_callback(
            "acme",
            "desk",
            &bot.desk_secret,
            &cb(
                "c3",
                "agent.message",
                json!({"agent": {"id": "a-3", "name": "Eva"}, "message": {"text": "Hi Ann, let me check."}}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let to_bot = received(&bot_srv).await;
    let types: Vec<&str> = to_bot.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["agent.joined", "agent.typing", "agent.message"]);
    let msg = &to_bot[2];
    assert_eq!(msg["message"]["text"], "Hi Ann, let me check.");
    assert_eq!(msg["sessionId"], "s-42");
    assert_eq!(msg["handoverId"], handover_id.as_str());
    assert!(msg["id"].as_str().is_some_and(|id| !id.is_empty()));
    for r in bot_srv.received_requests().await.unwrap() {
        assert_signed(&r, &bot.platform_secret);
    }

    // The agent closes: handover.ended with agent_closed, and the bot is back in control.
    env.send_callback(
        "acme",
        "desk",
        &bot.desk_secret,
        &cb("c4", "conversation.closed", json!({})),
    )
    .await;
    let to_bot = received(&bot_srv).await;
    let ended = to_bot.last().unwrap();
    assert_eq!(ended["type"], "handover.ended");
    assert_eq!(ended["reason"], "agent_closed");
    assert_eq!(
        send(user_message("e7", "s-42", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );

    // The session tells the story, and the agent's turns are in the bot's history.
    let path = "/v1/bots/acme/sessions/s-42";
    let req = env.request("GET", path, &env.signed_read(&bot.platform_secret, path), b"");
    let (status, session) = env.call_bot(req).await;
    assert_eq!(status, 200);
    assert_eq!(session["state"], "bot");
    assert_eq!(session["endReason"], "agent_closed");
    assert_eq!(session["lastHandover"]["agent"]["name"], "Eva");
    let transcript = env
        .store
        .transcript(&handover::store::SessionKey::new("acme", "s-42"), None)
        .await
        .unwrap();
    let seqs: Vec<u64> = transcript.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert_eq!(transcript[5].message.text.as_deref(), Some("Hi Ann, let me check."));
    // No provider conversation.ended: the provider closed it itself.
    assert!(of_type(&received(&desk_srv).await, "conversation.ended").is_empty());
}

#[tokio::test]
async fn user_cancel_while_waiting_ends_the_provider_conversation() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, desk_srv) = servers().await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", bot_srv.uri()),
            &format!("{}/desk", desk_srv.uri()),
            "",
        )
        .await;
    env.send_event("acme", &bot.platform_secret, &user_message("e1", "s-1", "Agent please"))
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e2", "s-1"))
        .await;
    let handover_id = opened["handoverId"].as_str().unwrap();

    let cancel = json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-1"});
    let (status, answer) = env.send_event("acme", &bot.platform_secret, &cancel).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"state": "bot", "handoverId": handover_id, "reason": "user_cancelled"})
    );

    let desk = received(&desk_srv).await;
    let ended = of_type(&desk, "conversation.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["conversationId"], handover_id);
    assert_eq!(ended[0]["reason"], "user_cancelled");
    let to_bot = received(&bot_srv).await;
    assert_eq!(to_bot.last().unwrap()["type"], "handover.ended");
    assert_eq!(to_bot.last().unwrap()["reason"], "user_cancelled");
    let s = env.session("acme", "s-1").await.unwrap();
    assert_eq!(s.state, handover::domain::State::Bot);
    assert!(s.timers.earliest().is_none(), "no timer left behind");

    // A late agent callback for the ended handover changes nothing.
    let late = json!({"id": "c9", "type": "agent.joined", "conversationId": handover_id, "agent": {"id": "a-1"}});
    let before = env.dump().await;
    assert_eq!(env.send_callback("acme", "desk", &bot.desk_secret, &late).await.0, 200);
    assert_eq!(
        env.session("acme", "s-1").await.unwrap().state,
        handover::domain::State::Bot
    );
    assert_eq!(env.dump().await, before, "a stale callback writes nothing");
}

#[tokio::test]
async fn repeated_event_id_is_applied_once_and_gets_the_first_answer() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, desk_srv) = servers().await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", bot_srv.uri()),
            &format!("{}/desk", desk_srv.uri()),
            "",
        )
        .await;
    let first = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(first.1["outcome"], "opened");
    // Even after the state moved on (cancelled), the repeat gets the first answer.
    env.send_event(
        "acme",
        &bot.platform_secret,
        &json!({"id": "e2", "type": "handover.cancel", "sessionId": "s-1"}),
    )
    .await;
    let dump = env.dump().await;
    let again = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    assert_eq!(again, first);
    assert_eq!(env.dump().await, dump, "a repeat writes nothing");
    assert_eq!(of_type(&received(&desk_srv).await, "conversation.started").len(), 1);

    // The same for a message.
    let m1 = env
        .send_event("acme", &bot.platform_secret, &user_message("e3", "s-1", "hello"))
        .await;
    let m2 = env
        .send_event("acme", &bot.platform_secret, &user_message("e3", "s-1", "hello"))
        .await;
    assert_eq!(m1, m2);
    assert_eq!(env.session("acme", "s-1").await.unwrap().seq, 1);
}

#[tokio::test]
async fn repeated_provider_callback_is_applied_once() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, desk_srv) = servers().await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", bot_srv.uri()),
            &format!("{}/desk", desk_srv.uri()),
            "",
        )
        .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e1", "s-1"))
        .await;
    let conv = opened["handoverId"].as_str().unwrap();
    let msg = json!({"id": "m-1", "type": "agent.message", "conversationId": conv, "agent": {"id": "a"}, "message": {"text": "Hello"}});
    let first = env.send_callback("acme", "desk", &bot.desk_secret, &msg).await;
    let second = env.send_callback("acme", "desk", &bot.desk_secret, &msg).await;
    assert_eq!(first.0, 200);
    assert_eq!(first, second);
    let to_bot = received(&bot_srv).await;
    assert_eq!(of_type(&to_bot, "agent.message").len(), 1, "delivered once");
    assert_eq!(
        of_type(&to_bot, "agent.joined").len(),
        1,
        "the first agent message counts as the join"
    );
    assert_eq!(env.session("acme", "s-1").await.unwrap().seq, 1);
}

#[tokio::test]
async fn erasing_a_session_removes_its_items_and_later_callbacks_are_ignored() {
    let env = TestEnv::in_memory().await;
    let (bot_srv, desk_srv) = servers().await;
    let bot = env
        .standard_bot(
            &format!("{}/bot", bot_srv.uri()),
            &format!("{}/desk", desk_srv.uri()),
            "",
        )
        .await;
    env.send_event(
        "acme",
        &bot.platform_secret,
        &user_message("e1", "s-9", "please erase me"),
    )
    .await;
    let (_, opened) = env
        .send_event("acme", &bot.platform_secret, &handover_request("e2", "s-9"))
        .await;
    let key = handover::store::SessionKey::new("acme", "s-9");
    let erased = env.store.erase_session(&key).await.unwrap();
    assert!(
        erased >= 3,
        "state, transcript entry and conversation link at least: {erased}"
    );
    assert!(env.session("acme", "s-9").await.is_none());
    assert!(env.store.transcript(&key, None).await.unwrap().is_empty());
    let conv = opened["handoverId"].as_str().unwrap();
    assert!(
        env.store
            .find_conversation("acme", "desk", conv)
            .await
            .unwrap()
            .is_none()
    );
    let late = json!({"id": "c1", "type": "agent.joined", "conversationId": conv, "agent": {"id": "a"}});
    let (status, answer) = env.send_callback("acme", "desk", &bot.desk_secret, &late).await;
    assert_eq!((status, answer["ignored"].clone()), (200, json!(1)));
}

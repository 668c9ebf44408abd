//! Intercom end to end through the real handlers: a native bot platform, the emulator, and a
//! mock server answering like Intercom's REST API (2.14 shapes) and signing webhooks the way
//! Intercom does (`X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, body)>`).

use handover::domain::{Actor, State};
use handover::providers::intercom;
use handover::store::SessionKey;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BOT_ADMIN: &str = "991267000";
const EVA: &str = "991267001";
const TEAM: &str = "5017691";
const TOKEN: &str = "tok-123";
const CLIENT_SECRET: &[u8] = b"cs-456";
const CONTACT: &str = "6762f0dd1bb69f9f2193bb83";
/// The conversation the mock creates for users outside Intercom.
const CREATED: &str = "499";
/// A conversation that already lives in Intercom.
const EMBEDDED: &str = "4711";
const CALLBACK: &str = "/v1/bots/acme/providers/intercom/callback";

struct World {
    env: TestEnv,
    bot_srv: MockServer,
    ic: MockServer,
    platform_secret: Vec<u8>,
}

impl World {
    async fn send(&self, body: &Value) -> (u16, Value) {
        self.env.send_event("acme", &self.platform_secret, body).await
    }

    /// Posts a webhook notification signed as Intercom signs it.
    async fn webhook(&self, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = vec![("X-Hub-Signature", intercom::signature(CLIENT_SECRET, &bytes))];
        let req = self.env.request("POST", CALLBACK, &headers, &bytes);
        self.env.call_provider(req).await
    }

    /// The bot platform's events of one type.
    async fn to_bot(&self, t: &str) -> Vec<Value> {
        received(&self.bot_srv)
            .await
            .into_iter()
            .filter(|b| b["type"] == t)
            .collect()
    }

    /// Every write sent to Intercom, as (path, body), in order.
    async fn writes(&self) -> Vec<(String, Value)> {
        recorded(&self.ic)
            .await
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| {
                (
                    r.url.path().to_owned(),
                    serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect()
    }
}

fn conversation_json(id: &str, parts: Value) -> Value {
    json!({
        "type": "conversation", "id": id, "created_at": 1764061200, "updated_at": 1764061200,
        "source": { "type": "conversation", "id": "403918330", "delivered_as": "customer_initiated",
                    "body": "<p>Where is my parcel?</p>", "author": { "type": "user", "id": CONTACT } },
        "contacts": { "type": "contact.list", "contacts": [ { "type": "contact", "id": CONTACT, "external_id": "u-7" } ] },
        "admin_assignee_id": null, "team_assignee_id": 5017691, "open": true, "state": "open",
        "conversation_parts": { "type": "conversation_part.list", "conversation_parts": parts, "total_count": 1 }
    })
}

/// A bot whose only provider is Intercom, and a mock answering like Intercom's API.
async fn world() -> World {
    let env = TestEnv::in_memory().await;
    let bot_srv = MockServer::start().await;
    let ic = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .and(path("/bot"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot_srv)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "contact", "id": CONTACT, "role": "user", "external_id": "u-7", "name": "Ann"
        })))
        .mount(&ic)
        .await;
    Mock::given(method("POST"))
        .and(path("/conversations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "user_message", "id": "403918330", "created_at": 1764061200,
            "body": "Where is my parcel?", "message_type": "inapp", "conversation_id": CREATED
        })))
        .mount(&ic)
        .await;
    for conv in [CREATED, EMBEDDED] {
        for op in ["reply", "parts"] {
            Mock::given(method("POST"))
                .and(path(format!("/conversations/{conv}/{op}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(conversation_json(conv, json!([]))))
                .mount(&ic)
                .await;
        }
    }
    // The embedded conversation carries no transcript note of ours.
    Mock::given(method("GET"))
        .and(path(format!("/conversations/{EMBEDDED}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(conversation_json(EMBEDDED, json!([]))))
        .mount(&ic)
        .await;
    Mock::given(method("GET"))
        .and(path("/admins"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "admin.list",
            "admins": [
                { "type": "admin", "id": BOT_ADMIN, "name": "Acme Bot", "away_mode_enabled": false,
                  "has_inbox_seat": true, "team_ids": [] },
                { "type": "admin", "id": EVA, "name": "Eva", "away_mode_enabled": false,
                  "has_inbox_seat": true, "team_ids": [5017691] },
                { "type": "admin", "id": "991267002", "name": "Tom", "away_mode_enabled": true,
                  "has_inbox_seat": true, "team_ids": [5017691] }
            ]
        })))
        .mount(&ic)
        .await;

    let platform_ref = env.secret("platform", &json!({ "signingSecret": "bot-secret" })).await;
    let ic_ref = env
        .secret("intercom", &json!({ "accessToken": TOKEN, "clientSecret": "cs-456" }))
        .await;
    let yaml = format!(
        "botId: acme
platform:
  kind: native
  outboundUrl: {bot}/bot
  secretRef: {platform_ref}
providers:
  - id: intercom
    kind: intercom
    secretRef: {ic_ref}
    apiBaseUrl: {api}
    botAdminId: \"{BOT_ADMIN}\"
    teams:
      general: {TEAM}
routing:
  - provider: intercom
    queue: general
",
        bot = bot_srv.uri(),
        api = ic.uri(),
    );
    env.put_bot(&yaml).await;
    World {
        env,
        bot_srv,
        ic,
        platform_secret: b"bot-secret".to_vec(),
    }
}

fn notification(id: &str, topic: &str, item: Value) -> Value {
    json!({
        "type": "notification_event",
        "app_id": "abc123",
        "data": { "type": "notification_event_data", "item": item },
        "links": {},
        "id": id,
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": 1764061260,
        "created_at": 1764061260,
        "self": null
    })
}

fn admin(id: &str, name: &str) -> Value {
    json!({ "type": "admin", "id": id, "name": name, "email": format!("{}@acme.example", name.to_lowercase()) })
}

/// The item of a conversation webhook: the conversation with the part that caused it.
fn item(conv: &str, admin_assignee_id: Value, part: Value) -> Value {
    let mut c = conversation_json(conv, json!([part]));
    c["admin_assignee_id"] = admin_assignee_id;
    c
}

fn part(id: &str, part_type: &str, body: Value, author: Value) -> Value {
    json!({
        "type": "conversation_part", "id": id, "part_type": part_type, "body": body,
        "created_at": 1764061260, "updated_at": 1764061260, "notified_at": 1764061260,
        "assigned_to": null, "author": author, "attachments": [], "external_id": null, "redacted": false
    })
}

fn eva_takes(conv: &str) -> Value {
    let mut p = part("7001", "assignment", Value::Null, admin(EVA, "Eva"));
    p["assigned_to"] = json!({ "type": "admin", "id": EVA });
    notification(
        "notif_assign_1",
        "conversation.admin.assigned",
        item(conv, json!(991267001u64), p),
    )
}

fn eva_says(notif: &str, conv: &str, part_id: &str, html: &str) -> Value {
    notification(
        notif,
        "conversation.admin.replied",
        item(
            conv,
            json!(991267001u64),
            part(part_id, "comment", json!(html), admin(EVA, "Eva")),
        ),
    )
}

fn eva_closes(conv: &str) -> Value {
    notification(
        "notif_close_1",
        "conversation.admin.closed",
        item(
            conv,
            json!(991267001u64),
            part("7009", "close", Value::Null, admin(EVA, "Eva")),
        ),
    )
}

fn embedded_request(id: &str, session: &str) -> Value {
    let mut req = handover_request(id, session);
    req["handover"]["providerConversationId"] = json!(EMBEDDED);
    req["handover"]["summary"] = json!("Parcel A-1 is late");
    req
}

#[tokio::test]
async fn a_conversation_living_in_intercom_goes_to_the_team_and_back_to_the_bot() {
    let w = world().await;
    w.send(&user_message("e1", "s-1", "Where is my parcel?")).await;
    w.send(&bot_message("e2", "s-1", "Do you have a tracking number?"))
        .await;

    let (status, opened) = w.send(&embedded_request("e3", "s-1")).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["outcome"], "opened");
    assert_eq!(opened["state"], "waiting");

    // A context note, then the bot teammate lets go and the routed team gets the conversation.
    let writes = w.writes().await;
    let paths: Vec<&str> = writes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/conversations/4711/reply",
            "/conversations/4711/parts",
            "/conversations/4711/parts"
        ]
    );
    let note = &writes[0].1;
    assert_eq!(note["message_type"], "note");
    assert_eq!(note["type"], "admin");
    assert_eq!(note["admin_id"], BOT_ADMIN);
    let html = note["body"].as_str().unwrap();
    for needle in [
        "Parcel A-1 is late",
        "orderId: A-1",
        "vip",
        "Queue: general",
        "explicit_request",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    assert!(!html.contains("[handover:"), "no marker: the conversation is not ours");
    assert!(
        !html.contains("Where is my parcel?"),
        "the history is in Intercom already"
    );
    assert_eq!(
        writes[1].1,
        json!({ "message_type": "assignment", "type": "admin", "admin_id": BOT_ADMIN, "assignee_id": "0" })
    );
    assert_eq!(
        writes[2].1,
        json!({ "message_type": "assignment", "type": "team", "admin_id": BOT_ADMIN, "assignee_id": TEAM })
    );
    for r in w.ic.received_requests().await.unwrap() {
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(h("authorization").as_deref(), Some("Bearer tok-123"), "{}", r.url);
        assert_eq!(h("intercom-version").as_deref(), Some(intercom::DEFAULT_API_VERSION));
    }

    // The user keeps talking to the bot: those turns are in Intercom already, nothing is sent.
    assert_eq!(
        w.send(&user_message("e4", "s-1", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    assert_eq!(w.writes().await.len(), 3);

    // Eva takes the conversation: the agent joined.
    assert_eq!(w.webhook(&eva_takes(EMBEDDED)).await.0, 200);
    let joined = w.to_bot("agent.joined").await;
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["agent"], json!({"id": EVA, "name": "Eva"}));
    assert_eq!(
        w.send(&user_message("e5", "s-1", "Hi Eva")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    assert_eq!(w.writes().await.len(), 3, "user turns are not relayed into Intercom");

    // Eva writes: the bot platform gets readable text, once even if Intercom retries.
    let reply = eva_says(
        "notif_reply_1",
        EMBEDDED,
        "9001",
        "<p>Hi Ann, <b>let me check</b> &amp; see.</p>",
    );
    assert_eq!(w.webhook(&reply).await.0, 200);
    assert_eq!(w.webhook(&reply).await.0, 200, "a retried notification is acknowledged");
    let said = w.to_bot("agent.message").await;
    assert_eq!(said.len(), 1, "applied once");
    assert_eq!(said[0]["message"]["text"], "Hi Ann, let me check & see.");
    assert_eq!(said[0]["agent"]["name"], "Eva");

    // The bot teammate's own replies are not agent messages.
    let from_bot = notification(
        "notif_reply_2",
        "conversation.admin.replied",
        item(
            EMBEDDED,
            json!(991267001u64),
            part(
                "9002",
                "comment",
                json!("<p>I am the bot</p>"),
                admin(BOT_ADMIN, "Acme Bot"),
            ),
        ),
    );
    assert_eq!(w.webhook(&from_bot).await.0, 200);
    assert_eq!(w.to_bot("agent.message").await.len(), 1);

    // A notification signed with another secret is refused and changes nothing.
    let before = w.env.dump().await;
    let forged = eva_closes(EMBEDDED);
    let bytes = serde_json::to_vec(&forged).unwrap();
    let headers = vec![("X-Hub-Signature", intercom::signature(b"not-the-secret", &bytes))];
    let (status, _) = w
        .env
        .call_provider(w.env.request("POST", CALLBACK, &headers, &bytes))
        .await;
    assert_eq!(status, 401);
    let (status, _) = w.env.call_provider(w.env.request("POST", CALLBACK, &[], &bytes)).await;
    assert_eq!(status, 401, "unsigned");
    assert_eq!(w.env.dump().await, before);

    // Eva closes: control returns to the bot, and the conversation is handed back to the bot
    // teammate the way Intercom's bot hand-over does (team unassigned, bot teammate assigned),
    // so the user's next reply reopens it for the bot, not in the team's inbox.
    assert_eq!(w.webhook(&eva_closes(EMBEDDED)).await.0, 200);
    let ended = w.to_bot("handover.ended").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "agent_closed");
    assert_eq!(
        w.send(&user_message("e6", "s-1", "Thanks!")).await.1,
        json!({"control": "bot", "state": "bot"})
    );
    let writes = w.writes().await;
    assert_eq!(writes.len(), 5);
    let handed_back: Vec<(&str, &str, &str)> = writes[3..]
        .iter()
        .map(|(path, body)| {
            assert_eq!(path, &format!("/conversations/{EMBEDDED}/parts"));
            assert_eq!(body["message_type"], "assignment");
            assert_eq!(body["admin_id"], BOT_ADMIN, "made by the bot teammate");
            (
                body["type"].as_str().unwrap(),
                body["assignee_id"].as_str().unwrap(),
                body["message_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        handed_back,
        [("team", "0", "assignment"), ("admin", BOT_ADMIN, "assignment")]
    );
    // That assignment, made by the bot teammate, is not an agent leaving or joining.
    assert_eq!(w.to_bot("handover.ended").await.len(), 1);

    // The agent's turn is in the bot's history.
    let transcript = w
        .env
        .store
        .transcript(&SessionKey::new("acme", "s-1"), None)
        .await
        .unwrap();
    let agent_turns: Vec<_> = transcript.iter().filter(|e| e.actor == Actor::Agent).collect();
    assert_eq!(agent_turns.len(), 1);
    assert_eq!(
        agent_turns[0].message.text.as_deref(),
        Some("Hi Ann, let me check & see.")
    );
}

#[tokio::test]
async fn a_conversation_is_created_for_a_user_outside_intercom_and_relayed_both_ways() {
    let w = world().await;
    w.send(&user_message("e1", "s-2", "Where is my parcel?")).await;
    w.send(&bot_message("e2", "s-2", "Do you have a tracking number?"))
        .await;
    let (status, opened) = w.send(&handover_request("e3", "s-2")).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["outcome"], "opened");
    let handover_id = opened["handoverId"].as_str().unwrap().to_owned();

    // Contact, conversation from the contact, the transcript as a note, then the team.
    let writes = w.writes().await;
    let paths: Vec<&str> = writes.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/contacts",
            "/conversations",
            "/conversations/499/reply",
            "/conversations/499/parts"
        ]
    );
    assert_eq!(
        writes[0].1,
        json!({ "role": "user", "external_id": "u-7", "name": "Ann" })
    );
    assert_eq!(
        writes[1].1,
        json!({ "from": { "type": "user", "id": CONTACT }, "body": "Where is my parcel?" })
    );
    let note = &writes[2].1;
    assert_eq!(note["message_type"], "note");
    assert_eq!(note["admin_id"], BOT_ADMIN);
    let html = note["body"].as_str().unwrap();
    for needle in [
        format!("[handover:{handover_id}]"),
        "User: Where is my parcel?".to_owned(),
        "Bot: Do you have a tracking number?".to_owned(),
        "[Quick replies: Yes | No]".to_owned(),
        "orderId: A-1".to_owned(),
    ] {
        assert!(html.contains(&needle), "{needle} in {html}");
    }
    assert_eq!(
        writes[3].1,
        json!({ "message_type": "assignment", "type": "team", "admin_id": BOT_ADMIN, "assignee_id": TEAM })
    );
    let s = w.env.session("acme", "s-2").await.unwrap();
    assert_eq!(s.handover.unwrap().provider_conversation_id.as_deref(), Some(CREATED));
    // Should another instance need to look the conversation up, Intercom shows our note.
    let our_note = part(
        "8001",
        "note",
        json!(format!("<p><b>Handed over by the bot</b> [handover:{handover_id}]</p>")),
        admin(BOT_ADMIN, "Acme Bot"),
    );
    Mock::given(method("GET"))
        .and(path(format!("/conversations/{CREATED}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(conversation_json(CREATED, json!([our_note]))))
        .mount(&w.ic)
        .await;

    // While waiting: the user's turn as a reply of the contact, the bot's as a note.
    assert_eq!(
        w.send(&user_message("e4", "s-2", "Are you still there?")).await,
        (200, json!({"control": "bot", "state": "waiting"}))
    );
    w.send(&bot_message("e5", "s-2", "An agent is on the way.")).await;
    let writes = w.writes().await;
    assert_eq!(writes.len(), 6);
    assert_eq!(writes[4].0, "/conversations/499/reply");
    assert_eq!(
        writes[4].1,
        json!({ "message_type": "comment", "type": "user", "intercom_user_id": CONTACT, "body": "Are you still there?" })
    );
    assert_eq!(writes[5].1["message_type"], "note");
    assert_eq!(writes[5].1["type"], "admin");
    assert!(
        writes[5].1["body"]
            .as_str()
            .unwrap()
            .contains("Bot: An agent is on the way.")
    );

    // Eva answers without assigning first: her first message is the join.
    assert_eq!(
        w.webhook(&eva_says("notif_r1", CREATED, "9101", "<p>Hello Ann!</p>"))
            .await
            .0,
        200
    );
    let types: Vec<String> = received(&w.bot_srv)
        .await
        .iter()
        .filter_map(|b| b["type"].as_str().map(str::to_owned))
        .filter(|t| t.starts_with("agent."))
        .collect();
    assert_eq!(types, ["agent.joined", "agent.message"]);
    assert_eq!(w.to_bot("agent.message").await[0]["message"]["text"], "Hello Ann!");

    // With the agent in control, the user's turns go to Intercom as the contact.
    assert_eq!(
        w.send(&user_message("e6", "s-2", "My order is A-1")).await,
        (200, json!({"control": "agent", "state": "agent"}))
    );
    let writes = w.writes().await;
    assert_eq!(writes.len(), 7);
    assert_eq!(writes[6].1["type"], "user");
    assert_eq!(writes[6].1["body"], "My order is A-1");

    // Eva closes the conversation herself: back to the bot, nothing for us to close.
    assert_eq!(w.webhook(&eva_closes(CREATED)).await.0, 200);
    assert_eq!(w.to_bot("handover.ended").await[0]["reason"], "agent_closed");
    assert_eq!(w.env.session("acme", "s-2").await.unwrap().state, State::Bot);
    assert_eq!(w.writes().await.len(), 7);
}

#[tokio::test]
async fn a_user_cancel_while_waiting_releases_the_intercom_side() {
    let w = world().await;
    let cancel = |id: &str, session: &str| json!({"id": id, "type": "handover.cancel", "sessionId": session});

    // Living in Intercom: the team lets go and the bot teammate has the conversation again.
    w.send(&user_message("a1", "s-in", "Agent please")).await;
    assert_eq!(w.send(&embedded_request("a2", "s-in")).await.1["outcome"], "opened");
    let before = w.writes().await.len();
    let (status, answer) = w.send(&cancel("a3", "s-in")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["reason"], "user_cancelled");
    let writes = w.writes().await;
    assert_eq!(
        writes[before..].iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
        [
            json!({ "message_type": "assignment", "type": "team", "admin_id": BOT_ADMIN, "assignee_id": "0" }),
            json!({ "message_type": "assignment", "type": "admin", "admin_id": BOT_ADMIN, "assignee_id": BOT_ADMIN }),
        ]
    );
    assert!(writes[before..].iter().all(|(p, _)| p == "/conversations/4711/parts"));

    // Created by us: closed by the bot teammate.
    w.send(&user_message("b1", "s-out", "Agent please")).await;
    assert_eq!(w.send(&handover_request("b2", "s-out")).await.1["outcome"], "opened");
    let before = w.writes().await.len();
    assert_eq!(w.send(&cancel("b3", "s-out")).await.0, 200);
    let writes = w.writes().await;
    assert_eq!(writes.len(), before + 1);
    assert_eq!(writes[before].0, "/conversations/499/parts");
    assert_eq!(
        writes[before].1,
        json!({ "message_type": "close", "type": "admin", "admin_id": BOT_ADMIN })
    );

    let ended = w.to_bot("handover.ended").await;
    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|e| e["reason"] == "user_cancelled"));
    for s in ["s-in", "s-out"] {
        assert!(
            w.env
                .store
                .outbox(&SessionKey::new("acme", s))
                .await
                .unwrap()
                .is_empty(),
            "{s}: nothing left to deliver"
        );
    }
}

#[tokio::test]
async fn a_team_whose_teammates_are_all_away_gets_the_closed_dialog() {
    let w = world().await;
    Mock::given(method("GET"))
        .and(path("/admins"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "admin.list",
            "admins": [
                { "type": "admin", "id": EVA, "name": "Eva", "away_mode_enabled": true,
                  "has_inbox_seat": true, "team_ids": [5017691] },
                { "type": "admin", "id": "991267002", "name": "Tom", "away_mode_enabled": true,
                  "has_inbox_seat": true, "team_ids": [5017691] }
            ]
        })))
        .with_priority(1)
        .mount(&w.ic)
        .await;
    let (status, answer) = w.send(&handover_request("e1", "s-4")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "closed");
    assert_eq!(answer["reason"], "no_agents_online");
    assert!(w.writes().await.is_empty(), "nothing opened at Intercom");
}

#[tokio::test]
async fn the_url_check_and_pings_are_acknowledged() {
    let w = world().await;
    let (status, _) = w.env.call_provider(w.env.request("HEAD", CALLBACK, &[], b"")).await;
    assert_eq!(status, 200);
    let ping = notification(
        "notif_ping",
        "ping",
        json!({ "type": "ping", "message": "something is pinging" }),
    );
    let (status, body) = w.webhook(&ping).await;
    assert_eq!(status, 200);
    assert_eq!(body["applied"], 0);
    // A conversation we never handed over is acknowledged and ignored.
    let (status, body) = w.webhook(&eva_closes("123456")).await;
    assert_eq!(status, 200);
    assert_eq!(body["ignored"], 1);
}

#[tokio::test]
async fn the_evaluator_refreshes_agent_presence() {
    let w = world().await;
    assert_eq!(
        w.env.refreshed_presence("acme", "intercom", "general").await,
        Some(Some(true))
    );
}

/// Every request body sent to Intercom in both shapes of handover (created and embedded
/// conversation, each with a user turn and a cancel), checked against the schema of its
/// operation in Intercom's published OpenAPI description (tests/fixtures/intercom/, with its
/// source, commit and licence).
#[tokio::test]
async fn every_request_body_matches_intercoms_published_schema() {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/intercom/requests-2.14.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = |operation: &str| {
        let mut root = spec["operations"][operation]["schema"].clone();
        assert!(root.is_object(), "no schema for {operation}");
        root["components"] = spec["components"].clone();
        jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{operation}: {e}"))
    };

    let w = world().await;
    // A conversation handover creates: contact, conversation, transcript note, assignment, a
    // user turn as the contact, and the close at the user's cancel.
    assert_eq!(w.send(&handover_request("e1", "s-2")).await.1["outcome"], "opened");
    w.send(&user_message("e2", "s-2", "Still there?")).await;
    w.send(&json!({"id": "e3", "type": "handover.cancel", "sessionId": "s-2"}))
        .await;
    // A conversation living in Intercom: note, assignments, and the hand-back at the cancel.
    assert_eq!(w.send(&embedded_request("e4", "s-1")).await.1["outcome"], "opened");
    w.send(&json!({"id": "e5", "type": "handover.cancel", "sessionId": "s-1"}))
        .await;

    let writes = w.writes().await;
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for (path, body) in &writes {
        let operation = match path.as_str() {
            "/contacts" => "POST /contacts",
            "/contacts/search" => "POST /contacts/search",
            "/conversations" => "POST /conversations",
            p if p.ends_with("/reply") => "POST /conversations/{conversation_id}/reply",
            p if p.ends_with("/parts") => "POST /conversations/{conversation_id}/parts",
            other => panic!("a request to {other} has no schema here"),
        };
        let v = validator(operation);
        let errors: Vec<String> = v
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{operation} {body}: {errors:?}");
        *checked.entry(operation).or_default() += 1;
    }
    // Each kind of request was sent and checked; the schemas can refuse (a wrong body fails).
    for op in [
        "POST /contacts",
        "POST /conversations",
        "POST /conversations/{conversation_id}/reply",
        "POST /conversations/{conversation_id}/parts",
    ] {
        assert!(
            checked.get(op).is_some_and(|n| *n > 0),
            "{op} not exercised: {checked:?}"
        );
    }
    let wrong = json!({"message_type": "assignment", "type": "team"});
    assert!(
        !validator("POST /conversations/{conversation_id}/parts").is_valid(&wrong),
        "an assignment without admin_id and assignee_id is refused"
    );
}

#[tokio::test]
async fn an_unsigned_url_check_tells_nothing_about_which_bots_exist() {
    let w = world().await;
    let unknown = "/v1/bots/nobody/providers/intercom/callback";
    for method in ["GET", "HEAD"] {
        let real = w.env.call_provider(w.env.request(method, CALLBACK, &[], b"")).await;
        let none = w.env.call_provider(w.env.request(method, unknown, &[], b"")).await;
        assert_eq!(
            real, none,
            "{method}: a configured Intercom callback answers like an unknown bot"
        );
    }
    let (status, body) = w.env.call_provider(w.env.request("GET", CALLBACK, &[], b"")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
}

#[tokio::test]
async fn user_text_reaches_intercom_escaped() {
    let w = world().await;
    let hostile = "<img src=x onerror=alert(1)> & <b>bold</b>";
    w.send(&user_message("e1", "s-2", hostile)).await;
    let (status, opened) = w.send(&handover_request("e3", "s-2")).await;
    assert_eq!((status, &opened["outcome"]), (200, &json!("opened")), "{opened}");
    let escaped = "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;bold&lt;/b&gt;";
    let writes = w.writes().await;
    assert_eq!(writes[1].0, "/conversations");
    assert_eq!(writes[1].1["body"], escaped, "the first message");
    w.send(&user_message("e4", "s-2", hostile)).await;
    let writes = w.writes().await;
    let reply = writes
        .iter()
        .rev()
        .find(|(p, _)| p.ends_with("/reply") && writes.len() > 4)
        .unwrap();
    assert_eq!(reply.1["type"], "user");
    assert_eq!(reply.1["body"], escaped, "a user reply");
}

//! Unit tests of the Help Scout adapter: signatures and webhooks here, the conversation we
//! create and the settings in `outbound`.

use serde_json::{Value, json};

use super::*;
use crate::domain::Agent;
use crate::providers::kit::testing;
use crate::providers::{ProviderEvent, ProviderEventKind};

mod outbound;

const SECRET: &[u8] = b"whsec-hs-test";
/// A `convo.status` body (trimmed 2.0 conversation object).
const STATUS_BODY: &str = r#"{"id":4321,"number":12,"status":"closed","mailboxId":85}"#;
/// base64(HMAC-SHA1("whsec-hs-test", STATUS_BODY)), computed independently (Python hmac).
const STATUS_SIGNATURE: &str = "ZX1dFPCqpqjmkdM7Rp3KSYGPoB0=";
/// The same with the key "other".
const OTHER_SIGNATURE: &str = "ooNiJRI9Z6F4V9GxK6L8QVPjm/g=";

fn provider_with(settings: Value) -> Result<HelpScoutProvider, ProviderSetupError> {
    let secret =
        Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"whsec-hs-test"}"#).unwrap();
    HelpScoutProvider::new(
        &testing::config(ProviderKind::Helpscout, settings),
        &secret,
        reqwest::Client::new(),
    )
}

fn provider() -> HelpScoutProvider {
    provider_with(json!({"mailboxes": {"Support_NL": 85, "Billing": "86"}})).unwrap()
}

fn verify(p: &HelpScoutProvider, signature: Option<&str>, body: &[u8]) -> Result<(), CallbackError> {
    match signature {
        Some(s) => testing::verify(p, &[(SIGNATURE_HEADER, s)], body),
        None => testing::verify(p, &[], body),
    }
}

fn parse(p: &HelpScoutProvider, event: &str, body: &Value) -> Result<Callback, CallbackError> {
    testing::parse_with(p, &[(EVENT_HEADER, event)], body)
}

fn events(cb: Callback) -> Vec<ProviderEvent> {
    testing::events(cb)
}

/// A 2.0 conversation object as a webhook carries it, with embedded threads (newest first,
/// as Help Scout lists them): an agent reply, the imported customer thread, a note.
fn agent_reply_body() -> Value {
    json!({
        "id": 4321, "number": 12, "threads": 3, "type": "chat", "folderId": 11,
        "status": "active", "state": "published", "subject": "Where is my parcel?",
        "mailboxId": 85,
        "assignee": {"id": 99, "type": "user", "first": "Eva", "last": "Peeters", "email": "eva@acme.example"},
        "primaryCustomer": {"id": 777, "type": "customer", "email": "acme.u-7@handover.invalid"},
        "_embedded": {"threads": [
            {
                "id": 9003, "type": "message", "status": "active", "state": "published",
                "body": "<div>Hi Ann, I&#39;m Eva.</div><div>Let me check&nbsp;that.</div>",
                "source": {"type": "web", "via": "user"},
                "createdBy": {"id": 99, "type": "user", "first": "Eva", "last": "Peeters", "email": "eva@acme.example"},
                "createdAt": "2026-11-25T09:02:00Z",
                "_embedded": {"attachments": [{
                    "id": 5, "filename": "label.png", "mimeType": "image/png",
                    "_links": {"web": {"href": "https://secure.helpscout.net/file/5/label.png"}}
                }]}
            },
            {
                "id": 9002, "type": "note", "state": "published", "body": "internal",
                "createdBy": {"id": 99, "type": "user", "first": "Eva"},
                "createdAt": "2026-11-25T09:01:30Z"
            },
            {
                "id": 9001, "type": "customer", "state": "published", "body": "Where is my parcel?",
                "createdBy": {"id": 777, "type": "customer"},
                "createdAt": "2026-11-25T09:00:00Z"
            }
        ]}
    })
}

#[test]
fn the_documented_scheme_matches_an_independent_computation() {
    assert_eq!(signature(SECRET, STATUS_BODY.as_bytes()), STATUS_SIGNATURE);
    assert_eq!(signature(b"other", STATUS_BODY.as_bytes()), OTHER_SIGNATURE);
}

#[test]
fn only_a_valid_signature_is_accepted() {
    let p = provider();
    assert!(verify(&p, Some(STATUS_SIGNATURE), STATUS_BODY.as_bytes()).is_ok());
    let tampered = STATUS_BODY.replace("closed", "active");
    assert!(matches!(
        verify(&p, Some(STATUS_SIGNATURE), tampered.as_bytes()),
        Err(CallbackError::Unauthenticated(_))
    ));
    assert!(verify(&p, Some(OTHER_SIGNATURE), STATUS_BODY.as_bytes()).is_err());
    assert!(matches!(
        verify(&p, None, STATUS_BODY.as_bytes()),
        Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
    ));
    assert!(verify(&p, Some("not base64!"), STATUS_BODY.as_bytes()).is_err());
    let hex_style = "657d5d14f0aaa6a8e691d33b469dca49818fa01d";
    assert!(verify(&p, Some(hex_style), STATUS_BODY.as_bytes()).is_err());
}

#[test]
fn agent_replies_become_agent_messages() {
    let p = provider();
    let e = events(parse(&p, EVENT_AGENT_REPLY, &agent_reply_body()).unwrap());
    assert_eq!(e.len(), 1, "notes and customer threads are not relayed: {e:?}");
    assert_eq!(e[0].conversation_id, "4321");
    assert_eq!(e[0].event_id, "thread:9003");
    let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(message.text.as_deref(), Some("Hi Ann, I'm Eva.\nLet me check that."));
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(message.attachments[0].kind, "image");
    assert_eq!(
        message.attachments[0].url,
        "https://secure.helpscout.net/file/5/label.png"
    );
    assert_eq!(message.attachments[0].name.as_deref(), Some("label.png"));
    let agent = agent.as_ref().unwrap();
    assert_eq!(agent.id, "99");
    assert_eq!(agent.name.as_deref(), Some("Eva Peeters"));
}

#[test]
fn every_reply_in_the_body_is_reported_oldest_first_and_drafts_are_not() {
    let p = provider();
    let mut body = agent_reply_body();
    let threads = body["_embedded"]["threads"].as_array_mut().unwrap();
    threads.insert(
        0,
        json!({"id": 9004, "type": "reply", "state": "draft", "body": "draft",
               "createdBy": {"id": 99, "type": "user"}, "createdAt": "2026-11-25T09:03:00Z"}),
    );
    threads.push(
        json!({"id": 8999, "type": "message", "state": "published", "body": "<p>Earlier</p>",
                        "createdBy": {"id": 98, "type": "user", "first": "Tom"}, "createdAt": "2026-11-25T08:59:00Z"}),
    );
    let e = events(parse(&p, EVENT_AGENT_REPLY, &body).unwrap());
    let ids: Vec<&str> = e.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["thread:8999", "thread:9003"]);
}

#[test]
fn the_older_object_format_is_read_too() {
    let p = provider_with(json!({"mailboxId": 85, "agentName": "Support"})).unwrap();
    let body = json!({
        "id": 291938, "type": "email", "status": "active",
        "owner": {"id": 1234, "firstName": "Jack", "lastName": "Sprout", "type": "user"},
        "threads": [{
            "id": 88171881, "type": "message", "state": "published",
            "createdBy": {"id": 1234, "firstName": "Jack", "lastName": "Sprout", "type": "user"},
            "body": "This is what I have to say. Thank you.",
            "attachments": [{"id": 12391, "mimeType": "image/jpeg", "filename": "logo.jpg",
                             "url": "https://secure.helpscout.net/some-url/logo.jpg"}]
        }]
    });
    let e = events(parse(&p, EVENT_AGENT_REPLY, &body).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].conversation_id, "291938");
    let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(message.text.as_deref(), Some("This is what I have to say. Thank you."));
    assert_eq!(
        message.attachments[0].url,
        "https://secure.helpscout.net/some-url/logo.jpg"
    );
    assert_eq!(
        agent.as_ref().unwrap().name.as_deref(),
        Some("Support"),
        "agentName wins"
    );
    let joined = events(parse(&p, EVENT_ASSIGNED, &body).unwrap());
    assert_eq!(joined[0].event_id, "291938:assigned:1234");
}

#[test]
fn an_assignment_to_a_user_is_the_join() {
    let p = provider();
    let e = events(parse(&p, EVENT_ASSIGNED, &agent_reply_body()).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "4321:assigned:99");
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentJoined {
            agent: Agent {
                id: "99".into(),
                name: Some("Eva Peeters".into())
            }
        }
    );
    let mut team = agent_reply_body();
    team["assignee"]["type"] = json!("team");
    assert!(events(parse(&p, EVENT_ASSIGNED, &team).unwrap()).is_empty());
    let mut unassigned = agent_reply_body();
    unassigned["assignee"] = Value::Null;
    assert!(events(parse(&p, EVENT_ASSIGNED, &unassigned).unwrap()).is_empty());
    let off = provider_with(json!({"mailboxId": 85, "assignmentIsJoin": false})).unwrap();
    assert!(events(parse(&off, EVENT_ASSIGNED, &agent_reply_body()).unwrap()).is_empty());
}

#[test]
fn closing_spam_and_deleting_close_the_conversation() {
    let p = provider();
    let closed: Value = serde_json::from_str(STATUS_BODY).unwrap();
    let e = events(parse(&p, EVENT_STATUS, &closed).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "4321:status:closed");
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    let spam = json!({"id": 4321, "status": "spam"});
    assert_eq!(events(parse(&p, EVENT_STATUS, &spam).unwrap()).len(), 1);
    for status in ["active", "pending"] {
        let body = json!({"id": 4321, "status": status});
        assert!(events(parse(&p, EVENT_STATUS, &body).unwrap()).is_empty(), "{status}");
    }
    let deleted = events(parse(&p, EVENT_DELETED, &json!({"id": 4321})).unwrap());
    assert_eq!(deleted[0].event_id, "4321:deleted");
    assert_eq!(deleted[0].kind, ProviderEventKind::ConversationClosed);
}

#[test]
fn other_events_are_acknowledged_and_ignored() {
    let p = provider();
    for event in [
        EVENT_TEST,
        "convo.customer.reply.created",
        "convo.created",
        "convo.note.created",
        "convo.tags",
        "customer.created",
    ] {
        assert!(
            events(parse(&p, event, &agent_reply_body()).unwrap()).is_empty(),
            "{event}"
        );
    }
    // A test delivery is acknowledged whatever its body.
    assert!(events(testing::parse_bytes(&p, &[(EVENT_HEADER, EVENT_TEST)], b"not json").unwrap()).is_empty());
}

#[test]
fn malformed_callbacks_are_refused() {
    let p = provider();
    assert!(matches!(
        testing::parse_bytes(&p, &[], STATUS_BODY.as_bytes()),
        Err(CallbackError::Malformed(m)) if m.contains("X-HelpScout-Event")
    ));
    assert!(matches!(
        testing::parse_bytes(&p, &[(EVENT_HEADER, EVENT_STATUS)], b"not json"),
        Err(CallbackError::Malformed(_))
    ));
    assert!(matches!(
        parse(&p, EVENT_STATUS, &json!({"status": "closed"})),
        Err(CallbackError::Malformed(_))
    ));
}

/// A body of `tests/fixtures/helpscout/webhook-agent-reply.json` (sources in its `_source`),
/// about conversation 4321 in mailbox 85.
fn published(name: &str) -> Value {
    let text = include_str!("../../../../../tests/fixtures/helpscout/webhook-agent-reply.json")
        .replace("\"CONVERSATION\"", "4321")
        .replace("/CONVERSATION", "/4321")
        .replace("\"MAILBOX\"", "85");
    let all: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    assert!(!all[name].is_null(), "no fixture {name}");
    all[name].clone()
}

#[test]
fn a_reply_held_under_review_is_not_relayed_until_published() {
    let p = provider();
    let held = events(parse(&p, EVENT_AGENT_REPLY, &published("reply_under_review")).unwrap());
    assert!(held.is_empty(), "held by collision detection: {held:?}");
    let e = events(parse(&p, EVENT_AGENT_REPLY, &published("reply_published")).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "thread:9003", "the same id once published");
}

#[test]
fn a_notification_webhook_with_only_a_uri_is_read_from_the_api_not_refused() {
    let p = provider();
    // A webhook created with `notification: true` sends the changed resource's URI only.
    let uri = published("notification_object");
    assert_eq!(
        parse(&p, EVENT_AGENT_REPLY, &uri).unwrap(),
        Callback::Fetch {
            conversation_id: "4321".into()
        }
    );
    assert_eq!(
        parse(&p, EVENT_STATUS, &published("notification_string")).unwrap(),
        Callback::Fetch {
            conversation_id: "4321".into()
        }
    );
    let e = events(parse(&p, EVENT_DELETED, &uri).unwrap());
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
}

//! Unit tests of the Intercom adapter: signatures and set-up here, the events read from
//! notifications in `events`.

use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use super::note::{created_by_us, marker};
use super::outbound::conflicting_contact_id;
use super::wire::Conversation;
use super::*;
use crate::providers::kit::testing;
use crate::providers::kit::text::escape_html;
use crate::providers::{ProviderEvent, path_segment};

mod events;

const BOT: &str = "991267000";
const EVA: &str = "991267001";
const SECRET: &[u8] = b"cs-456";

fn build(settings: Value) -> Result<IntercomProvider, ProviderSetupError> {
    let secret = Secret::from_json(r#"{"accessToken":"tok-123","clientSecret":"cs-456"}"#).unwrap();
    IntercomProvider::new(
        &testing::config(ProviderKind::Intercom, settings),
        &secret,
        reqwest::Client::new(),
    )
}

fn provider() -> IntercomProvider {
    build(json!({ "botAdminId": BOT, "teams": { "general": 5017691 } })).unwrap()
}

/// The notification envelope as Intercom documents it.
fn notification(topic: &str, item: Value) -> Value {
    json!({
        "type": "notification_event",
        "app_id": "abc123",
        "data": { "type": "notification_event_data", "item": item },
        "links": {},
        "id": "notif_6a3b1c2d-0e4f-4a5b-9c8d-7e6f5a4b3c2d",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": 1764061200,
        "created_at": 1764061200,
        "self": null
    })
}

fn conversation(admin_assignee_id: Value, parts: Value) -> Value {
    json!({
        "type": "conversation",
        "id": "4711",
        "created_at": 1764061000,
        "updated_at": 1764061200,
        "source": {
            "type": "conversation", "id": "403918320", "delivered_as": "customer_initiated",
            "subject": "", "body": "<p>Where is my parcel?</p>",
            "author": { "type": "user", "id": "6762f0dd1bb69f9f2193bb83", "name": "Ann", "email": "" },
            "attachments": [], "url": null, "redacted": false
        },
        "contacts": { "type": "contact.list", "contacts": [
            { "type": "contact", "id": "6762f0dd1bb69f9f2193bb83", "external_id": "u-7" }
        ] },
        "admin_assignee_id": admin_assignee_id,
        "team_assignee_id": 5017691,
        "open": true,
        "state": "open",
        "read": false,
        "conversation_parts": { "type": "conversation_part.list", "conversation_parts": parts, "total_count": 6 }
    })
}

fn part(id: u64, part_type: &str, body: Value, author: Value) -> Value {
    json!({
        "type": "conversation_part", "id": id.to_string(), "part_type": part_type, "body": body,
        "created_at": 1764061200, "updated_at": 1764061200, "notified_at": 1764061200,
        "assigned_to": null, "author": author, "attachments": [], "external_id": null, "redacted": false
    })
}

fn admin(id: &str, name: &str) -> Value {
    json!({ "type": "admin", "id": id, "name": name, "email": format!("{name}@example.com") })
}

fn events(p: &IntercomProvider, body: &Value) -> Vec<ProviderEvent> {
    testing::events(testing::parse(p, body).unwrap())
}

fn verify(p: &IntercomProvider, header: Option<String>, body: &[u8]) -> Result<(), CallbackError> {
    match header {
        Some(h) => testing::verify(p, &[(SIGNATURE_HEADER, &h)], body),
        None => testing::verify(p, &[], body),
    }
}

#[test]
fn only_a_correct_signature_of_the_exact_body_is_accepted() {
    let p = provider();
    let body = serde_json::to_vec(&notification(
        "ping",
        json!({ "type": "ping", "message": "something is pinging" }),
    ))
    .unwrap();
    let good = signature(SECRET, &body);
    assert!(good.starts_with("sha1=") && good.len() == 45, "{good}");
    assert_eq!(verify(&p, Some(good.clone()), &body), Ok(()));
    assert_eq!(
        verify(&p, Some(good.to_uppercase().replacen("SHA1=", "sha1=", 1)), &body),
        Ok(())
    );

    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(matches!(
        verify(&p, Some(good.clone()), &tampered),
        Err(CallbackError::Unauthenticated(_))
    ));
    let wrong = signature(b"another-secret", &body);
    assert!(matches!(
        verify(&p, Some(wrong), &body),
        Err(CallbackError::Unauthenticated(_))
    ));
    assert!(matches!(
        verify(&p, None, &body),
        Err(CallbackError::Unauthenticated(_))
    ));
    assert!(matches!(
        verify(&p, Some("sha1=not-hex".into()), &body),
        Err(CallbackError::Unauthenticated(_))
    ));
    let bare = good.trim_start_matches("sha1=").to_owned();
    assert!(matches!(
        verify(&p, Some(bare), &body),
        Err(CallbackError::Unauthenticated(_))
    ));
}

#[test]
fn the_url_check_is_answered_without_a_signature() {
    let p = provider();
    let headers = HeaderMap::new();
    let head = CallbackRequest {
        method: "HEAD",
        headers: &headers,
        query: &[],
        body: b"",
    };
    assert_eq!(p.verify_callback(&head, Utc::now()), Ok(()));
    assert!(matches!(
        p.parse_callback(&head),
        Ok(Callback::Challenge { status: 200, .. })
    ));
    // An unsigned GET is not the URL check: refused like any unsigned request.
    let get = CallbackRequest { method: "GET", ..head };
    assert!(p.verify_callback(&get, Utc::now()).is_err());
}

#[test]
fn our_transcript_note_marks_a_conversation_we_created() {
    let ours = part(
        1,
        "note",
        json!(format!(
            "<p><b>Handed over by the bot</b> {}</p>",
            escape_html(&marker("h-1"))
        )),
        admin(BOT, "Acme Bot"),
    );
    let conv = conversation(Value::Null, json!([ours]));
    let conv: Conversation = serde_json::from_value(conv).unwrap();
    assert!(created_by_us(&conv, BOT, "h-1"));
    assert!(!created_by_us(&conv, BOT, "h-2"), "another handover's note");
    assert!(!created_by_us(&conv, "1", "h-1"), "a note by someone else");
    let plain = conversation(
        Value::Null,
        json!([part(2, "comment", json!("<p>[handover:h-1]</p>"), admin(BOT, "B"))]),
    );
    let plain: Conversation = serde_json::from_value(plain).unwrap();
    assert!(!created_by_us(&plain, BOT, "h-1"), "only notes count");
}

fn setup_error(settings: Value) -> String {
    match build(settings) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the settings were accepted"),
    }
}

#[test]
fn setup_needs_the_bot_teammate_a_team_and_a_known_region() {
    let e = setup_error(json!({ "teams": { "general": "1" } }));
    assert!(e.contains("providers.botAdminId"), "{e}");
    let e = setup_error(json!({ "botAdminId": BOT }));
    assert!(e.contains("providers.teams"), "{e}");
    let e = setup_error(json!({ "botAdminId": BOT, "defaultTeamId": "7", "region": "mars" }));
    assert!(e.contains("providers.region"), "{e}");
    let e = setup_error(json!({ "botAdminId": BOT, "defaultTeamId": "7", "apiVersion": "2.\u{7f}" }));
    assert!(e.contains("providers.apiVersion"), "{e}");

    let p = build(json!({ "botAdminId": 991267000u64, "defaultTeamId": 7, "region": "EU" })).unwrap();
    assert_eq!(p.api.base(), EU_API);
    assert_eq!(p.bot_admin_id, BOT);
    assert_eq!(p.team_for("anything"), Some("7"));
    let p = build(json!({ "botAdminId": BOT, "teams": { "general": "5" }, "region": "au" })).unwrap();
    assert_eq!(p.api.base(), AU_API);
    assert_eq!(p.team_for("other"), None);
    let p = build(json!({
        "botAdminId": BOT, "teams": { "general": "5" },
        "apiBaseUrl": "http://127.0.0.1:9999/", "apiVersion": "2.11"
    }))
    .unwrap();
    assert_eq!(p.api.base(), "http://127.0.0.1:9999");
    assert_eq!(provider().api.base(), US_API);

    let secret = Secret::from_json(r#"{"accessToken":"tok"}"#).unwrap();
    let missing = IntercomProvider::new(
        &testing::config(
            ProviderKind::Intercom,
            json!({ "botAdminId": BOT, "defaultTeamId": "7" }),
        ),
        &secret,
        reqwest::Client::new(),
    );
    match missing {
        Err(e) => assert!(e.to_string().contains("clientSecret"), "{e}"),
        Ok(_) => panic!("a secret without clientSecret was accepted"),
    }
}

#[test]
fn a_conflict_names_the_existing_contact() {
    let body = r#"{"type":"error.list","request_id":"r","errors":[{"code":"conflict","message":"A contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83"}]}"#;
    assert_eq!(
        conflicting_contact_id(body).as_deref(),
        Some("6762f0dd1bb69f9f2193bb83")
    );
    assert_eq!(conflicting_contact_id(r#"{"errors":[{"message":"Conflict"}]}"#), None);
}

#[test]
fn path_segments_are_encoded() {
    assert_eq!(path_segment("4711"), "4711");
    assert_eq!(path_segment("../admins?x=1"), "..%2Fadmins%3Fx%3D1");
}

//! The conversation we create, the customer's email and names, thread times and limits, the
//! settings.

use chrono::DateTime;
use serde_json::{Value, json};

use super::super::outbound::{
    MAX_THREAD_CHARS, MAX_TRANSCRIPT_THREADS, TRANSCRIPT_BUDGET_CHARS, customer_email, customer_names, iso_seconds,
    kept_entries, thread_times,
};
use super::super::wire::ConversationBody;
use super::*;
use crate::domain::{Handover, Message, UserInfo};
use crate::providers::path_segment;

fn handover() -> Handover {
    Handover {
        provider: "helpscout".into(),
        queue: "Support_NL".into(),
        language: "nl".into(),
        variables: [("orderId".to_owned(), json!("A-1")), ("items".to_owned(), json!(3))]
            .into_iter()
            .collect(),
        tags: vec!["vip".into()],
        summary: Some("Parcel is late".into()),
        ..testing::handover()
    }
}

fn entry(seq: u64, actor: Actor, text: &str) -> TranscriptEntry {
    testing::entry(seq, actor, Message::text(text), "2026-11-25T09:00:00Z")
}

#[test]
fn the_new_conversation_carries_customer_transcript_and_context() {
    let p = provider();
    let h = handover();
    let user = testing::ann();
    let transcript = [
        entry(1, Actor::User, "Where is my parcel?"),
        entry(2, Actor::Bot, "Let me check."),
    ];
    let body =
        serde_json::to_value(p.new_conversation(&testing::start_request(&h, Some(&user), &transcript), 85)).unwrap();
    assert_eq!(body["mailboxId"], 85);
    assert_eq!(body["type"], "chat");
    assert_eq!(body["status"], "active");
    assert_eq!(body["imported"], true);
    assert_eq!(body["subject"], "Parcel is late");
    assert_eq!(body["tags"], json!(["vip"]));
    assert_eq!(
        body["customer"],
        json!({"email": "ann@example.com", "firstName": "Ann", "lastName": "Peeters"})
    );
    let threads = body["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3);
    assert_eq!(
        threads[0],
        json!({"type": "customer", "customer": {"email": "ann@example.com"},
               "text": "Where is my parcel?", "createdAt": "2026-11-25T08:59:58Z"})
    );
    assert_eq!(
        threads[1],
        json!({"type": "note", "text": "Bot: Let me check.", "createdAt": "2026-11-25T08:59:59Z"})
    );
    assert_eq!(threads[2]["type"], "note");
    assert_eq!(threads[2]["createdAt"], "2026-11-25T09:00:00Z");
    assert_eq!(body["createdAt"], "2026-11-25T08:59:58Z");
    let note = threads[2]["text"].as_str().unwrap();
    assert!(
        note.starts_with("Handed over by the bot (queue: Support_NL, reason: explicit_request, language: nl).<br>Summary: Parcel is late<br>Tags: vip<br>Variables:<br>items: 3<br>orderId: A-1<br>"),
        "{note}"
    );
    assert!(
        note.ends_with("Handover h-1, bot acme, session s-42, channel web."),
        "{note}"
    );
}

#[test]
fn the_customer_email_falls_back_to_variables_then_a_placeholder() {
    let mut h = handover();
    let user = UserInfo {
        id: "U 7/x".into(),
        name: None,
        email: None,
        locale: None,
    };
    let r = testing::start_request(&h, Some(&user), &[]);
    assert_eq!(
        customer_email(&r, true, "handover.invalid"),
        "acme.u-7-x@handover.invalid"
    );
    assert_eq!(
        customer_email(&testing::start_request(&h, None, &[]), true, "chat.example.com"),
        "acme.s-42@chat.example.com"
    );
    h.variables.insert("email".into(), json!("ann@example.com"));
    h.variables.insert("firstName".into(), json!("Ann"));
    let r = testing::start_request(&h, Some(&user), &[]);
    assert_eq!(customer_email(&r, true, "handover.invalid"), "ann@example.com");
    assert_eq!(customer_names(&r), (Some("Ann".into()), None));
    assert_eq!(
        customer_email(&r, false, "handover.invalid"),
        "acme.u-7-x@handover.invalid"
    );
    h.variables.insert("email".into(), json!("not an email"));
    let r = testing::start_request(&h, Some(&user), &[]);
    assert_eq!(
        customer_email(&r, true, "handover.invalid"),
        "acme.u-7-x@handover.invalid"
    );
}

#[test]
fn a_conversation_without_user_turns_gets_a_customer_thread() {
    let p = provider_with(json!({"mailboxId": 85, "subject": "From the bot", "conversationType": "email"})).unwrap();
    let mut h = handover();
    h.summary = None;
    h.tags.clear();
    let body = serde_json::to_value(p.new_conversation(&testing::start_request(&h, None, &[]), 85)).unwrap();
    assert_eq!(body["subject"], "From the bot");
    assert_eq!(body["type"], "email");
    assert!(body.get("tags").is_none());
    let threads = body["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0]["type"], "customer");
    assert_eq!(threads[0]["customer"]["email"], "acme.s-42@handover.invalid");
    assert_eq!(threads[1]["type"], "note");
}

#[test]
fn thread_times_are_strictly_increasing_and_never_later_than_given() {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let times = thread_times(&[
        t("2026-11-25T09:00:00.700Z"),
        t("2026-11-25T09:00:00.200Z"),
        t("2026-11-25T08:00:00Z"),
        t("2026-11-25T09:00:01Z"),
    ]);
    let shown: Vec<String> = times.into_iter().map(iso_seconds).collect();
    assert_eq!(
        shown,
        [
            "2026-11-25T07:59:58Z",
            "2026-11-25T07:59:59Z",
            "2026-11-25T08:00:00Z",
            "2026-11-25T09:00:01Z"
        ]
    );
}

#[test]
fn long_transcripts_keep_their_newest_turns() {
    let transcript: Vec<TranscriptEntry> = (1..=150).map(|i| entry(i, Actor::User, &format!("turn {i}"))).collect();
    let (kept, omitted) = kept_entries(&transcript);
    assert_eq!(kept.len(), MAX_TRANSCRIPT_THREADS);
    assert_eq!(omitted, 150 - MAX_TRANSCRIPT_THREADS);
    assert_eq!(kept.last().unwrap().seq, 150);
    let big = "x".repeat(10_000);
    let transcript: Vec<TranscriptEntry> = (1..=60).map(|i| entry(i, Actor::User, &big)).collect();
    let (kept, omitted) = kept_entries(&transcript);
    assert!(kept.len() * (MAX_THREAD_CHARS + 16) <= TRANSCRIPT_BUDGET_CHARS);
    assert_eq!(kept.len() + omitted, 60);
}

#[test]
fn mailboxes_come_from_the_queue_map_or_the_default() {
    let p = provider();
    assert_eq!(p.mailbox_for("Support_NL"), Some(85));
    assert_eq!(p.mailbox_for("billing"), Some(86));
    assert_eq!(p.mailbox_for("Other"), None);
    let p = provider_with(json!({"mailboxes": {"Billing": 86}, "mailboxId": 85})).unwrap();
    assert_eq!(p.mailbox_for("Other"), Some(85));
    assert_eq!(p.api.base(), DEFAULT_API_BASE);
    assert_eq!(p.api.token_url(), Some("https://api.helpscout.net/v2/oauth2/token"));
    let p = provider_with(json!({"mailboxId": 85, "apiBaseUrl": "http://127.0.0.1:9/"})).unwrap();
    assert_eq!(p.api.token_url(), Some("http://127.0.0.1:9/v2/oauth2/token"));
}

#[test]
fn configuration_errors_name_the_field() {
    let err = |v: Value| provider_with(v).err().unwrap().to_string();
    assert!(err(json!({})).contains("providers.mailboxes"));
    assert!(err(json!({"mailboxes": {"Support": "abc"}})).contains("providers.mailboxes.Support"));
    assert!(err(json!({"mailboxId": 0})).contains("providers.mailboxId"));
    assert!(err(json!({"mailboxId": 85, "conversationType": "sms"})).contains("providers.conversationType"));
    assert!(err(json!({"mailboxId": 85, "placeholderEmailDomain": "nodot"})).contains("placeholderEmailDomain"));
    assert!(
        err(json!({"mailboxId": 85, "mailboxID": 85})).contains("mailboxID"),
        "typos are reported"
    );
    let secret = Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret"}"#).unwrap();
    let e = HelpScoutProvider::new(
        &testing::config(ProviderKind::Helpscout, json!({"mailboxId": 85})),
        &secret,
        reqwest::Client::new(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("webhookSecret"), "{e}");
}

#[test]
fn the_end_note_tells_why() {
    assert!(end_note(EndReason::UserCancelled).contains("user_cancelled"));
    assert!(end_note(EndReason::NoAgentTimeout).contains("no_agent_timeout"));
}

#[test]
fn a_thread_list_of_another_shape_is_no_list() {
    let read = |v: Value| serde_json::from_value::<ConversationBody>(v).unwrap();
    assert!(
        read(json!({"id": 1, "threads": 3})).thread_list().is_none(),
        "a 2.0 count"
    );
    assert_eq!(
        read(json!({"id": 1, "threads": []})).thread_list().map(<[_]>::len),
        Some(0)
    );
    assert_eq!(
        read(json!({"id": 1, "_embedded": {"threads": [{"id": 5}, 7]}}))
            .thread_list()
            .map(<[_]>::len),
        Some(2)
    );
    assert_eq!(path_segment("12/3"), "12%2F3");
}

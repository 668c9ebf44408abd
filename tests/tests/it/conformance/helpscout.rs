//! Help Scout (Mailbox API 2.0): a conversation per handover, user turns as customer threads,
//! webhooks signed with `X-HelpScout-Signature` and named by `X-HelpScout-Event`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use handover::providers::helpscout;
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{Auth, Backend, Event, refuse_twice_with};

const WEBHOOK_SECRET: &[u8] = b"whsec-hs-test";
const TOKEN_PATH: &str = "/v2/oauth2/token";
const CONVERSATIONS_PATH: &str = "/v2/conversations";
const CUSTOMER_PATH: &str = "/v2/conversations/4321/customer";
const NOTES_PATH: &str = "/v2/conversations/4321/notes";
const CUSTOMER_EMAIL: &str = "acme.u-7@handover.invalid";
const CUSTOMER_ID: u64 = 777;

/// A 2.0 conversation object as Help Scout's webhooks carry it, threads embedded.
fn conversation(id: &str, status: &str, threads: Vec<Value>) -> Value {
    json!({
        "id": id.parse::<u64>().unwrap_or(0), "number": 12, "threads": threads.len(), "type": "chat", "folderId": 11,
        "status": status, "state": "published", "subject": "Chat handed over by the bot", "mailboxId": 85,
        "assignee": { "id": 99, "type": "user", "first": "Eva", "last": "", "email": "eva@acme.example" },
        "createdBy": { "id": CUSTOMER_ID, "type": "customer", "email": CUSTOMER_EMAIL },
        "createdAt": "2026-11-25T08:59:58Z",
        "primaryCustomer": { "id": CUSTOMER_ID, "type": "customer", "email": CUSTOMER_EMAIL },
        "_embedded": { "threads": threads }
    })
}

/// A thread id derived from the event id, so a repeated delivery repeats the thread.
fn thread_id(event_id: &str) -> u64 {
    event_id.bytes().fold(9000u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b)) % 1_000_000
    })
}

fn event_name(event: Event<'_>) -> &'static str {
    match event {
        Event::AgentJoined => "convo.assigned",
        Event::AgentMessage(_) => "convo.agent.reply.created",
        Event::AgentClosed => "convo.status",
        Event::Unknown => "convo.note.created",
    }
}

pub struct HelpScout;

impl Backend for HelpScout {
    const ID: &'static str = "helpscout";

    fn secret(&self) -> Value {
        json!({ "clientId": "cid", "clientSecret": "csecret", "webhookSecret": "whsec-hs-test" })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: helpscout\n    mailboxes:\n      general: 85\n    apiBaseUrl: '{api}'\n    secretRef: {secret_ref}\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "token_type": "bearer", "access_token": "tok-1", "expires_in": 172800 })),
            )
            .mount(api)
            .await;
        let next_id = Arc::new(AtomicU64::new(4321));
        let base = api.uri();
        Mock::given(method("POST"))
            .and(path(CONVERSATIONS_PATH))
            .respond_with(move |_: &Request| {
                let id = next_id.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(201)
                    .insert_header("resource-id", id.to_string())
                    .insert_header("location", format!("{base}/v2/conversations/{id}"))
            })
            .mount(api)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v2/conversations/\d+$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(conversation("4321", "active", vec![])))
            .mount(api)
            .await;
        // The read-back after a create: the threads so far (none: nobody has answered yet).
        Mock::given(method("GET"))
            .and(path_regex(r"^/v2/conversations/\d+/threads$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "_embedded": {"threads": []},
                "page": {"size": 25, "totalElements": 0, "totalPages": 0, "number": 1}
            })))
            .mount(api)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v2/conversations/\d+/(customer|notes)$"))
            .respond_with(ResponseTemplate::new(201).insert_header("resource-id", "9100"))
            .with_priority(10)
            .mount(api)
            .await;
    }

    async fn starts(&self, api: &MockServer) -> usize {
        requests_to(api, "POST", CONVERSATIONS_PATH).await.len()
    }

    /// The `Resource-ID` Help Scout answered the creation with.
    fn conversation_id(&self, _handover_id: &str) -> String {
        "4321".to_owned()
    }

    fn callback(&self, event: Event<'_>, conv: &str, event_id: &str) -> Value {
        match event {
            Event::AgentJoined => conversation(conv, "active", vec![]),
            Event::AgentMessage(_) | Event::Unknown => {
                let text = if let Event::AgentMessage(t) = event {
                    t
                } else {
                    "an internal note"
                };
                conversation(
                    conv,
                    "active",
                    vec![json!({
                        "id": thread_id(event_id), "type": "message", "status": "active", "state": "published",
                        "body": format!("<p>{text}</p>"), "source": { "type": "web", "via": "user" },
                        "createdBy": { "id": 99, "type": "user", "first": "Eva", "last": "", "email": "eva@acme.example" },
                        "createdAt": "2026-11-25T09:01:00Z"
                    })],
                )
            }
            Event::AgentClosed => conversation(conv, "closed", vec![]),
        }
    }

    fn headers(&self, event: Event<'_>, body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        let mut h = vec![("x-helpscout-event", event_name(event).to_owned())];
        match auth {
            Auth::Valid => h.push(("x-helpscout-signature", helpscout::signature(WEBHOOK_SECRET, body))),
            Auth::WrongSecret => h.push(("x-helpscout-signature", helpscout::signature(b"another-secret", body))),
            Auth::Missing => {}
        }
        h
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Ok(())
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        requests_to(api, "POST", CUSTOMER_PATH)
            .await
            .iter()
            .filter_map(|r| json_of(r)["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// A closing note: posted with `status: closed`.
    async fn ends(&self, api: &MockServer) -> usize {
        requests_to(api, "POST", NOTES_PATH)
            .await
            .iter()
            .filter(|r| json_of(r)["status"] == "closed")
            .count()
    }

    async fn mount_refusals(&self, api: &MockServer) {
        // Help Scout tells the delay in its own header.
        refuse_twice_with(
            api,
            "POST",
            CUSTOMER_PATH,
            json!({ "text": "anyone?" }),
            "x-ratelimit-retry-after",
        )
        .await;
    }
}

conformance_cases!(HelpScout);

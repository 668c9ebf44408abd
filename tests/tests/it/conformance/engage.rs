//! RingCentral Engage Digital (embedded: the conversation is an Engage thread): the handover
//! moves the thread from the bot's category to the agents', the end moves it back. Webhooks
//! carry the webhook secret itself in `X-Dimelo-Secret`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{Auth, Backend, Event, Retried, all_texts};

const THREAD: &str = "5be5ae57d6cb009bde8e5674";
const SOURCE: &str = "5b3b6562d6cb00f93fe59c9f";
const BOT_CATEGORY: &str = "5be59e0a13047d01f46caa62";
const AGENT_CATEGORY: &str = "5be59e1f13047d026b6ca8af";
const BOT_USER: &str = "5b8eaf1813047d298f940001";
const AGENT: &str = "52fcf5157aa58dd768000006";
const WEBHOOK_SECRET: &str = "whsec-engage";

fn thread_path() -> String {
    format!("/1.0/content_threads/{THREAD}")
}

fn update_path() -> String {
    format!("/1.0/content_threads/{THREAD}/update_categories")
}

fn thread_json(categories: &[String]) -> Value {
    json!({
        "id": THREAD, "source_id": SOURCE, "title": "salut", "interventions_count": 0, "contents_count": 4,
        "closed": false, "category_ids": categories, "thread_category_ids": categories, "extra_data": {},
        "foreign_id": null, "created_at": "2026-11-25T08:58:00Z", "updated_at": "2026-11-25T09:00:00Z"
    })
}

/// The thread's categories, shared by the fake's GET and PUT.
type Categories = Arc<Mutex<Vec<String>>>;

struct GetThread(Categories);

impl Respond for GetThread {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(thread_json(&self.0.lock().unwrap()))
    }
}

/// `PUT …/update_categories?thread_category_ids[]=…`: the thread gets exactly those categories.
struct UpdateCategories(Categories);

impl Respond for UpdateCategories {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let categories = categories_of(request);
        *self.0.lock().unwrap() = categories.clone();
        ResponseTemplate::new(200).set_body_json(thread_json(&categories))
    }
}

fn categories_of(request: &Request) -> Vec<String> {
    request
        .url
        .query_pairs()
        .filter(|(k, _)| *k == "thread_category_ids[]")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Recategorisations of the thread that include `category`.
async fn moves_to(api: &MockServer, category: &str) -> usize {
    requests_to(api, "PUT", &update_path())
        .await
        .iter()
        .filter(|r| categories_of(r).iter().any(|c| c == category))
        .count()
}

fn intervention_event(kind: &str, event_id: &str) -> Value {
    json!({
        "type": kind, "id": event_id, "user_id": AGENT, "issued_at": "2026-11-25T09:03:00.000Z",
        "resource": { "type": "intervention", "id": "5464b5c04d61639684110000", "metadata": {
            "custom_field_values": {}, "category_ids": [AGENT_CATEGORY], "closed_at": null, "deferred_at": null,
            "identity_id": "5b8eaf1813047d298f940265", "source_id": SOURCE, "thread_id": THREAD, "user_id": AGENT
        } }
    })
}

fn reply_event(event_id: &str, body: &str) -> Value {
    json!({
        "type": "content.replied", "id": event_id, "user_id": AGENT, "issued_at": "2026-11-25T09:04:00.000Z",
        "resource": { "type": "chat/message", "id": format!("content-{event_id}"), "metadata": {
            "approval_required": false, "author_id": "5b8eaf1813047d298f940999", "body": body,
            "body_input_format": "text", "creator_id": AGENT, "first_in_thread": false, "foreign_categories": [],
            "category_ids": [AGENT_CATEGORY], "has_attachment": false, "intervention_id": "5464b5c04d61639684110000",
            "in_reply_to_id": "5be5aeffd6cb009bde8e56e2", "language": "en", "source_id": SOURCE, "status": "replied",
            "thread_id": THREAD, "thread_title": "salut", "created_from": "interface", "private": true
        } }
    })
}

pub struct Engage;

impl Backend for Engage {
    const ID: &'static str = "engage";

    fn secret(&self) -> Value {
        json!({ "accessToken": "tok-engage", "webhookSecret": WEBHOOK_SECRET, "verifyToken": "verify-engage" })
    }

    fn settings(&self, api: &str, secret_ref: &str) -> String {
        format!(
            "    kind: engage\n    secretRef: {secret_ref}\n    domain: acme\n    apiBaseUrl: '{api}'\n    agentCategoryId: '{AGENT_CATEGORY}'\n    botCategoryId: '{BOT_CATEGORY}'\n    botUserId: '{BOT_USER}'\n    sourceId: '{SOURCE}'\n"
        )
    }

    async fn mount(&self, api: &MockServer) {
        let categories: Categories = Arc::new(Mutex::new(vec![BOT_CATEGORY.to_owned()]));
        Mock::given(method("GET"))
            .and(path(thread_path()))
            .respond_with(GetThread(categories.clone()))
            .mount(api)
            .await;
        Mock::given(method("PUT"))
            .and(path(update_path()))
            .respond_with(UpdateCategories(categories))
            .with_priority(10)
            .mount(api)
            .await;
        Mock::given(method("GET"))
            .and(path("/1.0/status"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
                "agent_id": AGENT,
                "channels": [{ "id": "55794bda416472d4e8060000", "name": "Realtime", "status": "available", "busyness": "unoccupied" }],
                "custom_status": null
            }])))
            .mount(api)
            .await;
        Mock::given(method("GET"))
            .and(path("/1.0/interventions"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "count": 0, "limit": 150, "offset": 0, "records": [] })),
            )
            .mount(api)
            .await;
        Mock::given(method("PUT"))
            .and(path_regex(r"^/1\.0/interventions/[^/]+/close$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "x", "closed": true })))
            .mount(api)
            .await;
    }

    fn handover_request(&self, id: &str, session: &str) -> Value {
        let mut r = handover_request(id, session);
        r["handover"]["providerConversationId"] = json!(THREAD);
        r
    }

    /// The thread moved to the agents' category.
    async fn starts(&self, api: &MockServer) -> usize {
        moves_to(api, AGENT_CATEGORY).await
    }

    fn conversation_id(&self, _handover_id: &str) -> String {
        THREAD.to_owned()
    }

    fn callback(&self, event: Event<'_>, _conv: &str, event_id: &str) -> Value {
        let e = match event {
            Event::AgentJoined => intervention_event("intervention.opened", event_id),
            Event::AgentMessage(text) => reply_event(event_id, text),
            Event::AgentClosed => intervention_event("intervention.closed", event_id),
            Event::Unknown => {
                let mut e = intervention_event("intervention.recategorized", event_id);
                e["resource"]["metadata"]["category_ids"] = json!([AGENT_CATEGORY, BOT_CATEGORY]);
                e
            }
        };
        json!({ "id": format!("req-{event_id}"), "domain_id": "582af25a799fc247acfcde38", "events": [e] })
    }

    fn headers(&self, _event: Event<'_>, _body: &[u8], auth: Auth, _now: DateTime<Utc>) -> Vec<(&'static str, String)> {
        match auth {
            Auth::Valid => vec![("x-dimelo-secret", WEBHOOK_SECRET.to_owned())],
            Auth::WrongSecret => vec![("x-dimelo-secret", "not-the-secret".to_owned())],
            Auth::Missing => Vec::new(),
        }
    }

    fn body_signed(&self) -> Result<(), &'static str> {
        Err("Engage sends the webhook secret itself in X-Dimelo-Secret; nothing covers the body")
    }

    fn relays_user_messages(&self) -> Result<(), &'static str> {
        Err("embedded: user turns are already contents of the Engage thread")
    }

    async fn relayed_user_texts(&self, api: &MockServer) -> Vec<String> {
        all_texts(api).await
    }

    /// The thread moved back to the bot's category.
    async fn ends(&self, api: &MockServer) -> usize {
        moves_to(api, BOT_CATEGORY).await
    }

    fn retried(&self) -> Retried {
        Retried::End
    }

    async fn mount_refusals(&self, api: &MockServer) {
        Mock::given(method("PUT"))
            .and(path(update_path()))
            .and(query_param("thread_category_ids[]", BOT_CATEGORY))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "45"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(api)
            .await;
        Mock::given(method("PUT"))
            .and(path(update_path()))
            .and(query_param("thread_category_ids[]", BOT_CATEGORY))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(2)
            .mount(api)
            .await;
    }

    fn quick_replies_form(&self) -> Result<&'static str, &'static str> {
        Err("embedded: the bot's turns are already contents of the Engage thread")
    }
}

conformance_cases!(Engage);

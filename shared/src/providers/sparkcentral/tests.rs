//! Unit tests of the Sparkcentral adapter: signatures and the replay window, the events read,
//! set-up, and the handover call.

use serde_json::{Value, json};

use super::outbound::{MAX_NOTE_CHARS, handover_note};
use super::*;
use crate::domain::Handover;
use crate::providers::kit::testing::{self, events};
use crate::providers::{ProviderEvent, ProviderEventKind, oauth};

/// A shared secret as Sparkcentral shows it: 32 bytes, hexadecimal.
const SHARED: &str = "5e1f3c9a7b2d4e6f8091a2b3c4d5e6f70123456789abcdef0fedcba987654321";

/// Sparkcentral's sample `CONVERSATION_STARTED` event (virtual-agent-api-example,
/// `test/test_main.py`, picture URL left out), as compact JSON.
const STARTED: &str = r#"{"timestamp":"2019-02-20T10:28:57.229144Z","idempotencyKey":"36bce710-87d1-4b4c-9299-c873c34fac64","version":1,"type":"CONVERSATION_STARTED","data":{"conversationId":"0-01e67a8c216-000-8c9ea98e","contactProfile":{"id":"0-01e639d0a57-000-516b9710","mediumContactProfileId":"2853168558034488","primaryIdentifier":"Johan","secondaryIdentifier":"","vip":false},"contactAttributes":[{"attribute":"smooch-rtm-browser-language","value":"en-GB","source":"MEDIUM"}],"medium":{"id":"smooch-rtm"},"channel":{"id":"0-01c6421333d-000-4a29abb0","name":"Demo Channel"}}}"#;
/// HMAC-SHA256(hex-decoded SHARED, STARTED), computed independently (Python `hmac`).
const STARTED_SIGNATURE: &str = "b932b688231c21c558991f4ccad4be0de26588c56e31cd96353ea0023fc522b0";
/// The same HMAC keyed with the secret's *text*: what a receiver that forgets to decode the
/// secret would compute. It must not be accepted.
const STARTED_SIGNED_WITH_TEXT: &str = "dbd5a09dda7e834b24d1415f3a4ba3a6d34e6b828351844f0eb86b0f569bb6ba";

fn sent_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2019-02-20T10:28:57.229144Z")
        .unwrap()
        .to_utc()
}

fn secret() -> Secret {
    Secret::from_json(
        &json!({ "clientId": "va-client", "clientSecret": "va-secret", "sharedSecret": SHARED }).to_string(),
    )
    .unwrap()
}

fn build(settings: Value) -> Result<SparkcentralProvider, ProviderSetupError> {
    SparkcentralProvider::new(
        &testing::config(ProviderKind::Sparkcentral, settings),
        &secret(),
        reqwest::Client::new(),
    )
}

fn provider() -> SparkcentralProvider {
    build(json!({ "region": "us" })).unwrap()
}

fn setup_error(settings: Value) -> String {
    match build(settings) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the settings were accepted"),
    }
}

fn verify_at(
    p: &SparkcentralProvider,
    header: Option<(&'static str, &str)>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), CallbackError> {
    let headers = testing::headers(header.as_slice());
    let req = CallbackRequest {
        method: "POST",
        headers: &headers,
        query: &[],
        body,
    };
    p.verify_callback(&req, now)
}

fn parse(p: &SparkcentralProvider, body: &Value) -> Result<Vec<ProviderEvent>, CallbackError> {
    testing::parse(p, body).map(events)
}

// --- signatures ---

#[test]
fn the_signature_is_hex_hmac_sha256_keyed_with_the_decoded_secret() {
    assert_eq!(
        signature(SHARED, STARTED.as_bytes()).as_deref(),
        Some(STARTED_SIGNATURE)
    );
    assert_eq!(signature("not hex", b"{}"), None);
    assert_eq!(
        decode_shared_secret(&format!(" {} ", SHARED.to_uppercase()))
            .unwrap()
            .len(),
        32
    );
    assert_eq!(decode_shared_secret(""), None);
    assert_eq!(decode_shared_secret("abc"), None, "odd length");
}

#[test]
fn only_a_correct_signature_of_the_exact_body_is_accepted() {
    let p = provider();
    let body = STARTED.as_bytes();
    let now = sent_at() + Duration::seconds(1);
    for header in [SPARKCENTRAL_SIGNATURE_HEADER, HOOTSUITE_SIGNATURE_HEADER] {
        assert_eq!(
            verify_at(&p, Some((header, STARTED_SIGNATURE)), body, now),
            Ok(()),
            "{header}"
        );
    }
    let upper = STARTED_SIGNATURE.to_uppercase();
    assert_eq!(
        verify_at(&p, Some((SPARKCENTRAL_SIGNATURE_HEADER, upper.as_str())), body, now),
        Ok(())
    );

    let unauthenticated = |r: Result<(), CallbackError>| matches!(r, Err(CallbackError::Unauthenticated(_)));
    // Tampered body: one byte of the conversation id changed.
    let tampered = STARTED.replace("8c9ea98e", "8c9ea98f");
    assert!(unauthenticated(verify_at(
        &p,
        Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE)),
        tampered.as_bytes(),
        now
    )));
    // Re-serialised JSON is not the body that was signed.
    let reserialised = serde_json::to_vec_pretty(&serde_json::from_str::<Value>(STARTED).unwrap()).unwrap();
    assert_ne!(reserialised, body);
    assert!(unauthenticated(verify_at(
        &p,
        Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE)),
        &reserialised,
        now
    )));
    // The secret's text used as the key, and another secret altogether.
    assert!(unauthenticated(verify_at(
        &p,
        Some((HOOTSUITE_SIGNATURE_HEADER, STARTED_SIGNED_WITH_TEXT)),
        body,
        now
    )));
    let other = signature("00112233445566778899aabbccddeeff", body).unwrap();
    assert!(unauthenticated(verify_at(
        &p,
        Some((HOOTSUITE_SIGNATURE_HEADER, other.as_str())),
        body,
        now
    )));
    // No header, or garbage in it.
    assert!(unauthenticated(verify_at(&p, None, body, now)));
    assert!(unauthenticated(verify_at(
        &p,
        Some((SPARKCENTRAL_SIGNATURE_HEADER, "Wrong")),
        body,
        now
    )));
}

#[test]
fn old_future_and_undated_events_are_refused() {
    let p = provider();
    let body = STARTED.as_bytes();
    let header = Some((SPARKCENTRAL_SIGNATURE_HEADER, STARTED_SIGNATURE));
    assert_eq!(verify_at(&p, header, body, sent_at() + Duration::seconds(299)), Ok(()));
    assert!(matches!(
        verify_at(&p, header, body, sent_at() + Duration::seconds(301)),
        Err(CallbackError::Unauthenticated(_))
    ));
    assert!(matches!(
        verify_at(&p, header, body, sent_at() - Duration::seconds(301)),
        Err(CallbackError::Unauthenticated(_))
    ));
    let undated = br#"{"idempotencyKey":"k","version":1,"type":"CONVERSATION_STARTED","data":{"conversationId":"c"}}"#;
    let signed = signature(SHARED, undated).unwrap();
    assert!(matches!(
        verify_at(
            &p,
            Some((HOOTSUITE_SIGNATURE_HEADER, signed.as_str())),
            undated,
            sent_at()
        ),
        Err(CallbackError::Unauthenticated(_))
    ));
    // A forwarder with a queue may widen the window.
    let patient = build(json!({ "region": "us", "maxEventAgeSeconds": 900 })).unwrap();
    assert_eq!(
        verify_at(&patient, header, body, sent_at() + Duration::seconds(800)),
        Ok(())
    );
}

// --- parsing ---

#[test]
fn the_conversation_coming_back_to_the_virtual_agent_is_the_close() {
    let p = provider();
    let started: Value = serde_json::from_str(STARTED).unwrap();
    assert_eq!(
        parse(&p, &started).unwrap(),
        vec![ProviderEvent {
            event_id: "36bce710-87d1-4b4c-9299-c873c34fac64".into(),
            conversation_id: "0-01e67a8c216-000-8c9ea98e".into(),
            kind: ProviderEventKind::ConversationClosed,
        }]
    );
    // Hootsuite Inbox's `ConversationDelegatedEvent`, with the spec's example values.
    let delegated = json!({
        "timestamp": "2022-04-28T09:43:26.635984618Z", "idempotencyKey": "6ebc6a78-d9e9-48be-b172-51eda40b7af8",
        "version": 1, "type": "CONVERSATION_DELEGATED",
        "data": {
            "conversationId": "0ad42eef-a806-11eb-9642-f1ceb2f21def", "medium": { "id": "fb" },
            "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
            "language": "en",
            "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "mediumContactProfileId": "bb7b0f8f00cc989b97f0725b",
                                "primaryIdentifier": "John Smith", "secondaryIdentifier": "+32439487192",
                                "pictureUrl": "https://example.com/my-picture.png" },
            "contactAttributes": [ { "attribute": "company", "value": "My company", "source": "AGENT" } ]
        }
    });
    let events = parse(&p, &delegated).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "6ebc6a78-d9e9-48be-b172-51eda40b7af8");
    assert_eq!(events[0].conversation_id, "0ad42eef-a806-11eb-9642-f1ceb2f21def");
    assert_eq!(events[0].kind, ProviderEventKind::ConversationClosed);
}

#[test]
fn contact_messages_and_unknown_types_mean_nothing() {
    let p = provider();
    // Hootsuite Inbox's `InboundMessageReceivedEvent`, with the spec's example values.
    let inbound = json!({
        "timestamp": "2022-04-28T09:43:26.635984618Z", "idempotencyKey": "a5e0c8d2-2d8c-4f57-9d39-0c1f1b2a3c4d",
        "version": 1, "type": EVENT_INBOUND_MESSAGE_RECEIVED,
        "data": {
            "conversationId": "0-01d90bc1b13-000-9a9ca0d8",
            "message": { "messageId": "cc75552a-1a78-11e9-855e-6d1e71016abf", "text": "Hello", "payload": "<DEVELOPER_DEFINED_PAYLOAD>" },
            "trigger": null, "conversationTopics": ["Topic 1", "Topic 2"],
            "channel": { "id": "0-02534c5ac04-000-261ad914", "name": "Inbox 2.0 support channel" },
            "contactProfile": { "id": "693ed54b-a426-11eb-9363-cffd945b4b2f", "primaryIdentifier": "John Smith" },
            "medium": { "id": "facebook" }
        }
    });
    assert_eq!(parse(&p, &inbound).unwrap(), vec![]);
    // Sparkcentral's minimal legacy form of the same event.
    let legacy = json!({ "timestamp": "2019-02-20T10:29:10.238188Z", "idempotencyKey": "5b784e97-34fa-11e9-bf33-f1b7c89708ca",
                         "version": 1, "type": "INBOUND_MESSAGE_RECEIVED",
                         "data": { "conversationId": "0-01e67a8c216-000-8c9ea98e", "message": { "text": "Hello" } } });
    assert_eq!(parse(&p, &legacy).unwrap(), vec![]);
    let future = json!({ "timestamp": "2026-11-25T09:00:00Z", "idempotencyKey": "k", "version": 2,
                         "type": "CONVERSATION_RESOLVED", "data": { "conversationId": "c" } });
    assert_eq!(parse(&p, &future).unwrap(), vec![]);
}

#[test]
fn malformed_events_are_refused() {
    let p = provider();
    assert!(matches!(inbound::parse(b"not json"), Err(CallbackError::Malformed(_))));
    for body in [
        json!({ "idempotencyKey": "k", "data": { "conversationId": "c" } }),
        json!({ "type": "CONVERSATION_DELEGATED", "data": { "conversationId": "c" } }),
        json!({ "type": "CONVERSATION_DELEGATED", "idempotencyKey": " ", "data": { "conversationId": "c" } }),
        json!({ "type": "CONVERSATION_STARTED", "idempotencyKey": "k", "data": {} }),
        json!({ "type": "CONVERSATION_STARTED", "idempotencyKey": "k" }),
    ] {
        assert!(matches!(parse(&p, &body), Err(CallbackError::Malformed(_))), "{body}");
    }
}

// --- set-up ---

#[test]
fn setup_needs_a_known_region_and_a_hex_shared_secret() {
    assert!(setup_error(json!({})).contains("providers.region"));
    assert!(setup_error(json!({ "region": "apac" })).contains("providers.region"));
    assert!(setup_error(json!({ "region": "hootsuite" })).contains("providers.organizationId"));
    assert!(setup_error(json!({ "region": "eu", "checkOnlineAgents": true })).contains("providers.checkOnlineAgents"));
    assert!(setup_error(json!({ "region": "us", "apiBaseUrl": "ftp://x" })).contains("providers.apiBaseUrl"));
    assert!(
        setup_error(json!({ "region": "us", "queueTopics": { "general": [] } }))
            .contains("providers.queueTopics.general")
    );
    assert!(setup_error(json!({ "region": "us", "maxEventAgeSeconds": 0 })).contains("providers.maxEventAgeSeconds"));

    let text_secret =
        Secret::from_json(r#"{"clientId":"a","clientSecret":"b","sharedSecret":"my shared secret"}"#).unwrap();
    match SparkcentralProvider::new(
        &testing::config(ProviderKind::Sparkcentral, json!({ "region": "us" })),
        &text_secret,
        reqwest::Client::new(),
    ) {
        Err(e) => assert!(e.to_string().contains("hexadecimal"), "{e}"),
        Ok(_) => panic!("a non-hex shared secret was accepted"),
    }
    let no_client = Secret::from_json(&json!({ "sharedSecret": SHARED }).to_string()).unwrap();
    match SparkcentralProvider::new(
        &testing::config(ProviderKind::Sparkcentral, json!({ "region": "us" })),
        &no_client,
        reqwest::Client::new(),
    ) {
        Err(e) => assert!(e.to_string().contains("clientId"), "{e}"),
        Ok(_) => panic!("a secret without clientId was accepted"),
    }
}

#[test]
fn the_region_picks_host_and_api_generation() {
    let us = provider();
    assert_eq!((us.api, us.client.base()), (Api::Sparkcentral, US_API));
    assert_eq!(
        us.conversation_path("0-01e67a8c216-000-8c9ea98e"),
        "/virtual-agent/conversations/0-01e67a8c216-000-8c9ea98e"
    );
    let eu = build(json!({ "region": "EU" })).unwrap();
    assert_eq!(eu.client.base(), EU_API);
    let hs = build(json!({ "region": "hootsuite", "organizationId": 900002 })).unwrap();
    assert_eq!((hs.api, hs.client.base()), (Api::Inbox, HOOTSUITE_API));
    assert_eq!(
        hs.client.token_url(),
        Some("https://platform.hootsuite.com/oauth2/token")
    );
    assert_eq!(
        hs.conversation_path("0ad42eef-a806-11eb-9642-f1ceb2f21def"),
        "/inbox/v1/virtual-agent/conversations/0ad42eef-a806-11eb-9642-f1ceb2f21def"
    );
    let local = build(json!({ "region": "us", "apiBaseUrl": "http://127.0.0.1:9999/" })).unwrap();
    assert_eq!(local.client.base(), "http://127.0.0.1:9999");
    assert_eq!(
        local.client.token_url(),
        Some("http://127.0.0.1:9999/virtual-agent/oauth2/token")
    );
    assert_eq!(path_segment("a/b?c d"), "a%2Fb%3Fc%20d");
    assert!(!us.capabilities().agent_availability);
    let checking = build(json!({ "region": "hootsuite", "organizationId": "9", "checkOnlineAgents": true })).unwrap();
    assert!(checking.capabilities().agent_availability);
}

fn form(pairs: Vec<(String, String)>) -> String {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    oauth::form(&pairs)
}

#[test]
fn token_requests_follow_each_generation() {
    assert_eq!(
        form(token_grant(Api::Sparkcentral, None)),
        "grant_type=client_credentials&scope=client-read"
    );
    assert_eq!(
        form(token_grant(Api::Inbox, Some("900002"))),
        "grant_type=organization_app&organization_id=900002"
    );
}

// --- the handover call ---

fn handover(variables: Value, tags: Vec<&str>, summary: Option<&str>) -> Handover {
    Handover {
        id: "h-9".into(),
        provider: "sc".into(),
        variables: serde_json::from_value(variables).unwrap(),
        tags: tags.into_iter().map(str::to_owned).collect(),
        summary: summary.map(str::to_owned),
        provider_conversation_id: Some("0-01e67a8c216-000-8c9ea98e".into()),
        requested_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        ..testing::handover()
    }
}

fn body_of(p: &SparkcentralProvider, h: &Handover) -> Value {
    serde_json::to_value(handover_body(h, p.handover_message.as_deref(), &p.queue_topics)).unwrap()
}

#[test]
fn the_handover_carries_note_topics_and_the_last_message() {
    let p = build(json!({
        "region": "us", "handoverMessage": "One moment, a colleague takes over.",
        "queueTopics": { "general": "Parcels", "billing": ["Billing", "Invoices"] }
    }))
    .unwrap();
    let h = handover(
        json!({ "orderId": "A-1", "attempts": 2 }),
        vec!["vip", "parcels"],
        Some("Parcel A-1 is late"),
    );
    assert_eq!(
        body_of(&p, &h),
        json!({
            "sendMessage": { "text": "One moment, a colleague takes over." },
            "applyConversationNotes": [ { "text": "Handed over by the bot (explicit_request, queue general)\nSummary: Parcel A-1 is late\nattempts: 2\norderId: A-1\nTags: vip, parcels" } ],
            "applyTopics": ["Parcels", "vip"],
            "complete": "HANDOVER"
        })
    );
    // Without context, configuration or tags: only the completion.
    let bare = handover(json!({}), vec![], None);
    assert_eq!(body_of(&provider(), &bare), json!({ "complete": "HANDOVER" }));
}

#[test]
fn a_long_note_is_shortened() {
    let h = handover(json!({}), vec![], Some(&"late ".repeat(2000)));
    let note = handover_note(&h).unwrap();
    assert_eq!(note.chars().count(), MAX_NOTE_CHARS);
    assert!(note.ends_with('…'));
}

#[test]
fn only_unanswered_failures_are_ambiguous() {
    let retry = |status| DeliveryError::Retryable {
        status,
        retry_after: None,
        message: String::new(),
    };
    assert!(is_ambiguous(&retry(None)));
    assert!(is_ambiguous(&retry(Some(503))));
    assert!(!is_ambiguous(&retry(Some(429))));
    assert!(!is_ambiguous(&DeliveryError::permanent("400")));
    assert!(is_not_assigned(&DeliveryError::Permanent {
        status: Some(404),
        message: String::new()
    }));
}

#[test]
fn online_agents_tell_whether_anyone_can_answer() {
    let read = |v: Value| serde_json::from_value::<wire::OnlineAgents>(v).unwrap().availability();
    let agents = |presences: &[&str]| json!({ "agents": presences.iter().map(|p| json!({ "userId": "u", "userPresence": p })).collect::<Vec<_>>() });
    assert_eq!(read(agents(&["AWAY", "AVAILABLE"])), AgentAvailability::Online);
    assert_eq!(read(agents(&["AWAY"])), AgentAvailability::NoneOnline);
    assert_eq!(read(agents(&[])), AgentAvailability::NoneOnline);
    assert_eq!(read(json!({})), AgentAvailability::Unknown);
}

/// A virtual agent API on a mock server: the token endpoint answers `token` (in order, the
/// last one for good), the handover call answers `handover` (likewise).
async fn va_server(token: &[u16], handover: &[u16]) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let srv = MockServer::start().await;
    let mount = |p: &'static str, statuses: Vec<u16>| {
        let srv = &srv;
        async move {
            let last = statuses.len() - 1;
            for (i, status) in statuses.into_iter().enumerate() {
                let body = json!({ "access_token": "va-token", "token_type": "bearer", "expires_in": 3599 });
                let mock = Mock::given(method("POST"))
                    .and(path(p))
                    .respond_with(ResponseTemplate::new(status).set_body_json(body))
                    .with_priority(u8::try_from(i + 1).unwrap());
                let mock = if i < last { mock.up_to_n_times(1) } else { mock };
                mock.mount(srv).await;
            }
        }
    };
    mount("/virtual-agent/oauth2/token", token.to_vec()).await;
    mount(
        "/virtual-agent/conversations/0-01e67a8c216-000-8c9ea98e",
        handover.to_vec(),
    )
    .await;
    srv
}

#[tokio::test]
async fn only_a_handover_call_without_answer_makes_a_later_404_mean_success() {
    let h = handover(json!({}), vec![], None);
    let r = testing::start_request(&h, None, &[]);
    let not_assigned = |res: Result<ProviderConversation, DeliveryError>| {
        matches!(res, Err(DeliveryError::Permanent { status: Some(404), .. }))
    };

    // The handover call failed with a 503: Sparkcentral may have applied it, so a 404 on the
    // retry means the conversation already went to the agents.
    let srv = va_server(&[200], &[503, 404]).await;
    let p = build(json!({ "region": "us", "apiBaseUrl": srv.uri() })).unwrap();
    assert!(matches!(p.start(&r).await, Err(DeliveryError::Retryable { .. })));
    let second = p.start(&r).await;
    assert_eq!(
        second.map(|c| c.conversation_id).ok().as_deref(),
        Some("0-01e67a8c216-000-8c9ea98e")
    );

    // The token request failed: the handover call never went out, so a 404 afterwards is a
    // conversation that is not the virtual agent's.
    let srv = va_server(&[503, 200], &[404]).await;
    let p = build(json!({ "region": "us", "apiBaseUrl": srv.uri() })).unwrap();
    assert!(matches!(p.start(&r).await, Err(DeliveryError::Retryable { .. })));
    assert!(not_assigned(p.start(&r).await));
    let calls = srv.received_requests().await.unwrap();
    let handover_calls = calls
        .iter()
        .filter(|c| c.url.path().starts_with("/virtual-agent/conversations/"))
        .count();
    assert_eq!(handover_calls, 1, "no handover call without a token");
}

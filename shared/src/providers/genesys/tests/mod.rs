//! Unit tests of the Genesys adapter: signature, parsing, polling, the messages we send.

use serde_json::Value;

use super::*;
use crate::domain::message::Button;
use crate::providers::ProviderEventKind;
use crate::providers::kit::callback_auth::compact_json;
use crate::providers::kit::testing::{self, events};

mod choices;
mod content;

fn polled_with(participants: &[(&str, &str)]) -> PolledConversation {
    PolledConversation {
        participants: participants
            .iter()
            .enumerate()
            .map(|(i, (purpose, state))| PolledParticipant {
                id: Some(format!("p-{i}")),
                name: Some(format!("n-{i}")),
                purpose: Some((*purpose).to_owned()),
                state: Some((*state).to_owned()),
                user: None,
                queue: None,
                messages: Vec::new(),
            })
            .collect(),
    }
}

fn kinds(participants: &[(&str, &str)]) -> Vec<ProviderEventKind> {
    let c = ProviderConversation {
        handover_id: "h-1".into(),
        conversation_id: "g-1".into(),
    };
    polled_events(&c, &polled_with(participants), None)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn polling_reads_joins_closes_and_transfers_from_participants() {
    assert!(
        kinds(&[("customer", "connected"), ("acd", "connected")]).is_empty(),
        "still queued"
    );
    assert!(matches!(
        kinds(&[("customer", "connected"), ("agent", "connected")])[..],
        [ProviderEventKind::AgentJoined { .. }]
    ));
    assert_eq!(
        kinds(&[("customer", "connected"), ("agent", "disconnected")]),
        vec![ProviderEventKind::ConversationClosed]
    );
    assert!(
        kinds(&[
            ("customer", "connected"),
            ("agent", "disconnected"),
            ("agent", "alerting")
        ])
        .is_empty(),
        "a transfer to another agent is not a close"
    );
    assert!(
        kinds(&[
            ("customer", "connected"),
            ("agent", "disconnected"),
            ("acd", "connected")
        ])
        .is_empty(),
        "back in the queue is not a close"
    );
    assert_eq!(
        kinds(&[("customer", "disconnected"), ("acd", "disconnected")]),
        vec![ProviderEventKind::ConversationClosed]
    );
}

const SECRET: &[u8] = b"s3cr3t-token";
/// The typing event of Genesys' outbound-messages documentation, addressed to `h-1`.
const TYPING: &str = r#"{"id":"m-typing-1","channel":{"id":"int-1","platform":"Open","type":"Private","to":{"id":"h-1"},"from":{"nickname":"Acme Open Messaging","id":"int-1","idType":"Opaque"},"time":"2023-09-25T13:41:24.276Z","messageId":"m-typing-1"},"type":"Event","events":[{"eventType":"Typing","typing":{"type":"On","duration":5000}}],"direction":"Outbound"}"#;
/// HMAC-SHA256("s3cr3t-token", TYPING), base64, computed independently (Python hmac).
const TYPING_SIGNATURE: &str = "sha256=KvWBDsFyEXGVvQ5Mf5y4bQDpOnYTaa7VrKQB1wYNuFI=";

fn provider_with(settings: Value) -> Result<GenesysProvider, ProviderSetupError> {
    let secret =
        Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret","webhookSecret":"s3cr3t-token"}"#).unwrap();
    GenesysProvider::new(
        &testing::config(ProviderKind::Genesys, settings),
        &secret,
        reqwest::Client::new(),
    )
}

fn provider() -> GenesysProvider {
    provider_with(json!({"region": "mypurecloud.ie", "integrationId": "int-1"})).unwrap()
}

fn verify(p: &GenesysProvider, signature: Option<&str>, body: &[u8]) -> Result<(), CallbackError> {
    let pairs: Vec<(&str, &str)> = signature.map(|s| (SIGNATURE_HEADER, s)).into_iter().collect();
    testing::verify(p, &pairs, body)
}

fn parse(p: &GenesysProvider, body: &Value) -> Result<Callback, CallbackError> {
    testing::parse(p, body)
}

fn agent_text(text: &str) -> Value {
    json!({
        "id": "m-1",
        "channel": {
            "id": "int-1", "platform": "Open", "type": "Private",
            "to": {"id": "h-1"},
            "from": {"nickname": "Eva", "id": "int-1", "idType": "Opaque"},
            "time": "2026-11-25T09:01:00.000Z", "messageId": "m-1"
        },
        "type": "Text", "text": text, "direction": "Outbound", "originatingEntity": "Human"
    })
}

#[test]
fn an_agents_quick_replies_cards_and_carousel_become_rich_parts() {
    let mut m = agent_text("Which one?");
    m["type"] = json!("Structured");
    m["content"] = json!([
        {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "yes", "action": "Message"}},
        {"contentType": "QuickReply", "quickReply": {"text": "No", "payload": "no", "action": "Message"}},
        {"contentType": "Card", "card": {
            "title": "Parcel A-1", "description": "Late by a day", "image": "https://cdn.example.com/a1.png",
            "actions": [
                {"type": "Link", "text": "Track", "url": "https://track.example.com/A-1"},
                {"type": "Postback", "text": "Refund", "payload": "refund-A-1"}
            ]}},
        {"contentType": "Carousel", "carousel": {"cards": [
            {"title": "Option 1", "actions": [{"type": "Postback", "text": "Pick", "payload": "o1"}]},
            {"title": "  ", "description": "a card without a title is not shown"},
            {"title": "Option 2"}
        ]}}
    ]);
    let e = events(parse(&provider(), &m).unwrap());
    let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
        panic!("{e:?}")
    };
    assert_eq!(message.text.as_deref(), Some("Which one?"));
    assert_eq!(message.quick_replies, ["Yes", "No"]);
    let titles: Vec<&str> = message.cards.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["Parcel A-1", "Option 1", "Option 2"]);
    let card = &message.cards[0];
    assert_eq!(card.subtitle.as_deref(), Some("Late by a day"));
    assert_eq!(card.image_url.as_deref(), Some("https://cdn.example.com/a1.png"));
    assert_eq!(
        card.buttons,
        [
            Button {
                title: "Track".into(),
                payload: None,
                url: Some("https://track.example.com/A-1".into())
            },
            Button {
                title: "Refund".into(),
                payload: Some("refund-A-1".into()),
                url: None
            },
        ]
    );
    assert_eq!(message.cards[1].buttons[0].payload.as_deref(), Some("o1"));
}

#[test]
fn the_documented_scheme_matches_an_independent_computation() {
    assert_eq!(signature(SECRET, TYPING.as_bytes()), TYPING_SIGNATURE);
}

#[test]
fn only_a_valid_signature_is_accepted() {
    let p = provider();
    assert!(verify(&p, Some(TYPING_SIGNATURE), TYPING.as_bytes()).is_ok());

    let tampered = TYPING.replace("\"On\"", "\"Off\"");
    assert!(matches!(
        verify(&p, Some(TYPING_SIGNATURE), tampered.as_bytes()),
        Err(CallbackError::Unauthenticated(_))
    ));

    let wrong_secret = signature(b"another-token", TYPING.as_bytes());
    assert!(verify(&p, Some(wrong_secret.as_str()), TYPING.as_bytes()).is_err());

    assert!(matches!(
        verify(&p, None, TYPING.as_bytes()),
        Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
    ));
}

#[test]
fn hex_or_unprefixed_signatures_are_not_the_documented_format() {
    let p = provider();
    let hex_sig = "sha256=2af5810ec172117195bd0e4c7f9cb86d00e93a761369aed5aca401d7060db852";
    assert!(verify(&p, Some(hex_sig), TYPING.as_bytes()).is_err());
    let bare = TYPING_SIGNATURE.trim_start_matches("sha256=");
    assert!(verify(&p, Some(bare), TYPING.as_bytes()).is_err());
    assert!(verify(&p, Some("sha256=not base64!"), TYPING.as_bytes()).is_err());
}

#[test]
fn a_pretty_printed_body_verifies_against_its_compact_form() {
    let p = provider();
    let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(TYPING).unwrap()).unwrap();
    // serde_json sorts keys, so sign the compact form of exactly this document.
    let compact = compact_json(pretty.as_bytes());
    assert_eq!(
        serde_json::from_slice::<Value>(&compact).unwrap(),
        serde_json::from_str::<Value>(TYPING).unwrap()
    );
    let sig = signature(SECRET, &compact);
    assert!(verify(&p, Some(sig.as_str()), pretty.as_bytes()).is_ok());
    // Whitespace inside strings is content, not layout.
    assert_eq!(compact_json(br#"{ "a" : "x y" }"#), br#"{"a":"x y"}"#.to_vec());
    assert_eq!(compact_json(br#"{"a":"q\" b"}"#), br#"{"a":"q\" b"}"#.to_vec());
}

#[test]
fn an_agent_text_message_becomes_an_agent_message_for_the_handover() {
    let p = provider();
    let e = events(parse(&p, &agent_text("Hello, how can I help?")).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].conversation_id, "h-1");
    assert_eq!(e[0].event_id, "m-1@2026-11-25T09:01:00.000Z");
    match &e[0].kind {
        ProviderEventKind::AgentMessage { agent, message } => {
            assert_eq!(message.text.as_deref(), Some("Hello, how can I help?"));
            let agent = agent.as_ref().unwrap();
            assert_eq!(agent.name.as_deref(), Some("Eva"));
            assert_eq!(agent.id, "int-1");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_configured_agent_name_wins() {
    let p =
        provider_with(json!({"region": "mypurecloud.ie", "integrationId": "int-1", "agentName": "Support"})).unwrap();
    let e = events(parse(&p, &agent_text("Hi")).unwrap());
    let ProviderEventKind::AgentMessage { agent, .. } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Support"));
}

#[test]
fn an_agent_attachment_is_relayed() {
    let p = provider();
    let mut m = agent_text("Your label");
    m["content"] = json!([{
        "contentType": "Attachment",
        "attachment": {"mediaType": "Image", "url": "https://files.example/label.png", "mime": "image/png", "filename": "label.png"}
    }]);
    let e = events(parse(&p, &m).unwrap());
    let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(message.attachments.len(), 1);
    assert_eq!(message.attachments[0].kind, "image");
    assert_eq!(message.attachments[0].url, "https://files.example/label.png");
    assert_eq!(message.attachments[0].name.as_deref(), Some("label.png"));
    // An attachment alone is a message too.
    m["text"] = Value::Null;
    assert_eq!(events(parse(&p, &m).unwrap()).len(), 1);
}

#[test]
fn the_documented_typing_event_becomes_agent_typing() {
    let p = provider();
    let e = events(parse(&p, &serde_json::from_str(TYPING).unwrap()).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].conversation_id, "h-1");
    assert_eq!(e[0].event_id, "m-typing-1@2023-09-25T13:41:24.276Z");
    assert_eq!(e[0].kind, ProviderEventKind::AgentTyping { agent: None });
    let off = TYPING.replace("\"On\"", "\"Off\"");
    assert!(events(parse(&p, &serde_json::from_str(&off).unwrap()).unwrap()).is_empty());
}

#[test]
fn receipts_inbound_echoes_and_unknown_types_are_ignored() {
    let p = provider();
    let receipt = json!({
        "id": "m-1", "channel": {"id": "int-1", "to": {"id": "h-1"}, "time": "2026-11-25T09:01:00.000Z"},
        "type": "Receipt", "status": "Delivered", "isFinalReceipt": true, "direction": "Outbound"
    });
    assert!(events(parse(&p, &receipt).unwrap()).is_empty());
    let mut echo = agent_text("hi");
    echo["direction"] = json!("Inbound");
    assert!(events(parse(&p, &echo).unwrap()).is_empty());
    let mut future = agent_text("hi");
    future["type"] = json!("Something");
    assert!(events(parse(&p, &future).unwrap()).is_empty());
    assert!(events(parse(&p, &agent_text("   ")).unwrap()).is_empty());
}

#[test]
fn a_message_without_recipient_or_id_is_malformed() {
    let p = provider();
    let mut m = agent_text("hi");
    m["channel"]["to"] = Value::Null;
    assert!(matches!(parse(&p, &m), Err(CallbackError::Malformed(_))));
    let mut m = agent_text("hi");
    m["id"] = Value::Null;
    m["channel"]["messageId"] = Value::Null;
    assert!(matches!(parse(&p, &m), Err(CallbackError::Malformed(_))));
    assert!(matches!(
        testing::parse_bytes(&p, &[], b"not json"),
        Err(CallbackError::Malformed(_))
    ));
}

#[test]
fn hosts_come_from_the_region_or_the_overrides() {
    let p = provider();
    assert_eq!(p.api.base(), "https://api.mypurecloud.ie");
    assert_eq!(p.api.token_url(), Some("https://login.mypurecloud.ie/oauth/token"));
    let p = provider_with(json!({"region": "eu-west-2", "integrationId": "int-1"})).unwrap();
    assert_eq!(p.api.base(), "https://api.euw2.pure.cloud");
    let p = provider_with(json!({
        "integrationId": "int-1", "apiBaseUrl": "http://127.0.0.1:9/", "loginBaseUrl": "http://127.0.0.1:9"
    }))
    .unwrap();
    assert_eq!(p.api.base(), "http://127.0.0.1:9");
    assert_eq!(p.api.token_url(), Some("http://127.0.0.1:9/oauth/token"));
    assert_eq!(region_domain("https://api.mypurecloud.de/").unwrap(), "mypurecloud.de");
}

#[test]
fn missing_settings_are_named() {
    let err = provider_with(json!({"region": "mypurecloud.ie"})).err().unwrap();
    assert!(err.to_string().contains("providers.integrationId"), "{err}");
    let err = provider_with(json!({"integrationId": "int-1"})).err().unwrap();
    assert!(err.to_string().contains("providers.region"), "{err}");
    let err = provider_with(json!({"region": "atlantis-1", "integrationId": "int-1"}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("providers.region"), "{err}");
}

#[test]
fn a_missing_secret_field_is_a_setup_error() {
    let Value::Object(settings) = json!({"region": "mypurecloud.ie", "integrationId": "int-1"}) else {
        unreachable!()
    };
    let config = ProviderConfig {
        id: "genesys".into(),
        kind: ProviderKind::Genesys,
        url: None,
        availability_url: None,
        secret_ref: "x".into(),
        settings,
    };
    let secret = Secret::from_json(r#"{"clientId":"cid","clientSecret":"csecret"}"#).unwrap();
    let err = GenesysProvider::new(&config, &secret, reqwest::Client::new())
        .err()
        .unwrap();
    assert!(err.to_string().contains("webhookSecret"), "{err}");
}

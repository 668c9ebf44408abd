//! What Genesys sends beyond agent text: bot-flow messages, every content type of the
//! published model, and conversation events pushed through EventBridge.

use serde_json::{Value, json};

use super::*;

/// The outbound-webhook bodies composed from Genesys' published models (see the file's
/// `_source`), addressed to `h-1`.
fn published(name: &str) -> Value {
    let all: Value = serde_json::from_str(include_str!(
        "../../../../../tests/fixtures/genesys/outbound-webhook-messages.json"
    ))
    .expect("the fixture is JSON");
    let mut m = all["messages"][name].clone();
    assert!(m.is_object(), "no fixture {name}");
    m["channel"]["to"]["id"] = json!("h-1");
    m
}

fn one_kind(p: &GenesysProvider, body: &Value) -> ProviderEventKind {
    let mut e = events(parse(p, body).unwrap());
    assert_eq!(e.len(), 1, "{body}");
    e.remove(0).kind
}

#[test]
fn a_bot_flow_message_is_relayed_as_automated_never_as_an_agent() {
    // A plain-text message of an in-queue flow, as the outbound webhook carries it.
    match one_kind(&provider(), &published("bot_flow_text")) {
        ProviderEventKind::AutomatedMessage { message, agent } => {
            assert_eq!(message.text.as_deref(), Some("You are number 3 in the queue."));
            assert_eq!(agent.map(|a| a.id).as_deref(), Some("int-1"));
        }
        other => panic!("expected an automated message, got {other:?}"),
    }
}

#[test]
fn quick_reply_v2_from_a_bot_flow_keeps_its_title_and_choices() {
    match one_kind(&provider(), &published("bot_flow_quick_reply_v2")) {
        ProviderEventKind::AutomatedMessage { message, .. } => {
            assert_eq!(
                message.text.as_deref(),
                Some("All our agents are busy. While you wait, what is it about?")
            );
            assert_eq!(message.quick_replies, ["A late parcel", "A refund"]);
        }
        other => panic!("expected an automated message, got {other:?}"),
    }
}

#[test]
fn text_date_picker_and_notification_elements_become_text() {
    let p = provider();
    let text_of = |name: &str| match one_kind(&p, &published(name)) {
        ProviderEventKind::AutomatedMessage { message, .. } | ProviderEventKind::AgentMessage { message, .. } => {
            message.text.unwrap_or_default()
        }
        other => panic!("expected a message, got {other:?}"),
    };
    assert_eq!(text_of("bot_flow_text_content"), "You are next in line.");
    assert_eq!(
        text_of("bot_flow_date_picker"),
        "When should we call you back?\nPick a weekday"
    );
    assert_eq!(text_of("notification_template"), "Your case C-42 is with billing.");
}

#[test]
fn content_of_an_unknown_type_is_named_rather_than_dropped() {
    match one_kind(&provider(), &published("unknown_content_only")) {
        ProviderEventKind::AutomatedMessage { message, .. } => {
            assert!(message.text.unwrap_or_default().contains("ListPicker"));
        }
        other => panic!("expected an automated message, got {other:?}"),
    }
}

#[test]
fn a_bot_flow_card_keeps_its_link_and_postback_buttons() {
    match one_kind(&provider(), &published("bot_flow_card")) {
        ProviderEventKind::AutomatedMessage { message, .. } => {
            assert_eq!(message.cards.len(), 1);
            let buttons = &message.cards[0].buttons;
            assert_eq!(buttons[0].url.as_deref(), Some("https://track.example.com"));
            assert_eq!(buttons[1].payload.as_deref(), Some("wait"));
        }
        other => panic!("expected an automated message, got {other:?}"),
    }
}

/// One EventBridge delivery of `tests/fixtures/genesys/eventbridge-events.json` (sources in its
/// `_source`), about Genesys conversation `g-1`.
fn pushed(name: &str) -> Value {
    let all = include_str!("../../../../../tests/fixtures/genesys/eventbridge-events.json");
    let all: Value = serde_json::from_str(&all.replace("CONVERSATION", "g-1")).expect("the fixture is JSON");
    let e = all["events"][name].clone();
    assert!(e.is_object(), "no fixture {name}");
    e
}

fn push_request(body: &Value, token: Option<&str>) -> (lambda_http::http::HeaderMap, Vec<u8>) {
    let mut headers = lambda_http::http::HeaderMap::new();
    if let Some(t) = token {
        headers.insert(PUSH_TOKEN_HEADER, t.parse().unwrap());
    }
    (headers, serde_json::to_vec(body).unwrap())
}

#[test]
fn pushed_events_need_the_push_token_and_only_then_are_read_as_pushed() {
    let envelope = pushed("customer_end");
    let check = |p: &GenesysProvider, token: Option<&str>| {
        let (headers, body) = push_request(&envelope, token);
        let r = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: &body,
        };
        p.verify_callback(&r, Utc::now()).map(|()| p.parse_callback(&r))
    };
    // Without a pushToken in the secret, a pushed event is refused.
    let without = provider();
    assert!(matches!(
        check(&without, Some("t-1")),
        Err(CallbackError::Unauthenticated(_))
    ));
    let secret =
        Secret::from_json(r#"{"clientId":"c","clientSecret":"s","webhookSecret":"w","pushToken":"t-1"}"#).unwrap();
    let config = testing::config(
        ProviderKind::Genesys,
        json!({"region": "mypurecloud.ie", "integrationId": "int-1", "pushedEvents": true}),
    );
    let with = GenesysProvider::new(&config, &secret, reqwest::Client::new()).unwrap();
    assert!(matches!(
        check(&with, Some("wrong")),
        Err(CallbackError::Unauthenticated(_))
    ));
    let e = events(check(&with, Some("t-1")).unwrap().unwrap());
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(e[0].conversation_id, "g-1");
    // Without the push header it is an unsigned webhook.
    assert!(check(&with, None).is_err());
}

//! Unit tests of the #Interact adapter: settings, the token both ways, the assumed contract.

use serde_json::{Value, json};

use super::*;
use crate::domain::Agent;
use crate::domain::Message;
use crate::providers::kit::testing::{self, events};
use crate::providers::{ProviderEvent, ProviderEventKind};

const CALLBACK_TOKEN: &str = "cb-token-0123456789";

fn provider_with(settings: Value) -> Result<InteractProvider, ProviderSetupError> {
    provider_with_secret(
        settings,
        r#"{"apiToken":"api-token-1","callbackToken":"cb-token-0123456789"}"#,
    )
}

fn provider_with_secret(settings: Value, secret: &str) -> Result<InteractProvider, ProviderSetupError> {
    let secret = Secret::from_json(secret).unwrap();
    InteractProvider::new(
        &testing::config(ProviderKind::Interact, settings),
        &secret,
        reqwest::Client::new(),
    )
}

fn provider() -> InteractProvider {
    provider_with(json!({"apiBaseUrl": "https://interact.example.com/api/"})).unwrap()
}

/// The header our calls carry the #Interact token in.
fn token_header(p: &InteractProvider) -> (&HeaderName, &HeaderValue) {
    match p.api.auth() {
        Auth::Header { name, value } => (name, value),
        other => panic!("{other:?}"),
    }
}

fn verify(p: &InteractProvider, pairs: &[(&str, &str)], body: &[u8]) -> Result<(), CallbackError> {
    testing::verify(p, pairs, body)
}

fn parse(p: &InteractProvider, body: &Value) -> Result<Callback, CallbackError> {
    testing::parse(p, body)
}

/// A callback in the documented default shape.
fn agent_message(text: &str) -> Value {
    json!({
        "type": "agent.message", "id": "ev-2", "conversationId": "ic-1",
        "agent": {"id": "a-3", "name": "Eva"}, "message": {"text": text}
    })
}

const BODY: &[u8] = br#"{"type":"agent.message","id":"ev-2","conversationId":"ic-1","message":{"text":"Hi"}}"#;

#[test]
fn only_the_configured_token_is_accepted() {
    let p = provider();
    let bearer = format!("Bearer {CALLBACK_TOKEN}");
    assert!(verify(&p, &[("authorization", bearer.as_str())], BODY).is_ok());
    // The scheme word in any case, or the token alone, is the same token.
    assert!(
        verify(
            &p,
            &[("authorization", format!("bearer  {CALLBACK_TOKEN}").as_str())],
            BODY
        )
        .is_ok()
    );
    assert!(verify(&p, &[("authorization", CALLBACK_TOKEN)], BODY).is_ok());

    // Wrong token, a prefix of it, a longer one, an empty one.
    assert!(matches!(
        verify(&p, &[("authorization", "Bearer another-token")], BODY),
        Err(CallbackError::Unauthenticated(_))
    ));
    let short = format!("Bearer {}", &CALLBACK_TOKEN[..CALLBACK_TOKEN.len() - 1]);
    assert!(verify(&p, &[("authorization", short.as_str())], BODY).is_err());
    assert!(verify(&p, &[("authorization", format!("{bearer}x").as_str())], BODY).is_err());
    assert!(verify(&p, &[("authorization", "Bearer ")], BODY).is_err());
    // The token from our outbound side is not the callback token.
    assert!(verify(&p, &[("authorization", "Bearer api-token-1")], BODY).is_err());

    // Missing header, or the right token in another header.
    assert!(matches!(
        verify(&p, &[], BODY),
        Err(CallbackError::Unauthenticated(m)) if m.contains("missing")
    ));
    assert!(verify(&p, &[("x-interact-token", bearer.as_str())], BODY).is_err());
}

#[test]
fn the_token_authenticates_the_caller_not_the_body() {
    // Documented limitation: a token scheme does not sign the body, so a changed body with
    // the right token is still accepted (TLS protects it in transit).
    let p = provider();
    let bearer = format!("Bearer {CALLBACK_TOKEN}");
    let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("Hi", "Bye");
    assert!(verify(&p, &[("authorization", bearer.as_str())], tampered.as_bytes()).is_ok());
}

#[test]
fn the_callback_header_and_scheme_are_settings() {
    let p = provider_with(json!({
        "apiBaseUrl": "https://interact.example.com",
        "callbackTokenHeader": "X-Interact-Token",
        "callbackTokenScheme": ""
    }))
    .unwrap();
    assert!(verify(&p, &[("x-interact-token", CALLBACK_TOKEN)], BODY).is_ok());
    assert!(
        verify(
            &p,
            &[("authorization", format!("Bearer {CALLBACK_TOKEN}").as_str())],
            BODY
        )
        .is_err()
    );
    // With no scheme, a value with a word in front is not the token.
    assert!(
        verify(
            &p,
            &[("x-interact-token", format!("Bearer {CALLBACK_TOKEN}").as_str())],
            BODY
        )
        .is_err()
    );

    // The callback side follows the outbound side unless told otherwise.
    let p = provider_with(json!({
        "apiBaseUrl": "https://interact.example.com",
        "tokenHeader": "X-Api-Key",
        "tokenScheme": ""
    }))
    .unwrap();
    let (name, value) = token_header(&p);
    assert_eq!(name.as_str(), "x-api-key");
    assert_eq!(value.to_str().unwrap(), "api-token-1");
    assert!(value.is_sensitive());
    assert!(verify(&p, &[("x-api-key", CALLBACK_TOKEN)], BODY).is_ok());
}

#[test]
fn the_default_outbound_token_is_a_bearer_authorization() {
    let p = provider();
    let (name, value) = token_header(&p);
    assert_eq!(name.as_str(), "authorization");
    assert_eq!(value.to_str().unwrap(), "Bearer api-token-1");
    assert_eq!(p.api.base(), "https://interact.example.com/api");
}

#[test]
fn agent_joined_becomes_agent_joined() {
    let p = provider();
    let body =
        json!({"type": "agent.joined", "id": "ev-1", "conversationId": "ic-1", "agent": {"id": "a-3", "name": "Eva"}});
    let e = events(parse(&p, &body).unwrap());
    assert_eq!(
        e,
        vec![ProviderEvent {
            event_id: "ev-1".into(),
            conversation_id: "ic-1".into(),
            kind: ProviderEventKind::AgentJoined {
                agent: Agent {
                    id: "a-3".into(),
                    name: Some("Eva".into())
                }
            },
        }]
    );
    // Without an agent, and with numeric ids.
    let body = json!({"type": "agent.joined", "id": 17, "conversationId": 4242});
    let e = events(parse(&p, &body).unwrap());
    assert_eq!(e[0].event_id, "17");
    assert_eq!(e[0].conversation_id, "4242");
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentJoined {
            agent: Agent {
                id: "interact".into(),
                name: None
            }
        }
    );
}

#[test]
fn agent_message_becomes_agent_message() {
    let p = provider();
    let e = events(parse(&p, &agent_message("Hello, how can I help?")).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "ev-2");
    assert_eq!(e[0].conversation_id, "ic-1");
    match &e[0].kind {
        ProviderEventKind::AgentMessage { agent, message } => {
            assert_eq!(message, &Message::text("Hello, how can I help?"));
            assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Eva"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn conversation_closed_becomes_conversation_closed() {
    let p = provider();
    let body = json!({"type": "conversation.closed", "id": "ev-3", "conversationId": "ic-1"});
    let e = events(parse(&p, &body).unwrap());
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(e[0].event_id, "ev-3");
}

#[test]
fn the_configured_agent_name_wins() {
    let p = provider_with(json!({"apiBaseUrl": "https://interact.example.com", "agentName": "Acme support"})).unwrap();
    let e = events(parse(&p, &agent_message("Hi")).unwrap());
    let ProviderEventKind::AgentMessage { agent, .. } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(agent.as_ref().unwrap().name.as_deref(), Some("Acme support"));
    assert_eq!(agent.as_ref().unwrap().id, "a-3");
}

#[test]
fn unknown_types_are_ignored_and_incomplete_events_are_malformed() {
    let p = provider();
    let future = json!({"type": "agent.typing", "id": "ev-9", "conversationId": "ic-1"});
    assert!(events(parse(&p, &future).unwrap()).is_empty());
    assert!(events(parse(&p, &json!({"type": "ping"})).unwrap()).is_empty());

    let malformed = |body: Value| matches!(parse(&p, &body), Err(CallbackError::Malformed(_)));
    assert!(malformed(json!({"id": "ev-1", "conversationId": "ic-1"})), "no type");
    assert!(
        malformed(json!({"type": "agent.joined", "conversationId": "ic-1"})),
        "no id"
    );
    assert!(
        malformed(json!({"type": "conversation.closed", "id": "ev-1"})),
        "no conversation"
    );
    assert!(malformed(
        json!({"type": "agent.joined", "id": " ", "conversationId": "ic-1"})
    ));
    assert!(malformed(agent_message("   ")), "empty text");
    assert!(malformed(
        json!({"type": "agent.message", "id": "ev-1", "conversationId": "ic-1"})
    ));
    assert!(malformed(json!(["not", "an", "object"])));
    assert!(matches!(
        testing::parse_bytes(&p, &[], b"not json"),
        Err(CallbackError::Malformed(_))
    ));
}

#[test]
fn settings_are_checked_and_named() {
    let err = |settings: Value| provider_with(settings).err().unwrap().to_string();
    assert!(err(json!({})).contains("providers.apiBaseUrl"));
    assert!(err(json!({"apiBaseUrl": "interact.example.com"})).contains("providers.apiBaseUrl"));
    assert!(err(json!({"apiBaseUrl": "ftp://interact.example.com"})).contains("providers.apiBaseUrl"));
    let e = err(json!({"apiBaseUrl": "https://i.example", "startPath": "conversations"}));
    assert!(e.contains("providers.startPath"), "{e}");
    let e = err(json!({"apiBaseUrl": "https://i.example", "endPath": "/c/{id}/close"}));
    assert!(e.contains("providers.endPath"), "{e}");
    let e = err(json!({"apiBaseUrl": "https://i.example", "tokenHeader": "bad header"}));
    assert!(e.contains("providers.tokenHeader"), "{e}");
    // A misspelt setting is refused rather than silently replaced by a default.
    let e = err(json!({"apiBaseUrl": "https://i.example", "messagepath": "/m"}));
    assert!(e.contains("messagepath"), "{e}");
}

#[test]
fn both_tokens_are_required() {
    let settings = json!({"apiBaseUrl": "https://interact.example.com"});
    let e = provider_with_secret(settings.clone(), r#"{"apiToken":"a"}"#)
        .err()
        .unwrap();
    assert!(e.to_string().contains("callbackToken"), "{e}");
    let e = provider_with_secret(settings.clone(), r#"{"apiToken":" ","callbackToken":"c"}"#)
        .err()
        .unwrap();
    assert!(e.to_string().contains("apiToken"), "{e}");
    let e = provider_with_secret(settings, r#"{"apiToken":"a\nb","callbackToken":"c"}"#)
        .err()
        .unwrap();
    assert!(e.to_string().contains("apiToken"), "{e}");
}

#[test]
fn paths_are_filled_and_encoded() {
    assert_eq!(
        fill(defaults::MESSAGE_PATH, "ic 1/x", "h-1"),
        "/conversations/ic%201%2Fx/messages"
    );
    assert_eq!(
        fill("/h/{handoverId}/c/{conversationId}", "ic-1", "h-1"),
        "/h/h-1/c/ic-1"
    );
    assert_eq!(fill(defaults::START_PATH, "ic-1", "h-1"), "/conversations");
    let p = provider_with(json!({
        "apiBaseUrl": "https://i.example",
        "startPath": "/v2/handovers/{handoverId}",
        "messagePath": "/v2/chats/{conversationId}/messages",
        "endPath": "/v2/chats/{conversationId}",
        "relayMessages": false
    }))
    .unwrap();
    assert_eq!(p.start_path, "/v2/handovers/{handoverId}");
    assert!(!p.relay_messages);
}

#[test]
fn the_indexed_id_prefers_interacts_answer() {
    assert_eq!(
        indexed_conversation_id("h-1", Some("ic-0"), Some("ic-1".into())),
        "ic-1"
    );
    assert_eq!(indexed_conversation_id("h-1", Some("ic-0"), None), "ic-0");
    assert_eq!(indexed_conversation_id("h-1", None, None), "h-1");
}

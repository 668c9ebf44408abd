//! SunCo webhook events: what is an agent's message, typing or the close, and what is not.

use serde_json::json;

use super::*;
use crate::domain::Agent;
use crate::domain::message::Location;

// --- parsing ---

#[test]
fn user_messages_and_read_receipts_mean_nothing() {
    let p = provider();
    assert_eq!(parse(&p, &user_message_example()).unwrap(), vec![]);
    // The spec's conversationReadEvent example.
    let read = envelope(json!({
        "id": "5f74a0d52b5315fc007e798a", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:read",
        "payload": {"conversation": conversation(bot_integration()),
                    "activity": {"type": "conversation:read",
                                 "author": {"type": "user", "userId": "b5a0f8de1fd4198a96faa0af",
                                            "user": {"id": "b5a0f8de1fd4198a96faa0af", "authenticated": false}},
                                 "source": {"type": "web", "integrationId": "5ecff63ffc3ab25f4561c8a0"}}}
    }));
    assert_eq!(parse(&p, &read).unwrap(), vec![]);
    let merge = envelope(json!({"id": "x", "type": "user:merge", "payload": {"mergedUsers": {}}}));
    assert_eq!(parse(&p, &merge).unwrap(), vec![]);
}

#[test]
fn an_agent_workspace_message_is_an_agent_message() {
    let p = provider();
    let events = parse(
        &p,
        &business_message(
            "ev-1",
            "zd:agentWorkspace",
            json!({"type": "text", "text": "Hi Ann, let me check."}),
        ),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![ProviderEvent {
            event_id: "ev-1".into(),
            conversation_id: "f52b01137aa6c250bc7251fa".into(),
            kind: ProviderEventKind::AgentMessage {
                agent: Some(Agent {
                    id: "Eva".into(),
                    name: Some("Eva".into())
                }),
                message: Message::text("Hi Ann, let me check."),
            },
        }]
    );
}

#[test]
fn bot_ai_and_system_messages_are_not_the_agent() {
    let p = provider();
    let text = json!({"type": "text", "text": "I am the bot"});
    assert_eq!(
        parse(&p, &business_message("b1", "api:conversations", text.clone())).unwrap(),
        vec![]
    );
    let mut ai = business_message("b2", "zd:agentWorkspace", text.clone());
    ai["events"][0]["payload"]["message"]["author"]["subtypes"] = json!(["AI"]);
    assert_eq!(parse(&p, &ai).unwrap(), vec![]);
    let mut closed = business_message("b3", "zd:agentWorkspace", text.clone());
    closed["events"][0]["payload"]["message"]["activity"] = json!({"type": "ticket:closed"});
    assert_eq!(parse(&p, &closed).unwrap(), vec![]);
    // The documented author subtype marks an agent even without the source type.
    let mut by_subtype = business_message("b4", "api", text);
    by_subtype["events"][0]["payload"]["message"]["author"]["subtypes"] = json!(["agent"]);
    assert_eq!(parse(&p, &by_subtype).unwrap().len(), 1);
}

#[test]
fn the_agent_source_types_setting_replaces_the_assumed_default() {
    let p = provider_with(json!({
        "appId": APP, "subdomain": "acme", "botIntegrationId": "bot",
        "agentSourceTypes": ["zd:customDesk"]
    }))
    .unwrap();
    let text = json!({"type": "text", "text": "Hello, Eva here"});
    let from_desk = parse(&p, &business_message("c1", "zd:customDesk", text.clone())).unwrap();
    assert_eq!(from_desk.len(), 1, "the configured source type marks the agent");
    assert!(matches!(from_desk[0].kind, ProviderEventKind::AgentMessage { .. }));
    assert_eq!(
        parse(&p, &business_message("c2", "zd:agentWorkspace", text)).unwrap(),
        vec![],
        "once configured, the default source type no longer marks the agent"
    );
    assert!(
        provider_with(json!({
            "appId": APP, "subdomain": "acme", "botIntegrationId": "bot", "agentSourceTypes": [" "]
        }))
        .is_err()
    );
}

#[test]
fn agent_rich_content_is_kept() {
    let p = provider();
    let image = business_message(
        "r1",
        "zd:agentWorkspace",
        json!({"type": "image", "mediaUrl": "https://example.com/label.png", "altText": "label.png"}),
    );
    let message = agent_message_of(&p, &image);
    assert_eq!(message.attachments[0].url, "https://example.com/label.png");
    assert_eq!(message.attachments[0].kind, "image");
    let carousel = business_message(
        "r2",
        "zd:agentWorkspace",
        json!({"type": "carousel", "items": [
            {"title": "Red shoe", "description": "€ 40", "actions": [{"type": "link", "text": "Buy", "uri": "https://shop/red"}]},
            {"title": "Blue shoe", "actions": [{"type": "postback", "text": "Pick", "payload": "BLUE"}]}
        ]}),
    );
    let message = agent_message_of(&p, &carousel);
    assert_eq!(message.cards.len(), 2);
    assert_eq!(message.cards[0].buttons[0].url.as_deref(), Some("https://shop/red"));
    assert_eq!(message.cards[1].buttons[0].payload.as_deref(), Some("BLUE"));
    let replies = business_message(
        "r3",
        "zd:agentWorkspace",
        json!({"type": "text", "text": "Solved?", "actions": [{"type": "reply", "text": "Yes", "payload": "y"}]}),
    );
    let message = agent_message_of(&p, &replies);
    assert_eq!(message.quick_replies, vec!["Yes".to_owned()]);
    let location = business_message(
        "r4",
        "zd:agentWorkspace",
        json!({"type": "location", "coordinates": {"lat": 50.85, "long": 4.35}, "location": {"name": "Shop"}}),
    );
    let message = agent_message_of(&p, &location);
    assert_eq!(
        message.location,
        Some(Location {
            latitude: 50.85,
            longitude: 4.35
        })
    );
    let template = business_message("r5", "zd:agentWorkspace", json!({"type": "template", "template": {}}));
    let message = agent_message_of(&p, &template);
    assert_eq!(
        message.text.as_deref(),
        Some("[template message]"),
        "named, not dropped"
    );
}

#[test]
fn agent_typing_is_passed_on_and_user_typing_is_not() {
    let p = provider();
    // The spec's conversationTypingEvent example is a user typing.
    let user = envelope(json!({
        "id": "5f74a0d52b5315fc007e798a", "createdAt": "2020-09-30T15:14:29.834Z", "type": "conversation:typing",
        "payload": {"conversation": conversation(bot_integration()),
                    "activity": {"type": "typing:start",
                                 "author": {"type": "user", "userId": "7283cdd6f586679a5fc43cfb",
                                            "user": {"id": "7283cdd6f586679a5fc43cfb", "authenticated": false}},
                                 "source": {"type": "web", "integrationId": "5ecff63ffc3ab25f4561c8a0"}}}
    }));
    assert_eq!(parse(&p, &user).unwrap(), vec![]);
    let mut agent = user.clone();
    agent["events"][0]["payload"]["activity"]["author"] = json!({"type": "business", "displayName": "Eva"});
    agent["events"][0]["payload"]["activity"]["source"] = json!({"type": "zd:agentWorkspace"});
    let events = parse(&p, &agent).unwrap();
    assert!(matches!(events[0].kind, ProviderEventKind::AgentTyping { .. }));
    agent["events"][0]["payload"]["activity"]["type"] = json!("typing:stop");
    assert_eq!(parse(&p, &agent).unwrap(), vec![]);
}

#[test]
fn control_leaving_the_agent_workspace_is_the_close() {
    let p = provider();
    // The spec's switchboardPassControlEvent example: control now with the bot.
    let to_bot = switchboard(
        "switchboard:passControl",
        Some(bot_integration()),
        json!({"reason": "ticketClosed"}),
    );
    let events = parse(&p, &to_bot).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(events[0].event_id, "sw-1");
    assert_eq!(events[0].conversation_id, "f52b01137aa6c250bc7251fa");
    // The spec's switchboardReleaseControlEvent example: nobody in control.
    let released = switchboard("switchboard:releaseControl", None, json!({}));
    assert_eq!(
        parse(&p, &released).unwrap()[0].kind,
        ProviderEventKind::ConversationClosed
    );
}

#[test]
fn our_own_pass_to_the_agents_is_not_an_event() {
    let p = provider();
    let echo = switchboard(
        "switchboard:passControl",
        Some(agent_workspace()),
        json!({"metadata": {"handover_id": "h-1", "handover_trigger": "explicit_request"}}),
    );
    assert_eq!(parse(&p, &echo).unwrap(), vec![]);
    // Even if the active integration were missing from the echo, our metadata tells.
    let bare = switchboard(
        "switchboard:passControl",
        None,
        json!({"metadata": {"handover_id": "h-1"}}),
    );
    assert_eq!(parse(&p, &bare).unwrap(), vec![]);
    // The echo of our own return to the bot is a close (the shell ignores it: already ended).
    let back = switchboard(
        "switchboard:passControl",
        Some(bot_integration()),
        json!({"metadata": {"handover_id": "h-1", "handover_end_reason": "user_cancelled"}}),
    );
    assert_eq!(parse(&p, &back).unwrap().len(), 1);
}

#[test]
fn a_failed_pass_of_ours_ends_the_wait() {
    let p = provider();
    let ours = switchboard(
        "switchboard:passControl:failure",
        Some(bot_integration()),
        json!({"metadata": {"handover_id": "h-1"}, "error": {"code": "switchboard_invalid_target", "message": "Switchboard invalid target"}}),
    );
    assert_eq!(parse(&p, &ours).unwrap()[0].kind, ProviderEventKind::ConversationClosed);
    // The spec's example carries no metadata of ours: somebody else's failure.
    let theirs = switchboard(
        "switchboard:passControl:failure",
        Some(bot_integration()),
        json!({"error": {"code": "switchboard_invalid_target", "message": "Switchboard invalid target"}}),
    );
    assert_eq!(parse(&p, &theirs).unwrap(), vec![]);
}

#[test]
fn every_event_of_a_batch_is_read_and_other_apps_are_ignored() {
    let p = provider();
    let mut batch = business_message("ev-1", "zd:agentWorkspace", json!({"type": "text", "text": "one"}));
    let second = business_message("ev-2", "zd:agentWorkspace", json!({"type": "text", "text": "two"}));
    let user = user_message_example();
    let events = batch["events"].as_array_mut().unwrap();
    events.push(user["events"][0].clone());
    events.push(second["events"][0].clone());
    let ids: Vec<String> = parse(&p, &batch).unwrap().into_iter().map(|e| e.event_id).collect();
    assert_eq!(ids, ["ev-1", "ev-2"]);
    batch["app"]["id"] = json!("another-app");
    assert_eq!(parse(&p, &batch).unwrap(), vec![]);
}

#[test]
fn malformed_bodies_are_refused() {
    let p = provider();
    assert!(matches!(
        testing::parse_bytes(&p, &[("x-api-key", SECRET)], b"not json"),
        Err(CallbackError::Malformed(_))
    ));
    assert!(matches!(
        parse(&p, &json!({"app": {"id": APP}})),
        Err(CallbackError::Malformed(_))
    ));
    let no_conversation = envelope(json!({"id": "x", "type": "switchboard:releaseControl", "payload": {}}));
    assert!(matches!(parse(&p, &no_conversation), Err(CallbackError::Malformed(_))));
}

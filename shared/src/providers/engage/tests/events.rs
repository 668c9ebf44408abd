//! The events read from Engage's webhook notifications, published and realistic.

use serde_json::{Value, json};

use super::*;

#[test]
fn the_documented_assignment_is_an_agent_joining_the_thread() {
    let p = provider();
    let e = events(&p, &serde_json::from_str(ASSIGNED).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "70d340997b8cd2c6f4dfee22");
    assert_eq!(e[0].conversation_id, THREAD);
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentJoined {
            agent: Agent {
                id: AGENT.into(),
                name: None
            }
        },
        "the intervention's agent (metadata.user_id), not the user who assigned it"
    );
}

#[test]
fn opened_and_reassigned_interventions_are_joins_unless_they_are_the_bots() {
    let p = provider();
    for kind in ["intervention.opened", "intervention.user_updated"] {
        let e = events(&p, &envelope(vec![intervention(kind, "ev-1", Some(AGENT))]));
        assert!(
            matches!(&e[0].kind, ProviderEventKind::AgentJoined { agent } if agent.id == AGENT),
            "{kind}"
        );
    }
    let e = events(
        &p,
        &envelope(vec![intervention("intervention.opened", "ev-2", Some(BOT_USER))]),
    );
    assert!(e.is_empty(), "the bot's own intervention");
    let e = events(&p, &envelope(vec![intervention("intervention.opened", "ev-3", None)]));
    assert!(e.is_empty(), "no agent named");
}

#[test]
fn an_agent_reply_is_an_agent_message_and_the_bots_reply_is_not() {
    let p = provider_with(json!({
        "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
        "botUserId": [BOT_USER, "bot-2"], "agentName": "Support"
    }))
    .unwrap();
    let e = events(&p, &envelope(vec![reply("ev-1", Some(AGENT), "Hello, I'm Eva.")]));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "ev-1");
    assert_eq!(e[0].conversation_id, THREAD);
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentMessage {
            agent: Some(Agent {
                id: AGENT.into(),
                name: Some("Support".into())
            }),
            message: Message::text("Hello, I'm Eva.")
        }
    );
    assert!(events(&p, &envelope(vec![reply("ev-2", Some(BOT_USER), "Bot here")])).is_empty());
    assert!(events(&p, &envelope(vec![reply("ev-3", Some("bot-2"), "Bot here")])).is_empty());
    assert!(
        events(&p, &envelope(vec![reply("ev-4", None, "Nobody")])).is_empty(),
        "a reply without a user is not an agent's"
    );
    assert!(events(&p, &envelope(vec![reply("ev-5", Some(AGENT), "   ")])).is_empty());
}

#[test]
fn the_author_falls_back_to_the_creator() {
    let p = provider();
    let mut r = reply("ev-1", None, "Hi");
    r["resource"]["metadata"]["creator_id"] = json!(AGENT);
    let e = events(&p, &envelope(vec![r]));
    assert!(matches!(&e[0].kind, ProviderEventKind::AgentMessage { agent: Some(a), .. } if a.id == AGENT));
}

#[test]
fn html_replies_become_text_and_attachments_are_noted() {
    let p = provider();
    let mut r = reply(
        "ev-1",
        Some(AGENT),
        "<p>Hello &amp; welcome</p><p>Line&nbsp;2<br>Line 3 &#233;</p>",
    );
    r["resource"]["metadata"]["body_input_format"] = json!("html");
    let e = events(&p, &envelope(vec![r]));
    let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(message.text.as_deref(), Some("Hello & welcome\nLine 2\nLine 3 é"));

    let mut r = reply("ev-2", Some(AGENT), "");
    r["resource"]["metadata"]["has_attachment"] = json!(true);
    r["resource"]["metadata"]["body"] = Value::Null;
    let e = events(&p, &envelope(vec![r]));
    let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
        panic!("an agent message")
    };
    assert_eq!(message.text.as_deref(), Some("[attachment]"));
    assert_eq!(
        crate::providers::kit::text::html_to_text("a < b &unknown; c").text,
        "a < b &unknown; c"
    );
}

#[test]
fn a_closed_intervention_or_locked_thread_ends_the_handover() {
    let p = provider();
    let e = events(
        &p,
        &envelope(vec![intervention("intervention.closed", "ev-1", Some(AGENT))]),
    );
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(e[0].conversation_id, THREAD);
    assert!(
        events(
            &p,
            &envelope(vec![intervention("intervention.closed", "ev-2", Some(BOT_USER))])
        )
        .is_empty(),
        "the bot closing its own intervention"
    );
    let locked = json!({
        "type": "content.thread_auto_closed", "id": "ev-3", "issued_at": "2026-11-25T10:00:00Z",
        "resource": { "type": "content_thread", "id": THREAD, "metadata": {} }
    });
    let e = events(&p, &envelope(vec![locked]));
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(e[0].conversation_id, THREAD, "the thread taken from the resource");
}

#[test]
fn customer_contents_and_unknown_events_are_ignored() {
    let p = provider();
    assert!(events(&p, &serde_json::from_str(IMPORTED).unwrap()).is_empty());
    let other = envelope(vec![
        intervention("intervention.deferred", "ev-1", Some(AGENT)),
        intervention("task.completed", "ev-2", Some(AGENT)),
        json!({"type": "push_agent.connected", "id": "ev-3", "resource": {"type": "push_agent", "id": AGENT}}),
    ]);
    assert!(events(&p, &other).is_empty());
}

#[test]
fn every_event_of_a_notification_is_read() {
    let p = provider();
    let e = events(
        &p,
        &envelope(vec![
            intervention("intervention.opened", "ev-1", Some(AGENT)),
            reply("ev-2", Some(AGENT), "Hi"),
            reply("ev-3", Some(BOT_USER), "ignored"),
        ]),
    );
    let ids: Vec<&str> = e.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["ev-1", "ev-2"]);
}

#[test]
fn events_of_another_source_are_dropped_when_a_source_is_configured() {
    let p = provider_with(json!({
        "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
        "botUserId": BOT_USER, "sourceId": "src-mine"
    }))
    .unwrap();
    assert!(events(&p, &envelope(vec![reply("ev-1", Some(AGENT), "Hi")])).is_empty());
    let mut r = reply("ev-2", Some(AGENT), "Hi");
    r["resource"]["metadata"]["source_id"] = json!("src-mine");
    assert_eq!(events(&p, &envelope(vec![r])).len(), 1);
}

#[test]
fn an_unreadable_notification_is_malformed() {
    let p = provider();
    assert!(matches!(
        parse_raw(&p, "POST", &[], b"not json"),
        Err(CallbackError::Malformed(_))
    ));
    assert!(matches!(
        parse_raw(&p, "POST", &[], br#"{"id":"x"}"#),
        Err(CallbackError::Malformed(_))
    ));
    // An event without an id or a thread cannot be traced: skipped, not refused.
    let mut r = reply("ev-1", Some(AGENT), "Hi");
    r["id"] = Value::Null;
    let mut t = reply("ev-2", Some(AGENT), "Hi");
    t["resource"]["metadata"]["thread_id"] = Value::Null;
    assert!(events(&p, &envelope(vec![r, t])).is_empty());
}

#[test]
fn numeric_ids_are_read_and_oddly_typed_fields_are_absent() {
    let p = provider();
    let mut r = reply("ev-1", Some(AGENT), "Hi");
    r["id"] = json!(1234);
    r["resource"]["metadata"]["thread_id"] = json!(98765);
    r["resource"]["metadata"]["has_attachment"] = json!("yes");
    let e = events(&p, &envelope(vec![r]));
    assert_eq!(
        (e[0].event_id.as_str(), e[0].conversation_id.as_str()),
        ("1234", "98765")
    );
    assert!(
        matches!(&e[0].kind, ProviderEventKind::AgentMessage { message, .. } if message.text.as_deref() == Some("Hi")),
        "a has_attachment that is not a boolean is no attachment"
    );
}

/// One event of `tests/fixtures/engage/webhook-events.json` (sources in its `_source`), for this
/// module's thread and agent, with its source configured nowhere.
fn published_event(name: &str) -> Value {
    let text = include_str!("../../../../../tests/fixtures/engage/webhook-events.json")
        .replace("\"THREAD\"", &format!("\"{THREAD}\""))
        .replace("\"SOURCE\"", "\"56178fd27765625e06000a66\"")
        .replace("\"AGENT\"", &format!("\"{AGENT}\""))
        .replace("\"SUPERVISOR\"", "\"supervisor-1\"");
    let all: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let e = all["events"][name].clone();
    assert!(e.is_object(), "no fixture event {name}");
    e
}

#[test]
fn a_reply_awaiting_approval_is_relayed_when_approved_not_when_written() {
    let p = provider();
    assert!(
        events(&p, &envelope(vec![published_event("reply_awaiting_approval")])).is_empty(),
        "content.replied fires before approval and publication"
    );
    let e = events(&p, &envelope(vec![published_event("reply_approved")]));
    assert_eq!(e.len(), 1);
    match &e[0].kind {
        ProviderEventKind::AgentMessage { agent, message } => {
            assert_eq!(message.text.as_deref(), Some("Refund granted."));
            assert_eq!(
                agent.as_ref().map(|a| a.id.as_str()),
                Some(AGENT),
                "the writer, not the approver"
            );
        }
        other => panic!("expected an agent message, got {other:?}"),
    }
}

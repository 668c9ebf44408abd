//! Notifications read into events: replies, assignments, closes, and what is ignored.

use serde_json::{Value, json};

use super::*;
use crate::domain::Agent;
use crate::providers::ProviderEventKind;

#[test]
fn an_agent_reply_becomes_an_agent_message() {
    let p = provider();
    let item = conversation(
        json!(EVA),
        json!([part(
            88,
            "comment",
            json!(
                "<p>Hi Ann, <b>let me check</b> &amp; see.</p><p>Track it <a href=\"https://t.example/1\">here</a></p>"
            ),
            admin(EVA, "Eva")
        )]),
    );
    let e = events(&p, &notification(TOPIC_ADMIN_REPLIED, item));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "part-88");
    assert_eq!(e[0].conversation_id, "4711");
    let ProviderEventKind::AgentMessage { agent, message } = &e[0].kind else {
        panic!("{:?}", e[0].kind)
    };
    assert_eq!(
        agent,
        &Some(Agent {
            id: EVA.into(),
            name: Some("Eva".into())
        })
    );
    assert_eq!(
        message.text.as_deref(),
        Some("Hi Ann, let me check & see.\nTrack it here (https://t.example/1)")
    );
}

#[test]
fn agent_files_and_inline_images_become_attachments() {
    let p = provider();
    let mut reply = part(
        89,
        "comment",
        json!(
            "<div class=\"intercom-container\"><img src=\"https://downloads.intercomcdn.com/i/o/1/label.png\"></div>"
        ),
        admin(EVA, "Eva"),
    );
    reply["attachments"] = json!([{
        "type": "upload", "name": "invoice.pdf", "url": "https://downloads.intercomcdn.com/i/o/2/invoice.pdf",
        "content_type": "application/pdf", "filesize": 1024
    }]);
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_REPLIED, conversation(json!(EVA), json!([reply]))),
    );
    let ProviderEventKind::AgentMessage { message, .. } = &e[0].kind else {
        panic!()
    };
    assert_eq!(message.text, None);
    let kinds: Vec<(&str, &str)> = message
        .attachments
        .iter()
        .map(|a| (a.kind.as_str(), a.url.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("file", "https://downloads.intercomcdn.com/i/o/2/invoice.pdf"),
            ("image", "https://downloads.intercomcdn.com/i/o/1/label.png")
        ]
    );
}

#[test]
fn replies_of_the_bot_teammate_and_of_the_ai_agent_are_not_agent_messages() {
    let p = provider();
    let bot = part(90, "comment", json!("<p>I am the bot</p>"), admin(BOT, "Acme Bot"));
    let fin = part(
        91,
        "comment",
        json!("<p>Fin here</p>"),
        json!({ "type": "bot", "id": "278", "name": "Fin" }),
    );
    let mut ai = part(92, "comment", json!("<p>AI answer</p>"), admin("274", "Operator"));
    ai["author"]["from_ai_agent"] = json!(true);
    for p_ in [bot, fin, ai] {
        let e = events(
            &p,
            &notification(TOPIC_ADMIN_REPLIED, conversation(json!(BOT), json!([p_]))),
        );
        assert!(e.is_empty(), "{e:?}");
    }
}

#[test]
fn assignment_to_a_person_is_the_join() {
    let p = provider();
    let mut a = part(93, "assignment", Value::Null, admin(EVA, "Eva"));
    a["assigned_to"] = json!({ "type": "admin", "id": EVA });
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(991267001u64), json!([a]))),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].event_id, "notif_6a3b1c2d-0e4f-4a5b-9c8d-7e6f5a4b3c2d");
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentJoined {
            agent: Agent {
                id: EVA.into(),
                name: Some("Eva".into())
            }
        }
    );

    // Assigned by a team lead: the agent is known by id only.
    let mut by_lead = part(94, "assignment", Value::Null, admin("991267009", "Lead"));
    by_lead["assigned_to"] = json!({ "type": "admin", "id": EVA });
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(EVA), json!([by_lead]))),
    );
    assert_eq!(
        e[0].kind,
        ProviderEventKind::AgentJoined {
            agent: Agent {
                id: EVA.into(),
                name: None
            }
        }
    );
}

#[test]
fn our_own_assignments_mean_nothing_and_a_hand_back_to_the_bot_ends_the_handover() {
    let p = provider();
    // The bot teammate routes the conversation to the team: no admin assignee.
    let to_team = part(95, "assignment", Value::Null, admin(BOT, "Acme Bot"));
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_ASSIGNED, conversation(Value::Null, json!([to_team]))),
    );
    assert!(e.is_empty());
    // The bot teammate assigns to itself (our end of a handover): nothing.
    let mut to_bot = part(96, "assignment", Value::Null, admin(BOT, "Acme Bot"));
    to_bot["assigned_to"] = json!({ "type": "admin", "id": BOT });
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(BOT), json!([to_bot]))),
    );
    assert!(e.is_empty());
    // A person hands it back to the bot teammate: control returns to the bot.
    let mut back = part(97, "assignment", Value::Null, admin(EVA, "Eva"));
    back["assigned_to"] = json!({ "type": "admin", "id": BOT });
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_ASSIGNED, conversation(json!(BOT), json!([back]))),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
}

#[test]
fn a_close_ends_and_other_topics_are_ignored() {
    let p = provider();
    let close = part(98, "close", Value::Null, admin(EVA, "Eva"));
    let e = events(
        &p,
        &notification(TOPIC_ADMIN_CLOSED, conversation(json!(EVA), json!([close]))),
    );
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
    assert_eq!(e[0].conversation_id, "4711");

    for topic in [
        "ping",
        "conversation.user.replied",
        "conversation.admin.noted",
        "conversation.admin.snoozed",
        "contact.user.created",
    ] {
        let e = events(&p, &notification(topic, conversation(json!(EVA), json!([]))));
        assert!(e.is_empty(), "{topic}");
    }
}

#[test]
fn notifications_of_another_workspace_are_ignored() {
    let p = build(json!({ "botAdminId": BOT, "defaultTeamId": "7", "workspaceId": "abc123" })).unwrap();
    let close = part(98, "close", Value::Null, admin(EVA, "Eva"));
    let mut n = notification(TOPIC_ADMIN_CLOSED, conversation(json!(EVA), json!([close])));
    assert_eq!(events(&p, &n).len(), 1);
    n["app_id"] = json!("other-workspace");
    assert!(events(&p, &n).is_empty());
}

#[test]
fn malformed_notifications_are_refused() {
    let p = provider();
    let headers = HeaderMap::new();
    for body in [
        b"not json".to_vec(),
        serde_json::to_vec(&json!({ "type": "notification_event", "id": "n1" })).unwrap(),
        serde_json::to_vec(&json!({ "topic": TOPIC_ADMIN_CLOSED, "id": "n1", "data": { "item": {} } })).unwrap(),
        serde_json::to_vec(&json!({ "topic": TOPIC_ADMIN_CLOSED, "data": { "item": { "id": "1" } } })).unwrap(),
    ] {
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: &body,
        };
        assert!(matches!(p.parse_callback(&req), Err(CallbackError::Malformed(_))));
    }
}

/// `tests/fixtures/intercom/webhook-admin-closed.json` (sources in its `_source`): the
/// notification with the published closed conversation as its item, its close part by `author`
/// (one of the fixture's `close_authors`).
fn closed_by(author: &str) -> Value {
    let text = include_str!("../../../../../tests/fixtures/intercom/webhook-admin-closed.json")
        .replace("\"BOT\"", &format!("\"{BOT}\""));
    let fixture: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let mut item = fixture["conversation"].clone();
    let by = fixture["close_authors"][author].clone();
    assert!(by.is_object(), "no close author {author}");
    item["conversation_parts"]["conversation_parts"][0]["author"] = by;
    let mut n = fixture["notification"].clone();
    assert_eq!(n["topic"], TOPIC_ADMIN_CLOSED);
    n["data"]["item"] = item;
    n
}

#[test]
fn only_a_person_closing_is_the_agent_closing() {
    let p = provider();
    // A workflow or rule closes as a `bot` author.
    assert!(events(&p, &closed_by("workflow_bot")).is_empty());
    // Fin closes as an admin marked `from_ai_agent`.
    assert!(events(&p, &closed_by("ai_agent")).is_empty());
    // Our own bot teammate closing (the end of a handover we ended) is not the agent's close.
    assert!(events(&p, &closed_by("bot_teammate")).is_empty());
    let e = events(&p, &closed_by("person"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].conversation_id, "531");
    assert_eq!(e[0].kind, ProviderEventKind::ConversationClosed);
}

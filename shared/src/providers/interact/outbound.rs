//! What we send #Interact under the assumed contract: the start with the handover's context
//! and transcript, the user's and the bot's turns, and the close.

use chrono::Utc;

use super::wire::{EndBody, MessageBody, StartAnswer, StartBody};
use crate::domain::{Actor, EndReason, TranscriptEntry, render_transcript};
use crate::providers::StartRequest;

pub(super) fn start_body<'a>(r: &'a StartRequest<'a>, conversation_id: &'a str) -> StartBody<'a> {
    let h = r.handover;
    StartBody {
        id: r.delivery_id,
        kind: "conversation.started",
        conversation_id,
        handover_id: &h.id,
        timestamp: h.requested_at,
        bot_id: r.bot_id,
        session_id: r.session_id,
        queue: &h.queue,
        language: &h.language,
        trigger: h.trigger.as_str(),
        channel: r.channel,
        user: r.user,
        variables: &h.variables,
        tags: &h.tags,
        summary: h.summary.as_deref().filter(|s| !s.trim().is_empty()),
        transcript_text: render_transcript(r.transcript),
    }
}

/// A user or bot turn, as text: rich content is rendered readable, never dropped.
pub(super) fn message_body<'a>(
    delivery_id: &'a str,
    conversation_id: &'a str,
    handover_id: &'a str,
    entry: &TranscriptEntry,
) -> MessageBody<'a> {
    MessageBody {
        id: delivery_id,
        kind: match entry.actor {
            Actor::Bot => "bot.message",
            Actor::User | Actor::Agent => "user.message",
        },
        conversation_id,
        handover_id,
        timestamp: entry.timestamp,
        actor: entry.actor,
        text: entry.message.render_text(),
    }
}

pub(super) fn end_body<'a>(
    delivery_id: &'a str,
    conversation_id: &'a str,
    handover_id: &'a str,
    reason: EndReason,
) -> EndBody<'a> {
    EndBody {
        id: delivery_id,
        kind: "conversation.ended",
        conversation_id,
        handover_id,
        timestamp: Utc::now(),
        reason: reason.as_str(),
    }
}

/// #Interact's id for the conversation, when its start answer gives one (any other answer —
/// empty, not JSON, no such field — is fine too).
pub(super) async fn answered_conversation_id(resp: reqwest::Response) -> Option<String> {
    let answer: StartAnswer = resp.json().await.ok()?;
    answer.conversation_id?.text()
}

/// The id the shell indexes for this handover (callbacks must name it, or the handover id,
/// which is always indexed too): #Interact's answer wins, then the bot platform's
/// `providerConversationId`, then the handover id.
pub(super) fn indexed_conversation_id(handover_id: &str, requested: Option<&str>, answered: Option<String>) -> String {
    answered
        .or_else(|| requested.map(str::to_owned))
        .unwrap_or_else(|| handover_id.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use crate::domain::{Handover, Message, UserInfo};
    use crate::providers::kit::testing;

    fn handover() -> Handover {
        Handover {
            provider: "interact".into(),
            queue: "Support_NL".into(),
            language: "nl".into(),
            variables: [("orderId".to_owned(), json!("A-1"))].into_iter().collect(),
            tags: vec!["vip".into()],
            summary: Some("Parcel is late".into()),
            ..testing::handover()
        }
    }

    fn entry(seq: u64, actor: Actor, message: Message) -> TranscriptEntry {
        testing::entry(seq, actor, message, "2026-11-25T08:59:00Z")
    }

    #[test]
    fn the_start_body_carries_context_and_the_transcript_as_text() {
        let h = handover();
        let user = UserInfo {
            id: "u-7".into(),
            name: Some("Ann".into()),
            email: None,
            locale: None,
        };
        let transcript = [
            entry(1, Actor::User, Message::text("Where is my parcel?")),
            entry(
                2,
                Actor::Bot,
                Message {
                    text: Some("Do you have a tracking number?".into()),
                    quick_replies: vec!["Yes".into(), "No".into()],
                    ..Message::default()
                },
            ),
        ];
        let r = testing::start_request(&h, Some(&user), &transcript);
        let body = serde_json::to_value(start_body(&r, "h-1")).unwrap();
        assert_eq!(body["id"], "h-1-start");
        assert_eq!(body["type"], "conversation.started");
        assert_eq!(body["conversationId"], "h-1");
        assert_eq!(body["handoverId"], "h-1");
        assert_eq!(body["queue"], "Support_NL");
        assert_eq!(body["trigger"], "explicit_request");
        assert_eq!(body["user"], json!({"id": "u-7", "name": "Ann"}));
        assert_eq!(body["variables"], json!({"orderId": "A-1"}));
        assert_eq!(body["tags"], json!(["vip"]));
        assert_eq!(body["summary"], "Parcel is late");
        assert_eq!(body["channel"], "web");
        assert_eq!(
            body["transcriptText"],
            "User: Where is my parcel?\nBot: Do you have a tracking number?\n[Quick replies: Yes | No]"
        );
    }

    #[test]
    fn relayed_turns_are_text_and_the_end_names_the_reason() {
        let bot_turn = entry(
            3,
            Actor::Bot,
            Message {
                text: Some("Pick one".into()),
                quick_replies: vec!["A".into(), "B".into()],
                ..Message::default()
            },
        );
        let body = serde_json::to_value(message_body("d-3", "ic-1", "h-1", &bot_turn)).unwrap();
        assert_eq!(body["type"], "bot.message");
        assert_eq!(body["actor"], "bot");
        assert_eq!(body["text"], "Pick one\n[Quick replies: A | B]");
        assert_eq!(body["conversationId"], "ic-1");
        let user_turn = entry(4, Actor::User, Message::text("A"));
        assert_eq!(
            serde_json::to_value(message_body("d-4", "ic-1", "h-1", &user_turn)).unwrap()["type"],
            "user.message"
        );

        let end = serde_json::to_value(end_body("d-5", "ic-1", "h-1", EndReason::UserCancelled)).unwrap();
        assert_eq!(end["type"], "conversation.ended");
        assert_eq!(end["reason"], "user_cancelled");
        assert_eq!(end["id"], "d-5");
    }
}

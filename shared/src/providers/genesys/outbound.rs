//! What we send Genesys: the inbound Open Messages that open the conversation (with the
//! transcript and the flow's context) and mirror the user's and the bot's turns.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::wire::*;
use super::{BOT_PREFIX, DEFAULT_NICKNAME, ID_TYPE, MAX_ATTRIBUTE_CHARS, MAX_TEXT_CHARS};
use crate::domain::{Actor, EndReason, TranscriptEntry, UserInfo, render_transcript};
use crate::providers::StartRequest;
use crate::providers::kit::text::clip;

pub(super) fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Splits text into pieces of at most `max` characters (never an empty list).
pub(super) fn pieces(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(max.max(1)).map(|c| c.iter().collect()).collect()
}

/// The sender of our inbound messages. The id is the handover id: Genesys threads messages by
/// it, and addresses the agent's replies to it, which is how callbacks find the handover.
pub(super) fn sender(handover_id: &str, user: Option<&UserInfo>, introduce: bool) -> Sender {
    let mut from = Sender {
        id: handover_id.to_owned(),
        id_type: ID_TYPE,
        nickname: None,
        first_name: None,
        last_name: None,
        email: None,
    };
    if introduce {
        let name = user
            .and_then(|u| u.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty());
        from.nickname = Some(name.unwrap_or(DEFAULT_NICKNAME).to_owned());
        if let Some(name) = name {
            let mut parts = name.splitn(2, char::is_whitespace);
            from.first_name = parts.next().map(str::to_owned);
            from.last_name = parts.next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned);
        }
        from.email = user
            .and_then(|u| u.email.as_deref())
            .filter(|e| !e.is_empty())
            .map(str::to_owned);
    }
    from
}

/// An inbound Open Message body (the SDK's `OpenInboundNormalizedMessage`).
pub(super) fn inbound_message(
    from: Sender,
    message_id: &str,
    time: DateTime<Utc>,
    text: &str,
    attributes: Option<BTreeMap<String, String>>,
) -> InboundMessage {
    InboundMessage {
        channel: InboundChannel {
            message_id: message_id.to_owned(),
            from,
            time: iso_millis(time),
            metadata: attributes.map(|custom_attributes| Metadata { custom_attributes }),
        },
        text: text.to_owned(),
    }
}

/// Context for the Architect flow and the agent's script, as string custom attributes: the
/// handover's variables first, then our own keys (which win over a variable of the same name).
pub(super) fn custom_attributes(r: &StartRequest<'_>) -> BTreeMap<String, String> {
    let h = r.handover;
    let mut m = BTreeMap::new();
    for (k, v) in &h.variables {
        let s = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        m.insert(k.clone(), clip(&s, MAX_ATTRIBUTE_CHARS));
    }
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), clip(v, MAX_ATTRIBUTE_CHARS));
    };
    put("handoverId", &h.id);
    put("botId", r.bot_id);
    put("sessionId", r.session_id);
    put("queue", &h.queue);
    put("language", &h.language);
    put("trigger", h.trigger.as_str());
    if !h.tags.is_empty() {
        put("tags", &h.tags.join(","));
    }
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        put("summary", summary);
    }
    if let Some(channel) = r.channel {
        put("channel", channel);
    }
    m
}

/// The first message the agent reads: why and where the conversation was handed over, the
/// summary, and the bot's transcript.
pub(super) fn opening_text(r: &StartRequest<'_>) -> String {
    let h = r.handover;
    let mut head = format!(
        "Conversation handed over by the bot (queue: {}, reason: {}).",
        h.queue,
        h.trigger.as_str()
    );
    if let Some(summary) = h.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        head.push_str("\nSummary: ");
        head.push_str(summary.trim());
    }
    if r.transcript.is_empty() {
        head.push_str("\nThe customer asked to talk to an agent.");
        return clip(&head, MAX_TEXT_CHARS);
    }
    fit_transcript(&head, &render_transcript(r.transcript), MAX_TEXT_CHARS)
}

/// The header and as much of the transcript as fits in `max` characters, newest lines first
/// kept: the whole history stays in handover's store, the agent needs the end of it.
pub(super) fn fit_transcript(head: &str, transcript: &str, max: usize) -> String {
    let full = format!("{head}\n\n{transcript}");
    if full.chars().count() <= max {
        return full;
    }
    let lines: Vec<&str> = transcript.lines().collect();
    // Room for the header, the blank line and the "omitted" note.
    let mut used = head.chars().count() + 2 + 40;
    let mut kept: Vec<&str> = Vec::new();
    for &line in lines.iter().rev() {
        let n = line.chars().count() + 1;
        if used + n > max {
            break;
        }
        used += n;
        kept.push(line);
    }
    if kept.is_empty()
        && let Some(&last) = lines.last()
    {
        kept.push(last);
    }
    kept.reverse();
    let mut out = format!("{head}\n\n[{} earlier lines omitted]", lines.len() - kept.len());
    for line in kept {
        out.push('\n');
        out.push_str(line);
    }
    clip(&out, max)
}

/// The inbound text for a mirrored turn. Only user and bot turns are mirrored.
pub(super) fn turn_text(entry: &TranscriptEntry) -> String {
    let text = entry.message.render_text();
    match entry.actor {
        Actor::Bot => format!("{BOT_PREFIX}{text}"),
        Actor::User | Actor::Agent => text,
    }
}

/// What the agent reads when we have to post a message to learn the conversation id (see `end`).
pub(super) fn end_notice(reason: EndReason) -> String {
    format!(
        "[The customer's conversation was ended by the bot service: {}]",
        reason.as_str()
    )
}

/// The conversation id from an inbound-message response (present with `prefetchConversationId`).
pub(super) async fn conversation_id_of(resp: reqwest::Response) -> Option<String> {
    let answer: InboundAnswer = resp.json().await.ok()?;
    answer.conversation_id.filter(|id| !id.is_empty())
}

/// THE ONE PLACE that decides which id the shell indexes for a Genesys handover.
///
/// Callbacks are addressed to the sender id, the handover id, and the shell always indexes
/// the handover id. When Genesys tells us its conversation id (it does with
/// `prefetchConversationId=true`) we return that one too: the shell then indexes it as well and
/// hands it back to `end`, which can disconnect the conversation directly. Without it we return
/// the handover id, and `end` learns the conversation id by asking Genesys.
pub(super) fn indexed_conversation_id(handover_id: &str, genesys_conversation_id: Option<String>) -> String {
    genesys_conversation_id.unwrap_or_else(|| handover_id.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{Handover, Message};
    use crate::providers::kit::testing;
    use crate::providers::path_segment;

    fn handover() -> Handover {
        Handover {
            provider: "genesys".into(),
            queue: "Support_NL".into(),
            language: "nl".into(),
            variables: [
                ("orderId".to_owned(), json!("A-1")),
                ("items".to_owned(), json!(3)),
                ("queue".to_owned(), json!("not this one")),
            ]
            .into_iter()
            .collect(),
            tags: vec!["vip".into(), "late".into()],
            summary: Some("Parcel is late".into()),
            ..testing::handover()
        }
    }

    fn entry(seq: u64, actor: Actor, text: &str) -> TranscriptEntry {
        testing::entry(seq, actor, Message::text(text), "2026-11-25T08:59:00Z")
    }

    #[test]
    fn the_opening_message_carries_context_and_transcript() {
        let h = handover();
        let user = testing::ann();
        let transcript = [
            entry(1, Actor::User, "Where is my parcel?"),
            entry(2, Actor::Bot, "Let me check."),
        ];
        let r = testing::start_request(&h, Some(&user), &transcript);
        let body = inbound_message(
            sender(&h.id, r.user, true),
            r.delivery_id,
            h.requested_at,
            &opening_text(&r),
            Some(custom_attributes(&r)),
        );
        let body = serde_json::to_value(&body).unwrap();
        assert_eq!(body["channel"]["messageId"], "h-1-start");
        assert_eq!(body["channel"]["time"], "2026-11-25T09:00:00.000Z");
        assert_eq!(
            body["channel"]["from"],
            json!({"id": "h-1", "idType": "Opaque", "nickname": "Ann Peeters", "firstName": "Ann", "lastName": "Peeters", "email": "ann@example.com"})
        );
        let attrs = &body["channel"]["metadata"]["customAttributes"];
        assert_eq!(attrs["queue"], "Support_NL", "our keys win over variables");
        assert_eq!(attrs["orderId"], "A-1");
        assert_eq!(attrs["items"], "3");
        assert_eq!(attrs["tags"], "vip,late");
        assert_eq!(attrs["handoverId"], "h-1");
        assert_eq!(attrs["sessionId"], "s-42");
        assert_eq!(attrs["channel"], "web");
        assert!(attrs.as_object().unwrap().values().all(Value::is_string));
        assert_eq!(
            body["text"],
            "Conversation handed over by the bot (queue: Support_NL, reason: explicit_request).\nSummary: Parcel is late\n\nUser: Where is my parcel?\nBot: Let me check."
        );
    }

    #[test]
    fn a_long_transcript_keeps_its_newest_lines_within_the_limit() {
        let transcript: String = (1..=500).map(|i| format!("User: line {i}\n")).collect();
        let text = fit_transcript("Head", transcript.trim_end(), 200);
        assert!(text.chars().count() <= 200, "{}", text.chars().count());
        assert!(text.starts_with("Head\n\n["), "{text}");
        assert!(text.contains("earlier lines omitted]"));
        assert!(text.ends_with("User: line 500"), "{text}");
        assert_eq!(fit_transcript("Head", "User: hi", 200), "Head\n\nUser: hi");
    }

    #[test]
    fn mirrored_bot_turns_are_labelled_and_long_turns_split() {
        assert_eq!(turn_text(&entry(3, Actor::Bot, "On its way")), "Bot: On its way");
        assert_eq!(turn_text(&entry(4, Actor::User, "Thanks")), "Thanks");
        let long = "x".repeat(MAX_TEXT_CHARS * 2 + 1);
        let parts = pieces(&long, MAX_TEXT_CHARS);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), long);
        assert_eq!(
            serde_json::to_value(sender("h-1", None, false)).unwrap(),
            json!({"id": "h-1", "idType": "Opaque"})
        );
    }

    #[test]
    fn the_indexed_id_is_genesys_conversation_id_when_known() {
        assert_eq!(indexed_conversation_id("h-1", Some("c-9".into())), "c-9");
        assert_eq!(indexed_conversation_id("h-1", None), "h-1");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}

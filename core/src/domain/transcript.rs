//! The conversation as stored: numbered entries, rendered for agents on demand.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::message::{Actor, Agent, Message};

/// One stored turn. `seq` is the entry's position in the session, 1-based and gap-free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptEntry {
    pub seq: u64,
    pub actor: Actor,
    pub timestamp: DateTime<Utc>,
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// The inbound event this entry came from, for tracing duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Renders entries as the plain text an agent reads first: one "Who: what" block per turn.
pub fn render_transcript(entries: &[TranscriptEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            let who = match (&e.actor, &e.agent) {
                (Actor::Agent, Some(Agent { name: Some(name), .. })) => format!("Agent {name}"),
                (actor, _) => actor.label().to_owned(),
            };
            format!("{who}: {}", e.message.render_text())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_names_each_speaker() {
        let at = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let entry = |seq, actor, text: &str, agent: Option<Agent>| TranscriptEntry {
            seq,
            actor,
            timestamp: at,
            message: Message::text(text),
            agent,
            event_id: None,
        };
        let eva = Agent {
            id: "a-3".into(),
            name: Some("Eva".into()),
        };
        let text = render_transcript(&[
            entry(1, Actor::User, "Where is my parcel?", None),
            entry(2, Actor::Bot, "Let me find an agent.", None),
            entry(3, Actor::Agent, "Hi, I'm on it.", Some(eva)),
        ]);
        assert_eq!(
            text,
            "User: Where is my parcel?\nBot: Let me find an agent.\nAgent Eva: Hi, I'm on it."
        );
    }
}

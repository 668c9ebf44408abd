//! What the core asks the shell to do. Effects are stored in the outbox in the same
//! transaction as the state change, and delivered only after it commits.

use serde::{Deserialize, Serialize};

use super::dialog::Dialog;
use super::handover::{EndReason, Handover};
use super::message::{Agent, Message};
use super::session::UserInfo;
use super::transcript::TranscriptEntry;

/// Opening the conversation at the provider. It is not an effect: it runs inline, before the
/// commit, because "opened" promises that the provider has the conversation. The shell carries
/// it out and records the result with [`super::started`].
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub provider: String,
    pub handover: Box<Handover>,
    pub user: Option<UserInfo>,
    pub channel: Option<String>,
    pub session_id: String,
    /// The conversation opens with the transcript up to and including this entry; later
    /// entries follow as `Mirror` operations, so nothing is sent twice.
    pub through_seq: u64,
}

/// What the provider answered to a [`Start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The provider's own id for the conversation (the handover id where it has none).
    pub conversation_id: String,
    /// The transcript the conversation was opened with ended at this entry. Lower than the
    /// decision's `through_seq` when the conversation was opened for an earlier decision that
    /// lost a race: the entries in between are then sent as a catch-up.
    pub through_seq: u64,
    /// Only the provider's answer named the conversation (Help Scout, a new Intercom
    /// conversation): what happened in it before that answer reached us (an agent assigned
    /// at once) could not be reported to us, so it is read back ([`ProviderOp::ReadBack`]).
    pub named_by_answer: bool,
}

/// An operation on the provider's side of the conversation.
// A mirrored turn is most operations' size; boxing it would only add an allocation per turn.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ProviderOp {
    /// Add a user or bot turn to the agent's conversation.
    Mirror { entry: TranscriptEntry },
    /// Send the transcript entries `afterSeq < seq <= throughSeq`, read from the transcript at
    /// delivery: turns that arrived while the conversation was being opened.
    #[serde(rename_all = "camelCase")]
    CatchUp { after_seq: u64, through_seq: u64 },
    /// Close a conversation the shell opened but could not commit (or whose opening timed
    /// out): written by the shell, never by the core, so no conversation is left orphaned.
    #[serde(rename_all = "camelCase")]
    Abandon { conversation_id: String },
    /// Read what the conversation holds so far and apply it like callbacks under the
    /// provider's own event ids (a callback of the same event later is a repeat): the events
    /// of a conversation the provider named only in its answer, which happened before that
    /// answer. An outbox item, so it is done even if the function stops after the commit.
    #[serde(rename_all = "camelCase")]
    ReadBack { conversation_id: String },
    /// Close the provider's conversation (user cancel, timeouts), so none is left orphaned, or,
    /// with `keep_as_ticket`, leave it open for an agent to answer later.
    #[serde(rename_all = "camelCase")]
    End {
        reason: EndReason,
        #[serde(default)]
        keep_as_ticket: bool,
    },
}

/// An event for the bot platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotEvent {
    AgentJoined {
        agent: Agent,
        dialog: Dialog,
    },
    AgentMessage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
        message: Message,
    },
    AgentTyping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
    },
    #[serde(rename_all = "camelCase")]
    Waiting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_wait_seconds: Option<u64>,
        dialog: Dialog,
    },
    Ended {
        reason: EndReason,
        dialog: Dialog,
    },
    /// A dialog outside any handover (closed or disabled, for platforms that need it pushed).
    Dialog {
        dialog: Dialog,
    },
}

impl BotEvent {
    /// The wire name in the native contract.
    pub fn wire_type(&self) -> &'static str {
        match self {
            BotEvent::AgentJoined { .. } => "agent.joined",
            BotEvent::AgentMessage { .. } => "agent.message",
            BotEvent::AgentTyping { .. } => "agent.typing",
            BotEvent::Waiting { .. } => "handover.waiting",
            BotEvent::Ended { .. } => "handover.ended",
            BotEvent::Dialog { .. } => "dialog",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum Effect {
    #[serde(rename_all = "camelCase")]
    Provider {
        provider: String,
        handover_id: String,
        /// The provider's own id of the conversation, when it differs from the handover id
        /// and the decision knew it. The effect carries it because it may be delivered (or
        /// retried) after the session has moved on to later handovers, when the session no
        /// longer says which conversation this handover had (found by the simulator: an end
        /// retried after two more handovers went out under the handover id, and the
        /// conversation stayed open at the contact center). Absent on items written before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        op: ProviderOp,
    },
    #[serde(rename_all = "camelCase")]
    Bot {
        handover_id: String,
        event: BotEvent,
        /// The session's platform context at the time (see `Session::platform_context`).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        context: std::collections::BTreeMap<String, String>,
    },
}

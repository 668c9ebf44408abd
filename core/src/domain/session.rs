//! The per-conversation state the core decides on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::handover::Handover;

/// Who is in charge of the conversation.
///
/// `Waiting` is deliberately distinct from `Agent`: while a user waits, the bot keeps answering
/// (the seed's requirement), so only `Agent` silences the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Bot,
    Waiting,
    Agent,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Bot => "bot",
            State::Waiting => "waiting",
            State::Agent => "agent",
        }
    }

    /// Who must answer the user's next message.
    pub fn control(self) -> Control {
        match self {
            State::Agent => Control::Agent,
            State::Bot | State::Waiting => Control::Bot,
        }
    }
}

/// The answer to "who answers this message?" given to the bot platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    Bot,
    Agent,
}

/// What the user told us about themselves; forwarded to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Deadlines the scheduled evaluator acts on. Stored with the session; the store indexes
/// [`Timers::index_at`] (the earliest one, or an earlier time held) so that due sessions are
/// found without a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_agent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_waiting_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_idle_at: Option<DateTime<Utc>>,
    /// Next time to ask the provider about the conversation (providers that do not push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_at: Option<DateTime<Utc>>,
    /// A due-index time kept although every timer is now later: the index's time when a
    /// deadline moved later (each agent message pushes the agent-idle deadline), kept so that
    /// such a message does not rewrite the index entry's key. The evaluator comes at that
    /// time, finds nothing due, and lets it go ([`Timers::release_index`]), which moves the
    /// index to the earliest timer once for many messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_held: Option<DateTime<Utc>>,
}

impl Timers {
    /// The time the due index holds for the session: the earliest timer, or the held time when
    /// that is earlier. Never later than a timer, so no timer is found late; `None` without a
    /// timer (the session leaves the index).
    pub fn index_at(&self) -> Option<DateTime<Utc>> {
        let earliest = self.earliest()?;
        Some(self.index_held.map_or(earliest, |held| held.min(earliest)))
    }

    /// Keeps the index where it is while a deadline moves later (call before moving it).
    pub fn hold_index(&mut self) {
        self.index_held = self.index_at();
    }

    /// Lets go of a held time that has come: the index moves to the earliest timer.
    pub fn release_index(&mut self, now: DateTime<Utc>) {
        if self.index_held.is_some_and(|held| held <= now) {
            self.index_held = None;
        }
    }

    /// Whether the index holds a time that has come although no timer is due: the evaluator
    /// must let it go.
    pub fn index_passed(&self, now: DateTime<Utc>) -> bool {
        self.index_held.is_some_and(|held| held <= now) && self.earliest().is_some_and(|at| at > now)
    }

    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        [
            self.no_agent_at,
            self.still_waiting_at,
            self.agent_idle_at,
            self.poll_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    NoAgent,
    StillWaiting,
    AgentIdle,
    /// Time to ask the provider again (see `Provider::poll`).
    Poll,
}

/// One end user's conversation with one bot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub bot_id: String,
    pub session_id: String,
    pub state: State,
    /// The active handover while `state` is `Waiting` or `Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<Handover>,
    /// The most recent finished handover, so the bot can ask why control came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handover: Option<Handover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// What the bot platform needs to address this conversation (e.g. Chatlayer's bot id and
    /// version); copied onto every event for the platform.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub platform_context: std::collections::BTreeMap<String, String>,
    /// The last transcript sequence number used; entries are numbered 1, 2, 3, … without gaps.
    pub seq: u64,
    /// The last outbox sequence number used.
    #[serde(default)]
    pub outbox_seq: u64,
    #[serde(default)]
    pub timers: Timers,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Session {
    pub fn new(bot_id: &str, session_id: &str, now: DateTime<Utc>) -> Self {
        Session {
            bot_id: bot_id.to_owned(),
            session_id: session_id.to_owned(),
            state: State::Bot,
            handover: None,
            last_handover: None,
            user: None,
            channel: None,
            platform_context: Default::default(),
            seq: 0,
            outbox_seq: 0,
            timers: Timers::default(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The user's language if known, else the given default.
    pub fn language<'a>(&'a self, default: &'a str) -> &'a str {
        self.user.as_ref().and_then(|u| u.locale.as_deref()).unwrap_or(default)
    }
}

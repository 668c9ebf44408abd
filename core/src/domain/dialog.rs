//! The texts the user sees at each step, per language, with placeholders filled in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bot::{Bot, DialogTexts};
use crate::hours::describe_opening;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogName {
    Disabled,
    Closed,
    Opened,
    StillWaiting,
    AgentJoined,
    ReturnedToBot,
    NoAgent,
    NoAgentTicket,
}

/// A rendered dialog: the name lets the bot platform pick its own text instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialog {
    pub name: DialogName,
    pub text: String,
}

/// Values for placeholders; absent values render as a neutral word rather than a raw `{…}`.
#[derive(Debug, Clone, Default)]
pub struct DialogVars {
    pub next_opening: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub agent_name: Option<String>,
    pub position: Option<u32>,
    /// The expected wait, in seconds (shown as `{waitMinutes}`, rounded up).
    pub wait_seconds: Option<u64>,
    pub now: Option<DateTime<Utc>>,
}

fn builtin(name: DialogName) -> &'static str {
    match name {
        DialogName::Disabled => "Our live chat is temporarily unavailable.",
        DialogName::Closed => "Our agents are offline right now. We are back {nextOpening}.",
        DialogName::Opened => "Please wait a couple of minutes while an agent joins this chat.",
        DialogName::StillWaiting => "Thanks for your patience, an agent will be with you shortly.",
        DialogName::AgentJoined => "{agentName} joined the chat.",
        DialogName::ReturnedToBot => "You are talking to our assistant again.",
        DialogName::NoAgent => "Sorry, no agent could join this chat. Please try again later.",
        DialogName::NoAgentTicket => {
            "No agent is free right now. We have passed your question on and will get back to you."
        }
    }
}

fn pick(texts: &DialogTexts, name: DialogName) -> Option<&str> {
    match name {
        DialogName::Disabled => texts.disabled.as_deref(),
        DialogName::Closed => texts.closed.as_deref(),
        DialogName::Opened => texts.opened.as_deref(),
        DialogName::StillWaiting => texts.still_waiting.as_deref(),
        DialogName::AgentJoined => texts.agent_joined.as_deref(),
        DialogName::ReturnedToBot => texts.returned_to_bot.as_deref(),
        DialogName::NoAgent => texts.no_agent.as_deref(),
        DialogName::NoAgentTicket => texts.no_agent_ticket.as_deref(),
    }
}

/// `nl-BE` → `nl`.
pub fn primary_language(locale: &str) -> &str {
    locale.split(['-', '_']).next().unwrap_or(locale)
}

/// Finds the text for `language` (exact locale, then its primary language), then the bot's
/// default language, then the built-in English, and fills in the placeholders.
pub fn render(bot: &Bot, name: DialogName, language: &str, vars: &DialogVars) -> Dialog {
    let dialogs = &bot.config.dialogs;
    let candidates = [
        language,
        primary_language(language),
        bot.config.default_language.as_str(),
    ];
    let (template, lang) = candidates
        .iter()
        .find_map(|l| dialogs.get(*l).and_then(|t| pick(t, name)).map(|t| (t, *l)))
        .unwrap_or((builtin(name), "en"));

    let mut text = template.to_owned();
    if text.contains("{nextOpening}") {
        let when = match (vars.next_opening, &bot.schedule) {
            (Some(at), Some(schedule)) => describe_opening(at, vars.now.unwrap_or(at), schedule.time_zone(), lang),
            (Some(at), None) => describe_opening(at, vars.now.unwrap_or(at), chrono_tz::UTC, lang),
            (None, _) => "later".to_owned(),
        };
        text = text.replace("{nextOpening}", &when);
    }
    if text.contains("{reason}") {
        text = text.replace("{reason}", vars.reason.as_deref().unwrap_or(""));
    }
    if text.contains("{agentName}") {
        text = text.replace("{agentName}", vars.agent_name.as_deref().unwrap_or("An agent"));
    }
    if text.contains("{position}") {
        let p = vars.position.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        text = text.replace("{position}", &p);
    }
    if text.contains("{waitMinutes}") {
        let m = vars
            .wait_seconds
            .map(|s| s.div_ceil(60).max(1).to_string())
            .unwrap_or_else(|| "a few".into());
        text = text.replace("{waitMinutes}", &m);
    }
    Dialog { name, text }
}

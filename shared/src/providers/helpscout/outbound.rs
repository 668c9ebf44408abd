//! The conversation we create in Help Scout: its customer, subject, and the transcript as
//! imported threads ending with the context note. Help Scout's limits that are not published
//! are marked ASSUMPTION, each here.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;

use super::wire::{CustomerEmail, NewConversation, NewCustomer, NewThread};
use super::{BOT_PREFIX, HelpScoutProvider};
use crate::domain::{Actor, Agent, EndReason, TranscriptEntry};
use crate::providers::StartRequest;
use crate::providers::kit::text::{clip, text_to_html};

/// Variables the bot platform may use to tell the user's email, name, and the subject.
const EMAIL_VARIABLES: &[&str] = &["email", "customerEmail", "helpScout.customer.email"];
const FIRST_NAME_VARIABLES: &[&str] = &["firstName", "helpScout.customer.firstName"];
const LAST_NAME_VARIABLES: &[&str] = &["lastName", "helpScout.customer.lastName"];
const SUBJECT_VARIABLES: &[&str] = &["subject", "helpScout.conversation.subject"];
/// The customer thread of a conversation whose transcript has no user turn.
const FALLBACK_CUSTOMER_TEXT: &str = "(The customer asked to talk to an agent.)";

/// ASSUMPTION: the v1 API refused conversations with more than 100 threads (HTTP 412); the 2.0
/// documentation states no limit, so the same one is kept: at most 98 transcript threads, a
/// possible fallback customer thread and the context note. Older turns stay in handover.
pub(super) const MAX_TRANSCRIPT_THREADS: usize = 98;
/// ASSUMPTION (no published limit for the 2.0 API; v1 allowed 256 kB per create request): each
/// thread's text is cut to this many characters and the oldest threads are dropped while the
/// transcript's text exceeds the budget.
pub(super) const MAX_THREAD_CHARS: usize = 4000;
pub(super) const TRANSCRIPT_BUDGET_CHARS: usize = 150_000;
/// ASSUMPTION (no published limit): subjects are cut to this length.
const MAX_SUBJECT_CHARS: usize = 200;

impl HelpScoutProvider {
    /// The create-conversation body: the transcript as imported threads in chronological
    /// order, the context note as the newest thread.
    pub(super) fn new_conversation(&self, r: &StartRequest<'_>, mailbox: u64) -> NewConversation {
        let h = r.handover;
        let email = customer_email(r, self.use_user_email, &self.placeholder_domain);
        let (first_name, last_name) = customer_names(r);

        let (entries, omitted) = kept_entries(r.transcript);
        let mut items: Vec<(&'static str, String, DateTime<Utc>)> = Vec::new();
        if !entries.iter().any(|e| e.actor == Actor::User) {
            let at = entries.first().map_or(h.requested_at, |e| e.timestamp);
            items.push(("customer", FALLBACK_CUSTOMER_TEXT.to_owned(), at));
        }
        for e in entries {
            let text = clip(&e.message.render_text(), MAX_THREAD_CHARS);
            match e.actor {
                Actor::User => items.push(("customer", text, e.timestamp)),
                Actor::Bot | Actor::Agent => items.push(("note", format!("{}{text}", note_label(e)), e.timestamp)),
            }
        }
        let newest = items.iter().map(|(_, _, t)| *t).max().unwrap_or(h.requested_at);
        items.push(("note", context_note(r, omitted), newest.max(h.requested_at)));

        let stamps: Vec<DateTime<Utc>> = items.iter().map(|(_, _, t)| *t).collect();
        let times = thread_times(&stamps);
        let threads = items
            .into_iter()
            .zip(&times)
            .map(|((kind, text, _), at)| NewThread {
                kind,
                customer: (kind == "customer").then(|| CustomerEmail { email: email.clone() }),
                text: text_to_html(&text),
                created_at: iso_seconds(*at),
            })
            .collect();
        NewConversation {
            subject: self.subject_of(r),
            customer: NewCustomer {
                email,
                first_name,
                last_name,
            },
            mailbox_id: mailbox,
            kind: self.conversation_type.clone(),
            status: "active",
            imported: true,
            created_at: times.first().map(|t| iso_seconds(*t)),
            tags: h
                .tags
                .iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
            threads,
        }
    }

    /// A variable naming the subject, else the bot's summary, else the configured subject.
    fn subject_of(&self, r: &StartRequest<'_>) -> String {
        let subject = string_variable(r, SUBJECT_VARIABLES)
            .or_else(|| {
                r.handover
                    .summary
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.lines().next().unwrap_or(s).to_owned())
            })
            .unwrap_or_else(|| self.subject.clone());
        clip(&subject, MAX_SUBJECT_CHARS)
    }
}

fn string_variable(r: &StartRequest<'_>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        r.handover
            .variables
            .get(*n)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
}

/// THE ONE PLACE that decides the Help Scout customer's email address.
///
/// Help Scout identifies a new customer by email: a conversation needs a customer with an id or
/// an email. We use the user's email when the bot platform knows it (the session's user, then
/// the variables `email`, `customerEmail`, `helpScout.customer.email`), unless
/// `useUserEmail: false`. Otherwise a placeholder that is stable per bot and user, so the same
/// user is the same Help Scout customer across handovers: `{botId}.{userId}@{domain}` (the
/// session id when no user id is known), lower case, other characters replaced by `-`.
/// ASSUMPTION: Help Scout accepts such an address; the domain is configurable.
/// Consequence worth knowing: Help Scout may email agents' replies to a real address, so a user
/// with a known email can receive them by email as well as in the chat.
pub(super) fn customer_email(r: &StartRequest<'_>, use_user_email: bool, placeholder_domain: &str) -> String {
    if use_user_email {
        let known = r
            .user
            .and_then(|u| u.email.as_deref())
            .map(str::trim)
            .filter(|e| looks_like_email(e))
            .map(str::to_owned)
            .or_else(|| string_variable(r, EMAIL_VARIABLES).filter(|e| looks_like_email(e)));
        if let Some(email) = known {
            return email;
        }
    }
    let who = r
        .user
        .map(|u| u.id.as_str())
        .filter(|id| !id.trim().is_empty())
        .unwrap_or(r.session_id);
    let local: String = format!("{}.{}", r.bot_id, who)
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let local: String = local
        .trim_matches(|c: char| c == '.' || c == '-')
        .chars()
        .take(64)
        .collect();
    format!("{local}@{placeholder_domain}")
}

/// First and last name: the user's name split at the first space, else the variables.
pub(super) fn customer_names(r: &StartRequest<'_>) -> (Option<String>, Option<String>) {
    if let Some(name) = r
        .user
        .and_then(|u| u.name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let mut parts = name.splitn(2, char::is_whitespace);
        let first = parts.next().map(str::to_owned);
        let last = parts.next().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned);
        return (first, last);
    }
    (
        string_variable(r, FIRST_NAME_VARIABLES),
        string_variable(r, LAST_NAME_VARIABLES),
    )
}

/// The transcript entries that become threads (the newest ones, within the thread and size
/// limits) and how many older ones were left out.
pub(super) fn kept_entries(transcript: &[TranscriptEntry]) -> (&[TranscriptEntry], usize) {
    let len = transcript.len();
    let mut start = len.saturating_sub(MAX_TRANSCRIPT_THREADS);
    let size = |e: &TranscriptEntry| e.message.render_text().chars().count().min(MAX_THREAD_CHARS) + 16;
    let mut total: usize = transcript[start..].iter().map(size).sum();
    while total > TRANSCRIPT_BUDGET_CHARS && start < len {
        total -= size(&transcript[start]);
        start += 1;
    }
    (&transcript[start..], start)
}

/// Who a mirrored turn is from, as the prefix of its note.
pub(super) fn note_label(e: &TranscriptEntry) -> String {
    match (e.actor, &e.agent) {
        (Actor::Agent, Some(Agent { name: Some(name), .. })) => format!("Agent {name}: "),
        (Actor::Agent, _) => "Agent: ".to_owned(),
        _ => BOT_PREFIX.to_owned(),
    }
}

/// The note the agent reads first: why and where the conversation was handed over, the
/// summary, tags and variables.
fn context_note(r: &StartRequest<'_>, omitted: usize) -> String {
    let h = r.handover;
    let mut lines = vec![format!(
        "Handed over by the bot (queue: {}, reason: {}, language: {}).",
        h.queue,
        h.trigger.as_str(),
        h.language
    )];
    if let Some(summary) = h.summary.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        lines.push(format!("Summary: {summary}"));
    }
    if !h.tags.is_empty() {
        lines.push(format!("Tags: {}", h.tags.join(", ")));
    }
    let variables: Vec<String> = h
        .variables
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect();
    if !variables.is_empty() {
        lines.push("Variables:".to_owned());
        lines.extend(variables);
    }
    let mut ids = format!("Handover {}, bot {}, session {}", h.id, r.bot_id, r.session_id);
    if let Some(channel) = r.channel {
        ids.push_str(&format!(", channel {channel}"));
    }
    ids.push('.');
    lines.push(ids);
    if omitted > 0 {
        lines.push(format!(
            "[{omitted} earlier turns are not shown here; handover keeps the full history.]"
        ));
    }
    clip(&lines.join("\n"), MAX_THREAD_CHARS)
}

/// The note posted when handover ends the conversation.
pub(super) fn end_note(reason: EndReason) -> String {
    let why = match reason {
        EndReason::UserCancelled => "the customer stopped waiting",
        EndReason::NoAgentTimeout => "no agent answered in time",
        EndReason::AgentIdleTimeout => "the conversation was idle too long",
        EndReason::AgentClosed => "the agent closed the conversation",
        EndReason::ProviderError => "messages could not be delivered",
    };
    format!(
        "The customer was returned to the bot ({why}; reason: {}). Replies in this conversation no longer reach the customer's chat.",
        reason.as_str()
    )
}

/// Thread times: whole seconds, strictly increasing, so Help Scout shows the threads in
/// transcript order even when turns share a second. Ties are resolved by moving older threads
/// back, never by moving any into the future.
pub(super) fn thread_times(stamps: &[DateTime<Utc>]) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = stamps
        .iter()
        .map(|t| DateTime::<Utc>::from_timestamp(t.timestamp(), 0).unwrap_or(*t))
        .collect();
    for i in (0..out.len().saturating_sub(1)).rev() {
        let limit = out[i + 1] - Duration::seconds(1);
        if out[i] > limit {
            out[i] = limit;
        }
    }
    out
}

pub(super) fn iso_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

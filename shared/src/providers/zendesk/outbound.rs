//! The context the agent gets: the pass-control metadata the Agent Workspace reads into the
//! ticket (tags, ticket fields, `first_message_id`), flat and within SunCo's 4 KB limit.

use serde_json::{Map, Value};

use super::{META_HANDOVER_ID, ZendeskProvider};
use crate::domain::render_transcript;
use crate::providers::StartRequest;
use crate::providers::kit::text::clip;

/// Metadata of switchboard actions is limited to 4 KB (spec, `passControlBody.metadata`); we
/// stay a little below so key overhead and rounding never push a request over.
pub(super) const METADATA_BUDGET: usize = 4000;

/// The handover variable whose value, when present, becomes the Agent Workspace's
/// `first_message_id` (the first SunCo message the ticket shows; by default it shows the last
/// 10). Only the bot platform knows SunCo message ids, so it is the one to send it.
const FIRST_MESSAGE_ID_VARIABLE: &str = "firstMessageId";

/// ASSUMPTION (see the docs page): the metadata keys the Agent Workspace reads ticket tags and
/// ticket fields from. Zendesk documents that pass-control metadata can set ticket fields and
/// tags; public integrations use these keys.
const TICKET_TAGS_KEY: &str = "dataCapture.systemField.tags";
const TICKET_FIELD_KEY_PREFIX: &str = "dataCapture.ticketField.";

impl ZendeskProvider {
    /// The pass-control metadata that gives the agent context. Flat strings only, within the
    /// 4 KB limit; long texts (the rendered transcript last) are shortened to fit.
    pub(super) fn handover_metadata(&self, r: &StartRequest<'_>) -> Map<String, Value> {
        let h = r.handover;
        let mut m = Map::new();
        let mut put = |k: &str, v: String| m.insert(k.to_owned(), Value::String(v));
        put(META_HANDOVER_ID, h.id.clone());
        put("handover_trigger", h.trigger.as_str().to_owned());
        put("handover_queue", h.queue.clone());
        if !h.tags.is_empty() {
            put(TICKET_TAGS_KEY, ticket_tags_value(&h.tags));
        }
        if let Some(first) = h.variables.get(FIRST_MESSAGE_ID_VARIABLE).and_then(scalar) {
            put("first_message_id", first);
        }
        // The transcript goes last: it is the longest and the first to be shortened.
        let (transcript, others): (Vec<_>, Vec<_>) =
            self.ticket_fields.iter().partition(|(what, _)| *what == "transcript");
        for (what, field_id) in others.into_iter().chain(transcript) {
            if let Some(value) = field_value(what, r) {
                let key = format!("{TICKET_FIELD_KEY_PREFIX}{}", field_id.trim());
                insert_within_budget(&mut m, key, value);
            }
        }
        m
    }
}

/// Tags as one string: Zendesk tags contain no spaces, so a space separates them.
fn ticket_tags_value(tags: &[String]) -> String {
    tags.iter()
        .map(|t| t.trim().replace(' ', "_"))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `ticketFields` can name: a handover attribute, else a handover variable.
fn field_value(what: &str, r: &StartRequest<'_>) -> Option<String> {
    let h = r.handover;
    let value = match what {
        "summary" => h.summary.clone(),
        "queue" => Some(h.queue.clone()),
        "trigger" => Some(h.trigger.as_str().to_owned()),
        "language" => Some(h.language.clone()),
        "handoverId" => Some(h.id.clone()),
        "sessionId" => Some(r.session_id.to_owned()),
        "botId" => Some(r.bot_id.to_owned()),
        "channel" => r.channel.map(str::to_owned),
        "userName" => r.user.and_then(|u| u.name.clone()),
        "userEmail" => r.user.and_then(|u| u.email.clone()),
        "tags" => Some(h.tags.join(", ")),
        "transcript" => Some(render_transcript(r.transcript)),
        variable => h.variables.get(variable).and_then(scalar),
    };
    value.filter(|v| !v.trim().is_empty())
}

/// A handover variable as metadata text (objects and lists are not flat: left out).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn json_len(m: &Map<String, Value>) -> usize {
    serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX)
}

/// Inserts `key: value`, shortening the value until the whole metadata fits the budget;
/// leaves the key out when not even the shortest value fits.
fn insert_within_budget(m: &mut Map<String, Value>, key: String, value: String) {
    let mut keep = value.chars().count();
    loop {
        m.insert(key.clone(), Value::String(clip(&value, keep)));
        let len = json_len(m);
        if len <= METADATA_BUDGET {
            return;
        }
        if keep <= 1 {
            m.remove(&key);
            return;
        }
        keep = keep.saturating_sub(len - METADATA_BUDGET).max(1);
    }
}

//! Size limits for everything a caller supplies, checked before anything is sent or stored.
//!
//! They keep a session item far below DynamoDB's 400 KB (the session holds the current and the
//! last handover, the user and the platform context; transcript entries are items of their
//! own) and every provider request within what providers accept. A refusal names the field.

use serde_json::Value;

use super::event::HandoverRequest;
use super::session::UserInfo;

/// `handover.variables`, as a whole, serialised.
pub const MAX_VARIABLES_BYTES: usize = 8 * 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_SUMMARY_LEN: usize = 4 * 1024;
/// `queue`, `provider`, `language`, `providerConversationId`.
pub const MAX_NAME_LEN: usize = 128;
/// Each of `user.id`, `user.name`, `user.email`, `user.locale`.
pub const MAX_USER_FIELD_LEN: usize = 256;
/// A message's text.
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// A field over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: longer than {limit}")]
pub struct Oversize {
    pub field: String,
    pub limit: String,
}

fn over(field: &str, limit: impl Into<String>) -> Oversize {
    Oversize {
        field: field.to_owned(),
        limit: limit.into(),
    }
}

fn text(field: &str, value: Option<&str>, max: usize) -> Result<(), Oversize> {
    match value {
        Some(v) if v.len() > max => Err(over(field, format!("{max} bytes"))),
        _ => Ok(()),
    }
}

/// The caller-supplied parts of a handover request (`prefix` is where it sits in the body).
pub fn check_request(prefix: &str, req: &HandoverRequest) -> Result<(), Oversize> {
    let f = |name: &str| format!("{prefix}.{name}");
    let variables = serde_json::to_vec(&req.variables).map_or(usize::MAX, |v| v.len());
    if variables > MAX_VARIABLES_BYTES {
        return Err(over(&f("variables"), format!("{MAX_VARIABLES_BYTES} bytes as JSON")));
    }
    if req.tags.len() > MAX_TAGS {
        return Err(over(&f("tags"), format!("{MAX_TAGS} tags")));
    }
    for (i, tag) in req.tags.iter().enumerate() {
        text(&f(&format!("tags[{i}]")), Some(tag), MAX_TAG_LEN)?;
    }
    text(&f("summary"), req.summary.as_deref(), MAX_SUMMARY_LEN)?;
    text(&f("queue"), req.queue.as_deref(), MAX_NAME_LEN)?;
    text(&f("provider"), req.provider.as_deref(), MAX_NAME_LEN)?;
    text(&f("language"), req.language.as_deref(), MAX_NAME_LEN)?;
    text(
        &f("providerConversationId"),
        req.provider_conversation_id.as_deref(),
        MAX_NAME_LEN,
    )
}

/// The user's details.
pub fn check_user(prefix: &str, user: &UserInfo) -> Result<(), Oversize> {
    let f = |name: &str| format!("{prefix}.{name}");
    text(&f("id"), Some(&user.id), MAX_USER_FIELD_LEN)?;
    text(&f("name"), user.name.as_deref(), MAX_USER_FIELD_LEN)?;
    text(&f("email"), user.email.as_deref(), MAX_USER_FIELD_LEN)?;
    text(&f("locale"), user.locale.as_deref(), MAX_USER_FIELD_LEN)
}

/// A JSON value's serialised size (for variables built from a platform's payload).
pub fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Trigger;

    fn request() -> HandoverRequest {
        HandoverRequest {
            trigger: Trigger::ExplicitRequest,
            provider: None,
            queue: None,
            language: None,
            variables: Default::default(),
            tags: vec![],
            summary: None,
            provider_conversation_id: None,
        }
    }

    #[test]
    fn each_oversized_field_is_named() {
        let mut r = request();
        r.variables
            .insert("blob".into(), Value::String("x".repeat(MAX_VARIABLES_BYTES)));
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.variables");
        let mut r = request();
        r.tags = vec!["t".into(); MAX_TAGS + 1];
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.tags");
        let mut r = request();
        r.tags = vec!["ok".into(), "x".repeat(MAX_TAG_LEN + 1)];
        assert_eq!(check_request("handover", &r).unwrap_err().field, "handover.tags[1]");
        let mut r = request();
        r.queue = Some("q".repeat(MAX_NAME_LEN + 1));
        assert_eq!(check_request("payload", &r).unwrap_err().field, "payload.queue");
        let mut r = request();
        r.summary = Some("s".repeat(MAX_SUMMARY_LEN));
        assert!(check_request("handover", &r).is_ok(), "at the limit is fine");
        let user = UserInfo {
            id: "u".into(),
            name: None,
            email: Some("e".repeat(MAX_USER_FIELD_LEN + 1)),
            locale: None,
        };
        assert_eq!(check_user("user", &user).unwrap_err().field, "user.email");
    }
}

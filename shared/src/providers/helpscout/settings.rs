//! The provider entry's fields of a `kind: helpscout` provider.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The provider entry's Help Scout fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Settings {
    /// Queue → mailbox id.
    #[serde(default)]
    pub(super) mailboxes: BTreeMap<String, MailboxRef>,
    /// The mailbox of every queue not in `mailboxes`.
    #[serde(default)]
    pub(super) mailbox_id: Option<MailboxRef>,
    #[serde(default)]
    pub(super) api_base_url: Option<String>,
    #[serde(default)]
    pub(super) token_url: Option<String>,
    /// `chat` (default), `email` or `phone`.
    #[serde(default)]
    pub(super) conversation_type: Option<String>,
    #[serde(default)]
    pub(super) subject: Option<String>,
    #[serde(default)]
    pub(super) use_user_email: Option<bool>,
    #[serde(default)]
    pub(super) placeholder_email_domain: Option<String>,
    #[serde(default)]
    pub(super) assignment_is_join: Option<bool>,
    #[serde(default)]
    pub(super) agent_name: Option<String>,
}

/// A mailbox id as written in YAML: a number, or a numeric string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum MailboxRef {
    Number(u64),
    Text(String),
}

impl MailboxRef {
    /// The id, when it is a positive number.
    pub(super) fn id(&self) -> Option<u64> {
        let id: Option<u64> = match self {
            MailboxRef::Number(n) => Some(*n),
            MailboxRef::Text(s) => s.trim().parse().ok(),
        };
        id.filter(|n| *n > 0)
    }
}

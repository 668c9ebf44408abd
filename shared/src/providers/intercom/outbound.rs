//! What we do in Intercom as the bot teammate: assign, close, write notes, reply as the
//! contact, find or create the contact, open a conversation, and remember which
//! conversations we created.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::note::{created_by_us, first_user_text, handover_note, has_context};
use super::wire::{
    AdminList, ContactAnswer, ContactQuery, ContactSearch, Conversation, CreatedConversation, ErrorList, FieldQuery,
    NewContact, NewConversation, PartBody, ReplyBody, Sender, text,
};
use super::{IntercomProvider, Origin, UNASSIGNED};
use crate::delivery::DeliveryError;
use crate::domain::UserInfo;
use crate::providers::kit::http::checked;
use crate::providers::kit::text::text_to_html;
use crate::providers::{ProviderConversation, StartRequest, path_segment};

/// An Intercom contact and its role (`user` or `lead`), as `from.type` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Contact {
    id: String,
    role: String,
}

impl Contact {
    fn from_answer(a: ContactAnswer) -> Option<Contact> {
        Some(Contact {
            id: text(&a.id)?,
            role: a.role.unwrap_or_else(|| "user".to_owned()),
        })
    }
}

async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, DeliveryError> {
    resp.json::<T>()
        .await
        .map_err(|e| DeliveryError::permanent(format!("unreadable Intercom answer: {e}")))
}

impl IntercomProvider {
    fn parts_path(conversation_id: &str, what: &str) -> String {
        format!("/conversations/{}/{what}", path_segment(conversation_id))
    }

    /// `POST /conversations/{id}/parts`, `message_type: assignment`, performed by the bot.
    pub(super) async fn assign(
        &self,
        conversation_id: &str,
        kind: &str,
        assignee_id: &str,
    ) -> Result<(), DeliveryError> {
        let body = PartBody {
            message_type: "assignment",
            kind,
            admin_id: &self.bot_admin_id,
            assignee_id: Some(assignee_id),
        };
        let path = Self::parts_path(conversation_id, "parts");
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// `POST /conversations/{id}/parts`, `message_type: close`, performed by the bot.
    pub(super) async fn close(&self, conversation_id: &str) -> Result<(), DeliveryError> {
        let body = PartBody {
            message_type: "close",
            kind: "admin",
            admin_id: &self.bot_admin_id,
            assignee_id: None,
        };
        let path = Self::parts_path(conversation_id, "parts");
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// An internal note of the bot teammate: seen by agents, never sent to the contact.
    pub(super) async fn note(&self, conversation_id: &str, html: &str) -> Result<(), DeliveryError> {
        let body = ReplyBody {
            message_type: "note",
            kind: "admin",
            admin_id: Some(&self.bot_admin_id),
            intercom_user_id: None,
            body: html,
        };
        let path = Self::parts_path(conversation_id, "reply");
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// A reply on behalf of the contact (a user turn of a conversation we created). `text` is
    /// the user's plain text: Intercom reads the body as HTML, so it is escaped here.
    pub(super) async fn reply_as_contact(
        &self,
        conversation_id: &str,
        contact_id: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let html = text_to_html(text);
        let body = ReplyBody {
            message_type: "comment",
            kind: "user",
            admin_id: None,
            intercom_user_id: Some(contact_id),
            body: &html,
        };
        let path = Self::parts_path(conversation_id, "reply");
        self.api.json(Method::POST, &path, &[], &body).await.map(drop)
    }

    /// `GET /admins`: the teammates, with their teams and away mode.
    pub(super) async fn admins(&self) -> Result<AdminList, DeliveryError> {
        read(self.api.get("/admins", &[]).await?).await
    }

    /// Finds or creates the Intercom contact of the bot platform's user: a `user` keyed by
    /// `external_id`, or a `lead` when the platform sent no user at all.
    async fn contact_for(&self, user: Option<&UserInfo>, session_id: &str) -> Result<Contact, DeliveryError> {
        let external_id = user.map(|u| format!("{}{}", self.external_id_prefix, u.id));
        let lead_name = format!("Chat visitor {session_id}");
        let body = match user {
            Some(u) => NewContact {
                role: "user",
                external_id: external_id.as_deref(),
                email: trimmed(u.email.as_deref()),
                name: trimmed(u.name.as_deref()),
            },
            None => NewContact {
                role: "lead",
                external_id: None,
                email: None,
                name: Some(&lead_name),
            },
        };
        let (resp, now) = self.api.send_json(Method::POST, "/contacts", &[], &body).await?;
        if resp.status() == StatusCode::CONFLICT {
            // The contact exists already; Intercom names it in the error message.
            let text = resp.text().await.unwrap_or_default();
            if let Some(id) = conflicting_contact_id(&text) {
                let found: ContactAnswer =
                    read(self.api.get(&format!("/contacts/{}", path_segment(&id)), &[]).await?).await?;
                return Contact::from_answer(found)
                    .ok_or_else(|| DeliveryError::permanent("Intercom contact without an id"));
            }
            if let Some(external_id) = &external_id {
                let query = ContactQuery {
                    query: FieldQuery {
                        field: "external_id",
                        operator: "=",
                        value: external_id,
                    },
                };
                let found: ContactSearch =
                    read(self.api.json(Method::POST, "/contacts/search", &[], &query).await?).await?;
                if let Some(c) = found.data.into_iter().next().and_then(Contact::from_answer) {
                    return Ok(c);
                }
            }
            // Search lags behind creation by a few minutes: a later attempt will find it.
            return Err(DeliveryError::retryable(
                "Intercom reports the contact exists but it cannot be found yet",
            ));
        }
        let created: ContactAnswer = read(checked(resp, now).await?).await?;
        Contact::from_answer(created)
            .ok_or_else(|| DeliveryError::permanent("Intercom created a contact without an id"))
    }

    /// The conversation did not start in Intercom: create it, add the transcript, route it.
    pub(super) async fn open_new(&self, r: &StartRequest<'_>, team: &str) -> Result<String, DeliveryError> {
        let contact = self.contact_for(r.user, r.session_id).await?;
        let from_type = match contact.role.as_str() {
            "lead" => "lead",
            "user" => "user",
            _ => "contact",
        };
        // The user's plain text; Intercom reads the body as HTML.
        let first = text_to_html(&first_user_text(r));
        let body = NewConversation {
            from: Sender {
                kind: from_type,
                id: &contact.id,
            },
            body: &first,
        };
        let created: CreatedConversation =
            read(self.api.json(Method::POST, "/conversations", &[], &body).await?).await?;
        let conversation_id = text(&created.conversation_id)
            .ok_or_else(|| DeliveryError::permanent("Intercom did not return a conversation_id"))?;
        let rest = match self.note(&conversation_id, &handover_note(r, true)).await {
            Ok(()) => self.assign(&conversation_id, "team", team).await,
            Err(e) => Err(e),
        };
        if let Err(e) = rest {
            // Nothing left orphaned: the start fails (and may fail over), so close what we made.
            if let Err(close) = self.close(&conversation_id).await {
                tracing::warn!(error = %close, "could not close the half-opened Intercom conversation");
            }
            return Err(e);
        }
        self.remember(&conversation_id, Origin::Created { contact_id: contact.id });
        Ok(conversation_id)
    }

    /// The conversation lives in Intercom: the bot teammate lets go and the team gets it.
    pub(super) async fn hand_to_team(
        &self,
        conversation_id: &str,
        r: &StartRequest<'_>,
        team: &str,
    ) -> Result<(), DeliveryError> {
        if has_context(r.handover) {
            self.note(conversation_id, &handover_note(r, false)).await?;
        }
        self.assign(conversation_id, "admin", UNASSIGNED).await?;
        self.assign(conversation_id, "team", team).await?;
        self.remember(conversation_id, Origin::Intercom);
        Ok(())
    }

    fn cache_key(&self, conversation_id: &str) -> String {
        format!("{}|{conversation_id}", self.api.base())
    }

    fn remember(&self, conversation_id: &str, origin: Origin) {
        self.origins.insert(self.cache_key(conversation_id), origin);
    }

    /// Where the conversation came from; `None` when Intercom no longer has it. Known from
    /// this process's memory, else from the conversation's notes (one GET, then remembered).
    pub(super) async fn origin(&self, c: &ProviderConversation) -> Result<Option<Origin>, DeliveryError> {
        if let Some(o) = self.origins.get(&self.cache_key(&c.conversation_id)) {
            return Ok(Some(o));
        }
        let path = format!("/conversations/{}", path_segment(&c.conversation_id));
        let conversation: Conversation = match self.api.get(&path, &[]).await {
            Ok(resp) => read(resp).await?,
            Err(DeliveryError::Permanent { status: Some(404), .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let origin = if created_by_us(&conversation, &self.bot_admin_id, &c.handover_id) {
            let contact_id = conversation
                .first_contact_id()
                .ok_or_else(|| DeliveryError::permanent("the Intercom conversation has no contact"))?;
            Origin::Created { contact_id }
        } else {
            Origin::Intercom
        };
        self.remember(&c.conversation_id, origin.clone());
        Ok(Some(origin))
    }
}

/// A text field with blanks removed; blank counts as absent.
fn trimmed(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// The id in "A contact matching those details already exists with id=…".
pub(super) fn conflicting_contact_id(body: &str) -> Option<String> {
    let messages: Vec<String> = match serde_json::from_str::<ErrorList>(body) {
        Ok(list) => list.errors.into_iter().filter_map(|e| e.message).collect(),
        Err(_) => vec![body.to_owned()],
    };
    messages.iter().find_map(|m| {
        let at = m.find("id=")? + 3;
        let id: String = m[at..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        (!id.is_empty()).then_some(id)
    })
}

//! Erasing a session on request: an active handover is ended at its provider first, so the
//! agent is not left with a conversation nobody reads and nothing remains to end it later.

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Command};
use crate::domain::{Effect, Event, Input};
use crate::store::{OutboxStatus, SessionKey, StoreError};

/// Why a session was not erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The active handover could not be ended at its provider (the end stays queued in the
    /// outbox): erasing now would delete the only record that it must be ended.
    #[error(
        "the active handover could not be ended at its provider yet (its end is queued and retried); erase again later, or force it and end the conversation at the provider by hand"
    )]
    ProviderNotEnded,
    #[error("ending the active handover failed: {0}")]
    End(#[from] engine::EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Ends the session's active handover (as the user's cancel: the bot and the provider are
/// told), then deletes every item of the session. With `force`, a provider end that could not
/// be delivered does not stop the erase. Returns the number of items deleted.
pub async fn erase(ctx: &AppContext, bot: &LoadedBot, key: &SessionKey, force: bool) -> Result<usize, EraseError> {
    let active = ctx
        .store
        .load_session(key)
        .await?
        .and_then(|s| s.value.handover.map(|h| h.id));
    if let Some(handover_id) = active {
        engine::apply(
            ctx,
            bot,
            Command::internal(key.clone(), Input::new(Event::UserCancelled)),
        )
        .await?;
        let unended = ctx.store.outbox(key).await?.into_iter().any(|item| {
            item.status == OutboxStatus::Pending
                && matches!(&item.effect, Effect::Provider { handover_id: h, .. } if *h == handover_id)
        });
        if unended && !force {
            return Err(EraseError::ProviderNotEnded);
        }
    }
    Ok(ctx.store.erase_session(key).await?)
}

//! The provider-callback function: live-chat providers report agents joining, writing,
//! typing and closing here. Verified before parsing; idempotent on the provider's event id.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::context::AppContext;
use super::engine::{self, Answer, Command, Create};
use super::error::{ApiError, json_response};
use super::provider_events;
use super::request::{body_bytes, query_pairs, route_path};
use super::routes::{self, Function};
use crate::domain::Input;
use crate::providers::{Callback, CallbackError, CallbackRequest};

/// Longest event or conversation id accepted from a provider.
const MAX_ID_LEN: usize = 256;

pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    match callback(ctx, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn callback(ctx: &AppContext, req: &Request) -> Result<Response<Body>, ApiError> {
    let path = route_path(req);
    let Some((_, params)) =
        routes::find(req.method().as_str(), &path).filter(|(r, _)| r.function == Function::ProviderCallback)
    else {
        return Err(routes::not_routed(&path));
    };
    // A URL check (Intercom's HEAD when a webhook URL is saved) gets the same empty 200 on
    // every callback path, before any lookup: it tells nobody which bots and providers exist.
    if req.method() == "HEAD" {
        return Ok(Response::builder()
            .status(200)
            .body(Body::Empty)
            .expect("valid response"));
    }
    let (bot_id, provider_id) = (&params["botId"], &params["providerId"]);
    let body = body_bytes(req)?;
    let bot = ctx.bot(bot_id).await?;
    let provider = bot.provider(provider_id).await?;
    let deadline = super::request::request_deadline(req, ctx.request_budget);
    let query = query_pairs(req);
    let cb = CallbackRequest {
        method: req.method().as_str(),
        headers: req.headers(),
        query: &query,
        body,
    };
    provider.verify_callback(&cb, ctx.clock.now()).map_err(callback_error)?;
    let mut skipped = 0;
    let events = match provider.parse_callback(&cb).map_err(callback_error)? {
        Callback::Challenge {
            status,
            content_type,
            body,
        } => {
            return Ok(Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .expect("valid response"));
        }
        Callback::Events(events) => events,
        Callback::Partial { events, unreadable } => {
            for kind in &unreadable {
                tracing::warn!(bot_id = %bot_id, provider = %provider_id, event_type = %kind, "an unreadable event in a provider's delivery was skipped; the others are applied");
            }
            ctx.record(&crate::metrics::callback_unreadable(
                bot_id,
                provider_id,
                unreadable.len(),
            ));
            skipped = unreadable.len();
            events
        }
        Callback::Fetch { conversation_id } => {
            check_ids(None, &conversation_id)?;
            // Only a conversation we handed over is worth a call to the provider.
            if ctx
                .store
                .find_conversation(bot_id, provider_id, &conversation_id)
                .await?
                .is_none()
            {
                Vec::new()
            } else {
                // A failure is a 503: the provider delivers the webhook again.
                provider.fetch_events(&conversation_id).await.map_err(|e| {
                    tracing::warn!(bot_id = %bot_id, provider = %provider_id, error = %e, "reading the conversation from the provider failed");
                    ApiError::unavailable("the provider's conversation could not be read, retry")
                })?
            }
        }
    };
    let mut applied = 0;
    let mut ignored = 0;
    // Ids end up in DynamoDB keys: refuse absurd ones before touching the table.
    for e in &events {
        check_ids(Some(&e.event_id), &e.conversation_id)?;
    }
    let mut held = 0;
    for event in events {
        // Providers report conversations we never handed over (embedded providers see every
        // conversation): those are acknowledged and ignored, or the provider retries forever.
        let Some(mut link) = ctx
            .store
            .find_conversation(bot_id, provider_id, &event.conversation_id)
            .await?
        else {
            ignored += 1;
            continue;
        };
        // `broken-early-dropped` (test-only, shared/Cargo.toml) reverts the fix: a callback for
        // a start still in flight is acknowledged and ignored, so the provider never resends it.
        if link.pending && cfg!(feature = "broken-early-dropped") {
            ignored += 1;
            continue;
        }
        if link.pending {
            // The conversation's start is still in flight (the contact center answered the
            // agent before it answered us): the event is held for the commit, then the link
            // read again. Either the commit reads the held event after it, or this read sees
            // the commit: the event is never left to nobody, and its id applies it once.
            let now = ctx.clock.now();
            let expires = now + chrono::Duration::days(i64::from(bot.config.retention_days));
            // Due like the start's intent: should the start's function never apply it (a
            // failed step, a crash after the commit), the evaluator does then.
            let early = provider_events::early(
                &event,
                provider_id,
                &link.handover_id,
                super::start::due_after(ctx, now),
            );
            ctx.store.hold_early(&link.key, &early, expires).await?;
            match ctx
                .store
                .find_conversation(bot_id, provider_id, &event.conversation_id)
                .await?
            {
                Some(now) if !now.pending => link = now,
                _ => {
                    held += 1;
                    continue;
                }
            }
        }
        let idempotency = Some(provider_events::idempotency(bot_id, provider_id, &event.event_id));
        // The deliberately broken build of `make soak-broken`: repeats are applied again.
        #[cfg(feature = "soak-broken-idempotency")]
        let idempotency = idempotency.filter(|_| false);
        let command = Command {
            key: link.key,
            idempotency,
            input: Input {
                event_id: Some(event.event_id.clone()),
                ..Input::new(provider_events::to_event(event, link.handover_id))
            },
            create: Create::Forbidden,
            answer: Answer::Ack,
            deadline: Some(deadline),
            known: None,
        };
        engine::apply(ctx, &bot, command).await?;
        applied += 1;
    }
    let mut answer = json!({ "status": "ok", "applied": applied, "ignored": ignored });
    if skipped > 0 {
        answer["unreadable"] = json!(skipped);
    }
    if held > 0 {
        answer["held"] = json!(held);
    }
    Ok(json_response(200, &answer))
}

/// Refuses an absurd event or conversation id: they end up in DynamoDB keys.
fn check_ids(event_id: Option<&str>, conversation_id: &str) -> Result<(), ApiError> {
    let bad_event = event_id.is_some_and(|e| e.is_empty() || e.len() > MAX_ID_LEN);
    if bad_event || conversation_id.is_empty() || conversation_id.len() > MAX_ID_LEN {
        return Err(ApiError::bad_request(
            "invalid_callback",
            format!(
                "event id and conversation id must be 1-{MAX_ID_LEN} characters (got {:?})",
                event_id.unwrap_or(conversation_id).chars().take(40).collect::<String>()
            ),
        ));
    }
    Ok(())
}

fn callback_error(e: CallbackError) -> ApiError {
    match e {
        CallbackError::Unauthenticated(m) => ApiError::unauthorized(m),
        CallbackError::Malformed(m) => ApiError::bad_request("invalid_callback", m),
    }
}

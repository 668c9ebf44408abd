//! The provider-callback function: live-chat providers report agents joining, writing,
//! typing and closing here. Verified before parsing; idempotent on the provider's event id.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::bot_webhook::not_routed;
use super::context::AppContext;
use super::engine::{self, Answer, Command, Create, Idempotency};
use super::error::{ApiError, json_response};
use super::request::{body_bytes, query_pairs, route_path};
use super::routes::{self, Function};
use crate::domain::{Event, Input};
use crate::providers::{Callback, CallbackError, CallbackRequest, ProviderEvent, ProviderEventKind};

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
        return Err(not_routed(&path));
    };
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
    for event in events {
        // Providers report conversations we never handed over (embedded providers see every
        // conversation): those are acknowledged and ignored, or the provider retries forever.
        let Some(link) = ctx
            .store
            .find_conversation(bot_id, provider_id, &event.conversation_id)
            .await?
        else {
            ignored += 1;
            continue;
        };
        let idempotency = Some(Idempotency {
            scope: format!("provider:{bot_id}:{provider_id}"),
            event_id: event.event_id.clone(),
        });
        // The deliberately broken build of `make soak-broken`: repeats are applied again.
        #[cfg(feature = "soak-broken-idempotency")]
        let idempotency = idempotency.filter(|_| false);
        let command = Command {
            key: link.key,
            idempotency,
            input: Input {
                event_id: Some(event.event_id.clone()),
                ..Input::new(to_event(event, link.handover_id))
            },
            create: Create::Forbidden,
            answer: Answer::Ack,
            deadline: Some(deadline),
            known: None,
        };
        engine::apply(ctx, &bot, command).await?;
        applied += 1;
    }
    Ok(json_response(
        200,
        &json!({ "status": "ok", "applied": applied, "ignored": ignored }),
    ))
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

pub(crate) fn to_event(e: ProviderEvent, handover_id: String) -> Event {
    match e.kind {
        ProviderEventKind::AgentJoined { agent } => Event::AgentJoined { handover_id, agent },
        ProviderEventKind::AgentMessage { agent, message } => Event::AgentMessage {
            handover_id,
            agent,
            message,
        },
        ProviderEventKind::AutomatedMessage { agent, message } => Event::AutomatedMessage {
            handover_id,
            agent,
            message,
        },
        ProviderEventKind::AgentTyping { agent } => Event::AgentTyping { handover_id, agent },
        ProviderEventKind::ConversationClosed => Event::ConversationClosed { handover_id },
    }
}

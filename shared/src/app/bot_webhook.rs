//! The bot-webhook function: the one entry point for bot platforms. Every platform route is
//! driven the same way through the platform port (`platform::PlatformPort`): verify the raw
//! request, parse it into steps, apply each through the engine, answer with the last body.

use std::collections::BTreeSet;
use tokio::time::Instant;

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Answer, Applied, Command, Create, Idempotency};
use super::error::{ApiError, json_response};
use super::request::{body_bytes, query_pairs, route_path};
use super::routes::{self, Function};
use crate::bot::PlatformKind;
use crate::domain::{Event, Input, Outcome, Reply};
use crate::platform::{self, Events, Inbound, PlatformRequest, Rendering, Step, native};
use crate::store::SessionKey;

pub use crate::platform::native::session_read_signed_bytes;

/// Turns per commit when a batch of turns is applied. A transaction holds at most
/// [`crate::store::MAX_TRANSACTION_ITEMS`] items; a commit writes the session and the
/// idempotency marker, and each turn writes its transcript entry plus, while a handover is
/// active, the outbox item that mirrors it to the agent: (100 - 2) / 2 = 49 turns. (Size is
/// not the binding limit: a body is at most 256 KiB, far below a transaction's 4 MB.)
const TURNS_PER_COMMIT: usize = (crate::store::MAX_TRANSACTION_ITEMS - FIXED_ITEMS_PER_COMMIT) / ITEMS_PER_TURN_AT_MOST;
/// The session and the idempotency marker.
const FIXED_ITEMS_PER_COMMIT: usize = 2;
/// A transcript entry and its mirror.
const ITEMS_PER_TURN_AT_MOST: usize = 2;

/// The Lambda handler. Never fails: every error is a JSON response.
pub async fn handle(ctx: &AppContext, req: Request) -> Response<Body> {
    match route(ctx, &req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(ctx: &AppContext, req: &Request) -> Result<Response<Body>, ApiError> {
    let path = route_path(req);
    let method = req.method().as_str();
    let Some((route, params)) = routes::find(method, &path).filter(|(r, _)| r.function == Function::BotWebhook) else {
        return Err(routes::not_routed(&path));
    };
    let Some(kind) = route.platform else {
        return Err(routes::not_routed(&path));
    };
    let bot_id = &params["botId"];
    let body = body_bytes(req)?;
    let bot = ctx.bot(bot_id).await?;
    // Only bots of the route's platform have this entry point (a Chatlayer bot's token is not
    // a signing key, and the reverse).
    if bot.config.platform.kind != kind {
        return Err(ApiError::unauthorized(format!(
            "bot {bot_id:?} is not configured for the {kind:?} platform"
        )));
    }
    let port = platform::port(kind);
    let query = query_pairs(req);
    let request = PlatformRequest {
        method,
        path: &path,
        headers: req.headers(),
        query: &query,
        body,
    };
    let secret = bot.platform_signing_secret().await?;
    port.verify(&request, &secret, ctx.clock.now().timestamp())?;
    // The native contract's session read: a signed read, not an event.
    if kind == PlatformKind::Native
        && let Some(session_id) = params.get("sessionId")
    {
        return session(ctx, bot_id, session_id).await;
    }
    match port.parse(bot_id, &bot.config.platform, &request)? {
        Inbound::Probe => Ok(json_response(200, &json!({ "status": "ok" }))),
        Inbound::Events(events) => {
            let deadline = super::request::request_deadline(req, ctx.request_budget);
            let body = apply(ctx, &bot, events, deadline).await?;
            Ok(json_response(200, &body))
        }
    }
}

/// Applies a request's steps in order; the answer is the body of the last step applied, or
/// `{"status":"ok"}` when there was nothing to apply.
async fn apply(ctx: &AppContext, bot: &LoadedBot, events: Events, deadline: Instant) -> Result<Value, ApiError> {
    let key = SessionKey::new(&bot.config.bot_id, &events.session_id);
    let command = |input: Input, event_id: String, answer: Answer| Command {
        key: key.clone(),
        input,
        idempotency: Some(Idempotency {
            scope: events.scope.clone(),
            event_id,
        }),
        create: Create::Allowed,
        answer,
        deadline: Some(deadline),
        known: None,
    };
    let mut last: Option<Applied> = None;
    for step in &events.steps {
        match step {
            Step::Turns {
                turns,
                user,
                channel,
                context,
                event_id,
                only_new,
            } => {
                let stored = match only_new {
                    true => stored_event_ids(ctx, &key).await?,
                    false => BTreeSet::new(),
                };
                let turns: Vec<_> = turns
                    .iter()
                    .filter(|t| t.event_id.as_ref().is_none_or(|id| !stored.contains(id)))
                    .cloned()
                    .collect();
                for (i, chunk) in turns.chunks(TURNS_PER_COMMIT).enumerate() {
                    let input = Input {
                        user: user.clone(),
                        channel: channel.clone(),
                        context: context.clone(),
                        ..Input::new(Event::Messages(chunk.to_vec()))
                    };
                    let cmd = command(input, format!("{event_id}-{i}"), Answer::Platform(Rendering::Native));
                    last = Some(engine::apply(ctx, bot, cmd).await?);
                }
            }
            Step::Event {
                input,
                event_id,
                rendering,
                show_refusal_dialog,
            } => {
                let applied = engine::apply(
                    ctx,
                    bot,
                    command((**input).clone(), event_id.clone(), Answer::Platform(*rendering)),
                )
                .await?;
                if *show_refusal_dialog
                    && let Some(Reply::Handover {
                        outcome: Outcome::Closed | Outcome::Disabled,
                        dialog,
                        ..
                    }) = &applied.reply
                {
                    let show = Input {
                        context: input.context.clone(),
                        ..Input::new(Event::ShowDialog(dialog.clone()))
                    };
                    engine::apply(ctx, bot, command(show, format!("{event_id}-dialog"), Answer::Internal)).await?;
                }
                last = Some(applied);
            }
        }
    }
    Ok(last.map_or_else(|| json!({ "status": "ok" }), |a| a.body))
}

/// The event ids the session's transcript already holds (none for a new session).
async fn stored_event_ids(ctx: &AppContext, key: &SessionKey) -> Result<BTreeSet<String>, ApiError> {
    Ok(match ctx.store.load_session(key).await? {
        Some(_) => ctx
            .store
            .transcript(key, None)
            .await?
            .into_iter()
            .filter_map(|e| e.event_id)
            .collect(),
        None => BTreeSet::new(),
    })
}

async fn session(ctx: &AppContext, bot_id: &str, session_id: &str) -> Result<Response<Body>, ApiError> {
    let session = ctx
        .store
        .load_session(&SessionKey::new(bot_id, session_id))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_session", format!("no session {session_id:?}")))?;
    Ok(json_response(200, &native::session_body(&session.value)))
}

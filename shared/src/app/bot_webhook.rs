//! The bot-webhook function: the bot platform's entry point.

use lambda_http::{Body, Request, Response};

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Answer, Command, Create, Idempotency};
use super::error::{ApiError, json_response};
use super::request::{body_bytes, header, route_path};
use super::routes::{self, Function};
use crate::platform::native::{self, NativeEvent};
use crate::signing;
use crate::store::SessionKey;

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
    let bot_id = &params["botId"];
    match route.path {
        "/v1/bots/{botId}/events" => events(ctx, req, bot_id).await,
        "/v1/bots/{botId}/chatlayer" => super::chatlayer::handle(ctx, req, bot_id).await,
        _ => session(ctx, req, bot_id, &params["sessionId"]).await,
    }
}

/// Verifies the native signature on the raw body, before anything is parsed. Only bots on the
/// native platform have this entry point (a Chatlayer bot's token is not a signing key).
async fn verify(ctx: &AppContext, req: &Request, bot: &LoadedBot, body: &[u8]) -> Result<(), ApiError> {
    if bot.config.platform.kind != crate::config::PlatformKind::Native {
        return Err(ApiError::unauthorized("the bot does not use the native contract"));
    }
    let secret = bot.platform_signing_secret().await?;
    signing::verify(
        &secret,
        header(req, signing::TIMESTAMP_HEADER),
        header(req, signing::SIGNATURE_HEADER),
        body,
        ctx.clock.now().timestamp(),
    )
    .map_err(|e| ApiError::unauthorized(e.to_string()))
}

async fn events(ctx: &AppContext, req: &Request, bot_id: &str) -> Result<Response<Body>, ApiError> {
    let body = body_bytes(req)?;
    let bot = ctx.bot(bot_id).await?;
    verify(ctx, req, &bot, body).await?;
    let event: NativeEvent = super::request::parse_json(body)?;
    let (session_id, input) = event.into_input().map_err(|p| match p.oversize {
        true => ApiError::unprocessable("too_large", p.to_string()),
        false => ApiError::bad_request("invalid_request", p.to_string()),
    })?;
    let idem = Idempotency {
        scope: format!("bot:{bot_id}:{session_id}"),
        event_id: input.event_id.clone().unwrap_or_default(),
    };
    let command = Command {
        key: SessionKey::new(bot_id, &session_id),
        input,
        idempotency: Some(idem),
        create: Create::Allowed,
        answer: Answer::Native,
        deadline: Some(super::request::request_deadline(req, ctx.request_budget)),
        known: None,
    };
    let applied = engine::apply(ctx, &bot, command).await?;
    Ok(json_response(200, &applied.body))
}

/// What a session read signs instead of a body: its method and path (`GET /v1/bots/…`,
/// without any stage prefix), so a signature for one session cannot read another.
pub fn session_read_signed_bytes(path: &str) -> Vec<u8> {
    format!("GET {path}").into_bytes()
}

async fn session(ctx: &AppContext, req: &Request, bot_id: &str, session_id: &str) -> Result<Response<Body>, ApiError> {
    body_bytes(req)?;
    let bot = ctx.bot(bot_id).await?;
    verify(ctx, req, &bot, &session_read_signed_bytes(&route_path(req))).await?;
    let session = ctx
        .store
        .load_session(&SessionKey::new(bot_id, session_id))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_session", format!("no session {session_id:?}")))?;
    Ok(json_response(200, &native::session_body(&session.value)))
}

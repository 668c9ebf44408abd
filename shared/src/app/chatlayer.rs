//! `GET|POST /v1/bots/{botId}/chatlayer`: Chatlayer's Offloading Webhook contract.

use std::collections::BTreeSet;
use tokio::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::bots::LoadedBot;
use super::context::AppContext;
use super::engine::{self, Answer, Applied, Command, Create, Idempotency};
use super::error::{ApiError, json_response};
use super::request::body_bytes;
use crate::config::PlatformKind;
use crate::domain::{Event, Input, Outcome, Reply, Turn};
use crate::platform::chatlayer::{
    self, ChatlayerEvent, URL_TOKEN_PARAM, VERIFY_TOKEN_PARAM, body_id, handover_request, new_turns, user_info,
};
use crate::platform::native;
use crate::store::SessionKey;

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

pub async fn handle(ctx: &AppContext, req: &Request, bot_id: &str) -> Result<Response<Body>, ApiError> {
    let body = body_bytes(req)?;
    let bot = ctx.bot(bot_id).await?;
    if bot.config.platform.kind != PlatformKind::Chatlayer {
        return Err(ApiError::unauthorized(format!(
            "bot {bot_id:?} is not configured for Chatlayer"
        )));
    }
    verify(req, &bot).await?;
    if req.method() == "GET" {
        return Ok(json_response(200, &json!({ "status": "ok" })));
    }
    let event: ChatlayerEvent = super::request::parse_json(body)?;
    if event.session_id.is_empty() || event.session_id.len() > native::MAX_ID_LEN || event.session_id.contains('#') {
        return Err(ApiError::bad_request(
            "invalid_request",
            "sessionId: must be 1-128 characters without '#'",
        ));
    }
    check_sizes(&event)?;
    let key = SessionKey::new(bot_id, &event.session_id);
    let id = body_id(body);
    let call = Call {
        key: &key,
        ev: &event,
        id: &id,
        deadline: super::request::request_deadline(req, ctx.request_budget),
    };
    match event.event.as_str() {
        "messages" => messages(ctx, &bot, &call).await,
        "offload" => offload(ctx, &bot, &call).await,
        other => Err(ApiError::bad_request(
            "unknown_event",
            format!("event: unknown event {other:?}; expected \"messages\" or \"offload\""),
        )),
    }
}

/// Chatlayer's fields within the limits every caller keeps (`domain::limits`): refused with
/// 422 `too_large` naming the field, before anything is stored.
fn check_sizes(ev: &ChatlayerEvent) -> Result<(), ApiError> {
    use crate::domain::limits;
    let too_large = |o: limits::Oversize| ApiError::unprocessable("too_large", o.to_string());
    limits::check_channel("channel", ev.channel.as_deref()).map_err(too_large)?;
    limits::check_name("botId", ev.bot_id.as_deref()).map_err(too_large)?;
    limits::check_name("version", ev.version.as_deref()).map_err(too_large)?;
    for (list, items) in [("messages", &ev.messages), ("transcript", &ev.transcript)] {
        for (i, item) in items.iter().enumerate() {
            if let Some(turn) = chatlayer::turn_of(item) {
                limits::check_message(&format!("{list}[{i}].message"), &turn.message).map_err(too_large)?;
            }
        }
    }
    Ok(())
}

/// The verify token, from Chatlayer's documented query parameter or the `token` parameter the
/// operator put in the configured URL, compared in constant time.
async fn verify(req: &Request, bot: &LoadedBot) -> Result<(), ApiError> {
    let expected = bot.platform_signing_secret().await?;
    let q = req.query_string_parameters();
    let ok = [VERIFY_TOKEN_PARAM, URL_TOKEN_PARAM]
        .iter()
        .filter_map(|p| q.first(p))
        .any(|given| bool::from(given.as_bytes().ct_eq(&expected)));
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized("missing or wrong verify token"))
    }
}

fn input(event: Event, ev: &ChatlayerEvent, items: &[chatlayer::Item]) -> Input {
    Input {
        user: user_info(items),
        channel: ev.channel.clone(),
        context: ev.context(),
        ..Input::new(event)
    }
}

/// One Chatlayer event being applied: its session, body, idempotency id and deadline.
struct Call<'a> {
    key: &'a SessionKey,
    ev: &'a ChatlayerEvent,
    id: &'a str,
    deadline: Instant,
}

impl Call<'_> {
    fn command(&self, input: Input, event_id: String, answer: Answer) -> Command {
        Command {
            key: self.key.clone(),
            input,
            idempotency: Some(Idempotency {
                scope: scope(self.key),
                event_id,
            }),
            create: Create::Allowed,
            answer,
            deadline: Some(self.deadline),
            known: None,
        }
    }
}

async fn apply_turns(
    ctx: &AppContext,
    bot: &LoadedBot,
    call: &Call<'_>,
    items: &[chatlayer::Item],
    turns: Vec<Turn>,
) -> Result<Option<Applied>, ApiError> {
    let mut last = None;
    for (i, chunk) in turns.chunks(TURNS_PER_COMMIT).enumerate() {
        let input = input(Event::Messages(chunk.to_vec()), call.ev, items);
        let command = call.command(input, format!("{}-{i}", call.id), Answer::Native);
        last = Some(engine::apply(ctx, bot, command).await?);
    }
    Ok(last)
}

async fn messages(ctx: &AppContext, bot: &LoadedBot, call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let ev = call.ev;
    let turns: Vec<Turn> = ev.messages.iter().filter_map(chatlayer::turn_of).collect();
    match apply_turns(ctx, bot, call, &ev.messages, turns).await? {
        Some(applied) => Ok(json_response(200, &applied.body)),
        // Only content-free items (the widget's intro): acknowledged, nothing to store.
        None => Ok(json_response(200, &json!({ "status": "ok" }))),
    }
}

async fn offload(ctx: &AppContext, bot: &LoadedBot, call: &Call<'_>) -> Result<Response<Body>, ApiError> {
    let (key, ev) = (call.key, call.ev);
    let request = handover_request(ev.payload.as_ref()).map_err(|m| ApiError::bad_request("invalid_request", m))?;
    crate::domain::limits::check_request("payload", &request)
        .map_err(|o| ApiError::unprocessable("too_large", o.to_string()))?;
    // The transcript repeats what `messages` already brought: only the rest is added.
    let stored: BTreeSet<String> = match ctx.store.load_session(key).await? {
        Some(_) => ctx
            .store
            .transcript(key, None)
            .await?
            .into_iter()
            .filter_map(|e| e.event_id)
            .collect(),
        None => BTreeSet::new(),
    };
    let turns = new_turns(&ev.transcript, &stored);
    apply_turns(ctx, bot, call, &ev.transcript, turns).await?;

    let input = input(Event::HandoverRequested(request), ev, &ev.transcript);
    let answer = Answer::ChatlayerOffload(bot.config.platform.pause_at());
    let applied = engine::apply(ctx, bot, call.command(input, call.id.to_owned(), answer)).await?;
    // Closed or disabled: Chatlayer is told it did not succeed, and the user gets our dialog
    // through the API, so they always see the matching text.
    if let Some(Reply::Handover {
        outcome: Outcome::Closed | Outcome::Disabled,
        dialog,
        ..
    }) = &applied.reply
    {
        let show = Input {
            context: ev.context(),
            ..Input::new(Event::ShowDialog(dialog.clone()))
        };
        engine::apply(
            ctx,
            bot,
            call.command(show, format!("{}-dialog", call.id), Answer::Internal),
        )
        .await?;
    }
    Ok(json_response(200, &applied.body))
}

/// Idempotency scope: per session, so equal bodies of different sessions never collide.
fn scope(key: &SessionKey) -> String {
    format!("chatlayer:{}:{}", key.bot_id, key.session_id)
}

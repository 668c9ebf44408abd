//! Chatlayer (by Sinch) as a bot platform, through its Offloading Webhook contract: handover is
//! the bot's "Webhook" offloading provider and relays to whichever live-chat provider the
//! bot's routing picks.
//!
//! Verified against Chatlayer's public documentation (docs/chatlayer.md lists the sources):
//! the health check, the `messages` and `offload` events, the `offloadSuccess`/`pauseBot`
//! answer, the message formats and the conversation-actions call that sends messages. Not
//! documented by Chatlayer, and therefore isolated here behind configuration: the pause and
//! resume requests (`platform.pauseAction` / `platform.resumeAction`), and whether the verify
//! token accompanies `offload` posts (the `token` URL parameter covers both cases).
//!
//! The adapter in parts, like a provider's folder: `settings` (the API host, the token
//! parameters, the session context keys), `wire` (what Chatlayer posts, as typed structs, and the
//! ids we derive from it), `inbound` (its events read into the core's turns and handover
//! request), `outbound` (the answer to `offload` and the conversation-actions calls the outbox
//! makes).

mod inbound;
mod outbound;
mod settings;
mod wire;

pub use inbound::{ChatlayerPort, bot_message, handover_request, new_turns, turn_of, user_info, user_message};
pub use outbound::{ChatlayerPlatform, offload_answer, send_messages};
pub use settings::{
    API_TOKEN_FIELD, CTX_BOT_ID, CTX_EMBEDDED, CTX_VERSION, DEFAULT_API_BASE, ROUTES, URL_TOKEN_PARAM,
    VERIFY_TOKEN_FIELD, VERIFY_TOKEN_PARAM,
};
pub use wire::{ChatlayerEvent, Item, body_id, fingerprint};

//! Chatlayer's fixed names: its API host, where the verify token comes, and what the session
//! remembers to address the conversation later.

use crate::platform::PlatformRoute;

/// The Offloading Webhook's one URL: `GET` is its health check, `POST` its events.
pub const ROUTES: &[PlatformRoute] = &[
    PlatformRoute {
        method: "GET",
        path: "/v1/bots/{botId}/chatlayer",
    },
    PlatformRoute {
        method: "POST",
        path: "/v1/bots/{botId}/chatlayer",
    },
];

/// The field of the bot's platform secret holding the verify token the requests carry.
pub const VERIFY_TOKEN_FIELD: &str = "verifyToken";
/// The field of the bot's platform secret holding the token of Chatlayer's API.
pub const API_TOKEN_FIELD: &str = "apiToken";

/// Chatlayer's EU API host; US and Asia hosts are set with `platform.apiBaseUrl`.
pub const DEFAULT_API_BASE: &str = "https://api.chatlayer.ai";
/// The query parameter Chatlayer documents for the verify token.
pub const VERIFY_TOKEN_PARAM: &str = "challenge.verifyToken";
/// A parameter the operator adds to the configured URL, so that every request carries the
/// token even where Chatlayer does not document adding it (the `offload` event).
pub const URL_TOKEN_PARAM: &str = "token";
/// Keys of the session's platform context.
pub const CTX_BOT_ID: &str = "chatlayerBotId";
pub const CTX_VERSION: &str = "chatlayerVersion";
/// The embedded provider conversation of the last offload (`payload.providerConversationId`),
/// empty when the offload named none: an agent's message in such a conversation already
/// reaches the user through the provider's own channel.
pub const CTX_EMBEDDED: &str = "chatlayerEmbeddedConversation";

//! The imperative shell: load → decide → commit → deliver. The Lambda handlers are plain async
//! functions of a context and a request, so tests and `handover serve` call exactly what
//! Lambda calls.

pub mod bot_webhook;
pub mod bots;
pub mod command;
pub mod context;
pub mod engine;
pub mod erase;
pub mod error;
pub mod evaluator;
pub mod health;
pub mod local;
pub mod logging;
pub mod outbox;
pub mod provider_callback;
pub mod provider_events;
pub mod request;
pub mod routes;
pub mod start;

pub use context::AppContext;
pub use error::ApiError;

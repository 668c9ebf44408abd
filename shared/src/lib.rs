//! handover: hands a chatbot conversation over to a human agent on a live-chat platform, and
//! back to the bot when the agent is done.
//!
//! The crate is a functional core ([`domain`], [`hours`]) inside an imperative shell ([`app`]),
//! with ports for storage ([`store`]), secrets ([`secrets`]), live-chat providers
//! ([`providers`]) and bot platforms ([`platform`]). The Lambda binaries and the CLI only wire
//! these together.

pub mod app;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod kit;
pub mod metrics;
pub mod platform;
pub mod providers;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod tls;
pub mod url_policy;

/// The functional core, a crate of its own ([`handover_core`]) that cannot perform I/O; its
/// modules keep their paths here.
pub use handover_core::{bot, domain, hours};

#[cfg(test)]
mod tests;

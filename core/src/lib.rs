//! The functional core of handover, as a crate of its own so that its purity holds by
//! construction: nothing here can perform I/O, read a clock or call a provider, because none of
//! the crates that could (an async runtime, an HTTP client, the AWS SDK) is a dependency.
//!
//! - [`bot`]: the bot document as data and the compiled [`bot::Bot`] the core decides on;
//! - [`hours`]: opening hours, holidays and "next opening";
//! - [`domain`]: the state machine (`decide`, `started`), sessions, handovers, effects,
//!   dialogs, routing, availability.
//!
//! The library `handover` re-exports these modules under the same names.

pub mod bot;
pub mod domain;
pub mod hours;

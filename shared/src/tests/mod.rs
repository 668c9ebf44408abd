//! Unit tests of the library that span the core crate and the shell.

/// The core's behaviour (`handover_core::domain`), with bots compiled as the shell compiles
/// them: each provider's traits come from its adapter, so the core is checked against the
/// models the providers really declare.
mod domain;

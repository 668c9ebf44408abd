//! What every provider adapter shares, so each adapter keeps only what is specific to its
//! provider: reading its settings from the bot document ([`settings`]) and turning the HTML
//! agents write into text and back ([`text`]). Signatures are in `providers/sig.rs`, tokens
//! in `providers/oauth.rs`.

pub mod settings;
pub mod text;

//! What every provider adapter shares, so each adapter keeps only what is specific to its
//! provider: calling its API with its authentication ([`http`]), checking the authentication
//! of its callbacks ([`callback_auth`]), reading its settings from the bot document
//! ([`settings`]) and turning the HTML agents write into text and back ([`text`]), and reading ids sent as strings or numbers ([`wire`]). OAuth
//! tokens are cached in `providers/oauth.rs`.

pub mod callback_auth;
pub mod http;
pub mod settings;
#[cfg(test)]
pub mod testing;
pub mod text;
pub mod wire;

//! The adapter kit: what the adapters on both sides (live-chat providers and bot platforms)
//! share, so each adapter keeps only what is specific to it: calling its API with its authentication ([`http`]), checking the authentication
//! of its callbacks ([`callback_auth`]), reading its settings from the bot document
//! ([`settings`]) and turning the HTML agents write into text and back ([`text`]), and reading ids sent as strings or numbers ([`wire`]). OAuth
//! tokens are cached in [`oauth`], small bounded caches are [`memo`]. It imports neither
//! `providers` nor `platform`.

pub mod callback_auth;
pub mod http;
pub mod memo;
pub mod oauth;
pub mod settings;
pub mod text;
pub mod wire;

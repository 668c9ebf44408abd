//! The integration tests: one binary (one link step, one emulator process shared by every
//! test, a fresh table per test), one module per area.

mod availability;
mod bad_input;
mod chatlayer;
mod code_map;
mod concurrency;
mod conformance;
mod deployment;
mod docs;
mod documented;
mod evaluator_scale;
mod fuzz;
mod hardening;
mod honesty;
mod lambda_runtime;
mod log_scan;
mod metrics;
mod outbound_retry;
mod prompt;
mod provider_engage;
mod provider_genesys;
mod provider_helpscout;
mod provider_interact;
mod provider_intercom;
mod provider_sparkcentral;
mod provider_zendesk;
mod round_trips;
mod seams;
mod shell;
mod soak;
mod stack;
mod stats;
mod store_conformance;
mod webhook_flow;

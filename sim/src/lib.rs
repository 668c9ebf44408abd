//! The deterministic simulator: the real handlers of the service (bot events, provider
//! callbacks, the evaluator) run as concurrent "invocations" on virtual time, against the
//! in-memory store and models of each provider behaviour and of the bot platform, with faults
//! injected at every await point of the store, the provider and the platform. After each run
//! the promises of the service are checked (see [`check`]).
//!
//! Determinism: one seed draws every choice, the runtime is single-threaded with tokio's
//! paused clock (time moves only when every task waits, by exactly the next timer), the store
//! and the models keep ordered maps, and the engine's own random draws (retry jitter) use the
//! thread's `fastrand` generator, seeded from the run's seed. A run of a seed is therefore the
//! same run every time; its trace (`--trace`) replays what happened, step by step.

pub mod check;
pub mod known;
pub mod models;
pub mod store;
pub mod world;

use std::collections::BTreeMap;

pub use world::Options;

/// Which provider behaviour a run models; each is configured as the provider kind whose traits
/// it has, and answered by a model of that behaviour (see [`models::Desk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// The conversation is filed under our handover id; opening it again is idempotent (the
    /// generic webhook).
    HandoverId,
    /// The conversation exists before the handover (the user's messaging conversation) and is
    /// named in the request; a start passes control to the agents (Zendesk/SunCo).
    Embedded,
    /// The provider names a new conversation in its answer; every create makes another one
    /// (Help Scout).
    Created,
    /// Joins and closes are not pushed but read by polling (Genesys without push).
    Polled,
    /// The conversation is embedded and an agent is assigned as the start is accepted
    /// (Sparkcentral).
    JoinAtStart,
}

impl Model {
    pub const ALL: [Model; 5] = [
        Model::HandoverId,
        Model::Embedded,
        Model::Created,
        Model::Polled,
        Model::JoinAtStart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::HandoverId => "handover-id (webhook)",
            Model::Embedded => "embedded id (zendesk)",
            Model::Created => "created id (help scout)",
            Model::Polled => "polled (genesys)",
            Model::JoinAtStart => "join at start (sparkcentral)",
        }
    }

    /// The model a seed runs: every model in turn.
    pub fn of_seed(seed: u64) -> Model {
        Model::ALL[(seed % Model::ALL.len() as u64) as usize]
    }
}

/// What one run did and found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub seed: u64,
    pub model: Option<Model>,
    /// Handovers asked for.
    pub lifecycles: u64,
    /// Handler invocations (bot events, callbacks, evaluator runs).
    pub invocations: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Broken promises, each a sentence naming the session or conversation.
    pub violations: Vec<String>,
    /// What happened, in order (kept only when asked for).
    pub trace: Vec<String>,
    /// A fingerprint of the trace: equal for two runs of one seed.
    pub fingerprint: u64,
    /// Relay latencies measured on clean lanes, in milliseconds of virtual time.
    pub latencies_ms: Vec<u64>,
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Outcome {
    world::run(seed, options)
}

/// The short run (`make test`): seeds 1 to [`known::SHORT_SEEDS`] with the default options,
/// one after the other. Returns every outcome.
pub fn short(options: &Options) -> Vec<Outcome> {
    (1..=known::SHORT_SEEDS).map(|seed| run(seed, options)).collect()
}

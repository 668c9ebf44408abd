//! The simulator's short run, part of `make test`: every seed of the short range through the
//! real engine with every fault, and no promise broken beyond the known findings
//! (sim/src/known.rs). `make sim-broken` shows that each round-3 seam fix, reverted, breaks
//! one within this range.

use handover_sim::known::{KNOWN, SHORT_SEEDS, is_known};
use handover_sim::{Options, run, short};

#[test]
fn a_short_run_breaks_no_promise_beyond_the_known_findings() {
    let outcomes = short(&Options::default());
    let lifecycles: u64 = outcomes.iter().map(|o| o.lifecycles).sum();
    let faults: u64 = outcomes.iter().flat_map(|o| o.faults.values()).sum();
    assert!(
        lifecycles >= 1_500,
        "only {lifecycles} lifecycles in {SHORT_SEEDS} seeds"
    );
    assert!(faults >= 2_000, "only {faults} faults injected");
    let new: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.violations.is_empty() && !is_known(o.seed))
        .map(|o| {
            format!(
                "seed {}: {} (replay: cargo run --profile sim -p handover-sim -- --replay {})",
                o.seed, o.violations[0], o.seed
            )
        })
        .collect();
    assert!(new.is_empty(), "promises broken:\n{}", new.join("\n"));
    let fixed: Vec<u64> = KNOWN
        .iter()
        .map(|(seed, _)| *seed)
        .filter(|seed| outcomes.iter().any(|o| o.seed == *seed && o.violations.is_empty()))
        .collect();
    if !fixed.is_empty() {
        eprintln!("known findings that no longer break a promise (remove from known.rs): {fixed:?}");
    }
}

#[test]
fn a_seed_replays_exactly_and_another_seed_differs() {
    let options = Options::default();
    let (a, b, c) = (run(7, &options), run(7, &options), run(8, &options));
    assert_eq!(a.fingerprint, b.fingerprint, "one seed, one run");
    assert_eq!(a.violations, b.violations);
    assert_ne!(a.fingerprint, c.fingerprint, "another seed, another run");
}

#[test]
fn the_findings_of_full_runs_stay_fixed() {
    let options = Options::default();
    let broken: Vec<String> = handover_sim::known::FIXED_IN_FULL_RUNS
        .iter()
        .filter_map(|(seed, finding)| {
            let outcome = run(*seed, &options);
            (!outcome.violations.is_empty()).then(|| format!("seed {seed} ({finding}): {}", outcome.violations[0]))
        })
        .collect();
    assert!(broken.is_empty(), "fixed findings broken again:\n{}", broken.join("\n"));
}

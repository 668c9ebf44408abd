//! The short soak of `make test` (the long one is `make soak`; see docs/reliability.md):
//! random lifecycles under random faults, then every invariant checked.

use handover_tests::soak::{self, FAULT_KINDS};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_soak_under_faults_loses_duplicates_and_reorders_nothing() {
    let report = soak::run(&soak::Config::short(20261203)).await;
    println!("{}", report.table());
    assert!(report.ok(), "{}\n{}", report.table(), report.violations.join("\n"));
    // It cannot pass by doing nothing: handovers ran, messages went both ways, and every kind
    // of fault happened at least once.
    assert!(report.handovers >= report.sessions / 4, "{}", report.table());
    assert!(report.to_agent > 0 && report.to_bot > 0, "{}", report.table());
    for kind in FAULT_KINDS {
        assert!(
            report.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind:?} was injected:\n{}",
            report.table()
        );
    }
}

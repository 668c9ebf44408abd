//! The short soak of `make test` (the long one is `make soak`; see docs/reliability.md):
//! random lifecycles under random faults, then every invariant checked, and the minimums
//! `make soak` enforces, so the run cannot pass by doing nothing.

use handover_tests::soak::{self, Bound, Minimum, Report, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_soak_under_faults_loses_duplicates_and_reorders_nothing() {
    let report = soak::run(&soak::Config::short(20261203)).await;
    println!("{}\n{}", report.table(), report.minimums_table());
    assert!(report.ok(), "{}\n{}", report.table(), report.violations.join("\n"));
    assert_eq!(
        report.shortfalls(),
        Vec::<String>::new(),
        "{}\n{}",
        report.minimums_table(),
        report.never_opened_lines.join("\n")
    );
    assert_eq!(report.verdict(), Verdict::Passed);
}

/// The verdict the soak binary turns into its exit code: a violation wins over a shortfall,
/// and an empty run is never a pass.
#[test]
fn an_empty_run_is_too_little_tested_and_a_violation_is_a_violation() {
    let empty = Report {
        sessions: 24,
        ..Report::default()
    };
    assert!(empty.ok(), "nothing was violated");
    assert_eq!(empty.verdict(), Verdict::TooLittleTested);
    assert_eq!(Verdict::TooLittleTested.exit_code(), 4);
    let shortfalls = empty.shortfalls();
    for wanted in [
        "handovers opened: 0, at least 22",
        "fault met by the service: provider hang: 0, at least 1",
        "handovers opened after a kill-switch refusal: 0, at least 1",
        "cancels applied: 0, at least 1",
        "service metric OutboxRetried (provider): 0, at least 1",
        "cancels during the start applied: 0, at least 1",
        "fault met by the service: crash before commit: 0, at least 1",
        "fault met by the service: callback before the start's answer: 0, at least 1",
    ] {
        assert!(
            shortfalls.iter().any(|s| s == wanted),
            "{wanted:?} not in {shortfalls:#?}"
        );
    }

    let duplicated = Report {
        duplicated: 1,
        ..empty.clone()
    };
    assert_eq!(duplicated.verdict(), Verdict::InvariantViolated);
    assert_eq!(Verdict::InvariantViolated.exit_code(), 3);
    let wrong_end = Report {
        wrong_end_reason: 1,
        ..empty.clone()
    };
    assert_eq!(wrong_end.verdict(), Verdict::InvariantViolated);
    // Each seam invariant is one, and names itself as what caught a broken build.
    let intent_left = Report {
        intents_left: 2,
        ..empty.clone()
    };
    assert_eq!(intent_left.verdict(), Verdict::InvariantViolated);
    assert_eq!(
        intent_left.caught_by(),
        vec!["start intents left behind (2)".to_owned()]
    );

    // Sessions that never open are bounded: one in ten at most.
    let never = |n: usize| {
        Report {
            never_opened: n,
            ..empty.clone()
        }
        .minimums()
        .into_iter()
        .find(|m| m.what == "sessions that never opened one")
        .unwrap()
    };
    assert_eq!(
        never(2),
        Minimum {
            what: "sessions that never opened one".into(),
            got: 2,
            bound: Bound::AtMost(2)
        }
    );
    assert!(never(2).met());
    assert!(!never(3).met());
}

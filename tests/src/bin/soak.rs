//! `make soak`: the fault-injection soak of tests/src/soak.rs with its tables printed.
//!
//! `soak [--seed N] [--sessions N] [--concurrency N] [--fault-rate P]`
//!
//! Exit codes (docs/reliability.md): 0 every invariant held and every minimum was met;
//! 2 a bad argument; 3 an invariant was violated (lost, duplicated, out of order, unended,
//! left open, still waiting, a wrong end reason, an unexpected answer); 4 nothing was violated
//! but the run missed a minimum of what it must exercise; 101 a panic. `make soak-broken`
//! accepts only 3 with duplicates reported.

use handover_tests::soak::{self, Config, EXIT_BAD_ARGUMENT, Verdict};

fn main() {
    let mut cfg = Config {
        seed: 1,
        sessions: 150,
        concurrency: 12,
        fault_rate: 0.15,
        hang_share: 0.03,
        crash_rate: 0.05,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!("soak: {flag} {value:?}: expected --seed N, --sessions N, --concurrency N or --fault-rate P");
            std::process::exit(EXIT_BAD_ARGUMENT)
        };
        match flag.as_str() {
            "--seed" => cfg.seed = value.parse().unwrap_or_else(|_| bad()),
            "--sessions" => cfg.sessions = value.parse().ok().filter(|n| *n > 0).unwrap_or_else(|| bad()),
            "--concurrency" => cfg.concurrency = value.parse().ok().filter(|n| *n > 0).unwrap_or_else(|| bad()),
            "--fault-rate" => {
                cfg.fault_rate = value
                    .parse()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .unwrap_or_else(|| bad())
            }
            _ => bad(),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(soak::run(&cfg));
    println!("{}", report.table());
    println!("{}", report.minimums_table());
    for line in &report.never_opened_lines {
        println!("never opened: {line}");
    }
    let verdict = report.verdict();
    match verdict {
        Verdict::Passed => println!(
            "soak passed: nothing lost, duplicated or out of order, every minimum met. Reproduce with `make soak SEED={} SESSIONS={}`.",
            cfg.seed, cfg.sessions
        ),
        Verdict::InvariantViolated => {
            println!("soak FAILED: invariant violated");
            for v in &report.violations {
                println!("  {v}");
            }
        }
        Verdict::TooLittleTested => {
            println!("soak FAILED: too little tested");
            for s in report.shortfalls() {
                println!("  {s}");
            }
        }
    }
    std::process::exit(verdict.exit_code());
}

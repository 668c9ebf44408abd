//! `make soak`: the fault-injection soak of tests/src/soak.rs with its table printed.
//!
//! `soak [--seed N] [--sessions N] [--concurrency N] [--fault-rate P]` — exits 1 on any
//! violation, 2 on a bad argument.

use handover_tests::soak::{self, Config};

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
            std::process::exit(2)
        };
        match flag.as_str() {
            "--seed" => cfg.seed = value.parse().unwrap_or_else(|_| bad()),
            "--sessions" => cfg.sessions = value.parse().unwrap_or_else(|_| bad()),
            "--concurrency" => cfg.concurrency = value.parse().unwrap_or_else(|_| bad()),
            "--fault-rate" => cfg.fault_rate = value.parse().unwrap_or_else(|_| bad()),
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
    if report.ok() {
        println!(
            "soak passed: nothing lost, duplicated or out of order. Reproduce with `make soak SEED={} SESSIONS={}`.",
            cfg.seed, cfg.sessions
        );
    } else {
        println!("soak FAILED:");
        for v in &report.violations {
            println!("  {v}");
        }
        std::process::exit(1);
    }
}

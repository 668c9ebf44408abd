//! `make soak`: the fault-injection soak of tests/src/soak.rs with its tables printed.
//!
//! `soak [--seed N] [--sessions N] [--concurrency N] [--fault-rate P] [--write-doc NAME]`
//!
//! `--write-doc NAME` also writes the tables, the verdict and the first violations between the
//! `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers of docs/reliability.md, with the
//! command, date and commit (`make soak` writes `soak`, `make soak-broken` writes
//! `soak-broken-<variant>`).
//!
//! Exit codes (docs/reliability.md): 0 every invariant held and every minimum was met;
//! 2 a bad argument; 3 an invariant was violated (lost, duplicated, out of order, unended,
//! left open, still waiting, a wrong end reason, an unexpected answer); 4 nothing was violated
//! but the run missed a minimum of what it must exercise; 101 a panic. `make soak-broken`
//! accepts only 3, and prints the `caught by:` line (the invariants violated).

use handover_tests::doc_block;
use handover_tests::soak::{self, Config, EXIT_BAD_ARGUMENT, Report, Verdict};

fn main() {
    let mut cfg = Config {
        seed: 1,
        sessions: 150,
        concurrency: 12,
        fault_rate: 0.15,
        hang_share: 0.03,
        crash_rate: 0.05,
    };
    let mut write_doc: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let bad = || -> ! {
            eprintln!(
                "soak: {flag} {value:?}: expected --seed N, --sessions N, --concurrency N, --fault-rate P or --write-doc NAME"
            );
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
            "--write-doc" if value == "soak" || value.starts_with("soak-broken-") => write_doc = Some(value),
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
            println!("caught by: {}", report.caught_by().join(", "));
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
    if let Some(name) = write_doc {
        let page = doc_block::doc_path("reliability.md");
        if let Err(e) = doc_block::write_block(&page, &name, &doc_section(&cfg, &report, verdict)) {
            eprintln!("soak: the report was not written: {e}");
        }
    }
    std::process::exit(verdict.exit_code());
}

/// What `--write-doc` puts between the markers.
fn doc_section(cfg: &Config, report: &Report, verdict: Verdict) -> String {
    let features = match broken_variant() {
        Some(v) => format!(" --features broken-{v}"),
        None => String::new(),
    };
    let command = format!(
        "cargo run -p handover-tests{features} --bin soak -- --seed {} --sessions {}",
        cfg.seed, cfg.sessions
    );
    let outcome = match verdict {
        Verdict::Passed => "passed".to_owned(),
        Verdict::InvariantViolated => "invariant violated".to_owned(),
        Verdict::TooLittleTested => "too little tested".to_owned(),
    };
    let mut s = format!(
        "{} Concurrency {}, fault rate {}. Verdict: **{outcome}** (exit {}).\n\n{}\n{}",
        doc_block::provenance(&command),
        cfg.concurrency,
        cfg.fault_rate,
        verdict.exit_code(),
        report.table(),
        report.minimums_table()
    );
    if !report.caught_by().is_empty() {
        s.push_str(&format!("\nCaught by: {}.\n", report.caught_by().join(", ")));
    }
    if !report.violations.is_empty() {
        s.push_str("\nViolations (at most ten shown):\n\n```\n");
        for v in report.violations.iter().take(10) {
            s.push_str(&format!("{v}\n"));
        }
        s.push_str("```\n");
    }
    s
}

/// The fix this build reverts (tests/Cargo.toml features), if any.
fn broken_variant() -> Option<&'static str> {
    [
        (cfg!(feature = "broken-idempotency"), "idempotency"),
        (cfg!(feature = "broken-wrong-id-abandon"), "wrong-id-abandon"),
        (cfg!(feature = "broken-early-dropped"), "early-dropped"),
        (cfg!(feature = "broken-4xx-one-sided"), "4xx-one-sided"),
        (cfg!(feature = "broken-cancel-refused"), "cancel-refused"),
        (cfg!(feature = "broken-no-intent"), "no-intent"),
    ]
    .into_iter()
    .find_map(|(on, name)| on.then_some(name))
}

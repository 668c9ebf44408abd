//! `make sim`: many seeded runs of the simulator across every provider model, on every core,
//! with a summary of lifecycles, faults and findings; a failing seed is printed with the
//! command that replays it with its trace.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use handover_sim::{Model, Options, Outcome, run};

/// A failure of the tool itself (not of a run): a message and exit code 2.
type Result<T> = std::result::Result<T, String>;

#[derive(Parser, Debug)]
#[command(about = "Deterministic simulation of the handover engine")]
struct Args {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many lifecycles (handovers asked for).
    #[arg(long, default_value_t = 10_000)]
    lifecycles: u64,
    /// Stop after this many seconds, whatever the count.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Replay one seed and print its trace.
    #[arg(long)]
    replay: Option<u64>,
    /// Sessions per run.
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Deliveries without draining their lanes (the previous release).
    #[arg(long)]
    no_drain: bool,
    /// Run exactly the short range (the seeds of `make test`) and fail only on a broken promise
    /// that is not a known finding.
    #[arg(long)]
    short: bool,
    /// Write the result table between the markers of this file (docs/reliability.md).
    #[arg(long)]
    write_doc: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    match real_main(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(3),
        Err(e) => {
            eprintln!("sim: {e}");
            std::process::exit(2);
        }
    }
}

fn options(args: &Args) -> Options {
    Options {
        sessions: args.sessions,
        drain: !args.no_drain,
        ..Options::default()
    }
}

fn real_main(args: &Args) -> Result<bool> {
    if let Some(seed) = args.replay {
        // The engine's own log of a replayed run, for reading it step by step
        // (`SIM_LOG=debug`); message text is never logged, as in production.
        if let Ok(level) = std::env::var("SIM_LOG") {
            handover::app::logging::install(&level, std::io::stderr).map_err(|e| e.to_string())?;
        }
        let o = run(
            seed,
            &Options {
                trace: true,
                ..options(args)
            },
        );
        for line in &o.trace {
            println!("{line}");
        }
        print_violations(&o);
        return Ok(o.violations.is_empty());
    }
    if args.short {
        let started = Instant::now();
        let mut t = Totals::default();
        for o in handover_sim::short(&options(args)) {
            t.add(&o);
        }
        println!("{}", t.report(args, 1, started.elapsed().as_secs_f64()));
        return Ok(t.new_failures() == 0);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .max(1);
    let started = Instant::now();
    let next_seed = Arc::new(AtomicU64::new(args.seed));
    let lifecycles = Arc::new(AtomicU64::new(0));
    let totals = Arc::new(Mutex::new(Totals::default()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next_seed, lifecycles, totals) = (next_seed.clone(), lifecycles.clone(), totals.clone());
            let opts = options(args);
            let (limit, seconds) = (args.lifecycles, args.seconds);
            std::thread::spawn(move || {
                while lifecycles.load(Ordering::Relaxed) < limit && started.elapsed().as_secs() < seconds {
                    let seed = next_seed.fetch_add(1, Ordering::Relaxed);
                    let o = run(seed, &opts);
                    lifecycles.fetch_add(o.lifecycles, Ordering::Relaxed);
                    totals.lock().expect("totals").add(&o);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a worker panicked".to_owned())?;
    }
    let elapsed = started.elapsed();
    let t = totals.lock().expect("totals");
    let report = t.report(args, threads, elapsed.as_secs_f64());
    println!("{report}");
    if let Some(path) = &args.write_doc {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        write_doc(path, &report, &command)?;
    }
    Ok(t.new_failures() == 0)
}

#[derive(Default)]
struct Totals {
    runs: u64,
    lifecycles: u64,
    invocations: u64,
    faults: BTreeMap<&'static str, u64>,
    per_model: BTreeMap<Model, (u64, u64)>,
    failing: Vec<Outcome>,
    /// Failing runs, and those whose seed is not a known finding.
    failing_runs: u64,
    new_failing: u64,
    latencies: Vec<u64>,
}

impl Totals {
    fn new_failures(&self) -> u64 {
        self.new_failing
    }

    fn failing_count(&self) -> u64 {
        self.failing_runs
    }

    fn add(&mut self, o: &Outcome) {
        self.runs += 1;
        self.lifecycles += o.lifecycles;
        self.invocations += o.invocations;
        for (k, n) in &o.faults {
            *self.faults.entry(k).or_default() += n;
        }
        if let Some(m) = o.model {
            let e = self.per_model.entry(m).or_default();
            e.0 += 1;
            e.1 += o.lifecycles;
        }
        if self.latencies.len() < 1_000_000 {
            self.latencies.extend(&o.latencies_ms);
        }
        if !o.violations.is_empty() {
            self.failing_runs += 1;
            if !handover_sim::known::is_known(o.seed) {
                self.new_failing += 1;
            }
            if self.failing.len() < 20 {
                self.failing.push(o.clone());
            }
        }
    }

    fn report(&self, args: &Args, threads: usize, seconds: f64) -> String {
        let mut s = String::new();
        let mut lat = self.latencies.clone();
        lat.sort_unstable();
        let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
        s.push_str(&format!(
            "| seeds | runs | lifecycles | invocations | threads | wall time | lifecycles/s |\n|---|---|---|---|---|---|---|\n| {}.. | {} | {} | {} | {} | {:.0} s | {:.0} |\n\n",
            args.seed,
            self.runs,
            self.lifecycles,
            self.invocations,
            threads,
            seconds,
            self.lifecycles as f64 / seconds.max(0.001)
        ));
        s.push_str("| provider model | runs | lifecycles |\n|---|---|---|\n");
        for (m, (runs, l)) in &self.per_model {
            s.push_str(&format!("| {} | {runs} | {l} |\n", m.name()));
        }
        s.push_str("\n| fault injected | count |\n|---|---|\n");
        for (k, n) in &self.faults {
            s.push_str(&format!("| {k} | {n} |\n"));
        }
        s.push_str(&format!(
            "\nrelay latency of every relayed user turn, faults included (sent → first received, virtual time): p50 {} ms, p99 {} ms, max {} ms over {} turns; the invariant bounds it at 2 s on lanes no fault touched\n",
            pct(0.5),
            pct(0.99),
            lat.last().copied().unwrap_or(0),
            lat.len()
        ));
        if self.failing_runs == 0 {
            s.push_str("\nevery invariant held in every run\n");
        } else {
            s.push_str(&format!(
                "\n{} failing runs, {} of them not among the known findings (first shown):\n",
                self.failing_count(),
                self.new_failing
            ));
            for o in &self.failing {
                s.push_str(&format!(
                    "- seed {} ({}): {}\n  replay: cargo run --profile sim -p handover-sim -- --replay {} --sessions {}{}\n",
                    o.seed,
                    o.model.map_or("?", Model::name),
                    o.violations.first().cloned().unwrap_or_default(),
                    o.seed,
                    args.sessions,
                    if args.no_drain { " --no-drain" } else { "" }
                ));
            }
        }
        s
    }
}

fn print_violations(o: &Outcome) {
    if o.violations.is_empty() {
        println!("seed {}: every invariant held", o.seed);
    }
    for v in &o.violations {
        println!("VIOLATION (seed {}): {v}", o.seed);
    }
}

const BEGIN: &str = "<!-- sim:begin -->";
const END: &str = "<!-- sim:end -->";

fn write_doc(path: &std::path::Path, report: &str, command: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(a), Some(b)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!("{} has no {BEGIN} … {END} block", path.display()));
    };
    let stamp = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let date = stamp(&["date", "-u", "+%Y-%m-%d %H:%M"]);
    let commit = stamp(&["git", "rev-parse", "--short", "HEAD"]);
    let block = format!(
        "{BEGIN}\nGenerated by `make sim` (`{command}`) on {date} (UTC) from commit {commit}:\n\n{report}{END}"
    );
    let new = format!("{}{}{}", &text[..a], block, &text[b + END.len()..]);
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

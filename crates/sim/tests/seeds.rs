//! The simulator property over many seeds. `CAIRN_SIM_SEEDS` sets how many (default 1000),
//! `CAIRN_SIM_FIRST_SEED` where to start; a failure names its seed, and
//! `CAIRN_SIM_SEEDS=1 CAIRN_SIM_FIRST_SEED=<seed>` replays exactly that run.

use cairn_sim::{Config, run};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn replicas_converge_and_keep_every_durable_change() {
    let seeds = env("CAIRN_SIM_SEEDS", 1000);
    let first = env("CAIRN_SIM_FIRST_SEED", 0);
    let config = Config::default();
    let threads = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    // Seeds are independent: spread them over the cores, each thread taking every n-th one.
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let config = &config;
                scope.spawn(move || {
                    (first + t..first + seeds)
                        .step_by(threads as usize)
                        .map(|seed| run(seed, config).unwrap_or_else(|v| panic!("{v}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a seed failed"))
            .collect()
    });
    assert_eq!(reports.len() as u64, seeds);
    let changes: usize = reports.iter().map(|r| r.durable_changes).sum();
    let crashes: usize = reports
        .iter()
        .map(|r| r.client_crashes + r.server_crashes)
        .sum();
    let frames: usize = reports.iter().map(|r| r.frames).sum();
    let slowest = reports.iter().map(|r| r.converged_at).max().unwrap_or(0);
    println!(
        "{seeds} seeds: {changes} durable changes, {crashes} crashes, {frames} frames delivered, \
         slowest convergence at {slowest} ms of simulated time"
    );
    assert!(changes > seeds as usize, "the runs made edits");
    assert!(crashes > seeds as usize / 2, "the runs crashed peers");
}

#[test]
fn a_seed_replays_identically() {
    let config = Config::default();
    assert_eq!(run(42, &config), run(42, &config));
}

#[test]
fn automerge_repo_peers_converge_through_the_server_session() {
    let seeds = env("CAIRN_SIM_SEEDS", 1000).min(300);
    let first = env("CAIRN_SIM_FIRST_SEED", 0);
    let config = cairn_sim::AmConfig::default();
    let (mut edits, mut reconnects) = (0, 0);
    for seed in first..first + seeds {
        let report = cairn_sim::run_amrepo(seed, &config).unwrap_or_else(|e| panic!("{e}"));
        edits += report.edits;
        reconnects += report.reconnects;
    }
    println!("{seeds} automerge-repo seeds: {edits} edits, {reconnects} reconnects");
    assert!(
        edits > seeds as usize && reconnects > seeds as usize,
        "the runs edited and reconnected"
    );
}

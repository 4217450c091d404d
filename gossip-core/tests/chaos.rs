//! The chaos runner (`gossip_core::sim::chaos`) over several fixed seeds.
//!
//! The default run keeps `cargo test` inside its budget: 30 nodes for 30
//! minutes of virtual time on each of four seeds (about 8 s), and the seeds
//! the long run found bugs with, for an hour each with monitored liveness.
//! The long run is `scripts/chaos.sh` (an hour of virtual time on 64 seeds
//! by default, in release).
//! Environment, all optional:
//!
//! - `CHAOS_SEED=7`: replay one seed alone (what a failure prints);
//! - `CHAOS_SEEDS=1-8` or `CHAOS_SEEDS=3,5`: the seeds to run;
//! - `CHAOS_MINUTES=60`: virtual minutes of chaos per seed;
//! - `CHAOS_NODES=30`: the pool of node ids;
//! - `CHAOS_TRACE=1`: print every action as it is taken;
//! - `CHAOS_FILTER_MIN=8`: `Config::filter_min_peers` (answers to larger
//!   tables by filter, which the default keeps out of a pool of 30).
//!
//! - `CHAOS_GRACE=30`: the monitored run's `dead_peer_grace` in seconds
//!   (default 600).
//!
//! Each seed runs twice: with relayed liveness (the default configuration)
//! and with monitored liveness (`Config::monitors` 1). The monitored run
//! keeps `dead_peer_grace` at 10 minutes: an island finds the other side
//! of a partition dead a few ring neighbours at a time, and a grace shorter
//! than that wave lets the far side forget a peer the island still holds
//! live, which the heal then brings back (with 30 s, four of seeds 1 to 8
//! failed so; ARCHITECTURE.md, "Monitored liveness").

use std::time::{Duration, Instant};

use gossip_core::sim::chaos::{run, Chaos};

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

fn seeds() -> Vec<u64> {
    if let Some(s) = env_u64("CHAOS_SEED") {
        return vec![s];
    }
    let Ok(spec) = std::env::var("CHAOS_SEEDS") else {
        return vec![1, 2, 3, 4];
    };
    let parse = |s: &str| -> u64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("CHAOS_SEEDS={spec}: {s} is not a number"))
    };
    match spec.split_once('-') {
        Some((a, b)) => (parse(a)..=parse(b)).collect(),
        None => spec.split(',').map(parse).collect(),
    }
}

#[test]
fn chaos_keeps_every_promise() {
    chaos_with(0);
}

#[test]
fn chaos_keeps_every_promise_with_monitored_liveness() {
    chaos_with(1);
}

/// The seeds of the long run (`scripts/chaos.sh`, `SEEDS=1-640`) that
/// each found a bug in monitored liveness, run for an hour of virtual time
/// as the long run did (each fixed; see CHANGELOG). Extra coverage rather
/// than exact regressions: with the fixes the nodes send other frames, so
/// a seed no longer takes the path that found its bug (the bugs' own
/// tests in `monitor.rs` and `scenarios.rs` do that): 17, 29 and 32 (a
/// beat from an unwatched peer taken as a sample), 21 (a collected floor
/// not taken), 126 and 572 (stale peers vouched for during a partition's
/// wave), 275 (a missed leave never answered); and with a pool of 60
/// nodes, seeds 50 (a wave window too short under loss) and 29 (an
/// island's untimed peer, crashed there, revived by the heal). Skipped when
/// `CHAOS_SEED` or `CHAOS_SEEDS` picks the seeds.
#[test]
fn chaos_seeds_that_found_bugs_with_monitored_liveness() {
    if std::env::var_os("CHAOS_SEED").is_some() || std::env::var_os("CHAOS_SEEDS").is_some() {
        return;
    }
    run_seeds(1, &[17, 21, 29, 32, 126, 275, 572], 60, 30);
    // And from a pool of 60 nodes (a wave's steps stretched by loss; an
    // island's untimed peer revived by the heal).
    run_seeds(1, &[29, 50], 60, 60);
}

fn chaos_with(monitors: usize) {
    let minutes = env_u64("CHAOS_MINUTES").unwrap_or(30);
    let nodes = env_u64("CHAOS_NODES").unwrap_or(30) as usize;
    run_seeds(monitors, &seeds(), minutes, nodes);
}

fn run_seeds(monitors: usize, seeds: &[u64], minutes: u64, nodes: usize) {
    let filter_min = env_u64("CHAOS_FILTER_MIN").map(|m| m as usize);
    run_seeds_with(monitors, seeds, minutes, nodes, filter_min);
}

fn run_seeds_with(
    monitors: usize,
    seeds: &[u64],
    minutes: u64,
    nodes: usize,
    filter_min: Option<usize>,
) {
    let mut failures = Vec::new();
    for &seed in seeds {
        let began = Instant::now();
        let mut chaos = Chaos::new(seed, nodes, Duration::from_secs(60 * minutes));
        if monitors > 0 {
            // Monitored liveness: an island finds the other side dead a few
            // ring neighbours at a time, so dead_peer_grace must outlast
            // that wave (ARCHITECTURE.md, "Monitored liveness"); the
            // freshness bound stays the relayed run's 90 s.
            chaos.config.monitors = monitors;
            chaos.config.dead_peer_grace = Duration::from_secs(
                std::env::var("CHAOS_GRACE")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(600),
            );
        }
        if let Some(min) = filter_min {
            // Filters from tables of `min` peers (the default, 256, is
            // above the pool): the smaller table's filter under chaos.
            chaos.config.filter_min_peers = min;
        }
        chaos.trace = std::env::var_os("CHAOS_TRACE").is_some();
        match run(&chaos) {
            Ok(report) => {
                // Every kind of promise was actually put to the test.
                assert!(report.writes_checked > 0 && report.deliveries_checked > 0);
                assert!(report.live_reports_checked > 0 && report.removals_seen > 0);
                eprintln!(
                    "{report} [{nodes} nodes, monitors {monitors}, {minutes} virtual min, {:.1} s wall]",
                    began.elapsed().as_secs_f64()
                );
            }
            Err(v) => {
                eprintln!("monitors {monitors}: {v}");
                failures.push(format!("monitors {monitors}: {v}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

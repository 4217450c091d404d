//! A fixed simulator workload for profiling the engine's hot path:
//! N nodes (default 100) join from one seed, a key spreads, then 10 s more.
//!
//! `valgrind --tool=callgrind target/release/examples/sim_workload 100`
//! counts instructions per function, repeatably on a busy machine. It uses
//! only the `Sim` API every commit of this repository has, so the same file
//! profiles an older commit too (see bench/NOTES.md).

use gossip::{sim::Sim, Config};
use std::time::{Duration, Instant};
fn main() {
    workload(Config::local());
}

/// The workload under `config` (`sim_workload_monitored` runs it with
/// monitored liveness).
pub(crate) fn workload(config: Config) {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let wall = Instant::now();
    let mut s = Sim::new(42, config);
    s.record_events = false;
    s.add_node("n00000", &[]);
    for i in 1..n {
        s.add_node(&format!("n{i:05}"), &["n00000"]);
    }
    let joined = s.run_until(Duration::from_secs(60), |s| s.all_see_all_live());
    s.set("n00001", "k", "v");
    let key = s.run_until(Duration::from_secs(60), |s| {
        s.all_have("n00001", "k", Some("v"))
    });
    s.run_for(Duration::from_secs(10));
    println!(
        "n={n} joined={joined:?} key={key:?} bytes={} frames={} wall={:?}",
        s.stats.bytes_sent,
        s.stats.frames_sent,
        wall.elapsed()
    );
}

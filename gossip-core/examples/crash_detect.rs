//! Crash detection in the simulator: N nodes converge, the last one
//! crashes, and the time until every other node reports it dead is printed
//! per seed, then the median. Deterministic for its arguments
//! (`gossip-bench detect` measures the same over real async nodes).
//!
//! ```text
//! cargo run --release -p gossip-core --example crash_detect -- [nodes] [seeds] [interval_ms] [monitors] [crashed]
//! ```
//!
//! Defaults: 50 nodes, seeds 1 to 20, 50 ms rounds
//! (`Config::local().with_interval`, as `gossip-bench detect`), relayed
//! liveness (`monitors` 0), one node crashed. With `crashed` above 1 the
//! last nodes crash at once (neighbours in the id ring, as in
//! `gossip-bench sweep`) and the time is until every other node reports
//! all of them dead.
use std::time::Duration;

use gossip_core::{sim::Sim, Config, PeerId, PeerStatus};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |d: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(d);
    let n = arg(50) as usize;
    let seeds = arg(20);
    let interval = Duration::from_millis(arg(50));
    let monitors = arg(0) as usize;
    let crashed = arg(1).clamp(1, n as u64 - 1) as usize;
    let config = Config::local().with_interval(interval).monitors(monitors);
    let mut took = Vec::new();
    for seed in 1..=seeds {
        let mut s = Sim::new(seed, config.clone());
        s.add_node("n000", &[]);
        for i in 1..n {
            s.add_node(&format!("n{i:03}"), &["n000"]);
        }
        let converged = s.run_until(Duration::from_secs(60), |s| s.all_see_all_live());
        assert!(converged.is_some(), "seed {seed}: no convergence in 60 s");
        // The join's news gone cold first (as `gossip-bench detect` waits).
        s.run_for(interval * 20);
        let gone: Vec<String> = (n - crashed..n).map(|i| format!("n{i:03}")).collect();
        for id in &gone {
            s.crash(id);
        }
        let t = s
            .run_until(Duration::from_secs(120), |s| {
                // Dead, or already removed (`dead_peer_grace` after its
                // verdict) by a node that found it early.
                gone.iter().all(|id| {
                    let id = PeerId::from(id.as_str());
                    s.running()
                        .all(|e| e.peer(&id).is_none_or(|p| p.status == PeerStatus::Dead))
                })
            })
            .unwrap_or_else(|| panic!("seed {seed}: crash not found by all in 120 s"));
        println!("seed {seed:3}: {:.3} s", t.as_secs_f64());
        took.push(t);
    }
    took.sort();
    println!(
        "median {:.3} s over {seeds} seeds ({n} nodes, {} ms rounds, monitors {monitors}, {crashed} crashed)",
        took[took.len() / 2].as_secs_f64(),
        interval.as_millis()
    );
}

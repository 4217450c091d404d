//! False deaths under packet loss, in the simulator: N nodes converge
//! without loss, then run with every frame dropped at probability `loss`
//! (no node crashes); every `PeerDead` reported in that time is a false
//! death. One line per seed, then the total. Deterministic for its
//! arguments: the simulator's virtual time, not the machine's load
//! (`gossip-bench detect` measures the same over real async nodes, where
//! the scheduler adds its own delays).
//!
//! ```text
//! cargo run --release -p gossip-core --example loss_deaths -- [nodes] [loss] [secs] [seeds] [interval_ms] [monitors]
//! ```
//!
//! Defaults: 50 nodes, 0.3 loss, 60 s, seeds 1 to 20, 50 ms rounds
//! (`Config::local().with_interval`, as `gossip-bench detect`), relayed
//! liveness (`monitors` 0).
use std::time::Duration;

use gossip_core::{sim::Sim, Config, Event};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |d: f64| args.next().and_then(|a| a.parse().ok()).unwrap_or(d);
    let n = arg(50.0) as usize;
    let loss = arg(0.3);
    let secs = arg(60.0);
    let seeds = arg(20.0) as u64;
    let interval = Duration::from_millis(arg(50.0) as u64);
    let monitors = arg(0.0) as usize;
    let config = Config::local().with_interval(interval).monitors(monitors);
    let mut total = 0;
    for seed in 1..=seeds {
        let mut s = Sim::new(seed, config.clone());
        s.add_node("n000", &[]);
        for i in 1..n {
            s.add_node(&format!("n{i:03}"), &["n000"]);
        }
        let mut waited = Duration::ZERO;
        while !s.all_see_all_live() && waited < Duration::from_secs(60) {
            s.run_for(interval);
            waited += interval;
        }
        assert!(s.all_see_all_live(), "seed {seed}: no convergence in 60 s");
        // The join's news gone cold before the loss starts.
        s.run_for(interval * 40);
        s.events.clear();
        s.set_loss(loss);
        s.run_for(Duration::from_secs_f64(secs));
        let dead = s
            .events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::PeerDead { .. }))
            .count();
        println!("seed {seed:3}: {dead} false deaths in {secs} s at loss {loss}");
        if std::env::var_os("LOSS_DEATHS_LIST").is_some() {
            for (at, observer, e) in &s.events {
                if let Event::PeerDead { peer } = e {
                    println!(
                        "  at {:.3} s: {observer} holds {peer} dead",
                        at.as_secs_f64()
                    );
                }
            }
        }
        total += dead;
    }
    println!("total: {total} false deaths over {seeds} seeds ({n} nodes, {secs} s each, loss {loss}, {} ms rounds, monitors {monitors})", interval.as_millis());
}

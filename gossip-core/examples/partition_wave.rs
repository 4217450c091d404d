//! A partition's wave in the simulator: N nodes converge, the first
//! `island` are cut off from the rest, and the time until every node holds
//! every node across the cut dead (or has removed it) is printed per seed,
//! with the longest step of the wave as the first node saw it (the gap
//! between two of its successive verdicts on the far side), then the
//! median and the longest step over the seeds. Deterministic for its
//! arguments.
//!
//! ```text
//! cargo run --release -p gossip-core --example partition_wave -- [nodes] [seeds] [interval_ms] [island] [monitors]
//! ```
//!
//! Defaults: 40 nodes, seeds 1 to 5, 50 ms rounds
//! (`Config::local().with_interval`), an island of 20 (halves), monitored
//! liveness with one watcher a side (`monitors` 1): a side of a monitored
//! partition finds the other dead one new neighbour at a time, so the wave
//! is what this measures (relayed liveness times every peer and finds the
//! far side at once).
use std::time::Duration;

use gossip_core::{sim::Sim, Config, PeerId, PeerStatus};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |d: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(d);
    let n = arg(40) as usize;
    let seeds = arg(5);
    let interval = Duration::from_millis(arg(50));
    let island = (arg(20) as usize).clamp(1, n - 1);
    let monitors = arg(1) as usize;
    let config = Config::local().with_interval(interval).monitors(monitors);
    let ids: Vec<String> = (0..n).map(|i| format!("n{i:03}")).collect();
    let (a, b): (Vec<&str>, Vec<&str>) = {
        let all: Vec<&str> = ids.iter().map(String::as_str).collect();
        (all[..island].to_vec(), all[island..].to_vec())
    };
    let gone = |s: &Sim, x: &str, y: &str| {
        s.engine(x)
            .peer(&PeerId::from(y))
            .is_none_or(|p| p.status == PeerStatus::Dead)
    };
    let (mut took, mut longest) = (Vec::new(), 0.0f64);
    for seed in 1..=seeds {
        let mut s = Sim::new(seed, config.clone());
        s.add_node(&ids[0], &[]);
        for id in &ids[1..] {
            s.add_node(id, &[&ids[0]]);
        }
        let joined = s.run_until(Duration::from_secs(60), |s| s.all_see_all_live());
        assert!(joined.is_some(), "seed {seed}: no convergence in 60 s");
        // The join's news gone cold before the cut.
        s.run_for(interval * 20);
        s.partition(&a, &b);
        let mut first_seen: Vec<Option<f64>> = vec![None; b.len()];
        let step = interval / 10;
        let mut t = Duration::ZERO;
        let limit = Duration::from_secs(600);
        let mut split = false;
        while t < limit {
            s.run_for(step);
            t += step;
            for (j, y) in b.iter().enumerate() {
                if first_seen[j].is_none() && gone(&s, a[0], y) {
                    first_seen[j] = Some(t.as_secs_f64());
                }
            }
            split = a.iter().all(|x| b.iter().all(|y| gone(&s, x, y)))
                && b.iter().all(|y| a.iter().all(|x| gone(&s, y, x)));
            if split {
                break;
            }
        }
        assert!(split, "seed {seed}: not split in {limit:?}");
        let mut seen: Vec<f64> = first_seen.into_iter().flatten().collect();
        seen.sort_by(f64::total_cmp);
        let step = seen.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        println!(
            "seed {seed:3}: split in {:.3} s, longest step {step:.3} s",
            t.as_secs_f64()
        );
        took.push(t.as_secs_f64());
        longest = longest.max(step);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "median {:.3} s over {seeds} seeds ({n} nodes, island {island}, {} ms rounds, monitors {monitors}); longest step {longest:.3} s",
        took[took.len() / 2],
        interval.as_millis()
    );
}

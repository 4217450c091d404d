//! The simulator at scale, with a line per round: how many (node, peer)
//! pairs are known live, memory, wall time. For profiling and for watching
//! how far a large cluster gets (`gossip-bench sim` is the measurement).
//!
//! ```text
//! cargo run --release -p gossip-core --example sim_scale -- 10000 [max_rounds] [idle_rounds] [monitors] [digest_entries]
//! ```
//!
//! `monitors` above 0 runs monitored liveness (`Config::monitors`);
//! `digest_entries` sets `Config::max_digest_entries` (default 10,000).
//! `SIM_THREADS=2` in the environment runs the nodes on two threads.
//!
//! With `idle_rounds`, it then runs that many more rounds once the key has
//! spread (the join's news gone cold) and prints their mean wall time,
//! bytes and frames per node per round: the steady state's cost at this N. It also
//! prints each of those rounds that ends with a (node, peer) pair held
//! dead: with no loss and no crash, each is a false death.
use std::time::Instant;

use gossip_core::{sim::Sim, Config};

fn status(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let max_rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let idle_rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let monitors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let wall = Instant::now();
    let mut config = Config::local().monitors(monitors);
    if let Some(entries) = args.next().and_then(|a| a.parse().ok()) {
        config.max_digest_entries = entries;
    }
    // SIM_FILTER_BITS=0 turns the smaller table's filter off (`Config::filter_bits`).
    if let Some(bits) = std::env::var("SIM_FILTER_BITS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        config.filter_bits = bits;
    }
    let interval = config.gossip_interval;
    let mut s = Sim::new(42, config);
    s.record_events = false;
    // SIM_THREADS=2 runs the nodes on two threads (`Sim::set_threads`).
    if let Some(t) = std::env::var("SIM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        s.set_threads(t);
    }
    s.add_node("n00000", &[]);
    for i in 1..n {
        s.add_node(&format!("n{i:05}"), &["n00000"]);
    }
    let pairs = (n * (n - 1)) as f64;
    let mut key_at = None;
    for round in 1..=max_rounds {
        let t = Instant::now();
        s.run_for(interval);
        let known: usize = s.running().map(|engine| engine.live_count()).sum();
        let (idles, mismatched, by_bucket, entries, learned, filters, deltas) =
            s.running()
                .fold((0, 0, 0, 0, 0, 0, 0), |(i, m, b, d, l, f, r), e| {
                    let st = e.stats();
                    (
                        i + st.idle_exchanges,
                        m + st.summary_mismatches,
                        b + st.bucket_digests,
                        d + st.digest_entries_sent,
                        l + st.peers_learned,
                        f + st.filter_digests,
                        r + st.deltas_received,
                    )
                });
        let done = known as f64 == pairs;
        println!(
            "round {round:3}: live pairs {:6.2}%  rss {:7.0} MiB  peak {:7.0} MiB  round {:6.2} s  wall {:7.1} s  bytes {}  idle/mismatched/bucket digests {idles}/{mismatched}/{by_bucket}  digest entries {entries}  peers learned {learned}  deltas received {deltas}  filters {filters}",
            100.0 * known as f64 / pairs,
            status("VmRSS:"),
            status("VmHWM:"),
            t.elapsed().as_secs_f64(),
            wall.elapsed().as_secs_f64(),
            s.stats.bytes_sent,
        );
        if done && key_at.is_none() {
            s.set("n00001", "news", "v");
            key_at = Some(round);
        }
        if let Some(k) = key_at {
            if s.all_have("n00001", "news", Some("v")) {
                println!(
                    "converged by round {k}; the key reached all {} rounds later; wall {:.1} s; peak {:.0} MiB ({:.0} B per pair)",
                    round - k,
                    wall.elapsed().as_secs_f64(),
                    status("VmHWM:"),
                    status("VmHWM:") * 1048576.0 / pairs
                );
                if idle_rounds > 0 {
                    idle(&mut s, n, idle_rounds, interval);
                }
                return;
            }
        }
    }
    println!("not done in {max_rounds} rounds");
}

/// Runs `rounds` rounds after the news has gone cold (2·log2 N + 2 rounds
/// of it first) and prints their cost.
fn idle(s: &mut Sim, n: usize, rounds: u32, interval: std::time::Duration) {
    let cold = 2 * (usize::BITS - n.leading_zeros()) + 2;
    s.run_for(interval * cold);
    let counts = |s: &Sim| {
        s.running().fold((0, 0), |(i, m), e| {
            let st = e.stats();
            (i + st.idle_exchanges, m + st.summary_mismatches)
        })
    };
    let (i0, m0) = counts(s);
    let (b0, f0) = (s.stats.bytes_sent, s.stats.frames_sent);
    // Round by round, the (node, peer) pairs held dead or left: with no
    // loss and no crash, every one is a false death.
    let mut spent = std::time::Duration::ZERO;
    let mut false_deaths = Vec::new();
    for round in 1..=rounds {
        let r = Instant::now();
        s.run_for(interval);
        spent += r.elapsed();
        let held: usize = s.running().map(|e| e.dead_peers().len()).sum();
        if held > 0 {
            let node = s.running().find(|e| !e.dead_peers().is_empty());
            let (who, dead) = node.map_or((String::new(), Vec::new()), |e| {
                (e.id().to_string(), e.dead_peers())
            });
            println!("idle round {round}: {held} pairs held dead (e.g. {who} holds {dead:?})");
            false_deaths.push(held);
        }
    }
    let (i1, m1) = counts(s);
    let wall = spent.as_secs_f64() / f64::from(rounds);
    let bytes = (s.stats.bytes_sent - b0) as f64 / n as f64 / f64::from(rounds);
    let frames = (s.stats.frames_sent - f0) as f64 / n as f64 / f64::from(rounds);
    println!(
        "idle: {rounds} rounds after {cold} cold ones: {wall:.3} s wall and {bytes:.0} bytes per node per round in {frames:.2} frames ({:.0} bytes a frame); idle exchanges {}, summary mismatches {}; rounds with a pair held dead {}, most pairs in one round {}; all live: {}",
        bytes / frames.max(1e-9),
        i1 - i0,
        m1 - m0,
        false_deaths.len(),
        false_deaths.iter().max().unwrap_or(&0),
        s.all_see_all_live()
    );
}

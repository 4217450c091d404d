//! `set`: a large cluster-wide set (dat-gossip's service: one key per item)
//! spreading from one node, in the simulator.

use std::time::Instant;

use gossip::sim::Sim;
use gossip::{Config, PeerId};

use crate::measure::{self, Table};
use crate::Opts;

/// The key of item `i` of the set, as `ClusterSet` names it
/// (`gossip.set/NAME/HEX`), the item being eight bytes of a scrambled
/// counter so that names arrive in random order.
fn item_key(i: u64) -> String {
    // An odd multiplier is a bijection on u64: every item distinct.
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("gossip.set/items/{x:016x}")
}

/// One node advertises `--set-items` items after the cluster converged;
/// rounds, wall time and bytes until every node holds all of them.
pub fn set_spread(o: &Opts) -> Vec<Table> {
    let mut config = Config::local();
    config.max_keys_per_peer = config.max_keys_per_peer.max(o.set_items);
    let interval = config.gossip_interval;
    let mut t = Table::new(
        &format!(
            "set: {} items of a cluster-wide set advertised at once by one node (simulator, Config::local, {} ms rounds, 1 ms latency, no loss)",
            o.set_items,
            interval.as_millis()
        ),
        &[
            "N",
            "items",
            "advertise (wall)",
            "rounds to all nodes",
            "frame bytes / node",
            "bytes / item / node",
            "wall time to spread",
            "RSS growth",
        ],
    );
    let id = |i: usize| format!("n{i:05}");
    for &n in &o.set_sizes {
        eprintln!("set: N={n}");
        let mut s = Sim::new(n as u64, config.clone());
        s.record_events = false;
        s.add_node(&id(0), &[]);
        for i in 1..n {
            s.add_node(&id(i), &[&id(0)]);
        }
        let dash = |why: &str| {
            let mut r = vec![n.to_string(), why.to_string()];
            r.resize(8, "-".into());
            r
        };
        if s.run_until(interval * 200, |s| s.all_see_all_live())
            .is_none()
        {
            t.row(dash("cluster did not converge"));
            continue;
        }
        measure::reset_peak_rss();
        let rss0 = measure::rss_mib();
        let (b0, owner) = (s.stats.bytes_sent, id(n / 2));
        let wall = Instant::now();
        for i in 0..o.set_items as u64 {
            s.set(&owner, &item_key(i), "");
        }
        let advertise = wall.elapsed();
        let pid = PeerId::from(owner.as_str());
        let items = o.set_items;
        let spread = s.run_until(interval * 2000, |s| {
            s.running()
                .all(|e| e.peer(&pid).is_some_and(|p| p.keys == items))
        });
        let took = wall.elapsed() - advertise;
        let Some(spread) = spread else {
            t.row(dash("the set did not spread in 2,000 rounds"));
            continue;
        };
        let bytes = (s.stats.bytes_sent - b0) as f64 / n as f64;
        t.row(vec![
            n.to_string(),
            items.to_string(),
            format!("{:.0} ms", advertise.as_secs_f64() * 1000.0),
            format!("{:.1}", spread.as_secs_f64() / interval.as_secs_f64()),
            format!("{bytes:.0}"),
            format!("{:.1}", bytes / items as f64),
            format!("{:.1} s", took.as_secs_f64()),
            rss_growth(rss0),
        ]);
    }
    t.notes.push("Every node seeded with the first; after the cluster converged, the middle node sets every item's key (`gossip.set/items/HEX`, empty value, names in scrambled order: what `ClusterSet::advertise` does per item) in one go; then the simulator runs until every node holds all of them (checked every round). Advertise: wall time of the owner's puts; rounds: virtual time to the last node over the interval; frame bytes: everything sent by any node in that time over N; RSS growth: the resident peak while the items spread minus resident memory before them (the process's whole heap, so a rough figure, and a low one where pages an earlier scenario freed are reused; \"not measured\" where resident memory fell meanwhile, the allocator returning an earlier scenario's memory: run `gossip-bench set` alone for the figure). Before the `SmallMap` commit (30eb71e) a peer's keys were sorted vectors, so every node paid O(k) per new item name; see bench/NOTES.md.".into());
    vec![t]
}

/// The resident peak since `rss0` was read (after a peak reset) above
/// `rss0`; not measured if resident memory is now below `rss0`, since the
/// allocator was then returning memory freed before the measurement.
fn rss_growth(rss0: f64) -> String {
    if measure::rss_mib() + 1.0 < rss0 {
        "not measured (resident memory fell)".into()
    } else {
        format!("{:.0} MiB", measure::peak_rss_mib() - rss0)
    }
}

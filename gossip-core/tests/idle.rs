//! The idle exchange: when nothing changed, nodes swap a summary of their
//! tables (a hash, one byte of heartbeat per peer) instead of a digest
//! entry per peer. Liveness must move as before, news must still spread,
//! and a node that missed news must pull it through a summary mismatch.

use std::time::Duration;

mod common;

use gossip_core::{sim::Sim, Config, Event, PeerStatus};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cluster(seed: u64, n: usize, config: Config) -> Sim {
    common::idle_cluster(seed, n, config, secs(30))
}

fn idle_counts(sim: &Sim) -> (u64, u64) {
    sim.ids().iter().fold((0, 0), |(i, m), id| {
        let s = sim.engine(id).stats();
        (i + s.idle_exchanges, m + s.summary_mismatches)
    })
}

#[test]
fn idle_exchanges_carry_liveness_for_a_fraction_of_the_bytes() {
    let n = 30;
    let mut with = cluster(1, n, Config::local());
    let mut without = cluster(1, n, Config::local().idle_summary(false));
    let (i0, m0) = idle_counts(&with);
    let bytes_with = common::steady_bytes(&mut with, secs(20));
    let bytes_without = common::steady_bytes(&mut without, secs(20));
    let (i1, m1) = idle_counts(&with);
    // Every node makes idle_fanout exchanges a round: 30 nodes, 10 rounds
    // a second, 2 each, for 20 s (less what loss-free timing leaves out).
    assert!(i1 - i0 > 10_000, "only {} idle exchanges", i1 - i0);
    assert_eq!(m1, m0, "summaries of equal tables did not match");
    assert!(
        bytes_with * 2.0 < bytes_without,
        "idle summaries {bytes_with:.0} B/node/s, digests {bytes_without:.0}"
    );
    assert!(with.all_see_all_live());
    assert!(with
        .events
        .iter()
        .all(|(_, _, e)| !matches!(e, Event::PeerDead { .. })));
}

#[test]
fn news_spreads_and_crashes_are_found_while_exchanges_are_idle() {
    for seed in 0..5 {
        let mut sim = cluster(seed, 20, Config::local());
        sim.set("n07", "role", "db");
        let took = sim.run_until(secs(5), |s| s.all_have("n07", "role", Some("db")));
        assert!(took.is_some(), "seed {seed}: key did not spread");
        sim.run_for(secs(5));
        sim.crash("n11");
        let took = sim.run_until(secs(10), |s| s.all_report("n11", PeerStatus::Dead));
        let took = took.unwrap_or_else(|| panic!("seed {seed}: crash not detected"));
        assert!(took < secs(3), "seed {seed}: detection took {took:?}");
    }
}

#[test]
fn a_node_that_missed_the_news_pulls_it_through_a_mismatch() {
    let mut sim = cluster(3, 10, Config::local());
    let others: Vec<String> = sim.ids().into_iter().filter(|i| i != "n04").collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    // Cut off briefly (less than it takes to find it dead) while a key is
    // written: its table then differs from everyone else's summary.
    sim.partition(&["n04"], &others);
    sim.set("n01", "k", "v");
    sim.run_until(secs(5), |s| {
        s.ids()
            .iter()
            .filter(|i| *i != "n04")
            .all(|i| s.engine(i).get(&"n01".into(), "k").is_some())
    })
    .expect("the key reaches the majority");
    let (_, m0) = idle_counts(&sim);
    sim.heal();
    let took = sim.run_until(secs(10), |s| s.all_have("n01", "k", Some("v")));
    assert!(took.is_some(), "n04 never pulled the key");
    let (_, m1) = idle_counts(&sim);
    assert!(m1 > m0, "no summary mismatch was seen");
}

/// Tables of 300 peers that differ in one peer's key: the larger sends its
/// bucket hashes and the smaller a digest of the one bucket that differs,
/// instead of a digest of every peer. Measured as the bytes the news costs
/// above an idle window of the same length.
#[test]
fn large_tables_reconcile_news_by_bucket_for_fewer_bytes() {
    let spread = |config: Config| {
        let mut sim = cluster(3, 300, config);
        let b0 = sim.stats.bytes_sent;
        sim.run_for(secs(3));
        let idle = sim.stats.bytes_sent - b0;
        let b0 = sim.stats.bytes_sent;
        sim.set("n42", "role", "db");
        sim.run_for(secs(3));
        assert!(
            sim.all_have("n42", "role", Some("db")),
            "key did not spread"
        );
        let news = (sim.stats.bytes_sent - b0).saturating_sub(idle);
        let by_bucket: u64 = sim
            .ids()
            .iter()
            .map(|id| sim.engine(id).stats().bucket_digests)
            .sum();
        (news, by_bucket)
    };
    let mut on = Config::local();
    on.reconcile_min_peers = 256;
    let (with, by_bucket) = spread(on);
    let mut off = Config::local();
    off.reconcile_min_peers = 0;
    let (without, none) = spread(off);
    assert!(by_bucket > 100, "only {by_bucket} digests by bucket");
    assert_eq!(none, 0);
    assert!(
        // Most of the news's cost is the extra partners a round while it is
        // hot; the digests are the part buckets shrink.
        with * 5 < without * 4,
        "news cost {with} bytes by bucket, {without} with whole digests"
    );
}

/// With relayed liveness a death is each node's own judgement, so it does
/// not make tables differ: a node that alone holds peers dead (here: cut
/// off from everyone for longer than detection takes, then healed) still
/// matches its partners' summaries, keeps taking their heartbeats, and
/// revives those peers through idle exchanges where their holders hold
/// them live. At bucket scale (300 peers, buckets from 256), a mismatch's
/// digest of the differing buckets carries no heartbeats for the rest of
/// the table: had the deaths made its summaries differ, the node would
/// have gone without most heartbeats until every bucket was repaired.
#[test]
fn deaths_one_node_alone_holds_do_not_make_summaries_differ() {
    let mut config = Config::local();
    config.reconcile_min_peers = 256;
    let mut sim = cluster(5, 300, config);
    let others: Vec<String> = sim.ids().into_iter().filter(|i| i != "n04").collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    sim.partition(&["n04"], &others);
    sim.run_until(secs(10), |s| {
        s.engine("n04").live_count() == 0 && s.all_report("n04", PeerStatus::Dead)
    })
    .expect("n04 and the others find each other dead");
    // It still holds them all, dead.
    assert_eq!(sim.engine("n04").known_count(), 299);
    let (_, m0) = idle_counts(&sim);
    let events = sim.events.len();
    sim.heal();
    let took = sim.run_until(secs(10), |s| s.all_see_all_live());
    let took = took.expect("n04 and the others never saw each other live again");
    let (_, m1) = idle_counts(&sim);
    assert_eq!(m1, m0, "deaths made summaries differ");
    assert!(took < secs(2), "recovery took {took:?}");
    // Nobody lost anyone else on the way.
    let dead: Vec<_> = sim.events[events..]
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::PeerDead { .. }))
        .collect();
    assert!(dead.is_empty(), "deaths after the heal: {dead:?}");
}

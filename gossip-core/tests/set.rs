//! The cluster-wide set (dat-gossip) in the simulator: it converges after
//! partitions and withdrawals, and a dead peer's items leave with it.

use std::time::Duration;

use bytes::Bytes;
use gossip_core::sim::Sim;
use gossip_core::{Config, KeyError};

fn id(i: usize) -> String {
    format!("n{i:02}")
}

fn advertise(sim: &mut Sim, i: usize, item: &str) {
    let now = sim.now();
    assert!(sim
        .engine_mut(&id(i))
        .advertise(item.as_bytes(), now)
        .unwrap());
}

fn withdraw(sim: &mut Sim, i: usize, item: &str) {
    let now = sim.now();
    assert!(sim
        .engine_mut(&id(i))
        .withdraw(item.as_bytes(), now)
        .unwrap());
}

fn items(list: &[&str]) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = list
        .iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    v.sort();
    v
}

/// Whether every node in `nodes` lists exactly `want`.
fn all_list(sim: &Sim, nodes: impl IntoIterator<Item = usize>, want: &[Bytes]) -> bool {
    nodes.into_iter().all(|i| sim.engine(&id(i)).list() == want)
}

#[test]
fn the_set_converges_after_partitions_and_withdrawals() {
    let n = 20;
    let mut sim = Sim::new(2024, Config::local());
    sim.add_node(&id(0), &[]);
    for i in 1..n {
        sim.add_node(&id(i), &[&id(0)]);
    }
    assert!(sim
        .run_until(Duration::from_secs(30), |s| s.all_see_all_live())
        .is_some());
    advertise(&mut sim, 1, "alpha");
    advertise(&mut sim, 3, "shared");
    advertise(&mut sim, 15, "shared");
    advertise(&mut sim, 17, "beta");
    // Advertising again changes nothing.
    let now = sim.now();
    assert!(!sim.engine_mut(&id(1)).advertise(b"alpha", now).unwrap());
    let want = items(&["alpha", "beta", "shared"]);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| all_list(s, 0..n, &want))
            .is_some(),
        "the set spreads"
    );

    // A partition: each side loses the other's peers, and their items.
    let (left, right): (Vec<String>, Vec<String>) =
        ((0..10).map(id).collect(), (10..n).map(id).collect());
    let l: Vec<&str> = left.iter().map(String::as_str).collect();
    let r: Vec<&str> = right.iter().map(String::as_str).collect();
    sim.partition(&l, &r);
    withdraw(&mut sim, 3, "shared");
    advertise(&mut sim, 12, "gamma");
    withdraw(&mut sim, 15, "shared");
    advertise(&mut sim, 4, "delta");
    let left_view = items(&["alpha", "delta"]);
    let right_view = items(&["beta", "gamma"]);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| {
            all_list(s, 0..10, &left_view) && all_list(s, 10..n, &right_view)
        })
        .is_some(),
        "each side lists its own live peers' items"
    );

    // Healed: the withdrawals and the new items reach everyone.
    sim.heal();
    let want = items(&["alpha", "beta", "delta", "gamma"]);
    let took = sim.run_until(Duration::from_secs(60), |s| all_list(s, 0..n, &want));
    assert!(took.is_some(), "the set converges after the partition");
    // And stays so.
    sim.run_for(Duration::from_secs(5));
    assert!(all_list(&sim, 0..n, &want));

    // A crashed peer's items leave with it.
    sim.crash(&id(17));
    let want = items(&["alpha", "delta", "gamma"]);
    let up: Vec<usize> = (0..n).filter(|&i| i != 17).collect();
    assert!(sim
        .run_until(Duration::from_secs(10), |s| all_list(s, up.clone(), &want))
        .is_some());

    // Bad items are refused without change.
    let now = sim.now();
    let e = sim.engine_mut(&id(0));
    assert_eq!(e.advertise(b"", now), Err(KeyError::Empty));
    let long = vec![1u8; gossip_core::set::max_item_bytes(e.config().max_key_bytes) + 1];
    assert!(matches!(
        e.advertise(&long, now),
        Err(KeyError::KeyTooLong { .. })
    ));
    assert_eq!(e.withdraw(b"never", now), Ok(false));
    assert_eq!(e.list(), want);
}

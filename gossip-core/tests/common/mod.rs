//! Helpers shared by the engine's integration tests. Each test binary uses
//! a part of them.
#![allow(dead_code)]

use bytes::Bytes;
use gossip_core::{Engine, PeerId, PeerStatus};

/// What a node knows of one peer, without phi (which only moves on the
/// node's own ticks): two snapshots are equal when a frame changed nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeerSnap {
    pub(crate) id: PeerId,
    pub(crate) generation: u64,
    pub(crate) addr: String,
    pub(crate) status: PeerStatus,
    pub(crate) heartbeat: u64,
    pub(crate) max_version: u64,
    pub(crate) live_keys: usize,
    pub(crate) keys: Vec<(String, Bytes)>,
}

/// Every peer `e` knows, with its keys.
pub(crate) fn snapshot(e: &Engine) -> Vec<PeerSnap> {
    e.peers()
        .map(|p| PeerSnap {
            keys: e.keys(&p.id),
            id: p.id,
            generation: p.generation,
            addr: p.addr,
            status: p.status,
            heartbeat: p.heartbeat,
            max_version: p.max_version,
            live_keys: p.keys,
        })
        .collect()
}

/// One step of SplitMix64 on `state`.
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: a tiny seeded generator, so every failure names its seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        splitmix(&mut self.0)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A simulated cluster of `n` nodes (`n00`, `n01`, ...) seeded with the
/// first, run until every node sees every other live (at most `limit` of
/// virtual time, else the test fails naming the seed), then 5 s more so the
/// join's news goes cold and only idle traffic remains.
pub(crate) fn idle_cluster(
    seed: u64,
    n: usize,
    config: gossip_core::Config,
    limit: std::time::Duration,
) -> gossip_core::sim::Sim {
    let mut sim = gossip_core::sim::Sim::new(seed, config);
    sim.add_node("n00", &[]);
    for i in 1..n {
        sim.add_node(&format!("n{i:02}"), &["n00"]);
    }
    let took = sim.run_until(limit, |s| s.all_see_all_live());
    assert!(took.is_some(), "seed {seed}: {n} nodes did not converge");
    sim.run_for(std::time::Duration::from_secs(5));
    sim
}

/// Bytes sent per node per second over the next `window` of `sim`.
pub(crate) fn steady_bytes(sim: &mut gossip_core::sim::Sim, window: std::time::Duration) -> f64 {
    let b0 = sim.stats.bytes_sent;
    sim.run_for(window);
    (sim.stats.bytes_sent - b0) as f64 / sim.ids().len() as f64 / window.as_secs_f64()
}

//! Smoke test of the simulator.
use gossip_core::{sim::Sim, Config, PeerStatus};
use std::time::Duration;

#[test]
fn smoke() {
    let mut sim = Sim::new(1, Config::local());
    sim.add_node("a", &[]);
    for id in ["b", "c", "d", "e"] {
        sim.add_node(id, &["a"]);
    }
    let t = sim.run_until(Duration::from_secs(30), |s| s.all_see_all_live());
    println!("converged in {t:?}, stats {:?}", sim.stats);
    assert!(t.is_some());
    sim.set("a", "role", "db");
    let t = sim.run_until(Duration::from_secs(30), |s| {
        s.all_have("a", "role", Some("db"))
    });
    println!("key in {t:?}");
    sim.crash("c");
    let t = sim.run_until(Duration::from_secs(30), |s| {
        s.all_report("c", PeerStatus::Dead)
    });
    println!("dead in {t:?}");
    assert!(t.is_some());
}

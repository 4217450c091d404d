//! How long a node joining a cluster takes to hold every running node live
//! while other nodes crash and restart now and then: with monitored
//! liveness, two deaths within the wave window stop vouching (see
//! ARCHITECTURE, "Monitored liveness"), and a joiner then takes only the
//! peers its partners heard of lately.
//!
//! ```text
//! cargo run --release -p gossip-core --example join_under_churn -- [nodes] [churn_secs] [monitors] [seed]
//! ```
//!
//! Default configuration (1 s rounds). `nodes` (default 30) converge for
//! 60 s; then, with `churn_secs` above 0, a node crashes every `churn_secs`
//! and comes back `churn_secs / 2` later (one node at a time, in turn).
//! After 120 s of that, `j` joins through the first node. The program
//! prints, every 5 s, how many of the running nodes the joiner holds live,
//! and the time it first held all of them.
use std::time::Duration;

use gossip_core::{sim::Sim, Config};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let churn: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let monitors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut s = Sim::new(seed, Config::default().monitors(monitors));
    s.record_events = false;
    s.add_node("n00", &[]);
    for i in 1..n {
        s.add_node(&format!("n{i:02}"), &["n00"]);
    }
    s.run_for(Duration::from_secs(60));
    let mut next_crash = 0usize;
    let mut down: Option<(String, u64)> = None;
    let step = |s: &mut Sim, t: u64, next: &mut usize, down: &mut Option<(String, u64)>| {
        if churn == 0 {
            return;
        }
        if let Some((id, back)) = down.clone() {
            if t >= back {
                s.restart(&id);
                *down = None;
            }
        }
        if t % churn == 0 && down.is_none() {
            let id = format!("n{:02}", 1 + *next % (n - 1));
            *next += 1;
            s.crash(&id);
            *down = Some((id, t + churn / 2));
        }
    };
    for t in 0..120 {
        step(&mut s, t, &mut next_crash, &mut down);
        s.run_for(Duration::from_secs(1));
    }
    s.add_node("j", &["n00"]);
    let mut first_all = None;
    for t in 120..420u64 {
        step(&mut s, t, &mut next_crash, &mut down);
        s.run_for(Duration::from_secs(1));
        let up: Vec<String> = s.up_ids().into_iter().filter(|id| id != "j").collect();
        let j = s.engine("j");
        let held = up
            .iter()
            .filter(|id| {
                j.peers().any(|v| {
                    v.id.as_str() == id.as_str() && v.status == gossip_core::PeerStatus::Live
                })
            })
            .count();
        if held == up.len() && first_all.is_none() {
            first_all = Some(t + 1 - 120);
        }
        if (t + 1) % 5 == 0 && t < 240 {
            println!(
                "{:4} s after joining: holds {held} of {} running nodes live; stale news ignored {}",
                t + 1 - 120,
                up.len(),
                j.stats().stale_gossip_ignored
            );
        }
    }
    match first_all {
        Some(t) => println!("the joiner first held every running node live {t} s after joining"),
        None => println!("the joiner never held every running node live within 300 s"),
    }
}

//! `sim_workload` with monitored liveness (`Config::monitors` 1): the same
//! join, key and 10 s of idle rounds, for `WORKLOAD=sim_workload_monitored
//! bench/profile.sh` (bench/NOTES.md, "Profile (callgrind)").

#[path = "sim_workload.rs"]
#[allow(dead_code)]
mod relayed;

fn main() {
    relayed::workload(gossip::Config::local().monitors(1));
}

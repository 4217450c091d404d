//! Five `gossip-node` processes on loopback: one is killed with SIGKILL, the
//! others report it dead; it restarts and is live again with its keys.
//!
//! Waits are on events read from each process's JSON lines, with generous
//! bounds; there are no fixed sleeps.

use serde_json::Value;

mod common;

struct Proc {
    proc: common::JsonProc,
    addr: String,
}

impl Proc {
    fn start(id: &str, seed: Option<&str>, sets: &[&str]) -> Proc {
        let mut cmd = common::gossip_node(id, "proc-test", seed);
        for kv in sets {
            cmd.args(["--set", kv]);
        }
        let mut proc = common::JsonProc::spawn(&mut cmd);
        let started = proc.wait_for("started", |v| v["event"] == "started");
        let addr = started["addr"].as_str().expect("addr").to_string();
        Proc { proc, addr }
    }

    /// Reads lines until one matches; panics after `common::LINE_LIMIT`.
    fn wait_for(&mut self, pred: impl FnMut(&Value) -> bool) -> Value {
        self.proc.wait_for("a matching line", pred)
    }

    fn kill(&mut self) {
        self.proc.kill();
    }
}

fn is(v: &Value, event: &str, peer: &str) -> bool {
    v["event"] == event && v["peer"] == peer
}

#[test]
fn five_processes_detect_a_kill_and_a_restart() {
    let mut procs = vec![Proc::start("p1", None, &["role=seed"])];
    let seed = procs[0].addr.clone();
    for i in 2..=5 {
        let kv = format!("role=worker-{i}");
        procs.push(Proc::start(&format!("p{i}"), Some(&seed), &[&kv]));
    }
    // Everyone learns everyone (joins are reported once per peer).
    for (i, p) in procs.iter_mut().enumerate() {
        let mut joined = std::collections::BTreeSet::new();
        while joined.len() < 4 {
            let v = p.wait_for(|v| v["event"] == "peer_joined");
            joined.insert(v["peer"].as_str().unwrap().to_string());
        }
        assert!(!joined.contains(&format!("p{}", i + 1)));
    }

    procs[2].kill();
    for (i, p) in procs.iter_mut().enumerate() {
        if i != 2 {
            p.wait_for(|v| is(v, "peer_dead", "p3"));
        }
    }

    let restarted = Proc::start("p3", Some(&seed), &["role=worker-3-again"]);
    procs[2] = restarted;
    for (i, p) in procs.iter_mut().enumerate() {
        if i != 2 {
            p.wait_for(|v| is(v, "peer_restarted", "p3"));
            p.wait_for(|v| is(v, "key_updated", "p3") && v["value"] == "worker-3-again");
        }
    }
}

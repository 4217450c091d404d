//! Helpers shared by the facade's integration tests. Each test binary uses
//! a part of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use gossip::{Config, Node, Transport};
use serde_json::Value;

/// A `gossip-node` command on a loopback port of its own, in `cluster`,
/// seeded with `seed` if given; callers add their flags.
pub(crate) fn gossip_node(id: &str, cluster: &str, seed: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gossip-node"));
    cmd.args(["--id", id, "--listen", "127.0.0.1:0", "--cluster", cluster]);
    if let Some(s) = seed {
        cmd.args(["--seed", s]);
    }
    cmd
}

/// Starts node `id` with `config`, `seeds` and `transport`.
pub(crate) async fn start_node(
    id: &str,
    config: Config,
    seeds: &[String],
    transport: impl Transport,
) -> Node {
    Node::builder(id)
        .config(config)
        .seeds(seeds.iter().cloned())
        .transport(transport)
        .start()
        .await
        .expect("node starts")
}

/// Spawns `cmd` (a `gossip-node`) with its stdout piped; a thread parses
/// each JSON line it prints and sends it down the returned channel.
pub(crate) fn spawn_json_lines(cmd: &mut Command) -> (Child, mpsc::Receiver<Value>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gossip-node");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Polls `cond` every 10 ms (of tokio time) until it holds; fails the test
/// naming `what` if `limit` passes first.
pub(crate) async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

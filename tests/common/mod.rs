//! Helpers shared by the facade's integration tests. Each test binary uses
//! a part of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

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

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

/// A `gossip-node` process and the JSON lines it prints; killed when
/// dropped.
pub(crate) struct JsonProc {
    child: Child,
    lines: mpsc::Receiver<Value>,
    /// Every line read so far.
    seen: Vec<Value>,
}

/// How long a wait for one line may take.
pub(crate) const LINE_LIMIT: Duration = Duration::from_secs(60);

impl JsonProc {
    /// Spawns `cmd` (see [`spawn_json_lines`]).
    pub(crate) fn spawn(cmd: &mut Command) -> JsonProc {
        let (child, lines) = spawn_json_lines(cmd);
        JsonProc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads new lines until one matches; panics after [`LINE_LIMIT`].
    pub(crate) fn wait_for(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + LINE_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(e) => panic!("{what}: no such line within {LINE_LIMIT:?}: {e}"),
            }
        }
    }

    /// The first line ever read that matches, or the next new one that does.
    pub(crate) fn find(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        match self.seen.iter().find(|v| pred(v)) {
            Some(v) => v.clone(),
            None => self.wait_for(what, pred),
        }
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for JsonProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

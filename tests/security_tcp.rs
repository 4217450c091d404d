//! The keyring over real TCP on loopback: a keyed cluster rotates its key
//! with no peer ever reported dead, while nodes without the key (none, a
//! wrong one) try to join and are refused; and `gossip-node --key-file`.
//!
//! Real time (sockets do not follow tokio's paused clock): every wait is on
//! a condition with a generous bound, never a fixed sleep.

use std::process::Child;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use gossip::transport::tcp::{TcpConfig, TcpTransport};
use gossip::{Config, Event, Key, Keyring, Node, Stats};

mod common;

const LIMIT: Duration = Duration::from_secs(30);

fn key(n: u8) -> Key {
    Key::from_bytes(&[n; 32]).unwrap()
}

async fn node(id: &str, seeds: &[String], keyring: Option<Keyring>) -> Node {
    let mut c = TcpConfig::default();
    c.max_frame_bytes = Config::local().max_frame_bytes;
    let t = TcpTransport::bind_with("127.0.0.1:0", c)
        .await
        .expect("bind loopback");
    let mut config = Config::local().cluster_id("tcp-keyed");
    config.keyring = keyring;
    common::start_node(id, config, seeds, t).await
}

async fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    common::wait_until(what, LIMIT, cond).await
}

/// Waits until every node accepted `n` more frames than in `before`.
async fn wait_rounds(nodes: &[Node], n: u64, what: &str) {
    let before: Vec<Stats> = nodes.iter().map(Node::stats).collect();
    wait_for(what, || {
        nodes
            .iter()
            .zip(&before)
            .all(|(node, b)| node.stats().frames_in >= b.frames_in + n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_over_tcp_while_outsiders_are_refused() {
    let (old, new) = (key(1), key(2));
    let ring = Keyring::new(old.clone());
    let mut nodes: Vec<Node> = Vec::new();
    let mut seeds = Vec::new();
    for i in 1..=3 {
        let n = node(&format!("n{i}"), &seeds, Some(ring.clone())).await;
        n.set("index", i.to_string()).unwrap();
        if seeds.is_empty() {
            seeds.push(n.addr().to_string());
        }
        nodes.push(n);
    }
    wait_for("keyed cluster converges", || {
        nodes.iter().all(|n| n.live_peers().len() == 2)
    })
    .await;
    let deaths = Arc::new(Mutex::new(Vec::new()));
    for n in &nodes {
        let mut events = n.events();
        let deaths = deaths.clone();
        let me = n.id().to_string();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Event::PeerDead { peer } = e {
                    deaths.lock().unwrap().push(format!("{me} saw {peer} dead"));
                }
            }
        });
    }

    // Outsiders seeded with a member: no key, and the wrong key.
    let plain = node("plain", &seeds, None).await;
    let wrong = node("wrong", &seeds, Some(Keyring::new(key(9)))).await;
    let target = &nodes[0];
    wait_for("outsiders' frames are refused", || {
        let s = target.stats();
        s.dropped_plaintext > 0 && s.dropped_unknown_key > 0
    })
    .await;

    // The rotation, each step on every node, with exchanges in between.
    for n in &nodes {
        n.add_key(new.clone()).await.unwrap();
    }
    wait_rounds(&nodes, 5, "exchanges after adding the key").await;
    for n in &nodes {
        n.set_primary_key(new.id()).await.unwrap();
        wait_rounds(&nodes, 3, "exchanges with mixed primaries").await;
    }
    for n in &nodes {
        n.remove_key(old.id()).await.unwrap();
    }
    nodes[1].set("after", "rotation").unwrap();
    wait_for("a change after the rotation spreads", || {
        nodes
            .iter()
            .all(|n| n.get(nodes[1].id(), "after").as_deref() == Some(&b"rotation"[..]))
    })
    .await;
    wait_rounds(&nodes, 10, "exchanges after the rotation").await;

    assert!(
        deaths.lock().unwrap().is_empty(),
        "{:?}",
        deaths.lock().unwrap()
    );
    for n in &nodes {
        assert_eq!(n.live_peers().len(), 2, "{}", n.id());
        assert!(n.dead_peers().is_empty());
        assert!(
            n.peers()
                .iter()
                .all(|r| r.id.as_str() != "plain" && r.id.as_str() != "wrong"),
            "{} let an outsider in",
            n.id()
        );
        assert_eq!(n.stats().dropped_bad_tag, 0, "{}", n.id());
    }
    assert!(plain.live_peers().is_empty() && wrong.live_peers().is_empty());
    for n in [plain, wrong].iter().chain(&nodes) {
        n.shutdown().await.unwrap();
    }
}

/// A `gossip-node` process, its JSON lines on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Proc {
    fn start(id: &str, key_file: &std::path::Path, seed: Option<&str>) -> Proc {
        let mut cmd = common::gossip_node(id, "proc-keyed", seed);
        cmd.arg("--key-file").arg(key_file);
        let (child, rx) = common::spawn_json_lines(&mut cmd);
        Proc { child, lines: rx }
    }

    /// The next line whose `event` is `name`, within the limit.
    fn expect(&self, name: &str) -> serde_json::Value {
        let until = Instant::now() + LIMIT;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["event"] == name => return v,
                Ok(_) => {}
                Err(e) => panic!("no {name} event within {LIMIT:?}: {e}"),
            }
        }
    }

    /// Every line until `d` passes.
    fn lines_for(&self, d: Duration) -> Vec<serde_json::Value> {
        let until = Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(v) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            out.push(v);
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn gossip_node_with_a_key_file_joins_only_its_keyholders() {
    let dir = std::env::temp_dir().join(format!("gossip-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (shared, other) = (dir.join("cluster.keys"), dir.join("other.keys"));
    std::fs::write(&shared, format!("# test key\n{}\n", key(1).to_hex())).unwrap();
    std::fs::write(&other, format!("{}\n", key(2).to_hex())).unwrap();

    let a = Proc::start("a", &shared, None);
    let started = a.expect("started");
    assert_eq!(started["keys"][0], key(1).id().to_string());
    let addr = started["addr"].as_str().unwrap().to_string();
    let b = Proc::start("b", &shared, Some(&addr));
    let joined = b.expect("peer_joined");
    assert_eq!(joined["peer"], "a");
    // A node with another key, seeded with `a`, never joins; `a` never
    // hears of it either.
    let c = Proc::start("c", &other, Some(&addr));
    c.expect("started");
    let c_lines = c.lines_for(Duration::from_secs(3));
    assert!(
        !c_lines.iter().any(|v| v["event"] == "peer_joined"),
        "{c_lines:?}"
    );
    let a_lines = a.lines_for(Duration::from_millis(500));
    assert!(!a_lines.iter().any(|v| v["peer"] == "c"), "{a_lines:?}");
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&dir);
}

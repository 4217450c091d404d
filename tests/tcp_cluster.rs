//! Nodes over real TCP on loopback, in one process: convergence, a crash and
//! a rejoin, and hostile input at the node level.
//!
//! These run in real time (sockets do not follow tokio's paused clock), so
//! every wait is on a condition with a generous bound, never a fixed sleep.

use std::time::Duration;

use gossip::transport::tcp::{TcpConfig, TcpTransport};
use gossip::{Config, Node, PeerId, PeerRecord, PeerStatus};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod common;

const LIMIT: Duration = Duration::from_secs(20);

async fn transport(addr: &str, idle: Option<Duration>) -> TcpTransport {
    let mut c = TcpConfig::default();
    c.max_frame_bytes = Config::local().max_frame_bytes;
    if let Some(idle) = idle {
        c.idle_timeout = idle;
    }
    TcpTransport::bind_with(addr, c)
        .await
        .expect("bind loopback")
}

async fn node(id: &str, seeds: &[String], t: TcpTransport, cluster: &str) -> Node {
    common::start_node(id, Config::local().cluster_id(cluster), seeds, t).await
}

async fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    common::wait_until(what, LIMIT, cond).await
}

/// Starts `n` nodes n1..nN, all seeded with n1, and waits until they converge.
async fn cluster(n: usize, idle: Option<Duration>) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut seed = Vec::new();
    for i in 1..=n {
        let t = transport("127.0.0.1:0", idle).await;
        let node = node(&format!("n{i}"), &seed, t, "tcp-test").await;
        node.set("index", i.to_string()).unwrap();
        if seed.is_empty() {
            seed.push(node.addr().to_string());
        }
        nodes.push(node);
    }
    wait_for("cluster converges", || {
        nodes.iter().all(|a| {
            a.live_peers().len() == n - 1 && nodes.iter().all(|b| a.get(b.id(), "index").is_some())
        })
    })
    .await;
    nodes
}

/// A node's view: records and every peer's keys.
fn snapshot(n: &Node) -> (Vec<PeerRecord>, Vec<Vec<(String, gossip::Bytes)>>) {
    let peers = n.peers();
    let keys = peers.iter().map(|p| n.keys(&p.id)).collect();
    (peers, keys)
}

#[tokio::test]
async fn five_nodes_over_tcp_converge_detect_a_crash_and_a_rejoin() {
    let nodes = cluster(5, None).await;
    let crashed = nodes[2].clone();
    let addr = crashed.addr().to_string();
    let old_gen = crashed.generation();
    crashed.shutdown().await.unwrap();
    let others: Vec<&Node> = nodes.iter().filter(|n| n.id().as_str() != "n3").collect();
    wait_for("all report n3 dead", || {
        others
            .iter()
            .all(|n| n.dead_peers() == vec![PeerId::from("n3")])
    })
    .await;

    // Rejoin on the same port with a new generation.
    let t = transport(&addr, None).await;
    let seed = vec![nodes[0].addr().to_string()];
    let back = node("n3", &seed, t, "tcp-test").await;
    back.set("index", "3-again").unwrap();
    assert!(back.generation() > old_gen);
    wait_for("all see n3 live again with its keys", || {
        others.iter().all(|n| {
            n.live_peers().len() == 4
                && n.get(&PeerId::from("n3"), "index").as_deref() == Some(&b"3-again"[..])
                && n.peers()
                    .iter()
                    .any(|r| r.id.as_str() == "n3" && r.generation == back.generation())
        })
    })
    .await;
    back.shutdown().await.unwrap();
    for n in others {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn hostile_tcp_input_is_dropped_and_counted_while_the_node_stays_live() {
    let nodes = cluster(3, Some(Duration::from_millis(300))).await;
    let target = &nodes[0];
    let addr = target.addr().to_string();
    let before = snapshot(target);
    let base = target.stats();

    // Garbage inside a well-formed length prefix reaches the engine: undecodable.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    s.write_all(&(garbage.len() as u32).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&garbage).await.unwrap();
    s.flush().await.unwrap();
    wait_for("garbage frame counted", || {
        target.stats().dropped_malformed > base.dropped_malformed
    })
    .await;

    // A 4 GiB length prefix closes the connection before any allocation.
    let mut s2 = TcpStream::connect(&addr).await.unwrap();
    s2.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        .await
        .unwrap();
    wait_for("oversized prefix counted", || {
        target.stats().transport.frames_dropped > base.transport.frames_dropped
    })
    .await;

    // Half a frame, then silence: dropped after the idle timeout.
    let dropped = target.stats().transport.frames_dropped;
    let mut s3 = TcpStream::connect(&addr).await.unwrap();
    s3.write_all(&100u32.to_be_bytes()).await.unwrap();
    s3.write_all(&[7u8; 40]).await.unwrap();
    wait_for("half frame dropped after idle timeout", || {
        target.stats().transport.frames_dropped > dropped
    })
    .await;

    // 1,000 connections at once.
    let mut conns = Vec::new();
    for _ in 0..1000 {
        if let Ok(c) = TcpStream::connect(&addr).await {
            conns.push(c);
        }
    }
    let closed_before = target.stats().transport.connections_closed;
    drop(conns);

    // A well-formed frame from another cluster: a node of cluster "other".
    let t = transport("127.0.0.1:0", None).await;
    let stranger = node("stranger", std::slice::from_ref(&addr), t, "other").await;
    wait_for("foreign frames counted", || {
        target.stats().dropped_wrong_cluster > base.dropped_wrong_cluster
    })
    .await;
    stranger.shutdown().await.unwrap();

    // Through all of it the node stayed in its cluster, with the same state.
    wait_for("connections closed", || {
        target.stats().transport.connections_closed > closed_before
    })
    .await;
    assert_eq!(target.live_peers().len(), 2);
    for n in &nodes[1..] {
        assert_eq!(n.live_peers().len(), 2, "{} lost a peer", n.id());
        assert!(n.dead_peers().is_empty());
    }
    assert_eq!(
        snapshot(target),
        before,
        "hostile input changed the node's state"
    );
    assert!(!target.peers().iter().any(|r| r.id.as_str() == "stranger"));
    assert!(target.peers().iter().all(|r| r.status == PeerStatus::Live));
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

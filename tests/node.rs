//! The node driver on the memory transport, under paused tokio time.

use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Event, Node, PeerId, PeerStatus};

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Generations are fixed too (the engine seeds its generator from the
/// generation as well), so a run is the same every time; a restart passes a
/// higher `seed` and so gets a higher generation.
async fn start(net: &MemNetwork, id: &str, seed: u64) -> Node {
    Node::builder(id)
        .config(Config::local().rng_seed(seed))
        .generation(1_700_000_000_000 + seed)
        .seeds(["mem:a"])
        .transport(net.bind(&format!("mem:{id}")))
        .start()
        .await
        .expect("node starts")
}

async fn cluster(net: &MemNetwork) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, id) in IDS.iter().enumerate() {
        nodes.push(start(net, id, i as u64).await);
    }
    wait_for(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.live_peers().len() == 4)
    })
    .await;
    nodes
}

/// Waits (in virtual time) until `cond` holds, polling every 10 ms.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn pid(s: &str) -> PeerId {
    PeerId::from(s)
}

#[tokio::test(start_paused = true)]
async fn five_nodes_converge_share_keys_and_see_a_crash() {
    let net = MemNetwork::new(1);
    let nodes = cluster(&net).await;
    nodes[2].set("role", "db").unwrap();
    wait_for(Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|n| n.get(&pid("c"), "role").as_deref() == Some(&b"db"[..]))
    })
    .await;
    nodes[2].set("role", "cache").unwrap();
    wait_for(Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|n| n.get(&pid("c"), "role").as_deref() == Some(&b"cache"[..]))
    })
    .await;
    nodes[2].delete("role").unwrap();
    wait_for(Duration::from_secs(5), || {
        nodes.iter().all(|n| n.get(&pid("c"), "role").is_none())
    })
    .await;

    nodes[3].shutdown().await.unwrap();
    wait_for(Duration::from_secs(10), || {
        nodes
            .iter()
            .filter(|n| n.id() != &pid("d"))
            .all(|n| n.dead_peers() == vec![pid("d")])
    })
    .await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn events_stream_tells_joins_updates_and_leaves() {
    let net = MemNetwork::new(2);
    let a = start(&net, "a", 0).await;
    let mut events = a.events();
    let mut membership = a.membership();
    let b = start(&net, "b", 1).await;
    b.set("http", "10.0.0.2:80").unwrap();
    let mut seen = Vec::new();
    while !seen.iter().any(|e| matches!(e, Event::KeyUpdated { .. })) {
        seen.push(events.recv().await.unwrap());
    }
    assert_eq!(
        seen[0],
        Event::PeerJoined {
            peer: pid("b"),
            addr: "mem:b".into()
        }
    );
    assert!(seen.contains(&Event::KeyUpdated {
        peer: pid("b"),
        key: "http".into(),
        value: "10.0.0.2:80".into(),
        version: 1
    }));
    membership.wait_for(|m| m == &vec![pid("b")]).await.unwrap();

    b.leave().await.unwrap();
    loop {
        match events.recv().await.unwrap() {
            Event::PeerLeft { peer } => {
                assert_eq!(peer, pid("b"));
                break;
            }
            Event::PeerDead { .. } => panic!("a leaving peer must not be reported dead"),
            _ => {}
        }
    }
    assert_eq!(
        a.peers().iter().find(|r| r.id == pid("b")).unwrap().status,
        PeerStatus::Left
    );
    assert!(b.set("x", "y").is_err(), "a node that left refuses writes");
    a.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn leave_gives_peer_left_at_every_node() {
    let net = MemNetwork::new(3);
    let nodes = cluster(&net).await;
    let mut streams: Vec<_> = nodes[..4].iter().map(|n| n.events()).collect();
    nodes[4].leave().await.unwrap();
    for (i, s) in streams.iter_mut().enumerate() {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), s.recv())
                .await
                .expect("PeerLeft in time")
            {
                Some(Event::PeerLeft { peer }) if peer == pid("e") => break,
                Some(Event::PeerDead { peer }) => panic!("node {i} saw {peer} dead"),
                _ => {}
            }
        }
    }
    for n in &nodes[..4] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_the_same_id_supersedes_the_old_state() {
    let net = MemNetwork::new(4);
    let nodes = cluster(&net).await;
    nodes[1].set("old", "1").unwrap();
    wait_for(Duration::from_secs(5), || {
        nodes.iter().all(|n| n.get(&pid("b"), "old").is_some())
    })
    .await;
    let old_gen = nodes[1].generation();
    nodes[1].shutdown().await.unwrap();
    let b2 = start(&net, "b", 99).await;
    assert!(b2.generation() > old_gen);
    b2.set("new", "2").unwrap();
    let others = [&nodes[0], &nodes[2], &nodes[3], &nodes[4]];
    wait_for(Duration::from_secs(10), || {
        others.iter().all(|n| {
            n.get(&pid("b"), "new").is_some()
                && n.get(&pid("b"), "old").is_none()
                && n.peers().iter().any(|r| {
                    r.id == pid("b")
                        && r.generation == b2.generation()
                        && r.status == PeerStatus::Live
                })
        })
    })
    .await;
    b2.shutdown().await.unwrap();
    for n in others {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn partition_is_detected_both_ways_and_heals() {
    let net = MemNetwork::new(5);
    let nodes = cluster(&net).await;
    net.partition(&["mem:a", "mem:b"], &["mem:c", "mem:d", "mem:e"]);
    wait_for(Duration::from_secs(10), || {
        nodes[0].live_peers() == vec![pid("b")] && nodes[2].live_peers() == vec![pid("d"), pid("e")]
    })
    .await;
    for (i, n) in nodes.iter().enumerate() {
        n.set("during", format!("v{i}")).unwrap();
    }
    net.heal();
    wait_for(Duration::from_secs(20), || {
        nodes.iter().all(|n| {
            n.live_peers().len() == 4
                && IDS.iter().enumerate().all(|(i, id)| {
                    n.get(&pid(id), "during").as_deref() == Some(format!("v{i}").as_bytes())
                })
        })
    })
    .await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn no_false_deaths_at_20_percent_loss_for_10_minutes() {
    let net = MemNetwork::new(6);
    let nodes = cluster(&net).await;
    let mut streams: Vec<_> = nodes.iter().map(|n| n.events()).collect();
    net.set_loss(0.2);
    net.set_latency(Duration::from_millis(2));
    tokio::time::sleep(Duration::from_secs(600)).await;
    for (i, s) in streams.iter_mut().enumerate() {
        while let Ok(Some(e)) = tokio::time::timeout(Duration::ZERO, s.recv()).await {
            assert!(
                !matches!(e, Event::PeerDead { .. } | Event::Lagged { .. }),
                "node {i}: {e:?}"
            );
        }
    }
    assert!(nodes.iter().all(|n| n.live_peers().len() == 4));
    let s = net.stats();
    assert!(s.frames_dropped > 0 && s.frames_delivered > s.frames_dropped);
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn oversized_keys_and_values_are_refused_without_state_change() {
    let net = MemNetwork::new(7);
    let a = start(&net, "a", 0).await;
    let big = vec![0u8; a.config().max_value_bytes + 1];
    assert!(matches!(
        a.set("k", big),
        Err(gossip::Error::Key(gossip::KeyError::ValueTooLarge { .. }))
    ));
    assert!(matches!(
        a.set("", "v"),
        Err(gossip::Error::Key(gossip::KeyError::Empty))
    ));
    let long = "k".repeat(a.config().max_key_bytes + 1);
    assert!(matches!(
        a.set(long, "v"),
        Err(gossip::Error::Key(gossip::KeyError::KeyTooLong { .. }))
    ));
    assert!(a.keys(a.id()).is_empty());
    a.shutdown().await.unwrap();
    assert!(matches!(a.set("k", "v"), Err(gossip::Error::Stopped)));
}

#[tokio::test(start_paused = true)]
async fn a_node_without_transport_or_with_a_bad_config_does_not_start() {
    let r = Node::builder("x").config(Config::local()).start().await;
    assert!(matches!(r, Err(gossip::Error::Builder(_))));
    let net = MemNetwork::new(8);
    let mut c = Config::local();
    c.fanout = 0;
    let r = Node::builder("x")
        .config(c)
        .transport(net.bind("mem:x"))
        .start()
        .await;
    assert!(matches!(r, Err(gossip::Error::Config(_))));
}

#[test]
fn errors_are_send_sync_static() {
    fn check<T: Send + Sync + 'static + std::error::Error>() {}
    check::<gossip::Error>();
    check::<gossip::DecodeError>();
    check::<gossip::ConfigError>();
    check::<gossip::TransportError>();
    check::<gossip::KeyError>();
    check::<gossip::StorageError>();
}

/// A storage whose every write fails.
struct Refusing;

impl gossip::Storage for Refusing {
    fn put_peer(&self, _: gossip::PeerRecord) -> Result<(), gossip::StorageError> {
        Err(gossip::StorageError::Backend("refused".into()))
    }
    fn remove_peer(&self, _: &PeerId) -> Result<(), gossip::StorageError> {
        Err(gossip::StorageError::Backend("refused".into()))
    }
    fn peer(&self, _: &PeerId) -> Option<gossip::PeerRecord> {
        None
    }
    fn peers(&self) -> Vec<gossip::PeerRecord> {
        Vec::new()
    }
    fn put_key(
        &self,
        _: &PeerId,
        _: &str,
        _: gossip::Versioned,
    ) -> Result<(), gossip::StorageError> {
        Err(gossip::StorageError::Backend("refused".into()))
    }
    fn remove_key(&self, _: &PeerId, _: &str) -> Result<(), gossip::StorageError> {
        Err(gossip::StorageError::Backend("refused".into()))
    }
    fn clear_keys(&self, _: &PeerId) -> Result<(), gossip::StorageError> {
        Err(gossip::StorageError::Backend("refused".into()))
    }
    fn get(&self, _: &PeerId, _: &str) -> Option<gossip::Versioned> {
        None
    }
    fn keys(&self, _: &PeerId) -> Vec<(String, gossip::Versioned)> {
        Vec::new()
    }
}

/// The handles read the engine's table; a storage given to the builder is
/// written through to (and holds what the handles read), and one that
/// refuses every write changes nothing the handles see.
#[tokio::test(start_paused = true)]
async fn reads_come_from_the_engine_and_a_given_storage_is_written_through() {
    let net = MemNetwork::new(7);
    let mirror = gossip::MemoryStorage::new();
    let with = |id: &str, seed: u64| {
        Node::builder(id)
            .config(Config::local().rng_seed(seed))
            .generation(1_700_000_000_000 + seed)
            .seeds(["mem:a"])
            .transport(net.bind(&format!("mem:{id}")))
    };
    let a = with("a", 1).start().await.unwrap();
    let b = with("b", 2).storage(mirror.clone()).start().await.unwrap();
    let c = with("c", 3).storage(Refusing).start().await.unwrap();
    let nodes = [&a, &b, &c];
    for (n, v) in nodes.iter().zip(["x", "y", "z"]) {
        n.set("role", v).unwrap();
    }
    wait_for(Duration::from_secs(10), || {
        nodes.iter().all(|n| {
            n.live_peers().len() == 2
                && ["a", "b", "c"]
                    .iter()
                    .all(|p| n.get(&pid(p), "role").is_some())
        })
    })
    .await;
    for n in nodes {
        assert_eq!(n.keys(&pid("c")), vec![("role".to_string(), "z".into())]);
        let ids: Vec<_> = n.peers().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![pid("a"), pid("b"), pid("c")], "at {}", n.id());
    }
    // b's storage holds what b's handles read.
    let mut stored = gossip::Storage::peers(&mirror);
    stored.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(stored, b.peers());
    for p in ["a", "b", "c"] {
        let keys: Vec<_> = gossip::Storage::keys(&mirror, &pid(p))
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        assert_eq!(keys, b.keys(&pid(p)), "keys of {p}");
    }
    assert_eq!(a.stats().storage_errors, 0);
    assert_eq!(b.stats().storage_errors, 0);
    assert!(c.stats().storage_errors > 0);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// `set` refuses a new key past `max_keys_per_peer` up front, counting the
/// keys in the engine's table; replacing a key that exists is still fine.
#[tokio::test(start_paused = true)]
async fn a_new_key_past_the_limit_is_refused_up_front() {
    let net = MemNetwork::new(7);
    let mut config = Config::local().rng_seed(1);
    config.max_keys_per_peer = 2;
    let a = Node::builder("a")
        .config(config)
        .transport(net.bind("mem:a"))
        .start()
        .await
        .unwrap();
    a.set("k1", "1").unwrap();
    a.set("k2", "2").unwrap();
    wait_for(Duration::from_secs(1), || a.keys(a.id()).len() == 2).await;
    assert!(matches!(
        a.set("k3", "3"),
        Err(gossip::Error::Key(gossip::KeyError::TooManyKeys { max: 2 }))
    ));
    a.set("k1", "one").unwrap();
    wait_for(Duration::from_secs(1), || {
        a.get(a.id(), "k1").as_deref() == Some(&b"one"[..])
    })
    .await;
    assert_eq!(a.keys(a.id()).len(), 2);
    a.shutdown().await.unwrap();
}

/// Events taken from the builder start with the first round: the joins a
/// node's first exchange brings are in the stream even when the node's task
/// ran them before anyone read (as a `gossip-node` on a busy machine did,
/// and so printed no join at all). A stream taken after the join has none.
#[tokio::test(start_paused = true)]
async fn builder_events_hold_the_first_rounds_joins() {
    let net = MemNetwork::new(1);
    let a = start(&net, "a", 0).await;
    let builder = Node::builder("b")
        .config(Config::local().rng_seed(1))
        .generation(1_700_000_000_001)
        .seeds(["mem:a"])
        .transport(net.bind("mem:b"));
    let mut early = builder.events();
    let b = builder.start().await.expect("node starts");
    wait_for(Duration::from_secs(5), || b.live_peers().len() == 1).await;
    let mut late = b.events();
    let first = tokio::time::timeout(Duration::from_secs(1), early.recv()).await;
    assert!(
        matches!(&first, Ok(Some(Event::PeerJoined { peer, .. })) if *peer == pid("a")),
        "the builder's stream starts with a's join: {first:?}"
    );
    let after = tokio::time::timeout(Duration::from_secs(1), late.recv()).await;
    assert!(
        after.is_err(),
        "a stream taken after the join has nothing to say yet: {after:?}"
    );
    drop(a);
}

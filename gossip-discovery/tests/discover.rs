//! A node started without seeds finds its cluster through each discoverer
//! that can run on loopback: a DNS name, a topic on a local DHT testnet,
//! and seeds that move at runtime. (Multicast DNS would send to the host's
//! real network; it is tested in network namespaces by the root package's
//! `tests/netns.rs`, with DNS names that change under `/etc/hosts`.)
//!
//! Waits poll with generous bounds; there are no fixed sleeps.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gossip_core::{Config, Node, PeerId};
use gossip_discovery::{Dht, Discover, Discovery, DiscoveryError, Dns, Options};
use gossip_transport_tcp::TcpTransport;

const LIMIT: Duration = Duration::from_secs(60);

async fn node(id: &str, cluster: &str, seeds: &[&str]) -> Node {
    let transport = TcpTransport::bind("127.0.0.1:0").await.expect("bind");
    Node::builder(id)
        .config(Config::local().cluster_id(cluster))
        .seeds(seeds.iter().map(|s| s.to_string()))
        .transport(transport)
        .start()
        .await
        .expect("node starts")
}

fn port(n: &Node) -> u16 {
    n.addr().rsplit_once(':').unwrap().1.parse().unwrap()
}

/// Waits until every node sees every other live.
async fn wait_formed(what: &str, nodes: &[&Node]) {
    let start = tokio::time::Instant::now();
    loop {
        let formed = nodes.iter().all(|n| {
            let live = n.live_peers();
            nodes
                .iter()
                .filter(|m| m.id() != n.id())
                .all(|m| live.contains(m.id()))
        });
        if formed {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "{what}: not formed within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_seeds_finds_the_cluster_by_dns() {
    let a = node("a", "dns-test", &[]).await;
    let b = node("b", "dns-test", &[a.addr()]).await;
    let c = node("c", "dns-test", &[]).await;
    // `localhost` resolves (through /etc/hosts) to 127.0.0.1, perhaps ::1.
    let d = Discovery::spawn(
        c.clone(),
        Dns::new("localhost", port(&a)),
        Options::default().interval(Duration::from_millis(200)),
    );
    wait_formed("dns", &[&a, &b, &c]).await;
    assert!(d.seeds().borrow().contains(&a.addr().to_string()));
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_without_seeds_find_each_other_on_a_dht_testnet() {
    let testnet = tokio::task::spawn_blocking(|| {
        mainline::Testnet::builder(5)
            .bind_address(Ipv4Addr::LOCALHOST)
            .build()
            .expect("testnet")
    })
    .await
    .unwrap();
    let mut nodes = Vec::new();
    let mut discoveries = Vec::new();
    for id in ["a", "b", "c"] {
        let n = node(id, "dht-test", &[]).await;
        let dht = Dht::builder("gossip-discovery-test")
            .bind(Ipv4Addr::LOCALHOST)
            .announce_port(port(&n))
            .bootstrap(testnet.bootstrap.clone())
            .start()
            .expect("dht node");
        let opts = Options::default().interval(Duration::from_millis(300));
        discoveries.push(Discovery::spawn(n.clone(), dht, opts));
        nodes.push(n);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_formed("dht", &refs).await;
    // Each finds the others through the DHT too, not through gossip alone
    // (the first node's first lookup may run before the others announced).
    for (n, d) in nodes.iter().zip(&discoveries) {
        let mut seeds = d.seeds();
        let found = tokio::time::timeout(LIMIT, seeds.wait_for(|s| !s.is_empty()))
            .await
            .unwrap_or_else(|_| panic!("{}: no seeds from the DHT within {LIMIT:?}", n.id()))
            .expect("discovery running")
            .clone();
        assert!(!found.contains(&n.addr().to_string()));
        let others: Vec<String> = nodes
            .iter()
            .filter(|m| m.id() != n.id())
            .map(|m| m.addr().to_string())
            .collect();
        assert!(
            found.iter().all(|s| others.contains(s)),
            "{found:?} not among {others:?}"
        );
    }
    drop(discoveries);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// A discoverer whose answer the test changes, standing in for a DNS
/// record; `None` fails the lookup. Counts its calls.
struct Moving {
    answer: Arc<Mutex<Option<Vec<String>>>>,
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Discover for Moving {
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| DiscoveryError::Dht("lookup failed (test)".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_moves_is_followed_and_a_failed_lookup_keeps_it() {
    let a = node("a", "move-test", &[]).await;
    // Nothing listens at the first answer (a port bound and dropped).
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let answer = Arc::new(Mutex::new(Some(vec![gone.clone()])));
    let calls = Arc::new(AtomicUsize::new(0));
    let b = node("b", "move-test", &[]).await;
    let moving = Moving {
        answer: answer.clone(),
        calls: calls.clone(),
    };
    let d = Discovery::spawn(
        b.clone(),
        moving,
        Options::default().interval(Duration::from_millis(50)),
    );
    let mut seeds = d.seeds();
    seeds.wait_for(|s| *s == [gone.clone()]).await.unwrap();
    assert!(b.live_peers().is_empty());
    *answer.lock().unwrap() = Some(vec![a.addr().to_string()]);
    wait_formed("moved seed", &[&a, &b]).await;
    assert_eq!(*d.seeds().borrow(), [a.addr().to_string()]);
    assert!(a.live_peers().contains(&PeerId::from("b")));

    *answer.lock().unwrap() = None;
    let before = calls.load(Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    while calls.load(Ordering::SeqCst) < before + 3 {
        assert!(start.elapsed() < LIMIT, "discovery stopped calling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*d.seeds().borrow(), [a.addr().to_string()]);
    for n in [a, b] {
        n.shutdown().await.unwrap();
    }
}

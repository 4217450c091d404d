//! The keyring through the node API on the memory transport, under paused
//! tokio time: key rotation in a running cluster with no peer ever reported
//! dead, and a node holding only a retired key locked out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Error, Event, Key, Keyring, KeyringError, Node, PeerId};

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

fn key(n: u8) -> Key {
    Key::from_bytes(&[n; 32]).unwrap()
}

async fn start(net: &MemNetwork, id: &str, seed: u64, keyring: Keyring) -> Node {
    Node::builder(id)
        .config(Config::local().rng_seed(seed).keyring(keyring))
        .seeds(["mem:a"])
        .transport(net.bind(&format!("mem:{id}")))
        .start()
        .await
        .expect("node starts")
}

/// Waits (in virtual time) until `cond` holds, polling every 10 ms.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Collects every `PeerDead` any of `nodes` reports, from now on.
fn watch_deaths(nodes: &[Node]) -> Arc<Mutex<Vec<String>>> {
    let deaths = Arc::new(Mutex::new(Vec::new()));
    for n in nodes {
        let mut events = n.events();
        let (deaths, me) = (deaths.clone(), n.id().to_string());
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let Event::PeerDead { peer } = e {
                    deaths.lock().unwrap().push(format!("{me} saw {peer} dead"));
                }
            }
        });
    }
    deaths
}

#[tokio::test(start_paused = true)]
async fn keys_rotate_over_the_memory_transport_without_a_death() {
    let net = MemNetwork::new(5);
    let (old, new) = (key(1), key(2));
    // One keyring cloned into every config: clones share a nonce generator.
    let ring = Keyring::new(old.clone());
    let mut nodes = Vec::new();
    for (i, id) in IDS.iter().enumerate() {
        nodes.push(start(&net, id, i as u64, ring.clone()).await);
    }
    wait_for("cluster converges", Duration::from_secs(30), || {
        nodes.iter().all(|n| n.live_peers().len() == 4)
    })
    .await;
    let deaths = watch_deaths(&nodes);
    let pause = || tokio::time::sleep(Duration::from_millis(300));

    // 1. Every node learns the new key (node by node, rounds in between).
    for n in &nodes {
        assert_eq!(n.add_key(new.clone()).await.unwrap(), new.id());
        pause().await;
    }
    // 2. Every node seals with it; for a while some seal with the old one.
    for (i, n) in nodes.iter().enumerate() {
        n.set_primary_key(new.id()).await.unwrap();
        if i == 2 {
            n.set("mid", "rotation").unwrap();
        }
        pause().await;
    }
    // 3. Every node drops the old key.
    for n in &nodes {
        n.remove_key(old.id()).await.unwrap();
        assert_eq!(n.key_ids().await.unwrap(), vec![new.id()]);
        pause().await;
    }
    wait_for(
        "the change made mid-rotation spreads",
        Duration::from_secs(5),
        || {
            nodes
                .iter()
                .all(|n| n.get(&PeerId::from("c"), "mid").as_deref() == Some(&b"rotation"[..]))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        deaths.lock().unwrap().is_empty(),
        "{:?}",
        deaths.lock().unwrap()
    );
    for n in &nodes {
        assert_eq!(n.live_peers().len(), 4, "{}", n.id());
        let s = n.stats();
        assert_eq!(
            s.dropped_unknown_key + s.dropped_bad_tag,
            0,
            "{}: {s:?}",
            n.id()
        );
    }

    // A node that still holds only the retired key cannot join.
    let straggler = Node::builder("old")
        .config(
            Config::local()
                .rng_seed(9)
                .keyring(Keyring::new(old.clone())),
        )
        .seeds(["mem:a", "mem:b"])
        .transport(net.bind("mem:old"))
        .start()
        .await
        .unwrap();
    let refused = nodes[0].stats().dropped_unknown_key;
    wait_for(
        "the straggler's frames are refused",
        Duration::from_secs(5),
        || nodes[0].stats().dropped_unknown_key > refused,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(straggler.live_peers().is_empty());
    for n in &nodes {
        assert!(!n.peers().iter().any(|r| r.id.as_str() == "old"));
    }

    // The primary cannot be removed, nor an unknown key made primary.
    assert!(matches!(
        nodes[0].remove_key(new.id()).await,
        Err(Error::Keyring(KeyringError::RemovePrimary(_)))
    ));
    assert!(matches!(
        nodes[0].set_primary_key(old.id()).await,
        Err(Error::Keyring(KeyringError::UnknownKey(_)))
    ));
    straggler.shutdown().await.unwrap();
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

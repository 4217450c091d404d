//! The cluster-wide set (dat-gossip) on the memory transport, under paused
//! tokio time: advertisements spread, withdrawals stick, both sides of a
//! partition converge to one union after the heal, and the change stream
//! tells what joined and left.

use std::time::Duration;

use gossip::set::{ClusterSet, SetError};
use gossip::transport::mem::MemNetwork;
use gossip::{Bytes, Config, Node};

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

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

async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn items(list: &[&[u8]]) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = list.iter().map(|b| Bytes::copy_from_slice(b)).collect();
    v.sort();
    v
}

#[tokio::test(start_paused = true)]
async fn the_set_converges_after_partitions_and_withdrawals() {
    let net = MemNetwork::new(21);
    let mut nodes = Vec::new();
    for (i, id) in IDS.iter().enumerate() {
        nodes.push(start(&net, id, i as u64).await);
    }
    wait_for(Duration::from_secs(10), "formation", || {
        nodes.iter().all(|n| n.live_peers().len() == 4)
    })
    .await;
    let sets: Vec<ClusterSet> = nodes
        .iter()
        .map(|n| ClusterSet::new(n.clone(), "archives").unwrap())
        .collect();
    let mut changes = sets[4].changes();

    // Binary items, and the same item from two nodes.
    sets[0].advertise(b"dat://one").unwrap();
    sets[1].advertise([0u8, 255, 16]).unwrap();
    sets[2].advertise(b"dat://one").unwrap();
    let want = items(&[b"dat://one", &[0, 255, 16]]);
    wait_for(Duration::from_secs(5), "advertisements spread", || {
        sets.iter().all(|s| s.list() == want)
    })
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let c = changes.recv().await.expect("a change");
        assert!(c.removed.is_empty(), "{c:?}");
        seen.extend(c.added);
    }
    seen.sort();
    assert_eq!(seen, want);

    // Partition {a, b} | {c, d, e}; each side withdraws and advertises.
    net.partition(&["mem:a", "mem:b"], &["mem:c", "mem:d", "mem:e"]);
    sets[0].withdraw(b"dat://one").unwrap();
    sets[1].advertise(b"left side").unwrap();
    sets[2].withdraw(b"dat://one").unwrap();
    sets[3].advertise(b"right side").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    net.heal();
    let want = items(&[&[0, 255, 16], b"left side", b"right side"]);
    wait_for(Duration::from_secs(10), "one union after the heal", || {
        sets.iter().all(|s| s.list() == want)
    })
    .await;
    // The change stream reported the withdrawal of "dat://one".
    let mut removed = Vec::new();
    while !removed.contains(&Bytes::from_static(b"dat://one")) {
        let c = changes.recv().await.expect("a change");
        removed.extend(c.removed);
    }
    assert_eq!(sets[1].local(), items(&[&[0, 255, 16], b"left side"]));

    // A withdrawn item stays withdrawn through later gossip.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(sets.iter().all(|s| s.list() == want));

    // A node that leaves takes its items with it, once it is removed.
    nodes[3].leave().await.unwrap();
    let want = items(&[&[0, 255, 16], b"left side"]);
    let grace = Config::local().dead_peer_grace + Duration::from_secs(5);
    wait_for(grace, "a left node's items leave the union", || {
        [0, 1, 2, 4].iter().all(|&i| sets[i].list() == want)
    })
    .await;
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[test]
fn bad_names_and_items_are_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let net = MemNetwork::new(1);
        let node = start(&net, "a", 1).await;
        assert!(matches!(
            ClusterSet::new(node.clone(), ""),
            Err(SetError::BadName(_))
        ));
        assert!(matches!(
            ClusterSet::new(node.clone(), "a/b"),
            Err(SetError::BadName(_))
        ));
        let set = ClusterSet::new(node.clone(), "s").unwrap();
        assert!(matches!(set.advertise(b""), Err(SetError::EmptyItem)));
        let max = set.max_item_bytes();
        assert_eq!(
            max,
            (Config::local().max_key_bytes - "gossip.set/s/".len()) / 2
        );
        let too_big = vec![7u8; max + 1];
        assert!(matches!(
            set.advertise(&too_big),
            Err(SetError::ItemTooLarge { .. })
        ));
        set.advertise(vec![7u8; max]).unwrap();
        node.shutdown().await.unwrap();
        assert!(matches!(set.advertise(b"x"), Err(SetError::Node(_))));
    });
}

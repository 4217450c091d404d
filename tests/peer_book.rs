//! The persistent peer book through the node driver (memory transport,
//! paused tokio time): a node restarted with only its storage and no seeds
//! rejoins; per-peer traffic counts.

use std::time::Duration;

use gossip::storage::RedbStorage;
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node, PeerId, PeerStatus, Storage};

mod common;

async fn node(
    net: &MemNetwork,
    id: &str,
    seed: u64,
    seeds: &[&str],
    storage: Option<RedbStorage>,
) -> Node {
    let mut b = Node::builder(id)
        .config(Config::local().rng_seed(seed))
        .generation(1_700_000_000_000 + seed)
        .seeds(seeds.iter().copied())
        .transport(net.bind(&format!("mem:{id}")));
    if let Some(s) = storage {
        b = b.storage(s);
    }
    b.start().await.expect("node starts")
}

fn pid(s: &str) -> PeerId {
    PeerId::from(s)
}

#[tokio::test(start_paused = true)]
async fn a_node_restarted_with_its_book_and_no_seeds_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new(11);
    let a = node(&net, "a", 1, &[], None).await;
    let c = node(&net, "c", 3, &["mem:a"], None).await;
    let store = RedbStorage::open(dir.path()).unwrap();
    let b = node(&net, "b", 2, &["mem:a"], Some(store.clone())).await;
    common::wait_until("b sees a and c", Duration::from_secs(30), || {
        b.live_peers() == vec![pid("a"), pid("c")]
    })
    .await;
    store.flush().unwrap();
    let book: Vec<String> = store.book().into_iter().map(|r| r.addr).collect();
    assert_eq!(book, vec!["mem:a", "mem:b", "mem:c"]);
    // A crash: no leave, the task just stops; the store closes with it.
    b.shutdown().await.unwrap();
    drop(b);
    drop(store);
    common::wait_until("a sees b dead", Duration::from_secs(30), || {
        a.dead_peers() == vec![pid("b")]
    })
    .await;

    // Seeds: none. Only the data directory.
    let store = RedbStorage::open(dir.path()).unwrap();
    assert_eq!(store.book().len(), 3, "the book survived");
    let b = node(&net, "b", 12, &[], Some(store.clone())).await;
    common::wait_until("b rejoins", Duration::from_secs(30), || {
        b.live_peers() == vec![pid("a"), pid("c")] && a.live_peers().contains(&pid("b"))
    })
    .await;
    // The mirror was rebuilt from gossip; the book kept every peer.
    assert_eq!(
        store.peer(&pid("a")).map(|r| r.status),
        Some(PeerStatus::Live)
    );
    store.flush().unwrap();
    assert_eq!(store.book().len(), 3);
    for n in [a, b, c] {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_book_a_seedless_node_stays_alone() {
    // The control for the test above: the same restart with an empty store.
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new(12);
    let a = node(&net, "a", 1, &[], None).await;
    let b = node(
        &net,
        "b",
        2,
        &[],
        Some(RedbStorage::open(dir.path()).unwrap()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(b.live_peers().is_empty() && a.live_peers().is_empty());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn peer_stats_count_frames_both_ways() {
    let net = MemNetwork::new(13);
    let a = node(&net, "a", 1, &[], None).await;
    let b = node(&net, "b", 2, &["mem:a"], None).await;
    common::wait_until("joined", Duration::from_secs(30), || {
        a.live_peers() == vec![pid("b")] && b.live_peers() == vec![pid("a")]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ab = a.peer_stats(&pid("b")).expect("a has stats for b");
    let ba = b.peer_stats(&pid("a")).expect("b has stats for a");
    assert!(ab.frames_in > 0 && ab.frames_out > 0, "{ab:?}");
    assert!(
        ab.bytes_in > ab.frames_in && ab.bytes_out > ab.frames_out,
        "{ab:?}"
    );
    assert!(ab.last_contact.is_some());
    // Two nodes only: everything a sent went to b, everything it accepted came from b.
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(ab.frames_in, sa.frames_in);
    assert_eq!(ab.bytes_in, sa.bytes_in);
    assert_eq!(ba.frames_in, sb.frames_in);
    assert_eq!(ab.frames_out, sa.frames_out);
    assert_eq!(ba.frames_out, sb.frames_out);
    assert_eq!(ab.send_errors, 0);
    // The memory transport keeps no connections.
    assert_eq!(ab.connections, Default::default());
    assert!(a.peer_stats(&pid("nobody")).is_none());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

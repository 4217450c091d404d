//! `Node::set_seeds`: seeds replaced at runtime are the ones a lonely node
//! contacts (memory transport, paused tokio time, fixed generations).

use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node, PeerId};

mod common;

async fn start(net: &MemNetwork, id: &str, seed: u64, seeds: &[&str]) -> Node {
    Node::builder(id)
        .config(Config::local().rng_seed(seed))
        .generation(1_700_000_000_000 + seed)
        .seeds(seeds.iter().copied())
        .transport(net.bind(&format!("mem:{id}")))
        .start()
        .await
        .expect("node starts")
}

#[tokio::test(start_paused = true)]
async fn a_node_follows_seeds_set_at_runtime() {
    let net = MemNetwork::new(7);
    let a = start(&net, "a", 1, &[]).await;
    let b = start(&net, "b", 2, &["mem:nowhere"]).await;
    // Ten seconds of rounds at 100 ms towards an address nobody holds.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(b.live_peers().is_empty());
    assert!(a.live_peers().is_empty());

    b.set_seeds(["", "mem:a", "mem:a"]).unwrap();
    common::wait_until("b finds a", Duration::from_secs(10), || {
        b.live_peers() == [PeerId::from("a")] && a.live_peers() == [PeerId::from("b")]
    })
    .await;

    b.shutdown().await.unwrap();
    assert!(matches!(
        b.set_seeds(["mem:a"]),
        Err(gossip::Error::Stopped)
    ));
    a.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_builders_seeds_are_kept_when_seeds_are_set() {
    let net = MemNetwork::new(8);
    // c's builder seed is a, which is not running yet; c's discovered
    // seeds point nowhere.
    let c = start(&net, "c", 3, &["mem:a"]).await;
    c.set_seeds(["mem:nowhere"]).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(c.live_peers().is_empty());
    let a = start(&net, "a", 1, &[]).await;
    common::wait_until(
        "c finds a through its builder seed",
        Duration::from_secs(10),
        || c.live_peers() == [PeerId::from("a")],
    )
    .await;
    c.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

//! A removed peer stays removed: chitchat's own cluster scenario on the
//! memory transport, under paused tokio time.
//!
//! One node is isolated while seven more join 0.5 s apart with a short
//! `dead_peer_grace`. Before dead status travelled with a peer's state, late
//! joiners learned the isolated peer anew as live from nodes that still held
//! it, reported it dead, removed it, and passed it on to nodes whose memory
//! of the removal had expired: it cycled for about 20 s. Now it is removed
//! everywhere within the grace and a few detection times, and stays removed
//! until it really comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Event, Node, PeerId};
use tokio::time::Instant;

/// Every event of every node, with the virtual time it was read.
type Log = Arc<Mutex<Vec<(Instant, PeerId, Event)>>>;

fn config(seed: u64) -> Config {
    let mut c = Config::local()
        .with_interval(Duration::from_millis(50))
        .rng_seed(seed);
    c.dead_peer_grace = Duration::from_secs(3);
    c
}

async fn start(net: &MemNetwork, log: &Log, id: &str, seed: u64) -> Node {
    let node = Node::builder(id)
        .config(config(seed))
        .generation(1_700_000_000_000 + seed)
        .seeds(["mem:a"])
        .transport(net.bind(&format!("mem:{id}")))
        .start()
        .await
        .expect("node starts");
    let mut events = node.events();
    let (log, me) = (log.clone(), node.id().clone());
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            log.lock().unwrap().push((Instant::now(), me.clone(), e));
        }
    });
    node
}

/// Waits (in virtual time) until `cond` holds, polling every 10 ms; returns
/// how long it took.
async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn holds(n: &Node, peer: &PeerId) -> bool {
    n.peers().iter().any(|r| &r.id == peer)
}

#[tokio::test(start_paused = true)]
async fn an_isolated_peer_is_removed_everywhere_stays_removed_and_returns_when_healed() {
    let net = MemNetwork::new(9);
    let log: Log = Arc::default();
    let x = PeerId::from("x");
    let mut nodes = Vec::new();
    for (i, id) in ["a", "b", "c", "x"].iter().enumerate() {
        nodes.push(start(&net, &log, id, i as u64).await);
    }
    wait_for(Duration::from_secs(10), "formation", || {
        nodes.iter().all(|n| n.live_peers().len() == 3)
    })
    .await;

    net.isolate("mem:x");
    let isolated = Instant::now();
    let mut joined_at = Vec::new();
    for i in 0..7u64 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let id = format!("n{i}");
        nodes.push(start(&net, &log, &id, 10 + i).await);
        joined_at.push((PeerId::from(id), Instant::now()));
    }
    let others = |nodes: &[Node]| -> Vec<usize> {
        (0..nodes.len()).filter(|&i| nodes[i].id() != &x).collect()
    };

    // Removed everywhere within the grace plus a few detection times (a
    // crash is reported in about eight intervals, 0.4 s here).
    let bound = Duration::from_secs(3) + Duration::from_secs(2);
    let idx = others(&nodes);
    wait_for(bound, "x removed at every other node", || {
        idx.iter().all(|&i| !holds(&nodes[i], &x))
    })
    .await;
    let removed_by = isolated.elapsed();
    assert!(
        removed_by <= bound + Duration::from_secs(4),
        "{removed_by:?}"
    );

    // ... and it stays removed: the old failure cycled for about 20 s.
    let watch_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < watch_until {
        for &i in &idx {
            assert!(
                !holds(&nodes[i], &x),
                "{} holds x again at {:?} after the isolation",
                nodes[i].id(),
                isolated.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Nobody reported x as joined or live after the last original node
    // reported it dead; a node that learned of it later learned it as dead.
    {
        let log = log.lock().unwrap();
        let all_dead_at = ["a", "b", "c"]
            .iter()
            .map(|o| {
                log.iter()
                    .find(|(_, who, e)| {
                        who.as_str() == *o && *e == Event::PeerDead { peer: x.clone() }
                    })
                    .unwrap_or_else(|| panic!("{o} never reported x dead"))
                    .0
            })
            .max()
            .expect("three nodes");
        for (t, who, e) in log.iter() {
            let back = matches!(e, Event::PeerJoined { peer, .. } | Event::PeerLive { peer }
                if peer == &x);
            assert!(
                !(back && *t > all_dead_at),
                "{who} reported {e:?} at {:?} after the isolation, when every original node \
                 had reported x dead by {:?}",
                *t - isolated,
                all_dead_at - isolated
            );
        }
        // Nodes that joined after that never heard of x as a member at all.
        for (id, at) in &joined_at {
            if *at > all_dead_at {
                assert!(
                    !log.iter()
                        .any(|(_, who, e)| who == id && e.peer() == Some(&x)),
                    "{id} joined after x was known dead and was told of it"
                );
            }
        }
        let removals = log
            .iter()
            .filter(|(_, _, e)| *e == Event::PeerRemoved { peer: x.clone() })
            .count();
        assert!(
            removals <= idx.len(),
            "x removed {removals} times at {} nodes: it came back in between",
            idx.len()
        );
    }
    let ignored: u64 = nodes.iter().map(|n| n.stats().stale_gossip_ignored).sum();
    eprintln!(
        "x removed everywhere {removed_by:?} after the isolation; \
         {ignored} stale mentions of removed peers ignored"
    );

    // Healed, x is live again everywhere, and sees everyone.
    net.heal();
    let back = wait_for(Duration::from_secs(10), "x live again everywhere", || {
        idx.iter().all(|&i| nodes[i].live_peers().contains(&x))
            && nodes[3].live_peers().len() == nodes.len() - 1
    })
    .await;
    eprintln!("x live again everywhere {back:?} after the heal");
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

//! Topic pub/sub through the node driver, on the memory transport, under
//! paused tokio time.

use std::collections::BTreeSet;
use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Error, Identity, Node, PeerId, PubSubError};

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

async fn start(net: &MemNetwork, i: usize, identity: Identity) -> Node {
    let id = IDS[i];
    Node::builder(id)
        .config(Config::local().rng_seed(i as u64))
        .generation(1_700_000_000_000 + i as u64)
        .seeds(["mem:a"])
        .identity(identity)
        .transport(net.bind(&format!("mem:{id}")))
        .start()
        .await
        .expect("node starts")
}

/// Waits (in virtual time) until `cond` holds, polling every 10 ms.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn subscribers_get_each_message_once_and_others_none() {
    // `a`'s identity comes from a key file, as an operator would keep it.
    let dir = std::env::temp_dir().join(format!("gossip-pubsub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("identity.key");
    let kept = Identity::from_bytes(&[42; 32]).unwrap();
    std::fs::write(&file, format!("{}\n", kept.to_hex())).unwrap();
    let from_file = Identity::from_file(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(from_file.public_key(), kept.public_key());

    let net = MemNetwork::new(1);
    let mut nodes = vec![start(&net, 0, from_file).await];
    for i in 1..IDS.len() {
        nodes.push(start(&net, i, Identity::from_bytes(&[i as u8; 32]).unwrap()).await);
    }
    wait_for(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.live_peers().len() == 4)
    })
    .await;

    // b and c subscribe once, d twice (two readers), e not at all.
    let mut b = nodes[1].subscribe("chat").await.unwrap();
    let mut c = nodes[2].subscribe("chat").await.unwrap();
    let mut d1 = nodes[3].subscribe("chat").await.unwrap();
    let mut d2 = nodes[3].subscribe("chat").await.unwrap();
    assert_eq!(b.topic(), "chat");
    let key = "gossip.sub/chat";
    wait_for(Duration::from_secs(10), || {
        ["b", "c", "d"]
            .iter()
            .all(|s| nodes[0].get(&PeerId::from(*s), key).is_some())
    })
    .await;

    let mut seqs = BTreeSet::new();
    for text in ["one", "two", "three"] {
        seqs.insert(nodes[0].publish("chat", text).await.unwrap());
    }
    for (name, sub) in [
        ("b", &mut b),
        ("c", &mut c),
        ("d1", &mut d1),
        ("d2", &mut d2),
    ] {
        let mut got = BTreeSet::new();
        for _ in 0..3 {
            let m = tokio::time::timeout(Duration::from_secs(10), sub.recv())
                .await
                .unwrap_or_else(|_| panic!("{name}: a message within 10 s"))
                .expect("stream open");
            assert_eq!(m.author, PeerId::from("a"));
            assert_eq!(m.author_key, kept.public_key());
            assert_eq!(m.topic, "chat");
            assert!(got.insert(m.seq), "{name}: {} twice", m.seq);
        }
        assert_eq!(got, seqs, "{name}");
    }
    // Long after, nothing more: each was delivered once.
    for (name, sub) in [
        ("b", &mut b),
        ("c", &mut c),
        ("d1", &mut d1),
        ("d2", &mut d2),
    ] {
        let more = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await;
        assert!(more.is_err(), "{name}: no duplicate");
    }
    for (i, n) in nodes.iter().enumerate() {
        let s = n.stats();
        let want = if (1..=3).contains(&i) { 3 } else { 0 };
        assert_eq!(s.messages_delivered, want, "{}", IDS[i]);
        assert_eq!(s.messages_forged + s.messages_replayed, 0);
    }
    assert_eq!(nodes[0].stats().messages_published, 3);
    // e subscribes to nothing: no message was ever sent to it.
    let e = nodes[4].stats();
    assert_eq!(e.messages_accepted + e.messages_duplicate, 0);

    // Refusals are typed, and nothing is sent.
    let max = nodes[0].config().max_message_bytes;
    let err = nodes[0]
        .publish("chat", vec![0; max + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PubSub(PubSubError::MessageTooLarge { .. })),
        "{err}"
    );
    let err = nodes[0].publish("", "x").await.unwrap_err();
    assert!(
        matches!(err, Error::PubSub(PubSubError::EmptyTopic)),
        "{err}"
    );
    assert!(nodes[0].subscribe("").await.is_err());
    assert_eq!(nodes[0].stats().messages_published, 3);

    // Dropping d's last stream withdraws its subscription.
    drop(d1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        nodes[0].get(&PeerId::from("d"), key).is_some(),
        "d2 still reads"
    );
    drop(d2);
    wait_for(Duration::from_secs(10), || {
        nodes[0].get(&PeerId::from("d"), key).is_none()
    })
    .await;
    nodes[0].publish("chat", "four").await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), b.recv())
        .await
        .expect("b still subscribed")
        .unwrap();
    assert_eq!(&m.payload[..], b"four");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(nodes[3].stats().messages_delivered, 3, "d unsubscribed");

    // A stopped node ends its streams.
    nodes[1].shutdown().await.unwrap();
    assert!(b.recv().await.is_none());
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_query_gets_replies_until_its_timeout() {
    let net = MemNetwork::new(3);
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(start(&net, i, Identity::from_bytes(&[i as u8 + 20; 32]).unwrap()).await);
    }
    wait_for(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.live_peers().len() == 3)
    })
    .await;
    nodes[2].set("role", "db").unwrap();
    nodes[3].set("role", "db").unwrap();
    wait_for(Duration::from_secs(10), || {
        ["c", "d"]
            .iter()
            .all(|p| nodes[0].get(&PeerId::from(*p), "role").is_some())
    })
    .await;
    // Every node answers what it is asked, with its id.
    for n in &nodes[1..] {
        let mut requests = n.requests();
        let me = n.id().clone();
        tokio::spawn(async move {
            while let Some(r) = requests.recv().await {
                let _ = r.reply(format!("{me}: {}", r.request.name)).await;
            }
        });
    }
    let options = gossip::QueryOptions {
        hops: 2,
        timeout: Duration::from_secs(2),
        filter: Some(("role".into(), gossip::Bytes::from_static(b"db"))),
    };
    let started = tokio::time::Instant::now();
    let mut replies = nodes[0].query("status", "?", options).await.unwrap();
    let mut got = BTreeSet::new();
    while let Some((from, payload)) = replies.recv().await {
        assert_eq!(payload, format!("{from}: status").into_bytes());
        assert!(got.insert(from), "one reply each");
    }
    let took = started.elapsed();
    assert_eq!(got, ["c", "d"].iter().map(|s| PeerId::from(*s)).collect());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "ends at the timeout: {took:?}"
    );
    let s = nodes[0].stats();
    assert_eq!((s.queries_sent, s.replies_received), (1, 2));
    let bad = gossip::QueryOptions {
        hops: 0,
        ..gossip::QueryOptions::default()
    };
    assert!(matches!(
        nodes[0].query("status", "?", bad).await,
        Err(Error::PubSub(PubSubError::BadQuery { .. }))
    ));
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
}

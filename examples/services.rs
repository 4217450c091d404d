//! The three message services on four nodes in one process (memory
//! transport): topic pub/sub (solyd-swarm), a query with replies (peernet's
//! announce, serf's query) and the cluster-wide set (dat-gossip). Prints
//! what each node receives as JSON lines.
//!
//! Run with `cargo run --example services`.

use std::time::Duration;

use gossip::set::ClusterSet;
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node, QueryOptions};
use serde_json::json;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = MemNetwork::new(7);
    let mut nodes = Vec::new();
    for i in 1..=4 {
        let id = format!("node-{i}");
        let node = Node::builder(id.as_str())
            .config(Config::local())
            .seeds(["mem:node-1"])
            .transport(net.bind(&format!("mem:{id}")))
            .start()
            .await?;
        nodes.push(node);
    }
    let started = tokio::time::Instant::now();
    while !nodes.iter().all(|n| n.live_peers().len() == 3) {
        if started.elapsed() > Duration::from_secs(10) {
            eprintln!("the cluster did not converge within 10 s");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Pub/sub: nodes 2 to 4 subscribe to "chat", node 1 publishes.
    let mut subs = Vec::new();
    for n in &nodes[1..] {
        subs.push((n.id().clone(), n.subscribe("chat").await?));
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // the subscriptions spread
    nodes[0].publish("chat", "hello, swarm").await?;
    for (id, sub) in &mut subs {
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
            let line = json!({"service": "pubsub", "node": id.as_str(), "topic": m.topic,
                "author": m.author.as_str(), "seq": m.seq, "payload": text(&m.payload)});
            println!("{line}");
        }
    }

    // A query: every node answers with its load, node 1 collects replies.
    for n in &nodes[1..] {
        let mut requests = n.requests();
        let me = n.id().clone();
        tokio::spawn(async move {
            while let Some(r) = requests.recv().await {
                let _ = r.reply(format!("{me} is fine")).await;
            }
        });
    }
    let options = QueryOptions {
        hops: 3,
        timeout: Duration::from_secs(1),
        filter: None,
    };
    let mut replies = nodes[0].query("status", "how are you?", options).await?;
    while let Some((from, payload)) = replies.recv().await {
        let line = json!({"service": "query", "node": "node-1", "from": from.as_str(),
            "reply": text(&payload)});
        println!("{line}");
    }

    // The set: two nodes advertise, one withdraws.
    let sets = nodes
        .iter()
        .map(|n| ClusterSet::new(n.clone(), "archives"))
        .collect::<Result<Vec<_>, _>>()?;
    sets[1].advertise("dat://archive-a")?;
    sets[2].advertise("dat://archive-b")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    sets[2].withdraw("dat://archive-b")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (n, set) in nodes.iter().zip(&sets) {
        let list: Vec<String> = set.list().iter().map(|b| text(b)).collect();
        println!(
            "{}",
            json!({"service": "set", "node": n.id().as_str(), "list": list})
        );
    }

    for n in &nodes {
        n.shutdown().await?;
    }
    Ok(())
}

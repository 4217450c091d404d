//! Five nodes in one process on the in-memory transport, each advertising a
//! key; prints the membership and keys each node sees.
//!
//! Run with `cargo run --example embed`.

use std::time::Duration;

use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node, PeerId};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), gossip::Error> {
    let net = MemNetwork::new(42);
    let roles = ["db", "cache", "web", "web", "queue"];
    let mut nodes = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let id = format!("node-{}", i + 1);
        let node = Node::builder(id.as_str())
            .config(Config::local())
            .seeds(["mem:node-1"])
            .transport(net.bind(&format!("mem:{id}")))
            .start()
            .await?;
        node.set("role", *role)?;
        node.set("load", format!("{:.2}", 0.1 * (i + 1) as f64))?;
        nodes.push(node);
    }

    let started = tokio::time::Instant::now();
    let everyone_knows_everyone = |nodes: &[Node]| {
        nodes.iter().all(|n| {
            n.live_peers().len() == nodes.len() - 1
                && n.live_peers().iter().all(|p| n.get(p, "role").is_some())
        })
    };
    while !everyone_knows_everyone(&nodes) {
        if started.elapsed() > Duration::from_secs(10) {
            eprintln!("the cluster did not converge within 10 s");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("converged in {:?}\n", started.elapsed());

    for node in &nodes {
        let peers: Vec<String> = node
            .live_peers()
            .iter()
            .map(|p: &PeerId| {
                let role = node.get(p, "role").unwrap_or_default();
                format!("{p}={}", String::from_utf8_lossy(&role))
            })
            .collect();
        println!("{} sees live: {}", node.id(), peers.join(", "));
    }

    nodes[2].leave().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "\nafter node-3 left, node-1 sees live: {:?}",
        nodes[0].live_peers()
    );
    println!("node-1 stats: {:?}", nodes[0].stats());
    for node in nodes.iter().filter(|n| n.id().as_str() != "node-3") {
        node.shutdown().await?;
    }
    Ok(())
}

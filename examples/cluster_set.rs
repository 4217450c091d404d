//! dat-gossip's service: a set of items the whole cluster shares. Five nodes
//! in one process on the in-memory transport each advertise an archive key;
//! one withdraws its own; node-1 prints every change of the union.
//!
//! Run with `cargo run --example cluster_set`.

use std::time::Duration;

use gossip::set::{ClusterSet, SetError};
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), SetError> {
    let net = MemNetwork::new(7);
    let mut sets = Vec::new();
    for i in 1..=5 {
        let id = format!("node-{i}");
        let node = Node::builder(id.as_str())
            .config(Config::local())
            .seeds(["mem:node-1"])
            .transport(net.bind(&format!("mem:{id}")))
            .start()
            .await?;
        sets.push(ClusterSet::new(node, "archives")?);
    }
    let mut changes = sets[0].changes();
    for (i, set) in sets.iter().enumerate() {
        set.advertise(format!("dat://archive-{}", i + 1))?;
    }
    let show = |items: &[gossip::Bytes]| -> Vec<String> {
        items
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut withdrawn = false;
    loop {
        let change = tokio::select! {
            c = changes.recv() => c,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some(change) = change else {
            eprintln!("no change within 10 s");
            std::process::exit(1);
        };
        println!(
            "node-1: +{:?} -{:?} -> {:?}",
            show(&change.added),
            show(&change.removed),
            show(&change.list)
        );
        if change.list.len() == 5 && !withdrawn {
            sets[2].withdraw("dat://archive-3")?;
            withdrawn = true;
        } else if withdrawn && change.list.len() == 4 {
            break;
        }
    }
    println!("node-5 lists {:?}", show(&sets[4].list()));
    Ok(())
}

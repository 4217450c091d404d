//! Memory of N nodes in one process: `cargo run --release -p gossip-bench
//! --example node_mem -- N [EVENT_BUFFER] [INTERVAL_MS] [KEYS]` prints resident
//! memory before and after starting N isolated nodes (the driver, its
//! channels, storage; no peers). With INTERVAL_MS, the nodes are seeded
//! with the first and gossip at that interval (`Config::local`); it then
//! prints resident memory once every node sees all the others live, and
//! 20 rounds later, with the figure per (node, peer) pair. With KEYS, every
//! node sets that many keys (`role`, `key-1`, ...; 6-byte values) before it
//! starts gossiping, as the bench's `stable` sets `role`. This example
//! runs on the system allocator (the bench's scenarios use mimalloc).
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node};
use std::time::{Duration, Instant};
fn rss() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
#[tokio::main]
async fn main() {
    let mut a = std::env::args().skip(1);
    let n: usize = a.next().and_then(|x| x.parse().ok()).unwrap_or(1000);
    let buf: Option<usize> = a.next().and_then(|x| x.parse().ok());
    let interval: Option<u64> = a.next().and_then(|x| x.parse().ok());
    let keys: usize = a.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let net = MemNetwork::new(1);
    let before = rss();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut config = match interval {
            Some(ms) => Config::local().with_interval(Duration::from_millis(ms)),
            None => Config::default(),
        };
        if let Some(b) = buf {
            config.event_buffer = b;
        }
        let mut builder = Node::builder(format!("node-{i:05}"))
            .config(config)
            .transport(net.bind(&format!("mem:node-{i:05}")));
        if interval.is_some() && i > 0 {
            builder = builder.seeds(["mem:node-00000"]);
        }
        let node = builder.start().await.expect("start");
        for k in 0..keys {
            let key = if k == 0 {
                "role".to_string()
            } else {
                format!("key-{k}")
            };
            node.set(key, format!("role-{}", i % 4)).expect("set");
        }
        nodes.push(node);
    }
    let started = rss();
    println!(
        "{n} nodes: {before:.0} MiB -> {started:.0} MiB ({:.0} KiB per node)",
        (started - before) * 1024.0 / n as f64
    );
    let Some(ms) = interval else { return };
    let t = Instant::now();
    let limit = Duration::from_secs(120);
    while nodes.iter().any(|x| x.live_peers().len() + 1 < n) {
        if t.elapsed() > limit {
            println!("not converged in {limit:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pairs = (n * (n - 1)) as f64;
    let per_pair = |m: f64| (m - started) * 1024.0 * 1024.0 / pairs;
    let at = rss();
    println!(
        "converged in {:.1} s: {at:.0} MiB ({:.0} B per pair above the isolated nodes)",
        t.elapsed().as_secs_f64(),
        per_pair(at)
    );
    tokio::time::sleep(Duration::from_millis(20 * ms)).await;
    let later = rss();
    println!(
        "20 rounds later: {later:.0} MiB ({:.0} B per pair)",
        per_pair(later)
    );
}

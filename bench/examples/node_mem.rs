//! Fixed memory of N isolated nodes (the driver, its channels, storage; no
//! peers): `cargo run --release -p gossip-bench --example node_mem -- N [EVENT_BUFFER]`
//! prints resident memory before and after starting them.
use gossip::transport::mem::MemNetwork;
use gossip::{Config, Node};
fn rss() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut a = std::env::args().skip(1);
    let n: usize = a.next().and_then(|x| x.parse().ok()).unwrap_or(1000);
    let buf: Option<usize> = a.next().and_then(|x| x.parse().ok());
    let net = MemNetwork::new(1);
    let before = rss();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut config = Config::default();
        if let Some(b) = buf {
            config.event_buffer = b;
        }
        let node = Node::builder(format!("node-{i:05}"))
            .config(config)
            .transport(net.bind(&format!("mem:node-{i:05}")))
            .start()
            .await
            .expect("start");
        nodes.push(node);
    }
    println!(
        "{n} nodes: {:.0} MiB -> {:.0} MiB ({:.0} KiB per node)",
        before,
        rss(),
        (rss() - before) * 1024.0 / n as f64
    );
}

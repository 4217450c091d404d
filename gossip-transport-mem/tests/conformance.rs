//! Runs the shared `Transport` conformance suite against `MemTransport`.

use std::time::Duration;

use gossip_core::testing::transport::run;
use gossip_transport_mem::{MemNetwork, MemTransport};

/// Binds `mem:0`, `mem:1`, ... on `net`, one address per call.
fn binder(net: &MemNetwork) -> impl FnMut() -> std::future::Ready<MemTransport> + '_ {
    let mut next = 0;
    move || {
        next += 1;
        std::future::ready(net.bind(&format!("mem:{}", next - 1)))
    }
}

#[tokio::test]
async fn mem_transport_passes_the_conformance_suite() {
    let net = MemNetwork::new(1);
    run(binder(&net)).await;
}

#[tokio::test(start_paused = true)]
async fn mem_transport_with_latency_passes_under_paused_time() {
    let net = MemNetwork::new(2);
    net.set_latency(Duration::from_millis(5));
    run(binder(&net)).await;
}

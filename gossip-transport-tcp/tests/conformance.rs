//! The shared `Transport` conformance suite, run against the TCP transport.

use gossip_transport_tcp::TcpTransport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_transport_passes_the_conformance_suite() {
    gossip_core::testing::transport::run(|| async {
        TcpTransport::bind("127.0.0.1:0").await.unwrap()
    })
    .await;
}

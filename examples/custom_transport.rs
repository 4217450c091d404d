//! Your own transport: gossip over UDP in one short file.
//!
//! A `Transport` moves opaque frames between string addresses. This one maps
//! each frame to one UDP datagram (so frames must stay under 65,507 bytes:
//! set `Config::max_frame_bytes` accordingly), then runs a three-node cluster
//! on 127.0.0.1. Its test runs the shared conformance suite.
//!
//! Run with `cargo run --example custom_transport`; test with
//! `cargo test --example custom_transport`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gossip::transport::{Transport, TransportError, TransportStats};
use gossip::{Bytes, Config, Node};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// A best-effort transport: one frame, one datagram.
struct UdpTransport {
    socket: Arc<UdpSocket>,
    addr: String,
    closed: watch::Sender<bool>,
    sent: AtomicU64,
    received: AtomicU64,
}

impl UdpTransport {
    async fn bind(addr: &str) -> Result<UdpTransport, TransportError> {
        let socket = UdpSocket::bind(addr).await?;
        let addr = socket.local_addr()?.to_string();
        Ok(UdpTransport {
            socket: Arc::new(socket),
            addr,
            closed: watch::channel(false).0,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Transport for UdpTransport {
    fn local_addr(&self) -> String {
        self.addr.clone()
    }

    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError> {
        if *self.closed.borrow() {
            return Err(TransportError::Closed);
        }
        if frame.len() > MAX_DATAGRAM {
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                max: MAX_DATAGRAM,
            });
        }
        // `send_to` resolves host names too; a datagram is never half-sent.
        self.socket.send_to(&frame, to).await?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self) -> Result<(String, Bytes), TransportError> {
        let mut closed = self.closed.subscribe();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        // Both branches are cancel-safe, so this future is too.
        tokio::select! {
            _ = closed.wait_for(|c| *c) => Err(TransportError::Closed),
            r = self.socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                self.received.fetch_add(1, Ordering::Relaxed);
                Ok((from.to_string(), Bytes::copy_from_slice(&buf[..n])))
            }
        }
    }

    async fn close(&self) -> Result<(), TransportError> {
        self.closed.send_replace(true);
        Ok(())
    }

    fn stats(&self) -> TransportStats {
        let mut s = TransportStats::default();
        s.frames_sent = self.sent.load(Ordering::Relaxed);
        s.frames_received = self.received.load(Ordering::Relaxed);
        s
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), gossip::Error> {
    let mut config = Config::local();
    config.max_frame_bytes = 60_000;
    let mut nodes: Vec<Node> = Vec::new();
    let mut seed = String::new();
    for id in ["udp-1", "udp-2", "udp-3"] {
        let transport = UdpTransport::bind("127.0.0.1:0").await?;
        if seed.is_empty() {
            seed = transport.local_addr();
        }
        let node = Node::builder(id)
            .config(config.clone())
            .seeds([seed.clone()])
            .transport(transport)
            .start()
            .await?;
        node.set("proto", "udp")?;
        nodes.push(node);
    }
    let start = tokio::time::Instant::now();
    while !nodes.iter().all(|n| n.live_peers().len() == 2) {
        if start.elapsed() > Duration::from_secs(10) {
            eprintln!("no convergence within 10 s");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("three nodes over UDP converged in {:?}", start.elapsed());
    for n in &nodes {
        println!("{} at {} sees {:?}", n.id(), n.addr(), n.live_peers());
        n.shutdown().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn udp_transport_passes_the_conformance_suite() {
        gossip_core::testing::transport::run(|| async {
            UdpTransport::bind("127.0.0.1:0").await.unwrap()
        })
        .await;
    }
}

//! The `Transport` trait: how frames travel between nodes.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::TransportError;

/// Counters a transport keeps about its own traffic. Fields a transport does
/// not track stay zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Frames handed to the network.
    pub frames_sent: u64,
    /// Bytes of those frames.
    pub bytes_sent: u64,
    /// Frames received and handed to the node.
    pub frames_received: u64,
    /// Bytes of those frames.
    pub bytes_received: u64,
    /// Frames dropped by the transport (queue full, too large, undeliverable).
    pub frames_dropped: u64,
    /// Connections opened (connection-oriented transports).
    pub connections_opened: u64,
    /// Connection attempts that failed.
    pub connections_failed: u64,
    /// Connections closed.
    pub connections_closed: u64,
}

impl TransportStats {
    /// Every counter with its name and meaning, for exporters (the names
    /// are the field names).
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 8] {
        [
            (
                "frames_sent",
                "Frames handed to the network.",
                self.frames_sent,
            ),
            (
                "bytes_sent",
                "Bytes of frames handed to the network.",
                self.bytes_sent,
            ),
            (
                "frames_received",
                "Frames received and handed to the node.",
                self.frames_received,
            ),
            (
                "bytes_received",
                "Bytes of frames received.",
                self.bytes_received,
            ),
            (
                "frames_dropped",
                "Frames dropped by the transport.",
                self.frames_dropped,
            ),
            (
                "connections_opened",
                "Connections opened.",
                self.connections_opened,
            ),
            (
                "connections_failed",
                "Connection attempts that failed.",
                self.connections_failed,
            ),
            (
                "connections_closed",
                "Connections closed.",
                self.connections_closed,
            ),
        ]
    }
}

/// A transport's connection history with one address (connection-oriented
/// transports; see [`Transport::connection_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Connections to the address established.
    pub connects: u64,
    /// Connection attempts to the address that failed.
    pub connect_failures: u64,
    /// When the last connection was established.
    pub last_connect: Option<std::time::Instant>,
    /// When the last attempt failed.
    pub last_failure: Option<std::time::Instant>,
}

/// Carries frames (opaque bytes) between nodes identified by address strings.
///
/// A transport moves bytes, never typed messages, so every transport exercises
/// the same codec and the same checks on bad input. It is object-safe: the node
/// holds it as `Box<dyn Transport>`.
///
/// Contract (checked by `gossip_core::testing::transport`):
/// - [`send`](Transport::send) is best effort and must not wait for the peer:
///   queue or drop, never block the node for long. A frame may be lost,
///   duplicated or reordered; it must never be altered or truncated.
/// - [`recv`](Transport::recv) is cancel-safe: if its future is dropped before
///   it completes, no frame is lost.
/// - An address is a string whose meaning is the transport's own (`mem:a`,
///   `127.0.0.1:9991`, ...). [`local_addr`](Transport::local_addr) is the
///   address other nodes can reach this one at; the node advertises it.
/// - After [`close`](Transport::close), `recv` returns
///   [`TransportError::Closed`] and nothing more is delivered to this address.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The address peers use to reach this transport.
    fn local_addr(&self) -> String;

    /// Sends one frame to `to`. Best effort; an error means the frame was not
    /// sent, and nothing else.
    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError>;

    /// Waits for the next frame. Returns the sender's transport address (for
    /// logging only: replies go to the address advertised inside the frame)
    /// and the frame. Cancel-safe.
    async fn recv(&self) -> Result<(String, Bytes), TransportError>;

    /// Stops receiving and releases the address. Idempotent.
    async fn close(&self) -> Result<(), TransportError> {
        Ok(())
    }

    /// The transport's own counters.
    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }

    /// Connection successes and failures to address `addr`, if the
    /// transport keeps them (default: `None`).
    fn connection_stats(&self, addr: &str) -> Option<ConnectionStats> {
        let _ = addr;
        None
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    fn local_addr(&self) -> String {
        (**self).local_addr()
    }
    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError> {
        (**self).send(to, frame).await
    }
    async fn recv(&self) -> Result<(String, Bytes), TransportError> {
        (**self).recv().await
    }
    async fn close(&self) -> Result<(), TransportError> {
        (**self).close().await
    }
    fn stats(&self) -> TransportStats {
        (**self).stats()
    }
    fn connection_stats(&self, addr: &str) -> Option<ConnectionStats> {
        (**self).connection_stats(addr)
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn local_addr(&self) -> String {
        (**self).local_addr()
    }
    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError> {
        (**self).send(to, frame).await
    }
    async fn recv(&self) -> Result<(String, Bytes), TransportError> {
        (**self).recv().await
    }
    async fn close(&self) -> Result<(), TransportError> {
        (**self).close().await
    }
    fn stats(&self) -> TransportStats {
        (**self).stats()
    }
    fn connection_stats(&self, addr: &str) -> Option<ConnectionStats> {
        (**self).connection_stats(addr)
    }
}

//! A TCP [`Transport`] for the gossip engine: length-delimited frames over
//! reused connections, one per peer.
//!
//! [`TcpTransport::bind`] listens on a `host:port` and returns a transport
//! that implements [`gossip_core::Transport`]. Addresses are `host:port`
//! strings: IPv4 (`10.0.0.7:7946`), bracketed IPv6 (`[::1]:7946`) or a host
//! name (`seed-1.example:7946`). A name is resolved at every connection
//! attempt, so a seed given by name follows DNS changes.
//!
//! # Contract
//!
//! - **Framing.** Each frame travels as a 4-byte big-endian length followed by
//!   that many bytes (tokio-util's `LengthDelimitedCodec`). A frame arrives
//!   whole and unaltered or not at all.
//! - **`send` never waits for the network.** It checks the address and the
//!   size, queues the frame for that peer and returns. Each peer has one
//!   writer task owning one reused connection (`TCP_NODELAY` on), fed by a
//!   queue of [`TcpConfig::send_queue`] frames; when it is full the *oldest*
//!   frame is dropped and counted. Connecting and writing have timeouts; after
//!   a failure the writer reconnects with capped exponential backoff and
//!   jitter, the frames sent meanwhile waiting in the queue. A frame is lost
//!   if its write fails; it is never retried, so never duplicated by this
//!   transport.
//! - **Inbound connections are bounded.** At most [`TcpConfig::max_inbound`]
//!   are served at once; one more is accepted and closed at once. A length
//!   prefix above [`TcpConfig::max_frame_bytes`] closes its connection before
//!   anything is allocated for the frame. A connection that delivers no
//!   complete frame for [`TcpConfig::idle_timeout`] (silent, or stalled in
//!   the middle of a frame) is closed. Each of these is counted.
//! - **`recv` is cancel-safe** and returns the remote *socket* address of the
//!   connection (an ephemeral port, for logging only).
//! - **Shutdown.** [`close`](Transport::close) cancels every task, closes the
//!   listener and every connection, and waits for the tasks to end; `recv`
//!   then returns [`TransportError::Closed`]. Dropping the transport cancels
//!   and aborts the tasks without waiting.
//! - **Counters.** [`Transport::stats`] gives the common counters;
//!   [`TcpTransport::tcp_stats`] breaks drops down by reason and adds
//!   connection gauges. Drops and connection events are logged with
//!   `tracing` at debug level.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use gossip_core::{Transport, TransportError};
//! use gossip_transport_tcp::TcpTransport;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     let a = TcpTransport::bind("127.0.0.1:0").await.unwrap();
//!     let b = TcpTransport::bind("127.0.0.1:0").await.unwrap();
//!
//!     // `local_addr` is the bound address, its port chosen by the OS.
//!     a.send(&b.local_addr(), Bytes::from_static(b"hello")).await.unwrap();
//!     let (_from, frame) = b.recv().await.unwrap();
//!     assert_eq!(&frame[..], b"hello");
//!     assert_eq!(a.stats().frames_sent, 1);
//!
//!     a.close().await.unwrap();
//!     b.close().await.unwrap();
//!     assert!(matches!(b.recv().await, Err(TransportError::Closed)));
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod addr;
mod config;
mod inbound;
mod outbound;
mod stats;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gossip_core::{ConnectionStats, Transport, TransportError, TransportStats};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use config::{TcpConfig, MAX_FRAME_LIMIT};
pub use stats::TcpStats;
#[doc(hidden)]
pub use tasks::LiveTasks;

use inbound::Received;
use outbound::PeerMap;
use stats::{add, inc, Counters};
use tasks::{lock, Tasks};

/// How long `close` waits for the tasks to end before aborting them. They
/// all watch the cancellation token, so in practice they end at once.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// State shared by the transport and its tasks.
struct Shared {
    config: TcpConfig,
    stats: Counters,
    tasks: Tasks,
    peers: PeerMap,
    /// Connection history per peer address, at most `max_peers` of them.
    conns: std::sync::Mutex<std::collections::HashMap<String, ConnectionStats>>,
}

impl Shared {
    /// Records a connection attempt to `addr`. Past `max_peers` addresses,
    /// the one with the oldest activity is forgotten.
    fn note_connect(&self, addr: &str, ok: bool) {
        let now = tokio::time::Instant::now().into_std();
        let mut conns = lock(&self.conns);
        if !conns.contains_key(addr) && conns.len() >= self.config.max_peers {
            let oldest = conns
                .iter()
                .min_by_key(|(_, c)| c.last_connect.max(c.last_failure))
                .map(|(a, _)| a.clone());
            if let Some(a) = oldest {
                conns.remove(&a);
            }
        }
        let c = conns.entry(addr.to_string()).or_default();
        if ok {
            c.connects += 1;
            c.last_connect = Some(now);
        } else {
            c.connect_failures += 1;
            c.last_failure = Some(now);
        }
    }
}

/// A [`Transport`] over TCP. See the [crate documentation](crate) for the
/// contract.
#[derive(Debug)]
pub struct TcpTransport {
    shared: Arc<Shared>,
    local_addr: String,
    bound: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::Receiver<Received>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Listens on `addr` (`host:port`; port 0 picks a free port) with the
    /// default [`TcpConfig`].
    ///
    /// Errors: [`TransportError::BadAddress`] if `addr` is malformed or does
    /// not resolve, [`TransportError::AddrInUse`] if it is taken,
    /// [`TransportError::Io`] for other failures.
    pub async fn bind(addr: &str) -> Result<TcpTransport, TransportError> {
        Self::bind_with(addr, TcpConfig::default()).await
    }

    /// Listens on `addr` with `config`, which is validated first (an invalid
    /// one is refused with [`TransportError::Other`]). If `addr` resolves to
    /// several addresses, the first one that can be bound is used.
    pub async fn bind_with(addr: &str, config: TcpConfig) -> Result<TcpTransport, TransportError> {
        config
            .validate()
            .map_err(|e| TransportError::Other(e.to_string()))?;
        addr::check_bind(addr)?;
        let candidates: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| TransportError::BadAddress {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .collect();
        let mut last_error = None;
        let mut listener = None;
        for candidate in candidates {
            match TcpListener::bind(candidate).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let listener = match (listener, last_error) {
            (Some(l), _) => l,
            (None, Some(e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(TransportError::AddrInUse(addr.to_string()))
            }
            (None, Some(e)) => return Err(TransportError::Io(e)),
            (None, None) => {
                return Err(TransportError::BadAddress {
                    addr: addr.to_string(),
                    reason: "resolves to no address".into(),
                })
            }
        };
        let bound = listener.local_addr()?;
        let local_addr = config
            .advertise_addr
            .clone()
            .unwrap_or_else(|| bound.to_string());
        let (tx, rx) = mpsc::channel(config.recv_queue);
        let shared = Arc::new(Shared {
            config,
            stats: Counters::default(),
            tasks: Tasks::default(),
            peers: PeerMap::default(),
            conns: Default::default(),
        });
        shared
            .tasks
            .spawn(inbound::accept_loop(shared.clone(), listener, tx));
        tracing::debug!(%bound, advertised = %local_addr, "tcp: transport listening");
        Ok(TcpTransport {
            shared,
            local_addr,
            bound,
            rx: tokio::sync::Mutex::new(rx),
        })
    }

    /// The address this transport advertises, `host:port`: the one peers
    /// are told to answer at ([`TcpConfig::advertise_addr`] if set, else
    /// the bound socket address). The same as [`Transport::local_addr`],
    /// callable without importing the trait, like tokio's sockets.
    pub fn local_addr(&self) -> String {
        self.local_addr.clone()
    }

    /// The socket address actually bound (what [`TcpTransport::local_addr`]
    /// reports unless [`TcpConfig::advertise_addr`] is set).
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    /// The configuration in force.
    pub fn config(&self) -> &TcpConfig {
        &self.shared.config
    }

    /// All the counters, with drops broken down by reason.
    pub fn tcp_stats(&self) -> TcpStats {
        self.shared.stats.snapshot()
    }

    /// Tasks (accept loop, readers, writers) not yet ended. For shutdown
    /// tests; not a stable API.
    #[doc(hidden)]
    pub fn live_tasks(&self) -> LiveTasks {
        self.shared.tasks.live()
    }

    fn is_closed(&self) -> bool {
        self.shared.tasks.cancel.is_cancelled()
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn local_addr(&self) -> String {
        TcpTransport::local_addr(self)
    }

    /// Queues `frame` for `to` and returns at once. Errors:
    /// [`TransportError::Closed`] after `close`,
    /// [`TransportError::FrameTooLarge`] above `max_frame_bytes`,
    /// [`TransportError::BadAddress`] if `to` is not `host:port`,
    /// [`TransportError::Other`] if `max_peers` is reached. An unreachable or
    /// unresolvable peer is not an error here: its frames wait in its queue
    /// and are dropped (and counted) if it stays unreachable.
    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError> {
        if self.is_closed() {
            return Err(TransportError::Closed);
        }
        let max = self.shared.config.max_frame_bytes;
        if frame.len() > max {
            inc(&self.shared.stats.dropped_send_too_large);
            tracing::debug!(
                peer = to,
                len = frame.len(),
                max,
                "tcp: frame too large, dropped"
            );
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                max,
            });
        }
        addr::check_peer(to)?;
        outbound::enqueue(&self.shared, to, frame)
    }

    async fn recv(&self) -> Result<(String, Bytes), TransportError> {
        let cancel = &self.shared.tasks.cancel;
        if cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        // Both awaits are cancel-safe: a dropped `lock` future holds nothing,
        // and `mpsc::Receiver::recv` loses no message when dropped.
        let mut rx = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TransportError::Closed),
            rx = self.rx.lock() => rx,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(TransportError::Closed),
            received = rx.recv() => {
                let (from, frame) = received.ok_or(TransportError::Closed)?;
                add(&self.shared.stats.bytes_received, frame.len() as u64);
                inc(&self.shared.stats.frames_received);
                Ok((from, frame))
            }
        }
    }

    async fn close(&self) -> Result<(), TransportError> {
        self.shared.tasks.shutdown(CLOSE_GRACE).await;
        lock(&self.shared.peers).clear();
        tracing::debug!(bound = %self.bound, "tcp: transport closed");
        Ok(())
    }

    fn stats(&self) -> TransportStats {
        self.tcp_stats().into()
    }

    /// Outbound connections to `addr` established and failed (the
    /// transport remembers at most `max_peers` addresses).
    fn connection_stats(&self, addr: &str) -> Option<ConnectionStats> {
        lock(&self.shared.conns).get(addr).copied()
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shared.tasks.abort();
    }
}

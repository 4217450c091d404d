//! An in-process network for tests, examples and demos.
//!
//! A [`MemNetwork`] is a switchboard of named addresses (`mem:a`, `mem:b`,
//! ...). [`MemNetwork::bind`] returns a [`MemTransport`], which implements
//! [`gossip_core::Transport`]. The network can misbehave on purpose:
//!
//! - **loss**: each frame is dropped with probability [`set_loss`](MemNetwork::set_loss).
//!   Decisions come from a ChaCha8 generator seeded by [`MemNetwork::new`], so
//!   the same seed and the same sequence of sends drop the same frames;
//! - **latency**: every frame is delivered after [`set_latency`](MemNetwork::set_latency),
//!   measured with `tokio::time` (so it follows paused time in tests);
//! - **partitions** and **isolation**: [`partition`](MemNetwork::partition),
//!   [`isolate`](MemNetwork::isolate), undone by [`heal`](MemNetwork::heal).
//!
//! Like UDP, [`send`](gossip_core::Transport::send) never blocks and returns
//! `Ok(())` even when the frame is dropped (lost, partitioned, unbound
//! destination, full inbox). An inbox is full at 4096 frames or at
//! [`set_inbox_bytes`](MemNetwork::set_inbox_bytes) bytes not yet received,
//! as a socket's receive buffer is; [`MemStats::bytes_queued_peak`] tells how
//! much the inboxes held at most. Frames arrive unaltered. Binding
//! an address that is already bound replaces the old binding, as a restarted
//! process would take over its port; the old transport's `recv` then returns
//! [`TransportError::Closed`]. Closing or dropping a transport unbinds it.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use gossip_core::Transport;
//! use gossip_transport_mem::MemNetwork;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     let net = MemNetwork::new(42);
//!     net.set_latency(Duration::from_millis(1));
//!     let a = net.bind("mem:a");
//!     let b = net.bind("mem:b");
//!
//!     a.send("mem:b", Bytes::from_static(b"hello")).await.unwrap();
//!     let (from, frame) = b.recv().await.unwrap();
//!     assert_eq!((from.as_str(), &frame[..]), ("mem:a", &b"hello"[..]));
//!
//!     net.partition(&["mem:a"], &["mem:b"]);
//!     a.send("mem:b", Bytes::from_static(b"lost")).await.unwrap();
//!     assert_eq!(net.stats().frames_dropped, 1);
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gossip_core::{Transport, TransportError, TransportStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;

/// Frames an inbox holds before further frames are dropped.
pub const INBOX_CAPACITY: usize = 4096;

/// Bytes an inbox holds by default before further frames are dropped; change
/// it with [`MemNetwork::set_inbox_bytes`].
pub const INBOX_BYTES: u64 = 4 << 20;

type Frame = (String, Bytes);

/// Network-wide counters of a [`MemNetwork`].
///
/// When no frame is in flight (delayed by latency),
/// `frames_sent == frames_delivered + frames_dropped`, and likewise for bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Frames handed to the network by any transport.
    pub frames_sent: u64,
    /// Bytes of those frames.
    pub bytes_sent: u64,
    /// Frames placed in a destination's inbox.
    pub frames_delivered: u64,
    /// Bytes of those frames.
    pub bytes_delivered: u64,
    /// Frames dropped: lost, partitioned, isolated, unbound destination or
    /// full inbox.
    pub frames_dropped: u64,
    /// Bytes of those frames.
    pub bytes_dropped: u64,
    /// Bytes delivered to inboxes and not yet received, over all inboxes.
    pub bytes_queued: u64,
    /// The most `bytes_queued` has been.
    pub bytes_queued_peak: u64,
}

/// A simulated network. Cheap to clone: clones share the same network.
#[derive(Clone)]
pub struct MemNetwork {
    inner: Arc<Mutex<State>>,
}

struct State {
    rng: ChaCha8Rng,
    loss: f64,
    latency: Duration,
    bindings: HashMap<String, Binding>,
    next_id: u64,
    partitions: Vec<(HashSet<String>, HashSet<String>)>,
    isolated: HashSet<String>,
    inbox_bytes: u64,
    stats: MemStats,
}

struct Binding {
    id: u64,
    inbox: mpsc::Sender<Frame>,
    /// Bytes in `inbox`, not yet received.
    queued: u64,
}

impl State {
    fn blocked(&self, from: &str, to: &str) -> bool {
        self.isolated.contains(from)
            || self.isolated.contains(to)
            || self.partitions.iter().any(|(x, y)| {
                (x.contains(from) && y.contains(to)) || (y.contains(from) && x.contains(to))
            })
    }

    fn is_current(&self, addr: &str, id: u64) -> bool {
        self.bindings.get(addr).is_some_and(|b| b.id == id)
    }

    /// Puts the frame in `to`'s inbox, or counts it as dropped.
    fn deliver(&mut self, to: &str, frame: Frame, counters: &Counters) {
        let len = frame.1.len() as u64;
        let room = self.inbox_bytes;
        let delivered = match self.bindings.get_mut(to) {
            Some(b) if b.queued.saturating_add(len) <= room => {
                let ok = b.inbox.try_send(frame).is_ok();
                if ok {
                    b.queued += len;
                }
                ok
            }
            _ => false,
        };
        if delivered {
            self.stats.frames_delivered += 1;
            self.stats.bytes_delivered += len;
            self.stats.bytes_queued += len;
            self.stats.bytes_queued_peak =
                self.stats.bytes_queued_peak.max(self.stats.bytes_queued);
        } else {
            tracing::trace!(
                to,
                len,
                "mem: destination unbound or inbox full, frame dropped"
            );
            self.drop_frame(len, counters);
        }
    }

    fn drop_frame(&mut self, len: u64, counters: &Counters) {
        self.stats.frames_dropped += 1;
        self.stats.bytes_dropped += len;
        counters.frames_dropped.fetch_add(1, Relaxed);
    }
}

impl MemNetwork {
    /// A network with no loss, no latency and no partitions; `seed` drives
    /// the loss decisions.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                loss: 0.0,
                latency: Duration::ZERO,
                bindings: HashMap::new(),
                next_id: 0,
                partitions: Vec::new(),
                isolated: HashSet::new(),
                inbox_bytes: INBOX_BYTES,
                stats: MemStats::default(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `addr`. If it is already bound, the new transport replaces the
    /// old one, whose `recv` then returns [`TransportError::Closed`].
    pub fn bind(&self, addr: &str) -> MemTransport {
        let mut state = self.state();
        self.bind_locked(&mut state, addr)
    }

    /// Binds `addr`, or fails with [`TransportError::AddrInUse`] if it is bound.
    pub fn try_bind(&self, addr: &str) -> Result<MemTransport, TransportError> {
        let mut state = self.state();
        if state.bindings.contains_key(addr) {
            return Err(TransportError::AddrInUse(addr.to_owned()));
        }
        Ok(self.bind_locked(&mut state, addr))
    }

    fn bind_locked(&self, state: &mut State, addr: &str) -> MemTransport {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let id = state.next_id;
        state.next_id += 1;
        let old = state.bindings.insert(
            addr.to_owned(),
            Binding {
                id,
                inbox: tx,
                queued: 0,
            },
        );
        if let Some(old) = old {
            state.stats.bytes_queued -= old.queued;
        }
        MemTransport {
            net: self.clone(),
            addr: addr.to_owned(),
            id,
            inbox: tokio::sync::Mutex::new(rx),
            counters: Arc::default(),
        }
    }

    /// Sets the probability that each frame is dropped.
    ///
    /// # Panics
    /// If `p` is not within `0.0..=1.0`.
    pub fn set_loss(&self, p: f64) {
        assert!(
            (0.0..=1.0).contains(&p),
            "loss must be within 0.0..=1.0, got {p}"
        );
        self.state().loss = p;
    }

    /// Sets how many bytes not yet received an inbox may hold before further
    /// frames to it are dropped ([`INBOX_BYTES`] by default). A frame larger
    /// than the limit is never delivered.
    pub fn set_inbox_bytes(&self, bytes: u64) {
        self.state().inbox_bytes = bytes;
    }

    /// Sets the delivery delay of every frame sent from now on. Zero delivers
    /// at once.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Drops frames between any address of `a` and any address of `b`, both
    /// ways. Partitions accumulate until [`heal`](Self::heal).
    pub fn partition(&self, a: &[&str], b: &[&str]) {
        let set = |g: &[&str]| g.iter().map(|s| s.to_string()).collect();
        self.state().partitions.push((set(a), set(b)));
    }

    /// Drops every frame to or from `addr` until [`heal`](Self::heal).
    pub fn isolate(&self, addr: &str) {
        self.state().isolated.insert(addr.to_owned());
    }

    /// Removes all partitions and isolations.
    pub fn heal(&self) {
        let mut state = self.state();
        state.partitions.clear();
        state.isolated.clear();
    }

    /// The network-wide counters.
    pub fn stats(&self) -> MemStats {
        self.state().stats
    }

    /// A frame of `len` bytes left the inbox of `addr` (binding `id`). An
    /// inbox no longer bound had its bytes taken off the count when unbound.
    fn received(&self, addr: &str, id: u64, len: u64) {
        let mut state = self.state();
        let state = &mut *state;
        if let Some(b) = state.bindings.get_mut(addr).filter(|b| b.id == id) {
            b.queued -= len;
            state.stats.bytes_queued -= len;
        }
    }

    fn unbind(&self, addr: &str, id: u64) {
        let mut state = self.state();
        if state.is_current(addr, id) {
            if let Some(old) = state.bindings.remove(addr) {
                state.stats.bytes_queued -= old.queued;
            }
        }
    }
}

impl fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        let mut bound: Vec<_> = state.bindings.keys().collect();
        bound.sort();
        f.debug_struct("MemNetwork")
            .field("bound", &bound)
            .field("loss", &state.loss)
            .field("latency", &state.latency)
            .field("partitions", &state.partitions.len())
            .field("isolated", &state.isolated)
            .field("stats", &state.stats)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Counters {
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    frames_dropped: AtomicU64,
}

/// One address bound on a [`MemNetwork`]. Dropping it unbinds the address.
pub struct MemTransport {
    net: MemNetwork,
    addr: String,
    id: u64,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Frame>>,
    counters: Arc<Counters>,
}

impl fmt::Debug for MemTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemTransport")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for MemTransport {
    fn local_addr(&self) -> String {
        self.addr.clone()
    }

    /// Never blocks. Returns `Ok(())` even if the network drops the frame;
    /// [`TransportError::Closed`] if this transport is closed or replaced.
    async fn send(&self, to: &str, frame: Bytes) -> Result<(), TransportError> {
        let net = &self.net;
        let mut state = net.state();
        if !state.is_current(&self.addr, self.id) {
            return Err(TransportError::Closed);
        }
        let len = frame.len() as u64;
        let c = &self.counters;
        c.frames_sent.fetch_add(1, Relaxed);
        c.bytes_sent.fetch_add(len, Relaxed);
        state.stats.frames_sent += 1;
        state.stats.bytes_sent += len;

        // Always draw when loss is on, so drops depend only on the seed and
        // the sequence of sends.
        let loss = state.loss;
        let lost = loss > 0.0 && state.rng.random_bool(loss);
        if lost || state.blocked(&self.addr, to) || !state.bindings.contains_key(to) {
            tracing::trace!(from = %self.addr, to, len, lost, "mem: frame dropped");
            state.drop_frame(len, c);
        } else if state.latency.is_zero() {
            state.deliver(to, (self.addr.clone(), frame), c);
        } else {
            let (latency, net, to, from, c) = (
                state.latency,
                net.clone(),
                to.to_owned(),
                self.addr.clone(),
                Arc::clone(c),
            );
            tokio::spawn(async move {
                tokio::time::sleep(latency).await;
                net.state().deliver(&to, (from, frame), &c);
            });
        }
        Ok(())
    }

    async fn recv(&self) -> Result<(String, Bytes), TransportError> {
        let mut inbox = self.inbox.lock().await;
        if !self.net.state().is_current(&self.addr, self.id) {
            return Err(TransportError::Closed);
        }
        // Cancel-safe: mpsc::Receiver::recv loses nothing when dropped.
        let (from, frame) = inbox.recv().await.ok_or(TransportError::Closed)?;
        self.net.received(&self.addr, self.id, frame.len() as u64);
        self.counters.frames_received.fetch_add(1, Relaxed);
        self.counters
            .bytes_received
            .fetch_add(frame.len() as u64, Relaxed);
        Ok((from, frame))
    }

    async fn close(&self) -> Result<(), TransportError> {
        self.net.unbind(&self.addr, self.id);
        Ok(())
    }

    fn stats(&self) -> TransportStats {
        let c = &self.counters;
        let mut s = TransportStats::default();
        s.frames_sent = c.frames_sent.load(Relaxed);
        s.bytes_sent = c.bytes_sent.load(Relaxed);
        s.frames_received = c.frames_received.load(Relaxed);
        s.bytes_received = c.bytes_received.load(Relaxed);
        s.frames_dropped = c.frames_dropped.load(Relaxed);
        s
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        self.net.unbind(&self.addr, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(i: usize) -> Bytes {
        Bytes::from(format!("frame-{i}"))
    }

    /// Sends `n` frames a→b and returns which ones arrived.
    async fn delivered_pattern(seed: u64, p: f64, n: usize) -> Vec<bool> {
        let net = MemNetwork::new(seed);
        net.set_loss(p);
        let (a, b) = (net.bind("mem:a"), net.bind("mem:b"));
        for i in 0..n {
            a.send("mem:b", frame(i)).await.unwrap();
        }
        let mut arrived = vec![false; n];
        let mut inbox = b.inbox.lock().await;
        while let Ok((_, f)) = inbox.try_recv() {
            let i: usize = std::str::from_utf8(&f[6..]).unwrap().parse().unwrap();
            arrived[i] = true;
        }
        arrived
    }

    #[tokio::test]
    async fn loss_matches_p_and_is_reproducible() {
        let n = 4000;
        let first = delivered_pattern(7, 0.2, n).await;
        let dropped = first.iter().filter(|d| !**d).count() as f64 / n as f64;
        assert!((0.17..0.23).contains(&dropped), "drop rate {dropped}");
        assert_eq!(first, delivered_pattern(7, 0.2, n).await);
        assert_ne!(first, delivered_pattern(8, 0.2, n).await);
    }

    async fn arrives(from: &MemTransport, to: &MemTransport) -> bool {
        from.send(&to.local_addr(), frame(0)).await.unwrap();
        to.inbox.lock().await.try_recv().is_ok()
    }

    #[tokio::test]
    async fn partition_drops_both_ways_and_heal_restores() {
        let net = MemNetwork::new(1);
        let [a, b, c, d] = ["mem:a", "mem:b", "mem:c", "mem:d"].map(|s| net.bind(s));
        net.partition(&["mem:a", "mem:b"], &["mem:c"]);
        net.partition(&["mem:a"], &["mem:d"]);
        assert!(!arrives(&a, &c).await && !arrives(&c, &a).await);
        assert!(!arrives(&b, &c).await && !arrives(&a, &d).await);
        assert!(arrives(&a, &b).await && arrives(&b, &d).await && arrives(&c, &d).await);
        net.heal();
        assert!(arrives(&a, &c).await && arrives(&c, &a).await && arrives(&d, &a).await);
    }

    #[tokio::test]
    async fn isolate_drops_everything_to_and_from() {
        let net = MemNetwork::new(1);
        let [a, b, c] = ["mem:a", "mem:b", "mem:c"].map(|s| net.bind(s));
        net.isolate("mem:c");
        assert!(!arrives(&a, &c).await && !arrives(&c, &b).await);
        assert!(arrives(&a, &b).await);
        net.heal();
        assert!(arrives(&a, &c).await && arrives(&c, &b).await);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_delivery() {
        let net = MemNetwork::new(1);
        net.set_latency(Duration::from_millis(5));
        let (a, b) = (net.bind("mem:a"), net.bind("mem:b"));
        let start = tokio::time::Instant::now();
        a.send("mem:b", frame(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(4)).await;
        assert!(
            b.inbox.lock().await.try_recv().is_err(),
            "arrived too early"
        );
        let (from, f) = b.recv().await.unwrap();
        assert_eq!((from.as_str(), f), ("mem:a", frame(1)));
        assert_eq!(start.elapsed(), Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_frame_to_unbound_address_is_dropped() {
        let net = MemNetwork::new(1);
        net.set_latency(Duration::from_millis(5));
        let (a, b) = (net.bind("mem:a"), net.bind("mem:b"));
        a.send("mem:b", frame(1)).await.unwrap();
        drop(b);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(net.stats().frames_dropped, 1);
        assert_eq!(a.stats().frames_dropped, 1);
    }

    #[tokio::test]
    async fn rebinding_replaces_the_old_transport() {
        let net = MemNetwork::new(1);
        let a = net.bind("mem:a");
        let old = net.bind("mem:b");
        assert!(matches!(
            net.try_bind("mem:b"),
            Err(TransportError::AddrInUse(_))
        ));
        let new = net.bind("mem:b");
        assert!(matches!(old.recv().await, Err(TransportError::Closed)));
        assert!(matches!(
            old.send("mem:a", frame(0)).await,
            Err(TransportError::Closed)
        ));
        drop(old); // must not unbind the new transport
        a.send("mem:b", frame(2)).await.unwrap();
        assert_eq!(new.recv().await.unwrap().1, frame(2));
        new.close().await.unwrap();
        assert!(matches!(new.recv().await, Err(TransportError::Closed)));
        assert!(net.try_bind("mem:b").is_ok());
    }

    #[tokio::test]
    async fn full_inbox_drops() {
        let net = MemNetwork::new(1);
        let (a, _b) = (net.bind("mem:a"), net.bind("mem:b"));
        for i in 0..INBOX_CAPACITY + 3 {
            a.send("mem:b", frame(i)).await.unwrap();
        }
        assert_eq!(net.stats().frames_dropped, 3);
    }

    #[tokio::test]
    async fn inbox_full_by_bytes_drops_until_received() {
        let net = MemNetwork::new(1);
        net.set_inbox_bytes(100);
        let (a, b) = (net.bind("mem:a"), net.bind("mem:b"));
        let forty = Bytes::from(vec![7u8; 40]);
        for _ in 0..3 {
            a.send("mem:b", forty.clone()).await.unwrap();
        }
        let s = net.stats();
        assert_eq!((s.frames_delivered, s.frames_dropped), (2, 1));
        assert_eq!((s.bytes_queued, s.bytes_queued_peak), (80, 80));
        a.send("mem:b", Bytes::from(vec![0u8; 101])).await.unwrap();
        assert_eq!(net.stats().frames_dropped, 2, "larger than the limit");
        b.recv().await.unwrap();
        assert_eq!(net.stats().bytes_queued, 40);
        a.send("mem:b", forty.clone()).await.unwrap();
        let s = net.stats();
        assert_eq!((s.frames_delivered, s.bytes_queued), (3, 80));
        drop(b);
        let s = net.stats();
        assert_eq!((s.bytes_queued, s.bytes_queued_peak), (0, 80));
    }

    #[tokio::test]
    async fn stats_add_up() {
        let net = MemNetwork::new(3);
        net.set_loss(0.3);
        let (a, b) = (net.bind("mem:a"), net.bind("mem:b"));
        net.partition(&["mem:a"], &["mem:c"]);
        let _c = net.bind("mem:c");
        for i in 0..200 {
            a.send(["mem:b", "mem:c", "mem:nobody"][i % 3], frame(i))
                .await
                .unwrap();
        }
        let s = net.stats();
        assert_eq!(s.frames_sent, 200);
        assert!(s.frames_delivered > 0 && s.frames_dropped > 0);
        assert_eq!(s.frames_sent, s.frames_delivered + s.frames_dropped);
        assert_eq!(s.bytes_sent, s.bytes_delivered + s.bytes_dropped);
        let ta = a.stats();
        assert_eq!(
            (ta.frames_sent, ta.bytes_sent, ta.frames_dropped),
            (s.frames_sent, s.bytes_sent, s.frames_dropped)
        );
        for _ in 0..s.frames_delivered {
            b.recv().await.unwrap();
        }
        assert!(b.inbox.lock().await.try_recv().is_err());
        assert_eq!(net.stats().bytes_queued, 0);
        let tb = b.stats();
        assert_eq!(
            (tb.frames_received, tb.bytes_received),
            (s.frames_delivered, s.bytes_delivered)
        );
    }
}
